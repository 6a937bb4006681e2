"""Label-free performance estimation for windows whose outcomes are not known yet.

Confidence-based performance estimation (CBPE; NannyML's name for it): if the model is
calibrated in the window, a case with predicted risk p is a case with probability p, so the
confusion matrix at a threshold t has the expected cells

    E[TP] = Σ_{s >= t} p,  E[FP] = Σ_{s >= t} (1 - p),  E[FN] = Σ_{s < t} p,
    E[TN] = Σ_{s < t} (1 - p),

and the estimated sensitivity is E[TP] / (E[TP] + E[FN]) (ratios of expected cells, as
NannyML), likewise specificity, PPV and NPV. The estimated AUROC is the expected number of
concordant case-control pairs over the expected number of pairs,
``[Σ_{i≠j} p_i (1 - p_j) H(s_i - s_j)] / [Σ_{i≠j} p_i (1 - p_j)]`` (H(0) = 1/2), computed from
the sorted score histogram with the self-pairs removed.

Every estimate is labelled *estimated*. Its interval is the central interval of the value the
metric would take when the outcomes are drawn from the scores (a parametric bootstrap:
``Binomial(n_row, p_row)`` events per histogram row, ``n_sim`` draws, each metric's own kernel
on the draws): under the calibration assumption the observed metric falls in it with the
stated probability. It says nothing about a miscalibrated window, hence the diagnostics the
analysis reports with it: calibration of the last labelled window (calibration-in-the-large
and slope with their intervals) and the share of cases outside the reference's support.

References
----------
.. [1] NannyML. Confidence-based performance estimation (CBPE). NannyML documentation,
   "How it works: performance estimation" (2023).
.. [2] Van Calster B, McLernon DJ, van Smeden M, Wynants L, Steyerberg EW. Calibration: the
   Achilles heel of predictive analytics. BMC Med 2019;17:230.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rwe.exceptions import InvalidParameterError

__all__ = ["ESTIMABLE_METRICS", "EstimatedValues", "estimate_performance"]

#: Metrics CBPE estimates (threshold metrics from the expected confusion matrix, and AUROC).
ESTIMABLE_METRICS = ("sensitivity", "specificity", "ppv", "npv", "accuracy", "auroc")
_CELLS = {"sensitivity": (("tp",), ("tp", "fn")), "specificity": (("tn",), ("tn", "fp")),
          "ppv": (("tp",), ("tp", "fp")), "npv": (("tn",), ("tn", "fn")),
          "accuracy": (("tp", "tn"), ("tp", "fp", "fn", "tn"))}


@dataclass(frozen=True, eq=False)
class EstimatedValues:
    """Per metric, arrays over levels: estimate, interval bounds and the expected cells."""

    metric: str
    estimate: np.ndarray
    low: np.ndarray
    high: np.ndarray
    expected: dict[str, np.ndarray]
    level: float
    n_sim: int


def _expected_cells(seg) -> dict[str, np.ndarray]:
    tot = seg.pos + seg.neg
    ep = seg.seg_moments(0)[:, 0] + seg.seg_moments(1)[:, 0]  # Σ p per segment (all rows)
    a = seg.above
    mom = seg.moments(0)[:, 0] + seg.moments(1)[:, 0]  # Σ p per row
    tp = seg.seg_sum(mom * a)
    fn = ep - tp
    n_above = seg.seg_sum(tot * a)
    fp = n_above - tp
    tn = seg.n - n_above - fn
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn}


def _expected_auroc(seg) -> np.ndarray:
    tot = seg.pos + seg.neg
    m = seg.moments(0) + seg.moments(1)  # rows: Σp, Σp², ...
    a = m[:, 0]  # expected cases per row
    b = tot - a  # expected controls per row
    self_pairs = m[:, 0] - m[:, 1]  # Σ p (1 - p) per row: a case paired with itself
    out = np.full(seg.n_segments, np.nan)
    for s in range(seg.n_segments):  # one cumulative sum per level (rows already sorted)
        lo, hi = seg.starts[s], seg.starts[s] + seg.lengths[s]
        if hi <= lo:
            continue
        aa, bb = a[lo:hi], b[lo:hi]
        below = np.cumsum(bb) - bb
        num = float((aa * (below + 0.5 * bb)).sum() - 0.5 * self_pairs[lo:hi].sum())
        den = float(aa.sum() * bb.sum() - self_pairs[lo:hi].sum())
        if den > 0:
            out[s] = num / den
    return out


def _replicate_segments(seg, n_sim: int, rng: np.random.Generator):
    """Segments of ``n_sim`` draws of the outcomes from the scores (replicate-major)."""
    from rwe.stats.summaries import Segments

    tot = (seg.pos + seg.neg).astype(np.int64)
    p = np.clip(np.asarray(seg.p, dtype=np.float64), 0.0, 1.0)
    pos = rng.binomial(np.broadcast_to(tot, (n_sim, tot.size)), p).astype(np.float64)
    neg = tot[None, :] - pos
    R = seg.n_rows
    starts = (np.arange(n_sim)[:, None] * R + seg.starts[None, :]).reshape(-1)
    above = np.tile(np.asarray(seg.above), n_sim) if seg.has_threshold else None
    return Segments(starts, neg.reshape(-1), pos.reshape(-1), exact=seg.exact, above=above,
                    p=np.tile(p, n_sim), lp=np.tile(np.asarray(seg.lp), n_sim))


def estimate_performance(seg, *, metrics=ESTIMABLE_METRICS, threshold: float,
                         confidence_level: float = 0.95, n_sim: int = 200,
                         random_state: Any = None) -> dict[str, EstimatedValues]:
    """CBPE estimates of ``metrics`` for every segment (level) of a score histogram.

    Parameters
    ----------
    seg : rwe.stats.summaries.Segments
        Score histograms of the unlabelled levels, built with ``threshold`` (labels ignored:
        every row's count is ``pos + neg``).
    metrics : sequence of str
        Among :data:`ESTIMABLE_METRICS`.
    threshold : float
        Decision threshold of the threshold metrics.
    confidence_level : float
        Probability of the interval for the realised value under calibration.
    n_sim : int
        Draws of the parametric bootstrap.
    random_state : None, int or numpy Generator

    Returns
    -------
    dict of str to EstimatedValues
    """
    from rwe.metrics import get_metric
    from rwe.metrics._registry import KernelContext

    bad = [m for m in metrics if m not in ESTIMABLE_METRICS]
    if bad:
        raise InvalidParameterError(
            f"metric {bad[0]!r} cannot be estimated without labels; estimable: "
            f"{', '.join(ESTIMABLE_METRICS)}")
    cells = _expected_cells(seg)
    rng = np.random.default_rng(random_state)
    rep = _replicate_segments(seg, n_sim, rng) if n_sim > 0 and seg.n_rows else None
    ctx = KernelContext(confidence_level=confidence_level, threshold=threshold,
                        estimate_only=True)
    a = (1 - confidence_level) / 2
    L = seg.n_segments
    out: dict[str, EstimatedValues] = {}
    for m in metrics:
        if m == "auroc":
            est = _expected_auroc(seg)
        else:
            num, den = _CELLS[m]
            with np.errstate(invalid="ignore", divide="ignore"):
                d = sum(cells[c] for c in den)
                est = np.where(d > 0, sum(cells[c] for c in num) / np.where(d > 0, d, 1), np.nan)
        lo = np.full(L, np.nan)
        hi = np.full(L, np.nan)
        if rep is not None:
            draws = get_metric(m).kernel(rep, ctx).estimate.reshape(n_sim, L)
            for i in range(L):
                v = draws[:, i][np.isfinite(draws[:, i])]
                if v.size >= max(10, n_sim // 2):
                    lo[i], hi[i] = np.quantile(v, [a, 1 - a])
        out[m] = EstimatedValues(m, est, lo, hi, cells, confidence_level, n_sim)
    return out
