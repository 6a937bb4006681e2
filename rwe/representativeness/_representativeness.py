"""Cohort vs target population: shares, PPR, goodness of fit, SMD, Tipton B, coverage,
sample-size adequacy, site/equipment coverage and missingness (EVIDENCE.md REP-1..REP-6).

Everything but Tipton's B is computed from mergeable summaries (:mod:`rwe.stats.summaries`):
the cohort is summarized first (one finest cell per combination of the attributes, site and
equipment, with the covariates' moments or category counts per cell), a summary (e.g. merged
from sites) is used as it is; a comparison population given as rows is summarized the same
way. Tipton's B fits a propensity model on individual covariates and needs the rows of both
populations.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats as _sps

from rwe._validation import check_int, check_level, check_real
from rwe.exceptions import InvalidParameterError, ReferenceDataError
from rwe.representativeness._checks import build_findings, build_verdicts
from rwe.representativeness._indices import TiptonResult, smd_from_summary, tipton_index
from rwe.representativeness._reference import (
    ReferencePopulation,
    ages_label,
    load_reference,
    parse_ages,
)
from rwe.representativeness._result import (
    ADEQUACY_COLUMNS,
    COVERAGE_COLUMNS,
    FLAG_ABSENT,
    FLAG_ADEQUATE,
    FLAG_NO_DATA,
    FLAG_NOT_IN_REFERENCE,
    FLAG_OVER,
    FLAG_UNDER,
    FLAG_ZERO_REFERENCE,
    MISSING_COLUMNS,
    SHARE_COLUMNS,
    SITE_COLUMNS,
    SMD_COLUMNS,
    TEST_COLUMNS,
    RepresentativenessResult,
)
from rwe.stats.summaries import Summary, summarize, summarize_arrays

if TYPE_CHECKING:  # pragma: no cover
    from rwe.data import EvaluationSet
    from rwe.protocol import Protocol

__all__ = [
    "assess_representativeness",
    "representativeness",
    "representativeness_from_protocol",
    "unevaluable_attributes",
    "unevaluable_from_protocol",
    "compare_cohorts",
    "RepresentativenessResult",
    "FLAG_UNDER",
    "FLAG_ADEQUATE",
    "FLAG_OVER",
    "FLAG_NOT_IN_REFERENCE",
    "FLAG_ABSENT",
    "FLAG_ZERO_REFERENCE",
    "FLAG_NO_DATA",
    "SHARE_COLUMNS",
    "TEST_COLUMNS",
    "SMD_COLUMNS",
    "COVERAGE_COLUMNS",
    "ADEQUACY_COLUMNS",
    "SITE_COLUMNS",
    "MISSING_COLUMNS",
]

MSG_NO_ATTRIBUTE = "attribute {attribute!r} is not a column of the data; available columns: {available}"
MSG_NO_COVARIATE = ("covariate {covariate!r} is not a column of the {which}; available columns: "
                    "{available}")
MSG_SUMMARY_NAME = ("{what} {name!r} is not {kind} of the {which} summary; it has: {available}")
MSG_FRAME_ATTRIBUTES = ("attributes must be given when data is a plain DataFrame (or a summary "
                        "with no attribute besides site and equipment)")
MSG_PPR_BAND = "ppr_band must be (low, high) with 0 < low < 1 < high, got {value!r}"
MSG_LABEL = ("label column {label!r} must hold 0/1 or boolean values without missing values; "
             "found {found}")
MISSING_LEVEL = "(missing)"
COMPARISON_ROWS = "comparison rows"
#: The ``comparison`` label of the development (training) population's SMD rows: its comparison
#: is the shift from the development population, not representativeness of the intended use.
DEVELOPMENT_POPULATION = "development population"
REFERENCE_SHARES = "reference shares"
MSG_TWO_POPULATIONS = ("give comparison= (rows of another population) or development= (rows of "
                       "the development population), not both: one population is compared at a "
                       "time")

_AGE_LABEL = re.compile(r"^\s*(?:<(?P<lt>\d+(?:\.\d+)?)|(?P<a>\d+(?:\.\d+)?)-(?P<b>\d+(?:\.\d+)?)"
                        r"|(?P<plus>\d+(?:\.\d+)?)\+)\s*$")


# =========================================================================== helpers
def _stats():
    """rwe.stats primitives (imported lazily)."""
    from rwe.stats import ci_half_width_sample_size, proportion_ci

    return proportion_ci, ci_half_width_sample_size


def _names(covariates: Any) -> list[str]:
    if covariates is None:
        return []
    return [covariates] if isinstance(covariates, str) else list(covariates)


def _is_numeric(s: pd.Series) -> bool:
    """Numeric for an SMD: boolean, or numeric and not a pandas Categorical."""
    return bool(pd.api.types.is_bool_dtype(s) or (
        pd.api.types.is_numeric_dtype(s) and not isinstance(s.dtype, pd.CategoricalDtype)))


def _binary_label(frame: pd.DataFrame, label: str) -> np.ndarray:
    col = frame[label]
    try:
        v = col.to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError):
        raise InvalidParameterError(MSG_LABEL.format(label=label, found=f"dtype {col.dtype}")) \
            from None
    bad = np.isnan(v) | ~np.isin(v, (0.0, 1.0))
    if bad.any():
        raise InvalidParameterError(MSG_LABEL.format(
            label=label, found=f"{int(bad.sum())} row(s) with another or a missing value"))
    return v.astype(bool)


def _summarize_frame(frame: pd.DataFrame, *, attributes: Sequence[str] = (),
                     features: Sequence[str] = (), label: str | None = None,
                     categorical: Sequence[str] = ()) -> Summary:
    """:func:`rwe.stats.summaries.summarize_arrays` of a plain table (no score histogram):
    numeric (or boolean) features keep their moments, others (and ``categorical``) their
    category counts, exactly as :func:`rwe.stats.summaries.summarize` does for an evaluation set."""
    feats: dict[str, Any] = {}
    for f in dict.fromkeys(features):
        col = frame[f]
        if f not in categorical and _is_numeric(col):
            feats[f] = col.to_numpy(dtype=np.float64, na_value=np.nan)
        elif isinstance(col.dtype, pd.CategoricalDtype):
            feats[f] = col
        else:
            feats[f] = col.astype("string")
    y = None if label is None else _binary_label(frame, label)
    return summarize_arrays(y_true=y, attributes={a: frame[a] for a in dict.fromkeys(attributes)},
                            features=feats)


@dataclass(frozen=True, eq=False)
class _Input:
    """The cohort as given: rows (EvaluationSet or DataFrame) or a summary, and its roles."""

    kind: str  # "evset", "frame" or "summary"
    obj: Any
    rows: pd.DataFrame | None
    label: str | None
    site: str | None
    equipment: str | None
    defaults: tuple[str, ...]
    source: str
    note: str | None = None  # why a dask-backed cohort has no rows

    def check_attributes(self, names: Sequence[str], what: str = "attribute") -> None:
        if self.kind != "summary":
            _check_columns(self.rows, names)
            return
        for a in names:
            if a not in self.obj.attributes:
                raise InvalidParameterError(MSG_SUMMARY_NAME.format(
                    what=what, name=a, kind="an attribute", which="cohort",
                    available=", ".join(map(repr, self.obj.attributes)) or "no attribute"))

    def check_covariates(self, names: Sequence[str]) -> None:
        if self.kind != "summary":
            _check_columns(self.rows, names, what="cohort")
            return
        have = [*self.obj.attributes, *self.obj.features]
        for c in names:
            if c not in have:
                raise InvalidParameterError(MSG_SUMMARY_NAME.format(
                    what="covariate", name=c, kind="an attribute or feature", which="cohort",
                    available=", ".join(map(repr, have)) or "nothing"))

    def summary(self, attributes: Sequence[str], features: Sequence[str]) -> Summary:
        """The cohort's summary with (at least) these attributes and features."""
        if self.kind == "summary":
            return self.obj
        attributes = list(dict.fromkeys(attributes))
        features = list(dict.fromkeys(features))
        if self.kind == "evset" and self.label == self.obj.roles.label:
            return summarize(self.obj, attributes=attributes, features=features, versions=[])
        return _summarize_frame(self.rows, attributes=attributes, features=features,
                                label=self.label)


