"""The dynamic recalibration curve: weighted logistic recalibration fits over sliding windows.

The fit of window ``t`` and level ``j`` is the maximum-likelihood fit of
``logit P(y) = a + b x`` (``x`` the logit of the prediction) on the rows of level ``j`` in the
windows ``s = t - depth + 1 .. t``, row weights ``memory^(t - s)``. Each row thus enters up to
``depth`` fits, each with its own ``(a, b)``: fitting on rows repeated per fit costs
``depth x rows`` per Newton iteration (about 9 x rows with the default memory 0.7).

Here the rows are reduced once, exactly, to moments on a fixed grid of the covariate
(:mod:`rwe.stats._logistic_grid`, the fast path of :func:`rwe.stats.fit_logistic`): with
``x = c + d`` (``c`` the centre of the cell of width ``H = 1/16`` holding ``x``), every sum
Newton-Raphson needs is a Taylor series in ``b d`` around ``a + b c`` (K = 10 terms) whose
coefficients ``sum tot d^k`` per cell do not depend on ``(a, b)``. They are computed once per
window x level, and the forgetting weights are a linear filter over the windows of them (the
cells are the same in every window). A Newton iteration then costs ``fits x cells x K``
operations instead of ``depth x rows``.

The Lagrange bound of the truncation error is computed for every fit at its final slope
(below 1e-15 per unit of weight for ``|b| <= 4``): the estimates are the row-level
maximum-likelihood estimates to floating-point accuracy (they differ from a fit on repeated
rows only in the order of summation, ~1e-15 relative). Fits whose bound exceeds ``1e-15``,
and fits that do not converge, are refitted on their rows with
:func:`rwe.stats.fit_logistic` (the one fitter; also the reference these fits are tested
against). Newton-Raphson is :func:`rwe.stats._logistic_grid.grid_newton`, fit_logistic's
iteration step for step: start ``a = 0, b = 1``, step halving until the log-likelihood does
not decrease, convergence when the largest relative step is below 1e-10, NaN (no finite
estimate) for one outcome class, constant predictions and (quasi-)complete separation
(Albert & Anderson 1984), checked here from per-segment minima and maxima of ``x`` filtered
over the windows.

References
----------
.. [1] Davis SE, Greevy RA, Lasko TA, Walsh CG, Matheny ME. Detection of calibration drift in
   clinical prediction models to inform model updating. J Biomed Inform 2020;112:103611
   (dynamic calibration curves).
.. [2] McCullagh P, Nelder JA. Generalized Linear Models, 2nd ed. Chapman & Hall; 1989
   (Newton-Raphson for the binomial GLM).
.. [3] Albert A, Anderson JA. On the existence of maximum likelihood estimates in logistic
   regression models. Biometrika 1984;71(1):1-10.
"""

from __future__ import annotations

import numpy as np

from rwe.stats import _logistic_grid as lg

__all__: list[str] = []

TERMS, MAX_BOUND = lg.TERMS, lg.MAX_BOUND


