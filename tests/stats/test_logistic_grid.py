"""The grid-moment fast path of rwe.stats.fit_logistic gives the row-level fits (issue 20: the
dossier at scale): every LogisticFit field agrees to ~1e-12 relative with method="rows", the
segments without a finite estimate get NaN and the same reasons, steep slopes fall back to
the rows, and one case matches statsmodels' GLM(Binomial)."""

from __future__ import annotations

import numpy as np
import pytest

from rwe.exceptions import InvalidParameterError
from rwe.stats import _logistic_grid as lg
from rwe.stats import fit_logistic
from rwe.stats._logistic import (
    REASON_CONSTANT,
    REASON_ONE_CLASS_NEG,
    REASON_ONE_CLASS_POS,
    REASON_SEPARATION,
)

FIELDS = ("a", "b", "se_a", "se_b", "llf")


def _data(seed, slopes, n=(2000, 6000), tails=False, trials=1, shuffle=False):
    """Grouped binomial rows of len(slopes) segments; logits normal or Student-t(2) (heavy
    tails: logits out to +-100s), trials 1..`trials` per row."""
    rng = np.random.default_rng(seed)
    xs, ps, ts, starts = [], [], [], []
    pos = 0
    for j, b in enumerate(slopes):
        k = int(rng.integers(*n))
        x = rng.standard_t(2, k) * 1.5 - 1 if tails else rng.normal(-1.0 + 0.2 * j, 1.4, k)
        if not shuffle:
            x = np.sort(x)
        t = rng.integers(1, trials + 1, k).astype(float)
        with np.errstate(over="ignore"):
            pr = 1 / (1 + np.exp(-(0.3 - 0.1 * j + b * x)))
        starts.append(pos)
        xs.append(x)
        ts.append(t)
        ps.append(rng.binomial(t.astype(int), pr).astype(float))
        pos += k
    return (np.concatenate(xs), np.concatenate(ps), np.concatenate(ts),
            np.asarray(starts, dtype=np.int64))


def _same(f, g, rtol=1e-12, atol=1e-12):
    assert np.array_equal(f.converged, g.converged)
    for name in FIELDS:
        u, v = getattr(f, name), getattr(g, name)
        assert np.array_equal(np.isnan(u), np.isnan(v)), name
        ok = ~np.isnan(u)
        np.testing.assert_allclose(v[ok], u[ok], rtol=rtol, atol=atol, err_msg=name)
    if f.reasons is None:
        assert g.reasons is None
    else:
        assert list(f.reasons) == list(g.reasons)


def _grid_used(x, p, t, starts, model="slope"):
    """Segments the grid fits within its bound (the others are refitted on rows)."""
    lens = np.diff(np.append(starts, x.size))
    keys, sums, centre = lg.cell_sums(x, p, t, starts)
    mom = lg.GridMoments.from_cell_sums(keys, sums, centre, n_fits=lens.size)
    slope = model == "slope"
    *_, conv, bound = lg.grid_newton(mom, np.zeros(lens.size), np.ones(lens.size),
                                     slope=slope)
    return conv & (bound <= lg.MAX_BOUND)


@pytest.mark.parametrize("model", ["slope", "offset"])
@pytest.mark.parametrize("seed,tails,trials,shuffle", [(0, False, 1, False),
                                                        (1, True, 1, True),
                                                        (2, False, 5, True),
                                                        (3, True, 3, False)])
def test_grid_equals_rows(model, seed, tails, trials, shuffle):
    slopes = [0.4, 1.0, 1.7, 2.5, 3.5, 0.8]
    x, p, t, starts = _data(seed, slopes, tails=tails, trials=trials, shuffle=shuffle)
    rows = fit_logistic(x, p, t, starts, model=model, method="rows")
    grid = fit_logistic(x, p, t, starts, model=model, method="grid")
    auto = fit_logistic(x, p, t, starts, model=model)
    _same(rows, grid)
    _same(rows, auto)
    assert rows.converged.all()
    assert _grid_used(x, p, t, starts, model).all()  # the comparison exercised the grid


