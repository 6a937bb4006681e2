"""Mergeable per-cell score summaries and the summary-level Poisson bootstrap.

A :class:`ScoreSummary` holds, for every cell (a subgroup cell, a site, a Dask partition...),
the number of cases and controls falling in each score bin. Summaries of disjoint row sets
merge by addition (``a + b`` / :meth:`ScoreSummary.merge`), so one machine, a Dask cluster
(one summary per partition) and a federation of sites (one summary per site) reach identical
numbers (DESIGN.md principles 3-4).

Resolution and error bounds
---------------------------
* The decision threshold is made a bin edge, so every threshold metric (sensitivity,
  specificity, PPV, NPV, FPR, accuracy) computed from a summary is **exact**.
* AUROC from a summary counts a case and a control that fall in the same bin as a tie (1/2).
  Pairs in different bins are ordered exactly, hence the deterministic bound

  .. math:: |\\hat A_{binned} - \\hat A_{exact}| \\le \\tfrac12 \\sum_b p_b n_b / (P N),

  where :math:`p_b, n_b` are the cases and controls in bin ``b``: only same-bin pairs can be
  scored differently, and each by at most 1/2. :meth:`ScoreSummary.auroc` returns it.

Bootstrap on summaries
----------------------
In the Poisson bootstrap [1]_ [2]_ every row receives an independent Poisson(1) weight. The
sum of ``c`` independent Poisson(1) variables is Poisson(``c``), so drawing one Poisson(c)
count per (replicate, cell, label, bin) gives *exactly* the distribution of the per-row
Poisson bootstrap of any statistic that is a function of the binned counts (all threshold
metrics exactly; AUROC at the stated resolution). The cost is independent of the number of
rows. With repeated rows per patient the row weights are not independent; the cluster
bootstrap then draws one Poisson(1) weight per patient and maps them onto the bins through a
sparse patient x bin count matrix (:func:`poisson_bootstrap_counts` with ``clusters``;
:func:`poisson1_weights` is an exact table sampler for those weights). The count array can
be any set of disjoint cells x 2 labels x bins: :mod:`rwe.subgroups` passes the levels of
each grouping (linear in the number of levels), not the joint cells of all attributes.

References
----------
.. [1] Hanley, J. A. and MacGibbon, B. (2006). Creating non-parametric bootstrap samples
   using Poisson frequencies. Computer Methods and Programs in Biomedicine 83(1):57-62.
.. [2] Chamandy, N., Muralidharan, O., Najmi, A. and Naidu, S. (2012). Estimating
   uncertainty for massive data streams. Google Technical Report.
.. [3] DeLong, E. R., DeLong, D. M. and Clarke-Pearson, D. L. (1988). Comparing the areas
   under two or more correlated receiver operating characteristic curves: a nonparametric
   approach. Biometrics 44(3):837-845.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rwe._validation import check_int, check_real
from rwe.exceptions import InvalidParameterError

__all__ = [
    "ScoreSummary",
    "CellHistogram",
    "score_bin_edges",
    "bin_scores",
    "summarize_scores",
    "poisson_bootstrap_counts",
    "poisson1_weights",
    "binned_metrics",
    "binned_jackknife",
    "bca_from_jackknife",
    "DEFAULT_N_BINS",
]

DEFAULT_N_BINS = 2048
MSG_INCOMPATIBLE = ("summaries can only be merged when their bin edges, threshold and cells are "
                    "identical; got {what} that differ")


def score_bin_edges(n_bins: int = DEFAULT_N_BINS, threshold: float | None = 0.5) -> np.ndarray:
    """Uniform-width bin edges on [0, 1] with ``threshold`` inserted as an edge.

    Returns ``n_bins + 1`` edges, or ``n_bins + 2`` when the threshold is not already a grid
    point (the bin that contains it is split in two).
    """
    n_bins = check_int(n_bins, "n_bins", minimum=2)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    if threshold is not None:
        t = check_real(threshold, "threshold", low=0.0, high=1.0)
        if not np.isclose(edges, t, rtol=0, atol=0).any():
            edges = np.sort(np.append(edges, t))
    return edges


def bin_scores(y_score: np.ndarray, n_bins: int, threshold: float | None) -> np.ndarray:
    """Bin index of each score for :func:`score_bin_edges` ``(n_bins, threshold)`` (int32).

    Uses arithmetic (``floor(score * n_bins)``) rather than a search, then shifts the bins at
    and above the threshold by one when the threshold splits a bin, so that
    ``bin >= threshold_bin`` if and only if ``score >= threshold`` (exactly).
    """
    s = np.asarray(y_score, dtype=np.float64)
    b = (s * n_bins).astype(np.int32)  # scores in [0, 1]; floor for non-negative values
    np.clip(b, 0, n_bins - 1, out=b)
    if threshold is not None and not float(threshold * n_bins).is_integer():
        b += s >= threshold
    elif threshold is not None:
        # threshold is a grid edge k/n_bins: enforce the exact comparison at the boundary
        k = int(round(threshold * n_bins))
        lo = (b >= k) & (s < threshold)
        b[lo] = k - 1
        hi = (b < k) & (s >= threshold)
        b[hi] = k
    return b


def _threshold_bin(edges: np.ndarray, threshold: float | None) -> int | None:
    if threshold is None:
        return None
    return int(np.flatnonzero(edges == threshold)[0])


@dataclass(frozen=True, eq=False)
class ScoreSummary:
    """Counts of controls and cases per cell and score bin; merges by addition.

    Attributes
    ----------
    counts : ndarray of shape (n_cells, 2, n_bins), int64
        ``counts[c, 0, b]`` controls and ``counts[c, 1, b]`` cases of cell ``c`` in bin ``b``.
    edges : ndarray
        Bin edges (``n_bins + 1``); the threshold is one of them.
    threshold : float or None
        Decision threshold (predicted positive when ``score >= threshold``).
    cells : tuple of str
        Cell labels.
    """

    counts: np.ndarray
    edges: np.ndarray
    threshold: float | None
    cells: tuple[str, ...]
    threshold_bin: int | None = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "threshold_bin", _threshold_bin(self.edges, self.threshold))

    # ------------------------------------------------------------------ merging
    def _check_compatible(self, other: ScoreSummary) -> None:
        if not isinstance(other, ScoreSummary):
            raise InvalidParameterError(
                f"other must be a ScoreSummary, got {type(other).__name__}")
        for what, a, b in (("edges", self.edges, other.edges), ("cells", self.cells, other.cells),
                           ("threshold", self.threshold, other.threshold)):
            if what == "edges":
                same = a.shape == b.shape and np.array_equal(a, b)
            else:
                same = a == b
            if not same:
                raise InvalidParameterError(MSG_INCOMPATIBLE.format(what=what))

    def merge(self, *others: ScoreSummary) -> ScoreSummary:
        """Sum of this summary and ``others`` (summaries of disjoint row sets)."""
        counts = self.counts.copy()
        for o in others:
            self._check_compatible(o)
            counts += o.counts
        return ScoreSummary(counts, self.edges, self.threshold, self.cells)

    def __add__(self, other: ScoreSummary) -> ScoreSummary:
        return self.merge(other)

    # ------------------------------------------------------------------ shape
    @property
    def n_bins(self) -> int:
        return int(self.counts.shape[-1])

    @property
    def n(self) -> np.ndarray:
        return self.counts.sum(axis=(1, 2))

    @property
    def events(self) -> np.ndarray:
        return self.counts[:, 1, :].sum(axis=1)

    def aggregate(self, mapping: np.ndarray, labels: Sequence[str]) -> ScoreSummary:
        """Sum cells into coarser cells: cell ``c`` goes to ``mapping[c]`` (-1 = dropped)."""
        mapping = np.asarray(mapping)
        out = np.zeros((len(labels),) + self.counts.shape[1:], dtype=self.counts.dtype)
        keep = mapping >= 0
        np.add.at(out, mapping[keep], self.counts[keep])
        return ScoreSummary(out, self.edges, self.threshold, tuple(labels))

    # ------------------------------------------------------------------ statistics
    def confusion(self) -> pd.DataFrame:
        """Exact TP, FN, FP, TN per cell at the threshold."""
        if self.threshold_bin is None:
            raise InvalidParameterError("this summary has no threshold (threshold=None)")
        tp, fn, fp, tn = _confusion(self.counts, self.threshold_bin)
        return pd.DataFrame({"cell": list(self.cells), "tp": tp, "fn": fn, "fp": fp, "tn": tn})

    def auroc(self) -> pd.DataFrame:
        """Binned AUROC per cell with its deterministic error bound (see module notes)."""
        auc, bound = _binned_auc(self.counts.astype(np.float64))
        return pd.DataFrame({"cell": list(self.cells), "auroc": auc, "error_bound": bound})

    def to_frame(self) -> pd.DataFrame:
        """Tidy counts (cell, label, bin, lower edge, count), non-zero bins only."""
        c, lab, b = np.nonzero(self.counts)
        return pd.DataFrame({"cell": np.asarray(self.cells, dtype=object)[c], "label": lab,
                             "bin": b, "bin_low": self.edges[b],
                             "count": self.counts[c, lab, b]})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready sparse representation (what a site ships to the coordinator)."""
        c, lab, b = np.nonzero(self.counts)
        return {"cells": list(self.cells), "threshold": self.threshold,
                "edges": self.edges.tolist(), "index": np.stack([c, lab, b]).T.tolist(),
                "count": self.counts[c, lab, b].tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ScoreSummary:
        edges = np.asarray(d["edges"], dtype=np.float64)
        counts = np.zeros((len(d["cells"]), 2, len(edges) - 1), dtype=np.int64)
        idx = np.asarray(d["index"], dtype=np.int64).reshape(-1, 3)
        counts[idx[:, 0], idx[:, 1], idx[:, 2]] = np.asarray(d["count"], dtype=np.int64)
        return cls(counts, edges, d["threshold"], tuple(d["cells"]))


#: Alias: a ScoreSummary is a per-cell x label x score-bin histogram.
CellHistogram = ScoreSummary


def summarize_scores(y_true: Any, y_score: Any, cells: Any = None, *, n_bins: int = DEFAULT_N_BINS,
                     threshold: float | None = 0.5,
                     cell_labels: Sequence[str] | None = None) -> ScoreSummary:
    """Build a :class:`ScoreSummary` with one ``np.bincount`` on combined integer codes.

    Parameters
    ----------
    y_true : array_like of bool or {0, 1}
    y_score : array_like of float in [0, 1]
    cells : array_like of int, optional
        Cell code per row (0..k-1; negative codes are dropped). Default: one cell.
    n_bins : int
        Uniform bins on [0, 1] (the threshold adds one edge). Default 2048.
    threshold : float or None
        Decision threshold, made a bin edge so that threshold metrics are exact.
    cell_labels : sequence of str, optional
    """
    y = np.asarray(y_true).astype(bool, copy=False)
    s = np.asarray(y_score, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise InvalidParameterError(
            f"y_true and y_score must be 1-d of equal length, got {y.shape} and {s.shape}")
    if s.size and (np.nanmin(s) < 0 or np.nanmax(s) > 1 or np.isnan(s).any()):
        raise InvalidParameterError("y_score must lie in [0, 1] without NaN")
    edges = score_bin_edges(n_bins, threshold)
    nb = len(edges) - 1
    b = bin_scores(s, n_bins, threshold)
    if cells is None:
        code = b.astype(np.int64) + y * nb
        k = 1
    else:
        cells = np.asarray(cells)
        k = int(cells.max()) + 1 if cells.size else 0
        keep = cells >= 0
        code = (cells.astype(np.int64) * 2 + y) * nb + b
        if not keep.all():
            code = code[keep]
    counts = np.bincount(code, minlength=k * 2 * nb).reshape(k, 2, nb)
    labels = tuple(cell_labels) if cell_labels is not None else tuple(str(i) for i in range(k))
    if len(labels) != k:
        raise InvalidParameterError(
            f"cell_labels must have {k} entries (one per cell code), got {len(labels)}")
    return ScoreSummary(counts.astype(np.int64), edges, threshold, labels)


# ---------------------------------------------------------------------- vectorized kernels
def _confusion(counts: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    neg, pos = counts[..., 0, :], counts[..., 1, :]
    tp = pos[..., k:].sum(-1)
    fn = pos[..., :k].sum(-1)
    fp = neg[..., k:].sum(-1)
    tn = neg[..., :k].sum(-1)
    return tp, fn, fp, tn


def _binned_auc(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUROC (ties within a bin = 1/2) and error bound over the last axis of ``(..., 2, bins)``."""
    neg, pos = counts[..., 0, :], counts[..., 1, :]
    P = pos.sum(-1)
    N = neg.sum(-1)
    cneg = np.cumsum(neg, axis=-1) - neg  # controls strictly below each bin
    num = (pos * (cneg + 0.5 * neg)).sum(-1)
    same = (pos * neg).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = P * N
        auc = np.where(denom > 0, num / np.where(denom > 0, denom, 1), np.nan)
        bound = np.where(denom > 0, 0.5 * same / np.where(denom > 0, denom, 1), np.nan)
    return auc, bound


def binned_metrics(counts: np.ndarray, threshold_bin: int,
                   metrics: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Threshold metrics (exact) and binned AUROC for counts of shape ``(..., 2, bins)``.

    Undefined ratios (0/0) are NaN. ``metrics`` restricts the output to those names
    (default: all of ``sensitivity, specificity, ppv, npv, fpr, fnr, accuracy, auroc``); the
    threshold metrics only need the bins on either side of ``threshold_bin``, so counts
    with two bins (below / at or above the threshold, ``threshold_bin=1``) suffice for them.
    """
    names = _BINNED_METRICS if metrics is None else tuple(metrics)
    bad = [m for m in names if m not in _BINNED_METRICS]
    if bad:
        raise InvalidParameterError(
            f"metrics={bad!r} are not binned metrics; choose from: {', '.join(_BINNED_METRICS)}")
    counts = np.asarray(counts, dtype=np.float64)
    out: dict[str, np.ndarray] = {}
    if any(m != "auroc" for m in names):
        tp, fn, fp, tn = _confusion(counts, threshold_bin)
        with np.errstate(invalid="ignore", divide="ignore"):
            for m in names:
                if m == "sensitivity":
                    out[m] = tp / (tp + fn)
                elif m == "specificity":
                    out[m] = tn / (tn + fp)
                elif m == "ppv":
                    out[m] = tp / (tp + fp)
                elif m == "npv":
                    out[m] = tn / (tn + fn)
                elif m == "fpr":
                    out[m] = fp / (tn + fp)
                elif m == "fnr":
                    out[m] = fn / (tp + fn)
                elif m == "accuracy":
                    out[m] = (tp + tn) / (tp + fn + fp + tn)
    if "auroc" in names:
        out["auroc"], _ = _binned_auc(counts)
    return {m: out[m] for m in names}


_BINNED_METRICS = ("sensitivity", "specificity", "ppv", "npv", "fpr", "fnr", "accuracy",
                   "auroc")


def _poisson1_tables(bits: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Poisson(1) CDF and a ``2**bits``-cell inverse-CDF lookup table (255 = cell straddles)."""
    import math

    pmf = [math.exp(-1.0)]
    while True:
        pmf.append(pmf[-1] / len(pmf))
        cdf = np.cumsum(pmf)
        if cdf[-1] >= 1.0:
            break
    cdf = np.minimum(cdf, 1.0)
    cells = 1 << bits
    lo = np.searchsorted(cdf, np.arange(cells) / cells, side="right")
    hi = np.searchsorted(cdf, np.arange(1, cells + 1) / cells, side="left")
    return cdf, np.where(lo == hi, lo, 255).astype(np.uint8)


_P1_CDF, _P1_TABLE = _poisson1_tables()


def poisson1_weights(rng: np.random.Generator, shape: int | tuple[int, ...]) -> np.ndarray:
    """Independent Poisson(1) draws (uint8) by table inverse-CDF sampling.

    ``X = #{k : F(k) <= U}`` with ``U`` uniform on [0, 1) and ``F`` the Poisson(1) CDF, which
    is Poisson(1) exactly (up to the float64 rounding of ``F``). ``U``'s top 16 bits index a
    2^16-cell table that holds ``X`` for the cells containing no CDF step; in the few cells
    that straddle a step (8 of 65536) ``U`` is completed with a fresh uniform inside the cell
    (its conditional distribution) and ``X`` found by search. About 8x faster than
    ``Generator.poisson(1.0)`` (this is the cost of the patient-level cluster bootstrap).
    Deterministic for a seeded generator; a different stream from ``Generator.poisson``.
    """
    size = int(np.prod(shape))
    j = rng.integers(0, 1 << 16, size=size, dtype=np.uint16)
    w = _P1_TABLE[j]  # fancy indexing: much faster than take() with uint16 indices
    fix = np.flatnonzero(w == 255)
    if fix.size:
        u = (j[fix] + rng.random(fix.size)) / 65536.0
        u = np.minimum(u, np.nextafter((j[fix] + 1.0) / 65536.0, 0))
        w[fix] = np.searchsorted(_P1_CDF, u, side="right")
    return w.reshape(shape)


def poisson_bootstrap_counts(summary_or_counts: ScoreSummary | np.ndarray, n_boot: int, *,
                             random_state: Any = None, chunk: int | None = None,
                             codes: np.ndarray | None = None,
                             clusters: np.ndarray | None = None, sampler: str = "numpy"):
    """Yield chunks of bootstrap replicate counts, shape ``(r, *counts.shape)``.

    Without ``clusters``: each replicate count is ``Poisson(count)`` drawn independently per
    (cell, label, bin), which equals the per-row Poisson(1) bootstrap in distribution (sum of
    independent Poisson(1) weights). Only non-empty bins are drawn.

    With ``clusters`` (one int code per row) and ``codes`` (the flat bin code per row, as in
    :func:`summarize_scores`): one Poisson(1) weight per cluster and replicate; the replicate
    counts are ``W @ M`` where ``M`` is the sparse cluster x bin count matrix (the patient-level
    cluster bootstrap, vectorized).

    Parameters
    ----------
    n_boot : int
    random_state : None, int or numpy Generator
    chunk : int, optional
        Replicates per chunk (bounds memory); default keeps a chunk near 2**25 numbers.
    sampler : {"numpy", "table"}
        Cluster weights from ``Generator.poisson(1.0)``, drawn as ``(r, clusters)``, or from
        :func:`poisson1_weights` (exact table inverse-CDF, about 8x faster), drawn as
        ``(clusters, r)``: a different random stream, the same distribution.
    """
    n_boot = check_int(n_boot, "n_boot", minimum=1)
    if sampler not in ("numpy", "table"):
        raise InvalidParameterError(f"sampler must be 'numpy' or 'table', got {sampler!r}")
    rng = np.random.default_rng(random_state)
    counts = summary_or_counts.counts if isinstance(summary_or_counts, ScoreSummary) \
        else np.asarray(summary_or_counts)
    shape = counts.shape
    flat = counts.reshape(-1)
    if clusters is None:
        nz = np.flatnonzero(flat)
        lam = flat[nz].astype(np.float64)
        size = max(1, len(nz))
        chunk = chunk or max(1, min(n_boot, (1 << 25) // size))
        done = 0
        while done < n_boot:
            r = min(chunk, n_boot - done)
            out = np.zeros((r, flat.size), dtype=np.float64)
            out[:, nz] = rng.poisson(lam, size=(r, len(nz)))
            yield out.reshape((r,) + shape)
            done += r
        return
    from scipy import sparse

    if codes is None:
        raise InvalidParameterError("codes (flat bin code per row) is required with clusters")
    clusters = np.asarray(clusters)
    codes = np.asarray(codes)
    keep = codes >= 0
    cl, cl_codes = np.unique(clusters, return_inverse=True)
    n_cl = len(cl)
    # compress the flat code space to the non-empty codes
    used, col = np.unique(codes[keep], return_inverse=True)
    m = sparse.csr_matrix((np.ones(col.size), (cl_codes[keep], col)), shape=(n_cl, len(used)))
    m.sum_duplicates()
    chunk = chunk or max(1, min(n_boot, (1 << 24) // max(n_cl, len(used))))
    done = 0
    while done < n_boot:
        r = min(chunk, n_boot - done)
        if sampler == "table":
            # drawn cluster-major, (clusters, r): the contiguous right-hand side of the
            # sparse product (no transposed copy)
            w = poisson1_weights(rng, (n_cl, r)).astype(np.float64)
            rep = (m.T @ w).T  # (r, used); m.T is CSC, which streams the rows of w
        else:
            w = rng.poisson(1.0, size=(r, n_cl)).astype(np.float64)
            rep = np.asarray((m.T @ w.T).T)  # (r, used)
        out = np.zeros((r, flat.size), dtype=np.float64)
        out[:, used] = rep
        yield out.reshape((r,) + shape)
        done += r


#: Jackknife indicator masks per threshold metric: deleting one row of (label, bin) lowers the
#: numerator by ``num`` and the denominator by ``den`` (label 0 = control, 1 = case;
#: ``above`` = bin at or above the threshold).
def _jack_masks(metric: str, above: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    below = ~above
    z = np.zeros_like(above)
    o = np.ones_like(above)
    table = {
        "sensitivity": ((z, above), (z, o)),
        "fnr": ((z, below), (z, o)),
        "specificity": ((below, z), (o, z)),
        "fpr": ((above, z), (o, z)),
        "ppv": ((z, above), (above, above)),
        "npv": ((below, z), (below, below)),
        "accuracy": ((below, above), (o, o)),
    }
    if metric not in table:
        raise InvalidParameterError(
            f"metric={metric!r} has no binned jackknife; choose one of: "
            f"{', '.join([*table, 'auroc'])}")
    num, den = table[metric]
    return np.stack(num).astype(np.float64), np.stack(den).astype(np.float64)


def binned_jackknife(counts: np.ndarray, threshold_bin: int,
                     metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Exact leave-one-row-out values of a binned metric, one per (label, bin).

    All rows of one (cell, label, bin) have the same delete-one value, so the jackknife of
    ``n`` rows is given by ``2 x n_bins`` values with weights ``counts`` (closed forms: the
    numerator and denominator of each metric lose 0 or 1; for AUROC a deleted case in bin b
    removes its placement ``controls below + controls in b / 2``, a deleted control the cases
    above plus half the cases in b).

    Parameters
    ----------
    counts : ndarray, shape (2, n_bins)
        One cell's controls and cases per bin.

    Returns
    -------
    values, weights : ndarray, shape (2, n_bins)
        Delete-one values (NaN where undefined) and the number of rows they stand for.
    """
    c = np.asarray(counts, dtype=np.float64)
    neg, pos = c[0], c[1]
    nb = c.shape[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric == "auroc":
            P, N = pos.sum(), neg.sum()
            cneg_below = np.cumsum(neg) - neg
            cpos_above = P - np.cumsum(pos)
            num = float((pos * (cneg_below + 0.5 * neg)).sum())
            del_case = (num - (cneg_below + 0.5 * neg)) / ((P - 1) * N)
            del_ctrl = (num - (cpos_above + 0.5 * pos)) / (P * (N - 1))
            vals = np.stack([del_ctrl, del_case])
        else:
            above = np.arange(nb) >= threshold_bin
            num_m, den_m = _jack_masks(metric, above)
            x = float((num_m * c).sum() + 0.0)
            # x and d are the totals: num_m / den_m flag which rows count
            d = float((den_m * c).sum())
            vals = (x - num_m) / (d - den_m)
    vals = np.where(c > 0, vals, np.nan)
    return vals, c


def bca_from_jackknife(replicates: np.ndarray, estimate: float, jack: np.ndarray,
                       weights: np.ndarray, confidence_level: float = 0.95) -> tuple[float, float]:
    """BCa interval [1]_ with the acceleration from a weighted (grouped) jackknife.

    ``a = sum w d^3 / (6 (sum w d^2)^(3/2))`` with ``d = mean_w(jack) - jack`` (weights =
    rows per jackknife value), ``z0 = Phi^-1(#(theta* < theta) / B + #(theta* = theta) / 2B)``.
    NaN replicates and jackknife values are dropped; returns NaN bounds when ``z0`` is
    infinite.

    References
    ----------
    .. [1] Efron, B. (1987). Better bootstrap confidence intervals. JASA 82(397):171-185.
    """
    from scipy.special import ndtr, ndtri

    r = np.asarray(replicates, dtype=np.float64)
    r = r[np.isfinite(r)]
    j = np.asarray(jack, dtype=np.float64).reshape(-1)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    ok = np.isfinite(j) & (w > 0)
    j, w = j[ok], w[ok]
    if r.size == 0 or j.size == 0 or not np.isfinite(estimate):
        return np.nan, np.nan
    d = (w * j).sum() / w.sum() - j
    s2 = (w * d * d).sum()
    a = (w * d ** 3).sum() / (6 * s2 ** 1.5) if s2 > 0 else 0.0
    z0 = ndtri((np.count_nonzero(r < estimate) + 0.5 * np.count_nonzero(r == estimate)) / r.size)
    if not np.isfinite(z0):
        return np.nan, np.nan
    zq = ndtri(np.array([(1 - confidence_level) / 2, (1 + confidence_level) / 2]))
    q = ndtr(z0 + (z0 + zq) / (1 - a * (z0 + zq)))
    lo, hi = np.quantile(r, q)
    return float(lo), float(hi)
