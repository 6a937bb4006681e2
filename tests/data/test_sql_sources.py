"""SQLSource: database URLs without secrets, DuckDB and a real PostgreSQL server giving the
same frame (one Arrow conversion), streaming through a server-side cursor, credentials from
the environment or a pgpass file, read-only sessions, provenance without a password."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from rwe.data import SQLSource, load_evaluation_set, parse_database_url, provenance
from rwe.data._sql import (
    MSG_NO_ROWS,
    MSG_PASSWORD_ENV,
    MSG_URL_PASSWORD,
)
from rwe.exceptions import DataValidationError, InvalidParameterError

duckdb = pytest.importorskip("duckdb")

#: One table with every common type, NULLs included; the same rows in both databases.
TYPED_DDL = ("id INTEGER, big BIGINT, nullable_int BIGINT, amount NUMERIC(10, 2), x DOUBLE "
             "PRECISION, day DATE, ts TIMESTAMP, label VARCHAR, flag BOOLEAN")
TYPED_ROWS = [
    (1, 10_000_000_000, 5, "1.25", 0.1, "2024-01-31", "2024-01-31 10:00:00", "a", True),
    (2, -3, None, "-7.50", 1e-300, "2024-02-29", "2024-02-29 23:59:59", None, False),
    (3, 0, 7, None, None, None, None, "é ü", None),
]
QUERY = "SELECT * FROM typed ORDER BY id"


def _duck_typed(path):
    con = duckdb.connect(str(path))
    con.execute(f"CREATE TABLE typed ({TYPED_DDL.replace('DOUBLE PRECISION', 'DOUBLE')})")
    con.executemany("INSERT INTO typed VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", TYPED_ROWS)
    con.close()
    return path


@pytest.fixture(scope="module")
def pg_typed(postgres_server):
    url = postgres_server.create_database("typed")
    with postgres_server.connect("typed") as con:
        con.execute(f"CREATE TABLE typed ({TYPED_DDL})")
        with con.cursor() as cur:
            cur.executemany("INSERT INTO typed VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                            TYPED_ROWS)
        con.execute("CREATE TABLE big AS SELECT g AS id, (g % 97) / 97.0 AS score, "
                    "g % 2 AS y FROM generate_series(1, 5000) AS g")
        con.commit()
    return url


@pytest.fixture
def pgpassword(monkeypatch, postgres_server):
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    monkeypatch.delenv("PGPASSFILE", raising=False)
    return postgres_server.password


# ------------------------------------------------------------------------------ URLs
@pytest.mark.parametrize("url, backend, display", [
    ("postgresql://rwe@db.example:5433/cdm", "postgresql", "postgresql://rwe@db.example:5433/cdm"),
    ("postgres://db.example/cdm?sslmode=require", "postgresql",
     "postgresql://db.example/cdm?sslmode=require"),
    ("postgresql:///cdm", "postgresql", "postgresql:///cdm"),
    ("duckdb::memory:", "duckdb", "duckdb::memory:"),
    ("duckdb:///:memory:", "duckdb", "duckdb::memory:"),
])
def test_database_urls(url, backend, display):
    u = parse_database_url(url)
    assert (u.backend, u.display) == (backend, display)


def test_duckdb_files_resolve_against_the_base_directory(tmp_path):
    assert parse_database_url("duckdb:data/x.duckdb", tmp_path).path == tmp_path / "data" / "x.duckdb"
    assert parse_database_url("duckdb:///abs/x.duckdb", tmp_path).path.as_posix() == "/abs/x.duckdb"
    assert parse_database_url("x.db", tmp_path).path == tmp_path / "x.db"


@pytest.mark.parametrize("url", ["postgresql://rwe:hunter2@host/db",
                                 "postgresql://rwe@host/db?password=hunter2",
                                 "postgres://:hunter2@host/db"])
def test_a_url_with_a_password_is_refused_without_echoing_it(url):
    with pytest.raises(InvalidParameterError) as err:
        SQLSource(url, "SELECT 1")
    assert str(err.value) == MSG_URL_PASSWORD and "hunter2" not in str(err.value)


@pytest.mark.parametrize("url, match", [("mysql://host/db", "scheme 'mysql' is not supported"),
                                        ("data.csv", "scheme 'data.csv' is not supported"),
                                        ("postgresql://host:port/db", "malformed"),
                                        ("", "the database URL is empty")])
def test_unsupported_urls(url, match):
    with pytest.raises(InvalidParameterError, match=match):
        parse_database_url(url)


# ------------------------------------------------------------------------------ DuckDB
def test_duckdb_read_batches_fingerprint(tmp_path):
    path = _duck_typed(tmp_path / "t.duckdb")
    src = SQLSource(f"duckdb:{path.name}", QUERY, base_dir=tmp_path)
    assert src.columns() == ["id", "big", "nullable_int", "amount", "x", "day", "ts", "label",
                             "flag"]
    df = src.read()
    assert df["amount"].dtype == "float64" and df["amount"].tolist()[:2] == [1.25, -7.5]
    assert df["nullable_int"].isna().tolist() == [False, True, False]
    assert str(df["day"].dtype).startswith("datetime64")
    assert df["label"].tolist() == ["a", None, "é ü"]
    fp = src.fingerprint()
    assert fp["rows"] == 3 and fp["query"] == QUERY and fp["format"] == "duckdb"
    assert fp["file"] == "t.duckdb" and fp["bytes"] == path.stat().st_size and fp["sha256"]
    h = fp["rows_sha256"]
    parts = list(src.iter_batches(["id", "x"], batch_rows=2))
    assert sum(len(p) for p in parts) == 3
    assert src.fingerprint()["columns"] == ["id", "x"] and src.fingerprint()["rows_sha256"] != h
    src.read()
    assert src.fingerprint()["rows_sha256"] == h  # deterministic


def test_duckdb_query_errors_are_one_line(tmp_path):
    path = _duck_typed(tmp_path / "t.duckdb")
    with pytest.raises(DataValidationError) as err:
        SQLSource(f"duckdb:{path}", "SELECT nope FROM typed").read()
    (line,) = err.value.messages
    assert line.startswith(f"{path}: query failed: Binder Error") and "nope" in line
    with pytest.raises(DataValidationError) as err:
        SQLSource(f"duckdb:{path}", "SELECT * FROM typed WHERE id > 99").read()
    assert err.value.messages == [MSG_NO_ROWS.format(where=path)]
    with pytest.raises(DataValidationError) as err:  # opened read-only: nothing is written
        SQLSource(f"duckdb:{path}", "CREATE TABLE t2 AS SELECT 1 AS a").read()
    assert "read-only" in err.value.messages[0]
    with pytest.raises(DataValidationError, match="data file not found"):
        SQLSource(f"duckdb:{tmp_path / 'none.duckdb'}", QUERY).read()


# ------------------------------------------------------------------------------ PostgreSQL
def test_postgres_and_duckdb_give_the_same_frame(tmp_path, pg_typed, pgpassword):
    duck = SQLSource(f"duckdb:{_duck_typed(tmp_path / 't.duckdb')}", QUERY)
    pg = SQLSource(pg_typed, QUERY)
    a, b = duck.read(), pg.read()
    pd.testing.assert_frame_equal(a, b)
    assert duck.fingerprint()["rows_sha256"] == pg.fingerprint()["rows_sha256"]
    fp = pg.fingerprint()
    assert fp["format"] == "postgresql" and fp["sha256"] is None and fp["rows"] == 3
    assert fp["database"]["user"] == "rwe_test" and fp["database"]["database"] == "typed"
    assert pgpassword not in json.dumps(fp, default=str)


def test_postgres_streams_through_a_server_side_cursor(pg_typed, pgpassword, postgres_server):
    src = SQLSource(pg_typed.replace("/typed", "/typed"), "SELECT * FROM big ORDER BY id")
    it = src.iter_batches(batch_rows=1000)
    first = next(it)
    assert len(first) == 1000
    with postgres_server.connect("typed") as con:  # what the reading session runs now
        (query,), = con.execute("SELECT query FROM pg_stat_activity WHERE application_name = "
                                "'rwe'").fetchall()
    assert query.startswith('FETCH FORWARD 1000 FROM "rwe_stream"')
    rest = list(it)
    assert [len(b) for b in rest] == [1000] * 4
    whole = pd.concat([first, *rest], ignore_index=True)
    assert whole["id"].tolist() == list(range(1, 5001))
    assert src.fingerprint()["rows"] == 5000


def test_credentials_from_a_pgpass_file(tmp_path, monkeypatch, pg_typed, postgres_server):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:{postgres_server.port}:*:rwe_test:{postgres_server.password}\n")
    os.chmod(pgpass, 0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    assert len(SQLSource(pg_typed, QUERY).read()) == 3


def test_credentials_from_a_named_variable(monkeypatch, pg_typed, postgres_server):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")
    monkeypatch.setenv("RWE_TEST_DB_PASSWORD", postgres_server.password)
    assert len(SQLSource(pg_typed, QUERY, password_env="RWE_TEST_DB_PASSWORD").read()) == 3
    monkeypatch.delenv("RWE_TEST_DB_PASSWORD")
    with pytest.raises(DataValidationError) as err:
        SQLSource(pg_typed, QUERY, password_env="RWE_TEST_DB_PASSWORD").read()
    assert err.value.messages == [MSG_PASSWORD_ENV.format(
        where=pg_typed, name="RWE_TEST_DB_PASSWORD")]


def test_the_session_is_read_only(pg_typed, pgpassword):
    with pytest.raises(DataValidationError) as err:
        SQLSource(pg_typed, "CREATE TABLE t2 AS SELECT 1 AS a RETURNING a").read()
    assert err.value.messages[0].startswith(f"{pg_typed}: query failed: ")
    with pytest.raises(DataValidationError) as err:
        SQLSource(pg_typed, "SELECT * FROM typed; DELETE FROM typed").read()
    assert err.value.messages[0].startswith(f"{pg_typed}: query failed: ")
    assert len(SQLSource(pg_typed, QUERY).read()) == 3  # still there


def test_an_evaluation_set_from_postgres_with_its_provenance(pg_typed, pgpassword):
    src = SQLSource(pg_typed, "SELECT id, score, y FROM big WHERE id <= 300 ORDER BY id")
    ev = load_evaluation_set(src, {"id": "id", "scores": {"1": "score"}, "label": "y"})
    assert len(ev) == 300 and ev.y_true.sum() == 150
    prov = provenance(ev)
    (rec,) = prov.files
    assert rec["kind"] == "sql" and rec["rows"] == 300 and rec["columns"] == ["id", "score", "y"]
    assert rec["query"].startswith("SELECT id, score, y FROM big")
    assert pgpassword not in json.dumps(prov.to_dict(), default=str)


def test_a_connection_lost_mid_stream_is_one_line(pg_typed, pgpassword, postgres_server):
    """The server ends the reading session between two batches: one line naming the database,
    no password, and no row count recorded as if the read had finished."""
    src = SQLSource(pg_typed, "SELECT * FROM big ORDER BY id")
    it = src.iter_batches(batch_rows=1000)
    assert len(next(it)) == 1000
    with postgres_server.connect("typed", autocommit=True) as con:
        (ended,), = con.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                                "application_name = 'rwe'").fetchall()
    assert ended is True
    with pytest.raises(DataValidationError) as err:
        list(it)
    (line,) = str(err.value).splitlines()
    assert line.startswith(f"{src.where}: query failed: ")
    assert "terminat" in line and pgpassword not in line
    assert src.fingerprint()["rows"] is None and src.fingerprint()["rows_sha256"] is None
