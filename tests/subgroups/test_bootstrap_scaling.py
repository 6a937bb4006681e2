"""The subgroup bootstrap resamples per grouping (linear in levels, never the joint cells),
keeps one weight per patient across groupings, and the exact shortcuts it takes (derived
groupings, table Poisson sampler, Newton LR test, multiplicity) equal their references."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
from _subgroups_helpers import make_ev, synthetic_frame
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats

import rwe.subgroups._bootstrap as boot
import rwe.subgroups._performance as perf
from rwe.data import ColumnRoles, EvaluationSet
from rwe.stats.summaries import poisson1_weights, summarize
from rwe.subgroups import subgroup_performance


def _wide_ev(n=20000, n_attr=8, seed=0):
    """``n_attr`` independent attributes with 4 levels each: up to 4**n_attr joint cells."""
    rng = np.random.default_rng(seed)
    attrs = [f"a{i}" for i in range(n_attr)]
    df = pd.DataFrame({a: rng.choice(list("wxyz"), n) for a in attrs})
    df["y"] = (rng.random(n) < 0.3).astype(int)
    df["score"] = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.5 * df["y"] - 1)))
    roles = ColumnRoles(scores={"v1": "score"}, label="y", attributes=tuple(attrs))
    return EvaluationSet.from_frame(df, roles), attrs


def _cells(ev, by):
    by = perf._norm_by(by)
    attrs = list(dict.fromkeys(a for g in by for a in g))
    s = summarize(ev, attributes=attrs, features=())
    return s.cells, [s.grouping(())] + [s.grouping(g) for g in by]


@pytest.mark.parametrize("kw, max_bins", [
    (dict(metrics=("sensitivity",), ci_method="bootstrap"), 2),           # threshold split
    (dict(metrics=("sensitivity", "calibration_slope"), ci_method="bootstrap"), 258),  # + cal
    (dict(metrics=("sensitivity", "auroc"), ci_method="bootstrap"), 2049),  # AUROC: score bins
])
def test_bootstrap_counts_are_linear_in_levels_not_joint_cells(monkeypatch, kw, max_bins):
    ev, attrs = _wide_ev()
    by = attrs + [("a0", "a1"), ("a2", "a3")]
    cells, groupings = _cells(ev, by)
    total_levels = sum(len(g.levels) for g in groupings)  # 1 + 8 * 4 + 2 * 16 = 65
    assert cells.n_cells > 200 * total_levels  # ~17,000 joint cells: the old design's size
    shapes = []
    real = boot.poisson_bootstrap_counts

    def spy(counts, *args, **kwargs):
        shapes.append(np.shape(counts))
        return real(counts, *args, **kwargs)

    monkeypatch.setattr(boot, "poisson_bootstrap_counts", spy)
    tracemalloc.start()
    try:
        rep = subgroup_performance(ev, by=by, n_boot=200, random_state=0, heterogeneity=False,
                                   **kw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    (shape,) = shapes  # one resampling for all groupings
    n_lev, labels, bins = shape
    assert n_lev <= total_levels and labels == 2 and bins <= max_bins
    assert n_lev == rep.settings["bootstrap_resampled_levels"]
    assert bins == rep.settings["bootstrap_bins"]
    # derived groupings are not resampled again: a0 and a1 are sums of a0 x a1's levels
    assert n_lev == 4 * 4 + 2 * 16
    # the joint-cell design needed 17,000 cells x 2 x 2049 bins (> 500 MB of counts alone)
    assert peak < 150e6
    fair = rep.fairness
    assert fair["ci_low"].notna().all() and (fair["ci_low"] <= fair["ci_high"]).all()


def _specs(*names):
    from rwe.metrics import get_metric

    return [get_metric(n) for n in names]


def test_cluster_bootstrap_replicates_equal_patient_weighted_row_statistics():
    df = synthetic_frame(3000, seed=21)
    df["pid"] = np.random.default_rng(3).integers(0, 1100, len(df))  # repeated patients
    df.loc[:59, "race"] = None  # race missing: sex is then not derivable from sex x race
    ev = make_ev(df, patient_id="pid")
    by = perf._norm_by(("sex", "race", ("sex", "race")))
    summ = summarize(ev, attributes=["sex", "race"], features=(), keep_clusters=True)
    groupings = [summ.grouping(())] + [summ.grouping(g) for g in by]
    bases, plan = boot.resampled_groupings(groupings)
    names = [g.name for g in groupings]
    assert [names[i] for i in bases] == ["sex", "sex x race"]
    assert plan[names.index("overall")][0] == names.index("sex")
    assert plan[names.index("race")][0] == names.index("sex x race")
    y, s, pid = ev.y_true, ev.score(), ev.clusters
    B = 40
    out, info = boot.bootstrap_replicates(summ, groupings, _specs("sensitivity", "fpr"),
                                          version=None, threshold=0.5, n_bins=2048, n_boot=B,
                                          rng=np.random.default_rng(5), clusters=True)
    assert info["bootstrap_bins"] == 2 and info["bootstrap"] == "cluster (patients)"
    # the same weights, drawn by the same sampler: one Poisson(1) weight per patient
    # (sorted ids) and replicate, shared by every row of the patient and every grouping
    ids, inv = np.unique(pid, return_inverse=True)
    w = poisson1_weights(np.random.default_rng(5), (len(ids), B)).astype(float)[inv]  # rows x B
    pred = s >= 0.5
    row_cell = summ.clusters.cell
    for g in groupings:
        lev = g.cell_to_level[row_cell]
        for j in range(len(g.levels)):
            m = lev == j
            sens = (w * (m & y & pred)[:, None]).sum(0) / (w * (m & y)[:, None]).sum(0)
            fpr = (w * (m & ~y & pred)[:, None]).sum(0) / (w * (m & ~y)[:, None]).sum(0)
            assert_allclose(out["sensitivity"][g.name][:, j], sens, rtol=1e-12)
            assert_allclose(out["fpr"][g.name][:, j], fpr, rtol=1e-12)
    # the patient index is transient: never pickled
    import pickle

    assert pickle.loads(pickle.dumps(summ)).clusters is None


def test_row_bootstrap_of_derived_groupings_matches_analytic_spread():
    ev = make_ev(synthetic_frame(4000, seed=22))
    by = perf._norm_by(("sex", ("sex", "race")))
    summ = summarize(ev, attributes=["sex", "race"], features=())
    groupings = [summ.grouping(())] + [summ.grouping(g) for g in by]
    out, info = boot.bootstrap_replicates(summ, groupings, _specs("sensitivity", "auroc"),
                                          version=None, threshold=0.5, n_bins=2048, n_boot=300,
                                          rng=np.random.default_rng(1), clusters=False)
    assert info["bootstrap_resampled_levels"] == 8  # overall and sex come from sex x race
    assert info["bootstrap_bins"] == info["n_bins"] == 2048  # 0.5 is a grid edge
    assert info["auroc_binned_error_bound_max"] < 1e-3
    # replicate spread matches the DeLong / Wilson standard errors of the exact estimates
    an = subgroup_performance(ev, metrics=("sensitivity", "auroc"), by=("sex", ("sex", "race")),
                              fairness=False).table
    z = stats.norm.ppf(0.975)
    for metric in ("sensitivity", "auroc"):
        r = an[(an["group"] == "overall") & (an["metric"] == metric)].iloc[0]
        sd = np.std(out[metric]["overall"][:, 0])
        assert 0.8 < sd / ((r.ci_high - r.ci_low) / (2 * z)) < 1.2


def test_poisson1_table_sampler_is_poisson_one():
    rng = np.random.default_rng(0)
    w = poisson1_weights(rng, (400, 5000))
    assert w.dtype == np.uint8 and w.shape == (400, 5000)
    k = np.bincount(w.ravel())
    expect = stats.poisson.pmf(np.arange(len(k)), 1.0) * w.size
    ok = expect > 5
    chi2 = stats.chisquare(k[ok], expect[ok] * k[ok].sum() / expect[ok].sum())
    assert chi2.pvalue > 1e-3
    assert abs(w.mean() - 1) < 4 / np.sqrt(w.size) and abs(w.var() - 1) < 0.01
    assert_array_equal(poisson1_weights(np.random.default_rng(7), 1000),
                       poisson1_weights(np.random.default_rng(7), 1000))


@pytest.mark.parametrize("method", ["holm", "fdr_bh", "bonferroni"])
def test_multiplicity_adjustment_equals_statsmodels(method):
    from statsmodels.stats.multitest import multipletests

    p = np.array([0.01, 0.04, np.nan, 0.04, 0.2, 0.0001, 0.9, 0.03, 0.03, 0.5])
    got = perf._adjust(p, method)
    ok = np.isfinite(p)
    assert np.isnan(got[~ok]).all()
    assert_array_equal(got[ok], multipletests(p[ok], method=method)[1])


def test_calibration_heterogeneity_equals_statsmodels_glm_lr(flchain_ev, flchain_frame):
    import statsmodels.api as sm

    rep = subgroup_performance(flchain_ev, metrics=("calibration_slope",),
                               by=("sex", "age_band"), fairness=False)
    df = flchain_frame
    p = np.clip(df["score"].to_numpy(), 1e-12, 1 - 1e-12)
    lp = np.log(p / (1 - p))
    for group in ("sex", "age_band"):
        d = pd.get_dummies(df[group], drop_first=True).to_numpy(float)
        x0 = sm.add_constant(np.column_stack([lp, d]))
        x1 = np.column_stack([x0, d * lp[:, None]])
        f0 = sm.GLM(df["y"].to_numpy(float), x0, family=sm.families.Binomial()).fit()
        f1 = sm.GLM(df["y"].to_numpy(float), x1, family=sm.families.Binomial()).fit()
        stat = 2 * (f1.llf - f0.llf)
        h = rep.heterogeneity.query("group == @group").iloc[0]
        assert h["test"] == "lr_interaction" and h["df"] == d.shape[1]
        assert_allclose(h["statistic"], stat, rtol=1e-7, atol=1e-8)
        assert_allclose(h["pvalue"], stats.chi2.sf(stat, d.shape[1]), rtol=1e-6)


def test_binned_slope_gives_nan_without_both_outcomes():
    from rwe.stats import fit_logistic

    x = np.tile(np.linspace(-3, 1, 8), 3)
    neg = np.zeros(24)
    pos = np.zeros(24)
    neg[:8] = 5  # controls only
    pos[8:16] = 5  # cases only
    neg[16:], pos[16:] = 5, np.arange(8)  # both: finite slope
    b = fit_logistic(x, pos, pos + neg, [0, 8, 16]).b
    assert np.isnan(b[0]) and np.isnan(b[1]) and np.isfinite(b[2])
