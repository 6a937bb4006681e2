"""Survival metrics on the Rossi recidivism data with a Cox model fitted in the test."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.datasets import load_rossi
from lifelines.utils import concordance_index
from numpy.testing import assert_allclose

from rwe.exceptions import InvalidParameterError
from rwe.metrics import (
    compute_metric,
    compute_metrics,
    concordance_pair_counts,
    kaplan_meier_by_group,
    metric_names,
)
from rwe.metrics._registry import MISSING_INPUT

sksurv_metrics = pytest.importorskip("sksurv.metrics")
from sksurv.util import Surv  # noqa: E402

HORIZON = 26.0


@pytest.fixture(scope="module")
def rossi():
    df = load_rossi()
    cph = CoxPHFitter().fit(df, duration_col="week", event_col="arrest")
    risk = cph.predict_log_partial_hazard(df).to_numpy()
    p_event = 1 - cph.predict_survival_function(df, times=[HORIZON]).to_numpy()[0]
    return df["week"].to_numpy(float), df["arrest"].to_numpy(int), risk, p_event, cph


def test_harrell_c_matches_lifelines(rossi):
    t, e, risk, _, cph = rossi
    v = compute_metric("harrell_c", e, risk, time=t, event=e)
    assert_allclose(v.estimate, concordance_index(t, -risk, e), rtol=1e-12)
    assert_allclose(v.estimate, cph.concordance_index_, rtol=1e-10)
    assert v.events == 114 and v.n == 432
    assert v.ci.method == "jackknife" and v.ci.low < v.estimate < v.ci.high


def test_pair_counts_reproduce_lifelines_with_ties():
    rng = np.random.default_rng(5)
    n = 150
    t = rng.integers(1, 20, size=n).astype(float)  # many tied times
    e = rng.uniform(size=n) < 0.6
    r = np.round(rng.normal(size=n), 1)  # tied risks
    comp_k, conc_k = concordance_pair_counts(t, e, r)
    assert_allclose(conc_k.sum() / comp_k.sum(), concordance_index(t, -r, e), rtol=1e-12)


def test_jackknife_se_matches_brute_force(rossi):
    t, e, risk, _, _ = rossi
    sub = slice(0, 120)
    t, e, risk = t[sub], e[sub], risk[sub]
    v = compute_metric("harrell_c", e, risk, time=t, event=e)
    n = t.size
    keep = ~np.eye(n, dtype=bool)
    loo = np.array([concordance_index(t[k], -risk[k], e[k]) for k in keep])
    se = math.sqrt((n - 1) / n * np.sum((loo - loo.mean()) ** 2))
    assert_allclose(v.extras["se"], se, rtol=1e-10)


def test_td_auc_on_raw_rossi_is_explained(rossi):
    # arrests at week 52, the last follow-up time, make the censoring survival G(52) = 0, so
    # sksurv's IPCW weights are undefined: rwe reports the reason instead of raising
    t, e, risk, _, _ = rossi
    v = compute_metric("time_dependent_auc", e, risk, time=t, event=e, horizon=HORIZON)
    assert math.isnan(v.estimate) and "censoring survival function is zero" in v.reason


def test_uno_td_auc_brier_match_sksurv(rossi):
    t, e, risk, p_event, _ = rossi
    # administrative censoring at week 51 keeps the censoring survival positive
    e = np.where(t > 51, 0, e)
    t = np.minimum(t, 51.0)
    y = Surv.from_arrays(event=e.astype(bool), time=t)
    vals = compute_metrics(["uno_c", "time_dependent_auc"], e, risk, time=t, event=e,
                           horizon=HORIZON)
    uno = sksurv_metrics.concordance_index_ipcw(y, y, risk, tau=HORIZON)[0]
    auc = sksurv_metrics.cumulative_dynamic_auc(y, y, risk, [HORIZON])[0][0]
    assert_allclose(vals[0].estimate, uno, rtol=1e-12)
    assert_allclose(vals[1].estimate, auc, rtol=1e-12)
    b = compute_metric("brier_ipcw", e, p_event, time=t, event=e, horizon=HORIZON)
    ref = sksurv_metrics.brier_score(y, y, (1 - p_event)[:, None], [HORIZON])[1][0]
    assert_allclose(b.estimate, ref, rtol=1e-12)
    assert 0 < b.estimate < 0.25


@pytest.mark.parametrize("name", ["time_dependent_auc", "brier_ipcw"])
def test_horizon_required(name):
    with pytest.raises(InvalidParameterError) as exc:
        compute_metric(name, [1, 0], [0.2, 0.1], time=[1.0, 2.0], event=[1, 0])
    assert str(exc.value) == MISSING_INPUT.format(metric=name, needs="horizon", value=None)


SURV_DEGENERATE = {
    "no_events": ([3.0, 5.0, 7.0], [0, 0, 0], [0.2, 0.5, 0.1]),
    "n_equals_1": ([3.0], [1], [0.4]),
    "all_tied_events": ([4.0, 4.0, 4.0], [1, 1, 1], [0.2, 0.5, 0.1]),
    "horizon_before_events": ([30.0, 40.0, 50.0, 60.0], [1, 0, 1, 0], [0.3, 0.2, 0.6, 0.1]),
}


@pytest.mark.parametrize("case", list(SURV_DEGENERATE))
def test_survival_degenerate_inputs(case):
    t, e, s = SURV_DEGENERATE[case]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = compute_metrics(metric_names("survival"), e, s, time=t, event=e, horizon=10.0)
    for v in out:
        if not math.isfinite(v.estimate):
            assert v.reason, (case, v.metric)
        assert v.events == int(np.sum(e))


def test_kaplan_meier_by_group_matches_lifelines(rossi):
    t, e, _, _, _ = rossi
    fin = load_rossi()["fin"].to_numpy()
    km = kaplan_meier_by_group(t, e, np.where(fin == 1, "aid", "no aid"))
    assert list(km.columns) == ["group", "time", "survival", "ci_low", "ci_high", "n_at_risk",
                                "n_events", "n_censored"]
    assert set(km["group"]) == {"aid", "no aid"}
    for label, code in (("aid", 1), ("no aid", 0)):
        ref = KaplanMeierFitter().fit(t[fin == code], e[fin == code])
        g = km[km["group"] == label]
        assert_allclose(g["survival"].to_numpy(), ref.survival_function_.iloc[:, 0].to_numpy())
        assert_allclose(g["ci_low"].to_numpy(), ref.confidence_interval_.iloc[:, 0].to_numpy())
        assert g["n_events"].sum() == e[fin == code].sum()
        assert g["n_at_risk"].iloc[0] == (fin == code).sum()


def test_without_scikit_survival_the_reason_is_the_install_hint(monkeypatch, rossi):
    from rwe.metrics import _survival

    def missing(module, *, extra):
        raise ImportError(f"{module} is required for this feature; install it with: "
                          f"pip install 'rwe[{extra}]'")

    monkeypatch.setattr(_survival, "import_optional", missing)
    t, e, risk, _, _ = rossi
    for v in compute_metrics(["uno_c", "time_dependent_auc"], e, risk, time=t, event=e,
                             horizon=HORIZON):
        assert math.isnan(v.estimate) and "pip install 'rwe[examples]'" in v.reason
    # Harrell's C only needs lifelines
    assert math.isfinite(compute_metric("harrell_c", e, risk, time=t, event=e).estimate)


def test_kaplan_meier_drops_missing_groups_and_validates():
    km = kaplan_meier_by_group([1.0, 2.0, 3.0, 4.0], [1, 0, 1, 1], ["a", None, "a", "b"])
    assert set(km["group"]) == {"a", "b"}
    assert km.loc[km["group"] == "a", "n_at_risk"].iloc[0] == 2
    with pytest.raises(InvalidParameterError, match="time must be finite and non-negative"):
        compute_metric("harrell_c", [1, 0], [0.1, 0.2], time=[-1.0, 2.0], event=[1, 0])


def _jackknife_c_batch(t, e, x):
    """Vectorised Harrell's C and its jackknife SE over rows of (b, n) arrays (no time ties)."""
    n = t.shape[1]
    comp = e[:, :, None] & (t[:, :, None] < t[:, None, :])
    conc = comp & (x[:, :, None] > x[:, None, :])
    ck = comp.sum(2) + comp.sum(1)
    qk = conc.sum(2) + conc.sum(1)
    p, q = comp.sum((1, 2)), conc.sum((1, 2))
    loo = (q[:, None] - qk) / (p[:, None] - ck)
    se = np.sqrt((n - 1) / n * ((loo - loo.mean(1, keepdims=True)) ** 2).sum(1))
    return q / p, se


