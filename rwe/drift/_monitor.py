"""Incremental monitoring runs: ``rwe monitor PROTOCOL --data NEW_DATA --state STATE_FILE``.

A run adds the windows of the new data to the charts without recomputing history: the state
file keeps what the next run needs and nothing else, with no patient row:

* the reference summary (feature histograms on its fixed edges, the score histogram) and the
  resolved alert rules (limits chosen once, for the protocol's in-control ARL, and the
  in-control values);
* every chart's statistics and counters, and the chart rows and alarms of past windows;
* the windows already processed and one record per run (data sha256, rows, windows, alarms).

The state is versioned (``schema`` and a run counter ``version``), bound to the protocol
(its sha256: a state made for another protocol, or for an edited one, is refused) and
checksummed (a state edited by hand is refused); it is written atomically. New windows must
come after the last processed one. Alarms are appended to an append-only JSON-lines log
(EVIDENCE.md MON-6) whose entries are hash-chained: each holds the sha256 of the previous one,
so an edited or truncated log is refused too.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from rwe._results import canonical_sha256, json_safe
from rwe.drift._drift import (
    DriftError,
    assess_drift,
    drift_kwargs,
    last_labelled,
    summarize_reference,
)
from rwe.drift._result import DriftResult
from rwe.exceptions import RWEError
from rwe.stats.summaries import DEFAULT_N_BINS

__all__ = ["MonitorError", "MonitorRun", "monitor", "load_state", "STATE_SCHEMA",
           "ALARM_SCHEMA", "EXIT_ALARM", "read_alarm_log"]

STATE_SCHEMA = "rwe.monitor-state/1"
ALARM_SCHEMA = "rwe.alarm/1"
#: Exit status of ``rwe monitor`` when an alarm fired in the run (0: none; 2: bad input).
EXIT_ALARM = 3
GENESIS = "0" * 64


class MonitorError(RWEError, ValueError):
    """A state file or alarm log that cannot be used (one line naming the file and why)."""


@dataclass(frozen=True)
class MonitorRun:
    """What one monitoring run did: the windows added, the new alarms, the result of the new
    windows, and the state version written."""

    windows: tuple[str, ...]
    alarms: tuple[dict[str, Any], ...]
    result: DriftResult
    state_version: int
    state_path: Path
    alarm_log: Path
    initialized: bool = False
    lines: tuple[str, ...] = field(default=())

    @property
    def alarmed(self) -> bool:
        return bool(self.alarms)


def _checksum(body: dict[str, Any]) -> str:
    """sha256 of the sorted-key JSON of a state or log entry (:func:`rwe._results.
    canonical_sha256`: for plain JSON types, the hash of the text ``json.dumps(sort_keys=True,
    separators=(",", ":"), ensure_ascii=False)`` this module hashed before)."""
    return canonical_sha256(body)


def load_state(path: str | Path, protocol=None) -> dict[str, Any]:
    """Read and check a state file (schema, checksum, and the protocol it belongs to)."""
    p = Path(path)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MonitorError(f"{p}: not a readable monitor state (invalid JSON)") from None
    if not isinstance(d, dict) or d.get("schema") != STATE_SCHEMA:
        found = d.get("schema") if isinstance(d, dict) else type(d).__name__
        raise MonitorError(f"{p}: not an rwe monitor state (schema {found!r}, expected "
                           f"{STATE_SCHEMA!r})")
    body = {k: v for k, v in d.items() if k != "checksum"}
    if d.get("checksum") != _checksum(body):
        raise MonitorError(f"{p}: monitor state checksum mismatch: the file was edited by hand "
                           "or truncated; restore it or start a new state")
    if protocol is not None and d.get("protocol_sha256") != protocol.sha256:
        raise MonitorError(
            f"{p}: this state belongs to protocol {d.get('protocol_name')!r} (sha256 "
            f"{str(d.get('protocol_sha256'))[:12]}...), not to {protocol.name!r} (sha256 "
            f"{protocol.sha256[:12]}...); a changed protocol needs a new state")
    return d


def _write_json(path: Path, d: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(d, separators=(",", ":")), encoding="utf-8")
    os.replace(tmp, path)


def read_alarm_log(path: str | Path) -> list[dict[str, Any]]:
    """The alarm log's entries, checking the hash chain (an edited log is refused)."""
    p = Path(path)
    if not p.exists():
        return []
    out = []
    prev = GENESIS
    for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            e = json.loads(line)
        except json.JSONDecodeError:
            raise MonitorError(f"{p}:{i}: not a JSON alarm entry: the log was edited") from None
        body = {k: v for k, v in e.items() if k != "hash"}
        if e.get("prev") != prev or e.get("hash") != _checksum(body):
            raise MonitorError(f"{p}:{i}: the alarm log's hash chain is broken: an entry was "
                               "edited, removed or reordered")
        prev = e["hash"]
        out.append(e)
    return out


