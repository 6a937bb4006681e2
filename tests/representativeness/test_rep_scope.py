"""The right reference population (issue 14 part 7): what each reference file covers, the
intended-use age range, findings that say when the reference covers other ages or is
unverified, and the development population named as such."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pandas as pd
import pytest

from rwe.exceptions import InvalidParameterError, ReferenceDataError
from rwe.representativeness import (
    assess_representativeness,
    available_references,
    load_reference,
    representativeness_from_protocol,
    unevaluable_from_protocol,
)
from rwe.representativeness._reference import describe_ages, parse_ages, reference_dir

UNIVERSE_KEYS = ("universe", "universe_ages", "universe_geography", "universe_date", "tables",
                 "source", "year", "version", "verified", "verification")
ALL_AGES = "reference covers all ages; the intended-use population is adults 40+"
UNVERIFIED = "reference figures not verified against the published tables"
#: "<50" reference share of the all-ages and the 20+ reference with cuts [50, 65] (2020 Census
#: DP1 age groups; 0.647 and 0.527 with the ACS 2016-2020 percentages of version 1.1.0)
UNDER50_ALL, UNDER50_20 = 0.638, 0.519


def _build_module():
    spec = importlib.util.spec_from_file_location(
        "build_us_census_2020", reference_dir() / "build_us_census_2020.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ----------------------------------------------------------------- what a reference file states
@pytest.mark.parametrize("name", ["us_census_2020", "us_census_2020_clinical"])
def test_reference_file_states_its_universe_and_source(name):
    ref = load_reference(name)
    for key in UNIVERSE_KEYS:
        assert ref.metadata.get(key), f"{name} lacks # {key}"
    assert ref.metadata["universe_ages"] == "0+"
    assert "50 states and the District of Columbia" in ref.metadata["universe_geography"]
    for table in ("P1", "P2", "DP1"):
        assert table in ref.metadata["tables"]
    assert ref.metadata["universe_date"].startswith("census day April 1, 2020")
    # verified, and the statement says against what (tests/representativeness/
    # test_rep_published.py compares the figures with those extracts)
    assert ref.verified is True
    v = ref.metadata["verification"]
    assert v.startswith("Checked cell by cell, exactly")
    for cell in ("P1_003N-P1_009N", "P2_005N-P2_011N", "DP1 SEX AND AGE", "published/"):
        assert cell in v
    assert "S0101 percentages used up to version 1.1.0 could not be checked" in v
    for attr in ref.attributes:
        assert ref.ages(attr) == "0+"  # the ages column of every row: all ages
        assert ref.verified_for(attr) is True


def test_bundled_reference_figures_pass_the_build_checks_and_match_the_script():
    """The checks that can be made offline pass, and every stored share is the script's
    published value over its attribute's total (so the CSVs are what the script writes)."""
    mod = _build_module()
    done = mod.consistency_checks()
    assert any("P1 race counts sum to 331,449,281" in d for d in done)
    assert any("DP1 age-group counts sum to 331,449,281" in d for d in done)
    assert any("P2_005N-P2_011N" in d for d in mod.published_checks())
    for name in ("us_census_2020", "us_census_2020_clinical"):
        path = reference_dir() / f"{name}.csv"
        body = pd.read_csv(path, comment="#")
        assert set(body["ages"]) == {mod.UNIVERSE_AGES}
        assert body["verified"].all() and set(body["unit"]) == {"count"}
        for _, g in body.groupby("attribute"):
            want = g["published_value"] / g["published_value"].sum()
            np.testing.assert_allclose(g["share"], want, atol=5e-9)
    p1 = pd.read_csv(reference_dir() / "us_census_2020.csv", comment="#")
    race = p1[p1["attribute"] == "race"].set_index("category")["published_value"]
    assert race.to_dict() == mod.P1


def test_build_checks_catch_a_transcription_error(monkeypatch):
    mod = _build_module()
    monkeypatch.setitem(mod.P1, "Asian", mod.P1["Asian"] + 10)
    with pytest.raises(AssertionError, match="P1 race counts sum to 331,449,281"):
        mod.consistency_checks()


