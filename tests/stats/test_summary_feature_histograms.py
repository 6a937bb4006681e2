"""Feature histograms on declared edges in the mergeable summary (rwe.stats.summaries)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from rwe.exceptions import InvalidParameterError
from rwe.stats.summaries import (
    Summary,
    SummaryError,
    feature_bin_column,
    merge_summaries,
    summarize_arrays,
)


def _rows(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(50, 10, n)
    x[:30] = np.nan
    g = rng.choice(["a", "b", "c"], n)
    return x, g


def test_bin_columns_follow_the_declared_edges():
    edges = np.array([0.0, 1.0, 2.0])
    x = np.array([-0.5, 0.0, 0.5, 1.0, 1.99, 2.0, 2.01])
    assert_array_equal(feature_bin_column(x, edges), [0, 1, 1, 2, 2, 2, 3])


def test_histogram_counts_and_sums_per_level_equal_the_rows():
    x, g = _rows()
    edges = np.linspace(30, 70, 9)
    s = summarize_arrays(attributes={"g": g}, features={"x": x}, feature_edges={"x": edges})
    e, counts, sums = s.feature_histogram("x", s.grouping("g"))
    assert_array_equal(e, edges)
    for j, lev in enumerate(s.grouping("g").levels):
        v = x[(g == lev) & ~np.isnan(x)]
        col = feature_bin_column(v, edges)
        assert_array_equal(counts[j], np.bincount(col, minlength=len(edges) + 1))
        assert_allclose(sums[j], np.bincount(col, weights=v, minlength=len(edges) + 1),
                        rtol=1e-12)
    assert counts.sum() == np.sum(~np.isnan(x))
    assert s.features["x"].missing.sum() == 30


def test_histograms_merge_by_addition_and_round_trip():
    x, g = _rows()
    edges = np.linspace(30, 70, 9)
    whole = summarize_arrays(attributes={"g": g}, features={"x": x}, feature_edges={"x": edges})
    a = summarize_arrays(attributes={"g": g[:1000]}, features={"x": x[:1000]},
                         feature_edges={"x": edges}, source="A")
    b = summarize_arrays(attributes={"g": g[1000:]}, features={"x": x[1000:]},
                         feature_edges={"x": edges}, source="B")
    m = merge_summaries([a, b])
    gm, gw = m.grouping("g"), whole.grouping("g")
    assert gm.levels == gw.levels
    _, cm, sm = m.feature_histogram("x", gm)
    _, cw, sw = whole.feature_histogram("x", gw)
    assert_array_equal(cm, cw)
    assert_allclose(sm, sw, rtol=1e-12)
    back = Summary.from_dict(json.loads(json.dumps(m.to_dict())))
    _, cb, sb = back.feature_histogram("x", back.grouping("g"))
    assert_array_equal(cb, cm)
    assert_array_equal(sb, sm)


def test_merge_refuses_other_edges_and_bad_edges_are_refused():
    x, g = _rows()
    a = summarize_arrays(attributes={"g": g}, features={"x": x}, feature_edges={"x": [0, 50, 99]})
    b = summarize_arrays(attributes={"g": g}, features={"x": x}, feature_edges={"x": [0, 40, 99]})
    c = summarize_arrays(attributes={"g": g}, features={"x": x})
    with pytest.raises(SummaryError, match="histogram bin edges of feature 'x' differ"):
        merge_summaries([a, b])
    with pytest.raises(SummaryError, match="histogram bin edges of feature 'x' differ"):
        merge_summaries([a, c])
    with pytest.raises(InvalidParameterError, match="strictly increasing"):
        summarize_arrays(features={"x": x}, feature_edges={"x": [1, 1, 2]})
    with pytest.raises(InvalidParameterError, match="not a summarized feature"):
        summarize_arrays(features={"x": x}, feature_edges={"y": [1, 2]})
    with pytest.raises(InvalidParameterError, match="was summarized without declared bin edges"):
        c.feature_histogram("x", c.grouping("g"))


def test_categorical_histogram_is_the_category_counts():
    g = np.array(["a", "b", "a", None, "b", "b"], dtype=object)
    s = summarize_arrays(attributes={"site": np.array(list("xxyyyy"))}, features={"c": g})
    cats, counts, sums = s.feature_histogram("c", s.grouping("site"))
    assert cats == ("a", "b") and sums is None
    assert_array_equal(counts, [[1, 1, 0], [1, 2, 1]])


def test_a_summary_without_attributes_round_trips():
    x, _ = _rows()
    s = summarize_arrays(features={"x": x}, feature_edges={"x": np.linspace(30, 70, 5)})
    back = Summary.from_dict(json.loads(json.dumps(s.to_dict())))
    assert back.cells.n_cells == 1 and back.attributes == ()
    _, c, _ = back.feature_histogram("x", back.grouping(()))
    assert c.sum() == np.sum(~np.isnan(x))
