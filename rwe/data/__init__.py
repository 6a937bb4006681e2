"""Evaluation data: the table of predictions and outcomes, its column roles, loaders and
load-time validation (DESIGN.md, ``rwe/data``). Computes no statistics.

:class:`ColumnRoles` is imported eagerly (it needs only pydantic: the protocol schema uses it);
everything that needs pandas is imported on first use, so ``import rwe.protocol`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rwe.data._roles import ColumnRoles

if TYPE_CHECKING:
    from rwe.data._derive import age_band_labels, derive_age_bands
    from rwe.data._evaluation_set import (
        INTERSECTION_SEP,
        EvaluationSet,
        load_evaluation_set,
        read_table,
    )

_LAZY = {
    "EvaluationSet": "_evaluation_set", "INTERSECTION_SEP": "_evaluation_set",
    "load_evaluation_set": "_evaluation_set", "read_table": "_evaluation_set",
    "age_band_labels": "_derive", "derive_age_bands": "_derive",
}

__all__ = [
    "ColumnRoles",
    "EvaluationSet",
    "INTERSECTION_SEP",
    "age_band_labels",
    "derive_age_bands",
    "load_evaluation_set",
    "read_table",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rwe.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"rwe.data.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
