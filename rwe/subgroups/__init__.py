"""Subgroup performance: overall, per subgroup and intersectional tables with intervals,
heterogeneity tests, fairness gaps and acceptance against pre-specified goals.

Everything is computed from mergeable summaries (:mod:`rwe.stats.summaries`): an evaluation
set is summarized at full resolution (point estimates exact), a merged site or partition
summary is analysed as it is; every metric is its registry kernel over all levels at once;
bootstrap intervals resample the summary (Poisson or patient-cluster, DESIGN.md principles 3-4).
"""

from __future__ import annotations

from rwe._lazy import lazy_exports

#: Public name -> the private module that defines it (imported on first use: a dossier
#: kernel that reads a saved result does not load scipy.stats and statsmodels).
_LAZY = {
    "FAIRNESS_METRICS": "_performance", "subgroup_performance": "_performance",
    "subgroup_performance_from_protocol": "_performance",
    "ROW_STATUSES": "_result", "SubgroupPerformanceResult": "_result",
}

__all__ = [
    "FAIRNESS_METRICS",
    "ROW_STATUSES",
    "SubgroupPerformanceResult",
    "subgroup_performance",
    "subgroup_performance_from_protocol",
]

__getattr__, __dir__ = lazy_exports("rwe.subgroups", _LAZY)
