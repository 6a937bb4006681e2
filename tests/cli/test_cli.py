"""The rwe command: exit codes, one-line errors without tracebacks, help everywhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from rwe import __version__
from rwe.cli import main

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "protocols" / "demo.yaml"


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory) -> Path:
    """The demo protocol pointed at a 4,000-scan demo in a temporary directory."""
    from rwe.datasets import write_demo

    d = tmp_path_factory.mktemp("demo")
    paths = write_demo(d, n_scans=4000, n_training=1000)
    text = DEMO.read_text().replace("../datasets/demo/demo.parquet", str(paths["scans"])).replace(
        "../datasets/demo/training_snapshot.parquet", str(paths["training"]))
    p = d / "demo.yaml"
    p.write_text(text)
    return p


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rwe.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"rwe {__version__}"
    for cmd in ([], ["validate"], ["demo"], ["dossier"], ["compare"], ["ledger"], ["summarize"],
                ["merge"]):
        with pytest.raises(SystemExit) as e:
            main([*cmd, "--help"])
        assert e.value.code == 0
        assert "usage: rwe" in capsys.readouterr().out


def test_no_command_is_usage_error(capsys):
    assert main([]) == 2
    assert "usage: rwe" in capsys.readouterr().err


def test_unknown_option_exits_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["validate", "x.yaml", "--nope"])
    assert e.value.code == 2


def test_validate_ok_prints_summary(small_demo, capsys):
    assert main(["validate", str(small_demo)]) == 0
    out = capsys.readouterr().out
    assert f"OK  {small_demo}: protocol valid" in out
    assert "rows" in out and "4000" in out and "model versions" in out


def test_validate_protocol_only(small_demo, capsys):
    assert main(["validate", "--no-data", str(small_demo)]) == 0
    assert "rows" not in capsys.readouterr().out


def test_typo_in_protocol_one_line_per_problem_exit_2(small_demo, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(small_demo.read_text().replace("  threshold: 0.15", "  thresold: 0.15"))
    r = _run("validate", str(bad))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert lines == [
        f"rwe: error: {bad}:55: performance.threshold: required field is missing",
        f"rwe: error: {bad}:59: performance.thresold: unknown key 'thresold'; did you mean "
        "'threshold'? (allowed: version, metrics, threshold, confidence_level, "
        "proportion_interval, ci_method, horizon, n_boot, seed, multiplicity, heterogeneity_alpha, "
        "target_half_width, assumed_value, goals)"]


def test_bad_data_names_file_column_rule(small_demo, tmp_path, capsys):
    src = next(line.split(": ", 1)[1] for line in small_demo.read_text().splitlines()
               if line.startswith("  path: "))
    df = pd.read_parquet(src)
    score = df["score_v1_0"].to_numpy(copy=True)
    score[[9, 99]] = 1.7
    df = df.assign(score_v1_0=score)
    data = tmp_path / "scans.parquet"
    df.to_parquet(data, index=False)
    proto = tmp_path / "p.yaml"
    proto.write_text(small_demo.read_text().replace(src, str(data)))
    assert main(["validate", str(proto)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["rwe: error: scans.parquet: column 'score_v1_0' (score of model version 1.0): "
                   "probabilities must lie in [0, 1]; 2 offending rows, first: 10, 100"]


def test_missing_protocol_file(capsys):
    assert main(["validate", "no/such/protocol.yaml"]) == 2
    assert capsys.readouterr().err.strip() == (
        "rwe: error: no/such/protocol.yaml: protocol file not found")


def test_missing_data_file(small_demo, tmp_path, capsys):
    proto = tmp_path / "p.yaml"
    src = next(line.split(": ", 1)[1] for line in small_demo.read_text().splitlines()
               if line.startswith("  path: "))
    proto.write_text(small_demo.read_text().replace(src, str(tmp_path / "gone.parquet")))
    assert main(["validate", str(proto)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"rwe: error: {tmp_path / 'gone.parquet'}: data file not found")


def test_summarize_needs_a_federation_section(small_demo, tmp_path, capsys):
    out = tmp_path / "s1.summary"
    assert main(["summarize", str(small_demo), "--site", "S1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"rwe: error: {small_demo}: rwe summarize needs the protocol's federation "
                   "section (federation.score_bins: the declared resolution of site summaries)")
    assert not out.exists()


@pytest.mark.parametrize("cmd", [["summarize", "p.yaml"], ["merge", "a.summary"]])
def test_federated_commands_need_their_options(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main(cmd)
    assert e.value.code == 2
    assert "the following arguments are required" in capsys.readouterr().err


def test_demo_summary_only_on_the_bundled_demo():
    r = _run("demo", "--summary-only")
    assert r.returncode == 0, r.stderr
    assert "lung-nodule-cadx-us-rwe-2026" in r.stdout
    assert "100000" in r.stdout and "73499" in r.stdout  # rows, patients (data card)
