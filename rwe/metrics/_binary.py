"""Threshold and ranking metrics for a binary reference standard.

Threshold metrics dichotomise the score: ``y_score >= threshold`` is a positive call (a score
exactly at the threshold is positive, as in sklearn's ``roc_curve``).
"""

from __future__ import annotations

import math

import numpy as np

from rwe.metrics._registry import LevelValues, MetricSpec, register_metric

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


def _none(k: int) -> np.ndarray:
    return np.full(k, None, dtype=object)


def _cells(seg, names) -> np.ndarray:
    conf = seg.confusion
    return sum((conf[c] for c in names), np.zeros(seg.n_segments))


def proportion_kernel(num: tuple[str, ...], den: tuple[str, ...], empty_reason: str):
    """Kernel of a proportion ``sum(num cells) / sum(den cells)`` of the confusion matrix at
    the threshold, with the Wilson or Clopper-Pearson interval of
    :func:`rwe.stats.proportion_ci` (``ctx.proportion_interval``), vectorized over levels.
    Extras: ``count``, ``nobs`` and the four cells."""

    def kernel(seg, ctx):
        x = _cells(seg, num)
        d = _cells(seg, den)
        k = seg.n_segments
        with np.errstate(invalid="ignore", divide="ignore"):
            est = np.where(d > 0, x / np.where(d > 0, d, 1), np.nan)
        reason = _none(k)
        reason[d == 0] = empty_reason
        reason[seg.n == 0] = "no observations"
        conf = {c: v.astype(np.int64) for c, v in seg.confusion.items()}
        extras = {**conf, "count": x.astype(np.int64), "nobs": d.astype(np.int64)}
        if ctx.estimate_only:
            nan = np.full(k, np.nan)
            return LevelValues(est, nan, nan.copy(), None, reason, extras, ctx.confidence_level)
        ci = _stats().proportion_ci(x, d, confidence_level=ctx.confidence_level,
                                    method=ctx.proportion_interval)
        lo, hi = np.atleast_1d(ci.low).astype(float), np.atleast_1d(ci.high).astype(float)
        return LevelValues(est, lo, hi, ci.method, reason, extras, ctx.confidence_level)

    kernel.__doc__ = proportion_kernel.__doc__
    return kernel


_REF_SIMEL_DOC = """
    References
    ----------
    .. [1] Simel DL, Samsa GP, Matchar DB. Likelihood ratios with confidence: sample size
       estimation for diagnostic test studies. J Clin Epidemiol 1991;44(8):763-770.
"""


def _lr_kernel(positive: bool):
    """LR+ = Se/(1-Sp) or LR- = (1-Se)/Sp with the log-method interval of Simel et al.
    (1991), ``SE(log LR) = sqrt(1/a - 1/n_dis + 1/b - 1/n_non)`` for numerator count ``a``
    (tp for LR+, fn for LR-) and denominator count ``b`` (fp, tn); zero cells give 0, inf or
    0/0 with a reason and no interval (no continuity correction)."""
    label = "LR+" if positive else "LR-"

    def kernel(seg, ctx):
        c = seg.confusion
        tp, fn, fp, tn = c["tp"], c["fn"], c["fp"], c["tn"]
        k = seg.n_segments
        ndis, nnon = tp + fn, fp + tn
        a, b = (tp, fp) if positive else (fn, tn)
        reason = _none(k)
        with np.errstate(invalid="ignore", divide="ignore"):
            est = (a / ndis) / (b / nnon)
            se = np.sqrt(1 / a - 1 / ndis + 1 / b - 1 / nnon)
        z = _stats()._intervals._z(ctx.confidence_level)
        with np.errstate(invalid="ignore", over="ignore"):
            lo, hi = est * np.exp(-z * se), est * np.exp(z * se)
        both0 = (a == 0) & (b == 0)
        den0 = (b == 0) & ~both0
        num0 = (a == 0) & ~both0
        ok = (ndis > 0) & (nnon > 0)
        what0 = ("sensitivity is 0 and specificity is 1" if positive
                 else "sensitivity is 1 and specificity is 0")
        reason[ok & both0] = f"{what0}: {label} is 0/0"
        reason[ok & den0] = (f"{'no false positives' if positive else 'no true negatives'}: "
                             f"{label} is infinite")
        reason[ok & num0] = (f"{'no true positives' if positive else 'no false negatives'}: "
                             f"{label} is 0 and its log-method interval is undefined")
        zero_se = ok & ~(both0 | den0 | num0) & (se == 0)
        reason[zero_se] = (f"log-method standard error of {label} is 0 (both proportions are "
                           "1): the interval has zero width")
        reason[nnon == 0] = _NO_NEG
        reason[ndis == 0] = _NO_POS
        est = np.where(~ok | both0, np.nan, np.where(den0, np.inf, np.where(num0, 0.0, est)))
        bad = ~ok | both0 | den0 | num0
        lo = np.where(bad, np.nan, lo)
        hi = np.where(bad, np.nan, hi)
        extras = {cc: v.astype(np.int64) for cc, v in c.items()}
        return LevelValues(est, lo, hi, "log", reason, extras, ctx.confidence_level)

    kernel.__doc__ = _lr_kernel.__doc__ + _REF_SIMEL_DOC
    return kernel


