"""Drift and performance monitoring over calendar windows, sites and subgroups.

:func:`assess_drift` answers what moved, when, where, and whether it matters. Everything is
computed from mergeable summaries (:mod:`rwe.stats.summaries`): the current data are
summarized with the calendar window and the groupings as attributes and every feature's
histogram on bins fixed on the reference, the reference into one overall summary; a window x
site x subgroup is one level of a grouping of the same summary, so sites and partitions that
ship summaries get every table too. Only four things need rows (and say so when given
summaries): the exact mode of KS / Wasserstein, the classifier two-sample test, duplicate
counts and the risk-adjusted CUSUM, which follows the case stream in time order.
"""

from __future__ import annotations

import datetime as _dt
import math
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from rwe._evidence import (
    STATUS_FAIL,
    STATUS_NOT_EVALUABLE,
    STATUS_PASS,
    Finding,
    Verdict,
    combine_statuses,
    verdict_id,
)
from rwe._results import LEVEL_SEP, Interval
from rwe._validation import check_choice, check_int, check_level, check_real
from rwe.drift import _charts as charts
from rwe.drift import _templates  # noqa: F401 - registers the finding templates
from rwe.drift._registry import (
    DEFAULT_FEATURE_BINS,
    DEFAULT_PSI_BINS,
    DriftContext,
    FeatureHist,
    get_drift_test,
    reference_edges,
)
from rwe.drift._result import (
    ALARM_COLUMNS,
    BASELINE_WINDOW,
    CASE_MIX_COLUMNS,
    CHART_COLUMNS,
    CLASSIFIER_COLUMNS,
    DIAGNOSTIC_COLUMNS,
    DRIFT_COLUMNS,
    INTEGRITY_COLUMNS,
    PERFORMANCE_COLUMNS,
    PREVALENCE_COLUMNS,
    RECALIBRATION_COLUMNS,
    REFERENCE_WINDOW,
    STATUS_ESTIMATED,
    STATUS_INSUFFICIENT,
    STATUS_NO_DATA,
    STATUS_NO_LABELS,
    STATUS_OK,
    DriftResult,
)
from rwe.exceptions import InvalidParameterError, RWEError
from rwe.stats.summaries import Grouping, Summary, grouping_name, summarize_arrays

__all__ = ["assess_drift", "drift_from_protocol", "summarize_reference", "last_labelled",
           "DriftError", "DEFAULT_TESTS",
           "DEFAULT_METRICS", "CLASSIFIER", "DECISIONS"]

DEFAULT_TESTS = ("psi", "ks", "wasserstein", "chi2", "js")
DEFAULT_METRICS = ("auroc", "sensitivity", "specificity", "calibration_intercept",
                   "calibration_slope", "oe_ratio")
#: The multivariate test's name in ``tests`` and ``thresholds`` (out-of-fold AUROC).
CLASSIFIER = "classifier"
CLASSIFIER_THRESHOLD = 0.55
#: ``"effect"``: a cell drifts when its effect reaches the threshold; ``"effect_and_pvalue"``:
#: and, for tests with a p-value, its BH-adjusted p-value is below ``alpha``.
DECISIONS = ("effect", "effect_and_pvalue")
SCORE_FEATURE = "score"
OUT_OF_SUPPORT_LIMIT = 0.05
RA_UNIT = "cases"
WINDOW_UNIT = "windows"


class DriftError(RWEError, ValueError):
    """Drift inputs that cannot be analysed (one line naming what and why)."""




# ============================================================================ inputs
@dataclass(eq=False)
class _Data:
    """Rows (frame + roles) and/or a summary of one population."""

    summary: Summary | None = None
    frame: pd.DataFrame | None = None
    roles: Any = None
    source: str = "<data>"
    windows: pd.Series | None = None
    dask: Any = None  # a DaskEvaluationSet, summarized per partition


def _is_period(x: Any) -> bool:
    if hasattr(x, "start") and hasattr(x, "end") and not isinstance(x, (pd.DataFrame, Summary)):
        return True
    return isinstance(x, tuple) and len(x) == 2 and all(
        isinstance(v, (str, _dt.date, pd.Timestamp)) for v in x)


def _period_mask(ts: pd.Series, period: Any) -> np.ndarray:
    start, end = (period.start, period.end) if hasattr(period, "start") else period
    lo = pd.Timestamp(start)
    hi = pd.Timestamp(end) + pd.Timedelta(days=1)  # the end date is included
    if lo.tzinfo is not None:
        lo = lo.tz_convert("UTC").tz_localize(None)
    if hi.tzinfo is not None:
        hi = hi.tz_convert("UTC").tz_localize(None)
    v = ts
    if isinstance(v.dtype, pd.DatetimeTZDtype):
        v = v.dt.tz_convert("UTC").dt.tz_localize(None)
    return ((v >= lo) & (v < hi)).to_numpy(dtype=bool)


class _PeriodRows:
    """The rows of a period in an EvaluationSet (picklable: it runs on dask workers)."""

    def __init__(self, period: Any):
        self.period = ((period.start, period.end) if hasattr(period, "start")
                       else tuple(period))

    def __call__(self, ev: Any) -> np.ndarray:
        return _period_mask(ev.timestamps, self.period)


def _period_text(period: Any) -> str:
    start, end = (period.start, period.end) if hasattr(period, "start") else period
    return f"{pd.Timestamp(start).date()} to {pd.Timestamp(end).date()}"


def _as_current(data: Any, what: str) -> _Data:
    from rwe.data import EvaluationSet

    if isinstance(data, Summary):
        return _Data(summary=data, source=what)
    if callable(getattr(data, "summarize", None)) and not isinstance(data, pd.DataFrame):
        if what != "current":
            raise InvalidParameterError(
                f"{what} as a dask table is not supported: pass its Summary (rows without an "
                "outcome are summarized label-free from rows)")
        return _Data(roles=data.roles, source=data.source, dask=data)
    if isinstance(data, EvaluationSet):
        return _Data(frame=data.frame, roles=data.roles, source=data.source)
    raise InvalidParameterError(
        f"{what} must be an rwe EvaluationSet or a Summary, got {type(data).__name__}")


def _label_free(summary: Summary) -> Summary:
    """A summary whose score histograms count every row as label 0 and whose ``events`` is
    None: the scores of rows without an outcome (no analysis reads labels from it)."""
    from dataclasses import replace

    return replace(summary, events=None)


_SEGMENTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _segments(summary: Summary, grouping: Grouping, version: str, threshold: float | None):
    """``summary.segments`` of a grouping, computed once per summary, grouping and threshold
    (the drift tables, prevalence, performance and charts read the same segments)."""
    per = _SEGMENTS.setdefault(summary, {})
    key = (grouping.name, grouping.levels, version, threshold)
    if key not in per:
        per[key] = summary.segments(grouping, version, threshold=threshold)
    return per[key]


_KERNELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _kernel(spec, seg, kctx):
    """``spec.kernel(seg, kctx)``, computed once per segments, metric and settings (the
    performance table, the recalibration table and the control charts read the same fits)."""
    key = (spec.name, *(tuple(v.tolist()) if isinstance(v, np.ndarray) else v
                        for v in vars(kctx).values()))
    try:
        hash(key)
    except TypeError:  # e.g. a Generator as random_state: not cached
        return spec.kernel(seg, kctx)
    per = _KERNELS.setdefault(seg, {})
    if key not in per:
        per[key] = spec.kernel(seg, kctx)
    return per[key]


# ============================================================================ summaries
def _kinds(frame: pd.DataFrame, features: Sequence[str]) -> dict[str, str]:
    out = {}
    for f in features:
        s = frame[f]
        num = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
        out[f] = "numeric" if num else "categorical"
    return out


def _feature_arrays(frame: pd.DataFrame, features: Sequence[str], kinds: Mapping[str, str]):
    out = {}
    for f in features:
        if kinds[f] == "numeric":
            out[f] = frame[f].to_numpy(dtype=np.float64, na_value=np.nan)
        else:  # categorical codes once (category labels as text; missing stays missing)
            col = frame[f]
            if not isinstance(col.dtype, pd.CategoricalDtype):
                col = col.astype("category")
            out[f] = col.cat.rename_categories([str(c) for c in col.cat.categories])
    return out


def _summarize(frame: pd.DataFrame, *, label: str | None, score: str | None,
               version: str, attributes: Mapping[str, Any], features: Sequence[str],
               kinds: Mapping[str, str], edges: Mapping[str, np.ndarray],
               thresholds: Sequence[float]) -> Summary:
    """Summary of rows; without a label the score histograms count every row as label 0 and
    ``events`` is None (:func:`_label_free`)."""
    scores = {}
    y = None
    if score is not None and score in frame.columns:
        s = frame[score].to_numpy(dtype=np.float64)
        scores = {version: s}
        y = (frame[label].to_numpy(dtype=bool) if label is not None and label in frame.columns
             else np.zeros(len(frame), dtype=bool))
    summ = summarize_arrays(y_true=y, scores=scores, attributes=attributes,
                            features=_feature_arrays(frame, features, kinds),
                            feature_edges={f: e for f, e in edges.items() if f in features},
                            thresholds=thresholds)
    if y is not None and (label is None or label not in frame.columns):
        summ = _label_free(summ)
    return summ


