"""Proportion intervals (oracle O1), Wald/Poisson intervals, likelihood ratios, goal tests."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose
from results import results_stats as R
from scipy.stats.contingency import relative_risk
from statsmodels.stats.rates import confint_poisson

from rwe._results import Interval
from rwe.exceptions import InvalidParameterError
from rwe.stats import (
    PROPORTION_CI_METHODS,
    ci_half_width_sample_size,
    likelihood_ratios,
    performance_goal_test,
    poisson_ratio_ci,
    proportion_ci,
    proportion_goal_sample_size,
    wald_ci,
)


@pytest.mark.parametrize("name", sorted(R.FDA_TABLE2))
def test_fda_table2_wilson_and_clopper_pearson(name):
    (x, n), wilson, cp = R.FDA_TABLE2[name]
    ci = proportion_ci(x, n)
    assert_allclose([ci.low, ci.high], wilson, atol=1e-6)
    assert ci.method == "wilson" and ci.level == 0.95
    ci = proportion_ci(x, n, method="clopper-pearson")
    assert_allclose([ci.low, ci.high], cp, atol=1e-6)
    assert ci.method == "clopper-pearson"


@pytest.mark.parametrize("name", sorted(R.FDA_TABLE4_WILSON))
def test_fda_table4_wilson(name):
    (x, n), wilson = R.FDA_TABLE4_WILSON[name]
    ci = proportion_ci(x, n)
    assert_allclose([ci.low, ci.high], wilson, atol=1e-6)


def test_fda_printed_percentages_round_to_wilson():
    counts = np.array([k[0] for k in R.FDA_PRINTED])
    nobs = np.array([k[1] for k in R.FDA_PRINTED])
    ci = proportion_ci(counts, nobs)
    printed = np.array(list(R.FDA_PRINTED.values()))
    assert_allclose(np.round(ci.low * 100, 1), printed[:, 0])
    assert_allclose(np.round(ci.high * 100, 1), printed[:, 1])


@pytest.mark.parametrize("xn", sorted(R.EDGE_CASES))
@pytest.mark.parametrize("method", PROPORTION_CI_METHODS)
def test_edge_cases(xn, method):
    wilson, cp = R.EDGE_CASES[xn]
    expected = wilson if method == "wilson" else cp
    ci = proportion_ci(*xn, method=method)
    assert_allclose([ci.low, ci.high], expected, atol=1e-6)


@pytest.mark.parametrize("method", PROPORTION_CI_METHODS)
def test_zero_and_full_counts_are_exact(method):
    ci = proportion_ci(np.array([0, 7, 7]), np.array([7, 7, 30]), method=method)
    assert ci.low[0] == 0.0 and ci.high[1] == 1.0
    assert 0 < ci.low[2] < 7 / 30 < ci.high[2] < 1


@pytest.mark.parametrize("method", PROPORTION_CI_METHODS)
def test_nobs_zero_gives_nan_without_warning(method):
    ci = proportion_ci(0, 0, method=method)  # filterwarnings=error would catch a warning
    assert math.isnan(ci.low) and math.isnan(ci.high)
    arr = proportion_ci(np.array([0, 3]), np.array([0, 5]), method=method)
    assert np.isnan(arr.low[0]) and np.isfinite(arr.low[1])


def test_array_input_matches_scalar_calls():
    x, n = np.array([3, 17, 40]), np.array([10, 20, 41])
    arr = proportion_ci(x, n, confidence_level=0.9, method="clopper-pearson")
    for i in range(3):
        one = proportion_ci(int(x[i]), int(n[i]), confidence_level=0.9, method="clopper-pearson")
        assert_allclose([arr.low[i], arr.high[i]], [one.low, one.high], rtol=1e-14)
    assert isinstance(proportion_ci(3, 10).low, float)


def test_proportion_errors():
    with pytest.raises(InvalidParameterError, match=r"method='agresti' is not valid; choose one"):
        proportion_ci(1, 2, method="agresti")
    with pytest.raises(InvalidParameterError, match=r"count must not exceed nobs, got count=5 and nobs=4"):
        proportion_ci(5, 4)
    with pytest.raises(InvalidParameterError, match=r"count must be >= 0, got -1"):
        proportion_ci(-1, 4)
    with pytest.raises(InvalidParameterError, match=r"confidence_level must lie in \(0, 1\), got 95"):
        proportion_ci(1, 4, confidence_level=95)


def test_wald_ci():
    ci = wald_ci(0.5, 0.1, confidence_level=0.9, method="delong")
    assert_allclose([ci.low, ci.high], [0.5 - 1.6448536269514722 * 0.1, 0.5 + 0.16448536269514722])
    assert ci.method == "delong" and ci.level == 0.9
    arr = wald_ci(np.array([0.0, 1.0]), np.array([1.0, 2.0]))
    assert_allclose(arr.high, [1.959963984540054, 1 + 2 * 1.959963984540054])


def test_poisson_ratio_ci_garwood():
    ci = poisson_ratio_ci(10, 5)
    assert_allclose([ci.low * 5, ci.high * 5], R.POISSON_10, atol=1e-6)
    assert ci.method == "exact-poisson"
    # cross-check against statsmodels' exact central interval for a rate
    lo, hi = confint_poisson(23, 17.5, method="exact-c")
    ci = poisson_ratio_ci(23, 17.5)
    assert_allclose([ci.low, ci.high], [lo, hi], rtol=1e-10)
    zero = poisson_ratio_ci(0, 4.0)
    assert zero.low == 0.0
    assert_allclose(zero.high, -math.log(0.025) / 4.0, rtol=1e-10)  # P(X=0)=0.025 at upper
    with pytest.raises(InvalidParameterError, match=r"expected must be > 0, got 0"):
        poisson_ratio_ci(3, 0)


def test_likelihood_ratios_match_katz_log_interval():
    res = likelihood_ratios(44, 7, 1, 168)
    assert_allclose(res.lr_pos, (44 / 51) / (1 / 169))
    assert_allclose(res.lr_neg, (7 / 51) / (168 / 169))
    rr_pos = relative_risk(44, 51, 1, 169).confidence_interval(0.95)
    rr_neg = relative_risk(7, 51, 168, 169).confidence_interval(0.95)
    assert_allclose([res.ci_pos.low, res.ci_pos.high], [rr_pos.low, rr_pos.high], rtol=1e-12)
    assert_allclose([res.ci_neg.low, res.ci_neg.high], [rr_neg.low, rr_neg.high], rtol=1e-12)
    assert res.note == "" and res.ci_pos.method == "log"
    # explicit Simel formula
    se = math.sqrt(1 / 44 - 1 / 51 + 1 / 1 - 1 / 169)
    assert_allclose(res.ci_pos.high, res.lr_pos * math.exp(1.959963984540054 * se), rtol=1e-12)
    assert list(res.to_frame()["quantity"]) == ["lr_pos", "lr_neg"]


def test_likelihood_ratio_zero_cells():
    res = likelihood_ratios(30, 0, 0, 50)  # perfect test
    assert res.lr_pos == math.inf and res.lr_neg == 0.0
    assert math.isnan(res.ci_pos.low) and math.isnan(res.ci_neg.high)
    assert "LR+ infinite" in res.note and "LR- is 0" in res.note
    res = likelihood_ratios(0, 0, 3, 5)
    assert math.isnan(res.lr_pos) and "no diseased subjects" in res.note
    with pytest.raises(InvalidParameterError, match=r"fp must be a non-negative integer, got -2"):
        likelihood_ratios(1, 2, -2, 3)


def test_performance_goal_test():
    ci = proportion_ci(44, 51)
    res = performance_goal_test(44 / 51, ci, 0.70)
    assert res.met and res.bound == ci.low and res.bound_side == "lower"
    assert not performance_goal_test(44 / 51, ci, 0.80).met  # estimate > goal, bound is not
    up = performance_goal_test(0.05, Interval(0.01, 0.09, 0.95, "wilson"), 0.10,
                               higher_is_better=False)
    assert up.met and up.bound_side == "upper" and up.bound == 0.09
    nan = performance_goal_test(math.nan, proportion_ci(0, 0), 0.5)
    assert not nan.met and "undefined" in nan.reason
    assert res.to_dict()["met"] is True


def test_goal_sample_size_normal_formula():
    # METHODS C1: [1.96*sqrt(.8*.2) + 0.8416*sqrt(.9*.1)]^2 / 0.1^2 = 107.4 -> 108
    assert proportion_goal_sample_size(goal=0.8, expected=0.9) == 108


def _exact_power(n, goal, se, a2=0.025):
    x = np.arange(n + 1)
    lower = proportion_ci(x, np.full_like(x, n), method="clopper-pearson",
                          confidence_level=1 - 2 * a2).low
    from scipy.stats import binom
    return binom.pmf(x, n, se)[lower > goal].sum()


@pytest.mark.parametrize(("goal", "se"), [(0.8, 0.9), (0.7, 0.85), (0.9, 0.97)])
def test_goal_sample_size_exact_is_smallest_n(goal, se):
    n = proportion_goal_sample_size(goal=goal, expected=se, method="exact")
    assert _exact_power(n, goal, se) >= 0.8
    assert all(_exact_power(m, goal, se) < 0.8 for m in range(max(1, n - 30), n))


def test_ci_half_width_sample_size():
    n = ci_half_width_sample_size(p=0.5, half_width=0.05)
    assert n == 381

    def hw(m, p):
        ci = proportion_ci(p * m, m)
        return (ci.high - ci.low) / 2

    for p, h in [(0.5, 0.05), (0.85, 0.05), (0.1, 0.03)]:
        n = ci_half_width_sample_size(p=p, half_width=h)
        assert hw(n, p) <= h + 1e-12 and hw(n - 1, p) > h
    with pytest.raises(InvalidParameterError, match=r"half_width must be > 0, got 0"):
        ci_half_width_sample_size(p=0.5, half_width=0)
