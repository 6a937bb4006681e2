"""The change-control ledger: an append-only, hash-chained JSON-lines file (DESIGN.md principle 6;
EVIDENCE.md CHG-6, PRV-7).

Each line is one entry, a JSON object with sorted keys. ``sha256`` is the hash of the entry's
canonical JSON without the ``sha256`` key; ``prev_sha256`` is the previous entry's ``sha256``
(:data:`GENESIS` for the first); ``seq`` counts from 1. :func:`verify_ledger` therefore detects
an edited entry (its content no longer matches its hash), a deleted, inserted or moved entry
(the chain or the numbering breaks), a partial last line (an interrupted write) and entries from
another change-control plan. Removing whole entries from the end leaves a valid shorter chain:
that is detected against a head hash kept elsewhere - the ``--head`` given by the user, the
dossier manifest, or the sidecar ``FILE.head`` this module rewrites (atomically) after every
append, which catches a ledger restored from an older copy or cut short by a tool.

Appends are serialised by an exclusive ``flock`` on ``FILE.lock``. While it holds the lock a
writer records itself (pid, host, time) in the lock file and clears the record before it lets go;
a record found by the next writer therefore means its writer died while appending (the kernel
released its lock). That ledger is refused, with the holder named, until someone has checked it
(``rwe ledger verify``) and removed the lock file: the dead writer may have left half an entry.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rwe._results import canonical_json, canonical_sha256
from rwe.exceptions import LedgerError

__all__ = ["GENESIS", "LEDGER_FORMAT", "Ledger", "LedgerVerification", "verify_ledger",
           "entry_sha256"]

#: ``prev_sha256`` of the first entry.
GENESIS = "0" * 64
#: ``format`` of every entry this version writes.
LEDGER_FORMAT = "rwe-ledger-1"
_REQUIRED = ("format", "seq", "time", "kind", "plan_sha256", "prev_sha256", "sha256")
_LOCK_POLL = 0.02

MSG_STALE = ("{path}: the lock {lock} was left by process {pid} on {host} (since {since}), "
             "which {state}: it died while appending. Check the ledger with "
             "`rwe ledger verify {path}`, then delete {lock}; nothing was appended")
MSG_BUSY = ("{path}: locked by process {pid} on {host} since {since} for more than "
            "{timeout:g} s; nothing was appended")
MSG_TRUNCATED = ("{path}: the ledger ends at entry {n} ({last}), but its head was {head} "
                 "(entry {head_seq}): entries were removed from the end (truncated) or the file "
                 "was replaced by an older copy")


def entry_sha256(entry: Mapping[str, Any]) -> str:
    """sha256 of an entry's canonical JSON without its ``sha256`` key."""
    body = {k: v for k, v in entry.items() if k != "sha256"}
    return canonical_sha256(body)


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class LedgerVerification:
    """Outcome of :func:`verify_ledger`.

    Attributes
    ----------
    path : str
    ok : bool
    entries : int
        Entries read (the valid prefix when not ok).
    head : str or None
        ``sha256`` of the last valid entry.
    first_bad : int or None
        Number (1-based) of the first bad entry (``entries + 1`` for a missing tail).
    problem : str or None
        One line: what is wrong with it.
    head_seq : int or None
        The entry the given head hash names (None without a head).
    notes : tuple of str
        What the check could not see (e.g. truncation without a head hash).
    """

    path: str
    ok: bool
    entries: int
    head: str | None
    first_bad: int | None = None
    problem: str | None = None
    head_seq: int | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "ok": self.ok, "entries": self.entries, "head": self.head,
                "first_bad": self.first_bad, "problem": self.problem,
                "head_seq": self.head_seq, "notes": list(self.notes)}


