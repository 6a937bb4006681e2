"""Number formatting and HTML tables for reviewer pages (numbers stay numbers until here)."""

from __future__ import annotations

import html
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rwe.dossier._sections import STATUS_LABELS, status_label
from rwe.dossier._suppress import SUPPRESSED

if TYPE_CHECKING:  # tables are rendered from records; pandas only when given a DataFrame
    import pandas as pd

__all__ = ["Col", "fmt_num", "fmt_int", "fmt_pct", "fmt_p", "fmt_ci", "html_table",
           "status_badge", "esc", "bullet_list", "definition_list", "finding_text",
           "verdict_detail"]

DASH = "—"
EN = "–"


def esc(value: Any) -> str:
    """HTML-escaped ``str(value)``."""
    return html.escape("" if value is None else str(value), quote=True)


def _missing(v: Any) -> bool:
    pd = sys.modules.get("pandas")
    if v is None or (pd is not None and v is pd.NA):
        return True
    try:
        return isinstance(v, float) and not math.isfinite(v)
    except TypeError:  # pragma: no cover
        return False


def fmt_num(v: Any, digits: int = 3) -> str:
    """Fixed decimals (``0.809``); missing as an em dash; strings pass through."""
    if isinstance(v, str):
        return v
    if _missing(v):
        return DASH
    return f"{float(v):,.{digits}f}"


def fmt_int(v: Any) -> str:
    """Integer with thousands separators (``100,000``)."""
    if isinstance(v, str):
        return v
    if _missing(v):
        return DASH
    return f"{int(round(float(v))):,}"


def fmt_pct(v: Any, digits: int = 1) -> str:
    """Proportion as a percentage (``79.7%``)."""
    if isinstance(v, str):
        return v
    if _missing(v):
        return DASH
    return f"{100 * float(v):.{digits}f}%"


def fmt_p(v: Any) -> str:
    """p value: ``<0.001`` below one in a thousand, else three decimals."""
    if isinstance(v, str):
        return v
    if _missing(v):
        return DASH
    v = float(v)
    return "<0.001" if v < 0.001 else f"{v:.3f}"


def fmt_ci(est: Any, low: Any, high: Any, digits: int = 3, pct: bool = False) -> str:
    """``0.809 (0.801–0.817)``; a suppressed estimate stays ``suppressed``."""
    for v in (est, low, high):
        if isinstance(v, str):
            return v
    f = (lambda x: fmt_pct(x, max(digits - 2, 1))) if pct else (lambda x: fmt_num(x, digits))
    if _missing(est):
        return DASH
    if _missing(low) or _missing(high):
        return f(est)
    # a dash between negative bounds reads as a minus sign: use a comma then
    sep = " to " if float(low) < 0 or float(high) < 0 else EN
    return f"{f(est)} <span class='ci'>({f(low)}{sep}{f(high)})</span>"


#: CSS class of each core status's badge.
_BADGE = {"pass": "pass", "fail": "fail", "not_evaluable": "insufficient",
          "not_evaluated": "noteval"}


def status_badge(status: Any) -> str:
    """A coloured verdict label from a core status (``pass``, ``fail``, ``not_evaluable``,
    ``not_evaluated``), shown with its display word."""
    s = str(status)
    return f"<span class='badge {_BADGE.get(s, 'other')}'>{esc(status_label(s))}</span>"


def finding_text(finding: Any, k: int) -> str:
    """A finding (a :class:`rwe._evidence.Finding` or its dict) as a sentence, with the
    small-cell rule applied to its typed counts."""
    from rwe._evidence import Finding
    from rwe.dossier._suppress import suppressed_finding_text

    f = finding if isinstance(finding, Finding) else Finding.from_dict(finding)
    return suppressed_finding_text(f, k)


def verdict_detail(verdict: Any, k: int) -> str:
    """One line under a verdict: the analysis's reason and, for a criterion judged in several
    cells, how many passed, failed or could not be judged (no cell counts). A cell not
    evaluable because sites withheld its counts (a merge's: the cell's ``withheld_at``,
    :mod:`rwe.federation._withheld`) is counted as such, with the sites named."""
    v = verdict if isinstance(verdict, dict) else verdict.to_dict()
    parts = [str(v["reason"])] if v.get("reason") else []
    counts = v.get("counts") or {}
    total = sum(int(x) for x in counts.values())
    if total > 1 and v.get("kind") == "goal":
        tail = f"met in {counts.get('pass', 0)} of {total} cells"
        n_ne = int(counts.get("not_evaluable") or 0)
        held = [c for c in v.get("cells") or () if c.get("status") == "not_evaluable"
                and c.get("withheld_at")]
        if held:
            sites = sorted({str(s) for c in held for s in c["withheld_at"]})
            tail += (f"; {len(held)} not evaluable (counts withheld at {', '.join(sites)} by "
                     "disclosure control)")
        if n_ne > len(held):
            tail += f"; {n_ne - len(held)} not evaluable (too few rows or events)"
        parts.append(tail)
    return "; ".join(parts)


