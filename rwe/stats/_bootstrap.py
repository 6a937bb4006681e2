"""Vectorized Poisson (cluster) bootstrap with percentile and BCa intervals.

Every replicate is a row of Poisson(1) weights; a statistic written as a *weighted*
statistic evaluates a whole chunk of replicates in one vectorized call, so no Python runs
per replicate (DESIGN.md principle 4). With ``clusters`` (patient ids) one weight is drawn
per patient and shared by all of that patient's rows: the patient-level cluster bootstrap of
FDA's AI-DSF draft guidance, Appendix C.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from rwe._results import Interval, ResultMixin, json_safe
from rwe._validation import check_choice, check_int, check_level
from rwe.exceptions import InvalidParameterError, RWEWarning

__all__ = [
    "BOOTSTRAP_METHODS",
    "NAN_REPLICATES_SUFFIX",
    "MAX_NAN_FRACTION",
    "JACKKNIFE_MAX_UNITS",
    "BootstrapResult",
    "bootstrap_resamples",
    "poisson_weights",
    "bootstrap_interval",
    "bootstrap",
]

BOOTSTRAP_METHODS = ("percentile", "bca")
#: Appended to ``Interval.method`` when more than :data:`MAX_NAN_FRACTION` replicates are NaN.
NAN_REPLICATES_SUFFIX = "+nan-dropped"
MAX_NAN_FRACTION = 0.05
#: Above this many units (rows or clusters) BCa uses a delete-a-group jackknife.
JACKKNIFE_MAX_UNITS = 2000
#: Target number of weight cells (replicates x rows) per chunk.
CHUNK_CELLS = 20_000_000

_MSG_BCA_NEEDS_JACKKNIFE = "method='bca' needs jackknife values (leave-one-out estimates)"
_MSG_STAT_SHAPE = ("statistic(*arrays, weights=W) must return one value per row of W: "
                   "expected shape ({b},), got {shape}")

_REFS = """
    References
    ----------
    .. [1] Efron B. Better bootstrap confidence intervals. J Am Stat Assoc.
       1987;82(397):171-185.
    .. [2] Efron B, Tibshirani RJ. An Introduction to the Bootstrap. Chapman & Hall; 1993
       (chapter 14: BCa; chapter 11: jackknife, delete-d).
    .. [3] Hanley JA, MacGibbon B. Creating non-parametric bootstrap samples using Poisson
       frequencies. Comput Methods Programs Biomed. 2006;83(1):57-62.
    .. [4] FDA. Artificial Intelligence-Enabled Device Software Functions: Lifecycle
       Management and Marketing Submission Recommendations (draft guidance), January 2025,
       Appendix C.
