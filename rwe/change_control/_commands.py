"""What ``rwe compare`` and ``rwe ledger`` do, as library functions (the CLI maps arguments
onto them and prints what they return)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rwe.exceptions import InvalidParameterError, LedgerError

from ._budget import budget_summary
from ._ledger import Ledger, verify_ledger
from ._result import ComparisonResult

__all__ = ["run_compare", "ledger_verify_text", "ledger_show_text", "MSG_NO_LEDGER"]

MSG_NO_LEDGER = ("{where}: no ledger: every comparison on the sequestered test set is "
                 "recorded (CHG-6); give --ledger FILE or set change_control.ledger; nothing "
                 "was compared")


def run_compare(protocol: str | os.PathLike, *, candidate: str | None = None,
                ledger: str | os.PathLike | None = None,
                head: str | None = None) -> ComparisonResult:
    """``rwe compare``: load the protocol, compare ``candidate`` under its change-control plan
    and append the decision to the ledger (``ledger`` or ``change_control.ledger``; one of
    them is required)."""
    from rwe.protocol import load_protocol

    from ._compare import compare_from_protocol

    p = load_protocol(protocol)
    if p.change_control is None:
        raise InvalidParameterError(f"{protocol}: the protocol has no change_control section; "
                                    "nothing was compared")
    if ledger is None and p.change_control.ledger is None:
        raise LedgerError(MSG_NO_LEDGER.format(where=protocol))
    kwargs: dict[str, Any] = {"ledger_head": head}
    if ledger is not None:
        kwargs["ledger"] = Path(ledger)
    if candidate is not None:
        known = set(p.data.columns.scores) | {v for v, m in p.change_control.models.items()
                                              if m.scores is not None}
        if candidate not in known:
            from rwe.protocol._load import _suggest

            raise InvalidParameterError(
                f"candidate version {candidate!r} is absent from the data: not a key of "
                f"data.columns.scores and no change_control.models[{candidate!r}].scores file"
                + _suggest(candidate, sorted(known)) + f" (versions: {', '.join(sorted(known))})"
                "; nothing was compared")
    return compare_from_protocol(p, candidate=candidate, **kwargs)


def ledger_verify_text(path: str | os.PathLike, *, head: str | None = None,
                       protocol: str | os.PathLike | None = None) -> list[str]:
    """``rwe ledger verify``: the lines to print when the chain is whole; :class:`LedgerError`
    naming the first bad entry otherwise."""
    plan = None
    if protocol is not None:
        from rwe.protocol import load_protocol

        from ._compare import compare_plan

        p = load_protocol(protocol)
        if p.change_control is None:
            raise InvalidParameterError(f"{protocol}: the protocol has no change_control "
                                        "section")
        plan = compare_plan(p)
    v = verify_ledger(path, head=head, plan_sha256=plan)
    if not v.ok:
        raise LedgerError(f"{path}: {v.problem}" if not str(v.problem).startswith(str(path))
                          else str(v.problem))
    lines = [f"OK  {path}: {v.entries} entr{'y' if v.entries == 1 else 'ies'}, chain intact, "
             f"head {v.head or '(empty)'}"]
    lines += [f"    note: {n}" for n in v.notes]
    return lines


def ledger_show_text(path: str | os.PathLike, *, head: str | None = None) -> list[str]:
    """``rwe ledger show``: the updates with their verdicts and the error budget left."""
    led = Ledger(path, head=head)
    if not Path(path).exists():
        raise LedgerError(f"{path}: no such ledger file")
    entries = led.entries()
    b = budget_summary(entries)
    first = entries[0] if entries else {}
    proto = (first.get("protocol") or {}).get("name")
    lines = [f"ledger {path}: {len(entries)} entr{'y' if len(entries) == 1 else 'ies'}"
             + (f", plan {first['plan_sha256'][:16]}..." if entries else "")
             + (f", protocol {proto}" if proto else ""), ""]
    head_row = (f"{'seq':>4}  {'time (UTC)':<20} {'candidate':<10} {'compared with':<22} "
                f"{'verdict':<13} {'level':>9} {'p':>9}  test set (look)")
    lines.append(head_row)
    lines.append("-" * len(head_row))
    for e in entries:
        vs = e.get("versions") or {}
        comps = ", ".join(c["version"] for c in vs.get("comparators") or [])
        o = e.get("online") or {}
        ts = e.get("test_set") or {}
        look = f"{str(ts.get('sha256'))[:10]}... ({ts.get('look')})"
        lines.append(f"{e['seq']:>4}  {str(e['time'])[:19]:<20} {str(vs.get('candidate')):<10} "
                     f"{comps[:22]:<22} {str(e.get('verdict')):<13} "
                     f"{float(o.get('level', float('nan'))):>9.3g} "
                     f"{float(o.get('pvalue', float('nan'))):>9.3g}  {look}")
    lines.append("")
    if b["tests"]:
        lines.append(f"error budget: {b['procedure']} at alpha {b['alpha']:g}; {b['tests']} "
                     f"update(s) tested, {b['approvals']} approved; levels spent "
                     f"{b['spent']:.4g}; the next update is tested at one-sided "
                     f"{b['next_level']:.4g}")
        maxl = {(e.get("test_set") or {}).get("sha256"): (e.get("test_set") or {}).get(
            "max_looks") for e in entries}
        for ts, n in b["looks"].items():
            cap = maxl.get(ts)
            lines.append(f"test set {ts[:16]}...: {n} look(s)"
                         + (f" of at most {cap}" if cap else ""))
    else:
        lines.append("error budget: no update tested yet")
    lines.append(f"head {entries[-1]['sha256']}" if entries else "head (empty ledger)")
    return lines
