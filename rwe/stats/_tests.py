"""Multiplicity adjustment (and, re-exported from :mod:`rwe.stats._paired`, McNemar's test)."""

from __future__ import annotations

from typing import Any

import numpy as np
from statsmodels.stats.multitest import multipletests

from rwe._validation import check_choice
from rwe.exceptions import InvalidParameterError

from ._paired import MCNEMAR_EXACT_BELOW, McNemarResult, mcnemar_test

__all__ = ["MCNEMAR_EXACT_BELOW", "McNemarResult", "mcnemar_test", "PVALUE_ADJUSTMENTS",
           "adjust_pvalues"]

#: Multiplicity adjustments accepted by :func:`adjust_pvalues` (statsmodels names).
PVALUE_ADJUSTMENTS = ("holm", "fdr_bh", "bonferroni", "none")


def adjust_pvalues(pvalues: Any, *, method: str = "holm") -> np.ndarray:
    """Adjust a family of p values for multiplicity.

    Parameters
    ----------
    pvalues : array_like of float
        Values in [0, 1]; NaN entries (tests not performed) pass through untouched and are
        not counted in the family.
    method : {"holm", "fdr_bh", "bonferroni", "none"}, default "holm"
        Holm step-down FWER control [1]_, Benjamini-Hochberg FDR [2]_, Bonferroni, or none.

    Returns
    -------
    numpy.ndarray
        Adjusted p values, same shape as the input.

    Notes
    -----
    Delegates to :func:`statsmodels.stats.multitest.multipletests`, except Holm, which is
    computed here with multipletests' own operations (sort, ``p_(i) (m - i + 1)``, running
    maximum, capped at 1): multipletests runs ``gc.collect()`` on every Holm call, which costs
    tens of milliseconds in a process holding many objects. R: ``p.adjust``.

    References
    ----------
    .. [1] Holm S. A simple sequentially rejective multiple test procedure. Scand J Stat.
       1979;6(2):65-70.
    .. [2] Benjamini Y, Hochberg Y. Controlling the false discovery rate: a practical and
       powerful approach to multiple testing. J R Stat Soc B. 1995;57(1):289-300.
    """
    check_choice(method, "method", PVALUE_ADJUSTMENTS)
    try:
        p = np.array(pvalues, dtype=float, copy=True)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"pvalues must be numbers, got {pvalues!r}") from None
    finite = ~np.isnan(p)
    if ((p[finite] < 0) | (p[finite] > 1)).any():
        raise InvalidParameterError(f"pvalues must lie in [0, 1], got {pvalues!r}")
    if method == "none" or not finite.any():
        return p
    flat = p.reshape(-1)
    fmask = finite.reshape(-1)
    if method == "holm":
        x = flat[fmask]
        order = np.argsort(x)
        adj = np.maximum.accumulate(x[order] * np.arange(x.size, 0, -1))
        adj[adj > 1] = 1
        out = np.empty_like(adj)
        out[order] = adj
        flat[fmask] = out
    else:
        flat[fmask] = multipletests(flat[fmask], method=method)[1]
    return flat.reshape(p.shape)
