"""Typed verdicts and findings: what every analysis concludes, before any text is written.

A :class:`Verdict` judges one pre-specified criterion (a performance goal, a representativeness
check, a change-control criterion) with a status from :data:`STATUSES`, the numbers it rests on
and a stable id derived from the protocol content of the criterion (not its position), so the
same criterion keeps its id when a protocol is reordered. A :class:`Finding` is one observation
(a code, what it is about, the values and the counts behind them, a severity). Neither holds a
sentence with numbers baked in: text is rendered at the edge (:meth:`Finding.text`,
:func:`render_verdict`) from templates keyed by the code, and small-cell suppression acts on the
typed ``counts`` (:meth:`Finding.suppressed`), never on prose.

Status vocabulary (DESIGN.md):

``pass``
    the criterion is met on its confidence bound;
``fail``
    the criterion is evaluable and not met;
``not_evaluable``
    the criterion was evaluated but the data cannot decide it (too few rows or events, an
    undefined interval, a goal out of reach even for a perfect result); ``reason`` says which;
``not_evaluated``
    the analysis that would judge it did not run (section not built, module not available).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rwe._results import Interval, canonical_sha256, json_safe

__all__ = [
    "STATUS_PASS", "STATUS_FAIL", "STATUS_NOT_EVALUABLE", "STATUS_NOT_EVALUATED", "STATUSES",
    "SEVERITIES", "Verdict", "Finding", "verdict_id", "combine_statuses", "FINDING_TEMPLATES",
    "register_finding_template", "render_verdict",
]

STATUS_PASS = "pass"
STATUS_FAIL = "fail"
STATUS_NOT_EVALUABLE = "not_evaluable"
STATUS_NOT_EVALUATED = "not_evaluated"
STATUSES = (STATUS_PASS, STATUS_FAIL, STATUS_NOT_EVALUABLE, STATUS_NOT_EVALUATED)
SEVERITIES = ("info", "warning", "critical")

_MSG_STATUS = "status={status!r} is not valid; choose one of: {valid}"
_MSG_SEVERITY = "severity={severity!r} is not valid; choose one of: {valid}"


def verdict_id(section: str, kind: str, content: Mapping[str, Any], label: str = "") -> str:
    """Stable id of a criterion: ``section.kind.label-<8 hex of sha256(content)>``.

    ``content`` is the protocol's own content of the criterion (e.g. a goal's metric, goal,
    scope and version): reordering a protocol keeps every id; changing a criterion changes it.
    """
    digest = canonical_sha256(dict(content))[:8]
    stem = f"{label}-{digest}" if label else digest
    return f"{section}.{kind}.{stem}"


def combine_statuses(statuses: list[str]) -> str:
    """Status of a criterion judged in several cells: ``fail`` if any cell fails, else ``pass``
    if every cell passes, else ``not_evaluable`` (some or all cells could not be judged: a
    criterion meant for every subgroup is not met by passing the ones that could be judged)."""
    if not statuses:
        return STATUS_NOT_EVALUABLE
    if STATUS_FAIL in statuses:
        return STATUS_FAIL
    if all(s == STATUS_PASS for s in statuses):
        return STATUS_PASS
    if all(s == STATUS_NOT_EVALUATED for s in statuses):
        return STATUS_NOT_EVALUATED
    return STATUS_NOT_EVALUABLE


@dataclass(frozen=True)
class Verdict:
    """The judgement of one pre-specified criterion.

    Attributes
    ----------
    id : str
        Stable id from the criterion's protocol content (:func:`verdict_id`).
    section : str
        Analysis that judged it (``"subgroups"``, ``"representativeness"``, ...).
    kind : {"goal", "check", "criterion"}
        A performance goal, a representativeness/data check, or a change-control criterion.
    criterion : str
        The rule as applied, in the protocol's words (e.g. ``"sensitivity: lower 95% bound >=
        0.75, overall and in every subgroup"``). Contains no data.
    status : {"pass", "fail", "not_evaluable", "not_evaluated"}
    estimate : float or None
        The estimate judged (the worst cell's for a criterion over several cells).
    interval : Interval or None
    goal, margin : float or None
        The pre-specified goal or margin.
    reason : str or None
        Why the status is not ``pass`` (or how it was decided), without cell counts.
    source : str or None
        Protocol field path of the criterion (``"performance.goals[0]"``).
    counts : dict
        Cells per status for a criterion over several cells (``{"pass": 40, "fail": 2,
        "not_evaluable": 3}``).
    cells : tuple of dict
        The judged cells (``group, level, status, estimate, bound, n, events, reason``): the
        typed record small-cell suppression acts on.
    description : str or None
        The protocol's description of the criterion.
    """

    id: str
    section: str
    kind: str
    criterion: str
    status: str
    estimate: float | None = None
    interval: Interval | None = None
    goal: float | None = None
    margin: float | None = None
    reason: str | None = None
    source: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    cells: tuple[dict[str, Any], ...] = ()
    description: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(_MSG_STATUS.format(status=self.status, valid=", ".join(STATUSES)))
        object.__setattr__(self, "cells", tuple(dict(c) for c in self.cells))

    @property
    def passed(self) -> bool:
        return self.status == STATUS_PASS

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "section": self.section, "kind": self.kind,
                "criterion": self.criterion, "status": self.status,
                "estimate": json_safe(self.estimate),
                "interval": None if self.interval is None else self.interval.to_dict(),
                "goal": json_safe(self.goal), "margin": json_safe(self.margin),
                "reason": self.reason, "source": self.source,
                "counts": {k: int(v) for k, v in self.counts.items()},
                "cells": [json_safe(c) for c in self.cells], "description": self.description}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Verdict:
        iv = d.get("interval")
        interval = None if iv is None else Interval(
            math.nan if iv["low"] is None else iv["low"],
            math.nan if iv["high"] is None else iv["high"], iv["level"], iv["method"])
        return cls(id=d["id"], section=d["section"], kind=d["kind"], criterion=d["criterion"],
                   status=d["status"], estimate=d.get("estimate"), interval=interval,
                   goal=d.get("goal"), margin=d.get("margin"), reason=d.get("reason"),
                   source=d.get("source"), counts=dict(d.get("counts") or {}),
                   cells=tuple(d.get("cells") or ()), description=d.get("description"))


#: Text templates of the finding codes, ``str.format`` fields from ``subject`` and ``values``
#: (numbers formatted by the template), filled in by :meth:`Finding.text`. Analyses register
#: theirs next to the code that produces them (:func:`register_finding_template`).
FINDING_TEMPLATES: dict[str, str] = {}
#: The modules that register the templates of each code prefix: a finding read back from JSON
#: (a notebook kernel, the model card) finds its text without the caller importing them.
_TEMPLATE_OWNERS: dict[str, tuple[str, ...]] = {
    "representativeness": ("rwe.representativeness._findings",),
    "subgroups": ("rwe.subgroups._templates",),
    "drift": ("rwe.drift._templates",),
    "change_control": ("rwe.change_control._templates", "rwe.dossier._plans"),
    "provenance": ("rwe.data._provenance",),
    "cohort": ("rwe.cohort._table1",),
    "model_card": ("rwe.dossier._modelcard",),
    "plan": ("rwe.dossier._plans",),
}


def finding_template(key: str) -> str | None:
    """The registered template of a finding code (or ``code:suppressed``), importing the
    module that registers it when needed."""
    if key not in FINDING_TEMPLATES:
        import importlib

        for module in _TEMPLATE_OWNERS.get(key.split(".", 1)[0], ()):
            importlib.import_module(module)
    return FINDING_TEMPLATES.get(key)


def register_finding_template(code: str, template: str, suppressed: str | None = None) -> None:
    """Register the text of a finding code (and its wording when its counts are suppressed)."""
    FINDING_TEMPLATES[code] = template
    if suppressed is not None:
        FINDING_TEMPLATES[code + ":suppressed"] = suppressed


@dataclass(frozen=True)
class Finding:
    """One observation of an analysis, typed.

    Attributes
    ----------
    code : str
        What kind of observation (``"subgroups.goal_not_met"``, ``"representativeness.
        under_represented"``...): selects the text template and lets reports pick findings by
        kind (never by substring).
    subject : dict
        What it is about (``{"attribute": "race", "category": "Asian"}``, ``{"group": "sex x
        race", "level": "F & Black", "metric": "sensitivity"}``).
    values : dict
        The numbers (estimates, bounds, ratios), unformatted.
    counts : dict
        The counts behind them (``n``, ``events``, cells...): small-cell suppression reads
        these, so a finding on a cell below the minimum count is rendered without its numbers.
    severity : {"info", "warning", "critical"}
    """

    code: str
    subject: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    severity: str = "info"

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(_MSG_SEVERITY.format(severity=self.severity,
                                                  valid=", ".join(SEVERITIES)))

    def suppressed(self, k: int) -> bool:
        """True when a count behind the finding is between 1 and ``k - 1`` (small cell)."""
        for v in self.counts.values():
            vals = v if isinstance(v, (list, tuple)) else [v]
            for x in vals:
                if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) \
                        and 0 < x < k:
                    return True
        return False

    def text(self, k: int | None = None) -> str:
        """The finding as a sentence, from its code's template; with ``k`` given and a count
        below it, the suppressed wording (no numbers) is used."""
        key = self.code
        if k is not None and self.suppressed(k):
            key = self.code + ":suppressed"
            if finding_template(key) is None:
                return f"{self.code}: suppressed (a count behind it is below {k})"
        template = finding_template(key)
        if template is not None:
            try:
                return template.format(**self.subject, **self.values, **self.counts, k=k)
            except (KeyError, IndexError):  # a finding saved by a version with other fields
                pass
        return f"{self.code}: " + ", ".join(f"{a}={b}" for a, b in
                                             {**self.subject, **self.values}.items())

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "subject": json_safe(self.subject),
                "values": json_safe(self.values), "counts": json_safe(self.counts),
                "severity": self.severity}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Finding:
        return cls(code=d["code"], subject=dict(d.get("subject") or {}),
                   values=dict(d.get("values") or {}), counts=dict(d.get("counts") or {}),
                   severity=d.get("severity", "info"))


def render_verdict(v: Verdict) -> str:
    """One line for a terminal or a page: ``STATUS  criterion  (reason)``."""
    tail = f" ({v.reason})" if v.reason else ""
    return f"{v.status.upper():<14} {v.criterion}{tail}"
