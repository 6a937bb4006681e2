"""Reviewer views of the federation section (a merge's dossier): the sites and their files,
per-site results, the meta-analysis of the site estimates, the disclosure rule each site
applied and what site summaries cannot evaluate. Rendered from the section's record
(:meth:`rwe.federation.FederatedResult.to_dict`); every count of a site passes through the
dossier's disclosure plan (:mod:`rwe.dossier._privacy`).
"""

from __future__ import annotations

from typing import Any

from rwe.dossier._format import (
    DASH,
    EN,
    Col,
    RawHTML,
    definition_list,
    esc,
    fmt_ci,
    fmt_int,
    fmt_num,
    fmt_pct,
    html_table,
    status_badge,
)
from rwe.dossier._suppress import SUPPRESSED, reviewer_table
from rwe.dossier._views import _mlabel, _pivot_performance, suppression_note, view

__all__: list[str] = []

SECTION = "federation"
#: Metrics judged at the action threshold come first in a performance table (as on the
#: subgroup page).
_THRESHOLD_FIRST = ("sensitivity", "specificity", "ppv", "npv")


def _site_column(p: dict) -> str:
    pr = p.get("_protocol")
    col = getattr(getattr(getattr(pr, "data", None), "columns", None), "site", None)
    return col or "site"


def _frame(records: Any):
    import pandas as pd

    return pd.DataFrame(records or [])


def _resolution(res: Any) -> str:
    if isinstance(res, list):
        return f"{len(res) - 1} bins on the declared edges (federation.score_bins)"
    return f"{res} uniform bins on [0, 1] (federation.score_bins)"


@view(SECTION, "sites")
def _sites(p: dict, k: int) -> str:
    """The protocol the sites summarized for, the declared resolution and one row per site
    file: its period, rows and events as released, and its checksum."""
    s = p.get("settings") or {}
    counts = p.get("counts") or {}
    period = p.get("period") or {}
    facts = definition_list([
        ("Protocol", RawHTML(f"{esc(s.get('protocol'))} (sha256 "
                             f"<code>{esc(s.get('protocol_sha256'))}</code>)")),
        ("Declared score resolution", _resolution(s.get("resolution"))),
        ("Minimum count a site releases", f"{s.get('min_count')} (federation.min_count)"),
        ("Sites merged", f"{', '.join(s.get('sites') or [])} ({s.get('files')} file(s))"),
        ("Summaries merged per site", s.get("views")),
        ("Pooled rows and events", f"{fmt_int(counts.get('rows'))} rows, "
                                   f"{fmt_int(counts.get('events'))} events"),
        ("Period released", f"{period.get('first')} to {period.get('last')}" if period
         else None),
    ])
    col = _site_column(p)
    rows = []
    for x in p.get("sites") or []:
        per = x.get("period")
        rows.append({"site": x["site"], "file": x["file"], "rows": x["rows"],
                     "events": x["events"], "patients": x.get("patients"),
                     "period": f"{per[0]} to {per[1]}" if per else "all rows",
                     "checksum": RawHTML(f"<code>{esc(x['checksum'])}</code>")})
    df = _frame(rows)
    sup = reviewer_table(df, p.get("_plan"), k, key=lambda r: (col, r["site"]),
                         counts=["rows", "events", "patients"],
                         complements=[("rows", "events")]) if len(df) else df
    table = html_table(sup, [Col("Site", "site"), Col("File", "file"),
                             Col("Period", "period"), Col("Rows", "rows", "int"),
                             Col("Events", "events", "int"),
                             Col("Patients", "patients", "int"),
                             Col("Content sha256 (checked)", "checksum", "html")],
                       caption="Site summary files merged", css="files")
    note = ("Every file was checked before anything was merged: its schema "
            "and version, its own and each summary's sha256 checksum (a truncated or edited "
            "file is refused), the protocol's sha256, the score bins of the declared resolution, "
            "one file per site and period, and the sites the protocol lists. Rows, events and "
            "patients are the counts each site released (patients are counted within a site). "
            "The sha256 of each file's bytes is in <code>manifest.json</code> (inputs); the "
            "merged summaries are in <code>merged/</code>.")
    if len(df) and bool(sup.attrs["suppressed"].any()):
        note += " " + suppression_note(k)
    return facts + table + f"<p class='tnote'>{note}</p>"


