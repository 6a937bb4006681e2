"""Variances of proportions and of the AUROC when rows are clustered (several scans per patient).

Both estimators are computed for many groups at once (subgroup levels), vectorized over rows
with :func:`numpy.bincount` on (group, cluster) keys; a cluster (patient) may contribute rows
to several groups, and only its rows in a group count there.

Proportions (sensitivity, specificity, ...) ``p = sum_i x_i / sum_i n_i`` over the clusters
``i`` of a group, with ``x_i`` numerator and ``n_i`` denominator rows of cluster ``i``: the
ratio-estimator (linearization) variance [1]_ [2]_

.. math:: \\hat V(p) = \\frac{K}{K - 1} \\frac{\\sum_i (x_i - p n_i)^2}{(\\sum_i n_i)^2}

over the ``K`` clusters with ``n_i > 0``, and the design effect ``deff = V / (p (1 - p) / n)``.

AUROC: Obuchowski's nonparametric estimator for clustered ROC data [3]_: with ``V10`` the
placement of each case among the group's controls and ``V01`` of each control among its
cases (DeLong's placement values, ties 1/2), summed per cluster (``V10_i``, ``V01_i``, with
``m_i`` cases and ``n_i`` controls),

.. math:: S_{10} = \\frac{K}{(K-1) M} \\sum_i (V10_i - m_i \\hat\\theta)^2,\\quad
          S_{01} = \\frac{K}{(K-1) N} \\sum_i (V01_i - n_i \\hat\\theta)^2,\\quad
          S_{11} = \\frac{K}{K-1} \\sum_i (V10_i - m_i \\hat\\theta)(V01_i - n_i \\hat\\theta)

and ``Var = S10 / M + S01 / N + 2 S11 / (M N)`` for ``M`` cases, ``N`` controls and ``K``
clusters. With one row per cluster it is DeLong's variance up to the factor ``K / (K - 1)``
in place of DeLong's ``1 / (M - 1)``-type denominators.

References
----------
.. [1] Cochran WG. Sampling Techniques, 3rd ed. Wiley; 1977 (section 6.11: variance of a
   ratio estimate).
.. [2] Rao JNK, Scott AJ. A simple method for the analysis of clustered binary data.
   Biometrics 1992;48(2):577-585.
.. [3] Obuchowski NA. Nonparametric analysis of clustered ROC curve data. Biometrics
   1997;53(2):567-578.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

__all__ = ["cluster_ratio_variance", "obuchowski_auc", "pair_index", "PairIndex",
           "PairSorter"]


class PairIndex:
    """The (group, code) pairs present among the rows of some groups, in ascending
    lexicographic order (group, then code).

    Attributes
    ----------
    pair_group : numpy.ndarray
        Group of each pair.
    rows : numpy.ndarray
        The rows with ``group >= 0`` sorted by (group, code), rows of one pair in their order.
    pair : numpy.ndarray
        Pair of each of ``rows`` (non-decreasing).
    inv : numpy.ndarray
        Pair of each row with ``group >= 0``, rows in their order (made on first use).
    """

    def __init__(self, pair_group: np.ndarray, rows: np.ndarray, pair: np.ndarray,
                 kept: np.ndarray):
        self.pair_group, self.rows, self.pair = pair_group, rows, pair
        self._kept = kept

    @cached_property
    def inv(self) -> np.ndarray:
        full = np.empty(self._kept.size, dtype=np.int64)
        full[self.rows] = self.pair
        return full[self._kept]

    def sums(self, w: np.ndarray) -> np.ndarray:
        """Sum of the per-row weights ``w`` (all rows) over the rows of each pair, added in
        row order (as ``np.bincount(inv, weights=w[group >= 0])``)."""
        return np.bincount(self.pair, weights=w[self.rows], minlength=self.pair_group.size)


class PairSorter:
    """Rows sorted once by a code (patient, score rank); the (group, code) pairs of any
    grouping of the rows then come from a stable counting sort of its group numbers in O(rows)
    (:meth:`pairs`), instead of a sort of (group, code) keys per grouping.

    Parameters
    ----------
    code : array_like of int, shape (rows,)
        Non-negative code of each row.
    """

    def __init__(self, code: np.ndarray):
        from rwe.stats._chunks import stable_argsort

        code = np.asarray(code).astype(np.int64, copy=False)
        if not code.size:
            self.order = np.zeros(0, np.int64)
        elif code.min() < 0:  # the packed sort needs non-negative keys
            self.order = np.argsort(code, kind="stable")
        else:
            self.order = stable_argsort(code)
        self.sorted_code = code[self.order]

    def pairs(self, group: np.ndarray) -> PairIndex:
        """:class:`PairIndex` of the rows' (group, code) pairs, rows with ``group < 0`` left
        out: the same pairs, in the same order, as ``np.unique(group * n_codes + code,
        return_inverse=True)`` over the kept rows."""
        from rwe.stats._chunks import int_dtype

        group = np.asarray(group)
        n_groups = int(group.max()) + 1 if group.size else 0
        g_o = group[self.order].astype(int_dtype(n_groups), copy=False)
        by = np.argsort(g_o, kind="stable")  # radix sort of small integers: O(rows)
        kept_o = g_o >= 0
        per = np.bincount(g_o[kept_o], minlength=n_groups)
        by = by[by.size - int(per.sum()):]  # rows of no group (-1) sort first
        del g_o, kept_o
        rows = self.order[by]  # kept rows in (group, code) order
        cs = self.sorted_code[by]
        del by
        new = np.empty(rows.size, dtype=bool)
        if rows.size:
            new[0] = True
            np.not_equal(cs[1:], cs[:-1], out=new[1:])
            first = np.cumsum(per)[:-1]  # a group's first row starts a pair
            new[first[first < rows.size]] = True
        pair = np.cumsum(new) - 1
        gs = np.repeat(np.arange(n_groups, dtype=np.int64), per)
        return PairIndex(gs[new], rows, pair, group >= 0)


def pair_index(group: np.ndarray, code: np.ndarray) -> PairIndex:
    """:class:`PairIndex` of the rows' (group, code) pairs (``PairSorter(code).pairs(group)``;
    make one :class:`PairSorter` to reuse the sort by code across groupings)."""
    return PairSorter(code).pairs(group)


def cluster_ratio_variance(num: np.ndarray, den: np.ndarray, cluster: np.ndarray,
                           group: np.ndarray, n_groups: int, *, pairs: PairIndex | None = None
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ratio-estimator variance of ``sum(num) / sum(den)`` per group with clustered rows.

    Parameters
    ----------
    num, den : array_like of bool or {0, 1}, shape (rows,)
        Whether a row counts in the numerator and in the denominator (num implies den).
    cluster : array_like of int, shape (rows,)
        Cluster (patient) code of each row, 0..K-1.
    group : array_like of int, shape (rows,)
        Group of each row (-1: in no group).
    n_groups : int
    pairs : PairIndex, optional
        ``pair_index(group, cluster)``, when several proportions share the groups (default:
        computed here). Clusters with no denominator row in a group add exact zeros to its
        sums and are not counted in ``n_clusters``, so the result does not depend on it.

    Returns
    -------
    p, variance, n_clusters, design_effect : numpy.ndarray, shape (n_groups,)
        ``design_effect = variance / (p (1 - p) / n)``; NaN where ``p`` is 0 or 1 (no
        information on the clustering) or the group has fewer than 2 clusters.
    """
    num, den = np.asarray(num), np.asarray(den)  # gathered by pair before any conversion
    group = np.asarray(group)
    if pairs is None:
        pairs = pair_index(group, np.asarray(cluster))
    kg = pairs.pair_group
    x, n = pairs.sums(num), pairs.sums(den)
    X = np.bincount(kg, weights=x, minlength=n_groups)
    N = np.bincount(kg, weights=n, minlength=n_groups)
    K = np.bincount(kg, weights=n > 0, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = X / N
        resid = x - p[kg] * n
        ss = np.bincount(kg, weights=resid * resid, minlength=n_groups)
        var = np.where(K > 1, K / (K - 1) * ss / (N * N), np.nan)
        srs = p * (1 - p) / N
        deff = np.where((srs > 0) & np.isfinite(var), var / srs, np.nan)
    return p, var, K.astype(np.int64), deff


def obuchowski_auc(y: np.ndarray, rank: np.ndarray, cluster: np.ndarray, group: np.ndarray,
                   n_groups: int, *, cluster_pairs: PairIndex | None = None,
                   rank_pairs: PairIndex | None = None) -> tuple[np.ndarray, ...]:
    """AUROC and Obuchowski's (1997) clustered variance per group (see the module notes).

    Parameters
    ----------
    y : array_like of bool, shape (rows,)
        Case (True) or control.
    rank : array_like of int, shape (rows,)
        Any non-negative integer code that orders the scores (equal scores, equal codes),
        e.g. the score's position among the distinct scores.
    cluster, group, n_groups
        As in :func:`cluster_ratio_variance`.
    cluster_pairs, rank_pairs : PairIndex, optional
        ``pair_index(group, cluster)`` and ``pair_index(group, rank)`` (default: computed
        here).

    Returns
    -------
    auc, variance, n_clusters, term_pos, term_neg, clusters_pos, clusters_neg : numpy.ndarray
        Per group; ``term_pos = S10 / M + S11 / (M N)`` and ``term_neg = S01 / N + S11 /
        (M N)`` split the variance into its case and control parts (the covariance shared
        equally) and ``clusters_pos``/``clusters_neg`` count the clusters with a case / a
        control (the units of each part, for :func:`rwe.stats.auc_interval`).
    """
    y = np.asarray(y, dtype=bool)
    group = np.asarray(group)
    cluster = np.asarray(cluster)
    if rank_pairs is None:
        rank_pairs = pair_index(group, np.asarray(rank).astype(np.int64))
    # cases and controls per (group, score) block, in score order within each group; rows
    # taken in block order (rank_pairs.rows), so every sum below runs over sorted indices
    bg, bid = rank_pairs.pair_group, rank_pairs.pair
    yb = y[rank_pairs.rows]
    pos_b = np.bincount(bid, weights=yb, minlength=bg.size)
    neg_b = np.bincount(bid, weights=~yb, minlength=bg.size)
    P = np.bincount(bg, weights=pos_b, minlength=n_groups)
    N = np.bincount(bg, weights=neg_b, minlength=n_groups)
    starts = np.searchsorted(bg, np.arange(n_groups))
    cneg = np.cumsum(neg_b)
    cpos = np.cumsum(pos_b)
    neg_before = np.concatenate([[0.0], cneg])[starts][bg]
    pos_before = np.concatenate([[0.0], cpos])[starts][bg]
    with np.errstate(invalid="ignore", divide="ignore"):
        v10_b = (cneg - neg_before - 0.5 * neg_b) / N[bg]            # a case in this block
        v01_b = (P[bg] - (cpos - pos_before) + 0.5 * pos_b) / P[bg]  # a control in this block
        auc = np.bincount(bg, weights=pos_b * v10_b, minlength=n_groups) / P
    v_row = np.empty(y.size)  # each row's placement value (rows of no group: unused)
    v_row[rank_pairs.rows] = np.where(yb, v10_b[bid], v01_b[bid])
    del yb
    if cluster_pairs is None:
        cluster_pairs = pair_index(group, cluster)
    # summed per (group, cluster) in row order: the rows in cluster_pairs order
    kg, cid = cluster_pairs.pair_group, cluster_pairs.pair
    yy = y[cluster_pairs.rows]
    vv = v_row[cluster_pairs.rows]
    del v_row
    V10 = np.bincount(cid, weights=np.where(yy, vv, 0.0), minlength=kg.size)
    V01 = np.bincount(cid, weights=np.where(yy, 0.0, vv), minlength=kg.size)
    m_i = np.bincount(cid, weights=yy, minlength=kg.size)
    n_i = np.bincount(cid, weights=~yy, minlength=kg.size)
    K = np.bincount(kg, minlength=n_groups).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = auc[kg]
        d10, d01 = V10 - m_i * a, V01 - n_i * a
        f = K / (K - 1)
        s10 = f / P * np.bincount(kg, weights=d10 * d10, minlength=n_groups)
        s01 = f / N * np.bincount(kg, weights=d01 * d01, minlength=n_groups)
        s11 = f * np.bincount(kg, weights=d10 * d01, minlength=n_groups)
        var = s10 / P + s01 / N + 2 * s11 / (P * N)
        cov = s11 / (P * N)
        tpos, tneg = s10 / P + cov, s01 / N + cov
    ok = (P > 0) & (N > 0) & (K > 1)
    kpos = np.bincount(kg, weights=m_i > 0, minlength=n_groups).astype(np.int64)
    kneg = np.bincount(kg, weights=n_i > 0, minlength=n_groups).astype(np.int64)
    nan = np.nan
    return (np.where((P > 0) & (N > 0), auc, nan), np.where(ok, var, nan), K.astype(np.int64),
            np.where(ok, tpos, nan), np.where(ok, tneg, nan), kpos, kneg)
