"""Subgroup table: exact estimates cross-checked against sklearn, fairlearn and pROC."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from _subgroups_helpers import make_ev, synthetic_frame
from numpy.testing import assert_allclose
from sklearn.metrics import precision_score, recall_score, roc_auc_score

from rwe.exceptions import InvalidParameterError
from rwe.subgroups import (
    SubgroupPerformanceResult,
    subgroup_performance,
    subgroup_performance_from_protocol,
)
from rwe.subgroups._performance import TABLE_COLUMNS


def _cell(table, group, level, metric):
    r = table[(table["group"] == group) & (table["level"] == level)
              & (table["metric"] == metric)]
    assert len(r) == 1
    return r.iloc[0]


def test_flchain_per_group_auroc_equals_sklearn(flchain_ev, flchain_frame):
    rep = subgroup_performance(flchain_ev, metrics=("auroc",),
                               by=("sex", "age_band", ("sex", "age_band")), fairness=False)
    df = flchain_frame
    labels = {"overall": pd.Series("all", index=df.index), "sex": df["sex"],
              "age_band": df["age_band"], "sex x age_band": df["sex"] + " & " + df["age_band"]}
    checked = 0
    for r in rep.table.itertuples(index=False):
        m = (labels[r.group] == r.level).to_numpy()
        assert r.n == m.sum() and r.events == df["y"].to_numpy()[m].sum()
        if 0 < r.events < r.n:
            assert_allclose(r.estimate, roc_auc_score(df["y"][m], df["score"][m]), rtol=1e-12)
            checked += 1
    assert checked >= 10


def test_flchain_recall_precision_equal_fairlearn(flchain_ev, flchain_frame):
    from fairlearn.metrics import MetricFrame

    df = flchain_frame
    rep = subgroup_performance(flchain_ev, metrics=("sensitivity", "ppv", "specificity"),
                               by=(("sex", "age_band"),), threshold=0.3, fairness=False)
    mf = MetricFrame(metrics={"recall": recall_score, "precision": precision_score},
                     y_true=df["y"], y_pred=df["score"] >= 0.3,
                     sensitive_features=df[["sex", "age_band"]])
    for (sex, band), row in mf.by_group.iterrows():
        lev = f"{sex} & {band}"
        assert_allclose(_cell(rep.table, "sex x age_band", lev, "sensitivity").estimate,
                        row["recall"], rtol=1e-12)
        assert_allclose(_cell(rep.table, "sex x age_band", lev, "ppv").estimate,
                        row["precision"], rtol=1e-12)
    assert_allclose(_cell(rep.table, "overall", "all", "sensitivity").estimate,
                    mf.overall["recall"], rtol=1e-12)


def test_delong_interval_matches_proc_oracle(asah):
    # METHODS.md O2: pROC DeLong CIs on aSAH; a monotone rescaling into [0, 1] keeps them
    df = pd.DataFrame({"y": (asah["outcome"] == "Poor").astype(int),
                       "sex": asah["gender"], "race": "all"})
    expected = {"wfns": (0.823678861788618, 0.748534887819, 0.898822835758, 5.0),
                "s100b": (0.731368563685637, 0.630118211762, 0.832618915610, 3.0),
                "ndka": (0.611957994579946, 0.501244999271703, 0.722670989888189, 500.0)}
    for col, (auc, lo, hi, scale) in expected.items():
        ev = make_ev(df.assign(score=asah[col].astype(float) / scale), attributes=("sex",))
        r = _cell(subgroup_performance(ev, metrics=("auroc",), by=("sex",), min_n=1,
                                       fairness=False, auroc_interval="delong").table,
                  "overall", "all", "auroc")
        assert_allclose([r.estimate, r.ci_low, r.ci_high], [auc, lo, hi], rtol=1e-9)
        assert r.ci_method == "delong"


def test_wilson_matches_fda_oracle():
    # METHODS.md O1: TP=44, FN=7, FP=1, TN=168 -> sensitivity 44/51, specificity 168/169
    y = np.r_[np.ones(51), np.zeros(169)].astype(int)
    score = np.r_[np.full(44, .9), np.full(7, .1), np.full(1, .9), np.full(168, .1)]
    ev = make_ev(pd.DataFrame({"y": y, "score": score, "sex": "F", "race": "x"}),
                 attributes=("sex",))
    t = subgroup_performance(ev, metrics=("sensitivity", "specificity"), by=("sex",),
                             fairness=False).table
    se = _cell(t, "overall", "all", "sensitivity")
    sp = _cell(t, "overall", "all", "specificity")
    assert_allclose([se.ci_low, se.ci_high], [0.742783, 0.931889], atol=1e-6)
    assert_allclose([sp.ci_low, sp.ci_high], [0.967249, 0.998955], atol=1e-6)
    t_cp = subgroup_performance(ev, metrics=("sensitivity",), by=("sex",), fairness=False,
                                proportion_interval="clopper-pearson").table
    se = _cell(t_cp, "overall", "all", "sensitivity")
    assert_allclose([se.ci_low, se.ci_high], [0.737448, 0.942988], atol=1e-6)


def test_insufficient_and_degenerate_cells():
    df = synthetic_frame(3000, seed=2)
    df.loc[:39, "race"] = "Tiny"          # 40 rows, no positives
    df.loc[:39, "y"] = 0
    df.loc[40:49, "race"] = "Small"       # 10 rows, n < min_n
    df.loc[40:49, "y"] = 1
    df.loc[40:49, "score"] = 0.1          # no predicted positives
    ev = make_ev(df)
    t = subgroup_performance(ev, by=("race",), fairness=False).table
    assert list(t.columns) == TABLE_COLUMNS
    tiny = _cell(t, "race", "Tiny", "sensitivity")
    assert np.isnan(tiny.estimate) and tiny.status == "degenerate"
    assert tiny.reason == "no positive cases; fewer than min_events = 5 events"
    spec_tiny = _cell(t, "race", "Tiny", "specificity")
    assert np.isfinite(spec_tiny.estimate) and spec_tiny.status == "ok"
    assert spec_tiny.reason is None  # specificity needs no events
    auc = _cell(t, "race", "Tiny", "auroc")
    assert np.isnan(auc.estimate) and auc.status == "degenerate"
    assert auc.reason.startswith("one class only (no positive cases)")
    small = _cell(t, "race", "Small", "ppv")
    assert np.isnan(small.estimate) and small.status == "degenerate"
    assert small.reason == "no predicted positives; fewer than min_n = 30 rows"
    sens_small = _cell(t, "race", "Small", "sensitivity")
    assert sens_small.estimate == 0.0 and sens_small.status == "insufficient"
    assert sens_small.reason == "fewer than min_n = 30 rows"
    assert set(t["status"]) <= {"ok", "insufficient", "degenerate"}
    # every NaN estimate carries a reason
    nan = t[~np.isfinite(t["estimate"].to_numpy(float))]
    assert nan["reason"].notna().all() and len(nan) >= 4


def test_missing_attribute_rows_in_overall_only():
    df = synthetic_frame(2000, seed=4)
    df.loc[:99, "sex"] = None
    ev = make_ev(df)
    t = subgroup_performance(ev, metrics=("sensitivity",), fairness=False).table
    assert _cell(t, "overall", "all", "sensitivity").n == 2000
    assert t[t["group"] == "sex"]["n"].sum() == 1900
    assert set(t[t["group"] == "sex x race"]["level"]) == {
        f"{s} & {r}" for s in ("F", "M") for r in ("Asian", "Black", "Other", "White")}
    labels = ev.subgroup_labels(("sex", "race")).value_counts()
    for r in t[t["group"] == "sex x race"].itertuples():
        assert r.n == labels[r.level]


def test_determinism_and_bootstrap_intervals():
    ev = make_ev(synthetic_frame(3000, seed=5))
    kw = dict(ci_method="bootstrap", n_boot=300, random_state=7)
    a = subgroup_performance(ev, **kw)
    b = subgroup_performance(ev, **kw)
    assert json.dumps(a.to_dict(), sort_keys=True) == json.dumps(b.to_dict(), sort_keys=True)
    c = subgroup_performance(ev, ci_method="bootstrap", n_boot=300, random_state=8)
    assert not a.table["ci_low"].equals(c.table["ci_low"])
    t = a.table
    ok = t["ci_method"] == "bootstrap-percentile"
    assert ok.all()
    est = t["estimate"].to_numpy(float)
    assert np.all((t["ci_low"] <= est + 1e-9) & (est - 1e-9 <= t["ci_high"]))
    # bootstrap and analytic intervals agree in width for large cells (within 25%)
    an = subgroup_performance(ev, metrics=("sensitivity", "auroc"), fairness=False).table
    for metric in ("sensitivity", "auroc"):
        w_boot = _cell(t, "overall", "all", metric)
        w_an = _cell(an, "overall", "all", metric)
        ratio = (w_boot.ci_high - w_boot.ci_low) / (w_an.ci_high - w_an.ci_low)
        assert 0.75 < ratio < 1.25
    assert a.settings["auroc_binned_error_bound_max"] < 1e-3


def test_cluster_bootstrap_auto():
    df = synthetic_frame(2000, seed=6)
    df["pid"] = np.arange(2000) // 2  # two rows per patient
    ev = make_ev(df, patient_id="pid")
    rep = subgroup_performance(ev, metrics=("sensitivity",), ci_method="bootstrap",
                               n_boot=200, random_state=1)
    assert rep.settings["cluster_bootstrap"] is True
    assert (rep.table["ci_method"] == "cluster-bootstrap-percentile").all()
    off = subgroup_performance(ev, metrics=("sensitivity",), ci_method="bootstrap",
                               n_boot=200, random_state=1, cluster_bootstrap=False)
    assert off.settings["cluster_bootstrap"] is False


def test_result_interface_and_plots():
    ev = make_ev(synthetic_frame(1500, seed=7))
    rep = subgroup_performance(ev, n_boot=100, random_state=0)
    assert isinstance(rep, SubgroupPerformanceResult)
    assert rep.to_frame() is rep.table
    json.dumps(rep.to_dict())
    assert "Heterogeneity" in rep.summary() and "<table" in rep._repr_html_()
    ax = rep.plot_forest("auroc")
    assert len(ax.get_yticks()) == len(rep.table.query("metric == 'auroc'"))
    assert rep.plot_calibration("sex").get_legend() is not None
    assert len(rep.plot_roc(("sex", "race")).get_lines()) == 1 + 8
    with pytest.raises(InvalidParameterError, match="metric='brier_x'"):
        rep.plot_forest("brier_x")
    import matplotlib.pyplot as plt

    plt.close("all")


def test_forest_of_several_metrics_shares_its_rows():
    """Several metrics side by side: one row per (group, level), the same row in every panel,
    each estimate drawn at its own row."""
    import matplotlib.pyplot as plt

    ev = make_ev(synthetic_frame(1500, seed=7))
    rep = subgroup_performance(ev, n_boot=100, random_state=0)
    axes = rep.plot_forest(["sensitivity", "auroc"])
    assert len(axes) == 2 and axes[0].figure is axes[1].figure
    labels = [t.get_text() for t in axes[0].get_yticklabels()]
    for ax, metric in zip(axes, ["sensitivity", "auroc"], strict=True):
        t = rep.table[rep.table["metric"] == metric]
        assert len(labels) == len(t)
        squares = {round(float(yy)): float(xx)
                   for line in ax.get_lines() if line.get_marker() == "s"
                   for xx, yy in zip(line.get_xdata(), line.get_ydata(), strict=True)}
        # every interval drawn at its row, from ci_low to ci_high
        spans = {round(float(seg[0, 1])): (float(seg[0, 0]), float(seg[1, 0]))
                 for coll in ax.collections for seg in coll.get_segments()}
        n_rows = len(labels)
        for i, (g, lev, est) in enumerate(zip(t["group"], t["level"], t["estimate"],
                                              strict=True)):
            row = n_rows - 1 - i
            want = "overall (n=" if g == "overall" else f"{g}: {lev} (n="
            assert labels[::-1][row].startswith(want)
            if np.isfinite(est):
                assert squares[row] == pytest.approx(est)
            lo, hi = t["ci_low"].iloc[i], t["ci_high"].iloc[i]
            if np.isfinite(lo) and np.isfinite(hi):
                assert spans[row] == pytest.approx((lo, hi))
    with pytest.raises(InvalidParameterError, match="2 Axes for 3 metrics"):
        rep.plot_forest(["sensitivity", "auroc", "specificity"], ax=axes)
    plt.close("all")


def test_parameter_validation():
    ev = make_ev(synthetic_frame(200))
    with pytest.raises(InvalidParameterError, match="confidence_level"):
        subgroup_performance(ev, confidence_level=95)
    with pytest.raises(InvalidParameterError, match="ci_method='jackknife'"):
        subgroup_performance(ev, ci_method="jackknife")
    with pytest.raises(InvalidParameterError, match="multiplicity"):
        subgroup_performance(ev, multiplicity="sidak2")
    with pytest.raises(InvalidParameterError, match="no_such_metric"):
        subgroup_performance(ev, metrics=("no_such_metric",))
    with pytest.raises(InvalidParameterError, match="attribute 'age'"):
        subgroup_performance(ev, by=("age",))


def test_from_protocol_reads_the_plan():
    from types import SimpleNamespace

    ev = make_ev(synthetic_frame(2000, seed=9))
    perf = SimpleNamespace(version=None, metrics=["sensitivity", "auroc"], threshold=0.4,
                           confidence_level=0.9, proportion_interval="wilson",
                           ci_method="analytic", n_boot=100, seed=3, multiplicity="holm",
                           goals=[SimpleNamespace(metric="sensitivity", goal=0.5,
                                                  scope="overall")])
    sub = SimpleNamespace(attributes=["sex"], intersections=[["sex", "race"]], min_n=50,
                          min_events=5)
    rep = subgroup_performance_from_protocol(SimpleNamespace(performance=perf, subgroups=sub),
                                             ev)
    assert rep.settings["threshold"] == 0.4 and rep.settings["confidence_level"] == 0.9
    assert rep.settings["groupings"] == ["overall", "sex", "sex x race"]
    assert rep.settings["min_n"] == 50
    assert list(rep.goals["group"]) == ["overall"]
    direct = subgroup_performance(ev, metrics=("sensitivity", "auroc"),
                                  by=("sex", ("sex", "race")), threshold=0.4,
                                  confidence_level=0.9, min_n=50, n_boot=100, random_state=3)
    pd.testing.assert_frame_equal(rep.table, direct.table)


def test_bca_bootstrap_intervals_and_cluster_fallback():
    from rwe.exceptions import RWEWarning

    df = synthetic_frame(3000, seed=12)
    ev = make_ev(df)
    bca = subgroup_performance(ev, metrics=("sensitivity", "auroc"), by=("sex",),
                               ci_method="bootstrap", bootstrap_interval="bca", n_boot=500,
                               random_state=0, fairness=False).table
    pct = subgroup_performance(ev, metrics=("sensitivity", "auroc"), by=("sex",),
                               ci_method="bootstrap", n_boot=500, random_state=0,
                               fairness=False).table
    assert (bca["ci_method"] == "bootstrap-bca").all()
    # same replicates, different quantiles: close but not identical
    assert_allclose(bca["ci_low"], pct["ci_low"], atol=0.02)
    assert not np.allclose(bca["ci_low"], pct["ci_low"], rtol=0, atol=1e-12)
    df["pid"] = np.arange(3000) // 3
    with pytest.warns(RWEWarning, match="delete-one-patient"):
        t = subgroup_performance(make_ev(df, patient_id="pid"), metrics=("sensitivity",),
                                 by=("sex",), ci_method="bootstrap", bootstrap_interval="bca",
                                 n_boot=100, random_state=0, fairness=False).table
    assert (t["ci_method"] == "cluster-bootstrap-percentile").all()


def test_from_protocol_with_schema_models():
    from types import SimpleNamespace

    schema = pytest.importorskip("rwe.protocol._schema")
    perf = schema.PerformanceSpec(metrics=["sensitivity", "specificity"], threshold=0.5,
                                  ci_method="bootstrap", n_boot=100, seed=1,
                                  goals=[{"metric": "specificity", "goal": 0.7,
                                          "scope": "all"}])
    sub = schema.SubgroupsSpec(attributes=["race"], intersections=[["sex", "race"]], min_n=40)
    ev = make_ev(synthetic_frame(1500, seed=11))
    rep = subgroup_performance_from_protocol(SimpleNamespace(performance=perf, subgroups=sub),
                                             ev)
    assert rep.settings["groupings"] == ["overall", "race", "sex x race"]
    assert rep.settings["ci_method"] == "bootstrap" and rep.settings["n_boot"] == 100
    assert (rep.table["ci_method"] == "bootstrap-percentile").all()
    assert set(rep.goals["metric"]) == {"specificity"} and len(rep.goals) == 1 + 4 + 8