def _site_overall(p: dict) -> Any:
    """The overall rows of each site's own subgroup table, as cells ``site = <site>``."""
    import pandas as pd

    col = _site_column(p)
    parts = []
    for site, res in (p.get("per_site") or {}).items():
        t = _frame((res.get("subgroups") or {}).get("table"))
        if not len(t):
            continue
        t = t[t["group"] == "overall"].copy()
        t["group"], t["level"] = col, site
        parts.append(t)
    return pd.concat(parts, ignore_index=True) if parts else _frame([])


def _performance_tables(t: Any, k: int, plan: Any, heading: str) -> tuple[str, bool]:
    import numpy as np

    metrics = list(dict.fromkeys(t["metric"]))
    first = [m for m in metrics if m in _THRESHOLD_FIRST]
    rest = [m for m in metrics if m not in first]
    out, hidden = [], False
    for title, ms in ((f"{heading}: classification at the action threshold", first),
                      (f"{heading}: discrimination and calibration", rest)):
        if ms:
            html, mask = _pivot_performance(t, ms, k, plan)
            hidden |= bool(np.any(mask))
            out.append(f"<h4>{esc(title)}</h4>" + html)
    return "\n".join(out), hidden


@view(SECTION, "per_site")
def _per_site(p: dict, k: int) -> str:
    """Each site's overall performance (its own summary's analysis) and each pre-specified
    goal judged on the site's overall cell."""
    t = _site_overall(p)
    if not len(t):
        return "<p class='muted'>No per-site analysis.</p>"
    html, hidden = _performance_tables(t, k, p.get("_plan"), "Per site")
    lvl = f"{float(t['ci_level'].iloc[0]):.0%}"
    note = (f"Each site's own summary analysed as the pooled one is ({lvl} intervals, the "
            "same methods: Wilson for proportions, DeLong on the logit scale for the AUROC from "
            "the site's histograms). † below the minimum cell size or degenerate: shown, not "
            "judged.")
    if hidden:
        note += " " + suppression_note(k)
    return html + f"<p class='tnote'>{note}</p>" + _site_goals(p, k)


def _site_goals(p: dict, k: int) -> str:
    """Each pre-specified goal on each site's overall cell: with the verdict where the protocol
    judges that cell (the site a subgroup attribute and the goal's scope including
    subgroups: the pooled verdicts' cell ``site = S``, the same numbers), else its bound for
    information only."""
    from rwe.dossier._privacy import SIZE, THRESHOLD, site_cell, threshold_metrics

    col = _site_column(p)
    plan = p.get("_plan")
    thr = threshold_metrics()
    pr = p.get("_protocol")
    per_site = col in list(getattr(getattr(pr, "subgroups", None), "attributes", None) or [])
    goals: dict[str, dict] = {}
    for site, res in (p.get("per_site") or {}).items():
        for g in (res.get("subgroups") or {}).get("goals") or []:
            if g.get("group") != "overall":
                continue
            judged = per_site and g.get("scope") in ("subgroups", "all")
            row = goals.setdefault(g["goal_id"], {
                "goal": f"{_mlabel(g['metric'])}: {g.get('bound_side', 'lower')} bound vs "
                        f"{g['goal']:g} ({g.get('scope')})", "metric": g["metric"],
                "judged": "yes, among the pooled verdicts" if judged else
                          "no (for information)"})
            family = THRESHOLD if g["metric"] in thr else SIZE
            hide = plan is not None and plan.hides(*site_cell(col, site, "overall", "all"),
                                                   family)
            bound = SUPPRESSED if hide else g.get("bound")
            shown = ("<span class='sup'>suppressed</span>" if bound == SUPPRESSED else
                     f"<span class='ci'>{fmt_ci(bound, None, None)}</span>"
                     if isinstance(bound, (int, float)) else "")
            row[site] = RawHTML((status_badge(g.get("status") or "not_evaluated") + " "
                                 if judged else "") + shown)
    if not goals:
        return ""
    sites = list(p.get("per_site") or {})
    cols = ([Col("Goal (pre-specified, scope)", "goal")] + [Col(s, s, "html") for s in sites]
            + [Col("Judged per site", "judged")])
    how = ("The protocol judges its goals on the pooled data. A site's overall cell is one of "
           f"the judged cells where {col} is a subgroup attribute and the goal's scope includes "
           f"subgroups (the cells {col} = {', '.join(sites)} of the pooled verdicts: the same "
           "numbers); for any other goal the sites' bounds are shown for information, without "
           "a verdict.")
    return html_table(list(goals.values()), cols,
                      caption="Pre-specified goals on each site's overall cell (the confidence "
                              "bound judged, and the verdict where the protocol asks for one)",
                      note=esc(how))


