"""Obuchowski's clustered DeLong covariance: equals DeLong without repeats, matches the
patient-cluster bootstrap with them."""

from __future__ import annotations

import numpy as np
from numpy.testing import assert_allclose
from results import results_stats as R

from rwe.stats import auc_noninferiority, bootstrap, delong_covariance, delong_test, weighted_auc


def test_one_row_per_cluster_is_delong_exactly(asah):
    y = (asah["outcome"] == "Poor").to_numpy()
    s = [asah[p].to_numpy(dtype=float) for p in ("wfns", "s100b", "ndka")]
    _, cov = delong_covariance(y, s)
    _, cl = delong_covariance(y, s, clusters=np.arange(y.size)[::-1])
    assert_allclose(cl, cov, rtol=1e-12)
    t = delong_test(y, s[0], s[1], clusters=np.arange(y.size))
    assert_allclose(t.statistic, R.PAIRED[("wfns", "s100b")][0], rtol=1e-12)
    assert t.method == "delong-paired-clustered"


def _clustered(seed: int):
    rng = np.random.default_rng(seed)
    n_pat = 300
    k = rng.integers(2, 7, n_pat)
    cl = np.repeat(np.arange(n_pat), k)
    u = rng.normal(0, 1, n_pat)[cl]
    y = rng.random(cl.size) < 1 / (1 + np.exp(1.0 - u))
    lat = 1.2 * y + 0.3 * u + rng.normal(size=cl.size)
    # version b carries a patient-level error: the paired difference is clustered
    sa = lat + rng.normal(0, 0.2, cl.size)
    sb = lat + rng.normal(0, 1.2, n_pat)[cl] + rng.normal(0, 0.2, cl.size)
    return y, sa, sb, cl


def test_clustered_se_matches_the_cluster_bootstrap():
    y, sa, sb, cl = _clustered(5)
    t = delong_test(y, sa, sb, clusters=cl)
    naive = delong_test(y, sa, sb)

    def diff(y_, a_, b_, weights=None):
        return weighted_auc(y_, a_, weights) - weighted_auc(y_, b_, weights)

    boot = bootstrap(diff, y, sa, sb, n_boot=3000, random_state=7, clusters=cl)
    sd = boot.replicates.std(ddof=1)
    # Monte Carlo error of a bootstrap SD from 3000 replicates is about 1.3 %
    assert abs(t.se / sd - 1) < 0.06
    assert t.se > 1.15 * naive.se  # ignoring the clustering understates the uncertainty
    ni = auc_noninferiority(y, sa, sb, margin=0.05, clusters=cl)
    assert_allclose(ni.se, t.se, rtol=1e-12)
