"""Which aggregates a reviewer may see: the small-cell rule with complementary suppression,
decided once per dossier from the typed results' counts.

The rule (``k`` = ``report.small_cell_k``, 11 by default):

1. **Primary suppression.** No count from 1 to ``k - 1`` is shown, nor any number from which
   one follows. Per cell (a subgroup level, an intersectional cell, a site x quarter cell)
   the counts considered are the rows ``n``, the events and the non-events, and, where
   threshold metrics are shown, the confusion cells (true and false positives and
   negatives: a sensitivity of 0.583 over 12 events shows 5 missed cases). A cell whose
   ``n``, events or non-events are small is hidden whole (its counts read ``<k`` and every
   estimate is suppressed); a cell whose only small counts are confusion cells keeps its
   ``n`` and events and loses its threshold metrics (sensitivity, specificity, PPV, NPV,
   ...). Missing-value counts per variable and subgroup follow the same rule. Zeros are
   shown (a structural zero discloses no one).
2. **Complementary suppression.** A hidden cell must not be recoverable from a total shown
   elsewhere: the levels of an attribute add up to the overall count, the cells of an
   intersection ``A x B`` with ``A = a`` add up to the level ``a`` (and likewise for each
   level of ``B``), the site x quarter cells of a site add up to the site's count. In every
   such partition, for every kind of count, either nothing is hidden or (a) at least two
   entries of the partition's equation are hidden (cells, or the total itself) and (b) when
   the total is shown, the hidden cells together hold 0 or at least ``k``. Otherwise the
   smallest visible cell of the partition is hidden too, and the partitions are checked
   again until nothing changes (a cell hidden for one partition can break another).

Sources: the CMS Cell Size Suppression Policy (Centers for Medicare & Medicaid Services,
2017; ResDAC, "CMS Cell Size Suppression Policy"): no cell of 1 to 10 may be displayed, and no
percentage or other formula may be used if it allows a cell of 1 to 10 to be derived; and
Federal Committee on Statistical Methodology, *Statistical Policy Working Paper 22: Report on
Statistical Disclosure Limitation Methodology* (2nd ed., 2005), ch. 4, for primary and
complementary cell suppression in tables with additive margins.

The plan is computed by the build from every section's result and handed to the notebooks
next to their records (``privacy.json``); every reviewer-facing output (tables, verdict and
finding text, figures, model card, PDF, the ``verdicts`` and ``findings`` of results.json)
asks it. The section records of results.json keep the unsuppressed aggregates for analysts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rwe._results import GROUP_SEP, LEVEL_SEP

__all__ = ["DisclosurePlan", "SIZE", "THRESHOLD", "disclosure_plan", "plan_from_results",
           "threshold_metrics", "PRIVACY_RECORD", "near_unique_attributes", "site_cell",
           "SitePlan", "reviewer_federation"]

#: Kinds of counts ("families"): hiding ``SIZE`` hides every number of a cell.
SIZE = "size"
THRESHOLD = "threshold"
OVERALL = ("overall", "all")
#: Name of the plan's record next to the section records of a build.
PRIVACY_RECORD = "privacy.json"

_FAMILY = {"n": SIZE, "events": SIZE, "nonevents": SIZE, "tp": THRESHOLD, "fn": THRESHOLD,
           "fp": THRESHOLD, "tn": THRESHOLD}


def _family(quantity: str) -> str:
    """The kind of a count: ``SIZE``, ``THRESHOLD`` or its own name (``"missing=age"``);
    ``"#..."`` tails mark a second count of the same kind (``"n#1"``)."""
    base = quantity.split("#", 1)[0]
    return _FAMILY.get(base, base)


def _num(v: Any) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) else math.nan


def _small(v: float, k: int) -> bool:
    return not math.isnan(v) and 1 <= v < k


def threshold_metrics() -> frozenset[str]:
    """Metrics computed at the action threshold (their estimates reveal confusion cells)."""
    from rwe.metrics import get_metric, metric_names

    return frozenset(m for m in metric_names() if get_metric(m).kind == "threshold")


@dataclass
class DisclosurePlan:
    """The cells hidden from reviewers, per kind of count.

    Attributes
    ----------
    k : int
    hidden : dict
        ``{family: {group: [level, ...]}}``: hidden cells (``SIZE``: everything of the cell).
    primary : dict
        The same for cells hidden by rule 1 (their small counts are shown as ``<k``; cells
        hidden only by rule 2 read "suppressed").
    """

    k: int
    hidden: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    primary: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._h = {(f, g, lv) for f, gs in self.hidden.items() for g, lvs in gs.items()
                   for lv in lvs}
        self._p = {(f, g, lv) for f, gs in self.primary.items() for g, lvs in gs.items()
                   for lv in lvs}

    def hides(self, group: Any, level: Any, family: str = SIZE) -> bool:
        """True when the cell's counts of ``family`` (or all of it, ``SIZE``) are hidden."""
        g, lv = _key(group, level)
        return (SIZE, g, lv) in self._h or (family, g, lv) in self._h

    def is_primary(self, group: Any, level: Any, family: str = SIZE) -> bool:
        g, lv = _key(group, level)
        return (SIZE, g, lv) in self._p or (family, g, lv) in self._p

    def hidden_levels(self, family: str = SIZE) -> set[tuple[str, str]]:
        return {(g, lv) for f, g, lv in self._h if f in (family, SIZE)}

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "hidden": self.hidden, "primary": self.primary}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DisclosurePlan:
        return cls(k=int(d["k"]), hidden={f: {g: list(v) for g, v in gs.items()}
                                          for f, gs in (d.get("hidden") or {}).items()},
                   primary={f: {g: list(v) for g, v in gs.items()}
                            for f, gs in (d.get("primary") or {}).items()})


