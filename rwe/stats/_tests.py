"""Paired binary comparison (McNemar) and multiplicity adjustment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from rwe._results import ResultMixin
from rwe._validation import as_binary, check_choice
from rwe.exceptions import InvalidParameterError

__all__ = ["MCNEMAR_EXACT_BELOW", "McNemarResult", "mcnemar_test", "PVALUE_ADJUSTMENTS",
           "adjust_pvalues"]

#: The exact binomial McNemar test is used when the discordant pairs b + c are below this.
MCNEMAR_EXACT_BELOW = 25

#: Multiplicity adjustments accepted by :func:`adjust_pvalues` (statsmodels names).
PVALUE_ADJUSTMENTS = ("holm", "fdr_bh", "bonferroni", "none")


@dataclass(frozen=True)
class McNemarResult(ResultMixin):
    """McNemar test of paired binary outcomes.

    Attributes
    ----------
    statistic : float
        ``min(b, c)`` for the exact test; the continuity-corrected chi-square otherwise.
    pvalue : float
        Two-sided.
    b : int
        Pairs where A is correct and B is not.
    c : int
        Pairs where B is correct and A is not.
    n : int
        Number of pairs.
    method : {"exact", "chi2-corrected"}
    """

    statistic: float
    pvalue: float
    b: int
    c: int
    n: int
    method: str

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"statistic": self.statistic, "pvalue": self.pvalue, "b": self.b,
                              "c": self.c, "n": self.n, "method": self.method}])


def mcnemar_test(y_a_correct: Any, y_b_correct: Any) -> McNemarResult:
    """McNemar test that two paired binary outcomes (e.g. A and B correct) are equally likely.

    Parameters
    ----------
    y_a_correct, y_b_correct : array_like of {0, 1} or bool
        Outcome of A and of B on the same subjects (e.g. correct classification, or the
        positive calls on the diseased for a paired sensitivity comparison).

    Returns
    -------
    McNemarResult

    Notes
    -----
    Delegates to :func:`statsmodels.stats.contingency_tables.mcnemar`. With ``b + c < 25``
    discordant pairs the exact binomial test (two-sided, ``min(1, 2·P[X <= min(b, c)])`` with
    ``X ~ Bin(b + c, 1/2)``) is used; otherwise the chi-square statistic
    ``(|b - c| - 1)^2 / (b + c)`` with Edwards' continuity correction. R equivalents:
    ``binom.test(min(b, c), b + c)`` and ``mcnemar.test(table, correct = TRUE)``.
    No discordant pairs give ``pvalue = 1``.

    References
    ----------
    .. [1] McNemar Q. Note on the sampling error of the difference between correlated
       proportions or percentages. Psychometrika. 1947;12(2):153-157.
    .. [2] Edwards AL. Note on the "correction for continuity" in testing the significance of
       the difference between correlated proportions. Psychometrika. 1948;13(3):185-187.
    """
    a = as_binary(y_a_correct, "y_a_correct")
    b_ = as_binary(y_b_correct, "y_b_correct")
    if a.size != b_.size:
        raise InvalidParameterError(f"y_a_correct and y_b_correct must have the same length, "
                                    f"got {a.size} and {b_.size}")
    b = int((a & ~b_).sum())
    c = int((~a & b_).sum())
    table = np.array([[int((a & b_).sum()), b], [c, int((~a & ~b_).sum())]])
    exact = (b + c) < MCNEMAR_EXACT_BELOW
    res = mcnemar(table, exact=exact, correction=True)
    return McNemarResult(float(res.statistic), float(min(1.0, res.pvalue)), b, c, int(a.size),
                         "exact" if exact else "chi2-corrected")


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
