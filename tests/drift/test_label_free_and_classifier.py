"""Label-free (CBPE) estimation and the classifier two-sample test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.metrics import roc_auc_score

from rwe.drift import classifier_test, estimate_performance
from rwe.exceptions import InvalidParameterError
from rwe.stats.summaries import summarize_arrays


def _segments(p, threshold, y=None, groups=None):
    y = np.zeros(p.size, dtype=bool) if y is None else y
    g = np.zeros(p.size).astype(str) if groups is None else groups
    s = summarize_arrays(y_true=y, scores={"v": p}, attributes={"g": g}, thresholds=[threshold])
    return s.segments(s.grouping("g"), threshold=threshold)


def test_expected_confusion_and_auroc_by_hand():
    p = np.array([0.1, 0.2, 0.2, 0.6, 0.9])
    seg = _segments(p, 0.5)
    est = estimate_performance(seg, metrics=("sensitivity", "specificity", "auroc"),
                               threshold=0.5, n_sim=0)
    tp, fn = 0.6 + 0.9, 0.1 + 0.2 + 0.2
    fp, tn = 0.4 + 0.1, 0.9 + 0.8 + 0.8
    e = est["sensitivity"].expected
    assert_allclose([e["tp"][0], e["fn"][0], e["fp"][0], e["tn"][0]], [tp, fn, fp, tn])
    assert_allclose(est["sensitivity"].estimate[0], tp / (tp + fn))
    assert_allclose(est["specificity"].estimate[0], tn / (tn + fp))
    # expected concordant pairs over expected pairs, i != j, ties 1/2
    num = den = 0.0
    for i in range(5):
        for j in range(5):
            if i != j:
                w = p[i] * (1 - p[j])
                den += w
                num += w * (1.0 if p[i] > p[j] else 0.5 if p[i] == p[j] else 0.0)
    assert_allclose(est["auroc"].estimate[0], num / den, rtol=1e-12)


def test_estimated_sensitivity_covers_the_observed_one_on_calibrated_windows():
    """Must match: on calibrated simulated windows the observed sensitivity falls in the
    estimate's stated 95% interval about 95% of the time (60 windows, the interval itself
    from 300 draws; binomial tolerance)."""
    rng = np.random.default_rng(7)
    n_win, n = 60, 800
    p = 1 / (1 + np.exp(-rng.normal(-2.2, 1.4, n_win * n)))
    y = rng.random(p.size) < p
    g = np.repeat(np.arange(n_win).astype(str), n)
    seg = _segments(p, 0.15, groups=g)
    est = estimate_performance(seg, metrics=("sensitivity", "auroc"), threshold=0.15,
                               n_sim=300, random_state=3)
    levels = seg.labels
    hit_se = hit_auc = 0
    for j, lev in enumerate(levels):
        m = g == lev
        obs = (y[m] & (p[m] >= 0.15)).sum() / y[m].sum()
        hit_se += est["sensitivity"].low[j] <= obs <= est["sensitivity"].high[j]
        auc = roc_auc_score(y[m], p[m])
        hit_auc += est["auroc"].low[j] <= auc <= est["auroc"].high[j]
        # the point estimate is within about 4 of its stated standard errors (half / 1.96)
        half = (est["sensitivity"].high[j] - est["sensitivity"].low[j]) / 2
        assert abs(est["sensitivity"].estimate[j] - obs) < 2.2 * half
    # Binomial(60, 0.95): P(X <= 51) < 0.01
    assert hit_se >= 52 and hit_auc >= 52


def test_estimation_refuses_unestimable_metrics():
    seg = _segments(np.array([0.2, 0.4]), 0.3)
    with pytest.raises(InvalidParameterError, match="cannot be estimated without labels"):
        estimate_performance(seg, metrics=("brier",), threshold=0.3)


def _frame(n, shift, rng):
    return pd.DataFrame({"a": rng.normal(shift, 1, n), "b": rng.normal(0, 1, n),
                         "c": rng.choice(list("xyz"), n)})


def test_classifier_test_finds_no_shift_when_there_is_none():
    rng = np.random.default_rng(0)
    r = classifier_test(_frame(6000, 0, rng), _frame(3000, 0, rng), ["a", "b", "c"],
                        random_state=1)
    assert r.ci_low <= 0.5 + 0.01 and r.auroc < 0.55 and r.pvalue > 0.001


def test_classifier_test_names_the_shifted_feature():
    rng = np.random.default_rng(1)
    r = classifier_test(_frame(6000, 0, rng), _frame(3000, 0.6, rng), ["a", "b", "c"],
                        random_state=1)
    assert r.ci_low > 0.55 and r.pvalue < 1e-10
    assert next(iter(r.importance)) == "a"
    assert r.importance["a"] > 5 * max(abs(r.importance["b"]), abs(r.importance["c"]))
    few = classifier_test(_frame(4, 0, rng), _frame(3, 0, rng), ["a"])
    assert np.isnan(few.auroc) and "fewer than" in few.reason
