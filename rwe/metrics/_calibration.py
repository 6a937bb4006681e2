"""Calibration metrics for predicted probabilities (the calibration hierarchy).

Every metric is a kernel over segments of score histograms (:class:`rwe.stats.summaries.
Segments`): one row per distinct score reproduces the row-level definitions exactly; binned
rows use the bin's sums of p^k (exact for Brier, O/E and Spiegelhalter's z, whose statistics
are sums of polynomials in p) or the bin's mean logit (calibration slope and intercept: binned).
Probabilities are clipped to ``[1e-12, 1 - 1e-12]`` before taking logits (slope, intercept),
so that predictions of exactly 0 or 1 give large but finite logits. Other calibration metrics
use the probabilities as given. Logistic fits: :func:`rwe.stats.fit_logistic` (the one fitter).
"""

from __future__ import annotations

import math

import numpy as np

from rwe.metrics._registry import EPS, LevelValues, MetricSpec, register_metric

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


def _none(k: int) -> np.ndarray:
    return np.full(k, None, dtype=object)


def _wald(est, se, ctx):
    z = _stats()._intervals._z(ctx.confidence_level)
    return est - z * se, est + z * se


def _one_class(seg, reason: np.ndarray) -> np.ndarray:
    reason[(seg.n_pos > 0) & (seg.n_neg == 0)] = f"{_ONE_CLASS} (no negative cases)"
    reason[seg.n_pos == 0] = f"{_ONE_CLASS} (no positive cases)"
    return reason


REASON_EXTREME = ("predictions of exactly 0 or 1 were left out of the logistic fit (their "
                  "logit is infinite)")
REASON_CONTRADICTED = "; some of them are contradicted by their outcome (certain and wrong)"


def _fit(seg, model: str):
    """:func:`rwe.stats.fit_logistic` on the segments' rows (covariate: the row's logit).

    Stated rule for predictions of exactly 0 or 1 (exact rows only): they have no finite
    logit, so they are left out of the fit rather than clipped (clipping would let the
    clipping constant set the slope when such a prediction meets the opposite outcome);
    ``extras`` counts them (``n_extreme``) and those contradicted by their outcome
    (``n_contradicted``), and the reason says so. Binned rows use the bin's mean logit of the
    predictions clipped to [1e-12, 1 - 1e-12]."""
    st = _stats()
    pos, tot = seg.pos, seg.pos + seg.neg
    extreme = np.zeros(seg.n_rows, dtype=bool)
    if seg.exact:
        p = seg.p
        extreme = (p <= 0) | (p >= 1)
        if extreme.any():
            pos, tot = np.where(extreme, 0.0, pos), np.where(extreme, 0.0, tot)
    fit = st.fit_logistic(seg.lp, pos, tot, seg.starts, model=model)
    if isinstance(getattr(seg, "fits", None), dict):
        seg.fits[model] = (fit, bool(extreme.any()))
    reasons = fit.reasons.copy() if fit.reasons is not None else st.logistic_reasons(
        seg.lp, pos, tot, seg.starts, "offset" if model == "offset" else "slope")
    failed = (reasons == None) & ~fit.converged  # noqa: E711
    reasons[failed] = st.REASON_NO_CONVERGENCE
    n_ext = seg.seg_sum(np.where(extreme, seg.pos + seg.neg, 0.0))
    contra = np.where(extreme & (seg.p >= 1), seg.neg, 0.0) + np.where(
        extreme & (seg.p <= 0), seg.pos, 0.0) if extreme.any() else np.zeros(seg.n_rows)
    n_con = seg.seg_sum(contra)
    for i in np.flatnonzero(n_ext > 0):
        note = REASON_EXTREME + (REASON_CONTRADICTED if n_con[i] > 0 else "")
        reasons[i] = note if reasons[i] is None else f"{reasons[i]}; {note}"
    return fit, reasons, {"n_extreme": n_ext.astype(np.int64),
                          "n_contradicted": n_con.astype(np.int64)}


