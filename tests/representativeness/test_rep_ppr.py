"""Shares, PPR with intervals, goodness of fit and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from rwe.exceptions import InvalidParameterError
from rwe.representativeness import (
    FLAG_ABSENT,
    FLAG_ADEQUATE,
    FLAG_NOT_IN_REFERENCE,
    FLAG_OVER,
    FLAG_UNDER,
    FLAG_ZERO_REFERENCE,
    ReferencePopulation,
    representativeness,
)
from rwe.representativeness._representativeness import MSG_NO_ATTRIBUTE, SHARE_COLUMNS

SEX_HALF = {"sex": {"F": 0.5, "M": 0.5}}


def _asah_like():
    return pd.DataFrame({"sex": ["F"] * 71 + ["M"] * 42})


def test_ppr_oracle_women_over_represented():
    r = representativeness(_asah_like(), reference=SEX_HALF, attributes=["sex"])
    row = r.shares.set_index("category").loc["F"]
    assert_allclose(row["cohort_share"], 0.628319, atol=1e-6)
    assert_allclose(row["ppr"], 1.2566, atol=1e-4)
    assert row["flag"] == FLAG_OVER
    lo, hi = proportion_confint(71, 113, alpha=0.05, method="wilson")
    assert_allclose([row["ci_low"], row["ci_high"]], [lo, hi], rtol=1e-12)
    assert_allclose([row["ppr_low"], row["ppr_high"]], [lo / 0.5, hi / 0.5], rtol=1e-12)
    assert row["ci_method"] == "wilson" and row["ci_level"] == 0.95
    m = r.shares.set_index("category").loc["M"]
    assert m["flag"] == FLAG_UNDER and m["difference"] == pytest.approx(42 / 113 - 0.5)
    assert list(r.shares.columns) == SHARE_COLUMNS
    assert r.to_frame() is r.shares
    assert any("F (sex)" in f and "over-represented" in f and "PPR 1.26" in f for f in r.finding_texts())


def test_ppr_band_is_configurable():
    r = representativeness(_asah_like(), reference=SEX_HALF, attributes=["sex"],
                           ppr_band=(0.7, 1.3))
    assert set(r.shares["flag"]) == {FLAG_ADEQUATE}
    with pytest.raises(InvalidParameterError, match="ppr_band"):
        representativeness(_asah_like(), reference=SEX_HALF, attributes=["sex"],
                           ppr_band=(1.1, 1.3))


def test_chisquare_and_tvd_match_scipy():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"race": rng.choice(list("ABCD"), 500, p=[0.5, 0.2, 0.2, 0.1])})
    ref = {"race": {"A": 0.4, "B": 0.3, "C": 0.2, "D": 0.1}}
    r = representativeness(df, reference=ref, attributes=["race"])
    counts = df["race"].value_counts().reindex(list("ABCD")).to_numpy()
    exp = counts.sum() * np.array([0.4, 0.3, 0.2, 0.1])
    want = stats.chisquare(counts, exp)
    t = r.tests.set_index("attribute").loc["race"]
    assert_allclose([t["chi2"], t["pvalue"]], [want.statistic, want.pvalue], rtol=1e-12)
    assert t["df"] == 3
    tvd = 0.5 * np.abs(counts / counts.sum() - np.array([0.4, 0.3, 0.2, 0.1])).sum()
    assert_allclose(t["tvd"], tvd, rtol=1e-12)
    assert r.tests["attribute"].iloc[-1] == "overall"


def test_unknown_and_absent_categories_are_explicit_rows():
    df = pd.DataFrame({"race": ["A"] * 50 + ["X"] * 5})
    ref = {"race": {"A": 0.7, "B": 0.3}}
    r = representativeness(df, reference=ref, attributes=["race"])
    s = r.shares.set_index("category")
    assert s.loc["X", "flag"] == FLAG_NOT_IN_REFERENCE and s.loc["X", "n"] == 5
    assert np.isnan(s.loc["X", "ppr"]) and "not in reference" in s.loc["X", "note"]
    assert s.loc["B", "flag"] == FLAG_ABSENT and s.loc["B", "n"] == 0
    assert s.loc["B", "ppr"] == 0 and s.loc["B", "ppr_high"] > 0
    # chi-square on the categories of the reference, the 5 unknown rows noted
    t = r.tests.set_index("attribute").loc["race"]
    want = stats.chisquare([50, 0], [50 * 0.7, 50 * 0.3])
    assert_allclose(t["chi2"], want.statistic)
    assert "5 row(s)" in t["note"]
    assert any("X (race)" in f for f in r.finding_texts())
    assert any("B (race): absent from cohort" in f for f in r.finding_texts())


def test_zero_reference_share_gives_undefined_ppr_with_reason():
    df = pd.DataFrame({"g": ["A"] * 9 + ["Z"]})
    r = representativeness(df, reference={"g": {"A": 1.0, "Z": 0.0}}, attributes=["g"])
    z = r.shares.set_index("category").loc["Z"]
    assert z["flag"] == FLAG_ZERO_REFERENCE
    assert np.isnan(z["ppr"]) and np.isnan(z["ppr_high"])
    assert "reference share is 0" in z["note"]
    assert not np.isinf(r.shares[["ppr", "ppr_low", "ppr_high"]].to_numpy(float)).any()


def test_missing_attribute_error_names_attribute_and_columns():
    df = _asah_like()
    with pytest.raises(InvalidParameterError) as exc:
        representativeness(df, reference=SEX_HALF, attributes=["sex", "race"])
    assert str(exc.value) == MSG_NO_ATTRIBUTE.format(attribute="race", available="'sex'")


def test_plain_frame_needs_attributes():
    with pytest.raises(InvalidParameterError, match="attributes must be given"):
        representativeness(_asah_like(), reference=SEX_HALF)


def test_missing_values_excluded_and_reported():
    df = pd.DataFrame({"sex": ["F"] * 60 + ["M"] * 30 + [None] * 10})
    r = representativeness(df, reference=SEX_HALF, attributes=["sex"])
    s = r.shares.set_index("category")
    assert s["n"].sum() == 90 and s.loc["F", "cohort_share"] == pytest.approx(60 / 90)
    assert "10 row(s) with missing sex excluded" in s.loc["F", "note"]
    m = r.missingness.set_index(["variable", "grouping"]).loc[("sex", "(all)")]
    assert m["n_missing"] == 10 and m["fraction"] == pytest.approx(0.1)
    assert not bool(m["flag"])


def test_attribute_missing_from_reference_is_kept_and_flagged():
    df = pd.DataFrame({"sex": ["F", "M"] * 10, "site": ["a"] * 20})
    r = representativeness(df, reference=SEX_HALF, attributes=["sex", "site"])
    site = r.shares[r.shares["attribute"] == "site"]
    assert (site["flag"] == FLAG_NOT_IN_REFERENCE).all()
    assert "attribute not in reference" in site["note"].iloc[0]


def test_reference_by_name_path_and_object(tmp_path):
    df = pd.DataFrame({"sex": ["F"] * 55 + ["M"] * 45})
    p = tmp_path / "catch.csv"
    p.write_text("# name: catchment\nattribute,category,share\nsex,F,0.55\nsex,M,0.45\n")
    by_path = representativeness(df, reference=p, attributes=["sex"])
    by_obj = representativeness(df, reference=ReferencePopulation.from_csv(p), attributes=["sex"])
    assert_allclose(by_path.shares["ppr"], [1.0, 1.0])
    pd.testing.assert_frame_equal(by_path.shares, by_obj.shares)
    census = representativeness(df, reference="us_census_2020", attributes=["sex"])
    assert census.reference.name == "us_census_2020"


def test_invariance_to_row_order_and_scale():
    rng = np.random.default_rng(11)
    df = pd.DataFrame({"g": rng.choice(list("abc"), 300)})
    ref = {"g": {"a": 0.2, "b": 0.3, "c": 0.5}}
    a = representativeness(df, reference=ref, attributes=["g"]).shares
    b = representativeness(df.sample(frac=1, random_state=1), reference=ref,
                           attributes=["g"]).shares
    pd.testing.assert_frame_equal(a, b)
    doubled = representativeness(pd.concat([df, df]), reference=ref, attributes=["g"]).shares
    assert_allclose(doubled["ppr"], a["ppr"])
    assert (doubled["ppr_high"] - doubled["ppr_low"] < a["ppr_high"] - a["ppr_low"]).all()
