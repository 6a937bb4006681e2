"""The drift-test registry: one :class:`DriftTestSpec` per two-sample test of input drift.

Shaped like the metric registry (:mod:`rwe.metrics._registry`): each entry carries the feature
kinds it applies to, its effect size (what an alert is judged on), a conventional default
threshold (the protocol overrides it), whether it has a p-value, and one *kernel* that computes
the test for every current level (window x site x subgroup) at once from histograms: a
reference histogram and the histograms of the current levels, on bins fixed on the reference.
A kernel never raises on degenerate data: it returns NaN with a ``reason``.

Binned tests state their resolution: :class:`DriftValues` carries ``bound``, a deterministic
bound on |binned effect - the effect on the rows|, derived from what a bin can hide (see each
kernel); a bin whose mean equals its left edge (relative tolerance ``1e-9``) holds only that
value, so discrete features (integer ages, rounded sizes) give bound 0 and the row value. The
*exact* mode (``exact`` of a spec) computes the test from rows with scipy, on one machine.

Third-party tests are added with :func:`register_drift_test`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rwe.exceptions import InvalidParameterError

__all__ = [
    "DriftTestSpec", "DriftValues", "DriftContext", "FeatureHist", "register_drift_test",
    "get_drift_test", "drift_test_names", "reference_edges", "FEATURE_KINDS",
    "DEFAULT_FEATURE_BINS", "DEFAULT_PSI_BINS", "PSI_EPS", "REASON_NO_DATA",
]

FEATURE_KINDS = ("numeric", "categorical")
DEFAULT_FEATURE_BINS = 100
DEFAULT_PSI_BINS = 10
#: Proportions are floored at this value before taking logarithms in the PSI (a bin empty on
#: one side would otherwise give an infinite index); Evidently uses the same floor.
PSI_EPS = 1e-4
#: Relative tolerance under which a bin's mean equals its left edge (the bin holds one value).
DEGENERATE_RTOL = 1e-9
REASON_NO_DATA = "no data in this window"
REASON_NO_REFERENCE = "the reference has no value of this feature"

UNKNOWN_TEST = "drift test {name!r} is unknown; valid tests: {valid}"
DUPLICATE_TEST = "drift test {name!r} is already registered"

REF_PSI = ("Siddiqi N. Credit Risk Scorecards: Developing and Implementing Intelligent Credit "
           "Scoring. Wiley; 2006 (population stability index; 0.1 / 0.25 rules of thumb). "
           "Yurdakul B. Statistical properties of population stability index. PhD thesis, "
           "Western Michigan University; 2018.")
REF_KS = ("Smirnov NV. Table for estimating the goodness of fit of empirical distributions. Ann "
          "Math Stat 1948;19(2):279-281. Hodges JL. The significance probability of the "
          "Smirnov two-sample test. Ark Mat 1958;3:469-486 (scipy.stats.ks_2samp).")
REF_WASSERSTEIN = ("Ramdas A, Garcia Trillos N, Cuturi M. On Wasserstein two-sample testing and "
                   "related families of nonparametric tests. Entropy 2017;19(2):47. Normalised "
                   "by the reference SD as in Evidently's wasserstein drift method.")
REF_CHI2 = ("Pearson K. On the criterion that a given system of deviations from the probable... "
            "Philos Mag 1900;50(302):157-175. Cramer H. Mathematical Methods of Statistics. "
            "Princeton; 1946 (Cramer's V).")
REF_JS = ("Lin J. Divergence measures based on the Shannon entropy. IEEE Trans Inf Theory "
          "1991;37(1):145-151 (Jensen-Shannon distance, log base 2, in [0, 1]).")


@dataclass(frozen=True, eq=False)
class FeatureHist:
    """Histograms of one feature per level (the input of a drift kernel).

    ``counts`` (levels, columns): for a numeric feature the columns of
    :class:`rwe.stats.summaries.NumericFeature` (underflow, B bins on ``edges``, overflow) with
    ``sums`` of x per column; for a categorical one a column per category of ``categories``
    (missing values excluded). ``sd`` is the SD (ddof = 0) of the non-missing values per level
    (numeric), ``missing`` the missing count per level.
    """

    kind: str
    counts: np.ndarray
    edges: np.ndarray | None = None
    sums: np.ndarray | None = None
    categories: tuple[str, ...] | None = None
    sd: np.ndarray | None = None
    missing: np.ndarray | None = None

    @property
    def n(self) -> np.ndarray:
        return self.counts.sum(axis=1)

    @property
    def n_levels(self) -> int:
        return int(self.counts.shape[0])


@dataclass(frozen=True, eq=False)
class DriftContext:
    """Settings a drift kernel reads."""

    psi_bins: int = DEFAULT_PSI_BINS
    psi_eps: float = PSI_EPS


@dataclass(eq=False)
class DriftValues:
    """A drift kernel's output, one entry per current level.

    ``effect`` is what alerts are judged on; ``statistic`` the test statistic (equal to the
    effect for distances); ``pvalue`` NaN for tests without one; ``bound`` the binning bound on
    the effect (0: exact); ``reason`` None or why a value is missing.
    """

    effect: np.ndarray
    statistic: np.ndarray
    pvalue: np.ndarray
    bound: np.ndarray
    reason: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class DriftTestSpec:
    """One registered drift test.

    Parameters
    ----------
    name : str
        Registry key (``"psi"``, ``"ks"``...); the protocol's ``drift.tests`` names it.
    label : str
        Display name.
    kinds : tuple of str
        Feature kinds it applies to (``"numeric"``, ``"categorical"``).
    effect : str
        What the effect size is (``"PSI"``, ``"D"``, ``"W1 / SD(reference)"``, ``"Cramer's V"``,
        ``"JS distance"``): alerts are judged on it, never on a p-value alone.
    default_threshold : float
        Conventional alert threshold of the effect (a protocol's ``drift.thresholds`` replaces
        it); the effect is flagged when ``effect >= threshold``.
    has_pvalue : bool
        Whether the test has a p-value (then adjusted by Benjamini-Hochberg across features x
        sites x windows).
    kernel : callable
        ``kernel(reference: FeatureHist, current: FeatureHist, ctx) -> DriftValues``.
    exact : callable, optional
        ``exact(reference_values, [current_values per level]) -> DriftValues`` from rows (scipy).
    binned : str
        ``"exact"`` when the histogram value is the row value (category counts), ``"bounded"``
        when it carries a resolution bound, ``"defined"`` when the test is defined on the bins.
    description, reference : str
    """

    name: str
    label: str
    kinds: tuple[str, ...]
    effect: str
    default_threshold: float
    has_pvalue: bool
    kernel: Callable[..., DriftValues] = field(repr=False, compare=False)
    exact: Callable[..., DriftValues] | None = field(default=None, repr=False, compare=False)
    binned: str = "exact"
    description: str = ""
    reference: str = ""

    def __post_init__(self) -> None:
        bad = [k for k in self.kinds if k not in FEATURE_KINDS]
        if not self.kinds or bad:
            raise InvalidParameterError(
                f"kinds of drift test {self.name!r} must be among {FEATURE_KINDS}, got "
                f"{self.kinds!r}")
        if self.binned not in ("exact", "bounded", "defined"):
            raise InvalidParameterError(
                f"binned={self.binned!r} is not valid; choose exact, bounded or defined")

    def applies_to(self, kind: str) -> bool:
        return kind in self.kinds


_TESTS: dict[str, DriftTestSpec] = {}


def register_drift_test(spec: DriftTestSpec) -> DriftTestSpec:
    """Add ``spec`` to the registry; a duplicate name is an :class:`InvalidParameterError`."""
    if not isinstance(spec, DriftTestSpec):
        raise InvalidParameterError(f"spec must be a DriftTestSpec, got {type(spec).__name__}")
    if spec.name in _TESTS:
        raise InvalidParameterError(DUPLICATE_TEST.format(name=spec.name))
    _TESTS[spec.name] = spec
    return spec


def get_drift_test(name: str) -> DriftTestSpec:
    """The spec registered under ``name``; the error lists the valid names."""
    try:
        return _TESTS[name]
    except (KeyError, TypeError):
        raise InvalidParameterError(
            UNKNOWN_TEST.format(name=name, valid=", ".join(sorted(_TESTS)))) from None


def drift_test_names(kind: str | None = None) -> list[str]:
    """Registered test names (sorted), optionally only those for one feature kind."""
    if kind is not None and kind not in FEATURE_KINDS:
        raise InvalidParameterError(
            f"kind={kind!r} is not valid; choose one of: {', '.join(FEATURE_KINDS)}")
    return sorted(n for n, s in _TESTS.items() if kind is None or kind in s.kinds)


# ============================================================================ bins
def reference_edges(values: Any, n_bins: int = DEFAULT_FEATURE_BINS) -> np.ndarray:
    """Histogram edges of a numeric feature, fixed on the reference population.

    With at most ``n_bins`` distinct reference values, every distinct value is the left edge of
    its own bin (plus one edge after the largest), so the histogram holds the exact
    distribution of a discrete feature. Otherwise the edges are the reference's quantiles at
    ``k / n_bins``, each the smallest value x with F(x) >= k / n_bins (data values; ties merge
    bins), the first and last being its minimum and maximum. Values of the current data outside the
    reference's range fall in the underflow and overflow bins (out of the reference's support).

    Parameters
    ----------
    values : array_like of float
        The reference's values (NaN ignored).
    n_bins : int
        Largest number of bins.

    Returns
    -------
    numpy.ndarray
        Strictly increasing edges (at least two).
    """
    v = np.asarray(values, dtype=np.float64)
    v = np.sort(v[np.isfinite(v)])
    if v.size == 0:
        raise InvalidParameterError("reference_edges: the reference has no finite value")
    u = v[np.concatenate([[True], v[1:] != v[:-1]])]
    if u.size <= n_bins:
        step = float(u[-1] - u[-2]) if u.size > 1 else 1.0
        return np.append(u, u[-1] + step)
    # inverted-CDF quantiles of the sorted values: the smallest x with F(x) >= k / n_bins
    n = v.size
    idx = np.ceil(np.arange(n_bins + 1) * n / n_bins).astype(np.int64) - 1
    e = np.unique(v[np.clip(idx, 0, n - 1)])
    return e if e.size >= 2 else np.append(e, e[-1] + 1.0)


def _degenerate(h: FeatureHist) -> np.ndarray:
    """(levels, columns): the bin holds only values equal to its left edge."""
    e = h.edges
    left = np.concatenate([[np.nan], e[:-1], [np.nan]])  # left edge of each column
    c = h.counts
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = h.sums / c
    tol = DEGENERATE_RTOL * np.maximum(1.0, np.abs(left))
    return (c > 0) & (np.abs(mean - left) <= tol)


def _cum(h: FeatureHist) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.cumsum(h.counts, axis=1) / h.n[:, None]


def _empty(k: int) -> DriftValues:
    nan = np.full(k, np.nan)
    return DriftValues(nan, nan.copy(), nan.copy(), nan.copy(), np.full(k, None, dtype=object))


def _mark_empty(out: DriftValues, ref: FeatureHist, cur: FeatureHist) -> DriftValues:
    none = cur.n == 0
    for a in (out.effect, out.statistic, out.pvalue, out.bound):
        a[none] = np.nan
    out.reason[none] = REASON_NO_DATA
    if ref.n[0] == 0:
        for a in (out.effect, out.statistic, out.pvalue, out.bound):
            a[:] = np.nan
        out.reason[:] = REASON_NO_REFERENCE
    return out


def _ranges(h: FeatureHist, cum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Range [lo, hi] of each level's CDF inside each column (see the kernels)."""
    L, W = h.counts.shape
    before = np.concatenate([np.zeros((L, 1)), cum[:, :-1]], axis=1)
    deg = _degenerate(h)
    lo = np.where(deg, cum, before)
    return lo, cum


