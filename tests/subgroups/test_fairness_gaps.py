"""Heterogeneity tests, Holm adjustment and fairness gaps against scipy/statsmodels/fairlearn."""

from __future__ import annotations

import numpy as np
import pandas as pd
from _subgroups_helpers import make_ev, synthetic_frame
from numpy.testing import assert_allclose
from scipy import stats
from sklearn.metrics import recall_score

from rwe.subgroups import subgroup_performance


def test_fairness_gap_equals_fairlearn_difference(flchain_ev, flchain_frame):
    from fairlearn.metrics import MetricFrame, false_positive_rate

    df = flchain_frame
    rep = subgroup_performance(flchain_ev, metrics=("sensitivity",),
                               by=("age_band", ("sex", "age_band")), threshold=0.3,
                               min_n=1, min_events=0, n_boot=200, random_state=0)
    for by, name in ((["age_band"], "age_band"), (["sex", "age_band"], "sex x age_band")):
        mf = MetricFrame(metrics={"recall": recall_score, "fpr": false_positive_rate},
                         y_true=df["y"], y_pred=df["score"] >= 0.3,
                         sensitive_features=df[by])
        diff = mf.difference()
        f = rep.fairness[rep.fairness["group"] == name].set_index("metric")
        assert_allclose(f.loc["sensitivity", "gap"], diff["recall"], rtol=1e-12)
        assert_allclose(f.loc["fpr", "gap"], diff["fpr"], rtol=1e-12)
        for m in ("sensitivity", "fpr"):  # the interval always contains the gap
            assert f.loc[m, "ci_low"] <= f.loc[m, "gap"] <= f.loc[m, "ci_high"]
        assert f.loc["sensitivity", "ci_method"] == "simultaneous-newcombe-wilson"


def test_fairness_ci_deterministic_and_excludes_insufficient():
    df = synthetic_frame(3000, seed=1)
    df.loc[:14, "race"] = "Tiny"
    ev = make_ev(df)
    a = subgroup_performance(ev, metrics=("sensitivity",), n_boot=200, random_state=4)
    b = subgroup_performance(ev, metrics=("sensitivity",), n_boot=200, random_state=4)
    pd.testing.assert_frame_equal(a.fairness, b.fairness)
    race = a.fairness[(a.fairness["group"] == "race") & (a.fairness["metric"] == "sensitivity")]
    assert race["levels_compared"].iloc[0] == 4  # Tiny (n=15) is not compared
    assert "Tiny" not in (race["level_max"].iloc[0], race["level_min"].iloc[0])


def test_chi2_heterogeneity_equals_scipy_and_holm_equals_statsmodels():
    from statsmodels.stats.multitest import multipletests

    df = synthetic_frame(4000, seed=2)
    ev = make_ev(df)
    rep = subgroup_performance(ev, metrics=("sensitivity", "specificity"), fairness=False)
    h = rep.heterogeneity
    pred = df["score"] >= 0.5
    pos = df[df["y"] == 1]
    tab = pd.crosstab(pred[df["y"] == 1], pos["race"]).to_numpy()
    res = stats.chi2_contingency(tab, correction=False)
    r = h[(h["group"] == "race") & (h["metric"] == "sensitivity")].iloc[0]
    assert_allclose([r["statistic"], r["pvalue"]], [res.statistic, res.pvalue], rtol=1e-10)
    assert r["df"] == 3
    for metric in ("sensitivity", "specificity"):
        hm = h[h["metric"] == metric]
        assert len(hm) == 3
        assert_allclose(hm["pvalue_adjusted"], multipletests(hm["pvalue"], method="holm")[1],
                        rtol=1e-12)


