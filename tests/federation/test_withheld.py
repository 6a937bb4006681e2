"""Counts the sites withheld are never judged as data (rwe.federation._withheld).

At the protocol's minimum count (11) the demo's sites withhold values of small cells: the
pooled level race = American Indian or Alaska Native holds only the cells the sites released
(none with an event). Its representation, adequacy and missing-value checks are judged on the
bounds the released counts give, and are not evaluable where the bounds do not decide; its
performance goals are not evaluable; levels no site withheld counts of keep their values.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from fed_helpers import SITES, federated_protocol

from rwe._evidence import STATUS_FAIL, STATUS_NOT_EVALUABLE, STATUS_PASS
from rwe.federation import load_site_summary, merge_sites
from rwe.federation._withheld import WITHHELD_FLAG, Withheld, withheld_of
from rwe.protocol import load_protocol

AIAN = "American Indian or Alaska Native"


def _cell(v, group, level, variable=None):
    got = [c for c in v.cells if c.get("group") == group and str(c.get("level")) == level
           and (variable is None or c.get("variable") == variable)]
    assert len(got) == 1, (v.id, group, level, variable)
    return got[0]


def _verdict(res, label):
    return next(v for v in res.verdicts if f".{label}-" in v.id)


def test_the_sites_state_where_they_withheld_values(fed):
    p, files, _, _ = fed["guarded"]
    for f in files:
        rec = load_site_summary(f).disclosure["cohort"]
        assert AIAN in rec["withheld_levels"]["race"]
        assert "site" not in rec["withheld_levels"]  # never recoded
    p1, files1, _, _ = fed["exact"]
    for f in files1:
        rec = load_site_summary(f).disclosure["cohort"]
        assert rec["withheld_levels"] == {} and rec["withheld_within"] == {}


def test_aian_is_not_judged_on_withheld_counts(fed):
    p, files, res, out = fed["guarded"]
    rep = res.sections["representativeness"]
    sub = res.sections["subgroups"]
    reason_words = ("disclosure control", "minimum count 11")
    # the released counts are the artefact the issue describes: a lower bound
    row = rep.shares.set_index(["attribute", "category"]).loc[("race", AIAN)]
    assert row["n"] == 54 and row["flag"] == WITHHELD_FLAG
    assert "at least 54 rows" in row["note"] and all(w in row["note"] for w in reason_words)
    sites = [s for s in SITES if s in row["note"]]
    assert sites  # the sites that withheld are named
    # every representativeness check cell of the level, and no verdict passes or fails on it
    checks = {"ppr.race": ("race", AIAN, None), "adequacy": ("race", AIAN, None),
              "missingness": ("race", AIAN, "ethnicity")}
    for label, (g, lv, var) in checks.items():
        v = _verdict(rep, label)
        c = _cell(v, g, lv, var)
        assert c["status"] == STATUS_NOT_EVALUABLE, (label, c)
        assert all(w in c["reason"] for w in reason_words), c["reason"]
        assert "not evaluable where sites withheld counts" in v.reason
    assert f"race = {AIAN}" in _verdict(rep, "ppr.race").reason
    for inter in ("sex x race", "race x age_band"):
        for c in _verdict(rep, "coverage").cells:
            if c["group"] == inter and AIAN in c["level"] and c["n"] < 30:
                assert c["status"] == STATUS_NOT_EVALUABLE
    # the adequacy check failed only on withheld levels (AIAN, NHPI, <50): not evaluable now
    assert _verdict(rep, "adequacy").status == STATUS_NOT_EVALUABLE
    # the race PPR still fails: White is over-represented at both ends of its bounds
    ppr = _verdict(rep, "ppr.race")
    assert ppr.status == STATUS_FAIL and _cell(ppr, "race", "White")["status"] == STATUS_FAIL
    # sex: withheld at sites too, but within the band at both ends of its bounds: judged
    assert _verdict(rep, "ppr.sex").status == STATUS_PASS
    # every subgroup goal's cell on the level is not evaluable
    for v in sub.verdicts:
        for c in v.cells:
            if AIAN in str(c["level"]):
                assert c["status"] == STATUS_NOT_EVALUABLE
    t = sub.table[sub.table["level"] == AIAN]
    assert (t["status"] == WITHHELD_FLAG).all()
    assert t["reason"].str.contains("at least 54 rows and 0 events").all()
    # no finding states the level's representation, size or missing values
    assert not any(AIAN in f.text() for f in rep.findings)
    assert not any(AIAN in f.text() for f in sub.findings)
    # nor its chi-square test: race's counts are partial
    tests = rep.tests.set_index("attribute")
    assert "not evaluated" in tests.loc["race", "note"]
    assert not any(f.code == "representativeness.distribution_differs"
                   and f.subject["attribute"] == "race" for f in rep.findings)
    assert any(f.code == "federation.withheld" and AIAN in f.subject["levels"]
               for f in res.findings)
    listed = {(r["group"], r["level"]): r for r in res.settings["withheld"]}
    assert listed[("race", AIAN)]["n_at_least"] == 54
    assert listed[("race", AIAN)]["events_at_least"] == 0


def test_no_verdict_reads_a_withheld_count_as_data(fed):
    """Every cell of every pooled verdict on a level some site withheld counts of is either
    not evaluable or decided at both ends of its bounds (representativeness counts, shares and
    missing fractions); performance cells on such levels are never judged."""
    p, files, res, _ = fed["guarded"]
    w = withheld_of([(f, load_site_summary(f)) for f in files], {}, p.min_count)
    assert w.any
    for v in res.sections["subgroups"].verdicts:
        for c in v.cells:
            if w.sites(c["group"], c["level"]):
                assert c["status"] == STATUS_NOT_EVALUABLE, (v.id, c)
    rep = res.sections["representativeness"]
    for v in rep.verdicts:
        judged = [c for c in v.cells if c["status"] in (STATUS_PASS, STATUS_FAIL)]
        if v.status == STATUS_PASS:
            assert not any(c["status"] == STATUS_NOT_EVALUABLE and "disclosure" in str(
                c.get("reason")) for c in v.cells)
        if v.status == STATUS_FAIL:
            assert any(c["status"] == STATUS_FAIL for c in judged)
    # per-site results: each site's own withheld levels are not judged either
    for s in SITES:
        for v in res.per_site[s]["subgroups"].verdicts:
            for c in v.cells:
                if w.restrict(s).sites(c["group"], c["level"]):
                    assert c["status"] == STATUS_NOT_EVALUABLE


def test_levels_without_withheld_counts_keep_their_values(fed, rows):
    """The site levels (never recoded) and the overall cells: the pooled-data run's numbers
    and statuses; and without disclosure control (exact) nothing is touched at all."""
    _, _, res, _ = fed["guarded"]
    a = rows["subgroups"].table.set_index(["metric", "group", "level"])
    b = res.sections["subgroups"].table.set_index(["metric", "group", "level"])
    keep = b.index.get_level_values("group").isin(["site", "overall"])
    assert keep.sum() > 0
    np.testing.assert_array_equal(b.loc[keep, "n"], a.loc[b.index[keep], "n"])
    assert (b.loc[keep, "status"] != WITHHELD_FLAG).all()
    for v in res.sections["subgroups"].verdicts:
        for c in v.cells:
            if c["group"] in ("site", "overall"):
                assert c["status"] != STATUS_NOT_EVALUABLE or "disclosure" not in str(
                    c.get("reason"))
    _, _, ex, _ = fed["exact"]
    assert ex.settings["withheld"] == []
    assert not any(f.code == "federation.withheld" for f in ex.findings)
    assert not (ex.sections["representativeness"].shares["flag"] == WITHHELD_FLAG).any()


def test_the_pages_say_it(fed):
    _, _, res, out = fed["guarded"]
    fed_page = (out / "federation.html").read_text()
    assert "Levels with counts withheld at sites" in fed_page
    assert f"{AIAN}" in fed_page and "at least 54" in fed_page
    rep_page = (out / "representativeness.html").read_text()
    assert WITHHELD_FLAG in rep_page
    sub_page = (out / "subgroups.html").read_text()  # the cell's dagger note says it
    assert "at least 54 rows and 0 events" in sub_page
    idx = (out / "index.html").read_text()
    assert "not evaluable where sites withheld counts" in idx
    blob = json.loads((out / "results.json").read_text())
    shares = blob["sections"]["representativeness"]["shares"]
    aian = [s for s in shares if s["category"] == AIAN]
    assert aian and aian[0]["flag"] == WITHHELD_FLAG
    fed_rec = blob["sections"]["federation"]
    assert any(r["level"] == AIAN for r in fed_rec["settings"]["withheld"])


def test_bounds_decide_only_when_both_ends_agree():
    """Unit check of the bounds: a level whose rows a site did not count is bounded by the
    rows that site released with the attribute missing."""
    w = Withheld(11, levels={"race": {"A": ("S1",)}}, variables={"race": ("S1",)},
                 missing={"S1": {"race": (40, 3)}, "S2": {"race": (5, 0)}},
                 whole={"S1": 0, "S2": 0})
    assert w.sites("race", "A") == ("S1",) and w.sites("race", "B") == ()
    assert w.lost("race", "A") == 40 and w.lost("race", "A", events=True) == 3
    assert w.sites("sex x race", "F & A") == ("S1",)
    assert w.lost("sex x race", "F & A") == 40  # sex never withheld: its missing not counted
    assert w.restrict("S2").sites("race", "A") == ()
    # a site withholding rows whole makes every level partial, with k - 1 as its bound
    w2 = Withheld(11, whole={"S3": 10})
    assert w2.sites("sex", "F") == ("S3",) and w2.lost("sex", "F") == 10


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 3,000-scan demo merged at a minimum count of 40: the AIAN rows of every site are
    fewer than 40 and are withheld whole from the level (the level is absent from the
    merge). Only the cohort view is merged (at this minimum count the sites' calendar months
    are withheld too, and the drift baseline cannot be taken by window)."""
    from rwe.datasets import write_demo

    d = tmp_path_factory.mktemp("tiny")
    paths = write_demo(d, n_scans=3000, n_training=1000)
    proto = federated_protocol(d, data=paths["scans"], training=paths["training"],
                               score_bins=50, min_count=40)
    p = load_protocol(proto)
    from rwe.federation import summarize_site

    files = []
    for s in SITES:
        summ, _ = summarize_site(p, s)
        summ = replace(summ, views={"cohort": summ.views["cohort"]},
                       disclosure={"cohort": summ.disclosure["cohort"]},
                       skipped={"drift": "not merged in this test"})
        files.append(summ.save(d / f"{s}.summary"))
    return p, files