@view(SECTION, "per_site_subgroups")
def _per_site_subgroups(p: dict, k: int) -> str:
    """Each site's own subgroup table (single attributes), one collapsed block per site."""
    from rwe.dossier._privacy import SitePlan, _site_rows

    col = _site_column(p)
    plan = p.get("_plan")
    out, hidden = [], False
    for site, res in (p.get("per_site") or {}).items():
        t = _frame((res.get("subgroups") or {}).get("table"))
        if not len(t):
            continue
        keep = _site_rows(col)
        t = t[[keep(r) for r in t.to_dict("records")]]
        html, h = _performance_tables(t, k, SitePlan(plan, col, site), site)
        hidden |= h
        n = t.loc[t["group"] == "overall", "n"]
        size = fmt_int(n.iloc[0]) if len(n) else DASH
        if plan is not None and plan.hides(col, site):
            size = SUPPRESSED
        out.append(f"<details><summary>{esc(site)}: performance by subgroup (n = "
                   f"{esc(size)})</summary>{html}</details>")
    if not out:
        return ""
    note = ("Each site's subgroups from its own summary. A site withheld the values of small "
            "cells before release (see the disclosure rule below): its subgroup counts are "
            "those it released. Intersections are on the pooled subgroup page.")
    if hidden:
        note += " " + suppression_note(k)
    return "\n".join(out) + f"<p class='tnote'>{note}</p>"


@view(SECTION, "meta")
def _meta(p: dict, k: int) -> str:
    """The meta-analysis of the site estimates next to the pooled estimate of the merged
    histograms, per metric."""
    m = _frame(p.get("meta"))
    if not len(m):
        return "<p class='muted'>No metric of the protocol is meta-analysed.</p>"
    m = m.astype(object)
    m["label"] = [_mlabel(x) for x in m["metric"]]
    m["qdf"] = [DASH if v is None or v != v else f"{float(v):.2f} ({int(d)})"
                for v, d in zip(m["q"], m["df"], strict=True)]
    m["pred"] = [DASH if lo is None or lo != lo else f"{fmt_num(lo)}{EN}{fmt_num(hi)}"
                 for lo, hi in zip(m["prediction_low"], m["prediction_high"], strict=True)]
    m["tau2_shown"] = [DASH if v is None or v != v else f"{float(v):.3g}" for v in m["tau2"]]
    lvl = f"{float(m['ci_level'].iloc[0]):.0%}"
    table = html_table(m, [
        Col("Metric", "label"), Col("Sites", "k", "int"),
        Col(f"Pooled, merged summaries ({lvl} CI)", "pooled_estimate", "ci",
            low="pooled_ci_low", high="pooled_ci_high"),
        Col(f"Random effects ({lvl} CI)", "re_estimate", "ci", low="re_ci_low",
            high="re_ci_high"),
        Col("Prediction interval", "pred"),
        Col("tau\u00b2", "tau2_shown"), Col("Q (df)", "qdf"),
        Col("p", "pvalue", "p", title="p value of Cochran's test of homogeneity"),
        Col("I\u00b2", "i2", "pct")],
        caption="Between-site heterogeneity: random-effects meta-analysis of the site "
                "estimates", css="meta")
    methods = "; ".join(f"{_mlabel(r['metric'])} {r['pooled_ci_method']}"
                        for r in m.to_dict("records") if isinstance(r["pooled_ci_method"], str))
    excluded = [f"{r['metric']}: {r['sites_excluded']}" for r in m.to_dict("records")
                if isinstance(r.get("sites_excluded"), str)]
    note = ("The pooled estimate is the analysis of the merged summaries (the pooled data at "
            "the declared resolution: the AUROC and its DeLong interval from the merged "
            "histograms, within the binning bound on the subgroup page). The random-effects "
            "estimate combines the site estimates (DerSimonian and Laird 1986): the AUROC on "
            "its own scale with its DeLong variance, proportions on the logit scale with "
            "variance 1/x + 1/(n - x) (0.5 added to both counts when one is 0), "
            "back-transformed; tau\u00b2 is the between-site variance, Q Cochran's homogeneity "
            "statistic (chi-square, k - 1 df), I\u00b2 = (Q - df) / Q the share of variation "
            "due to heterogeneity (Higgins and Thompson 2002), and the prediction interval "
            "(Higgins, Thompson and Spiegelhalter 2009, t with k - 2 df) the range of a new "
            "site's true value, at the same level. Intervals of the pooled estimates: "
            + methods + ".")
    if excluded:
        note += " Sites left out (no finite variance): " + "; ".join(excluded) + "."
    return table + f"<p class='tnote'>{esc(note)}</p>"


