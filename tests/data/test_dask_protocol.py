"""The protocol route to dask (issue 20): ``data: {path: "parts/*.parquet", engine: dask}``
read by subgroup performance, representativeness and drift as partitions on a
dask.distributed cluster (the session's LocalCluster of worker processes, by its address; or
one rwe starts and closes), with the results of the same files read in memory.

Tolerances as tests/data/test_dask.py: counts exactly, every other number to rtol 1e-10
(floating-point summation order only).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_dask import RTOL, _tables_equal

from rwe.exceptions import DataValidationError, InvalidParameterError
from rwe.protocol import load_protocol

pytest.importorskip("dask.dataframe")
ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "protocols" / "demo.yaml"


def write_protocol(d: Path, *, engine: str = "dask", dask: dict | None = None,
                   drift: dict | None = None, path: str = "parts/*.parquet",
                   performance: dict | None = None) -> Path:
    """The demo protocol reading ``d/parts/*.parquet`` (reference rows and reference
    population as the demo's)."""
    spec = yaml.safe_load(DEMO.read_text())
    spec["data"]["path"] = path
    spec["data"]["reference_rows"] = str(ROOT / "datasets/demo/training_snapshot.parquet")
    if engine != "pandas":
        spec["data"]["engine"] = engine
    if dask is not None:
        spec["data"]["dask"] = dask
    if drift:
        spec["drift"].update(drift)
    if performance:
        spec["performance"].update(performance)
    out = d / f"{engine}-{len(list(d.glob('*.yaml')))}.yaml"
    out.write_text(yaml.safe_dump(spec, sort_keys=False))
    return out


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """The demo rows as 5 parquet files of uneven size, sorted by site and date (files see
    different sites, months and categories)."""
    p = load_protocol(DEMO)
    df = pd.read_parquet(p.resolve(p.data.path)).sort_values(["site", "scan_date"],
                                                             kind="stable")
    d = tmp_path_factory.mktemp("proto")
    (d / "parts").mkdir()
    cuts = [0, 12_000, 40_000, 40_500, 77_000, len(df)]
    for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
        df.iloc[a:b].to_parquet(d / "parts" / f"part-{i}.parquet", index=False)
    return d


@pytest.fixture(scope="module")
def protocols(parts, dask_client):
    """The same files read in memory (engine: pandas) and as partitions on the session's
    cluster (engine: dask, by its scheduler's address)."""
    mem = load_protocol(write_protocol(parts, engine="pandas"))
    dsk = load_protocol(write_protocol(parts, dask={"scheduler": dask_client.scheduler.address}))
    return mem, dsk


def test_subgroup_performance_from_a_dask_protocol(protocols):
    from rwe.subgroups import subgroup_performance_from_protocol

    mem, dsk = protocols
    want = subgroup_performance_from_protocol(mem, cluster_intervals=False)
    got = subgroup_performance_from_protocol(dsk)
    _tables_equal(want.table, got.table, ["metric", "group", "level"], "table")
    _tables_equal(want.goals, got.goals, ["metric", "scope", "version", "group", "level"],
                  "goals")
    assert [(v.id, v.status) for v in got.verdicts] == [(v.id, v.status) for v in want.verdicts]
    # the rows repeat patients; the partitions have no patient index: said, not hidden
    assert "subgroups.not_cluster_adjusted" in [f.code for f in got.findings]


def test_representativeness_from_a_dask_protocol(protocols):
    from rwe.representativeness import representativeness_from_protocol
    from rwe.stats.summaries import summarize

    mem, dsk = protocols
    ev = mem.load_data()
    want = representativeness_from_protocol(mem, summarize(ev, mem.summary_spec()))
    got = representativeness_from_protocol(dsk)
    for name in ("shares", "tests", "coverage", "adequacy", "sites", "missingness", "smd"):
        pd.testing.assert_frame_equal(getattr(got, name), getattr(want, name), rtol=RTOL,
                                      obj=name)
    assert [(v.id, v.status) for v in got.verdicts] == [(v.id, v.status) for v in want.verdicts]
    # Tipton's B needs the rows: not computed, saying why and naming the protocol field
    why = got.tipton_reason
    line = next(i for i, t in enumerate(dsk.path.read_text().splitlines(), 1)
                if t.strip() == "engine: dask")
    assert why == ("it needs individual rows of both populations (a sampling-propensity model "
                   "on individual covariates) and the cohort was given as a summary; "
                   f"{dsk.path}:{line}: data.engine is dask: the rows stay in their partitions")


def test_drift_from_a_dask_protocol(protocols):
    from rwe.drift import drift_from_protocol

    mem, dsk = protocols
    tests = [t for t in mem.drift.tests if t != "classifier"]
    want = drift_from_protocol(mem, tests=tests)
    got = drift_from_protocol(dsk)
    key = ["role", "feature", "test", "window", "group", "level"]
    _tables_equal(want.drift, got.drift, key, "drift")
    _tables_equal(want.performance, got.performance, ["metric", "window", "group", "level"],
                  "performance")
    pd.testing.assert_frame_equal(got.alarms.reset_index(drop=True),
                                  want.alarms.reset_index(drop=True), rtol=RTOL)
    # the classifier test the protocol lists needs rows: not evaluable, saying why
    row = got.classifier.iloc[0]
    assert row["reason"].startswith("the classifier test needs rows of both samples (not "
                                    "summaries); ") and row["reason"].endswith(
        ": data.engine is dask: the rows stay in their partitions")
    clf = [v for v in got.verdicts if v.id.startswith("drift.classifier")]
    assert [v.status for v in clf] == ["not_evaluable"]
    assert [(v.id, v.status) for v in got.verdicts if v not in clf] == [
        (v.id, v.status) for v in want.verdicts if not v.id.startswith("drift.classifier")]


def test_what_needs_rows_is_refused_at_its_protocol_field(parts, dask_client):
    from rwe.drift import DriftError, drift_from_protocol
    from rwe.subgroups import subgroup_performance_from_protocol

    address = {"scheduler": dask_client.scheduler.address}
    p = load_protocol(write_protocol(parts, dask=address, drift={"exact": True}))
    text = p.path.read_text().splitlines()

    def line(needle):
        return next(i for i, t in enumerate(text, 1) if t.strip().startswith(needle))

    engine = f"{p.path}:{line('engine: dask')}: data.engine is dask"
    with pytest.raises(DriftError) as e:
        drift_from_protocol(p)
    assert str(e.value) == (f"{p.path}:{line('exact:')}: drift.exact: exact=True needs rows of "
                            "the reference and of the current data (not summaries); "
                            f"{engine}: the rows stay in their partitions")
    p = load_protocol(write_protocol(parts, dask=address, drift={"reference": None}))
    spec = yaml.safe_load(p.path.read_text())
    spec["data"].pop("reference_rows")
    spec["drift"].pop("reference")
    p.path.write_text(yaml.safe_dump(spec, sort_keys=False))
    p = load_protocol(p.path)
    text = p.path.read_text().splitlines()
    with pytest.raises(DriftError) as e:
        drift_from_protocol(p)
    assert str(e.value).startswith(f"{p.path}:{line('reference_period:')}: drift."
                                   "reference_period: reference: a period of a dask table "
                                   "cannot fix the feature bins")
    assert str(e.value).endswith(": data.engine is dask: the rows stay in their partitions")
    p = load_protocol(write_protocol(parts, dask=address))
    with pytest.raises(InvalidParameterError) as e:
        subgroup_performance_from_protocol(p, cluster_intervals=True)
    text = p.path.read_text().splitlines()
    assert str(e.value) == ("cluster_intervals=True needs every patient's rows together; "
                            f"{p.path}:{line('engine: dask')}: data.engine is dask: the rows "
                            "stay in their partitions (patients may span partitions): pass "
                            "False or 'auto'")


def test_a_survival_metric_is_refused_at_its_line(tmp_path, dask_client):
    """A metric refitted on rows (survival) is named at performance.metrics[i]."""
    from rwe.subgroups import subgroup_performance_from_protocol

    p = load_protocol(DEMO)
    df = pd.read_parquet(p.resolve(p.data.path)).iloc[:3000].copy()
    df["t"] = 1.0 + (df.index % 7)
    df["e"] = df["malignant"]
    (tmp_path / "parts").mkdir()
    df.to_parquet(tmp_path / "parts" / "a.parquet", index=False)
    spec = yaml.safe_load(DEMO.read_text())
    spec["data"].update(path="parts/*.parquet", engine="dask",
                        dask={"scheduler": dask_client.scheduler.address},
                        reference_rows=str(ROOT / "datasets/demo/training_snapshot.parquet"))
    spec["data"]["columns"].update(time="t", event="e")
    spec["performance"]["metrics"] = ["auroc", "harrell_c"]
    spec["performance"]["goals"] = [g for g in spec["performance"]["goals"]
                                    if g["metric"] == "auroc"]
    spec["performance"]["horizon"] = 5.0
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    p = load_protocol(path)
    text = path.read_text().splitlines()
    i = next(i for i, t in enumerate(text, 1) if t.strip() == "- harrell_c")
    j = next(i for i, t in enumerate(text, 1) if t.strip() == "engine: dask")
    with pytest.raises(InvalidParameterError) as e:
        subgroup_performance_from_protocol(p)
    assert str(e.value).startswith(f"{path}:{i}: performance.metrics[1]: metric 'harrell_c' "
                                   "needs individual rows (survival metric")
    assert str(e.value).endswith(f"; {path}:{j}: data.engine is dask: the rows stay in their "
                                 "partitions")


def test_a_local_cluster_is_started_for_the_call_and_closed_after_it(parts):
    psutil = pytest.importorskip("psutil")
    from rwe.subgroups import subgroup_performance_from_protocol

    p = load_protocol(write_protocol(parts, dask={"workers": 2, "threads_per_worker": 1}))
    me = psutil.Process()

    def workers_now() -> set[int]:  # processes multiprocessing spawned (not its helpers)
        out = set()
        for c in me.children(recursive=True):
            try:
                if "spawn_main" in " ".join(c.cmdline()):
                    out.add(c.pid)
            except psutil.Error:
                pass
        return out

    before = workers_now()
    seen: set[int] = set()
    import threading

    stop = threading.Event()

    def watch():
        while not stop.is_set():
            seen.update(workers_now())
            stop.wait(0.05)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        res = subgroup_performance_from_protocol(p, by=["site"])
    finally:
        stop.set()
        t.join()
    assert int(res.table["n"].iloc[0]) == 100_000
    workers = seen - before
    assert len(workers) >= 2  # the worker processes rwe started
    alive = workers_now() & workers
    for pid in alive:  # closed: gone (or exiting) once the call returns
        with pytest.raises(psutil.NoSuchProcess):
            psutil.Process(pid).wait(timeout=10)


def test_bad_inputs_are_one_line(parts, dask_client, tmp_path):
    from rwe.subgroups import subgroup_performance_from_protocol

    address = {"scheduler": dask_client.scheduler.address}
    p = load_protocol(write_protocol(parts, dask=address, path="parts/*.csv"))
    with pytest.raises(DataValidationError) as e:
        subgroup_performance_from_protocol(p)
    assert e.value.messages == [f"data.path 'parts/*.csv': {parts / 'parts' / '*.csv'}: the "
                                "pattern matches no file"]
    # a column missing in one partition: named with its file, before any row is read
    d = tmp_path / "parts"
    d.mkdir()
    df = pd.read_parquet(parts / "parts" / "part-3.parquet")
    df.to_parquet(d / "part-0.parquet", index=False)
    df.drop(columns=["scanner_vendor"]).to_parquet(d / "part-1.parquet", index=False)
    p = load_protocol(write_protocol(tmp_path, dask=address))
    with pytest.raises(DataValidationError) as e:
        subgroup_performance_from_protocol(p)
    assert len(e.value.messages) == 1 and e.value.messages[0].startswith(
        "part-1.parquet: column 'scanner_vendor' not found; columns found: ")
    # an unreachable scheduler: one line naming the field and the address
    p = load_protocol(write_protocol(parts, dask={"scheduler": "tcp://127.0.0.1:9",
                                                  "timeout": 1}))
    text = p.path.read_text().splitlines()
    line = next(i for i, t in enumerate(text, 1) if t.strip().startswith("scheduler:"))
    with pytest.raises(DataValidationError) as e:
        subgroup_performance_from_protocol(p)
    assert len(e.value.messages) == 1 and e.value.messages[0].startswith(
        f"{p.path}:{line}: data.dask.scheduler: cannot reach the dask scheduler at "
        "tcp://127.0.0.1:9: ")


def test_the_cli_refuses_what_needs_rows_in_one_line(parts, capsys):
    from rwe.cli import main

    p = write_protocol(parts, dask={"workers": 1})
    assert main(["dossier", str(p), "--out", str(parts / "dossier")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"rwe: error: {p}:") and (
        ": data.engine: dask keeps the rows in their partitions, and this needs them in "
        "memory as one table") in err[0]
    assert not (parts / "dossier").exists()


def test_the_fingerprint_of_the_partitions_records_the_files_and_rows(protocols, parts):
    _, dsk = protocols
    with dsk.open_data() as dev:
        dev.summarize(dsk.summary_spec())
        fp = dev.data_source.fingerprint()
    assert [f["file"] for f in fp["files"]] == [f"part-{i}.parquet" for i in range(5)]
    assert fp["rows"] == 100_000 and fp["kind"] == "files"
    assert json.dumps(fp)  # plain values (provenance records)


def test_rwe_validate_checks_every_row_on_the_cluster(parts, dask_client, capsys, tmp_path):
    from rwe.cli import main

    p = write_protocol(parts, dask={"scheduler": dask_client.scheduler.address})
    assert main(["validate", str(p)]) == 0
    out = capsys.readouterr().out
    assert f"OK  {p}: protocol valid" in out
    for fact in ("rows                             100000", "partitions  ", "events (label = 1)",
                 "site levels", "sex: levels (missing)"):
        assert fact.split("  ")[0] in out
    assert "100000" in out and "partitions" in out
    # a bad row in one file: one line naming the file, exit 2
    d = tmp_path / "parts"
    d.mkdir()
    df = pd.read_parquet(parts / "parts" / "part-0.parquet")
    df.to_parquet(d / "part-0.parquet", index=False)
    df.loc[df.index[3], "malignant"] = 7
    df.to_parquet(d / "part-1.parquet", index=False)
    bad = write_protocol(tmp_path, dask={"scheduler": dask_client.scheduler.address})
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rwe: error: part-1.parquet: column "
                                               "'malignant'"), err


def test_bad_inputs_at_the_command_line_are_one_line_and_exit_2(parts, capsys):
    from rwe.cli import main

    for kw in ({"path": "parts/*.csv", "dask": {"workers": 1}},
               {"dask": {"scheduler": "tcp://127.0.0.1:9", "timeout": 1}}):
        p = write_protocol(parts, **kw)
        assert main(["validate", str(p)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("rwe: error: "), err
        assert ("the pattern matches no file" in err[0]) or (
            "data.dask.scheduler: cannot reach the dask scheduler at tcp://127.0.0.1:9" in err[0])
