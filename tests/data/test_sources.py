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


def _grouping_frame(n: int = 3000) -> pd.DataFrame:
    """Strings with missing values, unicode, an empty string, a level absent from every
    row group but one, a stored categorical with its own order, and string ids."""
    rng = np.random.default_rng(11)
    race = rng.choice(["White", "Asian", "Black or African American", "", "Ñandú", None],
                      size=n).astype(object)
    race[:5] = "Zulu only here"
    smoking = pd.Categorical(rng.choice(["never", "former", "current"], size=n),
                             categories=["never", "former", "current"])
    pid = np.array([f"P{i % 700:05d}" for i in range(n)], dtype=object)
    return pd.DataFrame({"scan_id": [f"S{i:06d}" for i in range(n)], "patient_id": pid,
                         "score": rng.uniform(size=n), "y": rng.integers(0, 2, size=n),
                         "race": race, "smoking": smoking,
                         "site": rng.choice(["b", "a", "c"], size=n),
                         "age": rng.integers(40, 90, size=n),
                         "notes": rng.choice(["x", None], size=n)})  # not a role


@pytest.mark.parametrize("row_group_size", [None, 500])
def test_parquet_read_for_roles_equals_read_then_validate(tmp_path, row_group_size):
    """The fast Parquet read (grouping columns through dictionary decoding, ids as pandas'
    str dtype) gives the evaluation set that the plain read and validate_frame give: same
    values, same sorted string categories, a stored categorical's own order kept, missing
    values kept, the non-role string column untouched."""
    df = _grouping_frame()
    path = tmp_path / "g.parquet"
    df.to_parquet(path, row_group_size=row_group_size)
    roles = {"id": "scan_id", "patient_id": "patient_id", "scores": {"1": "score"},
             "label": "y", "attributes": ["race", "smoking"], "site": "site",
             "features": ["age"]}
    fast = load_evaluation_set(path, roles).frame

    src = ParquetSource(path)
    plain_src = ParquetSource(path)
    plain_src.read_for_roles = lambda columns, roles: plain_src.read(columns)
    plain = load_evaluation_set(plain_src, roles).frame
    assert list(fast.columns) == list(plain.columns)
    pd.testing.assert_frame_equal(fast, plain, check_dtype=False)
    for c in ("race", "smoking", "site"):
        assert fast[c].dtype == plain[c].dtype, c
    assert list(fast["smoking"].cat.categories) == ["never", "former", "current"]
    assert list(fast["race"].cat.categories) == sorted(
        {v for v in df["race"] if v is not None})
    assert fast["race"].isna().sum() == df["race"].isna().sum() > 0
    assert "notes" not in fast.columns  # only the role columns are read
    if sources_mod._str_dtype() is not None:
        assert fast["scan_id"].dtype == sources_mod._str_dtype()
    # a user's Source without the fast path reads as before
    assert src.read(["race"])["race"].dtype == object
    # a missing or repeated id is refused with the same message on both paths
    bad = df.copy()
    bad.loc[7, "patient_id"] = None
    bad.loc[9, "scan_id"] = bad.loc[3, "scan_id"]
    bad.to_parquet(path, row_group_size=row_group_size)
    msgs = []
    for s in (ParquetSource(path), plain_src):
        with pytest.raises(DataValidationError) as e:
            load_evaluation_set(s, roles)
        msgs.append(str(e.value))
    assert msgs[0] == msgs[1] and "first: 8" in msgs[0] and "duplicates" in msgs[0]
