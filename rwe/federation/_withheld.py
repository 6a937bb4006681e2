"""Pooled quantities the sites' disclosure control left partial: judged on bounds or not at all.

A site's disclosure rule (:mod:`rwe.federation._disclosure`) withholds the value of an
attribute in small cells (local recoding) and withholds a cell whole when nothing else is
left: the released count of a level is then a **lower bound** of the level's count, and the
released missing count of a variable within a level an **upper bound** of its genuine missing
count. Analysing the merged summary as if it were complete would judge these artefacts (a
level's released rows can be only its cells without events, every other value of a small
level's rows withheld): missing data must never pass, and withheld data must never fail.

Method: bounds from the released counts (Manski's worst-case bounds for missing data, [1]_;
judging a suppressed table only where the judgement is the same at every value the
suppressed cells can take, the interval reasoning of tabular suppression, [2]_ sec. 5.4 and
the CMS cell-size suppression policy, [3]_). Each site states where it withheld values
(the positions of its suppressed cells, as every suppressed table shows them:
:attr:`~rwe.federation._disclosure.DisclosureRecord.withheld_levels`, ``withheld_within``),
not how many. The rows of a level ``l`` of attribute ``a`` a site did not count under ``l``
are among the rows it released with ``a`` missing, or among its rows withheld whole (0, the
number stated, or at most ``k - 1`` when the site states "fewer than k"). So, pooled over the
sites that withheld ``l`` (``x``: that upper bound; ``W``: the same over every site that
withheld any level of ``a``; ``T``: released rows with ``a`` known):

* count of ``l``: in ``[n, n + x]`` (positives: ``[e, e + x_e]`` with the events of the rows
  released with ``a`` missing);
* share of ``l`` among rows with ``a`` known: in ``[n / (T + W), (n + x) / (T + x)]``, hence
  the participation-to-prevalence ratio in that interval over the reference share;
* fraction of variable ``v`` missing in ``l`` (released ``m`` of ``n``): in
  ``[m' / (n + x), (m + x) / (n + x)]``, ``m' = 0`` when a site withheld values of ``v`` in
  rows released under ``l`` (their missing count then overstates the genuine one), else
  ``m``.

A check of a count, share or missing fraction is judged only when its flag is the same at
both ends of the interval (then it is the flag of the released value too); otherwise its cell
is ``not_evaluable`` with the sites and the rule named. A quantity that has no such bound
(a performance metric of a partial level: its withheld rows may hold any outcomes and
scores; a standardised mean difference of a partial covariate level) is ``not_evaluable``
whenever a site withheld a contribution to it; so is a goodness-of-fit test of an attribute
some site withheld values of (it reads every level's count), and a fairness gap or
heterogeneity finding across its levels is not stated. A criterion over several cells fails
if a judged cell fails, is ``not_evaluable`` if one of its cells is, and passes only if every
cell passes; a finding on an undetermined level is left out (the federation's
``federation.withheld`` finding and the federation page list those levels, their released
rows and events as lower bounds). A cell already not evaluable on its released counts (too
few rows or events) of a level some site withheld counts of is not evaluable because of the
withholding (its released counts are what the sites withheld). Each cell made not evaluable
names its sites (``withheld_at``). Levels to which no site contributed a withheld count keep
their values and verdicts.

What the tables say (:func:`_bound_columns`): the representativeness tables of a merge keep
their released values (what the sites sent, summed) and add, per row, the sites that
withheld counts of its level (``withheld_at``: its counts are lower bounds), the PPR at both
ends of the share's bounds, and the bounds of a missing count and fraction; the reviewer
pages print them as bounds ("at least 54").

Why bounds and not "not evaluable" for every partial level: complementary suppression
withholds a second, often large, category of each line, so at a minimum count of 11 nearly
every level of a recoded attribute loses a few rows at some site (in the demo, White, F and
M); their checks are decided by the bounds (e.g. the PPR of sex within the band at both
ends), while a small level whose rows were mostly withheld (American Indian or Alaska
Native: released n = 54 with no event) stays undetermined.

Drift (:func:`apply_withheld_drift`): a drift quantity has no bound from counts (a
distribution test, a metric, a chart statistic of a partial window or level may take any
value), so every cell of the merged drift result that reads withheld values is
``not_evaluable``, with the sites and the rule named. The sites' drift-view records say
which calendar windows and grouping levels lost rows (``withheld_levels``) and which
variables had values withheld in rows released under each window and level
(``withheld_within``), not in which window x level cell: a cell is taken to read withheld
values when a site contributing to it withheld rows of its window or of its level, or
values of its feature under its window and under each of its levels (a site contributes
to its own level of the site attribute only; rows withheld whole: every cell of the site).
This can mark cells that lost nothing (never the converse). A file that does not say where
it withheld values makes every cell of what it recoded, and every distribution of a
feature it withheld values of, not evaluable. The baseline window reads the baseline
period's windows; a control chart from its first such window on (its statistic
accumulates the past), and throughout when its in-control value was estimated on a
baseline that reads withheld values. Alarms, drift and case-mix flags of such cells are
not stated; a drift verdict fails only on a judged cell, is not_evaluable when a cell is,
and its findings are restated from the judged cells. Each marked cell names its sites
(``withheld_at``); :func:`withheld_drift_table` sums them per drift table and grouping for
the federation's ``federation.withheld`` finding and page. The label-free diagnostics table
has no verdict: a cell of it that reads withheld values (its window, level, features or last
labelled window) is marked not_evaluable with the reason, its calibration and support flags
not stated, and no verdict is made of it.

References
----------
.. [1] Manski CF. Partial Identification of Probability Distributions. Springer, 2003
   (ch. 1: bounds on a proportion with missing outcomes).
.. [2] Hundepool A, Domingo-Ferrer J, Franconi L, et al. Statistical Disclosure Control.
   Wiley, 2012 (ch. 5: tabular data; the feasibility interval of a suppressed cell).
.. [3] Centers for Medicare & Medicaid Services. CMS cell size suppression policy (ResDAC,
   2020): cells of 1 to 10 are not displayed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from rwe._evidence import STATUS_FAIL, STATUS_NOT_EVALUABLE, STATUS_PASS, Verdict

__all__ = ["Withheld", "withheld_of", "apply_withheld", "apply_withheld_drift",
           "withheld_table", "withheld_drift_table", "WITHHELD_FLAG"]

#: The flag of a share (representativeness) and the status of a subgroup table row that a
#: site's withheld counts leave undetermined.
WITHHELD_FLAG = "not evaluable: withheld"
_GROUP_SEP, _LEVEL_SEP = " x ", " & "
_ALL = "*"  # every level (a site file that does not state where it withheld values)


@dataclass(frozen=True)
class Withheld:
    """Where the sites of a merge withheld values, and the released counts that bound them.

    Attributes
    ----------
    min_count : int
        The disclosure rule's minimum count.
    levels : dict of str to dict of str to tuple of str
        Attribute -> level -> the sites that did not count some of its rows under it.
    within : dict of (str, str) to dict of str to tuple of str
        (attribute, level) -> variable -> the sites that withheld values of the variable in
        rows released under the level.
    variables : dict of str to tuple of str
        Variable -> the sites that withheld any of its values.
    missing : dict of str to dict of str to (int, int)
        Site -> attribute -> rows and events released with the attribute missing.
    whole : dict of str to int
        Site -> upper bound of its rows withheld whole (0 when none).
    """

    min_count: int
    levels: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    within: dict[tuple[str, str], dict[str, tuple[str, ...]]] = field(default_factory=dict)
    variables: dict[str, tuple[str, ...]] = field(default_factory=dict)
    missing: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)
    whole: dict[str, int] = field(default_factory=dict)

    @property
    def any(self) -> bool:
        return bool(self.levels or self.variables or any(self.whole.values()))

    def restrict(self, site: str) -> Withheld:
        """What one site withheld (its own results)."""
        def keep(sites):
            return tuple(s for s in sites if s == site)

        return Withheld(
            self.min_count,
            {a: {lv: keep(s) for lv, s in d.items() if keep(s)} for a, d in self.levels.items()
             if any(keep(s) for s in d.values())},
            {key: {v: keep(s) for v, s in d.items() if keep(s)} for key, d in
             self.within.items() if any(keep(s) for s in d.values())},
            {v: keep(s) for v, s in self.variables.items() if keep(s)},
            {site: self.missing.get(site, {})}, {site: self.whole.get(site, 0)})

    # ---------------------------------------------------------------- per level
    def _parts(self, group: str, level: str) -> list[tuple[str, str]]:
        if group in ("overall", "(all)"):
            return []
        attrs = group.split(_GROUP_SEP)
        lvls = str(level).split(_LEVEL_SEP) if len(attrs) > 1 else [str(level)]
        if len(lvls) != len(attrs):
            return [(group, str(level))]
        return list(zip(attrs, lvls, strict=True))

    def sites(self, group: str, level: Any) -> tuple[str, ...]:
        """The sites that did not count some rows of the level (or cell) under it."""
        out = {s for s, w in self.whole.items() if w}
        for a, lv in self._parts(group, level):
            d = self.levels.get(a, {})
            out.update(d.get(lv, ()), d.get(_ALL, ()))
        return tuple(sorted(out))

    def attribute_sites(self, attribute: str) -> tuple[str, ...]:
        """The sites that withheld values of any level of ``attribute``."""
        out = {s for s, w in self.whole.items() if w}
        for sites in self.levels.get(attribute, {}).values():
            out.update(sites)
        return tuple(sorted(out))

    def _lost(self, attrs: Iterable[str], sites: Iterable[str], j: int) -> int:
        total = 0
        for s in sites:
            total += self.whole.get(s, 0)
            for a in attrs:
                total += self.missing.get(s, {}).get(a, (0, 0))[j]
        return total

    def lost(self, group: str, level: Any, *, events: bool = False) -> int:
        """Upper bound of the rows (or events) of the level not counted under it."""
        parts = self._parts(group, level)
        sites = self.sites(group, level)
        return self._lost([a for a, _ in parts], sites, 1 if events else 0)

    def lost_attribute(self, attribute: str) -> int:
        """Upper bound of the rows with ``attribute`` known whose value was withheld."""
        return self._lost([attribute], self.attribute_sites(attribute), 0)

    def within_sites(self, group: str, level: Any, variable: str) -> tuple[str, ...]:
        """The sites that withheld values of ``variable`` in rows released under the level
        (overall: anywhere)."""
        if group in ("overall", "(all)"):
            return tuple(sorted(self.variables.get(variable, ())))
        out: set[str] = set()
        for a, lv in self._parts(group, level):
            for key in ((a, lv), (a, _ALL)):
                out.update(self.within.get(key, {}).get(variable, ()))
        if any(_ALL in d for d in self.levels.values()):  # a file that does not say where
            out.update(self.variables.get(variable, ()))
        return tuple(sorted(out))

    def reason(self, sites: Iterable[str], what: str = "counts") -> str:
        sites = sorted(set(sites))
        return (f"{what} withheld at {', '.join(sites)} by disclosure control (minimum count "
                f"{self.min_count}): the released numbers are bounds, not the level's")


def _cohort_counts(summary, attributes: Iterable[str]) -> dict[str, tuple[int, int]]:
    """Rows and events a site released with each attribute missing."""
    codes = summary.cells.codes
    n = np.asarray(summary.n, dtype=float)
    ev = np.asarray(summary.events, dtype=float)
    out = {}
    for a in attributes:
        if a in summary.attributes:
            miss = codes[:, summary.attributes.index(a)] < 0
            out[a] = (int(round(n[miss].sum())), int(round(ev[miss].sum())))
    return out


def withheld_of(files: Iterable[tuple[Any, Any]], site_cohort: Mapping[str, Any],
                min_count: int, view: str = "cohort") -> Withheld:
    """Where the sites' files say they withheld values of ``view`` (their disclosure
    records), with the released counts that bound what was withheld (``site_cohort``: each
    site's merged summary of the view)."""
    levels: dict[str, dict[str, set[str]]] = {}
    within: dict[tuple[str, str], dict[str, set[str]]] = {}
    variables: dict[str, set[str]] = {}
    whole: dict[str, int] = {}
    for _, s in files:
        rec = s.disclosure.get(view) or {}
        site = s.site
        rows = rec.get("withheld_rows", 0)
        bound = int(rows) if not isinstance(rows, str) else int(rec.get("min_count",
                                                                       min_count)) - 1
        whole[site] = whole.get(site, 0) + bound
        stated = rec.get("withheld_levels")
        if stated is None:  # a file that does not state where: every level of what it recoded
            stated = {a: [_ALL] for a, c in (rec.get("recoded_cells") or {}).items() if c}
        for a, lvls in stated.items():
            for lv in lvls:
                levels.setdefault(a, {}).setdefault(str(lv), set()).add(site)
            if lvls:
                variables.setdefault(a, set()).add(site)
        for a, d in (rec.get("withheld_within") or {}).items():
            for lv, vs in d.items():
                for v in vs:
                    within.setdefault((a, str(lv)), {}).setdefault(v, set()).add(site)
                    variables.setdefault(v, set()).add(site)
        for f, c in (rec.get("withheld_values") or {}).items():
            if c:
                variables.setdefault(f, set()).add(site)
    attrs = set(levels)
    missing = {site: _cohort_counts(summ, attrs) for site, summ in site_cohort.items()}

    def tup(d):
        return {k: tuple(sorted(v)) for k, v in d.items()}

    return Withheld(int(min_count), {a: tup(d) for a, d in levels.items()},
                    {k: tup(d) for k, d in within.items()}, tup(variables), missing,
                    {s: w for s, w in whole.items()})


# ============================================================================ verdicts
Judge = Callable[[dict[str, Any]], "tuple[str, str, Iterable[str]] | None"]


def _rejudge(v: Verdict, judge: Judge, w: Withheld | None = None) -> Verdict:
    """The verdict with each cell ``judge`` returns ``(status, reason, sites)`` for
    re-judged: a withheld cell that its bounds leave undetermined becomes not_evaluable,
    with the reason and ``withheld_at`` (the sites, sorted); a cell already not evaluable on
    its released counts (too few rows or events: what the sites withheld) takes the
    withholding as its reason, the released counts' reason after it. The criterion then
    fails if a judged cell fails, else is not_evaluable; its reason lists the cells and the
    rule with every site named (``w``), or the first cell's reason."""
    if not v.cells:
        return v
    cells, changed, why, held = [], [], [], set()
    first: set[str] = set()  # the sites of the first cell re-judged
    for c in v.cells:
        got = judge(c)
        if got is None or (got[0] == c.get("status") and (
                got[0] != STATUS_NOT_EVALUABLE or c.get("withheld_at"))):
            cells.append(c)
            continue
        status, reason, sites = got
        if not why:
            first = set(sites)
        why.append(reason)
        held.update(sites)
        if c.get("status") == status and c.get("reason"):
            reason = f"{reason}; on the released counts: {c['reason']}"
        cells.append({**c, "status": status, "reason": reason,
                      "withheld_at": sorted(set(sites))})
        changed.append(c)
    if not changed:
        return v
    statuses = [c["status"] for c in cells]
    if STATUS_FAIL in statuses:
        status = STATUS_FAIL
    elif STATUS_NOT_EVALUABLE in statuses and v.status in (STATUS_PASS, STATUS_FAIL):
        status = STATUS_NOT_EVALUABLE
    else:
        status = v.status
    fails = [c for c in cells if c["status"] == STATUS_FAIL]
    if fails:
        head = f"{len(fails)} of {len(cells)} cells fail: " + _listing(
            [_cell_name(c) + _cell_value(c) for c in fails])
    elif status == STATUS_NOT_EVALUABLE:
        head = "no judged cell fails"
    else:
        head = v.reason or ""
    rule = why[0] if w is None or held == first else w.reason(held)
    reason = (f"{head}; {len(changed)} not evaluable where sites withheld counts: "
              + _listing([_cell_name(c) for c in changed]) + f" ({rule})")
    counts = {s: n for s in (STATUS_PASS, STATUS_FAIL, STATUS_NOT_EVALUABLE)
              if (n := statuses.count(s))}
    est = v.estimate
    if est is not None and any(c.get("estimate") == est for c in changed):
        judged = [c.get("estimate") for c in cells if c["status"] != STATUS_NOT_EVALUABLE
                  and isinstance(c.get("estimate"), float) and math.isfinite(c["estimate"])]
        est = None if not judged else (max(judged) if est >= max(judged) else min(judged))
    return replace(v, status=status, reason=reason, counts=counts, cells=tuple(cells),
                   estimate=est, interval=v.interval if est == v.estimate else None)


def _listing(items: list[str], limit: int = 5) -> str:
    return "; ".join(items[:limit]) + (f"; and {len(items) - limit} more"
                                       if len(items) > limit else "")


def _cell_name(c: Mapping[str, Any]) -> str:
    g, lv = c.get("group"), c.get("level")
    base = ("overall" if g in ("overall", "(all)") else
            f"{g} = {lv}" if lv not in (None, "") else str(g))
    return f"{c['variable']} in {base}" if c.get("variable") else base


def _cell_value(c: Mapping[str, Any]) -> str:
    est = c.get("estimate")
    return f" ({est:.3g})" if isinstance(est, float) and math.isfinite(est) else ""


def _by_bounds(lo_bad: bool, hi_bad: bool, reason: str) -> tuple[str, str]:
    if lo_bad == hi_bad:
        return (STATUS_FAIL if lo_bad else STATUS_PASS), None  # type: ignore[return-value]
    return STATUS_NOT_EVALUABLE, reason


def _missing_bounds(w: Withheld, group: Any, level: Any, variable: Any, n: float, m: float
                    ) -> tuple[tuple[str, ...], tuple[str, ...], float, float, float, float
                               ] | None:
    """Bounds of the genuine missing count and fraction of ``variable`` in a level whose
    released rows are ``n`` with ``m`` missing (module notes: ``[m', m + x]`` over
    ``n + x``): ``(sites that withheld rows of the level, sites that withheld values of the
    variable in its released rows, low count, high count, low fraction, high fraction)``;
    None when nothing of it was withheld."""
    if variable in str(group).split(_GROUP_SEP):  # known in every row of its own level
        return None
    sites = (w.sites(group, level) if group != "(all)"
             else tuple(s for s, x in w.whole.items() if x))
    inner = w.within_sites(group, level, variable)
    if not sites and not inner:
        return None
    x = float(w.lost(group, level)) if sites else 0.0
    low, high = (0.0 if inner else m), m + x
    lo = low / (n + x) if n + x > 0 else math.nan
    hi = high / (n + x) if n + x > 0 else math.nan
    return sites, inner, low, high, lo, hi


def _bound_columns(r, w: Withheld, ppr_bounds: Mapping[tuple[str, str], tuple[float, float]],
                   eq_attr: str | None = None) -> dict[str, Any]:
    """The representativeness tables of a merge with the columns that say which released
    counts are bounds (what a reviewer page needs to print them as bounds):
    ``withheld_at`` (the sites that did not count some rows of the row's level: its counts
    are lower bounds; None: exact) in ``shares``, ``coverage``, ``adequacy``, ``sites`` and
    ``missingness``; ``values_withheld_at`` in ``sites`` (for the equipment level
    "(missing)": the sites that released values of the equipment they withheld as missing,
    so that its count is an upper bound of the rows with no equipment recorded);
    ``ppr_bound_low``/``ppr_bound_high`` in ``shares`` (the PPR at the two ends of the
    share's bounds, where the attribute lost values at some site);
    ``values_withheld_at`` (the sites that withheld values of the variable in the level's
    released rows: its missing count overstates the genuine one) and
    ``n_missing_low``/``n_missing_high``, ``fraction_low``/``fraction_high`` (the genuine
    missing count and fraction, module notes) in ``missingness``; ``withheld_at`` in ``smd``
    (the sites that withheld a contribution to the difference: the shift checks do not
    judge it)."""
    def sites_text(sites):
        return ", ".join(sites) if sites else None

    out = {}
    sh = r.shares.copy()
    sh["withheld_at"] = [sites_text(w.sites(a, str(c))) for a, c in
                         zip(sh["attribute"], sh["category"], strict=True)]
    keys = list(zip(sh["attribute"], sh["category"].astype(str), strict=True))
    sh["ppr_bound_low"] = [ppr_bounds.get(k, (None, None))[0] for k in keys]
    sh["ppr_bound_high"] = [ppr_bounds.get(k, (None, None))[1] for k in keys]
    out["shares"] = sh
    cov = r.coverage.copy()
    cov["withheld_at"] = [sites_text(w.sites(g, lv)) for g, lv in
                          zip(cov["intersection"], cov["cell"], strict=True)]
    out["coverage"] = cov
    ad = r.adequacy.copy()
    ad["withheld_at"] = [sites_text(w.sites(g, lv)) for g, lv in
                         zip(ad["grouping"], ad["subgroup"], strict=True)]
    out["adequacy"] = ad
    si = r.sites.copy()
    if len(si):
        from rwe.representativeness._representativeness import MISSING_LEVEL

        # the sites that released values of the equipment attribute they withheld as missing
        recoded = {s for sites in w.levels.get(eq_attr or "", {}).values() for s in sites}
        col, values = [], []
        for level, site, eq in zip(si["level"], si["site"], si["equipment"], strict=True):
            own = {str(site)} if isinstance(site, str) else set()
            val: set[str] = set()
            if level == "site":
                got = set(w.sites("overall", "all")) & own
            elif eq_attr is None or not isinstance(eq, str):
                got = set()
            else:
                got = set(w.sites(eq_attr, eq))
                val = set(recoded) if eq == MISSING_LEVEL else set()
                if level != "equipment":  # a site contributes to its own cells only
                    got &= own
                    val &= own
            col.append(sites_text(sorted(got)))
            values.append(sites_text(sorted(val)))
        si["withheld_at"] = col
        si["values_withheld_at"] = values
    out["sites"] = si
    mi = r.missingness.copy()
    cols = {c: [] for c in ("withheld_at", "values_withheld_at", "n_missing_low",
                            "n_missing_high", "fraction_low", "fraction_high")}
    for g, lv, var, n, m in zip(mi["grouping"], mi["subgroup"], mi["variable"], mi["n"],
                                mi["n_missing"], strict=True):
        got = _missing_bounds(w, g, lv, var, float(n), float(m))
        vals = (None,) * 6 if got is None else (
            sites_text(got[0]), sites_text(got[1]), int(got[2]), int(got[3]), got[4], got[5])
        for c, v in zip(cols, vals, strict=True):
            cols[c].append(v)
    for c, v in cols.items():
        mi[c] = v
    out["missingness"] = mi
    sm = r.smd.copy()  # as the shift checks read them (judge_for: smd)
    if len(sm):
        sm["withheld_at"] = [sites_text(_smd_sites(w, g, lv)) for g, lv in
                             zip(sm["covariate"], sm["level"], strict=True)]
    out["smd"] = sm
    return out


def _smd_sites(w: Withheld, covariate: Any, level: Any) -> tuple[str, ...]:
    """The sites that withheld a contribution to a standardised mean difference: counts of
    the covariate's level (or of any of its levels: the shares' denominators), or values of
    a continuous covariate."""
    lv = "" if level is None or level != level else str(level)
    return tuple(sorted((w.sites(covariate, lv) if lv else ()) or w.attribute_sites(covariate)
                        or w.variables.get(covariate, ())))


# ============================================================================ sections
def _representativeness(r, w: Withheld, equipment_attr: str | None = None):
    """The representativeness result with its withheld levels judged on their bounds, and
    its tables with the columns that say which counts are bounds (:func:`_bound_columns`;
    ``equipment_attr``: the attribute of the equipment counts of its ``sites`` table)."""
    if not w.any:
        return r
    par = r.parameters
    low_b, high_b = par["ppr_band"]
    shares = r.shares.copy()
    flag = shares["flag"].astype(object).to_numpy(copy=True)
    note = shares["note"].astype(object).to_numpy(copy=True)
    ppr_cells: dict[tuple[str, str], tuple[str, str]] = {}
    ppr_bounds: dict[tuple[str, str], tuple[float, float]] = {}
    for i, row in enumerate(shares.itertuples(index=False)):
        a, c = row.attribute, str(row.category)
        sites = w.sites(a, c)
        att_sites = w.attribute_sites(a)
        if not att_sites:
            continue
        judged = row.flag in ("under-represented", "over-represented", "adequate",
                              "absent from cohort")
        rs = float(row.reference_share) if row.reference_share is not None else math.nan
        n = float(row.n)
        total = float(shares.loc[shares["attribute"] == a, "n"].sum())
        x = float(w.lost(a, c)) if sites else 0.0
        big_w = float(w.lost_attribute(a))
        lo = n / (total + big_w) if total + big_w > 0 else math.nan
        hi = (n + x) / (total + x) if total + x > 0 else math.nan
        extra = (f"at least {int(n)} rows; " if sites else "") + w.reason(
            sites or att_sites, "counts of this level" if sites else f"values of {a}")
        note[i] = f"{note[i]}; {extra}" if note[i] else extra
        if not judged or not (rs > 0):
            continue
        plo, phi = lo / rs, hi / rs
        side = (np.sign(plo - low_b) if plo < low_b else 0) or (1 if plo > high_b else 0)
        side_hi = (-1 if phi < low_b else 1 if phi > high_b else 0)
        note[i] += f" (PPR between {plo:.2f} and {phi:.2f})"
        ppr_bounds[(a, c)] = (float(plo), float(phi))
        if side != side_hi:  # the band's verdict differs between the ends
            flag[i] = WITHHELD_FLAG
            ppr_cells[(a, c)] = (STATUS_NOT_EVALUABLE, w.reason(sites or att_sites)
                                 + f" (PPR between {plo:.2f} and {phi:.2f})",
                                 sites or att_sites)
        elif row.flag == "absent from cohort" and x > 0:  # rows withheld, not absent
            flag[i] = "under-represented"
    shares["flag"], shares["note"] = flag, note

    min_n = par.get("min_n", 30)

    def count_judge(group, level, n, goal, events=False):
        sites = w.sites(group, level)
        if not sites:
            return None
        x = w.lost(group, level, events=events)
        status, why = _by_bounds(n < goal, n + x < goal, w.reason(sites) +
                                 f" (between {int(n)} and {int(n + x)})")
        return (status, why, sites) if status == STATUS_NOT_EVALUABLE else None

    thr_m = par.get("missingness_threshold", 0.2)

    def missing_judge(c):
        var = c.get("variable")
        got = _missing_bounds(w, c.get("group"), c.get("level"), var, float(c["n"]),
                              float(c["n_missing"]))
        if got is None:
            return None
        sites, inner, _, _, lo, hi = got
        status, why = _by_bounds(lo >= thr_m, hi >= thr_m, w.reason(
            set(sites) | set(inner), f"values of {var}" if inner and not sites else "counts")
            + f" (missing fraction between {lo:.1%} and {hi:.1%})")
        return ((status, why, set(sites) | set(inner)) if status == STATUS_NOT_EVALUABLE
                else None)

    def judge_for(v: Verdict) -> Judge | None:
        label = v.id
        if ".ppr." in label or label.startswith("representativeness.check.ppr"):
            return lambda c: ppr_cells.get((c.get("group"), str(c.get("level"))))
        if "coverage" in label:
            return lambda c: count_judge(c["group"], c["level"], float(c["n"]), min_n)
        if "adequacy" in label:
            basis = str(r.adequacy["basis"].iloc[0]) if len(r.adequacy) else "rows"
            return lambda c: count_judge(c["group"], c["level"], float(c["n"]),
                                         float(c["required"]), events=basis == "positives")
        if "missingness" in label:
            return missing_judge
        if "smd" in label or "development_shift" in label:
            def smd(c):
                sites = _smd_sites(w, c.get("group"), c.get("level"))
                return (STATUS_NOT_EVALUABLE, w.reason(sites), sites) if sites else None
            return smd
        return None

    verdicts = []
    for v in r.verdicts:
        j = judge_for(v)
        verdicts.append(_rejudge(v, j, w) if j is not None else v)
    undetermined = {(c["group"], str(c["level"]), c.get("variable")) for v in verdicts
                    for c in v.cells if c.get("status") == STATUS_NOT_EVALUABLE
                    and "disclosure control" in str(c.get("reason") or "")}
    # a goodness-of-fit test of an attribute reads every level's count: not evaluated on
    # released counts of an attribute some site withheld values of
    tests = r.tests.copy()
    untested = {a for a in tests["attribute"] if a != "overall" and w.attribute_sites(a)}
    if untested:
        tnote = tests["note"].astype(object).to_numpy(copy=True)
        for i, a in enumerate(tests["attribute"]):
            if a in untested:
                extra = "not evaluated: " + w.reason(w.attribute_sites(a), f"values of {a}")
                tnote[i] = f"{tnote[i]}; {extra}" if isinstance(tnote[i], str) and tnote[i] \
                    else extra
        tests["note"] = tnote
    findings = tuple(_empty_known(f, w, equipment_attr) for f in r.findings
                     if not _finding_reads(f, undetermined) and not (
                         f.code == "representativeness.distribution_differs"
                         and (f.subject or {}).get("attribute") in untested))
    findings = tuple(f for f in findings if f is not None)
    notes = list(r.notes) + [
        "Disclosure control at the sites (minimum count "
        f"{w.min_count}) withheld values of "
        + ", ".join(sorted(w.levels) or ["no attribute"])
        + ": counts of the levels concerned are lower bounds; each check on them is judged "
        "only when its result is the same at both ends of the bounds the released counts "
        "give (rwe.federation._withheld), else not evaluable."]
    r = replace(r, shares=shares, tests=tests, verdicts=tuple(verdicts), findings=findings,
                notes=notes)
    return replace(r, **_bound_columns(r, w, ppr_bounds, equipment_attr))


def _finding_reads(f, undetermined: set) -> bool:
    """Whether a finding states a level's share or shift that its bounds leave undetermined."""
    s = f.subject or {}
    if "category" in s:  # a category's representation (under, over, absent)
        return any(g == s.get("attribute") and lv == str(s.get("category"))
                   for g, lv, _ in undetermined)
    if f.code == "representativeness.development_shift":
        return any(g == s.get("covariate") and lv == str(s.get("level") or "")
                   for g, lv, _ in undetermined)
    if f.code == "representativeness.missing_overall":
        return any(g == "(all)" and var == s.get("variable") for g, _, var in undetermined)
    v = f.values or {}
    if f.code == "representativeness.missing_in_subgroups":  # "race = X, sex = F"
        names = {f"{g} = {lv}" for g, lv, var in undetermined if var == s.get("variable")}
        return any(n in str(v.get("listed_names", "")) for n in names)
    if f.code == "representativeness.small_cells":
        names = {lv for g, lv, _ in undetermined if g == s.get("intersection")}
        return any(n in str(v.get("example_cells", "")).split(", ") for n in names)
    if f.code == "representativeness.sample_size_short":
        names = {lv for _, lv, var in undetermined if var is None}
        return any(str(n) in names for n in v.get("subgroups") or ())
    return False


def _empty_known(f, w: Withheld, equipment_attr: str | None):
    """A site x equipment combination with no released row is empty only where the site
    counted every row of that equipment: the sites_empty finding keeps those (None when
    none is left); any other finding is returned as it is."""
    if f.code != "representativeness.sites_empty" or equipment_attr is None:
        return f
    pairs = [(s, e) for s, e in f.values.get("pairs", [])
             if s not in w.sites(equipment_attr, e)]
    if not pairs:
        return None
    return replace(f, values={**f.values, "combinations": len(pairs), "pairs": [
        list(p) for p in pairs], "listed": ", ".join(f"{s} / {e}" for s, e in pairs)})


def _subgroups(r, w: Withheld):
    """The subgroup result with every cell of a level some site withheld rows of made
    not_evaluable (a performance metric has no bound from counts)."""
    if not w.any:
        return r
    t = r.table.copy()
    status = t["status"].astype(object).to_numpy(copy=True)
    reason = t["reason"].astype(object).to_numpy(copy=True)
    for i, (g, lv, n, ev) in enumerate(zip(t["group"], t["level"], t["n"], t["events"],
                                          strict=True)):
        sites = w.sites(g, lv)
        if sites:
            status[i] = WITHHELD_FLAG
            reason[i] = (f"at least {int(n)} rows and {int(ev)} events; "
                         + w.reason(sites, "counts of this level"))
    t["status"], t["reason"] = status, reason

    def judge(c):
        sites = w.sites(c.get("group", ""), c.get("level", ""))
        return (STATUS_NOT_EVALUABLE, w.reason(sites), sites) if sites else None

    verdicts = tuple(_rejudge(v, judge, w) for v in r.verdicts)
    goals = r.goals.copy()
    if len(goals):
        gs = goals["status"].astype(object).to_numpy(copy=True)
        gr = goals["reason"].astype(object).to_numpy(copy=True)
        for i, (g, lv) in enumerate(zip(goals["group"], goals["level"], strict=True)):
            sites = w.sites(g, lv)
            if sites:
                gs[i], gr[i] = STATUS_NOT_EVALUABLE, w.reason(sites)
        goals["status"], goals["reason"] = gs, gr
    # a comparison across the levels of an attribute reads every level of it
    partial = {g for g, lv in zip(t["group"], t["level"], strict=True) if w.sites(g, lv)
               and g != "overall"}
    fair = r.fairness.copy()
    if len(fair):
        hit = fair["group"].isin(partial).to_numpy()
        fair["reason"] = np.where(hit, [w.reason(w.attribute_sites(g.split(_GROUP_SEP)[0]))
                                        for g in fair["group"]], fair["reason"].astype(object))
    new_ids = {v.id: v for v in verdicts}
    findings = []
    for f in r.findings:
        vid = (f.subject or {}).get("verdict")
        if vid in new_ids and new_ids[vid] is not _orig(r, vid):
            findings.extend(_goal_finding(new_ids[vid]))
        elif f.code == "subgroups.heterogeneity":
            groups = [g for g in str(f.values.get("groups", "")).split(", ") if g
                      and g not in partial]
            if groups:
                findings.append(replace(f, values={**f.values, "groups": ", ".join(groups)}))
        elif f.code == "subgroups.largest_gap" and f.subject.get("group") in partial:
            continue
        elif f.code == "subgroups.small_cells":
            # a cell small on the released counts of a level some site withheld rows of may
            # not be small: only the others are known to be (the federation.withheld finding
            # lists the levels)
            from rwe.subgroups._result import STATUS_OK

            small = {(g, lv) for g, lv, st in zip(t["group"], t["level"], status, strict=True)
                     if g != "overall" and st not in (STATUS_OK, WITHHELD_FLAG)}
            if small:
                findings.append(replace(f, values={**f.values, "cells": len(small)}))
        else:
            findings.append(f)
    return replace(r, table=t, verdicts=verdicts, goals=goals, fairness=fair,
                   findings=tuple(findings))


def _orig(r, vid):
    return next((v for v in r.verdicts if v.id == vid), None)


def _goal_finding(v: Verdict) -> list:
    """The goal finding of a re-judged subgroup goal (the templates of
    :mod:`rwe.subgroups._templates`)."""
    from rwe._evidence import Finding

    cells = sum(v.counts.values())
    if v.status == STATUS_FAIL:
        failed = [c for c in v.cells if c["status"] == STATUS_FAIL]
        c0 = failed[0]
        where = "overall" if c0["group"] == "overall" else f"{c0['group']} = {c0['level']}"
        worst = (f", e.g. {where} ({v.criterion.split(':')[0]} bound {c0['bound']:.3f})"
                 if isinstance(c0.get("bound"), float) else "")
        return [Finding("subgroups.goal_not_met", {"verdict": v.id},
                        {"criterion": v.criterion, "worst": worst, "cells": cells,
                         "fail": v.counts.get(STATUS_FAIL, 0)},
                        {"n": [c["n"] for c in failed], "events": [c["events"] for c in failed]},
                        "critical")]
    if v.status == STATUS_NOT_EVALUABLE:
        held = [c for c in v.cells if c["status"] == STATUS_NOT_EVALUABLE
                and c.get("withheld_at")]
        n_ne = v.counts.get(STATUS_NOT_EVALUABLE, 0)
        why = []
        if held:
            sites = sorted({s for c in held for s in c["withheld_at"]})
            why.append(f"{len(held)} with counts withheld at {', '.join(sites)} by "
                       "disclosure control")
        if n_ne > len(held):
            why.append(f"{n_ne - len(held)} with too few rows or events, or no interval")
        return [Finding("subgroups.goal_not_evaluable", {"verdict": v.id},
                        {"criterion": v.criterion, "cells": cells, "not_evaluable": n_ne,
                         "why": "; ".join(why)}, {}, "warning")]
    return []


def apply_withheld(sections: Mapping[str, Any], w: Withheld, *, drift: Withheld | None = None,
                   site_attr: str | None = None, baseline: Iterable[str] = (),
                   equipment_attr: str | None = None) -> dict[str, Any]:
    """The pooled (or one site's) sections with the withheld levels judged on their bounds
    (module notes); a section nothing was withheld from is returned as it is. ``drift``:
    where the sites withheld values of the drift view (:func:`apply_withheld_drift`, with
    the site attribute and the baseline period's windows); ``equipment_attr``: the attribute
    of the representativeness section's equipment counts."""
    out = dict(sections)
    if "drift" in out and drift is not None:
        out["drift"] = apply_withheld_drift(out["drift"], drift, site_attr=site_attr,
                                            baseline=baseline)
    if "representativeness" in out:
        out["representativeness"] = _representativeness(out["representativeness"], w,
                                                         equipment_attr)
    if "subgroups" in out:
        out["subgroups"] = _subgroups(out["subgroups"], w)
    return out


def withheld_table(w: Withheld, sections: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One record per level (of an attribute, or an intersection cell) some site withheld
    rows of: the rows and events released (lower bounds), the upper bound of the rows not
    counted, the sites, and the checks left not evaluable on it."""
    sub = sections.get("subgroups")
    if sub is None or not w.any:
        return []
    t = sub.table
    t = t[t["group"] != "overall"].drop_duplicates(["group", "level"])
    checks: dict[tuple[str, str], list[str]] = {}
    for name in ("representativeness", "subgroups"):
        for v in getattr(sections.get(name), "verdicts", ()):
            for c in v.cells:
                if c.get("status") == STATUS_NOT_EVALUABLE and "disclosure control" in str(
                        c.get("reason") or ""):
                    checks.setdefault((str(c.get("group")), str(c.get("level"))), []).append(
                        v.criterion)
    rows = []
    for g, lv, n, ev in zip(t["group"], t["level"], t["n"], t["events"], strict=True):
        sites = w.sites(g, lv)
        if not sites:
            continue
        rows.append({"group": g, "level": lv, "n_at_least": int(n),
                     "events_at_least": int(ev), "not_counted_at_most": int(w.lost(g, lv)),
                     "sites": ", ".join(sites), "min_count": w.min_count,
                     "checks_not_evaluable": list(dict.fromkeys(checks.get((g, str(lv)), [])))})
    return rows


#: The drift tables whose cells a site's withheld values can leave not evaluable, with the
#: name a reviewer reads (input and prediction drift share the ``drift`` table).
_DRIFT_TABLE_NAMES = (("drift", "drift"), ("performance", "performance by window"),
                      ("prevalence", "prevalence and mean prediction"),
                      ("recalibration", "recalibration"), ("case_mix", "case mix"),
                      ("integrity", "data integrity"), ("charts", "control charts"),
                      ("diagnostics", "label-free diagnostics"))


def withheld_drift_table(r, min_count: int) -> list[dict[str, Any]]:
    """One record per drift table (input and prediction drift apart) and grouping whose
    cells are not evaluable because sites withheld values they read
    (:func:`apply_withheld_drift`: the cells' ``withheld_at``): the cells not evaluable and
    of the table, the windows they are in (first, last, how many), the sites and the
    minimum count."""
    from rwe.drift._result import STATUS_NOT_EVALUABLE as NE

    if r is None:
        return []
    order = {x: i for i, x in enumerate(r.settings.get("windows") or [])}
    out = []
    for name, label in _DRIFT_TABLE_NAMES:
        t = getattr(r, name, None)
        if t is None or not len(t) or "withheld_at" not in t.columns:
            continue
        parts = ([(f"{role} drift", t[t["role"] == role]) for role in
                  dict.fromkeys(t["role"])] if name == "drift" else [(label, t)])
        for what, d in parts:
            for g, dg in d.groupby("group", sort=False):
                held = dg[(dg["status"] == NE) & dg["withheld_at"].notna()]
                if not len(held):
                    continue
                sites = sorted({x.strip() for v in held["withheld_at"] for x in str(v).split(",")})
                wins = sorted(set(map(str, held["window"])), key=lambda x: (
                    order.get(x, -1), x))  # the baseline window before the calendar ones
                out.append({"table": what, "group": str(g), "cells_not_evaluable": len(held),
                            "cells": len(dg), "first_window": wins[0],
                            "last_window": wins[-1], "windows": len(wins),
                            "sites": ", ".join(sites), "min_count": int(min_count)})
    return out


# ============================================================================ drift
def _drift_sites(w: Withheld, window_attr: str, window: str, group: str, level: Any,
                 feature: str | None, site_attr: str | None,
                 baseline: Iterable[str]) -> set[str]:
    """The sites that contributed withheld values to one drift cell (window x level, and the
    feature's distribution there when ``feature`` is given); see :func:`apply_withheld_drift`.
    """
    from rwe.drift._result import BASELINE_WINDOW, REFERENCE_WINDOW

    if window == REFERENCE_WINDOW:  # the reference rows are the coordinator's, not a site's
        return set()
    wins = tuple(baseline) if window == BASELINE_WINDOW else (str(window),)
    parts = w._parts(group, level)
    out = {s for s, x in w.whole.items() if x}
    for a, lv in [(window_attr, x) for x in wins] + parts:  # rows not counted under it
        d = w.levels.get(a, {})
        out.update(d.get(lv, ()), d.get(_ALL, ()))
    if feature is not None:  # values of the feature withheld in rows released in the cell
        def with_f(a, lv):
            return set(w.within.get((a, lv), {}).get(feature, ())) | set(
                w.within.get((a, _ALL), {}).get(feature, ()))

        for x in wins:
            cand = with_f(window_attr, x)
            for a, lv in parts:
                cand &= with_f(a, lv)
            out |= cand
        if any(_ALL in d for d in w.levels.values()):  # a file that does not say where
            out.update(w.variables.get(feature, ()))
    for a, lv in parts:  # a site contributes to its own level of the site attribute only
        if a == site_attr:
            out &= {lv}
    return out


def apply_withheld_drift(r, w: Withheld, *, site_attr: str | None = None,
                         baseline: Iterable[str] = ()):
    """The drift result of a merge with every quantity that reads withheld values made
    not_evaluable (module notes, "Drift").

    A drift cell (calendar window x grouping level, and a feature's distribution in it)
    reads withheld values when a site that contributes to it withheld rows of the window or
    of the level (``withheld_levels`` of the drift view; rows withheld whole: every cell),
    or withheld values of the feature in rows released under the window and under every
    attribute level of the cell (``withheld_within``; a file that does not say where: every
    cell of each variable it withheld values of). The baseline window reads the windows of
    the baseline period (``baseline``); the reference window reads the coordinator's
    reference rows only. Those cells, and every control-chart point from the first such
    window of its level on (a chart statistic accumulates its past, and an in-control value
    estimated on the baseline reads the baseline), are not_evaluable with the sites and the
    rule named; their alarms, drift flags and case-mix flags are not stated, and the drift
    verdicts and findings are re-derived from the cells that remain judged. Cells with no
    withheld contribution keep their values and statuses.
    """
    if not w.any:
        return r
    from rwe._evidence import verdict_id
    from rwe.drift._result import BASELINE_WINDOW, STATUS_NO_DATA, STATUS_OK
    from rwe.drift._result import STATUS_NOT_EVALUABLE as NE

    s = r.settings
    wa = s.get("window")
    baseline = tuple(baseline)

    def sites_of(window, group, level, feature=None):
        return _drift_sites(w, wa, window, group, level, feature, site_attr, baseline)

    def mark(t, feature_col=None, reason=True, flag=None):
        """Copy of table ``t`` with its cells that read withheld values not_evaluable;
        returns it and the sites per row (empty set: untouched)."""
        t = t.copy()
        if not len(t):
            return t, []
        feats = t[feature_col] if feature_col else [None] * len(t)
        hit = [sites_of(win, g, lv, f) for win, g, lv, f in zip(
            t["window"], t["group"], t["level"], feats, strict=True)]
        m = np.array([bool(h) for h in hit])
        if m.any():
            st = t["status"].astype(object).to_numpy(copy=True)
            st[m] = NE
            t["status"] = st
            if reason and "reason" in t:
                rs = t["reason"].astype(object).to_numpy(copy=True)
                for i in np.flatnonzero(m):
                    what = f"values of {feats[i]}" if feature_col else "counts"
                    rs[i] = w.reason(hit[i], what)
                t["reason"] = rs
            if flag is not None:
                t[flag] = np.where(m, False, t[flag].astype(bool))
        t["withheld_at"] = [", ".join(sorted(h)) if h else None for h in hit]
        return t, hit

    # input drift reads the feature's distribution; prediction drift the cell's scores
    drift = r.drift.copy()
    if len(drift):
        feats = [f if role == "input" else None for role, f in
                 zip(drift["role"], drift["feature"], strict=True)]
        drift["_f"] = feats
        drift, _ = mark(drift, "_f", flag="drifted")
        drift = drift.drop(columns="_f")
    performance, _ = mark(r.performance)
    prevalence, _ = mark(r.prevalence, reason=False)
    recalibration, _ = mark(r.recalibration)
    case_mix, _ = mark(r.case_mix, "feature", flag="flagged")
    integrity, _ = mark(r.integrity, "feature")

    # control charts: from the first point that reads withheld values on, per rule x level
    from_baseline = {x.get("id") for x in s.get("rules") or []
                     if "baseline" in str(x.get("target_source") or "")}
    base_sites = sites_of(BASELINE_WINDOW, "overall", "all") if baseline else set()
    charts = r.charts.copy()
    order = {x: i for i, x in enumerate(s.get("windows") or [])}
    chart_sites: dict[tuple[str, str], set[str]] = {}
    undetermined_at: dict[tuple[str, str], str] = {}  # (rule, level) -> first such window
    if len(charts):
        st = charts["status"].astype(object).to_numpy(copy=True)
        alarm = charts["alarm"].astype(bool).to_numpy(copy=True)
        held: list[str | None] = [None] * len(charts)
        for (rule, lv), idx in charts.groupby(["rule", "level"], sort=False).groups.items():
            rows = sorted(charts.index.get_indexer(idx),
                          key=lambda i: order.get(charts["window"].iat[i], i))
            # an in-control value estimated on the (pooled) baseline reads every site's
            acc = set(base_sites) if rule in from_baseline else set()
            for i in rows:
                acc |= sites_of(charts["window"].iat[i], charts["group"].iat[i], lv)
                if acc:
                    undetermined_at.setdefault((rule, str(lv)), charts["window"].iat[i])
                    st[i], alarm[i] = NE, False
                    held[i] = ", ".join(sorted(acc))
            if acc:
                chart_sites[(rule, str(lv))] = acc
        charts["status"], charts["alarm"] = st, alarm
        charts["withheld_at"] = held
    alarms = r.alarms
    if len(alarms) and undetermined_at:
        keep = [not ((ru, str(lv)) in undetermined_at and order.get(win, -1) >= order.get(
            undetermined_at[(ru, str(lv))], -1)) for ru, lv, win in
            zip(alarms["rule"], alarms["level"], alarms["window"], strict=True)]
        alarms = alarms[np.array(keep, dtype=bool)].reset_index(drop=True)

    # verdicts
    by_test = {}
    for (role, test), d in drift.groupby(["role", "test"], sort=False):
        t = float(d["threshold"].iloc[0])
        vid = verdict_id("drift", "input" if role == "input" else "prediction",
                         {"test": test, "threshold": t, "features": sorted(d["feature"].unique()),
                          "decision": s.get("decision")}, label=test)
        by_test[vid] = d
    verdicts = []
    for v in r.verdicts:
        d = by_test.get(v.id)
        if d is not None and (d["status"] == NE).any():
            ev = d[d["status"] == STATUS_OK]
            n_drifted = int(d["drifted"].sum())
            ne = d[d["status"] == NE]
            sites = set().union(*(sites_of(a, b, c, f if ro == "input" else None) for
                                  a, b, c, f, ro in zip(ne["window"], ne["group"], ne["level"],
                                                        ne["feature"], ne["role"], strict=True)))
            status = STATUS_FAIL if n_drifted else STATUS_NOT_EVALUABLE
            head = (f"{n_drifted} of {len(ev)} judged cells drifted" if n_drifted else
                    "no judged cell drifted")
            worst = ev.loc[ev["effect"].astype(float).idxmax()] if len(ev) else None
            v = replace(v, status=status, estimate=None if worst is None else float(
                worst["effect"]), reason=f"{head}; {len(ne)} cells not evaluable where sites "
                f"withheld values ({w.reason(sites, 'values')})",
                counts={**v.counts, "drifted": n_drifted, "evaluated": len(ev),
                        "not_evaluable": len(ne),
                        "no_data": int((d["status"] == STATUS_NO_DATA).sum())})
        elif any((v.id, str(c.get("level"))) in chart_sites for c in v.cells):
            cells = []
            for c in v.cells:
                key = (v.id, str(c.get("level")))
                if key in undetermined_at:
                    a = alarms[(alarms["rule"] == v.id) & (alarms["level"].astype(str)
                                                           == key[1])]
                    c = {**c, "alarms": len(a), "first_alarm": None if a.empty else
                         a["window"].iloc[0], "run_length": None if a.empty else
                         int(a["run_length"].iloc[0])}
                cells.append(c)
            v = replace(v, cells=tuple(cells))

            def judge(c, v=v):
                key = (v.id, str(c.get("level")))
                if key not in chart_sites or c.get("alarms"):  # an alarm before: genuine
                    return None
                return (STATUS_NOT_EVALUABLE, w.reason(chart_sites[key]) +
                        f" (chart from {undetermined_at[key]} on)", chart_sites[key])
            v = _rejudge(v, judge, w)
        verdicts.append(v)

    # findings: stated only on cells that remain judged
    findings = []
    for f in r.findings:
        sub = f.subject or {}
        if f.code in ("drift.input", "drift.prediction"):
            role = "input" if f.code == "drift.input" else "prediction"
            d = drift[(drift["role"] == role) & (drift["feature"] == sub.get("feature"))
                      & (drift["test"] == sub.get("test"))]
            if not (d["status"] == NE).any():
                findings.append(f)
                continue
            hit = d[d["drifted"].astype(bool)]
            if hit.empty:
                continue
            x = hit.loc[hit["effect"].astype(float).idxmax()]
            findings.append(replace(f, values={
                **f.values, "drifted": len(hit), "cells": int((d["status"] == STATUS_OK).sum()),
                "max_effect": float(x["effect"]), "where": f"{x['window']}, {x['group']} = "
                f"{x['level']}", "first": str(hit["window"].min())}, counts={"n": int(x["n"])}))
        elif f.code == "drift.alarm":
            key = (sub.get("rule"), str(sub.get("level")))
            if key not in undetermined_at:
                findings.append(f)
                continue
            a = alarms[(alarms["rule"] == key[0]) & (alarms["level"].astype(str) == key[1])]
            if len(a):
                findings.append(replace(f, values={**f.values, "window": a["window"].iloc[0],
                                                   "run_length": int(a["run_length"].iloc[0]),
                                                   "alarms": len(a)}))
        elif f.code == "drift.no_alarm":
            if not any(k[0] == sub.get("rule") for k in chart_sites):
                findings.append(f)
        elif f.code == "drift.case_mix":
            flagged = case_mix[case_mix["flagged"].astype(bool)]
            if len(flagged):
                x = flagged.loc[flagged["smd"].abs().astype(float).idxmax()]
                findings.append(replace(f, values={**f.values, "cells": len(flagged),
                                                   "feature": x["feature"],
                                                   "category": x["category"],
                                                   "smd": float(x["smd"])}))
        elif f.code == "drift.integrity":
            ov = integrity[(integrity["group"] == "overall")
                           & (integrity["feature"] == sub.get("feature"))]
            if not (ov["status"] == NE).any():
                findings.append(f)
        else:
            findings.append(f)
    diagnostics = _mark_diagnostics(r.diagnostics, w, sites_of, list(s.get("features") or ()))
    return replace(r, drift=drift, performance=performance, prevalence=prevalence,
                   recalibration=recalibration, case_mix=case_mix, integrity=integrity,
                   charts=charts, alarms=alarms, diagnostics=diagnostics,
                   verdicts=tuple(verdicts), findings=tuple(findings))


def _mark_diagnostics(t, w: Withheld, sites_of: Callable[..., set[str]],
                      features: Iterable[str]):
    """The label-free diagnostics of a merge with the cells that read withheld values
    marked (the table has no verdict: none is made). A diagnostic of a window x level reads
    the cell's rows and each feature's values in it (the share outside the reference's
    support) and the calibration of its last labelled window: when a site withheld any of
    them, ``status`` is not_evaluable with the sites and the rule in ``reason`` and
    ``withheld_at``, and its ``calibration_ok`` and ``support_ok`` are not stated (None);
    every other cell keeps its values, with the status of its label-free estimate in the
    performance table (``estimated``)."""
    from rwe.drift._result import STATUS_ESTIMATED
    from rwe.drift._result import STATUS_NOT_EVALUABLE as NE

    t = t.copy()
    if not len(t):
        return t
    feats = list(features)
    status, reason, held = [], [], []
    cal = t["calibration_ok"].astype(object).to_numpy(copy=True)
    sup = t["support_ok"].astype(object).to_numpy(copy=True)
    for i, (win, g, lv, last) in enumerate(zip(t["window"], t["group"], t["level"],
                                               t["last_labelled_window"], strict=True)):
        hit = set(sites_of(win, g, lv))
        for f in feats:
            hit |= sites_of(win, g, lv, f)
        if isinstance(last, str) and last:
            hit |= sites_of(last, g, lv)
        if hit:
            status.append(NE)
            reason.append(w.reason(hit, "values") + " (the diagnostics of this window and "
                          "its last labelled window read them)")
            held.append(", ".join(sorted(hit)))
            cal[i], sup[i] = None, None
        else:
            status.append(STATUS_ESTIMATED)
            reason.append(None)
            held.append(None)
    t["calibration_ok"], t["support_ok"] = cal, sup
    t["status"], t["reason"], t["withheld_at"] = status, reason, held
    return t
