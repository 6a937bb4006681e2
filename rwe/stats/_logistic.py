"""The one logistic fitter of rwe: recalibration models in many segments at once.

Every calibration number rwe reports (slope, calibration-in-the-large, their standard errors,
the likelihood-ratio test of a slope x level interaction, bootstrap replicates of the slope)
comes from :func:`fit_logistic`. Data are *grouped binomial rows*: row ``r`` has a covariate
``x_r``, ``trials_r`` observations and ``successes_r`` events (one row per patient gives the
ordinary row-level fit; one row per distinct score or score bin gives the same likelihood
with fewer rows). Rows belong to *segments* (a subgroup level, a replicate x level pair...):
the rows of segment ``s`` are ``starts[s]:starts[s + 1]``, and each segment is an independent
fit, vectorized with :func:`numpy.add.reduceat` (no Python per segment).

Models (``logit P(y) = eta``):

``"slope"``
    ``eta = a[s] + b[s] x``: the calibration slope model (Cox 1958) of each segment;
``"offset"``
    ``eta = a[s] + x``: calibration-in-the-large, ``x`` entering as an offset;
``"common_slope"``
    ``eta = a[s] + b x`` with one slope shared by all segments (the null model of the
    likelihood-ratio test of a slope x segment interaction); its Hessian is arrow-shaped.

Newton-Raphson from ``a = 0, b = 1`` (the predictions as they are), with step halving per
segment until the log-likelihood does not decrease, stopping when the largest step is below
``1e-10 max(1, |parameter|)``; quadratic convergence makes the estimates accurate to rounding.
Standard errors are the square roots of the diagonal of the inverse observed information.
A segment with only successes or only failures, constant covariates or (quasi-)complete
separation has no finite maximum-likelihood estimate: :func:`logistic_reasons` names the
reason and the fit returns NaN for it (never a number set by the iteration limit).

Fast path (``method="auto"``, where it pays: at least 20,000 rows and 16 rows per segment x
grid cell). The rows are reduced once, exactly, to per-cell moments on a fixed grid of the
covariate (cell width ``H = 1/16``): with ``x = c + d``, ``|d| <= H / 2``, the
log-likelihood, score and information are Taylor series in ``b d`` around ``a + b c`` of the
softplus, the logistic function and its derivative (K = 10 terms), whose coefficients
``sum trials d^k`` per cell do not depend on ``(a, b)`` (:mod:`rwe.stats._logistic_grid`,
also the engine of the dynamic recalibration curve, Davis et al. 2020). The same Newton
iteration (start, step halving, ``tol``, ``max_iter``) then costs ``cells x K`` per step
instead of ``rows``. The Lagrange bound of the truncation error, ``sup|f^(K+1)|
(|b| H / 2)^(K+1) / (K + 1)!`` per unit of weight at the final slope, is 2e-22 at ``|b| = 1``
and below 1e-15 up to ``|b| = 4``; segments whose bound exceeds 1e-15, or whose grid fit did
not converge, are refitted on their rows. The estimates, standard errors and
log-likelihoods are therefore the row-level ones to floating-point accuracy (~1e-14
relative; they differ in the order of summation). Estimability (:func:`logistic_reasons`) is
decided on the rows before either path.

References
----------
.. [1] Cox DR. Two further applications of a model for binary regression. Biometrika
   1958;45(3-4):562-565.
.. [2] McCullagh P, Nelder JA. Generalized Linear Models, 2nd ed. Chapman & Hall; 1989
   (chapter 4: binomial data, Newton-Raphson / Fisher scoring).
.. [3] Albert A, Anderson JA. On the existence of maximum likelihood estimates in logistic
   regression models. Biometrika 1984;71(1):1-10 (separation).
.. [4] Davis SE, Greevy RA, Lasko TA, Walsh CG, Matheny ME. Detection of calibration drift in
   clinical prediction models to inform model updating. J Biomed Inform 2020;112:103611
   (the dynamic calibration curves whose moment fits :mod:`rwe.stats._logistic_grid`
   generalizes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from rwe.exceptions import InvalidParameterError

__all__ = ["LogisticFit", "fit_logistic", "logistic_reasons", "LOGISTIC_MODELS",
           "REASON_ONE_CLASS_POS", "REASON_ONE_CLASS_NEG", "REASON_CONSTANT",
           "REASON_SEPARATION", "REASON_NO_CONVERGENCE"]

LOGISTIC_MODELS = ("slope", "offset", "common_slope")
REASON_ONE_CLASS_POS = "one class only (no positive cases)"
REASON_ONE_CLASS_NEG = "one class only (no negative cases)"
REASON_CONSTANT = "predictions are constant: slope is not estimable"
REASON_SEPARATION = ("perfect separation: the outcome is separated by logit(p), slope is "
                     "infinite")
REASON_NO_CONVERGENCE = "logistic fit did not converge"
_TOL = 1e-10
_METHODS = ("auto", "rows", "grid")
#: grid-moment fast path (``method="auto"``): at least this many rows, and this many rows per
#: (segment x grid cell holding a row)
_GRID_MIN_ROWS = 20_000
_GRID_ROWS_PER_CELL = 16
_CHUNK = 1 << 15  # rows per chunk of an evaluation: its temporaries (256 kB each) stay in cache


def _row_chunks(n: int):
    for i in range(0, n, _CHUNK):
        yield i, min(n, i + _CHUNK)


@dataclass(frozen=True, eq=False)
class LogisticFit:
    """Result of :func:`fit_logistic`: one value per segment (``b`` has one value for
    ``"common_slope"``). ``converged`` is per segment (one flag for ``"common_slope"``);
    ``llf`` is the log-likelihood per segment (up to the binomial coefficients);
    ``reasons`` is :func:`logistic_reasons` of the data (None: estimable)."""

    model: str
    a: np.ndarray
    b: np.ndarray
    se_a: np.ndarray
    se_b: np.ndarray
    llf: np.ndarray
    converged: np.ndarray
    reasons: np.ndarray | None = None


def _seg_sum(v: np.ndarray, starts: np.ndarray, nonempty: np.ndarray) -> np.ndarray:
    out = np.zeros(len(starts))
    if v.size:
        out[nonempty] = np.add.reduceat(v, starts[nonempty])
    return out


def _lengths(starts: np.ndarray, n_rows: int) -> np.ndarray:
    return np.diff(np.append(starts, n_rows))


def logistic_reasons(x: np.ndarray, successes: np.ndarray, trials: np.ndarray,
                     starts: np.ndarray, model: str = "slope") -> np.ndarray:
    """Why a segment's model has no finite maximum-likelihood estimate (object array, None =
    estimable): one outcome class; for the slope model also constant covariates or complete
    or quasi-complete separation (every case's covariate >= every control's, or <=)."""
    x = np.asarray(x, dtype=np.float64)
    pos = np.asarray(successes, dtype=np.float64)
    neg = np.asarray(trials, dtype=np.float64) - pos
    starts = np.asarray(starts, dtype=np.int64)
    k = len(starts)
    lens = _lengths(starts, x.size)
    ne = lens > 0
    out = np.full(k, None, dtype=object)
    npos = _seg_sum(pos, starts, ne)
    nneg = _seg_sum(neg, starts, ne)
    out[npos == 0] = REASON_ONE_CLASS_POS
    out[(npos > 0) & (nneg == 0)] = REASON_ONE_CLASS_NEG
    if model == "offset" or not x.size:
        return out
    big = np.inf

    def seg_red(fn, v):
        r = np.full(k, np.nan)
        r[ne] = fn.reduceat(v, starts[ne])
        return r

    xmin_pos = seg_red(np.minimum, np.where(pos > 0, x, big))
    xmax_pos = seg_red(np.maximum, np.where(pos > 0, x, -big))
    xmin_neg = seg_red(np.minimum, np.where(neg > 0, x, big))
    xmax_neg = seg_red(np.maximum, np.where(neg > 0, x, -big))
    todo = out == None  # noqa: E711 - object array comparison
    xmin = np.minimum(xmin_pos, xmin_neg)
    xmax = np.maximum(xmax_pos, xmax_neg)
    const = todo & (xmax <= xmin)
    out[const] = REASON_CONSTANT
    sep = todo & ~const & ((xmax_neg <= xmin_pos) | (xmax_pos <= xmin_neg))
    out[sep] = REASON_SEPARATION
    return out


def _llf_rows(eta: np.ndarray, pos: np.ndarray, tot: np.ndarray,
              e: np.ndarray | None = None) -> np.ndarray:
    # successes * eta - trials * log(1 + exp(eta)), with log1p(exp(-|eta|)) for stability;
    # e = exp(-|eta|) when the caller has it
    if e is None:
        e = np.exp(-np.abs(eta))
    return pos * eta - tot * (np.maximum(eta, 0) + np.log1p(e))


def _mu_w(eta: np.ndarray, e: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    if e is None:
        e = np.exp(-np.abs(eta))
    inv = 1 / (1 + e)
    mu = np.where(eta >= 0, inv, e * inv)
    return mu, e * inv * inv  # mu (1 - mu) without cancellation


def newton_step(ga, gb, haa, hab, hbb) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Newton-Raphson step of each segment from its score (``ga``, ``gb``) and observed
    information (``haa``, ``hab``, ``hbb``): the 2 x 2 solve of the slope model, or ``ga / haa``
    with a zero slope step when ``gb`` is None (the offset model); zero where it is not
    finite (a singular information), with the mask of those segments (``bad``), so that they
    stop there and are reported."""
    if gb is not None:
        det = haa * hbb - hab * hab
        da = (hbb * ga - hab * gb) / det
        db = (haa * gb - hab * ga) / det
    else:
        da, db = ga / haa, np.zeros_like(ga)
    bad = ~(np.isfinite(da) & np.isfinite(db))
    da[bad] = 0.0
    db[bad] = 0.0
    return da, db, bad


