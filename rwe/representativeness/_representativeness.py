"""Cohort vs target population: shares, PPR, goodness of fit, SMD, Tipton B, coverage,
sample-size adequacy, site/equipment coverage and missingness (EVIDENCE.md REP-1..REP-6)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats as _sps

from rwe._results import ResultMixin
from rwe._validation import check_int, check_level, check_real
from rwe.exceptions import InvalidParameterError
from rwe.representativeness._indices import (
    TiptonResult,
    smd_from_summary,
    tipton_index,
)
from rwe.representativeness._reference import ReferencePopulation, load_reference

if TYPE_CHECKING:  # pragma: no cover
    from rwe.data import EvaluationSet
    from rwe.protocol import Protocol

__all__ = [
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
]

FLAG_UNDER = "under-represented"
FLAG_ADEQUATE = "adequate"
FLAG_OVER = "over-represented"
FLAG_NOT_IN_REFERENCE = "not in reference"
FLAG_ABSENT = "absent from cohort"
FLAG_ZERO_REFERENCE = "PPR undefined"
FLAG_NO_DATA = "no data"

MSG_NO_ATTRIBUTE = "attribute {attribute!r} is not a column of the data; available columns: {available}"
MSG_NO_COVARIATE = ("covariate {covariate!r} is not a column of the {which}; available columns: "
                    "{available}")
MSG_FRAME_ATTRIBUTES = "attributes must be given when evset is a plain DataFrame"
MSG_PPR_BAND = "ppr_band must be (low, high) with 0 < low < 1 < high, got {value!r}"

SHARE_COLUMNS = ["attribute", "category", "n", "cohort_share", "ci_low", "ci_high", "ci_level",
                 "ci_method", "reference_share", "difference", "ppr", "ppr_low", "ppr_high",
                 "flag", "note"]
TEST_COLUMNS = ["attribute", "n", "k", "chi2", "df", "pvalue", "tvd", "note"]
SMD_COLUMNS = ["comparison", "covariate", "level", "kind", "n_a", "n_b", "mean_a", "mean_b",
               "sd_a", "sd_b", "missing_a", "missing_b", "smd", "abs_smd", "flag"]
COVERAGE_COLUMNS = ["intersection", "cell", "row_level", "col_level", "n", "n_positive",
                    "share", "expected_share", "below_min_n", "empty"]
ADEQUACY_COLUMNS = ["grouping", "subgroup", "n", "n_positive", "basis", "assumed_value",
                    "target_half_width", "required", "reached", "shortfall"]
SITE_COLUMNS = ["level", "site", "equipment", "n", "share"]
MISSING_COLUMNS = ["variable", "grouping", "subgroup", "n", "n_missing", "fraction", "flag"]

_AGE_LABEL = re.compile(r"^\s*(?:<(?P<lt>\d+(?:\.\d+)?)|(?P<a>\d+(?:\.\d+)?)-(?P<b>\d+(?:\.\d+)?)"
                        r"|(?P<plus>\d+(?:\.\d+)?)\+)\s*$")


# =========================================================================== helpers
def _stats():
    """rwe.stats primitives (imported lazily: written concurrently)."""
    from rwe.stats import ci_half_width_sample_size, proportion_ci

    return proportion_ci, ci_half_width_sample_size


def _pct(x: float, digits: int = 1) -> str:
    return "n/a" if not np.isfinite(x) else f"{100 * x:.{digits}f}%"


def _as_str_series(s: pd.Series) -> pd.Series:
    """Values as strings with missing kept as NA (category order kept when categorical)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        return s.cat.rename_categories([str(c) for c in s.cat.categories]).astype(object).where(
            s.notna(), None)
    return s.astype("string").astype(object).where(s.notna(), None)


def _categories(s: pd.Series) -> list[str]:
    if isinstance(s.dtype, pd.CategoricalDtype):
        return [str(c) for c in s.cat.categories]
    vals = pd.Series(s.dropna().astype(str).unique())
    return sorted(vals.tolist())


@dataclass(frozen=True)
class _Cohort:
    frame: pd.DataFrame
    label: str | None
    site: str | None
    equipment: str | None
    default_attributes: tuple[str, ...]
    source: str

    def column(self, name: str) -> pd.Series:
        return self.frame[name]


def _as_cohort(evset: Any, *, label: str | None, site: str | None,
               equipment: str | None) -> _Cohort:
    from rwe.data import EvaluationSet

    if isinstance(evset, EvaluationSet):
        r = evset.roles
        return _Cohort(evset.frame, label or r.label, site or r.site, equipment or r.equipment,
                       tuple(r.attributes), evset.source)
    if isinstance(evset, pd.DataFrame):
        return _Cohort(evset, label, site, equipment, (), "<DataFrame>")
    raise InvalidParameterError(
        f"evset must be an EvaluationSet or a pandas DataFrame, got {type(evset).__name__}")


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


def _as_rows(comparison: Any) -> pd.DataFrame | None:
    from rwe.data import EvaluationSet, read_table

    if comparison is None:
        return None
    if isinstance(comparison, pd.DataFrame):
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
        "comparison must be a DataFrame, an EvaluationSet, a ReferencePopulation with rows or a "
        f"path, got {type(comparison).__name__}")


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