def calibration_slope_kernel(seg, ctx):
    """Calibration slope: β₁ of the logistic recalibration model ``logit P(y) = β₀ + β₁ logit p``.

    Fitted by maximum likelihood (:func:`rwe.stats.fit_logistic`: the binomial GLM with logit
    link, Newton-Raphson, equal to statsmodels ``Logit``); the interval is the Wald interval
    ``β₁ ± z SE(β₁)``. The intercept of this model (slope free) is in ``extras["intercept"]``.
    Target value 1: < 1 means predictions are too extreme. Predictions of exactly 0 or 1 are
    left out of the fit and counted (stated rule, see ``_fit``). Undefined (nan with a
    reason) with one outcome class,
    constant predictions, or (quasi-)complete separation. On binned rows the covariate is the
    bin's mean logit (binned).

    References
    ----------
    .. [1] Cox DR. Two further applications of a model for binary regression. Biometrika
       1958;45(3-4):562-565.
    .. [2] Van Calster B, et al. A calibration hierarchy for risk models was defined: from
       utopia to empirical data. J Clin Epidemiol 2016;74:167-176.
    """
    fit, reason, ext = _fit(seg, "slope")
    lo, hi = _wald(fit.b, fit.se_b, ctx)
    k = seg.n_segments
    extras = {"se": fit.se_b, "intercept": fit.a, "intercept_se": fit.se_a,
              "clip": np.full(k, EPS), **ext}
    return LevelValues(fit.b, lo, hi, "wald", reason, extras, ctx.confidence_level)


def calibration_intercept_kernel(seg, ctx):
    """Calibration-in-the-large (CITL): α of ``logit P(y) = α + offset(logit p)``.

    Fitted by maximum likelihood (:func:`rwe.stats.fit_logistic`, model ``"offset"``); Wald
    interval. Target value 0: > 0 means risks are under-estimated on average. Probabilities
    are clipped to [1e-12, 1 - 1e-12] before the logit. Undefined with one outcome class
    (α = ±∞).

    References
    ----------
    .. [1] Van Calster B, et al. A calibration hierarchy for risk models was defined: from
       utopia to empirical data. J Clin Epidemiol 2016;74:167-176.
    """
    fit, reason, ext = _fit(seg, "offset")
    lo, hi = _wald(fit.a, fit.se_a, ctx)
    k = seg.n_segments
    return LevelValues(fit.a, lo, hi, "wald", reason,
                       {"se": fit.se_a, "clip": np.full(k, EPS), **ext}, ctx.confidence_level)


def brier_kernel(seg, ctx):
    """Brier score mean((p - y)²) with a Wald interval from the per-row squared errors.

    ``SE = sd((p_i - y_i)²) / sqrt(n)`` (ddof = 1), bounds clipped to [0, 1] (the range of
    the score); no interval when n = 1 or when every squared error is identical. The sums of
    e = (p - y)² and e² are polynomials in p (controls: p², p⁴; cases: (1 - p)², (1 - p)⁴), so
    they come exactly from the per-row sums of p^k.

    References
    ----------
    .. [1] Brier GW. Verification of forecasts expressed in terms of probability. Mon Weather
       Rev 1950;78(1):1-3.
    """
    m0, m1 = seg.seg_moments(0), seg.seg_moments(1)
    P, n = seg.n_pos, seg.n
    s1 = m0[:, 1] + P - 2 * m1[:, 0] + m1[:, 1]
    s2 = m0[:, 3] + P - 4 * m1[:, 0] + 6 * m1[:, 1] - 4 * m1[:, 2] + m1[:, 3]
    k = seg.n_segments
    reason = _none(k)
    with np.errstate(invalid="ignore", divide="ignore"):
        est = s1 / n
        var = np.maximum(s2 - n * est * est, 0.0) / (n - 1)
        se = np.sqrt(var / n)
    zero = (n >= 2) & (se <= 1e-15 * np.maximum(1.0, est))
    reason[zero] = "squared errors are all equal: no interval"
    reason[n < 2] = "n = 1: no interval"
    lo, hi = _wald(est, se, ctx)
    lo, hi = np.maximum(lo, 0.0), np.minimum(hi, 1.0)
    no = (n < 2) | zero
    lo[no] = np.nan
    hi[no] = np.nan
    se = np.where(n < 2, np.nan, np.where(zero, 0.0, se))
    return LevelValues(est, lo, hi, "wald", reason, {"se": se}, ctx.confidence_level)


