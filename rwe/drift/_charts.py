"""Control charts and their average run lengths (METHODS.md C6, ORACLES-2.md).

Charts
------
Tabular CUSUM (Page 1954) on a standardized series ``z_t``: the upper statistic
``S+_t = max(0, S+_{t-1} + z_t - k)``, the lower ``S-_t = max(0, S-_{t-1} - z_t - k)``; an alarm
when a statistic exceeds ``h``. EWMA (Roberts 1959): ``e_t = lambda z_t + (1 - lambda)
e_{t-1}``, ``e_0 = 0``, alarm when ``|e_t|`` exceeds ``L sqrt(lambda / (2 - lambda) [1 - (1 -
lambda)^{2t}])`` (exact limits; ``asymptotic=True`` drops the bracket). Risk-adjusted Bernoulli
CUSUM (Steiner, Cook, Farewell, Treasure 2000) on a stream of (predicted risk p, outcome y):
weight ``W_t = y_t ln R - ln(1 - p_t + R p_t)`` for the odds ratio R to detect (R > 1: the
model under-predicts; R < 1: it over-predicts), ``S_t = max(0, S_{t-1} + W_t)``. After an alarm
a chart restarts at 0 (Page's restart), so the alarm rate of an in-control chart is 1 / ARL0.

Average run lengths
-------------------
Brook and Evans' (1972) Markov chain: the statistic's range below the limit is cut into
states, the chain's transient part ``R`` gives ``ARL = [(I - R)^{-1} 1]_start``. CUSUM: ``N``
states of width ``w = 2h / (2N - 1)``, state 0 holding [0, w/2] (Lucas & Crosier 1982);
a two-sided CUSUM combines its sides by ``1 / ARL = 1 / ARL+ + 1 / ARL-`` (Lucas & Crosier's
table is computed so). EWMA: ``2m + 1`` states of equal width across the asymptotic limits
(Lucas & Saccucci 1990). Risk-adjusted CUSUM: states of width ``h / (N - 1/2)``, the weight's
distribution taken from a sample of predicted risks (Steiner et al. 2000 section 3); its ARL
is checked against simulation of the same chart (:func:`simulate_run_lengths`).

Limits for a target in-control ARL (the protocol's ``arl0``) are found by root finding on the
Markov-chain ARL (:func:`cusum_limit`, :func:`ewma_limit`, :func:`ra_cusum_limit`).

References
----------
.. [1] Page ES. Continuous inspection schemes. Biometrika 1954;41(1-2):100-115.
.. [2] Brook D, Evans DA. An approach to the probability distribution of cusum run length.
   Biometrika 1972;59(3):539-549.
.. [3] Lucas JM, Crosier RB. Fast initial response for CUSUM quality-control schemes: give your
   CUSUM a head start. Technometrics 1982;24(3):199-205.
.. [4] Roberts SW. Control chart tests based on geometric moving averages. Technometrics
   1959;1(3):239-250.
.. [5] Lucas JM, Saccucci MS. Exponentially weighted moving average control schemes:
   properties and enhancements. Technometrics 1990;32(1):1-12.
.. [6] Steiner SH, Cook RJ, Farewell VT, Treasure T. Monitoring surgical performance using
   risk-adjusted cumulative sum charts. Biostatistics 2000;1(4):441-452.
.. [7] Jensen WA, Jones-Farmer LA, Champ CW, Woodall WH. Effects of parameter estimation on
   control chart properties: a literature review. J Qual Technol 2006;38(4):349-364.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from rwe._validation import check_int, check_real
from rwe.exceptions import InvalidParameterError

__all__ = [
    "CHART_METHODS", "SIDES", "ChartPath", "cusum_path", "ewma_path", "ra_cusum_weights",
    "ra_cusum_path", "cusum_arl", "ewma_arl", "ra_cusum_arl", "cusum_limit", "ewma_limit",
    "ra_cusum_limit", "simulate_run_lengths", "risk_atoms",
]

CHART_METHODS = ("cusum", "ewma", "risk_adjusted_cusum")
SIDES = ("two-sided", "upper", "lower")
CUSUM_STATES = 400
EWMA_STATES = 201  # 2m + 1
RA_STATES = 400
RISK_ATOMS = 256


def _side(side: str) -> str:
    if side not in SIDES:
        raise InvalidParameterError(f"side={side!r} is not valid; choose one of: {', '.join(SIDES)}")
    return side


@dataclass(frozen=True, eq=False)
class ChartPath:
    """A chart run over a series: statistics after each point, alarms, final state.

    ``upper``/``lower`` are the statistics after each point, as compared with the limit (a
    chart that alarmed restarts at 0 for the next point; ``crossed`` holds the larger side's
    value); ``alarm`` flags the points
    where the chart signalled (``side_alarm`` "upper" / "lower" / None); ``limit`` the limit
    at each point (constant for CUSUM, time-varying for the EWMA's exact limits); ``state`` the
    values a later run continues from.
    """

    upper: np.ndarray
    lower: np.ndarray
    crossed: np.ndarray
    alarm: np.ndarray
    side_alarm: np.ndarray
    limit: np.ndarray
    state: dict[str, float]

    @property
    def first_alarm(self) -> int | None:
        """Index (0-based) of the first alarm, or None."""
        hit = np.flatnonzero(self.alarm)
        return int(hit[0]) if hit.size else None


# ============================================================================ paths
def cusum_path(z: Any, *, k: float = 0.5, h: float, side: str = "two-sided",
               state: dict[str, float] | None = None, restart: bool = True) -> ChartPath:
    """Tabular CUSUM of a standardized series (in-control mean 0, SD 1).

    Parameters
    ----------
    z : array_like of float
        The series; NaN points (no data in the window) leave the statistics unchanged.
    k, h : float
        Reference value and decision interval (in SD units).
    side : {"two-sided", "upper", "lower"}
    state : dict, optional
        ``{"upper": S+, "lower": S-}`` to continue from (a previous run's ``state``); the
        default starts at 0 (a head start is a nonzero state).
    restart : bool
        Restart both statistics at 0 after an alarm.

    Examples
    --------
    METHODS.md O7: mu0 = 0, k = 0.5 on x = [0.1, 0.6, 0.9, 1.2, 0.2].

    >>> cusum_path([0.1, 0.6, 0.9, 1.2, 0.2], k=0.5, h=10, side="upper").upper.round(6).tolist()
    [0.0, 0.1, 0.5, 1.2, 0.9]
    """
    side = _side(side)
    z = np.asarray(z, dtype=np.float64)
    su = float((state or {}).get("upper", 0.0))
    sl = float((state or {}).get("lower", 0.0))
    n = z.size
    up, lo, crossed = np.zeros(n), np.zeros(n), np.zeros(n)
    alarm = np.zeros(n, dtype=bool)
    which = np.full(n, None, dtype=object)
    for t in range(n):  # a handful of windows: the recursion is sequential
        if np.isfinite(z[t]):
            su = max(0.0, su + z[t] - k) if side != "lower" else 0.0
            sl = max(0.0, sl - z[t] - k) if side != "upper" else 0.0
        hit_u, hit_l = su > h, sl > h
        crossed[t] = max(su, sl)
        up[t], lo[t] = su, sl  # the values compared with h (before a restart)
        if hit_u or hit_l:
            alarm[t] = True
            which[t] = "upper" if su >= sl and hit_u else "lower"
            if restart:
                su = sl = 0.0
    return ChartPath(up, lo, crossed, alarm, which, np.full(n, float(h)),
                     {"upper": su, "lower": sl})


def ewma_path(z: Any, *, lam: float, L: float, side: str = "two-sided",
              state: dict[str, float] | None = None, asymptotic: bool = False,
              restart: bool = True) -> ChartPath:
    """EWMA of a standardized series with limits ``+-L sigma_t``.

    ``sigma_t = sqrt(lambda / (2 - lambda) [1 - (1 - lambda)^{2t}])`` with ``t`` counted from
    the chart's start or last restart (``asymptotic``: without the bracket). ``state``:
    ``{"value": e, "t": points since the start}``. NaN points leave the chart unchanged.
    The returned ``upper`` holds the EWMA itself (as compared with the limits, before a
    restart) and ``lower`` its negative.
    """
    side = _side(side)
    z = np.asarray(z, dtype=np.float64)
    e = float((state or {}).get("value", 0.0))
    t0 = int((state or {}).get("t", 0))
    n = z.size
    vals, lim, crossed = np.zeros(n), np.zeros(n), np.zeros(n)
    alarm = np.zeros(n, dtype=bool)
    which = np.full(n, None, dtype=object)
    asym = math.sqrt(lam / (2 - lam))
    for t in range(n):
        if np.isfinite(z[t]):
            e = lam * z[t] + (1 - lam) * e
            t0 += 1
        sig = asym if asymptotic else asym * math.sqrt(1 - (1 - lam) ** (2 * max(t0, 1)))
        lim[t] = L * sig
        crossed[t] = e
        vals[t] = e  # the value compared with the limits (before a restart)
        hit_u = side != "lower" and e > lim[t]
        hit_l = side != "upper" and e < -lim[t]
        if hit_u or hit_l:
            alarm[t] = True
            which[t] = "upper" if hit_u else "lower"
            if restart:
                e, t0 = 0.0, 0
    return ChartPath(vals, -vals, crossed, alarm, which, lim, {"value": e, "t": t0})


def ra_cusum_weights(p: Any, y: Any, odds_ratio: float) -> np.ndarray:
    """Steiner et al.'s log-likelihood-ratio weights ``y ln R - ln(1 - p + R p)``.

    Examples
    --------
    METHODS.md O7 (R = 2): the first weight, p = 0.1 and y = 1, is ln 2 - ln 1.1.

    >>> round(float(ra_cusum_weights([0.1], [1], 2.0)[0]), 6)
    0.597837
    """
    r = check_real(odds_ratio, "odds_ratio", low=0, low_inclusive=False)
    if r == 1:
        raise InvalidParameterError("odds_ratio must differ from 1 (1 is the in-control odds)")
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return y * math.log(r) - np.log1p(p * (r - 1))


def ra_cusum_path(p: Any, y: Any, *, odds_ratio: float, h: float, state: float = 0.0,
                  restart: bool = True) -> ChartPath:
    """Risk-adjusted Bernoulli CUSUM over a (p, y) stream in time order.

    Vectorized: without a restart the statistic is Lindley's ``S_t = C_t - min(-S_0,
    min_{s <= t} C_s)`` of the cumulative weights ``C``; the stream is cut at each alarm (the
    chart restarts at 0 for the next case). ``upper`` holds S after each case, as compared
    with ``h``.

    Examples
    --------
    METHODS.md O7: R = 2, p = [0.1, 0.2, 0.5, 0.1, 0.3], y = [1, 0, 1, 1, 0].

    >>> path = ra_cusum_path([0.1, 0.2, 0.5, 0.1, 0.3], [1, 0, 1, 1, 0], odds_ratio=2, h=10)
    >>> path.upper.round(6).tolist()
    [0.597837, 0.415515, 0.703198, 1.301035, 1.03867]
    """
    w = ra_cusum_weights(p, y, odds_ratio)
    n = w.size
    out = np.zeros(n)
    alarm = np.zeros(n, dtype=bool)
    s0 = float(state)
    start = 0
    while start < n:
        c = np.cumsum(w[start:])
        s = c - np.minimum(-s0, np.minimum.accumulate(c))
        hit = np.flatnonzero(s > h)
        if hit.size == 0 or not restart:
            out[start:] = s
            if not restart and hit.size:
                alarm[start + hit] = True
            s0 = float(s[-1]) if s.size else s0
            break
        j = int(hit[0])
        out[start:start + j + 1] = s[:j + 1]
        alarm[start + j] = True
        start += j + 1
        s0 = 0.0
    crossed = out.copy()  # S after each case, before a restart
    if n and restart:
        s0 = 0.0 if alarm[-1] else float(out[-1])
    which = np.where(alarm, "upper", None).astype(object)
    return ChartPath(out, np.zeros(n), crossed, alarm, which, np.full(n, float(h)),
                     {"value": s0})


# ============================================================================ ARL
def _norm_cdf(x: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return ndtr(x)


def _solve_arl(R: np.ndarray, start: int) -> float:
    from threadpoolctl import threadpool_limits

    n = R.shape[0]
    try:
        with threadpool_limits(1):  # BLAS threads only contend on a small shared machine
            v = np.linalg.solve(np.eye(n) - R, np.ones(n))
    except np.linalg.LinAlgError:
        return math.inf
    return float(v[start])


@lru_cache(maxsize=512)
def _cusum_one_sided(k: float, h: float, shift: float, n_states: int, head_start: float) -> float:
    # cached: a protocol's rules with the same k and ARL0 search the same limits
    w = 2.0 * h / (2 * n_states - 1)
    i = np.arange(n_states)[:, None]
    j = np.arange(n_states)[None, :]
    up = _norm_cdf((j + 0.5) * w - i * w + k - shift)
    lo = _norm_cdf((j - 0.5) * w - i * w + k - shift)
    R = up - lo
    R[:, 0] = _norm_cdf(0.5 * w - i[:, 0] * w + k - shift)
    start = int(min(n_states - 1, round(head_start / w)))
    return _solve_arl(R, start)


def cusum_arl(k: float, h: float, *, shift: float = 0.0, side: str = "two-sided",
              head_start: float = 0.0, n_states: int = CUSUM_STATES) -> float:
    """Average run length of a tabular CUSUM on N(shift, 1) data (Brook-Evans Markov chain).

    Parameters
    ----------
    k, h : float
        Reference value and decision interval.
    shift : float
        Mean of the monitored series in SD units (0: in control).
    side : {"two-sided", "upper", "lower"}
        Two-sided: ``1 / ARL = 1 / ARL+ + 1 / ARL-`` (Lucas & Crosier 1982, Table 1).
    head_start : float
        Starting value of each one-sided statistic (fast initial response). The two-sided
        combination is exact only without a head start (both sides start at 0); with one,
        simulate the chart (:func:`simulate_run_lengths`), as Lucas & Crosier's FIR ARL0 of
        149 for k = 0.5, h = 4, head start h / 2 is reproduced in the tests.
    n_states : int
        States of the chain (400: Lucas & Crosier's table to its printed digits).

    Examples
    --------
    ORACLES-2.md, Lucas & Crosier (1982) Table 1 (k = 0.5, h = 4) and Brook & Evans (1972)
    (one-sided, k = 0.5, h = 3):

    >>> round(cusum_arl(0.5, 4.0), 2), round(cusum_arl(0.5, 3.0, side="upper"), 2)
    (167.68, 117.59)
    """
    side = _side(side)
    n_states = check_int(n_states, "n_states", minimum=2)
    k = check_real(k, "k", low=0)
    h = check_real(h, "h", low=0, low_inclusive=False)
    if side == "upper":
        return _cusum_one_sided(k, h, shift, n_states, head_start)
    if side == "lower":
        return _cusum_one_sided(k, h, -shift, n_states, head_start)
    a = _cusum_one_sided(k, h, shift, n_states, head_start)
    # the lower chart on N(shift, 1) is the upper chart on N(-shift, 1): in control, the same
    b = a if shift == 0 else _cusum_one_sided(k, h, -shift, n_states, head_start)
    return 1.0 / (1.0 / a + 1.0 / b)


def ewma_arl(lam: float, L: float, *, shift: float = 0.0, side: str = "two-sided",
             n_states: int = EWMA_STATES) -> float:
    """ARL of an EWMA with asymptotic limits ``+-L sqrt(lambda / (2 - lambda))`` on N(shift, 1)
    data, started at 0 (Lucas & Saccucci's Markov chain with ``n_states = 2m + 1`` states
    across the limits; a one-sided chart reflects at 0... is not offered: ``side`` must be
    two-sided for the chain).

    Examples
    --------
    ORACLES-2.md, Lucas & Saccucci (1990) Table 3 (lambda = 0.5, L = 3.071):

    >>> round(ewma_arl(0.5, 3.071))
    500
    """
    if _side(side) != "two-sided":
        raise InvalidParameterError("ewma_arl computes two-sided charts only")
    lam = check_real(lam, "lam", low=0, high=1, low_inclusive=False)
    n_states = check_int(n_states, "n_states", minimum=3)
    if n_states % 2 == 0:
        n_states += 1
    return _ewma_chain(lam, float(L), float(shift), n_states)


@lru_cache(maxsize=512)
def _ewma_chain(lam: float, L: float, shift: float, n_states: int) -> float:
    H = L * math.sqrt(lam / (2 - lam))
    d = 2 * H / n_states
    c = -H + (np.arange(n_states) + 0.5) * d
    lo_edge, hi_edge = c - d / 2, c + d / 2
    base = (1 - lam) * c[:, None]
    R = (_norm_cdf((hi_edge[None, :] - base) / lam - shift)
         - _norm_cdf((lo_edge[None, :] - base) / lam - shift))
    return _solve_arl(R, n_states // 2)


def risk_atoms(p: Any, n_atoms: int = RISK_ATOMS) -> tuple[np.ndarray, np.ndarray]:
    """A discrete distribution of predicted risks: the mean p of ``n_atoms`` quantile groups of
    a sample, with their shares (the patient mix the risk-adjusted ARL is computed for)."""
    v = np.sort(np.asarray(p, dtype=np.float64))
    if v.size == 0:
        raise InvalidParameterError("risk_atoms: no predicted risk given")
    g = np.minimum((np.arange(v.size) * n_atoms) // v.size, n_atoms - 1)
    cnt = np.bincount(g, minlength=n_atoms).astype(float)
    tot = np.bincount(g, weights=v, minlength=n_atoms)
    ok = cnt > 0
    return tot[ok] / cnt[ok], cnt[ok] / cnt[ok].sum()


def ra_cusum_arl(h: float, odds_ratio: float, risks: tuple[np.ndarray, np.ndarray], *,
                 true_odds_ratio: float = 1.0, n_states: int = RA_STATES) -> float:
    """ARL (in cases) of the risk-adjusted Bernoulli CUSUM by a Markov chain (Steiner et al.
    2000): states of width ``h / (n_states - 1/2)`` (state 0 holds [0, width/2]); each case's
    risk drawn from ``risks`` (:func:`risk_atoms`) and its outcome from Bernoulli(p') with
    ``odds(p') = true_odds_ratio x odds(p)`` (1: in control)."""
    h = check_real(h, "h", low=0, low_inclusive=False)
    r = check_real(odds_ratio, "odds_ratio", low=0, low_inclusive=False)
    p, wt = risks
    p = np.asarray(p, dtype=np.float64)
    wt = np.asarray(wt, dtype=np.float64)
    q = p * true_odds_ratio / (1 - p + p * true_odds_ratio)
    w1 = math.log(r) - np.log1p(p * (r - 1))
    w0 = -np.log1p(p * (r - 1))
    atoms = np.concatenate([w1, w0])
    prob = np.concatenate([wt * q, wt * (1 - q)])
    N = check_int(n_states, "n_states", minimum=2)
    width = h / (N - 0.5)
    s = np.arange(N) * width
    target = s[:, None] + atoms[None, :]
    j = np.where(target <= 0, 0, np.floor(target / width + 0.5)).astype(np.int64)
    keep = (target <= h) & (j < N)
    R = np.zeros((N, N))
    rows = np.broadcast_to(np.arange(N)[:, None], j.shape)
    np.add.at(R, (rows[keep], j[keep]), np.broadcast_to(prob[None, :], j.shape)[keep])
    return _solve_arl(R, 0)


def _root(f, lo: float, hi: float, target: float) -> float:
    """x with f(x) = target for an increasing f (bisection on log f, then brentq)."""
    from scipy.optimize import brentq

    lt = math.log(target)
    while math.log(f(hi)) < lt:
        lo, hi = hi, hi * 2
        if hi > 1e4:
            raise InvalidParameterError(f"no limit reaches an in-control ARL of {target:g}")
    return float(brentq(lambda x: math.log(f(x)) - lt, lo, hi, xtol=1e-7, rtol=1e-7))


def _check_arl0(arl0: float) -> float:
    return check_real(arl0, "arl0", low=1, low_inclusive=False)


def cusum_limit(arl0: float, *, k: float = 0.5, side: str = "two-sided",
                n_states: int = CUSUM_STATES) -> float:
    """Decision interval h giving in-control ARL ``arl0`` (Markov chain, root finding)."""
    arl0 = _check_arl0(arl0)
    return _root(lambda h: cusum_arl(k, h, side=side, n_states=n_states), 1e-3, 2.0, arl0)


def ewma_limit(arl0: float, *, lam: float, n_states: int = EWMA_STATES) -> float:
    """Limit multiplier L giving in-control ARL ``arl0`` (asymptotic limits' chain)."""
    arl0 = _check_arl0(arl0)
    return _root(lambda L: ewma_arl(lam, L, n_states=n_states), 0.5, 3.0, arl0)


def ra_cusum_limit(arl0: float, *, odds_ratio: float, risks: tuple[np.ndarray, np.ndarray],
                   n_states: int = RA_STATES) -> float:
    """Limit h of the risk-adjusted CUSUM giving in-control ARL ``arl0`` cases."""
    arl0 = _check_arl0(arl0)
    return _root(lambda h: ra_cusum_arl(h, odds_ratio, risks, n_states=n_states), 0.05, 2.0,
                 arl0)


# ============================================================================ simulation
def simulate_run_lengths(method: str, params: dict[str, float], *, n_rep: int = 2000,
                         max_len: int = 100_000, shift: float = 0.0,
                         risks: tuple[np.ndarray, np.ndarray] | None = None,
                         true_odds_ratio: float = 1.0, random_state: Any = None) -> np.ndarray:
    """Run lengths of ``n_rep`` independent charts (vectorized across replicates, seeded).

    ``method`` "cusum" (params k, h, side, head_start) or "ewma" (lam, L; exact limits unless
    ``asymptotic``) on N(shift, 1) points, or "risk_adjusted_cusum" (odds_ratio, h) on cases
    whose risk is drawn from ``risks`` and outcome from the risk shifted by
    ``true_odds_ratio``. Charts that have not signalled after ``max_len`` points get
    ``max_len + 1`` (censored: keep ``max_len`` well above the ARL).
    """
    rng = np.random.default_rng(random_state)
    n_rep = check_int(n_rep, "n_rep", minimum=1)
    rl = np.full(n_rep, max_len + 1, dtype=np.int64)
    alive = np.ones(n_rep, dtype=bool)
    if method == "cusum":
        k, h, side = params["k"], params["h"], params.get("side", "two-sided")
        su = np.full(n_rep, float(params.get("head_start", 0.0)))
        sl = su.copy()
    elif method == "ewma":
        lam, L = params["lam"], params["L"]
        e = np.zeros(n_rep)
        asym = math.sqrt(lam / (2 - lam))
    elif method == "risk_adjusted_cusum":
        if risks is None:
            raise InvalidParameterError("risk_adjusted_cusum simulation needs risks")
        r, h = params["odds_ratio"], params["h"]
        p_atoms, w_atoms = risks
        cdf = np.cumsum(w_atoms)
        s = np.zeros(n_rep)
    else:
        raise InvalidParameterError(
            f"method={method!r} is not valid; choose one of: {', '.join(CHART_METHODS)}")
    block = 256
    t = 0
    while t < max_len and alive.any():
        idx = np.flatnonzero(alive)
        m = idx.size
        steps = min(block, max_len - t)
        if method == "risk_adjusted_cusum":
            pick = np.searchsorted(cdf, rng.random((steps, m)) * cdf[-1], side="right")
            pr = p_atoms[np.minimum(pick, p_atoms.size - 1)]
            q = pr * true_odds_ratio / (1 - pr + pr * true_odds_ratio)
            y = rng.random((steps, m)) < q
            x = y * math.log(r) - np.log1p(pr * (r - 1))
        else:
            x = rng.standard_normal((steps, m)) + shift
        done = np.zeros(m, dtype=bool)
        when = np.zeros(m, dtype=np.int64)
        for j in range(steps):
            if method == "cusum":
                if side != "lower":
                    su[idx] = np.maximum(0.0, su[idx] + x[j] - k)
                if side != "upper":
                    sl[idx] = np.maximum(0.0, sl[idx] - x[j] - k)
                hit = (su[idx] > h) | (sl[idx] > h)
            elif method == "ewma":
                e[idx] = lam * x[j] + (1 - lam) * e[idx]
                tt = t + j + 1
                sig = asym if params.get("asymptotic") else asym * math.sqrt(
                    1 - (1 - lam) ** (2 * tt))
                hit = np.abs(e[idx]) > L * sig
            else:
                s[idx] = np.maximum(0.0, s[idx] + x[j])
                hit = s[idx] > h
            new = hit & ~done
            when[new] = t + j + 1
            done |= hit
        rl[idx[done]] = when[done]
        alive[idx[done]] = False
        t += steps
    return rl
