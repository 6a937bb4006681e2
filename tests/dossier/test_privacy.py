"""Privacy that holds: the small-cell rule with complementary suppression (rwe.dossier._privacy)
and a scan of every reviewer output of two dossiers (the small demo and a small adversarial
data set) for numbers of hidden cells."""

from __future__ import annotations

import json
import math
import re
from html import escape, unescape

import pandas as pd
import pytest
from dossier_helpers import small_protocol
from privacy_checks import check_rule, derived_cells

from rwe.dossier import build_dossier
from rwe.dossier._privacy import (
    SIZE,
    THRESHOLD,
    DisclosurePlan,
    disclosure_plan,
    near_unique_attributes,
)
from rwe.exceptions import DataValidationError

K = 11


def _cells(d: dict) -> dict:
    return {tuple(key.split("|")): {"n": n} for key, n in d.items()}


def test_a_small_level_and_the_one_that_would_give_it_away():
    """race: A has 5 rows (primary); with the overall total shown, A = 435 - B - C, so the
    smallest other level (B) is hidden too; C stays."""
    plan = disclosure_plan(_cells({"overall|all": 435, "race|A": 5, "race|B": 30,
                                   "race|C": 400}), K)
    assert plan.hides("race", "A") and plan.is_primary("race", "A")
    assert plan.hides("race", "B") and not plan.is_primary("race", "B")
    assert not plan.hides("race", "C") and not plan.hides("overall", "all")


def test_two_small_levels_whose_sum_is_small_take_a_third():
    """A (3) and B (4) are both hidden, but 7 = total - C - D would still show a count below
    k: the next smallest level goes too."""
    plan = disclosure_plan(_cells({"overall|all": 1007, "race|A": 3, "race|B": 4,
                                   "race|C": 500, "race|D": 500}), K)
    assert {lv for g, lv in plan.hidden_levels()} == {"A", "B", "C"}


def test_intersections_are_protected_along_both_margins():
    """F & X = 6 hides F & Y (its row under F) and M & X (its column under X); then M & Y,
    alone in its row and column, must go too, or each could be worked out again."""
    cells = _cells({"overall|all": 400, "sex|F": 200, "sex|M": 200, "race|X": 100,
                    "race|Y": 300, "sex x race|F & X": 6, "sex x race|F & Y": 194,
                    "sex x race|M & X": 94, "sex x race|M & Y": 106})
    plan = disclosure_plan(cells, K)
    hidden = {lv for g, lv in plan.hidden_levels() if g == "sex x race"}
    assert hidden == {"F & X", "F & Y", "M & X", "M & Y"}
    assert not any(plan.hides(g, lv) for g, lv in [("sex", "F"), ("race", "X")])


def test_confusion_counts_hide_threshold_metrics_only():
    plan = disclosure_plan({("overall", "all"): {"n": 1000, "events": 100, "tp": 80, "fn": 20},
                            ("sex", "F"): {"n": 500, "events": 50, "tp": 45, "fn": 5},
                            ("sex", "M"): {"n": 500, "events": 50, "tp": 35, "fn": 15}}, K)
    assert plan.hides("sex", "F", THRESHOLD) and not plan.hides("sex", "F", SIZE)
    # the other level's FN = 20 - 5 would give it away: hidden too
    assert plan.hides("sex", "M", THRESHOLD) and not plan.hides("sex", "M")
    again = DisclosurePlan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again.hidden_levels(THRESHOLD) == plan.hidden_levels(THRESHOLD)


def test_near_unique_attributes_are_named():
    frame = pd.DataFrame({"mrn": [f"M{i}" for i in range(300)], "sex": ["F", "M"] * 150})
    got = near_unique_attributes(frame, ["mrn", "sex"], k=K)
    assert list(got) == ["mrn"] and "300 distinct values in 300 rows" in got["mrn"]


# ------------------------------------------------------------------ the rule holds in a dossier
def _plan_of(dossier) -> DisclosurePlan:
    from rwe.dossier._analyses import load_result
    from rwe.dossier._privacy import plan_from_results
    from rwe.protocol import load_protocol

    p = load_protocol(dossier.manifest["protocol"]["path"])
    res = {n: load_result(n, dossier.results["sections"][n])
           for n in ("subgroups", "representativeness", "provenance")}
    return plan_from_results(p, res)


