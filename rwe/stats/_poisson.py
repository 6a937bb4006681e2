"""Poisson bootstrap counts on summaries: the exact Poisson(1) table sampler and the
vectorized (cluster) replicate-count generator used by every summary-level bootstrap.

In the Poisson bootstrap [1]_ [2]_ every row receives an independent Poisson(1) weight. The
sum of ``c`` independent Poisson(1) variables is Poisson(``c``), so drawing one Poisson(c)
count per (replicate, cell, label, bin) gives *exactly* the distribution of the per-row
Poisson bootstrap of any statistic that is a function of the binned counts. With repeated
rows per patient the row weights are not independent; the cluster bootstrap then draws one
Poisson(1) weight per patient and maps them onto the bins through a sparse patient x bin
count matrix.

References
----------
.. [1] Hanley, J. A. and MacGibbon, B. (2006). Creating non-parametric bootstrap samples
   using Poisson frequencies. Computer Methods and Programs in Biomedicine 83(1):57-62.
.. [2] Chamandy, N., Muralidharan, O., Najmi, A. and Naidu, S. (2012). Estimating
   uncertainty for massive data streams. Google Technical Report.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rwe._validation import check_int
from rwe.exceptions import InvalidParameterError

__all__ = ["poisson1_weights", "poisson_bootstrap_counts"]


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


def poisson_bootstrap_counts(counts: np.ndarray, n_boot: int, *,
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
    counts = np.asarray(counts)
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
