"""The demo story (issue 17, part 7) and the shape of a DriftResult: calibration alarms at S3
and for Canon from 2025-03 (month 15) and nowhere else; input drift against the East Asian
training snapshot reported; tables, round trip, plots, summaries = rows."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pytest
from numpy.testing import assert_allclose

import rwe
from rwe.datasets import ensure_demo
from rwe.drift import DriftResult, assess_drift, drift_from_protocol
from rwe.drift._drift import drift_kwargs
from rwe.protocol import load_protocol
from rwe.stats.summaries import merge_summaries

matplotlib.use("Agg")

CHANGE = "2025-03"  # the scanner change at S3: month 15 of the deployment


@pytest.fixture(scope="module")
def demo():
    ensure_demo()
    p = load_protocol("protocols/demo.yaml")
    return p, p.load_data()


@pytest.fixture(scope="module")
def result(demo):
    p, ev = demo
    return drift_from_protocol(p, ev)


def _rule(result, metric, by):
    return next(r for r in result.settings["rules"] if r["metric"] == metric and
                r["by"] == [by] and r["method"] == "cusum")


def test_calibration_alarms_at_s3_and_canon_from_month_15_only(result):
    a = result.alarms
    site = _rule(result, "calibration_intercept", "site")["id"]
    vendor = _rule(result, "calibration_intercept", "scanner_vendor")["id"]
    sa = a[a["rule"] == site]
    va = a[a["rule"] == vendor]
    assert set(sa["level"]) == {"S3"} and set(va["level"]) == {"Canon"}
    assert sa["window"].min() == CHANGE and va["window"].min() == CHANGE
    assert (sa["side"] == "lower").all()  # over-prediction: calibration-in-the-large < 0
    # the first S3 alarm comes after 15 in-control windows: the run length to alarm
    assert sa["run_length"].iloc[0] == 15 and sa["run_length_unit"].iloc[0] == "windows"
    # no alarm before the change anywhere, and the discrimination chart stays quiet
    assert (a["window"] >= CHANGE).all()
    v = {x.criterion.split(":")[0]: x.status for x in result.verdicts}
    assert v["cusum on calibration_intercept by site (two-sided)"] == "fail"
    assert v["ewma on auroc by site (two-sided)"] == "pass"
    # the chart's limit was chosen for the protocol's in-control ARL (370 windows)
    assert_allclose(_rule(result, "calibration_intercept", "site")["arl0_achieved"], 370,
                    rtol=1e-6)


def test_input_drift_against_the_training_snapshot_is_reported(result):
    d = result.drift
    ov = d[(d["group"] == "overall") & (d["role"] == "input")]
    age = ov[(ov["feature"] == "age") & (ov["test"] == "ks")]
    assert age["drifted"].all() and (age["effect"] > 0.25).all()  # 66 vs 58 years
    sm = ov[(ov["feature"] == "smoking_status") & (ov["test"] == "chi2")]
    assert sm["drifted"].all()
    sex = ov[(ov["feature"] == "sex") & (ov["test"] == "js")]
    assert not sex["drifted"].any()  # both populations are half female
    assert ov["pvalue_adjusted"].notna().any()
    clf = result.classifier.iloc[0]
    assert clf["drifted"] and clf["ci_low"] > 0.55
    assert "age" in clf["top_features"]
    codes = {f.code for f in result.findings}
    assert {"drift.input", "drift.classifier", "drift.alarm"} <= codes
    texts = [f.text(11) for f in result.findings if f.code == "drift.input"]
    assert any(t.startswith("age: ks drift") for t in texts)


def test_tables_are_explicit_about_empty_cells(result):
    d = result.drift
    canon = d[(d["group"] == "scanner_vendor") & (d["level"] == "Canon")]
    before = canon[canon["window"] < CHANGE]
    assert len(before) and (before["status"] == "no_data").all()
    assert (before["reason"] == "no data in this window").all()
    assert before["drifted"].eq(False).all()
    perf = result.performance
    assert {"reference", "baseline"} <= set(perf["window"])
    s3 = perf[(perf["group"] == "site") & (perf["level"] == "S3")
              & (perf["metric"] == "oe_ratio")]
    after = s3[s3["window"] >= CHANGE]["estimate"].mean()
    assert after < 0.75 < s3[s3["window"] < CHANGE]["estimate"].mean()
    rec = result.recalibration
    r3 = rec[(rec["group"] == "site") & (rec["level"] == "S3")]
    assert r3[r3["window"] >= CHANGE]["intercept"].mean() < -0.3


def test_round_trip_html_and_plots(result):
    d = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    back = DriftResult.from_dict(d)
    for name in ("drift", "performance", "charts", "alarms", "case_mix", "integrity"):
        a, b = getattr(result, name), getattr(back, name)
        assert a.shape == b.shape and list(a.columns) == list(b.columns)
    assert [v.id for v in back.verdicts] == [v.id for v in result.verdicts]
    assert back.settings["windows"] == result.settings["windows"]
    html = result._repr_html_()
    assert "Verdicts" in html and "Alarms" in html
    ax = back.plot_metric("calibration_intercept", group="site")
    assert len(ax.get_lines()) >= 4
    ax = back.plot_heatmap(test="ks")
    assert ax.get_title().startswith("ks by window")
    axes = back.plot_recalibration(group="site")
    assert len(axes) == 2 and len(axes[0].get_lines()) >= 8
    ax = back.plot_chart(_rule(result, "calibration_intercept", "site")["id"], level="S3")
    assert ax.get_title().startswith("cusum on calibration_intercept")
    import matplotlib.pyplot as plt

    plt.close("all")


def test_the_drift_page_renders_from_to_dict_alone(result):
    from rwe.drift import drift_page_html

    d = json.loads(json.dumps(result.to_dict()))
    page = drift_page_html(d)
    assert page.index("Verdicts") < page.index("Alarms (first per chart and level)")
    assert "S3" in page and "Canon" in page and "Classifier two-sample test" in page
    assert "in-control value 0 (the metric" in page and "estimated on the baseline period" in page
    small = drift_page_html(d, small_cell_k=10_000)
    assert "suppressed" in small
    # one row per window in the performance table, its metrics as columns
    perf = page[page.index("Performance and calibration over time"):]
    perf = perf[:perf.index("</table>")]
    assert perf.count("<tr>") == 1 + len(result.windows) + 2  # header, windows, reference, baseline
    assert "<th class='txt'>auroc</th>" in perf or "<th class='num'>auroc</th>" in perf
    bare = drift_page_html(d, heading=False, verdicts=False)  # a dossier section's body
    assert "<h2>" not in bare and "Pre-specified criterion" not in bare
    assert "Alarms (first per chart and level)" in bare


def test_site_summaries_merge_to_the_pooled_drift_tables(demo):
    """Sites ship summaries (no rows) on the reference's edges; the merged summary gives the
    same drift, performance and chart numbers as the pooled rows."""
    p, ev = demo
    from rwe.data import calendar_window
    from rwe.drift import summarize_reference
    from rwe.drift._drift import _summarize

    kw = drift_kwargs(p)
    feats = kw["features"]
    ref = summarize_reference(kw["reference"], roles=ev.roles, features=feats,
                              version=kw["version"], threshold=kw["threshold"])
    edges = {f: ref.features[f].edges for f in feats if ref.features[f].kind == "numeric"}
    kinds = {f: ref.features[f].kind for f in feats}
    parts = []
    for s in ["S1", "S2", "S3", "S4"]:
        sub = ev.subset((ev.frame["site"] == s).to_numpy())
        attrs = {"month": calendar_window(sub.timestamps, "month")}
        attrs.update({a: sub.frame[a] for a in ("site", "scanner_vendor", "sex")})
        parts.append(_summarize(sub.frame, label=ev.roles.label, score=ev.roles.scores["1.0"],
                                version="1.0", attributes=attrs, features=feats, kinds=kinds,
                                edges=edges, thresholds=(kw["threshold"],)))
    merged = merge_summaries(parts)
    kw2 = {**kw, "reference": ref, "tests": [t for t in kw["tests"] if t != "classifier"],
           "baseline": None, "alerts": [a for a in kw["alerts"]
                                        if a["metric"] == "calibration_intercept"]}
    from_rows = assess_drift(ev, **kw2)
    from_summaries = assess_drift(merged, **kw2)
    key = ["role", "feature", "test", "window", "group", "level"]
    a = from_rows.drift.sort_values(key).reset_index(drop=True)
    b = from_summaries.drift.sort_values(key).reset_index(drop=True)
    assert (a[key].to_numpy() == b[key].to_numpy()).all()
    assert_allclose(a["effect"].to_numpy(float), b["effect"].to_numpy(float), rtol=1e-9,
                    atol=1e-12)
    ca = from_rows.charts.sort_values(["rule", "level", "window"])
    cb = from_summaries.charts.sort_values(["rule", "level", "window"])
    assert_allclose(ca["upper"].to_numpy(float), cb["upper"].to_numpy(float), rtol=1e-9)
    assert (ca["alarm"].to_numpy() == cb["alarm"].to_numpy()).all()
    assert from_summaries.classifier.empty


def test_exact_mode_equals_scipy_per_window(demo):
    from scipy.stats import ks_2samp, wasserstein_distance

    p, ev = demo
    ref = p.load_reference_rows()
    res = assess_drift(ev, reference=ref, by=["site"], features=["nodule_size_mm"],
                       tests=["ks", "wasserstein"], exact=True, metrics=(), version="1.0")
    d = res.drift[(res.drift["role"] == "input") & (res.drift["group"] == "site")]
    row = d[(d["window"] == "2025-06") & (d["level"] == "S2") & (d["test"] == "ks")].iloc[0]
    w = ev.window("month").astype(str).to_numpy()
    m = (w == "2025-06") & (ev.frame["site"] == "S2").to_numpy()
    x = ev.frame["nodule_size_mm"].to_numpy()[m]
    r = ks_2samp(ref["nodule_size_mm"].to_numpy(), x)
    assert row["statistic"] == r.statistic and row["pvalue"] == r.pvalue
    assert row["resolution"] == "exact (rows)" and row["bound"] == 0
    row = d[(d["window"] == "2025-06") & (d["level"] == "S2") & (d["test"] == "wasserstein")]
    rv = ref["nodule_size_mm"].to_numpy()
    assert row["effect"].iloc[0] == wasserstein_distance(rv, x) / np.std(rv)


def test_top_level_entry_point_is_not_the_subpackage():
    import importlib

    f = rwe.assess_drift
    importlib.import_module("rwe.drift")  # importing the subpackage must not rebind it
    assert rwe.assess_drift is f and callable(f) and f is assess_drift
