"""rwe compare / rwe ledger: exit codes, what the terminal shows, and bad input (one line,
exit 2, nothing appended)."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cc_helpers import frame, write_protocol

from rwe.change_control import Ledger, test_set_sha256
from rwe.cli import main

ROOT = Path(__file__).resolve().parents[2]

CC = """\
  original_version: "1.0"
  reference_version: "1.0"
  candidate_version: "1.1"
  margins: {{auroc: 0.03}}
  cluster: none
  subgroups: false
  test_set: {{sha256: {sha}}}
  ledger: ledger.jsonl
{extra}"""


@pytest.fixture(scope="module")
def data():
    return frame(3000, seed=21, versions={"1.0": 1.0, "1.1": 0.7, "1.2": 2.5})


@pytest.fixture(scope="module")
def sha(data, tmp_path_factory):
    from cc_helpers import roles

    from rwe.data import EvaluationSet

    return test_set_sha256(EvaluationSet.from_frame(data, roles(["1.0", "1.1", "1.2"])))


def _proto(tmp_path, data, sha, extra="", **kw) -> Path:
    return write_protocol(tmp_path, data, CC.format(sha=sha, extra=extra), **kw)


def _run(*args, cwd=ROOT):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "rwe.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300, env=env)


def test_exit_codes_approve_reject_inconclusive(tmp_path, data, sha, capsys):
    p = _proto(tmp_path, data, sha)
    assert main(["compare", str(p), "--candidate", "1.1"]) == 0
    out = capsys.readouterr()
    assert "APPROVED: candidate 1.1 met every acceptance criterion" in out.out
    assert out.out.rstrip().splitlines()[-1].startswith("VERDICT: APPROVE (exit 0)")
    assert out.err == ""
    assert main(["compare", str(p), "--candidate", "1.2"]) == 3
    out = capsys.readouterr()
    assert out.out.splitlines()[1].strip() == ("REJECTED: candidate 1.2 is NOT approved - do "
                                               "not deploy it")
    assert out.err.strip() == "rwe: REJECTED: candidate 1.2 is NOT approved - do not deploy it"
    q = _proto(tmp_path, data, sha, extra="  min_n: 100000\n", name="q.yaml")
    text = q.read_text().replace("margins: {auroc: 0.03}",
                                 "criteria: [{metric: auroc, margin: 0.03, min_n: 1000000}]")
    q.write_text(text.replace("ledger: ledger.jsonl", "ledger: q.jsonl"))
    assert main(["compare", str(q)]) == 4
    out = capsys.readouterr()
    assert "INCONCLUSIVE: candidate 1.1 is NOT approved" in out.out
    entries = Ledger(tmp_path / "ledger.jsonl").entries()
    assert [e["verdict"] for e in entries] == ["APPROVE", "REJECT"]
    # after 1.1 was approved it is the current version
    assert entries[1]["versions"]["current"] == "1.1"


def test_real_process_exit_status_and_ledger_commands(tmp_path, data, sha):
    p = _proto(tmp_path, data, sha)
    r = _run("compare", str(p), "--candidate", "1.2", "--ledger", str(tmp_path / "x.jsonl"))
    assert r.returncode == 3 and "Traceback" not in r.stderr
    head = json.loads((tmp_path / "x.jsonl.head").read_text())["sha256"]
    assert f"entry 1, head {head}" in r.stdout
    r = _run("ledger", "verify", str(tmp_path / "x.jsonl"), "--head", head, "--protocol", str(p))
    assert r.returncode == 0
    assert r.stdout.splitlines()[0] == (f"OK  {tmp_path / 'x.jsonl'}: 1 entry, chain intact, "
                                        f"head {head}")
    r = _run("ledger", "show", str(tmp_path / "x.jsonl"))
    assert r.returncode == 0 and "REJECT" in r.stdout and "error budget: fixed" in r.stdout
    # an edited entry: verify names it, exit 2
    line = (tmp_path / "x.jsonl").read_text().replace('"verdict":"REJECT"',
                                                      '"verdict":"APPROVE"')
    (tmp_path / "x.jsonl").write_text(line)
    r = _run("ledger", "verify", str(tmp_path / "x.jsonl"))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip() == (f"rwe: error: {tmp_path / 'x.jsonl'}: entry 1 was edited: its "
                                "content does not match its sha256 "
                                f"{head[:12]}...")
    r = _run("ledger", "show", str(tmp_path / "x.jsonl"))
    assert r.returncode == 2 and "entry 1 was edited" in r.stderr


def _die_holding(path):
    led = Ledger(path)
    with led._locked():
        os.kill(os.getpid(), signal.SIGKILL)


def _bad_inputs(tmp_path, data, sha):
    """(name, argv, expected stderr fragment, ledger file that must stay unchanged)."""
    cases = []
    p = _proto(tmp_path, data, sha)
    led = tmp_path / "ledger.jsonl"
    assert main(["compare", str(p), "--candidate", "1.1"]) == 0  # one good entry
    cases.append(("candidate_absent", ["compare", str(p), "--candidate", "9.9"],
                  "candidate version '9.9' is absent from the data: not a key of "
                  "data.columns.scores and no change_control.models['9.9'].scores file", led))
    # scores of a new version in a file that misses cases
    s = data[["case"]].assign(s=data["s_1.1"]).iloc[:-5]
    s.to_csv(tmp_path / "s13.csv", index=False)
    extra = ("  models:\n    \"1.3\": {weights_sha256: " + "d" * 64
             + ", scores: {path: s13.csv, column: s}}\n")
    q = _proto(tmp_path, data, sha, extra=extra, name="q.yaml")
    cases.append(("different_case_sets", ["compare", str(q), "--candidate", "1.3"],
                  "scores of version '1.3' are not on the test set's cases: 5 of the 3,000 "
                  "test-set cases have no score (e.g. C002995, C002996, C002997)", led))
    wrong = _proto(tmp_path, data, "ab" * 32, name="w.yaml")
    line = next(i for i, t in enumerate(wrong.read_text().splitlines(), 1) if "test_set" in t)
    cases.append(("test_set_hash_mismatch", ["compare", str(wrong), "--candidate", "1.2"],
                  f"{wrong}:{line}: change_control.test_set.sha256: the test set has content "
                  f"sha256 {sha} (3,000 cases in data.csv), not the {'ab' * 32} the plan fixed",
                  led))
    other = _proto(tmp_path, data, sha, name="o.yaml")
    other.write_text(other.read_text().replace("auroc: 0.03", "auroc: 0.05"))
    cases.append(("ledger_from_another_plan", ["compare", str(other), "--candidate", "1.2"],
                  "not this protocol's plan", led))
    # truncated: the head file says two entries, the file holds one
    t = tmp_path / "t.jsonl"
    assert main(["compare", str(p), "--candidate", "1.1", "--ledger", str(t)]) == 0
    assert main(["compare", str(p), "--candidate", "1.2", "--ledger", str(t)]) == 3
    t.write_bytes(t.read_bytes().split(b"\n")[0] + b"\n")
    cases.append(("ledger_truncated", ["compare", str(p), "--candidate", "1.2", "--ledger",
                                       str(t)], "entries were removed from the end", t))
    cases.append(("ledger_verify_truncated", ["ledger", "verify", str(t)],
                  "entries were removed from the end (truncated)", t))
    e = tmp_path / "e.jsonl"
    e.write_bytes(led.read_bytes().replace(b'"verdict":"APPROVE"', b'"verdict":"REJECT"'))
    cases.append(("ledger_edited", ["compare", str(p), "--candidate", "1.2", "--ledger",
                                    str(e)], "entry 1 was edited", e))
    d = tmp_path / "d.jsonl"
    d.write_bytes(led.read_bytes())
    proc = mp.get_context("fork").Process(target=_die_holding, args=(str(d),))
    proc.start()
    proc.join(30)
    cases.append(("lock_of_a_dead_process", ["compare", str(p), "--candidate", "1.2",
                                             "--ledger", str(d)],
                  "which is no longer running: it died while appending", d))
    n = _proto(tmp_path, data, sha, name="n.yaml")
    n.write_text(n.read_text().replace("  ledger: ledger.jsonl\n", ""))
    cases.append(("no_ledger", ["compare", str(n), "--candidate", "1.2"],
                  f"{n}: no ledger: every comparison on the sequestered test set is recorded "
                  "(CHG-6); give --ledger FILE or set change_control.ledger", led))
    return cases


def test_bad_input_one_line_exit_2_nothing_appended(tmp_path, data, sha, capsys):
    for name, argv, expect, ledger in _bad_inputs(tmp_path, data, sha):
        before = ledger.read_bytes()
        capsys.readouterr()
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2, name
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("rwe: error: "), (name, err)
        assert expect in lines[0], (name, lines[0])
        assert ledger.read_bytes() == before, name


def test_bad_input_in_a_real_process(tmp_path, data, sha):
    p = _proto(tmp_path, data, sha)
    r = _run("compare", str(p), "--candidate", "9.9")
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "ledger.jsonl").exists()
    r = _run("ledger", "verify", str(tmp_path / "nothing.jsonl"))
    assert r.returncode == 2 and "no such ledger file" in r.stderr


def test_score_files_join_on_case_id(tmp_path, data, sha, capsys):
    s = data[["case"]].assign(s=data["s_1.1"]).sample(frac=1, random_state=3)
    s.to_csv(tmp_path / "s13.csv", index=False)
    extra = ("  models:\n    \"1.3\": {weights_sha256: " + "e" * 64
             + ", scores: {path: s13.csv, column: s}}\n")
    p = _proto(tmp_path, data, sha, extra=extra)
    assert main(["compare", str(p), "--candidate", "1.3"]) == 0
    e = Ledger(tmp_path / "ledger.jsonl").entries()[-1]
    assert e["models"]["1.3"]["weights_sha256"] == "e" * 64
    # the same numbers as the data's column 1.1, joined on the case id from a shuffled file
    from rwe.change_control import score_sha256
    from rwe.protocol import load_protocol

    ev = load_protocol(p).load_data()
    assert e["scores"]["1.3"] == score_sha256(ev.frame["case"].to_numpy(), ev.score("1.1"))
    assert np.isfinite(pd.Series(e["online"]).get("level"))