@view(SECTION, "site_estimates")
def _site_estimates(p: dict, k: int) -> str:
    """The site estimates as meta-analysed: estimate, Wald interval on the pooling scale and
    random-effects weight."""
    import numpy as np

    from rwe.dossier._privacy import site_estimate_hidden

    e = _frame(p.get("site_estimates"))
    if not len(e):
        return ""
    col = _site_column(p)
    plan = p.get("_plan")
    hide = np.array([site_estimate_hidden(plan, k, col, r) for r in e.to_dict("records")],
                    dtype=bool)
    rows: dict[str, dict] = {}
    metrics = list(dict.fromkeys(e["metric"]))
    for r, hidden in zip(e.to_dict("records"), hide, strict=True):
        size_hidden = site_estimate_hidden(plan, k, col, {**r, "metric": None})
        row = rows.setdefault(r["site"], {
            "site": r["site"], "n": SUPPRESSED if size_hidden else r["n"],
            "events": SUPPRESSED if size_hidden else r["events"]})
        row[r["metric"]] = RawHTML(
            "<span class='sup'>suppressed</span>" if hidden else
            fmt_ci(r["estimate"], r["ci_low"], r["ci_high"])
            + f"<br><span class='ci'>weight {fmt_pct(r['weight'])}</span>")
    lvl = f"{float(e['ci_level'].iloc[0]):.0%}" if e["ci_level"].notna().any() else ""
    table = html_table(list(rows.values()), [Col("Site", "site"), Col("n", "n", "int"),
                                             Col("Events", "events", "int")]
                       + [Col(f"{_mlabel(m)} ({lvl} CI)", m, "html") for m in metrics],
                       caption="Site estimates as meta-analysed, with each site's weight",
                       css="sites")
    note = ("Intervals are Wald intervals on the pooling scale (logit for proportions), "
            "back-transformed: the uncertainty the meta-analysis gives each site; the site's "
            "own analysis (Wilson, DeLong-logit) is in the per-site table above. Weight: the "
            "site's share of the random-effects weights.")
    if hide.any():
        note += " " + suppression_note(k)
    return table + f"<p class='tnote'>{note}</p>"


@view(SECTION, "disclosure")
def _disclosure(p: dict, k: int) -> str:
    """What each site's disclosure control withheld, and the rule as its file states it."""
    rows, rules = [], {}
    for x in p.get("sites") or []:
        for name, rec in (x.get("disclosure") or {}).items():
            recoded = {a: c for a, c in (rec.get("recoded_cells") or {}).items() if c}
            values = {f: c for f, c in (rec.get("withheld_values") or {}).items() if c}
            rows.append({
                "site": x["site"], "view": name, "min_count": rec.get("min_count"),
                "order": ", ".join(rec.get("recode_order") or []) or DASH,
                "recoded": "; ".join(f"{a} ({c} cells)" for a, c in recoded.items())
                or "nothing",
                "values": "; ".join(f"{f} ({c} cells)" for f, c in values.items()) or "none",
                "rows": rec.get("withheld_rows"), "extremes": rec.get("extremes")})
            rules.setdefault((rec.get("rule"), tuple(rec.get("references") or ())),
                             []).append(f"{x['site']} ({name})")
    if not rows:
        return "<p class='muted'>The site files state no disclosure record.</p>"
    table = html_table(rows, [Col("Site", "site"), Col("Summary", "view"),
                              Col("Minimum count", "min_count", "int"),
                              Col("Withheld first", "order"),
                              Col("Attribute values withheld (local recoding)", "recoded"),
                              Col("Feature values withheld", "values"),
                              Col("Rows withheld whole", "rows"),
                              Col("Feature extremes", "extremes")],
                       caption="Disclosure control applied at each site before release",
                       css="disclosure")
    parts = [table]
    for (rule, refs), where in rules.items():
        parts.append(f"<div class='callout noteval'><b>Rule stated by {esc(', '.join(where))}"
                     f":</b> {esc(rule)}"
                     + (f"<div class='notes'>Sources: {esc('; '.join(refs))}.</div>"
                        if refs else "") + "</div>")
    parts.append("<p class='tnote'>A cell's values withheld at a site count among the missing "
                 "values of that attribute in the pooled tables (the pooled levels hold what the "
                 "sites released: lower bounds, judged as the table of levels with withheld "
                 f"counts says). On these pages the dossier's own small-cell rule applies "
                 f"on top (report.small_cell_k = {k}): " + suppression_note(k) + "</p>")
    return "\n".join(parts)


