"""The ledger: hash chain, verification of every kind of tampering, the head file, the lock
(real processes), a lock left by a dead process."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import time

import pytest

from rwe.change_control import GENESIS, LEDGER_FORMAT, Ledger, verify_ledger
from rwe.change_control._ledger import entry_sha256
from rwe.exceptions import LedgerError

PLAN = "a" * 64


def _fill(path, n=5, plan=PLAN):
    led = Ledger(path)
    return [led.append({"plan_sha256": plan, "kind": "note", "k": i}) for i in range(n)]


def _lines(path):
    return path.read_bytes().split(b"\n")[:-1]


def _write(path, lines):
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def test_chain_fields_and_canonical_lines(tmp_path):
    path = tmp_path / "l.jsonl"
    entries = _fill(path, 3)
    assert [e["seq"] for e in entries] == [1, 2, 3]
    assert entries[0]["prev_sha256"] == GENESIS
    assert entries[1]["prev_sha256"] == entries[0]["sha256"]
    for e, line in zip(entries, _lines(path), strict=True):
        d = json.loads(line)
        assert d == e and d["format"] == LEDGER_FORMAT
        assert entry_sha256(d) == d["sha256"]
        assert line.decode() == json.dumps(d, sort_keys=True, separators=(",", ":"),
                                           ensure_ascii=False)
    v = verify_ledger(path)
    assert v.ok and v.entries == 3 and v.head == entries[-1]["sha256"] and v.head_seq == 3
    head = json.loads((tmp_path / "l.jsonl.head").read_text())
    assert head["seq"] == 3 and head["sha256"] == entries[-1]["sha256"]
    assert Ledger(path).head == entries[-1]["sha256"]


@pytest.mark.parametrize("case, first_bad, message", [
    ("edit", 3, "entry 3 was edited: its content does not match its sha256"),
    ("delete", 3, "entry 3 does not follow entry 2 (its prev_sha256 does not match): entry 3 "
                  "deleted before it"),
    ("insert", 3, "entry 3 does not follow entry 2 (its prev_sha256 does not match): it is "
                  "entry 2 moved or copied here"),
    ("reorder", 3, "entry 3 does not follow entry 2 (its prev_sha256 does not match): entries "
                   "were reordered (entry 3 comes later in the file)"),
    ("partial", 5, "entry 5 is incomplete (no end of line): a write was interrupted or the "
                   "file was cut"),
    ("garbage", 2, "entry 2 is not a JSON object (damaged or edited by hand)"),
    # an edit whose author recomputed the entry's own hash breaks the next link
    ("forged", 5, "entry 5 does not follow entry 4"),
])
def test_verify_names_the_first_bad_entry(tmp_path, case, first_bad, message):
    path = tmp_path / "l.jsonl"
    _fill(path, 5)
    lines = _lines(path)
    if case == "edit":
        d = json.loads(lines[2])
        d["k"] = 99
        lines[2] = json.dumps(d, sort_keys=True, separators=(",", ":")).encode()
    elif case == "delete":
        del lines[2]
    elif case == "insert":
        lines.insert(2, lines[1])
    elif case == "reorder":
        lines[2], lines[3] = lines[3], lines[2]
    elif case == "garbage":
        lines[1] = b"{not json"
    elif case == "forged":  # an edit whose author recomputed the entry's own hash
        d = json.loads(lines[3])
        d["k"] = 99
        d["sha256"] = entry_sha256(d)
        lines[3] = json.dumps(d, sort_keys=True, separators=(",", ":")).encode()
    if case == "partial":
        raw = path.read_bytes()
        path.write_bytes(raw[:-40])
    else:
        _write(path, lines)
    v = verify_ledger(path, head=None)
    assert not v.ok and v.first_bad == first_bad
    assert v.problem.startswith(message), v.problem
    with pytest.raises(LedgerError, match=f"^{path}: entry {first_bad} .*; nothing was "
                                          "appended$"):
        Ledger(path).append({"plan_sha256": PLAN, "kind": "note"})
    assert verify_ledger(path).first_bad == first_bad  # nothing appended


def test_tail_truncation_is_caught_against_the_head(tmp_path):
    path = tmp_path / "l.jsonl"
    entries = _fill(path, 5)
    lines = _lines(path)
    _write(path, lines[:3])  # a valid, shorter chain
    v = verify_ledger(path)  # the head file remembers entry 5
    assert not v.ok and v.first_bad == 4
    assert "is not an entry of the ledger, which ends at entry 3: entries were removed from " \
           "the end (truncated)" in v.problem
    with pytest.raises(LedgerError, match="truncated"):
        Ledger(path).append({"plan_sha256": PLAN, "kind": "note"})
    # an external head (dossier manifest) catches it without the head file
    (tmp_path / "l.jsonl.head").unlink()
    v = verify_ledger(path)
    assert v.ok and "cannot be detected" in v.notes[0]
    v = verify_ledger(path, head=entries[4]["sha256"])
    assert not v.ok and "given head" in v.problem
    # a head of an earlier entry is fine: later appends are allowed
    v = verify_ledger(path, head=entries[1]["sha256"])
    assert v.ok and v.head_seq == 2 and "1 entry appended after the given head (entry 2)" in \
        v.notes[0]
    # the ledger deleted outright while a head says it had entries
    (tmp_path / "l.jsonl.head").write_text(json.dumps({"seq": 5, "sha256": entries[4]["sha256"]}))
    path.unlink()
    with pytest.raises(LedgerError, match="the ledger is missing, but a head hash says it had "
                                          "entries"):
        Ledger(path).entries()


def test_a_forged_last_entry_is_caught_by_the_head(tmp_path):
    path = tmp_path / "l.jsonl"
    _fill(path, 3)
    lines = _lines(path)
    d = json.loads(lines[-1])
    d["k"] = 99
    d["sha256"] = entry_sha256(d)
    lines[-1] = json.dumps(d, sort_keys=True, separators=(",", ":")).encode()
    _write(path, lines)
    v = verify_ledger(path)
    assert not v.ok and "head file l.jsonl.head" in v.problem and v.first_bad == 4


def test_another_plan_is_refused(tmp_path):
    path = tmp_path / "l.jsonl"
    _fill(path, 2)
    with pytest.raises(LedgerError, match=r"entry 1 was written under change-control plan "
                                          r"aaaaaaaaaaaa\.\.\., not this protocol's plan "
                                          r"bbbbbbbbbbbb\.\.\.: a ledger belongs to one plan; "
                                          "nothing was appended"):
        Ledger(path).append({"plan_sha256": "b" * 64, "kind": "note"})
    assert verify_ledger(path).entries == 2
    v = verify_ledger(path, plan_sha256="b" * 64)
    assert not v.ok and "not this protocol's plan" in v.problem
    # a file mixing two plans (e.g. two ledgers concatenated)
    other = tmp_path / "o.jsonl"
    _fill(other, 1, plan="c" * 64)
    mixed = tmp_path / "m.jsonl"
    _write(mixed, _lines(path) + _lines(other))
    v = verify_ledger(mixed)
    assert v.first_bad == 3 and "does not follow" in v.problem


def test_reserved_keys_and_one_append_per_transaction(tmp_path):
    led = Ledger(tmp_path / "l.jsonl")
    with pytest.raises(LedgerError, match="must not set seq"):
        led.append({"plan_sha256": PLAN, "seq": 7})
    with led.transaction() as tx:
        tx.append({"plan_sha256": PLAN})
        with pytest.raises(LedgerError, match="one append per transaction"):
            tx.append({"plan_sha256": PLAN})
    assert verify_ledger(tmp_path / "l.jsonl").entries == 1


# ----------------------------------------------------------------------------- processes
def _worker(path, worker, n):
    led = Ledger(path, lock_timeout=120)
    for k in range(n):
        led.append({"plan_sha256": PLAN, "kind": "note", "worker": worker, "k": k,
                    "pad": "x" * 2000})


def test_concurrent_appends_from_processes_never_interleave_or_lose(tmp_path):
    path = tmp_path / "l.jsonl"
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_worker, args=(str(path), w, 15)) for w in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    v = verify_ledger(path)
    assert v.ok and v.entries == 90
    entries = Ledger(path).entries()
    seen = [(e["worker"], e["k"]) for e in entries]
    assert sorted(seen) == [(w, k) for w in range(6) for k in range(15)]
    for w in range(6):  # each worker's entries in its own order
        ks = [k for ww, k in seen if ww == w]
        assert ks == sorted(ks)
    assert json.loads((tmp_path / "l.jsonl.head").read_text())["seq"] == 90


def _die_holding_the_lock(path):
    led = Ledger(path)
    with led._locked():
        os.kill(os.getpid(), signal.SIGKILL)


def _hold_the_lock(path, seconds):
    led = Ledger(path)
    with led._locked():
        time.sleep(seconds)


def test_lock_left_by_a_dead_process(tmp_path):
    path = tmp_path / "l.jsonl"
    _fill(path, 2)
    before = path.read_bytes()
    p = mp.get_context("fork").Process(target=_die_holding_the_lock, args=(str(path),))
    p.start()
    p.join(30)
    assert p.exitcode == -signal.SIGKILL
    with pytest.raises(LedgerError) as e:
        Ledger(path).append({"plan_sha256": PLAN, "kind": "note"})
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: the lock {path}.lock was left by process {p.pid} on ")
    assert "which is no longer running: it died while appending. Check the ledger with `rwe " \
           f"ledger verify {path}`, then delete {path}.lock; nothing was appended" in msg
    assert path.read_bytes() == before
    (tmp_path / "l.jsonl.lock").unlink()  # what the message tells a person to do
    Ledger(path).append({"plan_sha256": PLAN, "kind": "note"})
    assert verify_ledger(path).entries == 3


def test_readers_wait_for_a_writer(tmp_path):
    """verify takes a shared lock: it never reads the half-written line of an append."""
    path = tmp_path / "l.jsonl"
    _fill(path, 1)
    p = mp.get_context("fork").Process(target=_hold_the_lock, args=(str(path), 1.0))
    p.start()
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "l.jsonl.lock").read_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        t0 = time.monotonic()
        assert verify_ledger(path).ok
        assert time.monotonic() - t0 > 0.3  # it waited for the writer to finish
    finally:
        p.join(30)


def test_a_live_holder_makes_others_wait_then_time_out(tmp_path):
    path = tmp_path / "l.jsonl"
    _fill(path, 1)
    p = mp.get_context("fork").Process(target=_hold_the_lock, args=(str(path), 3.0))
    p.start()
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "l.jsonl.lock").read_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        with pytest.raises(LedgerError, match=rf"locked by process {p.pid} on .* for more than "
                                              r"0.3 s; nothing was appended"):
            Ledger(path, lock_timeout=0.3).append({"plan_sha256": PLAN, "kind": "note"})
        # a patient writer gets its turn once the holder is done
        Ledger(path, lock_timeout=30).append({"plan_sha256": PLAN, "kind": "note"})
    finally:
        p.join(30)
    assert verify_ledger(path).entries == 2
