"""Overall, subgroup and intersectional performance with intervals, heterogeneity, fairness
gaps and acceptance against pre-specified goals (EVIDENCE.md SUB-2..SUB-6, METHODS.md C4)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from rwe._validation import check_choice, check_int, check_level, check_real
from rwe.exceptions import InvalidParameterError, RWEWarning
from rwe.stats.summaries import (
    DEFAULT_N_BINS,
    ScoreSummary,
    _binned_auc,
    bca_from_jackknife,
    bin_scores,
    binned_jackknife,
    binned_metrics,
    poisson_bootstrap_counts,
    score_bin_edges,
)
from rwe.subgroups._engine import Cells, Grouping, confusion_by_cell, delong_by_level, encode_cells
from rwe.subgroups._report import SubgroupReport

__all__ = ["subgroup_performance", "subgroup_performance_from_protocol", "FAST_METRICS",
           "FAIRNESS_METRICS"]

#: Threshold metrics computed from exact confusion counts: (numerator, denominator cells,
#: reason when the denominator is empty, conditioned on positives?)
_PROPORTIONS: dict[str, tuple[tuple[int, ...], tuple[int, ...], str, bool]] = {
    # confusion columns: 0=TP, 1=FN, 2=FP, 3=TN
    "sensitivity": ((0,), (0, 1), "degenerate: no positives", True),
    "fnr": ((1,), (0, 1), "degenerate: no positives", True),
    "specificity": ((3,), (2, 3), "degenerate: no negatives", False),
    "fpr": ((2,), (2, 3), "degenerate: no negatives", False),
    "ppv": ((0,), (0, 2), "degenerate: no predicted positives", False),
    "npv": ((3,), (1, 3), "degenerate: no predicted negatives", False),
    "accuracy": ((0, 3), (0, 1, 2, 3), "degenerate: no rows", False),
}
FAST_METRICS = (*_PROPORTIONS, "auroc")
#: Fairness summaries (fairlearn definitions): equal-opportunity gap (sensitivity difference),
#: false-positive-rate difference and calibration-slope difference.
FAIRNESS_METRICS = ("sensitivity", "fpr", "calibration_slope")
_HIGHER_IS_BETTER = {"sensitivity": True, "specificity": True, "ppv": True, "npv": True,
                     "accuracy": True, "auroc": True, "fpr": False, "fnr": False}
CI_METHODS = (None, "analytic", "bootstrap")
MULTIPLICITY = ("holm", "fdr_bh", "bonferroni", "none")
PROPORTION_INTERVALS = {"wilson": "wilson", "clopper-pearson": "beta"}
MSG_NO_LABEL = "subgroup_performance needs a binary label column (roles.label)"
MSG_BAD_BY = "by must contain attribute names or tuples of names, got {value!r}"

TABLE_COLUMNS = ["group", "level", "n", "events", "metric", "estimate", "ci_low", "ci_high",
                 "ci_level", "ci_method", "flags", "reason"]
HET_COLUMNS = ["group", "metric", "test", "statistic", "df", "pvalue", "pvalue_adjusted",
               "method", "i2", "levels"]
FAIR_COLUMNS = ["group", "metric", "definition", "gap", "ci_low", "ci_high", "ci_level",
                "ci_method", "level_max", "level_min", "levels_compared", "reason"]
GOAL_COLUMNS = ["metric", "scope", "group", "level", "goal", "estimate", "bound", "bound_side",
                "met", "verdict"]


# ----------------------------------------------------------------------------- helpers
def _norm_by(by: Any) -> tuple[tuple[str, ...], ...]:
    if isinstance(by, str):
        by = (by,)
    out = []
    for g in by:
        if isinstance(g, str):
            out.append((g,))
        elif isinstance(g, Sequence) and g and all(isinstance(a, str) for a in g):
            out.append(tuple(g))
        else:
            raise InvalidParameterError(MSG_BAD_BY.format(value=by))
    return tuple(dict.fromkeys(out))


def _direction(metric: str) -> bool | None:
    if metric in _HIGHER_IS_BETTER:
        return _HIGHER_IS_BETTER[metric]
    try:
        from rwe.metrics import get_metric

        return get_metric(metric).higher_is_better
    except Exception:  # registry not available or metric unknown there
        return None


def _proportion_ci(x: np.ndarray, n: np.ndarray, level: float, method: str):
    from statsmodels.stats.proportion import proportion_confint

    x = np.asarray(x, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    ok = n > 0
    lo = np.full(x.shape, np.nan)
    hi = np.full(x.shape, np.nan)
    if ok.any():
        lo_, hi_ = proportion_confint(x[ok], n[ok], alpha=1 - level,
                                      method=PROPORTION_INTERVALS[method])
        lo[ok] = np.clip(lo_, 0, 1)
        hi[ok] = np.clip(hi_, 0, 1)
    return lo, hi


def _adjust(p: np.ndarray, method: str) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if method == "none" or not ok.any():
        out[ok] = p[ok]
        return out
    from statsmodels.stats.multitest import multipletests

    out[ok] = multipletests(p[ok], method=method)[1]
    return out


# ----------------------------------------------------------------------------- main
def subgroup_performance(
    evset,
    *,
    metrics: Iterable[str] = ("sensitivity", "specificity", "ppv", "npv", "auroc"),
    by: Any = ("sex", "race", ("sex", "race")),
    threshold: float = 0.5,
    confidence_level: float = 0.95,
    version: str | None = None,
    proportion_interval: str = "wilson",
    min_n: int = 30,
    min_events: int = 5,
    ci_method: str | None = None,
    n_boot: int = 1000,
    random_state: Any = None,
    cluster_bootstrap: bool | str = "auto",
    heterogeneity: bool = True,
    multiplicity: str = "holm",
    goals: Iterable[Any] | None = None,
    fairness: bool = True,
    n_bins: int = DEFAULT_N_BINS,
    bootstrap_interval: str = "percentile",
) -> SubgroupReport:
    """Performance overall, per subgroup and per intersection, with intervals and tests.

    Parameters
    ----------
    evset : rwe.data.EvaluationSet
        Needs a binary label and a score column.
    metrics : iterable of str
        Registered metric names. ``sensitivity, specificity, ppv, npv, fpr, fnr, accuracy``
        and ``auroc`` use the fast vectorized engine; any other registered metric (e.g.
        ``calibration_slope``, ``brier``) is computed per level with
        :func:`rwe.metrics.compute_metric`.
    by : sequence of str or tuple of str
        Groupings: an attribute name or a tuple of names (intersection). ``overall`` is always
        included first.
    threshold : float
        Predicted positive when ``score >= threshold``.
    confidence_level : float
        Two-sided level of every interval.
    version : str, optional
        Model version (default: the primary version).
    proportion_interval : {"wilson", "clopper-pearson"}
        Interval for proportion metrics (Wilson: FDA 2007 default).
    min_n, min_events : int
        Cells with fewer rows (or, for metrics conditioned on positives and AUROC, fewer
        positives) are shown but flagged ``insufficient`` and are not used as evidence
        (goal verdict ``"insufficient data"``; excluded from heterogeneity tests and gaps).
    ci_method : {None, "analytic", "bootstrap"}
        ``None``/``"analytic"``: each metric's analytic default (Wilson or Clopper-Pearson
        for proportions, DeLong for AUROC). ``"bootstrap"``: percentile intervals from the
        summary-level Poisson bootstrap (:mod:`rwe.stats.summaries`).
    n_boot : int
        Bootstrap replicates (bootstrap intervals and fairness-gap intervals).
    random_state : None, int or numpy Generator
    cluster_bootstrap : {"auto", True, False}
        Resample patients instead of rows. ``"auto"``: when ``evset.clusters`` has a patient
        with several rows.
    heterogeneity : bool
        Test homogeneity across the levels of each grouping.
    multiplicity : {"holm", "fdr_bh", "bonferroni", "none"}
        Adjustment of the heterogeneity p-values, per metric across groupings.
    goals : iterable, optional
        Objects or dicts with ``metric``, ``goal`` and ``scope`` in
        ``{"overall", "subgroups", "all"}`` (``rwe.protocol`` ``Goal``).
    fairness : bool
        Compute fairness gaps (max - min across levels) with bootstrap intervals.
    bootstrap_interval : {"percentile", "bca"}
        Interval from the bootstrap replicates when ``ci_method="bootstrap"``. ``"bca"``
        uses the exact grouped jackknife of the binned statistic for the acceleration
        (:func:`rwe.stats.summaries.binned_jackknife`); not available with the cluster
        bootstrap (percentile is used, with an :class:`RWEWarning`).
    n_bins : int
        Score-bin resolution of the bootstrap summaries (threshold metrics exact; AUROC
        within the reported error bound).

    Returns
    -------
    SubgroupReport

    Notes
    -----
    *Heterogeneity.* Proportion metrics: Pearson chi-square test of homogeneity on the 2 x k
    table of the metric's numerator and complement (e.g. TP/FN among positives for
    sensitivity), ``scipy.stats.chi2_contingency(correction=False)``. AUROC: the unpaired
    DeLong test for two levels (pROC ``roc.test(paired=FALSE)``); for k > 2 levels Cochran's
    Q with inverse DeLong-variance weights, df = k - 1, and Higgins' I^2 [3]_ [4]_.
    Calibration slope: likelihood-ratio test of the logit(p) x level interaction in a
    logistic GLM. Only levels that are sufficient and non-degenerate enter a test.

    *Fairness.* Gaps follow fairlearn's ``MetricFrame.difference()`` (max - min across the
    levels of a grouping) for sensitivity (equal opportunity), FPR and calibration slope;
    intervals are percentile intervals of the same gap over bootstrap replicates. The
    max - min of noisy estimates is biased upwards (it is positive even when the levels do
    not differ), so the interval describes the size of the observed gap; a test of equality
    is the heterogeneity test, not the exclusion of 0 from this interval. The calibration
    slope's replicates come from a Newton-Raphson logistic fit on score bins (<= 256 bins,
    covariate = mean logit(p) per bin); its point estimate is the row-level GLM.

    References
    ----------
    .. [1] DeLong, E. R., DeLong, D. M. and Clarke-Pearson, D. L. (1988). Comparing the areas
       under two or more correlated ROC curves. Biometrics 44(3):837-845.
    .. [2] Wilson, E. B. (1927). Probable inference, the law of succession, and statistical
       inference. JASA 22(158):209-212.
    .. [3] Cochran, W. G. (1954). The combination of estimates from different experiments.
       Biometrics 10(1):101-129.
    .. [4] Higgins, J. P. T. and Thompson, S. G. (2002). Quantifying heterogeneity in a
       meta-analysis. Statistics in Medicine 21(11):1539-1558.
    .. [5] Holm, S. (1979). A simple sequentially rejective multiple test procedure.
       Scandinavian Journal of Statistics 6(2):65-70.
    .. [6] Hardt, M., Price, E. and Srebro, N. (2016). Equality of opportunity in supervised
       learning. NeurIPS 29.
    """
    metrics = tuple(dict.fromkeys(metrics))
    if not metrics:
        raise InvalidParameterError("metrics must name at least one metric, got ()")
    for m in metrics:
        if m not in FAST_METRICS:
            from rwe.metrics import get_metric

            get_metric(m)  # raises with the list of valid names
    groupings_by = _norm_by(by)
    threshold = check_real(threshold, "threshold", low=0.0, high=1.0, low_inclusive=False,
                           high_inclusive=False)
    level = check_level(confidence_level)
    check_choice(proportion_interval, "proportion_interval", PROPORTION_INTERVALS)
    min_n = check_int(min_n, "min_n", minimum=1)
    min_events = check_int(min_events, "min_events", minimum=0)
    if ci_method not in CI_METHODS:
        raise InvalidParameterError(
            f"ci_method={ci_method!r} is not valid; choose one of: {CI_METHODS}")
    n_boot = check_int(n_boot, "n_boot", minimum=1)
    check_choice(multiplicity, "multiplicity", MULTIPLICITY)
    check_choice(bootstrap_interval, "bootstrap_interval", ("percentile", "bca"))
    if cluster_bootstrap not in ("auto", True, False):
        raise InvalidParameterError(
            f"cluster_bootstrap must be 'auto', True or False, got {cluster_bootstrap!r}")
    if evset.roles.label is None:
        raise InvalidParameterError(MSG_NO_LABEL)

    y = evset.y_true
    s = evset.score(version)
    n = len(y)
    attrs = list(dict.fromkeys(a for g in groupings_by for a in g))
    cells = encode_cells({a: evset.attribute(a) for a in attrs}, groupings_by, n)
    pred = s >= threshold
    conf_cell = confusion_by_cell(y, pred, cells.codes, cells.n_cells)
    del pred

    rng = np.random.default_rng(random_state)
    clusters = None
    if cluster_bootstrap is True or (cluster_bootstrap == "auto" and evset.has_repeated_patients):
        clusters = evset.clusters
        if clusters is None:
            raise InvalidParameterError(
                "cluster_bootstrap=True needs a patient_id column role, which is not set")

    # ---------------------------------------------------------------- exact point estimates
    need_auc = "auroc" in metrics
    order = None
    if need_auc:
        order = np.argsort(s)
        if n < 2**31 - 1:
            order = order.astype(np.int32)
    rows: list[dict[str, Any]] = []
    fair_extra = [m for m in ("sensitivity", "fpr") if fairness and m not in metrics]
    extra_rows: list[dict[str, Any]] = []
    level_stats: dict[tuple[str, str], dict[str, Any]] = {}
    for g in cells.groupings:
        onehot = g.one_hot()
        conf = (onehot @ conf_cell).astype(np.int64)  # (levels, 4)
        nn = conf.sum(1)
        ev = conf[:, 0] + conf[:, 1]
        auc = var = None
        if need_auc:
            auc, var = delong_by_level(s, y, order, cells.codes, g)
        for j, lev in enumerate(g.levels):
            level_stats[(g.name, lev)] = {"conf": conf[j], "n": int(nn[j]), "events": int(ev[j]),
                                          "auc": None if auc is None else auc[j],
                                          "var": None if var is None else var[j]}
        for m in (m for m in metrics if m in FAST_METRICS):
            rows.extend(_metric_rows(m, g, conf, nn, ev, auc, var, level, proportion_interval,
                                     min_n, min_events))
        for m in fair_extra:
            extra_rows.extend(_metric_rows(m, g, conf, nn, ev, auc, var, level,
                                           proportion_interval, min_n, min_events))
    del order
    other = [m for m in metrics if m not in FAST_METRICS]
    if other:
        rows.extend(_registry_rows(other, evset, y, s, cells, threshold, level,
                                   proportion_interval, min_n, min_events))
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    table["_g"] = table["group"].map({g.name: i for i, g in enumerate(cells.groupings)})
    table["_m"] = table["metric"].map({m: i for i, m in enumerate(metrics)})
    table["_l"] = table.groupby(["group", "metric"]).cumcount()
    table = table.sort_values(["_m", "_g", "_l"], kind="stable").drop(columns=["_g", "_m", "_l"])
    table = table.reset_index(drop=True)

    # ---------------------------------------------------------------- bootstrap
    fast_boot = [m for m in metrics if m in FAST_METRICS] if ci_method == "bootstrap" else []
    fair_metrics = [m for m in FAIRNESS_METRICS
                    if fairness and (m != "calibration_slope" or m in metrics)]
    boot_info: dict[str, Any] = {}
    replicates: dict[str, dict[str, np.ndarray]] = {}
    if fast_boot or fair_metrics:
        replicates, boot_info = _bootstrap(y, s, cells, threshold, n_bins, n_boot, rng,
                                           clusters, sorted(set(fast_boot) | set(fair_metrics)))
    if fast_boot:
        interval = bootstrap_interval
        if interval == "bca" and clusters is not None:
            warnings.warn("bootstrap_interval='bca' needs a delete-one-patient jackknife, "
                          "which the binned summaries cannot give; percentile intervals are "
                          "used for the cluster bootstrap", RWEWarning, stacklevel=2)
            interval = "percentile"
        table = _apply_bootstrap_ci(table, replicates, cells, fast_boot, level, clusters,
                                    interval, boot_info.pop("_level_counts"),
                                    boot_info.pop("_threshold_bin"))
    boot_info.pop("_level_counts", None)
    boot_info.pop("_threshold_bin", None)

    het = _heterogeneity(table, level_stats, cells, metrics, multiplicity, evset, y, s) \
        if heterogeneity else pd.DataFrame(columns=HET_COLUMNS)
    fair_table = pd.concat([table, pd.DataFrame(extra_rows, columns=TABLE_COLUMNS)],
                           ignore_index=True) if extra_rows else table
    fair = _fairness(fair_table, replicates, cells, level, clusters, evset, y, s, n_boot, rng) \
        if fairness else pd.DataFrame(columns=FAIR_COLUMNS)
    goal_frame = _goals(table, goals) if goals else pd.DataFrame(columns=GOAL_COLUMNS)

    settings = {
        "version": version or evset.primary_version, "threshold": threshold,
        "confidence_level": level, "proportion_interval": proportion_interval,
        "ci_method": ci_method or "analytic",
        "bootstrap_interval": bootstrap_interval if ci_method == "bootstrap" else None,
        "min_n": min_n, "min_events": min_events,
        "n_boot": n_boot, "multiplicity": multiplicity,
        "cluster_bootstrap": clusters is not None, "n": int(n),
        "groupings": [g.name for g in cells.groupings], "metrics": list(metrics),
        **boot_info,
    }
    return SubgroupReport(table=table, heterogeneity=het, fairness=fair, goals=goal_frame,
                          settings=settings, _evset=evset)


def _flag(metric: str, n: int, events: int, min_n: int, min_events: int) -> str | None:
    flags = []
    if n < min_n:
        flags.append(f"insufficient: n<{min_n}")
    if (metric in ("sensitivity", "fnr", "auroc") or metric not in _PROPORTIONS) \
            and events < min_events:
        flags.append(f"insufficient: events<{min_events}")
    return "; ".join(flags) if flags else None


def _metric_rows(m, g: Grouping, conf, nn, ev, auc, var, level, pi, min_n, min_events):
    out = []
    if m in _PROPORTIONS:
        num_idx, den_idx, why, _ = _PROPORTIONS[m]
        x = conf[:, list(num_idx)].sum(1)
        d = conf[:, list(den_idx)].sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            est = np.where(d > 0, x / np.where(d > 0, d, 1), np.nan)
        lo, hi = _proportion_ci(x, d, level, pi)
        for j, lev in enumerate(g.levels):
            reason = None if d[j] > 0 else why
            if nn[j] == 0:
                reason = "degenerate: no rows"
            flags = "; ".join(f for f in (_flag(m, nn[j], ev[j], min_n, min_events),
                                          reason) if f) or None
            out.append({"group": g.name, "level": lev, "n": int(nn[j]), "events": int(ev[j]),
                        "metric": m, "estimate": float(est[j]), "ci_low": float(lo[j]),
                        "ci_high": float(hi[j]), "ci_level": level,
                        "ci_method": pi if d[j] > 0 else None, "flags": flags,
                        "reason": reason})
        return out
    # auroc
    z = sps.norm.ppf(0.5 + level / 2)
    for j, lev in enumerate(g.levels):
        a, v = auc[j], var[j]
        npos, nneg = int(ev[j]), int(nn[j] - ev[j])
        reason = None
        if npos == 0:
            reason = "degenerate: no positives"
        elif nneg == 0:
            reason = "degenerate: no negatives"
        lo = hi = math.nan
        method = None
        if reason is None:
            if np.isfinite(v):
                se = math.sqrt(max(v, 0.0))
                lo, hi = max(0.0, a - z * se), min(1.0, a + z * se)
                method = "delong"
            else:
                reason = "no DeLong variance: a single positive or negative"
        flags = "; ".join(f for f in (_flag("auroc", nn[j], ev[j], min_n, min_events),
                                      reason) if f) or None
        out.append({"group": g.name, "level": lev, "n": int(nn[j]), "events": npos,
                    "metric": "auroc", "estimate": float(a), "ci_low": lo, "ci_high": hi,
                    "ci_level": level, "ci_method": method, "flags": flags, "reason": reason})
    return out


def _level_masks(cells: Cells, g: Grouping):
    row_level = g.cell_to_level[cells.codes]
    for j, lev in enumerate(g.levels):
        yield j, lev, row_level == j


def _registry_rows(names, evset, y, s, cells, threshold, level, pi, min_n, min_events):
    """Metrics outside the fast engine: :func:`rwe.metrics.compute_metric` per level."""
    from rwe.metrics import compute_metric

    out = []
    for g in cells.groupings:
        for _, lev, mask in _level_masks(cells, g):
            yl, sl = y[mask], s[mask]
            nl, el = int(mask.sum()), int(yl.sum())
            for m in names:
                mv = compute_metric(m, yl, sl, threshold=threshold, confidence_level=level,
                                    proportion_interval=pi)
                ci = mv.ci
                reason = mv.reason
                if reason is not None and not reason.startswith("degenerate"):
                    reason = f"degenerate: {reason}" if not np.isfinite(mv.estimate) else reason
                flags = "; ".join(f for f in (_flag(m, nl, el, min_n, min_events),
                                              reason if not np.isfinite(mv.estimate) else None)
                                  if f) or None
                out.append({"group": g.name, "level": lev, "n": nl, "events": el, "metric": m,
                            "estimate": float(mv.estimate),
                            "ci_low": math.nan if ci is None else float(ci.low),
                            "ci_high": math.nan if ci is None else float(ci.high),
                            "ci_level": level, "ci_method": None if ci is None else ci.method,
                            "flags": flags, "reason": reason})
    return out


# ----------------------------------------------------------------------------- bootstrap
def _bootstrap(y, s, cells: Cells, threshold, n_bins, n_boot, rng, clusters, metrics):
    """Replicates of each metric for every grouping level: {metric: {group: (B, levels)}}."""
    edges = score_bin_edges(n_bins, threshold)
    nb = len(edges) - 1
    b = bin_scores(s, n_bins, threshold)
    code = (cells.codes.astype(np.int64) * 2 + y) * nb + b
    del b
    counts = np.bincount(code, minlength=cells.n_cells * 2 * nb).reshape(cells.n_cells, 2, nb)
    summary = ScoreSummary(counts, edges, threshold, tuple(map(str, range(cells.n_cells))))
    k = summary.threshold_bin
    onehots = [g.one_hot() for g in cells.groupings]
    stacked = np.concatenate(onehots, axis=0)  # (all levels, cells)
    splits = np.cumsum([o.shape[0] for o in onehots])[:-1]
    reps: dict[str, list[np.ndarray]] = {m: [] for m in metrics}
    xbin = None
    if "calibration_slope" in metrics:
        # mean logit(p) per (level, bin) from the observed rows: the covariate of the binned fit
        p = np.clip(s, 1e-12, 1 - 1e-12)
        lsum = np.bincount(cells.codes.astype(np.int64) * nb + bin_scores(s, n_bins, threshold),
                           weights=np.log(p) - np.log1p(-p), minlength=cells.n_cells * nb)
        del p
        # coarsen to <= 256 bins for the slope fit (the fit's cost is linear in bins)
        cstarts = np.arange(0, nb, max(1, -(-nb // _CALIB_BINS)))
        lev_lsum = np.add.reduceat(stacked @ lsum.reshape(cells.n_cells, nb), cstarts, axis=1)
        lev_cnt = np.add.reduceat(stacked @ counts.sum(1).astype(np.float64), cstarts, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            xbin = np.where(lev_cnt > 0, lev_lsum / np.where(lev_cnt > 0, lev_cnt, 1), 0.0)
    it = poisson_bootstrap_counts(counts, n_boot, random_state=rng,
                                  codes=code if clusters is not None else None,
                                  clusters=clusters)
    for chunk in it:
        lev_counts = np.einsum("lc,rcjb->rljb", stacked, chunk, optimize=True)
        vals = binned_metrics(lev_counts, k)
        for m in metrics:
            if m == "calibration_slope":
                reps[m].append(_binned_logistic_slope(
                    xbin, np.add.reduceat(lev_counts, cstarts, axis=-1)))
            else:
                reps[m].append(vals[m])
    del code
    out: dict[str, dict[str, np.ndarray]] = {}
    for m in metrics:
        allrep = np.concatenate(reps[m], axis=0)
        parts = np.split(allrep, splits, axis=1)
        out[m] = {g.name: p for g, p in zip(cells.groupings, parts, strict=True)}
    lev_counts_obs = np.einsum("lc,cjb->ljb", stacked, counts.astype(np.float64))
    _, bound = _binned_auc(lev_counts_obs)
    info = {"n_bins": int(nb), "n_boot": int(n_boot), "bootstrap": "cluster (patients)" if clusters is not None
            else "poisson (summary)",
            "auroc_binned_error_bound_max": float(np.nanmax(bound)) if np.isfinite(bound).any()
            else math.nan}
    info["_level_counts"] = lev_counts_obs
    info["_threshold_bin"] = k
    return out, info


_CALIB_BINS = 256


def _binned_logistic_slope(x: np.ndarray, counts: np.ndarray, n_iter: int = 25) -> np.ndarray:
    """Calibration slope b of ``logit P(y) = a + b x`` fitted by Newton-Raphson on binned data.

    ``x`` (levels, bins) is the mean logit of the predicted probability in each bin;
    ``counts`` (r, levels, 2, bins) the replicate controls and cases. Vectorized over
    replicates and levels; fits that do not converge (separation) give NaN.
    """
    neg, pos = counts[..., 0, :], counts[..., 1, :]
    tot = neg + pos
    x = np.broadcast_to(x, tot.shape)
    a = np.zeros(tot.shape[:-1])
    b = np.ones(tot.shape[:-1])
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for _ in range(n_iter):
            mu = 1 / (1 + np.exp(-(a[..., None] + b[..., None] * x)))
            r = pos - tot * mu
            w = tot * mu * (1 - mu)
            ga, gb = r.sum(-1), (r * x).sum(-1)
            haa, hab, hbb = w.sum(-1), (w * x).sum(-1), (w * x * x).sum(-1)
            det = haa * hbb - hab * hab
            da = (hbb * ga - hab * gb) / det
            db = (haa * gb - hab * ga) / det
            a = a + da
            b = b + db
        ok = np.isfinite(b) & (np.abs(db) < 1e-6 * np.maximum(1, np.abs(b)))
    return np.where(ok, b, np.nan)


def _apply_bootstrap_ci(table, replicates, cells, metrics, level, clusters, interval,
                        level_counts, threshold_bin):
    import warnings

    a = (1 - level) / 2
    prefix = "cluster-bootstrap" if clusters is not None else "bootstrap"
    method = f"{prefix}-{interval}"
    low = table["ci_low"].to_numpy(copy=True)
    high = table["ci_high"].to_numpy(copy=True)
    meth = table["ci_method"].to_numpy(copy=True).astype(object)
    key = {(gr, lev, m): i for i, (gr, lev, m) in
           enumerate(zip(table["group"], table["level"], table["metric"], strict=True))}
    offset = 0
    for g in cells.groupings:
        obs = level_counts[offset:offset + len(g.levels)]
        offset += len(g.levels)
        est_binned = binned_metrics(obs, threshold_bin) if interval == "bca" else None
        for m in metrics:
            r = replicates[m][g.name]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                q = np.nanquantile(r, [a, 1 - a], axis=0)
            for j, lev in enumerate(g.levels):
                i = key.get((g.name, lev, m))
                if i is None or not np.isfinite(table.at[i, "estimate"]):
                    continue
                if interval == "bca":
                    jack, w = binned_jackknife(obs[j], threshold_bin, m)
                    lo_, hi_ = bca_from_jackknife(r[:, j], float(est_binned[m][j]), jack, w,
                                                  level)
                else:
                    lo_, hi_ = q[0, j], q[1, j]
                if np.isfinite(lo_) and np.isfinite(hi_):
                    low[i], high[i], meth[i] = lo_, hi_, method
    return table.assign(ci_low=low, ci_high=high, ci_method=meth)


# ----------------------------------------------------------------------------- heterogeneity
def _usable(table: pd.DataFrame, group: str, metric: str) -> pd.DataFrame:
    t = table[(table["group"] == group) & (table["metric"] == metric)]
    return t[t["flags"].isna() & np.isfinite(t["estimate"].to_numpy(dtype=float))]


def _heterogeneity(table, level_stats, cells, metrics, multiplicity, evset, y, s):
    rows = []
    for m in metrics:
        for g in cells.groupings[1:]:
            use = _usable(table, g.name, m)
            levels = list(use["level"])
            base = {"group": g.name, "metric": m, "levels": len(levels)}
            if len(levels) < 2:
                rows.append({**base, "test": None, "statistic": math.nan, "df": math.nan,
                             "pvalue": math.nan, "method": "not tested: fewer than 2 "
                             "sufficient levels", "i2": math.nan})
                continue
            if m in _PROPORTIONS:
                num_idx, den_idx, _, _ = _PROPORTIONS[m]
                tab = []
                for lev in levels:
                    c = level_stats[(g.name, lev)]["conf"]
                    x = c[list(num_idx)].sum()
                    tab.append([x, c[list(den_idx)].sum() - x])
                tab = np.asarray(tab, dtype=float).T
                if (tab.sum(1) == 0).any():
                    rows.append({**base, "test": "chi2", "statistic": math.nan, "df": math.nan,
                                 "pvalue": math.nan, "i2": math.nan,
                                 "method": "not tested: metric constant (0 or 1) in every level"})
                    continue
                res = sps.chi2_contingency(tab, correction=False)
                rows.append({**base, "test": "chi2", "statistic": float(res.statistic),
                             "df": float(res.dof), "pvalue": float(res.pvalue), "i2": math.nan,
                             "method": "Pearson chi-square test of homogeneity (2 x k)"})
            elif m == "auroc":
                a = np.array([level_stats[(g.name, lev)]["auc"] for lev in levels])
                v = np.array([level_stats[(g.name, lev)]["var"] for lev in levels])
                if not (np.isfinite(v).all() and (v > 0).all()):
                    rows.append({**base, "test": None, "statistic": math.nan, "df": math.nan,
                                 "pvalue": math.nan, "i2": math.nan,
                                 "method": "not tested: a level has zero DeLong variance "
                                           "(perfect separation)"})
                    continue
                if len(levels) == 2:
                    se = math.sqrt(v[0] + v[1])
                    zz = (a[0] - a[1]) / se if se > 0 else math.nan
                    p = 2 * sps.norm.sf(abs(zz)) if np.isfinite(zz) else math.nan
                    rows.append({**base, "test": "delong_unpaired", "statistic": float(zz),
                                 "df": math.nan, "pvalue": float(p), "i2": math.nan,
                                 "method": "unpaired DeLong z test"})
                else:
                    w = 1 / v
                    abar = np.sum(w * a) / np.sum(w)
                    q = float(np.sum(w * (a - abar) ** 2))
                    df = len(levels) - 1
                    i2 = max(0.0, (q - df) / q) if q > 0 else 0.0
                    rows.append({**base, "test": "cochran_q", "statistic": q, "df": float(df),
                                 "pvalue": float(sps.chi2.sf(q, df)), "i2": i2,
                                 "method": "Cochran Q on DeLong variances (I^2 reported)"})
            elif m == "calibration_slope":
                rows.append({**base, **_calibration_lr(y, s, cells, g, levels)})
            else:
                rows.append({**base, "test": None, "statistic": math.nan, "df": math.nan,
                             "pvalue": math.nan, "i2": math.nan,
                             "method": "no heterogeneity test defined for this metric"})
    het = pd.DataFrame(rows, columns=[c for c in HET_COLUMNS if c != "pvalue_adjusted"])
    adj = np.full(len(het), np.nan)
    for m in het["metric"].unique() if len(het) else []:
        idx = np.flatnonzero((het["metric"] == m).to_numpy())
        adj[idx] = _adjust(het["pvalue"].to_numpy(dtype=float)[idx], multiplicity)
    het["pvalue_adjusted"] = adj
    het["multiplicity"] = multiplicity
    return het[HET_COLUMNS + ["multiplicity"]]


def _calibration_lr(y, s, cells, g, levels):
    import statsmodels.api as sm

    row_level = g.cell_to_level[cells.codes]
    lev_idx = [g.levels.index(lev) for lev in levels]
    mask = np.isin(row_level, lev_idx)
    p = np.clip(s[mask], 1e-12, 1 - 1e-12)
    lp = np.log(p / (1 - p))
    d = pd.get_dummies(pd.Categorical(row_level[mask]), drop_first=True).to_numpy(float)
    yy = y[mask].astype(float)
    x0 = sm.add_constant(np.column_stack([lp, d]))
    x1 = np.column_stack([x0, d * lp[:, None]])
    try:
        f0 = sm.GLM(yy, x0, family=sm.families.Binomial()).fit()
        f1 = sm.GLM(yy, x1, family=sm.families.Binomial()).fit()
    except Exception as exc:  # perfect separation etc.
        return {"test": "lr_interaction", "statistic": math.nan, "df": math.nan,
                "pvalue": math.nan, "i2": math.nan, "method": f"not tested: GLM failed ({exc})"}
    stat = float(2 * (f1.llf - f0.llf))
    df = d.shape[1]
    return {"test": "lr_interaction", "statistic": stat, "df": float(df),
            "pvalue": float(sps.chi2.sf(stat, df)), "i2": math.nan,
            "method": "likelihood-ratio test of logit(p) x level interaction (logistic GLM)"}


# ----------------------------------------------------------------------------- fairness
_FAIR_DEF = {"sensitivity": "equal opportunity difference (sensitivity max - min)",
             "fpr": "false-positive-rate difference (max - min)",
             "calibration_slope": "calibration slope difference (max - min)"}


def _fairness(table, replicates, cells, level, clusters, evset, y, s, n_boot, rng):
    rows = []
    a = (1 - level) / 2
    method = "cluster-bootstrap-percentile" if clusters is not None else "bootstrap-percentile"
    for m in FAIRNESS_METRICS:
        for g in cells.groupings[1:]:
            t = table[(table["group"] == g.name) & (table["metric"] == m)]
            if t.empty:
                continue
            use = t[t["flags"].isna() & np.isfinite(t["estimate"].to_numpy(dtype=float))]
            base = {"group": g.name, "metric": m, "definition": _FAIR_DEF[m],
                    "ci_level": level, "levels_compared": len(use)}
            if len(use) < 2:
                rows.append({**base, "gap": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                             "ci_method": None, "level_max": None, "level_min": None,
                             "reason": "fewer than 2 sufficient levels"})
                continue
            est = use["estimate"].to_numpy(dtype=float)
            gap = float(est.max() - est.min())
            lo = hi = math.nan
            meth = None
            reason = None
            if m in replicates:
                idx = [g.levels.index(lev) for lev in use["level"]]
                r = replicates[m][g.name][:, idx]
                rg = r.max(1) - r.min(1)
                rg = rg[np.isfinite(rg)]
                if rg.size:
                    lo, hi = (float(v) for v in np.quantile(rg, [a, 1 - a]))
                    meth = method
            else:
                reason = "no bootstrap interval for this metric's gap (point estimate only)"
            rows.append({**base, "gap": gap, "ci_low": lo, "ci_high": hi, "ci_method": meth,
                         "level_max": use["level"].iloc[int(est.argmax())],
                         "level_min": use["level"].iloc[int(est.argmin())], "reason": reason})
    return pd.DataFrame(rows, columns=FAIR_COLUMNS)


# ----------------------------------------------------------------------------- goals
def _goal_get(goal: Any, key: str, default: Any = None) -> Any:
    if isinstance(goal, Mapping):
        return goal.get(key, default)
    return getattr(goal, key, default)


def _goals(table: pd.DataFrame, goals: Iterable[Any]) -> pd.DataFrame:
    """Judge each goal on the confidence bound (EVIDENCE.md SUB-3)."""
    rows = []
    for goal in goals:
        m = _goal_get(goal, "metric")
        target = float(_goal_get(goal, "goal"))
        scope = _goal_get(goal, "scope", "overall")
        check_choice(scope, "scope", ("overall", "subgroups", "all"))
        hib = _direction(m)
        t = table[table["metric"] == m]
        if t.empty:
            raise InvalidParameterError(
                f"goal metric {m!r} is not among the computed metrics: "
                f"{sorted(table['metric'].unique())}")
        if scope == "overall":
            t = t[t["group"] == "overall"]
        elif scope == "subgroups":
            t = t[t["group"] != "overall"]
        for r in t.itertuples(index=False):
            side = "lower" if hib is not False else "upper"
            bound = r.ci_low if side == "lower" else r.ci_high
            if hib is None:
                met, verdict = None, "not judged: metric has no direction"
            elif isinstance(r.flags, str) and r.flags.startswith("insufficient"):
                met, verdict = None, "insufficient data"
            elif not np.isfinite(r.estimate) or not np.isfinite(bound):
                met, verdict = None, f"not judged: {r.reason or 'no interval'}"
            else:
                met = bool(bound > target) if hib else bool(bound < target)
                op = ">" if hib else "<"
                verdict = (f"met: {side} {r.ci_level:.0%} bound {bound:.4f} {op} goal "
                           f"{target:.4f}" if met else
                           f"not met: {side} {r.ci_level:.0%} bound {bound:.4f} is not {op} "
                           f"goal {target:.4f} (estimate {r.estimate:.4f})")
            rows.append({"metric": m, "scope": scope, "group": r.group, "level": r.level,
                         "goal": target, "estimate": r.estimate, "bound": bound,
                         "bound_side": side, "met": met, "verdict": verdict})
    return pd.DataFrame(rows, columns=GOAL_COLUMNS)


# ----------------------------------------------------------------------------- protocol
def subgroup_performance_from_protocol(protocol, evset=None, **overrides) -> SubgroupReport:
    """Run :func:`subgroup_performance` as written in a protocol.

    Reads ``performance`` (version, metrics, threshold, confidence_level, proportion_interval,
    ci_method, n_boot, seed, multiplicity, goals) and ``subgroups`` (attributes,
    intersections, min_n, min_events). ``evset`` defaults to ``protocol.load_data()``.
    """
    if evset is None:
        evset = protocol.load_data()
    perf = protocol.performance
    sub = protocol.subgroups
    by: list[Any] = list(sub.attributes) + [tuple(x) for x in sub.intersections]
    kwargs = dict(
        metrics=tuple(perf.metrics), by=by, threshold=perf.threshold,
        confidence_level=perf.confidence_level, version=perf.version,
        proportion_interval=perf.proportion_interval, min_n=sub.min_n,
        min_events=sub.min_events,
        ci_method=None if getattr(perf, "ci_method", "analytic") == "analytic" else "bootstrap",
        n_boot=perf.n_boot, random_state=perf.seed, multiplicity=perf.multiplicity,
        goals=list(perf.goals) or None,
    )
    kwargs.update(overrides)
    return subgroup_performance(evset, **kwargs)