def test_ages_labels():
    assert parse_ages("0+") == (0.0, math.inf)
    assert parse_ages("18-64") == (18.0, 65.0)
    assert describe_ages("0+") == "all ages" and describe_ages("40+") == "adults 40+"
    assert describe_ages("5-17") == "ages 5-17" and describe_ages(None) == "ages not stated"
    with pytest.raises(ReferenceDataError, match="'adults' of the reference"):
        parse_ages("adults")


def test_a_file_with_mixed_age_ranges_in_one_attribute_is_refused(tmp_path):
    p = tmp_path / "mixed.csv"
    p.write_text("attribute,category,share,ages\nsex,F,0.5,0+\nsex,M,0.5,18+\n")
    with pytest.raises(ReferenceDataError, match="mixes age ranges '0\\+', '18\\+'"):
        load_reference(p)
    p.write_text("# universe_ages: 18+\nattribute,category,share\nsex,F,0.52\nsex,M,0.48\n")
    assert load_reference(p).ages("sex") == "18+"


# ------------------------------------------------------------------ age restriction: 40+, 18, 20
def test_restriction_to_adults_40_plus():
    ref = load_reference("us_census_2020_clinical")
    age = ref.share("age")
    b = ref.with_age_bands([50, 65, 80], min_age=40)
    kept = age[[c for c in age.index if int(c.rstrip("+").split("-")[0]) >= 40]]
    s = b.share("age_band")
    assert s["<50"] == pytest.approx(age[["40-44", "45-49"]].sum() / kept.sum(), rel=1e-12)
    assert s["80+"] == pytest.approx(age[["80-84", "85+"]].sum() / kept.sum(), rel=1e-12)
    assert s.sum() == pytest.approx(1.0, abs=1e-12)
    assert b.ages("age_band") == "40+" and b.ages("sex") == "0+"  # sex cannot be restricted
    assert round(s["<50"], 4) == 0.2522  # 0.2615 with the ACS figures of version 1.1.0


def test_a_cut_at_18_is_refused_in_one_line_naming_the_boundaries():
    ref = load_reference("us_census_2020")
    with pytest.raises(ReferenceDataError) as exc:
        ref.with_age_bands([50, 65], min_age=18)
    msg = str(exc.value)
    assert "\n" not in msg
    assert "minimum age 18 falls inside the reference age group '15-19'" in msg
    assert "0, 5, 10, 15, 20, 25" in msg and "85" in msg
    with pytest.raises(ReferenceDataError, match="age cut 18 falls inside .*15, 20"):
        ref.with_age_bands([18, 65])
    df = pd.DataFrame({"age_band": ["<50", "50-64", "65+"] * 20})
    with pytest.raises(InvalidParameterError, match="^reference_min_age=18: .*'15-19'"):
        assess_representativeness(df, reference=ref, attributes=["age_band"],
                                  reference_min_age=18)


def _adult_cohort(n=4000, seed=3):
    """SUPPORT2-like adult cohort: ages 18-101, median about 65, ~21% under 50."""
    rng = np.random.default_rng(seed)
    age = np.clip(rng.normal(63, 15.6, n), 18, 101)
    band = pd.cut(age, [-np.inf, 50, 65, np.inf], right=False,
                  labels=["<50", "50-64", "65+"]).astype(str)
    return pd.DataFrame({"age_band": band, "sex": rng.choice(["F", "M"], n, p=[.44, .56])})


