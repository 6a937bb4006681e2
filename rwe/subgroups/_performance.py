"""Overall, subgroup and intersectional performance with intervals, heterogeneity, fairness
gaps and acceptance against pre-specified goals (EVIDENCE.md SUB-2..SUB-6, METHODS.md C4)."""

from __future__ import annotations

import contextlib
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
    """Multiplicity-adjusted p-values (NaN kept): :func:`rwe.stats.adjust_pvalues`, which
    delegates to ``statsmodels.stats.multitest.multipletests`` (one shared implementation)."""
    from rwe.stats import adjust_pvalues

    return adjust_pvalues(np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0), method=method)


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
        within the reported error bound). Only AUROC replicates use every bin: threshold
        metrics are resampled on the two bins either side of the threshold and the
        calibration slope on <= 256 coarser bins (see Notes).

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

    *Bootstrap.* Replicates are drawn per grouping on its level codes, never on the joint
    cells of all attributes, so the cost is linear in the number of levels (and a grouping
    whose levels are unions of another's, e.g. ``overall`` or ``sex`` next to
    ``sex x race``, is summed from it rather than resampled). Without patient clusters
    each (level, label, score bin) count gets an independent Poisson(count) draw, the
    exact distribution of the row-level Poisson(1) bootstrap; all levels of a grouping come
    from one resampling. With clusters, one Poisson(1) weight per patient and replicate is
    shared by every row of the patient and every grouping (patient-level cluster
    bootstrap, sparse weight x count product). Bins are only as fine as the metrics need:
    2 (threshold split) for threshold metrics and their gaps, the calibration bins for the
    slope, all ``n_bins`` for AUROC. ``settings`` reports ``bootstrap_resolution``,
    ``bootstrap_bins`` and ``bootstrap_resampled_levels``; with ``ci_method`` analytic only
    the fairness-gap metrics are resampled.

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
    # bootstrap CIs need every grouping; fairness gaps only groupings with >= 2 levels
    boot_groupings = cells.groupings if fast_boot else \
        [g for g in cells.groupings[1:] if len(g.levels) >= 2]
    if fast_boot or (fair_metrics and boot_groupings):
        replicates, boot_info = _bootstrap(y, s, cells, threshold, n_bins, n_boot, rng,
                                           clusters, sorted(set(fast_boot) | set(fair_metrics)),
                                           boot_groupings)
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