def _key(group: Any, level: Any) -> tuple[str, str]:
    g = str(group)
    if g in ("overall", "(all)"):
        return OVERALL
    return g, str(level)


def _partitions(cells: Iterable[tuple[str, str]], margins: Mapping[str, tuple[str, str]]
                ) -> list[tuple[tuple[str, str], list[tuple[str, str]]]]:
    """(total, members) of every additive partition among ``cells``: the levels of a single
    grouping under its margin (``margins[group]``, default the overall cell), and the cells
    of an intersection under each level of each component."""
    by_group: dict[str, list[tuple[str, str]]] = {}
    for g, lv in cells:
        if (g, lv) != OVERALL:
            by_group.setdefault(g, []).append((g, lv))
    out = []
    for g, members in by_group.items():
        parts = g.split(GROUP_SEP)
        if len(parts) == 1:
            out.append((margins.get(g, OVERALL), members))
            continue
        for i, comp in enumerate(parts):
            slices: dict[str, list[tuple[str, str]]] = {}
            for c in members:
                levels = c[1].split(LEVEL_SEP)
                if len(levels) != len(parts):
                    continue
                slices.setdefault(levels[i], []).append(c)
            for lv, sl in slices.items():
                out.append(((comp, lv), sl))
    return out


def disclosure_plan(cells: Mapping[tuple[str, str], Mapping[str, Any]], k: int, *,
                    margins: Mapping[str, tuple[str, str]] | None = None) -> DisclosurePlan:
    """Apply the small-cell rule (module docstring) to ``cells``.

    Parameters
    ----------
    cells : mapping
        ``{(group, level): {quantity: count}}``; groups are attribute names or
        intersections (``"sex x race"``, levels ``"F & Asian"``); the overall cell is
        ``("overall", "all")``. Quantities ``n``, ``events``, ``nonevents`` are sizes,
        ``tp, fn, fp, tn`` confusion cells; ``"<family>=<label>"`` quantities form a family
        of their own (``"missing=age"``).
    k : int
    margins : mapping, optional
        The total of a single grouping other than the overall cell.
    """
    k = int(k)
    margins = dict(margins or {})
    counts = {key: {q: _num(v) for q, v in qs.items()} for key, qs in cells.items()}
    families = sorted({_family(q) for qs in counts.values() for q in qs})
    hidden: dict[str, set] = {f: set() for f in families}
    primary: dict[str, set] = {f: set() for f in families}
    for key, qs in counts.items():
        for q, v in qs.items():
            if _small(v, k):
                f = _family(q)
                hidden[f].add(key)
                primary[f].add(key)

    def is_hidden(f: str, key: tuple[str, str]) -> bool:
        return key in hidden[f] or key in hidden.get(SIZE, ())

    parts = _partitions(counts, margins)
    having = {f: {c for c, qs in counts.items() if any(_family(q) == f for q in qs)}
              for f in families}
    changed = True
    while changed:
        changed = False
        for f in families:
            quantities = sorted({q for qs in counts.values() for q in qs if _family(q) == f})
            for total, all_members in parts:
                members = [c for c in all_members if c in having[f]]
                if not members:
                    continue
                hid = [c for c in members if is_hidden(f, c)]
                vis = [c for c in members if not is_hidden(f, c)]
                known = total in having[f]
                total_hidden = known and is_hidden(f, total)
                unknowns = len(hid) + (1 if total_hidden else 0)
                if known and unknowns == 1:
                    need = True  # one unknown in "total = sum of members": derivable
                elif known and not total_hidden and hid:
                    need = any(_small(sum(0.0 if math.isnan(counts[c].get(q, math.nan))
                                          else counts[c][q] for c in hid), k)
                               for q in quantities)
                else:
                    need = False
                if need and vis:
                    pick = min(vis, key=lambda c: (_num(counts[c].get("n", math.inf)),
                                                   c[1]))
                    hidden[f].add(pick)
                    changed = True

    def nest(keys: set) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for g, lv in sorted(keys):
            out.setdefault(g, []).append(lv)
        return out

    return DisclosurePlan(k=k, hidden={f: nest(v) for f, v in hidden.items() if v},
                          primary={f: nest(v) for f, v in primary.items() if v})