def _append_alarms(path: Path, entries: list[dict[str, Any]], prev: str) -> str:
    lines = []
    for e in entries:
        e = {**e, "prev": prev}
        e["hash"] = _checksum(e)
        prev = e["hash"]
        lines.append(json.dumps(e, separators=(",", ":"), sort_keys=True))
    if lines:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    return prev


def _load_new(protocol, data: Any):
    """The new rows as (labelled, unlabelled) evaluation sets: rows whose outcome is missing
    (labels lag) are label-free; either part may be None."""
    from rwe.data import EvaluationSet, source_from_path

    if isinstance(data, EvaluationSet):
        return data, None, data.source_fingerprint
    if isinstance(data, pd.DataFrame):
        frame, name, fp = data, "<DataFrame>", None
    else:
        src = source_from_path(Path(data))
        frame = src.read()
        name, fp = src.name, None
        try:
            fp = src.fingerprint()
        except RWEError:  # pragma: no cover - fingerprint of a file just read
            fp = None
    roles = protocol.roles()
    derived = protocol.derived_spec()
    lab = roles.label
    has = (frame[lab].notna().to_numpy() if lab in frame.columns
           else pd.Series(False, index=frame.index).to_numpy())
    labelled = unlabelled = None
    if has.any():
        labelled = EvaluationSet.from_frame(frame.loc[has], roles, source=name, derived=derived)
    if (~has).any():
        part = frame.loc[~has].drop(columns=[lab], errors="ignore")
        unlabelled = EvaluationSet.from_frame(part, roles.model_copy(update={"label": None}),
                                              source=name, derived=derived)
    if labelled is None and unlabelled is None:
        raise DriftError(f"{name}: the new data have no rows")
    return labelled, unlabelled, fp


