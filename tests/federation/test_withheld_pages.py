"""What the sites' disclosure control withheld reads as such on the merge's pages
(rwe.federation._withheld, rwe.dossier views).

At the protocol's minimum count (11) the demo's sites withhold values of small cells: the
released count of a level some site withheld counts of is a lower bound, and the pages print
it as one; a goal cell not evaluable because of it says so, with the sites; the drift cells
left not evaluable are listed with the levels; the label-free diagnostics mark the cells
that read withheld values, without a verdict.
"""

from __future__ import annotations

import html as htmllib
import json
import re
from dataclasses import replace

import numpy as np
import pandas as pd
from fed_helpers import SITES

from rwe._evidence import STATUS_NOT_EVALUABLE
from rwe.dossier._format import verdict_detail
from rwe.federation import load_site_summary
from rwe.federation._withheld import _drift_sites, apply_withheld_drift, withheld_of

AIAN = "American Indian or Alaska Native"
NE = STATUS_NOT_EVALUABLE


def _rows(page: str, text: str) -> list[list[str]]:
    """The cells (text) of every table row of ``page`` that holds ``text``."""
    out = []
    for m in re.finditer(r"<tr>((?:(?!</tr>).)*)</tr>", page, re.S):
        cells = [htmllib.unescape(re.sub(r"<[^>]*>", "", c)).strip() for c in
                 re.findall(r"<t[hd][^>]*>((?:(?!</t[hd]>).)*)</t[hd]>", m.group(1), re.S)]
        if any(text in c for c in cells):
            out.append(cells)
    return out


def _cohort_withheld(fed, name="guarded"):
    p, files, res, out = fed[name]
    return withheld_of([(f, load_site_summary(f)) for f in files], {}, p.min_count), res, out


# ----------------------------------------------------------------- 1. representativeness
def test_the_representativeness_tables_say_which_counts_are_bounds(fed):
    """results.json keeps the released counts and adds the sites that withheld counts of
    each row's level; a row no site withheld counts of has none."""
    w, res, _ = _cohort_withheld(fed)
    rep = res.sections["representativeness"]
    sh = rep.shares
    for a, c, at in zip(sh["attribute"], sh["category"], sh["withheld_at"], strict=True):
        sites = w.sites(a, str(c))
        assert (at == ", ".join(sites)) if sites else (at is None or at != at), (a, c, at)
    row = sh.set_index(["attribute", "category"]).loc[("race", AIAN)]
    assert row["n"] == 54  # the released value, unchanged
    lo, hi = (float(x) for x in row["note"].rsplit("PPR between ", 1)[1].rstrip(")").split(
        " and "))
    assert (round(row["ppr_bound_low"], 2), round(row["ppr_bound_high"], 2)) == (lo, hi)
    for name, g, lv in (("coverage", "intersection", "cell"),
                        ("adequacy", "grouping", "subgroup")):
        t = getattr(rep, name)
        marked = t["withheld_at"].notna().to_numpy()
        want = np.array([bool(w.sites(a, str(x))) for a, x in zip(t[g], t[lv], strict=True)])
        np.testing.assert_array_equal(marked, want, err_msg=name)
    # missing values: the bounds of the genuine count, released count in between
    mi = rep.missingness
    b = mi[mi["fraction_low"].notna()]
    assert len(b) and (b["n_missing_low"] <= b["n_missing"]).all()
    assert (b["n_missing"] <= b["n_missing_high"]).all()
    assert (b["fraction_low"] <= b["fraction"] + 1e-12).all()
    assert (b["fraction"] <= b["fraction_high"] + 1e-12).all()
    eth = mi[(mi["grouping"] == "(all)") & (mi["variable"] == "ethnicity")].iloc[0]
    assert eth["n_missing_low"] == 0 and eth["n_missing_high"] == eth["n_missing"]
    assert eth["values_withheld_at"] == ", ".join(SITES)
    # the shift from the development population: a difference marked where, and only
    # where, its check's cell is not evaluable for withheld counts
    smd = rep.smd[rep.smd["comparison"] == "development population"]
    shift = next(v for v in rep.verdicts if "development_shift" in v.id)
    ne = {(c["group"], c.get("level") or "") for c in shift.cells
          if c["status"] == NE and c.get("withheld_at")}
    marked = {(g, lv if isinstance(lv, str) else "") for g, lv, at in
              zip(smd["covariate"], smd["level"], smd["withheld_at"], strict=True)
              if isinstance(at, str)}
    assert ne and marked == ne
    # without disclosure control the tables are the pooled-data run's, no column added
    _, _, ex, _ = fed["exact"]
    for name in ("shares", "coverage", "adequacy", "sites", "missingness", "smd"):
        assert "withheld_at" not in getattr(ex.sections["representativeness"], name).columns


