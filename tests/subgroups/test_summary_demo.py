"""The demo through mergeable summaries: site and row splits merge to the pooled numbers,
and a result holds no patient row or identifier (issue: summary-first core, "must hold")."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import rwe
from rwe.protocol import load_protocol
from rwe.stats.summaries import merge_summaries, summarize
from rwe.subgroups import subgroup_performance_from_protocol

THRESHOLD_METRICS = ("sensitivity", "specificity", "ppv", "npv")


@pytest.fixture(scope="module")
def demo():
    p = load_protocol("protocols/demo.yaml")
    return p, p.load_data()


@pytest.fixture(scope="module")
def pooled(demo):
    p, ev = demo
    # merged summaries carry no patient index: compare with row-level intervals
    return subgroup_performance_from_protocol(p, ev, fairness=False, cluster_intervals=False)


def _key(t):
    return t.set_index(["metric", "group", "level"]).sort_index()


def test_site_summaries_at_a_declared_resolution_merge_to_the_pooled_results(demo, pooled):
    p, ev = demo
    site = ev.frame[ev.roles.site].astype(str).to_numpy()
    spec = p.summary_spec(resolution=1024)
    parts = [summarize(ev.subset(site == s), spec) for s in np.unique(site)]
    for s_, part in zip(np.unique(site), parts, strict=True):
        assert part.resolution == "binned" and part.protocol_sha256 == p.sha256
        assert part.n_rows == int((site == s_).sum())
    merged = merge_summaries(parts)
    assert merged.n_rows == len(ev) and merged.n_events == int(ev.y_true.sum())
    res = subgroup_performance_from_protocol(p, merged, fairness=False)
    a, b = _key(pooled.table), _key(res.table)
    assert_array_equal(a.index, b.index)
    assert_array_equal(a["n"], b["n"])
    assert_array_equal(a["events"], b["events"])
    thr = a.index.get_level_values("metric").isin(THRESHOLD_METRICS)
    # threshold metrics: exact (the threshold is a bin edge)
    assert_allclose(b.loc[thr, "estimate"], a.loc[thr, "estimate"], rtol=1e-12, atol=1e-15)
    assert_allclose(b.loc[thr, "ci_low"], a.loc[thr, "ci_low"], rtol=1e-12, atol=1e-15)
    assert (b.loc[thr, "binning_bound"] == 0).all()
    # AUROC: within the bound every row reports
    auc = a.index.get_level_values("metric") == "auroc"
    fin = np.isfinite(a.loc[auc, "estimate"].to_numpy())
    diff = np.abs(b.loc[auc, "estimate"] - a.loc[auc, "estimate"]).to_numpy()[fin]
    bound = b.loc[auc, "binning_bound"].to_numpy()[fin]
    assert (diff <= bound + 1e-15).all() and bound.max() < 5e-3
    assert set(b.loc[auc, "ci_method"].dropna()) == {"delong-logit-t-binned"}
    # the verdicts follow from the same rules
    assert [v.status for v in res.verdicts] == [v.status for v in pooled.verdicts]
    assert [v.id for v in res.verdicts] == [v.id for v in pooled.verdicts]
    # ...and says it could not account for the repeated patients the sites reported
    assert res.settings["cluster_intervals"] is False
    assert any(f.code == "subgroups.not_cluster_adjusted" for f in res.findings)


def test_a_seven_way_row_split_at_full_resolution_merges_exactly(demo, pooled):
    p, ev = demo
    spec = p.summary_spec()
    idx = np.random.default_rng(7).integers(0, 7, len(ev))
    merged = merge_summaries([summarize(ev.subset(idx == k), spec) for k in range(7)])
    res = subgroup_performance_from_protocol(p, merged, fairness=False)
    a, b = _key(pooled.table), _key(res.table)
    assert_array_equal(a[["n", "events"]], b[["n", "events"]])
    for col in ("estimate", "ci_low", "ci_high"):
        assert_allclose(b[col], a[col], rtol=1e-10, atol=1e-13, err_msg=col)
    assert (b["binning_bound"].fillna(0) == 0).all()


def test_a_pickled_demo_result_holds_no_row_and_no_identifier(demo):
    p, ev = demo
    res = rwe.subgroup_performance_from_protocol(p, ev, n_boot=200)
    blob = pickle.dumps(res)
    data_bytes = sum(int(c.memory_usage(deep=True)) for _, c in ev.frame.items())
    assert len(blob) < data_bytes / 20, (len(blob), data_bytes)
    for col in (ev.roles.id, ev.roles.patient_id):
        for value in ev.frame[col].astype(str).to_numpy()[[0, 1, 777, -1]]:
            assert value.encode() not in blob, value
    assert res.settings["cluster_intervals"] is True  # the patients were used, not kept
    back = type(res).from_dict(res.to_dict())
    assert_array_equal(back.table["estimate"], res.table["estimate"])
    assert [v.to_dict() for v in back.verdicts] == [v.to_dict() for v in res.verdicts]