def test_support2_style_under_50_share_depends_on_the_stated_intended_use():
    """The reviewer's SUPPORT2 case: with the all-ages reference, ages 0-17 stay in it and the
    "<50" reference share is 0.638; restricted at an adult boundary it is 0.519 (ages 20+,
    the nearest 5-year boundary to 18, which itself is refused)."""
    df = _adult_cohort()
    ref = load_reference("us_census_2020")
    allages = assess_representativeness(df, reference=ref, attributes=["age_band", "sex"])
    adults = assess_representativeness(df, reference=ref, attributes=["age_band", "sex"],
                                       reference_min_age=20)

    def under50(r):
        return r.shares.set_index(["attribute", "category"]).loc[("age_band", "<50")]

    a, b = under50(allages), under50(adults)
    assert round(a["reference_share"], 3) == UNDER50_ALL and a["reference_ages"] == "0+"
    assert round(b["reference_share"], 3) == UNDER50_20 and b["reference_ages"] == "20+"
    age = ref.share("age")
    assert b["reference_share"] == pytest.approx(
        age[["20-24", "25-29", "30-34", "35-39", "40-44", "45-49"]].sum()
        / age.iloc[4:].sum(), rel=1e-12)
    assert a["cohort_share"] == b["cohort_share"]
    assert b["ppr"] == pytest.approx(a["ppr"] * UNDER50_ALL / UNDER50_20, rel=2e-3)
    # unrestricted, every finding on the reference says the intended-use age was not given
    for f in allages.findings:
        if f.values.get("age_scope") is not None and f.code != \
                "representativeness.reference_age_scope":
            assert f.values["age_scope"] == "intended use not stated"
            assert "reference covers all ages; no intended-use minimum age was given" in f.text()
    scope = [f for f in allages.findings if f.code == "representativeness.reference_age_scope"]
    assert len(scope) == 1 and scope[0].subject["attributes"] == ["age_band", "sex"]
    # restricted: the age bands match the intended use, sex is flagged as all ages
    by = {f.subject.get("attribute"): f for f in adults.findings
          if f.code in ("representativeness.under_represented",
                        "representativeness.over_represented",
                        "representativeness.distribution_differs")}
    assert by["age_band"].values["age_scope"] == "matches"
    assert "reference covers" not in by["age_band"].text()
    assert by["sex"].values["age_scope"] == "wider"
    assert ("reference covers all ages; the intended-use population is adults 20+"
            in by["sex"].text())


def test_real_support2_under_50_share():
    """The reviewer's numbers on the real data (runs where SurvSet is installed): "<50" has
    reference share 0.638 and PPR 0.33 against all ages, 0.519 and 0.40 against ages 20+ (0.647,
    0.32, 0.527 and 0.39 with the ACS 2016-2020 age percentages of version 1.1.0)."""
    import warnings

    survset = pytest.importorskip("SurvSet.data")
    with warnings.catch_warnings():  # its pickles name numpy.core
        warnings.simplefilter("ignore", DeprecationWarning)
        df = survset.SurvLoader().load_dataset("support2")["df"]
    assert len(df) == 9105 and df["num_age"].min() > 18
    age = df["num_age"].to_numpy(float)
    band = np.where(age < 50, "<50", np.where(age < 65, "50-64", "65+"))
    cohort = pd.DataFrame({"age_band": band})
    ref = load_reference("us_census_2020")
    r0 = assess_representativeness(cohort, reference=ref, attributes=["age_band"])
    r20 = assess_representativeness(cohort, reference=ref, attributes=["age_band"],
                                    reference_min_age=20)
    s0 = r0.shares.set_index("category").loc["<50"]
    s20 = r20.shares.set_index("category").loc["<50"]
    assert round(s0["reference_share"], 3) == UNDER50_ALL
    assert round(s20["reference_share"], 3) == UNDER50_20
    assert s0["n"] == 1896 and round(s0["ppr"], 2) == 0.33 and round(s20["ppr"], 2) == 0.40


# ------------------------------------------------------------------ flags on all-ages findings
@pytest.fixture(scope="module")
def demo_result():
    from rwe.datasets import make_demo

    demo = make_demo(n_scans=5_000)
    df = demo.scans.assign(age_band=pd.cut(
        demo.scans["age"], [-np.inf, 50, 65, 80, np.inf], right=False,
        labels=["<50", "50-64", "65-79", "80+"]).astype(str))
    return assess_representativeness(
        df, reference="us_census_2020_clinical",
        attributes=["sex", "race", "ethnicity", "age_band"], covariates=["age"],
        development=demo.training.assign(age_band=pd.cut(
            demo.training["age"], [-np.inf, 50, 65, 80, np.inf], right=False,
            labels=["<50", "50-64", "65-79", "80+"]).astype(str)),
        reference_min_age=40), demo


