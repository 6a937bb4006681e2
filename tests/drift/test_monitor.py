"""``rwe monitor``: incremental runs equal the batch analysis without recomputing history,
exit codes, the versioned state and the append-only alarm log (MON-6), and refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from rwe.cli import main
from rwe.datasets import make_demo
from rwe.drift import EXIT_ALARM, assess_drift, load_state, monitor, read_alarm_log
from rwe.drift._drift import drift_kwargs
from rwe.protocol import load_protocol
from rwe.stats.summaries import Summary

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """A small demo (30,000 scans, same effects) with the demo protocol pointing at it, and
    the scans split into a history file and one file per later month."""
    d = tmp_path_factory.mktemp("monitor")
    demo = make_demo(n_scans=30_000, n_training=5_000)
    demo.scans.to_parquet(d / "scans.parquet", index=False)
    demo.training.to_parquet(d / "training.parquet", index=False)
    text = (ROOT / "protocols" / "demo.yaml").read_text()
    text = text.replace("../datasets/demo/demo.parquet", str(d / "scans.parquet"))
    text = text.replace("../datasets/demo/training_snapshot.parquet",
                        str(d / "training.parquet"))
    text = text.replace("tests: [psi, ks, wasserstein, chi2, js, classifier]",
                        "tests: [psi, ks, wasserstein, chi2, js]")
    text = text.replace(", classifier: 0.55}", "}")
    # the discrimination chart is left out: with 150 scans per site and month its in-control
    # value (estimated on all sites) makes it a noisy chart for a small demo
    start = text.index("    - {metric: auroc, method: ewma")
    end = text.index("change_control:")
    text = text[:start] + "\n" + text[end:]
    (d / "p.yaml").write_text(text)
    month = demo.scans["scan_date"].dt.strftime("%Y-%m")
    demo.scans[month < "2025-01"].to_parquet(d / "history.parquet", index=False)
    for m in ("2025-01", "2025-02", "2025-03", "2025-04"):
        demo.scans[month == m].to_parquet(d / f"{m}.parquet", index=False)
    return d


def _cli(ws, data, state="state.json", capsys=None, extra=()):
    code = main(["monitor", str(ws / "p.yaml"), "--data", str(ws / data), "--state",
                 str(ws / state), *extra])
    out = capsys.readouterr() if capsys is not None else None
    return code, out


def test_monthly_runs_extend_the_charts_exactly_as_the_batch_run(ws, capsys):
    code, out = _cli(ws, "history.parquet", capsys=capsys)
    assert code == 0 and "initialized" in out.out and "no alarm" in out.out
    for m in ("2025-01", "2025-02"):
        code, out = _cli(ws, f"{m}.parquet", capsys=capsys)
        assert code == 0, out.err
    # from the scanner change on, S3 alarms (with 300 scans a month: within two months)
    codes, text = [], ""
    for m in ("2025-03", "2025-04"):
        code, out = _cli(ws, f"{m}.parquet", capsys=capsys)
        codes.append(code)
        text += out.out
        assert out.err == ""
    assert EXIT_ALARM in codes and set(codes) <= {0, EXIT_ALARM}
    assert "ALARM  cusum on calibration_intercept: site = S3 in 2025-0" in text
    assert "site = S1" not in text and "site = S2" not in text and "site = S4" not in text
    p = load_protocol(ws / "p.yaml")
    st = load_state(ws / "state.json", p)
    assert st["version"] == 5 and st["windows"][-1] == "2025-04" and len(st["windows"]) == 16
    assert [r["windows"][-1] for r in st["runs"]] == ["2024-12", "2025-01", "2025-02",
                                                      "2025-03", "2025-04"]
    # the batch analysis of all sixteen months with the state's reference and rules
    ev = p.load_data()
    ev = ev.subset((ev.window("month").astype(str) <= "2025-04").to_numpy())
    kw = drift_kwargs(p)
    kw.update(reference=Summary.from_dict(st["reference"]), baseline=None,
              _state={"rules": st["rules"], "charts": {}})
    batch = assess_drift(ev, **kw)
    key = ["rule", "group", "level", "window"]
    inc = pd.DataFrame(st["history"]["charts"]).sort_values(key).reset_index(drop=True)
    both = batch.charts.merge(inc[key], on=key, how="left", indicator=True)
    # the batch run also shows, as empty rows, a level before it first appeared (Canon)
    assert (both.loc[both["_merge"] == "left_only", "status"] == "no_data").all()
    bat = batch.charts.merge(inc[key], on=key).sort_values(key).reset_index(drop=True)
    assert len(bat) == len(inc) and (inc[key].to_numpy() == bat[key].to_numpy()).all()
    for c in ("upper", "lower", "z", "estimate"):
        assert_allclose(inc[c].to_numpy(float), bat[c].to_numpy(float), rtol=1e-9, atol=1e-12)
    assert (inc["alarm"].to_numpy() == bat["alarm"].to_numpy()).all()
    # the alarm log: one entry per alarm, hash-chained, and the state knows the last hash
    log = read_alarm_log(ws / "state.json.alarms.jsonl")
    assert len(log) == len(batch.alarms) and {e["level"] for e in log} == {"S3", "Canon"}
    assert st["alarm_log"]["last_hash"] == log[-1]["hash"] and log[0]["prev"] == "0" * 64
    assert all(e["protocol_sha256"] == p.sha256 and e["state_version"] in (4, 5) for e in log)


def test_history_is_never_recomputed_and_bad_state_is_refused(ws, capsys):
    if not (ws / "state.json").exists():
        pytest.skip("needs the state of the previous test")
    code, out = _cli(ws, "2025-02.parquet", capsys=capsys)
    assert code == 2 and out.out == ""
    assert out.err.count("\n") == 1 and "window 2025-02 was already processed (run 3)" in out.err
    # edited by hand
    st = json.loads((ws / "state.json").read_text())
    st["charts"][next(iter(st["charts"]))]["upper"] = 123.0
    (ws / "edited.json").write_text(json.dumps(st))
    code, out = _cli(ws, "2025-02.parquet", state="edited.json", capsys=capsys)
    assert code == 2 and "checksum mismatch: the file was edited by hand" in out.err
    # another protocol
    other = (ws / "p.yaml").read_text().replace("min_n: 30\n  alerts", "min_n: 31\n  alerts")
    (ws / "other.yaml").write_text(other)
    code = main(["monitor", str(ws / "other.yaml"), "--data", str(ws / "2025-02.parquet"),
                 "--state", str(ws / "state.json")])
    err = capsys.readouterr().err
    assert code == 2 and "this state belongs to protocol" in err and err.count("\n") == 1
    # not a state at all
    (ws / "junk.json").write_text("{\"a\": 1}")
    code, out = _cli(ws, "2025-02.parquet", state="junk.json", capsys=capsys)
    assert code == 2 and "not an rwe monitor state" in out.err
    # an edited alarm log
    log = ws / "state.json.alarms.jsonl"
    lines = log.read_text().splitlines()
    backup = log.read_text()
    lines[0] = lines[0].replace('"S3"', '"S1"')
    log.write_text("\n".join(lines) + "\n")
    code, out = _cli(ws, "2025-02.parquet", capsys=capsys)
    assert code == 2 and "hash chain is broken" in out.err
    log.write_text(backup)
    # nothing was written by the refused runs
    assert load_state(ws / "state.json")["version"] == 5


def test_a_month_without_labels_yet_is_estimated_and_not_charted(ws, tmp_path):
    p = load_protocol(ws / "p.yaml")
    new = pd.read_parquet(ws / "2025-04.parquet").assign(malignant=np.nan)
    state = tmp_path / "s.json"
    monitor(p, pd.read_parquet(ws / "history.parquet"), state)
    before = load_state(state, p)["charts"]
    run = monitor(p, new, state)
    perf = run.result.performance
    assert run.windows == ("2025-04",) and not run.alarmed
    est = perf[perf["window"] == "2025-04"]
    assert len(est) and est["estimated"].all()
    assert set(est["status"]) <= {"estimated", "no_data"}
    assert set(est["metric"]) == {"auroc", "sensitivity", "specificity"}
    diag = run.result.diagnostics
    seen = diag["level"] != "Canon"  # Canon first appears in 2025-03
    assert len(diag) and (diag.loc[seen, "last_labelled_window"] == "2024-12").all()
    assert diag.loc[~seen, "last_labelled_window"].isna().all()
    assert diag.loc[seen, "citl"].notna().all() and diag["outside_support_share"].notna().all()
    assert load_state(state, p)["charts"] == before  # estimates never enter a chart
    integ = run.result.integrity
    assert (integ.loc[integ["window"] == "2025-04", "unlabelled"] > 0).all()


def test_mixed_time_zones_are_one_line_errors(ws, capsys):
    df = pd.read_parquet(ws / "2025-04.parquet")
    ts = df["scan_date"].dt.strftime("%Y-%m-%dT%H:%M:%S").astype(object)
    ts.iloc[:5] = ts.iloc[:5] + "+02:00"
    df.assign(scan_date=ts).to_csv(ws / "tz.csv", index=False)
    code, out = _cli(ws, "tz.csv", state="tz_state.json", capsys=capsys)
    assert code == 2 and "Traceback" not in out.err
    assert "mixed timezones" in out.err and out.err.count("\n") == 1
    assert not (ws / "tz_state.json").exists()
