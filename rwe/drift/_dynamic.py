"""The dynamic recalibration curve: weighted logistic recalibration fits over sliding windows.

The fit of window ``t`` and level ``j`` is the maximum-likelihood fit of
``logit P(y) = a + b x`` (``x`` the logit of the prediction) on the rows of level ``j`` in the
windows ``s = t - depth + 1 .. t``, row weights ``memory^(t - s)``. Each row thus enters up to
``depth`` fits, each with its own ``(a, b)``: fitting on rows repeated per fit costs
``depth x rows`` per Newton iteration (about 9 x rows with the default memory 0.7).

Here the rows are reduced once, exactly, to moments on a fixed grid of the covariate: with
``x = c + d`` (``c`` the centre of the cell of width ``H`` holding ``x``, ``|d| <= H / 2``),
every sum Newton-Raphson needs is a Taylor series in ``b d`` around ``eta_c = a + b c``:

``sum tot f(a + b x) x^m = sum_k f^(k)(eta_c) b^k / k! sum tot d^k (c + d)^m``

for ``f`` the softplus (log-likelihood), the logistic function (score) and its derivative
(information). The per-cell sums ``sum tot d^k`` (k <= K + 2) and ``sum pos``, ``sum pos x``
do not depend on ``(a, b)``; they are computed once per window x level, and the forgetting
weights are a linear filter over the windows of them (the cells are the same in every
window). A Newton iteration then costs ``fits x cells x K`` operations instead of
``depth x rows``. The derivatives of the logistic function are polynomials in it
(``sigma^(n+1) = d/dsigma sigma^(n) * sigma (1 - sigma)``), evaluated at
``sigma(-|eta|) <= 1/2`` by the symmetry ``sigma^(n)(-eta) = (-1)^(n+1) sigma^(n)(eta)``.

Truncation error. The remainder after ``K`` terms is at most ``sup|f^(K+1)| (|b| H / 2)^(K+1)
/ (K + 1)!`` per unit of weight (Lagrange form), computed for every fit at its final slope;
with ``H = 1/16`` and ``K = 10`` it is 2e-22 for ``|b| = 1`` and below 1e-15 for ``|b| <= 4``,
i.e. at or under the rounding error of the row sums themselves, so the estimates are the
row-level maximum-likelihood estimates to floating-point accuracy (they differ from a fit on repeated rows only in the
order of summation, ~1e-15 relative). Fits whose bound exceeds ``1e-15``, and fits that do
not converge, are refitted on their rows with :func:`rwe.stats.fit_logistic` (the one
fitter; also the reference these fits are tested against). Newton-Raphson follows
:func:`rwe.stats.fit_logistic` step for step: start ``a = 0, b = 1``, step halving until the
log-likelihood does not decrease, convergence when the largest relative step is below 1e-10,
NaN (no finite estimate) for one outcome class, constant predictions and (quasi-)complete
separation (Albert & Anderson 1984), checked from per-cell minima and maxima of ``x``.

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

import math
from functools import lru_cache

import numpy as np

__all__: list[str] = []

#: Cell width of the covariate grid (a power of two: the cell centres are exact).
CELL = 1.0 / 16
#: Taylor terms; the largest derivative order used is TERMS + 1 (the information's series).
TERMS = 10
#: Largest truncation bound (per unit of weight) accepted; fits above it are refitted on rows.
MAX_BOUND = 1e-15
_TOL = 1e-10


@lru_cache(maxsize=1)
def _derivative_polys() -> tuple[np.ndarray, np.ndarray]:
    """Coefficients of ``sigma^(n)`` as polynomials in sigma, n = 0..TERMS + 2 (rows; columns
    the powers 0..TERMS + 3), and ``sup |sigma^(n)|`` over the real line (on a fine grid of
    sigma in [0, 1/2], times 1.01)."""
    from numpy.polynomial import polynomial as P

    polys = [np.array([0.0, 1.0])]
    for _ in range(TERMS + 2):
        polys.append(P.polymul(P.polyder(polys[-1]), [0.0, 1.0, -1.0]))
    coef = np.zeros((len(polys), TERMS + 4))
    for n, c in enumerate(polys):
        coef[n, :c.size] = c
    u = np.linspace(0.0, 0.5, 20001)
    sup = np.array([np.abs(P.polyval(u, c)).max() for c in polys]) * 1.01
    return coef, sup


def _derivatives(eta: np.ndarray) -> np.ndarray:
    """(TERMS + 2, E): sigma^(n)(eta) for n = 0..TERMS + 1."""
    coef, _ = _derivative_polys()
    e = np.exp(-np.abs(eta))
    u = e / (1 + e)  # sigma(-|eta|) <= 1/2
    up = eta > 0
    powers = np.empty((TERMS + 3, eta.size))
    powers[0] = 1.0
    for k in range(1, TERMS + 3):
        np.multiply(powers[k - 1], u, out=powers[k])
    # (not a BLAS matmul: its threads spin on a busy machine)
    out = np.einsum("nk,ke->ne", coef[:TERMS + 2, :TERMS + 3], powers)
    out[0] = np.where(up, 1 / (1 + e), u)
    out[2::2] *= np.where(up, -1.0, 1.0)  # even orders are odd functions of eta
    return out


def _softplus(eta: np.ndarray) -> np.ndarray:
    return np.maximum(eta, 0) + np.log1p(np.exp(-np.abs(eta)))


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
    rseg = np.repeat(np.arange(S), lens)
    q = np.floor(x / CELL)
    q0 = q.min()
    qi = (q - q0).astype(np.int64)
    # only the cells holding a row (a prediction of 0 or 1 far out in logit leaves a gap)
    used = np.bincount(qi) > 0
    centre = (q0 + np.flatnonzero(used) + 0.5) * CELL
    qi = (np.cumsum(used) - 1)[qi]
    Q = centre.size
    d = x - (q + 0.5) * CELL
    key = rseg * Q + qi
    size = S * Q
    # per window x level x cell: sum tot d^k (k = 0..TERMS + 2), sum pos, sum pos x
    mom = np.zeros((TERMS + 5, size))
    step = np.diff(key)
    if (step >= 0).all():  # rows ascending within segments: sums over runs of equal keys
        first = np.concatenate([[0], np.flatnonzero(step) + 1])
        cell = key[first]

        def add(k, w):
            mom[k, cell] = np.add.reduceat(w, first)
    else:
        def add(k, w):
            mom[k] = np.bincount(key, weights=w, minlength=size)
    v = tot.copy()
    for k in range(TERMS + 3):
        add(k, v)
        if k < TERMS + 2:
            v *= d
    add(TERMS + 3, pos)
    add(TERMS + 4, pos * x)
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
    mom = mom.reshape(TERMS + 5, W, L, Q)
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
    acc = acc.reshape(TERMS + 5, S, Q)
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
    T = sub[:TERMS + 3][:, live]  # (TERMS + 3, E)
    P0 = np.bincount(fit_of, weights=sub[TERMS + 3][live], minlength=ids.size)
    P1 = np.bincount(fit_of, weights=sub[TERMS + 4][live], minlength=ids.size)
    # x-moments of the Taylor terms: U_k = sum tot d^k, V_k = sum tot d^k x, Z_k = ... x^2
    U = T[:TERMS + 1]
    V = c * T[:TERMS + 1] + T[1:TERMS + 2]
    Z = c * c * T[:TERMS + 1] + 2 * c * T[1:TERMS + 2] + T[2:TERMS + 3]
    fact = np.array([math.factorial(k) for k in range(TERMS + 1)], dtype=np.float64)
    a, b, conv = _newton(ids.size, fit_of, c, U, V, Z, P0, P1, fact)
    _, sup = _derivative_polys()
    with np.errstate(over="ignore", invalid="ignore"):
        bound = (np.maximum(sup[TERMS + 1], sup[TERMS + 2]) * (np.abs(b) * CELL / 2)
                 ** (TERMS + 1) / math.factorial(TERMS + 1))
    good = conv & np.isfinite(a) & np.isfinite(b) & (bound <= MAX_BOUND)
    a_out[ids[good]], b_out[ids[good]] = a[good], b[good]
    redo = ids[~good]
    if redo.size:
        a_out, b_out = _refit_rows(redo, x, pos, tot, starts, W, L, memory, depth, a_out,
                                   b_out)
    return a_out, b_out


def _state(a, b, fit_of, c, U, V, Z, P0, P1, fact):
    """Per fit at ``(a, b)``: the log-likelihood, the score and the information (Taylor
    series in ``b d`` around each cell's ``eta_c``)."""
    m = a.size
    be = b[fit_of]
    eta_c = a[fit_of] + be * c
    D = _derivatives(eta_c)
    bk = np.empty((TERMS + 1, be.size))
    bk[0] = 1.0
    for k in range(1, TERMS + 1):
        np.multiply(bk[k - 1], be / k, out=bk[k])  # b^k / k!
    G = D[:TERMS + 1] * bk
    H = D[1:TERMS + 2] * bk
    # softplus: sp(eta_c) U_0 + sum_{k >= 1} sigma^(k-1) b^k / k! U_k
    spl = _softplus(eta_c) * U[0] + np.einsum("ke,ke->e", D[:TERMS] * bk[1:], U[1:])

    def per(v):
        return np.bincount(fit_of, weights=v, minlength=m)

    llf = a * P0 + b * P1 - per(spl)
    ga = P0 - per(np.einsum("ke,ke->e", G, U))
    gb = P1 - per(np.einsum("ke,ke->e", G, V))
    return (llf, ga, gb, per(np.einsum("ke,ke->e", H, U)), per(np.einsum("ke,ke->e", H, V)),
            per(np.einsum("ke,ke->e", H, Z)))


def _newton(m, fit_of, c, U, V, Z, P0, P1, fact, max_iter: int = 100):
    """Newton-Raphson with step halving for every fit at once (fit_logistic's iteration)."""
    a, b = np.zeros(m), np.ones(m)
    conv = np.zeros(m, dtype=bool)
    args = (fit_of, c, U, V, Z, P0, P1, fact)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        act = np.ones(m, dtype=bool)
        llf, ga, gb, haa, hab, hbb = _state(a, b, *args)
        for _ in range(max_iter):
            if not act.any():
                break
            det = haa * hbb - hab * hab
            da = (hbb * ga - hab * gb) / det
            db = (haa * gb - hab * ga) / det
            bad = ~(np.isfinite(da) & np.isfinite(db))
            da[bad | ~act] = 0.0
            db[bad | ~act] = 0.0
            step = np.ones(m)
            na, nb = a + da, b + db
            new = _state(na, nb, *args)
            worse = act & (new[0] < llf - 1e-12 * np.maximum(1.0, np.abs(llf)))
            for _ in range(40):  # step halving where the log-likelihood decreased
                if not worse.any():
                    break
                step = np.where(worse, step / 2, step)
                na, nb = a + step * da, b + step * db
                new = _state(na, nb, *args)
                worse = act & (new[0] < llf - 1e-12 * np.maximum(1.0, np.abs(llf)))
            big = np.maximum(np.abs(step * da) / np.maximum(1, np.abs(na)),
                             np.abs(step * db) / np.maximum(1, np.abs(nb)))
            a = np.where(act, na, a)
            b = np.where(act, nb, b)
            llf, ga, gb, haa, hab, hbb = (np.where(act, v_new, v) for v_new, v in
                                          zip(new, (llf, ga, gb, haa, hab, hbb), strict=True))
            conv |= act & (big < _TOL) & ~bad
            act &= ~(((big < _TOL) & ~bad) | bad)
        # the information must be positive definite at the estimates (finite SEs)
        det = haa * hbb - hab * hab
        conv &= np.isfinite(np.sqrt(hbb / det)) & np.isfinite(np.sqrt(haa / det))
    return a, b, conv


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
