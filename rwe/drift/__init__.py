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

Names are imported on first use: checking a protocol's drift tests loads only the registry
(numpy), not pandas.
"""

from __future__ import annotations

from rwe._lazy import lazy_exports

_LAZY = {
    "ESTIMABLE_METRICS": "_cbpe", "estimate_performance": "_cbpe",
    "CHART_METHODS": "_charts", "ChartPath": "_charts", "cusum_arl": "_charts",
    "cusum_limit": "_charts", "cusum_path": "_charts", "ewma_arl": "_charts",
    "ewma_limit": "_charts", "ewma_path": "_charts", "ra_cusum_arl": "_charts",
    "ra_cusum_limit": "_charts", "ra_cusum_path": "_charts", "ra_cusum_weights": "_charts",
    "risk_atoms": "_charts", "simulate_run_lengths": "_charts",
    "ClassifierTest": "_classifier", "classifier_test": "_classifier",
    "CLASSIFIER": "_drift", "DECISIONS": "_drift", "DEFAULT_METRICS": "_drift",
    "DEFAULT_TESTS": "_drift", "DriftError": "_drift", "assess_drift": "_drift",
    "drift_from_protocol": "_drift", "summarize_reference": "_drift",
    "EXIT_ALARM": "_monitor", "MonitorError": "_monitor", "MonitorRun": "_monitor",
    "load_state": "_monitor", "monitor": "_monitor", "read_alarm_log": "_monitor",
    "drift_page_html": "_page",
    "DriftContext": "_registry", "DriftTestSpec": "_registry", "DriftValues": "_registry",
    "FeatureHist": "_registry", "drift_test_names": "_registry", "get_drift_test": "_registry",
    "reference_edges": "_registry", "register_drift_test": "_registry",
    "DriftResult": "_result",
}

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


__getattr__, __dir__ = lazy_exports("rwe.drift", _LAZY)
