"""Mergeable summaries (rwe.stats.summaries): exactness, merging, bounds, serialization."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.metrics import average_precision_score, roc_auc_score

from rwe.metrics import get_metric
from rwe.metrics._registry import KernelContext
from rwe.stats import bootstrap_interval, delong_segments
from rwe.stats.summaries import (
    Summary,
    SummaryError,
    bin_index,
    merge_summaries,
    poisson_bootstrap_counts,
    score_bin_edges,
    summarize,
    summarize_arrays,
)
from rwe.subgroups._bootstrap import binned_jackknife


def _data(n=5000, seed=0, k=3):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    s = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.2 * y - 0.5)))
    cells = rng.integers(0, k, n).astype(str)
    return y, s, cells


def _metric(summ, name, attrs=("g",), threshold=0.5, level=0.95):
    g = summ.grouping(attrs)
    seg = summ.segments(g, threshold=threshold)
    return get_metric(name).kernel(seg, KernelContext(confidence_level=level,
                                                      threshold=threshold)), g


@pytest.mark.parametrize("threshold", [0.5, 0.37, 0.123456789])
@pytest.mark.parametrize("resolution", ["full", 64])
def test_threshold_metrics_are_exact(threshold, resolution):
    y, s, cells = _data()
    s[:20] = threshold  # rows exactly on and next to the threshold
    s[20:40] = np.nextafter(threshold, 0)
    summ = summarize_arrays(y_true=y, scores={"v": s}, attributes={"g": cells},
                            resolution=resolution, thresholds=[threshold])
    seg = summ.segments(summ.grouping("g"), threshold=threshold)
    pred = s >= threshold
    for j, lev in enumerate(seg.labels):
        m = cells == lev
        c = {k: v[j] for k, v in seg.confusion.items()}
        assert (c["tp"], c["fn"], c["fp"], c["tn"]) == (
            np.sum(m & y & pred), np.sum(m & y & ~pred), np.sum(m & ~y & pred),
            np.sum(m & ~y & ~pred))


def test_threshold_not_an_edge_of_declared_bins_is_refused():
    y, s, cells = _data(n=500)
    summ = summarize_arrays(y_true=y, scores={"v": s}, attributes={"g": cells}, resolution=64,
                            thresholds=[0.5])
    with pytest.raises(SummaryError, match="not an edge"):
        summ.segments(summ.grouping("g"), threshold=0.37)


def test_bins_monotone_and_threshold_is_edge():
    edges = score_bin_edges(10, [0.33])
    assert 0.33 in edges and len(edges) == 12
    s = np.sort(np.random.default_rng(1).random(1000))
    b = bin_index(s, edges)
    assert np.all(np.diff(b) >= 0)
    assert np.all((b >= np.flatnonzero(edges == 0.33)[0]) == (s >= 0.33))
    assert np.all((edges[b] <= s) & (s <= edges[b + 1]))


def test_full_resolution_is_exact_and_binned_auroc_within_stated_bound():
    y, s, cells = _data(n=20000)
    full = summarize_arrays(y_true=y, scores={"v": s}, attributes={"g": cells})
    lv, g = _metric(full, "auroc")
    ap, _ = _metric(full, "auprc")
    for j, lev in enumerate(g.levels):
        m = cells == lev
        assert_allclose(lv.estimate[j], roc_auc_score(y[m], s[m]), rtol=1e-13)
        assert_allclose(ap.estimate[j], average_precision_score(y[m], s[m]), rtol=1e-12)
    for n_bins in (16, 256, 2048):
        c = full.coarsen(n_bins, [0.5])
        seg = c.segments(c.grouping("g"))
        auc, _, bound = delong_segments(seg.neg, seg.pos, seg.starts)
        for j, lev in enumerate(seg.labels):
            m = cells == lev
            exact = roc_auc_score(y[m], s[m])
            assert abs(auc[j] - exact) <= bound[j] + 1e-15
        assert get_metric("auroc").kernel(seg, KernelContext()).method == "delong-logit-t-binned"


def test_moment_metrics_are_exact_at_a_declared_resolution():
    """Brier, O/E and Spiegelhalter's z are sums of polynomials in p: exact from bin sums."""
    y, s, cells = _data(n=3000, seed=4)
    full = summarize_arrays(y_true=y, scores={"v": s}, attributes={"g": cells})
    binned = summarize_arrays(y_true=y, scores={"v": s}, attributes={"g": cells},
                              resolution=32, thresholds=[0.5])
    for name in ("brier", "oe_ratio", "spiegelhalter_z"):
        a, _ = _metric(full, name)
        b, _ = _metric(binned, name)
        assert_allclose(b.estimate, a.estimate, rtol=1e-11)
    brier, g = _metric(full, "brier")
    for j, lev in enumerate(g.levels):
        m = cells == lev
        e = (s[m] - y[m]) ** 2
        assert_allclose(brier.estimate[j], e.mean(), rtol=1e-12)
        assert_allclose(brier.extras["se"][j], e.std(ddof=1) / np.sqrt(m.sum()), rtol=1e-9)


