"""EvaluationSet: an evaluation table plus the roles of its columns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rwe._optional import import_optional
from rwe._validation import check_roles_mapping
from rwe.data._derive import derive_age_bands
from rwe.data._roles import ColumnRoles
from rwe.data._validate import validate_frame
from rwe.exceptions import DataValidationError, InvalidParameterError

__all__ = ["EvaluationSet", "load_evaluation_set", "read_table", "INTERSECTION_SEP"]

INTERSECTION_SEP = " & "
FORMATS = ("csv", "parquet", "duckdb")


class EvaluationSet:
    """A validated evaluation table (predictions, outcomes, subgroups) with column roles.

    Build one with :meth:`from_frame` or :func:`load_evaluation_set`; analyses in rwe take an
    EvaluationSet and never modify it.

    Attributes
    ----------
    frame : pandas.DataFrame
        The validated table (a private copy; treat as read-only).
    roles : ColumnRoles
        Which column plays which part.
    source : str
        File name (or ``"<DataFrame>"``) the table came from, used in messages.
    """

    __slots__ = ("_frame", "roles", "source", "_clusters")

    def __init__(self, frame: pd.DataFrame, roles: ColumnRoles, source: str):
        # Internal: use from_frame / load_evaluation_set, which validate.
        self._frame = frame
        self.roles = roles
        self.source = source
        self._clusters: np.ndarray | None = None

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
            Derived attributes, e.g. ``{"age_band": {"from": "age", "cuts": [18, 50, 65]}}``.
            Derived columns are added before validation and become subgroup attributes.

        Raises
        ------
        DataValidationError
            Listing every rule the table breaks.
        """
        if not isinstance(df, pd.DataFrame):
            raise InvalidParameterError(f"df must be a pandas DataFrame, got {type(df).__name__}")
        if not isinstance(roles, ColumnRoles):
            roles = ColumnRoles(**check_roles_mapping(roles, ColumnRoles.__dataclass_fields__))
        df = apply_derived(df, derived, source=source)
        frame = validate_frame(df, roles, source=source)
        return cls(frame, roles, source)

    # ---------------------------------------------------------------- accessors
    @property
    def frame(self) -> pd.DataFrame:
        return self._frame

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
        return c is not None and len(np.unique(c)) < len(c)

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
        return EvaluationSet(self._frame.loc[m].reset_index(drop=True), self.roles, self.source)

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
                  source: str) -> pd.DataFrame:
    """Add derived columns (currently: age bands) to a copy of ``df``."""
    if not derived:
        return df
    out = df.copy()
    for name, spec in derived.items():
        src_col = spec.get("from")
        if src_col not in out.columns:
            raise DataValidationError(
                [f"{source}: column {src_col!r} (source of derived attribute {name!r}) is missing"],
                source=source)
        if not pd.api.types.is_numeric_dtype(out[src_col]):
            raise DataValidationError(
                [f"{source}: column {src_col!r} (source of derived attribute {name!r}) must be "
                 f"numeric, got dtype {out[src_col].dtype}"], source=source)
        out[name] = derive_age_bands(out[src_col], spec["cuts"])
    return out


def read_table(path: str | Path, *, format: str | None = None, columns: list[str] | None = None,
               query: str | None = None) -> pd.DataFrame:
    """Read a CSV, Parquet or DuckDB source into a DataFrame.

    Parameters
    ----------
    path : path-like
        File to read. For DuckDB, a database file (``.duckdb``/``.db``) or ``:memory:``.
    format : {"csv", "parquet", "duckdb"}, optional
        Inferred from the suffix when omitted.
    columns : list of str, optional
        Columns to read (parquet reads only these; others ignore it).
    query : str, optional
        SQL for DuckDB; may also be used with a CSV/Parquet file, referenced as ``data``.
    """
    p = Path(path)
    fmt = format or _infer_format(p)
    if fmt not in FORMATS:
        raise InvalidParameterError(f"format={fmt!r} is not valid; choose one of: {FORMATS}")
    if str(path) != ":memory:" and not p.exists():
        raise DataValidationError([f"{p}: data file not found"], source=str(p))
    try:
        if query is not None or fmt == "duckdb":
            return _read_duckdb(p, fmt, query)
        if fmt == "csv":
            return pd.read_csv(p)
        avail = _parquet_columns(p)
        cols = [c for c in columns if c in avail] if columns else None
        return pd.read_parquet(p, columns=cols)
    except (DataValidationError, InvalidParameterError):
        raise
    except ImportError:
        raise
    except Exception as exc:  # parser errors from pandas / pyarrow / duckdb
        raise DataValidationError([f"{p}: could not be read as {fmt}: {exc}"],
                                  source=str(p)) from None


def _infer_format(p: Path) -> str:
    suffix = "".join(p.suffixes[-2:]).lower() if p.suffix == ".gz" else p.suffix.lower()
    if suffix in (".csv", ".csv.gz", ".txt"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".duckdb", ".db"):
        return "duckdb"
    raise InvalidParameterError(
        f"cannot infer the format of {p.name!r} from its suffix; give format= one of {FORMATS}")


def _parquet_columns(p: Path) -> list[str]:
    import pyarrow.parquet as pq

    return list(pq.read_schema(p).names)


def _read_duckdb(p: Path, fmt: str, query: str | None) -> pd.DataFrame:
    duckdb = import_optional("duckdb", extra="duckdb")
    if fmt == "duckdb":
        if query is None:
            raise InvalidParameterError(f"{p}: a DuckDB source needs query= (SQL)")
        con = duckdb.connect(str(p), read_only=str(p) != ":memory:")
        try:
            return con.execute(query).df()
        finally:
            con.close()
    con = duckdb.connect()
    try:
        rel = con.read_csv(str(p)) if fmt == "csv" else con.read_parquet(str(p))
        rel.create_view("data")
        return con.execute(query).df()
    finally:
        con.close()


def load_evaluation_set(path: str | Path, roles: ColumnRoles | Mapping[str, Any], *,
                        format: str | None = None, query: str | None = None,
                        derived: Mapping[str, Mapping[str, Any]] | None = None) -> EvaluationSet:
    """Read a CSV / Parquet / DuckDB source and validate it into an :class:`EvaluationSet`.

    Examples
    --------
    >>> ev = load_evaluation_set("scans.parquet", {"scores": {"1.0": "score"}, "label": "y"})
    ... # doctest: +SKIP
    """
    if isinstance(roles, Mapping):
        roles = ColumnRoles(**roles)
    cols = roles.required_columns()
    if derived:
        cols = [c for c in cols if c not in derived]
        cols += [s["from"] for s in derived.values() if s["from"] not in cols]
    df = read_table(path, format=format, columns=cols, query=query)
    return EvaluationSet.from_frame(df, roles, source=Path(path).name, derived=derived)