def test_a_level_withheld_entirely_is_not_evaluable_not_absent(tiny):
    p, files = tiny
    frame = p.load_data().frame
    had = frame.loc[frame["race"].astype(str) == AIAN, "site"].astype(str).value_counts()
    assert 0 < had.max() < 40 and len(had) >= 1
    for f in files:
        s = load_site_summary(f)
        cohort = s.views["cohort"]
        j = cohort.attributes.index("race")
        assert AIAN not in cohort.cells.categories[j]  # nothing released under the level
        stated = s.disclosure["cohort"]["withheld_levels"].get("race", [])
        assert (AIAN in stated) == (s.site in had.index), s.site
    res = merge_sites(p, files, per_site=False)
    rep = res.sections["representativeness"]
    row = rep.shares.set_index(["attribute", "category"]).loc[("race", AIAN)]
    assert row["n"] == 0  # released: none; but the level is not "absent from cohort"
    assert row["flag"] != "absent from cohort" and "minimum count 40" in row["note"]
    # its PPR lies between 0 and the bound of the rows the sites released with race missing
    lo, hi = (float(x) for x in row["note"].rsplit("PPR between ", 1)[1].rstrip(")").split(
        " and "))
    assert lo == 0 and hi > 0
    c = _cell(_verdict(rep, "ppr.race"), "race", AIAN)
    low, high = rep.parameters["ppr_band"]
    if hi >= low:  # the bound reaches the band: undetermined
        assert row["flag"] == WITHHELD_FLAG
        assert c["status"] == STATUS_NOT_EVALUABLE and "minimum count 40" in c["reason"]
        assert not any(f.subject.get("category") == AIAN for f in rep.findings)
    else:  # under-represented whatever the withheld rows are
        assert row["flag"] == "under-represented" and c["status"] == STATUS_FAIL
    # its performance is never judged
    for v in res.sections["subgroups"].verdicts:
        assert all(c["status"] == STATUS_NOT_EVALUABLE for c in v.cells
                   if AIAN in str(c["level"]))