def _as_input(data: Any, *, label: str | None, site: str | None,
              equipment: str | None) -> _Input:
    from rwe.data import EvaluationSet

    if not isinstance(data, (Summary, pd.DataFrame)) and callable(getattr(data, "summarize",
                                                                          None)):
        # a DaskEvaluationSet: its summary, made per partition, with the roles of its columns
        r = data.roles
        label, site, equipment = label or r.label, site or r.site, equipment or r.equipment
        note = data.rows_note
        out = _as_input(data.summarize(), label=label, site=site, equipment=equipment)
        return replace(out, note=note)
    if isinstance(data, EvaluationSet):
        r = data.roles
        return _Input("evset", data, data.frame, label or r.label, site or r.site,
                      equipment or r.equipment, tuple(r.attributes), data.source)
    if isinstance(data, Summary):
        if label is not None and data.events is None:
            raise InvalidParameterError(
                f"label={label!r} is given but the summary has no binary outcome")
        roles = {site, equipment}
        return _Input("summary", data, None, label, site, equipment,
                      tuple(a for a in data.attributes if a not in roles), "the summary")
    if isinstance(data, pd.DataFrame):
        return _Input("frame", data, data, label, site, equipment, (), "<DataFrame>")
    raise InvalidParameterError(
        "data must be an EvaluationSet, a Summary (rwe.stats.summaries.summarize) or a pandas DataFrame, got "
        f"{type(data).__name__}")


def _check_columns(frame: pd.DataFrame, names: Sequence[str], *, what: str = "attribute") -> None:
    for a in names:
        if a not in frame.columns:
            avail = ", ".join(map(repr, frame.columns))
            if what == "attribute":
                raise InvalidParameterError(MSG_NO_ATTRIBUTE.format(attribute=a, available=avail))
            raise InvalidParameterError(MSG_NO_COVARIATE.format(covariate=a, which=what,
                                                                available=avail))


def _as_reference(reference: Any) -> ReferencePopulation:
    if isinstance(reference, ReferencePopulation):
        return reference
    if isinstance(reference, Mapping):
        return ReferencePopulation.from_shares(reference)
    if isinstance(reference, (str, Path)):
        return load_reference(reference)
    raise InvalidParameterError(
        "reference must be a ReferencePopulation, a name in datasets/reference, a path or a "
        f"dict of shares, got {type(reference).__name__}")


def _as_rows(comparison: Any) -> pd.DataFrame | Summary | None:
    from rwe.data import EvaluationSet, read_table

    if comparison is None or isinstance(comparison, (pd.DataFrame, Summary)):
        return comparison
    if isinstance(comparison, EvaluationSet):
        return comparison.frame
    if isinstance(comparison, ReferencePopulation):
        if comparison.rows is None:
            raise InvalidParameterError(
                "comparison must hold individual rows; this ReferencePopulation has marginal "
                "shares only")
        return comparison.rows
    if isinstance(comparison, (str, Path)):
        return read_table(comparison)
    raise InvalidParameterError(
        "comparison must be a DataFrame, an EvaluationSet, a Summary, a ReferencePopulation "
        f"with rows or a path, got {type(comparison).__name__}")


# =========================================================================== summary counts
@dataclass(frozen=True, eq=False)
class _Counts:
    """One attribute of a summary: its categories, rows and events per category, missing."""

    categories: tuple[str, ...]
    n: np.ndarray
    events: np.ndarray | None
    missing: int

    @property
    def present(self) -> list[str]:
        return [c for c, k in zip(self.categories, self.n, strict=True) if k > 0]

    def n_of(self) -> dict[str, int]:
        return {c: int(k) for c, k in zip(self.categories, self.n, strict=True)}

    def events_of(self) -> dict[str, float] | None:
        if self.events is None:
            return None
        return {c: float(k) for c, k in zip(self.categories, self.events, strict=True)}


def _codes(summary: Summary, name: str) -> np.ndarray:
    return summary.cells.codes[:, summary.attributes.index(name)].astype(np.int64)


def _attribute_counts(summary: Summary, name: str) -> _Counts:
    j = summary.attributes.index(name)
    cats = summary.cells.categories[j]
    codes = _codes(summary, name)
    ok = codes >= 0
    n = np.bincount(codes[ok], weights=summary.n[ok], minlength=len(cats)).astype(np.int64)
    ev = None
    if summary.events is not None:
        ev = np.bincount(codes[ok], weights=summary.events[ok], minlength=len(cats))
    return _Counts(tuple(cats), n, ev, int(summary.n[~ok].sum()))


