"""Threshold and ranking metrics for a binary reference standard.

Threshold metrics dichotomise the score: ``y_score >= threshold`` is a positive call (a score
exactly at the threshold is positive, as in sklearn's ``roc_curve``).
"""

from __future__ import annotations

import math

import numpy as np

from rwe._results import Interval
from rwe.metrics._registry import MetricData, MetricSpec, MetricValue, register_metric

__all__: list[str] = []

_NO_POS = "no positive cases"
_NO_NEG = "no negative cases"
_NO_PRED_POS = "no predicted positives"
_NO_PRED_NEG = "no predicted negatives"
_ONE_CLASS = "one class only"

REF_FDA2007 = ("US FDA. Statistical Guidance on Reporting Results from Studies Evaluating "
               "Diagnostic Tests. Center for Devices and Radiological Health, 2007.")
REF_WILSON = ("Wilson EB. Probable inference, the law of succession, and statistical inference. "
              "J Am Stat Assoc 1927;22(158):209-212. Clopper CJ, Pearson ES. The use of "
              "confidence or fiducial limits illustrated in the case of the binomial. "
              "Biometrika 1934;26(4):404-413.")
REF_SIMEL = ("Simel DL, Samsa GP, Matchar DB. Likelihood ratios with confidence: sample size "
             "estimation for diagnostic test studies. J Clin Epidemiol 1991;44(8):763-770.")
REF_VICKERS = ("Vickers AJ, Elkin EB. Decision curve analysis: a novel method for evaluating "
               "prediction models. Med Decis Making 2006;26(6):565-574.")
REF_DELONG = ("DeLong ER, DeLong DM, Clarke-Pearson DL. Comparing the areas under two or more "
              "correlated receiver operating characteristic curves: a nonparametric approach. "
              "Biometrics 1988;44(3):837-845.")
REF_BOYD = ("Boyd K, Eng KH, Page CD. Area under the precision-recall curve: point estimates "
            "and confidence intervals. In: ECML PKDD 2013, LNCS 8190, pp. 451-466. Springer.")


def _stats():
    import rwe.stats as stats

    return stats


def _proportion(data: MetricData, metric: str, x: int, n: int, empty_reason: str,
                **extras) -> MetricValue:
    """x/n with the interval chosen by ``data.proportion_interval`` (Wilson or Clopper-Pearson)."""
    counts = dict(data.confusion)
    if n == 0:
        return data.value(metric, math.nan, reason=empty_reason, **counts, **extras)
    ci = _stats().proportion_ci(x, n, confidence_level=data.confidence_level,
                                method=data.proportion_interval)
    ci = Interval(float(ci.low), float(ci.high), ci.level, ci.method)
    return data.value(metric, x / n, ci, count=x, nobs=n, **counts, **extras)


def sensitivity(data: MetricData) -> MetricValue:
    """Sensitivity (recall, true-positive rate) TP/(TP+FN) with a Wilson or Clopper-Pearson CI.

    References
    ----------
    .. [1] US FDA, Statistical Guidance on Reporting Results from Studies Evaluating
       Diagnostic Tests, 2007 (score interval).
    .. [2] Wilson EB. J Am Stat Assoc 1927;22:209-212.
    """
    c = data.confusion
    return _proportion(data, "sensitivity", c["tp"], c["tp"] + c["fn"], _NO_POS)


def specificity(data: MetricData) -> MetricValue:
    """Specificity (true-negative rate) TN/(TN+FP) with a Wilson or Clopper-Pearson CI.

    References
    ----------
    .. [1] US FDA, Statistical Guidance on Reporting Results from Studies Evaluating
       Diagnostic Tests, 2007.
    """
    c = data.confusion
    return _proportion(data, "specificity", c["tn"], c["tn"] + c["fp"], _NO_NEG)


def ppv(data: MetricData) -> MetricValue:
    """Positive predictive value (precision) TP/(TP+FP); Wilson or Clopper-Pearson CI.

    The interval conditions on the number of positive calls (binomial in TP+FP).

    References
    ----------
    .. [1] US FDA, Statistical Guidance on Reporting Results from Studies Evaluating
       Diagnostic Tests, 2007.
    """
    c = data.confusion
    return _proportion(data, "ppv", c["tp"], c["tp"] + c["fp"], _NO_PRED_POS)