def net_benefit_kernel(seg, ctx):
    """Net benefit at threshold probability t: TP/N - FP/N * t/(1-t) (Vickers & Elkin 2006).

    ``threshold`` is both the classification threshold and the threshold probability, so it
    must lie in (0, 1). Net benefit is the mean of per-patient contributions
    ``u_i = pos_i * (y_i - (1 - y_i) t/(1-t))``; the interval is the Wald interval
    ``NB ± z sd(u)/sqrt(n)`` (sd with ddof = 1, from the counts: ``sum u^2 = TP + FP w^2``),
    the delta method for this multinomial mean, with bounds clipped to the attainable range
    [-t/(1-t), 1]. With no predicted positives NB is exactly 0 ("treat none") and no interval
    is given.

    References
    ----------
    .. [1] Vickers AJ, Elkin EB. Decision curve analysis: a novel method for evaluating
       prediction models. Med Decis Making 2006;26(6):565-574.
    """
    from rwe._validation import check_real

    t = check_real(ctx.threshold, "threshold", low=0, high=1, low_inclusive=False,
                   high_inclusive=False)
    w = t / (1 - t)
    c = seg.confusion
    n = seg.n
    k = seg.n_segments
    with np.errstate(invalid="ignore", divide="ignore"):
        est = (c["tp"] - w * c["fp"]) / n
        var = (c["tp"] + w * w * c["fp"] - n * est * est) / (n - 1)
        se = np.sqrt(np.maximum(var, 0) / n)
    z = _stats()._intervals._z(ctx.confidence_level)
    lo = np.maximum(est - z * se, -w)
    hi = np.minimum(est + z * se, 1.0)
    reason = _none(k)
    calls = c["tp"] + c["fp"]
    one = n < 2
    reason[one] = "n = 1: no interval"
    reason[calls == 0] = f"{_NO_PRED_POS}: net benefit is 0 with no sampling variability"
    no_ci = one | (calls == 0)
    lo[no_ci] = np.nan
    hi[no_ci] = np.nan
    extras = {cc: v.astype(np.int64) for cc, v in c.items()}
    extras["threshold"] = np.full(k, t)
    extras["se"] = np.where(no_ci, np.nan, se)
    return LevelValues(est, lo, hi, "wald", reason, extras, ctx.confidence_level)


