"""Intersectional coverage, sample-size adequacy, site/equipment coverage, missingness, SMD
tables and Tipton's B inside representativeness()."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from rwe.data import ColumnRoles, EvaluationSet
from rwe.exceptions import InvalidParameterError
from rwe.representativeness import (
    ReferencePopulation,
    compare_cohorts,
    representativeness,
    smd,
    tipton_index,
)
from rwe.stats import ci_half_width_sample_size

REF = {"sex": {"F": 0.5, "M": 0.5}, "race": {"A": 0.6, "B": 0.3, "C": 0.1}}


def _cohort(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "scan_id": np.arange(n),
        "sex": rng.choice(["F", "M"], n),
        "race": rng.choice(["A", "B", "C"], n, p=[0.8, 0.18, 0.02]),
        "site": rng.choice(["s1", "s2", "s3"], n),
        "age": rng.normal(65, 8, n),
        "smoker": rng.integers(0, 2, n),
        "y": rng.random(n) < 0.3,
        "score": rng.random(n),
    })
    df["vendor"] = np.where(df["site"] == "s3", "GE", rng.choice(["GE", "Siemens"], n))
    return df


def _evset(df):
    roles = ColumnRoles(id="scan_id", scores={"1.0": "score"}, label="y", site="site",
                        equipment="vendor", attributes=("sex", "race"), features=("age",))
    return EvaluationSet.from_frame(df, roles)


def test_coverage_has_every_cell_including_empty():
    df = _cohort()
    df = df[~((df["race"] == "C") & (df["sex"] == "M"))]
    r = representativeness(_evset(df), reference=REF, intersections=[["sex", "race"]], min_n=30)
    cov = r.coverage
    assert len(cov) == 6
    assert set(cov["cell"]) == {f"{s} & {c}" for s, c in itertools.product("FM", "ABC")}
    empty = cov.set_index("cell").loc["M & C"]
    assert empty["n"] == 0 and bool(empty["empty"]) and bool(empty["below_min_n"])
    want = df.groupby(["sex", "race"]).size()
    got = cov.set_index(["row_level", "col_level"])["n"]
    for k, v in want.items():
        assert got[k] == v
    assert cov["n"].sum() == len(df)
    assert_allclose(cov.set_index("cell").loc["F & B", "expected_share"], 0.5 * 0.3)
    assert_allclose(cov.set_index("cell").loc["F & B", "n_positive"],
                    df[(df.sex == "F") & (df.race == "B")]["y"].sum())
    assert any("sex x race" in f and "fewer than 30" in f for f in r.finding_texts())


def test_default_intersections_are_all_pairs():
    r = representativeness(_evset(_cohort()), reference=REF)
    assert r.intersections == (("sex", "race"),)
    assert r.attributes == ("sex", "race")


def test_adequacy_uses_positives_and_target_half_width():
    df = _cohort()
    r = representativeness(_evset(df), reference=REF, target_half_width=0.05,
                           assumed_value=0.85)
    need = ci_half_width_sample_size(p=0.85, half_width=0.05, confidence_level=0.95)
    a = r.adequacy.set_index(["grouping", "subgroup"])
    assert (r.adequacy["required"] == need).all()
    pos_c = int(df.loc[df.race == "C", "y"].sum())
    assert a.loc[("race", "C"), "n_positive"] == pos_c
    assert not bool(a.loc[("race", "C"), "reached"])
    assert a.loc[("race", "C"), "shortfall"] == need - pos_c
    assert bool(a.loc[("race", "A"), "reached"])
    assert ("sex x race", "M & C") in a.index
    assert any(f"{need} positives" in f for f in r.finding_texts())


def test_adequacy_without_target_lists_counts_only():
    r = representativeness(_evset(_cohort()), reference=REF)
    assert r.adequacy["required"].isna().all()
    assert r.adequacy["reached"].isna().all()


def test_sites_and_equipment_matrix():
    df = _cohort()
    r = representativeness(_evset(df), reference=REF)
    s = r.sites
    assert set(s["level"]) == {"site", "equipment", "site x equipment"}
    m = r.site_equipment_matrix
    assert_allclose(m.to_numpy(), pd.crosstab(df["site"], df["vendor"]).to_numpy())
    assert m.loc["s3", "Siemens"] == 0
    assert any("3 site(s), 2 equipment type(s)" in f for f in r.finding_texts())
    assert any("s3 / Siemens" in f for f in r.finding_texts())


def test_missingness_by_subgroup_threshold():
    df = _cohort()
    df["age"] = df["age"].where(~((df["site"] == "s2") & (np.arange(len(df)) % 2 == 0)))
    r = representativeness(_evset(df), reference=REF, covariates=["age"],
                           missingness_threshold=0.3)
    m = r.missingness
    row = m[(m.variable == "age") & (m.grouping == "site") & (m.subgroup == "s2")].iloc[0]
    s2 = df[df.site == "s2"]
    assert row["n"] == len(s2) and row["n_missing"] == s2["age"].isna().sum()
    assert bool(row["flag"])
    overall = m[(m.variable == "age") & (m.grouping == "(all)")].iloc[0]
    assert not bool(overall["flag"])
    assert any("age missing for at least 30%" in f and "site = s2" in f for f in r.finding_texts())


def test_compare_cohorts_by_hand():
    a, b = _cohort(500, 1), _cohort(800, 2)
    b = b.assign(age=b["age"] + 3)
    t = compare_cohorts(a, b, ["age", "smoker", "race"]).set_index(["covariate", "level"])
    assert_allclose(t.loc[("age", ""), "smd"], smd(a["age"], b["age"]), rtol=1e-12)
    assert t.loc[("age", ""), "flag"] == "imbalanced"
    assert t.loc[("smoker", "1"), "kind"] == "binary"
    pa, pb = (a.race == "B").mean(), (b.race == "B").mean()
    assert_allclose(t.loc[("race", "B"), "smd"],
                    (pa - pb) / np.sqrt((pa * (1 - pa) + pb * (1 - pb)) / 2), rtol=1e-12)
    with pytest.raises(InvalidParameterError, match="'bmi'.*available"):
        compare_cohorts(a, b, ["bmi"])


def test_smd_against_reference_shares_and_comparison_rows():
    df = _cohort()
    train = _cohort(3000, 5).assign(age=lambda d: d["age"] - 10)
    r = representativeness(_evset(df), reference=REF, covariates=["age"], comparison=train)
    ref_rows = r.smd[r.smd["comparison"] == "reference shares"].set_index(["covariate", "level"])
    p = (df.race == "A").mean()
    assert_allclose(ref_rows.loc[("race", "A"), "smd"],
                    (p - 0.6) / np.sqrt((p * (1 - p) + 0.6 * 0.4) / 2), rtol=1e-12)
    comp = r.smd[r.smd["comparison"] == "comparison rows"].set_index(["covariate", "level"])
    assert_allclose(comp.loc[("age", ""), "smd"], smd(df["age"], train["age"]), rtol=1e-12)
    assert any("age: SMD 1." in f for f in r.finding_texts())


def test_tipton_b_orders_overlap():
    pop = _cohort(4000, 9)
    similar = pop.sample(600, random_state=1)
    shifted = pop[pop["age"] > 68].sample(600, random_state=1, replace=True)
    b_sim = tipton_index(similar, pop, ["age", "sex", "race"])
    b_shift = tipton_index(shifted, pop, ["age", "sex", "race"])
    assert b_sim.b > 0.9 and b_sim.interpretation == "very high"
    assert b_shift.b < b_sim.b - 0.15
    assert 0 <= b_shift.b <= 1


def test_propensity_scores_are_the_penalised_optimum():
    """rwe's Newton fit reaches scikit-learn's L2-penalised optimum: the scores of
    newton-cholesky and of lbfgs (a separately coded optimiser of the same objective), both
    run to tolerance 1e-12."""
    from sklearn.linear_model import LogisticRegression

    from rwe.representativeness._indices import (
        _design,
        generalizability_index,
        propensity_scores,
    )

    pop = _cohort(4000, 9)
    sample = pop[pop["age"] > 60].sample(700, random_state=2)
    cov = ["age", "sex", "race"]
    ps_s, ps_p, info = propensity_scores(sample, pop, cov)
    assert info["converged"] and info["terms"] == ["age", "sex_M", "race_B", "race_C"]
    (xs, xp), _ = _design([sample, pop], cov)
    X, y = np.vstack([xs, xp]), np.r_[np.ones(len(xs)), np.zeros(len(xp))]
    for solver in ("newton-cholesky", "lbfgs"):
        ref = LogisticRegression(C=1.0, solver=solver, tol=1e-12, max_iter=100_000).fit(X, y)
        want = ref.predict_proba(X)[:, 1]
        assert_allclose(np.r_[ps_s, ps_p], want, rtol=1e-7)
        assert_allclose(generalizability_index(ps_s, ps_p),
                        generalizability_index(want[:len(xs)], want[len(xs):]), rtol=1e-7)


def test_propensity_fit_without_categoricals_and_numerics():
    """Only numeric or only categorical covariates: the factored design's edge cases, against
    scikit-learn."""
    from sklearn.linear_model import LogisticRegression

    from rwe.representativeness._indices import _design, propensity_scores

    pop = _cohort(3000, 3)
    sample = pop[pop["race"] != "A"].sample(400, random_state=1, replace=True)
    for cov in (["age"], ["sex", "race"]):
        ps_s, ps_p, info = propensity_scores(sample, pop, cov)
        (xs, xp), _ = _design([sample, pop], cov)
        X, y = np.vstack([xs, xp]), np.r_[np.ones(len(xs)), np.zeros(len(xp))]
        ref = LogisticRegression(C=1.0, solver="newton-cholesky", tol=1e-12).fit(X, y)
        assert_allclose(np.r_[ps_s, ps_p], ref.predict_proba(X)[:, 1], rtol=1e-7)


def test_design_equals_get_dummies_on_text():
    """The design built from category codes equals pandas' stacked get_dummies on the text of
    the values, column names included: categoricals with different categories per frame,
    object text, numbers stored as categories, a kind that differs between frames, booleans,
    int and float columns, missing values."""
    from rwe.representativeness._indices import _design, _design_stacked

    rng = np.random.default_rng(5)
    n = 300

    def frame(cats):
        return pd.DataFrame({
            "race": pd.Categorical(rng.choice(cats, n), categories=cats),
            "site": rng.choice(["b", "A", "a ", "Z", "é"], n).astype(object),
            "band": pd.Categorical(rng.choice([10, 2, 33], n)),
            "mixed": rng.choice(["x", "y"], n).astype(object),
            "flag": rng.random(n) < 0.4,
            "age": rng.integers(40, 90, n),
            "size": rng.normal(8, 2, n),
            "gap": np.where(rng.random(n) < 0.1, None, rng.choice(["u", "v", "w"], n)),
        })

    a, b = frame(["White", "Asian", "Black"]), frame(["Asian", "Other"])
    b["mixed"] = rng.integers(0, 3, n)  # numeric in one frame, text in the other
    b["size"] = b["size"].astype(np.float32)  # numeric kinds that differ
    cov = list(a.columns)
    got, names = _design([a, b], cov)
    want, want_names = _design_stacked([a, b], cov)
    assert names == want_names
    for g, w in zip(got, want, strict=True):
        assert_allclose(g, w, rtol=0, atol=0)


def test_tipton_in_representativeness_needs_rows():
    df = _cohort()
    r = representativeness(_evset(df), reference=REF)
    assert r.tipton is None and "marginal shares only" in r.tipton_reason
    assert any("not computed" in f for f in r.finding_texts())
    pop = _cohort(3000, 4)
    ref_rows = ReferencePopulation.from_frame(pop, ["sex", "race"], name="registry")
    r2 = representativeness(_evset(df), reference=ref_rows, covariates=["age"])
    assert r2.tipton is not None and r2.tipton_reason is None
    assert r2.tipton.covariates == ("age", "sex", "race")
    want = tipton_index(df, pop, ["age", "sex", "race"])
    assert_allclose(r2.tipton.b, want.b, rtol=1e-12)


def test_default_attributes_skip_those_the_reference_lacks_with_a_note():
    df = _cohort().assign(smoking=lambda d: np.where(d["smoker"] == 1, "yes", "no"))
    roles = ColumnRoles(id="scan_id", scores={"1.0": "score"}, label="y",
                        attributes=("sex", "smoking", "race"))
    r = representativeness(EvaluationSet.from_frame(df, roles), reference=REF)
    assert r.attributes == ("sex", "race")
    assert any("smoking" in n and "not in reference" in n for n in r.notes)
    with pytest.raises(InvalidParameterError, match="none of the attributes"):
        representativeness(EvaluationSet.from_frame(df, roles),
                           reference={"bmi": {"high": 0.3, "low": 0.7}})
