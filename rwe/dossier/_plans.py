"""What the dossier shows for drift and change control when there is nothing to analyse, and
how it reads a change-control decision from the ledger.

:class:`PlanResult` stands for a section whose protocol block is absent (no verdict, one
finding saying so). :func:`recorded_comparison` recomputes the protocol's comparison from the
ledger entries before the one that recorded it (``rwe compare`` appends; a dossier build never
does: each append is a look at the sequestered test set) and says whether the two agree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rwe._evidence import (
    STATUS_NOT_EVALUABLE,
    STATUS_NOT_EVALUATED,
    Finding,
    Verdict,
    register_finding_template,
    verdict_id,
)
from rwe._results import json_safe

__all__ = ["PlanResult", "absent_plan", "unavailable", "recorded_comparison"]

_STATEMENT = {
    "drift": "The protocol has no drift section: no drift or monitoring analysis was planned, "
             "and no statement about drift can be made from this dossier.",
    "change_control": "The protocol has no change_control section: no model update was "
                      "compared, and no modification can be accepted on the basis of this "
                      "dossier.",
}

register_finding_template("plan.absent", "The protocol has no {title_lower} plan.")
register_finding_template("plan.unavailable", "{title} could not be evaluated: {reason}.")
register_finding_template(
    "change_control.recorded",
    "Decision recorded in the ledger {file}, entry {seq} of {entries} ({time}), sha256 "
    "{sha256}; the chain verifies. The comparison shown was recomputed from the entries "
    "before it and agrees with the recorded verdict and criteria.")
register_finding_template(
    "change_control.ledger_mismatch",
    "The ledger {file} entry {seq} recorded {recorded}, but the comparison recomputed from "
    "the same plan gives {computed} ({what}): the dossier does not support the recorded "
    "decision.")
register_finding_template(
    "change_control.ledger_invalid",
    "The ledger {file} does not verify ({problem}): no recorded decision can be shown; the "
    "comparison below is not a change-control decision.")
register_finding_template(
    "change_control.not_in_ledger",
    "The ledger {file} ({entries} entries) records no comparison of candidate {candidate}: "
    "run `rwe compare` to decide and record it.")


@dataclass(frozen=True)
class PlanResult:
    """A drift or change-control section whose protocol block is absent or whose analysis
    refused its inputs.

    Attributes
    ----------
    section : {"drift", "change_control"}
    statement : str
        Why nothing is evaluated.
    plan : dict or None
        Always None.
    criteria : tuple of dict
        Empty.
    verdicts : tuple of Verdict
        Empty when the block is absent (nothing was pre-specified, nothing is judged); one
        ``not_evaluable`` verdict when the analysis refused its inputs (:func:`unavailable`).
    findings : tuple of Finding
        ``plan.absent`` or ``plan.unavailable``.
    """

    section: str
    statement: str
    plan: dict[str, Any] | None
    criteria: tuple[dict[str, Any], ...] = ()
    verdicts: tuple[Verdict, ...] = ()
    findings: tuple[Finding, ...] = ()

    @property
    def status(self) -> str:
        return (STATUS_NOT_EVALUABLE if any(v.status == STATUS_NOT_EVALUABLE
                                            for v in self.verdicts) else STATUS_NOT_EVALUATED)

    def to_dict(self) -> dict[str, Any]:
        return {"section": self.section, "status": self.status, "statement": self.statement,
                "plan": json_safe(self.plan), "criteria": [json_safe(c) for c in self.criteria],
                "verdicts": [v.to_dict() for v in self.verdicts],
                "findings": [f.to_dict() for f in self.findings]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PlanResult:
        return cls(section=d["section"], statement=d["statement"], plan=d.get("plan"),
                   criteria=tuple(d.get("criteria") or ()),
                   verdicts=tuple(Verdict.from_dict(v) for v in d.get("verdicts") or ()),
                   findings=tuple(Finding.from_dict(f) for f in d.get("findings") or ()))


def absent_plan(section: str) -> PlanResult:
    """The result of a section whose protocol block is absent."""
    title = {"drift": "drift", "change_control": "change-control"}[section]
    return PlanResult(section, _STATEMENT[section], None, findings=(Finding(
        "plan.absent", subject={"section": section, "title_lower": title}),))


def unavailable(section: str, error: Exception) -> PlanResult:
    """The result of a section whose analysis refused its input (a test set other than the
    one the plan pins, a ledger of another plan, ...): one ``not_evaluable`` verdict giving
    the refusal, so the rest of the dossier stands and this section says why it cannot."""
    title = {"drift": "Drift and monitoring", "change_control": "Change control"}[section]
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    v = Verdict(verdict_id(section, "check", {"section": section}, "analysis"), section,
                "check", f"{title}: the pre-specified analysis runs on the given inputs",
                STATUS_NOT_EVALUABLE, reason=reason, source=section)
    return PlanResult(section, f"{title} could not be evaluated: {reason}", None,
                      verdicts=(v,), findings=(Finding(
                          "plan.unavailable", subject={"section": section, "title": title},
                          values={"reason": reason}, severity="critical"),))


def _recorded_view(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {"verdict": entry.get("verdict"),
            "criteria": {c["criterion"]: c["status"] for c in entry.get("criteria") or ()},
            "test_set": (entry.get("test_set") or {}).get("sha256")}


def recorded_comparison(protocol: Any, data: Any = None) -> Any:
    """The protocol's change-control comparison as the ledger recorded it.

    The last ``comparison`` entry for the protocol's candidate in ``change_control.ledger``
    (after :func:`rwe.change_control.verify_ledger` of the whole chain against this plan) is
    recomputed with :func:`rwe.change_control.compare_from_protocol` from the entries before it
    (``history=``, nothing appended); verdict, criteria statuses and test-set sha256 must
    agree with the entry (finding ``change_control.recorded``, else ``ledger_mismatch``).
    Without a ledger, or without an entry for the candidate, the comparison is computed
    unrecorded and says so (``change_control.not_recorded`` and why).
    """
    from rwe.change_control import compare_from_protocol
    from rwe.change_control._compare import compare_plan
    from rwe.change_control._ledger import Ledger
    from rwe.exceptions import LedgerError

    cc = protocol.change_control
    candidate = cc.candidate_version
    path = Path(protocol.resolve(cc.ledger)) if cc.ledger is not None else None
    extra: list[Finding] = []
    match = None
    entries: list[dict[str, Any]] = []
    if path is not None and path.exists():
        try:  # the whole chain, verified against this plan
            entries = Ledger(path).entries(plan_sha256=compare_plan(protocol))
        except LedgerError as exc:
            problem = str(exc).removeprefix(f"{path}: ")  # no path of this machine
            extra.append(Finding("change_control.ledger_invalid", {"file": path.name},
                                 {"problem": problem}, {}, "critical"))
        else:
            mine = [e for e in entries if e.get("kind") == "comparison"
                    and str((e.get("versions") or {}).get("candidate")) == str(candidate)]
            if mine:
                match = mine[-1]
            else:
                extra.append(Finding("change_control.not_in_ledger", {"file": path.name},
                                     {"entries": len(entries), "candidate": candidate}, {},
                                     "warning"))
    if match is None:
        result = compare_from_protocol(protocol, data, ledger=False)
        return dataclasses.replace(result, findings=result.findings + tuple(extra))
    history = [e for e in entries if e["seq"] < match["seq"]]
    result = compare_from_protocol(protocol, data, ledger=False, history=history)
    rec = _recorded_view(match)
    got = {"verdict": result.verdict,
           "criteria": {str(r.criterion): str(r.status) for r in result.criteria.itertuples()},
           "test_set": (result.provenance.get("test_set") or {}).get("sha256")}
    differ = [k for k in ("verdict", "criteria", "test_set") if rec[k] != got[k]]
    ledger = {"path": path.name, "file": path.name, "seq": int(match["seq"]),
              "sha256": match["sha256"], "time": match.get("time"),
              "entries": len(entries), "head": entries[-1]["sha256"], "verified": True,
              "agrees": not differ}
    findings = [f for f in result.findings if f.code != "change_control.not_recorded"]
    if differ:
        findings.append(Finding("change_control.ledger_mismatch", {"file": path.name}, {
            "seq": int(match["seq"]), "recorded": rec["verdict"], "computed": got["verdict"],
            "what": ", ".join(f"{k} differs" for k in differ)}, {}, "critical"))
    else:
        findings.append(Finding("change_control.recorded", {"file": path.name}, {
            "seq": int(match["seq"]), "entries": len(entries), "time": match.get("time"),
            "sha256": match["sha256"]}, {}, "info"))
    return dataclasses.replace(result, findings=tuple(findings), ledger=ledger)