# ------------------------------------------------------------------------------ drift
def _drift_withheld(fed, name="guarded"):
    p, files, res, out = fed[name]
    w = withheld_of([(f, load_site_summary(f)) for f in files], {}, p.min_count, view="drift")
    return p, w, res.sections["drift"], out


def test_drift_cells_site_months_and_features():
    """Unit check of which drift cells read withheld values."""
    from rwe.federation._withheld import _drift_sites

    w = Withheld(11, levels={"month": {"2024-02": ("S1",)}, "sex": {"F": ("S2",)}},
                 within={("month", "2024-03"): {"age": ("S1", "S2")},
                         ("sex", "M"): {"age": ("S2",)}},
                 variables={"month": ("S1",), "sex": ("S2",), "age": ("S1", "S2")},
                 whole={"S1": 0, "S2": 0})

    def sites(win, g, lv, f=None, baseline=()):
        return _drift_sites(w, "month", win, g, lv, f, "site", baseline)

    assert sites("2024-02", "overall", "all") == {"S1"}
    assert sites("2024-01", "overall", "all") == set()
    assert sites("2024-01", "sex", "F") == {"S2"}
    assert sites("2024-02", "site", "S2") == set()  # S1's month, not S2's rows
    assert sites("2024-02", "site", "S1") == {"S1"}
    # values of age withheld under 2024-03 (S1, S2) and under M (S2 only)
    assert sites("2024-03", "overall", "all", "age") == {"S1", "S2"}
    assert sites("2024-03", "sex", "M", "age") == {"S2"}
    assert sites("2024-03", "sex", "M", "pack_years") == set()
    assert sites("reference", "overall", "all") == set()
    assert sites("baseline", "overall", "all", baseline=("2024-01", "2024-02")) == {"S1"}
    assert Withheld(11, whole={"S3": 10}) and _drift_sites(
        Withheld(11, whole={"S3": 10}), "month", "2024-01", "sex", "F", None, "site", ()) == {
        "S3"}