@dataclass(frozen=True)
class Col:
    """A column of a reviewer table.

    ``fmt`` is one of ``text``, ``int``, ``num``, ``pct``, ``p``, ``ci``, ``pctci``, ``status``,
    ``bool``, ``html``; ``ci``/``pctci`` read the estimate from ``key`` and the bounds from
    ``low``/``high``.
    """

    label: str
    key: str
    fmt: str = "text"
    digits: int = 3
    low: str | None = None
    high: str | None = None
    title: str | None = None

    @property
    def numeric(self) -> bool:
        return self.fmt in ("int", "num", "pct", "p", "ci", "pctci")

    def render(self, row: pd.Series | dict) -> str:
        v = row.get(self.key)
        if self.fmt in ("ci", "pctci"):
            if isinstance(v, str):
                return _sup(v)
            return fmt_ci(v, row.get(self.low), row.get(self.high), self.digits,
                          pct=self.fmt == "pctci")
        if isinstance(v, Bound):
            return esc(v)
        if isinstance(v, str) and self.fmt not in ("text", "status", "html"):
            return _sup(v)
        if self.fmt == "int":
            return fmt_int(v)
        if self.fmt == "num":
            return fmt_num(v, self.digits)
        if self.fmt == "pct":
            return fmt_pct(v, self.digits if self.digits != 3 else 1)
        if self.fmt == "p":
            return esc(fmt_p(v))  # "<0.001"
        if self.fmt == "status":
            return status_badge(v)
        if self.fmt == "bool":
            return DASH if _missing(v) else ("yes" if bool(v) else "no")
        if self.fmt == "html":
            return "" if v is None else str(v)
        return DASH if _missing(v) else esc(v)


def _sup(v: str) -> str:
    if v == SUPPRESSED:
        return "<span class='sup' title='suppressed: small cell'>suppressed</span>"
    return f"<span class='sup'>{esc(v)}</span>"


def html_table(frame: pd.DataFrame | Sequence[dict], columns: Sequence[Col], *,
               caption: str | None = None, group: str | None = None, note: str | None = None,
               css: str = "", empty: str = "No rows.") -> str:
    """Render an aggregate table: numbers right-aligned in tabular figures, intervals beside
    their estimates, optional group header rows (``group`` column), caption and note."""
    rows = frame.to_dict("records") if hasattr(frame, "to_dict") else list(frame)
    parts = [f"<table class='rwe {css}'>"]
    if caption:
        parts.append(f"<caption>{caption}</caption>")
    parts.append("<thead><tr>" + "".join(
        f"<th class='{'num' if c.numeric else 'txt'}'"
        + (f" title='{esc(c.title)}'" if c.title else "") + f">{esc(c.label)}</th>"
        for c in columns) + "</tr></thead><tbody>")
    if not rows:
        parts.append(f"<tr><td colspan='{len(columns)}' class='empty'>{esc(empty)}</td></tr>")
    current = object()
    for row in rows:
        if group is not None and row.get(group) != current:
            current = row.get(group)
            parts.append(f"<tr class='grp'><th colspan='{len(columns)}'>{esc(current)}</th></tr>")
        parts.append("<tr>" + "".join(
            f"<td class='{'num' if c.numeric else 'txt'}'>{c.render(row)}</td>" for c in columns)
            + "</tr>")
    parts.append("</tbody></table>")
    if note:
        parts.append(f"<p class='tnote'>{note}</p>")
    return "\n".join(parts)


def bullet_list(items: Iterable[str], css: str = "findings") -> str:
    items = list(items)
    if not items:
        return "<p class='muted'>None.</p>"
    return f"<ul class='{css}'>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"


def definition_list(pairs: Iterable[tuple[str, Any]], css: str = "facts") -> str:
    """A two-column facts table (label, value); values that are None read 'not provided'."""
    rows = []
    for label, value in pairs:
        if value is None or value == "" or value == []:
            shown = "<span class='muted'>not provided</span>"
        elif isinstance(value, (list, tuple)):
            shown = esc(", ".join(str(v) for v in value))
        elif isinstance(value, RawHTML):
            shown = str(value)
        else:
            shown = esc(value)
        rows.append(f"<tr><th>{esc(label)}</th><td>{shown}</td></tr>")
    return f"<table class='{css}'>" + "".join(rows) + "</table>"


class RawHTML(str):
    """A string that :func:`definition_list` inserts without escaping."""


class Bound(str):
    """A count shown as a bound (``at least 54``): a numeric column prints it as text, not
    as a suppressed cell."""


def fmt_bound(v: Any, side: str = "at least") -> Any:
    """``v`` as a :class:`Bound` (``at least 1,234``); a string (a suppressed count) or a
    missing value is returned as it is."""
    if isinstance(v, str) or _missing(v):
        return v
    return Bound(f"{side} {fmt_int(v)}")


__all__ += ["RawHTML", "Bound", "fmt_bound", "STATUS_LABELS"]
