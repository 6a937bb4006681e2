"""Numeric features of a summary: accurate per-cell moments, range and the binary count, all
merging exactly and surviving JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rwe.stats.summaries import Summary, merge_summaries, summarize_arrays


def test_moments_are_as_accurate_as_compensated_sums():
    """A large offset makes a sequential per-cell sum lose digits (about 1e-14 relative at
    300,000 rows); the pairwise sums and the correction pass stay within a few ulp of the
    correctly rounded mean and sum of squares (math.fsum)."""
    rng = np.random.default_rng(3)
    n = 300_000
    x = 1e4 + rng.normal(0, 1, n)
    g = rng.choice(["a", "b"], n)
    s = summarize_arrays(attributes={"g": g}, features={"x": x})
    f = s.features["x"]
    for k, c in enumerate(s.cells.categories[0]):
        cell = np.flatnonzero(s.cells.codes[:, 0] == k)[0]
        xs = x[g == c]
        mean = math.fsum(xs) / len(xs)
        m2 = math.fsum((xs - mean) ** 2)
        assert abs(f.mean[cell] - mean) <= 4 * np.spacing(mean)
        assert f.m2[cell] == pytest.approx(m2, rel=1e-14)


def test_range_and_binary_count_merge_exactly_and_survive_json():
    rng = np.random.default_rng(8)
    n = 5_000
    g = rng.choice(["a", "b", "c"], n)
    cont = rng.normal(50, 10, n)
    cont[rng.random(n) < 0.1] = np.nan
    binary = rng.integers(0, 2, n).astype(float)
    binary[g == "c"] = np.nan  # a cell of the merge without any value
    almost = binary.copy()
    almost[17] = 0.5
    whole = summarize_arrays(attributes={"g": g}, features={"x": cont, "b": binary,
                                                            "h": almost})
    part = rng.integers(0, 5, n)
    parts = [summarize_arrays(attributes={"g": g[part == i]},
                              features={"x": cont[part == i], "b": binary[part == i],
                                        "h": almost[part == i]}, source=f"p{i}")
             for i in range(5)]
    parts = [Summary.from_dict(json.loads(json.dumps(p.to_dict()))) for p in parts]
    merged = merge_summaries(parts)
    for name, values in (("x", cont), ("b", binary), ("h", almost)):
        fm = merged.features[name]
        assert fm.pooled_range() == (np.nanmin(values), np.nanmax(values))
        fw = whole.features[name]
        assert fw.pooled_range() == fm.pooled_range()
        for k, c in enumerate(merged.cells.categories[0]):
            mask = merged.cells.codes[:, 0] == k
            v = values[g == c]
            v = v[~np.isnan(v)]
            lo, hi = fm.pooled_range(mask)
            if v.size:
                assert (lo, hi) == (v.min(), v.max())
            else:
                assert math.isnan(lo) and math.isnan(hi)
    assert merged.features["b"].is_binary() and whole.features["b"].is_binary()
    assert not merged.features["h"].is_binary()
    assert int(merged.features["h"].nonbinary.sum()) == 1
    assert not merged.features["x"].is_binary()
    # a summary from before these fields were recorded still reads and merges (no range)
    old = whole.to_dict()
    for key in ("min", "max", "nonbinary"):
        del old["features"]["x"][key]
    from rwe.stats.summaries import _checksum

    body = {k: v for k, v in old.items() if k != "checksum"}
    old["checksum"] = _checksum(body)
    legacy = Summary.from_dict(old)
    assert legacy.features["x"].is_binary() is None
    assert math.isnan(legacy.features["x"].pooled_range()[0])