def test_auroc_heterogeneity_delong_and_cochran_q():
    from sklearn.metrics import roc_auc_score

    df = synthetic_frame(3000, seed=8)
    ev = make_ev(df)
    rep = subgroup_performance(ev, metrics=("auroc",), fairness=False, auroc_interval="delong")
    t = rep.table.set_index(["group", "level"])
    se = (t["ci_high"] - t["ci_low"]) / (2 * stats.norm.ppf(0.975))  # unclipped here
    h = rep.heterogeneity.set_index("group")
    a_f, a_m = t.loc[("sex", "F"), "estimate"], t.loc[("sex", "M"), "estimate"]
    assert_allclose(a_f, roc_auc_score(df.y[df.sex == "F"], df.score[df.sex == "F"]))
    z = (a_f - a_m) / np.sqrt(se[("sex", "F")] ** 2 + se[("sex", "M")] ** 2)
    assert h.loc["sex", "test"] == "delong_unpaired"
    assert_allclose(h.loc["sex", "statistic"], z, rtol=1e-8)
    assert_allclose(h.loc["sex", "pvalue"], 2 * stats.norm.sf(abs(z)), rtol=1e-8)
    levels = ["Asian", "Black", "Other", "White"]
    a = np.array([t.loc[("race", lev), "estimate"] for lev in levels])
    w = 1 / np.array([se[("race", lev)] ** 2 for lev in levels])
    q = np.sum(w * (a - np.sum(w * a) / np.sum(w)) ** 2)
    assert h.loc["race", "test"] == "cochran_q"
    assert_allclose(h.loc["race", "statistic"], q, rtol=1e-8)
    assert_allclose(h.loc["race", "pvalue"], stats.chi2.sf(q, 3), rtol=1e-8)
    assert_allclose(h.loc["race", "i2"], max(0, (q - 3) / q), rtol=1e-8)


def test_heterogeneity_detects_a_real_difference():
    df = synthetic_frame(6000, seed=9)
    rng = np.random.default_rng(0)
    worse = (df["race"] == "Black") & (df["y"] == 1)
    df.loc[worse, "score"] = rng.uniform(0, 0.6, int(worse.sum()))  # low sensitivity
    rep = subgroup_performance(make_ev(df), metrics=("sensitivity",), fairness=True,
                               n_boot=200, random_state=0)
    h = rep.heterogeneity.set_index("group")
    assert h.loc["race", "pvalue_adjusted"] < 1e-6
    assert h.loc["sex", "pvalue_adjusted"] > 0.01
    f = rep.fairness.query("group == 'race' and metric == 'sensitivity'").iloc[0]
    assert f["level_min"] == "Black" and f["ci_low"] > 0.2


def test_calibration_slope_gap_has_an_interval_and_binned_fit_matches_glm():
    import statsmodels.api as sm

    df = synthetic_frame(3000, seed=10)
    rep = subgroup_performance(make_ev(df), metrics=("calibration_slope",), by=("sex",),
                               n_boot=200, random_state=0)
    f = rep.fairness.query("metric == 'calibration_slope'").iloc[0]
    t = rep.table.query("group == 'sex'").set_index("level")["estimate"]
    assert_allclose(f["gap"], abs(t["F"] - t["M"]), rtol=1e-12)
    assert f["ci_low"] <= f["gap"] <= f["ci_high"] or f["ci_low"] > 0
    assert f["ci_method"] == "simultaneous-wald"
    assert f["ci_low"] <= f["gap"] <= f["ci_high"]
    # the binned Newton fit used inside the bootstrap reproduces the row-level GLM slope
    p = df["score"].to_numpy()
    lp = np.log(p / (1 - p))
    glm = sm.GLM(df["y"].to_numpy(), sm.add_constant(lp), family=sm.families.Binomial()).fit()
    edges = np.linspace(lp.min(), lp.max() + 1e-9, 257)
    b = np.searchsorted(edges, lp, side="right") - 1
    cnt = np.stack([np.bincount(b, weights=1 - df["y"], minlength=256),
                    np.bincount(b, weights=df["y"], minlength=256)])
    x = np.bincount(b, weights=lp, minlength=256) / np.maximum(cnt.sum(0), 1)
    from rwe.stats import fit_logistic

    ok = cnt.sum(0) > 0
    slope = fit_logistic(x[ok], cnt[1, ok], cnt.sum(0)[ok]).b[0]
    assert_allclose(slope, glm.params[1], rtol=2e-3)


