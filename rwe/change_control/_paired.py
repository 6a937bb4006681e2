"""Paired comparisons of two model versions on the same cases, cell by cell.

Every number here comes from *rows*: a paired comparison needs both versions' scores on the
same cases, which a :class:`rwe.stats.summaries.Summary` does not keep (it holds one score
histogram per version, not their joint distribution). The primitives are those of
:mod:`rwe.stats`:

=========================  =================================================================
metric                     improvement of the candidate over a comparator, and its interval
=========================  =================================================================
auroc                      AUROC difference, paired DeLong (Obuchowski's clustered DeLong when
                           patients repeat) - :func:`rwe.stats.delong_test`
sensitivity, specificity   difference of the paired proportions at the operating threshold:
                           Tango's score or Newcombe's hybrid score interval (the protocol's
                           ``paired_interval``), the inverted test for the p value; with
                           repeated patients the cluster-robust Wald interval -
                           :func:`rwe.stats.paired_difference`
calibration_slope,         reduction of the distance to the target (``|comparator - 1| -
calibration_intercept      |candidate - 1|`` for the slope, ``|comparator| - |candidate|`` for
                           calibration-in-the-large): point estimate from the rows
                           (:func:`rwe.stats.fit_logistic`), standard error from the paired
                           (patient-cluster) Poisson bootstrap, normal interval
=========================  =================================================================

Calibration replicates share one weight per patient (or row) across both versions and every
subgroup, drawn by :func:`rwe.stats._poisson.poisson_bootstrap_counts`; each replicate's fit
uses the replicate's counts in :data:`CALIBRATION_BINS` quantile bins of each version's logit
(the bin's mean logit as covariate), while the point estimate uses every row. The interval is
normal on the bootstrap standard error rather than percentile: the online procedures test at
levels far in the tails (alpha_t of 0.001 or less), where percentiles of a thousand replicates
are unreliable.

A goal criterion judges the candidate alone: Wilson's score interval for a proportion (the
cluster-robust Wald interval with repeated patients), DeLong's for the AUROC.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

__all__ = ["CALIBRATION_BINS", "MIN_BOOT_FRACTION", "CellData", "Grouping", "cell_rows",
           "compare_cells", "roc_points"]

#: Quantile bins of each version's logit used by a calibration replicate.
CALIBRATION_BINS = 256
#: A calibration cell needs at least this share of finite replicates for a standard error.
MIN_BOOT_FRACTION = 0.95
_TARGET = {"calibration_slope": 1.0, "calibration_intercept": 0.0}
_QUANTITY = {
    "auroc": "AUROC difference (candidate - comparator)",
    "sensitivity": "sensitivity difference (candidate - comparator)",
    "specificity": "specificity difference (candidate - comparator)",
    "calibration_slope": "reduction of |calibration slope - 1| (comparator - candidate)",
    "calibration_intercept": "reduction of |calibration-in-the-large| (comparator - candidate)",
}
_GOAL_QUANTITY = {"auroc": "AUROC of the candidate", "sensitivity": "sensitivity of the "
                  "candidate", "specificity": "specificity of the candidate"}


@dataclass(frozen=True)
class Grouping:
    """A grouping of the rows: ``codes`` per row (-1: no value), its level labels."""

    name: str
    n_attributes: int
    codes: np.ndarray
    levels: tuple[str, ...]


@dataclass(frozen=True)
class CellData:
    """What the comparisons read: labels, every version's scores, patient codes (None when the
    comparison does not cluster), the operating threshold and the groupings (overall first)."""

    y: np.ndarray
    scores: dict[str, np.ndarray]
    clusters: np.ndarray | None
    threshold: float
    groupings: tuple[Grouping, ...]


def cell_rows(data: CellData) -> dict[tuple[int, int], np.ndarray]:
    """Row indices of every (grouping, level) cell."""
    out: dict[tuple[int, int], np.ndarray] = {}
    for gi, g in enumerate(data.groupings):
        order = np.argsort(g.codes, kind="stable")
        sc = g.codes[order]
        bounds = np.searchsorted(sc, np.arange(len(g.levels) + 1))
        for li in range(len(g.levels)):
            out[(gi, li)] = order[bounds[li]:bounds[li + 1]]
    return out


def _z(alpha: float) -> float:
    return float(special.ndtri(1.0 - alpha))


def _wald(est: float, se: float, thr: float, alpha: float) -> tuple[float, float, float]:
    z = _z(alpha)
    if not (math.isfinite(est) and math.isfinite(se)):
        return math.nan, math.nan, math.nan
    lo, hi = est - z * se, est + z * se
    d = est - thr
    if se > 0:
        p = float(special.ndtr(-d / se))
    else:
        p = 0.0 if d > 0 else 1.0
    return lo, hi, p


def _auroc(y, sc, sr, cl, thr, alpha):
    from rwe.stats import delong_test

    t = delong_test(y, sc, sr, clusters=cl, confidence_level=1 - 2 * alpha)
    lo, hi, p = _wald(t.difference, t.se, thr, alpha)
    return t.auc_a, t.auc_b, t.difference, t.se, lo, hi, p, t.method, \
        {"difference_pvalue": t.pvalue, "difference_test": t.method}


def _proportion(pos_c, pos_r, cl, thr, alpha, method):
    from rwe.stats import mcnemar_from_counts, paired_difference

    r = paired_difference(pos_c, pos_r, method=method, clusters=cl)
    ci = r.confidence_interval(1 - 2 * alpha)
    p = float(r.pvalue(null=max(-1 + 1e-12, min(1 - 1e-12, thr))))
    if cl is None:  # equality: McNemar's mid-P test (Fagerland et al. 2013)
        eq = mcnemar_from_counts(r.b, r.c, n=r.n, method="mid-p")
        extra = {"difference_pvalue": eq.pvalue, "difference_test": "mcnemar-mid-p"}
    else:  # McNemar assumes independent pairs: the cluster-robust Wald test of 0
        extra = {"difference_pvalue": r.pvalue(null=0.0, alternative="two-sided"),
                 "difference_test": "clustered-wald"}
    return r.p1, r.p2, r.estimate, r.se, float(ci.low), float(ci.high), p, r.method, \
        {"discordant_candidate": r.b, "discordant_comparator": r.c, **extra}


def _goal_proportion(pos, cl, goal, alpha):
    from rwe.stats import proportion_ci

    n = pos.size
    x = int(pos.sum())
    est = x / n
    if cl is None:
        ci = proportion_ci(x, n, confidence_level=1 - 2 * alpha)
        se0 = math.sqrt(goal * (1 - goal) / n) if 0 < goal < 1 else 0.0
        d = est - goal
        p = float(special.ndtr(-d / se0)) if se0 > 0 else (0.0 if d > 0 else 1.0)
        return est, float(ci.low), float(ci.high), p, "wilson"
    _, inv = np.unique(cl, return_inverse=True)
    inv = inv.reshape(-1)
    k = int(inv.max()) + 1
    xs = np.bincount(inv, weights=pos.astype(float), minlength=k)
    m = np.bincount(inv, minlength=k).astype(float)
    se = math.sqrt(k / (k - 1) * float(((xs - est * m) ** 2).sum())) / n if k > 1 else math.nan
    lo, hi, p = _wald(est, se, goal, alpha)
    return est, max(0.0, lo), min(1.0, hi), p, "clustered-wald"


def _goal_auroc(y, s, cl, goal, alpha):
    from rwe.stats import delong_covariance

    aucs, cov = delong_covariance(y, s[None, :], clusters=cl)
    est, se = float(aucs[0]), math.sqrt(max(float(cov[0, 0]), 0.0))
    lo, hi, p = _wald(est, se, goal, alpha)
    return est, max(0.0, lo), min(1.0, hi), p, "delong" if cl is None else "delong-clustered"


def _needed(metric: str, n_pos: int, n_neg: int) -> tuple[int, str]:
    if metric == "sensitivity":
        return n_pos, "cases"
    if metric == "specificity":
        return n_neg, "controls"
    return min(n_pos, n_neg), "min(cases, controls)"


def compare_cells(data: CellData, rows: dict[tuple[int, int], np.ndarray], *, metric: str,
                  test: str, cells: list[tuple[int, int]], candidate: str,
                  comparators: list[str], alpha: float, threshold_value: float,
                  min_n: int, min_events: int, paired_interval: str, n_boot: int,
                  seed: int, cache: dict | None = None) -> list[dict[str, Any]]:
    """One row per (cell, comparator) - one per cell for a goal - with the candidate's and
    the comparator's values, the improvement (or the candidate's value for a goal), its
    two-sided ``1 - 2 alpha`` interval, the one-sided p value of H0: improvement <=
    ``threshold_value`` and why a cell is outside the criterion (``excluded``) or has no
    estimate (``reason``). ``cache`` keeps calibration fits and replicates between calls of
    one comparison (same data, same seed)."""
    y = data.y
    out: list[dict[str, Any]] = []
    comps = [None] if test == "goal" else comparators
    calib = None
    inside = []
    for gi, li in cells:
        idx = rows[(gi, li)]
        n_pos = int(y[idx].sum())
        n_neg = int(idx.size - n_pos)
        need, what = _needed(metric, n_pos, n_neg)
        excluded = None
        if idx.size < min_n:
            excluded = f"outside the criterion: n = {idx.size} < min_n = {min_n}"
        elif need < min_events:
            excluded = f"outside the criterion: {what} = {need} < min_events = {min_events}"
        if excluded is None:
            inside.append((gi, li))
        g = data.groupings[gi]
        for comp in comps:
            out.append({"group": g.name, "n_attributes": g.n_attributes, "level": g.levels[li],
                        "_cell": (gi, li), "comparator": comp, "n": int(idx.size),
                        "events": n_pos, "excluded": excluded})
    if metric in _TARGET:
        calib = _calibration(data, rows, metric, inside, [candidate, *comparators], n_boot,
                             seed, {} if cache is None else cache)
    for r in out:
        r["quantity"] = (_GOAL_QUANTITY if test == "goal" else _QUANTITY)[metric]
        for k in ("candidate_value", "comparator_value", "estimate", "se", "ci_low", "ci_high",
                  "pvalue"):
            r[k] = math.nan
        r["ci_method"] = None
        r["reason"] = None
        r["discordant_candidate"] = r["discordant_comparator"] = None
        r["difference_pvalue"] = math.nan
        r["difference_test"] = None
        if r["excluded"] is not None:
            continue
        idx = rows[r["_cell"]]
        yy = y[idx]
        cl = None if data.clusters is None else data.clusters[idx]
        sc = data.scores[candidate][idx]
        if (int(yy.sum()) == 0 or int(yy.sum()) == yy.size) and metric != "sensitivity" \
                and metric != "specificity":
            r["reason"] = "one class only: no comparison possible"
            continue
        try:
            if test == "goal":
                if metric == "auroc":
                    est, lo, hi, p, meth = _goal_auroc(yy, sc, cl, threshold_value, alpha)
                else:
                    sel = yy if metric == "sensitivity" else ~yy
                    pos = sc[sel] >= data.threshold if metric == "sensitivity" else \
                        sc[sel] < data.threshold
                    est, lo, hi, p, meth = _goal_proportion(pos, None if cl is None else cl[sel],
                                                            threshold_value, alpha)
                r.update(candidate_value=est, estimate=est, ci_low=lo, ci_high=hi, pvalue=p,
                         ci_method=meth)
                continue
            sr = data.scores[r["comparator"]][idx]
            if metric == "auroc":
                cv, rv, est, se, lo, hi, p, meth, extra = _auroc(yy, sc, sr, cl,
                                                                 threshold_value, alpha)
                r.update(extra)
            elif metric in ("sensitivity", "specificity"):
                sel = yy if metric == "sensitivity" else ~yy
                if metric == "sensitivity":
                    pc, pr = sc[sel] >= data.threshold, sr[sel] >= data.threshold
                else:
                    pc, pr = sc[sel] < data.threshold, sr[sel] < data.threshold
                cv, rv, est, se, lo, hi, p, meth, extra = _proportion(
                    pc, pr, None if cl is None else cl[sel], threshold_value, alpha,
                    paired_interval)
                r.update(extra)
            else:
                cv, rv, est, se, meth, why = calib[(r["_cell"], r["comparator"])]
                if why is not None:
                    r["reason"] = why
                lo, hi, p = _wald(est, se, threshold_value, alpha)
                if math.isfinite(se) and se > 0:
                    r["difference_pvalue"] = float(2 * special.ndtr(-abs(est) / se))
                    r["difference_test"] = meth
            r.update(candidate_value=cv, comparator_value=rv, estimate=est, se=se, ci_low=lo,
                     ci_high=hi, pvalue=p, ci_method=meth)
        except Exception as exc:  # an rwe primitive refusing degenerate input
            from rwe.exceptions import RWEError

            if not isinstance(exc, RWEError):
                raise
            r["reason"] = str(exc).splitlines()[0]
        if r["reason"] is None and not (math.isfinite(r["estimate"]) and
                                        math.isfinite(r["ci_low"])):
            r["reason"] = "no interval: the estimate or its variance is undefined"
    return out


# ----------------------------------------------------------------------------- calibration
def _fit_rows(x, y, starts, model):
    from rwe.stats import fit_logistic

    f = fit_logistic(x, y.astype(float), np.ones(y.size), starts, model=model)
    return f.b if model == "slope" else f.a


def _calibration(data: CellData, rows, metric, cells, versions, n_boot, seed, cache):
    """Point estimates (rows) and paired bootstrap replicates (binned) of a calibration
    metric for every cell and version; returns {(cell, comparator): (cand, comp,
    improvement, se, method, reason)}.

    One call of the Poisson bootstrap engine serves every (grouping, version): the rows are
    stacked once per block with the same patient (or row) ids, so every block's replicate
    counts come from the same weights - the comparison is paired, and replicates cached from
    an earlier call (``cache``, same seed) pair with new ones."""
    from rwe.metrics._registry import EPS
    from rwe.stats import fit_logistic
    from rwe.stats._poisson import poisson_bootstrap_counts

    model = "slope" if metric == "calibration_slope" else "offset"
    target = _TARGET[metric]
    y = data.y
    n = y.size
    k = CALIBRATION_BINS
    clusters = data.clusters if data.clusters is not None else np.arange(n)
    n_cl = int(np.unique(clusters).size)
    chunk = max(1, min(n_boot, (1 << 22) // max(n_cl, 1)))
    need: dict[tuple[int, str], list[int]] = {}
    for gi, li in cells:
        for v in dict.fromkeys(versions):
            if (metric, (gi, li), v) not in cache:
                need.setdefault((gi, v), []).append(li)
    if need:
        blocks = []  # (gi, v, levels needed, offset, x per (level, bin))
        codes, offset = [], 0
        for (gi, v), lis in need.items():
            g = data.groupings[gi]
            q = np.clip(data.scores[v], EPS, 1 - EPS)
            lp = np.log(q) - np.log1p(-q)
            edges = np.unique(np.quantile(lp, np.linspace(0, 1, k + 1)))
            b = np.clip(np.searchsorted(edges, lp, side="right") - 1, 0, max(len(edges) - 2, 0))
            n_lev = len(g.levels)
            code = np.where(g.codes >= 0, (g.codes * k + b) * 2 + y, -1)
            ok = code >= 0
            cnt = np.bincount(code[ok], minlength=n_lev * k * 2).reshape(n_lev, k, 2).sum(-1)
            sx = np.bincount(code[ok] // 2, weights=lp[ok], minlength=n_lev * k).reshape(n_lev, k)
            xbin = np.where(cnt > 0, sx / np.maximum(cnt, 1), 0.0)
            idx = np.concatenate([rows[(gi, li)] for li in lis])
            lens = [rows[(gi, li)].size for li in lis]
            st = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
            pt = fit_logistic(lp[idx], y[idx].astype(float), np.ones(idx.size), st, model=model)
            pt = pt.b if model == "slope" else pt.a
            for j, li in enumerate(lis):
                cache[(metric, (gi, li), v)] = [float(pt[j]), np.empty(n_boot)]
            blocks.append((gi, v, lis, offset, xbin, n_lev))
            codes.append(np.where(ok, code + offset, -1))
            offset += n_lev * k * 2
        done = 0
        for rep in poisson_bootstrap_counts(np.zeros(offset), n_boot,
                                            codes=np.concatenate(codes),
                                            clusters=np.tile(clusters, len(blocks)),
                                            random_state=seed, chunk=chunk, sampler="table"):
            r = rep.shape[0]
            xs, succ, tri = [], [], []
            for _gi, _v, lis, off, xbin, n_lev in blocks:
                sub = rep[:, off:off + n_lev * k * 2].reshape(r, n_lev, k, 2)[:, lis]
                succ.append(sub[..., 1].reshape(-1))
                tri.append((sub[..., 0] + sub[..., 1]).reshape(-1))
                xs.append(np.broadcast_to(xbin[lis][None], (r, len(lis), k)).reshape(-1))
            n_seg = sum(r * len(b_[2]) for b_ in blocks)
            f = fit_logistic(np.concatenate(xs), np.concatenate(succ), np.concatenate(tri),
                             np.arange(n_seg, dtype=np.int64) * k, model=model)
            val = f.b if model == "slope" else f.a
            pos = 0
            for gi, v, lis, _, _, _ in blocks:
                part = val[pos:pos + r * len(lis)].reshape(r, len(lis))
                pos += r * len(lis)
                for j, li in enumerate(lis):
                    cache[(metric, (gi, li), v)][1][done:done + r] = part[:, j]
            done += r
    cand = versions[0]
    method = "paired-cluster-bootstrap-se" if data.clusters is not None else \
        "paired-bootstrap-se"
    res = {}
    for cell in cells:
        c, rc = cache[(metric, cell, cand)]
        for comp in versions[1:]:
            r_, rr_ = cache[(metric, cell, comp)]
            imp = abs(r_ - target) - abs(c - target)
            rr = np.abs(rr_ - target) - np.abs(rc - target)
            ok = np.isfinite(rr)
            why = None
            se = math.nan
            if not (math.isfinite(c) and math.isfinite(r_)):
                why = "the calibration fit has no finite estimate (one class, separation)"
            elif ok.mean() < MIN_BOOT_FRACTION:
                why = (f"only {int(ok.sum())} of {rr.size} bootstrap replicates have a finite "
                       "fit: no standard error")
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    se = float(np.std(rr[ok], ddof=1))
            res[(cell, comp)] = (c, r_, imp, se, method, why)
    return res


# ----------------------------------------------------------------------------- ROC points
def roc_points(y: np.ndarray, s: np.ndarray, max_points: int = 200
               ) -> tuple[np.ndarray, np.ndarray]:
    """ROC curve (fpr, tpr) at distinct thresholds, thinned to about ``max_points``."""
    order = np.argsort(-s, kind="stable")
    ss, yy = s[order], y[order]
    distinct = np.r_[np.flatnonzero(np.diff(ss) != 0), ss.size - 1]
    tp = np.cumsum(yy)[distinct]
    fp = (distinct + 1) - tp
    P, N = max(int(yy.sum()), 1), max(int((~yy).sum()), 1)
    tpr = np.r_[0.0, tp / P]
    fpr = np.r_[0.0, fp / N]
    if tpr.size > max_points + 2:
        pick = np.unique(np.r_[0, np.linspace(0, tpr.size - 1, max_points).astype(int),
                               tpr.size - 1])
        tpr, fpr = tpr[pick], fpr[pick]
    return fpr, tpr
