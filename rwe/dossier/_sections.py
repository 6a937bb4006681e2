"""The dossier's sections: one notebook template each, in the order reviewers read them."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SectionSpec", "SECTION_SPECS", "section_spec", "STATUS_PASS", "STATUS_FAIL",
           "STATUS_NOT_EVALUATED", "STATUS_INSUFFICIENT", "STATUSES"]

#: Verdict vocabulary (results.json ``verdicts[].status``).
STATUS_PASS = "pass"
STATUS_FAIL = "fail"
STATUS_NOT_EVALUATED = "not evaluated"
STATUS_INSUFFICIENT = "insufficient data"
STATUSES = (STATUS_PASS, STATUS_FAIL, STATUS_INSUFFICIENT, STATUS_NOT_EVALUATED)


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
        EVIDENCE.md items the section answers.
    summary : str
        One line for the table of contents.
    after : tuple of str
        Sections whose results this one reads (run before it when both are in the dossier).
    figures : bool
        The notebook draws matplotlib figures (its kernel sets matplotlib up at the start;
        the others never import it).
    """

    name: str
    title: str
    notebook: str
    page: str
    evidence: tuple[str, ...]
    summary: str
    after: tuple[str, ...] = ()
    figures: bool = False


SECTION_SPECS: tuple[SectionSpec, ...] = (
    SectionSpec("representativeness", "Representativeness", "01_representativeness.ipynb",
                "representativeness.html", ("REP-1", "REP-2", "REP-3", "REP-4", "REP-6"),
                "Does the evaluation cohort look like the intended-use population? Shares, "
                "PPR, SMD, Tipton B, intersectional coverage, sample-size adequacy, sites.",
                figures=True),
    SectionSpec("subgroups", "Subgroup performance", "02_subgroups.ipynb", "subgroups.html",
                ("SUB-2", "SUB-3", "SUB-4", "SUB-5", "SUB-6"),
                "Overall and subgroup performance with confidence intervals, heterogeneity, "
                "fairness gaps and the pre-specified goals judged on the confidence bound.",
                figures=True),
    SectionSpec("drift", "Drift and monitoring", "03_drift.ipynb", "drift.html",
                ("MON-1", "MON-2", "MON-4"),
                "The pre-specified drift and monitoring plan (analysis not part of this "
                "release)."),
    SectionSpec("change_control", "Change control", "04_change_control.ipynb",
                "change_control.html", ("CHG-1", "CHG-5", "CHG-6"),
                "The pre-specified change-control (PCCP) acceptance criteria (formal procedure "
                "not part of this release)."),
    SectionSpec("provenance", "Data provenance and quality", "05_provenance.ipynb",
                "provenance.html", ("PRV-1", "PRV-2", "PRV-4", "PRV-6", "PRV-7"),
                "Files and their sha256, row and patient counts, period covered, missingness "
                "per column role, validation result, protocol hash."),
    SectionSpec("model_card", "Model card", "06_model_card.ipynb", "model_card.html",
                ("PRV-9",),
                "Model card in the FDA draft guidance Appendix E layout, with the CHAI applied "
                "model card XML (model-card.xml).",
                after=("representativeness", "subgroups", "drift", "change_control",
                       "provenance")),
)

_BY_NAME = {s.name: s for s in SECTION_SPECS}


def section_spec(name: str) -> SectionSpec:
    """The :class:`SectionSpec` called ``name``."""
    try:
        return _BY_NAME[name]
    except KeyError:
        from rwe.exceptions import InvalidParameterError

        raise InvalidParameterError(
            f"section={name!r} is unknown; valid: {', '.join(_BY_NAME)}") from None