def _split_summaries(y, s, cells, x, parts, **kw):
    out = []
    for k, idx in enumerate(parts):
        out.append(summarize_arrays(y_true=y[idx], scores={"v": s[idx]},
                                    attributes={"g": cells[idx]}, features={"x": x[idx]},
                                    source=f"part{k}", **kw))
    return out


@pytest.mark.parametrize("resolution", ["full", 128])
def test_seven_way_split_merges_to_the_pooled_summary(resolution):
    y, s, cells = _data(n=7000, seed=2)
    s = np.round(s, 4)  # ties across parts
    x = np.random.default_rng(0).normal(50, 10, len(y))
    x[::97] = np.nan
    whole = summarize_arrays(y_true=y, scores={"v": s}, attributes={"g": cells},
                             features={"x": x}, resolution=resolution, thresholds=[0.5])
    perm = np.random.default_rng(1).permutation(len(y))
    parts = _split_summaries(y, s, cells, x, np.array_split(perm, 7), resolution=resolution,
                             thresholds=[0.5])
    merged = merge_summaries(parts)
    assert merged.n_rows == whole.n_rows and len(merged.sources) == 7
    for name in ("sensitivity", "specificity", "ppv", "auroc", "brier", "calibration_slope"):
        a, ga = _metric(whole, name)
        b, gb = _metric(merged, name)
        assert ga.levels == gb.levels
        assert_allclose(b.estimate, a.estimate, rtol=1e-12, err_msg=name)
        if name == "auroc":
            assert_allclose(b.extras["variance"], a.extras["variance"], rtol=1e-12)
    fw, fm = whole.features["x"].pooled(), merged.features["x"].pooled()
    assert fw[0] == fm[0] and fw[3] == fm[3]
    assert_allclose(fm[1:3], fw[1:3], rtol=1e-12)
    assert_allclose(fm[1:3], [np.nanmean(x), np.nanstd(x, ddof=1)], rtol=1e-12)


def test_merge_unites_categories_in_order_and_cells():
    a = summarize_arrays(y_true=[1, 0, 1], scores={"v": [0.9, 0.2, 0.6]},
                         attributes={"band": pd.Categorical(["<50", "50-64", "<50"],
                                                            categories=["<50", "50-64", "80+"])})
    b = summarize_arrays(y_true=[0, 1], scores={"v": [0.1, 0.7]},
                         attributes={"band": pd.Categorical(["65-79", "80+"],
                                                            categories=["65-79", "80+"])})
    m = a + b
    assert m.cells.categories[0] == ("<50", "50-64", "65-79", "80+")
    assert m.grouping("band").levels == ("<50", "50-64", "65-79", "80+")
    n, ev = m.level_counts(m.grouping("band"))
    assert n.tolist() == [2, 1, 1, 1] and ev.tolist() == [2, 0, 0, 1]