def _align_age_bands(ref: ReferencePopulation, attribute: str, series: pd.Series,
                     notes: list[str], min_age_hint: float | None = None) -> ReferencePopulation:
    """Derive the reference's ``attribute`` from its fine ``age`` groups when the cohort's
    categories are age bands (``age_band_labels`` format)."""
    if attribute in ref.shares or "age" not in ref.shares:
        return ref
    present = series.dropna().astype(str).unique().tolist()
    cuts = _parse_age_cuts(_categories(series) or present)
    if not cuts:
        return ref
    below = [c for c in present if str(c).strip().startswith("<")]
    min_age = min_age_hint if min_age_hint is not None else (None if below else cuts[0])
    try:
        new = ref.with_age_bands(cuts, source="age", name=attribute, min_age=min_age)
    except Exception as exc:  # cut inside a reference group: leave the attribute unmatched
        notes.append(f"{attribute}: could not derive reference age bands ({exc})")
        return ref
    why = "reference_min_age" if min_age_hint is not None else "no cohort row below"
    extra = f", restricted to ages >= {min_age:g} ({why})" if min_age else ""
    notes.append(f"{attribute}: reference shares derived from its 'age' groups with cuts "
                 f"{[int(c) if float(c).is_integer() else c for c in cuts]}{extra}")
    return new


# =========================================================================== shares + tests
def _attribute_shares(attribute: str, series: pd.Series, ref: ReferencePopulation,
                      level: float, band: tuple[float, float]) -> pd.DataFrame:
    proportion_ci, _ = _stats()
    values = _as_str_series(series)
    n_missing = int(values.isna().sum())
    counts = values.dropna().value_counts()
    in_ref = attribute in ref.shares
    ref_s = ref.share(attribute) if in_ref else pd.Series(dtype=float)
    cats = list(ref_s.index) + [c for c in _categories(series) if c not in ref_s.index]
    cats += [c for c in counts.index if c not in cats]
    n = counts.reindex(cats, fill_value=0).to_numpy(dtype=np.int64)
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
        "reference_share": rs, "difference": share - rs, "ppr": ppr, "ppr_low": ppr_low,
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
def _covariate_rows(name: str, a: pd.Series, b: pd.Series, threshold: float) -> list[dict]:
    out = []
    miss_a, miss_b = int(a.isna().sum()), int(b.isna().sum())
    a_ok, b_ok = a.dropna(), b.dropna()
    numeric = all(pd.api.types.is_bool_dtype(s) or (
        pd.api.types.is_numeric_dtype(s) and not isinstance(s.dtype, pd.CategoricalDtype))
        for s in (a, b))
    if numeric:
        xa, xb = a_ok.to_numpy(dtype=float), b_ok.to_numpy(dtype=float)
        binary = (np.isin(np.unique(xa), [0, 1]).all() and np.isin(np.unique(xb), [0, 1]).all())
        items = [("1" if binary else "", xa, xb, "binary" if binary else "continuous")]
    else:
        levels = list(dict.fromkeys(_categories(a) + _categories(b)))
        # level indicators from one pass per cohort (codes of the string values in levels)
        ca = pd.Categorical(a_ok.astype(str), categories=levels).codes
        cb = pd.Categorical(b_ok.astype(str), categories=levels).codes
        items = [(lev, (ca == i).astype(float), (cb == i).astype(float), "categorical level")
                 for i, lev in enumerate(levels)]
    for level, xa, xb, kind in items:
        if len(xa) == 0 or len(xb) == 0:
            val = np.nan
            ma = float(xa.mean()) if len(xa) else np.nan
            mb = float(xb.mean()) if len(xb) else np.nan
            sda = sdb = np.nan
        else:
            ma, mb = float(xa.mean()), float(xb.mean())
            if kind == "continuous":
                sda = float(xa.std(ddof=1)) if len(xa) > 1 else np.nan
                sdb = float(xb.std(ddof=1)) if len(xb) > 1 else np.nan
                val = smd_from_summary(ma, mb, sd_a=sda, sd_b=sdb) if np.isfinite(
                    sda) and np.isfinite(sdb) else np.nan
            else:
                sda, sdb = np.sqrt(ma * (1 - ma)), np.sqrt(mb * (1 - mb))
                val = smd_from_summary(ma, mb, binary=True)
        out.append({"covariate": name, "level": level, "kind": kind, "n_a": len(xa),
                    "n_b": len(xb), "mean_a": ma, "mean_b": mb, "sd_a": sda, "sd_b": sdb,
                    "missing_a": miss_a, "missing_b": miss_b, "smd": val,
                    "abs_smd": abs(val) if np.isfinite(val) or np.isinf(val) else np.nan,
                    "flag": ("imbalanced" if abs(val) > threshold else "balanced")
                    if not np.isnan(val) else "not computable"})
    return out