# ----------------------------------------------------------------------------- from results
def _add(cells: dict, key: tuple[str, str], **quantities: Any) -> None:
    cur = cells.setdefault(key, {})
    for q, v in quantities.items():
        x = _num(v)
        if math.isnan(x):
            continue
        # the same cell seen by two analyses (rows with a missing outcome, another table):
        # keep every distinct count it shows
        same = [c for c in cur if c.split("#", 1)[0] == q]
        if any(cur[c] == x for c in same):
            continue
        cur[q if not same else f"{q}#{len(same)}"] = x


def _subgroup_cells(cells: dict, sub: Any, key_of: Any = None, keep: Any = None) -> None:
    """The cells of a subgroup table (``key_of(group, level)`` names them, default as they
    are; ``keep(row)`` selects the rows shown)."""
    t = sub.table
    thr = threshold_metrics()
    est = {}
    for r in t.to_dict("records"):
        if keep is not None and not keep(r):
            continue
        key = (key_of or _key)(r["group"], r["level"])
        n, e = _num(r["n"]), _num(r["events"])
        _add(cells, key, n=n, events=e, nonevents=n - e)
        if r["metric"] in thr:
            est[(key, r["metric"])] = _num(r["estimate"])
    for (key, metric), v in est.items():
        if math.isnan(v):
            continue
        n, e = cells[key]["n"], cells[key]["events"]
        if metric == "sensitivity":
            tp = round(v * e)
            _add(cells, key, tp=tp, fn=e - tp)
        elif metric == "specificity":
            tn = round(v * (n - e))
            _add(cells, key, tn=tn, fp=(n - e) - tn)


def _rep_cells(cells: dict, rep: Any, site: str | None, equipment: str | None) -> None:
    for r in rep.shares.to_dict("records"):
        _add(cells, _key(r["attribute"], r["category"]), n=r["n"])
    _add(cells, OVERALL, n=rep.n)
    for r in rep.coverage.to_dict("records"):
        n, pos = _num(r["n"]), _num(r.get("n_positive"))
        _add(cells, _key(r["intersection"], r["cell"]), n=n, events=pos,
             nonevents=n - pos if not math.isnan(pos) else math.nan)
    for r in rep.adequacy.to_dict("records"):
        n, pos = _num(r["n"]), _num(r.get("n_positive"))
        _add(cells, _key(r["grouping"], r["subgroup"]), n=n, events=pos,
             nonevents=n - pos if not math.isnan(pos) else math.nan)
    for r in rep.sites.to_dict("records"):
        if r["level"] == "site" and site:
            _add(cells, (site, str(r["site"])), n=r["n"])
        elif r["level"] == "equipment" and equipment:
            _add(cells, (equipment, str(r["equipment"])), n=r["n"])
        elif r["level"] == "site x equipment" and site and equipment:
            _add(cells, (f"{site}{GROUP_SEP}{equipment}",
                         f"{r['site']}{LEVEL_SEP}{r['equipment']}"), n=r["n"])
    for r in rep.missingness.to_dict("records"):
        key = _key(r["grouping"], r["subgroup"])
        m, n = _num(r["n_missing"]), _num(r["n"])
        _add(cells, key, **{f"missing={r['variable']}": m,
                            f"missing={r['variable']}#present": n - m})
    smd = rep.smd
    comp = smd[(smd["comparison"] != "reference shares") & smd["kind"].astype(str).str.contains(
        "categorical")]
    for r in comp.to_dict("records"):
        nb = _num(r["n_b"])
        cnt = round(_num(r["mean_b"]) * nb) if not math.isnan(nb) else math.nan
        _add(cells, (f"comparison rows: {r['covariate']}", str(r["level"])), n=cnt)
        _add(cells, ("comparison rows", "all"), n=nb)