def test_the_dossiers_plan_keeps_every_small_count_underivable(dossier):
    rec = dossier.results["sections"]["subgroups"]
    k = dossier.results["protocol"]["small_cell_k"]
    plan = _plan_of(dossier)
    assert plan.hidden_levels() and plan.hidden_levels(THRESHOLD)
    assert check_rule(derived_cells(rec), plan, k) == []


def _rows(html: str, level: str) -> list[list[str]]:
    """The cells of every table row whose first cell is ``level``."""
    out = []
    for m in re.finditer(r"<tr><td class=[\"']txt[\"']>" + re.escape(escape(level, quote=False))
                         + r"</td>(.*?)</tr>", html):
        out.append([unescape(re.sub(r"<[^>]+>", "", c)) for c in
                    re.findall(r"<td class=[\"']num[\"']>(.*?)</td>", m.group(1))])
    return out


NUMBER = re.compile(r"\d+\.\d{3}")


def _scan(dossier, plan: DisclosurePlan) -> list[str]:
    """Every reviewer output of a dossier, searched for numbers of hidden cells."""
    d = dossier.path
    problems = []
    sub = (d / "subgroups.html").read_text()
    groups = {r["group"] for r in dossier.results["sections"]["subgroups"]["table"]}
    for g, lv in sorted(plan.hidden_levels()):
        if g == "overall" or g not in groups:
            continue
        level = lv if g not in ("overall",) else "all"
        for cells in _rows(sub, level):
            if any(NUMBER.search(c) for c in cells):
                problems.append(f"subgroups.html: hidden {g} = {lv} shows {cells}")
    start = sub.find("Classification at threshold")
    classification = sub[start:sub.find("Discrimination and calibration", start)]
    for g, lv in sorted(plan.hidden_levels(THRESHOLD)):
        if g in groups and g != "overall":
            for cells in _rows(classification, lv):
                if any(NUMBER.search(c) for c in cells):
                    problems.append(f"subgroups.html: threshold metrics of {g} = {lv}: {cells}")
    # findings and verdicts (index page, results.json reviewer parts, model card, XML)
    names = {lv for g, lv in plan.hidden_levels() | plan.hidden_levels(THRESHOLD)
             if not g.startswith("comparison rows")}
    texts = [f["text"] for f in dossier.results["findings"]]
    texts += [unescape(re.sub(r"<[^>]+>", " ", li)) for li in re.findall(
        r"<li>(.*?)</li>", (d / "index.html").read_text() + (d / "model_card.html").read_text())]
    texts += re.findall(r"- (.*)", (d / "model-card.xml").read_text())
    for t in texts:
        for name in names:
            if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", t) and NUMBER.search(t):
                problems.append(f"text names hidden {name!r} with a number: {t[:160]}")
    for v in dossier.results["verdicts"]:
        for c in v["cells"]:
            key = (c.get("group"), c.get("level"))
            if key in plan.hidden_levels() and set(c) - {"group", "level", "status",
                                                          "suppressed"}:
                problems.append(f"results.json verdict {v['id']} keeps numbers of {key}")
    if dossier.pdf is not None:
        from pypdf import PdfReader

        text = "\n".join(p.extract_text() for p in PdfReader(str(dossier.pdf)).pages)
        whole = {lv for g, lv in plan.hidden_levels() if g in groups}
        for line in text.splitlines():
            for name in whole:
                if re.match(rf"{re.escape(name)} [\d,]+ ", line.strip()) and re.search(
                        r"\b\d+\.\d{3}\b \(", line):
                    problems.append(f"dossier.pdf: {line[:160]}")
    return problems


def test_no_number_of_a_hidden_cell_in_the_demo_dossier(dossier):
    assert _scan(dossier, _plan_of(dossier)) == []


def _adversarial(directory, *, id_attribute: bool):
    """A small demo (600 scans) with an extra race category of 12 scans, 7 of them malignant
    and 5 caught (sensitivity 0.714 over 7 events: 2 missed cases), and, optionally, an id-like
    column used as a subgroup attribute."""
    extra = ""
    proto = small_protocol(directory, n_scans=600, sections=["representativeness", "subgroups",
                                                             "provenance", "model_card"])
    data = directory / "data" / "demo.parquet"
    frame = pd.read_parquet(data)
    idx = frame.index[:12]
    frame.loc[idx, "race"] = "Adversarial Category"
    score = "score_v1_0"
    frame.loc[idx, "malignant"] = [1] * 7 + [0] * 5
    frame.loc[idx, score] = [0.9] * 5 + [0.01] * 2 + [0.01] * 5
    if id_attribute:
        frame["mrn"] = frame["patient_id"].astype(str)
        text = proto.read_text().replace("attributes: [sex, race, ethnicity, smoking_status]",
                                         "attributes: [sex, race, ethnicity, smoking_status, mrn]")
        text = text.replace("  attributes: [sex, race, ethnicity, age_band, site, scanner_vendor]",
                            "  attributes: [sex, race, ethnicity, age_band, site, scanner_vendor,"
                            " mrn]")
        proto.write_text(text + extra)
    frame.to_parquet(data)
    return proto


