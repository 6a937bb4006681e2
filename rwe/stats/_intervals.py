"""Confidence intervals for proportions, rates, ratios and Wald estimates; goal tests.

All intervals are returned as :class:`rwe._results.Interval` (two-sided level + method name).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import special

from rwe._results import Interval, ResultMixin
from rwe._validation import check_choice, check_level, check_real
from rwe.exceptions import InvalidParameterError

__all__ = [
    "PROPORTION_CI_METHODS",
    "proportion_ci",
    "wald_ci",
    "poisson_ratio_ci",
    "likelihood_ratios",
    "LikelihoodRatioResult",
    "performance_goal_test",
    "GoalTestResult",
    "judge_goal",
    "auc_interval",
    "wilson_effective",
    "AUC_INTERVALS",
    "REASON_UNREACHABLE",
    "REASON_UNDEFINED_BOUND",
]

#: Interval methods for a binomial proportion (sensitivity, specificity, PPV, ...).
PROPORTION_CI_METHODS = ("wilson", "clopper-pearson")
_STATSMODELS_METHOD = {"wilson": "wilson", "clopper-pearson": "beta"}

_MSG_NEGATIVE = "{name} must be >= 0, got {value!r}"
_MSG_NOT_FINITE = "{name} must be finite, got {value!r}"
_MSG_COUNT_GT_NOBS = "count must not exceed nobs, got count={count!r} and nobs={nobs!r}"
_MSG_EXPECTED_POSITIVE = "expected must be > 0, got {value!r}"


def _z(confidence_level: float) -> float:
    """Two-sided standard-normal critical value ``z_{(1+level)/2}``."""
    return float(special.ndtri(0.5 + confidence_level / 2.0))


def _scalar_or_array(a: np.ndarray, scalar: bool) -> Any:
    return float(a) if scalar else a


def _as_nonneg(values: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"{name} must be a number or an array of numbers, "
                                    f"got {values!r}") from None
    if not np.isfinite(arr).all():
        raise InvalidParameterError(_MSG_NOT_FINITE.format(name=name, value=values))
    if (arr < 0).any():
        raise InvalidParameterError(_MSG_NEGATIVE.format(name=name, value=values))
    return arr


def proportion_ci(count: Any, nobs: Any, *, confidence_level: float = 0.95,
                  method: Literal["wilson", "clopper-pearson"] = "wilson") -> Interval:
    """Two-sided confidence interval for a binomial proportion ``count / nobs``.

    Parameters
    ----------
    count, nobs : int or array_like
        Successes and trials (scalars or broadcastable arrays); ``0 <= count <= nobs``.
    confidence_level : float, default 0.95
        Two-sided confidence level.
    method : {"wilson", "clopper-pearson"}, default "wilson"
        ``"wilson"``: score interval [1]_, FDA's default "score CI" [3]_.
        ``"clopper-pearson"``: exact interval from beta quantiles [2]_.

    Returns
    -------
    Interval
        ``low``/``high`` are floats for scalar input, arrays otherwise. ``method`` is the
        rwe name (``"wilson"`` or ``"clopper-pearson"``).

    Notes
    -----
    Delegates to :func:`statsmodels.stats.proportion.proportion_confint` (``"wilson"``,
    ``"beta"``); R equivalent ``binom::binom.confint(x, n, methods=c("wilson", "exact"))``.
    Defined edge cases: ``count = 0`` gives ``low = 0`` and ``count = nobs`` gives ``high = 1``
    exactly; ``nobs = 0`` gives NaN bounds (no warning).

    References
    ----------
    .. [1] Wilson EB. Probable inference, the law of succession, and statistical inference.
       J Am Stat Assoc. 1927;22(158):209-212.
    .. [2] Clopper CJ, Pearson ES. The use of confidence or fiducial limits illustrated in the
       case of the binomial. Biometrika. 1934;26(4):404-413.
    .. [3] FDA. Statistical Guidance on Reporting Results from Studies Evaluating Diagnostic
       Tests. March 13, 2007.

    Examples
    --------
    >>> ci = proportion_ci(44, 51)
    >>> round(ci.low, 6), round(ci.high, 6)
    (0.742783, 0.931889)
    """
    level = check_level(confidence_level)
    check_choice(method, "method", PROPORTION_CI_METHODS)
    c = _as_nonneg(count, "count")
    n = _as_nonneg(nobs, "nobs")
    try:
        c, n = np.broadcast_arrays(c, n)
    except ValueError:
        raise InvalidParameterError(f"count and nobs must have broadcastable shapes, got "
                                    f"{np.shape(count)} and {np.shape(nobs)}") from None
    if (c > n).any():
        raise InvalidParameterError(_MSG_COUNT_GT_NOBS.format(count=count, nobs=nobs))
    scalar = c.ndim == 0
    empty = n == 0
    n_safe = np.where(empty, 1.0, n)
    c_safe = np.where(empty, 0.0, c)
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(c_safe, n_safe, alpha=1.0 - level,
                                   method=_STATSMODELS_METHOD[method])
    low = np.array(low, dtype=float, copy=True)
    high = np.array(high, dtype=float, copy=True)
    low = np.where(c_safe == 0, 0.0, np.clip(low, 0.0, 1.0))
    high = np.where(c_safe == n_safe, 1.0, np.clip(high, 0.0, 1.0))
    low = np.where(empty, np.nan, low)
    high = np.where(empty, np.nan, high)
    return Interval(_scalar_or_array(low, scalar), _scalar_or_array(high, scalar), level, method)


def wald_ci(estimate: Any, se: Any, *, confidence_level: float = 0.95,
            method: str = "wald") -> Interval:
    """Normal-theory interval ``estimate ± z_{(1+level)/2} · se``.

    Parameters
    ----------
    estimate, se : float or array_like
        Point estimate(s) and standard error(s); NaN propagates.
    confidence_level : float, default 0.95
    method : str, default "wald"
        Label stored in :attr:`Interval.method` (e.g. ``"delong"``).

    Returns
    -------
    Interval
    """
    level = check_level(confidence_level)
    est = np.asarray(estimate, dtype=float)
    s = np.asarray(se, dtype=float)
    if (s < 0).any():
        raise InvalidParameterError(_MSG_NEGATIVE.format(name="se", value=se))
    z = _z(level)
    low, high = est - z * s, est + z * s
    scalar = low.ndim == 0
    return Interval(_scalar_or_array(low, scalar), _scalar_or_array(high, scalar), level,
                    str(method))


def poisson_ratio_ci(observed: Any, expected: Any, *, confidence_level: float = 0.95) -> Interval:
    """Exact (Garwood) interval for an observed/expected ratio with ``expected`` fixed.

    For ``O`` observed events, the bounds of the Poisson mean are
    ``chi2.ppf(α/2, 2O)/2`` (0 when ``O = 0``) and ``chi2.ppf(1-α/2, 2O+2)/2`` [1]_; dividing
    by ``E`` gives the interval of ``O/E``, e.g. for the calibration ratio O/E = Σy/Σp.

    Parameters
    ----------
    observed : int or array_like
        Observed event count(s) ``O >= 0``.
    expected : float or array_like
        Expected count(s) ``E > 0``, treated as known constants.
    confidence_level : float, default 0.95

    Returns
    -------
    Interval
        ``method = "exact-poisson"``.

    Notes
    -----
    R equivalent: ``poisson.test(O, T = E)$conf.int``. Treating ``E`` as fixed ignores the
    sampling variability of the predictions, which is usually negligible next to that of O.

    References
    ----------
    .. [1] Garwood F. Fiducial limits for the Poisson distribution. Biometrika.
       1936;28(3/4):437-442.
    """
    level = check_level(confidence_level)
    o = _as_nonneg(observed, "observed")
    try:
        e = np.asarray(expected, dtype=float)
    except (TypeError, ValueError):
        raise InvalidParameterError(_MSG_EXPECTED_POSITIVE.format(value=expected)) from None
    if not (np.isfinite(e) & (e > 0)).all():
        raise InvalidParameterError(_MSG_EXPECTED_POSITIVE.format(value=expected))
    o, e = np.broadcast_arrays(o, e)
    a = 1.0 - level
    from scipy import stats

    with np.errstate(invalid="ignore"):
        lo = np.where(o > 0, stats.chi2.ppf(a / 2, 2 * np.maximum(o, 1e-300)) / 2.0, 0.0)
    hi = stats.chi2.ppf(1 - a / 2, 2 * o + 2) / 2.0
    scalar = o.ndim == 0
    return Interval(_scalar_or_array(lo / e, scalar), _scalar_or_array(hi / e, scalar), level,
                    "exact-poisson")


# ----------------------------------------------------------------------------- likelihood ratios


@dataclass(frozen=True)
class LikelihoodRatioResult(ResultMixin):
    """Positive and negative likelihood ratios with log-method intervals.

    Attributes
    ----------
    lr_pos, lr_neg : float
        LR+ = Se/(1-Sp), LR- = (1-Se)/Sp; ``inf`` or ``nan`` for zero cells (see ``note``).
    ci_pos, ci_neg : Interval
        Log-method intervals (Simel et al. 1991); NaN bounds when undefined.
    note : str
        Why an estimate or interval is infinite/undefined ("" when everything is defined).
    """

    lr_pos: float
    lr_neg: float
    ci_pos: Interval
    ci_neg: Interval
    note: str = ""

    def to_frame(self) -> pd.DataFrame:
        rows = [{"quantity": name, "estimate": est, "ci_low": ci.low, "ci_high": ci.high,
                 "ci_level": ci.level, "ci_method": ci.method}
                for name, est, ci in (("lr_pos", self.lr_pos, self.ci_pos),
                                      ("lr_neg", self.lr_neg, self.ci_neg))]
        return pd.DataFrame(rows)


def _lr_one(a: int, n_dis: int, b: int, n_non: int, z: float, level: float,
            label: str) -> tuple[float, Interval, str]:
    """Ratio (a/n_dis)/(b/n_non) with the log-method interval (Katz-type variance)."""
    ci_nan = Interval(math.nan, math.nan, level, "log")
    if n_dis == 0 or n_non == 0:
        return math.nan, ci_nan, f"{label} undefined: no {'diseased' if n_dis == 0 else 'non-diseased'} subjects"
    if a == 0 and b == 0:
        return math.nan, ci_nan, f"{label} undefined (0/0): both numerator and denominator cells are 0"
    if b == 0:
        return math.inf, ci_nan, f"{label} infinite: denominator cell is 0, interval not defined"
    if a == 0:
        return 0.0, ci_nan, f"{label} is 0: numerator cell is 0, log-method interval not defined"
    est = (a / n_dis) / (b / n_non)
    se = math.sqrt(1 / a - 1 / n_dis + 1 / b - 1 / n_non)
    return est, Interval(est * math.exp(-z * se), est * math.exp(z * se), level, "log"), ""


def likelihood_ratios(tp: int, fn: int, fp: int, tn: int, *,
                      confidence_level: float = 0.95) -> LikelihoodRatioResult:
    """Diagnostic likelihood ratios with log-method confidence intervals.

    ``LR+ = Se/(1-Sp) = [tp/(tp+fn)] / [fp/(fp+tn)]`` and
    ``LR- = (1-Se)/Sp = [fn/(tp+fn)] / [tn/(fp+tn)]``, with intervals
    ``exp(log LR ± z·se)`` where [1]_

    ``se(log LR+) = sqrt(1/tp - 1/(tp+fn) + 1/fp - 1/(fp+tn))`` and
    ``se(log LR-) = sqrt(1/fn - 1/(tp+fn) + 1/tn - 1/(fp+tn))``.

    Parameters
    ----------
    tp, fn, fp, tn : int
        Cells of the 2x2 table (diseased: tp, fn; non-diseased: fp, tn).
    confidence_level : float, default 0.95

    Returns
    -------
    LikelihoodRatioResult

    Notes
    -----
    The formula is the Katz log interval for a ratio of two independent proportions, so it
    equals ``scipy.stats.contingency.relative_risk(tp, tp+fn, fp, fp+tn)``'s interval.
    Zero cells: no continuity correction is applied. A zero denominator cell gives an
    infinite ratio, a zero numerator cell gives 0, 0/0 gives NaN; in each case the interval
    is NaN and ``note`` says why (a 0.5 correction, if wanted, is the caller's decision).

    References
    ----------
    .. [1] Simel DL, Samsa GP, Matchar DB. Likelihood ratios with confidence: sample size
       estimation for diagnostic test studies. J Clin Epidemiol. 1991;44(8):763-770.
    """
    level = check_level(confidence_level)
    cells = {}
    for name, v in (("tp", tp), ("fn", fn), ("fp", fp), ("tn", tn)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise InvalidParameterError(f"{name} must be a non-negative integer, got {v!r}")
        cells[name] = int(v)
    z = _z(level)
    n_dis = cells["tp"] + cells["fn"]
    n_non = cells["fp"] + cells["tn"]
    lp, cp, why_p = _lr_one(cells["tp"], n_dis, cells["fp"], n_non, z, level, "LR+")
    ln, cn, why_n = _lr_one(cells["fn"], n_dis, cells["tn"], n_non, z, level, "LR-")
    note = "; ".join(w for w in (why_p, why_n) if w)
    return LikelihoodRatioResult(lp, ln, cp, cn, note)


# ----------------------------------------------------------------------------- goal test


@dataclass(frozen=True)
class GoalTestResult(ResultMixin):
    """Comparison of a confidence bound with a pre-specified performance goal.

    Attributes
    ----------
    estimate : float
    bound : float
        The CI bound that is compared (lower when higher is better, else upper).
    goal : float
    met : bool
    bound_side : {"lower", "upper"}
    reason : str
        A one-line explanation of the verdict.
    """

    estimate: float
    bound: float
    goal: float
    met: bool
    bound_side: str
    reason: str

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"estimate": self.estimate, "bound": self.bound,
                              "bound_side": self.bound_side, "goal": self.goal,
                              "met": self.met, "reason": self.reason}])


#: AUROC interval methods (:func:`auc_interval`).
AUC_INTERVALS = ("delong-logit-t", "delong")
REASON_AUC_EDGE = ("AUROC is {auc:g} ({why}): the logit interval is undefined, so no bound can "
                   "be judged")


def auc_interval(auc: Any, term_pos: Any, term_neg: Any, *, df_pos: Any, df_neg: Any,
                 confidence_level: float = 0.95, method: str = "delong-logit-t"
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Confidence interval of an AUROC from its two variance terms, vectorized.

    ``term_pos`` and ``term_neg`` are the case and control parts of the variance (DeLong's
    ``var(V10)/m`` and ``var(V01)/n``, or their cluster-level analogues of Obuchowski 1997);
    ``df_pos``, ``df_neg`` the units behind them minus one (cases and controls, or clusters).

    ``"delong-logit-t"`` (the default): the range-preserving logit interval
    ``expit(logit(A) ± t_df SE / (A (1 - A)))`` with the Welch-Satterthwaite degrees of
    freedom ``df = V² / (term_pos² / df_pos + term_neg² / df_neg)`` of the Brunner-Munzel
    statistic [1]_ [2]_. In simulation (binormal, 15 cases and 45 controls, AUROC 0.95) it
    covers 95.0% (Wald: 83%) with 2.8% of lower bounds above the truth (Wald: 17%);
    benchmarks/README.md has the study. At AUROC 0 or 1, or with zero variance (perfect
    separation, all scores tied), the interval is undefined: NaN bounds and a reason,
    never a zero-width interval.

    ``"delong"``: the Wald interval ``A ± z SE`` clipped to [0, 1] (pROC ``ci.auc(method =
    "delong")``; kept to reproduce pROC; it under-covers with few cases and high AUROC).

    Returns
    -------
    low, high, reason : numpy.ndarray
        ``reason`` (object) is None where the interval is defined.

    References
    ----------
    .. [1] Brunner E, Munzel U. The nonparametric Behrens-Fisher problem: asymptotic theory
       and a small-sample approximation. Biometrical J 2000;42(1):17-25.
    .. [2] Pauly M, Asendorf T, Konietschke F. Permutation-based inference for the AUC: a
       unified approach for continuous and discontinuous data. Biometrical J
       2016;58(6):1319-1337.
    .. [3] DeLong ER, DeLong DM, Clarke-Pearson DL. Comparing the areas under two or more
       correlated ROC curves. Biometrics 1988;44(3):837-845.
    """
    check_choice(method, "method", AUC_INTERVALS)
    level = check_level(confidence_level)
    a = np.atleast_1d(np.asarray(auc, dtype=float))
    tp = np.atleast_1d(np.asarray(term_pos, dtype=float))
    tn = np.atleast_1d(np.asarray(term_neg, dtype=float))
    var = tp + tn
    se = np.sqrt(np.maximum(var, 0.0))
    reason = np.full(a.size, None, dtype=object)
    if method == "delong":
        z = _z(level)
        lo, hi = np.clip(a - z * se, 0, 1), np.clip(a + z * se, 0, 1)
        bad = ~np.isfinite(var)
        lo[bad] = np.nan
        hi[bad] = np.nan
        return lo, hi, reason
    with np.errstate(invalid="ignore", divide="ignore"):
        df = var * var / (tp * tp / np.asarray(df_pos, dtype=float)
                          + tn * tn / np.asarray(df_neg, dtype=float))
        q = special.stdtrit(np.maximum(df, 1.0), 0.5 + level / 2)  # scipy.stats.t.ppf
        lg = np.log(a) - np.log1p(-a)
        half = q * se / (a * (1 - a))
        lo = special.expit(lg - half)
        hi = special.expit(lg + half)
    edge = np.isfinite(a) & ((a <= 0) | (a >= 1) | ~(var > 0))
    for i in np.flatnonzero(edge):
        why = ("perfect separation" if a[i] in (0.0, 1.0) else "all scores tied"
               if a[i] == 0.5 else "zero variance")
        reason[i] = REASON_AUC_EDGE.format(auc=a[i], why=why)
    lo[edge | ~np.isfinite(lo)] = np.nan
    hi[edge | ~np.isfinite(hi)] = np.nan
    return lo, hi, reason


def wilson_effective(count: Any, nobs: Any, design_effect: Any, *,
                     confidence_level: float = 0.95, method: str = "wilson") -> Interval:
    """Wilson (or Clopper-Pearson) interval of a proportion from clustered rows, with the
    effective sample size ``n / deff`` (Kish's design effect, floored at 1 so clustering
    never narrows the interval) and ``x = p n / deff`` [1]_ [2]_. A design effect that is
    NaN (p is 0 or 1: the rows carry no information on the clustering) is taken as 1.

    References
    ----------
    .. [1] Korn EL, Graubard BI. Confidence intervals for proportions with small expected
       number of positive counts estimated from survey data. Survey Methodology
       1998;24(2):193-201.
    .. [2] Kish L. Survey Sampling. Wiley; 1965 (design effect).
    """
    x = np.atleast_1d(np.asarray(count, dtype=float))
    n = np.atleast_1d(np.asarray(nobs, dtype=float))
    d = np.atleast_1d(np.asarray(design_effect, dtype=float))
    d = np.where(np.isfinite(d), np.maximum(d, 1.0), 1.0)
    n_eff = n / d
    with np.errstate(invalid="ignore", divide="ignore"):
        x_eff = np.where(n > 0, x / np.where(n > 0, n, 1) * n_eff, 0.0)
    return proportion_ci(x_eff, n_eff, confidence_level=confidence_level, method=method)


REASON_UNDEFINED_BOUND = "confidence bound undefined"
REASON_UNREACHABLE = ("goal unreachable at this sample size: even a perfect result in this "
                      "cell would not have its confidence bound beyond the goal")


def judge_goal(estimate: Any, low: Any, high: Any, goal: float, *, higher_is_better: bool,
               not_evaluable: Any = None, unreachable: Any = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Judge a performance goal on the confidence bound, not on the point estimate.

    With ``higher_is_better`` the goal is met when the lower bound of the two-sided interval
    exceeds ``goal`` (for a 95% interval this is the one-sided α = 0.025 test of
    H0: metric ≤ goal, METHODS.md C1); otherwise when the upper bound is below ``goal``.
    The one goal test of rwe: subgroup goals, change-control criteria and
    :func:`performance_goal_test` call it.

    Parameters
    ----------
    estimate, low, high : array_like
        Estimates and two-sided interval bounds per cell (NaN: undefined).
    goal : float
    higher_is_better : bool
    not_evaluable : array_like of object, optional
        Per cell, a reason why it must not be judged (None: judge it), e.g. below the
        minimum n.
    unreachable : array_like of bool, optional
        Cells where even a perfect result would not beat the goal (not evaluable).

    Returns
    -------
    status, bound, reason : numpy.ndarray
        ``status`` in {"pass", "fail", "not_evaluable"}; ``bound`` the bound compared;
        ``reason`` None or why not evaluable.
    side : {"lower", "upper"}
    """
    from rwe._evidence import STATUS_FAIL, STATUS_NOT_EVALUABLE, STATUS_PASS

    goal = check_real(goal, "goal")
    est = np.atleast_1d(np.asarray(estimate, dtype=float))
    bound = np.atleast_1d(np.asarray(low if higher_is_better else high, dtype=float))
    k = est.size
    reason = np.full(k, None, dtype=object)
    met = bound > goal if higher_is_better else bound < goal
    status = np.where(met, STATUS_PASS, STATUS_FAIL).astype(object)
    undefined = ~(np.isfinite(est) & np.isfinite(bound))
    reason[undefined] = REASON_UNDEFINED_BOUND
    if unreachable is not None:
        un = np.atleast_1d(np.asarray(unreachable, dtype=bool)) & ~met
        reason[un & ~undefined] = REASON_UNREACHABLE
        undefined = undefined | un
    if not_evaluable is not None:
        ne = np.atleast_1d(np.asarray(not_evaluable, dtype=object))
        given = np.array([r is not None for r in ne], dtype=bool)
        reason[given] = ne[given]
        undefined = undefined | given
    status[undefined] = STATUS_NOT_EVALUABLE
    return status, bound, reason, "lower" if higher_is_better else "upper"


def performance_goal_test(estimate: float, ci: Interval, goal: float, *,
                          higher_is_better: bool = True) -> GoalTestResult:
    """Judge a performance goal on the confidence bound, not on the point estimate.

    With ``higher_is_better`` the goal is met when the lower bound of the two-sided interval
    exceeds ``goal`` (for a 95% interval this is the one-sided α = 0.025 test of
    H0: metric ≤ goal, METHODS.md C1); otherwise when the upper bound is below ``goal``.
    A NaN bound (undefined interval) never meets the goal.

    Parameters
    ----------
    estimate : float
    ci : Interval
        Two-sided interval of the estimate.
    goal : float
    higher_is_better : bool, default True

    Returns
    -------
    GoalTestResult

    References
    ----------
    .. [1] FDA. Statistical Guidance on Reporting Results from Studies Evaluating Diagnostic
       Tests. 2007.
    """
    if not isinstance(ci, Interval):
        raise InvalidParameterError(f"ci must be an rwe Interval, got {type(ci).__name__}")
    goal = check_real(goal, "goal")
    status, bounds, _, side = judge_goal(estimate, ci.low, ci.high, goal,
                                         higher_is_better=higher_is_better)
    bound = float(bounds[0])
    pct = f"{ci.level:.0%}"
    if math.isnan(bound):
        return GoalTestResult(float(estimate), bound, goal, False, side,
                              f"{side} {pct} bound is undefined (NaN): goal not met")
    met = status[0] == "pass"
    rel = (">" if met else "<=") if higher_is_better else ("<" if met else ">=")
    verdict = "met" if met else "not met"
    return GoalTestResult(float(estimate), bound, goal, bool(met), side,
                          f"{side} {pct} bound {bound:.4g} {rel} goal {goal:.4g}: goal {verdict}")
