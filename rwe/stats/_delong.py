"""AUROC with DeLong variance (fast midrank algorithm), paired/unpaired tests and NI.

DeLong, DeLong & Clarke-Pearson (1988) variance computed with the O(N log N) midrank
algorithm of Sun & Xu (2014); reproduces R pROC (``var(roc, method="delong")``,
``cov``, ``ci.auc``, ``roc.test``) to machine precision (METHODS.md C2, oracle O2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from rwe._results import Interval, ResultMixin, json_safe
from rwe._validation import as_1d, as_binary, check_alternative, check_level, check_real
from rwe.exceptions import InvalidParameterError

from ._chunks import add_dot, add_sums, chunks, n_ids, per_row, segment_ids
from ._intervals import _z

__all__ = [
    "AUROC_NEEDS_BOTH_CLASSES",
    "DeLongResult",
    "DeLongTestResult",
    "NonInferiorityResult",
    "auc_delong",
    "delong_covariance",
    "delong_test",
    "delong_unpaired_test",
    "auc_noninferiority",
    "weighted_auc",
    "delong_segments",
]

AUROC_NEEDS_BOTH_CLASSES = (
    "AUROC needs both classes in {name}: got {n_pos} positives and {n_neg} negatives"
)

_REFS = """
    References
    ----------
    .. [1] DeLong ER, DeLong DM, Clarke-Pearson DL. Comparing the areas under two or more
       correlated receiver operating characteristic curves: a nonparametric approach.
       Biometrics. 1988;44(3):837-845.
    .. [2] Sun X, Xu W. Fast implementation of DeLong's algorithm for comparing the areas under
       correlated receiver operating characteristic curves. IEEE Signal Process Lett.
       2014;21(11):1389-1393.
    .. [3] Robin X, Turck N, Hainard A, et al. pROC: an open-source package for R and S+ to
       analyze and compare ROC curves. BMC Bioinformatics. 2011;12:77.
    .. [4] Obuchowski NA. Nonparametric analysis of clustered ROC curve data. Biometrics.
       1997;53(2):567-578.
"""


# ----------------------------------------------------------------------------- core


def _check_labels(y_true: Any, name: str = "y_true") -> np.ndarray:
    y = as_binary(y_true, name)
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        raise InvalidParameterError(
            AUROC_NEEDS_BOTH_CLASSES.format(name=name, n_pos=n_pos, n_neg=n_neg))
    return y


def _check_scores(scores: Any, n: int, name: str) -> np.ndarray:
    s = as_1d(scores, name, dtype=float)
    if s.size != n:
        raise InvalidParameterError(
            f"{name} must have the same length as y_true ({n}), got {s.size}")
    if not np.isfinite(s).all():
        raise InvalidParameterError(f"{name} must be finite; non-finite values at positions "
                                    f"{np.flatnonzero(~np.isfinite(s))[:5].tolist()}")
    return s


def _placements(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sun & Xu midrank placements for every row of ``scores`` (k, N) sharing labels ``y``.

    Returns ``aucs`` (k,), ``v10`` (k, m) over cases and ``v01`` (k, n) over controls.
    """
    pos = scores[:, y]
    neg = scores[:, ~y]
    m, n = pos.shape[1], neg.shape[1]
    # a case's midrank among all rows minus its midrank among the cases is the number of
    # controls below it plus half those tied with it (and the same for a control): two
    # sorts and two binary searches per row instead of three rankings. The counts are
    # half-integers, exact in floating point, so v10, v01 and the AUC are the same numbers.
    v10 = np.empty((scores.shape[0], m))
    v01 = np.empty((scores.shape[0], n))
    below = np.empty(scores.shape[0])
    for i in range(scores.shape[0]):
        sp, sn = np.sort(pos[i]), np.sort(neg[i])
        c10 = (np.searchsorted(sn, pos[i], "left") + np.searchsorted(sn, pos[i], "right")) / 2.0
        c01 = (np.searchsorted(sp, neg[i], "left") + np.searchsorted(sp, neg[i], "right")) / 2.0
        v10[i] = c10 / n
        v01[i] = 1.0 - c01 / m
        below[i] = c10.sum()
    aucs = below / (m * n)
    return aucs, v10, v01