def test_merge_refuses_incompatible_summaries_and_merges_nothing_partially():
    y, s, cells = _data(n=400)
    base = summarize_arrays(y_true=y, scores={"v": s}, attributes={"g": cells}, resolution=64,
                            thresholds=[0.5], source="A")
    before = base.to_dict()
    cases = {
        "score bin edges": summarize_arrays(y_true=y, scores={"v": s}, attributes={"g": cells},
                                            resolution=32, thresholds=[0.5], source="B"),
        "attributes": summarize_arrays(y_true=y, scores={"v": s}, attributes={"h": cells},
                                       resolution=64, thresholds=[0.5], source="B"),
        "model versions": summarize_arrays(y_true=y, scores={"w": s}, attributes={"g": cells},
                                           resolution=64, thresholds=[0.5], source="B"),
        "resolutions": summarize_arrays(y_true=y, scores={"v": s}, attributes={"g": cells},
                                        source="B"),
        "given twice": summarize_arrays(y_true=y, scores={"v": s}, attributes={"g": cells},
                                        resolution=64, thresholds=[0.5], source="A"),
    }
    for what, other in cases.items():
        with pytest.raises(SummaryError, match=what):
            merge_summaries([base, other])
    other = summarize_arrays(y_true=y, scores={"v": s}, attributes={"g": cells}, resolution=64,
                             thresholds=[0.5], protocol_sha256="abc", source="B")
    with pytest.raises(SummaryError, match="protocol hashes"):
        base + other
    assert base.to_dict() == before


def test_round_trip_json_and_parquet_and_tamper_detection(tmp_path):
    y, s, cells = _data(n=3000)
    x = np.random.default_rng(3).normal(size=len(y))
    for res in ("full", 64):
        summ = summarize_arrays(y_true=y, scores={"v": s}, attributes={"g": cells},
                                features={"x": x, "c": np.where(x > 0, "hi", "lo")},
                                resolution=res, thresholds=[0.5], source="site-1")
        d = json.loads(json.dumps(summ.to_dict()))
        back = Summary.from_dict(d)
        assert back.to_dict() == summ.to_dict()
        for suffix in (".json", ".parquet"):
            p = summ.save(tmp_path / f"s{res}{suffix}")
            again = Summary.load(p)
            a, _ = _metric(summ, "auroc")
            b, _ = _metric(again, "auroc")
            assert_array_equal(a.estimate, b.estimate)
            assert again.to_dict()["checksum"] == summ.to_dict()["checksum"]
    d = summ.to_dict()
    d["n"][0] += 1
    with pytest.raises(SummaryError, match="checksum mismatch"):
        Summary.from_dict(d)
    p = tmp_path / "cut.json"
    p.write_text(json.dumps(summ.to_dict())[:-200])
    with pytest.raises(SummaryError, match="not a readable summary"):
        Summary.load(p)
    with pytest.raises(SummaryError, match="not an rwe summary"):
        Summary.from_dict({"schema": "something/else"})


def test_a_saved_summary_is_checked_on_its_text(tmp_path, monkeypatch):
    """``save`` writes the compact text the checksum hashes, the checksum appended, and
    ``load`` checks the checksum on that text, without writing the numbers again; a file
    edited in place, or written another way, is checked on its parsed content: an edit is
    refused either way, the same content in another layout loads, and so does a file whose
    checksum is the sorted-key hash of earlier versions."""
    import hashlib

    import rwe.stats.summaries as summaries
    from rwe._results import canonical_json

    def compact(o):
        return json.dumps(o, separators=(",", ":"), ensure_ascii=False)

    y, s, cells = _data(n=2000)
    summ = summarize_arrays(y_true=y, scores={"v": s, "w": 1 - s}, attributes={"g": cells},
                            features={"x": s * 2, "a": s}, resolution=32, source="site-1")
    p = summ.save(tmp_path / "s.json")
    text = p.read_text()
    want = summ.to_dict()
    assert text == compact(want) and list(want)[-1] == "checksum"
    assert summaries.checked_json(text) == (want, True)
    calls = []
    real = summaries._checksum
    monkeypatch.setattr(summaries, "_checksum", lambda b: calls.append(1) or real(b))
    back = Summary.load(p)
    assert calls == []  # checked on the text: nothing written again
    assert list(back.versions) == ["v", "w"] and list(back.features) == ["x", "a"]  # order kept
    assert back.to_dict() == want
    # another layout of the same content: checked on the parsed content
    calls.clear()
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps(want, indent=1))
    assert summaries.checked_json(pretty.read_text())[1] is False
    assert Summary.load(pretty).to_dict() == want and len(calls) == 2
    # a file of schema rwe.summary/1: the checksum of the sorted-key text; read as /2
    body = {**{k: v for k, v in want.items() if k != "checksum"}, "schema": "rwe.summary/1"}
    old = tmp_path / "old.json"
    old.write_text(json.dumps({**body, "checksum": hashlib.sha256(
        canonical_json(body).encode()).hexdigest()}, separators=(",", ":")))
    assert summaries.checked_json(old.read_text())[1] is False
    assert Summary.load(old).to_dict() == want
    # each schema has its own checksum: a /2 file stating the sorted-key checksum is refused
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**body, "schema": summaries.SUMMARY_SCHEMA, "checksum":
                               hashlib.sha256(canonical_json({**body, "schema": summaries.
                                   SUMMARY_SCHEMA}).encode()).hexdigest()}))
    with pytest.raises(SummaryError, match="summary checksum mismatch"):
        Summary.load(bad)
    # edits: a count in the text, a count and its checksum's first digit, a setting
    edited = json.loads(text)
    edited["n"][0] += 1
    for blob in (edited, {**edited, "checksum": "0" + want["checksum"][1:]}):
        bad.write_text(compact(blob))
        assert summaries.checked_json(bad.read_text())[1] is False
        with pytest.raises(SummaryError, match="summary checksum mismatch"):
            Summary.load(bad)
    bad.write_text(text.replace('"resolution":"binned"', '"resolution":"full"'))
    assert bad.read_text() != text
    with pytest.raises(SummaryError, match="summary checksum mismatch"):
        Summary.load(bad)


