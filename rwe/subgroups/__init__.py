"""Subgroup performance: overall, per subgroup and intersectional tables with intervals,
heterogeneity tests, fairness gaps and acceptance against pre-specified goals.

Everything is computed from mergeable summaries (:mod:`rwe.stats.summaries`): an evaluation
set is summarized at full resolution (point estimates exact), a merged site or partition
summary is analysed as it is; every metric is its registry kernel over all levels at once;
bootstrap intervals resample the summary (Poisson or patient-cluster, DESIGN.md principles 3-4).
"""

from rwe.subgroups._performance import (
    FAIRNESS_METRICS,
    subgroup_performance,
    subgroup_performance_from_protocol,
)
from rwe.subgroups._result import ROW_STATUSES, SubgroupPerformanceResult

__all__ = [
    "FAIRNESS_METRICS",
    "ROW_STATUSES",
    "SubgroupPerformanceResult",
    "subgroup_performance",
    "subgroup_performance_from_protocol",
]
