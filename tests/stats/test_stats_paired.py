"""Paired proportions: Tango and Newcombe intervals, McNemar variants (ORACLES-2.md)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from results import results_change_control as R
from scipy.stats import binomtest

from rwe.exceptions import InvalidParameterError
from rwe.stats import (
    MCNEMAR_METHODS,
    mcnemar_from_counts,
    mcnemar_test,
    paired_difference,
    paired_difference_ci,
    paired_difference_pvalue,
)


@pytest.mark.parametrize("table, level, method, est, ci, digits", R.PAIRED_CI,
                         ids=[f"{c[2]}-{c[0]}" for c in R.PAIRED_CI])
def test_paired_interval_matches_the_published_digits(table, level, method, est, ci, digits):
    res = paired_difference_ci(*table, confidence_level=level, method=method)
    assert (round(res.low, digits), round(res.high, digits)) == ci
    assert res.level == level and res.method == method
    a, b, c, d = table
    assert round((b - c) / (a + b + c + d), 4) == round(est, 4)


@pytest.mark.parametrize("method", ["asymptotic", "chi2-corrected", "exact", "mid-p"])
def test_mcnemar_variants_match_cavo_2012(method):
    stat, p = R.MCNEMAR_CAVO[method]
    res = mcnemar_from_counts(6, 16, n=161, method=method)
    assert round(res.pvalue, 6) == p
    assert (res.b, res.c, res.n, res.method) == (6, 16, 161, method)
    if stat is not None:
        assert round(res.statistic, 3) == stat


def test_mcnemar_exact_equals_binomial_test_and_auto_rule():
    for b, c in ((6, 2), (0, 7), (12, 12), (30, 41)):
        exact = mcnemar_from_counts(b, c, method="exact")
        assert_allclose(exact.pvalue, binomtest(min(b, c), b + c, 0.5).pvalue, rtol=1e-12)
        auto = mcnemar_from_counts(b, c)
        assert auto.method == ("exact" if b + c < 25 else "chi2-corrected")
        midp = mcnemar_from_counts(b, c, method="mid-p")
        assert midp.pvalue < exact.pvalue or exact.pvalue == midp.pvalue == 1.0
    assert mcnemar_from_counts(0, 0, method="mid-p").pvalue == 1.0
    y1 = np.array([1] * 59 + [1] * 6 + [0] * 16 + [0] * 80, bool)
    y2 = np.array([1] * 59 + [0] * 6 + [1] * 16 + [0] * 80, bool)
    assert round(mcnemar_test(y1, y2, method="mid-p").pvalue, 6) == R.MCNEMAR_CAVO["mid-p"][1]
    assert set(MCNEMAR_METHODS) == {"auto", "asymptotic", "chi2-corrected", "exact", "mid-p"}


@pytest.mark.parametrize("method", ["tango", "newcombe", "wald"])
def test_intervals_are_vectorized_and_mirror_symmetric(method):
    rng = np.random.default_rng(0)
    t = rng.integers(0, 40, size=(4, 200))
    ci = paired_difference_ci(*t, method=method)
    one = [paired_difference_ci(*t[:, i], method=method) for i in range(0, 200, 37)]
    assert_allclose(ci.low[::37], [c.low for c in one], rtol=0, atol=0)
    # swapping the two versions mirrors the interval
    sw = paired_difference_ci(t[0], t[2], t[1], t[3], method=method)
    assert_allclose(sw.low, -ci.high, atol=1e-12)
    assert_allclose(sw.high, -ci.low, atol=1e-12)
    est = (t[1] - t[2]) / t.sum(0)
    assert ((ci.low <= est + 1e-12) & (est <= ci.high + 1e-12)).all()
    assert ((ci.low >= -1) & (ci.high <= 1)).all()


@pytest.mark.parametrize("method", ["tango", "newcombe", "wald"])
def test_pvalue_inverts_the_interval(method):
    """p < alpha exactly when the lower bound of the 1 - 2 alpha interval is above the null."""
    t = (59, 6, 16, 80)
    for level in (0.8, 0.9, 0.95, 0.99):
        lo = paired_difference_ci(*t, confidence_level=level, method=method).low
        p = paired_difference_pvalue(*t, null=lo, method=method)
        assert_allclose(p, (1 - level) / 2, rtol=1e-9)
        hi = paired_difference_ci(*t, confidence_level=level, method=method).high
        assert_allclose(paired_difference_pvalue(*t, null=hi, alternative="less",
                                                 method=method), (1 - level) / 2, rtol=1e-9)
    p_two = paired_difference_pvalue(*t, null=0.0, alternative="two-sided", method="wald")
    z = (6 - 16) / 161 / np.sqrt((22 / 161 - (10 / 161) ** 2) / 161)
    assert_allclose(p_two, 2 * __import__("scipy").stats.norm.sf(abs(z)), rtol=1e-12)


def test_tango_pvalue_is_the_score_test_at_zero_which_is_mcnemar():
    # at null 0 Tango's statistic is (b - c)/sqrt(b + c): the asymptotic McNemar z
    p = paired_difference_pvalue(59, 6, 16, 80, null=0.0, alternative="two-sided")
    assert_allclose(p, R.MCNEMAR_CAVO["asymptotic"][1], atol=5e-7)


def test_edge_cases():
    # no discordant pairs: the estimate is 0 and the interval contains it
    ci = paired_difference_ci(10, 0, 0, 10)
    assert ci.low < 0 < ci.high
    # every pair discordant in favour of version 2: the lower bound reaches -1
    assert paired_difference_ci(0, 0, 12, 0).low == -1.0
    assert paired_difference_ci(0, 12, 0, 0, method="tango").high == 1.0
    # empty table: NaN, no warning
    e = paired_difference_ci(0, 0, 0, 0)
    assert np.isnan(e.low) and np.isnan(e.high)
    assert np.isnan(paired_difference_pvalue(0, 0, 0, 0))


def test_paired_difference_from_outcomes():
    y1 = np.array([1] * 4 + [1] * 9 + [0] * 3 + [0] * 16)
    y2 = np.array([1] * 4 + [0] * 9 + [1] * 3 + [0] * 16)
    res = paired_difference(y1, y2)
    assert (res.a, res.b, res.c, res.d, res.n) == (4, 9, 3, 16, 32)
    assert res.estimate == 0.1875 and res.p1 == 13 / 32 and res.p2 == 7 / 32
    ci = res.confidence_interval()
    assert (round(ci.low, 3), round(ci.high, 3)) == (-0.027, 0.390)
    assert res.to_dict()["ci"]["method"] == "tango"
    assert list(res.to_frame().columns)[:5] == ["a", "b", "c", "d", "n"]


def test_bad_input_names_the_parameter():
    with pytest.raises(InvalidParameterError, match=r"b must be non-negative integer counts"):
        paired_difference_ci(1, -2, 3, 4)
    with pytest.raises(InvalidParameterError, match=r"c must be non-negative integer counts"):
        paired_difference_ci(1, 2, 3.5, 4)
    with pytest.raises(InvalidParameterError, match=r"method='score' is not valid"):
        paired_difference_ci(1, 2, 3, 4, method="score")
    with pytest.raises(InvalidParameterError, match=r"method='exact-p' is not valid"):
        mcnemar_from_counts(1, 2, method="exact-p")
    with pytest.raises(InvalidParameterError, match=r"y_1 and y_2 must have the same length"):
        paired_difference([1, 0], [1])
    with pytest.raises(InvalidParameterError, match=r"null must be < 1.0"):
        paired_difference_pvalue(1, 2, 3, 4, null=1.0)


def test_clustered_difference():
    rng = np.random.default_rng(4)
    y1 = rng.random(300) < 0.7
    y2 = np.where(rng.random(300) < 0.2, ~y1, y1)
    # one pair per patient: the Wald variance times n / (n - 1)
    res = paired_difference(y1, y2, clusters=np.arange(300))
    wald = paired_difference(y1, y2, method="wald")
    b, c, n = wald.b, wald.c, 300
    var = ((b + c) / n - wald.estimate ** 2) / n
    assert_allclose(res.se, np.sqrt(var * n / (n - 1)), rtol=1e-12)
    assert res.method == "clustered-wald" and res.n_clusters == 300
    ci = res.confidence_interval(0.9)
    assert_allclose([ci.low, ci.high], res.estimate + np.array([-1, 1]) * 1.6448536269514722 *
                    res.se, rtol=1e-12)
    assert_allclose(res.pvalue(null=ci.low), 0.05, rtol=1e-9)
    # pairs duplicated within patients: the cluster-robust SE sees one patient, not two pairs
    dup = paired_difference(np.repeat(y1, 2), np.repeat(y2, 2), clusters=np.repeat(np.arange(300), 2))
    assert_allclose(dup.se, res.se, rtol=1e-12)
    assert dup.to_dict()["n_clusters"] == 300
