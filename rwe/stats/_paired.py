"""Two proportions measured on the same cases: McNemar's tests and intervals for the paired
difference (Tango's score interval, Newcombe's hybrid score interval, Wald).

Notation (ORACLES-2.md, "Paired proportions"): of ``n`` pairs, ``a`` are positive under both
versions, ``b`` under version 1 only, ``c`` under version 2 only and ``d`` under neither; the
difference is ``p1 - p2 = (b - c) / n``. For a paired sensitivity comparison the pairs are the
diseased cases and "positive" means called positive; for specificity the non-diseased cases
and "called negative".

Every function here is vectorized: counts may be arrays (broadcast together), so a simulation
of many replicates or the cells of a subgroup table are judged in one call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from rwe._results import Interval, ResultMixin, json_safe
from rwe._validation import as_binary, check_alternative, check_choice, check_level, check_real
from rwe.exceptions import InvalidParameterError

__all__ = [
    "PAIRED_DIFFERENCE_METHODS", "MCNEMAR_METHODS", "MCNEMAR_EXACT_BELOW",
    "PairedDifferenceResult", "McNemarResult", "paired_difference", "paired_difference_ci",
    "paired_difference_pvalue", "mcnemar_from_counts", "mcnemar_test",
]

#: Interval methods for a paired difference of proportions.
PAIRED_DIFFERENCE_METHODS = ("tango", "newcombe", "wald")
#: McNemar variants: ``"auto"`` is the exact test below :data:`MCNEMAR_EXACT_BELOW`
#: discordant pairs and the continuity-corrected chi-square above.
MCNEMAR_METHODS = ("auto", "asymptotic", "chi2-corrected", "exact", "mid-p")
#: The exact binomial McNemar test is used by ``method="auto"`` when b + c is below this.
MCNEMAR_EXACT_BELOW = 25
#: Bisection steps of the score-interval and p-value inversions (2^-60 of the unit interval).
_BISECT = 60

_MSG_COUNTS = "{name} must be non-negative integer counts, got {value!r}"

_REFS = """
    References
    ----------
    .. [1] Tango T. Equivalence test and confidence interval for the difference in
       proportions for the paired-sample design. Stat Med. 1998;17(8):891-908.
    .. [2] Newcombe RG. Improved confidence intervals for the difference between binomial
       proportions based on paired data. Stat Med. 1998;17(22):2635-2650.
    .. [3] Fagerland MW, Lydersen S, Laake P. Recommended tests and confidence intervals for
       paired binomial proportions. Stat Med. 2014;33(16):2850-2875.
    .. [4] Obuchowski NA. On the comparison of correlated proportions for clustered data.
       Stat Med. 1998;17(13):1495-1507.
