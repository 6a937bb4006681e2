"""The drift analysis' fast paths give the numbers of the direct computations (issue 20:
the dossier at scale): the dynamic recalibration from moments equals the row-level fits
(rwe.stats.fit_logistic on repeated rows, and statsmodels' GLM), duplicate counts equal full
row hashing, the KS and chi-square p-values equal scipy.stats."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rwe.data import ColumnRoles, EvaluationSet
from rwe.drift import assess_drift
from rwe.drift._dynamic import dynamic_fits, expanded_rows
from rwe.stats import fit_logistic


def _rows(W, L, seed, slope=0.8, n=(0, 400)):
    """Histogram rows of W x L segments: distinct logits ascending, binomial outcomes."""
    rng = np.random.default_rng(seed)
    xs, ps, ts, starts = [], [], [], []
    pos = 0
    for _t in range(W):
        for j in range(L):
            starts.append(pos)
            k = int(rng.integers(*n))
            x = np.sort(rng.normal(-1.0 + 0.3 * j, 1.5, k))
            tot = rng.integers(1, 3, k).astype(float)
            pr = 1 / (1 + np.exp(-(0.2 + slope * x)))
            xs.append(x)
            ts.append(tot)
            ps.append(rng.binomial(tot.astype(int), pr).astype(float))
            pos += k
    return (np.concatenate(xs), np.concatenate(ps), np.concatenate(ts),
            np.asarray(starts, dtype=np.int64))


def _reference(x, p, t, starts, W, L, memory, depth):
    idx, w, st = expanded_rows(np.arange(W * L), starts, x.size, W, L, memory, depth)
    return fit_logistic(x[idx], p[idx] * w, t[idx] * w, st, model="slope")


@pytest.mark.parametrize("seed,memory", [(0, 0.7), (1, 0.5), (2, 1.0)])
def test_dynamic_fits_equal_the_fits_on_repeated_rows(seed, memory):
    W, L = 9, 3
    x, p, t, starts = _rows(W, L, seed)
    depth = W if memory >= 1 else int(math.floor(math.log(0.05) / math.log(memory))) + 1
    a, b = dynamic_fits(x, p, t, starts, W, L, memory, depth)
    ref = _reference(x, p, t, starts, W, L, memory, depth)
    assert np.array_equal(np.isnan(a), np.isnan(ref.a)) and np.isfinite(ref.a).sum() > 10
    ok = np.isfinite(ref.a)
    assert np.allclose(a[ok], ref.a[ok], rtol=1e-10, atol=1e-12)
    assert np.allclose(b[ok], ref.b[ok], rtol=1e-10, atol=1e-12)


def test_dynamic_fits_match_statsmodels_weighted_glm():
    sm = pytest.importorskip("statsmodels.api")
    W, L, memory, depth = 6, 2, 0.7, 9
    x, p, t, starts = _rows(W, L, 3, n=(150, 300))
    a, b = dynamic_fits(x, p, t, starts, W, L, memory, depth)
    for fit in (5 * L + 1, 3 * L):  # window 5 level 1; window 3 level 0
        idx, w, _ = expanded_rows(np.array([fit]), starts, x.size, W, L, memory, depth)
        glm = sm.GLM(p[idx] / t[idx], sm.add_constant(x[idx]), family=sm.families.Binomial(),
                     var_weights=t[idx] * w).fit(tol=1e-13)
        assert a[fit] == pytest.approx(glm.params[0], rel=1e-8, abs=1e-10)
        assert b[fit] == pytest.approx(glm.params[1], rel=1e-8)


def test_dynamic_fits_without_an_estimate_and_with_steep_slopes():
    W, L, memory, depth = 5, 2, 0.7, 9
    x, p, t, starts = _rows(W, L, 4, n=(60, 120))
    lens = np.diff(np.append(starts, x.size))
    seg = np.repeat(np.arange(W * L), lens)
    p = p.copy()
    p[seg == 1] = 0.0  # level 1 of window 0: no case (window 1 borrows window 0's rows)
    a, b = dynamic_fits(x, p, t, starts, W, L, memory, depth)
    ref = _reference(x, p, t, starts, W, L, memory, depth)
    assert np.isnan(a[1]) and np.isnan(ref.a[1]) and np.isfinite(a[3])
    assert np.allclose(a, ref.a, rtol=1e-10, atol=1e-12, equal_nan=True)
    # separated outcomes in every window: no finite estimate anywhere
    sep = (x > 0).astype(float) * t
    a, b = dynamic_fits(x, sep, t, starts, W, L, memory, depth)
    assert np.isnan(a).all() and np.isnan(b).all()
    # a slope of 25: the Taylor bound is too large, the fits come from the rows
    x2, p2, t2, st2 = _rows(W, L, 5, slope=25.0, n=(300, 400))
    a, b = dynamic_fits(x2, p2, t2, st2, W, L, memory, depth)
    ref = _reference(x2, p2, t2, st2, W, L, memory, depth)
    assert np.nanmin(ref.b) > 10
    assert np.allclose(b, ref.b, rtol=1e-10, equal_nan=True)
    # empty windows stay NaN
    x3, p3, t3, st3 = _rows(W, L, 6, n=(0, 1))
    a, b = dynamic_fits(x3, p3, t3, st3, W, L, memory, depth)
    ref = _reference(x3, p3, t3, st3, W, L, memory, depth)
    assert np.allclose(a, ref.a, equal_nan=True, rtol=1e-10)


ROLES = ColumnRoles(scores={"v": "p"}, label="y", timestamp="ts", site="site", id="id",
                    patient_id="pid", features=("x",))


def _frame(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    p = 1 / (1 + np.exp(-rng.normal(-1.5, 1.2, n)))
    ts = np.datetime64("2024-01-01") + rng.integers(0, 90 * 24, n).astype("timedelta64[h]")
    return pd.DataFrame({"id": np.arange(n).astype(str), "pid": rng.integers(0, 500, n).astype(
        str), "p": p, "y": rng.random(n) < p, "ts": ts, "site": rng.choice(["A", "B"], n),
        "x": rng.normal(0, 1, n)})


def test_duplicate_counts_equal_full_row_hashing():
    df = _frame()
    again = df.iloc[[5, 17, 17, 900, 1500]].copy()
    again["id"] = ["d1", "d2", "d3", "d4", "d5"]  # ids differ: still the same record
    other = df.iloc[[40, 41]].copy()
    other["id"] = ["o1", "o2"]
    other["pid"] = "someone else"  # same on every column but the patient: not a duplicate
    df = pd.concat([df, again, other], ignore_index=True)
    res = assess_drift(EvaluationSet.from_frame(df, ROLES), reference=_frame(seed=1),
                       metrics=(), tests=["psi"])
    got = res.integrity[(res.integrity["group"] == "overall")
                        & (res.integrity["feature"] == "x")].set_index("window")["duplicates"]
    cols = [c for c in ROLES.required_columns() if c != "id" and c not in ROLES.features]
    dup = pd.util.hash_pandas_object(df[cols], index=False).duplicated().to_numpy()
    want = pd.Series(dup).groupby(df["ts"].dt.strftime("%Y-%m").to_numpy()).sum()
    assert got.sum() == 5
    assert got.to_dict() == {k: int(v) for k, v in want.items()}


def test_ks_and_chi2_pvalues_equal_scipy_stats():
    from scipy.stats import chi2, kstwobign

    from rwe.drift._registry import DriftContext, FeatureHist, chi2_kernel, ks_kernel

    rng = np.random.default_rng(0)
    edges = np.linspace(-3, 3, 21)
    ref_c = np.histogram(rng.normal(0, 1, 5000), edges)[0][None, :].astype(float)
    cur_c = np.stack([np.histogram(rng.normal(mu, 1, 800), edges)[0] for mu in (0, 0.1, 0.4)]
                     ).astype(float)

    def fh(c):
        c = np.concatenate([np.zeros((c.shape[0], 1)), c, np.zeros((c.shape[0], 1))], axis=1)
        mids = np.concatenate([[edges[0]], (edges[:-1] + edges[1:]) / 2, [edges[-1]]])
        return FeatureHist("numeric", c, edges, c * mids)

    r, c = fh(ref_c), fh(cur_c)
    v = ks_kernel(r, c, DriftContext())
    m, n = r.n[0], c.n
    assert np.allclose(v.pvalue, kstwobign.sf(v.statistic * np.sqrt(m * n / (m + n))),
                       rtol=1e-14)
    rc = FeatureHist("categorical", np.array([[50.0, 30, 20]]), categories=("a", "b", "c"))
    cc = FeatureHist("categorical", np.array([[40.0, 40, 20], [10, 0, 5]]),
                     categories=("a", "b", "c"))
    v = chi2_kernel(rc, cc, DriftContext())
    assert np.allclose(v.pvalue, chi2.sf(v.statistic, v.extras["df"]), rtol=1e-14)


def test_dynamic_fits_do_not_need_rows_in_score_order():
    W, L, memory, depth = 6, 2, 0.7, 9
    x, p, t, starts = _rows(W, L, 7, n=(50, 200))
    a, b = dynamic_fits(x, p, t, starts, W, L, memory, depth)
    lens = np.diff(np.append(starts, x.size))
    seg = np.repeat(np.arange(W * L), lens)
    perm = np.lexsort((np.random.default_rng(0).random(x.size), seg))  # shuffled in segments
    a2, b2 = dynamic_fits(x[perm], p[perm], t[perm], starts, W, L, memory, depth)
    assert np.allclose(a2, a, rtol=1e-11, atol=1e-13, equal_nan=True)
    assert np.allclose(b2, b, rtol=1e-11, equal_nan=True)


def test_dynamic_fits_with_predictions_of_zero_and_one():
    # logit(1e-12) and logit(1 - 1e-12): cells far from the others (clipped predictions)
    W, L, memory, depth = 4, 2, 0.7, 9
    x, p, t, starts = _rows(W, L, 8, n=(100, 200))
    x = x.copy()
    x[starts[1]] = -27.631021115928547  # first (lowest) row of window 0, level 1
    x[starts[3] - 1] = 27.631021115928547  # last (highest) row of window 1, level 0
    a, b = dynamic_fits(x, p, t, starts, W, L, memory, depth)
    ref = _reference(x, p, t, starts, W, L, memory, depth)
    assert np.isfinite(ref.a).all()
    assert np.allclose(a, ref.a, rtol=1e-10, atol=1e-12)
    assert np.allclose(b, ref.b, rtol=1e-10)
