"""Calibration metrics: O5 oracle, statsmodels cross-checks, Wald coverage of the slope."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from _helpers_metrics import load_results, o5_data
from numpy.testing import assert_allclose
from scipy.special import expit, logit

from rwe.exceptions import InvalidParameterError
from rwe.metrics import compute_metric, compute_metrics
from rwe.metrics._registry import SCORE_NOT_PROBABILITY

R = load_results()


@pytest.fixture(scope="module")
def o5():
    y, p = o5_data()
    names = ["calibration_slope", "calibration_intercept", "oe_ratio", "brier", "ece",
             "spiegelhalter_z"]
    vals = compute_metrics(names, y, p, bin_edges=R.O5_BIN_EDGES, n_boot=200, random_state=1)
    return dict(zip(names, vals, strict=True))


def test_o5_slope_and_intercept(o5):
    v = o5["calibration_slope"]
    assert_allclose(v.estimate, R.O5["calibration_slope"], rtol=1e-9)
    assert_allclose(v.extras["intercept"], R.O5["calibration_slope_intercept"], rtol=1e-9)
    assert v.ci.method == "wald" and v.ci.low < v.estimate < v.ci.high
    assert_allclose(o5["calibration_intercept"].estimate, 0.0, atol=1e-10)


def test_o5_oe_brier_ece_spiegelhalter(o5):
    assert_allclose(o5["oe_ratio"].estimate, R.O5["oe_ratio"], rtol=1e-12)
    assert o5["oe_ratio"].ci.method == "exact-poisson"
    # Garwood bounds for O = 80 (chi2.ppf(.025, 160)/2, chi2.ppf(.975, 162)/2), divided by E
    assert_allclose(o5["oe_ratio"].ci.low * 80, 63.435025, rtol=1e-6)
    assert_allclose(o5["oe_ratio"].ci.high * 80, 99.566925, rtol=1e-6)
    assert_allclose(o5["brier"].estimate, R.O5["brier"], rtol=1e-12)
    assert_allclose(o5["ece"].estimate, R.O5["ece"], rtol=1e-12)
    assert o5["ece"].extras["bin_edges"] == list(R.O5_BIN_EDGES)
    z = o5["spiegelhalter_z"]
    assert_allclose(z.estimate, R.O5["spiegelhalter_z"], rtol=1e-6)
    assert_allclose(z.extras["p_value"], R.O5["spiegelhalter_p"], rtol=1e-3)
    assert z.ci is None


def test_ece_default_bins_stated_and_equal_width():
    y, p = o5_data()
    v = compute_metric("ece", y, p, n_boot=50, random_state=0)
    assert v.extras["n_bins"] == 10
    assert "10 equal-width bins" in v.extras["bins"]
    assert_allclose(v.estimate, 0.10, rtol=1e-12)  # 0.2 and 0.6 fall in different bins
    # descriptive only: no interval, and the reason says why
    assert v.ci is None and "no confidence interval" in v.reason


def test_ece_matches_direct_binned_computation():
    rng = np.random.default_rng(3)
    p = rng.uniform(size=500)
    y = rng.uniform(size=500) < p ** 1.3
    v = compute_metric("ece", y, p, n_bins=5, n_boot=50, random_state=0)
    b = np.minimum((p * 5).astype(int), 4)
    expected = sum((b == k).mean() * abs(y[b == k].mean() - p[b == k].mean()) for k in range(5))
    assert_allclose(v.estimate, expected, rtol=1e-12)


@pytest.fixture(scope="module")
def asah_probs(asah):
    """Predicted probabilities from a logistic model of outcome on s100b (fitted on half)."""
    y = (asah["outcome"] == "Poor").to_numpy().astype(int)
    x = np.log(asah["s100b"].to_numpy())
    p = expit(-0.3 + 1.4 * (x - x.mean()))  # a deliberately mis-calibrated score
    return y, p


def test_slope_and_citl_match_statsmodels_logit(asah_probs):
    y, p = asah_probs
    lp = logit(p)
    fit = sm.Logit(y, sm.add_constant(lp)).fit(disp=0)
    v = compute_metric("calibration_slope", y, p)
    assert_allclose(v.estimate, fit.params[1], rtol=1e-7)
    assert_allclose(v.extras["intercept"], fit.params[0], rtol=1e-7)
    assert_allclose(v.extras["se"], fit.bse[1], rtol=1e-6)
    lo, hi = fit.conf_int(alpha=0.05)[1]
    assert_allclose([v.ci.low, v.ci.high], [lo, hi], rtol=1e-6)
    citl = sm.GLM(y, np.ones((y.size, 1)), family=sm.families.Binomial(), offset=lp).fit()
    c = compute_metric("calibration_intercept", y, p)
    assert_allclose(c.estimate, citl.params[0], rtol=1e-7)
    assert_allclose(c.extras["se"], citl.bse[0], rtol=1e-6)


def test_brier_matches_sklearn_and_wald(asah_probs):
    from sklearn.metrics import brier_score_loss

    y, p = asah_probs
    v = compute_metric("brier", y, p, confidence_level=0.9)
    assert_allclose(v.estimate, brier_score_loss(y, p), rtol=1e-12)
    se = np.std((p - y) ** 2, ddof=1) / np.sqrt(y.size)
    assert_allclose(v.ci.high - v.estimate, 1.6448536269514722 * se, rtol=1e-9)
    assert v.ci.level == 0.9


def test_perfect_separation_gives_reason_not_warning():
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8])
    v = compute_metric("calibration_slope", y, p)
    assert np.isnan(v.estimate) and v.ci is None
    assert "separation" in v.reason
    # CITL is still defined here (only the slope diverges)
    assert np.isfinite(compute_metric("calibration_intercept", y, p).estimate)


def test_predictions_of_exactly_0_and_1_leave_the_fit_by_a_stated_rule():
    """The issue's case: one certain-and-wrong prediction used to set the slope through the
    clipping constant (-0.067 at 1e-12, 0.246 at 1e-3); now it leaves the fit, which then
    equals the fit without that row, and the reason and extras say so."""
    rng = np.random.default_rng(4)
    p = rng.uniform(0.05, 0.95, 300)
    y = (rng.uniform(size=300) < p).astype(int)
    p2, y2 = np.r_[p, 1.0, 0.0], np.r_[y, 0, 0]  # p = 1 contradicted, p = 0 confirmed
    v = compute_metric("calibration_slope", y2, p2)
    ref = compute_metric("calibration_slope", y, p)
    assert_allclose(v.estimate, ref.estimate, rtol=1e-12)
    assert v.extras["n_extreme"] == 2 and v.extras["n_contradicted"] == 1
    assert "exactly 0 or 1" in v.reason and "contradicted" in v.reason
    c = compute_metric("calibration_intercept", y2, p2)
    assert_allclose(c.estimate, compute_metric("calibration_intercept", y, p).estimate,
                    rtol=1e-12)
    # metrics defined at 0 and 1 keep those rows
    assert_allclose(compute_metric("brier", y2, p2).estimate, np.mean((p2 - y2) ** 2))


def test_probability_range_is_checked():
    with pytest.raises(InvalidParameterError) as exc:
        compute_metric("brier", [0, 1], [0.2, 1.5])
    assert str(exc.value) == SCORE_NOT_PROBABILITY.format(metric="brier", low=0.2, high=1.5)


def _newton_logistic(y, x, n_iter=25):
    """Vectorised Newton-Raphson for logit P(y) = b0 + b1 x over rows of (R, n) arrays."""
    b = np.zeros((y.shape[0], 2))
    for _ in range(n_iter):
        eta = b[:, :1] + b[:, 1:] * x
        mu = expit(eta)
        w = mu * (1 - mu)
        r = y - mu
        g0, g1 = r.sum(1), (r * x).sum(1)
        h00, h01, h11 = w.sum(1), (w * x).sum(1), (w * x * x).sum(1)
        det = h00 * h11 - h01 ** 2
        b[:, 0] += (h11 * g0 - h01 * g1) / det
        b[:, 1] += (h00 * g1 - h01 * g0) / det
    mu = expit(b[:, :1] + b[:, 1:] * x)
    w = mu * (1 - mu)
    h00, h01, h11 = w.sum(1), (w * x).sum(1), (w * x * x).sum(1)
    se1 = np.sqrt(h00 / (h00 * h11 - h01 ** 2))
    return b, se1


def test_slope_wald_coverage():
    """95% Wald CI of the calibration slope covers the true slope 0.8 in 93.5-96.5% of
    4000 simulated validation sets (n = 400); the fits are vectorised Newton iterations
    checked against rwe (statsmodels GLM) on a few of the datasets."""
    rng = np.random.default_rng(20261123)
    reps, n, true_slope, true_int = 4000, 400, 0.8, -0.2
    lp = rng.normal(-0.5, 1.2, size=(reps, n))  # logit of the model's predictions
    y = (rng.uniform(size=(reps, n)) < expit(true_int + true_slope * lp)).astype(float)
    b, se = _newton_logistic(y, lp)
    for r in range(3):
        v = compute_metric("calibration_slope", y[r], expit(lp[r]))
        assert_allclose(v.estimate, b[r, 1], rtol=1e-7)
        assert_allclose(v.extras["se"], se[r], rtol=1e-6)
    z = 1.959963984540054
    covered = (b[:, 1] - z * se <= true_slope) & (true_slope <= b[:, 1] + z * se)
    assert 0.935 <= covered.mean() <= 0.965, covered.mean()


def test_ece_of_repeated_rows_equals_ece_of_weighted_histogram():
    """ECE from a histogram with counts == ECE of the rows repeated."""
    rng = np.random.default_rng(8)
    p = np.round(rng.uniform(size=60), 3)
    y = (rng.uniform(size=60) < p).astype(float)
    w = rng.poisson(1.0, size=60)
    rep = np.repeat(np.arange(60), w)
    bins = np.minimum((p * 10).astype(int), 9)
    want = np.abs(np.bincount(bins[rep], (y - p)[rep], minlength=10)).sum() / rep.size
    got = compute_metric("ece", y[rep], p[rep], n_boot=200, random_state=3)
    assert_allclose(got.estimate, want, rtol=1e-12)


def test_ece_is_positive_for_a_calibrated_model_so_it_carries_no_interval():
    """Why ECE has no interval: for a perfectly calibrated model (true ECE 0) the plug-in ECE
    is positive in every one of 400 simulated samples, so no interval around it could cover
    0; the goal test would never judge it."""
    rng = np.random.default_rng(12)
    p = rng.uniform(size=(400, 300))
    y = rng.uniform(size=p.shape) < p
    ece = [compute_metric("ece", y[r], p[r]).estimate for r in range(0, 400, 20)]
    assert min(ece) > 0.01


def test_non_convergence_becomes_reason(monkeypatch):
    import rwe.stats as st

    real = st.fit_logistic

    def stalled(*a, **kw):
        fit = real(*a, **kw)
        nan = np.full_like(fit.a, np.nan)
        return type(fit)(fit.model, nan, nan, nan, nan, nan, np.zeros_like(fit.converged))

    monkeypatch.setattr(st, "fit_logistic", stalled)
    y, p = o5_data()
    v = compute_metric("calibration_slope", y, p)
    assert np.isnan(v.estimate) and v.ci is None and "did not converge" in v.reason


# --------------------------------------------------------------- many groups fitted at once
def _groups(seed=3, sizes=(400, 1500, 90, 2500)):
    rng = np.random.default_rng(seed)
    grp = np.repeat(np.arange(len(sizes)), sizes)
    p = expit(rng.normal(-1.2, 1.3, grp.size))
    slope = np.array([0.7, 1.0, 1.4, 0.9, 1.1, 1.2])[grp]
    y = rng.random(grp.size) < expit(0.3 * (grp - 1.5) + slope * logit(p))
    return y, p, grp


def _segments_of(y, lp, grp):
    """Rows sorted by group: one segment per group, one row per observation."""
    order = np.argsort(grp, kind="stable")
    g = grp[order]
    starts = np.searchsorted(g, np.arange(g.max() + 1))
    return lp[order], y[order].astype(float), np.ones(g.size), starts


def test_fit_logistic_equals_statsmodels_logit_in_every_segment():
    """One Newton iteration over all segments = one statsmodels Logit per group: estimates,
    model-based SEs and the log-likelihood, for the slope and the offset models."""
    from rwe.stats import fit_logistic

    y, p, grp = _groups()
    lp = np.log(p) - np.log1p(-p)
    k = grp.max() + 1
    x, succ, trials, starts = _segments_of(y, lp, grp)
    slopes = fit_logistic(x, succ, trials, starts, model="slope")
    offset = fit_logistic(x, succ, trials, starts, model="offset")
    assert slopes.converged.all() and offset.converged.all()
    for g in range(k):
        m = grp == g
        f = sm.Logit(y[m].astype(float), sm.add_constant(lp[m])).fit(disp=0, tol=1e-12)
        assert_allclose([slopes.a[g], slopes.b[g]], f.params, rtol=1e-9)
        assert_allclose([slopes.se_a[g], slopes.se_b[g]], f.bse, rtol=1e-9)
        assert_allclose(slopes.llf[g], f.llf, rtol=1e-11)
        o = sm.Logit(y[m].astype(float), np.ones((m.sum(), 1)), offset=lp[m]).fit(
            disp=0, tol=1e-12)
        assert_allclose(offset.a[g], o.params[0], rtol=1e-9, atol=1e-12)
        assert_allclose(offset.se_a[g], o.bse[0], rtol=1e-9)
        assert_allclose(offset.llf[g], o.llf, rtol=1e-11)
    # common slope: the GLM y ~ lp + group
    d = (grp[:, None] == np.arange(1, k)).astype(float)
    glm = sm.GLM(y.astype(float), sm.add_constant(np.column_stack([lp, d])),
                 family=sm.families.Binomial()).fit(tol=1e-12)
    common = fit_logistic(x, succ, trials, starts, model="common_slope")
    assert common.converged.all()
    assert_allclose(common.b[0], glm.params[1], rtol=1e-9)
    assert_allclose(np.nansum(common.llf), glm.llf, rtol=1e-11)
    # grouped binomial rows (one row per distinct covariate) give the same fit
    q = np.clip(np.round(p, 2), 0.005, 0.995)
    lq = np.log(q) - np.log1p(-q)
    f_rows = fit_logistic(*_segments_of(y, lq, grp), model="slope")
    key = grp * 1000 + np.round(q * 100).astype(int)
    uk, inv = np.unique(key, return_inverse=True)
    ug = uk // 1000
    f_grp = fit_logistic(lq[np.unique(inv, return_index=True)[1]],
                         np.bincount(inv, weights=y), np.bincount(inv).astype(float),
                         np.searchsorted(ug, np.arange(k)), model="slope")
    assert_allclose(f_grp.b, f_rows.b, rtol=1e-10)
    assert_allclose(f_grp.se_b, f_rows.se_b, rtol=1e-10)
    with pytest.raises(InvalidParameterError, match="model="):
        fit_logistic(x, succ, trials, starts, model="probit")


def test_fit_logistic_has_no_estimate_where_a_segment_has_one_class_or_separation():
    from rwe.stats import REASON_NO_CONVERGENCE, fit_logistic, logistic_reasons

    y, p, grp = _groups()
    y = y.copy()
    y[grp == 2] = False
    sep = grp == 3
    y[sep] = p[sep] > np.median(p[sep])
    args = _segments_of(y, logit(p), grp)
    fit = fit_logistic(*args, model="slope")
    assert np.isnan(fit.b[[2, 3]]).all() and np.isfinite(fit.b[[0, 1]]).all()
    reasons = logistic_reasons(*args)
    assert "no positive" in reasons[2] and "separat" in reasons[3]
    assert reasons[0] is None and REASON_NO_CONVERGENCE == "logistic fit did not converge"
    off = fit_logistic(*args, model="offset")
    assert np.isnan(off.a[2]) and np.isfinite(off.a[3])  # CITL exists under separation


def test_slope_kernel_over_segments_equals_compute_metric_per_group():
    """The subgroup path (one kernel call over every level) gives exactly what
    compute_metrics gives per group, reasons included."""
    from rwe.metrics import get_metric
    from rwe.metrics._registry import KernelContext
    from rwe.stats.summaries import summarize_arrays

    y, p, grp = _groups(sizes=(400, 1500, 90, 2500, 60, 50))
    y = y.copy()
    y[grp == 4] = False                       # one class: no slope, no intercept
    sep = grp == 5                            # separated: no slope, an intercept
    y[sep] = p[sep] > np.median(p[sep])
    s = summarize_arrays(y_true=y, scores={"v": p}, attributes={"g": grp.astype(str)})
    seg = s.segments(s.grouping("g"), "v")
    ctx = KernelContext(confidence_level=0.9)
    for name in ("calibration_slope", "calibration_intercept", "brier"):
        lv = get_metric(name).kernel(seg, ctx)
        for i, lab in enumerate(seg.labels):
            m = grp == int(lab)
            v = lv.value(i, name, int(m.sum()), int(y[m].sum()))
            want = compute_metric(name, y[m], p[m], confidence_level=0.9)
            assert (v.metric, v.n, v.events, v.reason) == (want.metric, want.n, want.events,
                                                           want.reason)
            assert_allclose(v.estimate, want.estimate, rtol=1e-12, atol=1e-14)
            if want.ci is not None:
                assert_allclose([*v.ci], [*want.ci], rtol=1e-12, atol=1e-14)
    assert "separat" in compute_metric("calibration_slope", y[sep], p[sep]).reason
