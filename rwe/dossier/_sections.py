"""The dossier's sections: one notebook template each, in the order reviewers read them, and
the evidence items (EVIDENCE.md) each one delivers."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SectionSpec", "SECTION_SPECS", "FEDERATION_SPEC", "ALL_SECTION_SPECS", "section_spec",
           "EVIDENCE_ITEMS", "STATUS_LABELS", "status_label"]

#: Display words of the core verdict statuses (:data:`rwe._evidence.STATUSES`): the dossier
#: stores and counts the core statuses and uses these words only when it renders a page.
STATUS_LABELS = {"pass": "pass", "fail": "fail", "not_evaluable": "not evaluable",
                 "not_evaluated": "not evaluated"}


def status_label(status: str) -> str:
    """The display word of a core status (the status itself when unknown)."""
    return STATUS_LABELS.get(status, status)


#: The evidence items of ../shared/docs/EVIDENCE.md that appear in a dossier, in plain words
#: (the index page explains every code it lists).
EVIDENCE_ITEMS = {
    "REP-1": "definition of the intended-use (reference) population, with its source",
    "REP-2": "cohort characteristics (Table 1) overall, per site and per acquisition device",
    "REP-3": "quantitative representativeness: participation-to-prevalence ratios, "
             "standardised mean differences, Tipton's generalizability index",
    "REP-4": "site and equipment coverage",
    "REP-6": "data gaps: under-represented groups and small intersectional cells",
    "SUB-2": "overall performance with two-sided confidence intervals",
    "SUB-3": "acceptance judged on the confidence bound against pre-specified goals",
    "SUB-4": "subgroup table with intervals and n (events) per level, intersections",
    "SUB-5": "heterogeneity tests with multiplicity-adjusted p values",
    "SUB-6": "patient-level cluster bootstrap for repeated observations",
    "MON-1": "performance monitoring plan (pre-specified drift tests and alarms)",
    "MON-2": "input drift tests (per feature, multivariate, case mix, prevalence)",
    "MON-3": "input-data integrity per window (missing, out-of-range, schema)",
    "MON-4": "performance and calibration drift (control charts, per site and device)",
    "CHG-5": "performance evaluation of a modification against pre-defined criteria",
    "CHG-6": "test-data reuse ledger (looks and error budget)",
    "CHG-7": "cumulative effect against the original version (bio-creep check)",
    "PRV-1": "data sources, files and their sha256",
    "PRV-2": "missing values per column",
    "PRV-4": "row, patient and event counts and the period covered",
    "PRV-7": "the protocol and its sha256",
    "PRV-9": "model card (FDA draft guidance Appendix E; CHAI applied model card)",
}


@dataclass(frozen=True)
class SectionSpec:
    """One dossier section.

    Attributes
    ----------
    name : str
        Key in the protocol's ``report.sections`` and in ``results.json["sections"]``.
    title : str
        Heading on the reviewer page.
    notebook : str
        File name of the template in ``notebooks/``.
    page : str
        File name of the reviewer page in the dossier.
    evidence : tuple of str
        EVIDENCE.md items the section delivers in this release.
    planned : tuple of str
        Items the section shows only as a pre-specified plan (not evaluated in this release).
    summary : str
        One line for the table of contents.
    figures : bool
        The notebook draws matplotlib figures.
    """

    name: str
    title: str
    notebook: str
    page: str
    evidence: tuple[str, ...]
    summary: str
    planned: tuple[str, ...] = ()
    figures: bool = False


SECTION_SPECS: tuple[SectionSpec, ...] = (
    SectionSpec("representativeness", "Representativeness", "01_representativeness.ipynb",
                "representativeness.html", ("REP-1", "REP-2", "REP-3", "REP-4", "REP-6"),
                "Does the evaluation cohort look like the intended-use population? Table 1, "
                "shares, PPR, SMD, Tipton B, intersectional coverage, sample-size adequacy, "
                "sites.", figures=True),
    SectionSpec("subgroups", "Subgroup performance", "02_subgroups.ipynb", "subgroups.html",
                ("SUB-2", "SUB-3", "SUB-4", "SUB-5", "SUB-6"),
                "Overall and subgroup performance with confidence intervals, heterogeneity, "
                "fairness gaps and the pre-specified goals judged on the confidence bound.",
                figures=True),
    SectionSpec("drift", "Drift and monitoring", "03_drift.ipynb", "drift.html",
                ("MON-1", "MON-2", "MON-3", "MON-4"),
                "Input, prediction, prevalence and performance drift per window against the "
                "reference, control-chart alarms per site and device, the monitoring plan.",
                figures=True),
    SectionSpec("change_control", "Change control", "04_change_control.ipynb",
                "change_control.html", ("CHG-5", "CHG-6", "CHG-7"),
                "The model update against the locked, the original and every approved version "
                "under the pre-specified criteria, the error budget and the ledger entry."),
    SectionSpec("provenance", "Data provenance and quality", "05_provenance.ipynb",
                "provenance.html", ("PRV-1", "PRV-2", "PRV-4", "PRV-7"),
                "Files and their sha256, row and patient counts, period covered, missingness "
                "per column role, validation result, protocol hash."),
    SectionSpec("model_card", "Model card", "06_model_card.ipynb", "model_card.html",
                ("PRV-9",),
                "Model card in the FDA draft guidance Appendix E layout, with the CHAI applied "
                "model card XML (model-card.xml)."),
)

#: The section of a federated merge's dossier (``rwe merge``): the sites, their files and the
#: disclosure rule each applied, per-site results and the between-site meta-analysis. Not a
#: section a protocol lists (its ``report.sections`` are :data:`SECTION_SPECS`).
FEDERATION_SPEC = SectionSpec(
    "federation", "Sites and heterogeneity", "07_federation.ipynb", "federation.html",
    ("SUB-5", "REP-4", "PRV-1", "PRV-4", "PRV-7"),
    "Per-site results, the random-effects meta-analysis of the site estimates (Q, I^2, "
    "tau^2, prediction interval, forest plots) next to the pooled estimates, the site files and "
    "their checksums, the disclosure rule each site applied, and what site summaries cannot "
    "evaluate.", figures=True)

#: Every section, in the order reviewers read them (a federated dossier places its sites after
#: the pooled subgroup performance they break down).
ALL_SECTION_SPECS: tuple[SectionSpec, ...] = (
    SECTION_SPECS[:2] + (FEDERATION_SPEC,) + SECTION_SPECS[2:])

_BY_NAME = {s.name: s for s in ALL_SECTION_SPECS}


def section_spec(name: str) -> SectionSpec:
    """The :class:`SectionSpec` called ``name``."""
    try:
        return _BY_NAME[name]
    except KeyError:
        from rwe.exceptions import InvalidParameterError

        raise InvalidParameterError(
            f"section={name!r} is unknown; valid: {', '.join(_BY_NAME)}") from None