"""


def _cluster_codes(clusters: Any, n: int) -> np.ndarray:
    codes = np.asarray(clusters)
    if codes.ndim != 1 or codes.size != n:
        raise InvalidParameterError(
            f"clusters is required to have shape ({n},) but has shape {codes.shape}")
    if codes.dtype.kind not in "iu":
        raise InvalidParameterError(
            f"clusters must be integer codes (e.g. EvaluationSet.clusters), got dtype {codes.dtype}")
    _, inv = np.unique(codes, return_inverse=True)
    return inv.reshape(-1)


def _draw(rng: np.random.Generator, n_rows: int, n: int, inv: np.ndarray | None,
          dtype: Any) -> np.ndarray:
    if inv is None:
        return rng.poisson(1.0, size=(n_rows, n)).astype(dtype, copy=False)
    n_clusters = int(inv.max()) + 1 if inv.size else 0
    return rng.poisson(1.0, size=(n_rows, n_clusters)).astype(dtype, copy=False)[:, inv]


def poisson_weights(n: int, n_boot: int, random_state: Any, *, clusters: Any = None,
                    dtype: Any = np.float32) -> np.ndarray:
    """Poisson(1) bootstrap weights, one row per replicate.

    Parameters
    ----------
    n : int
        Number of rows.
    n_boot : int
        Number of replicates.
    random_state : int, numpy.random.Generator or None
        Seed or generator (``numpy.random.default_rng``).
    clusters : array_like of int, shape (n,), optional
        Cluster (patient) codes: one Poisson(1) weight is drawn per cluster and broadcast to
        its rows (cluster bootstrap).
    dtype : numpy dtype, default float32

    Returns
    -------
    numpy.ndarray, shape (n_boot, n)

    Notes
    -----
    The Poisson bootstrap [3]_ approximates the multinomial bootstrap (the total weight
    varies around n); it needs no knowledge of n to draw, which makes it chunkable and
    mergeable. Drawing in chunks from the same generator reproduces the unchunked draws.
    """
    n = check_int(n, "n", minimum=1)
    n_boot = check_int(n_boot, "n_boot", minimum=1)
    rng = np.random.default_rng(random_state)
    inv = None if clusters is None else _cluster_codes(clusters, n)
    return _draw(rng, n_boot, n, inv, dtype)


def _acceleration(jackknife: np.ndarray, weights: np.ndarray | None = None) -> float:
    """BCa acceleration ``a = Σ w d³ / (6 (Σ w d²)^{3/2})``, ``d = mean_w(θ_i) - θ_i``;
    ``weights`` = number of deleted units each jackknife value stands for (a grouped
    jackknife of binned data: every row of one bin has the same delete-one value)."""
    w = np.ones_like(jackknife) if weights is None else np.asarray(weights, dtype=float)
    ok = ~np.isnan(jackknife) & (w > 0)
    jk, w = jackknife[ok], w[ok]
    if w.sum() < 2:
        return math.nan
    d = (w * jk).sum() / w.sum() - jk
    s2 = (w * d * d).sum()
    return float((w * d ** 3).sum() / (6.0 * s2 ** 1.5)) if s2 > 0 else 0.0


def bootstrap_interval(replicates: Any, estimate: float, *, confidence_level: float = 0.95,
                       method: str = "percentile", jackknife: Any = None,
                       jackknife_weights: Any = None) -> Interval:
    """Percentile or BCa interval from bootstrap replicates.

    Parameters
    ----------
    replicates : array_like, shape (B,)
        Bootstrap estimates; NaN replicates (statistic undefined in that resample) are dropped.
    estimate : float
        Estimate on the original data (needed for the BCa bias correction).
    confidence_level : float, default 0.95
    method : {"percentile", "bca"}, default "percentile"
    jackknife : array_like, optional
        Leave-one-out (or leave-one-cluster-out, or delete-a-group) estimates; required for
        ``"bca"``, where they give the acceleration
        ``a = Σ(θ̄ - θ_i)³ / (6 [Σ(θ̄ - θ_i)²]^{3/2})``.
    jackknife_weights : array_like, optional
        Units each jackknife value stands for (grouped jackknife of binned data, where all
        rows of one bin share their delete-one value); default 1 each.

    Returns
    -------
    Interval
        ``method`` is ``"percentile"`` or ``"bca"``; if more than 5 % of the replicates are NaN
        the suffix :data:`NAN_REPLICATES_SUFFIX` is appended and an :class:`RWEWarning` is
        issued, because dropping undefined resamples conditions the interval on the
        statistic being defined. No finite replicate gives NaN bounds.

    Notes
    -----
    Percentile: the ``(1 ± level)/2`` quantiles (linear interpolation, ``numpy.quantile``).
    BCa [1]_: bias correction ``z0 = Φ⁻¹(#(θ* < θ̂)/B + #(θ* = θ̂)/2B)`` and quantiles
    ``Φ(z0 + (z0 + z_q)/(1 - a(z0 + z_q)))`` for ``z_q = Φ⁻¹((1 ± level)/2)``. If every
    replicate lies on one side of the estimate, ``z0`` is infinite and the bounds are NaN.
    """
    level = check_level(confidence_level)
    check_choice(method, "method", BOOTSTRAP_METHODS)
    reps = np.asarray(replicates, dtype=float).reshape(-1)
    if method == "bca" and jackknife is None:
        raise InvalidParameterError(_MSG_BCA_NEEDS_JACKKNIFE)
    nan = np.isnan(reps)
    label = method
    if reps.size and nan.mean() > MAX_NAN_FRACTION:
        label = method + NAN_REPLICATES_SUFFIX
        warnings.warn(f"{int(nan.sum())} of {reps.size} bootstrap replicates are undefined (NaN) "
                      f"and were dropped; interval method marked {label!r}", RWEWarning,
                      stacklevel=2)
    reps = reps[~nan]
    if reps.size == 0:
        return Interval(math.nan, math.nan, level, label)
    q = np.array([(1 - level) / 2, (1 + level) / 2])
    if method == "bca":
        p0 = (np.sum(reps < estimate) + 0.5 * np.sum(reps == estimate)) / reps.size
        z0 = float(special.ndtri(p0))
        a = _acceleration(np.asarray(jackknife, dtype=float).reshape(-1),
                          None if jackknife_weights is None else
                          np.asarray(jackknife_weights, dtype=float).reshape(-1))
        if not (math.isfinite(z0) and math.isfinite(a)):
            return Interval(math.nan, math.nan, level, label)
        zq = special.ndtri(q)
        q = special.ndtr(z0 + (z0 + zq) / (1 - a * (z0 + zq)))
    lo, hi = np.quantile(reps, q)
    return Interval(float(lo), float(hi), level, label)


bootstrap_interval.__doc__ = (bootstrap_interval.__doc__ or "") + _REFS


@dataclass(frozen=True)
class BootstrapResult(ResultMixin):
    """Bootstrap estimate and interval.

    Attributes
    ----------
    estimate : float
    ci : Interval
    replicates : numpy.ndarray
        The ``n_boot`` replicate estimates (excluded from ``to_dict``).
    n_boot : int
    method : str
    """

    estimate: float
    ci: Interval
    replicates: np.ndarray = field(repr=False, compare=False)
    n_boot: int
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {"estimate": json_safe(self.estimate), "ci": self.ci.to_dict(),
                "n_boot": self.n_boot, "method": self.method,
                "n_nan_replicates": int(np.isnan(self.replicates).sum())}

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"estimate": self.estimate, "ci_low": self.ci.low,
                              "ci_high": self.ci.high, "ci_level": self.ci.level,
                              "ci_method": self.ci.method, "n_boot": self.n_boot}])


def _call(statistic: Callable[..., Any], arrays: tuple[np.ndarray, ...], w: np.ndarray) -> np.ndarray:
    out = np.asarray(statistic(*arrays, weights=w), dtype=float)
    if out.shape != (w.shape[0],):
        raise InvalidParameterError(_MSG_STAT_SHAPE.format(b=w.shape[0], shape=out.shape))
    return out


def _jackknife(statistic: Callable[..., Any], arrays: tuple[np.ndarray, ...], n: int,
               inv: np.ndarray | None, rng: np.random.Generator, chunk: int,
               dtype: Any) -> np.ndarray:
    unit = np.arange(n) if inv is None else inv
    n_units = int(unit.max()) + 1
    if n_units > JACKKNIFE_MAX_UNITS:
        group_of_unit = rng.permutation(n_units) % JACKKNIFE_MAX_UNITS
        unit = group_of_unit[unit]
        n_units = JACKKNIFE_MAX_UNITS
    out = np.empty(n_units)
    for start in range(0, n_units, chunk):
        ids = np.arange(start, min(start + chunk, n_units))
        w = (unit[None, :] != ids[:, None]).astype(dtype)
        out[start:start + ids.size] = _call(statistic, arrays, w)
    return out


def bootstrap(statistic: Callable[..., Any], *arrays: Any, n_boot: int = 1000,
              random_state: Any = None, clusters: Any = None, method: str = "percentile",
              confidence_level: float = 0.95, chunk_size: int | None = None) -> BootstrapResult:
    """Poisson (cluster) bootstrap of a vectorized weighted statistic.

    Parameters
    ----------
    statistic : callable
        ``statistic(*arrays, weights=None)`` returns the estimate on the data (a scalar);
        ``statistic(*arrays, weights=W)`` with ``W`` of shape (b, n) returns the b weighted
        estimates, one per row (e.g. :func:`rwe.stats.weighted_auc`).
    *arrays : array_like
        Data arrays sharing their first dimension n (rows).
    n_boot : int, default 1000
    random_state : int, numpy.random.Generator or None
    clusters : array_like of int, optional
        Patient (cluster) codes; weights are drawn per cluster (cluster bootstrap [4]_).
    method : {"percentile", "bca"}, default "percentile"
    confidence_level : float, default 0.95
    chunk_size : int, optional
        Replicates per chunk; default keeps about 2e7 weight cells per chunk. The result
        does not depend on it (the same random stream is consumed; only floating-point rounding
        inside the statistic may differ).

    Returns
    -------
    BootstrapResult

    Notes
    -----
    For ``"bca"`` the jackknife uses the same weighted statistic with 0/1 weight rows that
    delete one row (or one cluster). When there are more than 2000 rows (clusters), a
    delete-a-group jackknife is used instead: units are split at random into 2000 groups
    (drawn from the same generator after the replicates) and one group is deleted at a time
    [2]_. NaN replicates are handled as in :func:`bootstrap_interval`.
    """
    if not callable(statistic):
        raise InvalidParameterError(f"statistic must be callable, got {type(statistic).__name__}")
    if not arrays:
        raise InvalidParameterError("bootstrap needs at least one data array")
    n_boot = check_int(n_boot, "n_boot", minimum=1)
    level = check_level(confidence_level)
    check_choice(method, "method", BOOTSTRAP_METHODS)
    arrs = tuple(np.asarray(a) for a in arrays)
    n = arrs[0].shape[0] if arrs[0].ndim else 0
    for i, a in enumerate(arrs):
        if a.ndim == 0 or a.shape[0] != n:
            raise InvalidParameterError(
                f"arrays must share their first dimension; array 0 has {n} rows, array {i} has "
                f"shape {a.shape}")
    if n < 1:
        raise InvalidParameterError("arrays must have at least one row")
    inv = None if clusters is None else _cluster_codes(clusters, n)
    if chunk_size is None:
        chunk = max(1, min(n_boot, CHUNK_CELLS // n))
    else:
        chunk = check_int(chunk_size, "chunk_size", minimum=1)
    dtype = np.float64
    rng = np.random.default_rng(random_state)
    estimate = float(np.asarray(statistic(*arrs, weights=None), dtype=float))
    reps = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        reps[start:start + b] = _call(statistic, arrs, _draw(rng, b, n, inv, dtype))
    jk = None
    if method == "bca":
        jk = _jackknife(statistic, arrs, n, inv, rng, chunk, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RWEWarning)
        ci = bootstrap_interval(reps, estimate, confidence_level=level, method=method,
                                jackknife=jk)
    if ci.method.endswith(NAN_REPLICATES_SUFFIX):
        warnings.warn(f"{int(np.isnan(reps).sum())} of {n_boot} bootstrap replicates are "
                      f"undefined (NaN) and were dropped; interval method marked {ci.method!r}",
                      RWEWarning, stacklevel=2)
    return BootstrapResult(estimate, ci, reps, n_boot, method)


bootstrap.__doc__ = (bootstrap.__doc__ or "") + _REFS


def bootstrap_resamples(statistic: Callable[[np.ndarray], float | None], n: int, *,
                        n_boot: int = 1000, random_state: Any = None,
                        confidence_level: float = 0.95, clusters: Any = None
                        ) -> tuple[Interval | None, np.ndarray, str | None]:
    """Percentile interval of a statistic that cannot take weights (an external estimator that
    must refit per resample, e.g. IPCW survival metrics whose censoring distribution is
    re-estimated in every resample), by the ordinary multinomial row (or cluster) bootstrap.

    The same engine's vectorized Poisson-weight mode (:func:`bootstrap`) is the one to use
    whenever the statistic accepts weights; this mode calls ``statistic(idx)`` once per
    replicate with the resampled row indices ``idx`` (``rng.integers(0, n, n)``; with
    ``clusters``, whole clusters are drawn and expanded to their rows) [2]_. A replicate that
    returns None or a non-finite value is dropped and counted.

    Returns
    -------
    interval, replicates, reason
        ``interval`` is None when no replicate gave an estimate; ``reason`` names the dropped
        replicates (or why there is no interval).
    """
    n = check_int(n, "n", minimum=1)
    n_boot = check_int(n_boot, "n_boot", minimum=1)
    level = check_level(confidence_level)
    rng = np.random.default_rng(random_state)
    reps = np.full(n_boot, np.nan)
    members = None
    if clusters is not None:
        inv = _cluster_codes(clusters, n)
        order = np.argsort(inv, kind="stable")
        bounds = np.searchsorted(inv[order], np.arange(int(inv.max()) + 2))
        members = (order, bounds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # estimators warn inside degenerate resamples
        for b in range(n_boot):
            if members is None:
                idx = rng.integers(0, n, size=n)
            else:
                order, bounds = members
                k = len(bounds) - 1
                pick = rng.integers(0, k, size=k)
                idx = np.concatenate([order[bounds[c]:bounds[c + 1]] for c in pick])
            v = statistic(idx)
            if v is not None and np.isfinite(v):
                reps[b] = v
    n_nan = int(np.isnan(reps).sum())
    if n_nan == n_boot:
        return None, reps, "bootstrap interval undefined (no resample gave an estimate)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ci = bootstrap_interval(reps, math.nan, confidence_level=level, method="percentile")
    reason = f"{n_nan} of {n_boot} bootstrap replicates undefined and dropped" if n_nan else None
    return Interval(float(ci.low), float(ci.high), level, ci.method), reps, reason


bootstrap_resamples.__doc__ = (bootstrap_resamples.__doc__ or "") + _REFS