def test_every_finding_on_all_ages_shares_says_so(demo_result):
    r, _ = demo_result
    on_reference = {"representativeness.under_represented",
                    "representativeness.over_represented", "representativeness.absent",
                    "representativeness.not_in_reference", "representativeness.zero_reference",
                    "representativeness.distribution_differs"}
    seen = set()
    for f in r.findings:
        if f.code not in on_reference:
            continue
        attr = f.subject["attribute"]
        seen.add(attr)
        assert f.values["reference_verified"] is True  # the census figures are verified
        assert f.values["intended_ages"] == "40+"
        assert UNVERIFIED not in f.text()
        if attr == "age_band":
            assert f.values["age_scope"] == "matches" and f.values["reference_ages"] == "40+"
            assert not f.text().endswith("]")
        else:
            assert f.values["age_scope"] == "wider" and f.values["reference_ages"] == "0+"
            assert f.text().endswith(f" [{ALL_AGES}]")
            assert f.text(10**6).endswith("]")  # the suppressed wording keeps the caveat
    assert {"race", "ethnicity", "age_band"} <= seen
    scope = [f for f in r.findings if f.code == "representativeness.reference_age_scope"]
    assert len(scope) == 1
    assert scope[0].subject["attributes"] == ["sex", "race", "ethnicity"]
    assert scope[0].values["reference_ages"] == "0+" and scope[0].values["intended_ages"] == "40+"
    assert "treat them as approximate" in scope[0].text()
    assert not any(f.code == "representativeness.reference_unverified" for f in r.findings)
    # the PPR verdicts say it too
    for v in r.verdicts:
        if ".ppr." in v.id:
            assert UNVERIFIED not in (v.reason or "")
            assert (ALL_AGES in (v.reason or "")) == (".ppr.age_band-" not in v.id)
    # and it survives the JSON round trip
    from rwe.representativeness import RepresentativenessResult

    back = RepresentativenessResult.from_dict(r.to_dict())
    assert back.finding_texts() == r.finding_texts()
    assert list(back.shares["reference_ages"]) == list(r.shares["reference_ages"])


def test_a_reference_stated_unverified_flags_every_finding(demo_result):
    """A reference whose file says ``verified: false`` (as the census files did up to version
    1.1.0) adds the caveat to every finding and one reference_unverified finding."""
    r0, demo = demo_result
    ref = load_reference("us_census_2020_clinical")
    meta = {k: v for k, v in ref.metadata.items() if not k.startswith("verified:")}
    meta |= {"verified": "false", "verification": "NOT checked (a test)"}
    from dataclasses import replace

    unverified = replace(ref, metadata=meta)
    df = demo.scans.assign(age_band=pd.cut(
        demo.scans["age"], [-np.inf, 50, 65, 80, np.inf], right=False,
        labels=["<50", "50-64", "65-79", "80+"]).astype(str))
    r = assess_representativeness(df, reference=unverified,
                                  attributes=["sex", "race", "ethnicity", "age_band"],
                                  reference_min_age=40)
    for f in r.findings:
        if f.code == "representativeness.under_represented":
            assert f.values["reference_verified"] is False
            assert f.text().endswith(f"{UNVERIFIED}]")
    unv = [f for f in r.findings if f.code == "representativeness.reference_unverified"]
    assert len(unv) == 1 and unv[0].values["verification"] == "NOT checked (a test)"
    assert unv[0].values["attributes"] == ["sex", "race", "ethnicity", "age_band"]
    assert "version 2.0.0" in unv[0].text() and "its figures were not verified" in unv[0].text()
    for v in r.verdicts:
        if ".ppr." in v.id:
            assert v.reason.endswith(UNVERIFIED)


