"""Data sources: where an evaluation table comes from, read whole or in batches, fingerprinted.

A :class:`Source` is a small object with a ``kind``, ``columns()`` (names, without reading
rows), ``read(columns)``, ``iter_batches(columns, batch_rows=...)`` and ``fingerprint()`` (what
was read, for provenance). Files today: :class:`CSVSource`, :class:`ParquetSource` and
:class:`DuckDBSource` (a DuckDB database with a query, or a CSV / Parquet file queried as the
view ``data``); :class:`FileSetSource` is the CSV or Parquet files a glob pattern matches
(``data/*.parquet``), one table made of its files in turn, each file read by its own source
(its :attr:`FileSetSource.parts`: what the dask engine reads, one task per file). SQL
databases (:class:`rwe.data.SQLSource`, rwe/data/_sql.py) and OMOP CDM instances
(:class:`rwe.data.OMOPSource`, rwe/data/_omop.py) are further subclasses of :class:`Source`
with the same methods; :meth:`rwe.data.DaskEvaluationSet.from_source` summarizes the files of
a source in partitions.

Every problem with a file is one line naming the path (not found, a directory, empty,
unreadable, not the format its suffix says, a failed query); no message quotes the file's
content.
"""

from __future__ import annotations

import abc
import glob
import hashlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rwe.exceptions import DataValidationError, InvalidParameterError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Source", "CSVSource", "ParquetSource", "DuckDBSource", "FileSetSource", "FORMATS",
           "DEFAULT_BATCH_ROWS", "file_sha256", "source_from_path", "source_from_spec"]

FORMATS = ("csv", "parquet", "duckdb")
#: Rows per batch of :meth:`Source.iter_batches` unless given.
DEFAULT_BATCH_ROWS = 1 << 20
_COMPRESSED = (".gz", ".bz2", ".xz", ".zip", ".zst")
_SNIFF_BYTES = 8192
_MAX_ERROR = 200

MSG_NOT_FOUND = "{path}: data file not found"
MSG_IS_DIR = "{path}: is a directory, expected a {what} file"
MSG_EMPTY_FILE = "{path}: the file is empty (0 bytes)"
MSG_UNREADABLE = "{path}: cannot be read ({reason})"
MSG_BINARY = "{path}: binary content, not a text CSV file"
MSG_NOT_UTF8 = "{path}: not UTF-8 text (found byte {byte}); save the CSV as UTF-8"
MSG_NOT_FORMAT = "{path}: could not be read as {what}: {reason}"
MSG_QUERY = "{name}: query failed: {reason}"
MSG_CHANGED = ("{path}: the file changed after it was read (size or modification time differ); "
               "load the data again")
MSG_COLUMNS = "{name}: column{s} {missing} not found; {found}"
MSG_NO_MATCH = "{pattern}: the pattern matches no file"
MSG_MIXED_FORMATS = ("{pattern}: the pattern matches files of different formats ({found}); "
                     "a table is read from files of one format")
MSG_GLOB_FORMAT = ("{pattern}: a pattern reads CSV or Parquet files, one table of them all; "
                   "{what}")
#: Characters that make a path a glob pattern (:func:`glob.glob`).
GLOB_CHARS = "*?["


def is_pattern(path: str | Path) -> bool:
    """Whether ``path`` is a glob pattern (holds ``*``, ``?`` or ``[``)."""
    return any(c in str(path) for c in GLOB_CHARS)


