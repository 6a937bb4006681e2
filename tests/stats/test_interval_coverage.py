"""Coverage of the interval methods verdicts rest on, by simulation (issue: intervals a
biostatistician would defend). Every simulation is vectorized over replicates (a replicate is
one segment or one group of the same kernel call), seeded, with enough replicates for about
+-1% Monte Carlo error: 93.5-96.5% coverage at nominal 95%, and a goal set at the truth
passes (lower bound above it) at most 2.5% of the time plus simulation error."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from rwe.metrics import get_metric
from rwe.metrics._registry import KernelContext
from rwe.stats import (
    auc_interval,
    cluster_ratio_variance,
    obuchowski_auc,
    proportion_ci,
    wilson_effective,
)
from rwe.stats.summaries import Segments

R = 4000  # Monte Carlo SE of a 95% coverage: 0.34%; of a 2.5% tail: 0.25%
FALSE_PASS_MAX = 0.025 + 2 * np.sqrt(0.025 * 0.975 / R)


def _segments_of_replicates(x: np.ndarray, y: np.ndarray) -> Segments:
    """One segment per replicate: cases ``x`` (R, m) and controls ``y`` (R, n) as exact
    histograms (one row per distinct score, ascending)."""
    r, m = x.shape
    scores = np.concatenate([x, y], axis=1)
    lab = np.concatenate([np.ones_like(x, bool), np.zeros_like(y, bool)], axis=1)
    order = np.argsort(scores, axis=1, kind="stable")
    s = np.take_along_axis(scores, order, 1)
    ll = np.take_along_axis(lab, order, 1)
    rep = np.repeat(np.arange(r), s.shape[1])
    s, ll = s.reshape(-1), ll.reshape(-1)
    new = np.r_[True, (s[1:] != s[:-1]) | (rep[1:] != rep[:-1])]
    starts_rows = np.flatnonzero(new)
    pos = np.add.reduceat(ll.astype(float), starts_rows)
    tot = np.diff(np.append(starts_rows, s.size)).astype(float)
    seg_starts = np.searchsorted(rep[starts_rows], np.arange(r))
    return Segments(seg_starts, tot - pos, pos, exact=True, p=s[starts_rows])


def _coverage(lo, hi, truth):
    ok = np.isfinite(lo) & np.isfinite(hi)
    return (np.mean((lo <= truth) & (truth <= hi)), np.mean(lo > truth), np.mean(~ok))


@pytest.mark.parametrize("m, n, auc", [(15, 45, 0.95), (15, 45, 0.80), (30, 90, 0.90),
                                       (100, 300, 0.85)])
def test_auroc_logit_t_interval_covers_where_goals_are_set(m, n, auc):
    """Binormal scores. At 15 cases / 45 controls and AUROC 0.95 the Wald DeLong interval
    covers about 83% and passes a goal set at the truth about 17% of the time."""
    rng = np.random.default_rng(20261201 + m + int(auc * 100))
    d = np.sqrt(2) * norm.ppf(auc)
    seg = _segments_of_replicates(rng.normal(d, 1, (R, m)), rng.normal(0, 1, (R, n)))
    lv = get_metric("auroc").kernel(seg, KernelContext())
    cover, false_pass, undefined = _coverage(lv.low, lv.high, auc)
    assert lv.method == "delong-logit-t"
    assert 0.935 <= cover / (1 - undefined) <= 0.965, (cover, undefined)
    assert false_pass <= FALSE_PASS_MAX, false_pass
    # where undefined (AUROC 1: perfect separation) the reason says so, and no bound exists
    edge = ~np.isfinite(lv.low)
    assert np.all(lv.estimate[edge] == 1.0) and all("perfect separation" in r
                                                   for r in lv.reason[edge])
    if (m, auc) == (15, 0.95):
        wald = get_metric("auroc").kernel(seg, KernelContext(auroc_interval="delong"))
        wcover, wfp, _ = _coverage(wald.low, wald.high, auc)
        assert wcover < 0.88 and wfp > 0.10  # the problem the default fixes


def test_a_perfectly_separated_cell_never_passes_an_auroc_goal():
    import pandas as pd

    from rwe.data import ColumnRoles, EvaluationSet
    from rwe.subgroups import subgroup_performance

    y = np.r_[np.ones(15), np.zeros(45)].astype(int)
    s = np.r_[np.linspace(0.6, 0.99, 15), np.linspace(0.01, 0.5, 45)]
    ev = EvaluationSet.from_frame(pd.DataFrame({"y": y, "s": s, "g": "a"}),
                                  ColumnRoles(scores={"1": "s"}, label="y", attributes=("g",)))
    res = subgroup_performance(ev, metrics=("auroc",), by=("g",), fairness=False, min_n=10,
                               goals=[{"metric": "auroc", "goal": 0.95}])
    v = res.verdicts[0]
    assert res.table["estimate"].iloc[0] == 1.0 and v.status == "not_evaluable"
    assert "perfect separation" in res.goals["reason"].iloc[0]


def _clustered_replicates(rng, r=R, patients=250, sd_patient=1.2, sd_scan=0.5, a=-0.6,
                          b=1.6):
    """``r`` replicates of ``patients`` patients with 1-5 scans each; disease per patient;
    score logit = a + b y + patient effect + scan noise. Returns flat row arrays with the
    replicate as the group and a global patient code, and the true scan-level sensitivity
    and AUROC (all case-control pairs are between patients)."""
    k = rng.integers(1, 6, size=(r, patients))
    rep = np.repeat(np.repeat(np.arange(r), patients), k.reshape(-1))
    pid = np.repeat(np.arange(r * patients), k.reshape(-1))
    y_p = rng.random(r * patients) < 0.3
    u = rng.normal(0, sd_patient, r * patients)
    y = y_p[pid]
    lp = a + b * y + u[pid] + rng.normal(0, sd_scan, pid.size)
    sd = np.hypot(sd_patient, sd_scan)
    true_sens = norm.cdf((a + b) / sd)  # P(lp >= 0 | case): threshold 0.5 on expit(lp)
    true_auc = norm.cdf(b / (np.sqrt(2) * sd))
    return rep, pid, y, lp, true_sens, true_auc


def test_clustered_sensitivity_interval_covers_and_the_naive_one_does_not():
    rng = np.random.default_rng(7)
    rep, pid, y, lp, true_sens, _ = _clustered_replicates(rng)
    pred = lp >= 0
    num, den = y & pred, y
    p, _, k, deff = cluster_ratio_variance(num, den, pid, rep, R)
    x = np.bincount(rep, weights=num, minlength=R)
    n = np.bincount(rep, weights=den, minlength=R)
    ci = wilson_effective(x, n, deff)
    cover, false_pass, _ = _coverage(np.asarray(ci.low), np.asarray(ci.high), true_sens)
    assert 0.935 <= cover <= 0.965, cover
    assert false_pass <= FALSE_PASS_MAX
    naive = proportion_ci(x, n)
    ncover, _, _ = _coverage(np.asarray(naive.low), np.asarray(naive.high), true_sens)
    assert ncover < 0.90 and np.median(deff) > 1.8  # rows of a patient move together


def test_clustered_auroc_interval_covers_and_the_naive_one_does_not():
    rng = np.random.default_rng(11)
    rep, pid, y, lp, _, true_auc = _clustered_replicates(rng, r=2000)
    r = 2000
    _, rank = np.unique(lp, return_inverse=True)
    auc, var, k, tpos, tneg, kpos, kneg = obuchowski_auc(y, rank, pid, rep, r)
    lo, hi, _ = auc_interval(auc, tpos, tneg, df_pos=kpos - 1, df_neg=kneg - 1)
    cover, false_pass, _ = _coverage(lo, hi, true_auc)
    assert 0.935 <= cover <= 0.965, cover
    assert false_pass <= 0.025 + 2 * np.sqrt(0.025 * 0.975 / r)
    # naive DeLong on the same rows (one segment per replicate)
    order = np.lexsort((lp, rep))
    seg = Segments(np.searchsorted(rep[order], np.arange(r)), (~y[order]).astype(float),
                   y[order].astype(float), exact=True, p=lp[order])
    lv = get_metric("auroc").kernel(seg, KernelContext())
    assert np.allclose(lv.estimate, auc, rtol=1e-12)
    ncover, _, _ = _coverage(lv.low, lv.high, true_auc)
    assert ncover < 0.90
