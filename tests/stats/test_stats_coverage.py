"""Coverage of the interval methods by seeded, vectorized simulation.

Each check must land in 93.5-96.5 % for a nominal 95 % interval; the number of simulated
datasets makes that band at least +-2.7 Monte-Carlo standard errors wide.
"""

from __future__ import annotations

import numpy as np
from numpy.testing import assert_allclose
from scipy import stats

from rwe.stats import auc_delong, bootstrap_interval, poisson_weights, proportion_ci, weighted_auc
from rwe.stats._delong import _placements

BAND = (0.935, 0.965)


def test_wilson_coverage_for_sensitivity():
    se, n_pos, n_sim = 0.85, 120, 20000  # MC SE 0.15 %
    x = np.random.default_rng(20240601).binomial(n_pos, se, size=n_sim)
    ci = proportion_ci(x, np.full(n_sim, n_pos))
    cover = np.mean((ci.low <= se) & (se <= ci.high))
    assert BAND[0] < cover < BAND[1], cover
    # exact coverage from the binomial pmf agrees with the simulation
    k = np.arange(n_pos + 1)
    ck = proportion_ci(k, np.full_like(k, n_pos))
    exact = stats.binom.pmf(k, n_pos, se)[(ck.low <= se) & (se <= ck.high)].sum()
    assert abs(exact - cover) < 4 * np.sqrt(exact * (1 - exact) / n_sim)


def test_delong_ci_coverage_binormal():
    rng = np.random.default_rng(2026)
    auc_true, m, n, n_sim = 0.8, 150, 200, 10000  # MC SE 0.22 %
    d = np.sqrt(2) * stats.norm.ppf(auc_true)  # AUC = Phi(d / sqrt 2)
    y = np.r_[np.ones(m, bool), np.zeros(n, bool)]
    scores = rng.normal(size=(n_sim, m + n))
    scores[:, :m] += d
    aucs, v10, v01 = _placements(y, scores)  # batched midrank DeLong, one row per dataset
    var = v10.var(axis=1, ddof=1) / m + v01.var(axis=1, ddof=1) / n
    one = auc_delong(y, scores[0])
    assert_allclose([aucs[0], var[0]], [one.auc, one.variance], rtol=1e-12)
    z = stats.norm.ppf(0.975)
    lo = np.clip(aucs - z * np.sqrt(var), 0, 1)
    hi = np.clip(aucs + z * np.sqrt(var), 0, 1)
    cover = np.mean((lo <= auc_true) & (auc_true <= hi))
    assert BAND[0] < cover < BAND[1], cover


def _batched_weighted_auc(y_sorted, w_sorted):
    """Weighted AUC for many datasets and replicates at once (continuous scores, no ties).

    y_sorted: (D, n) labels in ascending score order; w_sorted: (D, B, n) weights, same order.
    """
    pos = w_sorted * y_sorted[:, None, :]
    neg = w_sorted - pos
    neg_below = np.cumsum(neg, axis=2) - neg
    num = (pos * neg_below).sum(axis=2, dtype=np.float64)
    return num / (pos.sum(axis=2, dtype=np.float64) * neg.sum(axis=2, dtype=np.float64))


def test_poisson_bootstrap_percentile_coverage_for_auc():
    rng = np.random.default_rng(11)
    auc_true, n, n_case, n_sim, n_boot, chunk = 0.8, 300, 120, 1500, 400, 50  # MC SE 0.56 %
    d = np.sqrt(2) * stats.norm.ppf(auc_true)
    y = np.r_[np.ones(n_case, bool), np.zeros(n - n_case, bool)]
    scores = rng.normal(size=(n_sim, n)) + d * y
    order = np.argsort(scores, axis=1)
    ys = y[order].astype(np.float32)
    covered = 0
    for start in range(0, n_sim, chunk):
        sl = slice(start, start + chunk)
        w = poisson_weights(n, chunk * n_boot, rng).reshape(chunk, n_boot, n)
        w = np.take_along_axis(w, order[sl, None, :], axis=2)  # weight of row order[i]
        reps = _batched_weighted_auc(ys[sl], w)
        if start == 0:  # the batched statistic agrees with rwe.stats.weighted_auc
            w0 = np.empty_like(w[0])
            w0[:, order[0]] = w[0]
            assert_allclose(reps[0], weighted_auc(y, scores[0], w0), rtol=1e-5)
        for j in range(chunk):
            est = weighted_auc(y, scores[start + j])
            ci = bootstrap_interval(reps[j], est)
            covered += ci.low <= auc_true <= ci.high
    cover = covered / n_sim
    assert BAND[0] < cover < BAND[1], cover
