"""The disclosure rule of site summaries, checked as invariants of what is released."""

from __future__ import annotations

import numpy as np
import pytest

from rwe.exceptions import InvalidParameterError
from rwe.federation import RULE, DisclosureRecord, protect_arrays


def _data(n=6000, seed=0, p_event=0.1):
    rng = np.random.default_rng(seed)
    attrs = {"sex": (rng.integers(0, 2, n), 2),
             "race": (rng.choice(5, n, p=[0.7, 0.15, 0.1, 0.04, 0.01]), 5),
             "age": (rng.choice(4, n, p=[0.1, 0.4, 0.4, 0.1]), 4),
             "site": (np.zeros(n, dtype=int), 1)}
    miss = rng.random(n) < 0.03
    attrs["race"][0][miss] = -1
    y = rng.random(n) < p_event
    feats = {"smoking": ("categorical", rng.choice([-1, 0, 1, 2], n, p=[0.05, .5, .3, .15]), 3),
             "pack_years": ("continuous", np.where(rng.random(n) < 0.5, np.nan,
                                                   rng.gamma(2, 10, n)), 0)}
    return attrs, y, feats


def _cells(codes: dict[str, np.ndarray]):
    stacked = np.stack(list(codes.values()), axis=1)
    _, cell = np.unique(stacked, axis=0, return_inverse=True)
    return stacked, cell.reshape(-1)


@pytest.mark.parametrize("k", [5, 11, 30])
@pytest.mark.parametrize("seed", [0, 1])
def test_every_released_cell_count_is_zero_or_at_least_k(k, seed):
    attrs, y, feats = _data(seed=seed)
    out, keep, of, rec = protect_arrays(attributes=attrs, y=y, features=feats, k=k,
                                        recode_order=["age", "race", "sex"])
    _, cell = _cells(out)
    yk = y[keep]
    for counts in (np.bincount(cell), np.bincount(cell, weights=yk),
                   np.bincount(cell, weights=~yk)):
        assert not ((counts > 0) & (counts < k)).any()
    # categorical feature counts within each released cell, and its missing values
    sm = of["smoking"]
    for c in range(4):
        cnt = np.bincount(cell, weights=(sm == (c if c < 3 else -1)))
        assert not ((cnt > 0) & (cnt < k)).any(), c
    # a continuous feature is summarized only in cells with 0 or >= k values
    present = np.bincount(cell, weights=~np.isnan(of["pack_years"]))
    assert not ((present > 0) & (present < k)).any()
    assert isinstance(rec, DisclosureRecord) and rec.changed
    assert rec.recoded_cells["age"] > 0  # the first attribute of the order is withheld first


def test_withheld_rows_come_from_two_categories_of_a_line_at_least():
    """Complementary suppression: in a released line (cells agreeing on every other
    attribute) that still shows a category, the rows withheld into its missing value come
    from at least two original categories, so none can be derived from the margin."""
    attrs, y, feats = _data(n=20000, seed=3)
    out, keep, _, _ = protect_arrays(attributes=attrs, y=y, features={}, k=11,
                                     recode_order=["age", "race", "sex"])
    orig = {a: v[0][keep] for a, v in attrs.items()}
    names = list(out)
    checked = 0
    for a in names:
        others = np.stack([out[b] for b in names if b != a], axis=1)
        _, line = np.unique(others, axis=0, return_inverse=True)
        line = line.reshape(-1)
        rec = (out[a] < 0) & (orig[a] >= 0)
        for ln in np.unique(line[rec]):
            m = line == ln
            if (out[a][m] >= 0).any():
                assert np.unique(orig[a][m & rec]).size >= 2, (a, ln)
                checked += 1
    assert checked > 0


def test_rows_are_kept_and_margins_of_untouched_attributes_are_exact():
    attrs, y, feats = _data(n=20000, seed=5)
    out, keep, _, rec = protect_arrays(attributes=attrs, y=y, features={}, k=11,
                                       recode_order=["age", "race", "sex"])
    assert rec.withheld_rows == 0 and keep.all()  # coarsening, not dropping
    assert (out["site"] == attrs["site"][0]).all()  # not in the order: never recoded
    # a recoded value is only ever a withheld one: the rest of the codes are unchanged
    for a in ("sex", "race", "age"):
        changed = out[a] != attrs[a][0]
        assert (out[a][changed] == -1).all()


def test_a_tiny_site_is_withheld_whole_and_says_so_without_the_number():
    attrs, y, _ = _data(n=40, seed=1)
    out, keep, _, rec = protect_arrays(attributes=attrs, y=y, features={}, k=11,
                                       recode_order=["age", "race", "sex"])
    assert not keep.any() or (np.bincount(y[keep].astype(int), minlength=2) >= 11).all() or \
        y[keep].sum() == 0
    if not keep.all() and (~keep).sum() < 11:
        assert rec.withheld_rows == "fewer than 11"


def test_k_of_one_releases_everything_unchanged():
    attrs, y, feats = _data(seed=2)
    out, keep, of, rec = protect_arrays(attributes=attrs, y=y, features=feats, k=1,
                                        recode_order=["age", "race", "sex"])
    assert keep.all() and not rec.changed
    for a in attrs:
        assert (out[a] == attrs[a][0]).all()
    np.testing.assert_array_equal(of["pack_years"], feats["pack_years"][1])


def test_the_rule_is_stated_with_its_sources():
    d = DisclosureRecord(11, ("age", "race")).to_dict()
    assert d["rule"] == RULE.format(k=11, order="age, race")
    assert "at least 11" in d["rule"] and "complementary" in d["rule"]
    assert any("CMS" in r for r in d["references"]) and any("Cox" in r for r in d["references"])
    assert DisclosureRecord.from_dict(d) == DisclosureRecord(11, ("age", "race"))
    with pytest.raises(InvalidParameterError, match="recode_order names 'bmi'"):
        protect_arrays(attributes={"sex": (np.zeros(3, int), 1)}, y=np.zeros(3, bool),
                       features={}, k=11, recode_order=["bmi"])