def oe_ratio_kernel(seg, ctx):
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
    o = seg.n_pos
    e = seg.seg_moments(0)[:, 0] + seg.seg_moments(1)[:, 0]
    k = seg.n_segments
    reason = _none(k)
    ok = e > 0
    reason[~ok] = "expected count is 0 (all p = 0)"
    lo = np.full(k, np.nan)
    hi = np.full(k, np.nan)
    if ok.any():
        ci = _stats().poisson_ratio_ci(o[ok], e[ok], confidence_level=ctx.confidence_level)
        lo[ok], hi[ok] = ci.low, ci.high
    with np.errstate(invalid="ignore", divide="ignore"):
        est = np.where(ok, o / np.where(ok, e, 1), np.nan)
    return LevelValues(est, lo, hi, "exact-poisson", reason,
                       {"observed": o.astype(np.int64), "expected": e}, ctx.confidence_level)


def _ece_edges(ctx) -> np.ndarray:
    return (np.asarray(ctx.bin_edges, dtype=float) if ctx.bin_edges is not None
            else np.linspace(0, 1, ctx.n_bins + 1))


REASON_ECE = ("ECE is a descriptive, upward-biased measure (it is positive for a perfectly "
              "calibrated model): no confidence interval; judge calibration by the slope, "
              "calibration-in-the-large and Spiegelhalter's test")


