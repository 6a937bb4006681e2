"""Bad database inputs (issue 19): ``rwe validate`` on a protocol whose ``data.source`` is a SQL
query or an OMOP CDM refuses each in one line naming what failed (the server, the table, the
column, the cohort, the CDM version), never quoting a password, exit 2, nothing written.

Each row of :data:`CASES` builds its inputs (a DuckDB file in the workspace, or the session's
PostgreSQL server), writes the protocol and runs the command line in-process; the rows marked
``pg`` skip with the server's reason where PostgreSQL cannot run.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hardening_corpus import check_refusal, run_cli
from omop_cdm import write_cdm

pytest.importorskip("duckdb")

SECRET = "not-the-password-7f3a"

BASE = """\
name: db
device: {{name: Risk, version: "1", intended_use: triage, intended_use_population: adults}}
data:
  source:
{source}
  columns:
    id: {id}
    scores: {{"a": s_a}}
    label: {label}
    attributes: [gender]
subgroups: {{attributes: [gender], min_n: 1}}
performance: {{metrics: [sensitivity], threshold: 0.5}}
report: {{title: t}}
"""


def omop(url: str, extra: str = "", cohort: int = 1) -> str:
    return BASE.format(id="row_id", label="outcome", source=(
        f"    kind: omop\n    url: {url}\n    cohort: {cohort}\n    outcome: 2\n"
        f"    horizon: 365\n    predictions: preds\n{extra}").rstrip("\n"))


def sql(url: str, query: str, extra: str = "") -> str:
    return BASE.format(id="id", label="y", source=(
        f"    kind: sql\n    url: {url}\n    query: \"{query}\"\n{extra}").rstrip("\n"))


SCANS = ["CREATE TABLE scans AS SELECT subject_id * 10000 + year(cohort_start_date) AS id, s_a, CASE WHEN s_a > 0.5 THEN 1 "
         "ELSE 0 END AS y, 'F' AS gender FROM preds"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens


@dataclass(frozen=True)
class DBCase:
    """``setup(ws, server)`` writes the inputs and returns the protocol text; ``env`` is set
    for the run (``{password}`` stands for the server's password); ``expect`` are substrings
    of the one error line (``{p}`` the protocol, ``{d}`` the workspace, ``{url}`` a server
    URL as returned by ``setup`` in ``ws.url``)."""

    id: str
    setup: Callable
    expect: tuple[str, ...]
    pg: bool = False
    env: dict[str, str] = field(default_factory=dict)
    argv: tuple[str, ...] = ("validate", "{p}")


def cdm(*, edit=None, sql_=(), url="duckdb:cdm.duckdb", **kw):
    def setup(ws, server):
        write_cdm(ws.dir / "cdm.duckdb", edit=edit, sql=list(sql_))
        return omop(url, **kw)
    return setup


def duck_sql(query: str):
    def setup(ws, server):
        write_cdm(ws.dir / "cdm.duckdb", sql=SCANS)
        return sql("duckdb:cdm.duckdb", query)
    return setup


def pg_sql(query: str, database: str = "postgres", extra: str = ""):
    def setup(ws, server):
        return sql(server.url(database), query, extra)
    return setup


def _overlap(rows, ddl):
    rows["cohort"].append((1, 4, "2019-01-20", "2019-02-10"))
    rows["preds"].append((4, "2019-01-20", 0.5, 0.5))


CASES = [
    # --- the server and the credentials ----------------------------------------------------
    DBCase("unreachable_server", lambda ws, s: sql(
        f"postgresql://rwe@127.0.0.1:{_closed_port()}/cdm", "SELECT 1"),
        ("postgresql://rwe@127.0.0.1:", "cannot connect to the database: connection to server "
         'at "127.0.0.1", port', "Connection refused")),
    DBCase("wrong_credentials", pg_sql("SELECT 1 AS id"), pg=True, env={"PGPASSWORD": SECRET},
           expect=("the server refused the credentials", 'password authentication failed for '
                   'user "rwe_test"', "never from the protocol")),
    DBCase("password_variable_not_set", pg_sql("SELECT 1 AS id", extra=(
        "    password_env: RWE_TEST_UNSET_PASSWORD")), pg=True,
        expect=("environment variable RWE_TEST_UNSET_PASSWORD (password_env) is not set",)),
    DBCase("password_in_the_url", lambda ws, s: sql(
        f"postgresql://rwe:{SECRET}@127.0.0.1/cdm", "SELECT 1"), argv=("validate", "--no-data",
                                                                       "{p}"),
        expect=("{p}:6: data.source.url: the database URL carries a password",)),
    DBCase("missing_database_file", lambda ws, s: sql("duckdb:none.duckdb", "SELECT 1"),
           expect=("{d}/none.duckdb: data file not found",)),
    # --- SQL: tables, columns, rows --------------------------------------------------------
    DBCase("missing_table", duck_sql("SELECT * FROM scan"),
           expect=("{d}/cdm.duckdb: query failed: Catalog Error: Table with name scan does not "
                   "exist",)),
    DBCase("missing_table_postgres", pg_sql("SELECT * FROM scans"), pg=True,
           expect=('query failed: relation "scans" does not exist',)),
    DBCase("missing_column_in_the_query", duck_sql("SELECT id, s_a, gender, yy FROM scans"),
           expect=("{d}/cdm.duckdb: query failed: Binder Error", '"yy" not found')),
    DBCase("missing_role_column", duck_sql("SELECT id, s_a, gender FROM scans"),
           expect=("cdm.duckdb: column 'y' (label) is missing; available columns: 'id', 's_a', "
                   "'gender'",)),
    DBCase("zero_rows", duck_sql("SELECT * FROM scans WHERE id < 0"),
           expect=("{d}/cdm.duckdb: the query returned no rows",)),
    DBCase("zero_rows_postgres", pg_sql("SELECT 1 AS id, 0.5 AS s_a, 1 AS y, 'F' AS gender "
                                        "WHERE false"), pg=True,
           expect=(": the query returned no rows",)),
    # --- OMOP CDM ----------------------------------------------------------------------------
    DBCase("cdm_of_another_version", cdm(sql_=["UPDATE cdm_source SET cdm_version = 'v6.0'"]),
           expect=("{d}/cdm.duckdb: main.cdm_source.cdm_version is 'v6.0', OMOP CDM 6.0; rwe "
                   "reads OMOP CDM 5.3 and 5.4",)),
    DBCase("cdm_version_declared_otherwise", cdm(extra='    cdm_version: "5.4"'),
           expect=("the protocol declares cdm_version 5.4, but main.cdm_source.cdm_version is "
                   "'v5.3.1'",)),
    DBCase("overlapping_eras", cdm(edit=_overlap),
           expect=("target cohort 1 in main.cohort has 1 overlapping era (a subject's "
                   "cohort_start_date on or before the end of their previous era)",)),
    DBCase("cdm_missing_table", cdm(sql_=["DROP TABLE person"]),
           expect=("table main.person not found: not an OMOP CDM schema (tables in main: "
                   "'care_site', 'cdm_source'",)),
    DBCase("cdm_missing_column", cdm(sql_=["ALTER TABLE person DROP COLUMN year_of_birth"]),
           expect=("table main.person has no column year_of_birth: an OMOP CDM 5.3 / 5.4 person "
                   "table has person_id",)),
    DBCase("cohort_table_of_another_layout", cdm(sql_=[
        "ALTER TABLE cohort RENAME COLUMN cohort_definition_id TO cohort_concept_id"]),
        expect=("table main.cohort has no column cohort_definition_id: a cohort table in the "
                "OHDSI layout has",)),
    DBCase("empty_cohort", cdm(cohort=7),
           expect=("target cohort 7 has no entry in main.cohort (cohort_definition_ids found: "
                   "'1', '2')",)),
    DBCase("entries_without_predictions", cdm(sql_=["DELETE FROM preds WHERE subject_id = 3"]),
           expect=("1 of the 5 entries of cohort 1 have no row in predictions table main.preds",)),
    DBCase("subject_not_a_person", cdm(sql_=["DELETE FROM person WHERE person_id = 2"]),
           expect=("1 subject of cohort 1 in main.cohort is not in main.person",)),
    DBCase("cdm_schema_absent_postgres", lambda ws, s: omop(s.url("postgres"), extra=(
        "    schema: cdm")), pg=True, expect=("schema 'cdm' holds no table",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_database_input_is_one_line(case, ws, capsys, monkeypatch, request):
    server = None
    if case.pg:
        server = request.getfixturevalue("postgres_server")
        monkeypatch.setenv("PGPASSWORD", server.password)
    monkeypatch.delenv("RWE_TEST_UNSET_PASSWORD", raising=False)
    for k, v in case.env.items():
        monkeypatch.setenv(k, v)
    text = case.setup(ws, server)
    p = ws.write("p.yaml", text)
    before = ws.snapshot()
    argv = [a.replace("{p}", str(p)) for a in case.argv]
    code, out, err = run_cli(argv, capsys)
    expect = [e.replace("{p}", str(p)).replace("{d}", str(ws.dir)) for e in case.expect]
    absent = [SECRET] + ([server.password] if server is not None else [])
    check_refusal(code, out, err, lines=1, expect=expect, absent=absent)
    assert ws.snapshot() == before, "files were left behind"


def test_the_base_cases_are_valid(ws, capsys):
    """The inputs the cases break are valid as written."""
    write_cdm(ws.dir / "cdm.duckdb", sql=SCANS)
    for text in (omop("duckdb:cdm.duckdb"), sql("duckdb:cdm.duckdb", "SELECT * FROM scans")):
        p = ws.write("p.yaml", text)
        code, out, err = run_cli(["validate", str(p)], capsys)
        assert code == 0, err
        assert "OK" in out and err == ""
