"""The result of :func:`rwe.representativeness.assess_representativeness`: tables, typed
verdicts and findings, and the figures drawn from them (a result keeps no patient row)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

import pandas as pd

from rwe._evidence import Finding, Verdict, render_verdict
from rwe._results import ResultMixin, json_safe
from rwe.representativeness._indices import TiptonResult
from rwe.representativeness._reference import ReferencePopulation

__all__ = [
    "RepresentativenessResult", "SHARE_COLUMNS", "TEST_COLUMNS", "SMD_COLUMNS",
    "COVERAGE_COLUMNS", "ADEQUACY_COLUMNS", "SITE_COLUMNS", "MISSING_COLUMNS",
    "FLAG_UNDER", "FLAG_ADEQUATE", "FLAG_OVER", "FLAG_NOT_IN_REFERENCE", "FLAG_ABSENT",
    "FLAG_ZERO_REFERENCE", "FLAG_NO_DATA",
]

FLAG_UNDER = "under-represented"
FLAG_ADEQUATE = "adequate"
FLAG_OVER = "over-represented"
FLAG_NOT_IN_REFERENCE = "not in reference"
FLAG_ABSENT = "absent from cohort"
FLAG_ZERO_REFERENCE = "PPR undefined"
FLAG_NO_DATA = "no data"

SHARE_COLUMNS = ["attribute", "category", "n", "cohort_share", "ci_low", "ci_high", "ci_level",
                 "ci_method", "reference_share", "reference_ages", "difference", "ppr", "ppr_low",
                 "ppr_high", "flag", "note"]
TEST_COLUMNS = ["attribute", "n", "k", "chi2", "df", "pvalue", "tvd", "note"]
SMD_COLUMNS = ["comparison", "covariate", "level", "kind", "n_a", "n_b", "mean_a", "mean_b",
               "sd_a", "sd_b", "missing_a", "missing_b", "smd", "abs_smd", "flag"]
COVERAGE_COLUMNS = ["intersection", "cell", "row_level", "col_level", "n", "n_positive",
                    "share", "expected_share", "below_min_n", "empty"]
ADEQUACY_COLUMNS = ["grouping", "subgroup", "n", "n_positive", "basis", "assumed_value",
                    "target_half_width", "required", "reached", "shortfall"]
SITE_COLUMNS = ["level", "site", "equipment", "n", "share"]
MISSING_COLUMNS = ["variable", "grouping", "subgroup", "n", "n_missing", "fraction", "flag"]

#: Every table of the result with its columns and the columns that are numeric (restored as
#: float by :meth:`RepresentativenessResult.from_dict` when JSON gave them a null).
_TABLES: dict[str, tuple[list[str], tuple[str, ...]]] = {
    "shares": (SHARE_COLUMNS, ("n", "cohort_share", "ci_low", "ci_high", "ci_level",
                               "reference_share", "difference", "ppr", "ppr_low", "ppr_high")),
    "tests": (TEST_COLUMNS, ("n", "k", "chi2", "df", "pvalue", "tvd")),
    "smd": (SMD_COLUMNS, ("n_a", "n_b", "mean_a", "mean_b", "sd_a", "sd_b", "missing_a",
                          "missing_b", "smd", "abs_smd")),
    "coverage": (COVERAGE_COLUMNS, ("n", "n_positive", "share", "expected_share")),
    "adequacy": (ADEQUACY_COLUMNS, ("n", "n_positive", "assumed_value", "target_half_width",
                                    "required", "shortfall")),
    "sites": (SITE_COLUMNS, ("n", "share")),
    "missingness": (MISSING_COLUMNS, ("n", "n_missing", "fraction")),
}


def _frame_from_records(records: Any, columns: list[str], numeric: tuple[str, ...]
                        ) -> pd.DataFrame:
    """The table of ``records`` with ``columns`` first; a column a record adds (a merge's
    bounds of withheld counts, :mod:`rwe.federation._withheld`) is kept after them."""
    records = list(records or [])
    extra = list(dict.fromkeys(c for r in records for c in r if c not in columns))
    df = pd.DataFrame(records, columns=columns + extra)
    for c in numeric:
        if df[c].dtype == object:
            df[c] = df[c].astype(float)
    return df


@dataclass(frozen=True, eq=False)
class RepresentativenessResult(ResultMixin):
    """Representativeness of a cohort with respect to a reference population (REP-1..REP-6).

    Holds aggregates only: no patient row, no identifier, and of the reference population
    only its name, metadata and shares (never its rows).

    Attributes
    ----------
    shares : pandas.DataFrame
        One row per attribute x category: ``n, cohort_share, ci_low, ci_high, ci_level,
        ci_method, reference_share, reference_ages, difference, ppr, ppr_low, ppr_high, flag,
        note``. ``reference_ages`` is the age range the reference share covers (``"0+"`` all
        ages, ``"40+"`` after restriction to the intended use; None when not stated).
    tests : pandas.DataFrame
        Per attribute: chi-square goodness of fit (``chi2, df, pvalue``) and total variation
        distance ``tvd``; a last row ``"overall"`` gives the largest TVD.
    smd : pandas.DataFrame
        Standardised mean differences (cohort = ``a``) vs the reference shares and vs the
        comparison / reference population.
    tipton : TiptonResult or None
        Tipton's generalizability index, None when it was not computed.
    tipton_reason : str or None
        Why Tipton's B was not computed.
    coverage : pandas.DataFrame
        Every cell of each intersection (empty ones included) with n and flags.
    adequacy : pandas.DataFrame
        Per subgroup: n (positives), the n needed for the target half-width, reached.
    sites : pandas.DataFrame
        Counts per site, per equipment and per site x equipment cell.
    missingness : pandas.DataFrame
        Fraction missing per variable, overall and per subgroup.
    findings : tuple of Finding
        Typed observations (REP-6 data gaps statement); ``[f.text() for f in findings]`` gives
        the sentences, ``f.text(k)`` with small-cell suppression on the finding's counts.
    notes : list of str
        Methodological notes (derived reference bands, exclusions).
    reference : ReferencePopulation
        The reference used: name, source, metadata and shares only (``rows`` is None).
    attributes : tuple of str
    intersections : tuple of tuple of str
    n : int
        Cohort rows.
    parameters : dict
        ppr_band, smd_threshold, confidence_level, min_n, target_half_width, assumed_value,
        missingness_threshold, reference_min_age (the intended-use minimum age, or None).
    verdicts : tuple of Verdict
        The pre-specified checks (PPR band per attribute, SMD threshold or shift from the
        development population, coverage, adequacy, missingness), each with a stable id from
        its protocol content.
    """

    shares: pd.DataFrame
    tests: pd.DataFrame
    smd: pd.DataFrame
    tipton: TiptonResult | None
    tipton_reason: str | None
    coverage: pd.DataFrame
    adequacy: pd.DataFrame
    sites: pd.DataFrame
    missingness: pd.DataFrame
    findings: tuple[Finding, ...]
    notes: list[str]
    reference: ReferencePopulation
    attributes: tuple[str, ...]
    intersections: tuple[tuple[str, ...], ...]
    n: int
    parameters: dict[str, Any] = field(default_factory=dict)
    verdicts: tuple[Verdict, ...] = ()

    def __post_init__(self) -> None:
        if self.reference.rows is not None:  # a result never keeps population rows
            from dataclasses import replace

            object.__setattr__(self, "reference", replace(self.reference, rows=None))
        object.__setattr__(self, "findings", tuple(self.findings))
        object.__setattr__(self, "verdicts", tuple(self.verdicts))

    # ------------------------------------------------------------------ export
    def to_frame(self) -> pd.DataFrame:
        """The shares table (tidy, stable columns: :data:`SHARE_COLUMNS`)."""
        return self.shares

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (tables as lists of records); :meth:`from_dict` rebuilds it."""
        out: dict[str, Any] = {name: json_safe(getattr(self, name)) for name in _TABLES}
        out.update(
            tipton=None if self.tipton is None else json_safe(self.tipton),
            tipton_reason=self.tipton_reason,
            findings=[f.to_dict() for f in self.findings],
            verdicts=[v.to_dict() for v in self.verdicts],
            notes=list(self.notes), reference=self.reference.to_dict(),
            attributes=list(self.attributes),
            intersections=[list(i) for i in self.intersections], n=int(self.n),
            parameters=json_safe(self.parameters))
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RepresentativenessResult:
        frames = {name: _frame_from_records(d.get(name), cols, num)
                  for name, (cols, num) in _TABLES.items()}
        if len(frames["adequacy"]):
            frames["adequacy"]["reached"] = frames["adequacy"]["reached"].astype("boolean")
        t = d.get("tipton")
        tipton = None if t is None else TiptonResult(
            b=float(t["b"]), interpretation=t["interpretation"], n_sample=int(t["n_sample"]),
            n_population=int(t["n_population"]), covariates=tuple(t["covariates"]),
            model=t["model"], sample_ps_mean=float(t["sample_ps_mean"]),
            population_ps_mean=float(t["population_ps_mean"]), notes=tuple(t.get("notes", ())))
        r = d["reference"]
        ref = ReferencePopulation(name=r["name"], shares={a: dict(c) for a, c in
                                                          r["shares"].items()},
                                  metadata=dict(r.get("metadata") or {}),
                                  source=r.get("source", "<dict>"))
        params = dict(d.get("parameters") or {})
        if params.get("ppr_band") is not None:
            params["ppr_band"] = tuple(params["ppr_band"])
        return cls(**frames, tipton=tipton, tipton_reason=d.get("tipton_reason"),
                   findings=tuple(Finding.from_dict(f) for f in d.get("findings") or ()),
                   notes=list(d.get("notes") or ()), reference=ref,
                   attributes=tuple(d.get("attributes") or ()),
                   intersections=tuple(tuple(i) for i in d.get("intersections") or ()),
                   n=int(d["n"]), parameters=params,
                   verdicts=tuple(Verdict.from_dict(v) for v in d.get("verdicts") or ()))

    @property
    def site_equipment_matrix(self) -> pd.DataFrame:
        """Site x equipment counts as a wide table (empty when either role is missing)."""
        d = self.sites[self.sites["level"] == "site x equipment"]
        if d.empty:
            return pd.DataFrame()
        return d.pivot(index="site", columns="equipment", values="n")

    def finding_texts(self, k: int | None = None) -> list[str]:
        """The findings as sentences; with ``k``, a finding resting on a count between 1 and
        ``k - 1`` is worded without its numbers (:meth:`rwe._evidence.Finding.text`)."""
        return [f.text(k) for f in self.findings]

    def summary(self) -> str:
        lines = [f"Representativeness of {self.n} rows vs reference {self.reference.name!r}"]
        with pd.option_context("display.width", 140, "display.max_columns", 30):
            cols = ["attribute", "category", "n", "cohort_share", "reference_share", "ppr",
                    "ppr_low", "ppr_high", "flag"]
            lines.append(self.shares[cols].to_string(index=False, float_format="%.4g"))
            lines.append("")
            lines.append(self.tests.to_string(index=False, float_format="%.4g"))
        if self.tipton is not None:
            lines.append(f"\nTipton B = {self.tipton.b:.3f} ({self.tipton.interpretation})")
        elif self.tipton_reason:
            lines.append(f"\nTipton B not computed: {self.tipton_reason}")
        if self.verdicts:
            lines += ["", "Checks:"] + [render_verdict(v) for v in self.verdicts]
        lines.append("\nFindings:")
        lines.extend(f"- {t}" for t in self.finding_texts())
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        checks = "".join(f"<li><b>{escape(v.status)}</b> {escape(v.criterion)}"
                         + (f" ({escape(v.reason)})" if v.reason else "") + "</li>"
                         for v in self.verdicts)
        items = "".join(f"<li>{escape(t)}</li>" for t in self.finding_texts())
        return (f"<p><b>Representativeness</b> of {self.n} rows vs reference "
                f"<code>{escape(self.reference.name)}</code></p>"
                + (f"<p>Checks</p><ul>{checks}</ul>" if checks else "")
                + f"<ul>{items}</ul>" + ResultMixin._repr_html_(self))

    # ------------------------------------------------------------------ plots
    def plot_shares(self, attributes: Sequence[str] | None = None):
        """Cohort shares (Wilson intervals) next to reference shares, one panel per attribute."""
        from rwe.representativeness._plots import plot_shares

        return plot_shares(self, attributes)

    def plot_ppr(self, attributes: Sequence[str] | None = None):
        """PPR dot plot with intervals and the adequacy band."""
        from rwe.representativeness._plots import plot_ppr

        return plot_ppr(self, attributes)

    def plot_coverage(self, intersection: str | Sequence[str] | None = None):
        """Heat map of intersectional cell counts; cells below min_n are marked."""
        from rwe.representativeness._plots import plot_coverage

        return plot_coverage(self, intersection)

