"""Calibration metrics for predicted probabilities (the calibration hierarchy).

Probabilities are clipped to ``[1e-12, 1 - 1e-12]`` before taking logits (slope, intercept),
so that predictions of exactly 0 or 1 give large but finite logits. Other calibration metrics
use the probabilities as given.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from rwe._results import Interval
from rwe.exceptions import ConvergenceWarning
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
    reason = _one_class_reason(data)
    lp = data.logit_p
    if reason is None and np.ptp(lp) == 0:
        reason = "predictions are constant: slope is not estimable"
    if reason is None:
        reason = _separation_reason(data.y_true, lp)
    if reason is not None:
        return data.value("calibration_slope", math.nan, reason=reason)
    exog = np.column_stack([np.ones_like(lp), lp])
    res, msgs = _fit_glm(data.y_true, exog, None)
    reason = _glm_failure(res, msgs)
    if reason is not None:
        warnings.warn(f"calibration_slope: {reason}", ConvergenceWarning, stacklevel=4)
        return data.value("calibration_slope", math.nan, reason=reason)
    b0, b1 = (float(v) for v in res.params)
    se0, se1 = (float(v) for v in res.bse)
    ci = _stats().wald_ci(b1, se1, confidence_level=data.confidence_level)
    return data.value("calibration_slope", b1,
                      Interval(float(ci.low), float(ci.high), ci.level, "wald"),
                      se=se1, intercept=b0, intercept_se=se0, clip=EPS)


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
    a, se = float(res.params[0]), float(res.bse[0])
    ci = _stats().wald_ci(a, se, confidence_level=data.confidence_level)
    return data.value("calibration_intercept", a,
                      Interval(float(ci.low), float(ci.high), ci.level, "wald"), se=se, clip=EPS)


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