def npv(data: MetricData) -> MetricValue:
    """Negative predictive value TN/(TN+FN); Wilson or Clopper-Pearson CI.

    References
    ----------
    .. [1] US FDA, Statistical Guidance on Reporting Results from Studies Evaluating
       Diagnostic Tests, 2007.
    """
    c = data.confusion
    return _proportion(data, "npv", c["tn"], c["tn"] + c["fn"], _NO_PRED_NEG)


def accuracy(data: MetricData) -> MetricValue:
    """Accuracy (overall agreement) (TP+TN)/N; Wilson or Clopper-Pearson CI.

    References
    ----------
    .. [1] US FDA, Statistical Guidance on Reporting Results from Studies Evaluating
       Diagnostic Tests, 2007 (overall percent agreement).
    """
    c = data.confusion
    return _proportion(data, "accuracy", c["tp"] + c["tn"], data.n, "no observations")


def fpr(data: MetricData) -> MetricValue:
    """False-positive rate FP/(FP+TN) = 1 - specificity; Wilson or Clopper-Pearson CI.

    References
    ----------
    .. [1] Wilson EB. J Am Stat Assoc 1927;22:209-212.
    """
    c = data.confusion
    return _proportion(data, "fpr", c["fp"], c["fp"] + c["tn"], _NO_NEG)


def fnr(data: MetricData) -> MetricValue:
    """False-negative rate FN/(FN+TP) = 1 - sensitivity; Wilson or Clopper-Pearson CI.

    References
    ----------
    .. [1] Wilson EB. J Am Stat Assoc 1927;22:209-212.
    """
    c = data.confusion
    return _proportion(data, "fnr", c["fn"], c["fn"] + c["tp"], _NO_POS)


def _likelihood_ratio(data: MetricData, positive: bool) -> MetricValue:
    c = data.confusion
    tp, fp, fn, tn = c["tp"], c["fp"], c["fn"], c["tn"]
    name = "lr_positive" if positive else "lr_negative"
    if tp + fn == 0:
        return data.value(name, math.nan, reason=_NO_POS, **c)
    if tn + fp == 0:
        return data.value(name, math.nan, reason=_NO_NEG, **c)
    se = tp / (tp + fn)
    sp = tn / (tn + fp)
    # LR+ = Se/(1-Sp) (numerator count tp, denominator count fp);
    # LR- = (1-Se)/Sp (numerator count fn, denominator count tn).
    num, den = (tp, fp) if positive else (fn, tn)
    label = "LR+" if positive else "LR-"
    if num == 0 and den == 0:
        what = "sensitivity is 0 and specificity is 1" if positive else \
            "sensitivity is 1 and specificity is 0"
        return data.value(name, math.nan, reason=f"{what}: {label} is 0/0", **c)
    if den == 0:
        what = "no false positives" if positive else "no true negatives"
        return data.value(name, math.inf, reason=f"{what}: {label} is infinite", **c)
    if num == 0:
        what = "no true positives" if positive else "no false negatives"
        return data.value(name, 0.0, reason=f"{what}: {label} is 0 and its log-method interval "
                          "is undefined", **c)
    res = _stats().likelihood_ratios(tp, fn, fp, tn, confidence_level=data.confidence_level)
    ci = res.ci_pos if positive else res.ci_neg
    est = se / (1 - sp) if positive else (1 - se) / sp
    reason = None
    if ci.low == ci.high:
        reason = (f"log-method standard error of {label} is 0 (both proportions are 1): the "
                  "interval has zero width")
    return data.value(name, est, Interval(float(ci.low), float(ci.high), ci.level, ci.method),
                      reason=reason, **c)


def lr_positive(data: MetricData) -> MetricValue:
    """Positive likelihood ratio Se/(1-Sp) with the log-method CI of Simel et al. (1991).

    ``SE(log LR+) = sqrt(1/TP - 1/(TP+FN) + 1/FP - 1/(FP+TN))``. With no false positives LR+ is
    reported as ``inf`` with a reason; with no true positives it is 0 without an interval.

    References
    ----------
    .. [1] Simel DL, Samsa GP, Matchar DB. Likelihood ratios with confidence: sample size
       estimation for diagnostic test studies. J Clin Epidemiol 1991;44(8):763-770.
    """
    return _likelihood_ratio(data, True)