def _cov_rows(v: np.ndarray) -> np.ndarray:
    """Sample covariance (ddof=1) between rows of ``v`` (k, p); NaN when p < 2."""
    k, p = v.shape
    if p < 2:
        return np.full((k, k), np.nan)
    c = v - v.mean(axis=1, keepdims=True)
    return (c @ c.T) / (p - 1)


def _var_rows(v: np.ndarray) -> np.ndarray:
    p = v.shape[1]
    if p < 2:
        return np.full(v.shape[0], np.nan)
    return v.var(axis=1, ddof=1)


# ----------------------------------------------------------------------------- single AUC


@dataclass(frozen=True)
class DeLongResult(ResultMixin):
    """AUROC with its DeLong variance.

    Attributes
    ----------
    auc : float
        Area under the ROC curve (ties count 1/2; higher score = positive).
    variance : float
        DeLong variance ``S10/m + S01/n`` (NaN with a single case or control).
    n_pos, n_neg : int
    v10, v01 : numpy.ndarray
        Placement values of cases and controls (excluded from ``to_dict``).
    """

    auc: float
    variance: float
    n_pos: int
    n_neg: int
    v10: np.ndarray = field(repr=False, compare=False)
    v01: np.ndarray = field(repr=False, compare=False)

    @property
    def se(self) -> float:
        """Standard error, ``sqrt(variance)``."""
        return math.sqrt(self.variance) if self.variance >= 0 else math.nan

    def confidence_interval(self, confidence_level: float = 0.95) -> Interval:
        """Wald interval ``auc ± z·se`` clipped to [0, 1] (pROC ``ci.auc(method="delong")``)."""
        level = check_level(confidence_level)
        z = _z(level)
        lo = min(max(self.auc - z * self.se, 0.0), 1.0)
        hi = min(max(self.auc + z * self.se, 0.0), 1.0)
        return Interval(lo, hi, level, "delong")

    def to_dict(self) -> dict[str, Any]:
        return {"auc": json_safe(self.auc), "variance": json_safe(self.variance),
                "se": json_safe(self.se), "n_pos": self.n_pos, "n_neg": self.n_neg,
                "ci": self.confidence_interval().to_dict()}

    def to_frame(self) -> pd.DataFrame:
        ci = self.confidence_interval()
        return pd.DataFrame([{"auc": self.auc, "se": self.se, "variance": self.variance,
                              "ci_low": ci.low, "ci_high": ci.high, "ci_level": ci.level,
                              "ci_method": ci.method, "n_pos": self.n_pos,
                              "n_neg": self.n_neg}])


def auc_delong(y_true: Any, y_score: Any) -> DeLongResult:
    """AUROC and its DeLong variance by the fast midrank algorithm.

    With ``m`` cases and ``n`` controls, midranks ``T_z`` over the pooled sample and ``T_x``,
    ``T_y`` within cases and controls give the placements
    ``V10_i = (T_z(X_i) - T_x(X_i))/n`` and ``V01_j = 1 - (T_z(Y_j) - T_y(Y_j))/m`` [2]_;
    ``AUC = mean(V10)`` and ``Var = var(V10)/m + var(V01)/n`` (ddof = 1) [1]_.

    Parameters
    ----------
    y_true : array_like of {0, 1} or bool
        1/True = case (positive). Controls < cases: a higher score means more likely positive.
    y_score : array_like of float

    Returns
    -------
    DeLongResult

    Raises
    ------
    InvalidParameterError
        If ``y_true`` has no positives or no negatives (:data:`AUROC_NEEDS_BOTH_CLASSES`).

    Notes
    -----
    R equivalent: ``pROC::roc(y, s, direction="<")`` then ``auc``, ``var(method="delong")``.
    Cost O(N log N) (``scipy.stats.rankdata``). With one case or one control the variance is
    NaN (sample variance undefined).
    """
    y = _check_labels(y_true)
    s = _check_scores(y_score, y.size, "y_score")
    aucs, v10, v01 = _placements(y, s[None, :])
    m, n = v10.shape[1], v01.shape[1]
    var = float(_var_rows(v10)[0] / m + _var_rows(v01)[0] / n)
    return DeLongResult(float(aucs[0]), var, m, n, v10[0], v01[0])


