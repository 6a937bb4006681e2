"""The pre-specified drift and change-control plans of a protocol, as typed results whose
verdicts are all ``not_evaluated``: rwe has no drift or change-control module in this release,
so the dossier lists what the protocol pre-specified and judges none of it.

When ``rwe.drift`` and ``rwe.change_control`` land, their results replace these (same
``verdicts`` and ``findings`` protocol, same section names).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rwe._evidence import (
    STATUS_NOT_EVALUATED,
    Finding,
    Verdict,
    register_finding_template,
    verdict_id,
)
from rwe._results import json_safe

__all__ = ["PlanResult", "drift_plan", "change_control_plan"]

_DRIFT_STATEMENT = ("Drift analysis is not part of this release of rwe. The plan below was "
                    "pre-specified in the protocol; none of its tests or alarms has been run, "
                    "and no statement about drift can be made from this dossier.")
_CC_STATEMENT = ("The formal change-control procedure (PCCP: candidate versus locked and "
                 "original versions on the same cases, hierarchical testing, ledger) is not "
                 "part of this release of rwe. The acceptance criteria below were "
                 "pre-specified in the protocol and have not been evaluated; no modification "
                 "can be accepted on the basis of this dossier.")
_DRIFT_REASON = "drift analysis is not part of this release"
_CC_REASON = "the formal change-control procedure is not part of this release"

register_finding_template(
    "plan.not_evaluated",
    "{title}: {criteria} pre-specified criteria not evaluated ({reason}).")
register_finding_template("plan.absent", "The protocol has no {title_lower} plan.")


@dataclass(frozen=True)
class PlanResult:
    """A pre-specified plan that this release does not evaluate.

    Attributes
    ----------
    section : {"drift", "change_control"}
    statement : str
        Why nothing is evaluated.
    plan : dict or None
        The protocol's block (``protocol.drift`` / ``protocol.change_control``), None when the
        protocol has none.
    criteria : tuple of dict
        Change control: the non-inferiority criteria in testing order (``step, metric,
        margin, alpha, candidate_version, comparator_role, comparator_version, subgroups``).
    verdicts : tuple of Verdict
        One per pre-specified test, alarm or criterion, status ``not_evaluated``.
    findings : tuple of Finding
    """

    section: str
    statement: str
    plan: dict[str, Any] | None
    criteria: tuple[dict[str, Any], ...] = ()
    verdicts: tuple[Verdict, ...] = ()
    findings: tuple[Finding, ...] = ()

    @property
    def status(self) -> str:
        return STATUS_NOT_EVALUATED

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


def _plan_verdict(section: str, label: str, content: dict, criterion: str, reason: str,
                  source: str, margin: float | None = None) -> Verdict:
    return Verdict(id=verdict_id(section, "criterion", content, label), section=section,
                   kind="criterion", criterion=criterion, status=STATUS_NOT_EVALUATED,
                   reason=reason, source=source, margin=margin)


def _summary(section: str, title: str, verdicts: list[Verdict], reason: str) -> Finding:
    return Finding("plan.not_evaluated", subject={"section": section, "title": title},
                   values={"criteria": len(verdicts), "reason": reason}, severity="info")


def drift_plan(protocol: Any) -> PlanResult:
    """The protocol's drift and monitoring plan (``protocol.drift``): one ``not_evaluated``
    verdict per input-drift test set and per alarm."""
    d = protocol.drift
    if d is None:
        return PlanResult("drift", _DRIFT_STATEMENT, None, findings=(Finding(
            "plan.absent", subject={"section": "drift", "title_lower": "drift"}),))
    verdicts: list[Verdict] = []
    period = (f"{d.reference_period.start} to {d.reference_period.end}" if d.reference_period
              else "not specified")
    if d.features or d.tests:
        content = {"tests": list(d.tests), "features": list(d.features), "window": d.window,
                   "alpha": d.alpha, "by": list(d.by), "reference_period": period}
        verdicts.append(_plan_verdict(
            "drift", "input", content,
            f"input drift: {', '.join(d.tests)} on {', '.join(d.features) or 'no features'} per "
            f"{d.window} vs the reference period ({period}), alpha {d.alpha:g}"
            + (f", by {', '.join(d.by)}" if d.by else ""), _DRIFT_REASON, "drift.tests"))
    for i, a in enumerate(d.alerts):
        params = ", ".join(f"{k}={v:g}" for k, v in sorted(a.params.items()))
        content = json_safe(a.model_dump(mode="json"))
        verdicts.append(_plan_verdict(
            "drift", f"alert-{a.metric}", content,
            f"alarm: {a.metric} {a.method}" + (f" ({params})" if params else "")
            + (f", threshold {a.threshold:g}" if a.threshold is not None else "")
            + (f", by {', '.join(a.by)}" if a.by else ""), _DRIFT_REASON,
            f"drift.alerts[{i}]"))
    return PlanResult("drift", _DRIFT_STATEMENT, json_safe(d.model_dump(mode="json")),
                      verdicts=tuple(verdicts),
                      findings=(_summary("drift", "Drift and monitoring", verdicts,
                                         _DRIFT_REASON),))


def change_control_plan(protocol: Any) -> PlanResult:
    """The protocol's change-control (PCCP) acceptance criteria: one ``not_evaluated`` verdict
    per metric and comparator (the locked reference version and, when it differs, the
    original version), in the pre-specified testing order."""
    c = protocol.change_control
    if c is None:
        return PlanResult("change_control", _CC_STATEMENT, None, findings=(Finding(
            "plan.absent", subject={"section": "change_control",
                                    "title_lower": "change-control"}),))
    order = list(c.order) or list(c.margins)
    order += [m for m in c.margins if m not in order]
    comparisons = [("reference", c.reference_version)]
    if c.original_version != c.reference_version:
        comparisons.append(("original", c.original_version))
    criteria: list[dict[str, Any]] = []
    verdicts: list[Verdict] = []
    for step, metric in enumerate(order, start=1):
        margin = c.margins.get(metric)
        for role, version in comparisons:
            crit = {"step": step, "metric": metric, "margin": margin, "alpha": c.alpha,
                    "candidate_version": c.candidate_version, "comparator_role": role,
                    "comparator_version": version, "subgroups": c.subgroups}
            criteria.append(crit)
            text = (f"step {step}: {metric} of candidate {c.candidate_version} non-inferior to "
                    f"{role} version {version}"
                    + (f" with margin {margin:g}" if margin is not None else " (no margin given)")
                    + f", one-sided alpha {c.alpha:g}"
                    + (", overall and in subgroups" if c.subgroups else ""))
            verdicts.append(_plan_verdict("change_control", f"{metric}-{role}", crit, text,
                                          _CC_REASON, f"change_control.margins.{metric}",
                                          margin=margin))
    return PlanResult("change_control", _CC_STATEMENT, json_safe(c.model_dump(mode="json")),
                      criteria=tuple(criteria), verdicts=tuple(verdicts),
                      findings=(_summary("change_control", "Change control", verdicts,
                                         _CC_REASON),))
