"""The demo split by site through ``rwe summarize`` / ``rwe merge`` (issue 20, items 2 and 4):
the pooled results of the merge's dossier (tests/federation/conftest.py) against the pooled-data
run.

Without disclosure control (``federation.min_count: 1``) the pooled results equal the
pooled-data run at the declared resolution: counts exact, threshold metrics exact (the
threshold is a bin edge), the AUROC within the bound computed from the bins; subgroups,
representativeness and drift. With the protocol's minimum count (11) every released count is
0 or >= 11, no identifier leaves a site, the overall numbers stay exact and the levels lose only
the values the sites withheld.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from fed_helpers import SITES
from numpy.testing import assert_allclose, assert_array_equal

from rwe.federation import load_site_summary
from rwe.stats.summaries import summarize

THRESHOLD_METRICS = ("sensitivity", "specificity", "ppv", "npv")


def _key(t):
    return t.set_index(["metric", "group", "level"]).sort_index()


def test_pooled_subgroups_equal_the_pooled_data_run(fed, rows):
    _, _, res, _ = fed["exact"]
    a, b = _key(rows["subgroups"].table), _key(res.sections["subgroups"].table)
    assert_array_equal(a.index, b.index)
    assert_array_equal(a["n"], b["n"])
    assert_array_equal(a["events"], b["events"])
    thr = a.index.get_level_values("metric").isin(THRESHOLD_METRICS)
    assert_allclose(b.loc[thr, "estimate"], a.loc[thr, "estimate"], rtol=1e-12, atol=1e-15)
    assert_allclose(b.loc[thr, "ci_low"], a.loc[thr, "ci_low"], rtol=1e-12, atol=1e-15)
    auc = a.index.get_level_values("metric") == "auroc"
    fin = np.isfinite(a.loc[auc, "estimate"].to_numpy())
    diff = np.abs(b.loc[auc, "estimate"] - a.loc[auc, "estimate"]).to_numpy()[fin]
    bound = b.loc[auc, "binning_bound"].to_numpy()[fin]
    assert (diff <= bound + 1e-15).all() and 0 < bound.max() < 0.05
    # at the stated resolution, the merged sites are the pooled data: every number
    c = _key(rows["subgroups_declared"].table)
    for col in ("estimate", "ci_low", "ci_high", "binning_bound"):
        assert_allclose(b[col], c[col], rtol=1e-9, atol=1e-12, err_msg=col)
    assert [v.status for v in res.sections["subgroups"].verdicts] == \
        [v.status for v in rows["subgroups_declared"].verdicts]
    # the pooled AUROC and its DeLong interval come from the merged histograms
    o = b.loc[("auroc", "overall", "all")]
    assert o["ci_method"] == "delong-logit-t-binned" and o["binning_bound"] < 5e-3
    m = res.meta.set_index("metric").loc["auroc"]
    assert (m["pooled_estimate"], m["pooled_ci_low"], m["pooled_ci_high"]) == \
        (o["estimate"], o["ci_low"], o["ci_high"])


def test_pooled_representativeness_equals_the_pooled_data_run(fed, rows):
    _, _, res, _ = fed["exact"]
    a, b = rows["representativeness"], res.sections["representativeness"]
    assert a.n == b.n == 100_000
    for name in ("shares", "tests", "coverage", "adequacy", "sites", "missingness"):
        pd.testing.assert_frame_equal(getattr(b, name), getattr(a, name), check_dtype=False,
                                      obj=name)
    num = ["mean_a", "mean_b", "sd_a", "sd_b", "smd"]
    assert_allclose(b.smd[num].to_numpy(float), a.smd[num].to_numpy(float), rtol=1e-10)
    keep = [v for v in a.verdicts if "generaliz" not in v.criterion.lower()]
    got = {v.id: v.status for v in b.verdicts}
    assert all(got[v.id] == v.status for v in keep)
    assert b.tipton is None and a.tipton is not None  # Tipton's B needs rows


def test_pooled_drift_equals_the_pooled_data_run(fed, rows):
    _, _, res, _ = fed["exact"]
    a, b = rows["drift"], res.sections["drift"]
    key = ["role", "feature", "test", "window", "group", "level"]
    da = a.drift[a.drift["role"] == "input"].sort_values(key).reset_index(drop=True)
    db = b.drift[b.drift["role"] == "input"].sort_values(key).reset_index(drop=True)
    assert (da[key].to_numpy() == db[key].to_numpy()).all()
    assert_array_equal(da["n"], db["n"])
    assert_allclose(db["effect"].to_numpy(float), da["effect"].to_numpy(float), rtol=1e-9,
                    atol=1e-12)
    pk = ["metric", "window", "group", "level"]
    pa = a.performance.set_index(pk).sort_index()
    pb = b.performance.set_index(pk).sort_index()
    assert_array_equal(pa.index, pb.index)
    assert_array_equal(pa["n"], pb["n"])
    thr = pa.index.get_level_values("metric").isin(("sensitivity", "specificity"))
    assert_allclose(pb.loc[thr, "estimate"].to_numpy(float),
                    pa.loc[thr, "estimate"].to_numpy(float), rtol=1e-12, equal_nan=True)
    # the demo's story holds from the sites' summaries: calibration alarms at S3 and Canon
    for r in (a, b):
        al = r.alarms[r.alarms["metric"] == "calibration_intercept"]
        assert set(al["level"]) == {"S3", "Canon"} and al["window"].min() == "2025-03"


def test_pooled_prediction_drift_equals_the_rows_on_the_declared_edges(fed, rows):
    """Prediction drift from the sites' score bins: the histogram edges are the reference's
    quantile edges moved to the declared bins' edges, so every PSI equals the PSI of the
    pooled rows on the same edges (it was 3.2 against the rows' 0.04 when the bins' rows
    were piled at their means into the reference's finer bins)."""
    from rwe.drift._drift import _declared_score_edges
    from rwe.drift._registry import DriftContext, FeatureHist, psi_kernel, reference_edges
    from rwe.stats.summaries import feature_bin_column

    p, files, res, _ = fed["exact"]
    ev = rows["ev"]
    declared = load_site_summary(files[0]).views["drift"]
    grid = declared.scores[p.version].edges
    ref_scores = p.load_reference_rows()[p.roles().scores[p.version]].to_numpy(float)
    edges = _declared_score_edges(reference_edges(ref_scores, p.drift.feature_bins),
                                  [declared], p.version)
    assert np.isin(edges, grid).all() and np.all(np.diff(edges) > 0)

    def hist(x):
        col = feature_bin_column(x, edges)
        counts = np.bincount(col, minlength=len(edges) + 1)[None, :].astype(float)
        return FeatureHist("numeric", counts, edges, np.zeros_like(counts))

    ctx = DriftContext(psi_bins=p.drift.psi_bins)
    rh = hist(ref_scores)
    win = ev.window(p.drift.window).astype(str).to_numpy()
    score = ev.score(p.version)
    got = res.sections["drift"].drift
    got = got[(got["role"] == "prediction") & (got["test"] == "psi")
              & (got["group"] == "overall")].set_index("window")
    assert len(got) >= 20
    for w, row in got.iterrows():
        want = psi_kernel(rh, hist(score[win == w]), ctx).effect[0]
        assert_allclose(row["effect"], want, rtol=1e-12, err_msg=w)
    assert got["effect"].max() < 0.25  # the rows' story: no major score shift overall


def test_site_results_and_heterogeneity_from_the_site_estimates(fed, rows):
    from rwe.stats import delong_segments, random_effects_meta

    p, _, res, _ = fed["exact"]
    ev = rows["ev"]
    site = ev.frame["site"].astype(str).to_numpy()
    est = res.site_estimates.set_index(["site", "metric"])
    y, s = ev.y_true, ev.score(p.version)
    for name in SITES:
        m = site == name
        tp = int((y[m] & (s[m] >= 0.15)).sum())
        assert est.loc[(name, "sensitivity"), "estimate"] == tp / y[m].sum()
        sub = res.per_site[name]["subgroups"].table
        assert sub[sub["group"] == "overall"]["n"].iloc[0] == m.sum()
        seg = summarize(ev.subset(m), attributes=[], resolution=p.declared_resolution(),
                        thresholds=[0.15]).segments(
            summarize(ev.subset(m), attributes=[], resolution=p.declared_resolution(),
                      thresholds=[0.15]).grouping(()), p.version)
        auc, var, _ = delong_segments(seg.neg_count, seg.pos_count, seg.starts)
        assert_allclose(est.loc[(name, "auroc"), ["scale_estimate", "scale_variance"]]
                        .to_numpy(float), [auc[0], var[0]], rtol=1e-12)
    auc = est.xs("auroc", level="metric")
    want = random_effects_meta(auc["scale_estimate"], auc["scale_variance"])
    got = res.meta.set_index("metric").loc["auroc"]
    assert_allclose([got["re_estimate"], got["tau2"], got["q"], got["i2"]],
                    [want.estimate, want.tau2, want.q, want.i2], rtol=1e-12)
    assert got["k"] == 4 and got["df"] == 3
    # the demo's sites differ in specificity (calibration shift at S3): reported
    assert any(f.code == "federation.heterogeneity" and f.subject["metric"] == "specificity"
               for f in res.findings)


def test_with_the_minimum_count_nothing_small_and_no_identifier_leaves_a_site(fed, rows):
    p, files, res, _ = fed["guarded"]
    ev = rows["ev"]
    k = p.min_count
    assert k == 11
    ids = list(ev.frame["scan_id"].iloc[[0, 1, 500, 99_999]]) + list(
        ev.frame["patient_id"].iloc[[0, 4321]])
    stamps = [str(t) for t in ev.frame["scan_date"].iloc[[0, 77, 99_999]]]
    for f in files:
        raw = f.read_bytes()
        for ident in ids + stamps:
            assert ident.encode() not in raw, ident
        s = load_site_summary(f)
        assert s.disclosure["cohort"]["min_count"] == 11
        for view in s.views.values():
            ev_ = view.events.astype(float)
            for c in (view.n, ev_, view.n - ev_):
                assert not ((c > 0) & (c < k)).any()
            for feat in view.features.values():
                if feat.kind == "categorical":
                    assert not ((feat.counts > 0) & (feat.counts < k)).any()
    a = _key(rows["subgroups"].table)
    b = _key(res.sections["subgroups"].table)
    overall = b.index.get_level_values("group") == "overall"
    assert_array_equal(b.loc[overall, "n"], a.loc[b.index[overall], "n"])
    assert_array_equal(b.loc[overall, "events"], a.loc[b.index[overall], "events"])
    common = b.index.intersection(a.index)
    assert (b.loc[common, "n"] <= a.loc[common, "n"]).all()
    site = b.index.get_level_values("group") == "site"  # never recoded: exact
    assert_array_equal(b.loc[site, "n"], a.loc[b.index[site], "n"])
    assert any(f.code == "federation.disclosure" for f in res.findings)