def _joint_counts(summary: Summary, attrs: Sequence[str], levels: Sequence[Sequence[str]]
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """Rows (and events) of every combination of ``levels`` of ``attrs`` (first attribute
    varying slowest); cells missing a component count in none."""
    shape = tuple(len(lv) for lv in levels)
    pos = []
    ok = np.ones(summary.cells.n_cells, dtype=bool)
    for a, lv in zip(attrs, levels, strict=True):
        cats = summary.cells.categories[summary.attributes.index(a)]
        index = {c: i for i, c in enumerate(lv)}
        lut = np.array([index.get(c, -1) for c in cats] + [-1], dtype=np.int64)
        p = lut[_codes(summary, a)]  # code -1 takes the appended -1
        ok &= p >= 0
        pos.append(p)
    size = math.prod(shape)
    if not ok.any() or size == 0:
        return np.zeros(size, np.int64), None if summary.events is None else np.zeros(size)
    flat = np.ravel_multi_index(tuple(p[ok] for p in pos), shape)
    n = np.bincount(flat, weights=summary.n[ok], minlength=size).astype(np.int64)
    ev = None if summary.events is None else np.bincount(flat, weights=summary.events[ok],
                                                         minlength=size)
    return n, ev


def _missing_per_cell(summary: Summary, variable: str) -> np.ndarray:
    """Rows per finest cell with ``variable`` missing (a feature or an attribute of the
    summary; anything else, e.g. the validated label, is never missing)."""
    f = summary.features.get(variable)
    if f is not None:
        return (f.missing if f.kind == "numeric" else f.counts[:, -1]).astype(np.int64)
    if variable in summary.attributes:
        return np.where(_codes(summary, variable) < 0, summary.n, 0).astype(np.int64)
    return np.zeros(summary.cells.n_cells, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class _Marginal:
    """A variable of one population for an SMD: numeric moments or category counts."""

    kind: str  # "numeric" or "categorical"
    n: int
    missing: int
    mean: float = math.nan
    sd: float = math.nan
    binary: bool = False
    categories: tuple[str, ...] = ()
    counts: np.ndarray | None = None


def _marginal(summary: Summary, name: str) -> _Marginal:
    f = summary.features.get(name)
    if f is not None and f.kind == "numeric":
        n, mean, sd, missing = f.pooled()
        binary = f.is_binary()
        if binary is None:  # a summary that does not record it: its values are unknown
            binary = False
        return _Marginal("numeric", int(n), missing, mean, sd, binary)
    if f is not None:
        counts = f.counts[:, :-1].sum(axis=0).astype(np.int64)
        return _Marginal("categorical", int(counts.sum()), int(f.counts[:, -1].sum()),
                         categories=tuple(f.categories), counts=counts)
    c = _attribute_counts(summary, name)
    return _Marginal("categorical", int(c.n.sum()), c.missing, categories=c.categories,
                     counts=c.n)


def _comparison_names(comp: pd.DataFrame | Summary) -> list[str]:
    if isinstance(comp, Summary):
        return [*comp.attributes, *comp.features]
    return list(comp.columns)


# =========================================================================== reference bands
def _parse_age_cuts(labels: Sequence[str]) -> list[float] | None:
    """Cut points from age-band labels ("<50", "50-64", "65+"), or None if not age bands."""
    cuts: set[float] = set()
    for lab in labels:
        m = _AGE_LABEL.match(str(lab))
        if not m:
            return None
        if m["lt"]:
            cuts.add(float(m["lt"]))
        elif m["plus"]:
            cuts.add(float(m["plus"]))
        else:
            cuts.add(float(m["a"]))
            cuts.add(float(m["b"]) + 1)
    return sorted(cuts) if cuts else None


def _align_age_bands(ref: ReferencePopulation, attribute: str, counts: _Counts,
                     notes: list[str], min_age: float | None = None) -> ReferencePopulation:
    """Derive the reference's ``attribute`` from its fine ``age`` groups when the cohort's
    categories are age bands (``age_band_labels`` format), restricted to ages >= ``min_age``
    (the intended-use minimum age) when it is given and otherwise over the reference's whole
    age range.

    The restriction is pre-specified, never inferred from the cohort: a rule that followed the
    youngest cohort row would compare a cohort lacking some ages with a reference lacking them
    too (the gap could never show), and one 18-year-old would keep ages 15-19 in the reference.

    Raises
    ------
    InvalidParameterError
        ``min_age`` falls inside a reference age group (the message names the boundaries).
    """
    if attribute in ref.shares or "age" not in ref.shares:
        return ref
    cuts = _parse_age_cuts(list(counts.categories) or counts.present)
    if not cuts:
        return ref
    if min_age is not None:
        try:
            ref.check_min_age(min_age)
        except ReferenceDataError as exc:
            raise InvalidParameterError(f"reference_min_age={min_age:g}: {exc}") from None
    try:
        new = ref.with_age_bands(cuts, source="age", name=attribute, min_age=min_age)
    except ReferenceDataError as exc:  # a cut inside a reference group: leave it unmatched
        notes.append(f"{attribute}: could not derive reference age bands ({exc})")
        return ref
    extra = (f", restricted to ages >= {min_age:g} (intended-use minimum age)"
             if min_age is not None else ", over all its ages (no intended-use minimum age "
             "given)")
    notes.append(f"{attribute}: reference shares derived from its 'age' groups with cuts "
                 f"{[int(c) if float(c).is_integer() else c for c in cuts]}{extra}")
    return new


def reference_scope(ref: ReferencePopulation, attribute: str,
                    min_age: float | None) -> dict[str, Any]:
    """How the population behind ``ref``'s shares of ``attribute`` relates to the intended use.

    Returns
    -------
    dict
        ``reference_ages`` (age range of the reference figures, e.g. ``"0+"``; None when the
        reference does not state it), ``intended_ages`` (``"40+"`` from the intended-use
        minimum age; None when not given), ``age_scope`` (``"matches"``; ``"wider"`` / ``"narrower"``
        when the reference starts at a younger / older age than the intended use;
        ``"intended use not stated"``; ``"reference ages not stated"``; None when neither is
        known) and ``reference_verified`` (whether the figures of ``attribute`` were checked
        against the published tables: :meth:`ReferencePopulation.verified_for`).
    """
    ages = ref.ages(attribute) if attribute in ref.shares else None
    intended = None if min_age is None else ages_label(min_age)
    if ages is None:
        scope = None if intended is None else "reference ages not stated"
    elif intended is None:
        scope = "intended use not stated"
    else:
        lo = parse_ages(ages)[0]
        scope = "matches" if lo == float(min_age) else ("wider" if lo < float(min_age)
                                                        else "narrower")
    return {"reference_ages": ages, "intended_ages": intended, "age_scope": scope,
            "reference_verified": ref.verified_for(attribute) if attribute in ref.shares
            else ref.verified}


# =========================================================================== shares + tests
def _attribute_shares(attribute: str, counts: _Counts, ref: ReferencePopulation,
                      level: float, band: tuple[float, float]) -> pd.DataFrame:
    proportion_ci, _ = _stats()
    n_missing = counts.missing
    in_ref = attribute in ref.shares
    ref_s = ref.share(attribute) if in_ref else pd.Series(dtype=float)
    cats = list(ref_s.index) + [c for c in counts.categories if c not in ref_s.index]
    have = counts.n_of()
    n = np.array([have.get(c, 0) for c in cats], dtype=np.int64)
    total = int(n.sum())
    rs = ref_s.reindex(cats).to_numpy(dtype=float)
    if total > 0:
        ci = proportion_ci(n, np.full(len(n), total), confidence_level=level, method="wilson")
        low, high = np.asarray(ci.low, dtype=float), np.asarray(ci.high, dtype=float)
        share = n / total
        method = ci.method
    else:
        low = high = share = np.full(len(n), np.nan)
        method = "wilson"
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = rs > 0
        ppr = np.where(ok, share / rs, np.nan)
        ppr_low = np.where(ok, low / rs, np.nan)
        ppr_high = np.where(ok, high / rs, np.nan)
    flag = np.where(ppr < band[0], FLAG_UNDER, np.where(ppr > band[1], FLAG_OVER, FLAG_ADEQUATE))
    flag = flag.astype(object)
    note = np.full(len(n), "", dtype=object)
    flag[np.isnan(rs)] = FLAG_NOT_IN_REFERENCE
    note[np.isnan(rs)] = ("attribute not in reference" if not in_ref
                          else "category not in reference: PPR undefined")
    zero = rs == 0
    flag[zero] = FLAG_ZERO_REFERENCE
    note[zero] = "reference share is 0: PPR undefined"
    absent = ok & (n == 0)
    flag[absent] = FLAG_ABSENT
    note[absent] = "no cohort row in this category (PPR 0)"
    if total == 0:
        flag[:] = FLAG_NO_DATA
        note[:] = "attribute missing for every row"
    if n_missing:
        note = np.array([f"{x}; " if x else "" for x in note], dtype=object) + \
            f"{n_missing} row(s) with missing {attribute} excluded"
    return pd.DataFrame({
        "attribute": attribute, "category": cats, "n": n, "cohort_share": share,
        "ci_low": low, "ci_high": high, "ci_level": level, "ci_method": method,
        "reference_share": rs, "reference_ages": ref.ages(attribute) if in_ref else None,
        "difference": share - rs, "ppr": ppr, "ppr_low": ppr_low,
        "ppr_high": ppr_high, "flag": flag, "note": note})


def _attribute_test(attribute: str, rows: pd.DataFrame) -> dict[str, Any]:
    """Chi-square goodness of fit (scipy.stats.chisquare) on categories with reference share
    > 0, and the total variation distance over all categories."""
    notes: list[str] = []
    use = rows["reference_share"].to_numpy(dtype=float) > 0
    obs = rows["n"].to_numpy(dtype=float)[use]
    ref = rows["reference_share"].to_numpy(dtype=float)[use]
    excluded = int(rows["n"].to_numpy()[~use].sum())
    if excluded:
        notes.append(f"{excluded} row(s) in categories without a positive reference share left "
                     "out of the chi-square test")
    chi2 = p = np.nan
    df = np.nan
    if obs.sum() > 0 and len(obs) >= 2:
        exp = obs.sum() * ref / ref.sum()
        res = _sps.chisquare(obs, exp)
        chi2, p, df = float(res.statistic), float(res.pvalue), len(obs) - 1
        small = int((exp < 5).sum())
        if small:
            notes.append(f"{small} categor{'y' if small == 1 else 'ies'} with expected count < 5:"
                         " chi-square approximation doubtful")
    cs = np.nan_to_num(rows["cohort_share"].to_numpy(dtype=float))
    rs = np.nan_to_num(rows["reference_share"].to_numpy(dtype=float))
    tvd = 0.5 * float(np.abs(cs - rs).sum()) if rows["n"].sum() > 0 else np.nan
    if not (rows["reference_share"].notna()).any():
        tvd = np.nan
        notes.append("attribute not in reference")
    return {"attribute": attribute, "n": int(rows["n"].sum()), "k": int(len(rows)),
            "chi2": chi2, "df": df, "pvalue": p, "tvd": tvd, "note": "; ".join(notes)}


# =========================================================================== SMD
def _smd_record(name, level, kind, na, nb, ma, mb, sda, sdb, miss_a, miss_b, val, threshold):
    return {"covariate": name, "level": level, "kind": kind, "n_a": na, "n_b": nb,
            "mean_a": ma, "mean_b": mb, "sd_a": sda, "sd_b": sdb, "missing_a": miss_a,
            "missing_b": miss_b, "smd": val,
            "abs_smd": abs(val) if np.isfinite(val) or np.isinf(val) else np.nan,
            "flag": ("imbalanced" if abs(val) > threshold else "balanced")
            if not np.isnan(val) else "not computable"}


def _covariate_rows(name: str, a: _Marginal, b: _Marginal, threshold: float,
                    notes: list[str] | None = None) -> list[dict]:
    """SMD rows of one covariate from the two populations' moments or category counts:
    one continuous or binary row (numeric) or one binary row per level (categorical)."""
    out = []
    if a.kind == "numeric" and b.kind == "numeric":
        binary = a.binary and b.binary
        kind = "binary" if binary else "continuous"
        level = "1" if binary else ""
        if a.n == 0 or b.n == 0:
            ma = a.mean if a.n else np.nan
            mb = b.mean if b.n else np.nan
            return [_smd_record(name, level, kind, a.n, b.n, ma, mb, np.nan, np.nan, a.missing,
                                b.missing, np.nan, threshold)]
        if binary:
            sda, sdb = math.sqrt(a.mean * (1 - a.mean)), math.sqrt(b.mean * (1 - b.mean))
            val = smd_from_summary(a.mean, b.mean, binary=True)
        else:
            sda = a.sd if a.n > 1 else np.nan
            sdb = b.sd if b.n > 1 else np.nan
            val = smd_from_summary(a.mean, b.mean, sd_a=sda, sd_b=sdb) if np.isfinite(
                sda) and np.isfinite(sdb) else np.nan
        return [_smd_record(name, level, kind, a.n, b.n, a.mean, b.mean, sda, sdb, a.missing,
                            b.missing, val, threshold)]
    if a.kind != b.kind:
        if notes is not None:
            notes.append(f"{name}: numeric in one population and categorical in the other; "
                         "no SMD computed")
        return [_smd_record(name, "", "not comparable", a.n, b.n, np.nan, np.nan, np.nan,
                            np.nan, a.missing, b.missing, np.nan, threshold)]
    ca = dict(zip(a.categories, a.counts, strict=True))
    cb = dict(zip(b.categories, b.counts, strict=True))
    for lev in dict.fromkeys((*a.categories, *b.categories)):
        ka, kb = int(ca.get(lev, 0)), int(cb.get(lev, 0))
        ma = ka / a.n if a.n else np.nan
        mb = kb / b.n if b.n else np.nan
        if a.n == 0 or b.n == 0:
            out.append(_smd_record(name, lev, "categorical level", a.n, b.n, ma, mb, np.nan,
                                   np.nan, a.missing, b.missing, np.nan, threshold))
            continue
        out.append(_smd_record(name, lev, "categorical level", a.n, b.n, ma, mb,
                               math.sqrt(ma * (1 - ma)), math.sqrt(mb * (1 - mb)), a.missing,
                               b.missing, smd_from_summary(ma, mb, binary=True), threshold))
    return out


def _smd_table(variables: Sequence[str], a: Summary, b: Summary, threshold: float,
               notes: list[str] | None = None) -> pd.DataFrame:
    rows: list[dict] = []
    for c in variables:
        rows.extend(_covariate_rows(c, _marginal(a, c), _marginal(b, c), threshold, notes))
    return pd.DataFrame(rows, columns=SMD_COLUMNS[1:])


def _population_summary(pop: pd.DataFrame | Summary, variables: Sequence[str],
                        cohort: Summary) -> Summary:
    """A comparison population as a summary of ``variables``: a summary is used as it is;
    rows are summarized with each variable of the kind it has in the cohort (a cohort
    attribute or categorical feature is counted by category in the population too)."""
    if isinstance(pop, Summary):
        return pop
    cat = [v for v in variables if _marginal(cohort, v).kind == "categorical"]
    return _summarize_frame(pop, features=variables, categorical=cat)


def compare_cohorts(a: Any, b: Any, covariates: Sequence[str], *, smd_threshold: float = 0.1
                    ) -> pd.DataFrame:
    """Standardised mean differences between two cohorts, one row per covariate (level).

    Use it for development vs evaluation data, site vs site, or cohort vs population rows
    (EVIDENCE.md REP-3). Numeric covariates give one continuous row; 0/1 or boolean covariates
    one binary row (``level = "1"``); categorical covariates one binary row per level
    (indicator of the level among non-missing values). Missing values are excluded and counted.
    A covariate numeric in one cohort and categorical in the other is counted by category in
    both.

    SMD definition (Austin 2009, average of the two variances; METHODS C5): continuous
    ``(x̄_a - x̄_b)/sqrt((s_a² + s_b²)/2)``, binary ``(p_a - p_b)/sqrt((p_a q_a + p_b q_b)/2)``;
    ``flag`` is ``"imbalanced"`` when ``|SMD| > smd_threshold``. Both cohorts are summarized
    first (:mod:`rwe.stats.summaries`): means and variances merged exactly over cells (Chan et
    al. 1983), proportions from counts, so two summaries give the same table as their rows.

    Parameters
    ----------
    a, b : EvaluationSet, pandas.DataFrame or Summary
        The two cohorts (SMD sign: ``a`` minus ``b``).
    covariates : sequence of str
        Columns present in both (attributes or features of a summary).
    smd_threshold : float
        Flag threshold (default 0.1).

    Returns
    -------
    pandas.DataFrame
        Columns ``covariate, level, kind, n_a, n_b, mean_a, mean_b, sd_a, sd_b, missing_a,
        missing_b, smd, abs_smd, flag``.

    References
    ----------
    .. [1] Austin PC. Balance diagnostics for comparing the distribution of baseline covariates
       between treatment groups in propensity-score matched samples. Stat Med.
       2009;28(25):3083-3107. doi:10.1002/sim.3697
    """
    fa = _as_rows(a)
    fb = _as_rows(b)
    if fa is None or fb is None:
        raise InvalidParameterError("compare_cohorts needs two cohorts, got None")
    covariates = _names(covariates)
    threshold = check_real(smd_threshold, "smd_threshold", low=0, low_inclusive=False)
    for which, f in (("first cohort", fa), ("second cohort", fb)):
        if isinstance(f, Summary):
            have = _comparison_names(f)
            for c in covariates:
                if c not in have:
                    raise InvalidParameterError(MSG_SUMMARY_NAME.format(
                        what="covariate", name=c, kind="an attribute or feature", which=which,
                        available=", ".join(map(repr, have)) or "nothing"))
        else:
            _check_columns(f, covariates, what=which)
    frames = [f for f in (fa, fb) if not isinstance(f, Summary)]
    cat = [c for c in covariates if not all(_is_numeric(f[c]) for f in frames)]
    sa = fa if isinstance(fa, Summary) else _summarize_frame(fa, features=covariates,
                                                             categorical=cat)
    sb = fb if isinstance(fb, Summary) else _summarize_frame(fb, features=covariates,
                                                             categorical=cat)
    return _smd_table(covariates, sa, sb, threshold)


def _reference_smd(shares: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Binary SMD of each category indicator: cohort share vs reference share."""
    d = shares[shares["reference_share"].notna() & shares["cohort_share"].notna()]
    if d.empty:
        return pd.DataFrame(columns=SMD_COLUMNS)
    pa = d["cohort_share"].to_numpy(dtype=float)
    pb = d["reference_share"].to_numpy(dtype=float)
    den = np.sqrt((pa * (1 - pa) + pb * (1 - pb)) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        val = np.where(den > 0, (pa - pb) / den, np.where(pa == pb, 0.0, np.sign(pa - pb) * np.inf))
    totals = shares.groupby("attribute")["n"].sum()
    return pd.DataFrame({
        "comparison": REFERENCE_SHARES, "covariate": d["attribute"].to_numpy(),
        "level": d["category"].to_numpy(), "kind": "categorical level",
        "n_a": d["attribute"].map(totals).to_numpy(), "n_b": np.nan, "mean_a": pa, "mean_b": pb,
        "sd_a": np.sqrt(pa * (1 - pa)), "sd_b": np.sqrt(pb * (1 - pb)), "missing_a": np.nan,
        "missing_b": np.nan, "smd": val, "abs_smd": np.abs(val),
        "flag": np.where(np.abs(val) > threshold, "imbalanced", "balanced")})


# =========================================================================== coverage
def _coverage(summary: Summary, counts: Mapping[str, _Counts], intersections: list[tuple],
              ref: ReferencePopulation, min_n: int) -> pd.DataFrame:
    parts = []
    for inter in intersections:
        levels = []
        for a in inter:
            cats = list(ref.share(a).index) if a in ref.shares else []
            cats += [c for c in counts[a].categories if c not in cats]
            levels.append(cats)
        combos = list(itertools.product(*levels))
        nv, ev = _joint_counts(summary, inter, levels)
        npos = ev.astype(float) if ev is not None else np.full(len(combos), np.nan)
        total = nv.sum()
        if all(a in ref.shares for a in inter):
            exp = np.ones(len(combos))
            for i, a in enumerate(inter):
                share = ref.shares[a]
                exp = exp * np.array([share.get(t[i], np.nan) for t in combos], dtype=float)
        else:
            exp = np.full(len(combos), np.nan)
        parts.append(pd.DataFrame({
            "intersection": " x ".join(inter), "cell": [" & ".join(map(str, t)) for t in combos],
            "row_level": pd.Index([t[0] for t in combos], dtype=object).astype(str),
            "col_level": [" & ".join(map(str, t[1:])) for t in combos],
            "n": nv, "n_positive": npos,
            "share": nv / total if total else np.nan, "expected_share": exp,
            "below_min_n": nv < min_n, "empty": nv == 0}))
    if not parts:
        return pd.DataFrame(columns=COVERAGE_COLUMNS)
    return pd.concat(parts, ignore_index=True)[COVERAGE_COLUMNS]


def _adequacy(shares: pd.DataFrame, coverage: pd.DataFrame, counts: Mapping[str, _Counts],
              attributes: list[str], has_label: bool, level: float,
              target_half_width: float | None, assumed_value: float) -> pd.DataFrame:
    _, ci_half_width_sample_size = _stats()
    recs = []
    for a in attributes:
        n = counts[a].n_of()
        pos = counts[a].events_of()
        for c in shares.loc[shares["attribute"] == a, "category"].tolist():
            recs.append((a, c, n.get(c, 0), pos.get(c, 0.0) if pos is not None else np.nan))
    df = pd.concat([pd.DataFrame(recs, columns=["grouping", "subgroup", "n", "n_positive"]),
                    pd.DataFrame({"grouping": coverage["intersection"].to_numpy(),
                                  "subgroup": coverage["cell"].to_numpy(),
                                  "n": coverage["n"].to_numpy(dtype=np.int64),
                                  "n_positive": coverage["n_positive"].to_numpy(dtype=float)})],
                   ignore_index=True)
    basis = "positives" if has_label else "all"
    df["basis"] = basis
    df["assumed_value"] = assumed_value
    df["target_half_width"] = np.nan if target_half_width is None else target_half_width
    if target_half_width is None:
        df["required"] = np.nan
        df["reached"] = pd.array([pd.NA] * len(df), dtype="boolean")
        df["shortfall"] = np.nan
    else:
        req = ci_half_width_sample_size(p=assumed_value, half_width=target_half_width,
                                        confidence_level=level, method="wilson")
        have = df["n_positive"] if has_label else df["n"].astype(float)
        df["required"] = int(req)
        df["reached"] = (have >= req).astype("boolean")
        df["shortfall"] = np.maximum(int(req) - have, 0)
    return df[ADEQUACY_COLUMNS]


def _labelled(summary: Summary, name: str) -> tuple[list[str], np.ndarray]:
    """Level label of every finest cell for ``name`` ("(missing)" when missing) and the
    distinct labels, sorted."""
    j = summary.attributes.index(name)
    labels = np.array([*summary.cells.categories[j], MISSING_LEVEL], dtype=object)
    per_cell = labels[_codes(summary, name)]  # code -1 takes the last label
    return sorted(set(per_cell[summary.n > 0].tolist())), per_cell


def _sites(summary: Summary, site: str | None, equipment: str | None) -> pd.DataFrame:
    total = summary.n_rows
    parts = []
    for lev, col in (("site", site), ("equipment", equipment)):
        if col is None:
            continue
        order, per_cell = _labelled(summary, col)
        n = np.array([int(summary.n[per_cell == v].sum()) for v in order], dtype=np.int64)
        parts.append(pd.DataFrame({"level": lev, "site": order if lev == "site" else None,
                                   "equipment": order if lev == "equipment" else None,
                                   "n": n, "share": n / total}))
    if site and equipment:
        s_order, s_cell = _labelled(summary, site)
        e_order, e_cell = _labelled(summary, equipment)
        pairs = list(itertools.product(s_order, e_order))
        n = np.array([int(summary.n[(s_cell == s) & (e_cell == e)].sum()) for s, e in pairs],
                     dtype=np.int64)
        parts.append(pd.DataFrame({"level": "site x equipment",
                                   "site": [s for s, _ in pairs],
                                   "equipment": [e for _, e in pairs],
                                   "n": n, "share": n / total}))
    if not parts:
        return pd.DataFrame(columns=SITE_COLUMNS)
    return pd.concat(parts, ignore_index=True)[SITE_COLUMNS]


def _missingness(summary: Summary, variables: list[str], groupings: list[str],
                 threshold: float) -> pd.DataFrame:
    """Missing values per variable, overall and per level of each grouping (levels sorted as
    text, levels without a row left out)."""
    total = summary.n_rows
    miss = {v: _missing_per_cell(summary, v) for v in variables}
    n_missing = np.array([int(miss[v].sum()) for v in variables], dtype=np.int64)
    recs = [pd.DataFrame({"variable": variables, "grouping": "(all)", "subgroup": "(all)",
                          "n": total, "n_missing": n_missing,
                          "fraction": n_missing / total if total else np.nan})]
    for g in groupings:
        j = summary.attributes.index(g)
        cats = summary.cells.categories[j]
        codes = _codes(summary, g)
        sizes = np.bincount(codes[codes >= 0], weights=summary.n[codes >= 0],
                            minlength=len(cats)).astype(np.int64)
        present = [k for k in range(len(cats)) if sizes[k] > 0]
        if not present:
            continue
        rows = []
        for k in sorted(present, key=lambda i: cats[i]):
            in_level = codes == k
            for v in variables:
                if v == g:
                    continue
                rows.append((v, g, cats[k], int(sizes[k]), int(miss[v][in_level].sum())))
        if not rows:
            continue
        long = pd.DataFrame(rows, columns=["variable", "grouping", "subgroup", "n", "n_missing"])
        long["fraction"] = long["n_missing"] / long["n"]
        recs.append(long)
    out = pd.concat(recs, ignore_index=True)
    out["flag"] = out["fraction"] >= threshold
    return out[MISSING_COLUMNS]


# =========================================================================== main entry
def assess_representativeness(
    data: Any,
    *,
    reference: Any,
    attributes: Sequence[str] | None = None,
    covariates: Sequence[str] | None = None,
    intersections: Sequence[Sequence[str]] | None = None,
    min_n: int = 30,
    ppr_band: tuple[float, float] = (0.8, 1.2),
    smd_threshold: float = 0.1,
    confidence_level: float = 0.95,
    target_half_width: float | None = None,
    assumed_value: float = 0.85,
    comparison: Any = None,
    missingness_threshold: float = 0.2,
    reference_min_age: float | None = None,
    development: Any = None,
    label: str | None = None,
    site: str | None = None,
    equipment: str | None = None,
) -> RepresentativenessResult:
    """Does the cohort look like the people the device is meant for, where is it thin, and is
    it big enough to say anything per subgroup? (EVIDENCE.md REP-1..REP-6)

    Per category of each attribute: the cohort share with its Wilson interval, the reference
    share, their difference and the participation-to-prevalence ratio PPR = cohort share /
    reference share with the interval (Wilson bounds / fixed reference share); the flag is
    ``"under-represented"`` below ``ppr_band[0]``, ``"over-represented"`` above ``ppr_band[1]``
    and ``"adequate"`` otherwise (point estimate, Scott et al. 2018). Categories the reference
    lacks are kept with flag ``"not in reference"``, reference categories with no cohort row
    with ``"absent from cohort"``; a zero reference share gives ``"PPR undefined"`` (never a
    silent drop or an unexplained inf). Missing attribute values are excluded from the shares
    (noted) and reported in ``missingness``.

    Per attribute: chi-square goodness of fit (``scipy.stats.chisquare``, counts vs
    n x reference share, categories with a positive reference share) and total variation
    distance ``0.5 Σ|cohort - reference|``. SMDs follow Austin (2009) with the average of the
    two variances. Tipton's B uses a logistic sampling-propensity model and the
    ``generalize::gen_index`` kernel estimator; it needs the rows of both populations
    (``comparison`` rows or a reference built with :meth:`ReferencePopulation.from_frame`)
    and is otherwise skipped with a stated reason.

    Parameters
    ----------
    data : EvaluationSet, Summary or pandas.DataFrame
        The cohort. An EvaluationSet or DataFrame is summarized first (:func:`rwe.stats.summaries.summarize`
        with the attributes, the intersections' attributes, site and equipment as grouping
        attributes and the covariates as features); a :class:`rwe.stats.summaries.Summary`
        (e.g. merged from sites) is used as it is and must hold those attributes and
        features. With a DataFrame, ``attributes`` is required and ``label``, ``site``,
        ``equipment`` name the optional role columns; with a Summary they name its site and
        equipment attributes and the label (a summary does not record column roles).
    reference : ReferencePopulation, str, path or dict
        Target population (name in ``datasets/reference``, CSV path, or shares).
    attributes : sequence of str, optional
        Categorical attributes (default: the EvaluationSet's attributes, or the summary's
        attributes other than site and equipment, that the reference defines). An age-band
        attribute missing from the reference is derived from the reference's 5-year ``age``
        groups when its labels are age bands (noted).
    covariates : sequence of str, optional
        Continuous, binary or categorical columns compared by SMD with the comparison or
        reference population.
    intersections : sequence of sequence of str, optional
        Attribute combinations for the coverage table (default: all pairs of ``attributes``).
    min_n : int
        Minimum cell size; smaller cells are flagged.
    ppr_band : (float, float)
        Adequate PPR range (default 0.8-1.2).
    smd_threshold : float
        |SMD| above which a covariate is flagged (default 0.1).
    confidence_level : float
        Level of the Wilson intervals and of the sample-size calculation.
    target_half_width : float, optional
        Target half-width of the primary metric's interval per subgroup (e.g. 0.05); without
        it the adequacy table lists counts only.
    assumed_value : float
        Assumed value of the primary metric (e.g. sensitivity 0.85) for the sample size.
    comparison : DataFrame, EvaluationSet, Summary, ReferencePopulation with rows or path
        Rows of another population the device is meant for (a registry extract, another
        site), summarized like the cohort: SMDs (``comparison = "comparison rows"``, check
        ``smd``); with rows on both sides also Tipton's B.
    missingness_threshold : float
        A variable missing for at least this fraction of a subgroup is a finding (default 0.2).
    reference_min_age : float, optional
        The intended-use minimum age (protocol ``population.min_age``; e.g. 40 for "adults 40
        and older"). Age bands derived from the reference's 5-year groups are restricted to
        ages >= this value, which must be a group boundary (a value inside a group, such as 18
        with a 15-19 group, is refused with the available boundaries). Every finding and PPR
        verdict on an attribute whose reference figures cover other ages (e.g. sex and race
        for all ages) says so. Default None: no restriction, and findings on a reference that
        states its ages say that no intended-use age was given. The restriction is never
        inferred from the cohort's ages.
    development : DataFrame, EvaluationSet, Summary, ReferencePopulation with rows or path
        Rows of the development (training) population (protocol ``data.reference_rows``).
        Compared like ``comparison`` with the same numbers, but reported as the *shift from
        the development population* (``comparison = "development population"``, check
        ``development_shift``, findings ``representativeness.development_shift`` and
        ``representativeness.development_generalizability``), separate from
        representativeness against the intended-use population. Give it or ``comparison``,
        not both.
    label, site, equipment : str, optional
        Role columns for a plain DataFrame or a Summary (override the EvaluationSet's roles).

    Returns
    -------
    RepresentativenessResult
        Tables, typed verdicts and findings; no patient row and, of the reference, only its
        metadata and shares.

    Raises
    ------
    InvalidParameterError
        Unknown attribute or covariate (the message names it and the available columns), bad
        ``ppr_band`` or levels.
    ReferenceDataError
        A malformed reference file.

    Notes
    -----
    *What is exact from a summary.* Shares, Wilson intervals, PPRs, chi-square tests and TVD,
    coverage, adequacy, site/equipment counts and missingness are counts of the summary's
    cells: a summary (or a merge of summaries of disjoint row sets) gives exactly the numbers
    of its rows. SMDs come from moments: categorical and binary covariates from counts
    (exact proportions), continuous ones from means and variances merged over cells (Chan et
    al. 1983), equal to the row-level values up to floating-point rounding (about 1e-15
    relative). Tipton's B needs individual rows of both populations (a sampling-propensity
    model on individual covariates): it is computed when both are given as rows, and from a
    summary it is not computed (``tipton_reason`` says so).

    *Verdicts* (``result.verdicts``, section ``"representativeness"``, kind ``"check"``, ids
    ``representativeness.check.<label>-<hash of the protocol content>``):

    - ``ppr.<attribute>`` (content: attribute, ppr_band, reference name): every category's
      PPR within the band; ``fail`` when a category is under-, over-represented or absent,
      ``not_evaluable`` when the reference does not define the attribute or no cohort row has
      a value (missing data never pass).
    - ``smd`` (content: smd_threshold, covariates): every |SMD| vs the comparison population
      at most the threshold; ``not_evaluable`` when an SMD cannot be computed and none
      exceeds it, or no variable is shared; ``not_evaluated`` without a comparison population
      (also when only the development population is given).
    - ``development_shift`` (content: smd_threshold, covariates), when ``development`` is
      given: the same rule vs the development population, reported as the shift from it.

    The PPR verdicts' content includes the intended-use minimum age when it is given, and
    their reasons (like the findings) state when the reference figures cover other ages than
    the intended use or were not verified against the published tables.
    - ``coverage`` (content: min_n, intersections), when intersections were analysed: every
      intersectional cell has at least ``min_n`` rows.
    - ``adequacy`` (content: target_half_width, assumed_value, confidence_level,
      attributes), when ``target_half_width`` is given: every subgroup reaches the required
      size.
    - ``missingness`` (content: missingness_threshold): no variable missing for at least the
      threshold, overall or in a subgroup.

    References
    ----------
    .. [1] Scott PE, Unger EF, Jenkins MR, et al. Participation of women in clinical trials
       supporting FDA approval of cardiovascular drugs. J Am Coll Cardiol. 2018;71(18):
       1960-1969. doi:10.1016/j.jacc.2018.02.070
    .. [2] Austin PC. Balance diagnostics for comparing the distribution of baseline covariates
       between treatment groups in propensity-score matched samples. Stat Med.
       2009;28(25):3083-3107. doi:10.1002/sim.3697
    .. [3] Tipton E. How generalizable is your experiment? An index for comparing experimental
       samples and populations. J Educ Behav Stat. 2014;39(6):478-501.
       doi:10.3102/1076998614558486
    .. [4] Wilson EB. Probable inference, the law of succession, and statistical inference.
       J Am Stat Assoc. 1927;22(158):209-212.
    .. [5] Chan TF, Golub GH, LeVeque RJ. Algorithms for computing the sample variance:
       analysis and recommendations. Am Stat 1983;37(3):242-247.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"sex": ["F"] * 71 + ["M"] * 42})
    >>> res = assess_representativeness(df, reference={"sex": {"F": 0.5, "M": 0.5}},
    ...                                 attributes=["sex"])
    >>> round(float(res.shares.loc[0, "ppr"]), 4), res.shares.loc[0, "flag"]
    (1.2566, 'over-represented')
    """
    level = check_level(confidence_level)
    min_n = check_int(min_n, "min_n", minimum=1)
    thr = check_real(smd_threshold, "smd_threshold", low=0, low_inclusive=False)
    assumed = check_real(assumed_value, "assumed_value", low=0, high=1, low_inclusive=False,
                         high_inclusive=False)
    miss_thr = check_real(missingness_threshold, "missingness_threshold", low=0, high=1,
                          low_inclusive=False)
    if target_half_width is not None:
        target_half_width = check_real(target_half_width, "target_half_width", low=0, high=0.5,
                                       low_inclusive=False, high_inclusive=False)
    try:
        band = (float(ppr_band[0]), float(ppr_band[1]))
        if len(ppr_band) != 2 or not 0 < band[0] < 1 < band[1]:
            raise ValueError
    except (TypeError, ValueError, IndexError):
        raise InvalidParameterError(MSG_PPR_BAND.format(value=ppr_band)) from None
    if reference_min_age is not None:
        reference_min_age = check_real(reference_min_age, "reference_min_age", low=0)
    if comparison is not None and development is not None:
        raise InvalidParameterError(MSG_TWO_POPULATIONS)

    cohort = _as_input(data, label=label, site=site, equipment=equipment)
    ref = _as_reference(reference)
    notes: list[str] = []
    if attributes is None:
        if not cohort.defaults:
            raise InvalidParameterError(MSG_FRAME_ATTRIBUTES)
        attrs = list(cohort.defaults)
    else:
        attrs = _names(attributes)
    cohort.check_attributes(attrs)
    if cohort.kind != "summary" and cohort.label is not None:
        _check_columns(cohort.rows, [cohort.label])
    for role, name in (("site", cohort.site), ("equipment", cohort.equipment)):
        if name is not None:
            cohort.check_attributes([name], what=role)
    covs = _names(covariates)
    cohort.check_covariates(covs)
    inters = None if intersections is None else [tuple(i) for i in intersections]
    for i in inters or []:
        cohort.check_attributes(list(i))
    roles = [c for c in (cohort.site, cohort.equipment) if c]
    cells = [*attrs, *(a for i in inters or [] for a in i), *roles]
    summary = cohort.summary(cells, covs)
    counts = {a: _attribute_counts(summary, a) for a in dict.fromkeys(cells)}

    for a in attrs:
        ref = _align_age_bands(ref, a, counts[a], notes, reference_min_age)
    if attributes is None:
        dropped = [a for a in attrs if a not in ref.shares]
        attrs = [a for a in attrs if a in ref.shares]
        if dropped:
            notes.append(f"attributes not in reference {ref.name!r} (no shares computed): "
                         f"{', '.join(dropped)}")
        if not attrs:
            raise InvalidParameterError(
                f"none of the attributes {list(cohort.defaults)} is in reference "
                f"{ref.name!r} (it defines {ref.attributes}); pass attributes= explicitly")
    if inters is None:
        inters = [tuple(p) for p in itertools.combinations(attrs, 2)]

    # shares, PPR and tests ------------------------------------------------------------
    shares = pd.concat([_attribute_shares(a, counts[a], ref, level, band) for a in attrs],
                       ignore_index=True)[SHARE_COLUMNS]
    tests = pd.DataFrame([_attribute_test(a, shares[shares["attribute"] == a]) for a in attrs],
                         columns=TEST_COLUMNS)
    tvd = tests["tvd"].to_numpy(dtype=float)
    tests = pd.concat([tests, pd.DataFrame([{
        "attribute": "overall", "n": summary.n_rows, "k": int(tests["k"].sum()),
        "chi2": np.nan, "df": np.nan, "pvalue": np.nan,
        "tvd": float(np.nanmax(tvd)) if np.isfinite(tvd).any() else np.nan,
        "note": "largest per-attribute TVD; the attributes describe the same people, so their "
                "chi-square tests are not combined"}])], ignore_index=True)

    # SMD ---------------------------------------------------------------------------------
    smd_parts = [_reference_smd(shares, thr)]
    role = "development" if development is not None else "comparison"
    comp = _as_rows(development if development is not None else comparison)
    pop, pop_name = (comp, DEVELOPMENT_POPULATION if role == "development" else
                     COMPARISON_ROWS) if comp is not None else (
        (ref.rows, f"reference rows ({ref.name})") if ref.rows is not None else (None, None))
    if pop is not None:
        have = _comparison_names(pop)
        smd_vars = [c for c in dict.fromkeys(covs + attrs) if c in have]
        lost = [c for c in covs if c not in have]
        if lost:
            notes.append(f"covariates not in the {pop_name}: {', '.join(lost)}")
        if smd_vars:
            t = _smd_table(smd_vars, summary, _population_summary(pop, smd_vars, summary), thr,
                           notes)
            t.insert(0, "comparison", pop_name)
            smd_parts.append(t)
    elif covs:
        notes.append("covariates given but no population rows to compare them with "
                     "(pass comparison= or a reference built from rows)")
    smd_df = pd.concat([p for p in smd_parts if len(p)], ignore_index=True) if any(
        len(p) for p in smd_parts) else pd.DataFrame(columns=SMD_COLUMNS)
    smd_df = smd_df[SMD_COLUMNS]

    # Tipton B (rows of both populations) -----------------------------------------------------
    tipton: TiptonResult | None = None
    reason: str | None = None
    rows_needed = ("it needs individual rows of both populations (a sampling-propensity model "
                   "on individual covariates) and the {which} was given as a summary")
    if pop is None:
        reason = (f"reference {ref.name!r} gives marginal shares only; Tipton's B needs "
                  "individual population rows (pass comparison= or a ReferencePopulation built "
                  "with from_frame)")
    elif cohort.rows is None:
        reason = rows_needed.format(which="cohort") + (f"; {cohort.note}" if cohort.note
                                                        else "")
    elif isinstance(pop, Summary):
        reason = rows_needed.format(which=pop_name if role == "development"
                                    else "comparison population")
    else:
        tcov = [c for c in dict.fromkeys(covs + attrs) if c in pop.columns]
        if not tcov:
            reason = f"no covariate is shared by the cohort and the {pop_name}"
        else:
            try:
                tipton = tipton_index(cohort.rows, pop, tcov)
            except InvalidParameterError as exc:
                reason = str(exc)

    # coverage, adequacy, sites, missingness -----------------------------------------------
    coverage = _coverage(summary, counts, inters, ref, min_n)
    adequacy = _adequacy(shares, coverage, counts, attrs, summary.events is not None, level,
                         target_half_width, assumed)
    sites = _sites(summary, cohort.site, cohort.equipment)
    variables = list(dict.fromkeys(
        attrs + covs + [c for c in (cohort.label, cohort.site, cohort.equipment) if c]))
    groupings = list(dict.fromkeys(attrs + roles))
    missingness = _missingness(summary, variables, groupings, miss_thr)

    params = {"ppr_band": band, "smd_threshold": thr, "confidence_level": level,
              "min_n": min_n, "target_half_width": target_half_width, "assumed_value": assumed,
              "missingness_threshold": miss_thr, "reference_min_age": reference_min_age}
    attrs_t, inters_t = tuple(attrs), tuple(inters)
    scope = {a: reference_scope(ref, a, reference_min_age) for a in attrs}
    ref_info = {"name": ref.name, "version": ref.metadata.get("version"),
                "verified": ref.verified, "verification": ref.metadata.get("verification"),
                "card": ref.metadata.get("card")}
    verdicts = build_verdicts(shares=shares, smd=smd_df, coverage=coverage, adequacy=adequacy,
                              missingness=missingness, attributes=attrs_t,
                              intersections=inters_t, covariates=tuple(covs),
                              reference=ref.name, comparison=pop_name, params=params,
                              scope=scope, comparison_role=role if pop is not None else None)
    findings = build_findings(shares=shares, tests=tests, smd=smd_df, tipton=tipton,
                              tipton_reason=reason, coverage=coverage, adequacy=adequacy,
                              sites=sites, missingness=missingness, attributes=attrs_t,
                              params=params, scope=scope, reference=ref_info,
                              comparison_role=role if pop is not None else None)
    return RepresentativenessResult(
        shares=shares, tests=tests, smd=smd_df, tipton=tipton, tipton_reason=reason,
        coverage=coverage, adequacy=adequacy, sites=sites, missingness=missingness,
        findings=findings, notes=notes, reference=replace(ref, rows=None), attributes=attrs_t,
        intersections=inters_t, n=summary.n_rows, parameters=params, verdicts=verdicts)


#: The implementation's name inside the package (``rwe.assess_representativeness`` is the
#: top-level name: a top-level function cannot share its name with the subpackage).
representativeness = assess_representativeness


def representativeness_from_protocol(protocol: Protocol | str | Path, data: Any = None,
                                     **overrides: Any) -> RepresentativenessResult:
    """Run :func:`assess_representativeness` with the settings a protocol pre-specifies.

    Uses ``population.reference`` (name or path relative to the protocol), ``population.
    attributes`` (else ``subgroups.attributes``), ``population.covariates``, ``ppr_band``,
    ``smd_threshold``, ``missingness_threshold``, ``min_age`` (the intended-use minimum age)
    and ``comparison`` (else ``data.reference_rows``, the development population, compared
    as the shift from it), ``subgroups.intersections`` and ``min_n``, and
    ``performance.confidence_level``, ``target_half_width`` and ``assumed_value``.

    Parameters
    ----------
    protocol : rwe.protocol.Protocol or path
    data : EvaluationSet, DaskEvaluationSet or Summary, optional
        Default: the protocol's data (:meth:`rwe.protocol.Protocol.open_data`: in memory, or
        with ``data.engine: dask`` in partitions on the cluster of ``data.dask``, started for
        this call and closed after it). With a summary (e.g. ``summarize(evset, protocol)``
        per site, merged), the label, site and equipment roles come from the protocol's
        ``data.columns``.
    **overrides
        Keyword arguments of :func:`assess_representativeness` that replace the protocol's.
    """
    if not hasattr(protocol, "population"):
        from rwe.protocol import load_protocol

        protocol = load_protocol(protocol)
    if data is not None:  # any protocol-like object (the plan's fields) will do
        return _from_protocol(protocol, data, overrides)
    with protocol.open_data() as data:
        return _from_protocol(protocol, data, overrides)


def _from_protocol(p: Protocol, data: Any, overrides: dict[str, Any]
                   ) -> RepresentativenessResult:
    pop = p.population
    if pop.reference is None:
        raise InvalidParameterError("protocol population.reference is not set")
    ref_arg: Any = p.reference_path() or pop.reference  # unknown name: load_reference says so
    comparison = development = None
    if "comparison" not in overrides and "development" not in overrides:
        if pop.comparison is not None:
            comparison = p.load_rows(pop.comparison)
        elif p.data.reference_rows is not None:
            development = p.load_reference_rows()
    attrs, _ = protocol_attributes(p)
    kwargs: dict[str, Any] = dict(
        reference=ref_arg, attributes=attrs, covariates=list(pop.covariates) or None,
        intersections=[list(i) for i in p.subgroups.intersections] or None,
        min_n=p.subgroups.min_n, ppr_band=tuple(pop.ppr_band), smd_threshold=pop.smd_threshold,
        confidence_level=p.performance.confidence_level,
        target_half_width=p.performance.target_half_width,
        assumed_value=p.performance.assumed_value, comparison=comparison,
        development=development, missingness_threshold=pop.missingness_threshold,
        reference_min_age=pop.min_age)
    if isinstance(data, Summary):
        c = p.data.columns
        kwargs.update(label=c.label if data.events is not None else None, site=c.site,
                      equipment=c.equipment)
    kwargs.update(overrides)
    return assess_representativeness(data, **kwargs)


def protocol_attributes(protocol: Protocol) -> tuple[list[str] | None, str]:
    """The attributes :func:`representativeness_from_protocol` compares with the reference and
    the protocol field they come from: ``population.attributes``, else
    ``subgroups.attributes``, else None (every attribute the reference defines)."""
    if protocol.population.attributes:
        return list(protocol.population.attributes), "population.attributes"
    if protocol.subgroups.attributes:
        return list(protocol.subgroups.attributes), "subgroups.attributes"
    return None, "population.attributes"


def unevaluable_attributes(data: Any, reference: Any, attributes: Sequence[str], *,
                           reference_min_age: float | None = None) -> dict[str, str]:
    """Attributes whose shares cannot be compared with the reference, each with its reason.

    An attribute is not evaluable when no cohort row has a value (every share row would be
    flagged ``"no data"``) or when the reference does not define it, after deriving age bands
    from the reference's 5-year ``age`` groups exactly as :func:`assess_representativeness`
    does (every row ``"not in reference"``). :func:`assess_representativeness` keeps such an
    attribute, with those flags, and its PPR verdict is ``not_evaluable`` (never ``pass``);
    ``rwe validate`` refuses the protocol.

    Parameters
    ----------
    data : EvaluationSet, Summary or pandas.DataFrame
        The cohort.
    reference : ReferencePopulation, str, path or dict
        As for :func:`assess_representativeness`.
    attributes : sequence of str
        The attributes to compare (columns of the cohort).
    reference_min_age : float, optional
        As for :func:`assess_representativeness`.

    Returns
    -------
    dict of str to str
        ``{attribute: reason}``, in the order of ``attributes``; empty when all can be compared.
    """
    cohort = _as_input(data, label=None, site=None, equipment=None)
    ref = _as_reference(reference)
    attrs = _names(attributes)
    cohort.check_attributes(attrs)
    summary = cohort.summary(attrs, [])
    out: dict[str, str] = {}
    for a in attrs:
        c = _attribute_counts(summary, a)
        if not c.n.sum():
            out[a] = f"no value in any of the {summary.n_rows:,} rows of {cohort.source}"
            continue
        notes: list[str] = []
        ref = _align_age_bands(ref, a, c, notes, reference_min_age)
        if a not in ref.shares:
            why = "; ".join(n for n in notes if n.startswith(f"{a}:"))
            out[a] = (f"reference {ref.name!r} does not define it (it defines "
                      f"{', '.join(ref.attributes)})" + (f"; {why}" if why else ""))
    return out


def unevaluable_from_protocol(protocol: Protocol, data: EvaluationSet | Summary
                              ) -> list[tuple[tuple[Any, ...], str]]:
    """:func:`unevaluable_attributes` for the attributes a protocol compares: one
    ``(field location, reason)`` per attribute, e.g. ``(("population", "attributes", 2),
    "...")``; empty when the protocol has no reference population. A ``population.min_age``
    inside a reference age group (e.g. 18 with a 15-19 group) while age bands are compared is
    reported instead, at ``("population", "min_age")``, with the available boundaries."""
    if protocol.population.reference is None:
        return []
    attrs, field_ = protocol_attributes(protocol)
    ref = protocol.reference_path() or protocol.population.reference
    min_age = protocol.population.min_age
    derived = protocol.derived_spec()
    if min_age is not None and any("cuts" in derived.get(a, {}) for a in attrs or derived):
        loaded = load_reference(ref)
        if "age" in loaded.shares:
            try:  # the age bands are restricted to it: it must start a reference age group
                loaded.check_min_age(min_age)
            except ReferenceDataError as exc:
                return [(("population", "min_age"), str(exc))]
    if attrs is None:
        return []
    bad = unevaluable_attributes(data, ref, attrs, reference_min_age=min_age)
    section, key = field_.split(".")
    return [((section, key, attrs.index(a)), f"attribute {a!r} cannot be compared with the "
             f"reference population: {why}") for a, why in bad.items()]
