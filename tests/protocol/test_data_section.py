"""The protocol's data section: column roles (rwe.data.ColumnRoles), derived age bands and
calendar windows, with line-numbered errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rwe.data import ColumnRoles, DuckDBSource, ParquetSource
from rwe.exceptions import ProtocolError
from rwe.protocol import AgeBandSpec, WindowSpec, load_protocol, protocol_from_dict

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "protocols" / "demo.yaml"
BAND = "age_band: {from: age, cuts: [50, 65, 80]}"


def _messages(tmp_path, text: str) -> tuple[Path, list[str]]:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(ProtocolError) as info:
        load_protocol(path)
    return path, info.value.messages


def _line_of(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), 1) if needle in ln)


def test_typo_in_a_column_role_has_line_and_suggestion(tmp_path):
    text = DEMO.read_text().replace("    scores:\n", "    scroes:\n")
    path, msgs = _messages(tmp_path, text)
    assert msgs == [
        f"{path}:{_line_of(text, 'scroes:')}: data.columns.scroes: unknown key 'scroes'; did you "
        "mean 'scores'? (allowed: id, patient_id, scores, label, time, event, timestamp, site, "
        "equipment, attributes, features)"]


def test_roles_are_column_roles_with_derived_attributes_and_the_hash_is_unchanged():
    p = load_protocol(DEMO)
    assert isinstance(p.data.columns, ColumnRoles)
    roles = p.roles()
    assert isinstance(roles, ColumnRoles) and roles.attributes[-1] == "age_band"
    assert p.data.columns.attributes == ("sex", "race", "ethnicity", "smoking_status")
    # the canonical form (hashed) still writes the roles as the YAML does
    raw = yaml.safe_load(DEMO.read_text())["data"]["columns"]
    assert p.model_dump(mode="json", by_alias=True, exclude_unset=True)["data"]["columns"] == raw
    src = p.data_source()
    assert isinstance(src, ParquetSource) and src.path == (ROOT / "datasets/demo/demo.parquet")


def _with_window(spec: str) -> str:
    return DEMO.read_text().replace(BAND, f"{BAND}\n    month: {spec}")


def test_a_window_is_a_derived_grouping_attribute():
    text = _with_window("{from: scan_date, window: month}").replace(
        "attributes: [sex, race, ethnicity, age_band, site, scanner_vendor]",
        "attributes: [sex, race, ethnicity, age_band, site, scanner_vendor, month]")
    data = yaml.safe_load(text)
    p = protocol_from_dict(data, base_dir=DEMO.parent)
    assert isinstance(p.data.derived["month"], WindowSpec)
    assert isinstance(p.data.derived["age_band"], AgeBandSpec)
    assert p.derived_spec()["month"] == {"from": "scan_date", "window": "month"}
    assert p.roles().attributes[-2:] == ("age_band", "month")
    assert "month" in p.subgroups.attributes


@pytest.mark.parametrize("spec, where, message", [
    ("{from: scan_date, window: yearly}", "month.window",
     "Input should be 'week', 'month' or 'quarter' (got 'yearly')"),
    ("{from: age, window: month}", "month.from",
     "a calendar window comes from the timestamp column (data.columns.timestamp: 'scan_date'), "
     "got from: 'age'"),
    ("{from: scan_date, window: month, tz: utc}", "month.tz",
     "unknown key 'tz' (allowed: from, window)"),
    ("{from: scan_date, windw: month}", "month.windw",
     "unknown key 'windw'; did you mean 'window'? (allowed: from and either cuts or window)"),
    ("{from: scan_date, window: month, cuts: [1]}", "month",
     "a derived attribute is {from: <numeric column>, cuts: [...]} (bands) or {from: <timestamp "
     "column>, window: week | month | quarter}; give cuts or window, not both"),
    ("{from: scan_date}", "month", "; cuts or window is missing"),
    ("3", "month", "; got int"),
])
def test_window_spec_errors(tmp_path, spec, where, message):
    text = _with_window(spec)
    path, msgs = _messages(tmp_path, text)
    line = _line_of(text, "month: " + spec[:5])
    assert len(msgs) == 1 and msgs[0].startswith(f"{path}:{line}: data.derived.{where}: ")
    assert message in msgs[0]


def test_band_errors_keep_their_paths(tmp_path):
    text = DEMO.read_text().replace(BAND, "age_band: {from: age, cutz: [50, 65]}")
    path, msgs = _messages(tmp_path, text)
    assert msgs == [f"{path}:{_line_of(text, 'cutz')}: data.derived.age_band.cutz: unknown key "
                    "'cutz'; did you mean 'cuts'? (allowed: from and either cuts or window)"]
    text = DEMO.read_text().replace(BAND, "age_band: {from: age, cuts: [50, x]}")
    path, msgs = _messages(tmp_path, text)
    assert msgs == [f"{path}:{_line_of(text, 'cuts: [50, x]')}: data.derived.age_band.cuts[1]: "
                    "Input should be a valid number, unable to parse string as a number "
                    "(got 'x')"]


def test_window_needs_a_timestamp_role(tmp_path):
    text = _with_window("{from: scan_date, window: week}").replace("    timestamp: scan_date\n",
                                                                    "")
    path, msgs = _messages(tmp_path, text)
    assert msgs == [f"{path}:{_line_of(text, 'month: {from')}: data.derived.month.from: a "
                    "calendar window needs data.columns.timestamp, which is not set, got from: "
                    "'scan_date'"]


def test_outcome_and_score_rules_are_the_data_sections(tmp_path):
    text = DEMO.read_text().replace('      "1.0": score_v1_0\n      "1.1": score_v1_1\n', "")
    text = text.replace("    scores:\n", "    scores: {}\n")
    path, msgs = _messages(tmp_path, text)
    assert msgs == [f"{path}:{_line_of(text, 'columns:')}: data.columns: give at least one score "
                    "column (scores: {version: column})"]
    text = DEMO.read_text().replace("path: ../datasets/demo/demo.parquet", "path: '  '")
    path, msgs = _messages(tmp_path, text)
    assert msgs[0].startswith(f"{path}:{_line_of(text, 'path:')}: data.path: the path is empty")


def test_load_data_goes_through_a_source(tmp_path):
    import duckdb
    import pandas as pd

    df = pd.DataFrame({"id": range(40), "s": [i / 40 for i in range(40)], "y": [0, 1] * 20,
                       "ts": pd.date_range("2024-01-01", periods=40, freq="5D"),
                       "age": range(30, 70)})
    con = duckdb.connect(str(tmp_path / "d.duckdb"))
    con.register("df", df)
    con.execute("CREATE TABLE t AS SELECT * FROM df")
    con.close()
    spec = {"name": "t", "device": {"name": "d", "version": "1", "intended_use": "u",
                                    "intended_use_population": "adults"},
            "data": {"path": "d.duckdb", "query": "SELECT * FROM t WHERE id < 30",
                     "columns": {"id": "id", "scores": {"a": "s"}, "label": "y",
                                 "timestamp": "ts", "features": ["age"]},
                     "derived": {"age_band": {"from": "age", "cuts": [50]},
                                 "month": {"from": "ts", "window": "month"}}},
            "subgroups": {"attributes": ["age_band", "month"]},
            "performance": {"metrics": ["sensitivity"], "threshold": 0.5},
            "report": {"title": "t"}}
    p = protocol_from_dict(spec, base_dir=tmp_path)
    assert isinstance(p.data_source(), DuckDBSource)
    ev = p.load_data()
    assert ev.n == 30 and ev.source_fingerprint["query"] == "SELECT * FROM t WHERE id < 30"
    assert list(ev.attribute("month").cat.categories) == ["2024-01", "2024-02", "2024-03",
                                                          "2024-04", "2024-05"]
    assert set(ev.roles.attributes) == {"age_band", "month"}
    # comparison rows without timestamps: bands derived, windows skipped
    df.drop(columns=["ts"]).to_parquet(tmp_path / "ref.parquet", index=False)
    rows = p.load_rows("ref.parquet")
    assert "age_band" in rows.columns and "month" not in rows.columns


# ------------------------------------------------------------------ engine: dask
DATA_PATH = "  path: ../datasets/demo/demo.parquet\n"


def _engine(block: str) -> str:
    return DEMO.read_text().replace(DATA_PATH, DATA_PATH + block)


def test_the_dask_engine_and_its_cluster_are_part_of_the_data_section(tmp_path):
    from rwe.protocol import DaskSpec

    p = load_protocol(DEMO)
    assert p.data.engine == "pandas" and p.data.dask is None
    path = tmp_path / "p.yaml"
    path.write_text(_engine("  engine: dask\n  dask: {workers: 3, memory_limit: 2GiB}\n")
                    .replace("../datasets", str(ROOT / "datasets")))
    p = load_protocol(path)
    assert p.data.engine == "dask" and p.data.dask == DaskSpec(workers=3, memory_limit="2GiB")
    assert p.data.dask.scheduler == "local" and p.data.dask.timeout == 10
    remote = DaskSpec(scheduler=" tcp://10.0.0.5:8786 ")
    assert remote.scheduler == "tcp://10.0.0.5:8786"
    assert DaskSpec(scheduler="scheduler-host:8786").scheduler == "scheduler-host:8786"


@pytest.mark.parametrize("block, where, message", [
    ("  dask: {workers: 2}\n", "data", "dask (the cluster) is set but engine is pandas; set "
     "engine: dask to read the data in partitions"),
    ("  engine: spark\n", "data.engine", "Input should be 'pandas' or 'dask' (got 'spark')"),
    ("  engine: dask\n  query: SELECT * FROM data\n", "data", "engine: dask reads CSV or "
     "Parquet files in partitions; a DuckDB query reads one table (drop the query, or engine: "
     "pandas)"),
    ("  engine: dask\n  dask: {scheduler: tcp://h:8786, workers: 4}\n", "data.dask",
     "workers sets up a local cluster; a running scheduler (scheduler: tcp://h:8786) has its "
     "own workers"),
    ("  engine: dask\n  dask: {scheduler: 'not an address'}\n", "data.dask.scheduler",
     "the scheduler is 'local' or an address such as tcp://HOST:PORT (got 'not an address')"),
    ("  engine: dask\n  dask: {workers: 0}\n", "data.dask.workers",
     "Input should be greater than or equal to 1 (got 0)"),
    ("  engine: dask\n  dask: {memory_limit: lots}\n", "data.dask.memory_limit",
     "String should match pattern"),
    ("  engine: dask\n  dask: {worker: 2}\n", "data.dask.worker", "unknown key 'worker'; did "
     "you mean 'workers'? (allowed: scheduler, workers, threads_per_worker, memory_limit, "
     "timeout)"),
])
def test_dask_engine_errors_name_their_field(tmp_path, block, where, message):
    text = _engine(block)
    path, msgs = _messages(tmp_path, text)
    assert len(msgs) == 1
    line = _line_of(text, block.split("\n")[-2].strip().split(":")[0] + ":") if "." in where \
        else None
    assert msgs[0].startswith(f"{path}:"), msgs
    assert f": {where}: {message}" in msgs[0], msgs
    if line is not None:
        assert msgs[0].startswith(f"{path}:{line}: "), msgs


def test_a_database_source_is_not_read_by_the_dask_engine():
    with pytest.raises(ProtocolError, match="engine: dask reads files"):
        d = yaml.safe_load(DEMO.read_text())
        d["data"].pop("path")
        d["data"]["source"] = {"kind": "sql", "url": "duckdb::memory:", "query": "SELECT 1"}
        d["data"]["engine"] = "dask"
        protocol_from_dict(d, base_dir=ROOT / "protocols")


def test_load_data_refuses_the_dask_engine_naming_the_field(tmp_path):
    text = _engine("  engine: dask\n").replace("../datasets", str(ROOT / "datasets"))
    path = tmp_path / "p.yaml"
    path.write_text(text)
    p = load_protocol(path)
    with pytest.raises(ProtocolError) as e:
        p.load_data()
    assert e.value.messages == [
        f"{path}:{_line_of(text, 'engine: dask')}: data.engine: dask keeps the rows in their "
        "partitions, and this needs them in memory as one table (the dossier, change control, "
        "monitoring and row-level checks); run it with engine: pandas (subgroup performance, "
        "representativeness, drift and rwe summarize run from partitions)"]
