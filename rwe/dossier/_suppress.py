"""Small-cell suppression when rendering reviewer tables (DESIGN.md principle 7).

Which cells reviewers may not see is decided once per dossier by
:mod:`rwe.dossier._privacy` (the small-cell rule with complementary suppression, with its
sources); :func:`reviewer_table` applies that plan to one table: a count from 1 to ``k - 1``
reads ``<k``, the other counts of a hidden row and every estimate that depends on them read
"suppressed". Rule 1 (no count in ``1..k-1``, nor its complement ``total - part``) is applied
again to every table as a safety net (:func:`small_rows`).

Zero counts are shown (structural zeros carry no re-identification risk). ``results.json``
keeps the unsuppressed aggregates in its section records for analysts.

Stop-gap: :func:`scrub_text`, :func:`scrub_named` and :func:`scrub_figure` still scrub counts
written in words (``n=6``, ``(6)``, ``6/408``, ``6 rows``) from the sentences the
representativeness module writes as text and from figure labels; they go when that module
types its findings. Everything else acts on typed counts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported inside the table functions: text scrubbing and one-row
    import numpy as np  # records (the plan-only sections) need neither numpy nor pandas
    import pandas as pd

__all__ = ["SUPPRESSED", "small_label", "suppress_small_cells", "small_rows", "small_record",
           "scrub_text", "scrub_figure", "suppressed_finding_text", "reviewer_table",
           "hidden_names", "scrub_named"]

#: What a reviewer page shows instead of a suppressed value.
SUPPRESSED = "suppressed"


def small_label(k: int) -> str:
    """The label shown for a count in ``1..k-1``: ``"<k"``."""
    return f"<{int(k)}"


def _is_small(values: pd.Series, k: int) -> np.ndarray:
    import numpy as np
    import pandas as pd

    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        return (v >= 1) & (v < k)


def small_rows(frame: pd.DataFrame, k: int, *, counts: Sequence[str],
               complements: Sequence[tuple[str, str]] = ()) -> np.ndarray:
    """Boolean mask of the rows that rule 1 makes small."""
    import numpy as np
    import pandas as pd

    mask = np.zeros(len(frame), dtype=bool)
    for c in counts:
        if c in frame.columns:
            mask |= _is_small(frame[c], k)
    for total, part in complements:
        if total in frame.columns and part in frame.columns:
            rest = pd.to_numeric(frame[total], errors="coerce") - pd.to_numeric(
                frame[part], errors="coerce")
            mask |= _is_small(rest, k)
    return mask


def _count(v: Any) -> float:
    """A count as a float; NaN for what is not a number (None, "<11")."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def small_record(row: Mapping[str, Any], k: int, *, counts: Sequence[str],
                 complements: Sequence[tuple[str, str]] = ()) -> bool:
    """Rule 1 for one record (a dict): :func:`small_rows` of a one-row table, without
    building one."""
    vals = [_count(row[c]) for c in counts if c in row]
    vals += [_count(row[t]) - _count(row[p]) for t, p in complements if t in row and p in row]
    return any(1 <= v < k for v in vals if not math.isnan(v))


