"""Logistic recalibration fits from per-cell moments on a fixed grid of the covariate.

The fast path of :func:`rwe.stats.fit_logistic` (and of the dynamic recalibration curve of
:mod:`rwe.drift._dynamic`): the rows are reduced once, exactly, to moments on a fixed grid of
the covariate, and Newton-Raphson then walks the grid cells instead of the rows.

With ``x = c + d`` (``c`` the centre of the cell of width ``H`` holding ``x``,
``|d| <= H / 2``), every sum Newton-Raphson needs is a Taylor series in ``b d`` around
``eta_c = a + b c``:

``sum tot f(a + b x) x^m = sum_k f^(k)(eta_c) b^k / k! sum tot d^k (c + d)^m``

for ``f`` the softplus (log-likelihood), the logistic function (score) and its derivative
(information), ``m = 0, 1, 2``. The per-cell sums ``sum tot d^k`` (``k <= K + 2``) and the
per-segment ``sum pos``, ``sum pos x`` do not depend on ``(a, b)``: they are computed in one
pass over the rows (:func:`cell_sums`). A Newton iteration then costs ``cells x K``
operations instead of ``rows``. The derivatives of the logistic function are polynomials in
it (``sigma^(n+1) = d/dsigma sigma^(n) * sigma (1 - sigma)``), evaluated at
``sigma(-|eta|) <= 1/2`` by the symmetry ``sigma^(n)(-eta) = (-1)^(n+1) sigma^(n)(eta)``.

Truncation error. The remainder after ``K`` terms is at most ``sup|f^(K+1)| (|b| H / 2)^(K+1)
/ (K + 1)!`` per unit of weight (Lagrange form), computed for every fit at its final slope;
with ``H = 1/16`` and ``K = 10`` it is 2e-22 for ``|b| = 1`` and below 1e-15 for ``|b| <= 4``,
i.e. at or under the rounding error of the row sums themselves, so the estimates are the
row-level maximum-likelihood estimates to floating-point accuracy (they differ from the
row-level iteration only in the order of summation). Callers refit on the rows every fit
whose bound exceeds :data:`MAX_BOUND` or that did not converge.

Newton-Raphson (McCullagh & Nelder 1989, ch. 4) follows the row-level iteration of
:func:`rwe.stats.fit_logistic` step for step: start ``a = 0, b = 1`` (or given values), step
halving until the log-likelihood does not decrease, convergence when the largest relative step
is below ``tol``; standard errors from the inverse information at the estimates. Estimability
(one outcome class, constant covariate, separation: Albert & Anderson 1984) is decided by the
caller before the fit.

References
----------
.. [1] Davis SE, Greevy RA, Lasko TA, Walsh CG, Matheny ME. Detection of calibration drift in
   clinical prediction models to inform model updating. J Biomed Inform 2020;112:103611.
.. [2] McCullagh P, Nelder JA. Generalized Linear Models, 2nd ed. Chapman & Hall; 1989
   (Newton-Raphson for the binomial GLM).
.. [3] Albert A, Anderson JA. On the existence of maximum likelihood estimates in logistic
   regression models. Biometrika 1984;71(1):1-10.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from rwe.stats._logistic import common_slope_step, newton_step, standard_errors

__all__: list[str] = []

#: Cell width of the covariate grid (a power of two: the cell centres are exact).
CELL = 1.0 / 16
#: Taylor terms; the largest derivative order used is TERMS + 1 (the information's series).
TERMS = 10
#: Largest truncation bound (per unit of weight) accepted; fits above it are refitted on rows.
MAX_BOUND = 1e-15
#: Moment rows of :func:`cell_sums`: sum tot d^k (k = 0..TERMS + 2), sum pos, sum pos x.
N_MOMENTS = TERMS + 5
_MAX_SPAN = 1 << 20  # cells between the smallest and largest covariate: beyond, no grid


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


def truncation_bound(b: np.ndarray) -> np.ndarray:
    """Lagrange bound of the Taylor remainder per unit of weight at slope ``b``."""
    _, sup = _derivative_polys()
    with np.errstate(over="ignore", invalid="ignore"):
        return (np.maximum(sup[TERMS + 1], sup[TERMS + 2]) * (np.abs(b) * CELL / 2)
                ** (TERMS + 1) / math.factorial(TERMS + 1))


def cell_sums(x: np.ndarray, pos: np.ndarray, tot: np.ndarray, starts: np.ndarray,
              max_entries: int | None = None):
    """Per (segment, cell) moments of grouped binomial rows, in one pass over the rows.

    Parameters
    ----------
    x, pos, tot : ndarray
        Finite covariate, successes and trials of each row.
    starts : ndarray of int
        First row of each segment (ascending).
    max_entries : int, optional
        Give up (return None) when segments x cells holding a row exceed it.

    Returns
    -------
    (keys, sums, centre) or None
        ``keys`` (E,) ascending ``segment * Q + cell`` of the non-empty (segment, cell) pairs,
        ``sums`` (N_MOMENTS, E) their ``sum tot d^k`` (k = 0..TERMS + 2), ``sum pos`` and
        ``sum pos x``, ``centre`` (Q,) the centres of the cells holding a row. None when the
        covariate spans more than 2^20 cells or ``max_entries`` is exceeded (the grid would
        not pay).
    """
    n = x.size
    lens = np.diff(np.append(starts, n))
    q = np.floor(x / CELL)
    q0, q1 = q.min(), q.max()
    if q1 - q0 > _MAX_SPAN:
        return None
    qi = (q - q0).astype(np.int64)
    # only the cells holding a row (a prediction of 0 or 1 far out in logit leaves a gap)
    used = np.bincount(qi) > 0
    centre = (q0 + np.flatnonzero(used) + 0.5) * CELL
    qi = (np.cumsum(used) - 1)[qi]
    Q = centre.size
    if max_entries is not None and len(starts) * Q > max_entries:
        return None
    d = x - (q + 0.5) * CELL
    key = np.repeat(np.arange(len(starts), dtype=np.int64) * Q, lens) + qi
    step = np.diff(key)
    size = len(starts) * Q
    if (step >= 0).all():  # rows ascending within segments: sums over runs of equal keys
        first = np.concatenate([[0], np.flatnonzero(step) + 1])
        keys = key[first]

        def red(w):
            return np.add.reduceat(w, first)
    elif size <= max(n, 1 << 16):  # a dense (segment x cell) table is small: bincount
        keys = None

        def red(w):
            return np.bincount(key, weights=w, minlength=size)
    else:  # sort the rows by cell
        order = np.argsort(key, kind="stable")
        key, d, x, pos, tot = key[order], d[order], x[order], pos[order], tot[order]
        first = np.concatenate([[0], np.flatnonzero(np.diff(key)) + 1])
        keys = key[first]

        def red(w):
            return np.add.reduceat(w, first)
    sums = np.empty((N_MOMENTS, size if keys is None else keys.size))
    v = tot.copy()
    for k in range(TERMS + 3):
        sums[k] = red(v)
        if k < TERMS + 2:
            v *= d
    sums[TERMS + 3] = red(pos)
    sums[TERMS + 4] = red(pos * x)
    if keys is None:
        keys = np.flatnonzero(sums[0] != 0)
        sums = sums[:, keys]
    return keys, sums, centre


class GridMoments:
    """The moments of ``m`` fits, ready for :func:`grid_newton`.

    Parameters
    ----------
    fit_of : ndarray of int, shape (E,)
        Fit of each (fit, cell) entry.
    c : ndarray, shape (E,)
        Cell centre of each entry.
    T : ndarray, shape (TERMS + 3, E)
        ``sum tot d^k`` of each entry.
    P0, P1 : ndarray, shape (m,)
        ``sum pos`` and ``sum pos x`` of each fit.
    """

    def __init__(self, fit_of, c, T, P0, P1):
        self.m = P0.size
        self.fit_of, self.c, self.P0, self.P1 = fit_of, c, P0, P1
        # x-moments of the Taylor terms: U_k = sum tot d^k, V_k = sum tot d^k x, Z_k = ... x^2
        self.U = T[:TERMS + 1]
        self.V = c * T[:TERMS + 1] + T[1:TERMS + 2]
        self.Z = c * c * T[:TERMS + 1] + 2 * c * T[1:TERMS + 2] + T[2:TERMS + 3]

    @classmethod
    def from_cell_sums(cls, keys, sums, centre, n_fits: int, live=None):
        """From :func:`cell_sums` output (entries of fit ``keys // Q``), keeping the entries
        with positive weight."""
        Q = centre.size
        live = sums[0] > 0 if live is None else live
        k = keys[live]
        fit_of = k // Q
        P0 = np.bincount(keys // Q, weights=sums[TERMS + 3], minlength=n_fits)
        P1 = np.bincount(keys // Q, weights=sums[TERMS + 4], minlength=n_fits)
        return cls(fit_of, centre[k % Q], sums[:TERMS + 3][:, live], P0, P1)

    def state(self, a, b, slope: bool = True):
        """Per fit at ``(a, b)``: log-likelihood, score ``(ga, gb)`` and information
        ``(haa, hab, hbb)`` (``gb, hab, hbb`` None when not ``slope``)."""
        m, fit_of, U = self.m, self.fit_of, self.U
        be = b[fit_of]
        eta_c = a[fit_of] + be * self.c
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

        llf = a * self.P0 + b * self.P1 - per(spl)
        ga = self.P0 - per(np.einsum("ke,ke->e", G, U))
        haa = per(np.einsum("ke,ke->e", H, U))
        if not slope:
            return llf, ga, None, haa, None, None
        gb = self.P1 - per(np.einsum("ke,ke->e", G, self.V))
        return (llf, ga, gb, haa, per(np.einsum("ke,ke->e", H, self.V)),
                per(np.einsum("ke,ke->e", H, self.Z)))

    def subset(self, fits: np.ndarray) -> GridMoments:
        """The moments of the given fits (positions), renumbered 0..len(fits) - 1."""
        new = np.full(self.m, -1, dtype=np.int64)
        new[fits] = np.arange(fits.size)
        keep = new[self.fit_of] >= 0
        g = object.__new__(GridMoments)
        g.m = fits.size
        g.fit_of = new[self.fit_of[keep]]
        g.c, g.P0, g.P1 = self.c[keep], self.P0[fits], self.P1[fits]
        g.U, g.V, g.Z = self.U[:, keep], self.V[:, keep], self.Z[:, keep]
        return g


def grid_newton(mom: GridMoments, a0: np.ndarray, b0: np.ndarray, *, slope: bool = True,
                max_iter: int = 100, tol: float = 1e-10):
    """Newton-Raphson with step halving for every fit at once (the iteration of
    :func:`rwe.stats.fit_logistic`, ``"slope"`` or ``"offset"`` model).

    Returns
    -------
    a, b, se_a, se_b, llf : ndarray
        Per fit, at the last accepted step (``b = b0``, ``se_b = 0`` for the offset model).
    converged : ndarray of bool
        Converged with a positive definite information (finite standard errors).
    bound : ndarray
        :func:`truncation_bound` at the final slope.
    """
    m = mom.m
    a, b = np.array(a0, dtype=np.float64), np.array(b0, dtype=np.float64)
    conv = np.zeros(m, dtype=bool)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        act = np.ones(m, dtype=bool)
        cur = list(mom.state(a, b, slope))
        n_iter = 0
        while act.any() and n_iter < max_iter:
            n_iter += 1
            # only the active fits are evaluated
            ids = np.flatnonzero(act)
            sub = mom if ids.size == m else mom.subset(ids)
            llf, ga, gb, haa, hab, hbb = (None if v is None else v[ids] for v in cur)
            da, db, bad = newton_step(ga, gb, haa, hab, hbb)
            aa, bb = a[ids], b[ids]
            step = np.ones(ids.size)
            na, nb = aa + da, bb + db
            new = sub.state(na, nb, slope)
            worse = new[0] < llf - 1e-12 * np.maximum(1.0, np.abs(llf))
            for _ in range(40):  # step halving where the log-likelihood decreased
                if not worse.any():
                    break
                step = np.where(worse, step / 2, step)
                na, nb = aa + step * da, bb + step * db
                new = sub.state(na, nb, slope)
                worse = new[0] < llf - 1e-12 * np.maximum(1.0, np.abs(llf))
            big = np.maximum(np.abs(step * da) / np.maximum(1, np.abs(na)),
                             np.abs(step * db) / np.maximum(1, np.abs(nb)))
            a[ids], b[ids] = na, nb
            for v, vn in zip(cur, new, strict=True):
                if v is not None:
                    v[ids] = vn
            done = (big < tol) & ~bad
            conv[ids[done]] = True
            act[ids[done | bad]] = False
        llf, ga, gb, haa, hab, hbb = cur
        se_a, se_b = standard_errors(haa, hab, hbb)
        conv &= (np.isfinite(a) & np.isfinite(b) & np.isfinite(se_a) & np.isfinite(se_b)
                 & np.isfinite(llf))
    return a, b, se_a, se_b, llf, conv, truncation_bound(b)


def grid_newton_common(mom: GridMoments, max_iter: int = 100, tol: float = 1e-10):
    """Newton-Raphson with step halving for ``a[s] + b x`` with one slope shared by all fits
    (the ``"common_slope"`` iteration of :func:`rwe.stats.fit_logistic`: start ``a = 0,
    b = 1``, the arrow-shaped information solved by block elimination).

    Returns
    -------
    a : ndarray
        Intercept per fit.
    b : float
    llf : ndarray
        Log-likelihood per fit at the estimates.
    converged : bool
    bound : float
        :func:`truncation_bound` at the final slope.
    """
    m = mom.m
    a, b = np.zeros(m), 1.0
    converged = False
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        cur = mom.state(a, np.full(m, b))
        llf = float(cur[0].sum())
        for _ in range(max_iter):
            _, ga, gb_s, haa, hab, hbb_s = cur
            gb, hbb = float(gb_s.sum()), float(hbb_s.sum())
            da, db = common_slope_step(ga, gb, haa, hab, hbb)
            if not (np.isfinite(da).all() and math.isfinite(db)):
                break
            step = 1.0
            for _ in range(40):
                new = mom.state(a + step * da, np.full(m, b + step * db))
                nllf = float(new[0].sum())
                if nllf >= llf - 1e-12 * max(1.0, abs(llf)):
                    break
                step /= 2
            big = max(float(np.max(np.abs(step * da) / np.maximum(1, np.abs(a + step * da)))),
                      abs(step * db) / max(1.0, abs(b + step * db)))
            a, b, cur, llf = a + step * da, b + step * db, new, nllf
            if big < tol:
                converged = True
                break
    return a, b, cur[0], converged and bool(np.isfinite(cur[0]).all()), float(
        truncation_bound(np.array(b)))
