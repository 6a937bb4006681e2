"""Bad data inputs (issue 16, data side): each refused with one line that names the file or
column and never quotes content the file was not meant to show; through the Python API (an rwe
exception) and through ``rwe validate`` (exit 2, the same line on stderr, no traceback)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rwe.cli import main
from rwe.data import DuckDBSource, EvaluationSet, load_evaluation_set
from rwe.exceptions import DataValidationError, RWEError
from rwe.protocol import protocol_from_dict

duckdb = pytest.importorskip("duckdb")

SECRET = "SECRET-5f3a"  # planted in files whose content must never reach a message
ROLES = {"id": "scan_id", "scores": {"1.0": "score"}, "label": "y", "attributes": ["sex"],
         "features": ["age"]}
HEADER = "scan_id,score,y,sex,age"


def _rows(n: int = 40, sep: str = ",", age=None) -> str:
    lines = [HEADER.replace(",", sep)]
    for i in range(n):
        a = age(i) if age is not None else 40 + i
        lines.append(sep.join([f"S{i:03d}", f"{(i % 10) / 10 + 0.05:.2f}", str(i % 2),
                               "FM"[i % 2], str(a)]))
    return "\n".join(lines) + "\n"


def _write(tmp: Path, name: str, content: str | bytes) -> Path:
    p = tmp / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return p


def _parquet(tmp: Path) -> Path:
    p = tmp / "ok.parquet"
    pd.read_csv(io.StringIO(_rows())).to_parquet(p, index=False)
    return p


def _duckdb(tmp: Path) -> Path:
    p = tmp / "scans.duckdb"
    con = duckdb.connect(str(p))
    con.register("df", pd.read_csv(io.StringIO(_rows())))
    con.execute("CREATE TABLE scans AS SELECT * FROM df")
    con.close()
    return p


def _binary() -> bytes:
    return bytes(range(256)) * 4 + SECRET.encode() + b"\x00" * 16


# name -> (builder(tmp) -> (data spec for the protocol), expected substrings of the one line)
CASES = {
    "header-only CSV": (
        lambda t: {"path": str(_write(t, "scans.csv", HEADER + "\n"))},
        ["scans.csv: the table is empty (no rows)"]),
    "semicolon-separated CSV": (
        lambda t: {"path": str(_write(t, "scans.csv", _rows(sep=";")))},
        ["scans.csv: expected columns 'scan_id', 'score', 'y', 'sex', 'age' are missing; "
         "found 1 column 'scan_id;score;y;sex;age': the file looks semicolon-separated"]),
    "tab-separated CSV": (
        lambda t: {"path": str(_write(t, "scans.csv", _rows(sep="\t")))},
        ["found 1 column", "the file looks tab-separated"]),
    "text in a numeric feature": (
        lambda t: {"path": str(_write(t, "scans.csv",
                                      _rows(age=lambda i: "abc" if i == 16 else 40 + i)))},
        ["scans.csv: column 'age' (feature): text in a numeric column (found 'abc'): values "
         "must be numbers, an empty cell for a missing value; 1 offending row, first: 17"]),
    "text in the source of an age band": (
        lambda t: {"path": str(_write(t, "scans.csv",
                                      _rows(age=lambda i: "unknown" if i == 3 else 40 + i))),
                   "derived": {"age_band": {"from": "age", "cuts": [50, 65]}}},
        ["scans.csv: column 'age' (source of derived attribute 'age_band'): text in a numeric "
         "column (found 'unknown')", "1 offending row, first: 4"]),
    "bad SQL on a DuckDB file": (
        lambda t: {"path": str(_duckdb(t)), "query": "SELEC * FROM scans"},
        ['scans.duckdb: query failed: Parser Error: syntax error at or near "SELEC"']),
    "unknown table in the query": (
        lambda t: {"path": str(_duckdb(t)), "query": "SELECT * FROM nope"},
        ["scans.duckdb: query failed: Catalog Error: Table with name nope does not exist!"]),
    "bad SQL over a Parquet file": (
        lambda t: {"path": str(_parquet(t)), "query": "SELECT scan_id, nope FROM data"},
        ["ok.parquet: query failed: Binder Error: Referenced column \"nope\" not found"]),
    "garbage Parquet file": (
        lambda t: {"path": str(_write(t, "scans.parquet", _binary()))},
        ["scans.parquet: could not be read as parquet: ", "magic bytes not found"]),
    "truncated Parquet file": (
        lambda t: {"path": str(_write(t, "cut.parquet", _parquet(t).read_bytes()[:300]))},
        ["cut.parquet: could not be read as parquet: "]),
    "binary file named .csv": (
        lambda t: {"path": str(_write(t, "scans.csv", _binary()))},
        ["scans.csv: binary content, not a text CSV file"]),
    "binary file queried as CSV": (
        lambda t: {"path": str(_write(t, "scans.csv", _binary())), "query": "SELECT * FROM data"},
        ["scans.csv: binary content, not a text CSV file"]),
    "Latin-1 CSV": (
        lambda t: {"path": str(_write(t, "scans.csv", _rows().replace("sex", "séx")
                                      .encode("latin-1")))},
        ["scans.csv: not UTF-8 text (found byte 0xe9); save the CSV as UTF-8"]),
    "a text file that is not the table": (
        lambda t: {"path": str(_write(t, "scans.csv", f"{SECRET}: root:x:0:0, /bin/sh\n"
                                                      "second line\n"))},
        ["scans.csv: none of the expected columns ('scan_id', 'score', 'y', 'sex', 'age') is "
         "in the table; found 2 columns, names not shown: the file does not look like this "
         "table"]),
    "garbage DuckDB file": (
        lambda t: {"path": str(_write(t, "scans.duckdb", _binary())), "query": "SELECT 1"},
        ["scans.duckdb: could not be read as a DuckDB database: IO Error: "]),
    "a directory": (
        lambda t: {"path": str((t / "scans.csv").mkdir() or t / "scans.csv")},
        ["scans.csv: is a directory, expected a CSV file"]),
    "a missing file": (
        lambda t: {"path": str(t / "nope.parquet")},
        ["nope.parquet: data file not found"]),
    "an empty CSV file": (
        lambda t: {"path": str(_write(t, "scans.csv", b""))},
        ["scans.csv: the file is empty (0 bytes)"]),
    "an empty Parquet file": (
        lambda t: {"path": str(_write(t, "scans.parquet", b""))},
        ["scans.parquet: the file is empty (0 bytes)"]),
    "an empty DuckDB file": (
        lambda t: {"path": str(_write(t, "scans.duckdb", b"")), "query": "SELECT 1"},
        ["scans.duckdb: the file is empty (0 bytes)"]),
    "a blank CSV file": (
        lambda t: {"path": str(_write(t, "scans.csv", "\n\n  \n"))},
        ["scans.csv: no columns: the file holds no header line"]),
}


def _protocol(tmp: Path, data: dict):
    spec = {"name": "t", "device": {"name": "d", "version": "1", "intended_use": "u",
                                    "intended_use_population": "adults"},
            "data": {**data, "columns": ROLES},
            "performance": {"metrics": ["sensitivity"], "threshold": 0.5},
            "report": {"title": "t"}}
    return spec


@pytest.mark.parametrize("case", list(CASES))
def test_bad_data_is_one_clear_line(tmp_path, case, capsys):
    build, expected = CASES[case]
    data = build(tmp_path)
    spec = _protocol(tmp_path, data)
    with pytest.raises(RWEError) as info:
        protocol_from_dict(spec, base_dir=tmp_path).load_data()
    messages = getattr(info.value, "messages", [str(info.value)])
    assert len(messages) == 1 and "\n" not in messages[0], messages
    for want in expected:
        assert want in messages[0], (want, messages[0])
    assert SECRET not in messages[0] and "root:x" not in messages[0]
    # the CLI: exit 2, the same line, no traceback
    import yaml

    proto = tmp_path / "p.yaml"
    proto.write_text(yaml.safe_dump(spec))
    assert main(["validate", str(proto)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"rwe: error: {messages[0]}"]


def test_a_categorical_feature_stays_categorical(tmp_path):
    # more than a few text cells: a genuinely categorical feature, not a typo
    df = pd.DataFrame({"s": np.linspace(0, 1, 40), "y": [0, 1] * 20,
                       "stage": ["1", "2", "3", "unknown"] * 10,
                       "smoker": ["yes", "no"] * 20})
    ev = EvaluationSet.from_frame(df, {"scores": {"v": "s"}, "label": "y",
                                       "features": ["stage", "smoker"]})
    assert ev.frame["stage"].dtype == object and ev.frame["smoker"].nunique() == 2
    # a Categorical column is categorical by declaration, whatever its values
    cat = df.assign(stage=pd.Categorical(["1"] * 39 + ["x"]))
    assert EvaluationSet.from_frame(cat, {"scores": {"v": "s"}, "label": "y",
                                          "features": ["stage"]}).n == 40


def test_stray_text_rule_boundary():
    # at most 5% of the non-missing cells (at least one): 2 of 40 is an error, 3 of 40 is not
    base = pd.DataFrame({"s": np.linspace(0, 1, 40), "y": [0, 1] * 20})
    roles = {"scores": {"v": "s"}, "label": "y", "features": ["bmi"]}
    two = [str(20 + i) for i in range(38)] + ["n/a ", "?"]
    with pytest.raises(DataValidationError) as info:
        EvaluationSet.from_frame(base.assign(bmi=two), roles, source="t.csv")
    assert info.value.messages == [
        "t.csv: column 'bmi' (feature): text in a numeric column (found 'n/a ', '?'): values "
        "must be numbers, an empty cell for a missing value; 2 offending rows, first: 39, 40"]
    three = [str(20 + i) for i in range(37)] + ["a", "b", "c"]
    assert EvaluationSet.from_frame(base.assign(bmi=three), roles).n == 40
    # missing cells are not text: an all-numeric column with gaps loads
    gaps = [None if i % 3 else str(i) for i in range(40)]
    assert EvaluationSet.from_frame(base.assign(bmi=gaps), roles).n == 40


def test_a_read_error_never_quotes_the_file(tmp_path):
    # the text-file case through the Python loader, with roles that share no column
    p = _write(tmp_path, "notes.csv", f"{SECRET} first line, of a letter\nDear ...\n")
    with pytest.raises(DataValidationError) as info:
        load_evaluation_set(p, ROLES)
    assert SECRET not in str(info.value) and "names not shown" in str(info.value)
    # a DataFrame from Python is the user's own: its columns are listed
    with pytest.raises(DataValidationError, match="available columns: 'a'"):
        EvaluationSet.from_frame(pd.DataFrame({"a": [1]}), ROLES)


def test_query_failure_while_fetching_is_one_line(tmp_path):
    src = DuckDBSource(":memory:", "SELECT CAST('x' AS INTEGER) AS a")
    with pytest.raises(DataValidationError) as info:
        src.read()
    (msg,) = info.value.messages
    assert msg.startswith(":memory:: query failed: Conversion Error: ") and "\n" not in msg