def _provenance_cells(cells: dict, prov: Any, site: str | None) -> None:
    t = prov.by_site_quarter
    if len(t):
        recs = t.to_dict("records")
        for r in recs:
            n, e = _num(r["n"]), _num(r.get("events"))
            q = dict(n=n, events=e, nonevents=n - e) if "events" in r else dict(n=n)
            if "site" in r and site:
                _add(cells, (f"{site}{GROUP_SEP}quarter", f"{r['site']}{LEVEL_SEP}{r['quarter']}"),
                     **q)
            else:
                _add(cells, ("quarter", str(r["quarter"])), **q)
    rows = prov.counts.get("rows")
    for r in prov.missingness.to_dict("records"):
        m = _num(r["n_missing"])
        _add(cells, OVERALL, **{f"missing={r['column']}": m,
                                f"missing={r['column']}#present": _num(rows) - m})


def _table1_cells(cells: dict, t1: Any) -> None:
    for r in t1.counts.to_dict("records"):
        by, stratum, var, level = r["by"], str(r["stratum"]), r["variable"], str(r["level"])
        if by == "overall":
            key = OVERALL if var == "n" else _key(var, level)
        elif var == "n":
            key = (by, stratum)
        else:
            key = (f"{by}{GROUP_SEP}{var}", f"{stratum}{LEVEL_SEP}{level}")
        _add(cells, key, n=r["n"])


#: The sections whose results the plan is made from (with representativeness's Table 1): the
#: cells whose counts they show (a federated merge's per-site tables among them). Drift and change-control pages show no cell of their own
#: beyond these: they drop the levels the plan hides (:func:`reviewer_levels`).
PLAN_SECTIONS = ("subgroups", "representativeness", "provenance", "federation")


def plan_from_results(protocol: Any, results: Mapping[str, Any],
                      extras: Mapping[str, Any] | None = None) -> DisclosurePlan:
    """The dossier's plan from the typed results of its sections (any subset) and their
    extras (``{"table1": TableOneResult}``)."""
    roles = protocol.data.columns
    cells: dict[tuple[str, str], dict[str, float]] = {}
    if (extras or {}).get("table1") is not None:
        _table1_cells(cells, extras["table1"])
    if results.get("subgroups") is not None:
        _subgroup_cells(cells, results["subgroups"])
    if results.get("representativeness") is not None:
        _rep_cells(cells, results["representativeness"], roles.site, roles.equipment)
    if results.get("provenance") is not None:
        _provenance_cells(cells, results["provenance"], roles.site)
    if results.get("federation") is not None:
        _federation_cells(cells, results["federation"], roles.site)
    margins = {}
    for g in {g for g, _ in cells}:
        if g.startswith("comparison rows: "):
            margins[g] = ("comparison rows", "all")
    return disclosure_plan(cells, protocol.report.small_cell_k, margins=margins)


# ----------------------------------------------------------------------------- federation
def site_cell(site_column: str | None, site: str, group: Any, level: Any) -> tuple[str, str]:
    """The cell of ``group = level`` at one site, in the dossier's pooled table of cells: the
    site's overall cell is the level ``site`` of the site attribute, a subgroup of a site is a
    cell of the intersection ``site x group`` (whose levels across sites add up to the pooled
    level, and across levels to the site: rule 2 applies to both)."""
    col = site_column or "site"
    g, lv = _key(group, level)
    if (g, lv) == OVERALL:
        return col, str(site)
    return f"{col}{GROUP_SEP}{g}", f"{site}{LEVEL_SEP}{lv}"


def _site_rows(site_column: str | None) -> Any:
    """The rows of a site's subgroup table shown on the federation page: single attributes
    other than the site itself (a site's intersections are not shown)."""
    col = site_column or "site"
    return lambda r: int(r.get("n_attributes") or 0) <= 1 and r["group"] != col


def _federation_cells(cells: dict, fed: Any, site_column: str | None) -> None:
    """Each site's own subgroup table, as the federation page shows it (the pooled tables are
    the other sections')."""
    for site, res in fed.per_site.items():
        sub = res.get("subgroups")
        if sub is not None:
            _subgroup_cells(cells, sub, key_of=lambda g, lv, s=site: site_cell(
                site_column, s, g, lv), keep=_site_rows(site_column))


