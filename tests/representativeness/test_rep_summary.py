"""Representativeness from mergeable summaries: a merge of per-site summaries gives the pooled
run's numbers; the result keeps no row and no id; typed verdicts with stable ids; typed
findings with their sentences and structural small-cell suppression."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from rwe._evidence import (
    STATUS_FAIL,
    STATUS_NOT_EVALUABLE,
    STATUS_NOT_EVALUATED,
    STATUS_PASS,
    verdict_id,
)
from rwe._results import canonical_json
from rwe.data import ColumnRoles, EvaluationSet
from rwe.exceptions import InvalidParameterError
from rwe.representativeness import (
    ReferencePopulation,
    RepresentativenessResult,
    assess_representativeness,
    compare_cohorts,
    representativeness_from_protocol,
)
from rwe.stats.summaries import Summary, merge_summaries, summarize

ATTRS = ["sex", "race", "ethnicity", "age_band"]
COVS = ["age", "pack_years", "nodule_size_mm"]
CELLS = ATTRS + ["site", "scanner_vendor"]
EXACT = ("shares", "tests", "coverage", "adequacy", "sites", "missingness")


@pytest.fixture(scope="module")
def demo():
    from rwe.datasets import make_demo

    return make_demo(n_scans=20_000)


@pytest.fixture(scope="module")
def evset(demo):
    roles = ColumnRoles(id="scan_id", patient_id="patient_id",
                        scores={"v1.0": "score_v1_0", "v1.1": "score_v1_1"}, label="malignant",
                        timestamp="scan_date", site="site", equipment="scanner_vendor",
                        attributes=("sex", "race", "ethnicity", "smoking_status"),
                        features=tuple(COVS))
    return EvaluationSet.from_frame(demo.scans, roles,
                                    derived={"age_band": {"from": "age", "cuts": [50, 65, 80]}})


def _run(data, demo, **kw):
    return assess_representativeness(
        data, reference="us_census_2020_clinical", attributes=ATTRS, covariates=COVS,
        development=demo.training, intersections=[["sex", "race"], ["race", "age_band"]],
        target_half_width=0.05, assumed_value=0.85, reference_min_age=40, **kw)


@pytest.fixture(scope="module")
def pooled(evset, demo):
    return _run(evset, demo)


@pytest.fixture(scope="module")
def merged(evset, demo):
    sites = evset.frame["site"].to_numpy()
    parts = [summarize(evset.subset(sites == s), attributes=CELLS, features=COVS,
                       versions=[]) for s in sorted(set(sites))]
    # shipped as JSON, as a site would send its summary
    parts = [Summary.from_dict(json.loads(json.dumps(p.to_dict()))) for p in parts]
    return _run(merge_summaries(parts), demo, site="site", equipment="scanner_vendor",
                label="malignant")


def _same(a: pd.DataFrame, b: pd.DataFrame, rtol: float = 0.0) -> None:
    pd.testing.assert_frame_equal(a, b, check_exact=rtol == 0.0, rtol=rtol or 1e-5, atol=0)


def test_merged_site_summaries_give_the_pooled_numbers(pooled, merged):
    assert merged.n == pooled.n == 20_000
    for name in EXACT:  # counts of cells: exactly the pooled numbers
        _same(getattr(merged, name), getattr(pooled, name))
    a, b = merged.smd, pooled.smd
    num = ["n_a", "n_b", "mean_a", "mean_b", "sd_a", "sd_b", "missing_a", "missing_b", "smd",
           "abs_smd"]
    pd.testing.assert_frame_equal(a.drop(columns=num), b.drop(columns=num))
    assert_allclose(a[num].to_numpy(float), b[num].to_numpy(float), rtol=1e-12, atol=0)
    assert (b["comparison"] == "development population").sum() > 10
    assert merged.notes == pooled.notes
    assert [(v.id, v.status, v.criterion, v.reason) for v in merged.verdicts] == \
        [(v.id, v.status, v.criterion, v.reason) for v in pooled.verdicts]
    tipton = "representativeness.development_generalizability"
    assert [f for f in merged.finding_texts() if "eneralizability" not in f] == \
        [f for f in pooled.finding_texts() if "eneralizability" not in f]
    assert pooled.tipton is not None and any(f.code == tipton for f in pooled.findings)
    assert merged.tipton is None
    assert "needs individual rows of both populations" in merged.tipton_reason
    assert "cohort was given as a summary" in merged.tipton_reason


def test_smd_from_moments_equals_the_row_definition(pooled, demo):
    """Austin's SMD from the summaries' moments against the rows, computed by hand."""
    t = pooled.smd[pooled.smd["comparison"] == "development population"].set_index(
        ["covariate", "level"])
    for c in COVS:
        a = demo.scans[c].dropna().to_numpy(float)
        b = demo.training[c].dropna().to_numpy(float)
        want = (a.mean() - b.mean()) / np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
        assert_allclose(t.loc[(c, ""), "smd"], want, rtol=1e-12)
        assert t.loc[(c, ""), "kind"] == "continuous"
    pa = (demo.scans["race"] == "Asian").mean()
    pb = (demo.training["race"] == "Asian").mean()
    assert_allclose(t.loc[("race", "Asian"), "smd"],
                    (pa - pb) / np.sqrt((pa * (1 - pa) + pb * (1 - pb)) / 2), rtol=1e-12)


def test_seven_way_row_split_merges_to_the_pooled_run():
    rng = np.random.default_rng(4)
    n = 3000
    df = pd.DataFrame({
        "sex": rng.choice(["F", "M"], n), "race": rng.choice(list("ABC"), n, p=[.7, .2, .1]),
        "site": rng.choice(["s1", "s2"], n), "vendor": rng.choice(["GE", "Canon"], n),
        "age": rng.normal(60, 10, n), "smoker": rng.integers(0, 2, n),
        "y": rng.random(n) < 0.3})
    df.loc[rng.random(n) < 0.1, "race"] = None
    df.loc[rng.random(n) < 0.2, "age"] = np.nan
    ref = {"sex": {"F": 0.5, "M": 0.5}, "race": {"A": 0.6, "B": 0.3, "C": 0.1}}
    comp = df.sample(800, random_state=1).assign(age=lambda d: d["age"] + 2)
    kw = dict(reference=ref, attributes=["sex", "race"], covariates=["age", "smoker"],
              comparison=comp, target_half_width=0.1, label="y", site="site",
              equipment="vendor")
    whole = assess_representativeness(df, **kw)
    roles = ColumnRoles(label="y", site="site", equipment="vendor",
                        attributes=("sex", "race"), features=("age", "smoker"))
    part = rng.integers(0, 7, n)
    sums = [summarize(EvaluationSet.from_frame(df[part == k].reset_index(drop=True), roles),
                      features=["age", "smoker"]) for k in range(7)]
    split = assess_representativeness(merge_summaries(sums), **kw)
    for name in EXACT:
        _same(getattr(split, name), getattr(whole, name))
    _same(split.smd, whole.smd, rtol=1e-12)
    assert split.smd.set_index("covariate").loc["smoker", "kind"] == "binary"
    assert [v.status for v in split.verdicts] == [v.status for v in whole.verdicts]


def test_compare_cohorts_on_summaries_equals_rows():
    rng = np.random.default_rng(2)
    a = pd.DataFrame({"x": rng.normal(size=400), "g": rng.choice(list("pq"), 400)})
    b = pd.DataFrame({"x": rng.normal(0.3, 1, 500), "g": rng.choice(list("pqr"), 500)})
    rows = compare_cohorts(a, b, ["x", "g"])
    sa = merge_summaries([summarize(EvaluationSet.from_frame(
        d, ColumnRoles(attributes=("g",), features=("x",), label="y")), versions=[])
        for d in (a[:150].assign(y=0), a[150:].assign(y=1))])
    sums = compare_cohorts(sa, b, ["x", "g"])
    _same(sums, rows, rtol=1e-12)
    assert list(rows["level"]) == ["", "p", "q", "r"]


def test_pickled_result_holds_no_row_and_no_id(pooled, demo):
    blob = pickle.dumps(pooled)
    assert len(blob) < 150_000  # the cohort alone is ~20,000 rows x 15 columns
    for ident in list(demo.scans["scan_id"].iloc[[0, 1, 4_321, 19_999]]) + list(
            demo.scans["patient_id"].iloc[[0, 7_777]]):
        assert ident.encode() not in blob
    again = pickle.loads(blob)
    assert again.reference.rows is None
    assert canonical_json(again.to_dict()) == canonical_json(pooled.to_dict())
    # a reference built from rows keeps only its metadata and shares in the result
    rows = demo.training.assign(train_id=[f"TR{i:06d}" for i in range(len(demo.training))])
    ref = ReferencePopulation.from_frame(rows, ["sex", "race"], name="training")
    r = assess_representativeness(demo.scans, reference=ref, attributes=["sex", "race"],
                                  covariates=["age"])
    assert r.tipton is not None and r.reference.rows is None
    blob = pickle.dumps(r)
    assert b"TR000042" not in blob and b"CT000042" not in blob
    assert r.reference.shares == ref.shares


def test_to_dict_from_dict_round_trip(pooled):
    d = pooled.to_dict()
    json.dumps(d, allow_nan=False)
    back = RepresentativenessResult.from_dict(json.loads(json.dumps(d)))
    assert canonical_json(back.to_dict()) == canonical_json(d)
    for name in EXACT + ("smd",):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(pooled, name),
                                      check_dtype=False)
    assert back.finding_texts() == pooled.finding_texts()
    assert back.verdicts == pooled.verdicts
    assert back.parameters == pooled.parameters
    assert back.tipton == pooled.tipton
    assert list(back.to_frame().columns) == list(pooled.to_frame().columns)
    assert "<table" in back._repr_html_() and "Checks" in back._repr_html_()


# --------------------------------------------------------------------------- verdicts
REF = {"sex": {"F": 0.5, "M": 0.5}, "race": {"A": 0.6, "B": 0.3, "C": 0.1}}


def _frame(n=600, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "scan_id": np.arange(n), "sex": rng.choice(["F", "M"], n, p=[0.65, 0.35]),
        "race": rng.choice(["A", "B", "C"], n, p=[0.85, 0.13, 0.02]),
        "age": rng.normal(60, 9, n).round(1), "y": (rng.random(n) < 0.3).astype(int),
        "score": rng.random(n), "site": rng.choice(["s1", "s2"], n)})


def _protocol(tmp_path, population, subgroups):
    from rwe.protocol import Protocol

    data = tmp_path / "scans.csv"
    _frame().to_csv(data, index=False)
    comp = tmp_path / "training.csv"
    _frame(400, 7).to_csv(comp, index=False)
    ref = tmp_path / "ref.csv"
    ref.write_text("# name: toyref\n# source: test\nattribute,category,share\n"
                   "sex,F,0.5\nsex,M,0.5\nrace,A,0.6\nrace,B,0.3\nrace,C,0.1\n")
    spec = {
        "name": "t", "device": {"name": "d", "version": "1", "intended_use": "x",
                                "intended_use_population": "adults"},
        "data": {"path": str(data), "columns": {"id": "scan_id", "scores": {"1.0": "score"},
                                                "label": "y", "site": "site",
                                                "attributes": ["sex", "race"],
                                                "features": ["age"]}},
        "population": {"reference": str(ref), "comparison": str(comp), **population},
        "subgroups": {"min_n": 40, **subgroups},
        "performance": {"metrics": ["sensitivity"], "threshold": 0.5,
                        "target_half_width": 0.08, "assumed_value": 0.8},
        "report": {"title": "t"},
    }
    return Protocol.model_validate(spec)


def test_verdicts_of_a_protocol_and_their_stable_ids(tmp_path):
    a = _protocol(tmp_path, {"attributes": ["sex", "race"], "covariates": ["age"]},
                  {"attributes": ["sex", "race"], "intersections": [["sex", "race"]]})
    b = _protocol(tmp_path, {"attributes": ["race", "sex"], "covariates": ["age"]},
                  {"attributes": ["race", "sex"], "intersections": [["sex", "race"]]})
    ra, rb = representativeness_from_protocol(a), representativeness_from_protocol(b)
    va = {v.id: v for v in ra.verdicts}
    vb = {v.id: v for v in rb.verdicts}
    assert va.keys() == vb.keys()  # reordering the protocol keeps every id
    assert {k: v.status for k, v in va.items()} == {k: v.status for k, v in vb.items()}
    by_label = {v.id.split(".")[2].split("-")[0]: v for v in ra.verdicts}
    assert set(by_label) == {"ppr", "smd", "coverage", "adequacy", "missingness"}
    ppr_sex = next(v for v in ra.verdicts if v.id.startswith("representativeness.check.ppr.sex-"))
    assert ppr_sex.id == verdict_id("representativeness", "check", {
        "check": "ppr", "attribute": "sex", "ppr_band": [0.8, 1.2], "reference": "toyref"},
        label="ppr.sex")
    assert ppr_sex.status == STATUS_FAIL  # 65% women vs 50%
    assert ppr_sex.source == "population.ppr_band" and ppr_sex.kind == "check"
    assert {c["level"]: c["status"] for c in ppr_sex.cells} == {"F": STATUS_FAIL,
                                                                "M": STATUS_FAIL}
    assert by_label["coverage"].criterion == "every intersectional cell has at least 40 rows"
    assert by_label["coverage"].status == STATUS_FAIL  # race C: ~12 rows
    assert by_label["smd"].criterion == "|SMD| <= 0.1 for every covariate vs the comparison rows"
    assert all(v.section == "representativeness" for v in ra.verdicts)
    # changing a criterion changes its id
    c = _protocol(tmp_path, {"attributes": ["sex", "race"], "covariates": ["age"],
                             "ppr_band": [0.7, 1.3]}, {"attributes": ["sex", "race"]})
    vc = {v.id for v in representativeness_from_protocol(c).verdicts}
    assert ppr_sex.id not in vc
    assert by_label["smd"].id in vc  # the SMD criterion did not change


def test_missing_data_never_pass():
    base = pd.DataFrame({"sex": ["F", "M"] * 30, "race": ["A", "B", "C"] * 20,
                         "age": np.linspace(40, 80, 60)})
    # the reference lacks race; nobody has a value of race
    r = assess_representativeness(base, reference={"sex": REF["sex"]},
                                  attributes=["sex", "race"])
    v = {x.id.split(".")[3].split("-")[0]: x for x in r.verdicts if ".ppr." in x.id}
    assert v["sex"].status == STATUS_PASS
    assert v["race"].status == STATUS_NOT_EVALUABLE
    assert v["race"].reason == "reference 'custom' does not define race"
    r = assess_representativeness(base.assign(race=None), reference=REF,
                                  attributes=["sex", "race"])
    race = next(x for x in r.verdicts if ".ppr.race-" in x.id)
    assert race.status == STATUS_NOT_EVALUABLE
    assert race.reason == "race is missing for every row of the cohort"
    assert "race: missing for every cohort row; its representativeness cannot be evaluated" \
        in r.finding_texts()
    # no comparison population: the SMD check did not run
    smd = next(x for x in r.verdicts if ".smd-" in x.id)
    assert smd.status == STATUS_NOT_EVALUATED and smd.reason == "no population rows to compare with"
    # a covariate nobody in the comparison population has: its SMD cannot be computed
    r = assess_representativeness(base, reference=REF, attributes=["sex"], covariates=["age"],
                                  comparison=base[["age"]].assign(age=np.nan))
    smd = next(x for x in r.verdicts if ".smd-" in x.id)
    assert smd.status == STATUS_NOT_EVALUABLE and "no SMD" in smd.reason
    # an attribute with a value for nobody fails the missingness check
    miss = next(x for x in r.verdicts if ".missingness-" in x.id)
    assert miss.status == STATUS_PASS
    r = assess_representativeness(base.assign(race=None), reference=REF, attributes=["race"])
    assert next(x for x in r.verdicts if ".missingness-" in x.id).status == STATUS_FAIL
    assert STATUS_PASS not in {x.status for x in r.verdicts if ".ppr." in x.id}


def test_summary_input_checks_its_names(evset):
    s = summarize(evset, attributes=["sex", "site"], features=["age"], versions=[])
    with pytest.raises(InvalidParameterError, match="'race' is not an attribute of the cohort"):
        assess_representativeness(s, reference=REF, attributes=["race"])
    with pytest.raises(InvalidParameterError, match="covariate 'bmi'"):
        assess_representativeness(s, reference=REF, attributes=["sex"], covariates=["bmi"])
    with pytest.raises(InvalidParameterError, match="site 'centre'"):
        assess_representativeness(s, reference=REF, attributes=["sex"], site="centre")
    r = assess_representativeness(s, reference=REF, site="site")
    assert r.attributes == ("sex",)  # the default: the summary's attributes but the site
    assert set(r.sites["level"]) == {"site"}


def test_from_protocol_takes_a_summary(tmp_path):
    p = _protocol(tmp_path, {"attributes": ["sex", "race"], "covariates": ["age"]},
                  {"attributes": ["sex", "race"], "intersections": [["sex", "race"]]})
    ev = p.load_data()
    site = ev.frame["site"].to_numpy()
    merged = merge_summaries([summarize(ev.subset(site == s), p) for s in ("s1", "s2")])
    rows, sums = representativeness_from_protocol(p, ev), representativeness_from_protocol(
        p, merged)
    for name in EXACT:
        _same(getattr(sums, name), getattr(rows, name))
    _same(sums.smd, rows.smd, rtol=1e-12)
    assert [v.status for v in sums.verdicts] == [v.status for v in rows.verdicts]
    assert rows.tipton is not None and sums.tipton is None
    over = representativeness_from_protocol(p, merged, min_n=5)
    assert over.parameters["min_n"] == 5


# --------------------------------------------------------------------------- findings
def _old_share_sentence(r, level=0.95):
    """The f-string of the findings before they were typed (the wording to keep)."""
    def pct(x):
        return "n/a" if not np.isfinite(x) else f"{100 * x:.1f}%"
    lvl = int(round(level * 100))
    return (f"{r['category']} ({r['attribute']}): {pct(r['cohort_share'])} of cohort "
            f"(n={r['n']}; {lvl}% CI {pct(r['ci_low'])}-{pct(r['ci_high'])}) vs "
            f"{pct(r['reference_share'])} of reference, PPR {r['ppr']:.2f} "
            f"({r['ppr_low']:.2f}-{r['ppr_high']:.2f}), {r['flag']}")


def test_findings_are_typed_with_the_old_sentences(pooled):
    codes = [f.code for f in pooled.findings]
    assert "representativeness.under_represented" in codes
    assert "representativeness.small_cells" in codes
    flagged = pooled.shares[pooled.shares["flag"].isin(["under-represented",
                                                        "over-represented"])]
    texts = pooled.finding_texts()
    for _, r in flagged.iterrows():
        # the old sentence, then what the reference share rests on (issue 14 part 7): the
        # census figures are verified, the age bands restricted to the intended use
        caveat = ("" if r["attribute"] == "age_band" else
                  " [reference covers all ages; the intended-use population is adults 40+]")
        assert _old_share_sentence(r) + caveat in texts
    under = next(f for f in pooled.findings if f.code == "representativeness.under_represented")
    assert under.counts == {"n": int(pooled.shares.set_index(["attribute", "category"]).loc[
        (under.subject["attribute"], under.subject["category"]), "n"])}
    assert under.severity == "warning" and isinstance(under.values["ppr"], float)


def test_small_cell_suppression_acts_on_the_counts(pooled):
    k = 25  # the demo's smallest sex x race cells hold 12 and 22 rows
    for f in pooled.findings:
        text = f.text(k)
        small = f.suppressed(k)
        if small:
            assert f"a count below {k} is not shown" in text
            for c in f.counts.values():
                for x in (c if isinstance(c, list) else [c]):
                    if x is not None and 0 < x < k:
                        assert f"n={x})" not in text and f"({x})" not in text
        else:
            assert text == f.text()
    cells = next(f for f in pooled.findings if f.code == "representativeness.small_cells")
    assert cells.suppressed(k) and not cells.suppressed(12)
    assert "(n=" in cells.text() and "(n=" not in cells.text(k)
