"""Subgroup performance: overall, per subgroup and intersectional tables with intervals,
heterogeneity tests, fairness gaps and acceptance against pre-specified goals.

Point estimates are exact (confusion counts, DeLong AUROC on rows); bootstrap intervals and
fairness-gap intervals use the mergeable score summaries of :mod:`rwe.stats.summaries` with
the summary-level Poisson bootstrap (DESIGN.md principles 3-4).
"""

from rwe.subgroups._performance import (
    FAIRNESS_METRICS,
    FAST_METRICS,
    subgroup_performance,
    subgroup_performance_from_protocol,
)
from rwe.subgroups._report import SubgroupReport

__all__ = [
    "FAIRNESS_METRICS",
    "FAST_METRICS",
    "SubgroupReport",
    "subgroup_performance",
    "subgroup_performance_from_protocol",
]