@pytest.mark.parametrize("censored", [False, True])
def test_harrell_c_jackknife_calibration(censored):
    """Exponential times with hazard exp(x), risk score x, n = 150, 4000 datasets.

    Without censoring the estimand is C0 = 2 E[1{D > 0} expit(D)], D ~ N(0, 2), and the 95%
    jackknife interval must cover it 93.5-96.5% of the time. With censoring (Harrell's C then
    targets a censoring-dependent value) the mean jackknife SE must match the Monte-Carlo SD
    of C within 10%. rwe's value is checked against the vectorised computation on a few sets.
    """
    from scipy import integrate, stats
    from scipy.special import expit

    c0 = 2 * integrate.quad(lambda d: expit(d) * stats.norm.pdf(d, scale=math.sqrt(2)), 0,
                            np.inf, epsabs=1e-13)[0]
    rng = np.random.default_rng(42 + censored)
    reps, n, chunk = 4000, 150, 250
    est, ses = [], []
    for start in range(0, reps, chunk):
        x = rng.normal(size=(chunk, n))
        t_ev = rng.exponential(1 / np.exp(x))
        t_c = rng.exponential(2.0, size=(chunk, n)) if censored else np.full((chunk, n), np.inf)
        e, t = t_ev <= t_c, np.minimum(t_ev, t_c)
        c, se = _jackknife_c_batch(t, e, x)
        if start == 0:
            for r in range(2):
                v = compute_metric("harrell_c", e[r], x[r], time=t[r], event=e[r])
                assert_allclose([v.estimate, v.extras["se"]], [c[r], se[r]], rtol=1e-10)
        est.append(c)
        ses.append(se)
    c, se = np.concatenate(est), np.concatenate(ses)
    if censored:
        assert 0.9 <= se.mean() / c.std(ddof=1) <= 1.1
    else:
        covered = np.abs(c - c0) <= 1.959963984540054 * se
        assert 0.935 <= covered.mean() <= 0.965, covered.mean()


