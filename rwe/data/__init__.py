"""Evaluation data: the table of predictions and outcomes, its column roles, loaders and
load-time validation (DESIGN.md, ``rwe/data``). Computes no statistics."""

from rwe.data._derive import age_band_labels, derive_age_bands
from rwe.data._evaluation_set import (
    INTERSECTION_SEP,
    EvaluationSet,
    load_evaluation_set,
    read_table,
)
from rwe.data._roles import ColumnRoles

__all__ = [
    "ColumnRoles",
    "EvaluationSet",
    "INTERSECTION_SEP",
    "age_band_labels",
    "derive_age_bands",
    "load_evaluation_set",
    "read_table",
]
