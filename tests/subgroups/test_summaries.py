"""Mergeable score summaries and the summary-level Poisson bootstrap (rwe.stats.summaries)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.metrics import roc_auc_score

from rwe.exceptions import InvalidParameterError
from rwe.stats.summaries import (
    ScoreSummary,
    bin_scores,
    binned_metrics,
    poisson_bootstrap_counts,
    score_bin_edges,
    summarize_scores,
)


def _data(n=5000, seed=0, k=3):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    s = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.2 * y - 0.5)))
    cells = rng.integers(0, k, n)
    return y, s, cells


@pytest.mark.parametrize("threshold", [0.5, 0.37, 0.123456789])
def test_threshold_metrics_are_exact(threshold):
    y, s, cells = _data()
    # put rows exactly on and next to the threshold
    s[:20] = threshold
    s[20:40] = np.nextafter(threshold, 0)
    summ = summarize_scores(y, s, cells, n_bins=64, threshold=threshold)
    conf = summ.confusion()
    pred = s >= threshold
    for c in range(3):
        m = cells == c
        assert conf.loc[c, "tp"] == np.sum(m & y & pred)
        assert conf.loc[c, "fn"] == np.sum(m & y & ~pred)
        assert conf.loc[c, "fp"] == np.sum(m & ~y & pred)
        assert conf.loc[c, "tn"] == np.sum(m & ~y & ~pred)


def test_bins_monotone_and_threshold_is_edge():
    edges = score_bin_edges(10, 0.33)
    assert 0.33 in edges and len(edges) == 12
    s = np.sort(np.random.default_rng(1).random(1000))
    b = bin_scores(s, 10, 0.33)
    assert np.all(np.diff(b) >= 0)
    assert np.all((b >= np.flatnonzero(edges == 0.33)[0]) == (s >= 0.33))
    assert np.all((edges[b] <= s) & (s <= edges[b + 1]))


def test_binned_auroc_within_stated_bound():
    y, s, cells = _data(n=20000)
    for n_bins in (16, 256, 2048):
        summ = summarize_scores(y, s, cells, n_bins=n_bins, threshold=0.5)
        auc = summ.auroc()
        for c in range(3):
            exact = roc_auc_score(y[cells == c], s[cells == c])
            err = abs(auc.loc[c, "auroc"] - exact)
            assert err <= auc.loc[c, "error_bound"] + 1e-12
        if n_bins == 2048:
            assert auc["error_bound"].max() < 1e-3
        if n_bins == 16:  # the bound is not vacuous: coarse bins do move the AUROC
            assert auc["error_bound"].min() > 1e-3


def test_merge_by_addition_equals_whole():
    y, s, cells = _data(n=6000)
    whole = summarize_scores(y, s, cells, n_bins=128, threshold=0.4)
    half = 2500
    a = summarize_scores(y[:half], s[:half], cells[:half], n_bins=128, threshold=0.4)
    b = summarize_scores(y[half:], s[half:], cells[half:], n_bins=128, threshold=0.4)
    # partitions with fewer observed cells still merge when given the same cell labels
    merged = a + b
    assert_array_equal(merged.counts, whole.counts)
    assert_array_equal(a.merge(b).counts, whole.counts)
    assert merged.confusion().equals(whole.confusion())
    assert_allclose(merged.auroc()["auroc"], whole.auroc()["auroc"], rtol=0, atol=0)
    # the JSON form a site would ship round-trips exactly
    back = ScoreSummary.from_dict(whole.to_dict())
    assert_array_equal(back.counts, whole.counts)
    assert_array_equal(back.edges, whole.edges)


def test_merge_rejects_incompatible():
    y, s, cells = _data(n=500)
    a = summarize_scores(y, s, cells, n_bins=128, threshold=0.4)
    b = summarize_scores(y, s, cells, n_bins=64, threshold=0.4)
    with pytest.raises(InvalidParameterError, match="edges"):
        a + b
    c = summarize_scores(y, s, cells, n_bins=128, threshold=0.5)
    with pytest.raises(InvalidParameterError):
        a.merge(c)


def test_aggregate_cells():
    y, s, cells = _data(n=3000)
    summ = summarize_scores(y, s, cells, n_bins=64, threshold=0.5)
    agg = summ.aggregate(np.array([0, 0, 1]), ["a", "b"])
    assert_array_equal(agg.counts[0], summ.counts[0] + summ.counts[1])
    assert_array_equal(agg.n, [np.sum(cells < 2), np.sum(cells == 2)])


def test_summary_bootstrap_equals_row_poisson_bootstrap_in_distribution():
    """Poisson(count) per bin == sum of per-row Poisson(1) weights: compare 2000 replicates."""
    y, s, _ = _data(n=3000, seed=3)
    cells = np.zeros(len(y), dtype=int)
    summ = summarize_scores(y, s, cells, n_bins=256, threshold=0.5)
    B = 2000
    reps = np.concatenate(list(poisson_bootstrap_counts(summ, B, random_state=11)))
    m_sum = binned_metrics(reps, summ.threshold_bin)
    # row-level Poisson bootstrap of the exact statistics
    w = np.random.default_rng(12).poisson(1.0, size=(B, len(y))).astype(float)
    pred = s >= 0.5
    sens_row = (w @ (y & pred)) / (w @ y)
    spec_row = (w @ (~y & ~pred)) / (w @ ~y)
    for summ_rep, row_rep in ((m_sum["sensitivity"][:, 0], sens_row),
                              (m_sum["specificity"][:, 0], spec_row)):
        # the mean and sd of B=2000 replicates have Monte-Carlo errors of sd/sqrt(B) and
        # about sd/sqrt(2B): allow 4 of those
        sd = row_rep.std()
        assert abs(summ_rep.mean() - row_rep.mean()) < 4 * sd * np.sqrt(2 / B)
        assert abs(summ_rep.std() / sd - 1) < 4 * np.sqrt(1 / B)
    # AUROC replicates agree with the exact row-level bootstrap AUROC too (binned at 256)
    order = np.argsort(s)
    ys, ws = y[order], w[:, order]
    wp, wn = ws * ys, ws * ~ys
    auc_row = (wp * (np.cumsum(wn, 1) - wn)).sum(1) / (wp.sum(1) * wn.sum(1))
    sd = auc_row.std()
    assert abs(m_sum["auroc"][:, 0].mean() - auc_row.mean()) < 4 * sd * np.sqrt(2 / B) + 1e-3
    assert abs(m_sum["auroc"][:, 0].std() / sd - 1) < 4 * np.sqrt(1 / B)


def test_cluster_bootstrap_counts_equal_weighted_bincount():
    y, s, cells = _data(n=2000, seed=5)
    clusters = np.random.default_rng(6).integers(0, 700, len(y))
    summ = summarize_scores(y, s, cells, n_bins=32, threshold=0.5)
    nb = summ.n_bins
    codes = (cells * 2 + y) * nb + bin_scores(s, 32, 0.5)
    reps = np.concatenate(list(poisson_bootstrap_counts(
        summ, 7, random_state=3, codes=codes, clusters=clusters, chunk=7)))
    # one Poisson(1) weight per distinct cluster (in sorted order), shared by its rows
    distinct, inv = np.unique(clusters, return_inverse=True)
    w = np.random.default_rng(3).poisson(1.0, size=(7, len(distinct))).astype(float)
    for r in range(7):
        expect = np.bincount(codes, weights=w[r][inv], minlength=summ.counts.size)
        assert_allclose(reps[r].reshape(-1), expect)


def test_bootstrap_deterministic_and_chunk_invariant_shape():
    y, s, cells = _data(n=1000)
    summ = summarize_scores(y, s, cells, n_bins=32, threshold=0.5)
    a = np.concatenate(list(poisson_bootstrap_counts(summ, 50, random_state=1)))
    b = np.concatenate(list(poisson_bootstrap_counts(summ, 50, random_state=1)))
    assert a.shape == (50,) + summ.counts.shape
    assert_array_equal(a, b)
    # zero bins stay zero, and the replicate mean approaches the counts
    assert np.all(a[:, summ.counts == 0] == 0)
    big = np.concatenate(list(poisson_bootstrap_counts(summ, 400, random_state=2, chunk=64)))
    assert_allclose(big.mean(0).sum(), summ.counts.sum(), rtol=0.01)


@pytest.mark.parametrize("metric", ["sensitivity", "specificity", "ppv", "npv", "fpr", "fnr",
                                    "accuracy", "auroc"])
def test_grouped_jackknife_equals_leave_one_row_out(metric):
    from rwe.stats.summaries import binned_jackknife

    rng = np.random.default_rng(0)
    n = 200
    y = rng.random(n) < 0.3
    s = np.clip(rng.random(n) * 0.5 + 0.4 * y, 0, 1)
    s[:10] = 0.5  # ties at the threshold
    summ = summarize_scores(y, s, n_bins=64, threshold=0.5)
    k = summ.threshold_bin
    vals, w = binned_jackknife(summ.counts[0], k, metric)
    assert w.sum() == n
    b = bin_scores(s, 64, 0.5)
    for i in range(n):  # brute force: delete row i and recompute
        c = summ.counts[0].astype(float)
        c[int(y[i]), b[i]] -= 1
        assert_allclose(vals[int(y[i]), b[i]], binned_metrics(c, k)[metric], rtol=1e-12)


def test_weighted_bca_equals_rwe_stats_bca_with_expanded_jackknife():
    stats_mod = pytest.importorskip("rwe.stats")
    if not hasattr(stats_mod, "bootstrap_interval"):
        pytest.skip("rwe.stats.bootstrap_interval not available")
    from rwe.stats.summaries import bca_from_jackknife, binned_jackknife

    y, s, _ = _data(n=1500, seed=9)
    summ = summarize_scores(y, s, n_bins=128, threshold=0.5)
    k = summ.threshold_bin
    reps = binned_metrics(np.concatenate(list(poisson_bootstrap_counts(summ, 999,
                                                                       random_state=2))), k)
    est = binned_metrics(summ.counts, k)
    for metric in ("sensitivity", "ppv", "auroc"):
        vals, w = binned_jackknife(summ.counts[0], k, metric)
        ok = w > 0
        expanded = np.repeat(vals[ok], w[ok].astype(int))
        ref = stats_mod.bootstrap_interval(reps[metric][:, 0], float(est[metric][0]),
                                           method="bca", jackknife=expanded)
        got = bca_from_jackknife(reps[metric][:, 0], float(est[metric][0]), vals, w)
        assert_allclose(got, [ref.low, ref.high], rtol=1e-10)
