"""Disclosure control of a site summary, applied to the site's rows before they are summarized.

The rule (:data:`RULE`, written into every site summary file):

1. **Minimum count** (primary suppression). Every count a site summary releases about a cell of
   its grouping attributes (the quasi-identifiers: demographic attributes, site, equipment,
   calendar window) is 0 or at least ``k`` (``federation.min_count``, default
   ``report.small_cell_k``, 11 as in the CMS cell-size suppression policy [1]_): the rows of
   the cell and, with a binary outcome, its events and its non-events.
2. **Coarsening by local recoding.** A cell below ``k`` is not dropped: its value of one
   attribute is withheld (recoded to missing), attribute by attribute in ``recode_order``,
   so that its rows join a coarser cell (the k-anonymity of the released cells by local
   suppression, Samarati [3]_, Sweeney [4]_); a cell still below ``k`` once every attribute
   is withheld is withheld whole (its rows are not counted anywhere in the file).
3. **Secondary (complementary) suppression.** Withholding one category of a line (the cells
   that agree on every other attribute) would let it be derived from the line's margin and the
   categories still shown, so a second category of the line, the smallest one, is withheld
   with it (at least two suppressed cells per line, Cox [2]_; Hundepool et al. [5]_, ch. 5).
   Every number in the file is a sum over released cells: no margin is released separately
   (the site's row count is that of the released cells).
4. **Features.** Within each released cell, the values of a categorical (or 0/1) feature
   obey rules 1 and 3 (a category under ``k`` is withheld, with the smallest other one, and
   the missing values they join are brought to 0 or at least ``k``); the moments of a
   continuous feature are released only for cells where it has 0 or at least ``k`` values;
   per-cell extremes are replaced by the site's range of released values.
5. **Differencing.** Two releases of overlapping periods of one site could be subtracted
   (the difference of two protected tables need not be protected; Hundepool et al. [5]_,
   sec. 5.7 on linked tables and differencing): a site releases each period once
   (:mod:`rwe.federation._releases` keeps the site's release log and refuses an overlapping
   release that is not identical to an earlier one).

Not covered, and stated in the file: the histograms of scores and of numeric features on
declared edges within a released cell (distributions of analysis variables inside a cell
that meets the rule, not cross-classified with the outcome except for the model's score,
which an outsider does not know), and the missing-value count of a continuous feature. A
protocol that treats a numeric feature as identifying declares its band as an attribute
(e.g. ``age_band``) and coarse ``drift.feature_bins``.

References
----------
.. [1] Centers for Medicare & Medicaid Services. CMS cell size suppression policy: no cell
   (e.g. admittances, discharges, patients) containing a value of 1 to 10 may be displayed.
   ResDAC, 2020.
.. [2] Cox LH. Suppression methodology and statistical disclosure control. J Am Stat Assoc
   1980;75(370):377-385.
.. [3] Samarati P. Protecting respondents' identities in microdata release. IEEE Trans Knowl
   Data Eng 2001;13(6):1010-1027.
.. [4] Sweeney L. k-anonymity: a model for protecting privacy. Int J Uncertain Fuzziness
   Knowl-Based Syst 2002;10(5):557-570.
.. [5] Hundepool A, Domingo-Ferrer J, Franconi L, et al. Statistical Disclosure Control.
   Wiley, 2012.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rwe._validation import check_int
from rwe.exceptions import InvalidParameterError

__all__ = ["RULE", "REFERENCES", "DisclosureRecord", "protect_arrays", "violations"]

RULE = (
    "Every released count of a cell of the grouping attributes (rows, events, non-events) "
    "is 0 or at least {k}; a smaller cell is coarsened by withholding its attribute values "
    "one at a time in the order {order} (local recoding), with a second, smallest category of "
    "the same line withheld with it (complementary suppression), and withheld whole only when "
    "no attribute is left; categorical features obey the same rule within each cell; continuous features are summarized only in cells with 0 or "
    "at least {k} values, extremes at the site level; each period of a site is released "
    "once (differencing guard). Not covered: score and numeric-feature histograms within "
    "released cells, missing-value counts of continuous features."
)
REFERENCES = (
    "CMS cell size suppression policy (ResDAC, 2020): counts 1 to 10 are not displayed",
    "Cox LH. Suppression methodology and statistical disclosure control. JASA "
    "1980;75(370):377-385",
    "Samarati P. Protecting respondents' identities in microdata release. IEEE TKDE "
    "2001;13(6):1010-1027",
    "Sweeney L. k-anonymity: a model for protecting privacy. IJUFKS 2002;10(5):557-570",
    "Hundepool A, et al. Statistical Disclosure Control. Wiley 2012 (ch. 5: tabular data, "
    "complementary suppression, linked tables and differencing)",
)


@dataclass(frozen=True)
class DisclosureRecord:
    """What disclosure control did to one site's rows (written into the site summary).

    Attributes
    ----------
    min_count : int
    recode_order : tuple of str
        Attributes in the order their values are withheld.
    recoded_cells : dict of str to int
        Per attribute, the number of (finest) cells whose value was withheld.
    withheld_rows : int or str
        Rows of cells withheld whole: 0, the number when it is at least ``min_count``, else
        ``"fewer than k"`` (a small number is itself a small count).
    withheld_values : dict of str to int
        Per feature, the number of cells in which some of its values were withheld.
    extremes : str
    withheld_levels : dict of str to list of str
        Per attribute, its levels (categories) some rows of which are not counted under the
        level: their value of the attribute was withheld, or their cell withheld whole. The
        position of a suppressed cell is public, as in every published table with suppressed
        cells (shown there as a mark, its value not; Hundepool et al. 2012, ch. 5); it lets
        the coordinator treat the released count of the level as a lower bound
        (:mod:`rwe.federation._withheld`).
    withheld_within : dict of str to dict of str to list of str
        Per attribute and level (as released), the variables (other attributes, features)
        whose values were withheld in some rows released under the level: their missing
        count there is an upper bound of the genuine one.
    """

    min_count: int
    recode_order: tuple[str, ...]
    recoded_cells: dict[str, int] = field(default_factory=dict)
    withheld_rows: int | str = 0
    withheld_values: dict[str, int] = field(default_factory=dict)
    extremes: str = "site range"
    withheld_levels: dict[str, list[str]] | None = field(default_factory=dict)
    withheld_within: dict[str, dict[str, list[str]]] | None = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"rule": RULE.format(k=self.min_count, order=", ".join(self.recode_order)
                                    or "(none)"),
                "references": list(REFERENCES), "min_count": self.min_count,
                "recode_order": list(self.recode_order),
                "recoded_cells": dict(self.recoded_cells), "withheld_rows": self.withheld_rows,
                "withheld_values": dict(self.withheld_values), "extremes": self.extremes,
                "withheld_levels": {a: list(v) for a, v in (self.withheld_levels or {}).items()},
                "withheld_within": {a: {lv: list(x) for lv, x in d.items()}
                                    for a, d in (self.withheld_within or {}).items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DisclosureRecord:
        levels = d.get("withheld_levels")
        within = d.get("withheld_within")
        return cls(int(d["min_count"]), tuple(d["recode_order"]), dict(d["recoded_cells"]),
                   d["withheld_rows"], dict(d["withheld_values"]), d.get("extremes", ""),
                   None if levels is None else {a: list(v) for a, v in levels.items()},
                   None if within is None else {a: {lv: list(x) for lv, x in w.items()}
                                                for a, w in within.items()})

    @property
    def changed(self) -> bool:
        """Whether anything was withheld."""
        return bool(any(self.recoded_cells.values()) or self.withheld_rows
                    or any(self.withheld_values.values()))


def _small(x: np.ndarray, k: int) -> np.ndarray:
    return (x > 0) & (x < k)


def violations(codes: np.ndarray, n: np.ndarray, events: np.ndarray | None, k: int
               ) -> np.ndarray:
    """Cells (rows of ``codes``, merged when equal) breaking the minimum-count rule: a flag per
    input row of ``codes``."""
    if codes.shape[0] == 0:
        return np.zeros(0, dtype=bool)
    _, g = np.unique(codes, axis=0, return_inverse=True)
    g = g.reshape(-1)
    G = int(g.max()) + 1
    bad = _small(np.bincount(g, weights=n, minlength=G), k)
    if events is not None:
        ev = np.bincount(g, weights=events, minlength=G)
        bad |= _small(ev, k) | _small(np.bincount(g, weights=n, minlength=G) - ev, k)
    return bad[g]


def _lines(cur: np.ndarray, j: int) -> np.ndarray:
    """Line of each cell along attribute ``j``: the cells that agree on every other one."""
    if cur.shape[1] == 1:
        return np.zeros(cur.shape[0], dtype=np.int64)
    _, line = np.unique(np.delete(cur, j, axis=1), axis=0, return_inverse=True)
    return line.reshape(-1)


def _complementary(orig: np.ndarray, cur: np.ndarray, n: np.ndarray, j: int) -> np.ndarray:
    """Cells whose value of ``j`` must also be withheld: in each line along ``j`` where the
    withheld rows come from exactly one original category while other categories are still
    shown, the smallest shown category (rule 3: at least two suppressed cells per line)."""
    line = _lines(cur, j)
    n_lines = int(line.max()) + 1 if line.size else 0
    width = int(max(orig[:, j].max(), cur[:, j].max())) + 2 if line.size else 2
    rec = (cur[:, j] < 0) & (orig[:, j] >= 0) & (n > 0)
    pairs = np.unique(line[rec] * width + orig[rec, j])
    per_line = np.bincount(pairs // width, minlength=n_lines)
    shown = (cur[:, j] >= 0) & (n > 0)
    has_shown = np.bincount(line[shown], minlength=n_lines) > 0
    need = (per_line == 1) & has_shown
    hit = np.zeros(cur.shape[0], dtype=bool)
    if not need.any():
        return hit
    cand = need[line] & shown
    key = line[cand] * width + cur[cand, j]
    uk, inv = np.unique(key, return_inverse=True)
    size = np.bincount(inv.reshape(-1), weights=n[cand], minlength=uk.size)
    o = np.lexsort((uk, size, uk // width))  # per line: the smallest, ties by category
    ul = (uk // width)[o]
    first = np.ones(o.size, dtype=bool)
    first[1:] = ul[1:] != ul[:-1]
    hit[np.flatnonzero(cand)[np.isin(key, uk[o][first])]] = True
    return hit


def _recode(codes: np.ndarray, n: np.ndarray, events: np.ndarray | None, k: int,
            order: Sequence[int]) -> tuple[np.ndarray, np.ndarray, dict[int, int]]:
    """Local recoding with complementary suppression on the finest cells.

    ``codes`` (cells x attributes, -1 = missing) with rows ``n`` and ``events`` per cell.
    Cycles over ``order``: the cells of merged cells breaking the minimum-count rule get
    attribute ``j`` withheld, then lines along ``j`` whose withheld rows would come from a
    single category get a complementary one; until a whole cycle changes nothing. Returns the
    recoded codes, the cells withheld whole and, per attribute index, the number of cells
    whose value was withheld.
    """
    orig = codes.astype(np.int64)
    cur = orig.copy()
    recoded = {j: 0 for j in order}
    changed = True
    while changed:
        changed = False
        for j in order:
            hit = violations(cur, n, events, k) & (cur[:, j] >= 0)
            if hit.any():
                cur[hit, j] = -1
                recoded[j] += int(hit.sum())
                changed = True
            while True:
                comp = _complementary(orig, cur, n, j)
                if not comp.any():
                    break
                cur[comp, j] = -1
                recoded[j] += int(comp.sum())
                changed = True
    withheld = violations(cur, n, events, k)
    return cur, withheld, recoded


def _withhold_categories(cat: np.ndarray, cell: np.ndarray, n_cells: int, n_cats: int,
                         k: int, weights: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Per cell, categories (codes 0..n_cats-1, -1 missing) with a count under ``k`` are
    withheld (set to -1), with the smallest other shown category when only one is, and more
    (smallest first) while the missing count is under ``k``. Returns the new codes and the
    number of cells touched. ``weights``: rows per input (default 1 each)."""
    key = cell.astype(np.int64) * (n_cats + 1) + np.where(cat < 0, n_cats, cat)
    cnt = np.bincount(key, weights=weights, minlength=n_cells * (n_cats + 1)).reshape(
        n_cells, n_cats + 1)
    if weights is not None:
        cnt = np.rint(cnt).astype(np.int64)
    drop = np.zeros((n_cells, n_cats), dtype=bool)
    shown = cnt[:, :n_cats].astype(np.int64)
    drop |= _small(shown, k)
    BIG = np.iinfo(np.int64).max
    for _ in range(n_cats + 1):
        # complementary: exactly one withheld category of a cell with another shown
        one = drop.sum(1) == 1
        missing = cnt[:, n_cats] + np.where(drop, shown, 0).sum(1)
        need = one | _small(missing, k)
        cand = np.where(drop | (shown == 0), BIG, shown)
        need &= (cand < BIG).any(1)
        if not need.any():
            break
        j = np.argmin(cand, axis=1)
        rows = np.flatnonzero(need)
        drop[rows, j[rows]] = True
    touched = int(drop.any(1).sum())
    if touched:
        d = np.zeros(cat.size, dtype=bool)
        ok = cat >= 0
        d[ok] = drop[cell[ok], cat[ok]]
        cat = np.where(d, -1, cat)
    return cat, touched


