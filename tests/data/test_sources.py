"""Data sources: whole and batched reads, column selection, fingerprints for provenance."""

from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pandas as pd
import pytest

import rwe.data._sources as sources_mod
from rwe.data import (
    CSVSource,
    DuckDBSource,
    ParquetSource,
    Source,
    load_evaluation_set,
    read_table,
    source_from_path,
    source_from_spec,
)
from rwe.exceptions import DataValidationError, InvalidParameterError

duckdb = pytest.importorskip("duckdb")

FP_KEYS = {"kind", "format", "file", "path", "bytes", "sha256", "query", "rows", "columns"}


def _frame(n: int = 50) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({"scan_id": [f"S{i:04d}" for i in range(n)],
                         "score": rng.uniform(size=n).round(6),
                         "y": rng.integers(0, 2, size=n),
                         "sex": rng.choice(["F", "M"], size=n),
                         "age": rng.integers(40, 90, size=n),
                         "notes": ["free text"] * n})


@pytest.fixture
def files(tmp_path):
    df = _frame()
    csv = tmp_path / "scans.csv"
    df.to_csv(csv, index=False)
    pq = tmp_path / "scans.parquet"
    df.to_parquet(pq, index=False)
    db = tmp_path / "scans.duckdb"
    con = duckdb.connect(str(db))
    con.register("df", df)
    con.execute("CREATE TABLE scans AS SELECT * FROM df")
    con.close()
    return df, {"csv": csv, "parquet": pq, "duckdb": db}


def _sources(files) -> dict[str, Source]:
    _, f = files
    return {"csv": CSVSource(f["csv"]), "parquet": ParquetSource(f["parquet"]),
            "duckdb": DuckDBSource(f["duckdb"], "SELECT * FROM scans;"),
            "duckdb-on-parquet": DuckDBSource(f["parquet"], "SELECT * FROM data"),
            "duckdb-on-csv": DuckDBSource(f["csv"])}


@pytest.mark.parametrize("which", ["csv", "parquet", "duckdb", "duckdb-on-parquet",
                                   "duckdb-on-csv"])
