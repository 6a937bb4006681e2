"""Successive updates through the ledger: the error budget (online levels recorded and
re-checked), the comparators it implies, looks at the test set, locked outputs and model
identities."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from cc_helpers import evset
from numpy.testing import assert_allclose

from rwe.change_control import (
    APPROVE,
    REJECT,
    Ledger,
    compare_models,
    ledger_show_text,
    verify_ledger,
)
from rwe.change_control._ledger import entry_sha256
from rwe.exceptions import LedgerError
from rwe.stats import online_test

ONLINE = {"procedure": "alpha_investing", "alpha": 0.05}


@pytest.fixture(scope="module")
def ev():
    # 1.1 better than 1.0, 1.2 much worse, 1.3 better still
    return evset(4000, seed=11, versions={"1.0": 1.0, "1.1": 0.8, "1.2": 2.5, "1.3": 0.6})


def _cmp(ev, candidate, ledger, **kw):
    args = dict(current="1.0", threshold=0.5, margins={"auroc": 0.03}, cluster="none",
                online=ONLINE, ledger=ledger)
    args.update(kw)
    return compare_models(ev, candidate=candidate, **args)


def test_sequence_of_updates_spends_and_earns_the_budget(ev, tmp_path):
    path = tmp_path / "l.jsonl"
    r1 = _cmp(ev, "1.1", path)
    assert r1.verdict == APPROVE and r1.current == "1.0"
    r2 = _cmp(ev, "1.2", path)
    # after 1.1 was approved, it is the current version; 1.0 stays in as the original
    assert r2.current == "1.1" and r2.verdict == REJECT
    assert {c["version"]: c["roles"] for c in r2.comparators} == {
        "1.1": ["current"], "1.0": ["original"]}
    r3 = _cmp(ev, "1.3", path)
    assert r3.current == "1.1" and r3.verdict == APPROVE
    entries = Ledger(path).entries()
    p = [e["online"]["pvalue"] for e in entries]
    ref = online_test(p, procedure="alpha_investing", alpha=0.05)
    levels = [e["online"]["level"] for e in entries]
    assert_allclose(levels, ref.levels, rtol=1e-12)
    assert [r.level for r in (r1, r2, r3)] == levels
    assert [e["online"]["approved"] for e in entries] == list(ref.rejected) == [True, False,
                                                                               True]
    assert_allclose(entries[-1]["online"]["next_level"], ref.next_level, rtol=1e-12)
    assert_allclose(entries[-1]["online"]["spent"], sum(levels), rtol=1e-12)
    assert [e["test_set"]["look"] for e in entries] == [1, 2, 3]
    assert r3.ledger["budget"]["approvals"] == 2 and r3.ledger["seq"] == 3
    # the intervals are at the recorded level
    assert r2.table["ci_level"].iloc[0] == pytest.approx(1 - 2 * levels[1])
    text = "\n".join(ledger_show_text(path))
    assert "alpha_investing at alpha 0.05; 3 update(s) tested, 2 approved" in text
    assert f"the next update is tested at one-sided {ref.next_level:.4g}" in text
    assert "3 look(s)" in text and "REJECT" in text


def test_every_look_is_counted_and_max_looks_refuses_more(ev, tmp_path):
    path = tmp_path / "l.jsonl"
    _cmp(ev, "1.2", path, max_looks=2)
    _cmp(ev, "1.2", path, max_looks=2)  # the same rejected candidate again: a second look
    before = path.read_bytes()
    with pytest.raises(LedgerError, match=r"the test set \(sha256 [0-9a-f]{12}\.\.\.\) has been "
                                          r"used for 2 comparison\(s\), its max_looks; refresh it"):
        _cmp(ev, "1.3", path, max_looks=2)
    assert path.read_bytes() == before


def test_a_locked_version_outputs_must_not_change(ev, tmp_path):
    path = tmp_path / "l.jsonl"
    _cmp(ev, "1.1", path)
    df = ev.frame.copy()
    df["s_1.0"] = np.clip(df["s_1.0"] + 0.01, 0, 1)
    from rwe.data import EvaluationSet

    changed = EvaluationSet.from_frame(df, ev.roles)
    before = path.read_bytes()
    with pytest.raises(LedgerError, match=r"the scores of version '1.0' on this test set differ "
                                          r"from those recorded in entry 1"):
        _cmp(changed, "1.3", path)
    assert path.read_bytes() == before


def test_model_identity_is_one_per_version(ev, tmp_path):
    path = tmp_path / "l.jsonl"
    w = {"1.0": {"weights_sha256": "1" * 64}, "1.1": {"weights_sha256": "2" * 64}}
    _cmp(ev, "1.1", path, models=w)
    with pytest.raises(LedgerError, match=r"version '1.1' has weights sha256 333333333333\.\.\. "
                                          r"but entry 1 recorded 222222222222\.\.\."):
        _cmp(ev, "1.3", path, models={**w, "1.1": {"weights_sha256": "3" * 64}})
    with pytest.raises(LedgerError, match=r"candidate '1.1' was already approved \(entry 1\)"):
        _cmp(ev, "1.1", path, models=w)
    assert verify_ledger(path).entries == 1


def test_a_changed_plan_cannot_use_the_ledger(ev, tmp_path):
    path = tmp_path / "l.jsonl"
    _cmp(ev, "1.1", path)
    with pytest.raises(LedgerError, match=r"not this protocol's plan .*: a ledger belongs to one "
                                          "plan; nothing was appended"):
        _cmp(ev, "1.3", path, margins={"auroc": 0.05})  # a wider margin after the fact


def test_verify_recomputes_every_level(ev, tmp_path):
    """Rewrite a recorded level (and every hash after it, as a careful forger would): the chain
    is whole again, but the level does not follow from the procedure."""
    path = tmp_path / "l.jsonl"
    for v in ("1.1", "1.2", "1.3"):
        _cmp(ev, v, path)
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    entries[1]["online"]["level"] = 0.2
    prev = entries[0]["sha256"]
    for e in entries[1:]:
        e["prev_sha256"] = prev
        e["sha256"] = entry_sha256(e)
        prev = e["sha256"]
    path.write_text("".join(json.dumps(e, sort_keys=True, separators=(",", ":")) + "\n"
                            for e in entries))
    (tmp_path / "l.jsonl.head").unlink()
    v = verify_ledger(path)
    assert not v.ok and v.first_bad == 2
    assert v.problem.startswith("entry 2 was tested at level 0.2, but the online procedure "
                                "alpha_investing gives ")


def test_fixed_level_and_unrecorded_comparisons(ev):
    r = compare_models(ev, candidate="1.1", current="1.0", threshold=0.5,
                       margins={"auroc": 0.03}, cluster="none")
    assert r.level == 0.025 and r.online["procedure"] == "fixed"
    assert r.online["next_level"] == 0.025 and r.ledger is None
    assert any(f.code == "change_control.not_recorded" for f in r.findings)
    r = compare_models(ev, candidate="1.1", current="1.0", threshold=0.5,
                       margins={"auroc": 0.03}, cluster="none", online={"procedure": "lord++"})
    assert r.level == pytest.approx(online_test([], procedure="lord++", alpha=0.025).next_level)
    assert pd.isna(r.provenance["test_set"]["look"])
