"""OMOPSource on a tiny hand-written CDM whose evaluation table is known row by row, in DuckDB
and in PostgreSQL: concept names, "unknown" for concept 0, age at index, care sites, devices
before the index date, the time-at-risk boundaries, prediction joins, the checks it runs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from omop_cdm import COHORT, EXPECTED, HORIZON, OUTCOME, write_cdm

from rwe.data import OMOP_COLUMNS, OMOPSource, load_evaluation_set
from rwe.data._omop import MSG_CDM_DECLARED, MSG_CDM_LAYOUT, MSG_CDM_VERSION
from rwe.exceptions import DataValidationError, InvalidParameterError

duckdb = pytest.importorskip("duckdb")


def _source(url: str, **kw) -> OMOPSource:
    args = {"cohort": COHORT, "outcome": OUTCOME, "horizon": HORIZON, "predictions": "preds"}
    return OMOPSource(url, **(args | kw))


def _plain(values) -> list:
    return [None if v is None or (isinstance(v, float) and np.isnan(v)) else
            (int(v) if isinstance(v, (np.integer, float)) and float(v).is_integer() and
             not isinstance(v, bool) else v) for v in values]


@pytest.fixture
def tiny(tmp_path):
    return write_cdm(tmp_path / "tiny.duckdb")


@pytest.fixture(scope="module")
def tiny_pg(postgres_server, tmp_path_factory):
    from rwe.datasets._eunomia import load_cdm_into_postgres

    path = write_cdm(tmp_path_factory.mktemp("tiny") / "tiny.duckdb")
    url = postgres_server.create_database("tiny_cdm")
    load_cdm_into_postgres(path, url, schema="cdm", password=postgres_server.password)
    return url


def _check_expected(df: pd.DataFrame) -> None:
    assert list(df.columns) == [*OMOP_COLUMNS, "s_a", "s_b"]
    for col, want in EXPECTED.items():
        assert _plain(df[col].tolist()) == want, col
    assert df["index_date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2020-03-01", "2021-06-15", "2022-01-10", "2019-01-01", "2020-01-01"]
    assert df["gender_concept_id"].tolist() == [8507, 8532, 9999, 8507, 8507]
    assert _plain(df["race_concept_id"].tolist()) == [8527, 0, 8516, None, None]
    assert _plain(df["device_concept_id"].tolist()) == [4002, None, 0, None, None]


def test_the_evaluation_table_row_by_row_on_duckdb(tiny):
    src = _source(f"duckdb:{tiny}")
    df = src.read()
    _check_expected(df)
    # concept id 0 is its own category, never merged with a named one or with missing
    assert (df["ethnicity"] == "unknown").sum() == 1
    assert df["race"].isna().sum() == 2 and (df["race"] == "unknown").sum() == 1
    fp = src.fingerprint()
    assert fp["kind"] == "omop" and fp["format"] == "duckdb" and fp["rows"] == 5
    assert fp["omop"]["cdm_version"] == "5.3" and fp["omop"]["cohort_entries"] == 5
    assert fp["omop"]["cdm_source"] == "tiny test CDM"
    assert "FROM target t" in fp["query"] and fp["rows_sha256"]


def test_postgres_gives_the_same_table_and_row_hash(tiny, tiny_pg, monkeypatch,
                                                    postgres_server):
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    duck = _source(f"duckdb:{tiny}")
    pg = _source(tiny_pg, schema="cdm")
    a, b = duck.read(), pg.read()
    _check_expected(b)
    pd.testing.assert_frame_equal(a, b)
    assert duck.fingerprint()["rows_sha256"] == pg.fingerprint()["rows_sha256"]
    fp = pg.fingerprint()
    assert fp["format"] == "postgresql" and fp["database"]["server"].startswith("PostgreSQL")
    assert postgres_server.password not in json.dumps(fp, default=str)
    # streamed through the server-side cursor: the same rows in small batches
    parts = list(pg.iter_batches(batch_rows=2))
    assert [len(p) for p in parts] == [2, 2, 1]
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), a)


def test_risk_window_and_horizon_move_the_outcome(tiny):
    # from day 0, person 1's outcome on the index day counts: days_to_outcome 0
    df = _source(f"duckdb:{tiny}", risk_window_start=0).read()
    assert _plain(df["days_to_outcome"].tolist()) == [0, 365, None, None, None]
    # horizon 366 reaches person 3's outcome on day 366; followup capped by observation
    df = _source(f"duckdb:{tiny}", horizon=366).read()
    assert df["outcome"].tolist() == [1, 1, 1, 0, 0]
    assert _plain(df["followup_days"].tolist()) == [366, 366, 50, 366, 181]


def test_without_device_and_care_site_tables_the_columns_stay_missing(tmp_path):
    def drop(rows, ddl):
        for t in ("device_exposure", "care_site"):
            del ddl[t]
    df = _source(f"duckdb:{write_cdm(tmp_path / 'cdm.duckdb', edit=drop)}").read()
    assert df["device"].isna().all()
    assert _plain(df["care_site"].tolist()) == ["10", "20", None, "10", "10"]


def test_without_predictions_and_in_other_schemas(tmp_path):
    path = write_cdm(tmp_path / "cdm.duckdb", sql=[
        "CREATE SCHEMA results", "CREATE TABLE results.cohort AS SELECT * FROM cohort",
        "CREATE TABLE results.scores AS SELECT subject_id AS person_id, cohort_start_date AS "
        "index_date, 1 AS cohort_definition_id, s_a AS risk FROM preds", "DROP TABLE cohort"])
    df = _source(f"duckdb:{path}", predictions=None, results_schema="results").read()
    assert list(df.columns) == list(OMOP_COLUMNS)
    df = _source(f"duckdb:{path}", predictions="scores", results_schema="results").read()
    assert df["risk"].tolist() == EXPECTED["s_a"]  # joined on person_id, index_date, cohort


def test_a_protocol_style_evaluation_set_with_age_bands(tiny):
    ev = load_evaluation_set(_source(f"duckdb:{tiny}"), {
        "id": "row_id", "patient_id": "person_id", "timestamp": "index_date",
        "label": "outcome", "scores": {"a": "s_a"}, "site": "care_site",
        "attributes": ["gender", "race", "ethnicity"], "features": ["age"]},
        derived={"age_band": {"from": "age", "cuts": [40, 65]}})
    assert ev.frame["age_band"].astype(str).tolist() == ["65+", "40-64", "<40", "40-64",
                                                         "40-64"]
    assert ev.source_fingerprint["columns"][:2] == ["row_id", "person_id"]


@pytest.mark.parametrize("sql, declared, message", [
    (["UPDATE cdm_source SET cdm_version = 'v6.0'"], None,
     MSG_CDM_VERSION.format(where="{w}", what="main.cdm_source.cdm_version", found="v6.0",
                            version="6.0")),
    (["UPDATE cdm_source SET cdm_version = 'v5.4.1'"], None, None),
    (["DROP TABLE cdm_source", "ALTER TABLE person ADD COLUMN death_datetime TIMESTAMP"], None,
     MSG_CDM_LAYOUT.format(where="{w}", person="main.person")),
    ([], "5.4", MSG_CDM_DECLARED.format(where="{w}", declared="5.4",
                                        what="main.cdm_source.cdm_version", found="v5.3.1")),
    ([], "5.3", None),
])
def test_cdm_versions(tmp_path, sql, declared, message):
    path = write_cdm(tmp_path / "cdm.duckdb", sql=sql)
    src = _source(f"duckdb:{path}", cdm_version=declared)
    if message is None:
        assert len(src.read()) == 5
        return
    with pytest.raises(DataValidationError) as err:
        src.read()
    assert err.value.messages == [message.format(w=path)]


def test_arguments_are_checked_before_any_connection():
    for kw, match in [({"schema": "cdm; drop table person"}, "schema must be a plain SQL"),
                      ({"horizon": 0}, "horizon must be an integer not less than 1"),
                      ({"risk_window_start": 400}, "is after the horizon"),
                      ({"predictions": "a.b.c"}, "TABLE or SCHEMA.TABLE"),
                      ({"cdm_version": "6.0"}, "cdm_version='6.0' is not valid")]:
        with pytest.raises(InvalidParameterError, match=match):
            _source("duckdb:/nonexistent.duckdb", **kw)