# ============================================================================ kernels
def ks_kernel(ref: FeatureHist, cur: FeatureHist, ctx: DriftContext) -> DriftValues:
    """Two-sample Kolmogorov-Smirnov: D = sup |F_ref - F_cur| with Smirnov's asymptotic p.

    From histograms: D is the largest difference of the two CDFs at the bin edges, a lower
    bound of the row D; inside a bin each CDF lies between its values at the bin's two ends
    (at its right end only, for a bin holding one value), so the row D is at most the largest
    such difference: ``bound`` is that maximum minus D. The p-value is Kolmogorov's limiting
    distribution, ``kstwobign.sf(D sqrt(m n / (m + n)))`` (Smirnov 1948; fast for any n;
    computed as ``scipy.special.kolmogorov``, which ``kstwobign.sf`` calls);
    scipy's ``ks_2samp`` (exact mode) uses the exact distribution below 10,000 rows per sample
    and ``kstwo.sf(D, round(m n / (m + n)))`` above, which agree with it to about 1 / sqrt(n).

    References
    ----------
    .. [1] Smirnov NV. Table for estimating the goodness of fit of empirical distributions.
       Ann Math Stat 1948;19(2):279-281.
    """
    from scipy.special import kolmogorov  # kstwobign.sf, without importing scipy.stats

    cr, cc = _cum(ref), _cum(cur)
    diff = np.abs(cr[:, :-1] - cc[:, :-1])
    with np.errstate(invalid="ignore"):
        d = np.max(diff, axis=1) if diff.shape[1] else np.zeros(cur.n_levels)
    lo_r, hi_r = _ranges(ref, cr)
    lo_c, hi_c = _ranges(cur, cc)
    with np.errstate(invalid="ignore"):
        up = np.maximum(np.max(hi_r - lo_c, axis=1), np.max(hi_c - lo_r, axis=1))
    m, n = float(ref.n[0]), cur.n.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        en = m * n / (m + n)
        p = np.where(n > 0, kolmogorov(d * np.sqrt(en)), np.nan)
    out = DriftValues(d, d.copy(), np.clip(p, 0, 1), np.maximum(up - d, 0.0),
                      np.full(cur.n_levels, None, dtype=object))
    return _mark_empty(out, ref, cur)


