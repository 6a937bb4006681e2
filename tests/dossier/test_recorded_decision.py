"""The change-control page shows the decision the ledger recorded: recomputed from the entries
before it (nothing appended), checked against it, and refused when the ledger is broken."""

from __future__ import annotations

import json

import pytest
from dossier_helpers import small_protocol


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    from rwe.change_control import compare_from_protocol
    from rwe.protocol import load_protocol

    d = tmp_path_factory.mktemp("recorded")
    path = small_protocol(d, n_scans=1500)
    # a ledger of its own (the demo's ../reports/... would be shared with the session's other
    # small protocols, whose dossiers must stay unrecorded)
    path.write_text(path.read_text().replace("ledger: ../reports/change_control/ledger.jsonl",
                                             "ledger: ledger.jsonl"))
    p = load_protocol(path)
    assert p.resolve(p.change_control.ledger) == d / "ledger.jsonl"
    ev = p.load_data()
    ledger = p.resolve(p.change_control.ledger)
    first = compare_from_protocol(p, ev)  # what `rwe compare` does: decide and record
    return p, ev, ledger, first


def test_the_page_shows_the_recorded_decision_and_appends_nothing(recorded):
    from rwe.dossier._plans import recorded_comparison

    p, ev, ledger, first = recorded
    before = ledger.read_bytes()
    shown = recorded_comparison(p, ev)
    assert ledger.read_bytes() == before  # a dossier build is not a look at the test set
    assert shown.verdict == first.verdict
    assert shown.ledger["seq"] == first.ledger["seq"] == 1
    assert shown.ledger["sha256"] == first.ledger["sha256"] and shown.ledger["agrees"]
    codes = [f.code for f in shown.findings]
    assert "change_control.recorded" in codes and "change_control.not_recorded" not in codes
    # the same numbers as the recorded comparison, criterion by criterion
    assert shown.criteria[["criterion", "status", "worst_estimate", "worst_bound"]].equals(
        first.criteria[["criterion", "status", "worst_estimate", "worst_bound"]])
    assert shown.level == first.level and shown.online["test"] == first.online["test"]


def test_history_replays_the_error_budget_of_a_later_entry(recorded, tmp_path):
    """A second recorded look is recomputed from the entry before it: same level, same
    budget, nothing appended."""
    import shutil

    from rwe.change_control import compare_from_protocol
    from rwe.change_control._ledger import Ledger

    p, ev, ledger, first = recorded
    copy = tmp_path / "ledger.jsonl"
    shutil.copy(ledger, copy)
    second = compare_from_protocol(p, ev, ledger=copy)
    entries = Ledger(copy).entries()
    assert [e["seq"] for e in entries] == [1, 2]
    replay = compare_from_protocol(p, ev, ledger=False, history=entries[:1])
    assert replay.level == second.level and replay.online == {**second.online}
    assert replay.verdict == second.verdict
    assert copy.read_bytes().count(b"\n") == 2  # the replay appended nothing


def test_a_tampered_ledger_is_reported_not_shown(recorded, tmp_path):
    import shutil

    from rwe.dossier._plans import recorded_comparison

    p, ev, ledger, _ = recorded
    saved = ledger.read_bytes()
    head = ledger.with_name(ledger.name + ".head")
    saved_head = head.read_bytes() if head.exists() else None
    try:
        entry = json.loads(saved.splitlines()[0])
        entry["verdict"] = "APPROVE"  # an edit: the entry no longer matches its hash
        ledger.write_text(json.dumps(entry, sort_keys=True) + "\n")
        shown = recorded_comparison(p, ev)
        assert shown.ledger is None
        bad = [f for f in shown.findings if f.code == "change_control.ledger_invalid"]
        assert bad and bad[0].severity == "critical" and "entry 1" in bad[0].values["problem"]
        assert str(ledger.parent) not in bad[0].values["problem"]  # no path of this machine
        assert "change_control.not_recorded" in [f.code for f in shown.findings]
    finally:
        ledger.write_bytes(saved)
        if saved_head is not None:
            head.write_bytes(saved_head)
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_history_and_ledger_together_are_refused(recorded):
    from rwe.change_control import compare_from_protocol
    from rwe.exceptions import InvalidParameterError

    p, ev, ledger, _ = recorded
    with pytest.raises(InvalidParameterError, match="history= replays ledger entries"):
        compare_from_protocol(p, ev, ledger=ledger, history=[])
