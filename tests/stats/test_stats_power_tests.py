"""Obuchowski power (oracle O3), McNemar and multiplicity adjustment."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from results import results_stats as R
from scipy.stats import binomtest, chi2
from statsmodels.stats.multitest import multipletests

from rwe.exceptions import InvalidParameterError
from rwe.stats import (
    adjust_pvalues,
    auc_delong,
    auc_power,
    auc_sample_size,
    auc_sig_level,
    mcnemar_test,
)


def test_power_o3():
    assert_allclose(auc_power(n_cases=41, n_controls=72, auc=0.73), R.POWER_41_72_073, atol=5e-8)


def test_power_of_s100b_roc(asah):
    y = (asah["outcome"] == "Poor").to_numpy()
    a = auc_delong(y, asah["s100b"]).auc
    assert_allclose(auc_power(n_cases=41, n_controls=72, auc=a), R.POWER_S100B, atol=5e-8)


def test_sample_size_o3():
    n1, n0 = auc_sample_size(auc=0.731368563685637, power=0.95, kappa=1.7)
    assert_allclose([n1, n0], R.SAMPLE_SIZE, atol=5e-6)
    # round trip: the computed design has exactly the requested power
    assert_allclose(auc_power(n_cases=n1, n_controls=n0, auc=0.731368563685637), 0.95, rtol=1e-12)


def test_sig_level_o3():
    assert_allclose(auc_sig_level(n_cases=41, n_controls=72, auc=0.73, power=0.95), R.SIG_LEVEL,
                    atol=5e-10)


def test_one_sided_power_is_larger():
    two = auc_power(n_cases=30, n_controls=30, auc=0.7)
    one = auc_power(n_cases=30, n_controls=30, auc=0.7, alternative="greater")
    assert one > two
    n1, _ = auc_sample_size(auc=0.7, power=0.8, kappa=1, alternative="greater")
    assert_allclose(auc_power(n_cases=n1, n_controls=n1, auc=0.7, alternative="greater"), 0.8)


def test_power_errors():
    with pytest.raises(InvalidParameterError, match=r"auc must be > 0.5, got 0.5"):
        auc_power(n_cases=10, n_controls=10, auc=0.5)
    with pytest.raises(InvalidParameterError, match=r"alternative='less' is not valid"):
        auc_power(n_cases=10, n_controls=10, auc=0.7, alternative="less")


def test_mcnemar_exact_small():
    a = np.array([1] * 10 + [1] * 6 + [0] * 2 + [0] * 5, bool)
    b = np.array([1] * 10 + [0] * 6 + [1] * 2 + [0] * 5, bool)
    res = mcnemar_test(a, b)
    assert (res.b, res.c, res.n, res.method) == (6, 2, 23, "exact")
    assert_allclose(res.pvalue, binomtest(2, 8, 0.5).pvalue, rtol=1e-12)
    assert res.statistic == 2


def test_mcnemar_chi2_large():
    rng = np.random.default_rng(3)
    a = rng.random(500) < 0.8
    b = np.where(rng.random(500) < 0.15, ~a, a)
    res = mcnemar_test(a, b)
    b_, c_ = int((a & ~b).sum()), int((~a & b).sum())
    assert b_ + c_ >= 25 and res.method == "chi2-corrected"
    stat = (abs(b_ - c_) - 1) ** 2 / (b_ + c_)
    assert_allclose(res.statistic, stat, rtol=1e-12)
    assert_allclose(res.pvalue, chi2.sf(stat, 1), rtol=1e-12)


def test_mcnemar_no_discordant_pairs():
    res = mcnemar_test([1, 0, 1], [1, 0, 1])
    assert res.pvalue == 1.0 and res.b == res.c == 0


@pytest.mark.parametrize("method", ["holm", "fdr_bh", "bonferroni"])
def test_adjust_matches_statsmodels(method):
    p = np.array([0.001, 0.04, 0.03, 0.2, 0.012, 0.5])
    assert_allclose(adjust_pvalues(p, method=method), multipletests(p, method=method)[1],
                    rtol=0, atol=0)


def test_holm_by_hand():
    # Holm: sorted p*(m-i+1), cumulative max, capped at 1
    assert_allclose(adjust_pvalues([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])


def test_nan_passthrough():
    p = np.array([0.01, np.nan, 0.04, 0.03, np.nan])
    out = adjust_pvalues(p)
    assert np.isnan(out[[1, 4]]).all()
    assert_allclose(out[[0, 2, 3]], [0.03, 0.06, 0.06])  # family of 3, not 5
    assert_allclose(adjust_pvalues(p, method="none"), p)
    assert np.isnan(adjust_pvalues([np.nan])).all()
    assert p[1] != p[1] and p[0] == 0.01  # input untouched


def test_adjust_errors():
    with pytest.raises(InvalidParameterError, match=r"method='hochberg' is not valid"):
        adjust_pvalues([0.1], method="hochberg")
    with pytest.raises(InvalidParameterError, match=r"pvalues must lie in \[0, 1\]"):
        adjust_pvalues([0.1, 1.2])
