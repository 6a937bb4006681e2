"""The result of :func:`rwe.compare_models`: the verdict on one model update, every criterion
with its cells, the error budget, the provenance, and the figures drawn from them."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rwe._evidence import Finding, Verdict, render_verdict
from rwe._optional import import_pyplot, tight_layout
from rwe._results import ResultMixin, json_safe
from rwe.exceptions import InvalidParameterError

__all__ = ["ComparisonResult", "APPROVE", "REJECT", "INCONCLUSIVE", "VERDICTS", "EXIT_CODES",
           "TABLE_COLUMNS", "CRITERIA_COLUMNS", "CUMULATIVE_COLUMNS", "ROC_COLUMNS"]

APPROVE, REJECT, INCONCLUSIVE = "APPROVE", "REJECT", "INCONCLUSIVE"
VERDICTS = (APPROVE, REJECT, INCONCLUSIVE)
#: ``rwe compare`` exit status per verdict (2 is bad input, 1 an internal error).
EXIT_CODES = {APPROVE: 0, REJECT: 3, INCONCLUSIVE: 4}

TABLE_COLUMNS = ["criterion", "step", "metric", "test", "required", "comparator",
                 "comparator_roles", "group", "n_attributes", "level", "n", "events",
                 "quantity", "candidate_value", "comparator_value", "estimate", "se", "ci_low",
                 "ci_high", "ci_level", "ci_method", "threshold_value", "margin", "goal",
                 "pvalue", "pvalue_adjusted", "status", "reason", "discordant_candidate",
                 "discordant_comparator", "difference_pvalue", "difference_test"]
CRITERIA_COLUMNS = ["criterion", "step", "metric", "test", "required", "scope", "against",
                    "margin", "goal", "status", "cells_pass", "cells_fail",
                    "cells_not_evaluable", "cells_outside", "worst_group", "worst_level",
                    "worst_comparator", "worst_estimate", "worst_bound", "pvalue", "reason"]
CUMULATIVE_COLUMNS = ["version", "role", "metric", "value", "improvement_vs_original",
                      "ci_low", "ci_high", "ci_level", "margin"]
ROC_COLUMNS = ["version", "group", "level", "fpr", "tpr"]
_FLOATS = ("candidate_value", "comparator_value", "estimate", "se", "ci_low", "ci_high",
           "ci_level", "threshold_value", "margin", "goal", "pvalue", "pvalue_adjusted",
           "difference_pvalue",
           "worst_estimate", "worst_bound", "value", "improvement_vs_original", "fpr", "tpr")
_FRAMES = {"table": TABLE_COLUMNS, "criteria": CRITERIA_COLUMNS,
           "cumulative": CUMULATIVE_COLUMNS, "roc": ROC_COLUMNS}
_BANNER = {
    APPROVE: "APPROVED: candidate {c} met every acceptance criterion",
    REJECT: "REJECTED: candidate {c} is NOT approved - do not deploy it",
    INCONCLUSIVE: "INCONCLUSIVE: candidate {c} is NOT approved - the criteria could not all "
                  "be judged",
}
_COLOUR = {APPROVE: "#1a7f37", REJECT: "#b42318", INCONCLUSIVE: "#9a6700"}
_STATUS_COLOUR = {"pass": "#1a7f37", "fail": "#b42318", "not_evaluable": "#9a6700",
                  "not_evaluated": "#8c8c8c"}


def _frame(d: Any, cols: list[str]) -> pd.DataFrame:
    f = pd.DataFrame(list(d or []), columns=cols)
    return f.astype({c: float for c in cols if c in _FLOATS})


@dataclass(frozen=True, eq=False)
class ComparisonResult(ResultMixin):
    """The verdict on a model update and everything it rests on.

    Attributes
    ----------
    verdict : {"APPROVE", "REJECT", "INCONCLUSIVE"}
        APPROVE when every required criterion passes; REJECT when one fails; INCONCLUSIVE
        when none fails but one could not be judged (no cell large enough, an undefined
        interval, a gate closed by a step that could not be judged).
    candidate, current, original : str
        The candidate version, the version in use (the last approved one) and the original
        cleared version.
    comparators : tuple of dict
        ``{"version", "roles"}``: every version the candidate is compared with (current,
        original and every version approved since: the bio-creep guard).
    level : float
        One-sided level of this update's tests (``alpha_t`` of the online procedure, or the
        fixed alpha); every interval is two-sided at ``1 - 2 level``.
    decision : Verdict
        The update's own verdict (``pass`` = APPROVE, ``fail`` = REJECT, ``not_evaluable`` =
        INCONCLUSIVE) with a stable id from the plan and the candidate.
    verdicts : tuple of Verdict
        One per criterion (section ``change_control``, kind ``criterion``).
    findings : tuple of Finding
    table : pandas.DataFrame
        One row per criterion x comparator x cell: :data:`TABLE_COLUMNS`. ``pvalue`` is the
        one-sided p value of the criterion's test (H0: improvement <= ``threshold_value``);
        ``difference_pvalue`` the two-sided test of no difference (``difference_test``:
        paired DeLong, McNemar's mid-P test with the discordant counts, or the cluster-robust
        Wald test when patients repeat).
    criteria : pandas.DataFrame
        One row per criterion: status, cell counts, the worst cell: :data:`CRITERIA_COLUMNS`.
    cumulative : pandas.DataFrame
        Every approved version and the candidate against the original on this test set
        (overall; EVIDENCE.md CHG-7): :data:`CUMULATIVE_COLUMNS`.
    roc : pandas.DataFrame
        ROC points per version (overall and the cells of failed AUROC criteria).
    online : dict
        The error budget: procedure, target alpha, this test's number, level, p value,
        total spent and the level left for the next update.
    provenance : dict
        Protocol and plan sha256, data file sha256, test-set content sha256 and looks,
        per-version score sha256, model identities, package versions, n, events, patients.
    settings : dict
        Echo of the comparison's settings (threshold, methods, groupings, n_boot, seed...).
    ledger : dict or None
        The ledger entry written (path, seq, sha256, head), None when not recorded.
    """

    verdict: str
    candidate: str
    current: str
    original: str
    comparators: tuple[dict[str, Any], ...]
    level: float
    decision: Verdict
    verdicts: tuple[Verdict, ...]
    findings: tuple[Finding, ...]
    table: pd.DataFrame
    criteria: pd.DataFrame
    cumulative: pd.DataFrame
    roc: pd.DataFrame
    online: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    ledger: dict[str, Any] | None = None

    @property
    def approved(self) -> bool:
        return self.verdict == APPROVE

    @property
    def exit_code(self) -> int:
        """``rwe compare``'s exit status for this verdict (:data:`EXIT_CODES`)."""
        return EXIT_CODES[self.verdict]

    @property
    def confidence_level(self) -> float:
        return 1.0 - 2.0 * self.level

    def to_frame(self) -> pd.DataFrame:
        """The tidy per-cell table."""
        return self.table

    # ------------------------------------------------------------------ dict round trip
    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-safe: what results.json and the dossier's change-control page read."""
        out: dict[str, Any] = {
            "verdict": self.verdict, "exit_code": self.exit_code,
            "candidate": self.candidate, "current": self.current, "original": self.original,
            "comparators": json_safe(list(self.comparators)), "level": self.level,
            "confidence_level": self.confidence_level, "decision": self.decision.to_dict(),
            "verdicts": [v.to_dict() for v in self.verdicts],
            "findings": [f.to_dict() for f in self.findings],
            "online": json_safe(self.online), "provenance": json_safe(self.provenance),
            "settings": json_safe(self.settings), "ledger": json_safe(self.ledger)}
        for name in _FRAMES:
            out[name] = json_safe(getattr(self, name))
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ComparisonResult:
        return cls(verdict=d["verdict"], candidate=d["candidate"], current=d["current"],
                   original=d["original"],
                   comparators=tuple(dict(c) for c in d.get("comparators") or ()),
                   level=float(d["level"]), decision=Verdict.from_dict(d["decision"]),
                   verdicts=tuple(Verdict.from_dict(v) for v in d.get("verdicts") or ()),
                   findings=tuple(Finding.from_dict(f) for f in d.get("findings") or ()),
                   **{name: _frame(d.get(name), cols) for name, cols in _FRAMES.items()},
                   online=dict(d.get("online") or {}),
                   provenance=dict(d.get("provenance") or {}),
                   settings=dict(d.get("settings") or {}), ledger=d.get("ledger"))

    # ------------------------------------------------------------------ text
    def banner(self) -> str:
        """The one line that says what was decided (never ambiguous between verdicts)."""
        return _BANNER[self.verdict].format(c=self.candidate)

    def report(self, *, width: int = 78) -> str:
        """The terminal report of ``rwe compare``: the verdict first and last, every criterion,
        the failing and not-judged cells, the error budget and the ledger entry."""
        rule = ("=" if self.verdict == APPROVE else "#") * width
        comps = ", ".join(f"{c['version']} ({' and '.join(c['roles'])})"
                          for c in self.comparators)
        lines = [rule, f"  {self.banner()}", rule]
        prov = self.provenance
        if prov.get("protocol_name"):
            lines.append(f"protocol   {prov['protocol_name']} (sha256 "
                         f"{str(prov.get('protocol_sha256'))[:16]}...)")
        lines.append(f"plan       sha256 {str(prov.get('plan_sha256'))[:16]}...")
        ts = prov.get("test_set") or {}
        looks = f", look {ts['look']}" + (f" of at most {ts['max_looks']}"
                                          if ts.get("max_looks") else "") if ts.get("look") \
            else ""
        lines.append(f"test set   {ts.get('cases', '?'):,} cases, sha256 "
                     f"{str(ts.get('sha256'))[:16]}...{looks}")
        lines.append(f"compared   candidate {self.candidate} with {comps}")
        o = self.online
        lines.append(f"level      one-sided {self.level:.4g} ({o.get('procedure', 'fixed')}"
                     + (f", update {o['test']} of the sequence" if o.get("test") else "")
                     + f"); intervals {self.confidence_level:.2%} two-sided")
        lines.append("")
        for v, row in zip(self.verdicts, self.criteria.itertuples(index=False), strict=True):
            req = "" if row.required else " [secondary]"
            lines.append(f"step {row.step}  {render_verdict(v)}{req}")
            cells = self.table[self.table["criterion"] == row.criterion]
            bad = cells[cells["status"].isin(["fail", "not_evaluable"])]
            for r in bad.head(8).itertuples(index=False):
                where = "overall" if r.group == "overall" else f"{r.group} = {r.level}"
                vs = f" vs {r.comparator}" if isinstance(r.comparator, str) else ""
                lo = "n/a" if not math.isfinite(r.ci_low) else f"{r.ci_low:+.4f}"
                hi = "n/a" if not math.isfinite(r.ci_high) else f"{r.ci_high:+.4f}"
                est = "n/a" if not math.isfinite(r.estimate) else f"{r.estimate:+.4f}"
                tail = f"  ({r.reason})" if isinstance(r.reason, str) and r.reason else ""
                lines.append(f"      {r.status.upper():<13} {where}{vs}: {est} "
                             f"[{lo}, {hi}] vs threshold {r.threshold_value:+g}{tail}")
            if len(bad) > 8:
                lines.append(f"      ... and {len(bad) - 8} more cell(s)")
            out = int((cells["status"] == "not_evaluated").sum()) if row.status != \
                "not_evaluated" else 0
            if out:
                lines.append(f"      {out} cell(s) outside the criterion (too few rows or "
                             "events)")
        lines.append("")
        if o.get("procedure") and o.get("procedure") != "fixed":
            lines.append(f"budget     {o['procedure']} at alpha {o['alpha']:g}: "
                         f"{o.get('spent', 0):.4g} spent over {o.get('test', 1)} update(s); "
                         f"the next update is tested at {o.get('next_level', math.nan):.4g}")
        if self.ledger:
            lines.append(f"ledger     {self.ledger['path']}: entry {self.ledger['seq']}, head "
                         f"{self.ledger['sha256']}")
        else:
            lines.append("ledger     NOT RECORDED: this comparison is not a change-control "
                         "decision")
        lines.append("-" * width)
        lines.append(f"VERDICT: {self.verdict} (exit {self.exit_code})  {self.banner()}")
        return "\n".join(lines)

    def summary(self) -> str:
        return self.report()

    def _repr_html_(self) -> str:
        colour = _COLOUR[self.verdict]
        head = (f'<div style="border:3px solid {colour};padding:8px 12px;margin:4px 0;'
                f'background:{colour}14"><div style="font-size:1.4em;font-weight:bold;'
                f'color:{colour}">{html.escape(self.verdict)}</div>'
                f"<div>{html.escape(self.banner())}</div>"
                f"<div>one-sided level {self.level:.4g}; intervals "
                f"{self.confidence_level:.2%}; compared with "
                + html.escape(", ".join(c["version"] for c in self.comparators))
                + "</div></div>")
        fmt = {"float_format": lambda v: f"{v:.4g}", "na_rep": "—", "index": False,
               "escape": True}
        crit = self.criteria[["criterion", "step", "metric", "test", "required", "status",
                              "worst_group", "worst_level", "worst_estimate", "worst_bound",
                              "margin", "goal"]]
        bad = self.table[self.table["status"].isin(["fail", "not_evaluable"])]
        parts = [head, "<h4>Criteria</h4>", crit.to_html(**fmt)]
        if len(bad):
            parts += ["<h4>Cells that fail or cannot be judged</h4>",
                      bad[["criterion", "comparator", "group", "level", "n", "estimate",
                           "ci_low", "ci_high", "threshold_value", "status",
                           "reason"]].to_html(**fmt)]
        return "\n".join(parts)

    # ------------------------------------------------------------------ plots
    def plot_criteria(self, criterion: str | None = None, *, ax=None):
        """Forest plot of the improvement (or the candidate's value for a goal) with its
        interval in every cell of a criterion, against the threshold (``-margin``, 0 or the
        goal); colour by status (green pass, red fail, amber not evaluable, grey outside the
        criterion or not evaluated). Returns the Axes."""
        names = list(self.criteria["criterion"])
        if criterion is None:
            criterion = names[0]
        if criterion not in names:
            raise InvalidParameterError(f"criterion={criterion!r} is not in this result; "
                                        f"criteria: {', '.join(names)}")
        t = self.table[self.table["criterion"] == criterion]
        plt = import_pyplot()
        if ax is None:
            _, ax = plt.subplots(figsize=(7.5, 0.3 * len(t) + 1.4))
        ypos = np.arange(len(t))[::-1]
        for status, colour in _STATUS_COLOUR.items():
            sel = (t["status"] == status).to_numpy()
            if not sel.any():
                continue
            lo = t["ci_low"].to_numpy(dtype=float)[sel]
            hi = t["ci_high"].to_numpy(dtype=float)[sel]
            est = t["estimate"].to_numpy(dtype=float)[sel]
            ok = np.isfinite(lo) & np.isfinite(hi)
            ax.hlines(ypos[sel][ok], lo[ok], hi[ok], color=colour, lw=1.6)
            ax.plot(est, ypos[sel], "o", color=colour, ms=4, label=status.replace("_", " "))
        thr = float(t["threshold_value"].iloc[0])
        ax.axvline(thr, color="#b42318", ls="--", lw=1,
                   label="goal" if t["test"].iloc[0] == "goal" else
                   ("margin" if thr < 0 else "no difference"))
        if t["test"].iloc[0] != "goal":
            ax.axvline(0.0, color="0.4", ls=":", lw=1)
        labels = [("overall" if g == "overall" else f"{g}: {lev}")
                  + (f"  vs {c}" if isinstance(c, str) else "") + f" (n={n})"
                  + ("  - outside, not judged" if isinstance(why, str) and
                     why.startswith("outside") else "")
                  for g, lev, c, n, why in zip(t["group"], t["level"], t["comparator"], t["n"],
                                               t["reason"], strict=True)]
        ax.set_yticks(ypos, labels, fontsize=7)
        ax.set_xlabel(f"{t['quantity'].iloc[0]} ({self.confidence_level:.1%} CI)")
        status = self.verdicts[names.index(criterion)].status.replace("_", " ").upper()
        ax.set_title(f"{criterion}: {status}", loc="left", fontsize=10)
        ax.legend(fontsize=7, loc="best")
        return ax

    def plot_cumulative(self, metric: str | None = None, *, ax=None):
        """Cumulative effect against the original cleared version (CHG-7): each approved
        version's and the candidate's improvement over the original on this test set, with
        the non-inferiority margin. Returns the Axes."""
        c = self.cumulative
        if c.empty:
            raise InvalidParameterError("this result has no cumulative comparison")
        metric = metric or str(c["metric"].iloc[0])
        d = c[c["metric"] == metric]
        if d.empty:
            raise InvalidParameterError(f"metric={metric!r} has no cumulative comparison; "
                                        f"metrics: {', '.join(c['metric'].unique())}")
        plt = import_pyplot()
        if ax is None:
            _, ax = plt.subplots(figsize=(6.5, 3.6))
        x = np.arange(len(d))
        est = d["improvement_vs_original"].to_numpy(dtype=float)
        lo = d["ci_low"].to_numpy(dtype=float)
        hi = d["ci_high"].to_numpy(dtype=float)
        err = np.vstack([est - lo, hi - est])
        ax.errorbar(x, est, yerr=np.nan_to_num(err), fmt="o-", color="#2c7fb8", capsize=3)
        ax.axhline(0, color="0.4", ls=":", lw=1)
        m = d["margin"].to_numpy(dtype=float)
        if np.isfinite(m).any():
            ax.axhline(-float(np.nanmax(m)), color="#b42318", ls="--", lw=1,
                       label="non-inferiority margin")
            ax.legend(fontsize=7)
        ax.set_xticks(x, [f"{v}\n({r})" for v, r in zip(d["version"], d["role"], strict=True)],
                      fontsize=8)
        ax.set_ylabel(f"{metric}: improvement vs original")
        ax.set_title(f"Cumulative effect against the original version {self.original}",
                     fontsize=10)
        tight_layout(ax.figure)
        return ax

    def plot_roc(self, group: str = "overall", level: str = "all", *, ax=None):
        """ROC curves of the candidate and every comparator, overall or in a cell the result
        keeps curves for (those where an AUROC criterion failed). Returns the Axes."""
        d = self.roc[(self.roc["group"] == group) & (self.roc["level"] == level)]
        if d.empty:
            cells = sorted({f"{g}={lv}" for g, lv in zip(self.roc["group"], self.roc["level"],
                                                         strict=True)})
            raise InvalidParameterError(f"no ROC curve for {group}={level}; curves: "
                                        f"{', '.join(cells) or 'none'}")
        plt = import_pyplot()
        if ax is None:
            _, ax = plt.subplots(figsize=(5.2, 5))
        ax.plot([0, 1], [0, 1], color="0.5", ls=":", lw=1)
        for i, (v, dv) in enumerate(d.groupby("version", sort=False)):
            role = "candidate" if v == self.candidate else "comparator"
            ax.plot(dv["fpr"], dv["tpr"], lw=1.4, color=f"C{i}", label=f"{v} ({role})")
        ax.set_xlabel("1 - specificity")
        ax.set_ylabel("sensitivity")
        ax.legend(fontsize=8)
        ax.set_title("ROC, overall" if group == "overall" else f"ROC, {group} = {level}",
                     fontsize=10)
        return ax
