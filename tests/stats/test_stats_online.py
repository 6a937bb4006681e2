"""Online error control: LORD++, alpha-investing and SAFFRON (ORACLES-2.md)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from results import results_change_control as R

from rwe.exceptions import InvalidParameterError
from rwe.stats import default_gamma, online_test


def test_lord_plus_plus_matches_onlinefdr():
    res = online_test(R.ONLINE_PVALUES, procedure="lord++", alpha=0.05)
    assert [round(v, 10) for v in res.levels] == R.LORD_PP_LEVELS
    assert (np.flatnonzero(res.rejected) + 1).tolist() == R.LORD_PP_REJECTED
    assert res.w0 == 0.005 and res.n_rejected == 3
    assert_allclose(res.spent, sum(R.LORD_PP_LEVELS), rtol=1e-8)


def test_alpha_investing_matches_onlinefdr():
    res = online_test(R.ONLINE_PVALUES, procedure="alpha_investing", alpha=0.05)
    assert [round(v, 9) for v in res.levels] == R.ALPHA_INVESTING_LEVELS
    assert (np.flatnonzero(res.rejected) + 1).tolist() == R.ALPHA_INVESTING_REJECTED


def test_saffron_by_hand():
    """SAFFRON (lambda = 1/2, w0 = alpha/2) on the first tests, from its definition:
    alpha_1 = (1 - lambda) w0 gamma_1; test 1 rejects (a candidate), so alpha_2 = (1 - lambda)
    (w0 + alpha - w0) gamma_1; test 2 is a candidate that does not reject, which costs no
    wealth: alpha_3 = alpha_2; test 3 (p = 0.015) is again a candidate; test 4 (0.082) too."""
    g = default_gamma("saffron", 5)
    res = online_test(R.ONLINE_PVALUES[:4], procedure="saffron", alpha=0.05)
    assert_allclose(res.levels[0], 0.5 * 0.025 * g[0], rtol=1e-12)
    assert_allclose(res.levels[1:], [0.5 * 0.05 * g[0]] * 3, rtol=1e-12)
    # a p value above lambda is not a candidate and the wealth decays: gamma index moves on
    res = online_test([1e-9, 0.9, 0.9], procedure="saffron", alpha=0.05)
    assert_allclose(res.levels[2], 0.5 * 0.05 * g[1], rtol=1e-12)
    assert res.lambda_ == 0.5


def test_default_gammas_sum_to_one():
    """Partial sums plus the integral of the tail: LORD++'s sequence decays so slowly that its
    tail beyond N is 2c e^-U (U^3 + 3U^2 + 6U + 6), U = sqrt(log N); SAFFRON's is
    c N^-0.6 / 0.6."""
    n = 2_000_000
    u = np.sqrt(np.log(n))
    tail = 2 * 0.07720838 * np.exp(-u) * (u ** 3 + 3 * u ** 2 + 6 * u + 6)
    assert_allclose(default_gamma("lord++", n).sum() + tail, 1.0, atol=0.03)
    assert_allclose(default_gamma("saffron", n).sum() + 0.4374901658 * n ** -0.6 / 0.6, 1.0,
                    atol=1e-4)


@pytest.mark.parametrize("procedure", ["lord++", "alpha_investing", "saffron"])
def test_levels_are_predictable_and_vectorized(procedure):
    """A level depends only on earlier p values; R sequences at once equal one by one."""
    rng = np.random.default_rng(3)
    p = np.where(rng.random((50, 12)) < 0.3, rng.random((50, 12)) * 1e-4, rng.random((50, 12)))
    res = online_test(p, procedure=procedure)
    for i in (0, 17, 49):
        one = online_test(p[i], procedure=procedure)
        assert_allclose(one.levels, res.levels[i], rtol=1e-13)
        assert one.next_level == pytest.approx(res.next_level[i], rel=1e-13)
        # changing p_t changes no level before t + 1
        q = p[i].copy()
        q[6] = 1 - q[6]
        assert_allclose(online_test(q, procedure=procedure).levels[:7], one.levels[:7])
    first = online_test([], procedure=procedure)
    assert first.next_level == pytest.approx(res.levels[0, 0])


def test_fdr_is_controlled_under_the_global_null():
    """All nulls true, independent uniform p values: E[#false rejections / max(1, R)] <= alpha
    (FDR = FWER-like here, every rejection false), 20,000 sequences of 20 tests."""
    rng = np.random.default_rng(11)
    p = rng.random((20_000, 20))
    for procedure in ("lord++", "alpha_investing", "saffron"):
        res = online_test(p, procedure=procedure, alpha=0.05)
        fdr = (res.rejected.sum(1) > 0).mean()
        assert fdr <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 20_000), procedure


def test_bad_input():
    with pytest.raises(InvalidParameterError, match=r"procedure='lord' is not valid"):
        online_test([0.1], procedure="lord")
    with pytest.raises(InvalidParameterError, match=r"pvalues must lie in \[0, 1\]"):
        online_test([0.1, 1.2])
    with pytest.raises(InvalidParameterError, match=r"w0 must be <= 0.025"):
        online_test([0.1], procedure="saffron", alpha=0.05, w0=0.04)
    with pytest.raises(InvalidParameterError, match=r"gamma must have at least 3 terms"):
        online_test([0.1, 0.2], gamma=[0.5, 0.2])
    with pytest.raises(InvalidParameterError, match=r"gamma must be non-increasing"):
        online_test([0.1], gamma=[0.1, 0.2])
    # NaN counts as a test that rejects nothing
    assert not online_test([np.nan, 1e-9], procedure="lord++").rejected[0]
