"""EvaluationSet: an evaluation table plus the roles of its columns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rwe.data._derive import calendar_window, derive_age_bands
from rwe.data._roles import ColumnRoles
from rwe.data._sources import FORMATS, Source, source_from_path
from rwe.data._validate import (
    MSG_EMPTY,
    missing_column_messages,
    stray_text,
    stray_text_message,
    validate_frame,
)
from rwe.exceptions import DataValidationError, InvalidParameterError

__all__ = ["EvaluationSet", "load_evaluation_set", "read_table", "apply_derived",
           "INTERSECTION_SEP", "FORMATS"]

INTERSECTION_SEP = " & "
MSG_DERIVED_SPEC = ("derived attribute {name!r}: give {{'from': column, 'cuts': [...]}} (bands) "
                    "or {{'from': timestamp column, 'window': 'week' | 'month' | 'quarter'}}, "
                    "got {got}")


def _as_roles(roles: ColumnRoles | Mapping[str, Any]) -> ColumnRoles:
    if isinstance(roles, ColumnRoles):
        return roles
    if isinstance(roles, Mapping):
        return ColumnRoles(**roles)
    raise InvalidParameterError(
        f"roles must be a ColumnRoles or a dict of roles, got {type(roles).__name__}")


def _derived_specs(derived: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Derived attribute specs as plain dicts ``{"from", "cuts"}`` or ``{"from", "window"}``
    (protocol spec objects are accepted too)."""
    out: dict[str, dict[str, Any]] = {}
    for name, spec in (derived or {}).items():
        if hasattr(spec, "model_dump"):
            spec = spec.model_dump(by_alias=True)
        if not isinstance(spec, Mapping):
            raise InvalidParameterError(MSG_DERIVED_SPEC.format(name=name,
                                                                got=type(spec).__name__))
        keys = set(spec)
        if keys not in ({"from", "cuts"}, {"from", "window"}):
            raise InvalidParameterError(MSG_DERIVED_SPEC.format(
                name=name, got="keys " + ", ".join(map(repr, sorted(map(str, keys))))))
        out[str(name)] = ({"from": spec["from"], "cuts": list(spec["cuts"])} if "cuts" in spec
                          else {"from": spec["from"], "window": spec["window"]})
    return out