def auroc_kernel(seg, ctx):
    """Area under the ROC curve with its DeLong variance, for every level at once.

    :func:`rwe.stats.delong_segments` on the score histogram (one row per distinct score:
    exactly ``sklearn.metrics.roc_auc_score`` and pROC's DeLong variance; ties count 1/2).
    The interval is :func:`rwe.stats.auc_interval` with ``ctx.auroc_interval``: by default
    the logit interval with Brunner-Munzel (Welch-Satterthwaite) degrees of freedom, which
    keeps its coverage with few cases and high AUROC and is undefined (a reason, no bound)
    at AUROC 0 or 1 or zero variance; ``"delong"`` is pROC's Wald interval. On binned
    histograms the estimate is within ``extras["bound"]`` of the exact AUROC (same-bin
    case/control pairs count 1/2) and the method carries ``"-binned"``.

    References
    ----------
    .. [1] DeLong ER, DeLong DM, Clarke-Pearson DL. Comparing the areas under two or more
       correlated receiver operating characteristic curves: a nonparametric approach.
       Biometrics 1988;44(3):837-845.
    .. [2] Sun X, Xu W. Fast implementation of DeLong's algorithm for comparing the areas under
       correlated receiver operating characteristic curves. IEEE Signal Process Lett
       2014;21(11):1389-1393.
    """
    auc, var, bound, t10, t01 = _stats().delong_segments(seg.neg_count, seg.pos_count,
                                                          seg.starts, components=True)
    k = seg.n_segments
    npos, nneg = seg.n_pos, seg.n_neg
    reason = _none(k)
    single = np.isfinite(auc) & ~np.isfinite(var)
    reason[single] = "a single positive or negative case: DeLong variance undefined, no interval"
    reason[nneg == 0] = f"{_ONE_CLASS} ({_NO_NEG})"
    reason[npos == 0] = f"{_ONE_CLASS} ({_NO_POS})"
    extras = {"n_pos": npos.astype(np.int64), "n_neg": nneg.astype(np.int64)}
    method = ctx.auroc_interval if seg.exact else ctx.auroc_interval + "-binned"
    if not seg.exact:
        extras["bound"] = bound
    if ctx.estimate_only:
        nan = np.full(k, np.nan)
        return LevelValues(auc, nan, nan.copy(), None, reason, extras, ctx.confidence_level)
    lo, hi, why = _stats().auc_interval(auc, t10, t01, df_pos=npos - 1, df_neg=nneg - 1,
                                        confidence_level=ctx.confidence_level,
                                        method=ctx.auroc_interval)
    for i in np.flatnonzero((why != None) & (reason == None)):  # noqa: E711
        reason[i] = why[i]
    extras["variance"] = var
    extras["se"] = np.sqrt(np.maximum(var, 0.0))
    return LevelValues(auc, lo, hi, method, reason, extras, ctx.confidence_level)