def _cluster_inverse(clusters: Any, n: int) -> np.ndarray:
    codes = np.asarray(clusters)
    if codes.ndim != 1 or codes.size != n:
        raise InvalidParameterError(
            f"clusters is required to have shape ({n},) but has shape {codes.shape}")
    if codes.dtype.kind == "f" and np.isnan(codes).any():
        raise InvalidParameterError("clusters must not contain NaN")
    _, inv = np.unique(codes, return_inverse=True)
    return inv.reshape(-1)


def _clustered_cov(y: np.ndarray, aucs: np.ndarray, v10: np.ndarray, v01: np.ndarray,
                   inv: np.ndarray) -> np.ndarray:
    """Obuchowski's clustered covariance of the AUCs (rows of ``v10``/``v01``) [4]_."""
    k = aucs.size
    n_cl = int(inv.max()) + 1
    cpos, cneg = inv[y], inv[~y]
    m, n = v10.shape[1], v01.shape[1]
    mi = np.bincount(cpos, minlength=n_cl).astype(float)
    ni = np.bincount(cneg, minlength=n_cl).astype(float)
    e10 = np.empty((k, n_cl))
    e01 = np.empty((k, n_cl))
    for a in range(k):
        e10[a] = np.bincount(cpos, weights=v10[a], minlength=n_cl) - mi * aucs[a]
        e01[a] = np.bincount(cneg, weights=v01[a], minlength=n_cl) - ni * aucs[a]
    i1, i0 = int((mi > 0).sum()), int((ni > 0).sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        s10 = (i1 / ((i1 - 1) * m)) * (e10 @ e10.T) if i1 > 1 else np.full((k, k), np.nan)
        s01 = (i0 / ((i0 - 1) * n)) * (e01 @ e01.T) if i0 > 1 else np.full((k, k), np.nan)
        s11 = (n_cl / (n_cl - 1)) * (e10 @ e01.T)
    return s10 / m + s01 / n + (s11 + s11.T) / (m * n)


def delong_covariance(y_true: Any, scores: Any, *, clusters: Any = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """AUROCs of ``k`` scores on the same subjects and their DeLong covariance matrix.

    ``Cov(A_a, A_b) = cov(V10^a, V10^b)/m + cov(V01^a, V01^b)/n`` [1]_, computed with the
    midrank placements of [2]_.

    Parameters
    ----------
    y_true : array_like of {0, 1} or bool
    scores : 2-d array_like (k, N) or list of k arrays of length N
    clusters : array_like, shape (N,), optional
        Patient (cluster) of each row. When given, the covariance is Obuchowski's clustered
        form [4]_: with ``X_i.`` and ``Y_i.`` the sums of the case and control placements of
        cluster ``i``, ``m_i``, ``n_i`` its cases and controls, ``I``, ``I1``, ``I0`` the
        clusters overall, with cases and with controls, ``S10 = I1/((I1-1) m) sum_i (X_i. -
        m_i A)^2``, ``S01 = I0/((I0-1) n) sum_i (Y_i. - n_i A)^2``, ``S11 = I/(I-1) sum_i
        (X_i. - m_i A)(Y_i. - n_i A)`` and ``Var = S10/m + S01/n + 2 S11/(m n)`` (products of
        two scores' terms for a covariance). With one row per cluster it equals the DeLong
        covariance exactly.

    Returns
    -------
    aucs : numpy.ndarray, shape (k,)
    cov : numpy.ndarray, shape (k, k)

    Notes
    -----
    R equivalent: ``pROC::cov(roc_a, roc_b, method="delong")`` (unclustered).
    """
    y = _check_labels(y_true)
    try:
        s = np.asarray(scores, dtype=float)
    except (TypeError, ValueError):
        raise InvalidParameterError("scores must be a 2-d array (k, N) or a list of equal-length "
                                    "arrays") from None
    if s.ndim == 1:
        s = s[None, :]
    if s.ndim != 2 or s.shape[1] != y.size:
        raise InvalidParameterError(
            f"scores is required to have shape (k, {y.size}) but has shape {s.shape}")
    if not np.isfinite(s).all():
        raise InvalidParameterError("scores must be finite")
    aucs, v10, v01 = _placements(y, s)
    if clusters is not None:
        return aucs, _clustered_cov(y, aucs, v10, v01, _cluster_inverse(clusters, y.size))
    cov = _cov_rows(v10) / v10.shape[1] + _cov_rows(v01) / v01.shape[1]
    return aucs, cov


# ----------------------------------------------------------------------------- tests


@dataclass(frozen=True)
class DeLongTestResult(ResultMixin):
    """DeLong comparison of two AUROCs.

    Attributes
    ----------
    auc_a, auc_b : float
    difference : float
        ``auc_a - auc_b``.
    se : float
        Standard error of the difference.
    statistic : float
        ``difference / se`` (standard normal under H0: equal AUCs).
    pvalue : float
    ci : Interval
        Two-sided interval of ``auc_a - auc_b`` (always two-sided, whatever ``alternative``).
    alternative : {"two-sided", "less", "greater"}
        ``"greater"`` tests H1: auc_a > auc_b.
    method : str
        ``"delong-paired"`` or ``"delong-unpaired"``.
    """

    auc_a: float
    auc_b: float
    difference: float
    se: float
    statistic: float
    pvalue: float
    ci: Interval
    alternative: str
    method: str = "delong-paired"

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"auc_a": self.auc_a, "auc_b": self.auc_b,
                              "difference": self.difference, "se": self.se,
                              "statistic": self.statistic, "pvalue": self.pvalue,
                              "ci_low": self.ci.low, "ci_high": self.ci.high,
                              "ci_level": self.ci.level, "alternative": self.alternative,
                              "method": self.method}])