def test_per_level_delong_variance_equals_rwe_stats(flchain_ev, flchain_frame):
    stats_mod = __import__("pytest").importorskip("rwe.stats")
    auc_delong = getattr(stats_mod, "auc_delong", None)
    if auc_delong is None:
        __import__("pytest").skip("rwe.stats.auc_delong not available")
    df = flchain_frame
    rep = subgroup_performance(flchain_ev, metrics=("auroc",), by=("age_band",),
                               fairness=False, auroc_interval="delong")
    z = stats.norm.ppf(0.975)
    for r in rep.table.query("group == 'age_band'").itertuples():
        m = (df["age_band"] == r.level).to_numpy()
        res = auc_delong(df["y"].to_numpy()[m], df["score"].to_numpy()[m])
        assert_allclose(r.estimate, res.auc, rtol=1e-12)
        se = np.sqrt(res.variance)
        assert_allclose([r.ci_low, r.ci_high],
                        [max(0, res.auc - z * se), min(1, res.auc + z * se)], rtol=1e-9)


def test_perfect_separation_level_is_defined_and_not_tested():
    df = synthetic_frame(2000, seed=13)
    m = df["race"] == "Asian"
    df.loc[m, "score"] = np.where(df.loc[m, "y"] == 1, 0.9, 0.1)
    rep = subgroup_performance(make_ev(df), metrics=("auroc",), by=("race",), fairness=False)
    r = rep.table.query("level == 'Asian'").iloc[0]
    # perfect separation: no zero-width interval, a stated reason (not judged against a goal)
    assert r["estimate"] == 1.0 and np.isnan(r["ci_low"]) and np.isnan(r["ci_high"])
    assert "perfect separation" in r["reason"]
    h = rep.heterogeneity.iloc[0]
    assert np.isnan(h["pvalue"]) and h["method"].startswith("not tested: a level has zero")


def test_gap_interval_contains_the_estimate_and_covers_the_true_gap():
    """Four groups of binomial sensitivities (true gap 0.10): the simultaneous interval
    contains every estimated gap and covers the true gap at least at its nominal level (the
    construction is conservative); the old bootstrap percentile interval of max - min could
    exclude its own estimate. Vectorized over 2000 replicates through the kernel (one segment
    per replicate and level)."""
    from rwe.metrics import get_metric
    from rwe.metrics._registry import KernelContext
    from rwe.stats.summaries import Segments
    from rwe.subgroups._performance import _fairness

    rng = np.random.default_rng(99)
    R, true = 2000, np.array([0.80, 0.80, 0.75, 0.70])
    n = np.array([60, 150, 90, 120])
    x = rng.binomial(n, true, size=(R, 4))
    # one segment per (replicate, level): two rows, below / at-or-above the threshold
    neg = np.zeros(R * 4 * 2)
    pos = np.stack([n - x, x], axis=-1).reshape(-1).astype(float)
    seg = Segments(np.arange(0, R * 8, 2), neg, pos, exact=False,
                   above=np.tile([False, True], R * 4))
    lv = get_metric("sensitivity").kernel(seg, KernelContext(threshold=0.5))
    est = lv.estimate.reshape(R, 4)
    covered = contained = 0
    for r in range(0, R):
        t = pd.DataFrame({"group": "g", "level": list("abcd"), "metric": "sensitivity",
                          "estimate": est[r], "status": "ok"})
        sub = type(lv)(lv.estimate[4 * r:4 * r + 4], lv.low[4 * r:4 * r + 4],
                       lv.high[4 * r:4 * r + 4], lv.method, lv.reason[4 * r:4 * r + 4],
                       {k: np.asarray(v)[4 * r:4 * r + 4] for k, v in lv.extras.items()})
        g = type("G", (), {"name": "g", "levels": tuple("abcd"), "n_attributes": 1})()
        f = _fairness(t, {("g", "sensitivity"): sub}, [None, g], 0.95, "wilson", None, None,
                      0.5, False).iloc[0]
        contained += f["ci_low"] <= f["gap"] <= f["ci_high"]
        covered += f["ci_low"] <= 0.10 <= f["ci_high"]
    assert contained == R
    assert covered / R >= 0.95 - 2 * np.sqrt(0.95 * 0.05 / R)
