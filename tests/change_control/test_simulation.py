"""Simulation checks of the approval rule (issue 18, part 7): seeded, vectorized over
replicates, enough of them for a Monte Carlo standard error of about 1 % or less.

* Truly worse by exactly the margin: the approval rate is at most alpha (within simulation
  error), for the paired tests change control uses (Tango, Newcombe, paired DeLong).
* Truly better: the power, against its normal approximation.
* A sequence of slightly worse updates: comparing with every approved version keeps the
  cumulative loss within the margin; comparing only with the last version does not
  (bio-creep; Feng, Emerson & Simon 2021). Checked end to end through the ledger as well.

Measured (seeds below; alpha = 0.025): approval rate at the margin 0.0238 (Tango, 400 cases,
40,000 replicates), 0.0255 (Newcombe), 0.0232 (paired DeLong, 300 cases and 450 controls,
AUROC 0.75 vs 0.70; 0.0246 with 20,000 replicates), and about 0.03 for DeLong with 150 cases
at AUROC 0.89 (the Wald interval is slightly liberal there; 0.026 with 1000 cases); power 0.879 (Tango, true gain 0.02, margin 0.05, 250 cases) against 0.893 by the
normal approximation; after 6 updates each 0.025 worse than the last, the version in use is
more than the margin below the original in 0 % of 2,500 sequences with the guard and in 76 %
with the last-version rule.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

from rwe.stats import delong_test, paired_difference_ci

ALPHA = 0.025
MARGIN = 0.05


def _paired_tables(rng, n_rep, n, p12, p21):
    """Multinomial paired tables (a, b, c, d) with P(b) = p12, P(c) = p21: true difference
    p1 - p2 = p12 - p21."""
    p11 = (1 - p12 - p21) * 0.8
    cells = rng.multinomial(n, [p11, p12, p21, 1 - p11 - p12 - p21], size=n_rep)
    return cells.T


def _approve(tables, method):
    ci = paired_difference_ci(*tables, confidence_level=1 - 2 * ALPHA, method=method)
    return ci.low > -MARGIN


def _mc_bound(p, n_rep):
    return p + 3 * np.sqrt(p * (1 - p) / n_rep)


@pytest.mark.parametrize("method", ["tango", "newcombe"])
def test_approval_rate_at_exactly_the_margin_is_at_most_alpha(method):
    n_rep = 40_000  # Monte Carlo SE of a rate near 0.025: 0.0008
    rng = np.random.default_rng(20261123)
    tables = _paired_tables(rng, n_rep, 400, p12=0.05, p21=0.05 + MARGIN)
    rate = _approve(tables, method).mean()
    assert rate <= _mc_bound(ALPHA, n_rep), rate
    assert rate > 0.01  # the test is not trivially conservative


def _delong_low(y, cand, ref):
    """Lower bounds of the paired DeLong interval of ``cand - ref`` for many replicate score
    matrices sharing the labels ``y``: the placements of :func:`rwe.stats.delong_test`
    (``rwe.stats._delong._placements``), vectorized over the rows."""
    from rwe.stats._delong import _placements

    m, n = int(y.sum()), int((~y).sum())
    a1, v10c, v01c = _placements(y, cand)
    a0, v10r, v01r = _placements(y, ref)
    var = (v10c - v10r).var(1, ddof=1) / m + (v01c - v01r).var(1, ddof=1) / n
    return a1 - a0 - special.ndtri(1 - ALPHA) * np.sqrt(var)


def _auroc_rate(m, n, n_rep, seed, mu=1.8, s_ref=0.3):
    """Binormal scores sharing a latent value: cases X ~ N(mu, 1), controls N(0, 1); version
    k scores X + e_k, e_k ~ N(0, s_k^2), so AUC_k = Phi(mu / sqrt(2 (1 + s_k^2))). s_cand is
    chosen so that AUC_cand = AUC_ref - margin exactly."""
    auc_ref = special.ndtr(mu / np.sqrt(2 * (1 + s_ref ** 2)))
    s_cand = np.sqrt((mu / special.ndtri(auc_ref - MARGIN)) ** 2 / 2 - 1)
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(m, bool), np.zeros(n, bool)]
    out = []
    for start in range(0, n_rep, 1000):
        r = min(1000, n_rep - start)
        x = rng.normal(size=(r, m + n)) + mu * y
        out.append(_delong_low(y, x + rng.normal(0, s_cand, x.shape),
                               x + rng.normal(0, s_ref, x.shape)) > -MARGIN)
    return np.concatenate(out).mean()


def test_auroc_approval_rate_at_exactly_the_margin_is_at_most_alpha():
    n_rep = 6000  # Monte Carlo SE near 0.025: 0.002
    rate = _auroc_rate(300, 450, n_rep, seed=7, mu=1.0)  # AUROC 0.75 vs 0.70
    assert rate <= _mc_bound(ALPHA, n_rep), rate
    assert rate > 0.01
    # the engine's paired DeLong is these placements: one replicate through delong_test
    rng = np.random.default_rng(1)
    y = np.r_[np.ones(50, bool), np.zeros(70, bool)]
    c, r = rng.normal(size=120) + y, rng.normal(size=120) + y
    assert _delong_low(y, c[None], r[None])[0] == pytest.approx(
        delong_test(y, c, r, confidence_level=1 - 2 * ALPHA).ci.low, rel=1e-12)


def test_auroc_is_slightly_liberal_with_few_cases_and_a_high_auc():
    """A property of the Wald interval worth knowing, measured rather than hidden: with 150
    cases and 250 controls at AUROC 0.89 the approval rate at the margin is about 0.03 for a
    nominal 0.025 (it is 0.026 with 1000 cases, and at AUROC 0.75). Protocols for small test
    sets should lower alpha or use larger ones."""
    n_rep = 8000
    rate = _auroc_rate(150, 250, n_rep, seed=8)
    assert 0.025 < rate < 0.036, rate


def test_power_when_truly_better():
    n_rep, n = 20_000, 250  # Monte Carlo SE of the power: 0.0023
    p12, p21 = 0.07, 0.05  # true gain 0.02
    rng = np.random.default_rng(3)
    power = _approve(_paired_tables(rng, n_rep, n, p12, p21), "tango").mean()
    delta = p12 - p21
    se = np.sqrt((p12 + p21 - delta ** 2) / n)
    approx = stats.norm.cdf((delta + MARGIN) / se - stats.norm.ppf(1 - ALPHA))
    assert abs(power - approx) < 0.025, (power, approx)
    assert 0.85 < power < 0.92


def _sequence(rng, n_rep, n_updates, n, step, guard):
    """Successive updates each truly ``step`` worse than the last one proposed; a fresh test
    set of ``n`` cases per update. Correctness of version k on a case: with probability 0.8
    the nested rule U > 1 - acc_k (versions agree where they can), else an independent
    Bernoulli(acc_k) (drawn anew for each pair compared: the pairs share U and the mixing),
    so P(correct) = acc_k exactly. Approve when the Tango lower bound beats
    -margin against the last approved version, or (guard) against every approved one."""
    acc = 0.85 - step * np.arange(n_updates + 1)
    approved = np.zeros((n_rep, n_updates + 1), bool)
    approved[:, 0] = True  # the original
    current = np.zeros(n_rep, dtype=np.int64)
    for k in range(1, n_updates + 1):
        u = rng.random((n_rep, n), dtype=np.float32)
        mix = rng.random((n_rep, n), dtype=np.float32) < 0.2
        cand = np.where(mix, rng.random((n_rep, n), dtype=np.float32) < acc[k],
                        u > 1 - acc[k])
        ok = np.ones(n_rep, bool)
        for j in range(k):
            use = approved[:, j] if guard else current == j
            ref = np.where(mix, rng.random((n_rep, n), dtype=np.float32) < acc[j],
                           u > 1 - acc[j])
            both = (cand & ref).sum(1)
            c_only = cand.sum(1) - both
            r_only = ref.sum(1) - both
            tab = [both, c_only, r_only, n - both - c_only - r_only]
            lo = paired_difference_ci(*tab, confidence_level=1 - 2 * ALPHA).low
            ok &= ~use | (lo > -MARGIN)
        approved[:, k] = ok
        current = np.where(ok, k, current)
    return acc[0] - acc[current]  # true loss of the version in use at the end


def test_bio_creep_guard_keeps_the_cumulative_loss_within_the_margin():
    n_rep = 2500  # Monte Carlo SE of the rates: at most 0.01
    rng = np.random.default_rng(99)
    guard = _sequence(rng, n_rep, 6, 1500, MARGIN / 2, guard=True)
    last = _sequence(rng, n_rep, 6, 1500, MARGIN / 2, guard=False)
    bad_guard = (guard > MARGIN + 1e-9).mean()
    bad_last = (last > MARGIN + 1e-9).mean()
    # the guard: a version more than the margin below the original is approved only by a
    # false non-inferiority claim against the original (probability at most alpha per try)
    assert bad_guard <= _mc_bound(ALPHA, n_rep), bad_guard
    # the last-version rule lets the losses add up
    assert bad_last > 0.6, bad_last
    assert last.mean() > 2 * MARGIN > guard.mean()


def test_bio_creep_end_to_end_through_the_ledger(tmp_path):
    """Three successive candidates, each about 0.012 AUROC below the one before (margin 0.02):
    with the guard (the default) the second is rejected because it is 0.024 below the
    original, although it is non-inferior to the current version; with a rule that compares
    only with the current version, it is approved and the loss accumulates."""
    from cc_helpers import evset

    from rwe.change_control import APPROVE, REJECT, compare_models

    ev = evset(40_000, seed=5, versions={"1.0": 0.60, "1.1": 0.69, "1.2": 0.77})
    common = dict(current="1.0", threshold=0.5, cluster="none")
    guard, last = tmp_path / "guard.jsonl", tmp_path / "last.jsonl"
    g1 = compare_models(ev, candidate="1.1", margins={"auroc": 0.02}, ledger=guard, **common)
    g2 = compare_models(ev, candidate="1.2", margins={"auroc": 0.02}, ledger=guard, **common)
    crit = [{"metric": "auroc", "margin": 0.02, "against": "current", "scope": "overall"}]
    l1 = compare_models(ev, candidate="1.1", criteria=crit, ledger=last, **common)
    l2 = compare_models(ev, candidate="1.2", criteria=crit, ledger=last, **common)
    assert g1.verdict == l1.verdict == APPROVE
    t = g2.table.set_index("comparator")
    assert t.loc["1.1", "status"] == "pass" and t.loc["1.0", "status"] == "fail"
    assert g2.verdict == REJECT
    assert l2.verdict == APPROVE
    cum = l2.cumulative.set_index("version")
    assert cum.loc["1.2", "improvement_vs_original"] < -0.02  # past the margin: bio-creep