def test_an_id_like_attribute_is_refused_as_a_subgroup(tmp_path):
    proto = _adversarial(tmp_path / "a", id_attribute=True)
    with pytest.raises(DataValidationError) as info:
        build_dossier(proto, tmp_path / "out", pdf=False, progress=False)
    msg = str(info.value)
    assert "subgroups.attributes[6]: attribute 'mrn' is too close to an identifier" in msg
    assert "\n" not in msg and not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def adversarial(tmp_path_factory):
    d = tmp_path_factory.mktemp("adversarial")
    return build_dossier(_adversarial(d, id_attribute=False), d / "out", progress=False)


def test_no_number_of_a_hidden_cell_in_an_adversarial_dossier(adversarial):
    plan = _plan_of(adversarial)
    rec = adversarial.results["sections"]["subgroups"]
    adv = derived_cells(rec)[("race", "Adversarial Category")]
    assert adv == {"n": 12, "events": 7, "nonevents": 5, "tp": 5, "fn": 2, "tn": 5, "fp": 0}
    assert plan.hides("race", "Adversarial Category")
    assert check_rule(derived_cells(rec), plan, 11) == []
    assert _scan(adversarial, plan) == []
    html = (adversarial.path / "subgroups.html").read_text()
    assert "0.714" not in html  # the category's sensitivity (5 of 7)
    for cells in _rows(html, "Adversarial Category"):
        assert all(c in ("<11", "suppressed") or not re.search(r"\d", c) for c in cells)


def test_figures_of_hidden_cells_show_no_count(adversarial):
    """The coverage heat map masks hidden cells (their text reads <11 or supp.) and its colour
    scale starts at a shown count; the forest plot has no row of a hidden cell."""
    import matplotlib

    matplotlib.use("Agg")
    from rwe.dossier._analyses import load_result
    from rwe.dossier._privacy import mask_coverage, reviewer_subgroups

    plan = _plan_of(adversarial)
    rep = load_result("representativeness", adversarial.results["sections"]["representativeness"])
    inter = rep.intersections[0]
    fig = mask_coverage(rep.plot_coverage(inter), rep, inter, plan, 11)
    ax = fig.axes[0]
    shown = [t.get_text() for t in ax.texts]
    for t in shown:
        assert t in ("<11", "supp.") or int(t) == 0 or int(t) >= 11, shown
    low = ax.images[0].get_clim()[0]
    assert low == 0 or 10 ** low - 1 >= 11 - 1e-9
    sub = load_result("subgroups", adversarial.results["sections"]["subgroups"])
    forest = reviewer_subgroups(sub, plan, 11)
    assert not (forest.table["level"] == "Adversarial Category").any()
    assert math.isfinite(float(forest.table["n"].min())) and forest.table["n"].min() >= 11


def test_reviewer_drift_drops_the_hidden_levels_of_every_table(dossier):
    """The reviewer copy of a drift result (tables filtered as frames) equals the saved record
    filtered row by row (:func:`reviewer_levels`), and keeps no level the plan hides."""
    from rwe.dossier._analyses import load_result
    from rwe.dossier._privacy import DRIFT_TABLES, THRESHOLD, reviewer_drift, reviewer_levels

    plan = _plan_of(dossier)
    hidden = plan.hidden_levels() | plan.hidden_levels(THRESHOLD)
    drift = load_result("drift", dossier.results["sections"]["drift"])
    got = reviewer_drift(drift, plan)
    want = type(drift).from_dict(reviewer_levels(drift.to_dict(), plan, DRIFT_TABLES))
    assert got.to_dict() == want.to_dict()
    shown = {(str(g), str(lv)) for name in DRIFT_TABLES
             for g, lv in getattr(got, name)[["group", "level"]].itertuples(index=False)}
    kept = {(str(g), str(lv)) for g, lv in drift.drift[["group", "level"]].itertuples(index=False)}
    assert hidden and not shown & hidden and kept & hidden  # something was there to drop