def test_steep_slopes_fall_back_to_rows():
    slopes = [1.0, 4.5, 7.0, 12.0]
    x, p, t, starts = _data(4, slopes, n=(3000, 4000))
    used = _grid_used(x, p, t, starts)
    assert used[0] and not used[2:].any()  # |b| > 4: the bound exceeds 1e-15
    rows = fit_logistic(x, p, t, starts, method="rows")
    grid = fit_logistic(x, p, t, starts, method="grid")
    _same(rows, grid)
    assert rows.b[3] > 8


def test_start_tol_and_max_iter_follow_the_row_iteration():
    x, p, t, starts = _data(5, [0.7, 1.3, 2.0])
    f0 = fit_logistic(x, p, t, starts, method="rows")
    start = (f0.a + 0.05, f0.b * 0.97)
    for kw in ({"start": start}, {"start": start, "tol": 1e-6, "max_iter": 25},
               {"max_iter": 2}, {"start": (np.nan, 1.0)}):
        _same(fit_logistic(x, p, t, starts, method="rows", **kw),
              fit_logistic(x, p, t, starts, method="grid", **kw), rtol=1e-11)
    # two Newton steps from (0, 1) do not reach 1e-10: not converged, NaN on both paths
    f2 = fit_logistic(x, p, t, starts, method="grid", max_iter=2)
    assert not f2.converged.any() and np.isnan(f2.a).all()


def test_segments_without_an_estimate_and_tiny_segments():
    x, p, t, starts = _data(6, [1.0] * 8, n=(500, 900))
    lens = np.diff(np.append(starts, x.size))
    seg = np.repeat(np.arange(lens.size), lens)
    p = p.copy()
    x = x.copy()
    p[seg == 0] = 0.0  # no case
    p[seg == 1] = t[seg == 1]  # no control
    x[seg == 2] = 0.25  # constant covariate
    m = seg == 3  # complete separation at 0
    p[m] = np.where(x[m] > 0, t[m], 0.0)
    # segment 4: three rows (tiny), segment 5: empty
    keep = (seg != 4) | (np.cumsum(seg == 4) <= 3)
    keep &= seg != 5
    x, p, t, seg = x[keep], p[keep], t[keep], seg[keep]
    p[np.flatnonzero(seg == 4)] = [1.0, 0.0, 1.0]
    t[seg == 4] = 1.0
    starts = np.searchsorted(seg, np.arange(8))
    for model in ("slope", "offset"):
        rows = fit_logistic(x, p, t, starts, model=model, method="rows")
        grid = fit_logistic(x, p, t, starts, model=model, method="grid")
        _same(rows, grid, rtol=1e-11)
        assert rows.reasons[0] == REASON_ONE_CLASS_POS
        assert rows.reasons[1] == REASON_ONE_CLASS_NEG
        assert rows.reasons[5] == REASON_ONE_CLASS_POS
        assert np.isnan(grid.a[[0, 1, 5]]).all() and np.isfinite(grid.a[6:]).all()
        if model == "slope":
            assert rows.reasons[2] == REASON_CONSTANT
            assert rows.reasons[3] == REASON_SEPARATION
            assert np.isnan(grid.b[[2, 3]]).all()


def test_common_slope_grid_equals_rows():
    x, p, t, starts = _data(7, [1.1] * 5, n=(3000, 8000), tails=True, trials=2)
    p = p.copy()
    lens = np.diff(np.append(starts, x.size))
    p[np.repeat(np.arange(5), lens) == 2] = 0.0  # one segment without a case: left out
    rows = fit_logistic(x, p, t, starts, model="common_slope", method="rows")
    grid = fit_logistic(x, p, t, starts, model="common_slope", method="grid")
    assert rows.converged.all() and grid.converged.all()
    for name in ("a", "b", "llf"):
        u, v = getattr(rows, name), getattr(grid, name)
        assert np.array_equal(np.isnan(u), np.isnan(v))
        np.testing.assert_allclose(v[~np.isnan(u)], u[~np.isnan(u)], rtol=1e-12)
    assert np.isnan(grid.a[2])
    # the likelihood-ratio statistic of the slope x segment interaction agrees too
    s_rows = fit_logistic(x, p, t, starts, method="rows")
    s_grid = fit_logistic(x, p, t, starts, method="grid")
    ok = ~np.isnan(rows.llf)
    lr_rows = 2 * (np.sum(s_rows.llf[ok]) - np.sum(rows.llf[ok]))
    lr_grid = 2 * (np.sum(s_grid.llf[ok]) - np.sum(grid.llf[ok]))
    assert lr_grid == pytest.approx(lr_rows, rel=1e-8, abs=1e-8)


