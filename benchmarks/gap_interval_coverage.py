"""Coverage of fairness-gap intervals (max - min of subgroup proportions), by simulation.

Not a speed benchmark: the study behind a method choice (stop note of 2026-11-23). rwe
reports the gap of a metric across a grouping's levels (``SubgroupPerformanceResult.fairness``)
with a simultaneous interval from Bonferroni-adjusted Newcombe pairwise differences (since
2026-12-01; before, a percentile bootstrap interval of max - min). This script compares the
coverage of the true gap by the simultaneous interval with the percentile, basic,
bias-corrected (BC) and fixed-observed-pair bootstrap intervals, for
binomial levels (a sensitivity per subgroup). Each level's positives are resampled
parametrically, which is what the Poisson bootstrap does to a level's counts in
distribution. Results are in benchmarks/README.md.

    .venv/bin/python benchmarks/gap_interval_coverage.py [--datasets 4000] [--boot 1000]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.stats import norm


def coverage(n, p, *, datasets: int, boot: int, level: float = 0.95, seed: int = 1) -> dict:
    """Coverage of the true gap ``max(p) - min(p)`` by four bootstrap intervals."""
    rng = np.random.default_rng(seed)
    n = np.asarray(n)
    p = np.asarray(p, dtype=float)
    a = (1 - level) / 2
    theta = p.max() - p.min()
    ph = rng.binomial(n, p, size=(datasets, len(n))) / n
    est = ph.max(1) - ph.min(1)
    rep = rng.binomial(n, ph[:, None, :], size=(datasets, boot, len(n))) / n
    rng_ = rep.max(2) - rep.min(2)  # the range in each replicate (what rwe reports)

    def covers(lo, hi):
        return float(np.mean((lo <= theta) & (theta <= hi)))

    lo, hi = np.quantile(rng_, [a, 1 - a], axis=1)
    # bias-corrected percentile (Efron 1981): z0 from the share of replicates below the estimate
    z0 = norm.ppf(np.clip(np.mean(rng_ < est[:, None], axis=1), 1 / boot, 1 - 1 / boot))
    q_lo, q_hi = norm.cdf(2 * z0 + norm.ppf(a)), norm.cdf(2 * z0 + norm.ppf(1 - a))
    srt = np.sort(rng_, axis=1)
    idx = np.arange(datasets)
    bc_lo = srt[idx, np.minimum((q_lo * boot).astype(int), boot - 1)]
    bc_hi = srt[idx, np.minimum((q_hi * boot).astype(int), boot - 1)]
    # the difference of the two levels observed at the extremes, resampled as a fixed pair
    i, j = ph.argmax(1), ph.argmin(1)
    diff = rep[idx, :, i] - rep[idx, :, j]
    f_lo, f_hi = np.quantile(diff, [a, 1 - a], axis=1)
    s_lo, s_hi = simultaneous(n, ph, level)
    return {"gap": theta, "mean_estimate": float(est.mean()),
            "simultaneous": covers(s_lo, s_hi),
            "simultaneous_contains_estimate": float(np.mean((s_lo <= est) & (est <= s_hi))),
            "simultaneous_width": float(np.mean(s_hi - s_lo)),
            "percentile": covers(lo, hi), "estimate_below_interval": float(np.mean(est < lo)),
            "percentile_width": float(np.mean(hi - lo)),
            "basic": covers(np.maximum(2 * est - hi, 0), 2 * est - lo),
            "bc": covers(bc_lo, bc_hi),
            "fixed_pair": covers(f_lo, f_hi), "fixed_pair_width": float(np.mean(f_hi - f_lo))}


def simultaneous(n, ph, level):
    """rwe's gap interval: Newcombe's hybrid score interval for every ordered pair of levels
    at level 1 - alpha / C(k, 2), gap interval [max(0, max L), max U] (rwe.subgroups)."""
    from rwe.stats import proportion_ci

    k = ph.shape[1]
    alpha = (1 - level) / (k * (k - 1) / 2)
    nn = np.broadcast_to(np.asarray(n, dtype=float), ph.shape)
    ci = proportion_ci(ph * nn, nn, confidence_level=1 - alpha)
    lo, hi = np.asarray(ci.low), np.asarray(ci.high)
    d = ph[:, :, None] - ph[:, None, :]
    low = d - np.sqrt((ph - lo)[:, :, None] ** 2 + (hi - ph)[:, None, :] ** 2)
    high = d + np.sqrt((hi - ph)[:, :, None] ** 2 + (ph - lo)[:, None, :] ** 2)
    off = ~np.eye(k, dtype=bool)
    return (np.maximum(0, low[:, off].max(1)), high[:, off].max(1))


SCENARIOS = {
    "race-like levels (positives 7500, 700, 40, 600, 380, 15)": (
        [7500, 700, 40, 600, 380, 15],
        [[0.81, 0.78, 0.75, 0.80, 0.77, 0.70], [0.80] * 6, [0.85, 0.80, 0.80, 0.80, 0.80, 0.60]]),
    "equal levels (positives 400 x 4)": (
        [400] * 4, [[0.80] * 4, [0.82, 0.80, 0.78, 0.76], [0.9, 0.8, 0.8, 0.7]]),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=int, default=4000)
    ap.add_argument("--boot", type=int, default=1000)
    args = ap.parse_args()
    for title, (n, ps) in SCENARIOS.items():
        print(title)
        for p in ps:
            r = coverage(n, p, datasets=args.datasets, boot=args.boot)
            print(f"  true gap {r['gap']:.3f} (mean estimate {r['mean_estimate']:.3f}): "
                  f"simultaneous {r['simultaneous']:.3f} (contains estimate "
                  f"{r['simultaneous_contains_estimate']:.3f}, width "
                  f"{r['simultaneous_width']:.3f}), percentile {r['percentile']:.3f} (estimate below it "
                  f"{r['estimate_below_interval']:.3f}, width {r['percentile_width']:.3f}), "
                  f"basic {r['basic']:.3f}, BC {r['bc']:.3f}, fixed pair "
                  f"{r['fixed_pair']:.3f} (width {r['fixed_pair_width']:.3f})")


if __name__ == "__main__":
    main()