def _parse(path: Path) -> tuple[list[dict[str, Any]], int | None, str | None]:
    """Entries of the valid prefix, and the first bad entry number and problem."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return [], None, None
    entries: list[dict[str, Any]] = []
    lines = raw.split(b"\n")
    tail_complete = raw.endswith(b"\n") or raw == b""
    body = lines[:-1] if tail_complete else lines
    prev = GENESIS
    plan = None
    for i, line in enumerate(body, start=1):
        if i == len(body) and not tail_complete:
            return entries, i, (f"entry {i} is incomplete (no end of line): a write was "
                                "interrupted or the file was cut")
        try:
            e = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return entries, i, f"entry {i} is not a JSON object (damaged or edited by hand)"
        if not isinstance(e, dict) or any(k not in e for k in _REQUIRED):
            missing = [k for k in _REQUIRED if not isinstance(e, dict) or k not in e]
            return entries, i, (f"entry {i} is not an rwe ledger entry (missing "
                                f"{', '.join(missing)})")
        if e["format"] != LEDGER_FORMAT:
            return entries, i, (f"entry {i} has format {e['format']!r}; this rwe reads "
                                f"{LEDGER_FORMAT!r}")
        if entry_sha256(e) != e["sha256"]:
            return entries, i, (f"entry {i} was edited: its content does not match its sha256 "
                                f"{str(e['sha256'])[:12]}...")
        if e["prev_sha256"] != prev or e["seq"] != i:
            later = _later_seqs(body[i:])
            if isinstance(e["seq"], int) and e["seq"] > i and i in later:
                why = f"entries were reordered (entry {i} comes later in the file)"
            elif isinstance(e["seq"], int) and e["seq"] > i:
                why = (f"entr{'y' if e['seq'] - i == 1 else 'ies'} {i}"
                       + (f" to {e['seq'] - 1}" if e["seq"] - i > 1 else "")
                       + " deleted before it")
            elif isinstance(e["seq"], int) and e["seq"] < i:
                why = f"it is entry {e['seq']} moved or copied here"
            else:
                why = "an entry was deleted, inserted or moved before it"
            return entries, i, (f"entry {i} does not follow entry {i - 1} (its prev_sha256 "
                                f"does not match): {why}")
        if plan is None:
            plan = e["plan_sha256"]
        elif e["plan_sha256"] != plan:
            return entries, i, (f"entry {i} was written under another change-control plan "
                                f"(plan sha256 {e['plan_sha256'][:12]}...) than entry 1 "
                                f"({plan[:12]}...)")
        prev = e["sha256"]
        entries.append(e)
    return entries, None, None


def _later_seqs(lines: list[bytes]) -> set[int]:
    out = set()
    for line in lines:
        try:
            v = json.loads(line.decode("utf-8")).get("seq")
        except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            continue
        if isinstance(v, int):
            out.add(v)
    return out


def _online_problem(entries: list[dict[str, Any]]) -> tuple[int, str] | None:
    """The first entry whose recorded test level does not follow from the online procedure
    and the earlier entries' p values (a ledger written under other settings)."""
    from rwe.change_control._budget import check_levels

    return check_levels(entries)


def _head_file(path: Path) -> Path:
    return path.with_name(path.name + ".head")