def test_read_columns_batches_and_fingerprint(files, which):
    df, paths = files
    src = _sources(files)[which]
    assert src.columns() == list(df.columns)
    fp0 = src.fingerprint()
    assert set(fp0) == FP_KEYS and fp0["rows"] is None and fp0["columns"] is None
    got = src.read(["y", "scan_id", "score"])
    assert list(got.columns) == ["y", "scan_id", "score"]      # the order asked for
    pd.testing.assert_frame_equal(got.reset_index(drop=True), df[["y", "scan_id", "score"]],
                                  check_dtype=False)
    fp = src.fingerprint()
    assert fp["rows"] == 50 and fp["columns"] == ["y", "scan_id", "score"]
    path = paths["csv" if which.endswith("csv") else
                 "duckdb" if which == "duckdb" else "parquet"]
    assert fp["file"] == path.name and fp["path"] == str(path.resolve())
    assert fp["bytes"] == path.stat().st_size
    assert fp["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert fp["kind"] == which.split("-")[0]
    assert (fp["query"] is not None) == which.startswith("duckdb")
    # batches: bounded sizes that concatenate to the whole read
    batch_rows = 2048 if which.startswith("duckdb") else 7
    batches = list(src.iter_batches(["scan_id", "age"], batch_rows=batch_rows))
    assert all(len(b) <= batch_rows for b in batches) and sum(map(len, batches)) == 50
    if not which.startswith("duckdb"):
        assert len(batches) == 8
    whole = pd.concat(batches, ignore_index=True)
    pd.testing.assert_frame_equal(whole, df[["scan_id", "age"]], check_dtype=False)
    assert src.fingerprint()["columns"] == ["scan_id", "age"]
    assert pickle.loads(pickle.dumps(src)).fingerprint()["sha256"] == fp["sha256"]
    assert which.split("-")[0].lower() in src.describe().lower()


def test_duckdb_batches_are_chunks_of_vectors(tmp_path):
    pq = tmp_path / "big.parquet"
    pd.DataFrame({"a": np.arange(10_000)}).to_parquet(pq, index=False)
    sizes = [len(b) for b in DuckDBSource(pq, "SELECT a FROM data ORDER BY a")
             .iter_batches(batch_rows=3000)]
    assert sizes == [4096, 4096, 1808]  # 3000 rounded up to two 2048-row vectors


def test_absent_column_is_named_with_the_columns_found(files):
    _, paths = files
    with pytest.raises(DataValidationError) as info:
        ParquetSource(paths["parquet"]).read(["score", "bmi"])
    assert info.value.messages == [
        "scans.parquet: column 'bmi' not found; columns found: 'scan_id', 'score', 'y', 'sex', "
        "'age', 'notes'"]


def test_sha256_is_streamed_once_and_a_changed_file_is_refused(files, monkeypatch):
    _, paths = files
    calls = []
    real = sources_mod.file_sha256
    monkeypatch.setattr(sources_mod, "file_sha256", lambda p, **kw: calls.append(p) or real(p))
    src = CSVSource(paths["csv"])
    src.read()
    for _ in range(3):
        src.fingerprint()
    assert len(calls) == 1
    with open(paths["csv"], "a") as fh:
        fh.write("S9999,0.5,1,F,50,x\n")
    with pytest.raises(DataValidationError, match=r"scans\.csv: the file changed after it was "
                                                  r"read"):
        src.fingerprint()


def test_fingerprint_never_carries_credentials(tmp_path):
    src = DuckDBSource(":memory:", "ATTACH 'postgres://rwe:s3cret@db.example/x' AS pg; "
                                   "SELECT 1 AS a")
    fp = src.fingerprint()
    assert "s3cret" not in str(fp) and "postgres://rwe:***@db.example" in fp["query"]
    assert fp["file"] is None and fp["sha256"] is None
    assert DuckDBSource(":memory:", "SELECT 42 AS a").read()["a"].tolist() == [42]


def test_source_from_path_and_spec(files, tmp_path):
    _, paths = files
    assert isinstance(source_from_path(paths["csv"]), CSVSource)
    assert isinstance(source_from_path(paths["parquet"]), ParquetSource)
    assert isinstance(source_from_path(paths["parquet"], query="SELECT 1"), DuckDBSource)
    with pytest.raises(InvalidParameterError, match="needs query="):
        source_from_path(paths["duckdb"])
    with pytest.raises(InvalidParameterError, match="cannot infer the format of 'x.xlsx'"):
        source_from_path(tmp_path / "x.xlsx")
    gz = tmp_path / "scans.csv.gz"
    _frame().to_csv(gz, index=False)
    assert isinstance(source_from_path(gz), CSVSource) and len(read_table(gz)) == 50
    spec = {"path": "scans.duckdb", "query": "SELECT * FROM scans WHERE sex = 'F'"}
    src = source_from_spec(spec, tmp_path)
    assert isinstance(src, DuckDBSource) and src.path == paths["duckdb"].resolve()
    assert set(src.read()["sex"]) == {"F"}
    with pytest.raises(InvalidParameterError, match="data.path is empty"):
        source_from_spec({"path": " "}, tmp_path)


def test_load_evaluation_set_reads_only_the_role_columns_and_keeps_the_source(files):
    df, paths = files
    roles = {"id": "scan_id", "scores": {"1": "score"}, "label": "y", "attributes": ["sex"]}
    for p in (paths["csv"], paths["parquet"]):
        ev = load_evaluation_set(p, roles, derived={"age_band": {"from": "age", "cuts": [65]}})
        assert list(ev.frame.columns) == ["scan_id", "score", "y", "sex", "age", "age_band"]
        fp = ev.source_fingerprint
        assert fp["rows"] == 50 and fp["columns"] == ["scan_id", "score", "y", "sex", "age"]
        assert ev.data_source.path == p and ev.source == p.name
    src = DuckDBSource(paths["duckdb"], "SELECT * FROM scans WHERE y = 1")
    ev = load_evaluation_set(src, roles)
    assert ev.n == int(df["y"].sum()) and ev.source_fingerprint["query"] == src.query
    from rwe.data import EvaluationSet

    assert EvaluationSet.from_frame(df, roles).source_fingerprint is None


def test_bad_batch_rows(files):
    _, paths = files
    with pytest.raises(InvalidParameterError, match="batch_rows must be an integer not less "
                                                    "than 1, but got 0"):
        ParquetSource(paths["parquet"]).iter_batches(batch_rows=0)