def test_a_reference_that_states_nothing_adds_no_caveat():
    df = pd.DataFrame({"sex": ["F"] * 70 + ["M"] * 30})
    r = assess_representativeness(df, reference={"sex": {"F": 0.5, "M": 0.5}},
                                  attributes=["sex"])
    assert r.finding_texts()[0] == ("F (sex): 70.0% of cohort (n=70; 95% CI 60.4%-78.1%) vs "
                                    "50.0% of reference, PPR 1.40 (1.21-1.56), over-represented")
    assert not any(f.code.startswith("representativeness.reference_") for f in r.findings)
    # with an intended-use age but a reference that does not state its ages: said so
    r = assess_representativeness(df, reference={"sex": {"F": 0.5, "M": 0.5}},
                                  attributes=["sex"], reference_min_age=40)
    assert r.findings[0].values["age_scope"] == "reference ages not stated"
    assert r.finding_texts()[0].endswith(
        " [the reference does not state its ages; the intended-use population is adults 40+]")


def test_min_age_is_part_of_the_ppr_criterion():
    df = _adult_cohort(500)
    ref = load_reference("us_census_2020")
    a = assess_representativeness(df, reference=ref, attributes=["sex"])
    b = assess_representativeness(df, reference=ref, attributes=["sex"], reference_min_age=40)
    ida = next(v.id for v in a.verdicts if ".ppr.sex-" in v.id)
    idb = next(v.id for v in b.verdicts if ".ppr.sex-" in v.id)
    assert ida != idb
    from rwe._evidence import verdict_id

    assert ida == verdict_id("representativeness", "check", {
        "check": "ppr", "attribute": "sex", "ppr_band": [0.8, 1.2],
        "reference": "us_census_2020"}, label="ppr.sex")  # unchanged without min_age


# ------------------------------------------------------------------ the development population
def test_development_population_is_named_and_its_numbers_equal_the_comparison(demo_result):
    r, demo = demo_result
    df = demo.scans.assign(age_band=pd.cut(
        demo.scans["age"], [-np.inf, 50, 65, 80, np.inf], right=False,
        labels=["<50", "50-64", "65-79", "80+"]).astype(str))
    dev_rows = demo.training.assign(age_band=pd.cut(
        demo.training["age"], [-np.inf, 50, 65, 80, np.inf], right=False,
        labels=["<50", "50-64", "65-79", "80+"]).astype(str))
    c = assess_representativeness(df, reference="us_census_2020_clinical",
                                  attributes=["sex", "race", "ethnicity", "age_band"],
                                  covariates=["age"], comparison=dev_rows, reference_min_age=40)
    ds = r.smd[r.smd["comparison"] == "development population"].reset_index(drop=True)
    cs = c.smd[c.smd["comparison"] == "comparison rows"].reset_index(drop=True)
    assert len(ds) == len(cs) > 10
    pd.testing.assert_frame_equal(ds.drop(columns="comparison"), cs.drop(columns="comparison"))
    assert r.tipton.b == c.tipton.b
    pd.testing.assert_frame_equal(r.shares, c.shares)
    # its own check and findings; the representativeness SMD check did not run
    dv = {v.id.split(".")[2].split("-")[0]: v for v in r.verdicts}
    cv = {v.id.split(".")[2].split("-")[0]: v for v in c.verdicts}
    assert "development_shift" in dv and "development_shift" not in cv
    shift = dv["development_shift"]
    assert shift.criterion == "shift from the development population: |SMD| <= 0.1 for every " \
                              "covariate"
    assert (shift.status, shift.reason, shift.estimate, shift.cells) == (
        cv["smd"].status, cv["smd"].reason, cv["smd"].estimate, cv["smd"].cells)
    assert dv["smd"].status == "not_evaluated"
    assert "development population is compared in development_shift" in dv["smd"].reason
    codes = [f.code for f in r.findings]
    assert "representativeness.development_shift" in codes
    assert "representativeness.smd_imbalanced" not in codes
    assert "representativeness.development_generalizability" in codes
    assert "representativeness.generalizability" not in codes
    age = next(f for f in r.findings if f.code == "representativeness.development_shift"
               and f.subject["covariate"] == "age")
    assert age.text() == (f"age: SMD {age.values['smd']:.2f}, shift from the development "
                          "population (|SMD| > 0.1)")
    same = next(f for f in c.findings if f.code == "representativeness.smd_imbalanced"
                and f.subject["covariate"] == "age")
    assert same.values["smd"] == age.values["smd"]


