"""The files a glob pattern matches as one table (FileSetSource): read whole, in batches, as
the parts of the dask engine; every problem one line naming the pattern or the file; a
fingerprint that lists each file and changes with any of them."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pandas as pd
import pytest

from rwe.data import FileSetSource, ParquetSource, load_evaluation_set, source_from_path
from rwe.data._sources import source_from_spec
from rwe.exceptions import DataValidationError, InvalidParameterError

ROLES = {"scores": {"1": "score"}, "label": "y", "attributes": ["sex"]}


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"score": rng.uniform(size=n).round(6), "y": rng.integers(0, 2, n),
                         "sex": rng.choice(["F", "M"], n), "age": rng.integers(40, 90, n)})


@pytest.fixture
def parts(tmp_path):
    frames = [_frame(30, 1), _frame(5, 2), _frame(17, 3)]
    d = tmp_path / "data"
    (d / "2025").mkdir(parents=True)
    frames[0].to_parquet(d / "a.parquet", index=False)
    frames[1].to_parquet(d / "b.parquet", index=False)
    frames[2].to_parquet(d / "2025" / "c.parquet", index=False)
    return d, frames


def test_a_pattern_is_one_table_of_its_files_in_path_order(parts):
    d, frames = parts
    src = source_from_path(d / "**" / "*.parquet")
    assert isinstance(src, FileSetSource) and src.format == "parquet"
    # sorted paths: data/2025/c.parquet, data/a.parquet, data/b.parquet
    assert [p.path.name for p in src.parts] == ["c.parquet", "a.parquet", "b.parquet"]
    want = pd.concat([frames[2], frames[0], frames[1]], ignore_index=True)
    pd.testing.assert_frame_equal(src.read(["score", "sex"]), want[["score", "sex"]])
    batches = list(src.iter_batches(["y"], batch_rows=8))
    assert [len(b) for b in batches] == [8, 8, 1, 8, 8, 8, 6, 5]
    assert pd.concat(batches, ignore_index=True)["y"].tolist() == want["y"].tolist()
    assert src.describe().startswith("3 Parquet files matching ")
    ev = load_evaluation_set(source_from_path(d / "*.parquet"), ROLES)
    assert len(ev) == 35 and ev.data_source.fingerprint()["rows"] == 35


def test_the_fingerprint_lists_every_file_and_changes_with_any(parts):
    d, _ = parts
    src = source_from_path(d / "**" / "*.parquet")
    src.read(["score"])
    fp = src.fingerprint()
    names = ["2025/c.parquet", "a.parquet", "b.parquet"]
    assert [f["file"] for f in fp["files"]] == names
    for f in fp["files"]:
        assert f["sha256"] == hashlib.sha256((d / f["file"]).read_bytes()).hexdigest()
        assert f["bytes"] == (d / f["file"]).stat().st_size
    listing = "".join(f"{f['sha256']}  {f['file']}\n" for f in fp["files"])
    assert fp["sha256"] == hashlib.sha256(listing.encode()).hexdigest()
    assert fp["bytes"] == sum(f["bytes"] for f in fp["files"])
    assert (fp["kind"], fp["format"], fp["rows"], fp["columns"]) == ("files", "parquet", 52,
                                                                      ["score"])
    # a file rewritten after the read: refused, naming the file
    _frame(6, 9).to_parquet(d / "a.parquet", index=False)
    os.utime(d / "a.parquet", ns=(1, 1))
    with pytest.raises(DataValidationError, match="a.parquet: the file changed after it was"):
        src.fingerprint()
    fresh = source_from_path(d / "**" / "*.parquet").fingerprint()
    assert fresh["sha256"] != fp["sha256"] and fresh["rows"] is None
    # one file more: another set, another hash
    _frame(3, 4).to_parquet(d / "d.parquet", index=False)
    assert source_from_path(d / "**" / "*.parquet").fingerprint()["sha256"] != fresh["sha256"]


def test_a_column_missing_in_one_file_names_that_file(parts):
    d, frames = parts
    frames[1].drop(columns=["sex"]).to_parquet(d / "b.parquet", index=False)
    src = source_from_path(d / "*.parquet")
    with pytest.raises(DataValidationError) as e:
        src.read(["score", "sex"])
    assert e.value.messages == ["b.parquet: column 'sex' not found; columns found: 'score', "
                                "'y', 'age'"]
    with pytest.raises(DataValidationError, match="^b.parquet: column 'sex' not found"):
        load_evaluation_set(src, ROLES)


def test_bad_patterns_are_one_line(parts, tmp_path):
    d, _ = parts
    with pytest.raises(DataValidationError) as e:
        source_from_path(d / "*.csv")
    assert e.value.messages == [f"{d / '*.csv'}: the pattern matches no file"]
    with pytest.raises(DataValidationError) as e:
        source_from_spec({"path": "data/*.csv"}, tmp_path)
    assert e.value.messages == [f"data.path 'data/*.csv': {d / '*.csv'}: the pattern matches "
                                "no file"]
    _frame(4, 5).to_csv(d / "e.csv", index=False)
    with pytest.raises(DataValidationError, match=r"files of different formats \(parquet: "
                                                  r"a.parquet, csv: e.csv\)"):
        source_from_path(d / "*")
    (d / "notes.txt.bak").write_text("x")
    with pytest.raises(DataValidationError, match="cannot infer the format of 'notes.txt.bak'"):
        source_from_path(d / "notes*")
    with pytest.raises(InvalidParameterError, match="a DuckDB query reads one file"):
        source_from_path(d / "*.parquet", query="SELECT * FROM data")
    # format given: the files are read as such, CSV too
    src = source_from_path(d / "*.csv", format="csv")
    assert src.read(["y"]).shape == (4, 1)


def test_the_parts_are_the_files_sources_and_pickle(parts):
    import pickle

    d, _ = parts
    src = source_from_path(d / "*.parquet")
    assert all(isinstance(p, ParquetSource) for p in src.parts)
    back = pickle.loads(pickle.dumps(src))
    assert [p.path for p in back.parts] == [p.path for p in src.parts]
    assert back.read(["y"]).equals(src.read(["y"]))
