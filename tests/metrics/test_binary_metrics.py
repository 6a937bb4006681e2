"""Threshold and ranking metrics: FDA O1 oracle, aSAH/pROC O2, sklearn and fairlearn checks."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers_metrics import load_results
from numpy.testing import assert_allclose
from scipy.stats import norm

from rwe.exceptions import InvalidParameterError
from rwe.metrics import compute_metric, compute_metrics, metric_names
from rwe.metrics._registry import MISSING_INPUT

R = load_results()


def _o1_arrays():
    c = R.O1_COUNTS
    y = np.r_[np.ones(c["tp"] + c["fn"]), np.zeros(c["fp"] + c["tn"])].astype(int)
    s = np.r_[np.ones(c["tp"]), np.zeros(c["fn"]), np.ones(c["fp"]), np.zeros(c["tn"])]
    return y, s


@pytest.mark.parametrize("method", ["wilson", "clopper-pearson"])
@pytest.mark.parametrize("name", ["sensitivity", "specificity"])
def test_o1_fda_table2(name, method):
    y, s = _o1_arrays()
    v = compute_metric(name, y, s, threshold=0.5, proportion_interval=method)
    ref = R.O1[name]
    assert_allclose(v.estimate, ref["estimate"], rtol=1e-12)
    assert_allclose([v.ci.low, v.ci.high], ref[method], rtol=R.O1_RTOL)
    assert v.ci.method == method
    assert (v.extras["tp"], v.extras["fn"], v.extras["fp"], v.extras["tn"]) == (44, 7, 1, 168)
    assert v.n == 220 and v.events == 51


def test_o1_other_threshold_metrics():
    y, s = _o1_arrays()
    names = ["ppv", "npv", "accuracy", "fpr", "fnr", "lr_positive", "lr_negative"]
    v = dict(zip(names, compute_metrics(names, y, s, threshold=0.5), strict=True))
    assert_allclose(v["ppv"].estimate, 44 / 45)
    assert_allclose(v["npv"].estimate, 168 / 175)
    assert_allclose(v["accuracy"].estimate, 212 / 220)
    assert_allclose(v["fpr"].estimate, 1 / 169)
    assert_allclose(v["fnr"].estimate, 7 / 51)
    # FPR's Wilson interval is the mirror image of specificity's (Wilson is symmetric in x/n-x)
    spec = compute_metric("specificity", y, s, threshold=0.5)
    assert_allclose([v["fpr"].ci.low, v["fpr"].ci.high], [1 - spec.ci.high, 1 - spec.ci.low],
                    rtol=1e-10)
    lrp = (44 / 51) / (1 / 169)
    se = np.sqrt(1 / 44 - 1 / 51 + 1 / 1 - 1 / 169)
    assert_allclose(v["lr_positive"].estimate, lrp, rtol=1e-12)
    assert_allclose([v["lr_positive"].ci.low, v["lr_positive"].ci.high],
                    [lrp * np.exp(-1.959963984540054 * se), lrp * np.exp(1.959963984540054 * se)],
                    rtol=1e-9)
    assert v["lr_negative"].ci.method == "log"


def test_threshold_ties_are_positive():
    v = compute_metric("sensitivity", [1, 1, 0], [0.5, 0.4, 0.5], threshold=0.5)
    assert v.extras["tp"] == 1 and v.extras["fp"] == 1


@pytest.fixture(scope="module")
def sim():
    rng = np.random.default_rng(11)
    n = 600
    y = rng.uniform(size=n) < 0.3
    s = np.round(rng.normal(loc=y * 1.1, scale=1.0), 1)  # rounding creates ties
    sex = rng.choice(["F", "M"], size=n)
    return y.astype(int), s, sex


def test_recall_precision_match_sklearn_and_fairlearn(sim):
    from fairlearn.metrics import MetricFrame, false_positive_rate, true_positive_rate
    from sklearn.metrics import accuracy_score, precision_score, recall_score

    y, s, sex = sim
    t = 0.4
    yp = (s >= t).astype(int)
    v = dict(zip(["sensitivity", "ppv", "accuracy", "fpr"],
                 compute_metrics(["sensitivity", "ppv", "accuracy", "fpr"], y, s, threshold=t),
                 strict=True))
    assert_allclose(v["sensitivity"].estimate, recall_score(y, yp), rtol=1e-12)
    assert_allclose(v["ppv"].estimate, precision_score(y, yp), rtol=1e-12)
    assert_allclose(v["accuracy"].estimate, accuracy_score(y, yp), rtol=1e-12)
    mf = MetricFrame(metrics={"tpr": true_positive_rate, "fpr": false_positive_rate},
                     y_true=y, y_pred=yp, sensitive_features=sex)
    for g in ("F", "M"):
        m = sex == g
        assert_allclose(compute_metric("sensitivity", y[m], s[m], threshold=t).estimate,
                        mf.by_group.loc[g, "tpr"], rtol=1e-12)
        assert_allclose(compute_metric("fpr", y[m], s[m], threshold=t).estimate,
                        mf.by_group.loc[g, "fpr"], rtol=1e-12)


def test_auroc_matches_sklearn_and_auprc_matches_average_precision(sim):
    from sklearn.metrics import average_precision_score, roc_auc_score

    y, s, _ = sim
    a = compute_metric("auroc", y, s)
    assert_allclose(a.estimate, roc_auc_score(y, s), rtol=1e-12)
    assert a.ci.method == "delong-logit-t"
    p = compute_metric("auprc", y, s)
    ap = average_precision_score(y, s)
    assert_allclose(p.estimate, ap, rtol=1e-12)
    tau = 1 / np.sqrt(y.sum() * ap * (1 - ap))
    eta = np.log(ap / (1 - ap))
    z = norm.ppf(0.975)
    assert_allclose([p.ci.low, p.ci.high],
                    [1 / (1 + np.exp(-(eta - z * tau))), 1 / (1 + np.exp(-(eta + z * tau)))],
                    rtol=1e-12)
    assert p.ci.method == "logit-wald"


def test_auroc_pROC_o2_ndka(asah):
    """pROC: ci.auc(roc(aSAH$outcome, aSAH$ndka), method = "delong")."""
    y = (asah["outcome"] == "Poor").to_numpy()
    v = compute_metric("auroc", y, asah["ndka"].to_numpy(), auroc_interval="delong")
    assert_allclose(v.estimate, 0.611957994579946, rtol=1e-12)
    assert_allclose(v.extras["variance"], 0.0031908105493913, rtol=1e-10)
    assert_allclose([v.ci.low, v.ci.high], [0.501244999271703, 0.722670989888189], rtol=1e-10)


def test_net_benefit_formula_and_wald_interval(sim):
    y, s, _ = sim
    p = 1 / (1 + np.exp(-s))  # a probability-scale score
    t = 0.35
    v = compute_metric("net_benefit", y, p, threshold=t)
    yp = p >= t
    tp, fp, n = np.sum(yp & (y == 1)), np.sum(yp & (y == 0)), y.size
    assert_allclose(v.estimate, tp / n - fp / n * t / (1 - t), rtol=1e-12)
    # delta-method variance of the multinomial mean: (E[u^2] - NB^2)/(n-1) with u in {1, -w, 0}
    w = t / (1 - t)
    var_u = (tp * 1 + fp * w ** 2) / n - v.estimate ** 2
    se = np.sqrt(var_u * n / (n - 1) / n)
    assert_allclose(v.extras["se"], se, rtol=1e-10)
    assert v.ci.method == "wald"


def test_net_benefit_threshold_must_be_a_probability():
    with pytest.raises(InvalidParameterError, match="threshold must be < 1"):
        compute_metric("net_benefit", [0, 1], [0.2, 0.8], threshold=1.0)


def test_likelihood_ratio_zero_cells_are_explained():
    # no false positives: LR+ infinite; sensitivity 1: LR- = 0
    v = compute_metrics(["lr_positive", "lr_negative"], [1, 1, 0, 0], [0.9, 0.8, 0.1, 0.2],
                        threshold=0.5)
    assert v[0].estimate == np.inf and "infinite" in v[0].reason and v[0].ci is None
    assert v[1].estimate == 0.0 and "interval is undefined" in v[1].reason


@pytest.mark.parametrize("name", metric_names("threshold"))
def test_threshold_is_required(name):
    with pytest.raises(InvalidParameterError) as exc:
        compute_metric(name, [0, 1], [0.2, 0.8])
    assert str(exc.value) == MISSING_INPUT.format(metric=name, needs="threshold", value=None)


def test_compute_metrics_shares_the_score_histogram(monkeypatch):
    from rwe.metrics import _registry

    calls = []
    orig = _registry.MetricData.segments.func

    def counting(self):
        calls.append(1)
        return orig(self)

    monkeypatch.setattr(_registry.MetricData, "segments",
                        _registry.cached_property(counting))
    _registry.MetricData.segments.__set_name__(_registry.MetricData, "segments")
    names = metric_names("threshold")
    out = compute_metrics(names, [0, 1, 1, 0, 1], [0.1, 0.7, 0.4, 0.6, 0.9], threshold=0.5)
    assert [v.metric for v in out] == names
    assert len(calls) == 1