def test_auto_uses_the_grid_on_many_rows_and_agrees():
    rng = np.random.default_rng(8)
    n = 120_000
    x = rng.normal(-1.5, 1.2, n)
    seg = np.sort(rng.integers(0, 3, n))
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.2 + 0.9 * x)))).astype(float)
    starts = np.searchsorted(seg, np.arange(3))
    assert lg.cell_sums(x, y, np.ones(n), starts, n // 16) is not None  # auto pays here
    for model in ("slope", "offset", "common_slope"):
        rows = fit_logistic(x, y, np.ones(n), starts, model=model, method="rows")
        auto = fit_logistic(x, y, np.ones(n), starts, model=model)
        for name in ("a", "b", "llf") + (("se_a", "se_b") if model != "common_slope" else ()):
            np.testing.assert_allclose(getattr(auto, name), getattr(rows, name), rtol=1e-12,
                                       err_msg=f"{model} {name}")


def test_grid_matches_statsmodels_glm():
    sm = pytest.importorskip("statsmodels.api")
    x, p, t, starts = _data(9, [1.3], n=(4000, 4001), trials=4, tails=True)
    f = fit_logistic(x, p, t, method="grid")
    assert _grid_used(x, p, t, starts).all()
    glm = sm.GLM(np.column_stack([p, t - p]), sm.add_constant(x),
                 family=sm.families.Binomial()).fit(tol=1e-13)
    assert f.a[0] == pytest.approx(glm.params[0], rel=1e-9)
    assert f.b[0] == pytest.approx(glm.params[1], rel=1e-9)
    assert f.se_a[0] == pytest.approx(glm.bse[0], rel=1e-7)
    assert f.se_b[0] == pytest.approx(glm.bse[1], rel=1e-7)


def test_unknown_method_is_refused():
    with pytest.raises(InvalidParameterError, match="method="):
        fit_logistic([0.0, 1.0], [0.0, 1.0], [1.0, 1.0], method="fast")


@pytest.mark.parametrize("b", [0.3, 1.0, 2.5, 4.0, -3.0])
def test_grid_sums_equal_exact_row_sums(b):
    """Log-likelihood, score and information from the cell moments at arbitrary (a, b) equal
    the row sums (math.fsum) to 1e-14 per unit of weight: the Taylor series are summed far
    enough (a truncated series fails here)."""
    import math

    x, p, t, starts = _data(10, [1.0], n=(20000, 20001), tails=True, trials=3)
    keys, sums, centre = lg.cell_sums(x, p, t, starts)
    mom = lg.GridMoments.from_cell_sums(keys, sums, centre, n_fits=1)
    a = np.array([-0.4])
    llf, ga, gb, haa, hab, hbb = (v[0] for v in mom.state(a, np.array([b])))
    eta = a[0] + b * x
    mu = 1 / (1 + np.exp(-eta))
    sp = np.maximum(eta, 0) + np.log1p(np.exp(-np.abs(eta)))
    w = t * mu * (1 - mu)
    exact = {"llf": math.fsum(p * eta) - math.fsum(t * sp),
             "ga": math.fsum(p - t * mu), "gb": math.fsum((p - t * mu) * x),
             "haa": math.fsum(w), "hab": math.fsum(w * x), "hbb": math.fsum(w * x * x)}
    got = {"llf": llf, "ga": ga, "gb": gb, "haa": haa, "hab": hab, "hbb": hbb}
    scale = {"llf": t.sum(), "ga": t.sum(), "haa": t.sum(), "gb": np.sum(t * np.abs(x)),
             "hab": np.sum(t * np.abs(x)), "hbb": np.sum(t * x * x)}
    for k, v in exact.items():
        assert abs(got[k] - v) <= 1e-14 * scale[k], (k, got[k], v)