def test_the_representativeness_page_prints_withheld_counts_as_lower_bounds(fed):
    w, res, out = _cohort_withheld(fed)
    page = (out / "representativeness.html").read_text()
    rep = res.sections["representativeness"]
    # shares: the level's n as a lower bound, the flag with the PPR at its bounds
    share = next(r for r in _rows(page, AIAN) if "not evaluable: withheld" in " ".join(r))
    assert "at least 54" in share and "54" not in share
    row = rep.shares.set_index(["attribute", "category"]).loc[("race", AIAN)]
    assert (f"not evaluable: withheld; PPR {row['ppr_bound_low']:.2f} to "
            f"{row['ppr_bound_high']:.2f} at the bounds") in share
    # adequacy: rows and positives at least, the shortfall at most
    ad = rep.adequacy.set_index(["grouping", "subgroup"]).loc[("race", AIAN)]
    short = next(r for r in _rows(page, AIAN) if r[:2] == ["race", AIAN] and len(r) == 6
                 and r[4] == f"{int(ad['required'])}")
    assert short[2:] == ["at least 54", f"at least {int(ad['n_positive'])}",
                         f"{int(ad['required'])}", f"at most {int(ad['shortfall'])}"]
    # missingness: the overall missing ethnicity is at most the released count (values
    # withheld count as missing); a partial level's missing count between its bounds
    mi = rep.missingness
    eth = mi[(mi["grouping"] == "(all)") & (mi["variable"] == "ethnicity")].iloc[0]
    got = next(r for r in _rows(page, "ethnicity") if r[0] == "ethnicity" and len(r) == 4)
    assert got[1] == f"{int(eth['n']):,}"  # the overall row count is exact
    assert got[2] == f"at most {int(eth['n_missing']):,}"
    assert got[3] == f"{100 * eth['fraction_low']:.1f}% to {100 * eth['fraction_high']:.1f}%"
    sub = mi[(mi["grouping"] == "race") & (mi["subgroup"] == AIAN)
             & (mi["variable"] == "ethnicity")].iloc[0]
    got = next(r for r in _rows(page, AIAN) if r[:2] == ["ethnicity", "race"])
    assert got[3:5] == ["at least 54", f"{int(sub['n_missing_low']):,} to "
                                       f"{int(sub['n_missing_high']):,}"]
    # coverage: a partial cell's count is a lower bound
    cov = rep.coverage
    c = cov[(cov["intersection"] == "sex x race") & (cov["cell"] == f"F & {AIAN}")].iloc[0]
    assert c["withheld_at"]
    assert any(r and r[0] == "F" and f"at least {int(c['n'])}" in r
               for r in _rows(page, "at least"))
    # the SMD of a level sites withheld counts of is not judged on the page either
    at = rep.smd.set_index(["comparison", "covariate", "level"]).loc[
        ("development population", "race", AIAN), "withheld_at"]
    smd_row = next(r for r in _rows(page, AIAN) if r[:2] == ["race", AIAN]
                   and r[-1].startswith("not evaluable"))
    assert smd_row[-1] == f"not evaluable: withheld at {at}"
    assert not any(r[:2] == ["race", AIAN] and r[-1] in ("balanced", "imbalanced")
                   for r in _rows(page, AIAN))
    # every table that prints a bound says what it means
    assert page.count("At least (at most): some sites withheld counts of the level") >= 4
    # a merge without disclosure control prints exact counts
    ex_page = (fed["exact"][3] / "representativeness.html").read_text()
    assert not any(c.startswith(("at least ", "at most ")) for r in _rows(ex_page, "at ")
                   for c in r)
    assert "At least (at most)" not in ex_page
    # the federation page's table says the same of the level
    fed_row = next(r for r in _rows((out / "federation.html").read_text(), AIAN)
                   if r[0] == "race" and len(r) == 7)
    assert fed_row[2] == "at least 54"


