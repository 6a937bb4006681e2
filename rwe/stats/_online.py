"""Online error control over a sequence of tests: LORD++, alpha-investing and SAFFRON.

A sequence of hypotheses is tested one at a time (successive model updates, each approved or
not). Each procedure assigns test ``t`` a level ``alpha_t`` that depends only on the outcomes
of tests ``1 .. t-1`` (it is *predictable*), and rejects when ``p_t <= alpha_t``. Rejections
earn back error budget ("alpha wealth"), so a procedure can keep testing indefinitely while
controlling the false discovery rate (the expected share of bad approvals among approvals) at
``alpha`` for independent p values [1]_ [2]_ [3]_.

The functions are vectorized over a leading replicate axis: ``pvalues`` of shape ``(R, T)``
are R independent sequences (simulation); shape ``(T,)`` is one sequence (a ledger).

Definitions (``gamma`` a non-negative, non-increasing sequence summing to at most 1,
``gamma_k = 0`` for ``k <= 0``, ``tau_j`` the time of the j-th rejection):

``"lord++"``
    ``alpha_t = gamma_t w0 + (alpha - w0) gamma_{t - tau_1} + alpha sum_{j >= 2}
    gamma_{t - tau_j}`` (Ramdas et al. 2017, LORD++ [1]_); default ``w0 = alpha / 10`` and
    ``gamma_j = 0.07720838 log(max(j, 2)) / (j exp(sqrt(log j)))``.
``"saffron"``
    ``alpha_t = min(lambda, (1 - lambda) (w0 gamma_{t - C_{0+}} + (alpha - w0) gamma_{t -
    tau_1 - C_{1+}} + alpha sum_{j >= 2} gamma_{t - tau_j - C_{j+}}))`` with candidates
    ``C_i = 1{p_i <= lambda}`` and ``C_{j+} = sum_{i = tau_j + 1}^{t - 1} C_i`` (Ramdas et
    al. 2018 [2]_); default ``lambda = 1/2``, ``w0 = alpha / 2``,
    ``gamma_j = 0.4374901658 / j^1.6``.
``"alpha_investing"``
    SAFFRON with ``lambda_t = alpha_t`` (a candidate is a rejection): the FDR-controlling
    variant of Foster & Stine's alpha-investing given in [2]_ (section 4) and implemented as
    ``Alpha_investing`` in R onlineFDR; the implicit equation ``alpha_t = (1 - alpha_t) S_t``
    gives ``alpha_t = S_t / (1 + S_t)``. Defaults as SAFFRON.

References
----------
.. [1] Ramdas A, Yang F, Wainwright MJ, Jordan MI. Online control of the false discovery
   rate with decaying memory. Advances in Neural Information Processing Systems 30 (2017).
.. [2] Ramdas A, Zrnic T, Wainwright MJ, Jordan MI. SAFFRON: an adaptive algorithm for online
   control of the false discovery rate. Proceedings of the 35th International Conference on
   Machine Learning, PMLR 80:4286-4294 (2018).
.. [3] Foster DP, Stine RA. Alpha-investing: a procedure for sequential control of expected
   false discoveries. J R Stat Soc B. 2008;70(2):429-444.
.. [4] Javanmard A, Montanari A. Online rules for control of false discovery rate and false
   discovery exceedance. Ann Stat. 2018;46(2):526-554.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rwe._results import ResultMixin, json_safe
from rwe._validation import check_choice, check_real
from rwe.exceptions import InvalidParameterError

__all__ = ["ONLINE_PROCEDURES", "OnlineTestResult", "online_test", "default_gamma"]

ONLINE_PROCEDURES = ("lord++", "alpha_investing", "saffron")
_LORD_C = 0.07720838
_SAFFRON_C = 0.4374901658


def default_gamma(procedure: str, n: int) -> np.ndarray:
    """The first ``n`` terms of a procedure's default gamma sequence (see the module notes).

    Both sequences sum to 1 over all ``j >= 1`` (to the printed digits of their constants).
    """
    check_choice(procedure, "procedure", ONLINE_PROCEDURES)
    j = np.arange(1, n + 1, dtype=float)
    if procedure == "lord++":
        return _LORD_C * np.log(np.maximum(j, 2)) / (j * np.exp(np.sqrt(np.log(j))))
    return _SAFFRON_C / j ** 1.6


@dataclass(frozen=True, eq=False)
class OnlineTestResult(ResultMixin):
    """Levels and decisions of an online testing procedure.

    Attributes
    ----------
    procedure : {"lord++", "alpha_investing", "saffron"}
    alpha : float
        Target false discovery rate.
    w0 : float
        Initial wealth.
    lambda_ : float or None
        SAFFRON's candidate threshold (None otherwise).
    pvalues, levels : numpy.ndarray, shape (T,) or (R, T)
        The p values and the level each test was given.
    rejected : numpy.ndarray of bool
        ``pvalues <= levels``.
    next_level : float or numpy.ndarray, shape (R,)
        The level the next test (T + 1) would get: what is left of the error budget.
    """

    procedure: str
    alpha: float
    w0: float
    lambda_: float | None
    pvalues: np.ndarray = field(repr=False)
    levels: np.ndarray = field(repr=False)
    rejected: np.ndarray = field(repr=False)
    next_level: Any = None

    @property
    def spent(self) -> Any:
        """Sum of the levels given so far (float, or one per replicate)."""
        s = self.levels.sum(axis=-1)
        return float(s) if np.ndim(s) == 0 else s

    @property
    def n_rejected(self) -> Any:
        r = self.rejected.sum(axis=-1)
        return int(r) if np.ndim(r) == 0 else r

    def to_frame(self) -> pd.DataFrame:
        if self.levels.ndim != 1:
            raise InvalidParameterError("to_frame needs one sequence (1-d pvalues)")
        return pd.DataFrame({"test": np.arange(1, self.levels.size + 1),
                             "pvalue": self.pvalues, "level": self.levels,
                             "rejected": self.rejected})

    def to_dict(self) -> dict[str, Any]:
        return {"procedure": self.procedure, "alpha": self.alpha, "w0": self.w0,
                "lambda": self.lambda_, "pvalues": json_safe(self.pvalues),
                "levels": json_safe(self.levels), "rejected": json_safe(self.rejected),
                "next_level": json_safe(self.next_level), "spent": json_safe(self.spent)}


def _check_gamma(gamma: Any, n: int, procedure: str) -> np.ndarray:
    if gamma is None:
        return default_gamma(procedure, n)
    try:
        g = np.asarray(gamma, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"gamma must be a sequence of numbers, got {gamma!r}") from None
    if g.size < n:
        raise InvalidParameterError(
            f"gamma must have at least {n} terms (tests + 1), got {g.size}")
    g = g[:n]
    if not (np.isfinite(g).all() and (g >= 0).all()):
        raise InvalidParameterError("gamma must be finite and non-negative")
    if (np.diff(g) > 1e-15).any():
        raise InvalidParameterError("gamma must be non-increasing")
    if g.sum() > 1 + 1e-9:
        raise InvalidParameterError(f"gamma must sum to at most 1, its first {n} terms sum "
                                    f"to {g.sum():.6g}")
    return g


def online_test(pvalues: Any, *, procedure: str = "lord++", alpha: float = 0.05,
                w0: float | None = None, lambda_: float = 0.5,
                gamma: Any = None) -> OnlineTestResult:
    """Test a sequence of p values online: each level depends only on the earlier outcomes.

    Parameters
    ----------
    pvalues : array_like, shape (T,) or (R, T)
        The p values in the order the hypotheses were tested (NaN counts as 1: a test that
        could not be done rejects nothing). ``T = 0`` is allowed (the first level only).
    procedure : {"lord++", "alpha_investing", "saffron"}, default "lord++"
        See the module notes.
    alpha : float, default 0.05
        Target false discovery rate, in (0, 1).
    w0 : float, optional
        Initial wealth; default ``alpha / 10`` (LORD++) or ``alpha / 2`` (SAFFRON,
        alpha-investing). Must be below ``alpha`` (``(1 - lambda) alpha`` for SAFFRON).
    lambda_ : float, default 0.5
        SAFFRON's candidate threshold (ignored by the other procedures).
    gamma : array_like, optional
        A non-increasing, non-negative sequence summing to at most 1 with at least ``T + 1``
        terms; default the procedure's sequence (:func:`default_gamma`).

    Returns
    -------
    OnlineTestResult
        ``levels``, ``rejected`` and ``next_level`` (the level test ``T + 1`` would get).

    Notes
    -----
    The levels reproduce R onlineFDR's ``LORD(version = "++")`` and ``Alpha_investing``
    (non-random) on the fifteen p values of ORACLES-2.md to the printed digits. Cost
    O(R T^2) (T, the number of updates, is small).

    References
    ----------
    See the module docstring (:mod:`rwe.stats._online`).
    """
    check_choice(procedure, "procedure", ONLINE_PROCEDURES)
    alpha = check_real(alpha, "alpha", low=0.0, high=1.0, low_inclusive=False,
                       high_inclusive=False)
    try:
        p = np.array(pvalues, dtype=float, copy=True)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"pvalues must be numbers, got {pvalues!r}") from None
    if p.ndim not in (1, 2):
        raise InvalidParameterError(
            f"pvalues must have shape (T,) or (R, T), got shape {p.shape}")
    finite = ~np.isnan(p)
    if ((p[finite] < 0) | (p[finite] > 1)).any():
        raise InvalidParameterError("pvalues must lie in [0, 1]")
    p[~finite] = 1.0
    single = p.ndim == 1
    p2 = p[None, :] if single else p
    r, t_n = p2.shape
    lam = None
    if procedure == "saffron":
        lam = check_real(lambda_, "lambda_", low=0.0, high=1.0, low_inclusive=False,
                         high_inclusive=False)
    if w0 is None:
        w0 = alpha / 10 if procedure == "lord++" else alpha / 2
    cap = alpha * (1 - lam) if procedure == "saffron" else alpha
    w0 = check_real(w0, "w0", low=0.0, high=cap, low_inclusive=False, high_inclusive=True)
    g = np.concatenate([[0.0], _check_gamma(gamma, t_n + 1, procedure)])  # g[k] = gamma_k
    levels = np.zeros((r, t_n + 1))
    rejected = np.zeros((r, t_n), dtype=bool)
    cand = np.zeros((r, t_n), dtype=bool)
    for t in range(1, t_n + 2):  # test t (1-based); its outcome known for t <= t_n
        past = t - 1
        rej = rejected[:, :past]
        if procedure == "lord++":
            k = t - np.arange(1, past + 1)  # t - tau for each earlier time
            earn = alpha * (rej * g[k]).sum(axis=1) if past else np.zeros(r)
            first = (np.where(rej.any(axis=1), rej.argmax(axis=1) + 1, 0) if past
                     else np.zeros(r, dtype=np.int64))
            first_g = np.where(first > 0, g[np.clip(t - first, 0, None)], 0.0)
            lev = g[t] * w0 + earn - w0 * first_g
        else:
            cc = np.concatenate([np.zeros((r, 1), dtype=np.int64),
                                 np.cumsum(cand[:, :past], axis=1)], axis=1)  # cc[:, i]
            c_now = cc[:, past]  # candidates among tests 1..t-1
            s = w0 * g[np.clip(t - c_now, 0, None)]
            if past:
                taus = np.arange(1, past + 1)
                k = t - taus[None, :] - (c_now[:, None] - cc[:, taus])
                gk = np.where(rej, g[np.clip(k, 0, None)], 0.0)
                s = s + alpha * gk.sum(axis=1)
                first = np.where(rej.any(axis=1), rej.argmax(axis=1), -1)
                has = first >= 0
                s = s - w0 * np.where(has, gk[np.arange(r), np.maximum(first, 0)], 0.0)
            lev = np.minimum(lam, (1 - lam) * s) if procedure == "saffron" else s / (1 + s)
        levels[:, t - 1] = lev
        if t <= t_n:
            rejected[:, t - 1] = p2[:, t - 1] <= lev
            cand[:, t - 1] = (p2[:, t - 1] <= lam) if procedure == "saffron" else \
                rejected[:, t - 1]
    nxt = levels[:, t_n]
    levels = levels[:, :t_n]
    if single:
        return OnlineTestResult(procedure, alpha, float(w0), lam, p, levels[0], rejected[0],
                                float(nxt[0]))
    return OnlineTestResult(procedure, alpha, float(w0), lam, p, levels, rejected, nxt)