class SitePlan:
    """The disclosure plan as one site's tables see it: ``hides(group, level)`` of a site's
    own table asks the dossier's plan about that cell at that site (:func:`site_cell`)."""

    def __init__(self, plan: Any, site_column: str | None, site: str):
        self._plan, self._col, self._site = plan, site_column, site

    def hides(self, group: Any, level: Any, family: str = SIZE) -> bool:
        return self._plan is not None and self._plan.hides(
            *site_cell(self._col, self._site, group, level), family)

    def is_primary(self, group: Any, level: Any, family: str = SIZE) -> bool:
        return self._plan is not None and self._plan.is_primary(
            *site_cell(self._col, self._site, group, level), family)


def site_estimate_hidden(plan: Any, k: int, site_column: str | None, row: Mapping[str, Any]
                         ) -> bool:
    """True when a site's meta-analysed estimate would disclose a hidden cell: the site's cell
    is hidden (for a threshold metric, also its confusion counts) or its counts are small."""
    family = THRESHOLD if row.get("metric") in threshold_metrics() else SIZE
    if plan is not None and plan.hides(*site_cell(site_column, row["site"], "overall", "all"),
                                       family):
        return True
    return _cell_small(_num(row.get("n")), _num(row.get("events")), k)


def reviewer_federation(result: Any, plan: Any, k: int, site_column: str | None) -> Any:
    """A copy of a :class:`rwe.federation.FederatedResult` for reviewer figures: the site
    estimates that would disclose a hidden cell (:func:`site_estimate_hidden`) removed."""
    import dataclasses

    import numpy as np

    est = result.site_estimates
    keep = np.array([not site_estimate_hidden(plan, k, site_column, r)
                     for r in est.to_dict("records")], dtype=bool)
    return dataclasses.replace(result, site_estimates=est[keep].reset_index(drop=True))


def near_unique_attributes(evset: Any, attributes: Iterable[str], *,
                           max_share: float = 0.5, k: int = 11) -> dict[str, str]:
    """Attributes too close to an identifier to be subgroups: more than ``max_share`` of the
    rows carry a value that fewer than ``k`` rows share (a patient id, a scan date, a free-text
    field). Returns ``{attribute: reason}``."""
    out = {}
    frame = evset.frame if hasattr(evset, "frame") else evset
    for a in attributes:
        if a not in frame.columns:
            continue
        s = frame[a].dropna()
        if not len(s):
            continue
        counts = s.astype(str).value_counts()
        share = float(counts[counts < k].sum() / len(s))
        if share > max_share:
            out[a] = (f"{s.nunique():,} distinct values in {len(s):,} rows; {share:.0%} of the "
                      f"rows share their value with fewer than {k} rows")
    return out


def gap_hidden(plan: Any, table: Any, gap: Mapping[str, Any], k: int) -> bool:
    """A fairness gap is hidden when either of its two levels is (for a threshold metric,
    also when their confusion counts are), or when a level's own counts are small."""
    g = gap["group"]
    family = THRESHOLD if gap.get("metric") in threshold_metrics() else SIZE
    for lv in (gap.get("level_max"), gap.get("level_min")):
        if lv is None:
            continue
        if plan is not None and plan.hides(g, lv, family):
            return True
        rows = table[(table["group"] == g) & (table["level"] == lv)]
        if len(rows):
            n, e = _num(rows["n"].iloc[0]), _num(rows["events"].iloc[0])
            if _small(n, k) or _small(e, k) or _small(n - e, k):
                return True
    return False


# ----------------------------------------------------------------------------- verdicts, findings
#: Wording of findings whose numbers the plan hides (codes whose module has no such wording).
_SUPPRESSED_WORDING = {
    "subgroups.goal_not_met": "Goal not met - {criterion}: not met in {fail} of {cells} "
                              "cell(s); the cells' estimates are on the subgroup page (some "
                              "are suppressed: small cells).",
    "subgroups.goal_not_evaluable": "Goal not evaluable - {criterion}: some cells could not "
                                    "be judged (details suppressed: small cells).",
    "subgroups.largest_gap": "Largest fairness gap among single attributes ({definition} "
                             "across {group}): suppressed, one of its levels is a small cell.",
}


def _family_of_metric(metric: Any) -> str:
    return THRESHOLD if metric in threshold_metrics() else SIZE


def _cell_hidden(plan: Any, cell: Mapping[str, Any], k: int, family: str) -> bool:
    if plan is not None and cell.get("group") is not None and plan.hides(
            cell["group"], cell.get("level"), family):
        return True
    n, e = _num(cell.get("n")), _num(cell.get("events"))
    return _small(n, k) or _small(e, k) or _small(n - e, k)


