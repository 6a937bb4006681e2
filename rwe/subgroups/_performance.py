"""Overall, subgroup and intersectional performance with intervals, heterogeneity, fairness
gaps and acceptance against pre-specified goals (EVIDENCE.md SUB-2..SUB-6, METHODS.md C4).

Everything is computed from a mergeable :class:`rwe.stats.summaries.Summary`: an evaluation
set is summarized first (full resolution, so every point estimate is the row-level one), a
summary (e.g. merged from sites) is used as it is. Each metric is its registry kernel run over
the levels of every grouping at once (:mod:`rwe.metrics`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from rwe._evidence import (
    STATUS_FAIL,
    STATUS_NOT_EVALUABLE,
    STATUS_NOT_EVALUATED,
    STATUS_PASS,
    Finding,
    Verdict,
    combine_statuses,
    verdict_id,
)
from rwe._results import Interval
from rwe._validation import check_choice, check_int, check_level, check_real
from rwe.exceptions import InvalidParameterError, RWEWarning
from rwe.metrics._registry import KernelContext
from rwe.stats.summaries import DEFAULT_N_BINS, Summary, summarize
from rwe.subgroups import _templates  # noqa: F401 - registers the finding templates
from rwe.subgroups._bootstrap import binned_jackknife, bootstrap_replicates
from rwe.subgroups._result import (
    CALIBRATION_COLUMNS,
    FAIR_COLUMNS,
    GOAL_COLUMNS,
    HET_COLUMNS,
    ROC_COLUMNS,
    STATUS_DEGENERATE,
    STATUS_INSUFFICIENT,
    STATUS_OK,
    TABLE_COLUMNS,
    SubgroupPerformanceResult,
)

__all__ = ["subgroup_performance", "subgroup_performance_from_protocol", "FAIRNESS_METRICS"]

#: Fairness summaries (fairlearn definitions): equal-opportunity gap (sensitivity difference),
#: false-positive-rate difference and calibration-slope difference.
FAIRNESS_METRICS = ("sensitivity", "fpr", "calibration_slope")
CI_METHODS = (None, "analytic", "bootstrap")
MULTIPLICITY = ("holm", "fdr_bh", "bonferroni", "none")
PROPORTION_INTERVALS = ("wilson", "clopper-pearson")
SCOPES = ("overall", "subgroups", "all")

MSG_DASK_CLUSTERS = ("{name}=True needs every patient's rows together; {note} (patients may "
                     "span partitions): pass False or 'auto'")


def _is_dask_set(data: Any) -> bool:
    """A :class:`rwe.data.DaskEvaluationSet` (rows in partitions, summarized on demand)."""
    return not isinstance(data, Summary) and callable(getattr(data, "summarize", None))


MSG_NO_LABEL = "subgroup_performance needs a binary label column (roles.label)"
MSG_BAD_BY = "by must contain attribute names or tuples of names, got {value!r}"
MSG_REPEATED = "grouping {value!r} names an attribute twice; an intersection needs distinct attributes"
MSG_ROWS_METRIC = ("metric {name!r} needs individual rows ({kind} metric: an estimator refitted "
                   "on the rows of each level); a summary holds none, pass the EvaluationSet")
MSG_NO_SURVIVAL = ("survival metric {name!r} needs the time and event column roles, which are "
                   "not set")
NO_DATA_LEVEL = "(no data)"
MSG_NO_VALUES = "no row has a value of {attrs}: the grouping has no level to evaluate"
ROC_POINTS = 200
CALIBRATION_BINS = 10
_FAIR_DEF = {"sensitivity": "equal opportunity difference (sensitivity max - min)",
             "fpr": "false-positive-rate difference (max - min)",
             "calibration_slope": "calibration slope difference (max - min)"}



# ----------------------------------------------------------------------------- helpers
def _norm_by(by: Any) -> tuple[tuple[str, ...], ...]:
    if isinstance(by, str):
        by = (by,)
    out = []
    for g in by:
        if isinstance(g, str):
            out.append((g,))
        elif isinstance(g, Sequence) and g and all(isinstance(a, str) for a in g):
            if len(set(g)) != len(g):
                raise InvalidParameterError(MSG_REPEATED.format(value=tuple(g)))
            out.append(tuple(g))
        else:
            raise InvalidParameterError(MSG_BAD_BY.format(value=by))
    return tuple(dict.fromkeys(out))


def _adjust(p: np.ndarray, method: str) -> np.ndarray:
    from rwe.stats import adjust_pvalues

    return adjust_pvalues(np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0), method=method)


def _specs(metrics: Sequence[str]):
    from rwe.metrics import get_metric

    return [get_metric(m) for m in metrics]


def _status(spec, n, events, est, kernel_reason, min_n, min_events):
    """Row status (ok / insufficient / degenerate) and its reason, per level."""
    k = len(n)
    status = np.full(k, STATUS_OK, dtype=object)
    reason = np.array([None if r is None else str(r) for r in kernel_reason], dtype=object)
    few_n = n < min_n
    few_ev = (events < min_events) if spec.needs_events else np.zeros(k, dtype=bool)
    status[few_n | few_ev] = STATUS_INSUFFICIENT
    degenerate = ~np.isfinite(np.asarray(est, dtype=float)) & ~np.isinf(est)
    status[degenerate] = STATUS_DEGENERATE
    extra = np.full(k, None, dtype=object)
    for i in np.flatnonzero(few_n | few_ev):
        parts = []
        if few_n[i]:
            parts.append(f"fewer than min_n = {min_n} rows")
        if few_ev[i]:
            parts.append(f"fewer than min_events = {min_events} events")
        extra[i] = " and ".join(parts)
    for i in np.flatnonzero(extra != None):  # noqa: E711
        reason[i] = extra[i] if reason[i] is None else f"{reason[i]}; {extra[i]}"
    return status, reason


# ----------------------------------------------------------------------------- main
def subgroup_performance(
    data,
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
    cluster_intervals: bool | str = "auto",
    heterogeneity: bool = True,
    heterogeneity_alpha: float = 0.05,
    multiplicity: str = "holm",
    goals: Iterable[Any] | None = None,
    fairness: bool = True,
    n_bins: int = DEFAULT_N_BINS,
    bootstrap_interval: str = "percentile",
    auroc_interval: str = "delong-logit-t",
    horizon: float | None = None,
) -> SubgroupPerformanceResult:
    """Performance overall, per subgroup and per intersection, with intervals and tests.

    Parameters
    ----------
    data : rwe.data.EvaluationSet, rwe.data.DaskEvaluationSet or rwe.stats.summaries.Summary
        Needs a binary label and a score column. An evaluation set is summarized first
        (:func:`rwe.summarize`, full resolution: every point estimate is the row-level one);
        a summary (merged from sites or partitions) is analysed as it is, binned numbers
        carrying their resolution; a dask-backed set is summarized per partition at its
        ``resolution`` (:meth:`rwe.data.DaskEvaluationSet.summarize`) and analysed as that
        summary (no patient-clustered intervals: they need every patient's rows together).
    metrics : iterable of str
        Registered metric names (:func:`rwe.metrics.metric_names`). Metrics with a kernel
        come from the summary; survival metrics (Harrell's and Uno's C, time-dependent AUC,
        IPCW Brier, Kaplan-Meier survival at the horizon) need the time and event roles and
        are computed from each level's rows of an EvaluationSet, each with its interval.
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
        Cells with fewer rows (or, for metrics conditioned on positives and all
        non-proportion metrics, fewer events) are shown with status ``"insufficient"`` and
        are not used as evidence (goal cells not evaluable; left out of heterogeneity tests
        and gaps).
    ci_method : {None, "analytic", "bootstrap"}
        ``None``/``"analytic"``: each metric's analytic default (Wilson or Clopper-Pearson
        for proportions, DeLong for AUROC, Wald for calibration fits). ``"bootstrap"``:
        percentile (or BCa) intervals from the summary-level Poisson bootstrap for every
        metric whose registry entry has ``bootstrap_bins``.
    n_boot : int
        Bootstrap replicates (bootstrap intervals, fairness-gap intervals, ECE).
    random_state : None, int or numpy Generator
    cluster_bootstrap : {"auto", True, False}
        Resample patients instead of rows. ``"auto"``: when the data repeat a patient.
    cluster_intervals : {"auto", True, False}
        Analytic intervals that account for several rows per patient: the Wilson (or
        Clopper-Pearson) interval with the ratio-estimator design effect for proportions
        (:func:`rwe.stats.wilson_effective`, :func:`rwe.stats.cluster_ratio_variance`) and
        Obuchowski's (1997) clustered variance for the AUROC (:func:`rwe.stats.obuchowski_auc`
        with :func:`rwe.stats.auc_interval`, degrees of freedom from the patients); the
        table reports ``n_clusters`` and ``design_effect``. ``"auto"``: when the data repeat
        a patient. Other metrics keep their row-level intervals (a finding says so).
    heterogeneity : bool
        Test homogeneity across the levels of each grouping.
    heterogeneity_alpha : float
        Adjusted p-value below which a heterogeneity finding is reported.
    multiplicity : {"holm", "fdr_bh", "bonferroni", "none"}
        Adjustment of the heterogeneity p-values, per metric across groupings.
    goals : iterable, optional
        Objects or dicts with ``metric``, ``goal``, ``scope`` in ``{"overall", "subgroups",
        "all"}``, optional ``version`` and ``description`` (``rwe.protocol`` ``Goal``).
    fairness : bool
        Compute fairness gaps (max - min across levels) with bootstrap intervals.
    n_bins : int
        Score bins of the bootstrap (threshold metrics exact; AUROC within the reported
        error bound).
    horizon : float, optional
        Time horizon of the survival metrics (time-dependent AUC, IPCW Brier, Kaplan-Meier
        survival; truncation of Uno's C).
    auroc_interval : {"delong-logit-t", "delong"}
        AUROC interval (:func:`rwe.stats.auc_interval`): the logit interval with
        Brunner-Munzel degrees of freedom (default; keeps coverage with few cases and high
        AUROC, undefined at AUROC 0 or 1), or pROC's Wald interval.
    bootstrap_interval : {"percentile", "bca"}
        Interval from the bootstrap replicates when ``ci_method="bootstrap"``; ``"bca"`` uses
        the exact grouped jackknife of the binned statistic for the acceleration
        (proportions and AUROC; other metrics fall back to percentile); not available with
        the cluster bootstrap (percentile is used, with an :class:`RWEWarning`).

    Returns
    -------
    SubgroupPerformanceResult
        Tables, typed verdicts and findings, ROC and calibration curves; no patient rows.

    Notes
    -----
    *Heterogeneity* (the metric's registry entry names the test). Proportions: Pearson
    chi-square test of homogeneity on the 2 x k table of the metric's numerator and complement
    (``scipy.stats.chi2_contingency(correction=False)``). AUROC: the unpaired DeLong test for
    two levels (pROC ``roc.test(paired=FALSE)``); for k > 2 levels Cochran's Q with inverse
    DeLong-variance weights, df = k - 1, and Higgins' I^2 [3]_ [4]_. Calibration slope:
    likelihood-ratio test of the logit(p) x level interaction (slope per level vs one common
    slope). Only levels with status ``"ok"`` enter a test.

    *Bootstrap.* See :mod:`rwe.subgroups._bootstrap`: replicates per grouping on its level
    codes (linear in the number of levels), exact Poisson(count) draws without clusters, one
    Poisson(1) weight per patient with clusters; each metric on the bins it needs.

    *Fairness.* Gaps follow fairlearn's ``MetricFrame.difference()`` (max - min across the
    levels of a grouping) for sensitivity (equal opportunity), FPR and calibration slope,
    with a simultaneous interval built from Bonferroni-adjusted pairwise differences
    (Newcombe's hybrid score interval for proportions, Wald for slopes; see ``_fairness``):
    it always contains the estimated gap and covers the true gap with probability >= the
    confidence level (conservative). A test of equality is the heterogeneity test.

    *Goals.* Judged on the confidence bound (:func:`rwe.stats.judge_goal`): a cell passes when
    its lower bound exceeds the goal (upper bound below it for lower-is-better metrics);
    cells below ``min_n``/``min_events``, with an undefined bound, or where even a perfect
    result could not beat the goal (proportions) are ``not_evaluable``. A goal over several
    cells fails if any cell fails, passes only if every cell passes, else is not evaluable.
    A goal tagged with another model version than the one analysed is ``not_evaluated``.

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
    specs = _specs(metrics)
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
    alpha = check_real(heterogeneity_alpha, "heterogeneity_alpha", low=0, high=1,
                       low_inclusive=False, high_inclusive=False)
    check_choice(multiplicity, "multiplicity", MULTIPLICITY)
    check_choice(bootstrap_interval, "bootstrap_interval", ("percentile", "bca"))
    for name, v in (("cluster_bootstrap", cluster_bootstrap),
                    ("cluster_intervals", cluster_intervals)):
        if v not in ("auto", True, False):
            raise InvalidParameterError(f"{name} must be 'auto', True or False, got {v!r}")
    goals = list(goals) if goals else []
    attrs = list(dict.fromkeys(a for g in groupings_by for a in g))
    need_boot = ci_method == "bootstrap"

    kernel_specs = [sp for sp in specs if sp.kernel is not None]
    row_specs = [sp for sp in specs if sp.kernel is None]
    if _is_dask_set(data):  # summarized per partition, then analysed as the summary
        for name, v in (("cluster_bootstrap", cluster_bootstrap),
                        ("cluster_intervals", cluster_intervals)):
            if v is True:
                raise InvalidParameterError(MSG_DASK_CLUSTERS.format(name=name,
                                                                     note=data.rows_note))
        for sp in row_specs:
            raise InvalidParameterError(MSG_ROWS_METRIC.format(name=sp.name, kind=sp.kind)
                                        + f"; {data.rows_note}")
        data = data.summarize(thresholds=(threshold,))
    if isinstance(data, Summary):
        summary = data
        for sp in row_specs:
            raise InvalidParameterError(MSG_ROWS_METRIC.format(name=sp.name, kind=sp.kind))
        if summary.events is None:
            raise InvalidParameterError(MSG_NO_LABEL)
        version = str(version) if version is not None else summary.versions[0]
        summary.score_table(version)
        for a in attrs:
            if a not in summary.attributes:
                summary.grouping(a)  # raises naming the attributes the summary has
        use_clusters = summary.clusters is not None and (
            cluster_bootstrap is True or (cluster_bootstrap == "auto" and
                                          summary.clusters.repeated))
        cl_int = summary.clusters is not None and (
            cluster_intervals is True or (cluster_intervals == "auto" and
                                          summary.clusters.repeated))
        for name, v in (("cluster_bootstrap", cluster_bootstrap),
                        ("cluster_intervals", cluster_intervals)):
            if v is True and summary.clusters is None:
                raise InvalidParameterError(
                    f"{name}=True needs a summary made with keep_clusters=True")
    else:
        roles = getattr(data, "roles", None)
        if kernel_specs and getattr(roles, "label", None) is None:
            raise InvalidParameterError(MSG_NO_LABEL)
        for sp in row_specs:
            if roles is None or roles.time is None or roles.event is None:
                raise InvalidParameterError(MSG_NO_SURVIVAL.format(name=sp.name))
        version = data.primary_version if version is None else str(version)
        data.score(version)  # raises for an unknown version
        for a in attrs:
            data.attribute(a)  # raises naming the grouping columns
        repeated = data.roles.patient_id is not None and data.has_repeated_patients
        use_clusters = need_boot and (cluster_bootstrap is True or (
            cluster_bootstrap == "auto" and repeated))
        cl_int = cluster_intervals is True or (cluster_intervals == "auto" and repeated)
        if (use_clusters or cl_int) and data.clusters is None:
            raise InvalidParameterError(
                "cluster_bootstrap=True / cluster_intervals=True need a patient_id column role, "
                "which is not set")
        labelled = data.roles.label is not None
        summary = summarize(data, attributes=attrs, versions=[version] if labelled else [],
                            features=(), keep_clusters=(use_clusters or cl_int) and labelled)
        cl_int = cl_int and labelled
    rng = np.random.default_rng(random_state)
    from rwe.stats import AUC_INTERVALS

    check_choice(auroc_interval, "auroc_interval", AUC_INTERVALS)
    ctx = KernelContext(confidence_level=level, proportion_interval=proportion_interval,
                        threshold=threshold, n_boot=n_boot, random_state=rng,
                        auroc_interval=auroc_interval)
    groupings = [summary.grouping(())] + [summary.grouping(g) for g in groupings_by]

    # ---------------------------------------------------------------- point estimates
    from rwe.metrics import get_metric

    fair_specs = [get_metric(m) for m in FAIRNESS_METRICS if fairness and
                  (m != "calibration_slope" or m in metrics)]
    if not kernel_specs:
        fair_specs = []
    extra_specs = [s for s in fair_specs if s.name not in metrics]
    parts: list[pd.DataFrame] = []
    extra_parts: list[pd.DataFrame] = []
    kernels: dict[tuple[str, str], Any] = {}
    segs: dict[str, Any] = {}  # kept only for the tests that need rows (calibration LR)
    keep_segs = heterogeneity and any(s.heterogeneity == "lr_interaction" for s in specs)
    roc_parts: list[pd.DataFrame] = []
    cal_parts: list[pd.DataFrame] = []
    for gi, g in enumerate(groupings):
        if not g.levels:  # every row lacks a component: an explicit "no data" row per metric
            for mi, spec in enumerate(specs + extra_specs):
                frame = pd.DataFrame({
                    "group": [g.name], "n_attributes": g.n_attributes, "level": NO_DATA_LEVEL,
                    "n": 0, "events": 0, "metric": spec.name, "estimate": np.nan,
                    "ci_low": np.nan, "ci_high": np.nan, "ci_level": level, "ci_method": None,
                    "binning_bound": np.nan, "n_clusters": pd.NA, "design_effect": np.nan,
                    "status": STATUS_DEGENERATE,
                    "reason": MSG_NO_VALUES.format(attrs=" and ".join(g.attrs)),
                    "_g": gi, "_m": mi, "_l": 0})
                (parts if spec.name in metrics else extra_parts).append(frame)
            continue
        row_values = _row_metric_values(data, summary, g, row_specs, attrs, version,
                                        threshold, ctx, horizon) if row_specs else {}
        seg = summary.segments(g, version, threshold=threshold) if kernel_specs else None
        if keep_segs:
            segs[g.name] = seg
        for mi, spec in enumerate(specs + extra_specs):
            if spec.kernel is None:
                lv, n, ev = row_values[spec.name]
            else:
                n = seg.n.astype(np.int64)
                ev = seg.n_pos.astype(np.int64)
                lv = spec.kernel(seg, ctx)
            kernels[(g.name, spec.name)] = lv
            status, reason = _status(spec, n, ev, lv.estimate, lv.reason, min_n, min_events)
            has_ci = np.isfinite(lv.low) & np.isfinite(lv.high)
            if "bound" in lv.extras:
                bound = np.asarray(lv.extras["bound"], dtype=float)
            else:
                exact = seg is None or seg.exact or spec.summary == "exact"
                bound = np.full(len(n), 0.0 if exact else np.nan)
            frame = pd.DataFrame({
                "group": g.name, "n_attributes": g.n_attributes, "level": list(g.levels),
                "n": n, "events": ev, "metric": spec.name,
                "estimate": np.asarray(lv.estimate, dtype=float),
                "ci_low": np.where(has_ci, lv.low, np.nan),
                "ci_high": np.where(has_ci, lv.high, np.nan), "ci_level": level,
                "ci_method": np.where(has_ci, lv.method, None).astype(object),
                "binning_bound": bound, "n_clusters": pd.array([pd.NA] * len(n), dtype="Int64"),
                "design_effect": np.nan, "status": status, "reason": reason,
                "_g": gi, "_m": mi, "_l": np.arange(len(g.levels))})
            (parts if spec.name in metrics else extra_parts).append(frame)
        if seg is not None:
            roc_g, cal_g = _curves_of(seg, g, level)
            roc_parts += roc_g
            cal_parts += cal_g
        del seg
    table = pd.concat(parts, ignore_index=True).sort_values(
        ["_m", "_g", "_l"], kind="stable").drop(columns=["_g", "_m", "_l"])
    table = table.reset_index(drop=True)[TABLE_COLUMNS]
    table["n_clusters"] = table["n_clusters"].astype("Int64")
    deffs: dict[tuple[str, str], np.ndarray] = {}  # clustered design effects, for _fairness
    if cl_int:
        fair_props = [s for s in fair_specs if s.confusion is not None and s not in kernel_specs]
        table = _cluster_adjust(table, summary, [g for g in groupings if g.levels],
                                kernel_specs + fair_props, version, threshold, ctx, kernels,
                                deffs)

    # ---------------------------------------------------------------- bootstrap
    boot_specs = [s for s in specs if s.bootstrap_bins] if ci_method == "bootstrap" else []
    boot_info: dict[str, Any] = {}
    replicates: dict[str, dict[str, np.ndarray]] = {}
    nonempty = [g for g in groupings if g.levels]
    boot_groupings = nonempty
    want = {s.name: s for s in boot_specs}
    if want and boot_groupings:
        replicates, boot_info = bootstrap_replicates(
            summary, boot_groupings, list(want.values()), version=version,
            threshold=threshold, n_bins=n_bins, n_boot=n_boot, rng=rng, clusters=use_clusters)
    level_counts = boot_info.pop("_level_counts", None)
    threshold_bin = boot_info.pop("_threshold_bin", None)
    if boot_specs:
        interval = bootstrap_interval
        if interval == "bca" and use_clusters:
            warnings.warn("bootstrap_interval='bca' needs a delete-one-patient jackknife, "
                          "which the binned summaries cannot give; percentile intervals are "
                          "used for the cluster bootstrap", RWEWarning, stacklevel=2)
            interval = "percentile"
        table = _apply_bootstrap_ci(table, replicates, nonempty, boot_specs, level,
                                    use_clusters, interval, level_counts, threshold_bin)

    het = _heterogeneity(table, kernels, segs, groupings, kernel_specs, multiplicity) \
        if heterogeneity else pd.DataFrame(columns=HET_COLUMNS)
    fair_table = pd.concat([table] + [p[TABLE_COLUMNS] for p in extra_parts],
                           ignore_index=True) if extra_parts else table
    fair = _fairness(fair_table, kernels, groupings, level, proportion_interval, summary,
                     version, threshold, cl_int, deffs) \
        if fairness else pd.DataFrame(columns=FAIR_COLUMNS)
    goal_frame, verdicts = _goals(table, goals, version, level, proportion_interval)
    roc, cal = _curve_frames(roc_parts, cal_parts)

    settings = {
        "version": version, "threshold": threshold, "confidence_level": level,
        "proportion_interval": proportion_interval, "ci_method": ci_method or "analytic",
        "bootstrap_interval": bootstrap_interval if ci_method == "bootstrap" else None,
        "min_n": min_n, "min_events": min_events, "n_boot": n_boot,
        "multiplicity": multiplicity, "heterogeneity_alpha": alpha,
        "cluster_bootstrap": bool(use_clusters), "cluster_intervals": bool(cl_int),
        "repeats_patients": bool(summary.repeats_patients or (
            summary.clusters is not None and summary.clusters.repeated)),
        "n": int(summary.n_rows),
        "events": None if summary.n_events is None else int(summary.n_events),
        "resolution": summary.resolution, "horizon": horizon,
        "groupings": [g.name for g in groupings], "metrics": list(metrics),
        **boot_info,
    }
    if use_clusters or cl_int:
        settings["n_patients"] = int(summary.clusters.n_patients)
    findings = _findings(table, verdicts, het, fair, settings)
    return SubgroupPerformanceResult(table=table, heterogeneity=het, fairness=fair,
                                     goals=goal_frame, verdicts=tuple(verdicts),
                                     findings=tuple(findings), roc=roc, calibration=cal,
                                     settings=settings)


# ----------------------------------------------------------------------------- survival rows
def _row_metric_values(data, summary: Summary, g, specs, attrs, version, threshold,
                       ctx: KernelContext, horizon):
    """Row metrics (survival) for every level of ``g``: the registry's row implementation
    on each level's rows (the rows are read, never kept). Returns ``{metric: (LevelValues,
    n, events)}``."""
    from rwe.metrics._registry import LevelValues, compute_metrics
    from rwe.stats.summaries import _codes, _encode_rows

    cell, comp = _encode_rows([_codes(data.attribute(a))[0] for a in attrs], len(data))
    if not np.array_equal(comp, summary.cells.codes):  # pragma: no cover - same encoding
        raise InvalidParameterError("internal: row cells differ from the summary's cells")
    rl = g.cell_to_level[cell]
    t, e = data.time, data.event
    s = data.score(version) if data.roles.scores else np.zeros(len(data))
    L = len(g.levels)
    rs = ctx.random_state
    seeds = rs.integers(0, 2**32, size=L) if isinstance(rs, np.random.Generator) else [rs] * L
    out = {sp.name: ([], np.zeros(L, np.int64), np.zeros(L, np.int64)) for sp in specs}
    for j in range(L):
        m = rl == j
        vals = compute_metrics([sp.name for sp in specs], None, s[m], time=t[m], event=e[m],
                               horizon=horizon, threshold=threshold,
                               confidence_level=ctx.confidence_level, n_boot=ctx.n_boot,
                               random_state=None if seeds[j] is None else int(seeds[j]))
        for sp, v in zip(specs, vals, strict=True):
            out[sp.name][0].append(v)
            out[sp.name][1][j] = int(m.sum())
            out[sp.name][2][j] = int(e[m].sum())
    res = {}
    for name, (vals, n, ev) in out.items():
        lo = np.array([np.nan if v.ci is None else v.ci.low for v in vals], dtype=float)
        hi = np.array([np.nan if v.ci is None else v.ci.high for v in vals], dtype=float)
        method = next((v.ci.method for v in vals if v.ci is not None), None)
        lv = LevelValues(np.array([v.estimate for v in vals], dtype=float), lo, hi, method,
                         np.array([v.reason for v in vals], dtype=object), {},
                         ctx.confidence_level)
        res[name] = (lv, n, ev)
    return res


# ----------------------------------------------------------------------------- clustered
#: Metrics whose analytic interval is adjusted for repeated patients.
CLUSTER_ADJUSTED = "proportions (ratio-estimator design effect) and AUROC (Obuchowski 1997)"


def _cluster_adjust(table: pd.DataFrame, summary: Summary, groupings, specs, version: str,
                    threshold: float, ctx: KernelContext, kernels,
                    deffs: dict[tuple[str, str], np.ndarray] | None = None) -> pd.DataFrame:
    """Replace the row-level intervals of proportions and AUROC by patient-clustered ones
    (see ``cluster_intervals``), from the summary's transient patient index. The AUROC's
    design effect is Obuchowski's variance over DeLong's. The design effect of every
    proportion in ``specs`` is stored in ``deffs[(grouping, metric)]`` (the fairness gaps
    reuse them); specs without rows in ``table`` only fill ``deffs``.

    The rows are sorted once by patient and once by score (stable); each grouping's
    (level, patient) and (level, score) pairs then come from a counting sort of the level
    numbers (:func:`rwe.stats._clustered.pair_index`), shared by all its metrics: the same
    pairs, in the same order, as sorting the keys per metric, so the same numbers."""
    from rwe.stats import (
        auc_interval,
        cluster_ratio_variance,
        obuchowski_auc,
        wilson_effective,
    )
    from rwe.stats._clustered import PairSorter

    deffs = {} if deffs is None else deffs
    cl = summary.clusters
    t = summary.score_table(version)
    cells = _row_cells(summary, version, threshold)
    ebin, lab = cells["_bin"], cells["_label"]
    key = {(gr, lev, m): i for i, (gr, lev, m) in
           enumerate(zip(table["group"], table["level"], table["metric"], strict=True))}
    low = table["ci_low"].to_numpy(copy=True)
    high = table["ci_high"].to_numpy(copy=True)
    meth = table["ci_method"].to_numpy(copy=True).astype(object)
    reason = table["reason"].to_numpy(copy=True).astype(object)
    ncl = table["n_clusters"].to_numpy(dtype=object, na_value=None).copy()
    deff = table["design_effect"].to_numpy(copy=True)
    est = table["estimate"].to_numpy(dtype=float)
    by_patient = PairSorter(cl.patient)
    by_score = None
    conf = {}
    for spec in specs:
        if spec.confusion is not None:
            conf[spec.name] = tuple(np.logical_or.reduce([cells[c] for c in part])
                                    for part in spec.confusion)
    for g in groupings:
        rl = g.cell_to_level[cl.cell]
        L = len(g.levels)
        rl1 = rl + 1  # bin 0: rows of no level (counts are integers: exact in any order)
        pairs = by_patient.pairs(rl)
        for spec in specs:
            why = np.full(L, None, dtype=object)
            if spec.confusion is not None:
                num, den = conf[spec.name]
                _, _, K, d = cluster_ratio_variance(num, den, cl.patient, rl, L, pairs=pairs)
                deffs[(g.name, spec.name)] = d
                x = np.bincount(rl1, weights=num, minlength=L + 1)[1:]
                n = np.bincount(rl1, weights=den, minlength=L + 1)[1:]
                ci = wilson_effective(x, n, d, confidence_level=ctx.confidence_level,
                                      method=ctx.proportion_interval)
                lo_, hi_ = np.atleast_1d(ci.low), np.atleast_1d(ci.high)
                name = f"{ctx.proportion_interval}-cluster"
            elif spec.name == "auroc":
                if by_score is None:
                    by_score = PairSorter(ebin)
                _, var, K, tp, tn, kp, kn = obuchowski_auc(
                    lab, ebin, cl.patient, rl, L, cluster_pairs=pairs,
                    rank_pairs=by_score.pairs(rl))
                lo_, hi_, why = auc_interval(kernels[(g.name, "auroc")].estimate, tp, tn,
                                             df_pos=kp - 1, df_neg=kn - 1,
                                             confidence_level=ctx.confidence_level,
                                             method=ctx.auroc_interval)
                with np.errstate(invalid="ignore", divide="ignore"):
                    d = var / np.asarray(kernels[(g.name, "auroc")].extras["variance"])
                name = "obuchowski-" + ctx.auroc_interval + ("" if t.full else "-binned")
            else:
                continue
            for j, lev in enumerate(g.levels):
                i = key.get((g.name, lev, spec.name))
                if i is None or not np.isfinite(est[i]):
                    continue
                low[i], high[i], meth[i] = lo_[j], hi_[j], name
                ncl[i], deff[i] = int(K[j]), d[j]
                if why[j] is not None and reason[i] is None:
                    reason[i] = why[j]
        del pairs, rl1
    out = table.assign(ci_low=low, ci_high=high, ci_method=meth, reason=reason,
                       design_effect=deff)
    out["n_clusters"] = pd.array(ncl, dtype="Int64")
    return out


# ----------------------------------------------------------------------------- bootstrap CIs
def _apply_bootstrap_ci(table, replicates, groupings, specs, level, clusters, interval,
                        level_counts, threshold_bin):
    from rwe.stats import bootstrap_interval

    a = (1 - level) / 2
    prefix = "cluster-bootstrap" if clusters else "bootstrap"
    low = table["ci_low"].to_numpy(copy=True)
    high = table["ci_high"].to_numpy(copy=True)
    meth = table["ci_method"].to_numpy(copy=True).astype(object)
    key = {(gr, lev, m): i for i, (gr, lev, m) in
           enumerate(zip(table["group"], table["level"], table["metric"], strict=True))}
    est = table["estimate"].to_numpy(dtype=float)
    for g in groupings:
        obs = level_counts[g.name]
        for s in specs:
            r = replicates[s.name][g.name]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                q = np.nanquantile(r, [a, 1 - a], axis=0)
            for j, lev in enumerate(g.levels):
                i = key.get((g.name, lev, s.name))
                if i is None or not np.isfinite(est[i]):
                    continue
                lo_, hi_, used = q[0, j], q[1, j], "percentile"
                jk = binned_jackknife(obs[j], threshold_bin, s) if interval == "bca" else None
                if jk is not None:
                    seg_est = _binned_estimate(obs[j], threshold_bin, s)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", RWEWarning)
                        ci = bootstrap_interval(r[:, j], seg_est, confidence_level=level,
                                                method="bca", jackknife=jk[0],
                                                jackknife_weights=jk[1])
                    lo_, hi_, used = ci.low, ci.high, "bca"
                if np.isfinite(lo_) and np.isfinite(hi_):
                    low[i], high[i], meth[i] = lo_, hi_, f"{prefix}-{used}"
    return table.assign(ci_low=low, ci_high=high, ci_method=meth)


def _binned_estimate(counts: np.ndarray, threshold_bin: int, spec) -> float:
    """The metric on one level's binned counts (2, bins): the estimate BCa corrects."""
    from rwe.subgroups._bootstrap import _dense_segments

    seg = _dense_segments(counts[None, None], above=np.arange(counts.shape[-1]) >= threshold_bin)
    return float(spec.kernel(seg, KernelContext(estimate_only=True)).estimate[0])


# ----------------------------------------------------------------------------- heterogeneity
def _usable(table: pd.DataFrame) -> np.ndarray:
    """Rows with status ok and a finite estimate (levels that enter tests and gaps)."""
    return (table["status"].to_numpy() == STATUS_OK) & np.isfinite(
        table["estimate"].to_numpy(dtype=float))


def _heterogeneity(table, kernels, segs, groupings, specs, multiplicity):
    from scipy import stats as sps

    rows = []
    ok = _usable(table)
    usable: dict[tuple[str, str], list[int]] = {}
    lev_index = {g.name: {lev: j for j, lev in enumerate(g.levels)} for g in groupings}
    for gname, m, lev in zip(table["group"].to_numpy()[ok], table["metric"].to_numpy()[ok],
                             table["level"].to_numpy()[ok], strict=True):
        usable.setdefault((gname, m), []).append(lev_index[gname][lev])
    for spec in specs:
        m = spec.name
        for g in groupings[1:]:
            idx = usable.get((g.name, m), [])
            base = {"group": g.name, "metric": m, "levels": len(idx)}
            nan = {"statistic": math.nan, "df": math.nan, "pvalue": math.nan, "i2": math.nan}
            if spec.heterogeneity is None:
                rows.append({**base, **nan, "test": None,
                             "method": "no heterogeneity test defined for this metric"})
                continue
            if len(idx) < 2:
                rows.append({**base, **nan, "test": None,
                             "method": "not tested: fewer than 2 sufficient levels"})
                continue
            lv = kernels[(g.name, m)]
            if spec.heterogeneity == "chi2":
                x = np.asarray(lv.extras["count"], dtype=float)[idx]
                d = np.asarray(lv.extras["nobs"], dtype=float)[idx]
                tab = np.stack([x, d - x])
                if (tab.sum(1) == 0).any():
                    rows.append({**base, **nan, "test": "chi2",
                                 "method": "not tested: metric constant (0 or 1) in every level"})
                    continue
                res = sps.chi2_contingency(tab, correction=False)
                rows.append({**base, "test": "chi2", "statistic": float(res.statistic),
                             "df": float(res.dof), "pvalue": float(res.pvalue), "i2": math.nan,
                             "method": "Pearson chi-square test of homogeneity (2 x k)"})
            elif spec.heterogeneity == "delong":
                a = np.asarray(lv.estimate, dtype=float)[idx]
                v = np.asarray(lv.extras["variance"], dtype=float)[idx]
                if not (np.isfinite(v).all() and (v > 0).all()):
                    rows.append({**base, **nan, "test": None,
                                 "method": "not tested: a level has zero DeLong variance "
                                           "(perfect separation)"})
                    continue
                if len(idx) == 2:
                    zz = (a[0] - a[1]) / math.sqrt(v[0] + v[1])
                    rows.append({**base, "test": "delong_unpaired", "statistic": float(zz),
                                 "df": math.nan, "pvalue": float(2 * sps.norm.sf(abs(zz))),
                                 "i2": math.nan, "method": "unpaired DeLong z test"})
                else:
                    w = 1 / v
                    abar = np.sum(w * a) / np.sum(w)
                    q = float(np.sum(w * (a - abar) ** 2))
                    df = len(idx) - 1
                    i2 = max(0.0, (q - df) / q) if q > 0 else 0.0
                    rows.append({**base, "test": "cochran_q", "statistic": q, "df": float(df),
                                 "pvalue": float(sps.chi2.sf(q, df)), "i2": i2,
                                 "method": "Cochran Q on DeLong variances (I^2 reported)"})
            else:  # lr_interaction
                rows.append({**base, **_calibration_lr(segs[g.name], idx)})
    het = pd.DataFrame(rows, columns=[c for c in HET_COLUMNS
                                      if c not in ("pvalue_adjusted", "multiplicity")])
    adj = np.full(len(het), np.nan)
    for m in het["metric"].unique() if len(het) else []:
        sel = np.flatnonzero((het["metric"] == m).to_numpy())
        adj[sel] = _adjust(het["pvalue"].to_numpy(dtype=float)[sel], multiplicity)
    het["pvalue_adjusted"] = adj
    het["multiplicity"] = multiplicity
    return het[HET_COLUMNS]


def _calibration_lr(seg, idx):
    """Likelihood-ratio test of a slope per level against one common slope
    (:func:`rwe.stats.fit_logistic`, models ``"slope"`` and ``"common_slope"``) over the
    levels ``idx``. The slope model is the calibration-slope kernel's fit on the same rows
    (``seg.fits``) unless that fit left out predictions of exactly 0 or 1."""
    from scipy import stats as sps

    from rwe.stats import fit_logistic

    keep = np.zeros(seg.n_segments, dtype=bool)
    keep[idx] = True
    rows = np.repeat(keep, seg.lengths)
    lens = seg.lengths[keep]
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    x, pos, tot = seg.lp[rows], seg.pos[rows], (seg.pos + seg.neg)[rows]
    kernel_fit, left_out = seg.fits.get("slope", (None, True))
    if not left_out:  # the calibration-slope kernel's fit on these rows: each level is its
        # own fit, so its levels idx are the fit on the rows of idx, to the last bit
        f1_llf, f1_conv = kernel_fit.llf[keep], kernel_fit.converged[keep]
    else:
        f1 = fit_logistic(x, pos, tot, starts, model="slope")
        f1_llf, f1_conv = f1.llf, f1.converged
    f0 = fit_logistic(x, pos, tot, starts, model="common_slope")
    if not (f1_conv.all() and f0.converged.all()):
        return {"test": "lr_interaction", "statistic": math.nan, "df": math.nan,
                "pvalue": math.nan, "i2": math.nan,
                "method": "not tested: logistic fit did not converge (separation?)"}
    stat = max(0.0, 2 * float(np.sum(f1_llf) - np.sum(f0.llf)))
    df = len(idx) - 1
    return {"test": "lr_interaction", "statistic": stat, "df": float(df),
            "pvalue": float(sps.chi2.sf(stat, df)), "i2": math.nan,
            "method": "likelihood-ratio test of logit(p) x level interaction (logistic GLM)"}


# ----------------------------------------------------------------------------- fairness
def _fairness(table, kernels, groupings, level, proportion_interval, summary, version,
              threshold, clustered, deffs=None):
    """Fairness gaps max - min across the usable levels with a simultaneous interval.

    For ``k`` levels, every ordered pair (i, j) gets an interval for ``theta_i - theta_j`` at
    level ``1 - alpha / C(k, 2)`` (Bonferroni): Newcombe's hybrid score interval for two
    independent proportions [1]_ from the levels' Wilson bounds (with the clustered
    effective sample size when patients repeat), the Wald interval from the two standard
    errors for calibration slopes. The gap interval is ``[max(0, max L_ij), max U_ij]``: when
    all pairwise intervals cover (probability >= 1 - alpha), every ``L_ij <= theta_i - theta_j
    <= G`` and ``U_ab >= G`` for the true extreme pair, so it covers the true gap ``G``; and
    it contains the estimated gap, since each pairwise interval contains its estimate. It is
    conservative (Bonferroni), exact in the counts (no resampling, no binning).

    References
    ----------
    .. [1] Newcombe RG. Interval estimation for the difference between independent
       proportions: comparison of eleven methods. Stat Med 1998;17(8):873-890 (method 10).
    """
    from scipy.special import ndtri

    from rwe.stats import cluster_ratio_variance, wilson_effective

    rows = []
    ok = _usable(table)
    cells = None
    for m in FAIRNESS_METRICS:
        for g in groupings[1:]:
            sel = (table["group"] == g.name).to_numpy() & (table["metric"] == m).to_numpy()
            if not sel.any():
                continue
            use = table[sel & ok]
            base = {"group": g.name, "n_attributes": g.n_attributes, "metric": m,
                    "definition": _FAIR_DEF[m], "ci_level": level,
                    "levels_compared": len(use)}
            if len(use) < 2:
                rows.append({**base, "gap": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                             "ci_method": None, "level_max": None, "level_min": None,
                             "reason": "fewer than 2 sufficient levels"})
                continue
            idx = np.array([g.levels.index(lev) for lev in use["level"]])
            est = use["estimate"].to_numpy(dtype=float)
            k = len(idx)
            alpha = (1 - level) / (k * (k - 1) / 2)
            lv = kernels[(g.name, m)]
            if m == "calibration_slope":
                se = np.asarray(lv.extras["se"], dtype=float)[idx]
                half = ndtri(1 - alpha / 2) * np.sqrt(se[:, None] ** 2 + se[None, :] ** 2)
                d = est[:, None] - est[None, :]
                low, high = d - half, d + half
                method = "simultaneous-wald"
            else:
                x = np.asarray(lv.extras["count"], dtype=float)[idx]
                n = np.asarray(lv.extras["nobs"], dtype=float)[idx]
                deff = np.ones(k)
                method = f"simultaneous-newcombe-{proportion_interval}"
                if clustered and (g.name, m) in (deffs or {}):  # from _cluster_adjust
                    deff = deffs[(g.name, m)][idx]
                    method += "-cluster"
                elif clustered:
                    from rwe.metrics import get_metric

                    if cells is None:
                        cells = _row_cells(summary, version, threshold)
                    spec = get_metric(m)
                    num = np.logical_or.reduce([cells[c] for c in spec.confusion[0]])
                    den = np.logical_or.reduce([cells[c] for c in spec.confusion[1]])
                    deff = cluster_ratio_variance(num, den, summary.clusters.patient,
                                                  g.cell_to_level[summary.clusters.cell],
                                                  len(g.levels))[3][idx]
                    method += "-cluster"
                ci = wilson_effective(x, n, deff, confidence_level=1 - alpha,
                                      method=proportion_interval)
                lo_, hi_ = np.atleast_1d(ci.low), np.atleast_1d(ci.high)
                d = est[:, None] - est[None, :]
                low = d - np.sqrt((est - lo_)[:, None] ** 2 + (hi_ - est)[None, :] ** 2)
                high = d + np.sqrt((hi_ - est)[:, None] ** 2 + (est - lo_)[None, :] ** 2)
            off = ~np.eye(k, dtype=bool)
            gap = float(est.max() - est.min())
            rows.append({**base, "gap": gap, "ci_low": max(0.0, float(low[off].max())),
                         "ci_high": float(high[off].max()), "ci_method": method,
                         "level_max": use["level"].iloc[int(est.argmax())],
                         "level_min": use["level"].iloc[int(est.argmin())],
                         "reason": None})
    return pd.DataFrame(rows, columns=FAIR_COLUMNS)


def _row_cells(summary: Summary, version: str, threshold: float) -> dict[str, np.ndarray]:
    """Confusion cell of every row, from the summary's transient patient index."""
    cl = summary.clusters
    t = summary.score_table(version)
    ebin = t.bin[cl.row_entry[version]]
    lab = cl.label.astype(bool)
    above = (t.values[ebin] >= threshold) if t.full else (ebin >= t.threshold_bin(threshold))
    return {"tp": lab & above, "fn": lab & ~above, "fp": ~lab & above, "tn": ~lab & ~above,
            "_bin": ebin, "_label": lab}


# ----------------------------------------------------------------------------- goals
def _goal_get(goal: Any, key: str, default: Any = None) -> Any:
    if isinstance(goal, Mapping):
        return goal.get(key, default)
    return getattr(goal, key, default)


_WHERE = {"overall": "overall", "subgroups": "in every subgroup",
          "all": "overall and in every subgroup"}


def _unreachable(spec, n_den: np.ndarray, goal: float, level: float, method: str) -> np.ndarray:
    """Proportion cells where even a perfect result (x = n, or 0 for lower-is-better) would
    not have its bound beyond the goal."""
    from rwe.stats import proportion_ci

    d = np.asarray(n_den, dtype=float)
    out = np.zeros(d.size, dtype=bool)
    ok = d > 0
    if not ok.any():
        return out
    if spec.higher_is_better:
        ci = proportion_ci(d[ok], d[ok], confidence_level=level, method=method)
        out[ok] = np.atleast_1d(ci.low) <= goal
    else:
        ci = proportion_ci(np.zeros(ok.sum()), d[ok], confidence_level=level, method=method)
        out[ok] = np.atleast_1d(ci.high) >= goal
    return out


def _goals(table: pd.DataFrame, goals: list[Any], version: str, level: float,
           proportion_interval: str) -> tuple[pd.DataFrame, list[Verdict]]:
    """Judge each goal on the confidence bound (EVIDENCE.md SUB-3); one typed Verdict each."""
    from rwe.metrics import get_metric
    from rwe.stats import judge_goal

    frames, verdicts = [], []
    computed = sorted(table["metric"].unique())
    for gi, goal in enumerate(goals):
        m = _goal_get(goal, "metric")
        target = float(_goal_get(goal, "goal"))
        scope = _goal_get(goal, "scope", "overall") or "overall"
        check_choice(scope, "scope", SCOPES)
        gversion = _goal_get(goal, "version")
        source = _goal_get(goal, "_source", f"goals[{gi}]")
        spec = get_metric(m)
        if m not in computed:
            raise InvalidParameterError(
                f"goal metric {m!r} is not among the computed metrics: {computed}")
        hib = spec.higher_is_better
        side = "lower" if hib is not False else "upper"
        op = ">" if hib is not False else "<"
        content = {"metric": m, "goal": target, "scope": scope, "version": gversion}
        vid = verdict_id("subgroups", "goal", content, label=m)
        criterion = f"{m}: {side} {level:.0%} confidence bound {op} {target:g}, {_WHERE[scope]}"
        desc = _goal_get(goal, "description")
        t = table[table["metric"] == m]
        if scope == "overall":
            t = t[t["group"] == "overall"]
        elif scope == "subgroups":
            t = t[t["group"] != "overall"]
        if hib is None:
            verdicts.append(Verdict(vid, "subgroups", "goal", criterion, STATUS_NOT_EVALUATED,
                                    goal=target, reason="the metric has no direction (a target "
                                    "value): a goal needs a direction", source=source,
                                    description=desc))
            continue
        if gversion is not None and str(gversion) != str(version):
            verdicts.append(Verdict(vid, "subgroups", "goal", criterion, STATUS_NOT_EVALUATED,
                                    goal=target, source=source, description=desc,
                                    reason=f"the goal is for model version {gversion!r}; this "
                                    f"analysis evaluated version {version!r}"))
            continue
        side_col = "ci_low" if hib else "ci_high"
        no_bound = ~np.isfinite(t[side_col].to_numpy(dtype=float)) & t["reason"].notna().to_numpy()
        ne = np.where((t["status"].to_numpy() == STATUS_OK) & ~no_bound, None,
                      t["reason"].to_numpy())
        ne = np.array([None if r is None else (r or "not sufficient") for r in ne], dtype=object)
        unreach = None
        if spec.confusion is not None:
            lv_n = _denominators(t, spec)
            unreach = _unreachable(spec, lv_n, target, level, proportion_interval)
        status, bound, reason, side = judge_goal(
            t["estimate"].to_numpy(dtype=float), t["ci_low"].to_numpy(dtype=float),
            t["ci_high"].to_numpy(dtype=float), target, higher_is_better=bool(hib),
            not_evaluable=ne, unreachable=unreach)
        f = pd.DataFrame({"goal_id": vid, "version": version, "metric": m, "scope": scope,
                          "group": t["group"].to_numpy(), "level": t["level"].to_numpy(),
                          "n": t["n"].to_numpy(), "events": t["events"].to_numpy(),
                          "goal": target, "estimate": t["estimate"].to_numpy(dtype=float),
                          "bound": bound, "bound_side": side, "status": status,
                          "reason": reason})
        frames.append(f)
        statuses = list(status)
        counts = {s: int(sum(1 for x in statuses if x == s))
                  for s in (STATUS_PASS, STATUS_FAIL, STATUS_NOT_EVALUABLE)}
        overall = combine_statuses(statuses)
        judged = f[f["status"] != STATUS_NOT_EVALUABLE]
        worst = None
        if len(judged):
            b = judged["bound"].to_numpy(dtype=float)
            worst = judged.iloc[int(np.argmin(b) if hib else np.argmax(b))]
        why = None
        if overall == STATUS_FAIL:
            why = f"not met in {counts[STATUS_FAIL]} of {len(f)} cells"
        elif overall == STATUS_NOT_EVALUABLE:
            why = (f"{counts[STATUS_NOT_EVALUABLE]} of {len(f)} cells not evaluable"
                   if len(f) else "no cell to judge")
        cells = tuple({"group": r.group, "level": r.level, "status": r.status,
                       "estimate": r.estimate, "bound": r.bound, "n": int(r.n),
                       "events": int(r.events), "reason": r.reason}
                      for r in f.itertuples(index=False))
        verdicts.append(Verdict(
            vid, "subgroups", "goal", criterion, overall,
            estimate=None if worst is None else float(worst["estimate"]),
            interval=None if worst is None else _cell_interval(t, worst, level),
            goal=target, reason=why, source=source, counts=counts, cells=cells,
            description=desc))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=GOAL_COLUMNS)
    return frame[GOAL_COLUMNS], verdicts


def _denominators(t: pd.DataFrame, spec) -> np.ndarray:
    """The proportion's denominator per row of the subgroup table (n or events or calls)."""
    den = set(spec.confusion[1])
    if den <= {"tp", "fn"}:
        return t["events"].to_numpy(dtype=float)
    if den <= {"fp", "tn"}:
        return (t["n"] - t["events"]).to_numpy(dtype=float)
    if den == {"tp", "fn", "fp", "tn"}:
        return t["n"].to_numpy(dtype=float)
    return np.full(len(t), np.inf)  # predictive values: calls unknown here, never unreachable


def _cell_interval(t: pd.DataFrame, row, level: float) -> Interval | None:
    r = t[(t["group"] == row["group"]) & (t["level"] == row["level"])].iloc[0]
    if not (np.isfinite(r["ci_low"]) and np.isfinite(r["ci_high"])):
        return None
    return Interval(float(r["ci_low"]), float(r["ci_high"]), level, str(r["ci_method"]))


# ----------------------------------------------------------------------------- curves
def _roc_points(seg, j: int) -> tuple[np.ndarray, np.ndarray] | None:
    """ROC points of level ``j``: (fpr, tpr) after each row in descending score order, from
    (0, 0); more than ROC_POINTS + 2 points are thinned to those at ROC_POINTS + 1 evenly
    spaced numbers of calls (plus both ends). The level's rows are walked in chunks from the
    top score down, so no full-length cumulative array is made (counts are integers: chunked
    cumulative sums are exact)."""
    a, b = int(seg.starts[j]), int(seg.starts[j] + seg.lengths[j])
    P, N = float(seg.n_pos[j]), float(seg.n_neg[j])
    if not (P > 0 and N > 0):
        return None
    m = b - a
    if m + 1 <= ROC_POINTS + 2:
        neg, pos = (v[::-1] for v in seg.counts(a, b))
        return (np.concatenate([[0.0], np.cumsum(neg) / N]),
                np.concatenate([[0.0], np.cumsum(pos) / P]))
    targets = np.linspace(0, P + N, ROC_POINTS + 1)
    picks = [np.zeros(1, np.int64)]
    tp_at, fp_at = [np.zeros(1)], [np.zeros(1)]
    done = 1 if targets[0] <= 0 else 0  # calls[0] = 0 answers every target <= 0
    top = b
    c_pos = c_neg = 0.0
    while top > a:
        lo = max(a, top - (1 << 16))
        neg, pos = (v[::-1] for v in seg.counts(lo, top))
        cpos = np.cumsum(pos) + c_pos
        cneg = np.cumsum(neg) + c_neg
        ctot = cpos + cneg  # sums of integers: exact, as a cumsum of pos + neg would be
        off = b - top  # calls[off + 1 + i] = ctot[i]
        end = int(np.searchsorted(targets, ctot[-1], side="right"))
        if end > done:
            i = np.searchsorted(ctot, targets[done:end], side="left")
            picks.append(off + 1 + i)
            tp_at.append(cpos[i])
            fp_at.append(cneg[i])
            done = end
        if lo == a:
            picks.append(np.array([m]))
            tp_at.append(cpos[-1:])
            fp_at.append(cneg[-1:])
        c_pos, c_neg = float(cpos[-1]), float(cneg[-1])
        top = lo
    pick = np.concatenate(picks)
    _, first = np.unique(pick, return_index=True)
    return np.concatenate(fp_at)[first] / N, np.concatenate(tp_at)[first] / P


def _curves_of(seg, g, level: float) -> tuple[list[pd.DataFrame], list[pd.DataFrame]]:
    """ROC points and calibration curves (CALIBRATION_BINS uniform bins of the prediction,
    Wilson intervals) of every level of one grouping: what the plots draw, so a result keeps
    no rows. Calibration sums are taken over all levels at once, chunk by chunk."""
    from rwe.stats import proportion_ci

    roc_parts, cal_parts = [], []
    nb = CALIBRATION_BINS
    S = seg.n_segments
    sums = np.zeros((S * nb, 3))
    for a, b, s0, ids in seg.rows():
        neg, pos = seg.counts(a, b)
        p = seg.p_rows(a, b)
        eb = np.clip((p * nb).astype(int), 0, nb - 1)
        code = eb + nb * (s0 if ids is None else s0 + ids)
        tot = neg + pos
        for c, w in enumerate((tot, pos, p * tot)):
            sums[:, c] += np.bincount(code, weights=w, minlength=S * nb)
    sums = sums.reshape(S, nb, 3)
    for j, lev in enumerate(g.levels):
        pts = _roc_points(seg, j)
        if pts is not None:
            roc_parts.append(pd.DataFrame({"group": g.name, "level": lev, "fpr": pts[0],
                                           "tpr": pts[1]}))
        n_b, e_b, p_b = sums[j, :, 0], sums[j, :, 1], sums[j, :, 2]
        ok = n_b > 0
        if not ok.any():
            continue
        ci = proportion_ci(e_b[ok], n_b[ok], confidence_level=level)
        cal_parts.append(pd.DataFrame({
            "group": g.name, "level": lev, "bin": np.flatnonzero(ok),
            "n": n_b[ok].astype(np.int64), "events": e_b[ok].astype(np.int64),
            "mean_predicted": p_b[ok] / n_b[ok], "observed": e_b[ok] / n_b[ok],
            "ci_low": np.atleast_1d(ci.low), "ci_high": np.atleast_1d(ci.high)}))
    return roc_parts, cal_parts


def _curve_frames(roc_parts, cal_parts) -> tuple[pd.DataFrame, pd.DataFrame]:
    roc = pd.concat(roc_parts, ignore_index=True) if roc_parts else pd.DataFrame(
        columns=ROC_COLUMNS)
    cal = pd.concat(cal_parts, ignore_index=True) if cal_parts else pd.DataFrame(
        columns=CALIBRATION_COLUMNS)
    return roc[ROC_COLUMNS], cal[CALIBRATION_COLUMNS]


# ----------------------------------------------------------------------------- findings
def _findings(table, verdicts, het, fair, s) -> list[Finding]:
    out: list[Finding] = []
    ov = table[table["group"] == "overall"]
    if len(ov):
        parts = []
        vals = {}
        for r in ov.itertuples(index=False):
            if np.isfinite(r.estimate):
                vals[r.metric] = {"estimate": r.estimate, "ci_low": r.ci_low,
                                  "ci_high": r.ci_high}
                lo = "n/a" if not np.isfinite(r.ci_low) else f"{r.ci_low:.3f}"
                hi = "n/a" if not np.isfinite(r.ci_high) else f"{r.ci_high:.3f}"
                parts.append(f"{r.metric} {r.estimate:.3f} ({lo} to {hi})")
        out.append(Finding("subgroups.overall", {"group": "overall"},
                           {"estimates": ", ".join(parts), "metrics": vals,
                            "version": s["version"], "threshold": s["threshold"],
                            "level": s["confidence_level"]},
                           {"n": int(ov["n"].iloc[0]), "events": int(ov["events"].iloc[0])}))
    for v in verdicts:
        cells = sum(v.counts.values())
        if v.status == STATUS_FAIL:
            worst = ""
            failed = [c for c in v.cells if c["status"] == STATUS_FAIL]
            if failed:
                c0 = failed[0]
                where = "overall" if c0["group"] == "overall" else f"{c0['group']} = {c0['level']}"
                worst = f", e.g. {where} ({v.criterion.split(':')[0]} bound {c0['bound']:.3f})"
            out.append(Finding("subgroups.goal_not_met", {"verdict": v.id},
                               {"criterion": v.criterion, "worst": worst, "cells": cells,
                                "fail": v.counts.get(STATUS_FAIL, 0)},
                               {"n": [c["n"] for c in failed],
                                "events": [c["events"] for c in failed]}, "critical"))
        elif v.status == STATUS_PASS:
            out.append(Finding("subgroups.goal_met", {"verdict": v.id},
                               {"criterion": v.criterion, "cells": cells}))
        elif v.status == STATUS_NOT_EVALUABLE:
            out.append(Finding("subgroups.goal_not_evaluable", {"verdict": v.id},
                               {"criterion": v.criterion, "cells": cells,
                                "not_evaluable": v.counts.get(STATUS_NOT_EVALUABLE, 0),
                                "why": "too few rows or events, or no interval"},
                               {}, "warning"))
    alpha = s["heterogeneity_alpha"]
    if len(het):
        sig = het[(het["pvalue_adjusted"] < alpha) & ~het["group"].str.contains(" x ",
                                                                             regex=False)]
        for metric, d in sig.groupby("metric", sort=False):
            out.append(Finding("subgroups.heterogeneity", {"metric": metric},
                               {"groups": ", ".join(d["group"]), "alpha": alpha,
                                "multiplicity": s["multiplicity"],
                                "pvalues": d["pvalue_adjusted"].tolist()}, {}, "warning"))
    if len(fair):
        single = fair[(fair["n_attributes"] == 1) &
                      np.isfinite(fair["gap"].to_numpy(dtype=float))]
        if len(single):
            w = single.loc[single["gap"].astype(float).idxmax()]
            out.append(Finding("subgroups.largest_gap", {"group": w["group"],
                                                         "metric": w["metric"]},
                               {"definition": w["definition"], "gap": float(w["gap"]),
                                "ci_low": float(w["ci_low"]), "ci_high": float(w["ci_high"]),
                                "level": float(w["ci_level"]), "level_max": w["level_max"],
                                "level_min": w["level_min"]}))
    if s.get("cluster_intervals"):
        d = table["design_effect"].to_numpy(dtype=float)
        adjusted = sorted(set(table.loc[np.isfinite(d), "metric"]))
        others = [m for m in s["metrics"] if m not in adjusted]
        out.append(Finding("subgroups.cluster_adjusted", {},
                           {"adjusted": ", ".join(adjusted), "others": ", ".join(others) or
                            "none", "max_deff": float(np.nanmax(d)) if np.isfinite(d).any()
                            else 1.0},
                           {"patients": s.get("n_patients")}, "info"))
    elif s.get("repeats_patients"):
        out.append(Finding("subgroups.not_cluster_adjusted", {},
                           {"metrics": ", ".join(s["metrics"])}, {}, "warning"))
    flagged = table[(table["status"] != STATUS_OK) & (table["group"] != "overall")]
    if len(flagged):
        cells = flagged[["group", "level"]].drop_duplicates()
        out.append(Finding("subgroups.small_cells", {},
                           {"cells": len(cells), "min_n": s["min_n"],
                            "min_events": s["min_events"]}, {}, "warning"))
    return out


# ----------------------------------------------------------------------------- protocol
def subgroup_performance_from_protocol(protocol, data=None, **overrides
                                       ) -> SubgroupPerformanceResult:
    """Run :func:`subgroup_performance` as written in a protocol.

    Reads ``performance`` (version, metrics, threshold, confidence_level, proportion_interval,
    ci_method, n_boot, seed, multiplicity, heterogeneity_alpha, goals) and ``subgroups``
    (attributes, intersections, min_n, min_events).

    Parameters
    ----------
    protocol : rwe.protocol.Protocol or path
    data : EvaluationSet, DaskEvaluationSet or Summary, optional
        Default: the protocol's data (:meth:`rwe.protocol.Protocol.open_data`: in memory, or
        with ``data.engine: dask`` in partitions on the cluster of ``data.dask``, started for
        this call and closed after it).
    **overrides
        Keyword arguments of :func:`subgroup_performance` that replace the protocol's.
    """
    if not hasattr(protocol, "performance"):
        from rwe.protocol import load_protocol

        protocol = load_protocol(protocol)
    if data is not None:  # any protocol-like object (the plan's fields) will do
        return _from_protocol(protocol, data, overrides)
    with protocol.open_data() as data:
        return _from_protocol(protocol, data, overrides)


def _from_protocol(protocol, data, overrides) -> SubgroupPerformanceResult:
    perf = protocol.performance
    if _is_dask_set(data) and "metrics" not in overrides:
        from rwe.metrics import get_metric

        for i, m in enumerate(perf.metrics):  # the metric named at its line in the protocol
            sp = get_metric(m)
            if sp.kernel is None:
                raise InvalidParameterError(
                    f"{protocol.locate(('performance', 'metrics', i))}: "
                    + MSG_ROWS_METRIC.format(name=sp.name, kind=sp.kind)
                    + f"; {data.rows_note}")
    sub = protocol.subgroups
    by: list[Any] = list(sub.attributes) + [tuple(x) for x in sub.intersections]
    goals = []
    for i, g in enumerate(perf.goals):
        d = g.model_dump() if hasattr(g, "model_dump") else {
            k: _goal_get(g, k) for k in ("metric", "goal", "scope", "version", "description")}
        d["_source"] = f"performance.goals[{i}]"
        goals.append(d)
    kwargs = dict(
        metrics=tuple(perf.metrics), by=by, threshold=perf.threshold,
        confidence_level=perf.confidence_level, version=perf.version,
        proportion_interval=perf.proportion_interval, min_n=sub.min_n,
        min_events=sub.min_events,
        ci_method=None if getattr(perf, "ci_method", "analytic") == "analytic" else "bootstrap",
        n_boot=perf.n_boot, random_state=perf.seed, multiplicity=perf.multiplicity,
        heterogeneity_alpha=getattr(perf, "heterogeneity_alpha", 0.05), goals=goals or None,
        horizon=getattr(perf, "horizon", None),
    )
    kwargs.update(overrides)
    main_version = kwargs.get("version") or (data.versions[0] if isinstance(data, Summary)
                                             else data.primary_version)
    mine = [g for g in goals if g.get("version") in (None, main_version)]
    others: dict[str, list] = {}
    for g in goals:
        if g.get("version") not in (None, main_version):
            others.setdefault(str(g["version"]), []).append(g)
    if "goals" not in overrides:
        kwargs["goals"] = mine or None
    result = subgroup_performance(data, **kwargs)
    if not others or "goals" in overrides:
        return result
    # goals tagged with another model version are judged on that version's scores
    extra_goals, extra_verdicts, extra_findings = [result.goals], list(result.verdicts), []
    for v, gs in others.items():
        metrics = tuple(dict.fromkeys(g["metric"] for g in gs))
        r = subgroup_performance(data, **{**kwargs, "version": v, "metrics": metrics,
                                          "goals": gs, "fairness": False,
                                          "heterogeneity": False})
        extra_goals.append(r.goals)
        extra_verdicts += r.verdicts
        extra_findings += [f for f in r.findings if f.code.startswith("subgroups.goal")]
    order = {vid: i for i, vid in enumerate(
        verdict_id("subgroups", "goal", {"metric": g["metric"], "goal": float(g["goal"]),
                                         "scope": g.get("scope") or "overall",
                                         "version": g.get("version")}, label=g["metric"])
        for g in goals)}
    extra_verdicts.sort(key=lambda v: order.get(v.id, len(order)))
    return replace(result, goals=pd.concat(extra_goals, ignore_index=True),
                   verdicts=tuple(extra_verdicts),
                   findings=result.findings + tuple(extra_findings))
