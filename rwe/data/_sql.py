"""SQL databases as data sources: PostgreSQL (psycopg 3, server-side cursors) and DuckDB (the
embedded default), read through one Arrow path so that both give the same DataFrame.

:class:`SQLSource` runs one query. Its ``url`` names the database and never a password:

* ``postgresql://[user@][host][:port]/dbname[?sslmode=...]`` (or ``postgres://``): PostgreSQL
  through psycopg 3. The password comes from libpq's own places, ``PGPASSWORD`` or a pgpass file
  (``PGPASSFILE``, default ``~/.pgpass``), or from the environment variable named by
  ``password_env``; a URL holding a password is refused. The session is read-only.
* ``duckdb:FILE`` (relative to ``base_dir``), ``duckdb:///ABSOLUTE/FILE``, ``duckdb::memory:``,
  or a bare ``FILE.duckdb`` / ``FILE.db``: DuckDB, the file opened read-only.

Rows come as Arrow record batches (DuckDB natively; PostgreSQL rows typed by their column's type
OID) and become pandas through one conversion, :func:`arrow_to_pandas` (numeric / decimal ->
float64, dates -> datetime64, NULL integers -> float64 with NaN), so a table read from
PostgreSQL equals the same table read from DuckDB or from a Parquet export of it.
:meth:`SQLSource.iter_batches` streams: a PostgreSQL server-side cursor fetches ``batch_rows``
rows at a time, DuckDB hands over its own record batches, and memory stays bounded by one
batch.

Every failure is one line naming the database (as a URL without credentials) and what failed:
the server is unreachable, the credentials were refused, the query failed (a missing table or
column), the query returned no rows. No message carries a password.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from rwe.data._sources import (
    DEFAULT_BATCH_ROWS,
    MSG_IS_DIR,
    MSG_NOT_FOUND,
    Source,
    _check_batch_rows,
    _first_line,
    _human_bytes,
    _quote,
    _redact,
    file_sha256,
)
from rwe.exceptions import DataValidationError, InvalidParameterError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["SQLSource", "DatabaseURL", "parse_database_url", "arrow_to_pandas", "BACKENDS",
           "MSG_URL_PASSWORD", "MSG_CONNECT", "MSG_CREDENTIALS", "MSG_NO_ROWS",
           "MSG_PASSWORD_ENV", "MSG_NOT_DUCKDB", "MSG_SQL_QUERY"]

BACKENDS = ("postgresql", "duckdb")
DEFAULT_CONNECT_TIMEOUT = 10.0
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

MSG_URL_PASSWORD = ("the database URL carries a password; a protocol or a URL never holds one: "
                    "give it in PGPASSWORD, a pgpass file (PGPASSFILE, default ~/.pgpass) or "
                    "the environment variable named by password_env")
MSG_URL_SCHEME = ("database URL scheme {scheme!r} is not supported; use postgresql://HOST/DB or "
                  "duckdb:FILE (a bare FILE.duckdb works too)")
MSG_CONNECT = "{where}: cannot connect to the database: {reason}"
MSG_CREDENTIALS = ("{where}: the server refused the credentials: {reason} (rwe takes the "
                   "password from PGPASSWORD, a pgpass file or the variable named by "
                   "password_env, never from the protocol)")
MSG_NO_ROWS = "{where}: the query returned no rows"
MSG_SQL_QUERY = "{where}: query failed: {reason}"
MSG_PASSWORD_ENV = ("{where}: environment variable {name} (password_env) is not set; export it "
                    "with the database password")
MSG_NOT_DUCKDB = "{path}: could not be opened as a DuckDB database: {reason}"
MSG_MISSING_DRIVER = ("psycopg is required to read PostgreSQL; install it with: "
                      "pip install 'rwe[sql]'")

# libpq's messages for refused credentials (SQLSTATE 28P01 / 28000 reach the client only as
# text on connection)
_AUTH = ("password authentication failed", "no password supplied", "authentication failed",
         "role \"", "pg_hba.conf")


# ------------------------------------------------------------------------------ URLs
@dataclass(frozen=True)
class DatabaseURL:
    """A parsed database URL (never holding a password).

    Attributes
    ----------
    backend : {"postgresql", "duckdb"}
    display : str
        The URL for messages and provenance (no credentials).
    conninfo : str or None
        What psycopg connects with (PostgreSQL).
    path : Path or None
        The DuckDB file (None in memory or for PostgreSQL).
    host, port, database, user : str or None
        PostgreSQL identity as written (None: libpq's default / environment).
    """

    backend: str
    display: str
    conninfo: str | None = None
    path: Path | None = None
    host: str | None = None
    port: str | None = None
    database: str | None = None
    user: str | None = None

    @property
    def memory(self) -> bool:
        return self.backend == "duckdb" and self.path is None


def parse_database_url(url: str, base_dir: str | Path | None = None) -> DatabaseURL:
    """Parse ``url`` (see the module notes); relative DuckDB files resolve against
    ``base_dir`` (default: the current directory).

    Raises
    ------
    InvalidParameterError
        An unsupported scheme, or a URL carrying a password (the message never quotes it).
    """
    if not isinstance(url, str) or not url.strip():
        raise InvalidParameterError("the database URL is empty; give postgresql://HOST/DB or "
                                    "duckdb:FILE")
    url = url.strip()
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    low = url.lower()
    if low.startswith("duckdb:"):
        rest = url[len("duckdb:"):]
        if rest.startswith("//"):
            rest = rest[2:]
        if rest in ("", ":memory:", "/:memory:"):
            return DatabaseURL("duckdb", "duckdb::memory:")
        p = Path(rest)
        p = p if p.is_absolute() else (base / p).resolve()
        return DatabaseURL("duckdb", f"duckdb:{p}", path=p)
    scheme = low.split("://", 1)[0] if "://" in low else None
    if scheme is None:
        if Path(url).suffix.lower() in (".duckdb", ".db"):
            p = Path(url)
            p = p if p.is_absolute() else (base / p).resolve()
            return DatabaseURL("duckdb", f"duckdb:{p}", path=p)
        raise InvalidParameterError(MSG_URL_SCHEME.format(scheme=url.split(":", 1)[0]))
    if scheme not in ("postgresql", "postgres"):
        raise InvalidParameterError(MSG_URL_SCHEME.format(scheme=scheme))
    parts = urlsplit(url)
    try:
        password, port = parts.password, parts.port
    except ValueError as exc:  # a port that is not a number
        raise InvalidParameterError(f"the database URL is malformed: {exc}") from None
    query = parse_qsl(parts.query, keep_blank_values=True)
    if password is not None or any(k.lower() == "password" for k, _ in query):
        raise InvalidParameterError(MSG_URL_PASSWORD)
    user, host = parts.username, parts.hostname
    database = parts.path.lstrip("/") or None
    netloc = (f"{user}@" if user else "") + (host or "") + (f":{port}" if port else "")
    display = f"postgresql://{netloc}/{database or ''}"
    if query:
        display += "?" + "&".join(f"{k}={v}" for k, v in query)
    conninfo = url if scheme == "postgresql" else "postgresql" + url[len("postgres"):]
    return DatabaseURL("postgresql", display, conninfo=conninfo, host=host,
                       port=None if port is None else str(port), database=database, user=user)


def check_password_env(name: str | None) -> str | None:
    """``name`` when it is a valid environment variable name (or None)."""
    if name is not None and (not isinstance(name, str) or not _ENV_NAME.match(name)):
        raise InvalidParameterError(
            f"password_env must be the name of an environment variable (letters, digits, _), "
            f"got {type(name).__name__ if not isinstance(name, str) else 'an invalid name'}")
    return name


# ------------------------------------------------------------------------------ Arrow
_PG_ARROW = {
    "bool": "bool", "int2": "int16", "int4": "int32", "int8": "int64", "oid": "int64",
    "float4": "float32", "float8": "float64", "numeric": "float64",
    "text": "string", "varchar": "string", "bpchar": "string", "name": "string",
    "date": "date32", "timestamp": "timestamp", "timestamptz": "timestamptz",
}


def _arrow_type(pg_name: str | None) -> pa.DataType:
    import pyarrow as pa

    kind = _PG_ARROW.get(pg_name or "", "string")
    return {"bool": pa.bool_(), "int16": pa.int16(), "int32": pa.int32(),
            "int64": pa.int64(), "float32": pa.float32(), "float64": pa.float64(),
            "string": pa.string(), "date32": pa.date32(), "timestamp": pa.timestamp("us"),
            "timestamptz": pa.timestamp("us", tz="UTC")}[kind]


#: PostgreSQL types whose Python values psycopg gives already as Arrow takes them (no pass).
_PG_NATIVE = {"bool", "int2", "int4", "int8", "oid", "float4", "float8", "text", "varchar",
              "bpchar", "name", "date", "timestamp", "timestamptz"}


def _pg_batch(rows: list[tuple], names: list[str], types: list[pa.DataType],
              native: list[bool] | None = None) -> pa.RecordBatch:
    """Rows of a PostgreSQL cursor as an Arrow record batch of the columns' types; a column
    not ``native`` (numeric's Decimal, any other type given as text) is converted first."""
    import pyarrow as pa

    native = native if native is not None else [False] * len(names)
    arrays = []
    for j, (typ, ok) in enumerate(zip(types, native, strict=True)):
        values = list(map(itemgetter(j), rows))  # a column (zip(*rows) is 3x slower)
        if not ok and pa.types.is_floating(typ):
            values = [None if v is None else float(v) for v in values]  # Decimal -> float
        elif not ok and pa.types.is_string(typ):
            values = [None if v is None or isinstance(v, str) else str(v) for v in values]
        arrays.append(pa.array(values, type=typ))
    return pa.RecordBatch.from_arrays(arrays, names=names)


def arrow_to_pandas(table: pa.Table | pa.RecordBatch) -> pd.DataFrame:
    """The one Arrow -> pandas conversion of SQL sources: decimals become float64, dates
    datetime64, integer columns holding NULL float64 with NaN (Arrow's default)."""
    import pyarrow as pa

    fields = []
    cast = False
    for f in table.schema:
        if pa.types.is_decimal(f.type):
            fields.append(pa.field(f.name, pa.float64()))
            cast = True
        else:
            fields.append(f)
    if cast:
        table = table.cast(pa.schema(fields))
    return table.to_pandas(date_as_object=False)


# ------------------------------------------------------------------------------ source
def _strip(query: str) -> str:
    q = query.strip()
    while q.endswith(";"):
        q = q[:-1].rstrip()
    return q


class SQLSource(Source):
    """A SQL query on a PostgreSQL or DuckDB database.

    Parameters
    ----------
    url : str
        The database (see the module notes); never a password.
    query : str
        The SQL; its result is the evaluation table.
    base_dir : path-like, optional
        Anchors a relative DuckDB file (the protocol's directory).
    password_env : str, optional
        Name of an environment variable holding the PostgreSQL password (default: libpq's
        ``PGPASSWORD`` or pgpass file).
    connect_timeout : float, default 10
        Seconds to wait for a PostgreSQL server.

    Notes
    -----
    Reading a subset of columns wraps the query, ``SELECT cols FROM (query) AS rwe_source``.
    The fingerprint records the URL without credentials, the server's identity, the query text,
    the rows and columns read and ``rows_sha256``, the sha256 of the rows read, in order (of
    :func:`pandas.util.hash_pandas_object` of each row): equal for one table read from
    PostgreSQL, DuckDB or a Parquet export of it.
    """

    kind = "sql"

    def __init__(self, url: str, query: str, *, base_dir: str | Path | None = None,
                 password_env: str | None = None,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT):
        super().__init__()
        self.url = parse_database_url(url, base_dir)
        if query is not None and (not isinstance(query, str) or not query.strip()):
            raise InvalidParameterError(f"{self.url.display}: the query is empty")
        self._query_text = query
        self.password_env = check_password_env(password_env)
        if isinstance(connect_timeout, bool) or not isinstance(connect_timeout, (int, float)) \
                or not connect_timeout > 0:
            raise InvalidParameterError(
                f"connect_timeout must be a positive number of seconds, got {connect_timeout!r}")
        self.connect_timeout = float(connect_timeout)
        self._columns_cache: list[str] | None = None
        self._rows_sha256: str | None = None
        self._server: str | None = None
        self._sha: tuple[tuple[int, int], str] | None = None

    # ------------------------------------------------------------------ identity
    @property
    def query(self) -> str:
        return self._query_text

    @property
    def backend(self) -> str:
        return self.url.backend

    @property
    def name(self) -> str:
        if self.url.path is not None:
            return self.url.path.name
        return self.url.display

    @property
    def where(self) -> str:
        """The database as messages name it (a path or a URL without credentials)."""
        return str(self.url.path) if self.url.path is not None else self.url.display

    def describe(self) -> str:
        q = " ".join(self.query.split())
        q = q if len(q) <= 60 else q[:57] + "..."
        what = "PostgreSQL" if self.backend == "postgresql" else "DuckDB"
        size = ""
        if self.url.path is not None:
            try:
                size = f" ({_human_bytes(self.url.path.stat().st_size)})"
            except OSError:
                size = " (missing)"
        return f"{what} query on {self.url.display}{size}: {q}"

    def fingerprint(self) -> dict[str, Any]:
        p = self.url.path
        size = sha = None
        if p is not None and p.is_file():
            st = p.stat()
            key = (st.st_size, st.st_mtime_ns)
            if self._sha is None or self._sha[0] != key:
                self._sha = (key, file_sha256(p))
            size, sha = st.st_size, self._sha[1]
        u = self.url
        return {"kind": self.kind, "format": self.backend,
                "file": p.name if p is not None else u.display,
                "path": str(p) if p is not None else u.display, "bytes": size, "sha256": sha,
                "query": _redact(self.query), "rows": self._rows,
                "columns": None if self._read_columns is None else list(self._read_columns),
                "url": u.display,
                "database": {"backend": u.backend, "host": u.host, "port": u.port,
                             "database": u.database, "user": u.user, "server": self._server},
                "rows_sha256": self._rows_sha256}

    # ------------------------------------------------------------------ connections
    def _password(self) -> str | None:
        if self.password_env is None:
            return None
        value = os.environ.get(self.password_env)
        if value is None:
            raise DataValidationError([MSG_PASSWORD_ENV.format(where=self.url.display,
                                                               name=self.password_env)],
                                      source=self.url.display)
        return value

    def _scrub(self, text: str) -> str:
        """A driver's message with any secret it might quote replaced by ``***``."""
        for secret in (self._password_value, os.environ.get("PGPASSWORD")):
            if secret:
                text = text.replace(secret, "***")
        return _redact(text) or text

    _password_value: str | None = None

    def _fail(self, template: str, exc: BaseException | str) -> DataValidationError:
        reason = exc if isinstance(exc, str) else _first_line(exc)
        if reason.startswith("connection failed: "):
            reason = reason[len("connection failed: "):]
        line = template.format(where=self.where, name=self.name, reason=self._scrub(reason))
        return DataValidationError([line], source=self.where)

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        """A read-only connection, closed on exit; connection problems are one line."""
        if self.backend == "duckdb":
            from rwe._optional import import_optional

            duckdb = import_optional("duckdb", extra="duckdb")
            p = self.url.path
            if p is not None:
                if not p.exists():
                    raise DataValidationError([MSG_NOT_FOUND.format(path=p)], source=str(p))
                if p.is_dir():
                    raise DataValidationError([MSG_IS_DIR.format(path=p, what="DuckDB")],
                                              source=str(p))
            try:
                con = duckdb.connect(str(p) if p is not None else ":memory:",
                                     read_only=p is not None)
            except duckdb.Error as exc:
                raise DataValidationError([MSG_NOT_DUCKDB.format(path=p, reason=_first_line(
                    exc))], source=str(p)) from None
            self._server = f"DuckDB {duckdb.__version__}"
            try:
                yield con
            finally:
                con.close()
            return
        try:
            import psycopg
        except ImportError as exc:
            raise ImportError(MSG_MISSING_DRIVER) from exc
        self._password_value = self._password()
        kw: dict[str, Any] = {"connect_timeout": max(1, int(round(self.connect_timeout))),
                              "application_name": "rwe"}
        if self._password_value is not None:
            kw["password"] = self._password_value
        try:
            con = psycopg.connect(self.url.conninfo, **kw)
        except psycopg.Error as exc:
            text = str(exc)
            auth = any(a in text for a in _AUTH) and "Connection refused" not in text
            raise self._fail(MSG_CREDENTIALS if auth else MSG_CONNECT, exc) from None
        try:
            con.read_only = True
            if self._server is None:
                with con.cursor() as cur:
                    cur.execute("SHOW server_version")
                    self._server = f"PostgreSQL {cur.fetchone()[0]}"
            yield con
        finally:
            con.close()

    def _errors(self):
        """The driver's error class (for ``except``)."""
        if self.backend == "duckdb":
            import duckdb

            return duckdb.Error
        import psycopg

        return psycopg.Error

    def _fetchall(self, con: Any, sql: str) -> list[tuple]:
        """All rows of a (small, metadata) query; a failure is one line."""
        err = self._errors()
        try:
            if self.backend == "duckdb":
                return con.execute(sql).fetchall()
            with con.cursor() as cur:
                cur.execute(sql)
                rows = cur.fetchall()
            con.rollback()
            return rows
        except err as exc:
            if self.backend == "postgresql":
                con.rollback()
            raise self._fail(MSG_SQL_QUERY, exc) from None

    def _describe(self, con: Any, sql: str) -> list[str]:
        err = self._errors()
        try:
            if self.backend == "duckdb":
                rel = con.sql(sql)
                if rel is None:
                    raise self._fail(MSG_SQL_QUERY,
                                     "the statement returns no table")
                return [str(c) for c in rel.columns]
            with con.cursor() as cur:
                cur.execute(f"SELECT * FROM (\n{_strip(sql)}\n) AS rwe_source LIMIT 0")
                names = [d.name for d in cur.description or ()]
            con.rollback()
            return names
        except err as exc:
            if self.backend == "postgresql":
                con.rollback()
            raise self._fail(MSG_SQL_QUERY, exc) from None

    def _arrow_batches(self, con: Any, sql: str, batch_rows: int) -> Iterator[pa.RecordBatch]:
        """The query's rows as Arrow record batches of at most about ``batch_rows`` rows:
        DuckDB's record batch reader, or a PostgreSQL server-side cursor."""
        err = self._errors()
        if self.backend == "duckdb":
            try:
                rel = con.sql(sql)
                if rel is None:
                    raise self._fail(MSG_SQL_QUERY,
                                     "the statement returns no table")
                yield from rel.to_arrow_reader(batch_rows)
            except err as exc:
                raise self._fail(MSG_SQL_QUERY, exc) from None
            return
        try:
            with con.cursor(name="rwe_stream") as cur:
                cur.itersize = batch_rows
                cur.execute(sql)
                types = None
                names: list[str] = []
                while True:
                    rows = cur.fetchmany(batch_rows)
                    if types is None:
                        desc = cur.description or ()
                        names = [d.name for d in desc]
                        reg = con.adapters.types
                        pg = [getattr(reg.get(d.type_code), "name", None) for d in desc]
                        types = [_arrow_type(t) for t in pg]
                        native = [t in _PG_NATIVE for t in pg]
                    if not rows:
                        break
                    yield _pg_batch(rows, names, types, native)
            con.rollback()
        except err as exc:
            with contextlib.suppress(Exception):
                con.rollback()
            raise self._fail(MSG_SQL_QUERY, exc) from None

    # ------------------------------------------------------------------ Source interface
    def _prepare(self, con: Any) -> None:
        """Hook run on a fresh connection before the query (the OMOP checks)."""

    def _sql(self, columns: Sequence[str] | None) -> str:
        if columns is None:
            return self.query
        return (f"SELECT {', '.join(_quote(c) for c in columns)} FROM (\n{_strip(self.query)}"
                "\n) AS rwe_source")

    def columns(self) -> list[str]:
        if self._columns_cache is None:
            with self._connection() as con:
                self._prepare(con)
                self._columns_cache = self._describe(con, self.query)
        return list(self._columns_cache)

    def read(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        import pyarrow as pa

        cols = self._check_columns(columns)
        with self._connection() as con:
            self._prepare(con)
            batches = list(self._arrow_batches(con, self._sql(cols), DEFAULT_BATCH_ROWS))
        if not batches or not sum(b.num_rows for b in batches):
            raise DataValidationError([MSG_NO_ROWS.format(where=self.where)], source=self.where)
        df = arrow_to_pandas(pa.Table.from_batches(batches))
        h = _RowHasher()
        h.update(df)
        self._rows_sha256 = h.hexdigest()
        self._record(len(df), df.columns)
        return df

    def iter_batches(self, columns: Sequence[str] | None = None, *,
                     batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pd.DataFrame]:
        _check_batch_rows(batch_rows)
        cols = self._check_columns(columns)

        def gen() -> Iterator[pd.DataFrame]:
            h = _RowHasher()
            rows = 0
            names: list[str] = []
            with self._connection() as con:
                self._prepare(con)
                for batch in self._arrow_batches(con, self._sql(cols), batch_rows):
                    if not batch.num_rows:
                        continue
                    df = arrow_to_pandas(batch)
                    h.update(df)
                    rows += len(df)
                    names = list(df.columns)
                    yield df
            if not rows:
                raise DataValidationError([MSG_NO_ROWS.format(where=self.where)],
                                          source=self.where)
            self._rows_sha256 = h.hexdigest()
            self._record(rows, names)

        return gen()


class _RowHasher:
    """sha256 over the per-row hashes of consecutive frames (batching does not change it)."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self._names: list[str] | None = None

    def update(self, df: pd.DataFrame) -> None:
        import pandas as pd

        if self._names is None:
            self._names = [str(c) for c in df.columns]
            self._h.update("\x1f".join(self._names).encode("utf-8") + b"\x1e")
        self._h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def sql_source_from_spec(spec: Any, base_dir: str | Path) -> Source:
    """The :class:`SQLSource` or :class:`rwe.data.OMOPSource` a protocol's ``data.source``
    names (a pydantic spec or a mapping with ``kind``)."""
    if isinstance(spec, Mapping):
        get = spec.get
    else:
        def get(k, d=None):
            return getattr(spec, k if k != "schema" else "schema_", d)
    kind = get("kind")
    common = {"base_dir": base_dir, "password_env": get("password_env"),
              "connect_timeout": get("connect_timeout") or DEFAULT_CONNECT_TIMEOUT}
    if kind == "sql":
        return SQLSource(get("url"), get("query"), **common)
    if kind == "omop":
        from rwe.data._omop import OMOPSource

        return OMOPSource(get("url"), schema=get("schema"), results_schema=get("results_schema"),
                          cohort=get("cohort"), outcome=get("outcome"), horizon=get("horizon"),
                          risk_window_start=get("risk_window_start", 1) if get(
                              "risk_window_start") is not None else 1,
                          cohort_table=get("cohort_table") or "cohort",
                          predictions=get("predictions"), cdm_version=get("cdm_version"),
                          **common)
    raise InvalidParameterError(f"data.source.kind must be 'sql' or 'omop', got {kind!r}")
