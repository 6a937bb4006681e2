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

from dataclasses import dataclass

import numpy as np

__all__ = ["cluster_ratio_variance", "obuchowski_auc", "pair_index", "PairIndex"]


@dataclass(frozen=True, eq=False)
class PairIndex:
    """The (group, code) pairs present among the rows of some groups, in ascending
    lexicographic order (group, then code): ``pair_group[k]`` is the group of pair ``k`` and
    ``inv[i]`` the pair of the ``i``-th row with ``group >= 0`` (rows in their order)."""

    pair_group: np.ndarray
    inv: np.ndarray


def pair_index(group: np.ndarray, code: np.ndarray, code_order: np.ndarray | None = None
               ) -> PairIndex:
    """:class:`PairIndex` of the rows' (group, code) pairs, rows with ``group < 0`` left out.

    The same pairs and inverse as ``np.unique(group * n_codes + code, return_inverse=True)``
    over the kept rows, without sorting the keys: with ``code_order`` a stable argsort of
    ``code`` (computed once and reused for every grouping), a stable counting sort of the
    group numbers along it orders the rows by (group, code) in O(rows).

    Parameters
    ----------
    group : array_like of int, shape (rows,)
        Group of each row (-1: in no group).
    code : array_like of int, shape (rows,)
        Non-negative code of each row (a patient, a score rank).
    code_order : array_like of int, optional
        ``np.argsort(code, kind="stable")`` (default: computed here).
    """
    from rwe.stats._chunks import int_dtype, stable_argsort

    group = np.asarray(group)
    code = np.asarray(code)
    if code_order is None:
        code_order = stable_argsort(code.astype(np.int64)) if code.size else \
            np.zeros(0, np.int64)
    n_groups = int(group.max()) + 1 if group.size else 0
    g_o = group[code_order].astype(int_dtype(n_groups), copy=False)
    by = np.argsort(g_o, kind="stable")  # radix sort of small integers: O(rows)
    first = int(np.searchsorted(g_o[by], 0))
    rows = code_order[by[first:]]  # kept rows in (group, code) order
    del g_o, by
    gs, cs = group[rows], code[rows]
    new = np.empty(rows.size, dtype=bool)
    if rows.size:
        new[0] = True
        np.not_equal(gs[1:], gs[:-1], out=new[1:])
        new[1:] |= cs[1:] != cs[:-1]
    pair = np.cumsum(new) - 1
    full = np.empty(group.size, dtype=np.int64)
    full[rows] = pair
    return PairIndex(gs[new].astype(np.int64), full[group >= 0])


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
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    group = np.asarray(group)
    if pairs is None:
        pairs = pair_index(group, np.asarray(cluster))
    kg, inv = pairs.pair_group, pairs.inv
    keep = group >= 0
    x = np.bincount(inv, weights=num[keep], minlength=kg.size)
    n = np.bincount(inv, weights=den[keep], minlength=kg.size)
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
    keep = group >= 0
    yy = y[keep]
    if rank_pairs is None:
        rank_pairs = pair_index(group, np.asarray(rank).astype(np.int64))
    # cases and controls per (group, score) block, in score order within each group
    bg, binv = rank_pairs.pair_group, rank_pairs.inv
    pos_b = np.bincount(binv, weights=yy, minlength=bg.size)
    neg_b = np.bincount(binv, weights=~yy, minlength=bg.size)
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
    v_row = np.where(yy, v10_b[binv], v01_b[binv])
    if cluster_pairs is None:
        cluster_pairs = pair_index(group, cluster)
    kg, inv = cluster_pairs.pair_group, cluster_pairs.inv
    V10 = np.bincount(inv, weights=np.where(yy, v_row, 0.0), minlength=kg.size)
    V01 = np.bincount(inv, weights=np.where(yy, 0.0, v_row), minlength=kg.size)
    m_i = np.bincount(inv, weights=yy, minlength=kg.size)
    n_i = np.bincount(inv, weights=~yy, minlength=kg.size)
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
