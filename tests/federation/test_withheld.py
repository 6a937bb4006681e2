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