def _censored_at_51(rossi):
    t, e, risk, p_event, _ = rossi
    return np.minimum(t, 51.0), np.where(t > 51, 0, e), risk, p_event


@pytest.mark.parametrize("name", ["uno_c", "time_dependent_auc", "brier_ipcw"])
def test_ipcw_metrics_carry_a_seeded_bootstrap_interval(rossi, name):
    t, e, risk, p_event = _censored_at_51(rossi)
    score = p_event if name == "brier_ipcw" else risk
    kw = dict(time=t, event=e, horizon=HORIZON, n_boot=200, random_state=7)
    v = compute_metric(name, e, score, **kw)
    assert v.ci is not None and v.ci.method == "percentile" and v.reason is None
    assert v.ci.low < v.estimate < v.ci.high
    w = compute_metric(name, e, score, **kw)
    assert (w.ci.low, w.ci.high) == (v.ci.low, v.ci.high)


def test_ipcw_bootstrap_width_shrinks_like_one_over_root_n(rossi):
    # the same data repeated 4 times: the estimate is unchanged and the bootstrap SE, hence
    # the percentile interval width, halves (sqrt(4) = 2); a width that ignored n would fail
    t, e, _, p_event = _censored_at_51(rossi)
    kw = dict(horizon=HORIZON, n_boot=300, random_state=3)
    one = compute_metric("brier_ipcw", e, p_event, time=t, event=e, **kw)
    four = compute_metric("brier_ipcw", np.tile(e, 4), np.tile(p_event, 4),
                          time=np.tile(t, 4), event=np.tile(e, 4), **kw)
    assert_allclose(four.estimate, one.estimate, rtol=1e-10)
    ratio = (four.ci.high - four.ci.low) / (one.ci.high - one.ci.low)
    assert 0.38 < ratio < 0.65
