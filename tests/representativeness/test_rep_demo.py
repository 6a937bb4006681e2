"""The demo scenario must surface its built-in under-representation (datasets/demo/README.md a)."""

from __future__ import annotations

import numpy as np
import pytest

from rwe.data import ColumnRoles, EvaluationSet
from rwe.representativeness import (
    FLAG_ADEQUATE,
    FLAG_OVER,
    FLAG_UNDER,
    load_reference,
    representativeness,
)


@pytest.fixture(scope="module")
def demo():
    from rwe.datasets import make_demo

    return make_demo(n_scans=20_000)


@pytest.fixture(scope="module")
def result(demo):
    roles = ColumnRoles(id="scan_id", patient_id="patient_id",
                        scores={"v1.0": "score_v1_0", "v1.1": "score_v1_1"}, label="malignant",
                        timestamp="scan_date", site="site", equipment="scanner_vendor",
                        attributes=("sex", "race", "ethnicity", "smoking_status"),
                        features=("age", "pack_years", "nodule_size_mm"))
    ev = EvaluationSet.from_frame(demo.scans, roles,
                                  derived={"age_band": {"from": "age", "cuts": [50, 65, 80]}})
    return representativeness(
        ev, reference="us_census_2020_clinical", attributes=["sex", "race", "ethnicity", "age_band"],
        covariates=["age", "pack_years", "nodule_size_mm"], development=demo.training,
        intersections=[["sex", "race"], ["race", "age_band"]], target_half_width=0.05,
        assumed_value=0.85, reference_min_age=40)


def _row(result, attribute, category):
    s = result.shares
    return s[(s["attribute"] == attribute) & (s["category"] == category)].iloc[0]


@pytest.mark.parametrize("attribute,category,flag,ppr", [
    ("race", "Black or African American", FLAG_UNDER, 0.54),
    ("race", "Multiracial/Other", FLAG_UNDER, 0.27),
    ("race", "Asian", FLAG_OVER, 1.34),
    ("race", "White", FLAG_OVER, 1.29),
    ("ethnicity", "Hispanic or Latino", FLAG_UNDER, 0.43),
    ("sex", "F", FLAG_ADEQUATE, 0.99),
])
def test_demo_flags_match_data_card(result, attribute, category, flag, ppr):
    r = _row(result, attribute, category)
    assert r["flag"] == flag
    assert r["ppr"] == pytest.approx(ppr, abs=0.07)  # 20k-scan sample of the 100k card values
    assert r["ppr_low"] < r["ppr"] < r["ppr_high"]


def test_demo_interval_excludes_adequacy_for_black_and_hispanic(result):
    for attribute, category in (("race", "Black or African American"),
                                ("ethnicity", "Hispanic or Latino")):
        assert _row(result, attribute, category)["ppr_high"] < 0.8


def test_demo_findings_in_plain_words(result):
    text = "\n".join(result.finding_texts())
    assert "Black or African American (race):" in text
    black = next(f for f in result.finding_texts() if f.startswith("Black or African American (race)"))
    assert "under-represented" in black and "of reference" in black and "PPR 0.5" in black
    assert any(f.startswith("Hispanic or Latino (ethnicity)") and "under-represented" in f
               for f in result.finding_texts())
    assert any(f.startswith("Shift from the development population: generalizability index B")
               for f in result.finding_texts())


def test_demo_training_population_is_not_generalizable(result):
    t = result.tipton
    assert t is not None and t.b < 0.5 and t.interpretation == "low"
    smd = result.smd[result.smd["comparison"] == "development population"].set_index(
        ["covariate", "level"])
    assert smd.loc[("age", ""), "flag"] == "imbalanced"  # US cohort ~66 vs training ~58 years
    assert smd.loc[("age", ""), "smd"] > 0.5
    assert smd.loc[("race", "Asian"), "smd"] < -1


def test_demo_reference_age_restricted_to_intended_use(result):
    ref = load_reference("us_census_2020_clinical").with_age_bands([50, 65, 80], min_age=40)
    np.testing.assert_allclose(_row(result, "age_band", "<50")["reference_share"],
                               ref.shares["age_band"]["<50"], rtol=1e-12)
    assert any("restricted to ages >= 40" in n for n in result.notes)


def test_demo_coverage_and_adequacy(result):
    cov = result.coverage
    assert len(cov[cov["intersection"] == "sex x race"]) == 2 * 6
    nhpi = cov[(cov["intersection"] == "sex x race")
               & cov["cell"].str.contains("Native Hawaiian")]
    assert nhpi["below_min_n"].all()
    a = result.adequacy.set_index(["grouping", "subgroup"])
    assert not bool(a.loc[("race", "Black or African American"), "reached"])
    assert bool(a.loc[("race", "White"), "reached"])
    sites = result.sites
    assert (sites["level"] == "site").sum() == 4
    assert set(sites.loc[sites["level"] == "equipment", "equipment"]) == {
        "Siemens", "GE", "Philips", "Canon"}


def test_demo_propensity_fit_equals_scikit_learn(demo):
    """On the demo's cohort against its training population (thousands of rows, rare race
    levels, missing pack-years), rwe's Newton fit on the factored design gives scikit-learn's
    penalised optimum (newton-cholesky run to tolerance 1e-12) and its B."""
    from sklearn.linear_model import LogisticRegression

    from rwe.representativeness import generalizability_index, propensity_scores
    from rwe.representativeness._indices import _design

    cov = ["age", "pack_years", "nodule_size_mm", "sex", "race", "ethnicity"]
    cohort, train = demo.scans, demo.training
    ps_s, ps_p, info = propensity_scores(cohort, train, cov)
    assert info["dropped_sample"] > 0 and info["converged"]
    (xs, xp), names = _design([cohort.dropna(subset=cov), train.dropna(subset=cov)], cov)
    assert names == info["terms"]
    X, y = np.vstack([xs, xp]), np.r_[np.ones(len(xs)), np.zeros(len(xp))]
    ref = LogisticRegression(C=1.0, solver="newton-cholesky", tol=1e-12, max_iter=1000)
    want = ref.fit(X, y).predict_proba(X)[:, 1]
    np.testing.assert_allclose(np.r_[ps_s, ps_p], want, rtol=1e-7)
    np.testing.assert_allclose(generalizability_index(ps_s, ps_p),
                               generalizability_index(want[:len(xs)], want[len(xs):]),
                               rtol=1e-7)