def monitor(protocol, data, state: str | Path, *, alarm_log: str | Path | None = None,
            now: _dt.datetime | None = None) -> MonitorRun:
    """One incremental monitoring run (see the module notes).

    Parameters
    ----------
    protocol : rwe.protocol.Protocol or path
        With a ``drift`` section.
    data : path, DataFrame or EvaluationSet
        The new rows (one or more windows after the state's last one). Rows whose outcome is
        missing are monitored label-free (estimated performance, never charted).
    state : path
        The state file; created (from the protocol's reference and alert rules) when absent.
    alarm_log : path, optional
        The append-only alarm log (default: ``<state>.alarms.jsonl``).
    now : datetime, optional
        Time stamp of the run (default: now, UTC).

    Returns
    -------
    MonitorRun

    Raises
    ------
    MonitorError
        A state from another protocol, edited by hand, or whose windows overlap the new data;
        a broken alarm log.
    DriftError, DataValidationError
        Bad new data (no rows, missing columns, mixed time zones...).
    """
    if not hasattr(protocol, "drift"):
        from rwe.protocol import load_protocol

        protocol = load_protocol(protocol)
    if protocol.drift is None:
        raise DriftError(f"{protocol.path or '<protocol>'}: the protocol has no drift section")
    state = Path(state)
    log = Path(alarm_log) if alarm_log is not None else state.with_name(
        state.name + ".alarms.jsonl")
    now = now or _dt.datetime.now(_dt.UTC)
    labelled, unlabelled, fingerprint = _load_new(protocol, data)
    roles = protocol.roles()
    d = protocol.drift
    initialized = not state.exists()
    if initialized:
        kwargs = drift_kwargs(protocol)
        reference = kwargs["reference"]
        if not isinstance(reference, pd.DataFrame):  # a reference period of data.path
            full = protocol.load_data()
            from rwe.drift._drift import _period_mask

            reference = full.frame.loc[_period_mask(full.timestamps, reference)]
            if len(reference) == 0:
                raise DriftError(f"drift.reference_period {d.reference_period.start} to "
                                 f"{d.reference_period.end} has no rows in {full.source}")
        feats = kwargs["features"] or list(roles.features)
        ref_summary = summarize_reference(reference, roles=roles, features=feats,
                                          version=kwargs["version"],
                                          threshold=kwargs["threshold"],
                                          feature_bins=d.feature_bins)
        # the state keeps the reference's score histogram at a declared resolution (2048 bins,
        # the threshold an edge): small, and the same reference for every run, this one too
        ref_summary = ref_summary.coarsen(DEFAULT_N_BINS, thresholds=(kwargs["threshold"],))
        baseline = None
        if d.reference_period is not None and any(
                a.method in ("cusum", "ewma") for a in d.alerts):
            baseline = protocol.load_data()
        st: dict[str, Any] = {"schema": STATE_SCHEMA, "protocol_sha256": protocol.sha256,
                              "protocol_name": protocol.name, "version": 0,
                              "created": now.isoformat(), "window": d.window,
                              "reference": ref_summary.to_dict(), "rules": None, "charts": {},
                              "windows": [], "history": {"charts": [], "alarms": []},
                              "runs": [], "alarm_log": {"entries": 0, "last_hash": GENESIS}}
    else:
        st = load_state(state, protocol)
        baseline = None
    entries = read_alarm_log(log)
    known = st["alarm_log"]
    if len(entries) != known["entries"] or (entries[-1]["hash"] if entries else GENESIS) \
            != known["last_hash"]:
        raise MonitorError(f"{log}: the alarm log holds {len(entries)} entries but the state "
                           f"recorded {known['entries']}: the log was replaced or edited (or a "
                           "run stopped between appending to it and writing the state)")
    from rwe.stats.summaries import Summary

    ref_summary = Summary.from_dict(st["reference"], where=f"{state}: reference")
    kwargs = drift_kwargs(protocol)
    ref_rows = kwargs["reference"] if isinstance(kwargs["reference"], pd.DataFrame) else None
    kwargs["reference"] = ref_summary
    if baseline is not None:
        kwargs["baseline"] = baseline.subset(
            _period_rows(baseline, d.reference_period))
    else:
        kwargs["baseline"] = None
    current = labelled if labelled is not None else unlabelled
    result = assess_drift(current, unlabelled=unlabelled if labelled is not None else None,
                          reference_rows=ref_rows,
                          _state={"rules": st["rules"], "charts": st["charts"],
                                  "last_labelled": st.get("last_labelled")}, **kwargs)
    new_windows = [w for w in result.windows]
    done = set(st["windows"])
    overlap = [w for w in new_windows if w in done]
    if overlap:
        raise MonitorError(f"{state}: window {overlap[0]} was already processed (run "
                           f"{_run_of(st, overlap[0])}); the monitor adds new windows only and "
                           "never recomputes history")
    if st["windows"] and new_windows and min(new_windows) <= max(st["windows"]):
        raise MonitorError(f"{state}: the new data start in {min(new_windows)}, before the last "
                           f"processed window {max(st['windows'])}")
    version = int(st["version"]) + 1
    alarms = []
    for r in result.alarms.to_dict(orient="records"):
        alarms.append(json_safe({"schema": ALARM_SCHEMA, "at": now.isoformat(),
                                 "protocol": protocol.name,
                                 "protocol_sha256": protocol.sha256, "state_version": version,
                                 **r, "action": None}))
    last = _append_alarms(log, alarms, known["last_hash"])
    st["rules"] = result.settings["rules"]
    st["charts"] = result.settings["charts"]
    st["last_labelled"] = last_labelled(result.performance, st.get("last_labelled"))
    st["windows"] = sorted(done | set(new_windows))
    st["history"]["charts"] += json_safe(result.charts)
    st["history"]["alarms"] += json_safe(result.alarms)
    st["runs"].append({"version": version, "at": now.isoformat(),
                       "data": None if fingerprint is None else {
                           k: fingerprint.get(k) for k in ("file", "sha256", "rows")},
                       "rows": int(result.settings["n"]),
                       "unlabelled_rows": int(result.settings["n_unlabelled"]),
                       "windows": new_windows, "alarms": len(alarms)})
    st["alarm_log"] = {"entries": known["entries"] + len(alarms), "last_hash": last,
                       "path": str(log.name)}
    st["version"] = version
    st["updated"] = now.isoformat()
    st.pop("checksum", None)
    st["checksum"] = _checksum(st)
    _write_json(state, st)
    lines = [f"{'initialized' if initialized else 'updated'} {state} (state version {version}):"
             f" {len(new_windows)} window(s) {', '.join(new_windows[:3])}"
             f"{'...' if len(new_windows) > 3 else ''}, {result.settings['n']} rows"]
    for a in alarms:
        lines.append(f"ALARM  {a['method']} on {a['metric']}: {a['group']} = {a['level']} in "
                     f"{a['window']} (statistic {a['statistic']:.3g} > limit {a['limit']:.3g}, "
                     f"run length {a['run_length']} {a['run_length_unit']})")
    if not alarms:
        lines.append("no alarm")
    return MonitorRun(tuple(new_windows), tuple(alarms), result, version, state, log,
                      initialized, tuple(lines))


def _period_rows(evset, period):
    from rwe.drift._drift import _period_mask

    return _period_mask(evset.timestamps, period)


def _run_of(st: dict[str, Any], window: str) -> int | None:
    for r in st["runs"]:
        if window in r["windows"]:
            return r["version"]
    return None