def ks_exact(ref_values: np.ndarray, current: Sequence[np.ndarray]) -> DriftValues:
    """scipy.stats.ks_2samp(reference, current) per level (method "auto")."""
    from scipy.stats import ks_2samp

    out = _empty(len(current))
    for i, v in enumerate(current):
        if v.size == 0:
            out.reason[i] = REASON_NO_DATA
            continue
        if ref_values.size == 0:
            out.reason[i] = REASON_NO_REFERENCE
            continue
        r = ks_2samp(ref_values, v)
        out.effect[i] = out.statistic[i] = float(r.statistic)
        out.pvalue[i] = float(r.pvalue)
        out.bound[i] = 0.0
    return out


def _abs_integral(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """∫_0^1 |a + (b - a) t| dt for each pair (a linear function's mean absolute value)."""
    s = np.abs(a) + np.abs(b)
    same = a * b >= 0
    with np.errstate(invalid="ignore", divide="ignore"):
        cross = np.where(s > 0, (a * a + b * b) / (2 * np.where(s > 0, s, 1)), 0.0)
    return np.where(same, s / 2, cross)


def _tail(h: FeatureHist, col: int, edge: float, upper: bool) -> np.ndarray:
    """E[(edge - X)+] (lower tail) or E[(X - edge)+] (upper) per level from a tail column."""
    with np.errstate(invalid="ignore", divide="ignore"):
        c, s = h.counts[:, col], h.sums[:, col]
        t = (s - c * edge) if upper else (c * edge - s)
        return np.maximum(t, 0.0) / h.n


def _bin_integrals(h: FeatureHist, cum: np.ndarray) -> np.ndarray:
    """∫ F(x) dx over each bin [e_{j-1}, e_j] (levels, B), exact from counts and sums:
    ``w F(e_{j-1}^-) + (c_j e_j - s_j) / n``."""
    e = h.edges
    w = np.diff(e)
    before = cum[:, :-2]  # F just below each bin's left edge (columns 0..B-1)
    c, s = h.counts[:, 1:-1], h.sums[:, 1:-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return w * before + (c * e[1:] - s) / h.n[:, None]


def wasserstein_kernel(ref: FeatureHist, cur: FeatureHist, ctx: DriftContext) -> DriftValues:
    """Wasserstein-1 distance ∫|F_ref - F_cur| dx divided by the reference SD (ddof = 0).

    From histograms: the integral of each CDF over each bin is exact from the bin's count and
    sum (``w F(left) + (c right - Σx) / n``), so the integral of the difference d over a bin is
    exact; where d cannot change sign inside the bin (each CDF lies between its values at the
    bin's ends, at its right end only for a bin holding one value) ``∫|d| = |∫d|`` exactly.
    Otherwise ``|∫d|`` is the estimate and the largest ∫|d| compatible with ∫d and the range
    of d its upper limit; ``bound`` is the sum of the differences, divided by the reference SD.
    Beyond the outer edges the integral is E[(edge - X)+] or E[(X - edge)+] from the tail
    bins' counts and sums (exact when only one sample has values there). Exact mode:
    ``scipy.stats.wasserstein_distance(reference, current) / numpy.std(reference)``.

    References
    ----------
    .. [1] Ramdas A, Garcia Trillos N, Cuturi M. On Wasserstein two-sample testing and related
       families of nonparametric tests. Entropy 2017;19(2):47.
    .. [2] Vallender SS. Calculation of the Wasserstein distance between probability
       distributions on the line. Theory Probab Appl 1974;18(4):784-786.
    """
    e = ref.edges
    cr, cc = _cum(ref), _cum(cur)
    lo_r, hi_r = _ranges(ref, cr)
    lo_c, hi_c = _ranges(cur, cc)
    w = np.diff(e)
    B = len(w)
    sl = slice(1, B + 1)
    integral = _bin_integrals(ref, cr) - _bin_integrals(cur, cc)
    dl = lo_r[:, sl] - hi_c[:, sl]
    dh = hi_r[:, sl] - lo_c[:, sl]
    est_bins = np.abs(integral)
    cross = (dl < 0) & (dh > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.clip((integral / w - dl) / np.where(cross, dh - dl, 1.0), 0.0, 1.0)
        up_bins = np.where(cross, w * (t * dh - (1 - t) * dl), est_bins)
    est_in = np.nansum(est_bins, axis=1)
    up_in = np.nansum(up_bins, axis=1)
    tails_est = np.zeros(cur.n_levels)
    tails_up = np.zeros(cur.n_levels)
    for col, edge, upper in ((0, e[0], False), (B + 1, e[-1], True)):
        tr, tc = _tail(ref, col, edge, upper), _tail(cur, col, edge, upper)
        tails_est += np.abs(tr - tc)
        tails_up += tr + tc
    w1 = est_in + tails_est
    upper_ = up_in + tails_up
    sd = float(ref.sd[0]) if ref.sd is not None else math.nan
    reason = np.full(cur.n_levels, None, dtype=object)
    if not sd > 0:
        reason[:] = "the reference SD is 0: the normalised distance is undefined"
    with np.errstate(invalid="ignore", divide="ignore"):
        eff = w1 / sd if sd > 0 else np.full(cur.n_levels, np.nan)
        bound = (upper_ - w1) / sd if sd > 0 else eff.copy()
    out = DriftValues(eff, eff.copy(), np.full(cur.n_levels, np.nan), np.maximum(bound, 0.0),
                      reason, {"w1": w1, "reference_sd": np.full(cur.n_levels, sd)})
    return _mark_empty(out, ref, cur)


def wasserstein_exact(ref_values: np.ndarray, current: Sequence[np.ndarray]) -> DriftValues:
    """``scipy.stats.wasserstein_distance(reference, current) / numpy.std(reference)``."""
    from scipy.stats import wasserstein_distance

    out = _empty(len(current))
    sd = float(np.std(ref_values)) if ref_values.size else math.nan
    w1s = np.full(len(current), np.nan)
    for i, v in enumerate(current):
        if v.size == 0:
            out.reason[i] = REASON_NO_DATA
            continue
        if ref_values.size == 0:
            out.reason[i] = REASON_NO_REFERENCE
            continue
        w1s[i] = float(wasserstein_distance(ref_values, v))
        if sd > 0:
            out.effect[i] = out.statistic[i] = w1s[i] / sd
            out.bound[i] = 0.0
        else:
            out.reason[i] = "the reference SD is 0: the normalised distance is undefined"
    out.extras = {"w1": w1s, "reference_sd": np.full(len(current), sd)}
    return out


def _psi_groups(ref: FeatureHist, n_groups: int) -> np.ndarray:
    """Group of each histogram column: the reference quantile bin (decile for 10 groups)
    holding the column's middle reference mass; underflow joins the first, overflow the last."""
    n = ref.n[0]
    c = ref.counts[0]
    mid = (np.cumsum(c) - c / 2) / (n if n > 0 else 1)
    g = np.floor(mid * n_groups).astype(np.int64)
    g = np.clip(g, 0, n_groups - 1)
    _, g = np.unique(g, return_inverse=True)  # consecutive group numbers
    return g.reshape(-1)


def _psi(p: np.ndarray, q: np.ndarray, eps: float) -> np.ndarray:
    pe, qe = np.maximum(p, eps), np.maximum(q, eps)
    return ((qe - pe) * np.log(qe / pe)).sum(axis=1)


def psi_kernel(ref: FeatureHist, cur: FeatureHist, ctx: DriftContext) -> DriftValues:
    """Population stability index Σ (q_b - p_b) ln(q_b / p_b) over bins fixed on the reference.

    ``p`` the reference's and ``q`` the current level's proportions per bin, both floored at
    ``psi_eps`` (1e-4). Categorical features: one bin per category (missing values excluded).
    Numeric features: ``psi_bins`` (10) quantile bins of the reference (deciles), resolved on
    the histogram's edges (each bin joins the decile holding its middle reference mass), the
    first and last open-ended; values outside the reference's range join the end bins. The PSI is defined on these bins (it is not an approximation of a row
    statistic). Rules of thumb: < 0.1 no shift, 0.1-0.25 moderate, > 0.25 major.

    References
    ----------
    .. [1] Siddiqi N. Credit Risk Scorecards. Wiley; 2006.
    .. [2] Yurdakul B. Statistical properties of population stability index. PhD thesis,
       Western Michigan University; 2018.
    """
    if ref.kind == "numeric":
        g = _psi_groups(ref, ctx.psi_bins)
        k = int(g.max()) + 1
        rc = np.zeros((1, k))
        cc = np.zeros((cur.n_levels, k))
        np.add.at(rc, (0, g), ref.counts[0])
        np.add.at(cc, (slice(None), g), cur.counts)
    else:
        rc, cc = ref.counts.astype(float), cur.counts.astype(float)
        k = rc.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        p = rc / rc.sum(axis=1, keepdims=True)
        q = cc / cc.sum(axis=1, keepdims=True)
    v = _psi(p, q, ctx.psi_eps)
    out = DriftValues(v, v.copy(), np.full(cur.n_levels, np.nan), np.zeros(cur.n_levels),
                      np.full(cur.n_levels, None, dtype=object),
                      {"bins": np.full(cur.n_levels, k)})
    return _mark_empty(out, ref, cur)


def chi2_kernel(ref: FeatureHist, cur: FeatureHist, ctx: DriftContext) -> DriftValues:
    """Pearson chi-square test of homogeneity of the 2 x K table (reference, current) x
    category, without continuity correction; categories absent from both rows are dropped,
    df = K - 1. Effect: Cramer's V = sqrt(chi2 / N) (2 rows). Equal to
    ``scipy.stats.chi2_contingency(table, correction=False)``.

    References
    ----------
    .. [1] Pearson K. On the criterion that a given system of deviations... Philos Mag
       1900;50(302):157-175.
    .. [2] Cramer H. Mathematical Methods of Statistics. Princeton University Press; 1946.
    """
    from scipy.special import chdtrc  # chi2.sf(x, df), without importing scipy.stats

    r = np.broadcast_to(ref.counts.astype(float), cur.counts.shape)
    c = cur.counts.astype(float)
    col = r + c
    nr, nc = r.sum(axis=1, keepdims=True), c.sum(axis=1, keepdims=True)
    N = nr + nc
    with np.errstate(invalid="ignore", divide="ignore"):
        er, ec = nr * col / N, nc * col / N
        t = np.where(col > 0, (r - er) ** 2 / er + (c - ec) ** 2 / ec, 0.0)
    stat = t.sum(axis=1)
    df = (col > 0).sum(axis=1) - 1
    reason = np.full(cur.n_levels, None, dtype=object)
    reason[df < 1] = "a single category in reference and window: no test"
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(df >= 1, chdtrc(np.maximum(df, 1), stat), np.nan)
        v = np.where(df >= 1, np.sqrt(stat / N[:, 0]), np.nan)
        stat = np.where(df >= 1, stat, np.nan)
    out = DriftValues(v, stat, p, np.zeros(cur.n_levels), reason, {"df": df})
    return _mark_empty(out, ref, cur)


def js_kernel(ref: FeatureHist, cur: FeatureHist, ctx: DriftContext) -> DriftValues:
    """Jensen-Shannon distance sqrt((KL(p || m) + KL(q || m)) / 2), m = (p + q) / 2, log base 2
    (in [0, 1]) between the category proportions of reference and current level; equal to
    ``scipy.spatial.distance.jensenshannon(p, q, base=2)``.

    References
    ----------
    .. [1] Lin J. Divergence measures based on the Shannon entropy. IEEE Trans Inf Theory
       1991;37(1):145-151.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        p = ref.counts / ref.counts.sum(axis=1, keepdims=True)
        q = cur.counts / cur.counts.sum(axis=1, keepdims=True)
        m = (p + q) / 2
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum(axis=1)
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum(axis=1)
    v = np.sqrt(np.maximum((kl_p + kl_q) / 2, 0.0))
    out = DriftValues(v, v.copy(), np.full(cur.n_levels, np.nan), np.zeros(cur.n_levels),
                      np.full(cur.n_levels, None, dtype=object))
    return _mark_empty(out, ref, cur)


for _spec in (
    DriftTestSpec("psi", "Population stability index", ("numeric", "categorical"), "PSI", 0.25,
                  False, psi_kernel, binned="defined",
                  description="Σ (q - p) ln(q / p) over reference deciles or categories.",
                  reference=REF_PSI),
    DriftTestSpec("ks", "Kolmogorov-Smirnov", ("numeric",), "D", 0.1, True, ks_kernel,
                  exact=ks_exact, binned="bounded",
                  description="Largest difference of the two empirical CDFs.",
                  reference=REF_KS),
    DriftTestSpec("wasserstein", "Normalised Wasserstein distance", ("numeric",),
                  "W1 / SD(reference)", 0.1, False, wasserstein_kernel,
                  exact=wasserstein_exact, binned="bounded",
                  description="Earth mover's distance divided by the reference SD.",
                  reference=REF_WASSERSTEIN),
    DriftTestSpec("chi2", "Chi-square", ("categorical",), "Cramer's V", 0.1, True, chi2_kernel,
                  description="Pearson chi-square test of homogeneity; effect Cramer's V.",
                  reference=REF_CHI2),
    DriftTestSpec("js", "Jensen-Shannon distance", ("categorical",), "JS distance", 0.1, False,
                  js_kernel, description="Jensen-Shannon distance (base 2) of the category "
                  "proportions.", reference=REF_JS),
):
    register_drift_test(_spec)