def test_the_missing_equipment_count_of_a_site_that_withheld_equipment_is_at_most(fed):
    """A site that did not count some rows under an equipment level released them with the
    equipment missing: its "(missing)" count in the site x equipment table is an upper
    bound of the rows with no equipment recorded, printed "at most", with a note; the
    other sites' counts stay exact, and so does every count of the merge without
    disclosure control."""
    w, res, out = _cohort_withheld(fed)
    p = fed["guarded"][0]
    eq = p.data.columns.equipment
    recoded = sorted({s for sites in w.levels.get(eq, {}).values() for s in sites})
    assert recoded and len(recoded) < len(SITES)
    si = res.sections["representativeness"].sites
    miss = si[si["equipment"] == "(missing)"]
    for level, site, at in zip(miss["level"], miss["site"], miss["values_withheld_at"],
                               strict=True):
        want = recoded if level == "equipment" else [s for s in recoded if s == site]
        assert (at.split(", ") if isinstance(at, str) else []) == want, (level, site, at)
    assert not _withheld_present(si[si["equipment"] != "(missing)"], "values_withheld_at")
    page = (out / "representativeness.html").read_text()
    start = page.index("<caption>Rows per site (rows) and equipment (columns)</caption>")
    table = page[page.rindex("<table", 0, start):page.index("</table>", start)]
    rows = {r[0]: r for r in _rows(re.sub(r"<tr [^>]*>", "<tr>", table), "")}
    j = rows[""].index("(missing)")
    sxe = miss[miss["level"] == "site x equipment"].set_index("site")["n"]
    for s in SITES:
        n = int(sxe.get(s, 0))
        want = f"at most {n:,}" if s in recoded and n else f"{n:,}"
        assert rows[s][j] == want, (s, rows[s])
    total = int(miss.loc[miss["level"] == "equipment", "n"].iloc[0])
    assert rows["all"][j] == f"at most {total:,}"
    assert (f"(missing), at most: sites released the {eq} values they withheld by "
            "disclosure control as missing") in htmllib.unescape(page)
    ex_page = (fed["exact"][3] / "representativeness.html").read_text()
    assert "(missing), at most" not in ex_page
    # "(missing)" is neither a type of equipment nor a gap of a site without it
    found = {f.code: f for f in res.sections["representativeness"].findings}
    n_eq = len(set(si.loc[si["level"] == "equipment", "equipment"]) - {"(missing)"})
    assert found["representativeness.sites"].values["equipment"] == n_eq
    assert "(missing)" not in found["representativeness.sites_empty"].text()


def test_a_combination_a_site_withheld_is_not_called_empty():
    from rwe._evidence import Finding
    from rwe.federation._withheld import Withheld, _empty_known

    f = Finding("representativeness.sites_empty", {}, {
        "combinations": 2, "listed": "S1 / GE, S2 / GE", "pairs": [["S1", "GE"], ["S2", "GE"]]},
        {}, "warning")
    w = Withheld(11, levels={"scanner_vendor": {"GE": ("S2",)}})
    kept = _empty_known(f, w, "scanner_vendor")
    assert kept.values["pairs"] == [["S1", "GE"]]
    assert kept.text() == "1 site x equipment combination(s) have no rows: S1 / GE"
    assert _empty_known(f, Withheld(11, levels={"scanner_vendor": {"GE": ("S1", "S2")}}),
                        "scanner_vendor") is None
    assert _empty_known(f, w, None) is f


def _withheld_present(df, column):
    return any(isinstance(x, str) and x for x in df[column])