"""


def _counts(*values: Any, names: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    out = []
    for v, name in zip(values, names, strict=True):
        try:
            arr = np.asarray(v, dtype=float)
        except (TypeError, ValueError):
            raise InvalidParameterError(_MSG_COUNTS.format(name=name, value=v)) from None
        if not (np.isfinite(arr).all() and (arr >= 0).all() and (arr == np.round(arr)).all()):
            raise InvalidParameterError(_MSG_COUNTS.format(name=name, value=v))
        out.append(arr)
    try:
        return tuple(np.broadcast_arrays(*out))
    except ValueError:
        raise InvalidParameterError(
            f"{', '.join(names)} must have broadcastable shapes, got "
            f"{[np.shape(v) for v in values]}") from None


def _ret(x: np.ndarray) -> Any:
    return float(x) if np.ndim(x) == 0 else x


# ----------------------------------------------------------------------------- Tango
def _tango_stat(b: np.ndarray, c: np.ndarray, n: np.ndarray, d0: np.ndarray) -> np.ndarray:
    """Tango's score statistic of H0: p1 - p2 = d0 (increasing in the data, decreasing in d0).

    ``T = (b - c - n d0) / sqrt(n (2 q + d0 (1 - d0)))`` with ``q`` the maximum-likelihood
    estimate of the cell probability p21 under the constraint, the positive root of
    ``2 n q^2 - W q - c d0 (1 - d0) = 0``, ``W = (b + c) - d0 (2n - b + c)`` [1]_.
    """
    w = (b + c) - d0 * (2 * n - b + c)
    disc = np.maximum(w * w + 8 * n * c * d0 * (1 - d0), 0.0)
    q = (w + np.sqrt(disc)) / (4 * n)
    var = n * (2 * q + d0 * (1 - d0))
    num = b - c - n * d0
    with np.errstate(divide="ignore", invalid="ignore"):
        t = num / np.sqrt(np.maximum(var, 0.0))
    # zero variance at a boundary d0 = -1 or 1: the sign of the numerator decides
    edge = np.where(num > 0, np.inf, np.where(num < 0, -np.inf, 0.0))
    return np.where(var > 0, t, edge)


def _tango_bounds(b, c, n, z):
    est = (b - c) / n
    # lower: the d0 in [-1, est] with T(d0) = z; upper: the d0 in [est, 1] with T(d0) = -z
    lo_a, lo_b = np.full_like(est, -1.0), est.copy()
    hi_a, hi_b = est.copy(), np.full_like(est, 1.0)
    for _ in range(_BISECT):
        m = (lo_a + lo_b) / 2
        above = _tango_stat(b, c, n, m) > z
        lo_a, lo_b = np.where(above, m, lo_a), np.where(above, lo_b, m)
        m2 = (hi_a + hi_b) / 2
        below = _tango_stat(b, c, n, m2) < -z
        hi_a, hi_b = np.where(below, hi_a, m2), np.where(below, m2, hi_b)
    lo = np.where(_tango_stat(b, c, n, np.full_like(est, -1.0)) <= z, -1.0, (lo_a + lo_b) / 2)
    hi = np.where(_tango_stat(b, c, n, np.full_like(est, 1.0)) >= -z, 1.0, (hi_a + hi_b) / 2)
    return lo, hi


# ----------------------------------------------------------------------------- Newcombe
def _wilson(x, n, z):
    p = x / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def _newcombe_phi(a, b, c, d, n):
    """Newcombe's continuity-corrected correlation ``phi*`` [2]_ (as given in [3]_): with
    ``D = ad - bc``, ``(D - n/2)/sqrt(r1 r2 c1 c2)`` when ``D > n/2``, 0 when ``0 <= D <=
    n/2``, ``D/sqrt(...)`` when ``D < 0``; 0 when a margin is empty."""
    den = (a + b) * (c + d) * (a + c) * (b + d)
    dd = a * d - b * c
    num = np.where(dd > n / 2, dd - n / 2, np.where(dd >= 0, 0.0, dd))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.sqrt(np.where(den > 0, den, 1.0)), 0.0)


def _newcombe_bounds(a, b, c, d, n, z):
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = _wilson(a + b, n, z)
    l2, u2 = _wilson(a + c, n, z)
    phi = _newcombe_phi(a, b, c, d, n)
    est = p1 - p2
    lo = est - np.sqrt(np.maximum((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2)
                                  + (u2 - p2) ** 2, 0.0))
    hi = est + np.sqrt(np.maximum((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2)
                                  + (p2 - l2) ** 2, 0.0))
    return np.maximum(lo, -1.0), np.minimum(hi, 1.0)


def _wald_bounds(b, c, n, z):
    est = (b - c) / n
    se = np.sqrt(np.maximum((b + c) / n - est * est, 0.0) / n)
    return np.maximum(est - z * se, -1.0), np.minimum(est + z * se, 1.0)


def _bounds(a, b, c, d, n, z, method):
    if method == "tango":
        return _tango_bounds(b, c, n, z)
    if method == "newcombe":
        return _newcombe_bounds(a, b, c, d, n, z)
    return _wald_bounds(b, c, n, z)


def paired_difference_ci(a: Any, b: Any, c: Any, d: Any, *, confidence_level: float = 0.95,
                         method: str = "tango") -> Interval:
    """Two-sided confidence interval of the paired difference ``p1 - p2 = (b - c) / n``.

    Parameters
    ----------
    a, b, c, d : int or array_like of int
        The paired 2x2 table: both positive, version 1 only, version 2 only, neither
        (broadcast together).
    confidence_level : float, default 0.95
    method : {"tango", "newcombe", "wald"}, default "tango"
        ``"tango"``: the score interval [1]_, the set of ``d0`` whose score statistic
        ``T(d0) = (b - c - n d0) / sqrt(n (2 q(d0) + d0 (1 - d0)))`` (``q`` the constrained
        maximum-likelihood estimate of the version-2-only cell probability) lies within
        ``±z``; found by bisection (60 steps). ``"newcombe"``: the hybrid score
        (square-and-add) interval, method 10 of [2]_: Wilson limits ``(l_k, u_k)`` of each
        marginal proportion combined as ``p1 - p2 - sqrt((p1-l1)^2 - 2 phi* (p1-l1)(u2-p2) +
        (u2-p2)^2)`` (upper limit likewise) with Newcombe's corrected correlation ``phi*``.
        ``"wald"``: ``(p1 - p2) ± z sqrt(((b + c)/n - (p1 - p2)^2)/n)``.

    Returns
    -------
    Interval
        Bounds within [-1, 1]; NaN where ``n = 0``. Floats for scalar input, else arrays.

    Notes
    -----
    Reproduces Tango's Tables V and VII, Newcombe's worked example and the cavo_2012
    example of Fagerland, Lydersen & Laake (ORACLES-2.md). The score and hybrid intervals
    keep their coverage near the nominal level for small and unbalanced tables where the
    Wald interval does not [3]_.
    """
    level = check_level(confidence_level)
    check_choice(method, "method", PAIRED_DIFFERENCE_METHODS)
    a, b, c, d = _counts(a, b, c, d, names=("a", "b", "c", "d"))
    n = a + b + c + d
    empty = n == 0
    ns = np.where(empty, 1.0, n)
    z = float(special.ndtri(0.5 + level / 2))
    lo, hi = _bounds(a, b, c, d, ns, z, method)
    lo, hi = np.where(empty, np.nan, lo), np.where(empty, np.nan, hi)
    return Interval(_ret(lo), _ret(hi), level, method)


def paired_difference_pvalue(a: Any, b: Any, c: Any, d: Any, *, null: float = 0.0,
                             alternative: str = "greater", method: str = "tango") -> Any:
    """p value of the test of ``p1 - p2`` against ``null`` that inverts the chosen interval.

    ``alternative="greater"`` tests H0: ``p1 - p2 <= null`` (a non-inferiority test with
    ``null = -margin``, a superiority test with ``null = 0``). The p value is the smallest
    one-sided level ``alpha`` at which the lower bound of the two-sided ``1 - 2 alpha``
    interval exceeds ``null``, so ``p < alpha`` exactly when that bound is above ``null``.
    For Tango it is the score test itself, ``1 - Phi(T(null))`` [1]_; for Wald the Wald
    test; for Newcombe the level is found by bisection on the interval (60 steps).

    Parameters
    ----------
    a, b, c, d : int or array_like of int
    null : float, default 0
        In (-1, 1).
    alternative : {"greater", "less", "two-sided"}, default "greater"
    method : {"tango", "newcombe", "wald"}

    Returns
    -------
    float or numpy.ndarray
        NaN where ``n = 0``.
    """
    null = check_real(null, "null", low=-1.0, high=1.0, low_inclusive=False,
                      high_inclusive=False)
    alternative = check_alternative(alternative)
    check_choice(method, "method", PAIRED_DIFFERENCE_METHODS)
    a, b, c, d = _counts(a, b, c, d, names=("a", "b", "c", "d"))
    n = a + b + c + d
    empty = n == 0
    ns = np.where(empty, 1.0, n)

    est = (b - c) / ns
    if method == "newcombe":
        # bisection on the one-sided level for each direction; complements across the estimate
        g = _newcombe_level(a, b, c, d, ns, null)
        ll = _newcombe_level(a, c, b, d, ns, -null)
        greater = np.where(est > null, g, np.where(est < null, 1 - ll, 0.5))
        less = np.where(est < null, ll, np.where(est > null, 1 - g, 0.5))
    else:
        if method == "tango":
            t = _tango_stat(b, c, ns, np.full_like(b, null))
        else:
            se = np.sqrt(np.maximum((b + c) / ns - est * est, 0.0) / ns)
            with np.errstate(divide="ignore", invalid="ignore"):
                t = np.where(se > 0, (est - null) / np.where(se > 0, se, 1.0),
                             np.sign(est - null) * np.inf)
        greater, less = special.ndtr(-t), special.ndtr(t)
    if alternative == "greater":
        p = greater
    elif alternative == "less":
        p = less
    else:
        p = np.minimum(1.0, 2 * np.minimum(greater, less))
    return _ret(np.where(empty, np.nan, p))


def _newcombe_level(a, b, c, d, ns, null):
    """Smallest one-sided level at which Newcombe's lower bound exceeds ``null`` (bisection;
    0.5 when even the estimate does not)."""
    lo_p, hi_p = np.zeros_like(b), np.full_like(b, 0.5)
    for _ in range(_BISECT):
        mid = (lo_p + hi_p) / 2
        low, _ = _newcombe_bounds(a, b, c, d, ns, special.ndtri(1 - mid))
        rej = low > null
        lo_p, hi_p = np.where(rej, lo_p, mid), np.where(rej, mid, hi_p)
    return hi_p


@dataclass(frozen=True)
class PairedDifferenceResult(ResultMixin):
    """The difference of two proportions measured on the same cases.

    Attributes
    ----------
    a, b, c, d : int
        The paired table (both, version 1 only, version 2 only, neither).
    n : int
    estimate : float
        ``(b - c) / n = p1 - p2`` (NaN when n = 0).
    p1, p2 : float
        The two proportions.
    method : {"tango", "newcombe", "wald", "clustered-wald"}
        Interval (and inverted test) method.
    se : float or None
        Cluster-robust standard error (``"clustered-wald"`` only).
    n_clusters : int or None
        Patients (clusters) with at least one pair (``"clustered-wald"`` only).
    """

    a: int
    b: int
    c: int
    d: int
    n: int
    estimate: float
    p1: float
    p2: float
    method: str
    se: float | None = None
    n_clusters: int | None = None

    def confidence_interval(self, confidence_level: float = 0.95) -> Interval:
        """Two-sided interval of ``p1 - p2`` (:func:`paired_difference_ci`; with clusters the
        Wald interval on the cluster-robust standard error, clipped to [-1, 1])."""
        if self.method == "clustered-wald":
            level = check_level(confidence_level)
            z = float(special.ndtri(0.5 + level / 2))
            se = math.nan if self.se is None else self.se
            return Interval(max(-1.0, self.estimate - z * se), min(1.0, self.estimate + z * se),
                            level, self.method)
        return paired_difference_ci(self.a, self.b, self.c, self.d,
                                    confidence_level=confidence_level, method=self.method)

    def pvalue(self, null: float = 0.0, alternative: str = "greater") -> float:
        """p value of H0: ``p1 - p2 <= null`` (``"greater"``; :func:`paired_difference_pvalue`)."""
        if self.method == "clustered-wald":
            null = check_real(null, "null", low=-1.0, high=1.0)
            alternative = check_alternative(alternative)
            d = self.estimate - null
            se = math.nan if self.se is None else self.se
            z = d / se if se > 0 else (math.inf if d > 0 else -math.inf if d < 0 else 0.0)
            if alternative == "greater":
                return float(special.ndtr(-z))
            if alternative == "less":
                return float(special.ndtr(z))
            return float(min(1.0, 2 * special.ndtr(-abs(z))))
        return paired_difference_pvalue(self.a, self.b, self.c, self.d, null=null,
                                        alternative=alternative, method=self.method)

    def to_dict(self) -> dict[str, Any]:
        return {**{k: getattr(self, k) for k in ("a", "b", "c", "d", "n", "method",
                                                 "n_clusters")},
                "estimate": json_safe(self.estimate), "p1": json_safe(self.p1),
                "p2": json_safe(self.p2), "se": json_safe(self.se),
                "ci": self.confidence_interval().to_dict()}

    def to_frame(self) -> pd.DataFrame:
        ci = self.confidence_interval()
        return pd.DataFrame([{"a": self.a, "b": self.b, "c": self.c, "d": self.d, "n": self.n,
                              "p1": self.p1, "p2": self.p2, "estimate": self.estimate,
                              "ci_low": ci.low, "ci_high": ci.high, "ci_level": ci.level,
                              "ci_method": ci.method}])


def paired_difference(y_1: Any, y_2: Any, *, method: str = "tango",
                      clusters: Any = None) -> PairedDifferenceResult:
    """Difference of two paired proportions from the two outcomes on each case.

    Parameters
    ----------
    y_1, y_2 : array_like of {0, 1} or bool
        Outcome under version 1 and version 2 on the same cases (e.g. called positive, among
        the diseased cases, for a paired sensitivity comparison).
    method : {"tango", "newcombe", "wald"}, default "tango"
        Ignored with ``clusters``.
    clusters : array_like, shape (n,), optional
        Patient of each pair. With repeated patients the pairs are not independent: the
        result then uses the cluster-robust (ratio-estimator) variance of Obuchowski [4]_,
        ``Var = I/(I-1) sum_i (D_i - d m_i)^2 / n^2`` over the ``I`` patients, ``D_i`` the
        sum of ``y_1 - y_2`` over patient ``i``'s ``m_i`` pairs and ``d`` the estimate, with a
        Wald interval (``method = "clustered-wald"``); with one pair per patient this is the
        Wald variance times ``n/(n-1)``.

    Returns
    -------
    PairedDifferenceResult
        ``confidence_interval(level)`` and ``pvalue(null)`` computed on request.
    """
    check_choice(method, "method", PAIRED_DIFFERENCE_METHODS)
    x1 = as_binary(y_1, "y_1")
    x2 = as_binary(y_2, "y_2")
    if x1.size != x2.size:
        raise InvalidParameterError(f"y_1 and y_2 must have the same length, got {x1.size} "
                                    f"and {x2.size}")
    a, b = int((x1 & x2).sum()), int((x1 & ~x2).sum())
    c, d = int((~x1 & x2).sum()), int((~x1 & ~x2).sum())
    n = x1.size
    est = (b - c) / n if n else math.nan
    p1 = (a + b) / n if n else math.nan
    p2 = (a + c) / n if n else math.nan
    if clusters is None:
        return PairedDifferenceResult(a, b, c, d, n, est, p1, p2, method)
    cl = np.asarray(clusters)
    if cl.ndim != 1 or cl.size != n:
        raise InvalidParameterError(
            f"clusters is required to have shape ({n},) but has shape {cl.shape}")
    _, inv = np.unique(cl, return_inverse=True)
    inv = inv.reshape(-1)
    k = int(inv.max()) + 1 if n else 0
    dsum = np.bincount(inv, weights=x1.astype(float) - x2.astype(float), minlength=k)
    m = np.bincount(inv, minlength=k).astype(float)
    se = math.nan
    if k > 1:
        se = math.sqrt(k / (k - 1) * float(((dsum - est * m) ** 2).sum())) / n
    return PairedDifferenceResult(a, b, c, d, n, est, p1, p2, "clustered-wald", se, k)


for _f in (paired_difference_ci, paired_difference_pvalue, paired_difference):
    _f.__doc__ = (_f.__doc__ or "") + _REFS
del _f


# ----------------------------------------------------------------------------- McNemar
@dataclass(frozen=True)
class McNemarResult(ResultMixin):
    """McNemar test of paired binary outcomes.

    Attributes
    ----------
    statistic : float
        ``min(b, c)`` for the exact and mid-P tests; ``z = (b - c)/sqrt(b + c)`` for the
        asymptotic test; the continuity-corrected chi-square for ``"chi2-corrected"``.
    pvalue : float
        Two-sided.
    b : int
        Pairs where A is positive (correct) and B is not.
    c : int
        Pairs where B is positive (correct) and A is not.
    n : int
        Number of pairs (``b + c`` when built from the discordant counts alone).
    method : {"asymptotic", "chi2-corrected", "exact", "mid-p"}
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