def _pvalue(z: float, alternative: str) -> float:
    if math.isnan(z):
        return math.nan
    if alternative == "two-sided":
        return float(2.0 * special.ndtr(-abs(z)))
    if alternative == "greater":
        return float(special.ndtr(-z))
    return float(special.ndtr(z))


def _compare(a: float, b: float, var: float, alternative: str, level: float,
             method: str) -> DeLongTestResult:
    diff = a - b
    se = math.sqrt(var) if var > 0 else (0.0 if var == 0 or abs(var) < 1e-15 else math.nan)
    if se == 0.0:
        # identical rankings (or no spread): the difference is known exactly
        z = 0.0 if diff == 0 else math.copysign(math.inf, diff)
    else:
        z = diff / se
    zc = _z(level)
    ci = Interval(diff - zc * se, diff + zc * se, level, method)
    return DeLongTestResult(a, b, diff, se, z, _pvalue(z, alternative), ci, alternative, method)


def delong_test(y_true: Any, score_a: Any, score_b: Any, *, alternative: str = "two-sided",
                confidence_level: float = 0.95, clusters: Any = None) -> DeLongTestResult:
    """Paired DeLong test of two AUROCs measured on the same subjects.

    ``Z = (A - B) / sqrt(V_a + V_b - 2 C)``; interval ``(A - B) ± z·SE`` [1]_ [2]_.

    Parameters
    ----------
    y_true : array_like of {0, 1} or bool
    score_a, score_b : array_like of float
        Two scores on the same rows.
    alternative : {"two-sided", "less", "greater"}, default "two-sided"
        ``"greater"``: H1 auc_a > auc_b.
    confidence_level : float, default 0.95
        Level of the two-sided interval of ``auc_a - auc_b``.
    clusters : array_like, shape (N,), optional
        Patient of each row: the variance of the difference is then Obuchowski's clustered
        DeLong variance [4]_ (:func:`delong_covariance`), ``method = "delong-paired-clustered"``.

    Returns
    -------
    DeLongTestResult

    Notes
    -----
    R equivalent: ``pROC::roc.test(roc_a, roc_b, method="delong", paired=TRUE)``.
    If both scores rank the subjects identically the SE is 0 and the test returns
    ``statistic = 0``, ``pvalue = 1`` (pROC refuses to compare identical curves).
    """
    alternative = check_alternative(alternative)
    level = check_level(confidence_level)
    y = _check_labels(y_true)
    sa = _check_scores(score_a, y.size, "score_a")
    sb = _check_scores(score_b, y.size, "score_b")
    aucs, cov = delong_covariance(y, np.vstack([sa, sb]), clusters=clusters)
    var = cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1]
    return _compare(float(aucs[0]), float(aucs[1]), float(var), alternative, level,
                    "delong-paired" if clusters is None else "delong-paired-clustered")