def auprc_kernel(seg, ctx):
    """Area under the precision-recall curve as average precision, with a logit-Wald CI.

    Average precision ``AP = sum_k (R_k - R_{k-1}) P_k`` over the distinct scores in
    descending order (``sklearn.metrics.average_precision_score``: step-wise, no
    interpolation, tied scores one threshold). The interval is the logit interval of Boyd
    et al. (2013): ``expit(logit(AP) ± z / sqrt(n_pos AP (1 - AP)))`` with ``n_pos`` the
    number of positive cases; it is undefined when AP is 1.

    References
    ----------
    .. [1] Boyd K, Eng KH, Page CD. Area under the precision-recall curve: point estimates and
       confidence intervals. ECML PKDD 2013, LNCS 8190:451-466.
    """
    from scipy.special import expit, logit

    k = seg.n_segments
    P, N = seg.n_pos, seg.n_neg
    # cases and calls at or above each row, within its segment (rows ascending in score)
    end_pos = np.repeat(seg.seg_sum(seg.pos), seg.lengths)
    end_tot = np.repeat(seg.seg_sum(seg.pos + seg.neg), seg.lengths)
    before_pos = np.repeat(np.concatenate([[0.0], np.cumsum(seg.pos)])[seg.starts], seg.lengths)
    before_tot = np.repeat(np.concatenate([[0.0], np.cumsum(seg.pos + seg.neg)])[seg.starts],
                           seg.lengths)
    tp_ge = end_pos - (np.cumsum(seg.pos) - before_pos) + seg.pos
    calls_ge = end_tot - (np.cumsum(seg.pos + seg.neg) - before_tot) + seg.pos + seg.neg
    with np.errstate(invalid="ignore", divide="ignore"):
        prec = np.where(calls_ge > 0, tp_ge / calls_ge, 0.0)
        ap = seg.seg_sum(seg.pos * prec) / P
    reason = _none(k)
    lo = np.full(k, np.nan)
    hi = np.full(k, np.nan)
    inner = (P > 0) & (N > 0) & (ap > 0) & (ap < 1)
    z = _stats()._intervals._z(ctx.confidence_level)
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = 1.0 / np.sqrt(P * ap * (1 - ap))
        eta = logit(np.where(inner, ap, 0.5))
    lo[inner] = expit(eta - z * tau)[inner]
    hi[inner] = expit(eta + z * tau)[inner]
    edge = (P > 0) & (N > 0) & ~inner
    reason[edge] = np.array([f"AP = {a:g}: logit interval undefined" for a in ap[edge]],
                            dtype=object)
    reason[N == 0] = f"{_ONE_CLASS} ({_NO_NEG})"
    reason[P == 0] = f"{_ONE_CLASS} ({_NO_POS})"
    ap = np.where((P > 0) & (N > 0), ap, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        prev = P / (P + N)
    extras = {"n_pos": P.astype(np.int64), "n_neg": N.astype(np.int64), "prevalence": prev}
    return LevelValues(ap, lo, hi, "logit-wald", reason, extras, ctx.confidence_level)


_T = frozenset({"y_true", "y_score", "threshold"})
_R = frozenset({"y_true", "y_score"})
_UNIT = (0.0, 1.0)


def _prop(name, label, hib, num, den, empty, description, abbrev=None):
    return MetricSpec(name, label, "threshold", _T, hib, None, "wilson", None, description,
                      REF_FDA2007 + " " + REF_WILSON,
                      kernel=proportion_kernel(num, den, empty), confusion=(num, den),
                      valid_range=_UNIT, summary="exact", heterogeneity="chi2",
                      bootstrap_bins="threshold", abbrev=abbrev)


for _spec in (
    _prop("sensitivity", "Sensitivity", True, ("tp",), ("tp", "fn"), _NO_POS,
          "TP/(TP+FN): share of positive cases called positive (recall, TPR)."),
    _prop("specificity", "Specificity", True, ("tn",), ("tn", "fp"), _NO_NEG,
          "TN/(TN+FP): share of negative cases called negative (TNR)."),
    _prop("ppv", "Positive predictive value", True, ("tp",), ("tp", "fp"), _NO_PRED_POS,
          "TP/(TP+FP): share of positive calls that are positive cases (precision).", "PPV"),
    _prop("npv", "Negative predictive value", True, ("tn",), ("tn", "fn"), _NO_PRED_NEG,
          "TN/(TN+FN): share of negative calls that are negative cases.", "NPV"),
    _prop("accuracy", "Accuracy", True, ("tp", "tn"), ("tp", "fn", "fp", "tn"),
          "no observations", "(TP+TN)/N: overall agreement with the reference standard."),
    _prop("fpr", "False-positive rate", False, ("fp",), ("fp", "tn"), _NO_NEG,
          "FP/(FP+TN) = 1 - specificity.", "FPR"),
    _prop("fnr", "False-negative rate", False, ("fn",), ("fn", "tp"), _NO_POS,
          "FN/(FN+TP) = 1 - sensitivity.", "FNR"),
    MetricSpec("lr_positive", "Positive likelihood ratio", "threshold", _T, True, None, "log",
               None, "Se/(1-Sp), log-method interval.", REF_SIMEL, kernel=_lr_kernel(True),
               valid_range=(0.0, math.inf), summary="exact", abbrev="LR+"),
    MetricSpec("lr_negative", "Negative likelihood ratio", "threshold", _T, False, None, "log",
               None, "(1-Se)/Sp, log-method interval.", REF_SIMEL, kernel=_lr_kernel(False),
               valid_range=(0.0, math.inf), summary="exact", abbrev="LR-"),
    MetricSpec("net_benefit", "Net benefit", "threshold", _T, True, None, "wald", None,
               "TP/N - FP/N * t/(1-t) at threshold probability t; Wald interval.", REF_VICKERS,
               kernel=net_benefit_kernel, valid_range=(-math.inf, 1.0), summary="exact"),
    MetricSpec("auroc", "AUROC", "ranking", _R, True, None, "delong-logit-t", None,
               "Area under the ROC curve (Mann-Whitney), logit interval with the DeLong "
               "(Brunner-Munzel) variance and Satterthwaite degrees of freedom.", REF_DELONG,
               kernel=auroc_kernel, valid_range=_UNIT, summary="binned", heterogeneity="delong",
               bootstrap_bins="score"),
    MetricSpec("auprc", "AUPRC (average precision)", "ranking", _R, True, None, "wald", None,
               "Average precision (sklearn definition), logit-Wald interval (Boyd 2013).",
               REF_BOYD, kernel=auprc_kernel, valid_range=_UNIT, summary="binned",
               abbrev="AUPRC"),
):
    register_metric(_spec)