def compare_cohorts(a: Any, b: Any, covariates: Sequence[str], *, smd_threshold: float = 0.1
                    ) -> pd.DataFrame:
    """Standardised mean differences between two cohorts, one row per covariate (level).

    Use it for development vs evaluation data, site vs site, or cohort vs population rows
    (EVIDENCE.md REP-3). Numeric covariates give one continuous row; 0/1 or boolean covariates
    one binary row (``level = "1"``); categorical covariates one binary row per level
    (indicator of the level among non-missing values). Missing values are excluded and counted.

    SMD definition (Austin 2009, average of the two variances; METHODS C5): continuous
    ``(x̄_a - x̄_b)/sqrt((s_a² + s_b²)/2)``, binary ``(p_a - p_b)/sqrt((p_a q_a + p_b q_b)/2)``;
    ``flag`` is ``"imbalanced"`` when ``|SMD| > smd_threshold``.

    Parameters
    ----------
    a, b : EvaluationSet or pandas.DataFrame
        The two cohorts (SMD sign: ``a`` minus ``b``).
    covariates : sequence of str
        Columns present in both.
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
    covariates = [covariates] if isinstance(covariates, str) else list(covariates)
    threshold = check_real(smd_threshold, "smd_threshold", low=0, low_inclusive=False)
    _check_columns(fa, covariates, what="first cohort")
    _check_columns(fb, covariates, what="second cohort")
    rows: list[dict] = []
    for c in covariates:
        rows.extend(_covariate_rows(c, fa[c], fb[c], threshold))
    return pd.DataFrame(rows, columns=SMD_COLUMNS[1:])


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
        "comparison": "reference shares", "covariate": d["attribute"].to_numpy(),
        "level": d["category"].to_numpy(), "kind": "categorical level",
        "n_a": d["attribute"].map(totals).to_numpy(), "n_b": np.nan, "mean_a": pa, "mean_b": pb,
        "sd_a": np.sqrt(pa * (1 - pa)), "sd_b": np.sqrt(pb * (1 - pb)), "missing_a": np.nan,
        "missing_b": np.nan, "smd": val, "abs_smd": np.abs(val),
        "flag": np.where(np.abs(val) > threshold, "imbalanced", "balanced")})


# =========================================================================== coverage
def _coverage(cohort: _Cohort, frame_str: dict[str, pd.Series], intersections: list[tuple],
              ref: ReferencePopulation, min_n: int) -> pd.DataFrame:
    y = cohort.frame[cohort.label].to_numpy(dtype=float) if cohort.label else None
    parts = []
    for inter in intersections:
        levels = []
        for a in inter:
            cats = list(ref.share(a).index) if a in ref.shares else []
            cats += [c for c in _categories(frame_str[a]) if c not in cats]
            levels.append(cats)
        idx = pd.MultiIndex.from_product(levels, names=list(inter))
        df = pd.DataFrame({a: frame_str[a] for a in inter})
        complete = df.notna().all(axis=1).to_numpy()
        keys = [df[a].to_numpy()[complete] for a in inter]
        g = pd.Series(1, index=pd.MultiIndex.from_arrays(keys, names=list(inter)))
        n = g.groupby(level=list(range(len(inter)))).sum().reindex(idx, fill_value=0)
        if y is not None:
            pos = pd.Series(y[complete], index=g.index).groupby(
                level=list(range(len(inter)))).sum().reindex(idx, fill_value=0)
            npos = pos.to_numpy(dtype=float)
        else:
            npos = np.full(len(idx), np.nan)
        total = n.sum()
        exp = np.ones(len(idx))
        if all(a in ref.shares for a in inter):
            for i, a in enumerate(inter):
                exp = exp * ref.share(a).reindex(idx.get_level_values(i)).to_numpy(dtype=float)
        else:
            exp = np.full(len(idx), np.nan)
        cells = [" & ".join(map(str, t)) for t in idx]
        nv = n.to_numpy(dtype=np.int64)
        parts.append(pd.DataFrame({
            "intersection": " x ".join(inter), "cell": cells,
            "row_level": idx.get_level_values(0).astype(str),
            "col_level": [" & ".join(map(str, t[1:])) for t in idx],
            "n": nv, "n_positive": npos,
            "share": nv / total if total else np.nan, "expected_share": exp,
            "below_min_n": nv < min_n, "empty": nv == 0}))
    if not parts:
        return pd.DataFrame(columns=COVERAGE_COLUMNS)
    return pd.concat(parts, ignore_index=True)[COVERAGE_COLUMNS]


def _adequacy(shares: pd.DataFrame, coverage: pd.DataFrame, cohort: _Cohort,
              frame_str: dict[str, pd.Series], attributes: list[str], level: float,
              target_half_width: float | None, assumed_value: float) -> pd.DataFrame:
    _, ci_half_width_sample_size = _stats()
    y = cohort.frame[cohort.label].to_numpy(dtype=float) if cohort.label else None
    recs = []
    for a in attributes:
        s = frame_str[a]
        ok = s.notna().to_numpy()
        n = s[ok].value_counts()
        cats = shares.loc[shares["attribute"] == a, "category"].tolist()
        n = n.reindex(cats, fill_value=0)
        if y is not None:
            pos = pd.Series(y[ok], index=s[ok].to_numpy()).groupby(level=0).sum().reindex(
                cats, fill_value=0)
        for c in cats:
            recs.append((a, c, int(n[c]), float(pos[c]) if y is not None else np.nan))
    df = pd.concat([pd.DataFrame(recs, columns=["grouping", "subgroup", "n", "n_positive"]),
                    pd.DataFrame({"grouping": coverage["intersection"].to_numpy(),
                                  "subgroup": coverage["cell"].to_numpy(),
                                  "n": coverage["n"].to_numpy(dtype=np.int64),
                                  "n_positive": coverage["n_positive"].to_numpy(dtype=float)})],
                   ignore_index=True)
    basis = "positives" if y is not None else "all"
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
        have = df["n_positive"] if y is not None else df["n"].astype(float)
        df["required"] = int(req)
        df["reached"] = (have >= req).astype("boolean")
        df["shortfall"] = np.maximum(int(req) - have, 0)
    return df[ADEQUACY_COLUMNS]


def _sites(cohort: _Cohort) -> pd.DataFrame:
    f = cohort.frame
    parts = []
    total = len(f)
    for lev, col in (("site", cohort.site), ("equipment", cohort.equipment)):
        if col is None:
            continue
        vc = _as_str_series(f[col]).fillna("(missing)").value_counts().sort_index()
        parts.append(pd.DataFrame({"level": lev, "site": vc.index if lev == "site" else None,
                                   "equipment": vc.index if lev == "equipment" else None,
                                   "n": vc.to_numpy(), "share": vc.to_numpy() / total}))
    if cohort.site and cohort.equipment:
        s = _as_str_series(f[cohort.site]).fillna("(missing)")
        e = _as_str_series(f[cohort.equipment]).fillna("(missing)")
        ct = pd.crosstab(s, e).stack()
        parts.append(pd.DataFrame({"level": "site x equipment",
                                   "site": ct.index.get_level_values(0),
                                   "equipment": ct.index.get_level_values(1),
                                   "n": ct.to_numpy(), "share": ct.to_numpy() / total}))
    if not parts:
        return pd.DataFrame(columns=SITE_COLUMNS)
    return pd.concat(parts, ignore_index=True)[SITE_COLUMNS]


def _missingness(cohort: _Cohort, variables: list[str], groupings: list[str],
                 threshold: float) -> pd.DataFrame:
    f = cohort.frame
    miss = f[variables].isna()
    recs = [pd.DataFrame({"variable": variables, "grouping": "(all)", "subgroup": "(all)",
                          "n": len(f), "n_missing": miss.sum().to_numpy(),
                          "fraction": miss.mean().to_numpy() if len(f) else np.nan})]
    for g in groupings:
        key = _as_str_series(f[g])
        ok = key.notna().to_numpy()
        if not ok.any():
            continue
        m = miss.loc[ok]
        grp = m.groupby(key[ok].to_numpy())
        cnt = grp.sum()
        size = grp.size()
        long = cnt.stack().rename("n_missing").reset_index()
        long.columns = ["subgroup", "variable", "n_missing"]
        long["n"] = long["subgroup"].map(size).to_numpy()
        long["fraction"] = long["n_missing"] / long["n"]
        long["grouping"] = g
        recs.append(long[long["variable"] != g])
    out = pd.concat(recs, ignore_index=True)
    out["flag"] = out["fraction"] >= threshold
    return out[MISSING_COLUMNS]


# =========================================================================== result
@dataclass(frozen=True)
class RepresentativenessResult(ResultMixin):
    """Representativeness of a cohort with respect to a reference population (REP-1..REP-6).

    Attributes
    ----------
    shares : pandas.DataFrame
        One row per attribute x category: ``n, cohort_share, ci_low, ci_high, ci_level,
        ci_method, reference_share, difference, ppr, ppr_low, ppr_high, flag, note``.
    tests : pandas.DataFrame
        Per attribute: chi-square goodness of fit (``chi2, df, pvalue``) and total variation
        distance ``tvd``; a last row ``"overall"`` gives the largest TVD.
    smd : pandas.DataFrame
        Standardised mean differences (cohort = ``a``) vs the reference shares and vs the
        comparison / reference rows.
    tipton : TiptonResult or None
        Tipton's generalizability index, None when no population rows exist.
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
    findings : list of str
        Plain-language findings (REP-6 data gaps statement).
    notes : list of str
        Methodological notes (derived reference bands, exclusions).
    reference : ReferencePopulation
        The reference used.
    attributes : tuple of str
    intersections : tuple of tuple of str
    n : int
        Cohort rows.
    parameters : dict
        ppr_band, smd_threshold, confidence_level, min_n, target_half_width, assumed_value,
        missingness_threshold.
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
    findings: list[str]
    notes: list[str]
    reference: ReferencePopulation
    attributes: tuple[str, ...]
    intersections: tuple[tuple[str, ...], ...]
    n: int
    parameters: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """The shares table (tidy, stable columns)."""
        return self.shares

    @property
    def site_equipment_matrix(self) -> pd.DataFrame:
        """Site x equipment counts as a wide table (empty when either role is missing)."""
        d = self.sites[self.sites["level"] == "site x equipment"]
        if d.empty:
            return pd.DataFrame()
        return d.pivot(index="site", columns="equipment", values="n")

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
        lines.append("\nFindings:")
        lines.extend(f"- {f}" for f in self.findings)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        items = "".join(f"<li>{f}</li>" for f in self.findings)
        return (f"<p><b>Representativeness</b> of {self.n} rows vs reference "
                f"<code>{self.reference.name}</code></p><ul>{items}</ul>"
                + ResultMixin._repr_html_(self))

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


