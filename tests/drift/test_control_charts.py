"""Control charts: METHODS.md O7 exactly, the ORACLES-2 ARL tables to their printed digits,
limits for a target ARL, the risk-adjusted CUSUM's Markov chain against simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from rwe.drift import (
    cusum_arl,
    cusum_limit,
    cusum_path,
    ewma_arl,
    ewma_limit,
    ewma_path,
    ra_cusum_arl,
    ra_cusum_limit,
    ra_cusum_path,
    ra_cusum_weights,
    risk_atoms,
    simulate_run_lengths,
)
from rwe.exceptions import InvalidParameterError

# ORACLES-2.md: Lucas & Crosier (1982) Table 1, two-sided CUSUM, k = 0.5, h = 4
LUCAS_CROSIER = {0: "168", 0.25: "74.2", 0.5: "26.6", 0.75: "13.3", 1: "8.38", 1.5: "4.75",
                 2: "3.34", 2.5: "2.62", 3: "2.19", 4: "1.71", 5: "1.31"}
# ORACLES-2.md: Lucas & Saccucci (1990) Table 3, two-sided EWMA, lambda = 0.5, L = 3.071
LUCAS_SACCUCCI = {0: "500", 0.25: "255", 0.5: "88.8", 0.75: "35.9", 1: "17.5", 1.5: "6.53",
                  2: "3.63", 2.5: "2.50", 3: "1.93", 3.5: "1.58", 4: "1.34", 5: "1.07"}


def _printed(value: float, printed: str) -> str:
    """``value`` rounded as the table prints ``printed`` (same number of significant digits)."""
    digits = len(printed.replace(".", "").lstrip("0"))
    return f"{float(f'{value:.{digits}g}'):.{max(0, len(printed.split('.')[1]) if '.' in printed else 0)}f}"


def test_o7_tabular_cusum_exactly():
    path = cusum_path([0.1, 0.6, 0.9, 1.2, 0.2], k=0.5, h=100, side="upper")
    assert_allclose(path.upper, [0, 0.1, 0.5, 1.2, 0.9], atol=1e-15)
    assert not path.alarm.any()


def test_o7_risk_adjusted_cusum_exactly():
    p, y = [0.1, 0.2, 0.5, 0.1, 0.3], [1, 0, 1, 1, 0]
    path = ra_cusum_path(p, y, odds_ratio=2, h=100)
    assert np.round(path.upper, 6).tolist() == [0.597837, 0.415515, 0.703198, 1.301035,
                                                1.038670]
    w = ra_cusum_weights(p, y, 2.0)
    s, ref = 0.0, []
    for wt in w:  # the recursion written out
        s = max(0.0, s + wt)
        ref.append(s)
    assert_allclose(path.upper, ref, rtol=1e-14)


@pytest.mark.parametrize("shift", sorted(LUCAS_CROSIER))
def test_lucas_crosier_two_sided_cusum_table(shift):
    assert _printed(cusum_arl(0.5, 4.0, shift=shift), LUCAS_CROSIER[shift]) == \
        LUCAS_CROSIER[shift]


def test_cusum_markov_chain_recomputed_values():
    # ORACLES-2.md: 167.68 (Brook-Evans, 400 states); Brook & Evans one-sided k=0.5, h=3
    assert round(cusum_arl(0.5, 4.0), 2) == 167.68
    # the chain converges to 117.596 (1600 states), which Brook & Evans print truncated
    assert abs(cusum_arl(0.5, 3.0, side="upper") - 117.59) < 0.01
    assert round(cusum_arl(0.5, 3.0, side="upper", shift=1.5), 2) == 3.75


def test_lucas_crosier_fast_initial_response_by_simulation():
    """ORACLES-2.md: with a head start of h / 2 the two-sided ARL0 is 149 (k = 0.5, h = 4).
    The 1/ARL combination of the sides does not hold with a head start (it gives 158), so the
    chart is simulated: 6,000 seeded run lengths, within 4 simulation SEs of 149."""
    rl = simulate_run_lengths("cusum", {"k": 0.5, "h": 4.0, "head_start": 2.0}, n_rep=6000,
                              random_state=20261201, max_len=20000)
    se = rl.std(ddof=1) / math.sqrt(rl.size)
    assert abs(rl.mean() - 149) < 4 * se
    assert abs(cusum_arl(0.5, 4.0, head_start=2.0) - 149) > 5  # the formula would be wrong
    zero = simulate_run_lengths("cusum", {"k": 0.5, "h": 4.0}, n_rep=6000, random_state=2,
                                max_len=20000)
    assert abs(zero.mean() - 168) < 4 * zero.std(ddof=1) / math.sqrt(zero.size)


@pytest.mark.parametrize("shift", sorted(LUCAS_SACCUCCI))
def test_lucas_saccucci_ewma_table(shift):
    assert _printed(ewma_arl(0.5, 3.071, shift=shift), LUCAS_SACCUCCI[shift]) == \
        LUCAS_SACCUCCI[shift]


def test_ewma_frequent_misquotation():
    # ORACLES-2.md: lambda = 0.1 with L = 2.7 gives ARL0 = 368.9, not 500
    assert round(ewma_arl(0.1, 2.7, n_states=401), 1) == 368.9


def test_limits_reach_the_target_arl():
    h = cusum_limit(370, k=0.5)
    assert_allclose(cusum_arl(0.5, h), 370, rtol=1e-6)
    assert cusum_limit(370, k=0.5, side="upper") < h  # one side alone signals less often
    L = ewma_limit(500, lam=0.5)
    assert abs(L - 3.071) < 2e-3  # Lucas & Saccucci's tabled limit
    with pytest.raises(InvalidParameterError, match="arl0 must be > 1"):
        cusum_limit(1)


def test_in_control_simulation_matches_the_target():
    """ORACLES-2 pattern: with target T the simulated mean run length lies near T (here
    within 4 simulation SEs), and a large shift is detected well before T / 2."""
    T = 100
    h = cusum_limit(T, k=0.5)
    rl = simulate_run_lengths("cusum", {"k": 0.5, "h": h}, n_rep=4000, random_state=11,
                              max_len=5000)
    se = rl.std(ddof=1) / math.sqrt(rl.size)
    assert abs(rl.mean() - T) < 4 * se
    fast = simulate_run_lengths("cusum", {"k": 0.5, "h": h}, shift=2.0, n_rep=2000,
                                random_state=12)
    assert fast.mean() < T / 10
    L = ewma_limit(T, lam=0.2)
    rl = simulate_run_lengths("ewma", {"lam": 0.2, "L": L, "asymptotic": True}, n_rep=4000,
                              random_state=13, max_len=5000)
    assert abs(rl.mean() - T) < 4 * rl.std(ddof=1) / math.sqrt(rl.size)


@pytest.mark.parametrize("odds_ratio", [2.0, 0.5])
def test_risk_adjusted_cusum_markov_chain_agrees_with_simulation(odds_ratio):
    rng = np.random.default_rng(0)
    risks = risk_atoms(1 / (1 + np.exp(-rng.normal(-2.5, 1.3, 20000))), 128)
    h = ra_cusum_limit(300, odds_ratio=odds_ratio, risks=risks)
    arl = ra_cusum_arl(h, odds_ratio, risks)
    assert abs(arl - 300) < 15  # the chain's ARL is a step function of h
    rl = simulate_run_lengths("risk_adjusted_cusum", {"odds_ratio": odds_ratio, "h": h},
                              risks=risks, n_rep=3000, random_state=5, max_len=20000)
    se = rl.std(ddof=1) / math.sqrt(rl.size)
    assert abs(rl.mean() - arl) < 4 * se
    arl1 = ra_cusum_arl(h, odds_ratio, risks, true_odds_ratio=odds_ratio)
    rl1 = simulate_run_lengths("risk_adjusted_cusum", {"odds_ratio": odds_ratio, "h": h},
                               risks=risks, true_odds_ratio=odds_ratio, n_rep=3000,
                               random_state=6)
    assert abs(rl1.mean() - arl1) < 4 * rl1.std(ddof=1) / math.sqrt(rl1.size)
    assert arl1 < arl / 2


def test_charts_continue_from_their_state():
    rng = np.random.default_rng(2)
    z = rng.normal(0.3, 1, 60)
    whole = cusum_path(z, k=0.5, h=3.0)
    a = cusum_path(z[:25], k=0.5, h=3.0)
    b = cusum_path(z[25:], k=0.5, h=3.0, state=a.state)
    assert_allclose(np.r_[a.upper, b.upper], whole.upper)
    assert_allclose(np.r_[a.lower, b.lower], whole.lower)
    assert (np.r_[a.alarm, b.alarm] == whole.alarm).all() and whole.alarm.any()
    e = ewma_path(z, lam=0.2, L=2.5)
    e1 = ewma_path(z[:25], lam=0.2, L=2.5)
    e2 = ewma_path(z[25:], lam=0.2, L=2.5, state=e1.state)
    assert_allclose(np.r_[e1.upper, e2.upper], e.upper)
    p = 1 / (1 + np.exp(-rng.normal(-2, 1, 3000)))
    y = rng.random(3000) < p * 1.6
    r = ra_cusum_path(p, y, odds_ratio=2, h=3.0)
    r1 = ra_cusum_path(p[:1000], y[:1000], odds_ratio=2, h=3.0)
    r2 = ra_cusum_path(p[1000:], y[1000:], odds_ratio=2, h=3.0, state=r1.state["value"])
    assert_allclose(np.r_[r1.upper, r2.upper], r.upper, atol=1e-12)
    assert r.alarm.sum() == r1.alarm.sum() + r2.alarm.sum() > 0


def test_restart_after_alarm_and_nan_windows():
    path = cusum_path([3.0, 3.0, np.nan, 3.0], k=0.5, h=4.0, side="upper")
    assert path.alarm.tolist() == [False, True, False, False]
    assert path.upper.tolist() == [2.5, 5.0, 0.0, 2.5]  # restarted after the alarm
    assert path.crossed[1] == 5.0 and path.side_alarm[1] == "upper"
    with pytest.raises(InvalidParameterError, match="side='both'"):
        cusum_path([1.0], h=1, side="both")
    with pytest.raises(InvalidParameterError, match="odds_ratio must differ from 1"):
        ra_cusum_weights([0.1], [1], 1.0)
