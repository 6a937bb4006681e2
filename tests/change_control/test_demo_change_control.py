"""The demo update v1.1 vs v1.0 (datasets/demo/README.md, effect d): better for Black patients,
worse in discrimination for age 80+; under the demo protocol's criteria the update is
REJECTED, and the age 80+ loss of discrimination is what rejects it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rwe.change_control import REJECT, Ledger, compare_from_protocol, test_set_sha256
from rwe.datasets import ensure_demo
from rwe.protocol import load_protocol
from rwe.stats import auc_delong, online_test

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "protocols" / "demo.yaml"
BLACK = "Black or African American"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    ensure_demo()
    p = load_protocol(DEMO)
    ev = p.load_data()
    ledger = tmp_path_factory.mktemp("ledger") / "ledger.jsonl"
    return p, ev, compare_from_protocol(p, ev, candidate="1.1", ledger=ledger), ledger


def test_demo_plan_is_valid_and_complete():
    p = load_protocol(DEMO)
    cc = p.change_control
    assert [c.key for c in cc.all_criteria()] == ["auroc", "sensitivity", "specificity",
                                                  "sensitivity_goal", "calibration_slope"]
    # the order names two criteria; the others follow, one step each, as written
    assert cc.steps() == [["auroc"], ["sensitivity"], ["specificity"], ["sensitivity_goal"],
                          ["calibration_slope"]]
    assert cc.online.procedure == "alpha_investing" and cc.test_set.max_looks == 10
    assert cc.models["1.1"].weights_sha256.startswith("21285545")
    assert cc.subgroups == ["sex", "race", "age_band", "site"] and cc.min_events == 50


def _cell(res, criterion, group, level):
    t = res.table
    return t[(t["criterion"] == criterion) & (t["group"] == group) &
             (t["level"] == level)].iloc[0]


def test_the_verdict_follows_from_the_demo_criteria(demo):
    p, ev, res, _ = demo
    assert res.verdict == REJECT and res.exit_code == 3
    assert res.candidate == "1.1" and res.current == res.original == "1.0"
    # the first gate (AUROC non-inferiority, margin 0.02, every subgroup) fails in one cell:
    # age 80+; the later steps are not evaluated
    crit = res.criteria.set_index("criterion")
    assert crit.loc["auroc", "status"] == "fail" and crit.loc["auroc", "cells_fail"] == 1
    assert (crit.drop(index="auroc")["status"] == "not_evaluated").all()
    failed = res.table[res.table["status"] == "fail"]
    assert list(zip(failed["group"], failed["level"], strict=True)) == [("age_band", "80+")]
    # the level is the first alpha-investing level at the protocol's alpha
    first = online_test([], procedure="alpha_investing", alpha=0.025).next_level
    assert res.level == pytest.approx(first, rel=1e-12) and round(res.level, 5) == 0.00544


def test_age_80_loses_discrimination_as_built(demo):
    _, ev, res, _ = demo
    r = _cell(res, "auroc", "age_band", "80+")
    old = ev.frame["age_band"].astype(str).to_numpy() == "80+"
    y = ev.y_true[old]
    a11, a10 = auc_delong(y, ev.score("1.1")[old]).auc, auc_delong(y, ev.score("1.0")[old]).auc
    assert r.candidate_value == pytest.approx(a11, rel=1e-12)
    assert r.comparator_value == pytest.approx(a10, rel=1e-12)
    # data card: AUROC age 80+ v1.0 0.919, v1.1 0.898, difference -0.021; 6,819 scans, 829 cancers
    assert (round(a10, 3), round(a11, 3), round(r.estimate, 3)) == (0.919, 0.898, -0.021)
    assert (r.n, r.events) == (6819, 829)
    assert r.ci_low < -0.02 and r.ci_high < 0  # a loss shown, non-inferiority not
    assert r.ci_method == "delong-paired-clustered"  # patients repeat in the demo
    assert any(f.code == "change_control.loss" and f.subject["where"] == "age_band = 80+"
               and f.subject["metric"] == "auroc" for f in res.findings)
    # the result keeps the ROC curves of the failing cell for the figure
    ax = res.plot_roc("age_band", "80+")
    assert ax.get_title() == "ROC, age_band = 80+" and len(ax.get_lines()) == 3
    import matplotlib.pyplot as plt

    plt.close("all")


def test_black_patients_gain_as_built(demo):
    _, _, res, _ = demo
    s = _cell(res, "sensitivity", "race", BLACK)
    # data card at threshold 0.15: v1.0 0.643, v1.1 0.788 in Black patients (619 cancers)
    assert (round(s.comparator_value, 3), round(s.candidate_value, 3)) == (0.643, 0.788)
    assert s.events == 619 and s.ci_low > 0.05  # an improvement shown, not merely estimated
    a = _cell(res, "auroc", "race", BLACK)
    assert (round(a.comparator_value, 3), round(a.candidate_value, 3)) == (0.915, 0.931)
    assert a.status == "pass"
    gains = {(f.subject["metric"], f.subject["where"]) for f in res.findings
             if f.code == "change_control.improvement"}
    assert ("sensitivity", f"race = {BLACK}") in gains and ("auroc", f"race = {BLACK}") in gains


def test_overall_small_subgroups_and_the_cumulative_effect(demo):
    _, _, res, _ = demo
    ov = _cell(res, "auroc", "overall", "all")
    # data card: overall AUROC 0.926 (v1.0) vs 0.928 (v1.1)
    assert (round(ov.comparator_value, 3), round(ov.candidate_value, 3)) == (0.926, 0.928)
    assert ov.status == "pass"
    outside = res.table[(res.table["criterion"] == "auroc") &
                        (res.table["status"] == "not_evaluated")]
    assert set(outside["level"]) == {"American Indian or Alaska Native",
                                     "Native Hawaiian or Other Pacific Islander"}
    cum = res.cumulative.set_index(["metric", "version"])
    assert cum.loc[("auroc", "1.1"), "improvement_vs_original"] == pytest.approx(
        ov.estimate, rel=1e-12)
    assert set(res.cumulative["metric"]) == {"auroc", "sensitivity", "specificity",
                                             "calibration_slope"}


def test_the_ledger_entry_records_the_decision(demo):
    p, ev, res, ledger = demo
    e = Ledger(ledger).entries()[-1]
    assert e["verdict"] == "REJECT" and e["plan_sha256"] == res.provenance["plan_sha256"]
    assert e["protocol"]["sha256"] == p.sha256 and e["protocol"]["name"] == p.name
    assert e["test_set"]["sha256"] == test_set_sha256(ev) == p.change_control.test_set.sha256
    assert e["data"]["sha256"] == ev.source_fingerprint["sha256"]
    assert e["models"]["1.1"]["weights_sha256"] == p.change_control.models["1.1"].weights_sha256
    assert set(e["scores"]) == {"1.0", "1.1"} and e["online"]["approved"] is False
    assert e["online"]["level"] == res.level and e["test_set"]["look"] == 1
    assert res.ledger["sha256"] == e["sha256"]
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert d["verdict"] == "REJECT" and d["ledger"]["seq"] == 1


def test_rwe_compare_on_the_bundled_demo(tmp_path):
    ensure_demo()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "rwe.cli", "compare", str(DEMO), "--candidate",
                        "1.1", "--ledger", str(tmp_path / "l.jsonl")], capture_output=True,
                       text=True, cwd=ROOT, timeout=600, env=env)
    assert r.returncode == 3, r.stderr
    out = r.stdout.splitlines()
    assert out[1].strip() == "REJECTED: candidate 1.1 is NOT approved - do not deploy it"
    assert out[-1].startswith("VERDICT: REJECT (exit 3)")
    assert any("age_band = 80+ vs 1.0" in line for line in out)
    assert np.isfinite(json.loads((tmp_path / "l.jsonl").read_text())["online"]["level"])