# =========================================================================== findings
def _findings(shares, tests, smd_df, tipton, tipton_reason, coverage, adequacy, sites,
              missingness, params) -> list[str]:
    out: list[str] = []
    lvl = int(round(params["confidence_level"] * 100))
    for _, r in shares.iterrows():
        cat, attr = r["category"], r["attribute"]
        if r["flag"] in (FLAG_UNDER, FLAG_OVER):
            out.append(f"{cat} ({attr}): {_pct(r['cohort_share'])} of cohort (n={r['n']}; {lvl}% "
                       f"CI {_pct(r['ci_low'])}-{_pct(r['ci_high'])}) vs "
                       f"{_pct(r['reference_share'])} of reference, PPR {r['ppr']:.2f} "
                       f"({r['ppr_low']:.2f}-{r['ppr_high']:.2f}), {r['flag']}")
        elif r["flag"] == FLAG_ABSENT:
            out.append(f"{cat} ({attr}): absent from cohort (0 rows) although "
                       f"{_pct(r['reference_share'])} of reference")
        elif r["flag"] == FLAG_NOT_IN_REFERENCE and r["n"] > 0:
            out.append(f"{cat} ({attr}): {r['n']} cohort row(s) in a category the reference "
                       f"does not define ({r['note'].split(';')[0]})")
        elif r["flag"] == FLAG_ZERO_REFERENCE and r["n"] > 0:
            out.append(f"{cat} ({attr}): {r['n']} cohort row(s) but reference share 0: PPR "
                       "undefined")
    for attr, d in shares.groupby("attribute", sort=False):
        if len(d) and d["flag"].eq(FLAG_NO_DATA).all():
            out.append(f"{attr}: missing for every cohort row; its representativeness cannot "
                       "be evaluated")
    for _, r in tests.iterrows():
        if r["attribute"] == "overall" or not np.isfinite(r["pvalue"]):
            continue
        if r["pvalue"] < 0.05:
            ptxt = "< 0.001" if r["pvalue"] < 1e-3 else f"= {r['pvalue']:.3f}"
            out.append(f"{r['attribute']}: cohort distribution differs from reference "
                       f"(total variation distance {r['tvd']:.3f}; chi-square({int(r['df'])}) = "
                       f"{r['chi2']:.1f}, p {ptxt})")
    thr = params["smd_threshold"]
    for _, r in smd_df[smd_df["flag"] == "imbalanced"].iterrows():
        if r["comparison"] == "reference shares":
            continue  # already reported through the PPR
        lev = f" = {r['level']}" if r["kind"] == "categorical level" else ""
        out.append(f"{r['covariate']}{lev}: SMD {r['smd']:.2f} vs {r['comparison']} "
                   f"(|SMD| > {thr:g})")
    if tipton is not None:
        out.append(f"Generalizability index B = {tipton.b:.3f} vs the comparison population "
                   f"({tipton.interpretation})")
    elif tipton_reason:
        out.append(f"Tipton's generalizability index not computed: {tipton_reason}")
    for inter, g in coverage.groupby("intersection", sort=False):
        small = int(g["below_min_n"].sum())
        empty = int(g["empty"].sum())
        if small:
            worst = g[g["below_min_n"]].nsmallest(3, "n")
            cells = ", ".join(f"{c} (n={n})" for c, n in zip(worst["cell"], worst["n"],
                                                           strict=True))
            out.append(f"{inter}: {small} of {len(g)} intersectional cells have fewer than "
                       f"{params['min_n']} rows ({empty} empty), e.g. {cells}")
    if params["target_half_width"] is not None and len(adequacy):
        short = adequacy[~adequacy["reached"].fillna(True).astype(bool)]
        single = short[~short["grouping"].str.contains(" x ", regex=False)]
        inter = short[short["grouping"].str.contains(" x ", regex=False)]
        basis = adequacy["basis"].iloc[0]
        req = int(adequacy["required"].iloc[0])
        have_col = "n_positive" if basis == "positives" else "n"
        if len(single):
            listed = ", ".join(f"{s} ({int(h)})" for s, h in list(zip(
                single["subgroup"], single[have_col], strict=True))[:8])
            more = f" and {len(single) - 8} more" if len(single) > 8 else ""
            out.append(f"{len(single)} subgroup(s) have fewer than the {req} {basis} needed for "
                       f"a ±{params['target_half_width']:g} {lvl}% interval at an assumed value "
                       f"of {params['assumed_value']:g}: {listed}{more}")
        if len(inter):
            out.append(f"{len(inter)} of {int(adequacy['grouping'].str.contains(' x ', regex=False).sum())} "
                       f"intersectional cells have fewer than the {req} {basis} needed")
    if len(sites):
        ns = int((sites["level"] == "site").sum())
        ne = int((sites["level"] == "equipment").sum())
        if ns:
            out.append(f"{ns} site(s)" + (f", {ne} equipment type(s)" if ne else ""))
        sxe = sites[(sites["level"] == "site x equipment") & (sites["n"] == 0)]
        if len(sxe):
            out.append(f"{len(sxe)} site x equipment combination(s) have no rows: "
                       + ", ".join(f"{s} / {e}" for s, e in zip(sxe["site"], sxe["equipment"],
                                                               strict=True)))
    thr_m = params["missingness_threshold"]
    overall = missingness[missingness["grouping"] == "(all)"].set_index("variable")
    for var in dict.fromkeys(missingness["variable"]):
        o = overall.loc[var]
        sub = missingness[(missingness["variable"] == var) & (missingness["grouping"] != "(all)")
                          & missingness["flag"]].sort_values("fraction", ascending=False)
        if bool(o["flag"]):
            out.append(f"{var} missing for {_pct(o['fraction'])} of rows overall "
                       f"({int(o['n_missing'])}/{int(o['n'])}; threshold {thr_m:.0%})")
        elif len(sub):
            worst = ", ".join(f"{g} = {c} ({_pct(f)}, {int(m)}/{int(n)})" for g, c, f, m, n in
                              list(zip(sub["grouping"], sub["subgroup"], sub["fraction"],
                                       sub["n_missing"], sub["n"], strict=True))[:5])
            more = f" and {len(sub) - 5} more" if len(sub) > 5 else ""
            out.append(f"{var} missing for at least {thr_m:.0%} of rows in {len(sub)} "
                       f"subgroup(s) although {_pct(o['fraction'])} overall: {worst}{more}")
    return out