def standard_errors(haa, hab, hbb) -> tuple[np.ndarray, np.ndarray]:
    """Standard errors ``(se_a, se_b)`` of each segment: the square roots of the diagonal of
    the inverse observed information (``hab`` None: the offset model, ``se_b = 0``)."""
    if hab is None:
        return np.sqrt(1 / haa), np.zeros_like(haa)
    det = haa * hbb - hab * hab
    return np.sqrt(hbb / det), np.sqrt(haa / det)


def common_slope_step(ga, gb: float, haa, hab, hbb: float) -> tuple[np.ndarray, float]:
    """Newton-Raphson step of the common-slope model (per-segment intercepts ``a``, one slope
    ``b``) from its score and its arrow-shaped observed information: ``haa``, ``hab`` per
    segment, ``gb`` and ``hbb`` summed over segments (the Schur complement of the diagonal
    block gives ``db``, then each ``da``)."""
    db = (gb - np.sum(hab * ga / haa)) / (hbb - np.sum(hab * hab / haa))
    return (ga - hab * db) / haa, db


def fit_logistic(x, successes, trials, starts=None, *, model: str = "slope",
                 max_iter: int = 100, start: tuple[Any, Any] | None = None,
                 tol: float = _TOL, method: str = "auto") -> LogisticFit:
    """Fit a logistic recalibration model in every segment of grouped binomial rows.

    Parameters
    ----------
    x : array_like, shape (K,)
        Covariate of each row (the logit of the predicted probability; an offset for
        ``model="offset"``).
    successes, trials : array_like, shape (K,)
        Events and observations of each row (``0 <= successes <= trials``; rows with
        ``trials = 0`` add nothing).
    starts : array_like of int, shape (S,), optional
        First row of each segment (ascending; default one segment).
    model : {"slope", "offset", "common_slope"}
    max_iter : int
    start : (a, b), optional
        Starting values per segment (default ``a = 0, b = 1``), e.g. the fit on the observed
        data for bootstrap replicates.
    tol : float
        Relative step size at which a segment has converged (default 1e-10).
    method : {"auto", "rows", "grid"}
        ``"rows"``: Newton-Raphson over the rows; ``"grid"``: the grid-moment fast path for
        every segment it can fit within the truncation bound (the others on rows);
        ``"auto"`` (default): the grid where it pays. The results agree to floating-point
        accuracy; the choice only changes the speed.

    Returns
    -------
    LogisticFit
        NaN estimates for segments without a finite MLE (:func:`logistic_reasons`) or that
        did not converge.
    """
    if model not in LOGISTIC_MODELS:
        raise InvalidParameterError(
            f"model={model!r} is not valid; choose one of: {', '.join(LOGISTIC_MODELS)}")
    if method not in _METHODS:
        raise InvalidParameterError(
            f"method={method!r} is not valid; choose one of: {', '.join(_METHODS)}")
    x = np.asarray(x, dtype=np.float64)
    pos = np.asarray(successes, dtype=np.float64)
    tot = np.asarray(trials, dtype=np.float64)
    starts = np.zeros(1, dtype=np.int64) if starts is None else np.asarray(starts, np.int64)
    k = len(starts)
    lens = _lengths(starts, x.size)
    reasons = logistic_reasons(x, pos, tot, starts, "offset" if model == "offset" else "slope")
    ok = reasons == None  # noqa: E711
    if model == "common_slope":
        return _fit_common(x, pos, tot, starts, lens, ok, max_iter, method)
    slope = model == "slope"
    nan = np.full(k, np.nan)
    a_out, b_out = nan.copy(), (nan.copy() if slope else np.ones(k))
    sa_out, sb_out = nan.copy(), (nan.copy() if slope else np.zeros(k))
    llf_out, conv_out = nan.copy(), np.zeros(k, dtype=bool)
    ids = np.flatnonzero(ok)
    if ids.size == 0:
        return LogisticFit(model, a_out, b_out, sa_out, sb_out, llf_out, conv_out, reasons)
    if ok.all() and starts[0] == 0:  # (no copy of the rows)
        xx, pp, tt = x, pos, tot
    else:
        keep = np.repeat(ok, lens)
        xx, pp, tt = x[keep], pos[keep], tot[keep]
    ln = lens[ids]
    if start is None:
        a, b = np.zeros(ids.size), np.ones(ids.size)
    else:
        a0 = np.broadcast_to(np.asarray(start[0], dtype=np.float64), (k,))[ids]
        b0 = np.broadcast_to(np.asarray(start[1], dtype=np.float64), (k,))[ids]
        good0 = np.isfinite(a0) & np.isfinite(b0)
        a, b = np.where(good0, a0, 0.0), np.where(good0 | ~slope, b0 if slope else 1.0, 1.0)
        if not slope:
            b = np.ones(ids.size)

    if method != "rows":
        grid = _grid_fits(xx, pp, tt, ln, a, b, slope, max_iter, tol, method == "grid")
        if grid is not None:
            acc, (ga_, gb_, gsa, gsb, gllf) = grid
            gi = ids[acc]
            a_out[gi], sa_out[gi], llf_out[gi] = ga_[acc], gsa[acc], gllf[acc]
            if slope:
                b_out[gi], sb_out[gi] = gb_[acc], gsb[acc]
            conv_out[gi] = True
            rest = ~acc
            if not rest.any():
                return LogisticFit(model, a_out, b_out, sa_out, sb_out, llf_out, conv_out,
                                   reasons)
            rows = np.repeat(rest, ln)
            xx, pp, tt = xx[rows], pp[rows], tt[rows]
            ids, ln, a, b = ids[rest], ln[rest], a[rest], b[rest]

    n_sums = 5 if slope else 2

    def evaluate(a_, b_, ln_, xx_, pp_, tt_, st_):
        # log-likelihood and score / information sums at (a_, b_) per segment, in one walk
        # over row chunks (temporaries stay in cache); the per-row terms are those of the
        # row-wise formulas, and each segment's sum is one reduceat over its rows
        n = xx_.size
        out = np.empty((n_sums + 1, n))
        one = ln_.size == 1
        arep = a_[0] if one else np.repeat(a_, ln_)
        brep = (b_[0] if one else np.repeat(b_, ln_)) if slope else None
        for i, j in _row_chunks(n):
            x = xx_[i:j]
            ai = arep if one else arep[i:j]
            eta = ai + ((brep if one else brep[i:j]) * x if slope else x)
            e = np.exp(-np.abs(eta))
            pp_c, tt_c = pp_[i:j], tt_[i:j]
            out[0, i:j] = _llf_rows(eta, pp_c, tt_c, e)
            mu, w = _mu_w(eta, e)
            r = pp_c - tt_c * mu
            w = tt_c * w
            out[1, i:j] = r
            out[2, i:j] = w
            if slope:
                np.multiply(r, x, out=out[3, i:j])
                wx = w * x
                out[4, i:j] = wx
                np.multiply(wx, x, out=out[5, i:j])
        red = [np.add.reduceat(out[c], st_) for c in range(n_sums + 1)]
        return red[0], red[1:]

    def finish(g, sel):
        # information at the final estimates of the active segments ``sel`` (converged at
        # the last step): ``g`` holds the sums at those estimates and ``llf`` their
        # log-likelihood, from the evaluation of the accepted step
        cv = act[sel]
        if slope:
            _, haa, _, hab, hbb = (v[sel] for v in g)
            se_a, se_b = standard_errors(haa, hab, hbb)
        else:
            se_a, se_b = standard_errors(g[1][sel], None, None)
        good = np.isfinite(a[cv]) & np.isfinite(b[cv]) & np.isfinite(se_a) & \
            np.isfinite(se_b)
        gi = ids[cv[good]]
        a_out[gi], sa_out[gi], llf_out[gi] = a[cv][good], se_a[good], llf[sel][good]
        if slope:
            b_out[gi], sb_out[gi] = b[cv][good], se_b[good]
        conv_out[ids[cv[~good]]] = False

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        act = np.arange(ids.size)  # active segments (positions in ids)
        st = np.concatenate([[0], np.cumsum(ln)[:-1]])
        llf, g = evaluate(a, b, ln, xx, pp, tt, st)
        fin = np.zeros(act.size, dtype=bool)  # converged at the last step: information due
        n_iter = 0
        while act.size:
            drop = fin.copy()
            if fin.any():
                finish(g, fin)
            if n_iter == max_iter:
                break
            if drop.any():
                go = ~drop
                rows = np.repeat(go, ln[act])
                act = act[go]
                if act.size == 0:
                    break
                xx, pp, tt = xx[rows], pp[rows], tt[rows]
                llf = llf[go]
                g = [v[go] for v in g]
                st = np.concatenate([[0], np.cumsum(ln[act])[:-1]])
            n_iter += 1
            ga, haa, gb, hab, hbb = g if slope else (*g, None, None, None)
            da, db, bad = newton_step(ga, gb, haa, hab, hbb)
            aa, bb = a[act], b[act]
            step = np.ones(act.size)
            na, nb = aa + da, bb + db
            lnn = ln[act]
            nllf, ng = evaluate(na, nb, lnn, xx, pp, tt, st)
            worse = nllf < llf - 1e-12 * np.maximum(1.0, np.abs(llf))
            for _ in range(40):  # step halving where the log-likelihood decreased
                if not worse.any():
                    break
                step = np.where(worse, step / 2, step)
                na, nb = aa + step * da, bb + step * db
                nllf, ng = evaluate(na, nb, lnn, xx, pp, tt, st)
                worse = nllf < llf - 1e-12 * np.maximum(1.0, np.abs(llf))
            big = np.maximum(np.abs(step * da) / np.maximum(1, np.abs(na)),
                             np.abs(step * db) / np.maximum(1, np.abs(nb)))
            a[act], b[act] = na, nb
            llf, g = nllf, ng
            fin = (big < tol) & ~bad
            conv_out[ids[act[fin]]] = True
            if bad.any():  # no finite step: done, without an estimate
                go = ~bad
                rows = np.repeat(go, lnn)
                act, fin = act[go], fin[go]
                xx, pp, tt = xx[rows], pp[rows], tt[rows]
                llf = llf[go]
                g = [v[go] for v in g]
                st = np.concatenate([[0], np.cumsum(ln[act])[:-1]])
    return LogisticFit(model, a_out, b_out, sa_out, sb_out, llf_out, conv_out, reasons)