def _single_thread_blas():
    """Limit BLAS to one thread for the enclosed calls (``threadpoolctl``, a scikit-learn
    dependency; no limit if it is missing).

    The registry metrics can fit many small statsmodels GLMs (a few LAPACK calls on n x 2
    designs each; levels the joint calibration fit leaves out, survival and bootstrap
    metrics): extra BLAS threads only add start-up cost, and on a busy machine
    they oversubscribe the cores (the demo protocol took 9-11 s instead of 5-6 s with
    another process on this 2-core machine). Values change at most in the last bit (BLAS
    summation order).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - installed with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _registry_rows(names, evset, y, s, cells, threshold, level, pi, min_n, min_events):
    """Metrics outside the fast engine: the registry's metric functions on each level's
    :class:`~rwe.metrics.MetricData`, except the calibration slopes and intercepts of a
    grouping's levels, which are fitted together
    (:func:`rwe.metrics._calibration.calibration_fits_by_group`; same values, tested)."""
    with _single_thread_blas():
        return _registry_rows_(names, y, s, cells, threshold, level, pi, min_n, min_events)


def _registry_rows_(names, y, s, cells, threshold, level, pi, min_n, min_events):
    from rwe.metrics._calibration import calibration_fits_by_group
    from rwe.metrics._registry import MetricData, _evaluate, get_metric

    specs = [get_metric(n) for n in names]
    out = []
    for g in cells.groupings:
        levels, datas = [], []
        for _, lev, mask in _level_masks(cells, g):
            # one MetricData per level: its metrics share the validated arrays and logits
            levels.append(lev)
            datas.append(MetricData(y[mask], s[mask], threshold=threshold,
                                    confidence_level=level, proportion_interval=pi))
        # the levels are disjoint rows: their calibration slopes and intercepts are fitted
        # together (one Newton iteration over all rows, not one statsmodels fit per level)
        joint = calibration_fits_by_group(datas, names)
        for j, (lev, data) in enumerate(zip(levels, datas, strict=True)):
            nl, el = data.n, data.positives
            values = [joint.get((j, spec.name)) or _evaluate(spec, data) for spec in specs]
            for m, mv in zip(names, values, strict=True):
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
_CALIB_BINS = 256
#: Elements of one replicate-count chunk (r x levels x 2 x bins): bounds the bootstrap memory
#: (smaller chunks also keep the patient weights of the cluster bootstrap nearer the cache).
_CHUNK_ELEMENTS = 1 << 21


def _resampled_groupings(groupings: Sequence[Grouping]) -> tuple[list[int], dict[int, Any]]:
    """Which groupings are resampled and which are sums of another's levels.

    Grouping ``A`` is *derived* from a resampled grouping ``B`` when every level of ``B``
    lies inside one level of ``A`` or outside ``A`` entirely (its rows are missing in ``A``)
    and every row of ``A`` is in ``B`` (e.g. ``overall`` and ``sex`` from ``sex x race`` when
    no attribute is missing). ``A``'s counts, observed and in every replicate, are then sums
    of ``B``'s level counts: exact, and from the same resampling. Returns the indices of the
    resampled groupings and, per derived grouping, ``(index of B, level of A per level of
    B, -1 = outside A)``. The cost of the bootstrap is linear in the levels of the resampled
    groupings, at most the sum of the levels of all groupings (never the joint cells).
    """
    order = sorted(range(len(groupings)), key=lambda i: -len(groupings[i].levels))
    bases: list[int] = []
    plan: dict[int, Any] = {}
    for i in order:
        a = groupings[i].cell_to_level
        plan[i] = None
        for j in bases:
            b = groupings[j].cell_to_level
            inb = b >= 0
            if np.any((a >= 0) & ~inb):
                continue
            pairs = np.unique(np.stack([b[inb], a[inb]]), axis=1)
            if pairs.shape[1] != len(groupings[j].levels):  # a level of B splits across A
                continue
            amap = np.full(len(groupings[j].levels), -1, dtype=np.int64)
            amap[pairs[0]] = pairs[1]
            plan[i] = (j, amap)
            break
        if plan[i] is None:
            bases.append(i)
    return sorted(bases), plan


def _sum_levels(amap: np.ndarray, n_levels: int, x: np.ndarray) -> np.ndarray:
    """Sum the level axis (axis -3 of ``(..., levels_B, 2, bins)`` or -2 of ``(levels_B,
    bins)``) of a resampled grouping into the levels of a grouping derived from it."""
    agg = np.zeros((n_levels, len(amap)))
    ok = amap >= 0
    agg[amap[ok], np.flatnonzero(ok)] = 1.0
    if x.ndim >= 3:
        lead = x.shape[:-3]
        flat = x.reshape(lead + (x.shape[-3], -1))
        return (agg @ flat).reshape(lead + (n_levels,) + x.shape[-2:])
    return agg @ x


def _bootstrap(y, s, cells: Cells, threshold, n_bins, n_boot, rng, clusters, metrics,
               groupings: Sequence[Grouping] | None = None):
    """Replicates of each metric for every level of ``groupings``: {metric: {group: (B, L)}}.

    Resampling is done per grouping on its level codes, never on the joint cells of all
    attributes: the count array has (levels of the resampled groupings) x 2 labels x bins
    entries (:func:`_resampled_groupings`), and the bins are only as fine as the metrics
    need:

    * threshold metrics only: 2 bins (below / at or above the threshold), which is exact;
    * ``calibration_slope``: the <= 256 calibration bins, split at the threshold;
    * ``auroc``: every score bin (``n_bins`` uniform bins plus the threshold edge).

    Without clusters every (level, label, bin) count of a resampled grouping gets an
    independent Poisson(count) draw: the exact distribution of the row-level Poisson(1)
    bootstrap of that grouping's statistics, all its levels from one resampling (levels are
    disjoint row sets). Different resampled groupings are drawn independently; every interval
    and gap involves a single grouping. With clusters, one Poisson(1) weight per patient and
    replicate, shared by all groupings, is mapped onto every resampled grouping's level x
    label x bin codes by one sparse product (patient-level cluster bootstrap).
    """
    groupings = list(cells.groupings if groupings is None else groupings)
    metrics = list(metrics)
    edges = score_bin_edges(n_bins, threshold)
    nb = len(edges) - 1
    k = int(np.flatnonzero(edges == threshold)[0])
    need_auc = "auroc" in metrics
    need_cal = "calibration_slope" in metrics
    thr_metrics = [m for m in metrics if m != "calibration_slope"]
    cstarts = np.arange(0, nb, max(1, -(-nb // _CALIB_BINS)))
    if need_auc:
        starts = np.arange(nb)
        resolution = "score bins"
    elif need_cal:
        starts = np.union1d(cstarts, [k])
        resolution = "calibration bins split at the threshold"
    else:
        starts = np.array([0, k])
        resolution = "threshold split"
    nbr = len(starts)
    kr = int(np.searchsorted(starts, k))
    cs = np.searchsorted(starts, cstarts)  # calibration bins, in resampled-bin indices
    to_res = (np.searchsorted(starts, np.arange(nb), side="right") - 1).astype(np.int32)
    br = to_res[bin_scores(s, n_bins, threshold)]

    bases, plan = _resampled_groupings(groupings)
    base_off = np.cumsum([0] + [len(groupings[i].levels) for i in bases])
    n_base = int(base_off[-1])
    counts = np.zeros(n_base * 2 * nbr, dtype=np.int64)
    codes = []  # per-row codes, kept only for the cluster bootstrap
    row_sel = []
    lsums = []
    logit = None
    if need_cal:
        p = np.clip(s, 1e-12, 1 - 1e-12)
        logit = np.log(p) - np.log1p(-p)
        del p
    for off, i in zip(base_off, bases, strict=False):
        lev = groupings[i].cell_to_level.astype(np.int64)[cells.codes]
        keep = np.flatnonzero(lev >= 0) if (lev < 0).any() else None
        if keep is not None:
            lev = lev[keep]
        bb = br if keep is None else br[keep]
        code = ((lev + off) * 2 + (y if keep is None else y[keep])) * nbr + bb
        counts += np.bincount(code, minlength=counts.size)
        if clusters is not None:
            codes.append(code)
            row_sel.append(keep)
        del code
        if need_cal:
            lsums.append(np.bincount(lev * nbr + bb, minlength=len(groupings[i].levels) * nbr,
                                     weights=logit if keep is None else logit[keep]))
        del lev, bb
    del br, logit
    counts = counts.reshape(n_base, 2, nbr)

    pos = {i: bases.index(i) for i in bases}

    def expand(base_arrays: Sequence[np.ndarray]) -> dict[int, Any]:
        """Arrays per resampled grouping -> arrays for every requested grouping."""
        out = {}
        for i, g in enumerate(groupings):
            if plan[i] is None:
                out[i] = base_arrays[pos[i]]
            else:
                j, amap = plan[i]
                out[i] = _sum_levels(amap, len(g.levels), base_arrays[pos[j]])
        return out

    obs_base = [counts[base_off[t]:base_off[t + 1]].astype(np.float64)
                for t in range(len(bases))]
    obs = expand(obs_base)

    # calibration slope: one ragged fit over the non-empty (level, calibration bin) entries of
    # every grouping (empty bins do not enter a fit); covariate = mean logit(p) of the level's
    # rows in the bin; starting values = the fit on the observed counts
    cal = None
    if need_cal:
        lsum = expand([ls.reshape(-1, nbr) for ls in lsums])
        del lsums
        nbc = len(cs)
        xe, take, seg_len, obs_e = [], [], [], []
        for i in range(len(groupings)):
            cnt = np.add.reduceat(obs[i], cs, axis=-1)  # (L, 2, Bc)
            tot = cnt.sum(1)
            lev, cb = np.nonzero(tot > 0)  # sorted by level, then bin
            xe.append(np.add.reduceat(lsum[i], cs, axis=-1)[lev, cb] / tot[lev, cb])
            take.append(lev * nbc + cb)
            seg_len.append(np.bincount(lev, minlength=len(tot)))
            obs_e.append(cnt[lev, :, cb].T)  # (2, entries)
        xe_all = np.concatenate(xe)
        seg_len_all = np.concatenate(seg_len)
        seg_starts = np.concatenate([[0], np.cumsum(seg_len_all)[:-1]])
        obs_all = np.concatenate(obs_e, axis=1)
        a0, b0 = _logistic_slope_segments(xe_all, seg_starts, obs_all[None, 1],
                                          obs_all[None].sum(1), n_iter=100)
        start = (np.where(np.isfinite(b0), a0, 0.0), np.where(np.isfinite(b0), b0, 1.0))
        lev_off = np.cumsum([0] + [len(g.levels) for g in groupings])
        cal = (xe_all, seg_starts, take, start, lev_off)
        del lsum, obs_e, obs_all

    # elements per replicate: resampled and derived counts, plus the slope fit's working
    # arrays (about eight of one value per non-empty calibration bin)
    per_rep = (n_base + sum(len(g.levels) for g in groupings)) * 2 * nbr
    if cal is not None:
        per_rep += 8 * len(cal[0])
    chunk = max(1, min(n_boot, _CHUNK_ELEMENTS // max(per_rep, 1)))
    if clusters is not None:
        # one weight per patient and replicate, shared by every resampled grouping: the
        # patient x (grouping, level, label, bin) matrix stacks the groupings' codes
        _, cl = np.unique(clusters, return_inverse=True)
        cl = cl.reshape(-1)
        cl_all = np.concatenate([cl if sel is None else cl[sel] for sel in row_sel])
        code_all = np.concatenate(codes)
        del cl, codes, row_sel
        it = poisson_bootstrap_counts(counts, n_boot, random_state=rng, chunk=chunk,
                                      codes=code_all, clusters=cl_all, sampler="table")
        del code_all, cl_all
    else:
        it = poisson_bootstrap_counts(counts, n_boot, random_state=rng, chunk=chunk)
    reps: dict[str, dict[int, list[np.ndarray]]] = {
        m: {i: [] for i in range(len(groupings))} for m in metrics}
    for rep_counts in it:
        rep = expand([rep_counts[:, base_off[t]:base_off[t + 1]] for t in range(len(bases))])
        for i in range(len(groupings)):
            if thr_metrics:
                vals = binned_metrics(rep[i], kr, thr_metrics)
                for m in thr_metrics:
                    reps[m][i].append(vals[m])
        if need_cal:
            xe_all, seg_starts, take, start, lev_off = cal
            r = rep_counts.shape[0]
            neg, pos_ = [], []
            for i in range(len(groupings)):
                cc = np.add.reduceat(rep[i], cs, axis=-1)  # (r, L, 2, Bc)
                neg.append(cc[:, :, 0, :].reshape(r, -1)[:, take[i]])
                pos_.append(cc[:, :, 1, :].reshape(r, -1)[:, take[i]])
            pos_e = np.concatenate(pos_, axis=1)
            tot_e = np.concatenate(neg, axis=1) + pos_e
            del neg, pos_
            _, slope = _logistic_slope_segments(xe_all, seg_starts, pos_e, tot_e, start=start)
            for i in range(len(groupings)):
                reps["calibration_slope"][i].append(slope[:, lev_off[i]:lev_off[i + 1]])
        del rep, rep_counts
    out = {m: {g.name: np.concatenate(reps[m][i], axis=0) for i, g in enumerate(groupings)}
           for m in metrics}
    bound_max = math.nan
    if need_auc:
        bounds = [_binned_auc(obs[i])[1] for i in range(len(groupings))]
        bound = np.concatenate(bounds)
        bound_max = float(np.nanmax(bound)) if np.isfinite(bound).any() else math.nan
    info = {"n_bins": int(nb), "n_boot": int(n_boot),
            "bootstrap": "cluster (patients)" if clusters is not None else "poisson (summary)",
            "bootstrap_bins": int(nbr), "bootstrap_resolution": resolution,
            "bootstrap_resampled_levels": n_base,
            "auroc_binned_error_bound_max": bound_max}
    info["_level_counts"] = {g.name: obs[i] for i, g in enumerate(groupings)}
    info["_threshold_bin"] = kr
    return out, info


def _logistic_slope_segments(xe: np.ndarray, starts: np.ndarray, pos: np.ndarray,
                             tot: np.ndarray, n_iter: int = 25, *,
                             start: tuple[np.ndarray, np.ndarray] | None = None
                             ) -> tuple[np.ndarray, np.ndarray]:
    """Binned logistic fits ``logit P(y) = a + b x`` by Newton-Raphson, many at once.

    The bins of all fits lie side by side on the last axis: fit ``l`` owns the (non-empty)
    segment ``starts[l]:starts[l + 1]``; ``xe`` (entries,) is the covariate of each bin and
    ``pos``, ``tot`` (R, entries) the cases and totals per bin of R replicates. Every
    (replicate, fit) pair is a segment of one flat array and its sums are
    ``np.add.reduceat`` over the segments, so no padding is stored or computed, and a pair
    leaves the arrays once it has converged (its last Newton step below
    ``1e-6 max(1, |b|)``; that step is kept) or diverged. Pairs not converged after
    ``n_iter`` steps (separation, a single bin) and pairs without both outcomes (no finite
    maximum likelihood estimate) give NaN. Returns ``a, b`` of shape
    (R, fits). ``start`` = (a, b) of shape (fits,) (default a = 0, b = 1).
    """
    from scipy.special import expit

    xe = np.asarray(xe, dtype=np.float64)
    n_rep, n_ent = np.shape(pos)
    k = len(starts)
    lens = np.diff(np.append(starts, n_ent))
    # flat row-major (replicate, entry) arrays: pair (r, l) is one contiguous segment
    pp = np.asarray(pos, dtype=np.float64).reshape(-1)
    tt = np.asarray(tot, dtype=np.float64).reshape(-1)
    xx = np.tile(xe, n_rep)
    plen = np.tile(lens, n_rep)
    if start is None:
        a = np.zeros(n_rep * k)
        b = np.ones(n_rep * k)
    else:
        a = np.tile(np.asarray(start[0], dtype=np.float64).reshape(k), n_rep)
        b = np.tile(np.asarray(start[1], dtype=np.float64).reshape(k), n_rep)
    out_a = np.full(n_rep * k, np.nan)
    out_b = np.full(n_rep * k, np.nan)
    ids = np.arange(n_rep * k)
    # a fit with no cases or no controls has no finite MLE (a = -inf or +inf): NaN
    pst = np.concatenate([[0], np.cumsum(plen)[:-1]])
    npos, ntot = np.add.reduceat(pp, pst), np.add.reduceat(tt, pst)
    go = (npos > 0) & (npos < ntot)
    if not go.all():
        keep = np.repeat(go, plen)
        ids, a, b, plen = ids[go], a[go], b[go], plen[go]
        pp, tt, xx = pp[keep], tt[keep], xx[keep]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for _ in range(n_iter if ids.size else 0):
            pst = np.concatenate([[0], np.cumsum(plen)[:-1]])
            mu = np.repeat(b, plen)
            mu *= xx
            mu += np.repeat(a, plen)
            expit(mu, out=mu)
            tm = tt * mu
            r = pp - tm
            tm *= mu
            w = tt * mu - tm  # tot mu (1 - mu)
            del mu, tm
            ga = np.add.reduceat(r, pst)
            r *= xx
            gb = np.add.reduceat(r, pst)
            del r
            haa = np.add.reduceat(w, pst)
            w *= xx
            hab = np.add.reduceat(w, pst)
            w *= xx
            hbb = np.add.reduceat(w, pst)
            del w
            det = haa * hbb - hab * hab
            da = (hbb * ga - hab * gb) / det
            db = (haa * gb - hab * ga) / det
            a = a + da
            b = b + db
            conv = np.isfinite(b) & (np.abs(db) < 1e-6 * np.maximum(1, np.abs(b)))
            stop = conv | ~np.isfinite(b)
            if stop.any():
                out_a[ids[conv]] = a[conv]
                out_b[ids[conv]] = b[conv]
                go = ~stop
                if not go.any():
                    break
                keep = np.repeat(go, plen)
                ids, a, b, plen = ids[go], a[go], b[go], plen[go]
                pp, tt, xx = pp[keep], tt[keep], xx[keep]
    return out_a.reshape(n_rep, k), out_b.reshape(n_rep, k)


def _binned_logistic_slope(x: np.ndarray, counts: np.ndarray, n_iter: int = 25) -> np.ndarray:
    """Calibration slope b of ``logit P(y) = a + b x`` fitted by Newton-Raphson on binned data.

    ``x`` (levels, bins) is the mean logit of the predicted probability in each bin;
    ``counts`` (r, levels, 2, bins) the replicate controls and cases. Vectorized over
    replicates and levels (:func:`_logistic_slope_segments` on the dense bins; empty bins
    add nothing); fits that do not converge (separation) give NaN.
    """
    counts = np.asarray(counts, dtype=np.float64)
    tot = counts[..., 0, :] + counts[..., 1, :]
    lead, (n_lev, nbin) = tot.shape[:-2], tot.shape[-2:]
    xe = np.broadcast_to(x, (n_lev, nbin)).reshape(-1)
    n_rep = int(np.prod(lead))
    pos = counts[..., 1, :].reshape(n_rep, n_lev * nbin)
    _, b = _logistic_slope_segments(xe, np.arange(0, n_lev * nbin, nbin), pos,
                                    tot.reshape(n_rep, n_lev * nbin), n_iter)
    return b.reshape(lead + (n_lev,))


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
    for g in cells.groupings:
        obs = level_counts[g.name]
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
def _usable(table: pd.DataFrame) -> np.ndarray:
    """Rows with an unflagged, finite estimate (levels that enter tests and gaps)."""
    return table["flags"].isna().to_numpy() & np.isfinite(table["estimate"].to_numpy(dtype=float))


def _usable_levels(table: pd.DataFrame) -> dict[tuple[str, str], list]:
    """Levels with an unflagged, finite estimate, per (group, metric), in table order."""
    ok = _usable(table)
    out: dict[tuple[str, str], list] = {}
    for g, m, lev in zip(table["group"].to_numpy()[ok], table["metric"].to_numpy()[ok],
                         table["level"].to_numpy()[ok], strict=True):
        out.setdefault((g, m), []).append(lev)
    return out


def _heterogeneity(table, level_stats, cells, metrics, multiplicity, evset, y, s):
    rows = []
    usable = _usable_levels(table)
    for m in metrics:
        for g in cells.groupings[1:]:
            levels = list(usable.get((g.name, m), []))
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
    from rwe.metrics._calibration import grouped_logistic_fit

    row_level = g.cell_to_level[cells.codes]
    lev_idx = [g.levels.index(lev) for lev in levels]
    lut = np.full(len(g.levels) + 1, -1, dtype=np.int64)
    lut[lev_idx] = np.arange(len(lev_idx))
    grp = lut[row_level]  # row_level -1 (missing) -> lut[-1] = -1
    mask = grp >= 0
    grp = grp[mask]
    p = np.clip(s[mask], 1e-12, 1 - 1e-12)
    lp = np.log(p / (1 - p))
    yy = y[mask]
    k = len(lev_idx)
    fit0 = grouped_logistic_fit(yy, lp, grp, k, model="common_slope")
    fit1 = grouped_logistic_fit(yy, lp, grp, k, model="slopes")
    llf0, llf1 = fit0.llf, fit1.llf
    if not (fit0.converged and fit1.converged):
        return {"test": "lr_interaction", "statistic": math.nan, "df": math.nan,
                "pvalue": math.nan, "i2": math.nan,
                "method": "not tested: logistic fit did not converge (separation?)"}
    stat = max(0.0, 2 * (llf1 - llf0))
    df = k - 1
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
            use = t[_usable(t)]
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