class EvaluationSet:
    """A validated evaluation table (predictions, outcomes, subgroups) with column roles.

    Build one with :meth:`from_frame` or :func:`load_evaluation_set`; analyses in rwe take an
    EvaluationSet and never modify it.

    Attributes
    ----------
    frame : pandas.DataFrame
        The validated table (a private copy; treat as read-only).
    roles : ColumnRoles
        Which column plays which part (derived attributes included).
    source : str
        File name (or ``"<DataFrame>"``) the table came from, used in messages.
    data_source : Source or None
        The :class:`rwe.data.Source` the table was read from (None for a DataFrame).
    derived : dict
        The derived attributes added at load time (name -> spec).
    """

    __slots__ = ("_frame", "roles", "source", "_clusters", "_data_source", "_derived",
                 "_windows")

    def __init__(self, frame: pd.DataFrame, roles: ColumnRoles, source: str, *,
                 data_source: Source | None = None,
                 derived: Mapping[str, dict[str, Any]] | None = None):
        # Internal: use from_frame / load_evaluation_set, which validate.
        self._frame = frame
        self.roles = roles
        self.source = source
        self._clusters: np.ndarray | None = None
        self._data_source = data_source
        self._derived = dict(derived or {})
        self._windows: dict[str, pd.Series] = {}

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_frame(cls, df: pd.DataFrame, roles: ColumnRoles | Mapping[str, Any], *,
                   source: str = "<DataFrame>",
                   derived: Mapping[str, Mapping[str, Any]] | None = None) -> EvaluationSet:
        """Validate ``df`` against ``roles`` and wrap it.

        Parameters
        ----------
        df : pandas.DataFrame
            One row per case (scan, encounter, image...).
        roles : ColumnRoles or dict
            Column roles; a dict is passed to :class:`ColumnRoles`.
        source : str
            Name used in error messages.
        derived : dict, optional
            Derived attributes: age bands ``{"age_band": {"from": "age", "cuts": [18, 50,
            65]}}`` and calendar windows of the timestamp role ``{"month": {"from": "ts",
            "window": "month"}}`` (see :func:`rwe.data.calendar_window`). Derived columns
            become subgroup attributes.

        Raises
        ------
        DataValidationError
            Listing every rule the table breaks.
        InvalidParameterError
            For an unknown role or a malformed derived spec.

        Notes
        -----
        Given a ``dask.dataframe``, returns a :class:`rwe.data.DaskEvaluationSet`: its rows
        stay in their partitions, are validated by these rules partition by partition and
        summarized per partition (:meth:`rwe.data.DaskEvaluationSet.summarize`).
        """
        from rwe.data._dask import is_dask_frame

        if is_dask_frame(df):
            from rwe.data._dask import DaskEvaluationSet

            return DaskEvaluationSet.from_frame(
                df, roles, source="<dask DataFrame>" if source == "<DataFrame>" else source,
                derived=derived)
        return cls._build(df, roles, source=source, derived=derived)

    @classmethod
    def _build(cls, df: pd.DataFrame, roles: ColumnRoles | Mapping[str, Any], *, source: str,
               derived: Mapping[str, Any] | None,
               data_source: Source | None = None) -> EvaluationSet:
        if not isinstance(df, pd.DataFrame):
            raise InvalidParameterError(f"df must be a pandas DataFrame, got {type(df).__name__}")
        roles = _as_roles(roles)
        specs = _derived_specs(derived)
        windows = {k: v for k, v in specs.items() if "window" in v}
        for name, spec in windows.items():
            if roles.timestamp is None or spec["from"] != roles.timestamp:
                raise InvalidParameterError(
                    f"derived window {name!r} must come from the timestamp column"
                    + (f" ({roles.timestamp!r})" if roles.timestamp else
                       ", but no timestamp role is set") + f", got from={spec['from']!r}")
        roles = roles.with_attributes(tuple(specs))
        if len(df) == 0:  # before derived attributes, whose checks would blame a column
            raise DataValidationError([MSG_EMPTY.format(src=source)], source=source)
        df = apply_derived(df, {k: v for k, v in specs.items() if k not in windows},
                           source=source)
        check = roles if not windows else roles.model_copy(update={"attributes": tuple(
            a for a in roles.attributes if a not in windows)})
        frame = validate_frame(df, check, source=source)
        for name, spec in windows.items():  # from the parsed, validated timestamps
            frame[name] = calendar_window(frame[spec["from"]], spec["window"]).rename(name)
        return cls(frame, roles, source, data_source=data_source, derived=specs)

    # ---------------------------------------------------------------- accessors
    @property
    def frame(self) -> pd.DataFrame:
        return self._frame

    @property
    def data_source(self) -> Source | None:
        return self._data_source

    @property
    def source_fingerprint(self) -> dict[str, Any] | None:
        """:meth:`Source.fingerprint` of the source the table was read from (file, size,
        sha256, query, rows and columns read), or None for a DataFrame."""
        return None if self._data_source is None else self._data_source.fingerprint()

    @property
    def derived(self) -> dict[str, dict[str, Any]]:
        """Derived attributes added at load time: name -> ``{"from", "cuts"}`` or
        ``{"from", "window"}``."""
        return {k: dict(v) for k, v in self._derived.items()}

    def __len__(self) -> int:
        return len(self._frame)

    @property
    def n(self) -> int:
        return len(self._frame)

    @property
    def versions(self) -> list[str]:
        return list(self.roles.scores)

    @property
    def primary_version(self) -> str:
        if not self.roles.scores:
            raise InvalidParameterError(f"{self.source}: no score column is defined")
        return next(iter(self.roles.scores))

    def _need(self, role: str) -> str:
        col = getattr(self.roles, role)
        if col is None:
            raise InvalidParameterError(
                f"{self.source}: this analysis needs the {role!r} column role, which is not set")
        return col

    @property
    def y_true(self) -> np.ndarray:
        """Binary outcome as a boolean array."""
        return self._frame[self._need("label")].to_numpy(dtype=bool)

    def score(self, version: str | None = None) -> np.ndarray:
        """Scores of a model version (default: the primary version) as float64."""
        version = self.primary_version if version is None else str(version)
        try:
            col = self.roles.scores[version]
        except KeyError:
            raise InvalidParameterError(
                f"version={version!r} is unknown; versions in {self.source}: "
                f"{', '.join(map(repr, self.versions))}") from None
        return self._frame[col].to_numpy(dtype=np.float64)

    @property
    def time(self) -> np.ndarray:
        return self._frame[self._need("time")].to_numpy(dtype=np.float64)

    @property
    def event(self) -> np.ndarray:
        return self._frame[self._need("event")].to_numpy(dtype=bool)

    @property
    def timestamps(self) -> pd.Series:
        return self._frame[self._need("timestamp")]

    def window(self, freq: str) -> pd.Series:
        """Calendar window of each row's timestamp: :func:`rwe.data.calendar_window` of the
        timestamp role (ordered categorical named ``freq``: ``"2024-W05"``, ``"2024-01"``,
        ``"2024-Q1"``; every window from the first to the last, empty ones included).

        Parameters
        ----------
        freq : {"week", "month", "quarter"}
        """
        if freq not in self._windows:
            self._windows[freq] = calendar_window(self.timestamps, freq)
        return self._windows[freq]

    @property
    def clusters(self) -> np.ndarray | None:
        """Integer patient codes (0..k-1) per row, or None when no patient id role is set."""
        if self.roles.patient_id is None:
            return None
        if self._clusters is None:
            codes, _ = pd.factorize(self._frame[self.roles.patient_id], sort=True)
            self._clusters = codes.astype(np.int64)
        return self._clusters

    @property
    def has_repeated_patients(self) -> bool:
        c = self.clusters
        if c is None or not c.size:
            return False
        # factorize codes: 0..k-1 all present (-1 for a missing id), so k + [any -1] distinct
        return int(c.max()) + 1 + int(bool((c < 0).any())) < c.size

    def attribute(self, name: str) -> pd.Series:
        """A grouping column (attribute, site or equipment) as a categorical Series."""
        if name not in self._frame.columns:
            raise InvalidParameterError(
                f"attribute {name!r} is not a column of {self.source}; grouping columns: "
                f"{', '.join(map(repr, self.roles.grouping_columns()))}")
        s = self._frame[name]
        if not isinstance(s.dtype, pd.CategoricalDtype):
            s = s.astype("string").astype("category")
        return s

    def subgroup_labels(self, by: str | Sequence[str]) -> pd.Series:
        """Subgroup label per row: ``"F"`` for one attribute, ``"F & Black"`` for an intersection.

        Rows with a missing value in any component get NaN (they belong to no subgroup cell).
        """
        if isinstance(by, str):
            return self.attribute(by).astype("string").rename(by)
        parts = [self.attribute(b).astype("string") for b in by]
        out = parts[0]
        for p in parts[1:]:
            out = out + INTERSECTION_SEP + p  # NA propagates
        return out.rename(" x ".join(by))

    def subgroup_codes(self, by: str | Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """Subgroup code per row (``-1``: missing) and the labels of the codes, in order of
        first appearance: ``pd.factorize`` of :meth:`subgroup_labels`. A single attribute is
        factorized from its categorical codes, without building a string per row."""
        if isinstance(by, str):
            codes, uniques = pd.factorize(self.attribute(by), sort=False)
        else:
            codes, uniques = pd.factorize(self.subgroup_labels(by), sort=False)
        return np.asarray(codes), [str(u) for u in uniques]

    def subset(self, mask: np.ndarray | pd.Series) -> EvaluationSet:
        """Rows where ``mask`` is true, as a new EvaluationSet (already validated)."""
        m = np.asarray(mask, dtype=bool)
        if m.shape != (len(self),):
            raise InvalidParameterError(
                f"mask must be a boolean array of length {len(self)}, got shape {m.shape}")
        return EvaluationSet(self._frame.loc[m].reset_index(drop=True), self.roles, self.source,
                             data_source=self._data_source, derived=self._derived)

    def describe(self) -> pd.DataFrame:
        """A short cohort summary: one row per fact (n, events, patients, sites, period...)."""
        rows: list[tuple[str, Any]] = [("rows", len(self))]
        if self.roles.patient_id is not None:
            rows.append(("patients", int(self._frame[self.roles.patient_id].nunique())))
        if self.roles.label is not None:
            y = self.y_true
            rows.append(("events (label = 1)", int(y.sum())))
            rows.append(("prevalence", round(float(y.mean()), 4)))
        if self.roles.event is not None:
            rows.append(("events", int(self.event.sum())))
        for role in ("site", "equipment"):
            col = getattr(self.roles, role)
            if col is not None:
                rows.append((f"{role} levels", int(self._frame[col].nunique())))
        if self.roles.timestamp is not None:
            ts = self._frame[self.roles.timestamp]
            rows.append(("first prediction", str(ts.min())))
            rows.append(("last prediction", str(ts.max())))
        rows.append(("model versions", ", ".join(self.versions)))
        for col in self.roles.attributes:
            miss = float(self._frame[col].isna().mean())
            rows.append((f"{col}: levels (missing)",
                         f"{self._frame[col].nunique()} ({miss:.1%} missing)"))
        return pd.DataFrame(rows, columns=["fact", "value"]).astype({"value": "string"})

    def __repr__(self) -> str:
        return (f"EvaluationSet(source={self.source!r}, n={len(self)}, "
                f"versions={self.versions}, attributes={list(self.roles.attributes)})")

    def _repr_html_(self) -> str:
        return self.describe().to_html(index=False)




def apply_derived(df: pd.DataFrame, derived: Mapping[str, Mapping[str, Any]] | None, *,
                  source: str = "<DataFrame>", optional: Sequence[str] = ()) -> pd.DataFrame:
    """Add derived attributes to a copy of ``df``: age bands and calendar windows.

    Parameters
    ----------
    df : pandas.DataFrame
    derived : dict
        Name -> ``{"from": column, "cuts": [...]}`` (:func:`rwe.data.derive_age_bands`) or
        ``{"from": column, "window": "week" | "month" | "quarter"}``
        (:func:`rwe.data.calendar_window`).
    source : str
        Name used in messages.
    optional : sequence of str
        Derived attributes skipped, rather than an error, when their source column is absent
        (e.g. calendar windows of comparison rows that carry no timestamps).

    Returns
    -------
    pandas.DataFrame
        ``df`` itself when nothing is derived, else a copy with the new columns.

    Raises
    ------
    DataValidationError
        When a source column is missing or not numeric (bands) / not a timestamp (windows).
    """
    specs = _derived_specs(derived)
    todo = {k: v for k, v in specs.items() if not (k in optional and v["from"] not in df.columns)}
    if not todo:
        return df
    out = df.copy()
    for name, spec in todo.items():
        src_col = spec["from"]
        if src_col not in out.columns:
            raise DataValidationError(
                [f"{source}: column {src_col!r} (source of derived attribute {name!r}) is missing"],
                source=source)
        s = out[src_col]
        if "window" in spec:
            out[name] = calendar_window(s.rename(src_col), spec["window"]).rename(name)
            continue
        if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            bad = stray_text(s)
            role = f"source of derived attribute {name!r}"
            raise DataValidationError(
                [stray_text_message(source, src_col, role, s, bad) if bad is not None else
                 f"{source}: column {src_col!r} ({role}) must be numeric, got dtype {s.dtype}"],
                source=source)
        out[name] = derive_age_bands(s, spec["cuts"]).rename(name)
    return out


def read_table(path: str | Path | Source, *, format: str | None = None,
               columns: list[str] | None = None, query: str | None = None) -> pd.DataFrame:
    """Read a CSV, Parquet or DuckDB source into a DataFrame.

    A thin wrapper of :func:`rwe.data.source_from_path` and :meth:`Source.read`.

    Parameters
    ----------
    path : path-like or Source
        File to read. For DuckDB, a database file (``.duckdb``/``.db``) or ``:memory:``.
    format : {"csv", "parquet", "duckdb"}, optional
        Inferred from the suffix when omitted.
    columns : list of str, optional
        Columns to read, in that order (an absent one is an error naming it).
    query : str, optional
        SQL for DuckDB; may also be used with a CSV/Parquet file, referenced as ``data``.
    """
    src = path if isinstance(path, Source) else source_from_path(path, format=format,
                                                                 query=query)
    return src.read(columns)


def load_evaluation_set(path: str | Path | Source, roles: ColumnRoles | Mapping[str, Any], *,
                        format: str | None = None, query: str | None = None,
                        derived: Mapping[str, Mapping[str, Any]] | None = None) -> EvaluationSet:
    """Read a source (CSV / Parquet / DuckDB file, or any :class:`rwe.data.Source`) and validate
    it into an :class:`EvaluationSet`.

    Only the columns the roles (and derived attributes) need are read. The EvaluationSet keeps
    the source, so ``evset.source_fingerprint`` records what was read.

    Examples
    --------
    >>> ev = load_evaluation_set("scans.parquet", {"scores": {"1.0": "score"}, "label": "y"})
    ... # doctest: +SKIP
    """
    roles = _as_roles(roles)
    specs = _derived_specs(derived)
    src = path if isinstance(path, Source) else source_from_path(path, format=format,
                                                                 query=query)
    roles = roles.with_attributes(tuple(specs))
    cols = [c for c in roles.required_columns() if c not in specs]
    cols += [s["from"] for s in specs.values() if s["from"] not in cols]
    avail = src.columns()
    missing = [c for c in cols if c not in avail]
    if missing:
        raise DataValidationError(
            missing_column_messages(
                src.name, roles, missing, avail, wanted=cols, echo=False,
                labels={s["from"]: f"source of derived attribute {k!r}" for k, s in specs.items()}),
            source=src.name)
    df = src.read_for_roles(cols, roles)
    return EvaluationSet._build(df, roles, source=src.name, derived=specs, data_source=src)
