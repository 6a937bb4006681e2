"""The lean primitives of the summary path equal their plain numpy definitions (issue 13)."""

import numpy as np
import pytest

from rwe.stats import delong_segments
from rwe.stats._chunks import bincount, segment_sums, stable_argsort
from rwe.stats.summaries import (
    Segments,
    _sort_scores,
    bin_index,
    merge_summaries,
    score_bin_edges,
    summarize_arrays,
)


@pytest.mark.parametrize("n", [1, 2, 5, 1000, 70_000])
def test_stable_argsort_equals_numpy(n):
    rng = np.random.default_rng(n)
    keys = rng.integers(0, max(2, n // 3), n)  # many ties: stability matters
    np.testing.assert_array_equal(stable_argsort(keys), np.argsort(keys, kind="stable"))


def test_sort_scores_is_the_stable_argsort_with_prefix_collisions():
    # scores one ulp apart share the packed prefix: the collision runs must be re-sorted
    rng = np.random.default_rng(3)
    base = rng.random(2000)
    s = np.concatenate([base, np.nextafter(base, 1), base, np.nextafter(base, 0),
                        [0.0, 1.0, 0.0, 1.0, 0.5, 0.5]])
    s = s[rng.permutation(s.size)]
    order, ss = _sort_scores(s)
    ref = np.argsort(s, kind="stable")
    np.testing.assert_array_equal(order, ref)
    np.testing.assert_array_equal(ss, s[ref])


@pytest.mark.parametrize("edges", [score_bin_edges(2048, [0.5]),
                                   score_bin_edges(256, [0.1234567, 0.12345671, 0.9]),
                                   np.array([0.0, 1e-9, 2e-9, 0.5, 1.0])])
def test_bin_index_equals_searchsorted(edges):
    rng = np.random.default_rng(0)
    s = np.concatenate([rng.random(50_000), edges, np.nextafter(edges, 2),
                        np.clip(np.nextafter(edges, -1), 0, 1)])
    expect = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, len(edges) - 2)
    np.testing.assert_array_equal(bin_index(s, edges), expect)


def test_chunked_sums_equal_one_pass():
    rng = np.random.default_rng(1)
    n = 200_003
    x = rng.integers(0, 7, n).astype(np.uint8)
    np.testing.assert_array_equal(bincount(x, minlength=9), np.bincount(x, minlength=9))
    starts = np.array([0, 0, 5, 70_000, 70_000, 131_072, 199_999])  # empty segments too
    w = rng.random(n)
    got = segment_sums(starts, n, lambda a, b: (w[a:b], x[a:b]), 2)
    bounds = np.append(starts, n)
    for s in range(len(starts)):
        lo, hi = bounds[s], bounds[s + 1]
        assert got[s, 0] == pytest.approx(w[lo:hi].sum(), rel=1e-12, abs=0)
        assert got[s, 1] == x[lo:hi].sum()


def test_delong_segments_chunked_equals_per_segment_rows():
    # segments spanning chunk boundaries, compact integer counts: the same AUROC and DeLong
    # variance as each segment on its own (auc_delong on the expanded rows)
    from rwe.stats import auc_delong

    rng = np.random.default_rng(5)
    lens = [3, 140_000, 1, 0, 70_000]
    neg = rng.integers(0, 3, sum(lens)).astype(np.uint8)
    pos = rng.integers(0, 2, sum(lens)).astype(np.uint8)
    starts = np.cumsum([0] + lens[:-1])
    auc, var, _ = delong_segments(neg, pos, starts)
    for s, (a, m) in enumerate(zip(starts, lens, strict=True)):
        ng, ps = neg[a:a + m], pos[a:a + m]
        if ps.sum() == 0 or ng.sum() == 0:
            assert np.isnan(auc[s])
            continue
        score = np.concatenate([np.repeat(np.arange(m), ng), np.repeat(np.arange(m), ps)])
        y = np.concatenate([np.zeros(int(ng.sum())), np.ones(int(ps.sum()))])
        r = auc_delong(y, score)
        assert auc[s] == pytest.approx(r.auc, abs=1e-13)
        if np.isfinite(r.variance):
            assert var[s] == pytest.approx(r.variance, rel=1e-10)


def test_compact_summary_dtypes_and_implicit_bins():
    rng = np.random.default_rng(2)
    n = 5000
    y = rng.random(n) < 0.3
    s = rng.random(n)
    attrs = {"g": rng.choice(["a", "b", "c"], n)}
    summ = summarize_arrays(y_true=y, scores={"v": s}, attributes=attrs)
    t = summ.score_table("v")
    assert t.one_per_bin and t._bin is None  # distinct scores: entry i in bin i
    np.testing.assert_array_equal(t.bin, np.arange(n))
    assert t.cell.dtype == np.int8 and t.count.dtype == np.uint8 and t.count.sum() == n
    seg = summ.segments(summ.grouping("g"), "v", threshold=0.5)
    assert isinstance(seg, Segments) and seg.pos_count.dtype == np.uint8
    # two halves merged: the same table as the whole
    half = summarize_arrays(y_true=y[:2500], scores={"v": s[:2500]},
                            attributes={"g": attrs["g"][:2500]}, source="a")
    rest = summarize_arrays(y_true=y[2500:], scores={"v": s[2500:]},
                            attributes={"g": attrs["g"][2500:]}, source="b")
    m = merge_summaries([half, rest]).score_table("v")
    np.testing.assert_array_equal(m.values, t.values)
    np.testing.assert_array_equal(m.label, t.label)
    np.testing.assert_array_equal(m.count, t.count)
