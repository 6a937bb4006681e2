"""Metric registry: array-level performance metrics with confidence intervals.

Every metric is a :class:`MetricSpec` in one registry (scikit-learn ``_SCORERS`` style) that
records its kind, the inputs it needs, its direction or target value and its default interval
method. :func:`compute_metric` returns a :class:`MetricValue` (estimate, interval, n, events
and, when the estimate is undefined, the reason). Third-party packages add metrics through
the ``rwe.metrics`` entry-point group.

Kinds
-----
threshold
    sensitivity, specificity, ppv, npv, accuracy, fpr, fnr, lr_positive, lr_negative,
    net_benefit (``y_score >= threshold`` is a positive call).
ranking
    auroc (DeLong), auprc (average precision, logit-Wald).
calibration
    brier, calibration_slope, calibration_intercept, oe_ratio, ece, spiegelhalter_z.
survival
    harrell_c, uno_c, time_dependent_auc, brier_ipcw (risk score: higher = worse).
"""

from __future__ import annotations

from rwe.metrics import _binary, _calibration  # noqa: F401 - registers the built-in metrics
from rwe.metrics._registry import (
    CI_METHODS,
    ENTRY_POINT_GROUP,
    KINDS,
    NEEDS,
    MetricData,
    MetricSpec,
    MetricValue,
    compute_metric,
    compute_metrics,
    get_metric,
    metric_names,
    register_metric,
)
from rwe.metrics._survival import concordance_pair_counts, kaplan_meier_by_group

__all__ = [
    # registry API
    "MetricSpec",
    "MetricValue",
    "MetricData",
    "register_metric",
    "get_metric",
    "metric_names",
    "compute_metric",
    "compute_metrics",
    # constants
    "KINDS",
    "NEEDS",
    "CI_METHODS",
    "ENTRY_POINT_GROUP",
    # survival helpers
    "kaplan_meier_by_group",
    "concordance_pair_counts",
]
