"""Evaluation data: the table of predictions and outcomes, its column roles, the sources it is
read from, load-time validation, derived attributes and provenance counts (DESIGN.md,
``rwe/data``). Computes no statistics.

:class:`ColumnRoles` is imported eagerly (it needs only pydantic: the protocol schema uses it);
everything that needs pandas is imported on first use, so ``import rwe.protocol`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rwe._lazy import lazy_exports
from rwe.data._roles import ColumnRoles

if TYPE_CHECKING:
    from rwe.data._dask import DaskEvaluationSet, dask_cluster, from_dask
    from rwe.data._derive import (
        WINDOW_FREQS,
        age_band_labels,
        calendar_window,
        derive_age_bands,
        window_range,
    )
    from rwe.data._evaluation_set import (
        INTERSECTION_SEP,
        EvaluationSet,
        apply_derived,
        load_evaluation_set,
        read_table,
    )
    from rwe.data._omop import OMOP_COLUMNS, OMOPSource
    from rwe.data._provenance import VALIDATION_RULES, ProvenanceResult, provenance
    from rwe.data._sources import (
        DEFAULT_BATCH_ROWS,
        FORMATS,
        CSVSource,
        DuckDBSource,
        FileSetSource,
        ParquetSource,
        Source,
        file_sha256,
        source_from_path,
        source_from_spec,
    )
    from rwe.data._sql import SQLSource, arrow_to_pandas, parse_database_url

_LAZY = {
    "EvaluationSet": "_evaluation_set", "INTERSECTION_SEP": "_evaluation_set",
    "apply_derived": "_evaluation_set", "load_evaluation_set": "_evaluation_set",
    "read_table": "_evaluation_set",
    "WINDOW_FREQS": "_derive", "age_band_labels": "_derive", "calendar_window": "_derive",
    "derive_age_bands": "_derive", "window_range": "_derive",
    "Source": "_sources", "CSVSource": "_sources", "ParquetSource": "_sources",
    "DuckDBSource": "_sources", "FileSetSource": "_sources", "FORMATS": "_sources", "DEFAULT_BATCH_ROWS": "_sources",
    "file_sha256": "_sources", "source_from_path": "_sources", "source_from_spec": "_sources",
    "DaskEvaluationSet": "_dask", "from_dask": "_dask", "dask_cluster": "_dask",
    "VALIDATION_RULES": "_provenance", "ProvenanceResult": "_provenance",
    "provenance": "_provenance",
    "SQLSource": "_sql", "arrow_to_pandas": "_sql", "parse_database_url": "_sql",
    "OMOPSource": "_omop", "OMOP_COLUMNS": "_omop",
}

__all__ = [
    "CSVSource",
    "ColumnRoles",
    "DEFAULT_BATCH_ROWS",
    "DaskEvaluationSet",
    "ProvenanceResult",
    "DuckDBSource",
    "EvaluationSet",
    "FORMATS",
    "FileSetSource",
    "INTERSECTION_SEP",
    "OMOPSource",
    "OMOP_COLUMNS",
    "ParquetSource",
    "SQLSource",
    "Source",
    "VALIDATION_RULES",
    "WINDOW_FREQS",
    "age_band_labels",
    "apply_derived",
    "arrow_to_pandas",
    "calendar_window",
    "dask_cluster",
    "derive_age_bands",
    "file_sha256",
    "from_dask",
    "load_evaluation_set",
    "parse_database_url",
    "provenance",
    "read_table",
    "source_from_path",
    "source_from_spec",
    "window_range",
]


__getattr__, __dir__ = lazy_exports("rwe.data", _LAZY)