def delong_unpaired_test(y_true_a: Any, score_a: Any, y_true_b: Any, score_b: Any, *,
                         alternative: str = "two-sided",
                         confidence_level: float = 0.95) -> DeLongTestResult:
    """Unpaired DeLong test of two AUROCs from independent samples (e.g. two subgroups).

    ``D = (A - B) / sqrt(V_a + V_b)`` compared with the standard normal, as pROC's
    ``roc.test(..., paired=FALSE, method="delong")`` [3]_.

    Parameters
    ----------
    y_true_a, score_a : array_like
        Labels and scores of sample A.
    y_true_b, score_b : array_like
        Labels and scores of sample B.
    alternative : {"two-sided", "less", "greater"}, default "two-sided"
    confidence_level : float, default 0.95

    Returns
    -------
    DeLongTestResult
        ``method = "delong-unpaired"``.
    """
    alternative = check_alternative(alternative)
    level = check_level(confidence_level)
    ra = auc_delong(_check_labels(y_true_a, "y_true_a"), score_a)
    rb = auc_delong(_check_labels(y_true_b, "y_true_b"), score_b)
    return _compare(ra.auc, rb.auc, ra.variance + rb.variance, alternative, level,
                    "delong-unpaired")


@dataclass(frozen=True)
class NonInferiorityResult(ResultMixin):
    """Non-inferiority test of a new AUROC against a reference on the same subjects.

    Attributes
    ----------
    difference : float
        ``auc_new - auc_ref``.
    se : float
    statistic : float
        ``(difference + margin) / se``.
    pvalue : float
        One-sided p value of H0: difference <= -margin.
    lower_bound : float
        Lower bound of the two-sided ``1 - 2·alpha`` interval of the difference.
    margin : float
    alpha : float
        One-sided test size.
    noninferior : bool
        ``lower_bound > -margin`` (equivalently ``pvalue < alpha``).
    """

    difference: float
    se: float
    statistic: float
    pvalue: float
    lower_bound: float
    margin: float
    alpha: float
    noninferior: bool

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{f: getattr(self, f) for f in (
            "difference", "se", "statistic", "pvalue", "lower_bound", "margin", "alpha",
            "noninferior")}])


def auc_noninferiority(y_true: Any, score_new: Any, score_ref: Any, *, margin: float,
                       alpha: float = 0.025, clusters: Any = None) -> NonInferiorityResult:
    """Non-inferiority of a new score's AUROC versus a reference (paired DeLong).

    H0: ``A_new - A_ref <= -margin``; ``z = (d + margin)/SE_d`` with the paired DeLong SE,
    rejected when ``z > z_{1-alpha}``, i.e. when the lower bound of the two-sided
    ``1 - 2·alpha`` interval of ``d`` exceeds ``-margin`` (METHODS.md C2, oracle O4).

    Parameters
    ----------
    y_true : array_like of {0, 1} or bool
    score_new, score_ref : array_like of float
    margin : float
        Non-inferiority margin ``δ >= 0`` on the AUC scale; a protocol choice, no default.
    alpha : float, default 0.025
        One-sided test size.
    clusters : array_like, shape (N,), optional
        Patient of each row: the clustered DeLong variance (:func:`delong_test`).

    Returns
    -------
    NonInferiorityResult
    """
    margin = check_real(margin, "margin", low=0.0)
    alpha = check_real(alpha, "alpha", low=0.0, high=0.5, low_inclusive=False,
                       high_inclusive=False)
    t = delong_test(y_true, score_new, score_ref, alternative="greater",
                    confidence_level=1.0 - 2.0 * alpha, clusters=clusters)
    d, se = t.difference, t.se
    if se > 0:
        z = (d + margin) / se
    else:
        z = math.inf if d + margin > 0 else (0.0 if d + margin == 0 else -math.inf)
    p = float(special.ndtr(-z))
    lower = d - float(special.ndtri(1.0 - alpha)) * se
    return NonInferiorityResult(d, se, z, p, lower, margin, alpha, bool(lower > -margin))


