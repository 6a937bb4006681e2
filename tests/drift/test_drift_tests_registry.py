"""The drift-test registry: PSI by hand, KS / Wasserstein / chi-square / JS against scipy
(exactly in the exact mode, within the stated bound when binned)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp, wasserstein_distance

from rwe.drift import (
    DriftContext,
    DriftTestSpec,
    FeatureHist,
    drift_test_names,
    get_drift_test,
    reference_edges,
    register_drift_test,
)
from rwe.exceptions import InvalidParameterError
from rwe.stats.summaries import feature_bin_column


def _numeric(samples, edges):
    W = len(edges) + 1
    cols = [feature_bin_column(v, edges) for v in samples]
    counts = np.array([np.bincount(c, minlength=W) for c in cols], dtype=float)
    sums = np.array([np.bincount(c, weights=v, minlength=W) for c, v in zip(cols, samples,
                                                                           strict=True)])
    return FeatureHist("numeric", counts, edges, sums, sd=np.array([np.std(v) for v in samples]),
                       missing=np.zeros(len(samples)))


def _categorical(tables):
    return FeatureHist("categorical", np.asarray(tables, dtype=float), categories=("a", "b", "c"),
                       missing=np.zeros(len(tables)))


def test_psi_by_hand_on_a_small_example():
    # reference 50/30/20, current 40/30/30:
    # (0.4-0.5) ln(0.4/0.5) + 0 + (0.3-0.2) ln(0.3/0.2) = 0.0223144 + 0.0405465 = 0.0628609
    ref = _categorical([[50, 30, 20]])
    cur = _categorical([[40, 30, 30], [0, 0, 0]])
    v = get_drift_test("psi").kernel(ref, cur, DriftContext())
    by_hand = (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.3 - 0.2) * math.log(0.3 / 0.2)
    assert_allclose(v.effect[0], by_hand, rtol=1e-12)
    assert round(by_hand, 7) == 0.0628609
    assert math.isnan(v.effect[1]) and v.reason[1] == "no data in this window"


def test_psi_floors_empty_bins_and_uses_reference_deciles():
    ref = _categorical([[50, 50, 0]])
    cur = _categorical([[50, 40, 10]])
    v = get_drift_test("psi").kernel(ref, cur, DriftContext(psi_eps=1e-4))
    by_hand = (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.1 - 1e-4) * math.log(0.1 / 1e-4)
    assert_allclose(v.effect[0], by_hand, rtol=1e-12)
    # numeric: 10 bins of equal reference mass, whatever the fine histogram
    rng = np.random.default_rng(0)
    r = rng.normal(size=20000)
    e = reference_edges(r, 100)
    c = rng.normal(0.3, 1, 5000)
    h = get_drift_test("psi").kernel(_numeric([r], e), _numeric([c], e), DriftContext())
    q = e[10:100:10]  # the fine edges at the reference's deciles
    p_ref = np.bincount(np.searchsorted(q, r, side="right"), minlength=10) / r.size
    p_cur = np.bincount(np.searchsorted(q, c, side="right"), minlength=10) / c.size
    assert h.extras["bins"][0] == 10
    assert_allclose(h.effect[0], ((p_cur - p_ref) * np.log(p_cur / p_ref)).sum(), rtol=1e-9)


@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_ks_and_wasserstein_exact_mode_equal_scipy(shift):
    rng = np.random.default_rng(1)
    ref = rng.normal(size=3000)
    cur = [rng.normal(shift, 1.2, 800), rng.normal(shift, 1.0, 20000)]
    ks = get_drift_test("ks").exact(ref, cur)
    ws = get_drift_test("wasserstein").exact(ref, cur)
    for i, v in enumerate(cur):
        r = ks_2samp(ref, v)
        assert ks.statistic[i] == r.statistic and ks.pvalue[i] == r.pvalue
        assert ws.extras["w1"][i] == wasserstein_distance(ref, v)
        assert ws.effect[i] == wasserstein_distance(ref, v) / np.std(ref)
        assert ks.bound[i] == 0 and ws.bound[i] == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binned_ks_and_wasserstein_lie_within_their_bound_of_scipy(seed):
    rng = np.random.default_rng(seed)
    ref = rng.gamma(2.0, 1.5, 20000)
    cur = [rng.gamma(2.0, 1.5, 3000), rng.gamma(2.4, 1.4, 3000), rng.normal(3, 1, 2000)]
    e = reference_edges(ref, 100)
    R, C = _numeric([ref], e), _numeric(cur, e)
    ks = get_drift_test("ks").kernel(R, C, DriftContext())
    ws = get_drift_test("wasserstein").kernel(R, C, DriftContext())
    for i, v in enumerate(cur):
        d = ks_2samp(ref, v).statistic
        assert ks.statistic[i] <= d + 1e-12 <= ks.statistic[i] + ks.bound[i] + 2e-12
        w = wasserstein_distance(ref, v) / np.std(ref)
        assert abs(ws.effect[i] - w) <= ws.bound[i] + 1e-12
        # the bound is informative: a fraction of the effect scale
        assert ks.bound[i] < 0.03 and ws.bound[i] < 0.15
        # the asymptotic p-value agrees with scipy's asymptotic one to O(1/sqrt(n))
        p = ks_2samp(ref, v, method="asymp").pvalue
        if p > 1e-6:
            assert abs(ks.pvalue[i] - p) < 0.2 * max(p, 0.05)


def test_discrete_features_are_exact_from_the_histogram():
    rng = np.random.default_rng(3)
    ref = rng.integers(40, 90, 20000).astype(float)
    cur = [rng.integers(45, 89, 3000).astype(float), rng.integers(40, 90, 500).astype(float)]
    e = reference_edges(ref, 100)
    R, C = _numeric([ref], e), _numeric(cur, e)
    ks = get_drift_test("ks").kernel(R, C, DriftContext())
    ws = get_drift_test("wasserstein").kernel(R, C, DriftContext())
    for i, v in enumerate(cur):
        assert ks.bound[i] == 0 and ws.bound[i] == 0
        assert ks.statistic[i] == ks_2samp(ref, v).statistic
        assert_allclose(ws.effect[i], wasserstein_distance(ref, v) / np.std(ref), rtol=1e-10)


def test_chi2_and_js_equal_scipy():
    ref = _categorical([[500, 300, 200]])
    cur = _categorical([[40, 35, 25], [10, 0, 90], [0, 0, 0]])
    chi = get_drift_test("chi2").kernel(ref, cur, DriftContext())
    js = get_drift_test("js").kernel(ref, cur, DriftContext())
    for i, row in enumerate([[40, 35, 25], [10, 0, 90]]):
        table = np.array([[500, 300, 200], row])
        res = chi2_contingency(table, correction=False)
        assert_allclose(chi.statistic[i], res.statistic, rtol=1e-12)
        assert_allclose(chi.pvalue[i], res.pvalue, rtol=1e-10)
        assert chi.extras["df"][i] == res.dof
        assert_allclose(chi.effect[i], math.sqrt(res.statistic / table.sum()), rtol=1e-12)
        p, q = table[0] / table[0].sum(), table[1] / table[1].sum()
        assert_allclose(js.effect[i], jensenshannon(p, q, base=2), rtol=1e-12)
    assert chi.reason[2] == js.reason[2] == "no data in this window"


def test_chi2_drops_empty_categories_and_needs_two():
    ref = _categorical([[50, 0, 0]])
    cur = _categorical([[20, 0, 0], [20, 5, 0]])
    chi = get_drift_test("chi2").kernel(ref, cur, DriftContext())
    assert math.isnan(chi.pvalue[0]) and "single category" in chi.reason[0]
    res = chi2_contingency(np.array([[50, 0], [20, 5]]), correction=False)
    assert_allclose(chi.statistic[1], res.statistic, rtol=1e-12)


def test_registry_lookups_and_errors():
    assert drift_test_names() == ["chi2", "js", "ks", "psi", "wasserstein"]
    assert drift_test_names("numeric") == ["ks", "psi", "wasserstein"]
    assert drift_test_names("categorical") == ["chi2", "js", "psi"]
    with pytest.raises(InvalidParameterError,
                       match="drift test 'kss' is unknown; valid tests: chi2, js, ks, psi"):
        get_drift_test("kss")
    with pytest.raises(InvalidParameterError, match="already registered"):
        register_drift_test(get_drift_test("ks"))
    with pytest.raises(InvalidParameterError, match="kinds of drift test"):
        DriftTestSpec("x", "X", ("text",), "d", 0.1, False, lambda *a: None)
    for name in drift_test_names():
        spec = get_drift_test(name)
        assert spec.default_threshold > 0 and spec.reference and spec.effect


def test_reference_edges():
    e = reference_edges([3.0, 1.0, 2.0, 2.0, np.nan], 10)
    assert e.tolist() == [1.0, 2.0, 3.0, 4.0]  # each distinct value a bin, one edge after
    rng = np.random.default_rng(0)
    x = rng.normal(size=10000)
    e = reference_edges(x, 50)
    assert e[0] == x.min() and e[-1] == x.max() and len(e) == 51
    v = np.sort(x)
    F = np.searchsorted(v, e, side="right") / v.size  # F(edge): at least k / 50, minimally
    k = np.arange(51) / 50
    assert (F >= k - 1e-12).all() and (np.searchsorted(v, e, side="left") / v.size < k + 1e-12
                                       ).all()
    with pytest.raises(InvalidParameterError, match="no finite value"):
        reference_edges([np.nan], 10)
