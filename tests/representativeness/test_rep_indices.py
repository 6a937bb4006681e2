"""O6 oracles (METHODS.md): Bhattacharyya, Tipton's kernel B, SMD; SMD on real data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import integrate, stats

from rwe.exceptions import InvalidParameterError
from rwe.representativeness import (
    bhattacharyya_coefficient,
    generalizability_index,
    interpret_generalizability,
    smd,
    smd_from_summary,
)
from rwe.representativeness._indices import (
    _bandwidth,
    _kde,
    _kde_binned,
    _kde_direct,
    _taylor_terms,
)


def _normal_bc(m1, s1, m2, s2):
    x = np.linspace(-30, 30, 200_001)
    return bhattacharyya_coefficient(stats.norm.pdf(x, m1, s1), stats.norm.pdf(x, m2, s2), x)


def test_bhattacharyya_normal_oracles():
    assert_allclose(_normal_bc(0, 1, 1, 1), 0.882497, atol=1e-6)
    assert_allclose(_normal_bc(0, 1, 1, 1), math.exp(-1 / 8), rtol=1e-9)
    assert_allclose(_normal_bc(0, 1, 0, 2), 0.894427, atol=1e-6)
    # closed form sqrt(2 s1 s2/(s1^2+s2^2)) exp(-(m1-m2)^2/(4(s1^2+s2^2)))
    closed = math.sqrt(2 * 1.5 * 0.7 / (1.5**2 + 0.7**2)) * math.exp(-(2.0**2) / (4 * (1.5**2 + 0.7**2)))
    assert_allclose(_normal_bc(0, 1.5, 2, 0.7), closed, rtol=1e-9)


def test_bhattacharyya_discrete_oracle():
    assert_allclose(bhattacharyya_coefficient([0.5, 0.5], [0.9, 0.1]), 0.894427, atol=1e-6)
    assert bhattacharyya_coefficient([0.2, 0.8], [0.2, 0.8]) == pytest.approx(1.0)
    with pytest.raises(InvalidParameterError, match="same length"):
        bhattacharyya_coefficient([0.5, 0.5], [1.0])


def test_kernel_b_index_oracle():
    b = generalizability_index([0.1, 0.2, 0.3], [0.1, 0.2, 0.3, 0.4, 0.5])
    assert_allclose(b, 0.894556, atol=1e-6)


def test_kernel_b_identical_and_degenerate():
    x = [0.1, 0.25, 0.3, 0.7]
    assert generalizability_index(x, x) == pytest.approx(1.0, abs=1e-9)
    assert generalizability_index([0.3, 0.3], [0.3, 0.3, 0.3]) == 1.0  # both variances 0


def _quad_b(s, p):
    """Direct transcription of generalize::gen_index with adaptive quadrature over (-inf, inf)."""
    s, p = np.asarray(s), np.asarray(p)
    hs, hp = _bandwidth(s), _bandwidth(p)

    def f(x):
        fs = np.mean(stats.norm.pdf((x - s) / hs)) / hs
        fp = np.mean(stats.norm.pdf((x - p) / hp)) / hp
        return math.sqrt(fs * fp)

    lo, hi = min(s.min(), p.min()), max(s.max(), p.max())
    pts = np.linspace(lo, hi, 15)
    return integrate.quad(f, lo - 1, hi + 1, points=pts, limit=500)[0]


def test_kernel_b_matches_quadrature_on_random_scores():
    rng = np.random.default_rng(7)
    s = rng.beta(2, 5, 60)
    p = rng.beta(3, 3, 150)
    assert_allclose(generalizability_index(s, p), _quad_b(s, p), atol=1e-7)


@pytest.mark.parametrize("n,m,h,spread", [(50_000, 2000, 0.003, 1.0),
                                           (200_000, 5000, 0.0005, 0.5),
                                           (100_000, 1500, 0.002, 0.2)])
def test_binned_kde_equals_direct_sum(n, m, h, spread):
    """The Taylor-binned Gaussian KDE (fast Gauss transform on the grid) equals the direct
    kernel sum to rounding wherever the density is above 1e-10 of its peak, and to 1e-14 of
    the peak everywhere (the two cut the kernel beyond 10 bandwidths slightly differently)."""
    rng = np.random.default_rng(n)
    x = rng.beta(2, 5, n) * spread
    grid = np.linspace(x.min() - 12 * h, x.max() + 12 * h, m)
    want = _kde_direct(grid, x, h)
    got = _kde_binned(grid, x, h)
    assert got is not None
    big = want > 1e-10 * want.max()
    assert_allclose(got[big], want[big], rtol=1e-11)
    assert np.abs(got - want).max() <= 1e-14 * want.max()


def test_binned_kde_falls_back_to_the_direct_sum():
    """A coarse grid (step of several bandwidths) or few points: the direct sum."""
    x = np.random.default_rng(1).random(500)
    grid = np.linspace(-0.5, 1.5, 600)
    assert _kde_binned(grid, x, 0.001) is None  # step / h = 3.3: the series would cancel
    assert _kde_binned(grid, x[:20], 0.05) is None  # 20 points: direct is cheaper
    assert_allclose(_kde(grid, x, 0.001), _kde_direct(grid, x, 0.001), rtol=0)
    p = _taylor_terms(0.85)  # the remainder bound z^(p+1)/(p+1)! e^z first below 1e-17
    assert 0.85 ** (p + 1) / math.factorial(p + 1) * math.exp(0.85) <= 1e-17
    assert 0.85 ** p / math.factorial(p) * math.exp(0.85) > 1e-17


def test_bandwidth_floor():
    assert _bandwidth(np.array([0.5, 0.5, 0.5])) == 0.001
    x = np.array([0.1, 0.2, 0.3])
    assert_allclose(_bandwidth(x), (4 * 0.1**5 / 9) ** 0.2)


@pytest.mark.parametrize("b,label", [(0.95, "very high"), (0.9, "very high"), (0.85, "high"),
                                     (0.8, "high"), (0.6, "medium"), (0.5, "medium"),
                                     (0.49, "low")])
def test_interpretation_bands(b, label):
    assert interpret_generalizability(b) == label


def test_smd_oracles():
    assert_allclose(smd_from_summary(71 / 113, 0.5, binary=True), 0.260970, atol=1e-6)
    assert_allclose(smd_from_summary(52, 50, sd_a=10, sd_b=12), 0.181071, atol=1e-6)
    # same numbers from raw data: 71 of 113 vs exactly half
    a = np.r_[np.ones(71), np.zeros(42)]
    b = np.r_[np.ones(50), np.zeros(50)]
    assert_allclose(smd(a, b), 0.260970, atol=1e-6)
    rng = np.random.default_rng(0)
    za, zb = rng.normal(size=40), rng.normal(size=55)
    xa = 52 + 10 * (za - za.mean()) / za.std(ddof=1)
    xb = 50 + 12 * (zb - zb.mean()) / zb.std(ddof=1)
    assert_allclose(smd(xa, xb), 0.181071, atol=1e-6)
    assert smd(xb, xa) == pytest.approx(-smd(xa, xb))


def test_smd_edge_cases():
    assert smd([1, 1, 1], [1, 1]) == 0.0
    assert smd([1, 1, 1], [0, 0]) == math.inf
    assert smd([2.0, 2.0], [2.0, 2.0, 2.0], kind="continuous") == 0.0
    assert smd([1.0, np.nan, 3.0], [1.0, 2.0]) == pytest.approx(
        smd([1.0, 3.0], [1.0, 2.0]))
    with pytest.raises(InvalidParameterError, match="kind"):
        smd([1, 2], [1, 2], kind="pooled")
    with pytest.raises(InvalidParameterError, match="sd_a and sd_b"):
        smd_from_summary(1.0, 2.0)


def test_smd_on_asah_age_by_gender_by_hand(asah):
    d = asah
    f = d.loc[d["gender"] == "Female", "age"].to_numpy(float)
    m = d.loc[d["gender"] == "Male", "age"].to_numpy(float)
    assert (len(f), len(m)) == (71, 42)
    by_hand = (f.mean() - m.mean()) / math.sqrt((f.var(ddof=1) + m.var(ddof=1)) / 2)
    assert_allclose(smd(f, m), by_hand, rtol=1e-12)
    # the generalize-style (n-1)-weighted pooled SD gives a different number: not what we use
    pooled = math.sqrt(((70) * f.var(ddof=1) + 41 * m.var(ddof=1)) / (71 + 42 - 2))
    assert abs(by_hand - (f.mean() - m.mean()) / pooled) > 1e-4


def test_smd_on_kidney_transplant_age_by_race():
    from lifelines.datasets import load_kidney_transplant

    d = load_kidney_transplant()
    black = (d["black_male"] + d["black_female"]) == 1
    a, b = d.loc[black, "age"].to_numpy(float), d.loc[~black, "age"].to_numpy(float)
    by_hand = (a.mean() - b.mean()) / math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    assert_allclose(smd(a, b), by_hand, rtol=1e-12)
    # binary covariate: death
    pa, pb = d.loc[black, "death"].mean(), d.loc[~black, "death"].mean()
    assert_allclose(smd(d.loc[black, "death"], d.loc[~black, "death"]),
                    (pa - pb) / math.sqrt((pa * (1 - pa) + pb * (1 - pb)) / 2), rtol=1e-12)