def _mcnemar(b: int, c: int, method: str) -> tuple[float, float, str]:
    m = b + c
    if method == "auto":
        method = "exact" if m < MCNEMAR_EXACT_BELOW else "chi2-corrected"
    if m == 0:
        return (0.0 if method in ("exact", "mid-p") else math.nan), 1.0, method
    k = min(b, c)
    if method == "asymptotic":
        z = (b - c) / math.sqrt(m)
        return z, float(2 * special.ndtr(-abs(z))), method
    if method == "chi2-corrected":
        x2 = (abs(b - c) - 1) ** 2 / m
        return x2, float(stats.chi2.sf(x2, 1)), method
    exact = min(1.0, 2 * float(stats.binom.cdf(k, m, 0.5)))
    if method == "exact":
        return float(k), exact, method
    return float(k), min(1.0, exact - float(stats.binom.pmf(k, m, 0.5))), method


def mcnemar_from_counts(b: int, c: int, *, n: int | None = None,
                        method: str = "auto") -> McNemarResult:
    """McNemar's test from the discordant counts of a paired 2x2 table.

    Parameters
    ----------
    b, c : int
        Pairs positive under A only and under B only.
    n : int, optional
        Number of pairs, echoed in the result (default ``b + c``).
    method : {"auto", "asymptotic", "chi2-corrected", "exact", "mid-p"}, default "auto"
        ``"asymptotic"``: ``z = (b - c)/sqrt(b + c)``, ``p = 2 Phi(-|z|)`` [1]_;
        ``"chi2-corrected"``: ``(|b - c| - 1)^2/(b + c)`` on 1 df, Edwards' continuity
        correction [2]_ (R ``mcnemar.test(correct = TRUE)``); ``"exact"``: the conditional
        binomial test, ``min(1, 2 P[X <= min(b, c)])`` with ``X ~ Bin(b + c, 1/2)`` (R
        ``binom.test``); ``"mid-p"``: the exact p value minus ``P[X = min(b, c)]``, which
        Fagerland, Lydersen & Laake recommend [3]_. ``"auto"``: exact below 25 discordant
        pairs, else chi2-corrected.

    Returns
    -------
    McNemarResult
        No discordant pairs give ``pvalue = 1``.

    References
    ----------
    .. [1] McNemar Q. Note on the sampling error of the difference between correlated
       proportions or percentages. Psychometrika. 1947;12(2):153-157.
    .. [2] Edwards AL. Note on the "correction for continuity" in testing the significance of
       the difference between correlated proportions. Psychometrika. 1948;13(3):185-187.
    .. [3] Fagerland MW, Lydersen S, Laake P. The McNemar test for binary matched-pairs data:
       mid-p and asymptotic are better than exact conditional. BMC Med Res Methodol.
       2013;13:91.
    """
    check_choice(method, "method", MCNEMAR_METHODS)
    for name, v in (("b", b), ("c", c)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise InvalidParameterError(_MSG_COUNTS.format(name=name, value=v))
    b, c = int(b), int(c)
    stat, p, used = _mcnemar(b, c, method)
    return McNemarResult(float(stat), float(p), b, c, int(b + c if n is None else n), used)


def mcnemar_test(y_a_correct: Any, y_b_correct: Any, *, method: str = "auto") -> McNemarResult:
    """McNemar test that two paired binary outcomes (e.g. A and B correct) are equally likely.

    Parameters
    ----------
    y_a_correct, y_b_correct : array_like of {0, 1} or bool
        Outcome of A and of B on the same subjects (e.g. correct classification, or the
        positive calls on the diseased for a paired sensitivity comparison).
    method : {"auto", "asymptotic", "chi2-corrected", "exact", "mid-p"}, default "auto"
        See :func:`mcnemar_from_counts`; ``"auto"`` uses the exact binomial test below 25
        discordant pairs and the continuity-corrected chi-square above.

    Returns
    -------
    McNemarResult

    Notes
    -----
    R equivalents: ``binom.test(min(b, c), b + c)`` and ``mcnemar.test(table, correct =
    TRUE)``. References: see :func:`mcnemar_from_counts`.
    """
    check_choice(method, "method", MCNEMAR_METHODS)
    a = as_binary(y_a_correct, "y_a_correct")
    b_ = as_binary(y_b_correct, "y_b_correct")
    if a.size != b_.size:
        raise InvalidParameterError(f"y_a_correct and y_b_correct must have the same length, "
                                    f"got {a.size} and {b_.size}")
    return mcnemar_from_counts(int((a & ~b_).sum()), int((~a & b_).sum()), n=int(a.size),
                               method=method)