def ece_kernel(seg, ctx):
    """Expected calibration error Σ_b (n_b/n) |ȳ_b - p̄_b| over bins of the prediction.

    Bins are equal-width on [0, 1] (``n_bins``, default 10; left-closed, the last bin closed)
    unless ``bin_edges`` is given; predictions outside custom edges fall in the end bins.
    The bins used are reported in ``extras``. On binned rows each score bin is placed by its
    mean prediction (binned).

    No interval: the plug-in ECE is biased upwards (every bin's |ȳ_b - p̄_b| is positive in
    expectation even for a calibrated model), so a bootstrap interval of it can exclude its
    own estimate and never covers the true ECE of 0 of a calibrated model [3]_. ECE is a
    descriptive number; the calibration slope, calibration-in-the-large and Spiegelhalter's
    z carry the inference. A goal on ECE is therefore never judged (no bound).

    References
    ----------
    .. [1] Naeini MP, Cooper GF, Hauskrecht M. Obtaining well calibrated probabilities using
       Bayesian binning. AAAI 2015:2901-2907.
    .. [2] Guo C, Pleiss G, Sun Y, Weinberger KQ. On calibration of modern neural networks.
       ICML 2017.
    .. [3] Kumar A, Liang P, Ma T. Verified uncertainty calibration. NeurIPS 2019 (bias of the
       plug-in calibration error estimator).
    """
    edges = _ece_edges(ctx)
    nb = edges.size - 1
    k = seg.n_segments
    p = seg.p
    eb = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, nb - 1)
    code = seg.row_segment * nb + eb
    tot = seg.pos + seg.neg
    sums = np.bincount(code, weights=seg.pos - p * tot, minlength=k * nb).reshape(k, nb)
    n = np.bincount(seg.row_segment, weights=tot, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        est = np.abs(sums).sum(axis=1) / n
    custom = ctx.bin_edges is not None
    note = f"custom bins {edges.tolist()}" if custom else f"{nb} equal-width bins on [0, 1]"
    counts = np.bincount(code, weights=tot, minlength=k * nb).reshape(k, nb).astype(np.int64)
    edge_list = np.empty(k, dtype=object)
    count_list = np.empty(k, dtype=object)
    for i in range(k):
        edge_list[i] = edges.tolist()
        count_list[i] = counts[i].tolist()
    extras = {"n_bins": np.full(k, nb), "bin_edges": edge_list,
              "bins": np.full(k, note, dtype=object), "bin_counts": count_list}
    reason = np.full(k, f"{REASON_ECE} ({note})", dtype=object)
    nan = np.full(k, np.nan)
    return LevelValues(est, nan, nan.copy(), None, reason, extras, ctx.confidence_level)


def spiegelhalter_kernel(seg, ctx):
    """Spiegelhalter's z = Σ(y - p)(1 - 2p) / sqrt(Σ(1 - 2p)² p(1 - p)); two-sided p in extras.

    A test statistic, not an estimate: it grows with n for a fixed miscalibration, so it has
    no interval (target 0). Undefined when every p is 0.5, 0 or 1 (zero variance). Numerator
    and variance are polynomials in p: exact from the per-row sums of p^k.

    References
    ----------
    .. [1] Spiegelhalter DJ. Probabilistic prediction in patient management and clinical
       trials. Stat Med 1986;5(5):421-433.
    """
    from scipy.stats import norm

    m0, m1 = seg.seg_moments(0), seg.seg_moments(1)
    P = seg.n_pos
    # cases: (1 - p)(1 - 2p) = 1 - 3p + 2p^2; controls: -p(1 - 2p) = -p + 2p^2
    num = P - 3 * m1[:, 0] + 2 * m1[:, 1] - m0[:, 0] + 2 * m0[:, 1]
    m = m0 + m1
    var = m[:, 0] - 5 * m[:, 1] + 8 * m[:, 2] - 4 * m[:, 3]  # (1 - 2p)^2 p (1 - p)
    k = seg.n_segments
    reason = _none(k)
    zero = ~(var > 1e-300)
    reason[zero] = "zero variance: every prediction is 0, 0.5 or 1"
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(zero, np.nan, num / np.sqrt(np.where(zero, 1, var)))
    nan = np.full(k, np.nan)
    return LevelValues(z, nan, nan.copy(), None, reason, {"p_value": 2 * norm.sf(np.abs(z))},
                       ctx.confidence_level)


_C = frozenset({"y_true", "y_score"})
for _spec in (
    MetricSpec("brier", "Brier score", "calibration", _C, False, None, "wald", None,
               "Mean squared difference between predicted probability and outcome.", REF_BRIER,
               kernel=brier_kernel, valid_range=(0.0, 1.0), summary="exact",
               bootstrap_bins="calibration"),
    MetricSpec("calibration_slope", "Calibration slope", "calibration", _C, None, 1.0, "wald",
               None, "Slope of logistic regression of y on logit(p).",
               REF_COX + " " + REF_VAN_CALSTER, kernel=calibration_slope_kernel,
               summary="binned", heterogeneity="lr_interaction", bootstrap_bins="calibration"),
    MetricSpec("calibration_intercept", "Calibration-in-the-large", "calibration", _C, None, 0.0,
               "wald", None, "Intercept of logistic regression of y with offset logit(p).",
               REF_VAN_CALSTER, kernel=calibration_intercept_kernel, summary="binned",
               bootstrap_bins="calibration", abbrev="CITL"),
    MetricSpec("oe_ratio", "Observed/expected ratio", "calibration", _C, None, 1.0,
               "exact-poisson", None, "Σy/Σp with an exact Poisson interval.", REF_OE,
               kernel=oe_ratio_kernel, valid_range=(0.0, math.inf), summary="exact",
               bootstrap_bins="calibration", abbrev="O/E"),
    MetricSpec("ece", "Expected calibration error", "calibration", _C, False, None, "none",
               None, "Σ_b (n_b/n)|ȳ_b - p̄_b| over equal-width bins (10 by default); "
               "descriptive, no interval.", REF_ECE,
               kernel=ece_kernel, valid_range=(0.0, 1.0), summary="binned", abbrev="ECE"),
    MetricSpec("spiegelhalter_z", "Spiegelhalter z", "calibration", _C, None, 0.0, "none", None,
               "Spiegelhalter's calibration test statistic (two-sided p).", REF_SPIEGELHALTER,
               kernel=spiegelhalter_kernel, summary="exact"),
):
    register_metric(_spec)