def test_no_drift_verdict_is_judged_on_withheld_values(fed, rows):
    """At minimum count 11 every drift cell that reads a window, level or feature some site
    withheld values of is not evaluable (the sites and the rule named); every cell still
    judged has the pooled-data run's numbers, so no verdict passes or fails on an artefact."""
    p, w, r, _ = _drift_withheld(fed)
    assert w.any
    months = {m for d in w.levels.values() for m in d} & set(r.windows)
    assert len(months) >= 20  # nearly every month is withheld somewhere
    words = ("disclosure control", "minimum count 11")
    key = ["role", "feature", "test", "window", "group", "level"]
    a = rows["drift"].drift.set_index(key)
    d = r.drift
    ne = d[d["status"] == STATUS_NOT_EVALUABLE]
    assert len(ne) and all(all(x in why for x in words) for why in ne["reason"])
    assert not ne["drifted"].astype(bool).any()
    # a window some site withheld rows of is never judged, whatever the level
    at_withheld = d[d["window"].isin(months) & (d["group"] != "site")]
    assert (at_withheld["status"] == STATUS_NOT_EVALUABLE).all()
    # what is still judged is the pooled-data run's cell (input drift: the merge's
    # prediction drift is compared with the pooled-data run's by test_merge_demo only in
    # its verdicts)
    ok = d[(d["status"] == "ok") & (d["role"] == "input")].set_index(key)
    assert len(ok) > 0
    np.testing.assert_array_equal(ok["n"].to_numpy(), a.loc[ok.index, "n"].to_numpy())
    np.testing.assert_allclose(ok["effect"].to_numpy(float),
                               a.loc[ok.index, "effect"].to_numpy(float), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(ok["drifted"].to_numpy(bool),
                                  a.loc[ok.index, "drifted"].to_numpy(bool))
    pk = ["metric", "window", "group", "level"]
    pa = rows["drift"].performance.set_index(pk)
    pok = r.performance[r.performance["status"] == "ok"].set_index(pk)
    assert len(pok) > 0
    np.testing.assert_array_equal(pok["n"].to_numpy(), pa.loc[pok.index, "n"].to_numpy())
    pne = r.performance[r.performance["status"] == STATUS_NOT_EVALUABLE]
    assert len(pne) and pne["reason"].str.contains("minimum count 11").all()
    for name in ("prevalence", "case_mix", "integrity", "recalibration", "charts"):
        t = getattr(r, name)
        assert (t.loc[t["window"].isin(months) & (t["group"] != "site"), "status"]
                == STATUS_NOT_EVALUABLE).all(), name
    assert not r.case_mix.loc[r.case_mix["status"] == STATUS_NOT_EVALUABLE,
                              "flagged"].astype(bool).any()
    # input and prediction drift verdicts: fail only on a judged drifted cell, else not
    # evaluable with the reason
    for v in r.verdicts:
        if v.id.startswith(("drift.input", "drift.prediction")):
            assert v.status in (STATUS_FAIL, STATUS_NOT_EVALUABLE)
            assert v.counts["not_evaluable"] > 0 and all(x in v.reason for x in words)
            if v.status == STATUS_FAIL:
                assert v.counts["drifted"] > 0
    # control charts: a point from the first withheld window of its level on is not judged,
    # no alarm is stated on one, and a rule's level passes or fails only on judged points
    c = r.charts
    for al in r.alarms.itertuples(index=False):
        pt = c[(c["rule"] == al.rule) & (c["level"] == al.level) & (c["window"] == al.window)]
        assert (pt["status"] == "ok").all()
    for v in r.verdicts:
        if not v.id.startswith("drift.alert"):
            continue
        for cell in v.cells:
            pts = c[(c["rule"] == v.id) & (c["level"] == cell["level"])]
            if cell["status"] == STATUS_PASS:
                assert (pts["status"] == "ok").all()
            elif cell["status"] == STATUS_NOT_EVALUABLE:
                assert all(x in cell["reason"] for x in words)
                assert (pts["status"] == STATUS_NOT_EVALUABLE).any()
    # the demo's calibration alarm at S3 from 2025-03: S3 withheld rows of those months, so
    # it is not evaluable (not an alarm), while S4 (nothing withheld) keeps its verdict
    cusum = next(v for v in r.verdicts if v.id.startswith("drift.alert.cusum")
                 and v.cells[0]["group"] == "site")
    pooled = next(v for v in rows["drift"].verdicts if v.id == cusum.id)
    s3 = next(x for x in cusum.cells if x["level"] == "S3")
    assert s3["status"] == STATUS_NOT_EVALUABLE and "S3" in s3["reason"]
    s4 = next(x for x in cusum.cells if x["level"] == "S4")
    assert s4["status"] == next(x for x in pooled.cells if x["level"] == "S4")["status"]
    assert cusum.status == STATUS_NOT_EVALUABLE
    # findings are stated on judged cells only
    for f in r.findings:
        if f.code == "drift.alarm":
            assert ((r.alarms["rule"] == f.subject["rule"])
                    & (r.alarms["level"] == f.subject["level"])).any()
        if f.code == "drift.no_alarm":
            assert not (c.loc[c["rule"] == f.subject["rule"], "status"]
                        == STATUS_NOT_EVALUABLE).any()


def test_exact_merge_drift_verdicts_equal_the_pooled_data_run(fed, rows):
    _, w, r, _ = _drift_withheld(fed, "exact")
    assert not w.any
    a = {v.id: v for v in rows["drift"].verdicts}
    ids = [v.id for v in r.verdicts if "classifier" not in v.id]
    assert ids and set(ids) <= set(a)
    for v in r.verdicts:
        if v.id in a:
            assert v.status == a[v.id].status, v.id
            assert ({c["level"]: c["status"] for c in v.cells}
                    == {c["level"]: c["status"] for c in a[v.id].cells}), v.id
    assert not (r.drift["status"] == STATUS_NOT_EVALUABLE).any()
    assert len(r.alarms) == len(rows["drift"].alarms)


def test_the_drift_page_and_results_say_it(fed):
    _, _, _, out = fed["guarded"]
    blob = json.loads((out / "results.json").read_text())
    d = blob["sections"]["drift"]
    ne = [x for x in d["drift"] if x["status"] == STATUS_NOT_EVALUABLE]
    assert ne and all("minimum count 11" in x["reason"] for x in ne)
    assert any(v["status"] == STATUS_NOT_EVALUABLE and "minimum count 11" in (v["reason"] or "")
               for v in d["verdicts"])
    page = (out / "drift.html").read_text()
    assert "minimum count 11" in page and "disclosure control" in page