def _grid_fits(xx, pp, tt, ln, a, b, slope, max_iter, tol, force):
    """The grid-moment fits of the estimable segments (rows ``xx, pp, tt``, lengths ``ln``,
    starting values ``a, b``) where they pay (``force``: wherever possible): None, or the
    accepted segments (converged, truncation bound at most ``MAX_BOUND``) and the estimates
    ``(a, b, se_a, se_b, llf)`` of all segments."""
    from rwe.stats import _logistic_grid as lg

    mom = _grid_moments(xx, pp, tt, ln, force)
    if mom is None:
        return None
    ga, gb, sa, sb, llf, conv, bound = lg.grid_newton(mom, a, b, slope=slope,
                                                      max_iter=max_iter, tol=tol)
    return conv & (bound <= lg.MAX_BOUND), (ga, gb, sa, sb, llf)


def _grid_moments(xx, pp, tt, ln, force):
    # the grid moments of the segments where the fast path pays (force: wherever possible)
    from rwe.stats import _logistic_grid as lg

    n = xx.size
    if n == 0 or (not force and n < _GRID_MIN_ROWS):
        return None
    if not (math.isfinite(float(xx.min())) and math.isfinite(float(xx.max()))):
        return None
    st = np.concatenate([[0], np.cumsum(ln)[:-1]])
    # (segments x cells holding a row) bounds the number of grid entries from above
    cs = lg.cell_sums(xx, pp, tt, st, None if force else n // _GRID_ROWS_PER_CELL)
    return None if cs is None else lg.GridMoments.from_cell_sums(*cs, n_fits=ln.size)


def _grid_common(xx, pp, tt, ln, max_iter, force):
    """The grid-moment common-slope fit ``(a, b, llf per segment)``, or None where it does
    not pay, did not converge or its truncation bound exceeds ``MAX_BOUND``."""
    from rwe.stats import _logistic_grid as lg

    mom = _grid_moments(xx, pp, tt, ln, force)
    if mom is None:
        return None
    a, b, llf, conv, bound = lg.grid_newton_common(mom, max_iter, _TOL)
    return (a, b, llf) if conv and bound <= lg.MAX_BOUND else None


def _fit_common(x, pos, tot, starts, lens, ok, max_iter, method="auto") -> LogisticFit:
    """``a[s] + b x`` with a shared slope, over the estimable segments (arrow Hessian)."""
    k = len(starts)
    nan = np.full(k, np.nan)
    if not ok.any():
        return LogisticFit("common_slope", nan, np.array([np.nan]), nan.copy(),
                           np.array([np.nan]), nan.copy(), np.array([False]))
    ids = np.flatnonzero(ok)
    if ok.all() and starts[0] == 0:  # (no copy of the rows)
        xx, pp, tt = x, pos, tot
    else:
        keep = np.repeat(ok, lens)
        xx, pp, tt = x[keep], pos[keep], tot[keep]
    ln = lens[ids]
    st = np.concatenate([[0], np.cumsum(ln)[:-1]])
    if method != "rows":
        grid = _grid_common(xx, pp, tt, ln, max_iter, method == "grid")
        if grid is not None:
            a_out, llf_seg = nan.copy(), nan.copy()
            a_out[ids], llf_seg[ids] = grid[0], grid[2]
            return LogisticFit("common_slope", a_out, np.array([grid[1]]), nan.copy(),
                               np.array([np.nan]), llf_seg, np.array([True]))
    a = np.zeros(ids.size)
    b = 1.0
    converged = False
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        def state(a_, b_):
            # eta, the log-likelihood, exp(-|eta|) (the weights reuse it) and the per-row
            # log-likelihood (the per-segment values at the end)
            eta = np.repeat(a_, ln) + b_ * xx
            e = np.exp(-np.abs(eta))
            rows = _llf_rows(eta, pp, tt, e)
            return eta, float(rows.sum()), e, rows

        eta, llf, e, llf_rows = state(a, b)
        for _ in range(max_iter):
            mu, w = _mu_w(eta, e)
            r = pp - tt * mu
            w = tt * w
            ga = np.add.reduceat(r, st)
            haa = np.add.reduceat(w, st)
            hab = np.add.reduceat(w * xx, st)
            gb = float((r * xx).sum())
            hbb = float((w * xx * xx).sum())
            da, db = common_slope_step(ga, gb, haa, hab, hbb)
            if not (np.isfinite(da).all() and math.isfinite(db)):
                break
            step = 1.0
            for _ in range(40):
                neta, nllf, ne_, nrows = state(a + step * da, b + step * db)
                if nllf >= llf - 1e-12 * max(1.0, abs(llf)):
                    break
                step /= 2
            big = max(float(np.max(np.abs(step * da) / np.maximum(1, np.abs(a + step * da)))),
                      abs(step * db) / max(1.0, abs(b + step * db)))
            a, b, eta, llf = a + step * da, b + step * db, neta, nllf
            e, llf_rows = ne_, nrows
            if big < _TOL:
                converged = True
                break
    a_out = nan.copy()
    llf_seg = nan.copy()
    if converged:
        a_out[ids] = a
        llf_seg[ids] = np.add.reduceat(llf_rows, st)
    return LogisticFit("common_slope", a_out, np.array([b if converged else np.nan]),
                       nan.copy(), np.array([np.nan]), llf_seg, np.array([converged]))