for _f in (auc_delong, delong_covariance, delong_test, delong_unpaired_test, auc_noninferiority):
    _f.__doc__ = (_f.__doc__ or "") + _REFS
del _f


# ----------------------------------------------------------------------------- weighted AUC


def weighted_auc(y_true: Any, y_score: Any, weights: Any = None) -> Any:
    """AUROC with observation weights, vectorized over rows of a weights matrix.

    ``AUC_w = Σ_i Σ_j w_i w_j ψ(x_i, y_j) / (Σ_i w_i · Σ_j w_j)`` over cases ``i`` and controls
    ``j`` with ψ = 1, 1/2, 0 for >, =, <. This is the weighted statistic the bootstrap engine
    needs (``statistic(*arrays, weights=W)``); with integer weights it equals the AUC of the
    data with rows repeated.

    Parameters
    ----------
    y_true : array_like of {0, 1} or bool, shape (N,)
    y_score : array_like of float, shape (N,)
    weights : None or array_like, shape (N,) or (B, N)
        ``None``: unweighted AUC (a float). A 2-d matrix returns one AUC per row (B,);
        rows with no case or no control weight give NaN.

    Returns
    -------
    float or numpy.ndarray

    Notes
    -----
    Cost O(N log N + B·N): one sort, then tie-block sums with :func:`numpy.add.reduceat`.
    """
    y = as_binary(y_true)
    s = _check_scores(y_score, y.size, "y_score")
    order = np.argsort(s, kind="stable")
    ss, ys = s[order], y[order]
    starts = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1]])
    if weights is None:
        w = np.ones((1, y.size))
        scalar = True
    else:
        w = np.asarray(weights, dtype=float)
        scalar = w.ndim == 1
        w = np.atleast_2d(w)
        if w.ndim != 2 or w.shape[1] != y.size:
            raise InvalidParameterError(
                f"weights is required to have shape (B, {y.size}) but has shape {np.shape(weights)}")
    ws = w[:, order]
    pw = np.add.reduceat(np.where(ys, ws, 0.0), starts, axis=1)
    nw = np.add.reduceat(np.where(ys, 0.0, ws), starts, axis=1)
    cum_n_below = np.cumsum(nw, axis=1) - nw
    num = (pw * (cum_n_below + 0.5 * nw)).sum(axis=1)
    den = pw.sum(axis=1) * nw.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    if scalar:
        if weights is None and not (y.any() and (~y).any()):
            raise InvalidParameterError(AUROC_NEEDS_BOTH_CLASSES.format(
                name="y_true", n_pos=int(y.sum()), n_neg=int((~y).sum())))
        return float(out[0])
    return out


# ----------------------------------------------------------------------------- on summaries