def _first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message, shortened: database and parser
    errors run over many lines (and may quote input further down)."""
    text = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
    return text if len(text) <= _MAX_ERROR else text[:_MAX_ERROR - 3] + "..."


def file_sha256(path: str | Path, *, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks (constant memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_bytes), b""):
            h.update(chunk)
    return h.hexdigest()


_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s'\"]+):[^@\s'\"]*@", re.I)


def _redact(text: str | None) -> str | None:
    """``scheme://user:password@host`` -> ``scheme://user:***@host`` (a query may ATTACH a
    database by URL; fingerprints never carry credentials)."""
    return None if text is None else _CREDENTIALS.sub(r"\g<scheme>:***@", text)


def _infer_format(p: Path) -> str:
    suffix = "".join(p.suffixes[-2:]).lower() if p.suffix.lower() in _COMPRESSED else (
        p.suffix.lower())
    if suffix in (".csv", ".txt") or suffix.startswith((".csv.", ".txt.")):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".duckdb", ".db"):
        return "duckdb"
    raise InvalidParameterError(
        f"cannot infer the format of {p.name!r} from its suffix; give format= one of {FORMATS}")


def _quote(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _shown(names: Sequence[str], limit: int = 30, width: int = 40) -> str:
    out = []
    for n in list(names)[:limit]:
        s = str(n)
        out.append(repr(s if len(s) <= width else s[:width - 3] + "..."))
    more = len(names) - limit
    return ", ".join(out) + (f" and {more} more" if more > 0 else "")


_SEPARATORS = {";": "semicolon", "\t": "tab", "|": "pipe"}


def separator_hint(missing: Sequence[str], available: Sequence[str]) -> str | None:
    """``"semicolon"`` / ``"tab"`` / ``"pipe"`` when the column names found, split on that
    character, contain a missing column: a CSV written with another separator."""
    want = {str(m) for m in missing}
    for sep, name in _SEPARATORS.items():
        tokens = {t.strip().strip('"') for a in available for t in str(a).split(sep)}
        if any(sep in str(a) for a in available) and tokens & want:
            return name
    return None


def looks_like_the_table(wanted: Sequence[str], available: Sequence[str]) -> bool:
    """True when at least one wanted column is among the names found (ignoring case): only then
    may a message list the names found. A file that shares no column with the roles may not be
    a table at all (its first line would be its header), and its content is not echoed."""
    have = {str(a).strip().lower() for a in available}
    return any(str(w).strip().lower() in have for w in wanted)


def columns_message(name: str, missing: Sequence[str], available: Sequence[str],
                    wanted: Sequence[str]) -> str | None:
    """One line for a table whose columns are not the expected ones, when the case is one of
    the two a per-column listing would get wrong: another separator (hint), or no expected column
    at all (the names found are not shown). None otherwise."""
    k = len(available)
    found = f"found {k} column{'s' if k != 1 else ''}"
    sep = separator_hint(missing, available)
    if sep is not None:
        return (f"{name}: expected columns {_shown(missing, 8)} are missing; {found} "
                f"{_shown(available, 3)}: the file looks {sep}-separated (rwe reads "
                "comma-separated CSV)")
    if not looks_like_the_table(wanted, available):
        return (f"{name}: none of the expected columns ({_shown(list(wanted), 8)}) is in the "
                f"table; {found}, names not shown: the file does not look like this table")
    return None


class Source(abc.ABC):
    """A table rwe can read: the base class of every data source.

    Subclasses set ``kind`` and implement :meth:`columns`, :meth:`read`, :meth:`iter_batches`
    and :meth:`fingerprint`. A source is cheap to build (nothing is read until asked), can be
    pickled, and remembers the row count and columns of its last complete read for its
    fingerprint.
    """

    kind: ClassVar[str] = "source"

    def __init__(self) -> None:
        self._rows: int | None = None
        self._read_columns: list[str] | None = None

    # ------------------------------------------------------------------ interface
    @property
    @abc.abstractmethod
    def name(self) -> str:
        """Short name used in messages (a file name)."""

    @abc.abstractmethod
    def columns(self) -> list[str]:
        """Column names of the table, without reading its rows."""

    @abc.abstractmethod
    def read(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The table (or only ``columns``, in that order) as a DataFrame.

        Raises
        ------
        DataValidationError
            One line: the file cannot be read, or a requested column is absent (naming it).
        """

    def read_for_roles(self, columns: Sequence[str] | None, roles: Any) -> pd.DataFrame:
        """:meth:`read` for an evaluation set with these column ``roles``
        (:class:`rwe.data.ColumnRoles`). A source may return the grouping columns (subgroup
        attributes, site, equipment) already as the categoricals
        :func:`rwe.data.validate_frame` would make of them, and the id columns as pandas'
        ``str`` dtype, without building a Python string per row. The default is :meth:`read`;
        the validated evaluation set is the same either way."""
        return self.read(columns)

    @abc.abstractmethod
    def iter_batches(self, columns: Sequence[str] | None = None, *,
                     batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pd.DataFrame]:
        """The table in consecutive DataFrames of about ``batch_rows`` rows each (bounded
        memory); concatenated they equal :meth:`read`, up to dtypes a text format infers per
        batch."""

    @abc.abstractmethod
    def fingerprint(self) -> dict[str, Any]:
        """What the source is, for provenance: ``kind``, ``format``, ``file``, ``path``,
        ``bytes``, ``sha256``, ``query``, and after a complete read ``rows`` and ``columns``
        (else None). Never credentials."""

    # ------------------------------------------------------------------ shared
    def describe(self) -> str:
        """One line: what is read from where."""
        return f"{self.kind} source {self.name}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()!r})"

    def _check_columns(self, columns: Sequence[str] | None) -> list[str] | None:
        if columns is None:
            return None
        cols = list(dict.fromkeys(columns))
        avail = self.columns()
        missing = [c for c in cols if c not in avail]
        if missing:
            line = columns_message(self.name, missing, avail, cols)
            if line is None:
                s = "s" if len(missing) > 1 else ""
                line = MSG_COLUMNS.format(name=self.name, s=s, missing=_shown(missing),
                                          found=f"columns found: {_shown(avail)}")
            raise DataValidationError([line], source=self.name)
        return cols

    def _record(self, rows: int, columns: Sequence[str]) -> None:
        self._rows = int(rows)
        self._read_columns = [str(c) for c in columns]

    def _batches_recorded(self, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        rows, cols = 0, None
        for b in batches:
            rows += len(b)
            cols = list(b.columns) if cols is None else cols
            yield b
        self._record(rows, cols or [])


def _check_batch_rows(batch_rows: int) -> int:
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise InvalidParameterError(
            f"batch_rows must be an integer not less than 1, but got {batch_rows!r}")
    return batch_rows


class _FileSource(Source):
    """A source backed by one file: path checks, hashing and change detection."""

    what: ClassVar[str] = "data"

    def __init__(self, path: str | Path):
        super().__init__()
        self.path = Path(path)
        self._sha: tuple[tuple[int, int], str] | None = None
        self._stat_at_read: tuple[int, int] | None = None
        self._columns: tuple[tuple[int, int], list[str]] | None = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def format(self) -> str:
        return self.kind

    def _stat(self) -> tuple[int, int]:
        """Check the path is a readable, non-empty file; return (size, mtime_ns)."""
        p = self.path
        try:
            st = p.stat()
        except FileNotFoundError:
            raise DataValidationError([MSG_NOT_FOUND.format(path=p)], source=str(p)) from None
        except OSError as exc:
            raise DataValidationError([MSG_UNREADABLE.format(path=p, reason=exc.strerror or exc)],
                                      source=str(p)) from None
        if p.is_dir():
            raise DataValidationError([MSG_IS_DIR.format(path=p, what=self.what)], source=str(p))
        if st.st_size == 0:
            raise DataValidationError([MSG_EMPTY_FILE.format(path=p)], source=str(p))
        if not os.access(p, os.R_OK):
            raise DataValidationError([MSG_UNREADABLE.format(path=p, reason="permission denied")],
                                      source=str(p))
        return st.st_size, st.st_mtime_ns

    def _opened(self) -> tuple[int, int]:
        st = self._stat()
        self._stat_at_read = st
        return st

    def _fail(self, exc: BaseException) -> DataValidationError:
        if isinstance(exc, OSError) and not isinstance(exc, UnicodeError):
            return DataValidationError(
                [MSG_UNREADABLE.format(path=self.path, reason=exc.strerror or _first_line(exc))],
                source=str(self.path))
        return DataValidationError(
            [MSG_NOT_FORMAT.format(path=self.path, what=self.kind, reason=_first_line(exc))],
            source=str(self.path))

    def sha256(self) -> str:
        """sha256 of the file's bytes (streamed; cached while the file is unchanged)."""
        st = self._stat()
        if self._sha is None or self._sha[0] != st:
            self._sha = (st, file_sha256(self.path))
        return self._sha[1]

    def _query(self) -> str | None:
        return None

    def fingerprint(self) -> dict[str, Any]:
        st = self._stat()
        if self._stat_at_read is not None and st != self._stat_at_read:
            raise DataValidationError([MSG_CHANGED.format(path=self.path)], source=str(self.path))
        return {"kind": self.kind, "format": self.format, "file": self.path.name,
                "path": str(self.path.resolve()), "bytes": st[0], "sha256": self.sha256(),
                "query": _redact(self._query()), "rows": self._rows,
                "columns": None if self._read_columns is None else list(self._read_columns)}

    def describe(self) -> str:
        try:
            size = _human_bytes(self.path.stat().st_size)
        except OSError:
            size = "missing"
        return f"{self.what} file {self.name} ({size})"


def _human_bytes(n: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


class CSVSource(_FileSource):
    """A comma-separated text file (optionally compressed: ``.csv.gz``), read with pandas.

    Parameters
    ----------
    path : path-like
        The file.
    sep : str, default ","
        Field separator.
    encoding : str, default "utf-8"
        Text encoding.

    Notes
    -----
    ``iter_batches`` reads with pandas' ``chunksize``: each batch infers its own dtypes.
    """

    kind = "csv"
    what = "CSV"

    def __init__(self, path: str | Path, *, sep: str = ",", encoding: str = "utf-8"):
        super().__init__(path)
        self.sep = sep
        self.encoding = encoding

    def _sniff(self) -> None:
        """Refuse binary content before pandas parses it into nonsense column names."""
        if self.path.suffix.lower() in _COMPRESSED:
            return
        try:
            with open(self.path, "rb") as fh:
                head = fh.read(_SNIFF_BYTES)
        except OSError as exc:
            raise self._fail(exc) from None
        if b"\x00" in head:
            raise DataValidationError([MSG_BINARY.format(path=self.path)], source=str(self.path))

    def _pandas(self, **kw: Any) -> Any:
        import pandas as pd

        try:
            return pd.read_csv(self.path, sep=self.sep, encoding=self.encoding, **kw)
        except UnicodeDecodeError as exc:
            raise DataValidationError(
                [MSG_NOT_UTF8.format(path=self.path, byte=f"0x{exc.object[exc.start]:02x}")],
                source=str(self.path)) from None
        except pd.errors.EmptyDataError:
            raise DataValidationError(
                [f"{self.path}: no columns: the file holds no header line"],
                source=str(self.path)) from None
        except (DataValidationError, InvalidParameterError):
            raise
        except Exception as exc:  # parser errors (pandas, its C tokenizer), OSError
            raise self._fail(exc) from None

    def columns(self) -> list[str]:
        st = self._stat()
        if self._columns is None or self._columns[0] != st:
            self._sniff()
            header = self._pandas(nrows=0)
            self._columns = (st, [str(c) for c in header.columns])
        return list(self._columns[1])

    def read(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        self._opened()
        self._sniff()
        cols = self._check_columns(columns)
        # low_memory=False: each column's type is inferred from all its rows at once (pandas
        # would otherwise infer per block and may mix numbers and text in one column)
        df = self._pandas(usecols=cols, low_memory=False)
        if cols is not None and list(df.columns) != cols:
            df = df[cols]
        self._record(len(df), df.columns)
        return df

    def iter_batches(self, columns: Sequence[str] | None = None, *,
                     batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pd.DataFrame]:
        _check_batch_rows(batch_rows)
        self._opened()
        self._sniff()
        cols = self._check_columns(columns)
        reader = self._pandas(usecols=cols, chunksize=batch_rows)

        def gen() -> Iterator[pd.DataFrame]:
            with reader:
                while True:
                    try:
                        chunk = next(reader)
                    except StopIteration:
                        return
                    except Exception as exc:
                        raise self._fail(exc) from None
                    yield chunk[cols] if cols is not None and list(chunk.columns) != cols else chunk

        return self._batches_recorded(gen())


def _str_dtype() -> Any:
    """pandas' ``str`` dtype (Arrow-backed strings with NaN for missing, the default of
    pandas 3; pandas >= 2.3 has it), or None."""
    import numpy as np
    import pandas as pd

    try:
        return pd.StringDtype("pyarrow", na_value=np.nan)
    except (TypeError, ImportError):
        return None


def _sorted_string_categories(s: pd.Series) -> pd.Series:
    """A dictionary-decoded string column as ``s.astype("string").astype("category")`` would
    have it: the same values, categories sorted and of the ``string`` dtype, missing values
    as missing (code -1), unused categories dropped."""
    import numpy as np
    import pandas as pd

    if not isinstance(s.dtype, pd.CategoricalDtype):  # pandas read it as strings after all
        return s.astype("string").astype("category")
    cat = s.array
    codes = np.asarray(cat.codes, dtype=np.int64)
    values = np.asarray(cat.categories, dtype=object)
    used = np.bincount(codes[codes >= 0], minlength=len(values)) > 0
    keep = np.flatnonzero(used)
    order = keep[np.argsort(values[keep], kind="stable")]
    new_code = np.full(len(values) + 1, -1, dtype=np.int64)  # last slot: missing (-1)
    new_code[order] = np.arange(len(order))
    categories = pd.Index(values[order], dtype=object).astype("string")
    return pd.Series(pd.Categorical.from_codes(new_code[codes],
                                               dtype=pd.CategoricalDtype(categories)),
                     index=s.index, name=s.name)


class ParquetSource(_FileSource):
    """A Parquet file, read column by column with pyarrow (only the columns asked for)."""

    kind = "parquet"
    what = "Parquet"

    def _schema_names(self) -> list[str]:
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(self.path).names)
        except Exception as exc:  # ArrowInvalid: not a parquet file, truncated, ...
            raise self._fail(exc) from None

    def columns(self) -> list[str]:
        st = self._stat()
        if self._columns is None or self._columns[0] != st:
            self._columns = (st, self._schema_names())
        return list(self._columns[1])

    def read(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        import pandas as pd

        self._opened()
        cols = self._check_columns(columns)
        try:
            df = pd.read_parquet(self.path, columns=cols)
        except Exception as exc:
            raise self._fail(exc) from None
        self._record(len(df), df.columns)
        return df

    def read_for_roles(self, columns: Sequence[str] | None, roles: Any) -> pd.DataFrame:
        """:meth:`read`, with two column kinds read without one Python string per row:

        - grouping columns (``roles.grouping_columns()``) stored as plain strings are read
          through pyarrow's dictionary decoding (``read_dictionary``), one string per distinct
          value, and their categories put in the order ``validate_frame`` gives them
          (``astype("string").astype("category")``: sorted, ``string`` dtype). Columns stored
          as categoricals keep their own order, as :meth:`read` reads them.
        - the id and patient id columns, when strings, become pandas' ``str`` dtype (Arrow
          storage, NaN for missing: the default of pandas 3), on pandas versions that have it.

        The validated evaluation set equals the one from :meth:`read` (values, categories,
        missing values); only the ids' dtype differs on pandas 2."""
        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq

        if columns is None:
            return self.read(columns)
        self._opened()
        cols = self._check_columns(columns)
        try:
            schema = pq.read_schema(self.path)  # its ARROW:schema when pyarrow wrote it
            names = set(cols)

            def strings(wanted: Any) -> list[str]:
                return [c for c in schema.names if c in names and c in wanted
                        and (pa.types.is_string(schema.field(c).type)
                             or pa.types.is_large_string(schema.field(c).type))]

            grouping = strings(set(roles.grouping_columns()))
            ids = strings({roles.id, roles.patient_id} - set(grouping) - {None})
            str_dtype = _str_dtype() if ids else None
            order = list(cols)
            if str_dtype is None or len(ids) == len(order):
                ids = []
            rest = [c for c in order if c not in ids]
            df = pd.read_parquet(self.path, columns=rest,
                                 **({"read_dictionary": grouping} if grouping else {}))
            if ids:
                mapper = {pa.string(): str_dtype, pa.large_string(): str_dtype}.get
                got = pq.read_table(self.path, columns=ids, use_pandas_metadata=True
                                    ).to_pandas(types_mapper=mapper)
                for c in sorted(ids, key=order.index):  # in place, in the asked order
                    df.insert(order.index(c), c, got[c])
        except Exception as exc:
            raise self._fail(exc) from None
        for c in grouping:
            df[c] = _sorted_string_categories(df[c])
        self._record(len(df), df.columns)
        return df

    def iter_batches(self, columns: Sequence[str] | None = None, *,
                     batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pd.DataFrame]:
        import pyarrow.parquet as pq

        _check_batch_rows(batch_rows)
        self._opened()
        cols = self._check_columns(columns)
        try:
            pf = pq.ParquetFile(self.path)
        except Exception as exc:
            raise self._fail(exc) from None

        def gen() -> Iterator[pd.DataFrame]:
            try:
                for batch in pf.iter_batches(batch_size=batch_rows, columns=cols):
                    yield batch.to_pandas()
            finally:
                pf.close()

        return self._batches_recorded(gen())


class DuckDBSource(_FileSource):
    """A SQL query run by DuckDB: on a DuckDB database file (opened read-only), or on a CSV or
    Parquet file that the query names as the view ``data``.

    Parameters
    ----------
    path : path-like
        A DuckDB database (``.duckdb`` / ``.db``), ``":memory:"``, or a CSV / Parquet file.
    query : str, optional
        The SQL. Required for a database; for a CSV / Parquet file, defaults to
        ``SELECT * FROM data``.
    format : {"duckdb", "csv", "parquet"}, optional
        What ``path`` is; inferred from its suffix when omitted.

    Notes
    -----
    A failed query is one line, ``query failed: <first line of the DuckDB error>``.
    ``iter_batches`` fetches chunks of DuckDB vectors (2048 rows each), so batch sizes are
    ``batch_rows`` rounded up to a multiple of 2048.
    """

    kind = "duckdb"
    what = "DuckDB"

    def __init__(self, path: str | Path, query: str | None = None, *,
                 format: str | None = None):
        super().__init__(path)
        self.memory = str(path) == ":memory:"
        fmt = format or ("duckdb" if self.memory else _infer_format(self.path))
        if fmt not in FORMATS:
            raise InvalidParameterError(f"format={fmt!r} is not valid; choose one of: {FORMATS}")
        if fmt == "duckdb" and query is None:
            raise InvalidParameterError(f"{path}: a DuckDB source needs query= (SQL)")
        if query is not None and not str(query).strip():
            raise InvalidParameterError(f"{path}: the query is empty")
        self._format = fmt
        self.query = query if query is not None else "SELECT * FROM data"

    @property
    def name(self) -> str:
        return ":memory:" if self.memory else self.path.name

    @property
    def format(self) -> str:
        return self._format

    def _query(self) -> str | None:
        return self.query

    def _stat(self) -> tuple[int, int]:
        return (0, 0) if self.memory else super()._stat()

    def sha256(self) -> str | None:  # type: ignore[override]
        return None if self.memory else super().sha256()

    def fingerprint(self) -> dict[str, Any]:
        if not self.memory:
            return super().fingerprint()
        return {"kind": self.kind, "format": self.format, "file": None, "path": None,
                "bytes": None, "sha256": None, "query": _redact(self.query), "rows": self._rows,
                "columns": None if self._read_columns is None else list(self._read_columns)}

    def describe(self) -> str:
        q = " ".join(self.query.split())
        q = q if len(q) <= 60 else q[:57] + "..."
        return f"DuckDB query on {self.name}: {q}"

    # ------------------------------------------------------------------ execution
    def _connect(self):
        from rwe._optional import import_optional

        duckdb = import_optional("duckdb", extra="duckdb")
        if self._format == "duckdb":
            try:
                return duckdb.connect(str(self.path) if not self.memory else ":memory:",
                                      read_only=not self.memory)
            except duckdb.Error as exc:
                raise DataValidationError(
                    [MSG_NOT_FORMAT.format(path=self.path, what="a DuckDB database",
                                           reason=_first_line(exc))],
                    source=str(self.path)) from None
        if self._format == "csv":
            CSVSource(self.path)._sniff()
        con = duckdb.connect()
        try:
            rel = (con.read_csv(str(self.path)) if self._format == "csv"
                   else con.read_parquet(str(self.path)))
            rel.create_view("data")
        except duckdb.Error as exc:
            con.close()
            raise DataValidationError(
                [MSG_NOT_FORMAT.format(path=self.path, what=self._format, reason=_first_line(exc))],
                source=str(self.path)) from None
        return con

    def _sql(self, columns: Sequence[str] | None) -> str:
        if columns is None:
            return self.query
        q = self.query.strip()
        while q.endswith(";"):
            q = q[:-1].rstrip()
        return f"SELECT {', '.join(_quote(c) for c in columns)} FROM (\n{q}\n) AS rwe_source"

    def _execute(self, con, sql: str):
        import duckdb

        try:
            return con.execute(sql)
        except duckdb.Error as exc:
            raise DataValidationError([MSG_QUERY.format(name=self.name, reason=_first_line(exc))],
                                      source=self.name) from None

    def columns(self) -> list[str]:
        st = self._stat()
        if self._columns is None or self._columns[0] != st:
            import duckdb

            con = self._connect()
            try:  # the query alone: its errors then point into the user's own SQL
                rel = con.sql(self.query)
                if rel is None:
                    raise DataValidationError(
                        [MSG_QUERY.format(name=self.name, reason="the statement returns no "
                                                                 "table")], source=self.name)
                names = [str(c) for c in rel.columns]
            except duckdb.Error as exc:
                raise DataValidationError(
                    [MSG_QUERY.format(name=self.name, reason=_first_line(exc))],
                    source=self.name) from None
            finally:
                con.close()
            self._columns = (st, names)
        return list(self._columns[1])

    def read(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        import duckdb

        self._opened()
        cols = self._check_columns(columns)
        con = self._connect()
        try:
            res = self._execute(con, self._sql(cols))
            if res.description is None:
                raise DataValidationError(
                    [MSG_QUERY.format(name=self.name, reason="the statement returns no table")],
                    source=self.name)
            try:
                df = res.df()
            except duckdb.Error as exc:
                raise DataValidationError(
                    [MSG_QUERY.format(name=self.name, reason=_first_line(exc))],
                    source=self.name) from None
        finally:
            con.close()
        self._record(len(df), df.columns)
        return df

    def iter_batches(self, columns: Sequence[str] | None = None, *,
                     batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pd.DataFrame]:
        import duckdb

        _check_batch_rows(batch_rows)
        self._opened()
        cols = self._check_columns(columns)
        vectors = max(1, -(-batch_rows // 2048))

        def gen() -> Iterator[pd.DataFrame]:
            con = self._connect()
            try:
                res = self._execute(con, self._sql(cols))
                while True:
                    try:
                        chunk = res.fetch_df_chunk(vectors)
                    except duckdb.Error as exc:
                        raise DataValidationError(
                            [MSG_QUERY.format(name=self.name, reason=_first_line(exc))],
                            source=self.name) from None
                    if not len(chunk):
                        return
                    yield chunk
            finally:
                con.close()

        return self._batches_recorded(gen())


class FileSetSource(Source):
    """The CSV or Parquet files a glob pattern matches (``data/*.parquet``, ``**`` recursive),
    read as one table: the rows of each file in turn, files in sorted path order.

    Each file is read by its own source (:attr:`parts`, :class:`ParquetSource` or
    :class:`CSVSource`), with that source's checks and messages naming the file: a file
    without a requested column is one line naming it. :meth:`read` concatenates the files as
    ``pandas.concat`` does (a text column that is categorical with the same categories in
    every file stays so; otherwise its values are text); the dask engine reads the parts, one
    task per file (:meth:`rwe.data.DaskEvaluationSet.from_source`), to the same summary.

    Parameters
    ----------
    pattern : path-like
        A glob pattern (:func:`glob.glob`, ``recursive=True``); the files it matches when the
        source is built are the table (a file added later is not read).
    format : {"csv", "parquet"}, optional
        Inferred from the files' suffixes when omitted (all must agree).

    Raises
    ------
    DataValidationError
        The pattern matches no file, or files of different formats.
    """

    kind = "files"

    def __init__(self, pattern: str | Path, *, format: str | None = None):
        super().__init__()
        self.pattern = str(pattern)
        if format is not None and format not in ("csv", "parquet"):
            raise InvalidParameterError(MSG_GLOB_FORMAT.format(
                pattern=self.pattern, what=f"format={format!r} reads one file"))
        files = sorted(Path(f) for f in glob.glob(self.pattern, recursive=True)
                       if Path(f).is_file())
        if not files:
            raise DataValidationError([MSG_NO_MATCH.format(pattern=self.pattern)],
                                      source=self.pattern)
        if format is None:
            found: dict[str, str] = {}
            for f in files:
                try:
                    found.setdefault(_infer_format(f), f.name)
                except InvalidParameterError:
                    raise DataValidationError([MSG_GLOB_FORMAT.format(
                        pattern=self.pattern, what=f"cannot infer the format of {f.name!r} "
                        "from its suffix; give format: csv or parquet")],
                        source=self.pattern) from None
            if len(found) > 1:
                raise DataValidationError([MSG_MIXED_FORMATS.format(
                    pattern=self.pattern, found=", ".join(f"{k}: {v}" for k, v in
                                                          found.items()))],
                                          source=self.pattern)
            format = next(iter(found))
            if format == "duckdb":
                raise DataValidationError([MSG_GLOB_FORMAT.format(
                    pattern=self.pattern, what=f"{found[format]} is a DuckDB database")],
                    source=self.pattern)
        self._format = format
        cls = CSVSource if format == "csv" else ParquetSource
        self.parts: tuple[_FileSource, ...] = tuple(cls(f) for f in files)
        self._stats: list[tuple[int, int]] | None = None

    @property
    def name(self) -> str:
        return Path(self.pattern).name

    @property
    def format(self) -> str:
        return self._format

    @property
    def files(self) -> list[Path]:
        return [p.path for p in self.parts]

    def describe(self) -> str:
        what = "CSV" if self._format == "csv" else "Parquet"
        try:
            size = _human_bytes(sum(p.path.stat().st_size for p in self.parts))
        except OSError:
            size = "a file is missing"
        n = len(self.parts)
        return f"{n} {what} file{'s' if n != 1 else ''} matching {self.pattern} ({size})"

    def columns(self) -> list[str]:
        """The first file's columns (every file is checked for the columns it is asked for
        when it is read: :meth:`check_columns`)."""
        return self.parts[0].columns()

    def check_columns(self, columns: Sequence[str] | None) -> list[str]:
        """The columns to read (default: the first file's), checked in every file (headers
        and Parquet footers only); one line naming the first file that lacks one."""
        cols = list(dict.fromkeys(columns)) if columns is not None else self.columns()
        for p in self.parts:
            p._check_columns(cols)
        return cols

    def opened(self) -> list[tuple[int, int]]:
        """Record every file's (size, modification time) before the files are read (their
        fingerprint then refuses a file changed since); the same list, for the readers."""
        self._stats = [p._stat() for p in self.parts]
        return list(self._stats)

    def read(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        import pandas as pd

        cols = self.check_columns(columns)
        self.opened()
        frames = [p.read(cols) for p in self.parts]
        df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        self._record(len(df), df.columns)
        return df

    def iter_batches(self, columns: Sequence[str] | None = None, *,
                     batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pd.DataFrame]:
        _check_batch_rows(batch_rows)
        cols = self.check_columns(columns)
        self.opened()

        def gen() -> Iterator[pd.DataFrame]:
            for p in self.parts:
                yield from p.iter_batches(cols, batch_rows=batch_rows)

        return self._batches_recorded(gen())

    def fingerprint(self) -> dict[str, Any]:
        """As a file's (:meth:`Source.fingerprint`), with ``files``: every file's name (its
        path relative to the pattern's fixed directory), bytes and sha256; ``bytes`` is their
        total and ``sha256`` the hash of the list of ``<sha256>  <name>`` lines (the
        ``sha256sum`` format), so it changes when any file or the set of files changes."""
        stats = [p._stat() for p in self.parts]
        if self._stats is not None:
            for p, st, was in zip(self.parts, stats, self._stats, strict=True):
                if st != was:
                    raise DataValidationError([MSG_CHANGED.format(path=p.path)],
                                              source=str(p.path))
        base = _pattern_root(self.pattern)
        files = []
        for p, st in zip(self.parts, stats, strict=True):
            try:
                rel = p.path.resolve().relative_to(base).as_posix()
            except ValueError:  # pragma: no cover - a match outside its own root
                rel = p.path.name
            files.append({"file": rel, "path": str(p.path.resolve()), "bytes": st[0],
                          "sha256": p.sha256()})
        listing = "".join(f"{f['sha256']}  {f['file']}\n" for f in files)
        return {"kind": self.kind, "format": self._format, "file": self.name,
                "path": str(Path(self.pattern).absolute()),
                "bytes": sum(f["bytes"] for f in files),
                "sha256": hashlib.sha256(listing.encode("utf-8")).hexdigest(), "query": None,
                "rows": self._rows,
                "columns": None if self._read_columns is None else list(self._read_columns),
                "files": files}


def _pattern_root(pattern: str) -> Path:
    """The directory a pattern's wildcards start below (``data/2024/*.parquet`` ->
    ``data/2024``)."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts[:-1]:
        if is_pattern(part):
            break
        fixed.append(part)
    return Path(*fixed).resolve() if fixed else Path.cwd()


# ------------------------------------------------------------------------------ builders
def source_from_path(path: str | Path, *, format: str | None = None,
                     query: str | None = None) -> Source:
    """The source for a file: CSV, Parquet, or DuckDB (a database, or any file with a query).

    Parameters
    ----------
    path : path-like
        The file (``":memory:"`` for an in-memory DuckDB with ``query``).
    format : {"csv", "parquet", "duckdb"}, optional
        Inferred from the suffix when omitted (``.csv``, ``.csv.gz``, ``.txt``; ``.parquet``,
        ``.pq``; ``.duckdb``, ``.db``).
    query : str, optional
        SQL run by DuckDB; on a CSV / Parquet file the table is the view ``data``.

    A path holding a glob character (``*``, ``?``, ``[``) is a pattern: the CSV or Parquet
    files it matches, one table (:class:`FileSetSource`).
    """
    if format is not None and format not in FORMATS:
        raise InvalidParameterError(f"format={format!r} is not valid; choose one of: {FORMATS}")
    if str(path) == ":memory:":
        return DuckDBSource(path, query, format="duckdb")
    if is_pattern(path):
        if query is not None or format == "duckdb":
            raise InvalidParameterError(MSG_GLOB_FORMAT.format(
                pattern=path, what="a DuckDB query reads one file (give the file, or drop the "
                "query)"))
        return FileSetSource(path, format=format)
    p = Path(path)
    fmt = format or _infer_format(p)
    if query is not None or fmt == "duckdb":
        return DuckDBSource(p, query, format=fmt)
    return CSVSource(p) if fmt == "csv" else ParquetSource(p)


def source_from_spec(data_spec: Any, base_dir: str | Path) -> Source:
    """The source a protocol's ``data`` section names (``path``, ``format``, ``query``; or
    ``source``, a database: :class:`rwe.data.SQLSource`, :class:`rwe.data.OMOPSource`), with
    a relative path resolved against ``base_dir`` (the protocol's directory).

    Parameters
    ----------
    data_spec : rwe.protocol.DataSpec or mapping
        Needs ``path`` (``format`` and ``query`` are optional) or ``source`` (``kind: sql``
        or ``kind: omop``).
    base_dir : path-like
    """
    get = (data_spec.get if isinstance(data_spec, Mapping)
           else lambda k, d=None: getattr(data_spec, k, d))
    if get("source") is not None:  # a database: SQL query or OMOP CDM (rwe/data/_sql.py)
        from rwe.data._sql import sql_source_from_spec

        return sql_source_from_spec(get("source"), base_dir)
    path = get("path")
    if not path or not str(path).strip():
        raise InvalidParameterError("data.path is empty; give the evaluation data file")
    p = Path(path)
    if str(path) != ":memory:" and not p.is_absolute():
        p = (Path(base_dir) / p).resolve()
    try:
        return source_from_path(p if str(path) != ":memory:" else path, format=get("format"),
                                query=get("query"))
    except DataValidationError as exc:
        if not is_pattern(path):
            raise
        # the pattern as the protocol writes it, then as resolved
        raise DataValidationError([f"data.path {str(path)!r}: {m}" for m in exc.messages],
                                  source=exc.source) from None