def protect_arrays(*, attributes: Mapping[str, tuple[np.ndarray, int]], y: np.ndarray | None,
                   features: Mapping[str, tuple[str, np.ndarray, int]], k: int,
                   recode_order: Sequence[str], weights: np.ndarray | None = None
                   ) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray],
                              DisclosureRecord]:
    """Apply the disclosure rule (module notes) to the rows of one site.

    Every decision is a function of counts of rows (per cell, per outcome, per feature
    category within a cell), so the inputs may be the rows themselves or the distinct kinds
    of row with their numbers (``weights``): the same decisions, for a site whose rows are
    summarized where they are (:func:`rwe.federation.summarize_site` on a dask table).

    Parameters
    ----------
    attributes : dict of str to (codes, n_categories)
        Grouping attributes as category codes per row (-1 = missing).
    y : array of bool, optional
        Binary outcome per row.
    features : dict of str to (kind, values, n_categories)
        ``kind`` ``"categorical"`` (codes, -1 missing, ``n_categories``; also 0/1 features) or
        ``"continuous"`` (float values, NaN missing; ``n_categories`` unused).
    k : int
        Minimum count.
    recode_order : sequence of str
        Attributes in the order their values are withheld; attributes not listed are never
        recoded (their cells may then be withheld whole).
    weights : array of int, optional
        Rows each input stands for (default: one each).

    Returns
    -------
    attributes : dict of str to ndarray
        Recoded codes of the kept rows.
    keep : ndarray of bool
        Rows released (cells withheld whole are dropped).
    features : dict of str to ndarray
        Feature codes / values of the kept rows with withheld values set to -1 / NaN.
    record : DisclosureRecord
    """
    from rwe.stats.summaries import _encode_rows

    k = check_int(k, "min_count", minimum=1)
    names = list(attributes)
    unknown = [a for a in recode_order if a not in names]
    if unknown:
        raise InvalidParameterError(
            f"recode_order names {unknown[0]!r}, which is not a grouping attribute; "
            f"attributes: {', '.join(map(repr, names)) or 'none'}")
    n_rows = len(y) if y is not None else (len(next(iter(attributes.values()))[0])
                                           if attributes else 0)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    codes = [np.asarray(attributes[a][0]) for a in names]
    cell, comp = _encode_rows(codes, n_rows)
    C = comp.shape[0]
    n = np.bincount(cell, weights=w, minlength=C).astype(np.float64)
    ev = None if y is None else np.bincount(
        cell, weights=np.asarray(y, dtype=np.float64) * (1.0 if w is None else w), minlength=C)
    order = [names.index(a) for a in recode_order]
    if k > 1:
        cur, withheld, recoded = _recode(comp, n, ev, k, order)
    else:
        cur, withheld, recoded = comp.astype(np.int64), np.zeros(C, dtype=bool), {
            j: 0 for j in order}
    keep = ~withheld[cell]
    withheld_n = int(n[withheld].sum())
    out_attrs = {a: cur[cell[keep], j].astype(np.int32) for j, a in enumerate(names)}
    # features, within the released cells
    new_cell_codes = cur[~withheld]
    if new_cell_codes.shape[0]:
        _, rc = np.unique(new_cell_codes, axis=0, return_inverse=True)
        rc = rc.reshape(-1)
        cell_map = np.full(C, -1, dtype=np.int64)
        cell_map[~withheld] = rc
        R = int(rc.max()) + 1
    else:
        cell_map = np.full(C, -1, dtype=np.int64)
        R = 0
    kept_cell = cell_map[cell[keep]]
    out_feats: dict[str, np.ndarray] = {}
    touched: dict[str, int] = {}
    wk = None if w is None else w[keep]
    for name, (kind, values, n_cats) in features.items():
        v = np.asarray(values)[keep]
        if k <= 1 or R == 0:
            out_feats[name] = v
            touched[name] = 0
        elif kind == "categorical":
            out_feats[name], touched[name] = _withhold_categories(
                v.astype(np.int64), kept_cell, R, int(n_cats), k, weights=wk)
        else:
            present = ~np.isnan(v)
            cnt = np.bincount(kept_cell[present], weights=None if wk is None else wk[present],
                              minlength=R)
            bad = _small(cnt, k)
            touched[name] = int(bad.sum())
            out_feats[name] = np.where(bad[kept_cell], np.nan, v) if bad.any() else v
    record = DisclosureRecord(
        min_count=k, recode_order=tuple(recode_order),
        recoded_cells={names[j]: int(c) for j, c in recoded.items()},
        withheld_rows=(withheld_n if withheld_n == 0 or withheld_n >= k
                       else f"fewer than {k}"),
        withheld_values=touched)
    return out_attrs, keep, out_feats, record