def _read_head_file(path: Path) -> tuple[str, int] | None:
    hp = _head_file(path)
    try:
        d = json.loads(hp.read_text(encoding="utf-8"))
        return str(d["sha256"]), int(d["seq"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, OSError):
        raise LedgerError(f"{hp}: not a ledger head file (expected {{\"seq\": N, \"sha256\": "
                          "...}}); remove it only if you know the ledger is complete") from None


def _flock(fd: int, mode: int, timeout: float, timed_out: Any) -> None:
    """Take ``flock(fd, mode)``, polling every :data:`_LOCK_POLL` s; after ``timeout`` s
    raise ``timed_out()``."""
    import fcntl

    start = time.monotonic()
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() - start > timeout:
                raise timed_out() from None
            time.sleep(_LOCK_POLL)


@contextlib.contextmanager
def _shared(path: Path, timeout: float) -> Iterator[None]:
    """A shared lock on ``FILE.lock`` while reading, when the lock file exists: a reader
    never sees the half-written line of a concurrent append."""
    lock = path.with_name(path.name + ".lock")
    try:
        import fcntl

        fd = os.open(lock, os.O_RDONLY)
    except (ImportError, OSError):
        yield
        return
    try:
        _flock(fd, fcntl.LOCK_SH, timeout, lambda: LedgerError(
            f"{path}: locked by a writer for more than {timeout:g} s while reading"))
        yield
    finally:
        os.close(fd)


def verify_ledger(path: str | os.PathLike, *, head: str | None = None,
                  plan_sha256: str | None = None, _lock: bool = True) -> LedgerVerification:
    """Check a ledger's whole chain; name the first bad entry.

    Parameters
    ----------
    path : path-like
        The ledger (JSON lines).
    head : str, optional
        A head hash recorded elsewhere (a dossier manifest, an earlier ``rwe compare``):
        it must be the ``sha256`` of one of the entries, else entries were removed from the
        end. Without it the sidecar ``FILE.head`` is used when present.
    plan_sha256 : str, optional
        The change-control plan the ledger must belong to.

    Returns
    -------
    LedgerVerification
    """
    p = Path(path)
    if not p.exists():
        return LedgerVerification(str(p), False, 0, None, 1, f"{p}: no such ledger file")
    if p.is_dir():
        return LedgerVerification(str(p), False, 0, None, 1, f"{p}: is a directory, expected "
                                  "a ledger file (JSON lines)")
    if _lock:
        with _shared(p, 60.0):
            return verify_ledger(p, head=head, plan_sha256=plan_sha256, _lock=False)
    entries, bad, problem = _parse(p)
    head_now = entries[-1]["sha256"] if entries else None
    if bad is not None:
        return LedgerVerification(str(p), False, len(entries), head_now, bad, problem)
    online = _online_problem(entries)
    if online is not None:
        return LedgerVerification(str(p), False, online[0] - 1,
                                  entries[online[0] - 2]["sha256"] if online[0] > 1 else None,
                                  online[0], online[1])
    if plan_sha256 is not None and entries and entries[0]["plan_sha256"] != plan_sha256:
        return LedgerVerification(
            str(p), False, 0, None, 1,
            f"entry 1 was written under change-control plan {entries[0]['plan_sha256'][:12]}...,"
            f" not this protocol's plan {plan_sha256[:12]}...: a ledger belongs to one plan")
    notes: list[str] = []
    source = "given head"
    if head is None:
        stored = _read_head_file(p)
        if stored is not None:
            head, source = stored[0], f"head file {_head_file(p).name}"
    head_seq = None
    if head is not None:
        seqs = {e["sha256"]: e["seq"] for e in entries}
        if head not in seqs:
            return LedgerVerification(
                str(p), False, len(entries), head_now, len(entries) + 1,
                f"the {source} {head[:12]}... is not an entry of the ledger, which ends at "
                f"entry {len(entries)}: entries were removed from the end (truncated) or the "
                "file was replaced")
        head_seq = seqs[head]
        if head_seq < len(entries):
            notes.append(f"{len(entries) - head_seq} entr{'y' if len(entries) - head_seq == 1 else 'ies'} "
                         f"appended after the {source} (entry {head_seq})")
    else:
        notes.append("no head hash given and no head file: removal of entries from the end "
                     "cannot be detected")
    return LedgerVerification(str(p), True, len(entries), head_now, None, None, head_seq,
                              tuple(notes))


class Ledger:
    """An append-only change-control ledger at ``path`` (created by the first append).

    Parameters
    ----------
    path : path-like
    lock_timeout : float, default 60
        Seconds to wait for another live writer before giving up.
    head : str, optional
        A head hash the ledger must contain (see :func:`verify_ledger`).
    """

    def __init__(self, path: str | os.PathLike, *, lock_timeout: float = 60.0,
                 head: str | None = None):
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.head_path = _head_file(self.path)
        self.lock_timeout = float(lock_timeout)
        self.expected_head = head

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r})"

    def entries(self, *, plan_sha256: str | None = None,
                _lock: bool = True) -> list[dict[str, Any]]:
        """Every entry, after a full verification (:class:`LedgerError` when it fails)."""
        if self.path.is_dir():
            raise LedgerError(f"{self.path}: is a directory, expected a ledger file")
        if not self.path.exists():
            if self.expected_head is not None or self.head_path.exists():
                raise LedgerError(f"{self.path}: the ledger is missing, but a head hash "
                                  "says it had entries")
            return []
        if _lock:
            with _shared(self.path, self.lock_timeout):
                return self.entries(plan_sha256=plan_sha256, _lock=False)
        v = verify_ledger(self.path, head=self.expected_head, plan_sha256=plan_sha256,
                          _lock=False)
        if not v.ok:
            raise LedgerError(f"{self.path}: {v.problem}")
        return _parse(self.path)[0]

    @property
    def head(self) -> str | None:
        """sha256 of the last entry (None for an empty ledger)."""
        e = self.entries()
        return e[-1]["sha256"] if e else None

    # ------------------------------------------------------------------ locking
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - POSIX only
            raise LedgerError("the ledger lock needs POSIX file locks (fcntl)") from None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            def busy() -> LedgerError:
                rec = _holder(fd)
                return LedgerError(MSG_BUSY.format(
                    path=self.path, pid=rec.get("pid", "?"), host=rec.get("host", "?"),
                    since=rec.get("since", "?"), timeout=self.lock_timeout))

            _flock(fd, fcntl.LOCK_EX, self.lock_timeout, busy)
            rec = _holder(fd)
            if rec:
                raise LedgerError(MSG_STALE.format(
                    path=self.path, lock=self.lock_path, pid=rec.get("pid", "?"),
                    host=rec.get("host", "?"), since=rec.get("since", "?"),
                    state=_state(rec)))
            _write_holder(fd, {"pid": os.getpid(), "host": socket.gethostname(),
                               "since": _now()})
            try:
                yield
            finally:
                _write_holder(fd, None)
        finally:
            os.close(fd)  # releases the flock

    @contextlib.contextmanager
    def transaction(self, *, plan_sha256: str | None = None) -> Iterator[_Transaction]:
        """Hold the lock, read and verify the ledger, and allow one append.

        Yields a transaction with ``entries`` (verified) and ``append(payload) -> entry``.
        Everything inside the ``with`` block sees a ledger no other writer can change.
        """
        with self._locked():
            try:
                entries = self.entries(plan_sha256=plan_sha256, _lock=False)
            except LedgerError as exc:
                raise LedgerError(f"{exc}; nothing was appended") from None
            yield _Transaction(self, entries)

    def append(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Append one entry (locked; the chain is verified first)."""
        with self.transaction(plan_sha256=payload.get("plan_sha256")) as tx:
            return tx.append(payload)


class _Transaction:
    def __init__(self, ledger: Ledger, entries: list[dict[str, Any]]):
        self.ledger = ledger
        self.entries = entries
        self._done = False

    def append(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        if self._done:
            raise LedgerError(f"{self.ledger.path}: one append per transaction")
        if "plan_sha256" not in payload:
            raise LedgerError("a ledger entry needs the plan_sha256 of its change-control plan")
        if self.entries and payload["plan_sha256"] != self.entries[0]["plan_sha256"]:
            raise LedgerError(
                f"{self.ledger.path}: entry 1 was written under change-control plan "
                f"{self.entries[0]['plan_sha256'][:12]}..., not {payload['plan_sha256'][:12]}...: "
                "a ledger belongs to one plan; nothing was appended")
        reserved = {"format", "seq", "prev_sha256", "sha256"} & set(payload)
        if reserved:
            raise LedgerError(f"ledger payload must not set {', '.join(sorted(reserved))}")
        entry = {**payload, "format": LEDGER_FORMAT, "seq": len(self.entries) + 1,
                 "time": payload.get("time") or _now(),
                 "kind": payload.get("kind", "comparison"),
                 "prev_sha256": self.entries[-1]["sha256"] if self.entries else GENESIS}
        entry = json.loads(canonical_json(entry))  # plain JSON types, NaN refused
        entry["sha256"] = entry_sha256(entry)
        line = (canonical_json(entry) + "\n").encode("utf-8")
        path = self.ledger.path
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(line)
            while view:  # one write normally; a short write is completed, never interleaved
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        _write_head_file(self.ledger.head_path, entry)
        self.entries.append(entry)
        self._done = True
        return entry


def _state(rec: Mapping[str, Any]) -> str:
    """How a recorded lock holder stands: gone, or (pid reused / other host) not holding."""
    pid, host = rec.get("pid"), rec.get("host")
    if host != socket.gethostname():
        return "no longer holds it"
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError, TypeError):
        return "is no longer running"
    except PermissionError:
        pass
    return "is running but no longer holds it"


def _holder(fd: int) -> dict[str, Any]:
    os.lseek(fd, 0, os.SEEK_SET)
    data = b""
    while chunk := os.read(fd, 4096):
        data += chunk
    if not data.strip():
        return {}
    try:
        rec = json.loads(data.decode("utf-8"))
        return rec if isinstance(rec, dict) else {"pid": "?"}
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {"pid": "?"}


def _write_holder(fd: int, record: dict[str, Any] | None) -> None:
    os.ftruncate(fd, 0)
    if record is not None:
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(record).encode("utf-8"))
    os.fsync(fd)


def _write_head_file(path: Path, entry: Mapping[str, Any]) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"seq": entry["seq"], "sha256": entry["sha256"],
                               "time": entry["time"]}) + "\n", encoding="utf-8")
    os.replace(tmp, path)
