"""Poisson (cluster) bootstrap engine, percentile and BCa intervals."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats

from rwe.exceptions import InvalidParameterError, RWEWarning
from rwe.stats import (
    NAN_REPLICATES_SUFFIX,
    bootstrap,
    bootstrap_interval,
    poisson_weights,
    weighted_auc,
)


def wmean(x, weights=None):
    if weights is None:
        return float(np.mean(x))
    return (weights @ x) / weights.sum(axis=1)


def test_poisson_weights_shape_moments_and_determinism():
    w = poisson_weights(50, 4000, 11)
    assert w.shape == (4000, 50) and w.dtype == np.float32
    assert abs(w.mean() - 1) < 0.01 and abs(w.var() - 1) < 0.02
    assert_array_equal(w, poisson_weights(50, 4000, np.random.default_rng(11)))
    assert not np.array_equal(w, poisson_weights(50, 4000, 12))


def test_cluster_weights_equal_within_cluster():
    clusters = np.array([5, 5, 9, 2, 9, 9, 2, 7])
    w = poisson_weights(8, 300, 0, clusters=clusters)
    for c in np.unique(clusters):
        rows = w[:, clusters == c]
        assert (rows == rows[:, :1]).all()
    assert not (w[:, 0] == w[:, 2]).all()  # different clusters vary independently
    with pytest.raises(InvalidParameterError, match=r"clusters must be integer codes"):
        poisson_weights(3, 2, 0, clusters=np.array(["a", "b", "a"]))
    with pytest.raises(InvalidParameterError, match=r"clusters is required to have shape \(3,\)"):
        poisson_weights(3, 2, 0, clusters=np.array([1, 2]))


def test_bootstrap_deterministic_and_chunk_invariant():
    x = np.random.default_rng(0).exponential(size=200)
    r1 = bootstrap(wmean, x, n_boot=500, random_state=42)
    r2 = bootstrap(wmean, x, n_boot=500, random_state=42, chunk_size=37)
    # same random stream whatever the chunking (BLAS may round the last bit differently)
    assert_allclose(r1.replicates, r2.replicates, rtol=1e-13)
    assert_allclose([r1.ci.low, r1.ci.high], [r2.ci.low, r2.ci.high], rtol=1e-13)
    assert r1.estimate == pytest.approx(x.mean())
    r1b = bootstrap(wmean, x, n_boot=500, random_state=42)
    assert_array_equal(r1.replicates, r1b.replicates)
    w = poisson_weights(200, 500, 42)
    rng = np.random.default_rng(42)
    chunks = [rng.poisson(1.0, size=(b, 200)) for b in (37, 463)]
    assert_array_equal(w, np.vstack(chunks))
    r3 = bootstrap(wmean, x, n_boot=500, random_state=43)
    assert not np.array_equal(r1.replicates, r3.replicates)
    assert r1.ci.method == "percentile" and "replicates" not in r1.to_dict()


def test_bootstrap_se_of_mean_matches_theory():
    x = np.random.default_rng(1).normal(size=400)
    res = bootstrap(wmean, x, n_boot=4000, random_state=2)
    se_theory = x.std(ddof=0) / np.sqrt(x.size)
    assert abs(res.replicates.std() / se_theory - 1) < 0.06


def test_percentile_interval_is_quantiles():
    reps = np.arange(1001, dtype=float)
    ci = bootstrap_interval(reps, 500.0, confidence_level=0.9)
    assert_allclose([ci.low, ci.high], [50.0, 950.0])


def test_bca_close_to_percentile_for_symmetric_statistic():
    x = np.random.default_rng(5).normal(size=300)
    p = bootstrap(wmean, x, n_boot=4000, random_state=9)
    b = bootstrap(wmean, x, n_boot=4000, random_state=9, method="bca")
    width = p.ci.high - p.ci.low
    assert abs(b.ci.low - p.ci.low) < 0.05 * width and abs(b.ci.high - p.ci.high) < 0.05 * width
    assert b.ci.method == "bca"


def test_bca_matches_scipy_on_skewed_mean():
    x = np.random.default_rng(8).exponential(size=60)
    ours = bootstrap(wmean, x, n_boot=20000, random_state=1, method="bca").ci
    ref = stats.bootstrap((x,), np.mean, n_resamples=20000, method="BCa",
                          random_state=np.random.default_rng(2)).confidence_interval
    width = ref.high - ref.low
    assert abs(ours.low - ref.low) < 0.06 * width and abs(ours.high - ref.high) < 0.06 * width
    # BCa shifts the interval to the right of the percentile one for a right-skewed mean
    perc = bootstrap(wmean, x, n_boot=20000, random_state=1).ci
    assert ours.high > perc.high


def test_bca_jackknife_uses_leave_one_out():
    x = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    reps = np.random.default_rng(0).normal(6.2, 2.0, size=2000)
    jk = np.array([(x.sum() - xi) / 4 for xi in x])
    d = jk.mean() - jk
    a = (d ** 3).sum() / (6 * ((d ** 2).sum()) ** 1.5)
    z0 = stats.norm.ppf(np.mean(reps < 6.2))
    zq = stats.norm.ppf([0.025, 0.975])
    q = stats.norm.cdf(z0 + (z0 + zq) / (1 - a * (z0 + zq)))
    ci = bootstrap_interval(reps, 6.2, method="bca", jackknife=jk)
    assert_allclose([ci.low, ci.high], np.quantile(reps, q), rtol=1e-12)


def test_cluster_bootstrap_wider_than_row_bootstrap_for_clustered_data():
    rng = np.random.default_rng(4)
    n_pat, per = 150, 4
    pat = np.repeat(np.arange(n_pat), per)
    x = np.repeat(rng.normal(size=n_pat), per) + 0.1 * rng.normal(size=n_pat * per)
    row = bootstrap(wmean, x, n_boot=2000, random_state=0)
    clu = bootstrap(wmean, x, n_boot=2000, random_state=0, clusters=pat)
    ratio = (clu.ci.high - clu.ci.low) / (row.ci.high - row.ci.low)
    assert 1.6 < ratio < 2.4  # design effect ~ sqrt(4) for near-perfect within-patient correlation
    bca = bootstrap(wmean, x, n_boot=500, random_state=0, clusters=pat, method="bca")
    assert bca.ci.low < x.mean() < bca.ci.high


def test_grouped_jackknife_for_many_units():
    x = np.random.default_rng(2).exponential(size=5000)
    res = bootstrap(wmean, x, n_boot=1000, random_state=3, method="bca")
    perc = bootstrap(wmean, x, n_boot=1000, random_state=3)
    assert res.ci.low < res.estimate < res.ci.high
    assert abs(res.ci.low - perc.ci.low) < 0.2 * (perc.ci.high - perc.ci.low)


def test_bootstrap_of_auc_with_weighted_statistic():
    rng = np.random.default_rng(6)
    y = rng.random(300) < 0.4
    s = rng.normal(y * 1.2, 1)

    def stat(y, s, weights=None):
        return weighted_auc(y, s, weights)

    res = bootstrap(stat, y, s, n_boot=1000, random_state=0)
    from sklearn.metrics import roc_auc_score
    assert res.estimate == pytest.approx(roc_auc_score(y, s), rel=1e-14)
    assert res.ci.low < res.estimate < res.ci.high


def test_nan_replicates_dropped_and_flagged():
    reps = np.r_[np.linspace(0, 1, 90), [np.nan] * 10]
    with pytest.warns(RWEWarning, match=r"10 of 100 bootstrap replicates are undefined"):
        ci = bootstrap_interval(reps, 0.5)
    assert ci.method == "percentile" + NAN_REPLICATES_SUFFIX
    assert_allclose([ci.low, ci.high], np.quantile(np.linspace(0, 1, 90), [0.025, 0.975]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ci = bootstrap_interval(np.r_[np.linspace(0, 1, 99), np.nan], 0.5)  # 1% NaN: silent
    assert ci.method == "percentile"


def test_nan_in_bootstrap_statistic_warns_once():
    y = np.array([1, 0, 0, 0, 0, 0], bool)  # one case: many resamples lose it
    s = np.arange(6.0)

    def stat(y, s, weights=None):
        return weighted_auc(y, s, weights)

    with pytest.warns(RWEWarning, match=r"replicates are undefined") as rec:
        res = bootstrap(stat, y, s, n_boot=200, random_state=1)
    assert len(rec) == 1 and res.ci.method.endswith(NAN_REPLICATES_SUFFIX)


def test_bootstrap_errors():
    x = np.arange(5.0)
    with pytest.raises(InvalidParameterError, match=r"method='bc' is not valid"):
        bootstrap(wmean, x, method="bc")
    with pytest.raises(InvalidParameterError, match=r"n_boot must be an integer not less than 1, but got 0"):
        bootstrap(wmean, x, n_boot=0)
    with pytest.raises(InvalidParameterError, match=r"method='bca' needs jackknife values"):
        bootstrap_interval([1.0, 2.0], 1.5, method="bca")
    with pytest.raises(InvalidParameterError, match=r"must return one value per row of W"):
        bootstrap(lambda x, weights=None: 1.0, x, n_boot=3)
    with pytest.raises(InvalidParameterError, match=r"arrays must share their first dimension"):
        bootstrap(wmean, x, np.arange(4.0))


class _Recorder:
    """Weighted mean that records every weight matrix it is given."""

    def __init__(self):
        self.calls = []

    def __call__(self, x, weights=None):
        if weights is not None:
            self.calls.append(np.array(weights, copy=True))
        return wmean(x, weights)


def test_bca_jackknife_rows_are_leave_one_out_and_leave_one_cluster_out():
    x = np.arange(6.0) ** 2
    rec = _Recorder()
    bootstrap(rec, x, n_boot=10, random_state=0, method="bca")
    jk = np.vstack(rec.calls)[10:]
    assert_array_equal(jk, 1 - np.eye(6))
    rec = _Recorder()
    clusters = np.array([3, 3, 1, 1, 1, 8])
    bootstrap(rec, x, n_boot=10, random_state=0, method="bca", clusters=clusters)
    jk = np.vstack(rec.calls)[10:]
    expected = np.array([(clusters != c).astype(float) for c in (1, 3, 8)])
    assert_array_equal(jk, expected)


def test_grouped_jackknife_has_2000_groups():
    x = np.random.default_rng(0).normal(size=4500)
    rec = _Recorder()
    bootstrap(rec, x, n_boot=5, random_state=0, method="bca", chunk_size=700)
    jk = np.vstack(rec.calls)[5:]
    assert jk.shape == (2000, 4500)
    deleted = (jk == 0).sum(axis=1)
    assert set(np.unique(deleted)) <= {2, 3} and deleted.sum() == 4500  # each row deleted once
    assert ((jk == 0).sum(axis=0) == 1).all()