def dynamic_fits(x: np.ndarray, pos: np.ndarray, tot: np.ndarray, starts: np.ndarray,
                 n_windows: int, n_levels: int, memory: float, depth: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Intercept and slope of the dynamic recalibration fit of every window x level.

    Parameters
    ----------
    x, pos, tot : ndarray
        Covariate (logit), cases and rows of each histogram row; segment ``s * n_levels + j``
        (window ``s``, level ``j``) holds rows ``starts[i]:starts[i + 1]``.
    starts : ndarray of int
    n_windows, n_levels : int
    memory : float
        Weight per window of age.
    depth : int
        Windows per fit (this one and ``depth - 1`` before it).

    Returns
    -------
    a, b : ndarray
        Per window x level (window-major); NaN where no finite estimate exists.
    """
    W, L = n_windows, n_levels
    S = W * L
    x = np.asarray(x, dtype=np.float64)
    pos = np.asarray(pos, dtype=np.float64)
    tot = np.asarray(tot, dtype=np.float64)
    a_out, b_out = np.full(S, np.nan), np.full(S, np.nan)
    if x.size == 0 or not np.isfinite(x).all():
        return _refit_rows(np.arange(S), x, pos, tot, starts, W, L, memory, depth, a_out,
                           b_out) if x.size else (a_out, b_out)
    lens = np.diff(np.append(starts, x.size))
    cs = lg.cell_sums(x, pos, tot, starts)
    if cs is None:
        return _refit_rows(np.arange(S), x, pos, tot, starts, W, L, memory, depth, a_out,
                           b_out)
    keys, sums, centre = cs
    Q = centre.size
    # per window x level x cell: sum tot d^k (k = 0..TERMS + 2), sum pos, sum pos x
    mom = np.zeros((lg.N_MOMENTS, S * Q))
    mom[:, keys] = sums
    # separation / constant checks: per segment extremes of x over cases and controls
    neg = tot - pos
    ext = np.empty((4, S))
    for i, (lab, fn, fill) in enumerate(((pos, np.minimum, np.inf), (pos, np.maximum, -np.inf),
                                         (neg, np.minimum, np.inf), (neg, np.maximum, -np.inf))):
        r = np.full(S, fill)
        ne = lens > 0
        if ne.any():
            r[ne] = fn.reduceat(np.where(lab > 0, x, fill), starts[ne])
        ext[i] = r
    # the forgetting filter over windows (cells and levels aligned)
    mom = mom.reshape(lg.N_MOMENTS, W, L, Q)
    ext = ext.reshape(4, W, L)
    acc = np.zeros_like(mom)
    eacc = np.stack([np.full((W, L), np.inf), np.full((W, L), -np.inf),
                     np.full((W, L), np.inf), np.full((W, L), -np.inf)])
    for lag in range(min(depth, W)):
        acc[:, lag:] += memory ** lag * mom[:, :W - lag]
        eacc[0, lag:] = np.minimum(eacc[0, lag:], ext[0, :W - lag])
        eacc[1, lag:] = np.maximum(eacc[1, lag:], ext[1, :W - lag])
        eacc[2, lag:] = np.minimum(eacc[2, lag:], ext[2, :W - lag])
        eacc[3, lag:] = np.maximum(eacc[3, lag:], ext[3, :W - lag])
    acc = acc.reshape(lg.N_MOMENTS, S, Q)
    xmin_pos, xmax_pos, xmin_neg, xmax_neg = (e.reshape(S) for e in eacc)
    has_pos = np.isfinite(xmin_pos)
    has_neg = np.isfinite(xmin_neg)
    xmin = np.minimum(xmin_pos, xmin_neg)
    xmax = np.maximum(xmax_pos, xmax_neg)
    ok = (has_pos & has_neg & ~(xmax <= xmin)
          & ~((xmax_neg <= xmin_pos) | (xmax_pos <= xmin_neg)))
    ids = np.flatnonzero(ok)
    if ids.size == 0:
        return a_out, b_out
    sub = acc[:, ids]  # (m, F, Q)
    live = sub[0] > 0
    fit_of = np.broadcast_to(np.arange(ids.size)[:, None], live.shape)[live]
    c = np.broadcast_to(centre, live.shape)[live]
    P0 = np.bincount(fit_of, weights=sub[TERMS + 3][live], minlength=ids.size)
    P1 = np.bincount(fit_of, weights=sub[TERMS + 4][live], minlength=ids.size)
    grid = lg.GridMoments(fit_of, c, sub[:TERMS + 3][:, live], P0, P1)
    a, b, _, _, _, conv, bound = lg.grid_newton(grid, np.zeros(ids.size), np.ones(ids.size))
    good = conv & (bound <= MAX_BOUND)
    a_out[ids[good]], b_out[ids[good]] = a[good], b[good]
    redo = ids[~good]
    if redo.size:
        a_out, b_out = _refit_rows(redo, x, pos, tot, starts, W, L, memory, depth, a_out,
                                   b_out)
    return a_out, b_out


def expanded_rows(fits: np.ndarray, starts: np.ndarray, n_rows: int, n_windows: int,
                  n_levels: int, memory: float, depth: int):
    """Rows of the given fits repeated with their weights: (row index, weight, fit starts),
    the input of a row-level :func:`rwe.stats.fit_logistic` (the reference computation)."""
    L = n_levels
    lens = np.diff(np.append(starts, n_rows))
    idx, wts, out_starts = [], [], []
    pos = 0
    for f in fits:
        t, j = divmod(int(f), L)
        out_starts.append(pos)
        for s_ in range(max(0, t - depth + 1), t + 1):
            i = s_ * L + j
            a, n_i = int(starts[i]), int(lens[i])
            if n_i:
                idx.append(np.arange(a, a + n_i))
                wts.append(np.full(n_i, memory ** (t - s_)))
                pos += n_i
    if not idx:
        return np.zeros(0, np.int64), np.zeros(0), np.asarray(out_starts, np.int64)
    return np.concatenate(idx), np.concatenate(wts), np.asarray(out_starts, dtype=np.int64)


def _refit_rows(fits, x, pos, tot, starts, W, L, memory, depth, a_out, b_out):
    """Fits on their repeated rows with :func:`rwe.stats.fit_logistic`."""
    from rwe.stats import fit_logistic

    idx, w, st = expanded_rows(fits, starts, x.size, W, L, memory, depth)
    if idx.size == 0:
        return a_out, b_out
    fit = fit_logistic(x[idx], pos[idx] * w, tot[idx] * w, st, model="slope")
    a_out[fits], b_out[fits] = fit.a, fit.b
    return a_out, b_out