def delong_segments(neg: Any, pos: Any, starts: Any = None, *, components: bool = False
                    ) -> tuple[np.ndarray, ...]:
    """AUROC, DeLong variance and binning error bound of many segments of score histograms.

    Each segment (a subgroup level, a replicate x level pair...) is a run of rows in ascending
    score order, row ``r`` holding ``neg[r]`` controls and ``pos[r]`` cases that share one
    score (a block of tied scores: exact) or one score bin. Ties within a row count 1/2.
    A case in row ``r`` has the DeLong placement ``V10 = (controls below r + controls in r /
    2) / N``, a control ``V01 = (cases above r + cases in r / 2) / P`` [1]_ (the midrank
    formulas of Sun & Xu [2]_ in cumulative-count form); ``AUC = mean(V10) = mean(V01)`` and
    ``Var = var(V10) / P + var(V01) / N`` with ddof = 1 (NaN with a single case or control).

    With one row per distinct score this is exactly :func:`auc_delong` (and pROC); with
    score bins, pairs of a case and a control in the same bin are scored 1/2, so the AUROC is
    within ``bound = sum_r pos_r neg_r / (2 P N)`` of the exact one (deterministic: only
    same-bin pairs can differ, each by at most 1/2). The bound is returned for every segment
    (it is 0 only when no bin holds both classes).

    Parameters
    ----------
    neg, pos : array_like, shape (K,)
        Controls and cases per row (any real dtype; read in chunks of rows, so the memory
        used is O(chunk) whatever K).
    starts : array_like of int, shape (S,), optional
        First row of each segment (default one segment).

    components : bool
        Also return the two terms of the variance, ``var(V10) / P`` and ``var(V01) / N``
        (for the Satterthwaite degrees of freedom of :func:`rwe.stats.auc_interval`).

    Returns
    -------
    auc, variance, bound : numpy.ndarray, shape (S,)
        NaN where a segment has no case or no control; with ``components`` also
        ``term10, term01``.
    """
    neg = np.asarray(neg)
    pos = np.asarray(pos)
    st = np.zeros(1, dtype=np.int64) if starts is None else np.asarray(starts, dtype=np.int64)
    k = len(st)
    n = neg.size
    lens = np.diff(np.append(st, n))
    nan = np.full(k, np.nan)
    if not (lens > 0).any():
        return (nan, nan.copy(), nan.copy()) + ((nan.copy(), nan.copy()) if components else ())
    # rows in chunks (temporaries O(chunk)); cumulative counts carried across chunks, in the
    # order of one global cumsum, and restarted at every segment by subtracting the total
    # before its start; pass 1: P, N, the AUC and the bound; pass 2: centred sums of squares
    P = np.zeros(k)
    N = np.zeros(k)
    num = np.zeros(k)
    same = np.zeros(k)
    q10 = np.zeros(k)
    q01 = np.zeros(k)
    before_neg = np.zeros(k)
    before_pos = np.zeros(k)

    def walk(with_pos: bool):
        carry_n = carry_p = 0.0
        for a, b in chunks(n):
            s0, ids = segment_ids(st, a, b)
            m = n_ids(ids)
            sl = st[s0:s0 + m]
            here = sl >= a
            j = sl[here] - a - 1
            ng = neg[a:b].astype(np.float64)
            ps = pos[a:b].astype(np.float64)
            cn = ng.copy()
            cn[0] += carry_n
            np.cumsum(cn, out=cn)
            before_neg[s0:s0 + m][here] = np.where(j >= 0, cn[j], carry_n)
            carry_n = float(cn[-1])
            cn -= per_row(before_neg, s0, ids)
            cp = None
            if with_pos:
                cp = ps.copy()
                cp[0] += carry_p
                np.cumsum(cp, out=cp)
                before_pos[s0:s0 + m][here] = np.where(j >= 0, cp[j], carry_p)
                carry_p = float(cp[-1])
                cp -= per_row(before_pos, s0, ids)
            yield s0, ids, ng, ps, cn, cp

    with np.errstate(invalid="ignore", divide="ignore"):
        for s0, ids, ng, ps, cneg, _ in walk(False):
            add_sums(N, s0, ids, ng)
            add_sums(P, s0, ids, ps)
            # cases x (controls below + half the controls tied): an exact sum of half-integers
            cneg -= 0.5 * ng
            add_dot(num, s0, ids, ps, cneg)
            add_dot(same, s0, ids, ps, ng)
        auc = num / (P * N)
        for s0, ids, ng, ps, cneg, cpos in walk(True):
            Nr, Pr, ar = (per_row(v, s0, ids) for v in (N, P, auc))
            d10 = cneg
            d10 -= 0.5 * ng
            d10 /= Nr
            d10 -= ar
            d01 = cpos
            np.subtract(Pr, d01, out=d01)
            d01 += 0.5 * ps
            d01 /= Pr
            d01 -= ar
            ps *= d10
            ng *= d01
            add_dot(q10, s0, ids, ps, d10)
            add_dot(q01, s0, ids, ng, d01)
        var10, var01 = q10 / (P - 1), q01 / (N - 1)
        var = np.where((P > 1) & (N > 1), var10 / P + var01 / N, np.nan)
        bound = 0.5 * same / (P * N)
    both = (P > 0) & (N > 0)
    out = (np.where(both, auc, np.nan), np.where(both, var, np.nan),
           np.where(both, bound, np.nan))
    if components:
        ok = both & (P > 1) & (N > 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out += (np.where(ok, var10 / P, np.nan), np.where(ok, var01 / N, np.nan))
    return out