# =========================================================================== main entry
def representativeness(
    evset: Any,
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
    ``generalize::gen_index`` kernel estimator; it needs population rows (``comparison`` or a
    reference built with :meth:`ReferencePopulation.from_frame`) and is otherwise skipped with
    a stated reason.

    Parameters
    ----------
    evset : EvaluationSet or pandas.DataFrame
        The cohort. With a DataFrame, ``attributes`` is required and ``label``, ``site``,
        ``equipment`` name the optional role columns.
    reference : ReferencePopulation, str, path or dict
        Target population (name in ``datasets/reference``, CSV path, or shares).
    attributes : sequence of str, optional
        Categorical attributes (default: the EvaluationSet's attributes the reference defines).
        An age-band attribute missing from the reference is derived from the reference's
        5-year ``age`` groups when its labels are age bands (noted).
    covariates : sequence of str, optional
        Continuous or binary columns compared by SMD with the comparison/reference rows.
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
    comparison : DataFrame, EvaluationSet, ReferencePopulation with rows or path, optional
        Individual rows of a comparison population (e.g. the training snapshot): SMDs and
        Tipton's B.
    missingness_threshold : float
        A variable missing for at least this fraction of a subgroup is a finding (default 0.2).
    reference_min_age : float, optional
        When age bands are derived from the reference's 5-year groups, restrict the reference
        to ages >= this value (a group boundary, e.g. the intended-use minimum age). Default:
        the first cut when no cohort row lies below it, else no restriction.
    label, site, equipment : str, optional
        Role columns for a plain DataFrame (override the EvaluationSet's roles).

    Returns
    -------
    RepresentativenessResult

    Raises
    ------
    InvalidParameterError
        Unknown attribute or covariate (the message names it and the available columns), bad
        ``ppr_band`` or levels.
    ReferenceDataError
        A malformed reference file.

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

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"sex": ["F"] * 71 + ["M"] * 42})
    >>> res = representativeness(df, reference={"sex": {"F": 0.5, "M": 0.5}}, attributes=["sex"])
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

    cohort = _as_cohort(evset, label=label, site=site, equipment=equipment)
    ref = _as_reference(reference)
    notes: list[str] = []
    if attributes is None:
        if not cohort.default_attributes:
            raise InvalidParameterError(MSG_FRAME_ATTRIBUTES)
        attrs = list(cohort.default_attributes)
    else:
        attrs = [attributes] if isinstance(attributes, str) else list(attributes)
    _check_columns(cohort.frame, attrs)
    for role in (cohort.label, cohort.site, cohort.equipment):
        if role is not None:
            _check_columns(cohort.frame, [role])
    frame_str = {a: cohort.frame[a] for a in attrs}
    if reference_min_age is not None:
        reference_min_age = check_real(reference_min_age, "reference_min_age", low=0)
    for a in attrs:
        ref = _align_age_bands(ref, a, frame_str[a], notes, reference_min_age)
    if attributes is None:
        dropped = [a for a in attrs if a not in ref.shares]
        attrs = [a for a in attrs if a in ref.shares]
        if dropped:
            notes.append(f"attributes not in reference {ref.name!r} (no shares computed): "
                         f"{', '.join(dropped)}")
        if not attrs:
            raise InvalidParameterError(
                f"none of the attributes {list(cohort.default_attributes)} is in reference "
                f"{ref.name!r} (it defines {ref.attributes}); pass attributes= explicitly")
    covs = [] if covariates is None else ([covariates] if isinstance(covariates, str)
                                          else list(covariates))
    _check_columns(cohort.frame, covs, what="cohort")
    if intersections is None:
        inters = [tuple(p) for p in itertools.combinations(attrs, 2)]
    else:
        inters = [tuple(i) for i in intersections]
        for i in inters:
            _check_columns(cohort.frame, list(i))
            for a in i:
                if a not in frame_str:
                    frame_str[a] = cohort.frame[a]

    # shares, PPR and tests ------------------------------------------------------------
    shares = pd.concat([_attribute_shares(a, frame_str[a], ref, level, band) for a in attrs],
                       ignore_index=True)[SHARE_COLUMNS]
    tests = pd.DataFrame([_attribute_test(a, shares[shares["attribute"] == a]) for a in attrs],
                         columns=TEST_COLUMNS)
    tvd = tests["tvd"].to_numpy(dtype=float)
    tests = pd.concat([tests, pd.DataFrame([{
        "attribute": "overall", "n": len(cohort.frame), "k": int(tests["k"].sum()),
        "chi2": np.nan, "df": np.nan, "pvalue": np.nan,
        "tvd": float(np.nanmax(tvd)) if np.isfinite(tvd).any() else np.nan,
        "note": "largest per-attribute TVD; the attributes describe the same people, so their "
                "chi-square tests are not combined"}])], ignore_index=True)

    # SMD ---------------------------------------------------------------------------------
    smd_parts = [_reference_smd(shares, thr)]
    comp_rows = _as_rows(comparison)
    pop_rows, pop_name = (comp_rows, "comparison rows") if comp_rows is not None else (
        (ref.rows, f"reference rows ({ref.name})") if ref.rows is not None else (None, None))
    if pop_rows is not None:
        smd_vars = [c for c in covs + attrs if c in pop_rows.columns]
        lost = [c for c in covs if c not in pop_rows.columns]
        if lost:
            notes.append(f"covariates not in the {pop_name}: {', '.join(lost)}")
        if smd_vars:
            t = compare_cohorts(cohort.frame, pop_rows, smd_vars, smd_threshold=thr)
            t.insert(0, "comparison", pop_name)
            smd_parts.append(t)
    elif covs:
        notes.append("covariates given but no population rows to compare them with "
                     "(pass comparison= or a reference built from rows)")
    smd_df = pd.concat([p for p in smd_parts if len(p)], ignore_index=True) if any(
        len(p) for p in smd_parts) else pd.DataFrame(columns=SMD_COLUMNS)
    smd_df = smd_df[SMD_COLUMNS]

    # Tipton B -----------------------------------------------------------------------------
    tipton: TiptonResult | None = None
    reason: str | None = None
    if pop_rows is None:
        reason = (f"reference {ref.name!r} gives marginal shares only; Tipton's B needs "
                  "individual population rows (pass comparison= or a ReferencePopulation built "
                  "with from_frame)")
    else:
        tcov = [c for c in covs + attrs if c in pop_rows.columns]
        if not tcov:
            reason = f"no covariate is shared by the cohort and the {pop_name}"
        else:
            try:
                tipton = tipton_index(cohort.frame, pop_rows, tcov)
            except InvalidParameterError as exc:
                reason = str(exc)

    # coverage, adequacy, sites, missingness -----------------------------------------------
    coverage = _coverage(cohort, frame_str, inters, ref, min_n)
    adequacy = _adequacy(shares, coverage, cohort, frame_str, attrs, level, target_half_width,
                         assumed)
    sites = _sites(cohort)
    variables = list(dict.fromkeys(
        attrs + covs + [c for c in (cohort.label, cohort.site, cohort.equipment) if c]))
    groupings = list(dict.fromkeys(attrs + [c for c in (cohort.site, cohort.equipment) if c]))
    missingness = _missingness(cohort, variables, groupings, miss_thr)

    params = {"ppr_band": band, "smd_threshold": thr, "confidence_level": level,
              "min_n": min_n, "target_half_width": target_half_width, "assumed_value": assumed,
              "missingness_threshold": miss_thr}
    findings = _findings(shares, tests, smd_df, tipton, reason, coverage, adequacy, sites,
                         missingness, params)
    return RepresentativenessResult(
        shares=shares, tests=tests, smd=smd_df, tipton=tipton, tipton_reason=reason,
        coverage=coverage, adequacy=adequacy, sites=sites, missingness=missingness,
        findings=findings, notes=notes, reference=ref, attributes=tuple(attrs),
        intersections=tuple(inters), n=len(cohort.frame), parameters=params)


def representativeness_from_protocol(protocol: Protocol | str | Path,
                                     evset: EvaluationSet | None = None
                                     ) -> RepresentativenessResult:
    """Run :func:`representativeness` with the settings a protocol pre-specifies.

    Uses ``population.reference`` (name or path relative to the protocol), ``population.
    attributes`` (else ``subgroups.attributes``), ``population.covariates``, ``ppr_band``,
    ``smd_threshold``, ``missingness_threshold`` and ``comparison`` (else
    ``data.reference_rows``), ``subgroups.intersections`` and ``min_n``, and
    ``performance.confidence_level``, ``target_half_width`` and ``assumed_value``.
    """
    if isinstance(protocol, (str, Path)):
        from rwe.protocol import load_protocol

        protocol = load_protocol(protocol)
    p = protocol
    if evset is None:
        evset = p.load_data()
    pop = p.population
    if pop.reference is None:
        raise InvalidParameterError("protocol population.reference is not set")
    ref_arg: Any = p.reference_path() or pop.reference  # unknown name: load_reference says so
    comparison = None
    if pop.comparison is not None:
        comparison = p.load_rows(pop.comparison)
    elif p.data.reference_rows is not None:
        comparison = p.load_reference_rows()
    attrs, _ = protocol_attributes(p)
    min_age = _protocol_min_age(p, evset, attrs)
    return representativeness(
        evset, reference=ref_arg, attributes=attrs, covariates=list(pop.covariates) or None,
        intersections=[list(i) for i in p.subgroups.intersections] or None,
        min_n=p.subgroups.min_n, ppr_band=tuple(pop.ppr_band), smd_threshold=pop.smd_threshold,
        confidence_level=p.performance.confidence_level,
        target_half_width=p.performance.target_half_width,
        assumed_value=p.performance.assumed_value, comparison=comparison,
        missingness_threshold=pop.missingness_threshold, reference_min_age=min_age)


def protocol_attributes(protocol: Protocol) -> tuple[list[str] | None, str]:
    """The attributes :func:`representativeness_from_protocol` compares with the reference and
    the protocol field they come from: ``population.attributes``, else
    ``subgroups.attributes``, else None (every attribute the reference defines)."""
    if protocol.population.attributes:
        return list(protocol.population.attributes), "population.attributes"
    if protocol.subgroups.attributes:
        return list(protocol.subgroups.attributes), "subgroups.attributes"
    return None, "population.attributes"


def _protocol_min_age(p: Protocol, evset: EvaluationSet, attrs: list[str] | None
                      ) -> float | None:
    """Intended-use age range for derived age bands: the cohort's youngest age, floored to the
    5-year grid of the reference files (e.g. ages 40-90 -> reference ages >= 40)."""
    min_age = None
    for name, spec in p.derived_spec().items():
        if "cuts" not in spec:  # calendar windows have no age range
            continue
        src = spec["from"]
        if (attrs is None or name in attrs) and src in evset.frame.columns:
            lo = pd.to_numeric(evset.frame[src], errors="coerce").min()
            if np.isfinite(lo) and lo < spec["cuts"][0]:
                min_age = float(np.floor(lo / 5) * 5)
    return min_age


def unevaluable_attributes(evset: Any, reference: Any, attributes: Sequence[str], *,
                           reference_min_age: float | None = None) -> dict[str, str]:
    """Attributes whose shares cannot be compared with the reference, each with its reason.

    An attribute is not evaluable when no cohort row has a value (every share row would be
    flagged ``"no data"``) or when the reference does not define it, after deriving age bands
    from the reference's 5-year ``age`` groups exactly as :func:`representativeness` does
    (every row ``"not in reference"``). :func:`representativeness` keeps such an attribute,
    with those flags; ``rwe validate`` refuses the protocol, and the dossier's check says
    "not evaluated" with the reason, never "pass".

    Parameters
    ----------
    evset : EvaluationSet or pandas.DataFrame
        The cohort.
    reference : ReferencePopulation, str, path or dict
        As for :func:`representativeness`.
    attributes : sequence of str
        The attributes to compare (columns of the cohort).
    reference_min_age : float, optional
        As for :func:`representativeness`.

    Returns
    -------
    dict of str to str
        ``{attribute: reason}``, in the order of ``attributes``; empty when all can be compared.
    """
    cohort = _as_cohort(evset, label=None, site=None, equipment=None)
    ref = _as_reference(reference)
    attrs = [attributes] if isinstance(attributes, str) else list(attributes)
    _check_columns(cohort.frame, attrs)
    out: dict[str, str] = {}
    for a in attrs:
        series = cohort.frame[a]
        if not series.notna().any():
            out[a] = f"no value in any of the {len(series):,} rows of {cohort.source}"
            continue
        notes: list[str] = []
        ref = _align_age_bands(ref, a, series, notes, reference_min_age)
        if a not in ref.shares:
            why = "; ".join(n for n in notes if n.startswith(f"{a}:"))
            out[a] = (f"reference {ref.name!r} does not define it (it defines "
                      f"{', '.join(ref.attributes)})" + (f"; {why}" if why else ""))
    return out


def unevaluable_from_protocol(protocol: Protocol, evset: EvaluationSet
                              ) -> list[tuple[tuple[Any, ...], str]]:
    """:func:`unevaluable_attributes` for the attributes a protocol compares: one
    ``(field location, reason)`` per attribute, e.g. ``(("population", "attributes", 2),
    "...")``; empty when the protocol has no reference population."""
    if protocol.population.reference is None:
        return []
    attrs, field_ = protocol_attributes(protocol)
    if attrs is None:
        return []
    ref = protocol.reference_path() or protocol.population.reference
    bad = unevaluable_attributes(evset, ref, attrs,
                                 reference_min_age=_protocol_min_age(protocol, evset, attrs))
    section, key = field_.split(".")
    return [((section, key, attrs.index(a)), f"attribute {a!r} cannot be compared with the "
             f"reference population: {why}") for a, why in bad.items()]
