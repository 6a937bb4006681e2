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

import numpy as np

__all__ = ["cluster_ratio_variance", "obuchowski_auc"]


def _group_cluster_keys(group: np.ndarray, cluster: np.ndarray, keep: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(group of each key, key of each kept row) for the (group, cluster) pairs present."""
    g = group[keep].astype(np.int64)
    c = cluster[keep].astype(np.int64)
    n_cl = int(c.max()) + 1 if c.size else 1
    uk, inv = np.unique(g * n_cl + c, return_inverse=True)
    return uk // n_cl, inv.reshape(-1), g


def cluster_ratio_variance(num: np.ndarray, den: np.ndarray, cluster: np.ndarray,
                           group: np.ndarray, n_groups: int
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

    Returns
    -------
    p, variance, n_clusters, design_effect : numpy.ndarray, shape (n_groups,)
        ``design_effect = variance / (p (1 - p) / n)``; NaN where ``p`` is 0 or 1 (no
        information on the clustering) or the group has fewer than 2 clusters.
    """
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    group = np.asarray(group)
    keep = (group >= 0) & (den > 0)
    kg, inv, _ = _group_cluster_keys(group, np.asarray(cluster), keep)
    x = np.bincount(inv, weights=num[keep], minlength=kg.size)
    n = np.bincount(inv, weights=den[keep], minlength=kg.size)
    X = np.bincount(kg, weights=x, minlength=n_groups)
    N = np.bincount(kg, weights=n, minlength=n_groups)
    K = np.bincount(kg, minlength=n_groups).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = X / N
        resid = x - p[kg] * n
        ss = np.bincount(kg, weights=resid * resid, minlength=n_groups)
        var = np.where(K > 1, K / (K - 1) * ss / (N * N), np.nan)
        srs = p * (1 - p) / N
        deff = np.where((srs > 0) & np.isfinite(var), var / srs, np.nan)
    return p, var, K.astype(np.int64), deff


def obuchowski_auc(y: np.ndarray, rank: np.ndarray, cluster: np.ndarray, group: np.ndarray,
                   n_groups: int) -> tuple[np.ndarray, ...]:
    """AUROC and Obuchowski's (1997) clustered variance per group (see the module notes).

    Parameters
    ----------
    y : array_like of bool, shape (rows,)
        Case (True) or control.
    rank : array_like of int, shape (rows,)
        Any integer code that orders the scores (equal scores, equal codes), e.g. the score's
        position among the distinct scores.
    cluster, group, n_groups
        As in :func:`cluster_ratio_variance`.

    Returns
    -------
    auc, variance, n_clusters, term_pos, term_neg, clusters_pos, clusters_neg : numpy.ndarray
        Per group; ``term_pos = S10 / M + S11 / (M N)`` and ``term_neg = S01 / N + S11 /
        (M N)`` split the variance into its case and control parts (the covariance shared
        equally) and ``clusters_pos``/``clusters_neg`` count the clusters with a case / a
        control (the units of each part, for :func:`rwe.stats.auc_interval`).
    """
    y = np.asarray(y, dtype=bool)
    rank = np.asarray(rank).astype(np.int64)
    group = np.asarray(group)
    cluster = np.asarray(cluster)
    keep = group >= 0
    g, r, yy = group[keep].astype(np.int64), rank[keep], y[keep]
    n_r = int(r.max()) + 1 if r.size else 1
    # cases and controls per (group, score) block, in score order within each group
    bk, binv = np.unique(g * n_r + r, return_inverse=True)
    binv = binv.reshape(-1)
    pos_b = np.bincount(binv, weights=yy, minlength=bk.size)
    neg_b = np.bincount(binv, weights=~yy, minlength=bk.size)
    bg = bk // n_r
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
    kg, inv, _ = _group_cluster_keys(group, cluster, keep)
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
