"""The (group, cluster) pair index of the clustered intervals and the estimators built on it.

``PairSorter`` replaces a sort of (group, code) keys per grouping and metric by one sort per
code: its pairs and inverse must be those of ``np.unique``, and the clustered variances must
equal the formulas of Cochran (ratio estimator) and Obuchowski (1997) written out cluster by
cluster.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from rwe.stats import cluster_ratio_variance, obuchowski_auc
from rwe.stats._clustered import PairSorter, pair_index


def _rows(rng, n=1500, groups=5, patients=400):
    group = rng.integers(-1, groups, n)
    group[group == 2] = 3  # an empty group in the middle
    pid = rng.integers(0, patients, n)
    y = rng.random(n) < 0.35
    rank = rng.integers(0, 60, n)  # many ties
    return group, pid, y, rank


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pair_index_is_numpys_unique_of_the_pair_keys(seed):
    rng = np.random.default_rng(seed)
    group, pid, _, rank = _rows(rng)
    keep = group >= 0
    for code in (pid, rank):
        n_code = int(code.max()) + 1
        uk, inv = np.unique(group[keep].astype(np.int64) * n_code + code[keep],
                            return_inverse=True)
        pi = pair_index(group, code)
        assert np.array_equal(pi.pair_group, uk // n_code)
        assert np.array_equal(pi.inv, inv.reshape(-1))
        # rows in pair order, a pair's rows in row order
        assert np.array_equal(np.sort(pi.rows), np.flatnonzero(keep))
        key = group[pi.rows].astype(np.int64) * n_code + code[pi.rows]
        assert (np.diff(key) >= 0).all()
        assert (np.diff(pi.rows)[np.diff(key) == 0] > 0).all()
        # one sorter, several groupings: the same as a fresh index each time
        sorter = PairSorter(code)
        other = np.where(group >= 0, group % 2, -1)
        for g in (group, other):
            a, b = sorter.pairs(g), pair_index(g, code)
            assert np.array_equal(a.pair_group, b.pair_group)
            assert np.array_equal(a.inv, b.inv)


def _brute_ratio(num, den, pid, group, n_groups):
    var = np.full(n_groups, np.nan)
    for g in range(n_groups):
        m = (group == g) & den
        ids = np.unique(pid[m])
        if ids.size < 2:
            continue
        x = np.array([num[m & (pid == i)].sum() for i in ids], dtype=float)
        n = np.array([den[m & (pid == i)].sum() for i in ids], dtype=float)
        p = x.sum() / n.sum()
        var[g] = ids.size / (ids.size - 1) * ((x - p * n) ** 2).sum() / n.sum() ** 2
    return var


def _brute_obuchowski(y, rank, pid, group, n_groups):
    var = np.full(n_groups, np.nan)
    auc = np.full(n_groups, np.nan)
    for g in range(n_groups):
        m = group == g
        cases, ctrls = rank[m & y], rank[m & ~y]
        if not (cases.size and ctrls.size):
            continue
        v10 = ((cases[:, None] > ctrls[None, :]) + 0.5 * (cases[:, None] == ctrls[None, :])
               ).mean(1)
        v01 = ((cases[None, :] > ctrls[:, None]) + 0.5 * (cases[None, :] == ctrls[:, None])
               ).mean(1)
        th = v10.mean()
        ids = np.unique(pid[m])
        K, M, N = ids.size, cases.size, ctrls.size
        pc, pn = pid[m & y], pid[m & ~y]
        V10 = np.array([v10[pc == i].sum() for i in ids])
        V01 = np.array([v01[pn == i].sum() for i in ids])
        mi = np.array([(pc == i).sum() for i in ids])
        ni = np.array([(pn == i).sum() for i in ids])
        s10 = K / ((K - 1) * M) * ((V10 - mi * th) ** 2).sum()
        s01 = K / ((K - 1) * N) * ((V01 - ni * th) ** 2).sum()
        s11 = K / (K - 1) * ((V10 - mi * th) * (V01 - ni * th)).sum()
        auc[g], var[g] = th, s10 / M + s01 / N + 2 * s11 / (M * N)
    return auc, var


def test_clustered_variances_with_shared_pairs_equal_the_formulas_cluster_by_cluster():
    rng = np.random.default_rng(5)
    group, pid, y, rank = _rows(rng)
    G = 5
    pred = rng.random(group.size) < 0.6
    pairs = pair_index(group, pid)
    for num, den in ((y & pred, y), (~y & ~pred, ~y), (y & pred, pred)):
        shared = cluster_ratio_variance(num, den, pid, group, G, pairs=pairs)
        own = cluster_ratio_variance(num, den, pid, group, G)
        for a, b in zip(shared, own, strict=True):
            assert np.array_equal(a, b, equal_nan=True)
        assert_allclose(shared[1], _brute_ratio(num, den, pid, group, G), rtol=1e-12)
        assert np.isfinite(shared[1][[0, 1, 3, 4]]).all() and np.isnan(shared[1][2])
    auc, var, *_ = obuchowski_auc(y, rank, pid, group, G, cluster_pairs=pairs,
                                  rank_pairs=pair_index(group, rank))
    own = obuchowski_auc(y, rank, pid, group, G)
    assert np.array_equal(auc, own[0], equal_nan=True)
    assert np.array_equal(var, own[1], equal_nan=True)
    b_auc, b_var = _brute_obuchowski(y, rank, pid, group, G)
    assert_allclose(auc, b_auc, rtol=1e-12)
    assert_allclose(var, b_var, rtol=1e-10)
    assert np.isfinite(var[[0, 1, 3, 4]]).all()
    assert np.isnan(var[2]) and np.isnan(auc[2])  # the empty group