def test_comparison_and_development_together_are_refused():
    df = pd.DataFrame({"sex": ["F", "M"] * 10, "age": np.arange(20.0)})
    with pytest.raises(InvalidParameterError, match="not both"):
        assess_representativeness(df, reference={"sex": {"F": .5, "M": .5}}, attributes=["sex"],
                                  comparison=df, development=df)


# ------------------------------------------------------------------ the protocol
def _protocol(tmp_path, *, min_age=40, comparison=False):
    from rwe.protocol import Protocol

    rng = np.random.default_rng(0)
    n = 600
    df = pd.DataFrame({"scan_id": np.arange(n), "sex": rng.choice(["F", "M"], n),
                       "age": rng.uniform(40, 90, n).round(1), "y": rng.integers(0, 2, n),
                       "score": rng.random(n)})
    data = tmp_path / "scans.csv"
    df.to_csv(data, index=False)
    train = tmp_path / "train.csv"
    df.assign(age=df["age"] - 8).to_csv(train, index=False)
    population = {"reference": "us_census_2020", "attributes": ["sex", "age_band"],
                  "covariates": ["age"]}
    if min_age is not None:
        population["min_age"] = min_age
    if comparison:
        population["comparison"] = str(train)
    spec = {"name": "t", "device": {"name": "d", "version": "1", "intended_use": "x",
                                    "intended_use_population": "adults 40+"},
            "data": {"path": str(data), "reference_rows": str(train),
                     "columns": {"id": "scan_id", "scores": {"1.0": "score"}, "label": "y",
                                 "attributes": ["sex"], "features": ["age"]},
                     "derived": {"age_band": {"from": "age", "cuts": [50, 65]}}},
            "population": population,
            "performance": {"metrics": ["sensitivity"], "threshold": 0.5},
            "report": {"title": "t"}}
    return Protocol.model_validate(spec)


def test_protocol_min_age_and_the_development_population(tmp_path):
    p = _protocol(tmp_path)
    r = representativeness_from_protocol(p)
    assert r.parameters["reference_min_age"] == 40
    assert set(r.shares.loc[r.shares["attribute"] == "age_band", "reference_ages"]) == {"40+"}
    assert (r.smd["comparison"] == "development population").any()
    assert any(".development_shift-" in v.id for v in r.verdicts)
    # population.comparison is another population of the intended use, not the development one
    q = _protocol(tmp_path, comparison=True)
    rq = representativeness_from_protocol(q)
    assert (rq.smd["comparison"] == "comparison rows").any()
    assert not any(".development_shift-" in v.id for v in rq.verdicts)


def test_protocol_min_age_is_validated(tmp_path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="min_age"):
        _protocol(tmp_path, min_age=-1)
    p = _protocol(tmp_path, min_age=18)
    ev = p.load_data()
    found = unevaluable_from_protocol(p, ev)
    assert len(found) == 1 and found[0][0] == ("population", "min_age")
    assert "minimum age 18 falls inside the reference age group '15-19'" in found[0][1]
    assert "0, 5, 10, 15, 20" in found[0][1]
    from rwe.protocol import check_inputs

    lines = check_inputs(p, ev)
    assert len(lines) == 1 and "population.min_age" in lines[0] and "\n" not in lines[0]
    with pytest.raises(InvalidParameterError, match="^reference_min_age=18: "):
        representativeness_from_protocol(p)
    assert unevaluable_from_protocol(_protocol(tmp_path, min_age=20), ev) == []


def test_demo_protocol_states_the_intended_use_minimum_age():
    from rwe.protocol import load_protocol

    p = load_protocol(reference_dir().parents[1] / "protocols" / "demo.yaml")
    assert p.population.min_age == 40
    assert "40 years and older" in p.device.intended_use_population
    assert p.population.comparison is None and p.data.reference_rows  # the development rows


def test_bundled_references_are_listed():
    assert {"us_census_2020", "us_census_2020_clinical"} <= set(available_references())