def suppress_small_cells(frame: pd.DataFrame, k: int, *, counts: Sequence[str],
                         dependent: Sequence[str] = (),
                         complements: Sequence[tuple[str, str]] = (),
                         secondary_by: Sequence[Sequence[str]] = ()) -> pd.DataFrame:
    """A copy of ``frame`` ready for reviewers: small counts as ``"<k"``, dependent values
    ``"suppressed"`` (rules in the module docstring).

    Parameters
    ----------
    frame : pandas.DataFrame
        An aggregate table (never patient rows).
    k : int
        Minimum cell size (``protocol.report.small_cell_k``).
    counts : sequence of str
        Count columns; the first is the row's total (kept when it is not itself small).
    dependent : sequence of str
        Columns computed from the counts (estimates, intervals, shares, ratios).
    complements : sequence of (str, str)
        ``(total, part)`` pairs whose difference is a count too (``("n", "events")``).
    secondary_by : sequence of sequence of str
        Partitions for secondary suppression (e.g. ``[["attribute"]]``).

    Returns
    -------
    pandas.DataFrame
        Object-dtype copy with the same columns and index, plus nothing else: the mask of
        suppressed rows is available as ``result.attrs["suppressed"]``.
    """
    import numpy as np
    import pandas as pd

    k = int(k)
    counts = [c for c in counts if c in frame.columns]
    dependent = [c for c in dependent if c in frame.columns]
    primary = small_rows(frame, k, counts=counts, complements=complements)
    secondary = np.zeros(len(frame), dtype=bool)
    if counts and len(frame):
        first = pd.to_numeric(frame[counts[0]], errors="coerce").to_numpy(dtype=float)
        changed = True
        while changed:  # suppressing one row can expose another partition: repeat until stable
            changed = False
            hidden = primary | secondary
            for keys in secondary_by:
                keys = [c for c in keys if c in frame.columns]
                if not keys:
                    continue
                groups = frame.groupby(keys, sort=False, dropna=False).indices
                for idx in groups.values():
                    idx = np.asarray(idx)
                    if int(hidden[idx].sum()) != 1:
                        continue
                    cand = idx[~hidden[idx] & (first[idx] > 0)]
                    if len(cand):
                        j = cand[np.argmin(first[cand])]
                        secondary[j] = True
                        hidden[j] = True
                        changed = True
    out = frame.astype(object).copy()
    label = small_label(k)
    for pos in np.flatnonzero(primary | secondary):
        for i, c in enumerate(counts):
            v = pd.to_numeric(pd.Series([frame[c].iloc[pos]]), errors="coerce").iloc[0]
            if primary[pos] and pd.notna(v) and 1 <= v < k:
                out.iat[pos, out.columns.get_loc(c)] = label
            elif secondary[pos] or i > 0:
                out.iat[pos, out.columns.get_loc(c)] = SUPPRESSED
        for c in dependent:
            out.iat[pos, out.columns.get_loc(c)] = SUPPRESSED
    out.attrs["suppressed"] = primary | secondary
    return out


_N_EQ = re.compile(r"\bn\s*=\s*(\d[\d,]*)")
_PAREN = re.compile(r"(?<=\s)\((\d[\d,]*)\)")
_FRACTION = re.compile(r"\b(\d[\d,]*)/(\d[\d,]*)\b")
_ROWS = re.compile(r"\b(\d[\d,]*)(\s+(?:cohort\s+)?(?:row|rows|row\(s\)|scan|scans|patient|"
                   r"patients|positives|events)\b)")


_PPR = re.compile(r"PPR \d+(?:\.\d+)?(?: \(\d+(?:\.\d+)?-\d+(?:\.\d+)?\))?")
_SHARE = re.compile(r"\b\d+\.\d+%")


def _num(s: str) -> int:
    return int(s.replace(",", ""))


def scrub_text(text: str, k: int) -> str:
    """Replace counts in ``1..k-1`` written in plain words (``n=6``, ``(6)``, ``6/408``,
    ``6 rows``) by ``<k``."""
    k = int(k)
    lab = small_label(k)

    def small(s: str) -> bool:
        return 1 <= _num(s) < k

    text = _N_EQ.sub(lambda m: f"n{lab}" if small(m.group(1)) else m.group(0), text)
    text = _PAREN.sub(lambda m: f"({lab})" if small(m.group(1)) else m.group(0), text)
    text = _FRACTION.sub(lambda m: (f"{lab}/{m.group(2)}" if small(m.group(1)) else m.group(0)),
                         text)
    text = _ROWS.sub(lambda m: f"{lab}{m.group(2)}" if small(m.group(1)) else m.group(0), text)
    if lab in text:  # a small count was named: drop the shares and ratios that give it away
        text = _PPR.sub("PPR suppressed", text)
        text = _SHARE.sub("[suppressed]", text)
    return text


def _scrub_ticks(axis, k: int) -> None:
    """Scrub the major tick labels of ``axis``. Labels set as text (a FixedFormatter) are
    scrubbed where they are stored; numeric formatters write plain numbers, never one of the
    count patterns, and are skipped (reading their labels would lay the ticks out once more
    before the figure is drawn); any other formatter's labels are read and replaced."""
    from matplotlib.ticker import FixedFormatter, LogFormatter, NullFormatter, ScalarFormatter

    fmt = axis.get_major_formatter()
    if isinstance(fmt, (ScalarFormatter, LogFormatter, NullFormatter)):
        return
    if isinstance(fmt, FixedFormatter):
        texts = [str(s) for s in fmt.seq]
        new = [scrub_text(s, k) for s in texts]
        if new != texts:
            axis.set_major_formatter(FixedFormatter(new))
        return
    labels = axis.get_ticklabels()
    texts = [lab.get_text() for lab in labels]
    new = [scrub_text(s, k) for s in texts]
    if new != texts:
        axis.set_ticks(axis.get_ticklocs())
        axis.set_ticklabels(new)


