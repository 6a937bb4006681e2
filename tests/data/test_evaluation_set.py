"""EvaluationSet: loaders and every load-time validation failure, with exact messages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rwe.data import (
    ColumnRoles,
    EvaluationSet,
    age_band_labels,
    derive_age_bands,
    load_evaluation_set,
    read_table,
)
from rwe.exceptions import DataValidationError, InvalidParameterError

ROLES = dict(id="scan_id", patient_id="patient_id", scores={"1.0": "score"}, label="y",
             timestamp="ts", site="site", attributes=("sex",), features=("age",))


def _frame(n: int = 8) -> pd.DataFrame:
    return pd.DataFrame({
        "scan_id": [f"CT{i:03d}" for i in range(n)],
        "patient_id": [f"P{i // 2:03d}" for i in range(n)],
        "score": np.linspace(0.05, 0.95, n),
        "y": [0, 1] * (n // 2),
        "ts": [f"2025-01-{i + 1:02d}T10:00:00" for i in range(n)],
        "site": ["S1", "S2"] * (n // 2),
        "sex": ["F", "M", "F", "F", "M", "M", "F", "M"][:n],
        "age": [45, 52, 67, 70, 81, 38, 64, 50][:n],
    })


def _errors(df, roles=ROLES, **kw) -> list[str]:
    with pytest.raises(DataValidationError) as info:
        EvaluationSet.from_frame(df, roles, source="scans.csv", **kw)
    return info.value.messages


def test_valid_frame_roles_and_accessors():
    ev = EvaluationSet.from_frame(_frame(), ROLES, source="scans.csv",
                                  derived={"age_band": {"from": "age", "cuts": [50, 65]}})
    assert ev.n == 8 and ev.versions == ["1.0"] and ev.primary_version == "1.0"
    assert ev.y_true.dtype == bool and ev.y_true.sum() == 4
    np.testing.assert_allclose(ev.score("1.0"), np.linspace(0.05, 0.95, 8))
    assert pd.api.types.is_datetime64_any_dtype(ev.timestamps)
    assert ev.has_repeated_patients
    # derived band: <50, 50-64, 65+
    assert list(ev.attribute("age_band").astype(str)) == [
        "<50", "50-64", "65+", "65+", "65+", "<50", "50-64", "50-64"]
    labels = ev.subgroup_labels(["sex", "site"])
    assert labels.iloc[0] == "F & S1" and labels.name == "sex x site"
    # codes in order of first appearance, as pd.factorize of the labels (missing: -1)
    for by in ("age_band", ["sex", "site"]):
        codes, names = ev.subgroup_codes(by)
        want, uniq = pd.factorize(ev.subgroup_labels(by), sort=False)
        np.testing.assert_array_equal(codes, want)
        assert names == [str(u) for u in uniq]
    assert ev.subgroup_codes("age_band")[1] == ["<50", "50-64", "65+"]
    sub = ev.subset(ev.frame["sex"] == "F")
    assert sub.n == 4 and isinstance(sub, EvaluationSet)
    assert "rows" in set(ev.describe()["fact"])


def test_age_bands_labels_and_missing_age():
    assert age_band_labels([18, 50, 65]) == ["<18", "18-49", "50-64", "65+"]
    assert age_band_labels([18.5, 50]) == ["<18.5", "[18.5, 50)", "50+"]
    bands = derive_age_bands(pd.Series([17, 18, 49.9, 50, np.nan, 90]), [18, 50])
    assert list(bands.astype(object).where(bands.notna(), None)) == [
        "<18", "18-49", "18-49", "50+", None, "50+"]
    assert list(bands.cat.categories) == ["<18", "18-49", "50+"]


def test_empty_table():
    assert _errors(_frame().iloc[:0]) == ["scans.csv: the table is empty (no rows)"]


def test_missing_column_names_it_and_lists_available():
    msgs = _errors(_frame().drop(columns=["y"]))
    assert msgs == ["scans.csv: column 'y' (label) is missing; available columns: 'scan_id', "
                    "'patient_id', 'score', 'ts', 'site', 'sex', 'age'"]


def test_score_wrong_dtype():
    df = _frame().assign(score=["a"] * 8)
    assert _errors(df) == ["scans.csv: column 'score' (score of model version 1.0) must be "
                           "numeric probabilities in [0, 1], got dtype object"]


def test_score_nan_and_out_of_range_rows_are_1_based_and_capped_at_5():
    df = _frame()
    score = df["score"].to_numpy(copy=True)
    score[[1, 3]] = np.nan
    df = df.assign(score=score)
    assert _errors(df) == ["scans.csv: column 'score' (score of model version 1.0): scores must "
                           "not be NaN or missing; 2 offending rows, first: 2, 4"]
    df = _frame().assign(score=[1.5, -0.1, 2, 3, 4, 5, 6, 0.5])
    assert _errors(df) == ["scans.csv: column 'score' (score of model version 1.0): "
                           "probabilities must lie in [0, 1]; 7 offending rows, first: 1, 2, 3, "
                           "4, 5"]


def test_non_binary_label():
    df = _frame().assign(y=[0, 1, 2, 0, 1, 0, 1, 0])
    assert _errors(df) == ["scans.csv: column 'y' (label): values must be 0 or 1 (found [2.0]); "
                           "1 offending row, first: 3"]
    df = _frame().assign(y=["no", "yes"] * 4)
    assert _errors(df) == ["scans.csv: column 'y' (label) must be binary 0/1 or bool, got dtype "
                           "object"]
    df = _frame().assign(y=[0, 1, None, 0, 1, 0, 1, 0])
    assert _errors(df) == ["scans.csv: column 'y' (label): missing values are not allowed; "
                           "1 offending row, first: 3"]


def test_duplicate_and_missing_ids():
    df = _frame()
    ids = df["scan_id"].to_numpy(copy=True)
    ids[5] = ids[1]
    assert _errors(df.assign(scan_id=ids)) == [
        "scans.csv: column 'scan_id' (id): ids must be unique (duplicates found); 2 offending "
        "rows, first: 2, 6"]
    pids = df["patient_id"].to_numpy(copy=True).astype(object)
    pids[7] = None
    assert _errors(df.assign(patient_id=pids)) == [
        "scans.csv: column 'patient_id' (patient id): patient ids must not be missing; "
        "1 offending row, first: 8"]


def test_unparseable_and_mixed_timezone_timestamps():
    df = _frame()
    ts = df["ts"].to_numpy(copy=True)
    ts[2] = "next tuesday"
    assert _errors(df.assign(ts=ts)) == [
        "scans.csv: column 'ts' (timestamp): unparseable timestamp (expected ISO 8601); "
        "1 offending row, first: 3"]
    ts = df["ts"].to_numpy(copy=True)
    ts[4] = "2025-01-05T10:00:00+02:00"
    ts[6] = "2025-01-07T10:00:00Z"
    assert _errors(df.assign(ts=ts)) == [
        "scans.csv: column 'ts' (timestamp): mixed timezones: some timestamps carry a UTC "
        "offset, others do not; 2 offending rows, first: 5, 7"]


def test_all_timezone_aware_is_converted_to_utc():
    df = _frame().assign(ts=[f"2025-01-0{i + 1}T10:00:00+01:00" for i in range(8)])
    ev = EvaluationSet.from_frame(df, ROLES)
    assert str(ev.timestamps.dt.tz) == "UTC" and ev.timestamps.iloc[0].hour == 9


def test_every_failure_reported_at_once():
    df = _frame().assign(score=[0.1] * 7 + [1.2], y=[0, 1, 3, 0, 1, 0, 1, 0])
    msgs = _errors(df)
    assert len(msgs) == 2
    assert "probabilities must lie in [0, 1]" in msgs[0] and "values must be 0 or 1" in msgs[1]


def test_survival_roles():
    df = _frame().assign(time=[1.0, 2, 3, -1, 5, 6, 7, 8], event=[1, 0] * 4)
    roles = dict(scores={"1.0": "score"}, time="time", event="event")
    assert _errors(df, roles) == [
        "scans.csv: column 'time' (time): follow-up time must be present and >= 0; "
        "1 offending row, first: 4"]


def test_roles_reject_unknown_and_incomplete():
    with pytest.raises((TypeError, InvalidParameterError)):
        ColumnRoles(scores={"1.0": "s"}, lable="y")  # noqa - a typo must not pass silently


def test_derived_source_missing_or_not_numeric():
    with pytest.raises(DataValidationError, match=r"column 'age' \(source of derived attribute "
                                                  r"'age_band'\) is missing"):
        EvaluationSet.from_frame(_frame().drop(columns=["age"]), {**ROLES, "features": ()},
                                 source="scans.csv",
                                 derived={"age_band": {"from": "age", "cuts": [50]}})
    with pytest.raises(DataValidationError, match="must be numeric, got dtype object"):
        EvaluationSet.from_frame(_frame().assign(age=["x"] * 8), ROLES, source="scans.csv",
                                 derived={"age_band": {"from": "age", "cuts": [50]}})


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_loaders_roundtrip(tmp_path, fmt):
    df = _frame()
    path = tmp_path / f"scans.{fmt}"
    df.to_csv(path, index=False) if fmt == "csv" else df.to_parquet(path, index=False)
    ev = load_evaluation_set(path, ROLES, derived={"age_band": {"from": "age", "cuts": [50]}})
    assert ev.n == 8 and ev.source == f"scans.{fmt}"
    np.testing.assert_allclose(ev.score("1.0"), df["score"])
    assert list(ev.frame.columns)[:3] == ["scan_id", "patient_id", "score"]


def test_parquet_reads_only_role_columns(tmp_path):
    path = tmp_path / "scans.parquet"
    _frame().assign(extra=1, notes="free text").to_parquet(path, index=False)
    ev = load_evaluation_set(path, ROLES)
    assert "notes" not in ev.frame.columns and "extra" not in ev.frame.columns


def test_duckdb_file_and_query(tmp_path):
    duckdb = pytest.importorskip("duckdb")
    db = tmp_path / "rwe.duckdb"
    con = duckdb.connect(str(db))
    con.register("df", _frame())
    con.execute("CREATE TABLE scans AS SELECT * FROM df")
    con.close()
    ev = load_evaluation_set(db, ROLES, query="SELECT * FROM scans WHERE site = 'S1'")
    assert ev.n == 4 and set(ev.frame["site"].astype(str)) == {"S1"}
    with pytest.raises(InvalidParameterError, match="needs query="):
        read_table(db)
    # a query over a parquet file, as the view `data`
    pq = tmp_path / "scans.parquet"
    _frame().to_parquet(pq, index=False)
    assert len(read_table(pq, query="SELECT * FROM data WHERE y = 1")) == 4


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(DataValidationError, match=r"nope\.csv: data file not found"):
        read_table(tmp_path / "nope.csv")
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    with pytest.raises(DataValidationError, match=r"bad\.parquet: could not be read as parquet"):
        read_table(bad)
    with pytest.raises(InvalidParameterError, match="cannot infer the format of 'x.xlsx'"):
        read_table(tmp_path / "x.xlsx")


def test_frame_is_a_private_copy():
    df = _frame()
    ev = EvaluationSet.from_frame(df, ROLES)
    df.loc[0, "score"] = 0.99
    assert ev.frame["score"].iloc[0] == pytest.approx(0.05)
