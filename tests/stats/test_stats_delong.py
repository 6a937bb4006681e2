"""DeLong AUROC, covariance and tests against pROC on aSAH (oracles O2, O4)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from numpy.testing import assert_allclose
from results import results_stats as R
from sklearn.metrics import roc_auc_score

from rwe.exceptions import InvalidParameterError
from rwe.stats import (
    auc_delong,
    auc_noninferiority,
    delong_covariance,
    delong_test,
    delong_unpaired_test,
    weighted_auc,
)

PREDICTORS = ("wfns", "s100b", "ndka")


@pytest.fixture(scope="module")
def data(asah):
    assert len(asah) == 113 and int((asah["outcome"] == "Poor").sum()) == 41
    assert asah["age"].sum() == 5774 and round(asah["s100b"].sum(), 2) == 27.91
    y = (asah["outcome"] == "Poor").to_numpy()
    return y, {p: asah[p].to_numpy(dtype=float) for p in PREDICTORS}


@pytest.mark.parametrize("name", PREDICTORS)
def test_auc_variance_ci_match_proc(data, name):
    y, s = data
    res = auc_delong(y, s[name])
    assert_allclose(res.auc, R.AUC[name], rtol=1e-13)
    assert_allclose(res.variance, R.VAR[name], rtol=1e-12)
    ci = res.confidence_interval()
    assert_allclose([ci.low, ci.high], R.CI[name], atol=1e-12)
    assert ci.method == "delong" and (res.n_pos, res.n_neg) == (41, 72)
    assert_allclose(res.se ** 2, res.variance)
    assert_allclose(res.v10.mean(), res.auc, rtol=1e-14)
    assert_allclose(res.v01.mean(), res.auc, rtol=1e-14)


def test_covariance_matches_proc(data):
    y, s = data
    aucs, cov = delong_covariance(y, [s[p] for p in PREDICTORS])
    assert_allclose(aucs, [R.AUC[p] for p in PREDICTORS], rtol=1e-13)
    assert_allclose(np.diag(cov), [R.VAR[p] for p in PREDICTORS], rtol=1e-12)
    idx = {p: i for i, p in enumerate(PREDICTORS)}
    for (a, b), value in R.COV.items():
        assert_allclose(cov[idx[a], idx[b]], value, rtol=1e-12)
        assert cov[idx[a], idx[b]] == cov[idx[b], idx[a]]
    # a 2-d array works the same as a list
    _, cov2 = delong_covariance(y, np.vstack([s[p] for p in PREDICTORS]))
    assert_allclose(cov2, cov, rtol=0, atol=0)


@pytest.mark.parametrize("pair", sorted(R.PAIRED))
def test_paired_test_matches_proc(data, pair):
    y, s = data
    z, p, ci = R.PAIRED[pair]
    res = delong_test(y, s[pair[0]], s[pair[1]])
    assert_allclose(res.statistic, z, rtol=1e-12)
    assert_allclose(res.pvalue, p, rtol=1e-11)
    assert_allclose([res.ci.low, res.ci.high], ci, rtol=1e-12)
    assert_allclose(res.difference, R.AUC[pair[0]] - R.AUC[pair[1]], rtol=1e-12)
    assert res.alternative == "two-sided" and res.method == "delong-paired"


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_one_sided_pvalues(data, alternative):
    y, s = data
    res = delong_test(y, s["wfns"], s["s100b"], alternative=alternative)
    assert_allclose(res.pvalue, R.ONE_SIDED[alternative], rtol=1e-11)


@pytest.mark.parametrize("pair", sorted(R.NI))
def test_noninferiority_o4(data, pair):
    y, s = data
    exp = R.NI[pair]
    res = auc_noninferiority(y, s[pair[0]], s[pair[1]], margin=0.05)
    assert_allclose(res.difference, exp["difference"], atol=1e-12)
    assert_allclose(res.se, exp["se"], atol=1e-12)
    assert_allclose(res.statistic, exp["statistic"], atol=1e-6)
    assert_allclose(res.pvalue, exp["pvalue"], rtol=1e-3)
    assert_allclose(res.lower_bound, exp["lower_bound"], atol=1e-6)
    assert res.noninferior is exp["noninferior"]
    assert (res.pvalue < 0.025) is res.noninferior
    assert set(res.to_frame().columns) >= {"difference", "se", "pvalue", "noninferior"}


def test_unpaired_test_formula(data):
    y, s = data
    male = np.arange(y.size) % 2 == 0
    a = auc_delong(y[male], s["s100b"][male])
    b = auc_delong(y[~male], s["s100b"][~male])
    res = delong_unpaired_test(y[male], s["s100b"][male], y[~male], s["s100b"][~male])
    d = (a.auc - b.auc) / np.sqrt(a.variance + b.variance)
    assert_allclose(res.statistic, d, rtol=1e-14)
    from scipy.stats import norm
    assert_allclose(res.pvalue, 2 * norm.sf(abs(d)), rtol=1e-12)
    assert res.method == "delong-unpaired"


def test_identical_scores_test_is_degenerate_not_nan(data):
    y, s = data
    res = delong_test(y, s["ndka"], 2 * s["ndka"] + 1)  # same ranking
    assert res.difference == 0 and res.se == 0 and res.statistic == 0 and res.pvalue == 1


def test_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(7)
    for _ in range(5):
        n = 400
        y = rng.random(n) < 0.3
        s = np.round(rng.normal(y * 0.8, 1.0), 1)  # many ties
        assert_allclose(auc_delong(y, s).auc, roc_auc_score(y, s), rtol=1e-14)
        assert_allclose(weighted_auc(y, s), roc_auc_score(y, s), rtol=1e-14)
        w = rng.poisson(1.0, size=(3, n)).astype(float)
        got = weighted_auc(y, s, w)
        want = [roc_auc_score(y, s, sample_weight=wi) for wi in w]
        assert_allclose(got, want, rtol=1e-12)


def test_direction_controls_below_cases():
    y = np.array([0, 0, 1, 1])
    assert auc_delong(y, [0.1, 0.2, 0.8, 0.9]).auc == 1.0
    assert auc_delong(y, [0.9, 0.8, 0.2, 0.1]).auc == 0.0


def test_single_case_variance_is_nan():
    res = auc_delong([1, 0, 0, 0], [0.5, 0.1, 0.7, 0.2])
    assert np.isnan(res.variance) and res.auc == pytest.approx(2 / 3)


@pytest.mark.parametrize(("y", "npos", "nneg"), [([0, 0, 0], 0, 3), ([1, 1], 2, 0)])
def test_needs_both_classes(y, npos, nneg):
    msg = (f"AUROC needs both classes in y_true: got {npos} positives and {nneg} negatives")
    with pytest.raises(InvalidParameterError, match=f"^{msg}$"):
        auc_delong(y, np.arange(len(y), dtype=float))


def test_input_errors():
    with pytest.raises(InvalidParameterError, match=r"y_score must have the same length as y_true \(3\), got 2"):
        auc_delong([0, 1, 1], [0.1, 0.2])
    with pytest.raises(InvalidParameterError, match=r"y_true must be binary"):
        auc_delong([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(InvalidParameterError, match=r"alternative='bigger' is not valid"):
        delong_test([0, 1, 1], [1, 2, 3], [3, 2, 1], alternative="bigger")
    with pytest.raises(InvalidParameterError, match=r"margin must be >= 0.0, got -0.05"):
        auc_noninferiority([0, 1, 1], [1, 2, 3], [3, 2, 1], margin=-0.05)


def test_result_serialisation(data):
    y, s = data
    res = auc_delong(y, s["wfns"])
    d = res.to_dict()
    assert "v10" not in d and "v01" not in d and d["n_pos"] == 41
    assert d["ci"]["method"] == "delong"
    assert list(res.to_frame().columns)[:3] == ["auc", "se", "variance"]
    assert "<table" in res._repr_html_()


def test_permutation_invariance(data):
    y, s = data
    perm = np.random.default_rng(1).permutation(y.size)
    for a, b in itertools.combinations(PREDICTORS, 2):
        r1 = delong_test(y, s[a], s[b])
        r2 = delong_test(y[perm], s[a][perm], s[b][perm])
        assert_allclose([r1.statistic, r1.se], [r2.statistic, r2.se], rtol=1e-12)


def test_placements_are_the_sun_xu_midrank_differences():
    """The placements by sorting and binary search equal, bit for bit, Sun & Xu's midrank
    differences (three ``scipy.stats.rankdata`` rankings), with and without ties, for one
    and several score rows."""
    from scipy.stats import rankdata

    from rwe.stats._delong import _placements

    def midranks(y, scores):
        pos, neg = scores[:, y], scores[:, ~y]
        m, n = pos.shape[1], neg.shape[1]
        tz = rankdata(np.concatenate([pos, neg], axis=1), method="average", axis=1)
        tx = rankdata(pos, method="average", axis=1)
        ty = rankdata(neg, method="average", axis=1)
        return ((tz[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n), (tz[:, :m] - tx) / n,
                1.0 - (tz[:, m:] - ty) / m)

    rng = np.random.default_rng(11)
    for trial in range(200):
        n = int(rng.integers(2, 300))
        y = rng.random(n) < rng.uniform(0.05, 0.95)
        if y.all() or not y.any():
            continue
        k = int(rng.integers(1, 4))
        s = rng.random((k, n))
        if trial % 2:  # heavy ties
            s = np.round(s * rng.integers(2, 12)) / 7
        for got, want in zip(_placements(y, s), midranks(y, s), strict=True):
            assert np.array_equal(got, want), trial