# ============================================================================ groupings
@dataclass(eq=False)
class _Grid:
    """Windows x levels of a grouping, every combination present (empty ones included)."""

    group: str
    grouping: Grouping
    windows: tuple[str, ...]
    levels: tuple[str, ...]

    def window_of(self, i: int) -> str:
        return self.windows[i // len(self.levels)]

    def level_of(self, i: int) -> str:
        return self.levels[i % len(self.levels)]

    @cached_property
    def window_array(self) -> np.ndarray:
        return np.repeat(np.asarray(self.windows, dtype=object), len(self.levels))

    @cached_property
    def level_array(self) -> np.ndarray:
        return np.tile(np.asarray(self.levels, dtype=object), len(self.windows))

    @property
    def size(self) -> int:
        return len(self.windows) * len(self.levels)


def _grid(summary: Summary, window_attr: str, attrs: tuple[str, ...],
          windows: Sequence[str] | None = None, levels: Sequence[str] | None = None) -> _Grid:
    cells = summary.cells
    wi = cells.attributes.index(window_attr)
    cats = cells.categories[wi]
    wins = tuple(windows) if windows is not None else tuple(cats)
    wmap = np.array([wins.index(c) if c in wins else -1 for c in cats] + [-1], dtype=np.int64)
    wcode = wmap[cells.codes[:, wi]]
    g = summary.grouping(attrs)
    levs = tuple(levels) if levels is not None else g.levels
    lmap = np.array([levs.index(x) for x in g.levels] + [-1], dtype=np.int64)
    lcode = lmap[g.cell_to_level]  # -1 stays -1 (the appended entry)
    L = len(levs)
    ok = (wcode >= 0) & (lcode >= 0)
    c2l = np.where(ok, wcode * L + lcode, -1)
    labels = tuple(f"{w}{LEVEL_SEP}{lev}" for w in wins for lev in levs)
    name = grouping_name((window_attr, *attrs))
    return _Grid(g.name, Grouping(name, (window_attr, *attrs), labels, c2l), wins, levs)


def _union_levels(summaries: Sequence[Summary], attrs: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for s in summaries:
        for lev in s.grouping(attrs).levels:
            if lev not in out:
                out.append(lev)
    return tuple(out)


def _add_hists(hs: Sequence[FeatureHist]) -> FeatureHist:
    """Histograms of disjoint row sets on the same grid, added (labelled + unlabelled rows)."""
    if len(hs) == 1:
        return hs[0]
    h0 = hs[0]
    counts = sum(h.counts for h in hs)
    missing = sum(h.missing for h in hs)
    if h0.kind == "categorical":
        return FeatureHist("categorical", counts, categories=h0.categories, missing=missing)
    sums = sum(h.sums for h in hs)
    # pooled SD (Chan et al.'s merge of counts, means and sums of squared deviations)
    ns = [h.n for h in hs]
    with np.errstate(invalid="ignore", divide="ignore"):
        means = [h.sums.sum(axis=1) / n for h, n in zip(hs, ns, strict=True)]
        n = sum(ns)
        mean = sum(np.where(ni > 0, ni * mi, 0.0) for ni, mi in zip(ns, means, strict=True)) / n
        m2 = sum(np.where(ni > 0, np.nan_to_num(h.sd) ** 2 * ni + ni * (mi - mean) ** 2, 0.0)
                 for h, ni, mi in zip(hs, ns, means, strict=True))
        sd = np.sqrt(m2 / n)
    return FeatureHist("numeric", counts, h0.edges, sums, sd=sd, missing=missing)


def _exact_current(pairs, attrs: tuple[str, ...], feature: str) -> list[np.ndarray]:
    """The current rows' values of ``feature`` per grid level, from every source."""
    grid = pairs[0][1]
    per: list[list[np.ndarray]] = [[] for _ in range(grid.size)]
    for d, gr in pairs:
        codes = _row_codes(d.frame, d.windows, gr.windows, attrs, gr.levels)
        x = d.frame[feature].to_numpy(dtype=np.float64, na_value=np.nan)
        ok = np.isfinite(x) & (codes >= 0)
        order = np.argsort(codes[ok], kind="stable")
        xs, cs = x[ok][order], codes[ok][order]
        bounds = np.searchsorted(cs, np.arange(grid.size + 1))
        for i in range(grid.size):
            per[i].append(xs[bounds[i]:bounds[i + 1]])
    return [np.concatenate(v) for v in per]


def _by_level(a: np.ndarray, c2l: np.ndarray, size: int) -> np.ndarray:
    ok = c2l >= 0
    out = np.zeros((size,) + a.shape[1:], dtype=np.float64)
    np.add.at(out, c2l[ok], a[ok])
    return out


def _counts(summary: Summary, c2l: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray | None]:
    n = _by_level(summary.n.astype(np.float64), c2l, size)
    ev = None if summary.events is None else _by_level(summary.events.astype(np.float64), c2l,
                                                        size)
    return n, ev


# ============================================================================ histograms
def _hist(summary: Summary, feature: str, c2l: np.ndarray, size: int,
          categories: tuple[str, ...] | None = None) -> FeatureHist:
    f = summary.features[feature]
    if f.kind == "numeric":
        counts = _by_level(f.hist.astype(np.float64), c2l, size)
        sums = _by_level(f.hsum, c2l, size)
        n = _by_level(f.n.astype(np.float64), c2l, size)
        s1 = _by_level(np.nan_to_num(f.mean) * f.n, c2l, size)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = s1 / n
            # pooled sum of squared deviations: Σ m2 + Σ n (mean_cell - mean_level)²
            ok = c2l >= 0
            m2 = np.zeros(size)
            np.add.at(m2, c2l[ok], np.nan_to_num(f.m2[ok])
                      + f.n[ok] * (np.nan_to_num(f.mean[ok]) - mean[c2l[ok]]) ** 2)
            sd = np.sqrt(m2 / n)
        missing = _by_level(f.missing.astype(np.float64), c2l, size)
        return FeatureHist("numeric", counts, f.edges, sums, sd=sd, missing=missing)
    cats = categories if categories is not None else f.categories
    idx = np.array([cats.index(c) for c in f.categories], dtype=np.int64)
    raw = _by_level(f.counts.astype(np.float64), c2l, size)
    counts = np.zeros((size, len(cats)))
    counts[:, idx] = raw[:, :-1]
    return FeatureHist("categorical", counts, categories=tuple(cats), missing=raw[:, -1])


def _score_hist(summary: Summary, version: str, grouping: Grouping, edges: np.ndarray,
                size: int, threshold: float | None = None) -> FeatureHist:
    """Histogram of the predicted scores on ``edges`` per level (from the score table)."""
    from rwe.stats.summaries import feature_bin_column

    seg = _segments(summary, grouping, version, threshold)
    tot = seg.pos + seg.neg
    p = np.asarray(seg.p, dtype=np.float64)
    ps, p2 = _score_sums(seg, tot, p)
    col = feature_bin_column(p, edges)
    W = len(edges) + 1
    key = seg.row_segment * W + col
    counts = np.bincount(key, weights=tot, minlength=size * W).reshape(size, W)
    sums = np.bincount(key, weights=ps, minlength=size * W).reshape(size, W)
    n = counts.sum(axis=1)
    m1 = seg.seg_sum(ps)
    m2 = seg.seg_sum(p2)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(np.maximum(m2 / n - (m1 / n) ** 2, 0.0))
    return FeatureHist("numeric", counts, edges, sums, sd=sd, missing=np.zeros(size))


def _declared_score_edges(edges: np.ndarray, summaries: Sequence[Summary],
                          version: str) -> np.ndarray:
    """The prediction-drift histogram's edges when a summary holds its scores at a declared
    resolution (score bins, e.g. a federated site's): each edge moved to the nearest edge of
    the declared bins (of every such summary: the edges they share), duplicates dropped.

    A declared bin's rows are known only by their count and moments, so a histogram edge
    inside a bin cannot be resolved: placing the bin's rows at their mean piled every row of
    a bin into one of the reference's finer quantile bins (the training scores crowd near 0,
    where the declared bins are 1/200 wide) and left its neighbours empty, a PSI of 3.2 where
    the rows give 0.04. On edges that are declared edges every bin lies inside one histogram
    bin, so the summary's histogram equals the rows' histogram on the same edges, and the
    reference (rows or a summary at the same resolution) is binned on them too. Unchanged
    when every summary is at full resolution."""
    declared = [s.scores[version].edges for s in summaries
                if version in s.scores and s.scores[version].edges is not None]
    if not declared:
        return edges
    grid = declared[0]
    for other in declared[1:]:
        grid = np.intersect1d(grid, other)
    grid = np.unique(np.asarray(grid, dtype=np.float64))
    if grid.size < 2:
        return edges
    right = np.clip(np.searchsorted(grid, edges), 1, grid.size - 1)
    left = right - 1
    nearest = np.where(edges - grid[left] <= grid[right] - edges, left, right)
    snapped = np.unique(grid[nearest])
    if snapped.size < 2:  # the reference lies inside one declared bin: that bin's edges
        i = int(np.clip(np.searchsorted(grid, edges[0], side="right"), 1, grid.size - 1))
        snapped = grid[i - 1:i + 1]
    return snapped


def _score_sums(seg, tot: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per histogram row: Σp and Σp² (from the scores themselves at full resolution, from the
    bins' sums of p^k at a declared one)."""
    if seg.exact:
        tp = tot * p
        return tp, tp * p
    m = seg.moments(0) + seg.moments(1)
    return m[:, 0], m[:, 1]


def _score_values(summary: Summary, version: str) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (or bin-mean) scores of a summary and their counts."""
    seg = _segments(summary, summary.grouping(()), version, None)
    return np.asarray(seg.p, dtype=np.float64), (seg.pos + seg.neg)


# ============================================================================ tables
def _bh(p: np.ndarray) -> np.ndarray:
    from rwe.stats import adjust_pvalues

    return adjust_pvalues(np.clip(p, 0, 1), method="fdr_bh")


def _resolution(spec, bound: np.ndarray, exact: bool) -> np.ndarray:
    if exact:
        return np.full(bound.size, "exact (rows)", dtype=object)
    if spec.binned == "defined":
        return np.full(bound.size, "defined on the reference's bins", dtype=object)
    if spec.binned == "exact":
        return np.full(bound.size, "exact (category counts)", dtype=object)
    return np.where(bound == 0, "exact (histogram)", "binned: |error| <= bound").astype(object)


def _drift_rows(role, feature, kind, spec, grid: _Grid, ref: FeatureHist, cur: FeatureHist,
                vals, threshold: float, exact: bool) -> dict[str, np.ndarray]:
    """Columns of the drift table for one feature x test x grouping (joined once at the end:
    building hundreds of small frames costs more than the tests)."""
    k = grid.size
    n = cur.n

    def const(v, dtype=object):
        return np.full(k, v, dtype=dtype)

    status = np.where(n == 0, STATUS_NO_DATA, np.where(np.isfinite(vals.effect), STATUS_OK,
                                                       STATUS_NOT_EVALUABLE)).astype(object)
    return {
        "role": const(role), "feature": const(feature), "kind": const(kind),
        "test": const(spec.name), "window": grid.window_array, "group": const(grid.group),
        "level": grid.level_array, "n_reference": const(int(ref.n[0]), np.int64),
        "n": n.astype(np.int64),
        "missing": (cur.missing if cur.missing is not None else np.zeros(k)).astype(np.int64),
        "statistic": np.asarray(vals.statistic, float), "effect": np.asarray(vals.effect, float),
        "effect_name": const(spec.effect), "threshold": const(float(threshold), float),
        "pvalue": np.asarray(vals.pvalue, float), "pvalue_adjusted": const(np.nan, float),
        "drifted": const(False, bool), "bound": np.asarray(vals.bound, float),
        "resolution": _resolution(spec, vals.bound, exact), "status": status,
        "reason": np.asarray(vals.reason, dtype=object)}


def _row_codes(frame: pd.DataFrame, windows: pd.Series, win_names: Sequence[str],
               attrs: tuple[str, ...], levels: Sequence[str]) -> np.ndarray:
    """Grid index of every row (window x level), -1 outside."""
    w = pd.Categorical(windows.astype("string"), categories=list(win_names)).codes.astype(
        np.int64)
    if attrs:
        lab = frame[attrs[0]].astype("string")
        for a in attrs[1:]:
            lab = lab + LEVEL_SEP + frame[a].astype("string")
        lv = pd.Categorical(lab, categories=list(levels)).codes.astype(np.int64)
    else:
        lv = np.zeros(len(frame), dtype=np.int64)
    return np.where((w >= 0) & (lv >= 0), w * len(levels) + lv, -1)


# ---------------------------------------------------------------------------- case mix
def _smd(a: np.ndarray, b: np.ndarray, va: np.ndarray, vb: np.ndarray) -> np.ndarray:
    """Austin's SMD ``(a - b) / sqrt((va + vb) / 2)`` vectorized, with the conventions of
    :func:`rwe.representativeness.smd_from_summary` (0 for equal means with no spread, a
    signed infinity otherwise)."""
    den = np.sqrt((va + vb) / 2)
    diff = a - b
    with np.errstate(invalid="ignore", divide="ignore"):
        out = diff / den
    zero = den == 0
    out[zero] = np.where(diff[zero] == 0, 0.0, np.copysign(np.inf, diff[zero]))
    return out


def _case_mix(feature: str, grid: _Grid, ref: FeatureHist, cur: FeatureHist, level: float,
              smd_threshold: float) -> pd.DataFrame:
    """Category shares (Wilson interval, PPR, binary SMD) or the mean (continuous SMD) per
    window x level against the reference (Austin 2009; representativeness' definitions)."""
    from rwe.stats import proportion_ci

    k = grid.size
    wins, levs = grid.window_array, grid.level_array
    if cur.kind == "categorical":
        rn = ref.counts[0].sum()
        n = cur.counts.sum(axis=1)
        K = len(cur.categories)
        x = cur.counts.T.reshape(-1)  # category-major
        nn = np.tile(n, K)
        ci = proportion_ci(x, nn, confidence_level=level)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(nn > 0, x / np.maximum(nn, 1), np.nan)
            rs = np.repeat(ref.counts[0] / rn if rn > 0 else np.full(K, np.nan), k)
            ppr = np.where((rs > 0) & (nn > 0), share / rs, np.nan)
        smd = np.where(nn > 0, _smd(share, rs, share * (1 - share), rs * (1 - rs)), np.nan)
        frame = pd.DataFrame({
            "feature": feature, "category": np.repeat(np.asarray(cur.categories, object), k),
            "window": np.tile(wins, K), "group": grid.group, "level": np.tile(levs, K),
            "n": nn.astype(np.int64), "value": share, "ci_low": np.atleast_1d(ci.low),
            "ci_high": np.atleast_1d(ci.high), "reference_value": rs, "ppr": ppr, "smd": smd})
    else:
        n = cur.n
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n > 0, cur.sums.sum(axis=1) / n, np.nan)
            rmean = ref.sums[0].sum() / ref.n[0] if ref.n[0] > 0 else np.nan
            sd = cur.sd if cur.sd is not None else np.full(k, np.nan)
            rsd = float(ref.sd[0])
            half = np.where(n > 1, _z(level) * sd / np.sqrt(n), np.nan)
        smd = np.where(n > 1, _smd(mean, np.full(k, rmean), sd ** 2, np.full(k, rsd ** 2)),
                       np.nan)
        frame = pd.DataFrame({
            "feature": feature, "category": "mean", "window": wins, "group": grid.group,
            "level": levs, "n": n.astype(np.int64), "value": mean, "ci_low": mean - half,
            "ci_high": mean + half, "reference_value": rmean, "ppr": np.nan, "smd": smd})
    frame["flagged"] = np.isfinite(frame["smd"]) & (frame["smd"].abs() >= smd_threshold)
    frame["status"] = np.where(frame["n"] > 0, STATUS_OK, STATUS_NO_DATA)
    return frame[CASE_MIX_COLUMNS]


def _z(level: float) -> float:
    from scipy.special import ndtri

    return float(ndtri(0.5 + level / 2))


# ============================================================================ alerts
@dataclass
class _Rule:
    """An alert rule with its limits resolved (what the monitor state stores)."""

    id: str
    index: int
    method: str
    metric: str | None
    by: tuple[str, ...]
    side: str
    params: dict[str, float]
    arl0: float | None
    arl0_achieved: float
    unit: str
    target: float | None = None
    target_se: float = 0.0
    target_source: str = ""
    threshold: float | None = None
    source: str = ""
    criterion: str = ""
    estimated_in_control: bool = False

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["by"] = list(self.by)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> _Rule:
        kw = dict(d)
        kw["by"] = tuple(kw.get("by") or ())
        kw["params"] = dict(kw.get("params") or {})
        return cls(**kw)


def _rule_get(rule: Any, key: str, default: Any = None) -> Any:
    if isinstance(rule, Mapping):
        return rule.get(key, default)
    return getattr(rule, key, default)


def _resolve_rules(alerts: Sequence[Any], *, risks, baseline: dict[str, tuple[float, float]],
                   baseline_source: str) -> list[_Rule]:
    from rwe.metrics import get_metric

    out = []
    for i, a in enumerate(alerts):
        method = _rule_get(a, "method")
        check_choice(method, f"alerts[{i}].method", (*charts.CHART_METHODS, "threshold"))
        metric = _rule_get(a, "metric")
        params = dict(_rule_get(a, "params") or {})
        by = tuple(_rule_get(a, "by") or ())
        side = _rule_get(a, "side") or "two-sided"
        check_choice(side, f"alerts[{i}].side", charts.SIDES)
        arl0 = _rule_get(a, "arl0")
        source = _rule_get(a, "_source", f"alerts[{i}]")
        content = {"method": method, "metric": metric, "by": list(by), "side": side,
                   "params": params, "arl0": arl0, "threshold": _rule_get(a, "threshold")}
        rid = verdict_id("drift", "alert", content, label=f"{method}-{metric or 'risk'}")
        unit = RA_UNIT if method == "risk_adjusted_cusum" else WINDOW_UNIT
        if method != "risk_adjusted_cusum":
            if metric is None:
                raise InvalidParameterError(f"{source}: a {method} rule needs a metric")
            spec = get_metric(metric)
            if spec.kernel is None:
                raise InvalidParameterError(
                    f"{source}: metric {metric!r} needs rows; charts use summary metrics")
        rule = _Rule(rid, i, method, metric, by, side, params,
                     None if arl0 is None else float(arl0), math.nan, unit, source=source,
                     threshold=_rule_get(a, "threshold"))
        if method == "cusum":
            k = float(params.get("k", 0.5))
            h = params.get("h")
            if h is None:
                if arl0 is None:
                    raise InvalidParameterError(f"{source}: give arl0 (target in-control ARL) "
                                                "or params.h")
                h = charts.cusum_limit(float(arl0), k=k, side=side)
            rule.params = {"k": k, "h": float(h)}
            rule.arl0_achieved = charts.cusum_arl(k, float(h), side=side)
        elif method == "ewma":
            lam = float(params.get("lambda", 0.2))
            L = params.get("L")
            if L is None:
                if arl0 is None:
                    raise InvalidParameterError(f"{source}: give arl0 or params.L")
                L = charts.ewma_limit(float(arl0), lam=lam)
            rule.params = {"lambda": lam, "L": float(L)}
            rule.arl0_achieved = charts.ewma_arl(lam, float(L))
        elif method == "risk_adjusted_cusum":
            r = float(params.get("odds_ratio", 2.0))
            if r == 1 or r <= 0:
                raise InvalidParameterError(f"{source}: odds_ratio must be > 0 and != 1")
            r = max(r, 1 / r)  # the upper chart detects R, the lower 1 / R
            h = params.get("h")
            per_side = 1 if side == "two-sided" else 0
            if h is None:
                if arl0 is None:
                    raise InvalidParameterError(f"{source}: give arl0 or params.h")
                if risks is None:
                    raise InvalidParameterError(
                        f"{source}: the risk-adjusted CUSUM's limit needs the reference's "
                        "predicted risks (a reference with scores)")
                target = float(arl0) * (2 if per_side else 1)
                hu = charts.ra_cusum_limit(target, odds_ratio=r, risks=risks)
                hl = charts.ra_cusum_limit(target, odds_ratio=1 / r, risks=risks)
            else:
                hu = hl = float(h)
            rule.params = {"odds_ratio": r, "h_upper": hu, "h_lower": hl}
            if risks is not None:
                au = charts.ra_cusum_arl(hu, r, risks)
                al = charts.ra_cusum_arl(hl, 1 / r, risks)
                rule.arl0_achieved = (1 / (1 / au + 1 / al) if side == "two-sided" else
                                      (au if side == "upper" else al))
        else:
            if rule.threshold is None:
                raise InvalidParameterError(f"{source}: a threshold rule needs threshold")
        if method in ("cusum", "ewma"):
            spec = get_metric(metric)
            if spec.target is not None:
                rule.target, rule.target_source = float(spec.target), "the metric's target value"
            elif metric in baseline:
                rule.target, rule.target_se = baseline[metric]
                rule.target_source = f"estimated on the {baseline_source}"
                rule.estimated_in_control = True
            else:
                raise InvalidParameterError(
                    f"{source}: {metric!r} has no target value; its in-control value needs a "
                    "baseline (reference_period or a labelled reference)")
        by_txt = " x ".join(by) if by else "overall"
        if method == "risk_adjusted_cusum":
            ors = {"two-sided": f"odds ratios {r:g} and {1 / r:g}", "upper": f"odds ratio {r:g}",
                   "lower": f"odds ratio {1 / r:g}"}[side]
            rule.criterion = (f"risk-adjusted CUSUM ({ors}) by {by_txt}: no alarm (in-control "
                              f"ARL {rule.arl0_achieved:.4g} cases)")
        elif method == "threshold":
            rule.criterion = (f"{metric} by {by_txt}: interval beyond {rule.threshold:g} raises "
                              "an alarm")
        else:
            rule.criterion = (f"{method} on {metric} by {by_txt} ({side}): no alarm (in-control "
                              f"ARL {rule.arl0_achieved:.4g} windows)")
        out.append(rule)
    return out


def _se(vals, metric: str, level: float) -> np.ndarray:
    se = vals.extras.get("se")
    if se is not None:
        return np.asarray(se, dtype=np.float64)
    return (np.asarray(vals.high) - np.asarray(vals.low)) / (2 * _z(level))


# ============================================================================ main
def assess_drift(
    current,
    *,
    reference=None,
    window: str = "month",
    by: Sequence[Any] = ("site",),
    features: Sequence[str] | None = None,
    tests: Sequence[str] = DEFAULT_TESTS,
    thresholds: Mapping[str, float] | None = None,
    decision: str = "effect",
    alpha: float = 0.05,
    metrics: Sequence[str] = DEFAULT_METRICS,
    threshold: float | None = None,
    version: str | None = None,
    alerts: Sequence[Any] = (),
    baseline=None,
    unlabelled=None,
    confidence_level: float = 0.95,
    feature_bins: int = DEFAULT_FEATURE_BINS,
    psi_bins: int = DEFAULT_PSI_BINS,
    exact: bool = False,
    min_n: int = 30,
    smd_threshold: float = 0.1,
    n_sim: int = 400,
    classifier_max_rows: int = 2000,
    random_state: Any = 0,
    small_cell_k: int = 11,
    reference_rows: pd.DataFrame | None = None,
    recalibration_memory: float = 0.7,
    _state: Mapping[str, Any] | None = None,
) -> DriftResult:
    """Drift of inputs, predictions, prevalence, case mix and performance over time and sites.

    Parameters
    ----------
    current : rwe.data.EvaluationSet or rwe.stats.summaries.Summary
        The monitored data. An evaluation set needs the timestamp role (its calendar windows
        are the time axis); a summary must have the window (``window``) and the ``by``
        attributes and its features' histograms on the reference's edges. Without a label
        role every window is label-free.
    reference : EvaluationSet, DataFrame, Summary or period
        The baseline population: rows (e.g. the training snapshot), a summary with the same
        feature edges, or a period ``(start, end)`` (dates, end included; a protocol
        ``Period``) of ``current``. Bins of numeric features are fixed on it.
    window : {"week", "month", "quarter"}
        Calendar window of the time axis (:func:`rwe.data.calendar_window`).
    by : sequence of str or tuple of str
        Groupings crossed with the window (sites, equipment, pre-specified subgroups); the
        window alone (``overall``) is always included.
    features : sequence of str, optional
        Input features (numeric or categorical; default: the data's features).
    tests : sequence of str
        Drift tests of the registry (:func:`rwe.drift.drift_test_names`) and
        ``"classifier"`` (the domain-classifier two-sample test: needs rows).
    thresholds : dict of str to float, optional
        Alert thresholds of the effects (default: each test's ``default_threshold``;
        ``classifier``: AUROC 0.55).
    decision : {"effect", "effect_and_pvalue"}
        A cell drifts when its effect reaches the threshold (and, with
        ``"effect_and_pvalue"``, its BH-adjusted p-value is below ``alpha``, for tests with a
        p-value). Effect sizes decide because with large n every p-value is small.
    alpha : float
        Level of the Benjamini-Hochberg adjustment, across features x levels x windows per
        test.
    metrics : sequence of str
        Metrics of the registry computed per window x level.
    threshold : float, optional
        Decision threshold of threshold metrics (required when one is asked for).
    version : str, optional
        Model version (default: the primary one).
    alerts : sequence
        Alert rules (``rwe.protocol.AlertRule`` or dicts): ``method`` cusum / ewma /
        risk_adjusted_cusum / threshold, ``metric``, ``by``, ``side``, ``arl0`` (target
        in-control ARL: windows, or cases for the risk-adjusted CUSUM) or ``params`` (k, h;
        lambda, L; odds_ratio, h).
    baseline : period, EvaluationSet or Summary, optional
        Where the in-control value of a charted metric without a target value (AUROC,
        sensitivity...) is estimated; calibration metrics are charted against their target
        (0 for calibration-in-the-large, 1 for slope and O/E). Default: the reference, when it
        has labels.
    unlabelled : EvaluationSet or Summary, optional
        Rows whose outcome is not known yet (the label role absent): their windows get
        label-free (estimated) performance.
    confidence_level : float
    feature_bins, psi_bins : int
        Histogram bins fixed on the reference (:func:`rwe.drift.reference_edges`) and the
        reference quantile bins of the PSI.
    exact : bool
        KS and Wasserstein from rows with scipy (one machine; needs rows of both samples).
    min_n : int
        Window x level cells with fewer labelled rows are ``"insufficient"``: shown, not
        charted.
    smd_threshold : float
        |SMD| flagging a case-mix shift (Austin 2009).
    n_sim : int
        Draws of the label-free estimates' parametric intervals.
    classifier_max_rows : int
        Rows per sample of the classifier test (seeded subsample).
    random_state : int, optional
        Seed of the classifier test and the label-free intervals.
    small_cell_k : int
        Smallest count rendered in findings' text (small-cell suppression).
    reference_rows : DataFrame, optional
        Rows of a reference given as a summary, for the tests that need rows (classifier,
        exact mode).
    recalibration_memory : float
        Weight per window of age in the dynamic recalibration curve (1: all windows equally,
        the cumulative fit).

    Returns
    -------
    DriftResult

    Raises
    ------
    DriftError
        A reference with no rows (e.g. a reference period outside the data), a feature absent
        from the reference, a feature numeric in one sample and categorical in the other, a
        summary without the window attribute.
    InvalidParameterError
        Invalid arguments (unknown test or metric, bad thresholds).

    Notes
    -----
    Methods and references: the drift tests' registry entries (:mod:`rwe.drift._registry`),
    control charts and their ARLs (:mod:`rwe.drift._charts`), label-free estimation
    (:mod:`rwe.drift._cbpe`), the classifier test (:mod:`rwe.drift._classifier`). Charted
    series are ``z = (estimate - in-control value) / SE`` per window (SE from the metric's
    interval, or its Wald SE for calibration fits; with an estimated in-control value, its SE
    is added in quadrature, and the in-control ARL is then only nominal [1]_). Label-free
    estimates never enter a chart.

    References
    ----------
    .. [1] Jensen WA, Jones-Farmer LA, Champ CW, Woodall WH. Effects of parameter estimation
       on control chart properties: a literature review. J Qual Technol 2006;38(4):349-364.
    .. [2] Feng J, Phillips RV, Malenica I, et al. Clinical artificial intelligence quality
       improvement: towards continual monitoring and updating of AI algorithms in healthcare.
       npj Digit Med 2022;5:66.
    .. [3] Davis SE, Lasko TA, Chen G, Siew ED, Matheny ME. Calibration drift in regression
       and machine learning models for acute kidney injury. JAMIA 2017;24(6):1052-1061.
    """
    from rwe.metrics import get_metric
    from rwe.metrics._registry import KernelContext

    level = check_level(confidence_level)
    check_choice(window, "window", ("week", "month", "quarter"))
    check_choice(decision, "decision", DECISIONS)
    alpha = check_real(alpha, "alpha", low=0, high=1, low_inclusive=False, high_inclusive=False)
    feature_bins = check_int(feature_bins, "feature_bins", minimum=2)
    psi_bins = check_int(psi_bins, "psi_bins", minimum=2)
    min_n = check_int(min_n, "min_n", minimum=1)
    recalibration_memory = check_real(recalibration_memory, "recalibration_memory", low=0,
                                      high=1, low_inclusive=False)
    groupings = _norm_by(by)
    tests = tuple(dict.fromkeys(tests))
    want_classifier = CLASSIFIER in tests
    specs = [get_drift_test(t) for t in tests if t != CLASSIFIER]
    thr = {s.name: s.default_threshold for s in specs}
    thr[CLASSIFIER] = CLASSIFIER_THRESHOLD
    for k, v in (thresholds or {}).items():
        if k not in thr:
            raise InvalidParameterError(
                f"thresholds names {k!r}, which is not among the tests {list(thr)}")
        thr[k] = check_real(v, f"thresholds[{k!r}]", low=0, low_inclusive=False)
    mspecs = [get_metric(m) for m in dict.fromkeys(metrics)]
    for s in mspecs:
        if s.kernel is None:
            raise InvalidParameterError(
                f"metric {s.name!r} needs rows; drift monitoring uses summary metrics")
        if "threshold" in s.needs and threshold is None:
            raise InvalidParameterError(f"metric {s.name!r} needs threshold=")
    if threshold is not None:
        threshold = check_real(threshold, "threshold", low=0, high=1, low_inclusive=False,
                               high_inclusive=False)

    # ------------------------------------------------------------------ current data
    cur = _as_current(current, "current")
    unl = None if unlabelled is None else _as_current(unlabelled, "unlabelled")
    roles = cur.roles if cur.roles is not None else (unl.roles if unl is not None else None)
    attrs_needed = tuple(dict.fromkeys(a for g in groupings for a in g))
    for rule in alerts:
        for a in _rule_get(rule, "by") or ():
            if a not in attrs_needed:
                attrs_needed += (a,)
    if cur.summary is not None:
        version = version or (cur.summary.versions[0] if cur.summary.versions else None)
        feats = list(features if features is not None else
                     [f for f in cur.summary.features if not f.startswith(SCORE_FEATURE)])
    else:
        version = str(version) if version is not None else next(iter(roles.scores), None)
        feats = list(features if features is not None else roles.features)
        if roles.timestamp is None:
            raise DriftError(f"{cur.source}: drift over time needs the timestamp column role")
    score_col = roles.scores.get(version) if roles is not None and version else None

    # ------------------------------------------------------------------ reference
    ref = _reference(reference, cur, roles, "reference")
    if ref.frame is None and reference_rows is not None:
        ref.frame = reference_rows
    base = None if baseline is None else _reference(baseline, cur, roles, "baseline")

    # kinds and edges, fixed on the reference
    if ref.summary is not None:
        rs = ref.summary
        missing = [f for f in feats if f not in rs.features]
        if missing:
            raise DriftError(f"reference: feature {missing[0]!r} is not in the reference "
                             f"summary; its features: {', '.join(rs.features) or 'none'}")
        kinds = {f: rs.features[f].kind for f in feats}
        edges = {f: rs.features[f].edges for f in feats if kinds[f] == "numeric"}
        if any(e is None for e in edges.values()):
            bad = next(f for f, e in edges.items() if e is None)
            raise DriftError(f"reference summary: numeric feature {bad!r} has no histogram "
                             "(summarize it with feature_edges)")
    else:
        missing = [f for f in feats if f not in ref.frame.columns]
        if missing:
            raise DriftError(
                f"{ref.source}: feature {missing[0]!r} is absent from the reference; its "
                f"columns: {', '.join(map(str, ref.frame.columns[:20]))}")
        kinds = _kinds(ref.frame, feats)
        edges = {}
        for f in feats:
            if kinds[f] == "numeric":
                v = ref.frame[f].to_numpy(dtype=np.float64, na_value=np.nan)
                if not np.isfinite(v).any():
                    raise DriftError(f"{ref.source}: feature {f!r} has no value in the reference")
                edges[f] = reference_edges(v, feature_bins)
    if cur.frame is not None:
        ck = _kinds(cur.frame, feats)
        for f in feats:
            if ck[f] != kinds[f]:
                raise DriftError(
                    f"{cur.source}: feature {f!r} is {ck[f]} in the current data but "
                    f"{kinds[f]} in the reference (schema change)")
    thresholds_edges = (threshold,) if threshold is not None else ()
    if ref.summary is None:
        lab = roles.label if roles is not None else None
        ref.summary = _summarize(ref.frame, label=lab, score=score_col, version=version or "v",
                                 attributes={}, features=feats, kinds=kinds, edges=edges,
                                 thresholds=thresholds_edges)
    if base is not None and base.dask is not None:
        base.summary = base.dask.summarize(
            attributes=[], versions=[version] if score_col else [], features=feats,
            feature_edges={f: e for f, e in edges.items() if f in feats},
            thresholds=thresholds_edges)
    if base is not None and base.summary is None:
        base.summary = _summarize(base.frame, label=roles.label, score=score_col,
                                  version=version or "v", attributes={}, features=feats,
                                  kinds=kinds, edges=edges, thresholds=thresholds_edges)

    # current summaries (window + groupings as attributes)
    def summarize_current(d: _Data) -> None:
        if d.dask is not None:  # per partition, with the windows and the reference's edges
            if d.roles.label is None:
                raise DriftError(f"{d.source}: a dask table needs the label role here; "
                                 "pass unlabelled rows as `unlabelled`")
            d.summary = d.dask.summarize(
                attributes=[window, *attrs_needed], versions=[version] if score_col else [],
                features=feats, feature_edges={f: e for f, e in edges.items() if f in feats},
                thresholds=thresholds_edges, windows={window: window})
            return
        if d.summary is not None:
            if window not in d.summary.attributes:
                raise DriftError(f"{d.source}: the summary has no {window!r} attribute (the "
                                 f"calendar window); attributes: {list(d.summary.attributes)}")
            for a in attrs_needed:
                if a not in d.summary.attributes:
                    raise DriftError(f"{d.source}: grouping attribute {a!r} is not in the "
                                     "summary")
            return
        from rwe.data import calendar_window

        ts = d.frame[d.roles.timestamp]
        d.windows = calendar_window(ts, window)
        attributes = {window: d.windows}
        for a in attrs_needed:
            if a not in d.frame.columns:
                raise DriftError(f"{d.source}: grouping attribute {a!r} is not a column")
            attributes[a] = d.frame[a]
        d.summary = _summarize(d.frame, label=d.roles.label, score=score_col,
                               version=version or "v", attributes=attributes, features=feats,
                               kinds=kinds, edges=edges, thresholds=thresholds_edges)

    summarize_current(cur)
    if unl is not None:
        summarize_current(unl)
    labelled = cur.summary.events is not None
    if not labelled and unl is None:
        unl, cur = cur, None
    windows = _all_windows([d.summary for d in (cur, unl) if d is not None], window)
    if not windows:
        raise DriftError("current: no row has a timestamp: there is no window to analyse")
    state = dict(_state or {})

    # ------------------------------------------------------------------ drift tables
    ctx = DriftContext(psi_bins=psi_bins)
    ref_all = ref.summary.grouping(())
    parts, cm_parts, integ_parts, prev_parts = [], [], [], []
    sources = [d for d in (cur, unl) if d is not None]
    merged_grids = {}
    for g in groupings:
        levels = _union_levels([d.summary for d in sources], g)
        merged_grids[g] = [(d, _grid(d.summary, window, g, windows, levels)) for d in sources]
    score_edges = None
    if version in ref.summary.scores:
        pv, pc = _score_values(ref.summary, version)
        score_edges = reference_edges(np.repeat(pv, pc.astype(np.int64)), feature_bins)
        score_edges = _declared_score_edges(
            score_edges, [d.summary for d in (ref, *sources)], version)
    for g, pairs in merged_grids.items():
        grid = pairs[0][1]  # the same windows x levels for every source
        for f in feats:
            rh = _hist(ref.summary, f, ref_all.cell_to_level, 1)
            cats = None
            if rh.kind == "categorical":
                cats = rh.categories
                for d, _ in pairs:
                    cats = _union_cats(FeatureHist("categorical", rh.counts, categories=cats),
                                       d.summary, f)
                rh = _hist(ref.summary, f, ref_all.cell_to_level, 1, categories=cats)
            hs = [_hist(d.summary, f, gr.grouping.cell_to_level, gr.size, categories=cats)
                  for d, gr in pairs]
            ch = _add_hists(hs)
            for spec in specs:
                if not spec.applies_to(kinds[f]):
                    continue
                if exact and spec.exact is not None:
                    if ref.frame is None or any(d.frame is None for d, _ in pairs):
                        raise DriftError("exact=True needs rows of the reference and of the "
                                         "current data (not summaries)")
                    rv = ref.frame[f].to_numpy(dtype=np.float64, na_value=np.nan)
                    vals = spec.exact(rv[np.isfinite(rv)], _exact_current(pairs, g, f))
                else:
                    vals = spec.kernel(rh, ch, ctx)
                parts.append(_drift_rows("input", f, kinds[f], spec, grid, rh, ch, vals,
                                         thr[spec.name], exact and spec.exact is not None))
            cm_parts.append(_case_mix(f, grid, rh, ch, level, smd_threshold))
            unl_n = sum((h.n + h.missing) for (d, _), h in zip(pairs, hs, strict=True)
                        if d is unl) if unl is not None else None
            integ_parts.append(_integrity(f, grid, rh, ch, unl_n))
        # prediction drift: the score histogram on edges fixed on the reference's scores
        if score_edges is not None and all(version in d.summary.scores for d, _ in pairs):
            rh = _score_hist(ref.summary, version, ref_all, score_edges, 1)
            ch = _add_hists([_score_hist(d.summary, version, gr.grouping, score_edges, gr.size,
                                         threshold) for d, gr in pairs])
            for spec in specs:
                if spec.applies_to("numeric"):
                    vals = spec.kernel(rh, ch, ctx)
                    parts.append(_drift_rows("prediction", SCORE_FEATURE, "numeric", spec,
                                             grid, rh, ch, vals, thr[spec.name], False))
        for d, gr in pairs:
            prev_parts.append(_prevalence(d, gr, ref.summary, version, level, threshold))
    drift_tab = (pd.DataFrame({c: np.concatenate([p[c] for p in parts]) for c in DRIFT_COLUMNS})
                 if parts else pd.DataFrame(columns=DRIFT_COLUMNS))
    drift_tab = _judge(drift_tab, alpha, decision)

    # ------------------------------------------------------------------ performance
    perf_parts, recal_parts, diag_parts = [], [], []
    kctx = KernelContext(confidence_level=level, threshold=threshold)
    baseline_vals: dict[str, tuple[float, float]] = {}
    for label, pop in ((REFERENCE_WINDOW, ref.summary),
                       (BASELINE_WINDOW, None if base is None else base.summary)):
        if pop is None or pop.events is None or version not in pop.scores:
            continue
        seg = _segments(pop, pop.grouping(()), version, threshold)
        n, ev = seg.n, seg.n_pos
        for s in mspecs:
            v = _kernel(s, seg, kctx)
            perf_parts.append(_perf_rows(s.name, label, "overall", ["all"], n, ev, v, level,
                                         min_n))
            se = _se(v, s.name, level)
            if (label == BASELINE_WINDOW or base is None) and np.isfinite(v.estimate[0]):
                baseline_vals[s.name] = (float(v.estimate[0]), float(se[0]))
    if cur is not None and version in cur.summary.scores:
        for grid in (p[0][1] for p in merged_grids.values()):
            seg = _segments(cur.summary, grid.grouping, version, threshold)
            wins = grid.window_array
            levs = grid.level_array
            for s in mspecs:
                v = _kernel(s, seg, kctx)
                perf_parts.append(_perf_rows(s.name, wins, grid.group, levs, seg.n, seg.n_pos,
                                             v, level, min_n))
            if any(s_.name.startswith("calibration") for s_ in mspecs):
                recal_parts.append(_recalibration(seg, wins, grid.group, levs, kctx, min_n,
                                                  grid, recalibration_memory))
    unlabelled_cells: set[tuple[str, str, str]] = set()
    if unl is not None and version in unl.summary.scores:
        from rwe.drift._cbpe import ESTIMABLE_METRICS, estimate_performance

        est_metrics = [s.name for s in mspecs if s.name in ESTIMABLE_METRICS
                       and (s.name == "auroc" or threshold is not None)]
        for g in groupings:
            grid = next(gr for d, gr in merged_grids[g] if d is unl)
            seg = _segments(unl.summary, grid.grouping, version, threshold)
            wins = grid.window_array
            levs = grid.level_array
            unlabelled_cells |= {(wins[i], grid.group, levs[i]) for i in range(grid.size)
                                 if seg.n[i] > 0}
            if est_metrics:
                est = estimate_performance(seg, metrics=est_metrics, threshold=threshold,
                                           confidence_level=level, n_sim=n_sim,
                                           random_state=random_state)
                for m, e in est.items():
                    perf_parts.append(_estimated_rows(m, wins, grid.group, levs, seg.n, e,
                                                      level))
    performance = (pd.concat(perf_parts, ignore_index=True) if perf_parts
                   else pd.DataFrame(columns=PERFORMANCE_COLUMNS))
    performance = _drop_label_free_gaps(performance, unl, unlabelled_cells)
    integrity = (pd.concat(integ_parts, ignore_index=True) if integ_parts
                 else pd.DataFrame(columns=INTEGRITY_COLUMNS))
    if cur is not None and cur.frame is not None:
        integrity = _duplicates(integrity, cur, roles, window)
    if unl is not None:
        diag_parts.append(_diagnostics(performance, integrity, state.get("last_labelled")))
    diagnostics = (pd.concat(diag_parts, ignore_index=True) if diag_parts
                   else pd.DataFrame(columns=DIAGNOSTIC_COLUMNS))

    # ------------------------------------------------------------------ charts
    risks = None
    if version in ref.summary.scores:
        pv, pc = _score_values(ref.summary, version)
        risks = charts.risk_atoms(np.repeat(pv, pc.astype(np.int64)))
    rules = ([_Rule.from_dict(r) for r in state["rules"]] if state.get("rules") is not None
             else _resolve_rules(alerts, risks=risks, baseline=baseline_vals,
                                 baseline_source=("baseline period" if base is not None
                                                  else "reference")))
    chart_state = dict(state.get("charts") or {})
    chart_rows, alarm_rows = [], []
    for rule in rules:
        if cur is None:
            continue
        if rule.method == "risk_adjusted_cusum":
            cr, ar = _ra_chart(rule, cur, windows, score_col, chart_state)
        else:
            cr, ar = _window_chart(rule, cur.summary, windows, window, version, threshold,
                                   level, min_n, chart_state)
        chart_rows += cr
        alarm_rows += ar
    charts_tab = pd.DataFrame(chart_rows, columns=CHART_COLUMNS)
    alarms_tab = pd.DataFrame(alarm_rows, columns=ALARM_COLUMNS)

    # ------------------------------------------------------------------ classifier
    clf_rows = []
    if want_classifier:
        clf_rows = _classifier(ref, [d for d in (cur, unl) if d is not None], feats, level,
                               thr[CLASSIFIER], classifier_max_rows, random_state)
    classifier_tab = pd.DataFrame(clf_rows, columns=CLASSIFIER_COLUMNS)

    # ------------------------------------------------------------------ assemble
    settings = {
        "window": window, "windows": list(windows),
        "groupings": [grouping_name(g) for g in groupings],
        "features": {f: kinds[f] for f in feats}, "tests": list(tests),
        "thresholds": thr, "decision": decision, "alpha": alpha, "metrics": [s.name for s in
                                                                             mspecs],
        "version": version, "threshold": threshold, "confidence_level": level,
        "feature_bins": feature_bins, "psi_bins": psi_bins, "exact": bool(exact),
        "min_n": min_n, "smd_threshold": smd_threshold, "n_sim": n_sim,
        "recalibration_memory": recalibration_memory,
        "reference": {"source": ref.source, "n": int(ref.summary.n_rows),
                      "labelled": ref.summary.events is not None},
        "baseline": None if base is None else {"source": base.source,
                                               "n": int(base.summary.n_rows)},
        "edges": {f: e.tolist() for f, e in edges.items()},
        "rules": [r.to_dict() for r in rules], "charts": chart_state,
        "small_cell_k": small_cell_k,
        "n": int(sum(d.summary.n_rows for d in sources)),
        "n_unlabelled": int(unl.summary.n_rows) if unl is not None else 0,
    }
    prevalence = (pd.concat(prev_parts, ignore_index=True) if prev_parts
                  else pd.DataFrame(columns=PREVALENCE_COLUMNS))
    if unl is not None and cur is not None and len(prevalence):
        # one row per window x level: the labelled one, else the unlabelled one (the
        # integrity table counts the unlabelled rows of partly labelled windows)
        rank = prevalence["status"].map({STATUS_OK: 0, STATUS_NO_LABELS: 1}).fillna(2)
        prevalence = (prevalence.assign(_r=rank).sort_values("_r", kind="stable")
                      .drop_duplicates(["window", "group", "level"]).drop(columns="_r")
                      .sort_index().reset_index(drop=True))
    case_mix = (pd.concat(cm_parts, ignore_index=True) if cm_parts
                else pd.DataFrame(columns=CASE_MIX_COLUMNS))
    recal = (pd.concat(recal_parts, ignore_index=True) if recal_parts
             else pd.DataFrame(columns=RECALIBRATION_COLUMNS))
    verdicts = _verdicts(drift_tab, classifier_tab, rules, charts_tab, alarms_tab, thr, decision,
                         level)
    findings = _findings(drift_tab, alarms_tab, charts_tab, rules, classifier_tab, case_mix,
                         integrity, diagnostics, performance, settings)
    return DriftResult(drift=drift_tab[DRIFT_COLUMNS], performance=performance[
        PERFORMANCE_COLUMNS], prevalence=prevalence[PREVALENCE_COLUMNS],
        case_mix=case_mix[CASE_MIX_COLUMNS], integrity=integrity[INTEGRITY_COLUMNS],
        recalibration=recal[RECALIBRATION_COLUMNS], diagnostics=diagnostics[DIAGNOSTIC_COLUMNS],
        classifier=classifier_tab, charts=charts_tab, alarms=alarms_tab,
        verdicts=tuple(verdicts), findings=tuple(findings), settings=settings)


def summarize_reference(reference: pd.DataFrame, *, roles, features: Sequence[str],
                        version: str | None = None, threshold: float | None = None,
                        feature_bins: int = DEFAULT_FEATURE_BINS) -> Summary:
    """The reference summary :func:`assess_drift` builds from rows: numeric features'
    histograms on edges fixed on these rows (:func:`rwe.drift.reference_edges`), categorical
    features' counts, and the score histogram of ``version`` (label-free when the rows have no
    label). Sites and partitions summarize their data with the same edges
    (``summary.features[f].edges``), and the monitor keeps it in its state."""
    if len(reference) == 0:
        raise DriftError("reference: the reference has no rows")
    kinds, edges = feature_edges(
        reference, features, feature_bins,
        absent=lambda f: DriftError(f"reference: feature {f!r} is absent from the reference"),
        empty=lambda f: DriftError(f"reference: feature {f!r} has no value in the reference"))
    version = str(version) if version is not None else next(iter(roles.scores))
    return _summarize(reference, label=roles.label, score=roles.scores.get(version),
                      version=version, attributes={}, features=list(features), kinds=kinds,
                      edges=edges, thresholds=(threshold,) if threshold is not None else ())


# ============================================================================ helpers
def feature_edges(reference: pd.DataFrame, features: Sequence[str], feature_bins: int, *,
                  absent: Callable[[str], Exception], empty: Callable[[str], Exception]
                  ) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """The kind of each feature and the histogram edges of the numeric ones, fixed on the
    reference rows (:func:`rwe.drift.reference_edges`), as every summary of the same drift
    analysis must use them (one machine, sites, partitions). ``absent(f)`` / ``empty(f)`` are
    the caller's errors for a feature missing from the rows or without a value there."""
    missing = [f for f in features if f not in reference.columns]
    if missing:
        raise absent(missing[0])
    kinds = _kinds(reference, features)
    edges = {}
    for f in features:
        if kinds[f] == "numeric":
            v = reference[f].to_numpy(dtype=np.float64, na_value=np.nan)
            if not np.isfinite(v).any():
                raise empty(f)
            edges[f] = reference_edges(v, feature_bins)
    return kinds, edges


def _norm_by(by: Any) -> tuple[tuple[str, ...], ...]:
    if isinstance(by, str):
        by = (by,)
    out: list[tuple[str, ...]] = [()]
    for g in by or ():
        if isinstance(g, str):
            out.append((g,))
        elif isinstance(g, Sequence) and g and all(isinstance(a, str) for a in g):
            if len(set(g)) != len(g):
                raise InvalidParameterError(f"grouping {tuple(g)!r} names an attribute twice")
            out.append(tuple(g))
        else:
            raise InvalidParameterError(
                f"by must contain attribute names or tuples of names, got {by!r}")
    return tuple(dict.fromkeys(out))


def _all_windows(summaries: Sequence[Summary], window: str) -> tuple[str, ...]:
    """Every calendar window from the first to the last with a row, in calendar order (the
    labels sort as text in calendar order)."""
    present = set()
    for s in summaries:
        wi = s.attributes.index(window)
        cats = s.cells.categories[wi]
        codes = s.cells.codes[:, wi]
        present |= {cats[c] for c in np.unique(codes[(codes >= 0) & (s.n > 0)])}
        present |= set(cats)  # calendar_window's gapless categories
    return tuple(sorted(present))


def _union_cats(rh: FeatureHist, summary: Summary, f: str) -> tuple[str, ...] | None:
    if rh.kind != "categorical":
        return None
    cats = list(rh.categories)
    for c in summary.features[f].categories:
        if c not in cats:
            cats.append(c)
    return tuple(cats)


def _reference(ref: Any, cur: _Data, roles, what: str) -> _Data:
    from rwe.data import EvaluationSet

    if ref is None:
        raise DriftError(f"{what}: give a reference (rows, a summary or a period of the current "
                         "data)")
    if isinstance(ref, Summary):
        if ref.n_rows == 0:
            raise DriftError(f"{what}: the reference summary has no rows")
        return _Data(summary=ref, source=f"{what} summary")
    if isinstance(ref, EvaluationSet):
        frame, source = ref.frame, ref.source
    elif isinstance(ref, pd.DataFrame):
        frame, source = ref, f"{what} rows"
    elif _is_period(ref) and cur.dask is not None:
        if what == "reference":
            raise DriftError(f"{what}: a period of a dask table cannot fix the feature bins; "
                             "give reference rows or a reference Summary")
        return _Data(roles=roles, source=f"{what} period {_period_text(ref)}",
                     dask=cur.dask.where(_PeriodRows(ref),
                                         source=f"{what} period {_period_text(ref)}"))
    elif _is_period(ref):
        if cur.frame is None:
            raise DriftError(f"{what}: a period needs current rows (not a summary)")
        mask = _period_mask(cur.frame[roles.timestamp], ref)
        frame = cur.frame.loc[mask]
        source = f"{what} period {_period_text(ref)}"
        if len(frame) == 0:
            ts = cur.frame[roles.timestamp]
            raise DriftError(f"{what} period {_period_text(ref)} has no rows: the data run "
                             f"from {ts.min()} to {ts.max()}")
    else:
        raise InvalidParameterError(
            f"{what} must be rows (EvaluationSet or DataFrame), a Summary or a period (start, "
            f"end), got {type(ref).__name__}")
    if len(frame) == 0:
        raise DriftError(f"{source}: the reference has no rows")
    return _Data(frame=frame, roles=roles, source=source)


def _judge(tab: pd.DataFrame, alpha: float, decision: str) -> pd.DataFrame:
    if tab.empty:
        return tab
    tab = tab.copy()
    adj = np.full(len(tab), np.nan)
    for _t, idx in tab.groupby("test", sort=False).groups.items():
        p = tab.loc[idx, "pvalue"].to_numpy(dtype=float)
        if np.isfinite(p).any():
            adj[tab.index.get_indexer(idx)] = _bh(p)
    tab["pvalue_adjusted"] = adj
    eff = tab["effect"].to_numpy(dtype=float)
    drifted = np.isfinite(eff) & (eff >= tab["threshold"].to_numpy(dtype=float))
    if decision == "effect_and_pvalue":
        has_p = np.isfinite(adj)
        drifted &= ~has_p | (adj < alpha)
    tab["drifted"] = drifted
    return tab


def _prevalence(d: _Data, grid: _Grid, ref: Summary, version: str, level: float,
                threshold: float | None = None) -> pd.DataFrame:
    from rwe.stats import proportion_ci

    n, ev = _counts(d.summary, grid.grouping.cell_to_level, grid.size)
    mean_p = np.full(grid.size, np.nan)
    if version in d.summary.scores:
        seg = _segments(d.summary, grid.grouping, version, threshold)
        with np.errstate(invalid="ignore", divide="ignore"):
            ps, _ = _score_sums(seg, seg.pos + seg.neg, np.asarray(seg.p, dtype=np.float64))
            mean_p = seg.seg_sum(ps) / seg.n
    rprev = (ref.n_events / ref.n_rows) if ref.events is not None and ref.n_rows else np.nan
    rmean = np.nan
    if version in ref.scores:
        pv, pc = _score_values(ref, version)
        rmean = float((pv * pc).sum() / pc.sum()) if pc.sum() > 0 else np.nan
    if ev is None:
        prev = lo = hi = np.full(grid.size, np.nan)
        ev_out = np.full(grid.size, -1)
        status = np.where(n == 0, STATUS_NO_DATA, STATUS_NO_LABELS)
    else:
        ci = proportion_ci(ev, n, confidence_level=level)
        with np.errstate(invalid="ignore", divide="ignore"):
            prev = np.where(n > 0, ev / np.maximum(n, 1), np.nan)
        lo, hi = np.atleast_1d(ci.low), np.atleast_1d(ci.high)
        ev_out = ev
        status = np.where(n == 0, STATUS_NO_DATA, STATUS_OK)
    return pd.DataFrame({
        "window": grid.window_array, "group": grid.group, "level": grid.level_array,
        "n": n.astype(np.int64), "events": np.asarray(ev_out).astype(np.int64), "prevalence": prev, "ci_low": lo,
        "ci_high": hi, "mean_predicted": mean_p, "reference_prevalence": rprev,
        "reference_mean_predicted": rmean, "status": status})


def _integrity(f: str, grid: _Grid, rh: FeatureHist, ch: FeatureHist,
               unlabelled: np.ndarray | None) -> pd.DataFrame:
    n_nonmiss = ch.n
    miss = ch.missing if ch.missing is not None else np.zeros(grid.size)
    n = n_nonmiss + miss
    if ch.kind == "numeric":
        oor = ch.counts[:, 0] + ch.counts[:, -1]
    else:
        unseen = np.array([rh.counts[0, j] == 0 for j in range(len(ch.categories))])
        oor = ch.counts[:, unseen].sum(axis=1) if unseen.any() else np.zeros(grid.size)
    rn = rh.n[0] + (rh.missing[0] if rh.missing is not None else 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame({
            "window": grid.window_array, "group": grid.group, "level": grid.level_array,
            "feature": f,
            "n": n.astype(np.int64), "missing": miss.astype(np.int64),
            "missing_share": np.where(n > 0, miss / n, np.nan),
            "reference_missing_share": (rh.missing[0] / rn) if rn > 0 else np.nan,
            "out_of_range": oor.astype(np.int64),
            "out_of_range_share": np.where(n_nonmiss > 0, oor / n_nonmiss, np.nan),
            "unlabelled": (np.zeros(grid.size) if unlabelled is None
                           else unlabelled).astype(np.int64),
            "duplicates": -1, "status": np.where(n == 0, STATUS_NO_DATA, STATUS_OK)})


def _duplicates(integ: pd.DataFrame, d: _Data, roles, window: str) -> pd.DataFrame:
    """Rows identical to an earlier row on the timestamp, scores, outcome and grouping columns
    (a record sent twice; ids and features excluded; compared by 64-bit row hashes), per window
    (overall level only). Text columns are hashed only for the rows that the other columns
    already pair with another row (a row equal to an earlier one is equal on every column, so
    the counts are those of hashing every row in full)."""
    cols = [c for c in roles.required_columns() if c != roles.id and c not in roles.features]
    frame = d.frame[cols]
    text = [c for c in cols if frame[c].dtype == object or pd.api.types.is_string_dtype(
        frame[c].dtype) and not isinstance(frame[c].dtype, pd.CategoricalDtype)]
    rest = [c for c in cols if c not in text]
    dup = np.zeros(len(frame), dtype=bool)
    if text and rest:
        cand = pd.util.hash_pandas_object(frame[rest], index=False).duplicated(
            keep=False).to_numpy()
        if cand.any():  # full row hashes of the candidates, in row order
            h = pd.util.hash_pandas_object(frame.loc[cand], index=False)
            dup[cand] = h.duplicated(keep="first").to_numpy()
    else:
        h = pd.util.hash_pandas_object(frame, index=False)  # 64-bit row hashes
        dup = h.duplicated(keep="first").to_numpy()
    w = d.windows.astype("string")
    counts = pd.Series(dup).groupby(w.to_numpy()).sum()
    integ = integ.copy()
    m = integ["group"] == "overall"
    integ.loc[m, "duplicates"] = integ.loc[m, "window"].map(counts).fillna(0).astype(np.int64)
    return integ


def _perf_rows(metric, windows, group, levels, n, events, v, level, min_n) -> pd.DataFrame:
    k = len(v.estimate)
    n = np.asarray(n, dtype=float)
    status = np.where(n == 0, STATUS_NO_DATA,
                      np.where(n < min_n, STATUS_INSUFFICIENT, STATUS_OK)).astype(object)
    reason = np.array([None if r is None else str(r) for r in v.reason], dtype=object)
    reason[n == 0] = "no data in this window"
    reason[(n > 0) & (n < min_n)] = f"fewer than min_n = {min_n} rows"
    return pd.DataFrame({
        "window": windows if not isinstance(windows, str) else [windows] * k,
        "group": group, "level": levels, "metric": metric, "n": n.astype(np.int64),
        "events": np.asarray(events, dtype=float).astype(np.int64),
        "estimate": np.asarray(v.estimate, dtype=float), "ci_low": np.asarray(v.low, float),
        "ci_high": np.asarray(v.high, float), "ci_level": level, "ci_method": v.method,
        "estimated": False, "status": status, "reason": reason})


def _estimated_rows(metric, windows, group, levels, n, e, level) -> pd.DataFrame:
    n = np.asarray(n, dtype=float)
    status = np.where(n == 0, STATUS_NO_DATA, STATUS_ESTIMATED).astype(object)
    reason = np.where(n == 0, "no data in this window",
                      "estimated from the scores assuming calibration (no labels yet)")
    return pd.DataFrame({
        "window": windows, "group": group, "level": levels, "metric": metric,
        "n": n.astype(np.int64), "events": -1, "estimate": e.estimate, "ci_low": e.low,
        "ci_high": e.high, "ci_level": level, "ci_method": "cbpe-parametric",
        "estimated": True, "status": status, "reason": reason.astype(object)})


def _drop_label_free_gaps(perf: pd.DataFrame, unl: _Data | None,
                          unlabelled_cells: set) -> pd.DataFrame:
    """A window x level with labelled rows keeps its observed row; its estimated row goes only
    where no labelled row exists (and the labelled part's empty rows go where estimates
    exist); a metric without an estimate in a window x level that has only unlabelled rows is
    ``"no_labels"``, not ``"no_data"``."""
    if unl is None or perf.empty:
        return perf
    perf = perf.copy()
    nolab = np.array([(not e) and st == STATUS_NO_DATA and (w, g, lv) in unlabelled_cells
                      for w, g, lv, e, st in zip(perf["window"], perf["group"], perf["level"],
                                                 perf["estimated"], perf["status"],
                                                 strict=True)], dtype=bool)
    perf.loc[nolab, "status"] = STATUS_NO_LABELS
    perf.loc[nolab, "reason"] = "no labels yet: not estimable without outcomes"
    key = ["window", "group", "level", "metric"]
    obs = perf[~perf["estimated"] & ~perf["status"].isin([STATUS_NO_DATA, STATUS_NO_LABELS])]
    have = set(map(tuple, obs[key].to_numpy().tolist()))
    est_keys = _est_keys(perf)
    keep = []
    for r in perf[key + ["estimated", "status"]].itertuples(index=False):
        k = (r.window, r.group, r.level, r.metric)
        if r.estimated:
            keep.append(k not in have)
        else:
            keep.append(not (r.status in (STATUS_NO_DATA, STATUS_NO_LABELS)
                             and k in est_keys))
    return perf[np.asarray(keep, dtype=bool)].reset_index(drop=True)


def _est_keys(perf: pd.DataFrame) -> set:
    est = perf[perf["estimated"] & (perf["status"] != STATUS_NO_DATA)]
    return set(map(tuple, est[["window", "group", "level", "metric"]].to_numpy().tolist()))


def _dynamic_recalibration(seg, grid: _Grid, memory: float, min_weight: float = 0.05
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Intercept and slope of ``logit P(y) = a + b logit(p)`` per window x level, fitted on the
    rows of that level in every window up to this one with weights ``memory^(t - s)`` (windows
    weighing less than ``min_weight`` left out): the dynamic recalibration curve of Davis et al.
    (2020) computed with exponential forgetting instead of online SGD updates. The weights are
    not frequencies, so the fit has no sampling interval. The maximum-likelihood fits of all
    windows x levels at once from per-window moments of the rows
    (:func:`rwe.drift._dynamic.dynamic_fits`: the row-level estimates to floating-point
    accuracy, each row summarized once instead of once per window it enters)."""
    from rwe.drift._dynamic import dynamic_fits

    L, W = len(grid.levels), len(grid.windows)
    depth = W if memory >= 1 else min(W, int(math.floor(math.log(min_weight)
                                                        / math.log(memory))) + 1)
    return dynamic_fits(np.asarray(seg.lp, dtype=np.float64), seg.pos, seg.pos + seg.neg,
                        seg.starts, W, L, memory, depth)


def _recalibration(seg, windows, group, levels, kctx, min_n, grid: _Grid | None = None,
                   memory: float = 0.7) -> pd.DataFrame:
    from rwe.metrics import get_metric

    v = _kernel(get_metric("calibration_slope"), seg, kctx)
    n = seg.n
    da = db = np.full(seg.n_segments, np.nan)
    if grid is not None:
        da, db = _dynamic_recalibration(seg, grid, memory)
    status = np.where(n == 0, STATUS_NO_DATA, np.where(n < min_n, STATUS_INSUFFICIENT,
                                                       np.where(np.isfinite(v.estimate),
                                                                STATUS_OK,
                                                                STATUS_NOT_EVALUABLE)))
    return pd.DataFrame({
        "window": windows, "group": group, "level": levels, "n": n.astype(np.int64),
        "events": seg.n_pos.astype(np.int64), "intercept": v.extras["intercept"],
        "intercept_se": v.extras["intercept_se"], "slope": v.estimate,
        "slope_se": v.extras["se"], "dynamic_intercept": da, "dynamic_slope": db,
        "status": status,
        "reason": np.array([None if r is None else str(r) for r in v.reason], dtype=object)})


def last_labelled(perf: pd.DataFrame, previous: Mapping[str, Any] | None = None
                  ) -> dict[str, Any]:
    """Per ``group|level``: the last window with observed calibration (CITL and slope with
    their intervals), updated from a performance table (what the monitor state carries to the
    label-free diagnostics of later runs)."""
    out = {k: dict(v) for k, v in (previous or {}).items()}
    obs = perf[~perf["estimated"] & (perf["status"] == STATUS_OK)
               & perf["metric"].isin(["calibration_intercept", "calibration_slope"])
               & ~perf["window"].isin([REFERENCE_WINDOW, BASELINE_WINDOW])]
    for (g, lev), d in obs.groupby(["group", "level"], sort=False):
        w = d["window"].max()
        key = f"{g}|{lev}"
        if key in out and out[key]["window"] >= w:
            continue
        rec = {"window": w}
        for m, d2 in d[d["window"] == w].groupby("metric"):
            rec[m] = [float(d2["estimate"].iloc[0]), float(d2["ci_low"].iloc[0]),
                      float(d2["ci_high"].iloc[0])]
        out[key] = rec
    return out


def _diagnostics(perf, integ, previous: Mapping[str, Any] | None) -> pd.DataFrame:
    """Per unlabelled window x level: calibration of the last labelled window of the same
    level before it (CITL and slope with intervals; from this run's tables, else from the
    monitor state's record) and the share of rows outside the reference's support (largest
    over the features)."""
    est = perf[perf["estimated"] & (perf["status"] == STATUS_ESTIMATED)]
    cells = est[["window", "group", "level"]].drop_duplicates()
    rows = []
    for r in cells.itertuples(index=False):
        prior = perf[~perf["window"].isin([REFERENCE_WINDOW, BASELINE_WINDOW])
                     & (perf["window"] < r.window)]
        rec = last_labelled(prior, previous).get(f"{r.group}|{r.level}")
        last = None if rec is None else rec["window"]
        vals = {m: tuple(rec.get(m, (np.nan,) * 3)) if rec else (np.nan,) * 3
                for m in ("calibration_intercept", "calibration_slope")}
        ci, sl = vals["calibration_intercept"], vals["calibration_slope"]
        cal_ok = None
        if np.isfinite(ci[1]) or np.isfinite(sl[1]):
            cal_ok = bool((not np.isfinite(ci[1]) or ci[1] <= 0 <= ci[2])
                          and (not np.isfinite(sl[1]) or sl[1] <= 1 <= sl[2]))
        sup = integ[(integ["window"] == r.window) & (integ["group"] == r.group)
                    & (integ["level"] == r.level)]["out_of_range_share"]
        share = float(np.nanmax(sup.to_numpy(dtype=float))) if sup.notna().any() else np.nan
        sup_ok = bool(share < OUT_OF_SUPPORT_LIMIT) if np.isfinite(share) else None
        assumption = ("calibration of the last labelled window and coverage of the reference's "
                      "support")
        if last is None:
            assumption = "no labelled window before: calibration cannot be checked"
        rows.append((r.window, r.group, r.level, last, *ci, *sl, cal_ok, share, sup_ok,
                     assumption))
    return pd.DataFrame(rows, columns=DIAGNOSTIC_COLUMNS)


# ---------------------------------------------------------------------------- charts
def _window_chart(rule: _Rule, summary: Summary, windows, window, version, threshold, level,
                  min_n, chart_state) -> tuple[list, list]:
    from rwe.metrics import get_metric
    from rwe.metrics._registry import KernelContext

    grid = _grid(summary, window, rule.by, windows)
    seg = _segments(summary, grid.grouping, version, threshold)
    spec = get_metric(rule.metric)
    v = _kernel(spec, seg, KernelContext(confidence_level=level, threshold=threshold))
    est = np.asarray(v.estimate, dtype=float)
    se = _se(v, rule.metric, level)
    n = seg.n
    use = (n >= min_n) & np.isfinite(est) & np.isfinite(se) & (se > 0)
    rows, alarms = [], []
    L = len(grid.levels)
    for j, lev in enumerate(grid.levels):
        idx = np.arange(len(grid.windows)) * L + j
        key = f"{rule.id}|{grid.group}|{lev}"
        st = dict(chart_state.get(key) or {})
        since = int(st.pop("since", 0))
        z = np.full(idx.size, np.nan)
        if rule.method in ("cusum", "ewma"):
            tot = np.sqrt(se[idx] ** 2 + rule.target_se ** 2)
            z = np.where(use[idx], (est[idx] - rule.target) / tot, np.nan)
        if rule.method == "cusum":
            path = charts.cusum_path(z, k=rule.params["k"], h=rule.params["h"], side=rule.side,
                                     state=st or None)
            up, lo, lim = path.upper, path.lower, path.limit
            alarm, sides, new_state = path.alarm, path.side_alarm, path.state
            crossed = path.crossed
        elif rule.method == "ewma":
            path = charts.ewma_path(z, lam=rule.params["lambda"], L=rule.params["L"],
                                    side=rule.side, state=st or None, asymptotic=True)
            up, lo, lim = path.upper, path.lower, path.limit
            alarm, sides, new_state = path.alarm, path.side_alarm, path.state
            crossed = path.crossed
        else:  # threshold
            lo_b, hi_b = np.asarray(v.low)[idx], np.asarray(v.high)[idx]
            t = float(rule.threshold)
            if spec.higher_is_better is True:
                alarm = use[idx] & (hi_b < t)
            elif spec.higher_is_better is False:
                alarm = use[idx] & (lo_b > t)
            else:
                alarm = use[idx] & ((lo_b > spec.target + t) | (hi_b < spec.target - t))
            up, lo, lim = hi_b, lo_b, np.full(idx.size, t)
            sides = np.where(alarm, "bound", None).astype(object)
            new_state = {}
            crossed = est[idx]
        for t_i, i in enumerate(idx):
            since += 1 if np.isfinite(z[t_i]) or rule.method == "threshold" else 0
            status = (STATUS_NO_DATA if n[i] == 0 else
                      STATUS_INSUFFICIENT if n[i] < min_n else
                      STATUS_OK if use[i] else STATUS_NOT_EVALUABLE)
            rows.append((rule.id, rule.method, rule.metric, grid.group, lev, grid.windows[t_i],
                         int(n[i]), est[i], z[t_i], up[t_i], lo[t_i], lim[t_i],
                         bool(alarm[t_i]), sides[t_i], status))
            if alarm[t_i]:
                alarms.append((rule.id, rule.method, rule.metric, grid.group, lev,
                               grid.windows[t_i], float(crossed[t_i]), float(lim[t_i]),
                               sides[t_i], since, WINDOW_UNIT))
                since = 0
        chart_state[key] = {**new_state, "since": since}
    return rows, alarms


def _ra_chart(rule: _Rule, cur: _Data, windows, score_col: str | None, chart_state
              ) -> tuple[list, list]:
    """The risk-adjusted CUSUM over each level's cases in time order (needs rows)."""
    group = grouping_name(rule.by)
    if cur.frame is None or score_col is None or cur.roles.label is None:
        return [(rule.id, rule.method, "calibration", group, "all", None, 0, np.nan, np.nan,
                 np.nan, np.nan, np.nan, False, None, STATUS_NOT_EVALUABLE)], []
    roles = cur.roles
    order = np.argsort(cur.frame[roles.timestamp].to_numpy(), kind="stable")
    fr = cur.frame.iloc[order]
    p = fr[score_col].to_numpy(dtype=np.float64)
    y = fr[roles.label].to_numpy(dtype=bool)
    w = cur.windows.iloc[order].astype("string").to_numpy(dtype=object, na_value=None)
    if rule.by:
        lab = fr[rule.by[0]].astype("string")
        for a in rule.by[1:]:
            lab = lab + LEVEL_SEP + fr[a].astype("string")
        lab = lab.to_numpy(dtype=object, na_value=None)
        levels = sorted({x for x in lab if x is not None})
    else:
        lab = np.full(len(fr), "all", dtype=object)
        levels = ["all"]
    r = rule.params["odds_ratio"]
    sides = {"upper": (r, rule.params["h_upper"]), "lower": (1 / r, rule.params["h_lower"])}
    use = ["upper", "lower"] if rule.side == "two-sided" else [rule.side]
    rows, alarms = [], []
    for lev in levels:
        m = lab == lev
        key = f"{rule.id}|{group}|{lev}"
        st = dict(chart_state.get(key) or {})
        wl = w[m]
        new_state: dict[str, float] = {}
        stat = {sd: {} for sd in use}
        hit_windows: dict[str, str] = {}
        for sd in use:
            ratio, h = sides[sd]
            path = charts.ra_cusum_path(p[m], y[m], odds_ratio=ratio, h=h,
                                        state=float(st.get(sd, 0.0)))
            since = int(st.get(f"since_{sd}", 0))
            apos = np.flatnonzero(path.alarm)
            prev = -1
            for a_i in apos:
                run = (since if prev < 0 else 0) + int(a_i - prev)
                alarms.append((rule.id, rule.method, "calibration", group, lev, wl[a_i],
                               float(path.crossed[a_i]), float(h), sd, run, RA_UNIT))
                hit_windows.setdefault(wl[a_i], sd)
                prev = int(a_i)
            n_cases = int(m.sum())
            new_state[sd] = float(path.state["value"]) if n_cases else float(st.get(sd, 0.0))
            new_state[f"since_{sd}"] = (n_cases - 1 - prev) if prev >= 0 else since + n_cases
            for win in windows:
                pos = np.flatnonzero(wl == win)
                if pos.size:
                    stat[sd][win] = float(path.upper[pos[-1]])
        for win in windows:
            inw = wl == win
            nwin = int(inw.sum())
            with np.errstate(invalid="ignore", divide="ignore"):
                oe = float(y[m][inw].sum() / p[m][inw].sum()) if nwin else np.nan
            rows.append((rule.id, rule.method, "calibration", group, lev, win, nwin, oe, np.nan,
                         stat.get("upper", {}).get(win, np.nan),
                         stat.get("lower", {}).get(win, np.nan), sides[use[0]][1],
                         win in hit_windows, hit_windows.get(win),
                         STATUS_OK if nwin else STATUS_NO_DATA))
        chart_state[key] = new_state
    return rows, alarms


# ---------------------------------------------------------------------------- classifier
def _classifier(ref: _Data, current: list[_Data], feats, level, thr, max_rows, seed) -> list:
    from rwe.drift._classifier import classifier_test

    if ref.frame is None or any(d.frame is None for d in current):
        notes = [d.dask.rows_note for d in (ref, *current) if d.dask is not None]
        return [("all", int(ref.summary.n_rows), 0, np.nan, np.nan, np.nan, np.nan, thr, False,
                 None, None, "the classifier test needs rows of both samples (not summaries)"
                 + "".join(f"; {n}" for n in dict.fromkeys(notes)))]
    frame = pd.concat([d.frame[feats] for d in current], ignore_index=True)
    r = classifier_test(ref.frame[feats], frame, list(feats), confidence_level=level,
                        random_state=seed, max_rows=max_rows)
    top = [k for k, v in r.importance.items() if v > 0][:3]
    return [("all", r.n_reference, r.n_current, r.auroc, r.ci_low, r.ci_high, r.pvalue, thr,
             bool(np.isfinite(r.auroc) and r.auroc >= thr), ", ".join(top) or None,
             float(next(iter(r.importance.values()))) if r.importance else np.nan, r.reason)]


# ---------------------------------------------------------------------------- verdicts
def _verdicts(drift_tab, clf, rules, charts_tab, alarms_tab, thr, decision, level: float = 0.95
              ) -> list[Verdict]:
    out = []
    for (role, test), d in drift_tab.groupby(["role", "test"], sort=False):
        t = float(d["threshold"].iloc[0])
        name = d["effect_name"].iloc[0]
        feats = sorted(d["feature"].unique())
        vid = verdict_id("drift", "input" if role == "input" else "prediction",
                         {"test": test, "threshold": t, "features": feats,
                          "decision": decision}, label=test)
        ev = d[d["status"] == STATUS_OK]
        status = (STATUS_FAIL if bool(d["drifted"].any()) else
                  STATUS_PASS if len(ev) and len(ev) == (d["status"] != STATUS_NO_DATA).sum()
                  else STATUS_NOT_EVALUABLE)
        what = "input features" if role == "input" else "predicted scores"
        crit = f"{what}: {test} {name} < {t:g} in every window x level"
        worst = ev.loc[ev["effect"].astype(float).idxmax()] if len(ev) else None
        out.append(Verdict(
            vid, "drift", "check", crit, status,
            estimate=None if worst is None else float(worst["effect"]), goal=t,
            reason=(f"{int(d['drifted'].sum())} of {len(ev)} cells drifted" if status ==
                    STATUS_FAIL else None if status == STATUS_PASS else
                    "some cells could not be evaluated"),
            source="drift.tests", counts={"drifted": int(d["drifted"].sum()),
                                          "evaluated": len(ev),
                                          "no_data": int((d["status"] == STATUS_NO_DATA).sum())}))
    for r in clf.itertuples(index=False):
        vid = verdict_id("drift", "classifier", {"threshold": r.threshold}, label="classifier")
        st = (STATUS_NOT_EVALUABLE if not np.isfinite(r.auroc) else
              STATUS_FAIL if r.drifted else STATUS_PASS)
        out.append(Verdict(vid, "drift", "check",
                           f"domain classifier AUROC < {r.threshold:g} (multivariate input drift)",
                           st, estimate=None if not np.isfinite(r.auroc) else float(r.auroc),
                           interval=None if not np.isfinite(r.ci_low) else Interval(
                               float(r.ci_low), float(r.ci_high), level, "delong"),
                           goal=float(r.threshold), reason=r.reason, source="drift.tests"))
    for rule in rules:
        c = charts_tab[charts_tab["rule"] == rule.id]
        a = alarms_tab[alarms_tab["rule"] == rule.id]
        cells = []
        for lev, d in c.groupby("level", sort=False):
            al = a[a["level"] == lev]
            usable = (d["status"] == STATUS_OK).any()
            st = STATUS_FAIL if len(al) else (STATUS_PASS if usable else STATUS_NOT_EVALUABLE)
            cells.append({"group": d["group"].iloc[0], "level": lev, "status": st,
                          "first_alarm": None if al.empty else al["window"].iloc[0],
                          "run_length": None if al.empty else int(al["run_length"].iloc[0]),
                          "alarms": len(al), "n": int(d["n"].sum())})
        # fail if a level alarmed; pass only if every level had usable windows and none did
        status = combine_statuses([c_["status"] for c_ in cells]) if cells else \
            STATUS_NOT_EVALUABLE
        reason = None
        if status == STATUS_FAIL:
            hit = [c_ for c_ in cells if c_["status"] == STATUS_FAIL]
            reason = "alarm at " + ", ".join(f"{c_['level']} (from {c_['first_alarm']})"
                                             for c_ in hit)
        elif status == STATUS_NOT_EVALUABLE:
            reason = "some levels have no usable window (no data, too few rows or no labels)"
        out.append(Verdict(rule.id, "drift", "check", rule.criterion, status, reason=reason,
                           source=rule.source or f"drift.alerts[{rule.index}]",
                           counts={s: sum(1 for c_ in cells if c_["status"] == s)
                                   for s in (STATUS_PASS, STATUS_FAIL, STATUS_NOT_EVALUABLE)},
                           cells=tuple(cells)))
    return out


def _findings(drift_tab, alarms_tab, charts_tab, rules, clf, case_mix, integ, diag, perf,
              settings) -> list[Finding]:
    out: list[Finding] = []
    for (role, feature, test), d in drift_tab.groupby(["role", "feature", "test"], sort=False):
        hit = d[d["drifted"]]
        if hit.empty:
            continue
        w = hit.loc[hit["effect"].astype(float).idxmax()]
        vals = {"effect_name": d["effect_name"].iloc[0],
                "threshold": float(d["threshold"].iloc[0]), "drifted": len(hit),
                "cells": int((d["status"] == STATUS_OK).sum()),
                "max_effect": float(w["effect"]),
                "where": f"{w['window']}, {w['group']} = {w['level']}",
                "first": str(hit["window"].min()), "version": settings.get("version")}
        if role == "input":
            out.append(Finding("drift.input", {"feature": feature, "test": test}, vals,
                               {"n": int(w["n"])}, "warning"))
        else:
            out.append(Finding("drift.prediction", {"feature": feature, "test": test}, vals,
                               {"n": int(w["n"])}, "warning"))
    for rule in rules:
        a = alarms_tab[alarms_tab["rule"] == rule.id]
        c = charts_tab[charts_tab["rule"] == rule.id]
        limit = (rule.params.get("h") or rule.params.get("L") or rule.params.get("h_upper")
                 or rule.threshold or math.nan)
        if a.empty:
            out.append(Finding("drift.no_alarm", {"rule": rule.id},
                               {"method": rule.method, "metric": rule.metric or "calibration",
                                "group": grouping_name(rule.by), "levels": c["level"].nunique(),
                                "limit": float(limit), "arl0": float(rule.arl0_achieved),
                                "unit": rule.unit}))
            continue
        for lev, d in a.groupby("level", sort=False):
            f0 = d.iloc[0]
            out.append(Finding("drift.alarm", {"rule": rule.id, "group": f0["group"],
                                               "level": lev},
                               {"method": rule.method, "metric": rule.metric or "calibration",
                                "window": f0["window"], "run_length": int(f0["run_length"]),
                                "unit": f0["run_length_unit"], "alarms": len(d)},
                               {}, "critical"))
    for r in clf.itertuples(index=False):
        if np.isfinite(r.auroc):
            out.append(Finding("drift.classifier", {"test": CLASSIFIER},
                               {"window": "all windows" if r.window == "all" else r.window,
                                "auroc": r.auroc, "ci_low": r.ci_low, "ci_high": r.ci_high,
                                "level": settings["confidence_level"],
                                "top": r.top_features or "no single feature"},
                               {"n": int(r.n)}, "warning" if r.drifted else "info"))
    empty = drift_tab[drift_tab["status"] == STATUS_NO_DATA][["window", "group", "level"]]
    empty = empty.drop_duplicates()
    if len(empty):
        e0 = empty.iloc[0]
        out.append(Finding("drift.no_data", {}, {"windows": len(empty),
                                                  "example": f"{e0['window']}, {e0['group']} = "
                                                             f"{e0['level']}"}))
    if len(diag):
        doubtful = int(((diag["calibration_ok"] == False) | (diag["support_ok"] == False)  # noqa: E712
                        | diag["calibration_ok"].isna()).sum())
        out.append(Finding("drift.estimated", {}, {"windows": len(diag), "doubtful": doubtful},
                           {}, "warning"))
    flagged = case_mix[case_mix["flagged"] == True]  # noqa: E712
    if len(flagged):
        w = flagged.loc[flagged["smd"].abs().astype(float).idxmax()]
        out.append(Finding("drift.case_mix", {}, {"cells": len(flagged),
                                                  "threshold": settings["smd_threshold"],
                                                  "feature": w["feature"],
                                                  "category": w["category"],
                                                  "smd": float(w["smd"])}, {}, "warning"))
    ov = integ[integ["group"] == "overall"]
    for f, d in ov.groupby("feature", sort=False):
        oor = int(d["out_of_range"].sum())
        if oor:
            nn = int((d["n"] - d["missing"]).sum())
            out.append(Finding("drift.integrity", {"feature": f},
                               {"out_of_range": oor, "share": oor / nn if nn else math.nan,
                                "missing": int(d["missing"].sum())}, {}, "info"))
    return out


# ============================================================================ protocol
def drift_from_protocol(protocol, data=None, **overrides) -> DriftResult:
    """Run :func:`assess_drift` as written in a protocol's ``drift`` section.

    The reference is ``data.reference_rows`` or ``drift.reference_period`` (``drift.reference``
    chooses; default: the rows when given), the baseline of charted metrics without a target
    value the reference period; window, features, tests, thresholds, decision, alpha, groupings
    (``drift.by``), metrics, alert rules, bins and ``min_n`` come from the drift section, the
    version, threshold and confidence level from ``performance``.

    Parameters
    ----------
    protocol : rwe.protocol.Protocol or path
    data : EvaluationSet, DaskEvaluationSet or Summary, optional
        Default: the protocol's data (:meth:`rwe.protocol.Protocol.open_data`: in memory, or
        with ``data.engine: dask`` in partitions on the cluster of ``data.dask``, started for
        this call and closed after it).
    **overrides
        Keyword arguments of :func:`assess_drift` that replace the protocol's.
    """
    if not hasattr(protocol, "drift"):
        from rwe.protocol import load_protocol

        protocol = load_protocol(protocol)
    d = protocol.drift
    if d is None:
        raise DriftError(f"{protocol.path or '<protocol>'}: the protocol has no drift section")
    if data is not None:  # any protocol-like object (the plan's fields) will do
        return _from_protocol(protocol, data, overrides)
    with protocol.open_data() as data:
        return _from_protocol(protocol, data, overrides)


def _from_protocol(protocol, data, overrides) -> DriftResult:
    d = protocol.drift
    if callable(getattr(data, "summarize", None)) and not isinstance(data, Summary):
        # what a dask table cannot do, refused at the protocol field that asks for it
        note = data.rows_note
        if d.exact and "exact" not in overrides:
            raise DriftError(f"{protocol.locate(('drift', 'exact'))}: exact=True needs rows "
                             f"of the reference and of the current data (not summaries); {note}")
        ref_kind = d.reference or ("reference_rows" if protocol.data.reference_rows else
                                   "reference_period")
        if ref_kind == "reference_period" and "reference" not in overrides:
            field = ("drift", "reference") if d.reference else ("drift", "reference_period")
            raise DriftError(f"{protocol.locate(field)}: reference: a period of a dask table "
                             "cannot fix the feature bins; give reference rows "
                             f"(data.reference_rows) or a reference Summary; {note}")
    kwargs = drift_kwargs(protocol, data)
    kwargs.update(overrides)
    if "tests" in overrides and "thresholds" not in overrides:  # the protocol's, for these
        kwargs["thresholds"] = {k: v for k, v in kwargs["thresholds"].items()
                                if k in overrides["tests"]}
    return assess_drift(data, **kwargs)


def drift_kwargs(protocol, data=None) -> dict[str, Any]:
    """The keyword arguments of :func:`assess_drift` a protocol states (the reference loaded)."""
    d = protocol.drift
    ref_kind = d.reference or ("reference_rows" if protocol.data.reference_rows else
                               "reference_period")
    if ref_kind == "reference_rows":
        if protocol.data.reference_rows is None:
            raise DriftError(protocol.locate(("drift", "reference")) + ": reference_rows is "
                             "chosen but data.reference_rows is not set")
        reference = protocol.load_reference_rows()
    else:
        if d.reference_period is None:
            raise DriftError(protocol.locate(("drift", "reference")) + ": reference_period is "
                             "chosen but drift.reference_period is not set")
        reference = d.reference_period
    alerts = []
    for i, a in enumerate(d.alerts):
        x = a.model_dump()
        x["_source"] = protocol.locate(("drift", "alerts", i))
        alerts.append(x)
    perf = protocol.performance
    return dict(
        reference=reference, window=d.window, by=list(d.by), features=list(d.features) or None,
        tests=list(d.tests), thresholds=dict(d.thresholds), decision=d.decision, alpha=d.alpha,
        metrics=list(d.metrics), threshold=perf.threshold, version=protocol.version,
        alerts=alerts, baseline=d.reference_period, confidence_level=perf.confidence_level,
        feature_bins=d.feature_bins, psi_bins=d.psi_bins, exact=d.exact, min_n=d.min_n,
        recalibration_memory=d.recalibration_memory,
        smd_threshold=protocol.population.smd_threshold, random_state=perf.seed,
        small_cell_k=protocol.report.small_cell_k)
