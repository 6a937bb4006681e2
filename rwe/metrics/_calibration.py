"""Calibration metrics for predicted probabilities (the calibration hierarchy).

Probabilities are clipped to ``[1e-12, 1 - 1e-12]`` before taking logits (slope, intercept),
so that predictions of exactly 0 or 1 give large but finite logits. Other calibration metrics
use the probabilities as given.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rwe._results import Interval
from rwe.exceptions import ConvergenceWarning, InvalidParameterError
from rwe.metrics._registry import EPS, MetricData, MetricSpec, MetricValue, register_metric

__all__: list[str] = []

REF_VAN_CALSTER = ("Van Calster B, Nieboer D, Vergouwe Y, De Cock B, Pencina MJ, Steyerberg EW. "
                   "A calibration hierarchy for risk models was defined: from utopia to empirical "
                   "data. J Clin Epidemiol 2016;74:167-176.")
REF_COX = ("Cox DR. Two further applications of a model for binary regression. Biometrika "
           "1958;45(3-4):562-565.")
REF_BRIER = ("Brier GW. Verification of forecasts expressed in terms of probability. Mon "
             "Weather Rev 1950;78(1):1-3.")
REF_OE = ("Riley RD, et al. Evaluation of clinical prediction models (part 1): from development "
          "to external validation. BMJ 2024;384:e074819. Exact Poisson interval: Ulm K. A simple "
          "method to calculate the confidence interval of a standardized mortality ratio. Am J "
          "Epidemiol 1990;131(2):373-375.")
REF_ECE = ("Naeini MP, Cooper GF, Hauskrecht M. Obtaining well calibrated probabilities using "
           "Bayesian binning. AAAI 2015:2901-2907. Guo C, Pleiss G, Sun Y, Weinberger KQ. On "
           "calibration of modern neural networks. ICML 2017.")
REF_SPIEGELHALTER = ("Spiegelhalter DJ. Probabilistic prediction in patient management and "
                     "clinical trials. Stat Med 1986;5(5):421-433.")

_ONE_CLASS = "one class only"


def _stats():
    import rwe.stats as stats

    return stats


def _one_class_reason(data: MetricData) -> str | None:
    pos = data.positives
    if pos == 0:
        return f"{_ONE_CLASS} (no positive cases)"
    if pos == data.n:
        return f"{_ONE_CLASS} (no negative cases)"
    return None


def _separation_reason(y: np.ndarray, lp: np.ndarray) -> str | None:
    """Complete or quasi-complete separation of y by the linear predictor (slope infinite)."""
    lp1, lp0 = lp[y], lp[~y]
    if lp0.max() <= lp1.min() or lp1.max() <= lp0.min():
        return "perfect separation: the outcome is separated by logit(p), slope is infinite"
    return None


def _no_callback(*args) -> None:
    return None


def _fit_glm(y: np.ndarray, exog: np.ndarray, offset: np.ndarray | None):
    """Logistic regression by maximum likelihood (statsmodels ``Logit``, Newton-Raphson);
    statsmodels warnings are captured and returned, not raised.

    The binomial GLM with logit link and ``Logit`` maximise the same likelihood (same
    estimates and model-based standard errors, cross-checked against ``GLM`` in the tests);
    ``Logit``'s Newton steps cost about half of ``GLM``'s IRLS on 100k rows. Newton starts
    at zero (every fitted probability 1/2), where the Hessian is never singular; starting at
    the calibrated model (a = 0, b = 1) fails when some p are clipped 0s and 1s.
    """
    from statsmodels.discrete.discrete_model import Logit

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            # callback: statsmodels' default re-predicts every iteration to detect perfect
            # prediction; the callers rule out separation and one-class data beforehand
            res = Logit(y.astype(float), exog, offset=offset).fit(
                disp=0, maxiter=100, callback=_no_callback)
        except Exception as exc:  # noqa: BLE001 - e.g. PerfectSeparationError, singular Hessian
            return None, [f"{type(exc).__name__}: {exc}"]
    msgs = [f"{w.category.__name__}: {w.message}" for w in caught]
    return res, msgs


def _glm_failure(res, msgs) -> str | None:
    if res is None:
        return "logistic fit failed: " + "; ".join(msgs)
    conv = bool(res.mle_retvals.get("converged", True))
    params, bse = np.asarray(res.params), np.asarray(res.bse)
    if not conv or not np.isfinite(params).all() or not np.isfinite(bse).all():
        detail = ("; ".join(msgs)) if msgs else "Newton-Raphson did not converge"
        return f"logistic fit did not converge ({detail})"
    return None


def _slope_reason(data: MetricData) -> str | None:
    """Why the calibration slope has no finite MLE on ``data`` (None: it can be fitted)."""
    reason = _one_class_reason(data)
    lp = data.logit_p
    if reason is None and np.ptp(lp) == 0:
        reason = "predictions are constant: slope is not estimable"
    if reason is None:
        reason = _separation_reason(data.y_true, lp)
    return reason


def _slope_value(data: MetricData, b0: float, b1: float, se0: float, se1: float) -> MetricValue:
    ci = _stats().wald_ci(b1, se1, confidence_level=data.confidence_level)
    return data.value("calibration_slope", b1,
                      Interval(float(ci.low), float(ci.high), ci.level, "wald"),
                      se=se1, intercept=b0, intercept_se=se0, clip=EPS)


def _intercept_value(data: MetricData, a: float, se: float) -> MetricValue:
    ci = _stats().wald_ci(a, se, confidence_level=data.confidence_level)
    return data.value("calibration_intercept", a,
                      Interval(float(ci.low), float(ci.high), ci.level, "wald"), se=se, clip=EPS)


def calibration_slope(data: MetricData) -> MetricValue:
    """Calibration slope: β₁ of the logistic recalibration model ``logit P(y) = β₀ + β₁ logit p``.

    Fitted by maximum likelihood (statsmodels ``Logit``: the Binomial GLM with logit link); the
    interval is the Wald interval ``β₁ ± z SE(β₁)``. The intercept of this model (slope free) is in
    ``extras["intercept"]``. Target value 1: < 1 means predictions are too extreme.
    Probabilities are clipped to [1e-12, 1 - 1e-12] before the logit. Undefined (nan with a
    reason) with one outcome class, constant predictions, or (quasi-)complete separation.

    References
    ----------
    .. [1] Cox DR. Two further applications of a model for binary regression. Biometrika
       1958;45(3-4):562-565.
    .. [2] Van Calster B, et al. A calibration hierarchy for risk models was defined: from
       utopia to empirical data. J Clin Epidemiol 2016;74:167-176.
    """
    reason = _slope_reason(data)
    if reason is not None:
        return data.value("calibration_slope", math.nan, reason=reason)
    lp = data.logit_p
    exog = np.column_stack([np.ones_like(lp), lp])
    res, msgs = _fit_glm(data.y_true, exog, None)
    reason = _glm_failure(res, msgs)
    if reason is not None:
        warnings.warn(f"calibration_slope: {reason}", ConvergenceWarning, stacklevel=4)
        return data.value("calibration_slope", math.nan, reason=reason)
    b0, b1 = (float(v) for v in res.params)
    se0, se1 = (float(v) for v in res.bse)
    return _slope_value(data, b0, b1, se0, se1)


def calibration_intercept(data: MetricData) -> MetricValue:
    """Calibration-in-the-large (CITL): α of ``logit P(y) = α + offset(logit p)``.

    Fitted by maximum likelihood (statsmodels ``Logit`` with ``offset``); Wald interval.
    Target value 0: > 0 means risks are under-estimated on average. Probabilities are clipped
    to [1e-12, 1 - 1e-12] before the logit. Undefined with one outcome class (α = ±∞).

    References
    ----------
    .. [1] Van Calster B, et al. A calibration hierarchy for risk models was defined: from
       utopia to empirical data. J Clin Epidemiol 2016;74:167-176.
    """
    reason = _one_class_reason(data)
    if reason is not None:
        return data.value("calibration_intercept", math.nan, reason=reason)
    lp = data.logit_p
    res, msgs = _fit_glm(data.y_true, np.ones((data.n, 1)), lp)
    reason = _glm_failure(res, msgs)
    if reason is not None:
        warnings.warn(f"calibration_intercept: {reason}", ConvergenceWarning, stacklevel=4)
        return data.value("calibration_intercept", math.nan, reason=reason)
    return _intercept_value(data, float(res.params[0]), float(res.bse[0]))


@dataclass(frozen=True)
class GroupedLogisticFit:
    """Maximum-likelihood fit of one logistic recalibration model in every group at once
    (:func:`grouped_logistic_fit`). ``a`` and ``b`` hold one value per group (``b`` one value
    for ``"common_slope"``, ones for ``"offset"``); ``se_a``, ``se_b`` are model-based standard
    errors (``None`` for ``"common_slope"``); ``llf`` is the total log-likelihood."""

    llf: float
    converged: bool
    a: np.ndarray
    b: np.ndarray
    se_a: np.ndarray | None = None
    se_b: np.ndarray | None = None


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """Inner product with numpy's own loop (``np.einsum``), not BLAS ``ddot``: OpenBLAS
    threads a 100k-element dot, which costs more than it saves and oversubscribes a busy
    machine."""
    return float(np.einsum("i,i->", a, b))


def grouped_logistic_fit(y: np.ndarray, lp: np.ndarray, grp: np.ndarray, k: int, *,
                         model: str = "slopes", max_iter: int = 100) -> GroupedLogisticFit:
    """Logistic recalibration models fitted in ``k`` groups at once, by Newton-Raphson.

    ``model`` is ``"slopes"`` (``logit P(y) = a[g] + b[g] lp``: the calibration slope model of
    every group), ``"common_slope"`` (``a[g] + b lp``) or ``"offset"`` (``a[g] + lp``:
    calibration-in-the-large). Each is the logistic GLM of the corresponding dummy-coded
    design (``y ~ lp * group``, ``y ~ lp + group``, ``y ~ group + offset(lp)``), so the
    estimates, log-likelihood and standard errors equal statsmodels' per-group ``Logit`` /
    ``GLM`` fits (cross-checked to 1e-9 in the tests). The Hessian is block diagonal (2 x 2
    or 1 x 1 per group) or arrow-shaped (common slope), so a Newton step costs a few
    ``bincount`` passes over the rows instead of one statsmodels fit per group.

    Starts at ``a = 0, b = 1`` (the predictions as they are), halves a step until the
    log-likelihood does not decrease, and stops when the largest step is below
    ``1e-8 max(1, |parameter|)`` (quadratic convergence: the parameters are then accurate far
    below that). Standard errors are the square roots of the diagonal of the inverse
    information at the final parameters. A group with one outcome class has no finite
    estimate: the whole fit is then returned unconverged with NaN parameters (callers
    remove such groups first).

    Parameters
    ----------
    y : array of bool or {0, 1}
    lp : array of float
        The covariate (logit of the predicted probability).
    grp : array of int
        Group code of each row, in ``0..k-1``.
    k : int
        Number of groups.
    """
    if model not in ("slopes", "common_slope", "offset"):
        raise InvalidParameterError(
            f"model must be 'slopes', 'common_slope' or 'offset', got {model!r}")
    yf = np.asarray(y, dtype=np.float64)
    ev = np.bincount(grp, weights=yf, minlength=k)
    nan = np.full(k, math.nan)
    if np.any((ev == 0) | (ev == np.bincount(grp, minlength=k))):
        return GroupedLogisticFit(math.nan, False, nan, nan)  # one outcome class: infinite
    common = model == "common_slope"
    offset = model == "offset"
    a = np.zeros(k)
    b = np.ones(1 if common else k)

    def state(a_, b_):
        eta = a_[grp] + (lp if offset else (b_[0] if common else b_[grp]) * lp)
        e = np.exp(-np.abs(eta))
        # log(1 + exp(eta)) = max(eta, 0) + log1p(exp(-|eta|))  (np.logaddexp(0, eta))
        llf = float(_dot(yf, eta) - np.maximum(eta, 0).sum() - np.log1p(e).sum())
        return eta, e, llf

    def curvature(eta, e):
        inv = 1 / (1 + e)
        mu = np.where(eta >= 0, inv, e * inv)
        w = e * inv * inv  # mu (1 - mu), without cancellation
        haa = np.bincount(grp, weights=w, minlength=k)
        if offset:
            return yf - mu, w, haa, None, None
        wlp = w * lp
        hab = np.bincount(grp, weights=wlp, minlength=k)
        hbb = float(_dot(wlp, lp)) if common else np.bincount(grp, weights=wlp * lp,
                                                               minlength=k)
        return yf - mu, w, haa, hab, hbb

    eta, e, llf = state(a, b)
    converged = False
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for _ in range(max_iter):
            r, w, haa, hab, hbb = curvature(eta, e)
            ga = np.bincount(grp, weights=r, minlength=k)
            if offset:
                da, db = ga / haa, np.zeros(k)
            elif common:
                gb = float(_dot(r, lp))
                db_ = (gb - np.sum(hab * ga / haa)) / (hbb - np.sum(hab * hab / haa))
                da, db = (ga - hab * db_) / haa, np.array([db_])
            else:
                gb = np.bincount(grp, weights=r * lp, minlength=k)
                det = haa * hbb - hab * hab
                da = (hbb * ga - hab * gb) / det
                db = (haa * gb - hab * ga) / det
            if not (np.isfinite(da).all() and np.isfinite(db).all()):
                return GroupedLogisticFit(llf, False, a, b)
            step = 1.0
            for _ in range(40):  # step halving: the log-likelihood must not decrease
                new = state(a + step * da, b + step * db)
                if new[2] >= llf - 1e-12 * max(1.0, abs(llf)):
                    break
                step /= 2
            a, b = a + step * da, b + step * db
            eta, e, llf = new
            big = max(np.max(np.abs(step * da) / np.maximum(1, np.abs(a))),
                      np.max(np.abs(step * db) / np.maximum(1, np.abs(b))))
            if big < 1e-8:
                converged = True
                break
        if not converged or common:
            return GroupedLogisticFit(llf, converged, a, b)
        _, _, haa, hab, hbb = curvature(eta, e)  # information at the final estimates
        if offset:
            return GroupedLogisticFit(llf, True, a, b, np.sqrt(1 / haa), np.zeros(k))
        det = haa * hbb - hab * hab
        return GroupedLogisticFit(llf, True, a, b, np.sqrt(hbb / det), np.sqrt(haa / det))


def calibration_fits_by_group(datas: Sequence[MetricData], names: Sequence[str]
                              ) -> dict[tuple[int, str], MetricValue]:
    """``calibration_slope`` and ``calibration_intercept`` of many disjoint groups of rows
    (one :class:`MetricData` each), fitted together by :func:`grouped_logistic_fit`.

    Returns ``{(group index, metric): value}`` for every group where the value is defined
    and the joint fit converged, built exactly as :func:`calibration_slope` and
    :func:`calibration_intercept` build theirs; groups left out (one outcome class, constant
    predictions, separation, no convergence) go through those functions, which give the
    reason or fit them one by one with statsmodels.
    """
    out: dict[tuple[int, str], MetricValue] = {}
    for metric, model, ok in (
            ("calibration_slope", "slopes", lambda d: _slope_reason(d) is None),
            ("calibration_intercept", "offset", lambda d: _one_class_reason(d) is None)):
        if metric not in names:
            continue
        idx = [i for i, d in enumerate(datas) if d.n > 0 and ok(d)]
        if not idx:
            continue
        y = np.concatenate([datas[i].y_true for i in idx])
        lp = np.concatenate([datas[i].logit_p for i in idx])
        grp = np.repeat(np.arange(len(idx)), [datas[i].n for i in idx])
        fit = grouped_logistic_fit(y, lp, grp, len(idx), model=model)
        if not fit.converged:
            continue
        for j, i in enumerate(idx):
            a, b, se_a, se_b = (float(v[j]) for v in (fit.a, fit.b, fit.se_a, fit.se_b))
            if not all(math.isfinite(v) for v in (a, b, se_a, se_b)):
                continue
            out[(i, metric)] = (_slope_value(datas[i], a, b, se_a, se_b) if model == "slopes"
                                else _intercept_value(datas[i], a, se_a))
    return out


def brier(data: MetricData) -> MetricValue:
    """Brier score mean((p - y)²) with a Wald interval from the per-row squared errors.

    ``SE = sd((p_i - y_i)²) / sqrt(n)`` (ddof = 1), bounds clipped to [0, 1] (the range of
    the score); no interval when n = 1 or when every squared error is identical.

    References
    ----------
    .. [1] Brier GW. Verification of forecasts expressed in terms of probability. Mon Weather
       Rev 1950;78(1):1-3.
    """
    e = (data.y_score - data.y_true) ** 2
    est = float(e.mean())
    if data.n < 2:
        return data.value("brier", est, reason="n = 1: no interval")
    se = float(e.std(ddof=1) / math.sqrt(data.n))
    if se == 0:
        return data.value("brier", est, reason="squared errors are all equal: no interval",
                          se=se)
    ci = _stats().wald_ci(est, se, confidence_level=data.confidence_level)
    low, high = max(float(ci.low), 0.0), min(float(ci.high), 1.0)
    return data.value("brier", est, Interval(low, high, ci.level, "wald"), se=se)


def oe_ratio(data: MetricData) -> MetricValue:
    """Observed/expected ratio Σy/Σp with the exact Poisson interval for O given E.

    The interval treats O as Poisson with mean (O/E)·E and E as fixed (the standardized
    mortality ratio interval). Target value 1.

    References
    ----------
    .. [1] Riley RD, et al. Evaluation of clinical prediction models (part 1). BMJ
       2024;384:e074819.
    .. [2] Ulm K. A simple method to calculate the confidence interval of a standardized
       mortality ratio. Am J Epidemiol 1990;131(2):373-375.
    """
    o = int(data.positives)
    e = float(data.y_score.sum())
    if e <= 0:
        return data.value("oe_ratio", math.nan, reason="expected count is 0 (all p = 0)",
                          observed=o, expected=e)
    ci = _stats().poisson_ratio_ci(o, e, confidence_level=data.confidence_level)
    return data.value("oe_ratio", o / e,
                      Interval(float(ci.low), float(ci.high), ci.level, ci.method),
                      observed=o, expected=e)


def _ece_bins(data: MetricData) -> tuple[np.ndarray, np.ndarray]:
    edges = data.bin_edges if data.bin_edges is not None else np.linspace(0, 1, data.n_bins + 1)
    nb = edges.size - 1
    idx = np.clip(np.searchsorted(edges, data.y_score, side="right") - 1, 0, nb - 1)
    return edges, idx


def _ece_statistic(nb: int):
    def statistic(resid, bins, weights=None):
        resid = np.asarray(resid, dtype=float)
        bins = np.asarray(bins).astype(np.intp)
        if weights is None:
            return float(np.abs(np.bincount(bins, resid, minlength=nb)).sum() / resid.size)
        w = np.atleast_2d(np.asarray(weights, dtype=float))
        onehot = np.zeros((resid.size, nb))
        onehot[np.arange(resid.size), bins] = resid
        sums = w @ onehot
        tot = w.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.abs(sums).sum(axis=1) / tot
    return statistic


def ece(data: MetricData) -> MetricValue:
    """Expected calibration error Σ_b (n_b/n) |ȳ_b - p̄_b| over bins of the prediction.

    Bins are equal-width on [0, 1] (``n_bins``, default 10; left-closed, the last bin closed)
    unless ``bin_edges`` is given; predictions outside custom edges fall in the end bins.
    The bins used are reported in ``extras``. The interval is a percentile bootstrap
    (``n_boot`` replicates, ``random_state``); ECE is biased upwards in small samples, so read
    it as a secondary measure.

    References
    ----------
    .. [1] Naeini MP, Cooper GF, Hauskrecht M. Obtaining well calibrated probabilities using
       Bayesian binning. AAAI 2015:2901-2907.
    .. [2] Guo C, Pleiss G, Sun Y, Weinberger KQ. On calibration of modern neural networks.
       ICML 2017.
    """
    edges, idx = _ece_bins(data)
    nb = edges.size - 1
    resid = data.y_true.astype(float) - data.y_score
    stat = _ece_statistic(nb)
    est = stat(resid, idx)
    custom = data.bin_edges is not None
    bins_note = (f"custom bins {edges.tolist()}" if custom
                 else f"{nb} equal-width bins on [0, 1]")
    extras = {"n_bins": nb, "bin_edges": edges.tolist(), "bins": bins_note,
              "bin_counts": np.bincount(idx, minlength=nb).tolist()}
    if data.n < 2:
        return data.value("ece", est, reason=f"n = 1: no interval ({bins_note})", **extras)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = _stats().bootstrap(stat, resid, idx, n_boot=data.n_boot,
                                 random_state=data.random_state, method="percentile",
                                 confidence_level=data.confidence_level)
    ci = res.ci
    n_nan = int(np.isnan(res.replicates).sum())
    reason = None
    if n_nan:
        # replicates whose Poisson weights are all zero (tiny n) are undefined and dropped
        reason = f"{n_nan} of {data.n_boot} bootstrap replicates undefined and dropped"
    if caught and not n_nan:  # pragma: no cover - unexpected warning from the engine
        reason = "; ".join(str(w.message) for w in caught)
    if not (np.isfinite(ci.low) and np.isfinite(ci.high)):
        return data.value("ece", est, reason=reason or "bootstrap interval undefined", **extras)
    return data.value("ece", est, Interval(float(ci.low), float(ci.high), ci.level, ci.method),
                      reason=reason, n_boot=data.n_boot, **extras)


def spiegelhalter_z(data: MetricData) -> MetricValue:
    """Spiegelhalter's z = Σ(y - p)(1 - 2p) / sqrt(Σ(1 - 2p)² p(1 - p)); two-sided p in extras.

    A test statistic, not an estimate: it grows with n for a fixed miscalibration, so it has
    no interval (target 0). Undefined when every p is 0.5, 0 or 1 (zero variance).

    References
    ----------
    .. [1] Spiegelhalter DJ. Probabilistic prediction in patient management and clinical
       trials. Stat Med 1986;5(5):421-433.
    """
    from scipy.stats import norm

    p = data.y_score
    y = data.y_true.astype(float)
    num = float(np.sum((y - p) * (1 - 2 * p)))
    var = float(np.sum((1 - 2 * p) ** 2 * p * (1 - p)))
    if var <= 0:
        return data.value("spiegelhalter_z", math.nan,
                          reason="zero variance: every prediction is 0, 0.5 or 1")
    z = num / math.sqrt(var)
    return data.value("spiegelhalter_z", z, p_value=float(2 * norm.sf(abs(z))))


_C = frozenset({"y_true", "y_score"})
for _spec in (
    MetricSpec("brier", "Brier score", "calibration", _C, False, None, "wald", brier,
               "Mean squared difference between predicted probability and outcome.", REF_BRIER),
    MetricSpec("calibration_slope", "Calibration slope", "calibration", _C, None, 1.0, "wald",
               calibration_slope, "Slope of logistic regression of y on logit(p).",
               REF_COX + " " + REF_VAN_CALSTER),
    MetricSpec("calibration_intercept", "Calibration-in-the-large", "calibration", _C, None, 0.0,
               "wald", calibration_intercept,
               "Intercept of logistic regression of y with offset logit(p).", REF_VAN_CALSTER),
    MetricSpec("oe_ratio", "Observed/expected ratio", "calibration", _C, None, 1.0,
               "exact-poisson", oe_ratio, "Σy/Σp with an exact Poisson interval.", REF_OE),
    MetricSpec("ece", "Expected calibration error", "calibration", _C, False, None, "bootstrap",
               ece, "Σ_b (n_b/n)|ȳ_b - p̄_b| over equal-width bins (10 by default).", REF_ECE),
    MetricSpec("spiegelhalter_z", "Spiegelhalter z", "calibration", _C, None, 0.0, "none",
               spiegelhalter_z, "Spiegelhalter's calibration test statistic (two-sided p).",
               REF_SPIEGELHALTER),
):
    register_metric(_spec)