def lr_negative(data: MetricData) -> MetricValue:
    """Negative likelihood ratio (1-Se)/Sp with the log-method CI of Simel et al. (1991).

    References
    ----------
    .. [1] Simel DL, Samsa GP, Matchar DB. J Clin Epidemiol 1991;44(8):763-770.
    """
    return _likelihood_ratio(data, False)


def net_benefit(data: MetricData) -> MetricValue:
    """Net benefit at threshold probability t: TP/N - FP/N * t/(1-t) (Vickers & Elkin 2006).

    ``threshold`` is both the classification threshold and the threshold probability, so it
    must lie in (0, 1). Net benefit is the mean of per-patient contributions
    ``u_i = pos_i * (y_i - (1 - y_i) t/(1-t))``; the interval is the Wald interval
    ``NB ± z sd(u)/sqrt(n)`` (sd with ddof = 1), i.e. the delta method for this multinomial
    mean, with bounds clipped to the attainable range [-t/(1-t), 1]. With no predicted positives NB is exactly 0 ("treat none") and no interval is given.

    References
    ----------
    .. [1] Vickers AJ, Elkin EB. Decision curve analysis: a novel method for evaluating
       prediction models. Med Decis Making 2006;26(6):565-574.
    """
    from rwe._validation import check_real

    t = check_real(data.threshold, "threshold", low=0, high=1, low_inclusive=False,
                   high_inclusive=False)
    w = t / (1 - t)
    c = data.confusion
    u = data.y_pred * np.where(data.y_true, 1.0, -w)
    est = float(u.mean())
    if c["tp"] + c["fp"] == 0:
        return data.value("net_benefit", est, reason=f"{_NO_PRED_POS}: net benefit is 0 with "
                          "no sampling variability", threshold=t, **c)
    if data.n < 2:
        return data.value("net_benefit", est, reason="n = 1: no interval", threshold=t, **c)
    se = float(u.std(ddof=1) / math.sqrt(data.n))
    ci = _stats().wald_ci(est, se, confidence_level=data.confidence_level)
    ci = Interval(max(float(ci.low), -w), min(float(ci.high), 1.0), ci.level, "wald")
    return data.value("net_benefit", est, ci, threshold=t, se=se, **c)


def auroc(data: MetricData) -> MetricValue:
    """Area under the ROC curve with the DeLong (1988) CI (fast midrank algorithm).

    Equals ``sklearn.metrics.roc_auc_score``; ties in the score count 1/2.

    References
    ----------
    .. [1] DeLong ER, DeLong DM, Clarke-Pearson DL. Comparing the areas under two or more
       correlated receiver operating characteristic curves: a nonparametric approach.
       Biometrics 1988;44(3):837-845.
    .. [2] Sun X, Xu W. Fast implementation of DeLong's algorithm for comparing the areas under
       correlated receiver operating characteristic curves. IEEE Signal Process Lett
       2014;21(11):1389-1393.
    """
    pos = data.positives
    neg = data.n - pos
    if pos == 0 or neg == 0:
        return data.value("auroc", math.nan, reason=f"{_ONE_CLASS} ({_NO_POS if pos == 0 else _NO_NEG})",
                          n_pos=pos, n_neg=neg)
    res = _stats().auc_delong(data.y_true, data.y_score)
    if not math.isfinite(res.variance):
        return data.value("auroc", float(res.auc), reason="a single positive or negative case: "
                          "DeLong variance undefined, no interval", n_pos=pos, n_neg=neg)
    ci = res.confidence_interval(data.confidence_level)
    return data.value("auroc", float(res.auc),
                      Interval(float(ci.low), float(ci.high), ci.level, ci.method),
                      variance=float(res.variance), se=float(res.se), n_pos=pos, n_neg=neg)