# ---------------------------------------------------------------- 2. the goals' detail
def test_a_goal_cell_not_evaluable_for_withheld_counts_says_so(fed):
    w, res, out = _cohort_withheld(fed)
    sub = res.sections["subgroups"]
    goals = [v for v in sub.verdicts if v.kind == "goal" and sum(v.counts.values()) > 1]
    assert goals
    for v in goals:
        held = [c for c in v.cells if c["status"] == NE and w.sites(c["group"], c["level"])]
        assert held
        for c in held:  # the cell names the sites (also when its released counts were few)
            assert c["withheld_at"] == list(w.sites(c["group"], c["level"])), c
            assert c["reason"].startswith("counts withheld at "), c
        sites = sorted({s for c in held for s in c["withheld_at"]})
        detail = verdict_detail(v, 11)
        assert (f"{len(held)} not evaluable (counts withheld at {', '.join(sites)} by "
                "disclosure control)") in detail
        others = v.counts.get(NE, 0) - len(held)
        assert ("too few rows or events" in detail) == (others > 0), detail
        f = next(f for f in sub.findings if f.subject.get("verdict") == v.id)
        assert f"{len(held)} with counts withheld at {', '.join(sites)}" in f.text()
    # the AIAN cells, released with no event, are not evaluable for the withholding
    aian = [c for v in goals for c in v.cells if c["level"] == AIAN]
    assert aian and all("released counts: " in c["reason"] for c in aian)
    index = (out / "index.html").read_text()
    assert "not evaluable (counts withheld at" in index
    # without disclosure control: no cell withheld, the pooled-data detail
    _, _, ex, _ = fed["exact"]
    for v in ex.sections["subgroups"].verdicts:
        assert not any(c.get("withheld_at") for c in v.cells)
        assert "withheld" not in verdict_detail(v, 11)


def test_cells_small_on_released_counts_of_withheld_levels_are_not_called_small(fed, rows):
    """The "cells below the minimum size" finding counts only cells known to be small: a
    level some site withheld rows of may be larger than its released counts (those are in
    the federation.withheld finding). Without withholding, the pooled-data count."""
    def small(sec):
        f = [f for f in sec.findings if f.code == "subgroups.small_cells"]
        return f[0].values["cells"] if f else 0

    def flagged(t, exclude=()):
        return len({(g, lv) for g, lv, st in zip(t["group"], t["level"], t["status"],
                                                 strict=True)
                    if g != "overall" and st != "ok" and st not in exclude})
    _, res, out = _cohort_withheld(fed)
    t = res.sections["subgroups"].table
    held = t["status"] == "not evaluable: withheld"
    assert held.any()
    assert small(res.sections["subgroups"]) == flagged(t, ("not evaluable: withheld",))
    # on the released counts alone some of those cells would have been called small
    released = t[held]
    assert ((released["n"] < 30) | (released["events"] < 5)).any()
    page = (out / "subgroups.html").read_text()
    n = small(res.sections["subgroups"])
    assert (f"{n} subgroup cell(s) are below the minimum size" in page) == (n > 0)
    ex = fed["exact"][2].sections["subgroups"]
    assert small(ex) == flagged(ex.table) == small(rows["subgroups_declared"]) > 0


# ---------------------------------------------------------------- 3. drift, listed
def test_drift_cells_left_not_evaluable_are_listed_with_the_levels(fed):
    p, _, res, out = fed["guarded"]
    listed = res.settings["withheld_drift"]
    r = res.sections["drift"]
    assert listed and all(x["min_count"] == 11 for x in listed)
    # every drift cell not evaluable for withheld values is counted, once
    tables = {"drift": None, "performance": "performance by window",
              "prevalence": "prevalence and mean prediction", "recalibration": "recalibration",
              "case_mix": "case mix", "integrity": "data integrity",
              "charts": "control charts"}
    seen = set()
    for name, label in tables.items():
        t = getattr(r, name)
        held = t[(t["status"] == NE) & t["withheld_at"].notna()]
        assert len(held), name
        if name == "drift":
            for role, d in held.groupby("role"):
                rows = [x for x in listed if x["table"] == f"{role} drift"]
                assert sum(x["cells_not_evaluable"] for x in rows) == len(d)
                seen.update(x["table"] for x in rows)
            continue
        rows = [x for x in listed if x["table"] == label]
        assert sum(x["cells_not_evaluable"] for x in rows) == len(held), name
        assert sum(x["cells"] for x in rows) <= len(t)
        for x in rows:
            d = held[held["group"] == x["group"]]
            assert set(x["sites"].split(", ")) == {
                s.strip() for v in d["withheld_at"] for s in v.split(",")}
            assert x["windows"] == d["window"].nunique()
        seen.update(x["table"] for x in rows)
        if "reason" in t:  # every not-evaluable cell with the rule's reason is marked
            rule = t[(t["status"] == NE) & t["reason"].astype(str).str.contains(
                "disclosure control")]
            assert len(rule) == len(held), name
    assert seen == {x["table"] for x in listed}
    # S4 withheld nothing in its drift view: never named
    assert not any("S4" in x["sites"] for x in listed if x["group"] == "site"
                   and x["table"] in ("performance by window", "control charts"))
    f = next(f for f in res.findings if f.code == "federation.withheld")
    assert f.values["n_drift_cells"] == sum(x["cells_not_evaluable"] for x in listed)
    assert "input drift: " in f.subject["drift"] and "control charts: " in f.subject["drift"]
    assert AIAN in f.subject["levels"]
    page = (out / "federation.html").read_text()
    assert "Drift cells that read values withheld at sites (minimum count 11)" in page
    inp = next(x for x in listed if x["table"] == "input drift" and x["group"] == "overall")
    row = next(r for r in _rows(page, "input drift") if r[1] == "overall")
    assert row[2] == f"{inp['cells_not_evaluable']:,} of {inp['cells']:,}"
    _, _, ex, _ = fed["exact"]
    assert ex.settings["withheld_drift"] == []


