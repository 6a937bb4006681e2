"""rwe: real-world evidence for AI-enabled medical devices.

>>> import rwe
>>> protocol = rwe.load_protocol("protocols/demo.yaml")          # doctest: +SKIP
>>> evset = protocol.load_data()                                 # doctest: +SKIP
>>> rwe.assess_representativeness(evset, reference="us_census_2020_clinical",
...                               attributes=["sex", "race"])    # doctest: +SKIP
>>> rwe.subgroup_performance(evset, metrics=["sensitivity", "auroc"],
...                          by=["sex", ("sex", "race")], threshold=0.15)   # doctest: +SKIP
>>> rwe.compare_from_protocol(protocol, evset, candidate="1.1",
...                           ledger="ledger.jsonl").verdict                # doctest: +SKIP
'REJECT'

The top-level names are imported lazily, so ``import rwe`` stays fast and pulls in neither
matplotlib nor statsmodels until an analysis needs them.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    # data
    "EvaluationSet": "rwe.data", "ColumnRoles": "rwe.data", "load_evaluation_set": "rwe.data",
    "read_table": "rwe.data",
    # protocol
    "load_protocol": "rwe.protocol", "Protocol": "rwe.protocol",
    # analyses
    "assess_representativeness": "rwe.representativeness",
    "representativeness_from_protocol": "rwe.representativeness",
    "load_reference": "rwe.representativeness",
    "subgroup_performance": "rwe.subgroups",
    "summarize": "rwe.stats.summaries", "Summary": "rwe.stats.summaries",
    "merge_summaries": "rwe.stats.summaries",
    "subgroup_performance_from_protocol": "rwe.subgroups",
    "compare_models": "rwe.change_control", "compare_from_protocol": "rwe.change_control",
    "assess_drift": "rwe.drift", "drift_from_protocol": "rwe.drift",
    "compute_metric": "rwe.metrics", "compute_metrics": "rwe.metrics",
    "metric_names": "rwe.metrics",
    # data sets
    "make_demo": "rwe.datasets", "write_demo": "rwe.datasets", "load_public": "rwe.datasets",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rwe' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