@view(SECTION, "withheld")
def _withheld(p: dict, k: int) -> str:
    """The levels some site withheld counts of: released rows and events as lower bounds,
    the most rows not counted, the sites, and the checks left not evaluable on them
    (:mod:`rwe.federation._withheld`)."""
    s = p.get("settings") or {}
    items = s.get("withheld") or []
    drift = _withheld_drift(s.get("withheld_drift") or [], s.get("min_count"))
    if not items:
        return ("<p>No site withheld a count of any level analysed: every pooled count is "
                "the sum of the sites' counts.</p>" + drift)
    rows = []
    for x in items:
        checks = x.get("checks_not_evaluable") or []
        rows.append({"group": x["group"], "level": x["level"], "n": x["n_at_least"],
                     "events": x["events_at_least"], "lost": x["not_counted_at_most"],
                     "sites": x["sites"],
                     "checks": "; ".join(checks) if checks else "judged on the bounds"})
    df = _frame(rows)
    sup = reviewer_table(df, p.get("_plan"), k, key=lambda r: (r["group"], r["level"]),
                         counts=["n", "events"], complements=[("n", "events")])
    n = sup["n"].map(lambda v: v if isinstance(v, str) else f"at least {fmt_int(v)}")
    ev = sup["events"].map(lambda v: v if isinstance(v, str) else f"at least {fmt_int(v)}")
    sup = sup.assign(n=n, events=ev)
    table = html_table(sup, [Col("Attribute", "group"), Col("Level", "level"),
                             Col("Rows", "n"), Col("Events", "events"),
                             Col("Rows not counted, at most", "lost", "int"),
                             Col("Withheld at", "sites"),
                             Col("Not evaluable on this level", "checks")],
                       caption=f"Levels with counts withheld at sites (minimum count "
                               f"{s.get('min_count')})", css="withheld")
    note = ("A site withholds the value of an attribute in a cell under its minimum count "
            "(and a second, complementary one), so a level's pooled rows and events are lower "
            "bounds: the rows not counted are among those the site released with the attribute "
            "missing, or withheld whole. A check on such a level (representation, adequacy, "
            "coverage, missing values) is judged only when it reads the same at both ends of "
            "these bounds; otherwise, and for every performance goal of the level, it is not "
            "evaluable, never pass and never fail.")
    if bool(sup.attrs["suppressed"].any()):
        note += " " + suppression_note(k)
    return table + f"<p class='tnote'>{note}</p>" + drift


def _withheld_drift(items: list, min_count: Any) -> str:
    """The drift cells not evaluable because sites withheld values they read, per drift
    table and grouping (no count of a cell: how many cells, their windows, the sites)."""
    if not items:
        return ""
    rows = [{"table": x["table"], "group": x["group"],
             "cells": f"{x['cells_not_evaluable']:,} of {x['cells']:,}",
             "windows": (x["first_window"] if x["windows"] == 1 else
                         f"{x['first_window']} to {x['last_window']} ({x['windows']} windows)"),
             "sites": x["sites"]} for x in items]
    table = html_table(rows, [Col("Drift table", "table"), Col("By", "group"),
                              Col("Cells not evaluable", "cells"),
                              Col("Windows", "windows"), Col("Withheld at", "sites")],
                       caption=f"Drift cells that read values withheld at sites (minimum "
                               f"count {min_count})", css="withheld")
    note = ("A drift cell (a window and level, and a feature's distribution there) reads "
            "values a site withheld when the site did not count some rows of its window or "
            "level, or withheld values of its feature there; a drift quantity has no bound "
            "from counts, so every such cell is not evaluable (a control chart from its first "
            "such window on), its drift, alarm and case-mix flags are not stated, and the "
            "drift verdicts are judged on the other cells. The label-free diagnostics have no "
            "verdict: their cells are marked, not judged.")
    return table + f"<p class='tnote'>{esc(note)}</p>"


@view(SECTION, "limitations")
def _limitations(p: dict, k: int) -> str:
    """The protocol's analyses that site summaries cannot evaluate, and why."""
    items = p.get("limitations") or []
    if not items:
        return "<p>Every analysis of the protocol was evaluated from the site summaries.</p>"
    return html_table(items, [Col("Not evaluated", "analysis"),
                              Col("Protocol field", "source"), Col("Why", "reason")],
                      caption="What site summaries cannot evaluate", css="limitations",
                      note="Each of these needs individual rows, which stay at the sites. "
                           "Verdicts of pre-specified criteria that need them read \"not "
                           "evaluable\" (or \"not evaluated\"), never pass.")