def test_summary_of_an_evaluation_set_keeps_no_identifier():
    from rwe.data import ColumnRoles, EvaluationSet

    rng = np.random.default_rng(5)
    n = 500
    df = pd.DataFrame({"scan": [f"SCAN-{i:06d}" for i in range(n)],
                       "pid": [f"PAT-{i // 2:06d}" for i in range(n)],
                       "y": rng.integers(0, 2, n), "p": rng.random(n),
                       "sex": rng.choice(["F", "M"], n), "age": rng.normal(60, 9, n)})
    ev = EvaluationSet.from_frame(df, ColumnRoles(id="scan", patient_id="pid",
                                                  scores={"1": "p"}, label="y",
                                                  attributes=("sex",), features=("age",)))
    summ = summarize(ev, keep_clusters=True)
    assert summ.clusters is not None and summ.clusters.repeated
    text = json.dumps(summ.to_dict())
    blob = pickle.dumps(summ)
    assert "SCAN-" not in text and "PAT-" not in text
    assert b"SCAN-" not in blob and b"PAT-" not in blob
    assert pickle.loads(blob).clusters is None  # the patient index never leaves memory
    assert (summ + summarize(ev)).clusters is None


def test_summary_bootstrap_equals_row_poisson_bootstrap_in_distribution():
    """Poisson(count) per bin == sum of per-row Poisson(1) weights: compare 2000 replicates."""
    y, s, _ = _data(n=3000, seed=3)
    summ = summarize_arrays(y_true=y, scores={"v": s}, resolution=256, thresholds=[0.5])
    seg0 = summ.segments(summ.grouping(()), threshold=0.5)
    counts = np.stack([seg0.neg, seg0.pos])[None]  # (1 level, 2, rows)
    B = 2000
    reps = np.concatenate(list(poisson_bootstrap_counts(counts, B, random_state=11)))
    above = np.tile(seg0.above, B)
    from rwe.stats.summaries import Segments

    rs = Segments(np.arange(B) * seg0.n_rows, reps[:, 0, 0].ravel(), reps[:, 0, 1].ravel(),
                  exact=False, above=above)
    ctx = KernelContext(threshold=0.5, estimate_only=True)
    sens = get_metric("sensitivity").kernel(rs, ctx).estimate
    spec = get_metric("specificity").kernel(rs, ctx).estimate
    auc = get_metric("auroc").kernel(rs, ctx).estimate
    w = np.random.default_rng(12).poisson(1.0, size=(B, len(y))).astype(float)
    pred = s >= 0.5
    sens_row = (w @ (y & pred)) / (w @ y)
    spec_row = (w @ (~y & ~pred)) / (w @ ~y)
    for summ_rep, row_rep in ((sens, sens_row), (spec, spec_row)):
        sd = row_rep.std()
        assert abs(summ_rep.mean() - row_rep.mean()) < 4 * sd * np.sqrt(2 / B)
        assert abs(summ_rep.std() / sd - 1) < 4 * np.sqrt(1 / B)
    order = np.argsort(s)
    ys, ws = y[order], w[:, order]
    wp, wn = ws * ys, ws * ~ys
    auc_row = (wp * (np.cumsum(wn, 1) - wn)).sum(1) / (wp.sum(1) * wn.sum(1))
    sd = auc_row.std()
    assert abs(auc.mean() - auc_row.mean()) < 4 * sd * np.sqrt(2 / B) + 1e-3
    assert abs(auc.std() / sd - 1) < 4 * np.sqrt(1 / B)