def verdict_for_reviewers(v: Mapping[str, Any], k: int, plan: Any,
                          metrics: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A verdict's dict without a number of a hidden cell: such cells keep their group,
    level and status (``suppressed: true``); the verdict's own estimate and interval (its
    worst cell's) go when that cell is hidden."""
    family = _family_of_metric((metrics or {}).get(v["id"]))
    out = dict(v)
    cells, worst_hidden = [], False
    for c in v.get("cells") or ():
        if _cell_hidden(plan, c, k, family):
            if v.get("estimate") is not None and c.get("estimate") == v.get("estimate"):
                worst_hidden = True
            cells.append({"group": c.get("group"), "level": c.get("level"),
                          "status": c.get("status"), "suppressed": True})
        else:
            cells.append(dict(c))
    out["cells"] = cells
    if worst_hidden:
        out["estimate"] = None
        out["interval"] = None
    return out


def finding_hidden(f: Any, k: int, plan: Any, verdicts: Mapping[str, Mapping]) -> bool:
    """True when a finding's numbers would disclose a hidden cell (its counts are small, or
    it is about cells the plan hides)."""
    if f.suppressed(k):
        return True
    if plan is None:
        return False
    if f.code in ("subgroups.goal_not_met", "subgroups.goal_not_evaluable"):
        v = verdicts.get(f.subject.get("verdict")) or {}
        return any(c.get("status") != "pass" and (c.get("suppressed") or any(
            _cell_hidden(plan, c, k, fam) for fam in (SIZE, THRESHOLD)))
            for c in v.get("cells") or ())
    if f.code == "subgroups.largest_gap":
        g = f.subject.get("group")
        return any(plan.hides(g, f.values.get(x), fam) for x in ("level_max", "level_min")
                   for fam in (SIZE, THRESHOLD))
    if f.code == "provenance.missing":
        return plan.hides("overall", "all", f"missing={f.subject.get('column')}")
    if f.code == "model_card.under_represented" or (
            f.code.startswith("representativeness.") and "category" in f.subject):
        return plan.hides(f.subject.get("attribute"), f.subject.get("category"))
    if f.code in ("representativeness.smd_imbalanced", "representativeness.development_shift"):
        cov, lv = f.subject.get("covariate"), f.subject.get("level")
        return lv is not None and (plan.hides(cov, lv)
                                   or plan.hides(f"comparison rows: {cov}", lv))
    if f.code.startswith(("drift.", "change_control.")):
        return _names_hidden_cell(plan, {**f.subject, **f.values})
    if f.code == "representativeness.sample_size_short":
        names = {str(s) for s in f.values.get("subgroups") or ()}
        return any(lv in names for _, lv in plan.hidden_levels())
    if f.code == "representativeness.missing_in_subgroups":
        listed = str(f.values.get("listed_names", "")).split(", ")
        return any(f"{g} = {lv}" in listed for g, lv in plan.hidden_levels())
    return False


def _names_hidden_cell(plan: Any, fields: Mapping[str, Any]) -> bool:
    """True when a finding's fields name a cell the plan hides: a ``group``/``level`` pair
    (or ``worst_group``/``worst_level``), or ``"group = level"`` inside a text value."""
    for g, lv in (("group", "level"), ("worst_group", "worst_level")):
        if fields.get(g) is not None and fields.get(lv) is not None and plan.hides(
                fields[g], fields[lv]):
            return True
    texts = [str(v) for v in fields.values() if isinstance(v, str)]
    hidden = plan.hidden_levels() | plan.hidden_levels(THRESHOLD)
    return any(f"{g} = {lv}" in t for g, lv in hidden for t in texts)


#: The tables of a drift result with one row per window x group x level.
DRIFT_TABLES = ("drift", "performance", "prevalence", "case_mix", "integrity", "recalibration",
                "diagnostics", "charts", "alarms")


def reviewer_drift(result: Any, plan: Any) -> Any:
    """A copy of a :class:`rwe.drift.DriftResult` for reviewer figures and pages: the levels
    the plan hides removed from every table (:func:`reviewer_levels`)."""
    import dataclasses

    import pandas as pd

    if plan is None:
        return result
    hidden = plan.hidden_levels() | plan.hidden_levels(THRESHOLD)
    frames = {}
    for name in DRIFT_TABLES:
        f = getattr(result, name, None)
        if isinstance(f, pd.DataFrame) and {"group", "level"} <= set(f.columns) and len(f):
            cells = pd.MultiIndex.from_arrays([f["group"].astype(str), f["level"].astype(str)])
            frames[name] = f[~cells.isin(list(hidden))].reset_index(drop=True) if hidden \
                else f
    return dataclasses.replace(result, **frames)


def reviewer_levels(record: Mapping[str, Any], plan: Any,
                    tables: Sequence[str]) -> dict[str, Any]:
    """A copy of a section record without the rows of cells the plan hides (in every table
    of ``tables`` that has ``group`` and ``level`` columns): a drift window x level, or a
    change-control cell, of a hidden subgroup would let a reviewer add its counts back up."""
    if plan is None:
        return dict(record)
    hidden = plan.hidden_levels() | plan.hidden_levels(THRESHOLD)
    out = dict(record)
    for name in tables:
        rows = record.get(name)
        if isinstance(rows, list):
            out[name] = [r for r in rows if not (isinstance(r, Mapping) and (
                str(r.get("group")), str(r.get("level"))) in hidden)]
    return out


def finding_for_reviewers(finding: Any, k: int, plan: Any,
                          verdicts: Mapping[str, Mapping] | None = None) -> dict[str, Any]:
    """A finding's dict for reviewers, with its sentence (``text``); a finding whose numbers
    would disclose a hidden cell keeps its code and subject, loses its values and counts
    (``suppressed: true``) and reads its suppressed wording."""
    from rwe._evidence import Finding, finding_template

    f = finding if isinstance(finding, Finding) else Finding.from_dict(finding)
    out = f.to_dict()
    if not finding_hidden(f, k, plan, verdicts or {}):
        out["text"] = f.text(k)
        return out
    wording = finding_template(f.code + ":suppressed") or _SUPPRESSED_WORDING.get(f.code)
    try:
        text = wording.format(**f.subject, **f.values, **f.counts, k=k) if wording else None
    except (KeyError, IndexError, ValueError):
        text = None
    if text is None:
        text = (f"{f.code.split('.')[-1].replace('_', ' ').capitalize()}: details suppressed "
                f"(a cell behind it is below {k} rows, or could be worked out from one).")
    out.update(values={}, counts={}, text=text, suppressed=True)
    return out


# ----------------------------------------------------------------------------- checks, figures
MSG_NEAR_UNIQUE = ("{where}: attribute '{attribute}' is too close to an identifier to be a "
                   "subgroup ({reason}): its subgroups would be single patients on the "
                   "reviewer pages; use a coarser grouping (a derived band or category)")


def check_attributes(protocol: Any, evset: Any) -> None:
    """Refuse subgroup and population attributes with near-unique values (an id, a date, a
    free-text field): one line per attribute, naming the protocol field."""
    from rwe.exceptions import DataValidationError

    k = protocol.report.small_cell_k
    fields: dict[str, str] = {}
    for i, a in enumerate(protocol.subgroups.attributes if protocol.subgroups else ()):
        fields.setdefault(a, f"subgroups.attributes[{i}]")
    for i, inter in enumerate(getattr(protocol.subgroups, "intersections", None) or ()):
        for j, a in enumerate(inter):
            fields.setdefault(a, f"subgroups.intersections[{i}][{j}]")
    for i, a in enumerate(getattr(protocol.population, "attributes", None) or ()):
        fields.setdefault(a, f"population.attributes[{i}]")
    bad = near_unique_attributes(evset, fields, k=k)
    if bad:
        name = Path(protocol.path).name if protocol.path else "protocol"
        raise DataValidationError([MSG_NEAR_UNIQUE.format(
            where=f"{name}: {fields[a]}", attribute=a, reason=why) for a, why in bad.items()],
            source=name)


def _group_name(by: Any) -> str:
    return by if isinstance(by, str) else GROUP_SEP.join(by)


def _cell_small(n: float, e: float, k: int) -> bool:
    return _small(n, k) or _small(e, k) or _small(n - e, k)


def reviewer_subgroups(report: Any, plan: Any, k: int, *, intersections: bool = False) -> Any:
    """A copy of a subgroup result for reviewer figures (see
    :meth:`rwe.dossier.SectionContext.reviewer_report`)."""
    import dataclasses

    import numpy as np

    t = report.table
    recs = t[["group", "level", "n", "events"]].to_dict("records")
    keep = np.array([not (_cell_small(_num(r["n"]), _num(r["events"]), k) or (
        plan is not None and plan.hides(r["group"], r["level"]))) for r in recs], dtype=bool)
    if not intersections:
        keep &= t["n_attributes"].to_numpy() <= 1
    out = t[keep].reset_index(drop=True).copy()
    if plan is not None:
        thr = threshold_metrics()
        hide = np.array([m in thr and plan.hides(g, lv, THRESHOLD) for g, lv, m in
                         zip(out["group"], out["level"], out["metric"], strict=True)],
                        dtype=bool)
        out.loc[hide, ["estimate", "ci_low", "ci_high"]] = np.nan
    return dataclasses.replace(report, table=out)


def reviewer_curves(report: Any, plan: Any, k: int, by: Any) -> Any:
    """A copy of a subgroup result whose curves of ``by`` show no point derived from fewer
    than ``k`` cases (see :meth:`rwe.dossier.SectionContext.reviewer_rows`)."""
    import dataclasses

    import numpy as np

    name = _group_name(by)
    t = report.table.drop_duplicates(["group", "level"])
    t = t[t["group"] == name]
    sizes = {lv: (_num(n), _num(e)) for lv, n, e in zip(t["level"], t["n"], t["events"],
                                                        strict=True)}
    big = {lv for lv, (n, e) in sizes.items() if not _cell_small(n, e, k)
           and not (plan is not None and plan.hides(name, lv))}
    roc = report.roc
    mine = (roc["group"] == name).to_numpy()
    ok = ~mine
    if mine.any():
        lv = roc["level"].to_numpy()
        levels = roc["level"]  # each point's level's cases and rows (NaN: not in the table)
        pos = levels.map({x: e for x, (_, e) in sizes.items()}).to_numpy(dtype=float)
        neg = levels.map({x: n for x, (n, _) in sizes.items()}).to_numpy(dtype=float) - pos
        tp = np.round(roc["tpr"].to_numpy(dtype=float) * pos)
        fp = np.round(roc["fpr"].to_numpy(dtype=float) * neg)

        def fine(c):
            return (c == 0) | (c >= k)

        point_ok = fine(tp) & fine(pos - tp) & fine(fp) & fine(neg - fp)
        ok |= mine & np.isin(lv, list(big)) & point_ok
    cal = report.calibration
    cmine = (cal["group"] == name).to_numpy()
    cok = ~cmine
    if cmine.any():
        n = cal["n"].to_numpy(dtype=float)
        e = cal["events"].to_numpy(dtype=float)
        bin_ok = ~(((n >= 1) & (n < k)) | ((e >= 1) & (e < k)) | ((n - e >= 1) & (n - e < k)))
        cok |= cmine & cal["level"].isin(list(big)).to_numpy() & bin_ok
    return dataclasses.replace(report, roc=roc[ok].reset_index(drop=True),
                               calibration=cal[cok].reset_index(drop=True))


def reviewer_representativeness(rep: Any, plan: Any, k: int) -> Any:
    """A copy of a representativeness result without the categories the plan hides (or with
    fewer than ``k`` rows) in its shares, for the share and PPR figures."""
    import dataclasses

    import numpy as np

    sh = rep.shares
    keep = np.array([not (_small(_num(r["n"]), k) or (plan is not None and plan.hides(
        r["attribute"], r["category"]))) for r in sh.to_dict("records")], dtype=bool)
    return dataclasses.replace(rep, shares=sh[keep].reset_index(drop=True))


def mask_coverage(fig: Any, rep: Any, intersection: Any, plan: Any, k: int) -> Any:
    """Mask, in the coverage heat map ``fig`` of ``intersection``, the cells the plan hides or
    with 1..k-1 rows: the count reads ``<k`` (or "supp." for a cell hidden so that another
    cannot be worked out), the cell is left blank and the colour scale (and its bar) is set by
    the shown cells only."""
    import numpy as np

    name = _group_name(intersection)
    cov = rep.coverage[rep.coverage["intersection"] == name]
    n_of = dict(zip(cov["cell"], cov["n"], strict=True))
    ax = fig.axes[0]
    cols = [t.get_text() for t in ax.get_xticklabels()]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    im = ax.images[0]
    data = np.ma.masked_invalid(np.ma.asarray(im.get_array(), dtype=float))
    for text in ax.texts:
        x, y = text.get_position()
        j, i = int(round(x)), int(round(y))
        if not (0 <= i < len(rows) and 0 <= j < len(cols)):
            continue
        cell = next((c for c in (f"{rows[i]}{LEVEL_SEP}{cols[j]}",
                                 f"{cols[j]}{LEVEL_SEP}{rows[i]}") if c in n_of), None)
        if cell is None:
            continue
        n = _num(n_of[cell])
        if _small(n, k) or (plan is not None and plan.hides(name, cell)):
            text.set_text(f"<{k}" if _small(n, k) else "supp.")
            text.set_color("#667085")
            text.set_fontweight("normal")
            data[i, j] = np.ma.masked
    im.set_array(data)
    shown = data.compressed()
    if shown.size:
        im.set_clim(float(shown.min()), float(max(shown.max(), shown.min() + 1e-9)))
    return fig