def scrub_figure(fig, k: int) -> None:
    """Scrub small counts from a matplotlib figure's labels in place: tick labels, titles,
    legends and annotations (an annotation that is just a count in ``1..k-1`` becomes
    ``<k``)."""
    k = int(k)
    for ax in fig.axes:
        for t in ax.texts:
            s = t.get_text().strip()
            if s.isdigit() and 1 <= int(s) < k:
                t.set_text(small_label(k))
            else:
                t.set_text(scrub_text(t.get_text(), k))
        for axis in (ax.yaxis, ax.xaxis):
            _scrub_ticks(axis, k)
        ax.set_title(scrub_text(ax.get_title(), k))
        for loc in ("left", "right"):
            title = ax.get_title(loc=loc)
            if title:
                ax.set_title(scrub_text(title, k), loc=loc)
        leg = ax.get_legend()
        if leg is not None:
            for t in leg.get_texts():
                t.set_text(scrub_text(t.get_text(), k))
    for t in fig.texts:
        t.set_text(scrub_text(t.get_text(), k))
    if getattr(fig, "_suptitle", None) is not None:
        fig._suptitle.set_text(scrub_text(fig._suptitle.get_text(), k))


def suppressed_finding_text(finding: Any, k: int) -> str:
    """A typed finding's sentence for reviewers: its template, or the suppressed wording when
    one of its counts is in ``1..k-1`` (:meth:`rwe._evidence.Finding.text`). The sentences the
    representativeness module still writes as text are scrubbed (stop-gap)."""
    from rwe.dossier._rep_bridge import TEXT_CODE

    if finding.code == TEXT_CODE:
        return scrub_text(str(finding.values.get("text", "")), k)
    return finding.text(k)


# ----------------------------------------------------------------------------- with a plan
def reviewer_table(frame: pd.DataFrame, plan: Any, k: int, *, key: Any,
                   counts: Sequence[str], dependent: Sequence[str] = (),
                   complements: Sequence[tuple[str, str]] = (), family: str = "size"
                   ) -> pd.DataFrame:
    """A copy of ``frame`` for reviewers under the dossier's disclosure plan
    (:mod:`rwe.dossier._privacy`): in a row whose cell ``key(row) -> (group, level)`` the plan
    hides (or whose own counts are small, rule 1 applied again as a safety net), counts in
    ``1..k-1`` read ``<k``, the other counts and every ``dependent`` value "suppressed". The
    mask of suppressed rows is ``result.attrs["suppressed"]``."""
    import numpy as np

    k = int(k)
    counts = [c for c in counts if c in frame.columns]
    dependent = [c for c in dependent if c in frame.columns]
    small = small_rows(frame, k, counts=counts, complements=complements)
    planned = np.array([bool(plan is not None and plan.hides(*key(r), family))
                        for r in frame.to_dict("records")], dtype=bool)
    hide = small | planned
    out = frame.astype(object).copy()
    label = small_label(k)
    for pos in np.flatnonzero(hide):
        for c in counts:
            v = _count(frame[c].iloc[pos])
            out.iat[pos, out.columns.get_loc(c)] = label if 1 <= v < k else SUPPRESSED
        for c in dependent:
            out.iat[pos, out.columns.get_loc(c)] = SUPPRESSED
    out.attrs["suppressed"] = hide
    return out


def hidden_names(plan: Any) -> set[str]:
    """Every level name of a cell the plan hides (single levels and the parts of
    intersectional ones): a sentence naming one loses its numbers."""
    from rwe._results import LEVEL_SEP

    if plan is None:
        return set()
    names = set()
    for _, level in plan.hidden_levels():
        names.add(level)
    for _, level in plan.hidden_levels("threshold"):
        names.add(level)
    return {n for n in names if n and n not in ("all",)} | {
        n for lv in list(names) if LEVEL_SEP in lv for n in [lv]}


def scrub_named(text: str, k: int, names: set[str]) -> str:
    """:func:`scrub_text`; a sentence that names a hidden cell keeps only its subject (the
    words before its first colon) and says its details are suppressed (stop-gap for the
    representativeness module's sentences)."""
    text = scrub_text(text, k)
    if any(re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text) for n in names):
        subject = text.split(":", 1)[0] if ":" in text else "This finding"
        return f"{subject}: details suppressed (it names cells suppressed as small)."
    return text