def test_cluster_bootstrap_counts_equal_weighted_bincount():
    y, s, cells = _data(n=2000, seed=5)
    clusters = np.random.default_rng(6).integers(0, 700, len(y))
    codes = (cells.astype(int) * 2 + y) * 32 + bin_index(s, score_bin_edges(32, [0.5]))
    counts = np.bincount(codes, minlength=3 * 2 * 32).reshape(3, 2, 32)
    reps = np.concatenate(list(poisson_bootstrap_counts(
        counts, 7, random_state=3, codes=codes, clusters=clusters, chunk=7)))
    distinct, inv = np.unique(clusters, return_inverse=True)
    w = np.random.default_rng(3).poisson(1.0, size=(7, len(distinct))).astype(float)
    for r in range(7):
        expect = np.bincount(codes, weights=w[r][inv], minlength=counts.size)
        assert_allclose(reps[r].reshape(-1), expect)


@pytest.mark.parametrize("metric", ["sensitivity", "specificity", "ppv", "npv", "fpr", "fnr",
                                    "accuracy", "auroc"])
def test_grouped_jackknife_equals_leave_one_row_out(metric):
    from rwe.subgroups._performance import _binned_estimate

    rng = np.random.default_rng(0)
    n = 200
    y = rng.random(n) < 0.3
    s = np.clip(rng.random(n) * 0.5 + 0.4 * y, 0, 1)
    s[:10] = 0.5  # ties at the threshold
    edges = score_bin_edges(64, [0.5])
    b = bin_index(s, edges)
    k = int(np.flatnonzero(edges == 0.5)[0])
    counts = np.stack([np.bincount(b[~y], minlength=len(edges) - 1),
                       np.bincount(b[y], minlength=len(edges) - 1)]).astype(float)
    spec = get_metric(metric)
    vals, w = binned_jackknife(counts, k, spec)
    assert w.sum() == n
    for i in range(n):  # brute force: delete row i and recompute with the metric's kernel
        c = counts.copy()
        c[int(y[i]), b[i]] -= 1
        assert_allclose(vals[int(y[i]), b[i]], _binned_estimate(c, k, spec), rtol=1e-12)


def test_weighted_bca_equals_bca_with_expanded_jackknife():
    y, s, _ = _data(n=1500, seed=9)
    edges = score_bin_edges(128, [0.5])
    b = bin_index(s, edges)
    k = int(np.flatnonzero(edges == 0.5)[0])
    counts = np.stack([np.bincount(b[~y], minlength=128), np.bincount(b[y], minlength=128)])
    reps = np.concatenate(list(poisson_bootstrap_counts(counts[None], 999, random_state=2)))
    from rwe.subgroups._bootstrap import _dense_segments
    from rwe.subgroups._performance import _binned_estimate

    seg = _dense_segments(reps, above=np.arange(128) >= k)
    for metric in ("sensitivity", "ppv", "auroc"):
        spec = get_metric(metric)
        r = spec.kernel(seg, KernelContext(threshold=0.5, estimate_only=True)).estimate
        est = _binned_estimate(counts.astype(float), k, spec)
        vals, w = binned_jackknife(counts, k, spec)
        ok = w > 0
        expanded = np.repeat(vals[ok], w[ok].astype(int))
        ref = bootstrap_interval(r, est, method="bca", jackknife=expanded)
        got = bootstrap_interval(r, est, method="bca", jackknife=vals, jackknife_weights=w)
        assert_allclose([got.low, got.high], [ref.low, ref.high], rtol=1e-10)
