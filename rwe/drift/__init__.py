"""Drift and performance monitoring over calendar windows, sites and subgroups.

What moved, when, where, and whether it matters (EVIDENCE.md MON-1..MON-6, METHODS.md C6):

- input drift per feature, window and level: a registry of two-sample tests computed from the
  summary's histograms on bins fixed on the reference (PSI, Kolmogorov-Smirnov, normalised
  Wasserstein, chi-square, Jensen-Shannon), alerts on effect sizes, Benjamini-Hochberg across
  features x levels x windows where p-values are used; the classifier two-sample test;
- prediction, prevalence and case-mix drift and data integrity per window;
- performance and calibration per window x site x subgroup with intervals, and the dynamic
  recalibration curve;
- control charts (tabular CUSUM, EWMA, risk-adjusted Bernoulli CUSUM) with limits for a
  target in-control ARL (Brook-Evans Markov chains) and run lengths to alarm;
- label-free (estimated) performance for windows without outcomes;
- incremental monitoring with a versioned state and an append-only alarm log (``rwe monitor``).

The entry points are :func:`rwe.assess_drift` (not ``rwe.drift``: that name is this
subpackage) and :func:`drift_from_protocol`. See DESIGN.md in this directory.
"""

from rwe.drift._cbpe import ESTIMABLE_METRICS, estimate_performance
from rwe.drift._charts import (
    CHART_METHODS,
    ChartPath,
    cusum_arl,
    cusum_limit,
    cusum_path,
    ewma_arl,
    ewma_limit,
    ewma_path,
    ra_cusum_arl,
    ra_cusum_limit,
    ra_cusum_path,
    ra_cusum_weights,
    risk_atoms,
    simulate_run_lengths,
)
from rwe.drift._classifier import ClassifierTest, classifier_test
from rwe.drift._drift import (
    CLASSIFIER,
    DECISIONS,
    DEFAULT_METRICS,
    DEFAULT_TESTS,
    DriftError,
    assess_drift,
    drift_from_protocol,
    summarize_reference,
)
from rwe.drift._monitor import (
    EXIT_ALARM,
    MonitorError,
    MonitorRun,
    load_state,
    monitor,
    read_alarm_log,
)
from rwe.drift._page import drift_page_html
from rwe.drift._registry import (
    DriftContext,
    DriftTestSpec,
    DriftValues,
    FeatureHist,
    drift_test_names,
    get_drift_test,
    reference_edges,
    register_drift_test,
)
from rwe.drift._result import DriftResult

__all__ = [
    # analysis
    "assess_drift", "drift_from_protocol", "summarize_reference", "DriftResult", "DriftError",
    # incremental monitoring
    "monitor", "MonitorRun", "MonitorError", "load_state", "read_alarm_log", "EXIT_ALARM",
    "DEFAULT_TESTS", "DEFAULT_METRICS", "CLASSIFIER", "DECISIONS",
    # drift-test registry
    "DriftTestSpec", "DriftValues", "DriftContext", "FeatureHist", "register_drift_test",
    "get_drift_test", "drift_test_names", "reference_edges",
    # control charts
    "CHART_METHODS", "ChartPath", "cusum_path", "ewma_path", "ra_cusum_path",
    "ra_cusum_weights", "cusum_arl", "ewma_arl", "ra_cusum_arl", "cusum_limit", "ewma_limit",
    "ra_cusum_limit", "risk_atoms", "simulate_run_lengths",
    # the dossier page's content, from DriftResult.to_dict()
    "drift_page_html",
    # label-free estimation, classifier test
    "estimate_performance", "ESTIMABLE_METRICS", "classifier_test", "ClassifierTest",
]