# --------------------------------------------------------- 4. label-free diagnostics
def test_label_free_diagnostics_mark_the_cells_that_read_withheld_values(fed, rows):
    """The protocol's data are labelled (no diagnostics in the demo): the pooled-data run
    with label-free cells added, marked as a merge marks it."""
    from rwe.drift import drift_page_html
    from rwe.drift._result import DIAGNOSTIC_COLUMNS, DriftResult

    p, files, _, _ = fed["guarded"]
    w = withheld_of([(f, load_site_summary(f)) for f in files], {}, p.min_count, view="drift")
    r = rows["drift"]
    wa = r.settings["window"]
    feats = list(r.settings["features"])

    def reads(win, g, lv):
        return set().union(*(_drift_sites(w, wa, win, g, lv, f, "site", ())
                             for f in [None, *feats]))

    held = sorted(m for m, ss in w.levels[wa].items() if "S1" in ss
                  and m in r.windows)[-1]  # a month S1 withheld rows of
    clean = [(m, s) for m in r.windows for s in SITES if not reads(m, "site", s)]
    assert clean  # a site's month that reads nothing withheld
    win, site = clean[0]
    before = next(m for m, ss in w.levels[wa].items() if site in ss)
    cells = [(held, "overall", "all", None), (win, "site", site, None),
             (win, "site", site, before)]  # the last labelled window: rows withheld
    diag = pd.DataFrame([(wi, g, lv, last, 0.1, -0.1, 0.3, 1.0, 0.8, 1.2, True, 0.01, True,
                          "calibration of the last labelled window") for wi, g, lv, last
                         in cells], columns=DIAGNOSTIC_COLUMNS)
    got = apply_withheld_drift(replace(r, diagnostics=diag), w, site_attr="site").diagnostics
    ok = got.iloc[1]
    assert ok["status"] == "estimated" and ok["calibration_ok"] in (True,)
    assert ok["withheld_at"] is None and ok["reason"] is None
    for i in (0, 2):
        x = got.iloc[i]
        assert x["status"] == NE and "minimum count 11" in x["reason"], i
        assert x["calibration_ok"] is None and x["support_ok"] is None
        assert x["citl"] == 0.1  # the values stay; nothing is judged on them
    assert "S1" in got.iloc[0]["withheld_at"] and got.iloc[2]["withheld_at"] == site
    # no verdict is made of the table
    assert [v.id for v in apply_withheld_drift(replace(r, diagnostics=diag), w,
                                               site_attr="site").verdicts] == \
        [v.id for v in apply_withheld_drift(r, w, site_attr="site").verdicts]
    # the drift page shows the status and the note; the row-level page has neither
    marked = apply_withheld_drift(replace(r, diagnostics=diag), w, site_attr="site")
    page = drift_page_html(json.loads(json.dumps(marked.to_dict(), default=str)))
    diag_rows = [x for x in _rows(page, held) + _rows(page, win) if len(x) == 11]
    assert any(x[0] == held and x[-2] == NE and "minimum count 11" in x[-1]
               for x in diag_rows)
    assert any(x[:3] == [win, "site", site] and x[-2] == "estimated" for x in diag_rows)
    plain = drift_page_html(json.loads(json.dumps(replace(r, diagnostics=diag).to_dict(),
                                                  default=str)))
    assert not any(len(x) == 11 for x in _rows(plain, win) if x[:3] == [win, "site", site])
    again = DriftResult.from_dict(json.loads(json.dumps(marked.to_dict(), default=str)))
    assert list(again.diagnostics["status"]) == list(marked.diagnostics["status"])