def auprc(data: MetricData) -> MetricValue:
    """Area under the precision-recall curve as average precision, with a logit-Wald CI.

    The estimate is ``sklearn.metrics.average_precision_score`` (step-wise AP, no
    interpolation). The interval is the logit interval of Boyd et al. (2013):
    ``expit(logit(AP) ± z / sqrt(n_pos AP (1 - AP)))`` with ``n_pos`` the number of positive
    cases; it is undefined when AP is 1.

    References
    ----------
    .. [1] Boyd K, Eng KH, Page CD. Area under the precision-recall curve: point estimates and
       confidence intervals. ECML PKDD 2013, LNCS 8190:451-466.
    """
    from scipy.special import expit, logit
    from scipy.stats import norm
    from sklearn.metrics import average_precision_score

    pos = data.positives
    neg = data.n - pos
    if pos == 0 or neg == 0:
        return data.value("auprc", math.nan, reason=f"{_ONE_CLASS} ({_NO_POS if pos == 0 else _NO_NEG})",
                          n_pos=pos, n_neg=neg, prevalence=pos / data.n)
    ap = float(average_precision_score(data.y_true, data.y_score))
    if not 0 < ap < 1:
        return data.value("auprc", ap, reason=f"AP = {ap:g}: logit interval undefined",
                          n_pos=pos, n_neg=neg, prevalence=pos / data.n)
    z = float(norm.ppf(0.5 + data.confidence_level / 2))
    tau = 1.0 / math.sqrt(pos * ap * (1 - ap))
    eta = float(logit(ap))
    ci = Interval(float(expit(eta - z * tau)), float(expit(eta + z * tau)),
                  data.confidence_level, "logit-wald")
    return data.value("auprc", ap, ci, n_pos=pos, n_neg=neg, prevalence=pos / data.n)


_T = frozenset({"y_true", "y_score", "threshold"})
_R = frozenset({"y_true", "y_score"})

for _spec in (
    MetricSpec("sensitivity", "Sensitivity", "threshold", _T, True, None, "wilson", sensitivity,
               "TP/(TP+FN): share of positive cases called positive (recall, TPR).",
               REF_FDA2007 + " " + REF_WILSON),
    MetricSpec("specificity", "Specificity", "threshold", _T, True, None, "wilson", specificity,
               "TN/(TN+FP): share of negative cases called negative (TNR).",
               REF_FDA2007 + " " + REF_WILSON),
    MetricSpec("ppv", "Positive predictive value", "threshold", _T, True, None, "wilson", ppv,
               "TP/(TP+FP): share of positive calls that are positive cases (precision).",
               REF_FDA2007 + " " + REF_WILSON),
    MetricSpec("npv", "Negative predictive value", "threshold", _T, True, None, "wilson", npv,
               "TN/(TN+FN): share of negative calls that are negative cases.",
               REF_FDA2007 + " " + REF_WILSON),
    MetricSpec("accuracy", "Accuracy", "threshold", _T, True, None, "wilson", accuracy,
               "(TP+TN)/N: overall agreement with the reference standard.",
               REF_FDA2007 + " " + REF_WILSON),
    MetricSpec("fpr", "False-positive rate", "threshold", _T, False, None, "wilson", fpr,
               "FP/(FP+TN) = 1 - specificity.", REF_WILSON),
    MetricSpec("fnr", "False-negative rate", "threshold", _T, False, None, "wilson", fnr,
               "FN/(FN+TP) = 1 - sensitivity.", REF_WILSON),
    MetricSpec("lr_positive", "Positive likelihood ratio", "threshold", _T, True, None, "log",
               lr_positive, "Se/(1-Sp), log-method interval.", REF_SIMEL),
    MetricSpec("lr_negative", "Negative likelihood ratio", "threshold", _T, False, None, "log",
               lr_negative, "(1-Se)/Sp, log-method interval.", REF_SIMEL),
    MetricSpec("net_benefit", "Net benefit", "threshold", _T, True, None, "wald", net_benefit,
               "TP/N - FP/N * t/(1-t) at threshold probability t; Wald interval.", REF_VICKERS),
    MetricSpec("auroc", "AUROC", "ranking", _R, True, None, "delong", auroc,
               "Area under the ROC curve (Mann-Whitney), DeLong interval.", REF_DELONG),
    MetricSpec("auprc", "AUPRC (average precision)", "ranking", _R, True, None, "wald", auprc,
               "Average precision (sklearn definition), logit-Wald interval (Boyd 2013).",
               REF_BOYD),
):
    register_metric(_spec)
