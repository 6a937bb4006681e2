"""Balance and overlap indices: SMD, PPR, Bhattacharyya coefficient, Tipton's B (METHODS C5)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from rwe._results import ResultMixin
from rwe._validation import as_1d, check_choice
from rwe.exceptions import ConvergenceWarning, InvalidParameterError

__all__ = [
    "smd",
    "smd_from_summary",
    "bhattacharyya_coefficient",
    "generalizability_index",
    "interpret_generalizability",
    "propensity_scores",
    "tipton_index",
    "TiptonResult",
    "B_BANDS",
]

#: Tipton (2014) rules of thumb for the generalizability index B (METHODS C5).
B_BANDS = ((0.9, "very high"), (0.8, "high"), (0.5, "medium"), (-np.inf, "low"))


# --------------------------------------------------------------------------- SMD
def _is_binary(x: np.ndarray) -> bool:
    if x.dtype == bool:
        return True
    u = np.unique(x[~np.isnan(x)]) if x.dtype.kind == "f" else np.unique(x)
    return bool(len(u) <= 2 and np.isin(u, [0, 1]).all())


def smd_from_summary(mean_a: float, mean_b: float, *, sd_a: float | None = None,
                     sd_b: float | None = None, binary: bool = False) -> float:
    """Standardised mean difference from summary statistics (Austin 2009).

    continuous: ``(m_a - m_b) / sqrt((s_a^2 + s_b^2) / 2)``;
    binary (``mean`` = proportion): ``(p_a - p_b) / sqrt((p_a(1-p_a) + p_b(1-p_b)) / 2)``.

    A zero denominator gives 0 when the means are equal and a signed ``inf`` otherwise
    (the groups are then perfectly separated on this covariate).

    References
    ----------
    .. [1] Austin PC. Balance diagnostics for comparing the distribution of baseline covariates
       between treatment groups in propensity-score matched samples. Stat Med.
       2009;28(25):3083-3107. doi:10.1002/sim.3697
    """
    ma, mb = float(mean_a), float(mean_b)
    if binary:
        va, vb = ma * (1 - ma), mb * (1 - mb)
    else:
        if sd_a is None or sd_b is None:
            raise InvalidParameterError("sd_a and sd_b are required for a continuous SMD")
        va, vb = float(sd_a) ** 2, float(sd_b) ** 2
    den = math.sqrt((va + vb) / 2)
    diff = ma - mb
    if den == 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / den


def smd(a: Any, b: Any, *, kind: Literal["auto", "continuous", "binary"] = "auto") -> float:
    """Standardised mean difference of ``a`` vs ``b`` (one documented definition).

    Uses Austin's (2009) definition with the *average of the two variances* (METHODS C5):
    continuous ``(x̄_a - x̄_b) / sqrt((s_a² + s_b²) / 2)`` with sample variances (ddof = 1);
    binary ``(p_a - p_b) / sqrt((p_a(1-p_a) + p_b(1-p_b)) / 2)``. Missing values (NaN) are
    ignored. The R package ``generalize`` instead weights the variances by ``n - 1``; with
    groups of very different size the two definitions differ.

    Parameters
    ----------
    a, b : array-like
        Values of the covariate in the two groups (numeric or boolean).
    kind : {"auto", "continuous", "binary"}
        ``"auto"`` treats 0/1 or boolean data in both groups as binary.

    Returns
    -------
    float
        The SMD (sign: ``a`` minus ``b``); 0 when both groups are constant and equal,
        ``±inf`` when both are constant and differ.

    References
    ----------
    .. [1] Austin PC. Balance diagnostics for comparing the distribution of baseline covariates
       between treatment groups in propensity-score matched samples. Stat Med.
       2009;28(25):3083-3107. doi:10.1002/sim.3697

    Examples
    --------
    >>> round(smd([1, 1, 0, 0], [1, 0, 0, 0]), 6)
    0.534522
    """
    check_choice(kind, "kind", ("auto", "continuous", "binary"))
    xa = as_1d(a, "a", allow_nan=True)
    xb = as_1d(b, "b", allow_nan=True)
    if xa.dtype == bool:
        xa = xa.astype(float)
    if xb.dtype == bool:
        xb = xb.astype(float)
    try:
        xa = xa.astype(float)
        xb = xb.astype(float)
    except (TypeError, ValueError):
        raise InvalidParameterError("smd needs numeric or boolean values in a and b") from None
    xa = xa[~np.isnan(xa)]
    xb = xb[~np.isnan(xb)]
    if len(xa) == 0 or len(xb) == 0:
        raise InvalidParameterError(
            f"smd needs at least one non-missing value per group, got {len(xa)} and {len(xb)}")
    binary = kind == "binary" or (kind == "auto" and _is_binary(xa) and _is_binary(xb))
    if binary:
        return smd_from_summary(xa.mean(), xb.mean(), binary=True)
    if len(xa) < 2 or len(xb) < 2:
        raise InvalidParameterError(
            f"a continuous smd needs at least 2 values per group, got {len(xa)} and {len(xb)}")
    return smd_from_summary(xa.mean(), xb.mean(), sd_a=xa.std(ddof=1), sd_b=xb.std(ddof=1))


# --------------------------------------------------------------------------- overlap
def bhattacharyya_coefficient(p: Any, q: Any, x: Any = None) -> float:
    """Bhattacharyya coefficient ``BC = Σ sqrt(p q)`` (discrete) or ``∫ sqrt(f g) dx``.

    Parameters
    ----------
    p, q : array-like
        Probabilities of the same categories (each summing to 1), or density values on the
        grid ``x``.
    x : array-like, optional
        Grid of the densities; the integral is computed with the trapezoidal rule.

    References
    ----------
    .. [1] Bhattacharyya A. On a measure of divergence between two statistical populations
       defined by their probability distributions. Bull Calcutta Math Soc. 1943;35:99-109.
    """
    pa = as_1d(p, "p", dtype=float)
    qa = as_1d(q, "q", dtype=float)
    if pa.shape != qa.shape:
        raise InvalidParameterError(f"p and q must have the same length, got {pa.shape} and "
                                    f"{qa.shape}")
    if (pa < 0).any() or (qa < 0).any():
        raise InvalidParameterError("p and q must be non-negative")
    g = np.sqrt(pa * qa)
    if x is None:
        return float(g.sum())
    xa = as_1d(x, "x", dtype=float)
    if xa.shape != pa.shape:
        raise InvalidParameterError(f"x must have the length of p ({len(pa)}), got {len(xa)}")
    return float(np.trapezoid(g, xa))


def _bandwidth(x: np.ndarray) -> float:
    """generalize::gen_index bandwidth ``(4 sd^5 / (3 n))^(1/5)``, floored at 0.001."""
    n = len(x)
    sd = float(np.std(x, ddof=1)) if n > 1 else float("nan")
    h = (4 * sd ** 5 / (3 * n)) ** 0.2 if np.isfinite(sd) else 0.0
    return max(h, 0.001)


def _kde(grid: np.ndarray, data: np.ndarray, h: float, chunk: int = 64) -> np.ndarray:
    """Gaussian kernel density of ``data`` with bandwidth ``h`` evaluated on the sorted ``grid``.

    Each chunk of grid points only sums the data within 10 bandwidths (sorted data, two
    searchsorted calls); the kernel beyond that is below ``exp(-50)`` of its peak.
    """
    x = np.sort(data)
    out = np.empty(len(grid))
    c = 1.0 / (len(x) * h * math.sqrt(2 * math.pi))
    for start in range(0, len(grid), chunk):
        g = grid[start:start + chunk]
        lo, hi = np.searchsorted(x, [g[0] - 10 * h, g[-1] + 10 * h])
        if hi <= lo:
            out[start:start + chunk] = 0.0
            continue
        out[start:start + chunk] = np.exp(
            -0.5 * ((g[:, None] - x[None, lo:hi]) / h) ** 2).sum(axis=1) * c
    return out


def generalizability_index(sample_ps: Any, population_ps: Any) -> float:
    """Tipton's generalizability index B from sampling propensity scores (kernel estimator).

    Re-implements ``generalize::gen_index`` (the Baklizi & Eidous 2006 estimator): a Gaussian
    kernel density for each group with bandwidth ``h = (4 sd^5 / (3 n))^(1/5)`` (sd with
    ddof = 1) floored at 0.001, and ``B = ∫ sqrt(f_s(e) f_p(e)) de``; 1 when both groups have
    zero variance. The integral over the real line is computed with the trapezoidal rule on a
    grid of spacing ``min(h)/6`` spanning the data ± 12 bandwidths (outside it the integrand is
    below ``1e-30``); for these smooth Gaussian mixtures the rule is accurate to far better than
    ``1e-9`` (checked against adaptive quadrature in the tests).

    Parameters
    ----------
    sample_ps, population_ps : array-like of float
        Propensity scores of the sample (cohort) and of the population.

    Returns
    -------
    float
        B in [0, 1]; see :func:`interpret_generalizability`.

    References
    ----------
    .. [1] Tipton E. How generalizable is your experiment? An index for comparing experimental
       samples and populations. J Educ Behav Stat. 2014;39(6):478-501.
       doi:10.3102/1076998614558486
    .. [2] Baklizi A, Eidous O. Nonparametric estimation of P(X < Y) using kernel methods.
       Metron. 2006;64(1):47-60.
    .. [3] Ackerman B, Ross R, Tipton E, Stuart EA. generalize: R package (gen_index).
       https://github.com/benjamin-ackerman/generalize
    """
    s = as_1d(sample_ps, "sample_ps", dtype=float)
    p = as_1d(population_ps, "population_ps", dtype=float)
    if len(s) == 0 or len(p) == 0:
        raise InvalidParameterError(
            f"sample_ps and population_ps must be non-empty, got lengths {len(s)} and {len(p)}")
    if not (np.isfinite(s).all() and np.isfinite(p).all()):
        raise InvalidParameterError("propensity scores must be finite")
    vs = np.var(s, ddof=1) if len(s) > 1 else np.nan
    vp = np.var(p, ddof=1) if len(p) > 1 else np.nan
    if vs == 0 and vp == 0:  # generalize::gen_index: both variances 0 -> 1
        return 1.0
    hs, hp = _bandwidth(s), _bandwidth(p)
    hmax, hmin = max(hs, hp), min(hs, hp)
    lo = min(s.min(), p.min()) - 12 * hmax
    hi = max(s.max(), p.max()) + 12 * hmax
    m = int(min(max(math.ceil((hi - lo) / (hmin / 6)), 512), 200_000)) + 1
    grid = np.linspace(lo, hi, m)
    fs = _kde(grid, s, hs)
    fp = _kde(grid, p, hp)
    b = float(np.trapezoid(np.sqrt(fs * fp), grid))
    return min(max(b, 0.0), 1.0)


def interpret_generalizability(b: float) -> str:
    """Tipton's rule of thumb: >= 0.9 very high, 0.8-0.9 high, 0.5-0.8 medium, < 0.5 low."""
    if not np.isfinite(b):
        return "undefined"
    for cut, label in B_BANDS:
        if b >= cut:
            return label
    return "low"  # pragma: no cover


# --------------------------------------------------------------------------- Tipton B
def _design(frames: Sequence[pd.DataFrame], covariates: Sequence[str]
            ) -> tuple[list[np.ndarray], list[str]]:
    """One-hot categoricals (first level dropped) and standardised numerics, stacked."""
    stacked = pd.concat([f[list(covariates)] for f in frames], ignore_index=True)
    parts: list[pd.DataFrame] = []
    for c in covariates:
        col = stacked[c]
        if pd.api.types.is_bool_dtype(col) or (
                pd.api.types.is_numeric_dtype(col) and not isinstance(col.dtype,
                                                                      pd.CategoricalDtype)):
            v = col.astype(float)
            sd = v.std(ddof=0)
            parts.append(((v - v.mean()) / (sd if sd > 0 else 1.0)).to_frame(c))
        else:
            parts.append(pd.get_dummies(col.astype("string"), prefix=c, drop_first=True,
                                        dtype=float))
    X = pd.concat(parts, axis=1)
    out, start = [], 0
    for f in frames:
        out.append(X.iloc[start:start + len(f)].to_numpy(dtype=float))
        start += len(f)
    return out, list(X.columns)


def propensity_scores(sample: pd.DataFrame, population: pd.DataFrame, covariates: Sequence[str],
                      *, C: float = 1.0) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Sampling propensity P(S = 1 | x) for the stacked sample (S=1) and population (S=0).

    Logistic regression (scikit-learn) on standardised numeric covariates and one-hot
    categoricals with an L2 penalty ``C`` (default 1): with thousands of rows the penalty barely
    moves the estimates, and it keeps them finite when a category occurs in one group only
    (quasi-separation, where the unpenalised MLE does not exist). Rows with a missing covariate
    are dropped (counted in the returned info).

    The penalised likelihood is maximised by Newton's method with a Cholesky solve
    (``solver="newton-cholesky"``, gradient tolerance 1e-8): a handful of iterations on
    few columns. lbfgs at its default tolerance stopped early enough to move B in the fourth
    digit on the demo data (0.37373 against the exact optimum's 0.37315) and took twice as long.
    """
    from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    cov = list(covariates)
    sa = sample.dropna(subset=cov)
    pa = population.dropna(subset=cov)
    info: dict[str, Any] = {"dropped_sample": len(sample) - len(sa),
                            "dropped_population": len(population) - len(pa)}
    if len(sa) == 0 or len(pa) == 0:
        raise InvalidParameterError("no complete rows left for the propensity model "
                                    f"(sample {len(sa)}, population {len(pa)})")
    (xs, xp), names = _design([sa, pa], cov)
    X = np.vstack([xs, xp])
    y = np.r_[np.ones(len(xs)), np.zeros(len(xp))]
    if X.shape[1] == 0:
        ps = np.full(len(y), y.mean())
        info.update(terms=[], converged=True)
        return ps[:len(xs)], ps[len(xs):], info
    model = LogisticRegression(C=C, solver="newton-cholesky", tol=1e-8, max_iter=1000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkConvergenceWarning)
        model.fit(X, y)
    converged = not any(issubclass(w.category, SkConvergenceWarning) for w in caught)
    if not converged:
        warnings.warn("the sampling-propensity logistic regression did not converge",
                      ConvergenceWarning, stacklevel=3)
    ps = model.predict_proba(X)[:, 1]
    info.update(terms=names, converged=converged, C=C)
    return ps[:len(xs)], ps[len(xs):], info


@dataclass(frozen=True)
class TiptonResult(ResultMixin):
    """Tipton's generalizability index B of a cohort with respect to a population.

    Attributes
    ----------
    b : float
        The index (Bhattacharyya coefficient of the propensity-score densities).
    interpretation : str
        "very high" / "high" / "medium" / "low" (Tipton 2014 rules of thumb).
    n_sample, n_population : int
        Rows used (complete on the covariates).
    covariates : tuple of str
        Covariates of the sampling-propensity model.
    model : str
        Description of the propensity model.
    sample_ps_mean, population_ps_mean : float
        Mean propensity score per group.
    notes : tuple of str
        Dropped rows, convergence.
    """

    b: float
    interpretation: str
    n_sample: int
    n_population: int
    covariates: tuple[str, ...]
    model: str
    sample_ps_mean: float
    population_ps_mean: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{
            "b": self.b, "interpretation": self.interpretation, "n_sample": self.n_sample,
            "n_population": self.n_population, "covariates": ", ".join(self.covariates),
            "model": self.model, "sample_ps_mean": self.sample_ps_mean,
            "population_ps_mean": self.population_ps_mean}])


def tipton_index(sample: pd.DataFrame, population: pd.DataFrame, covariates: Sequence[str], *,
                 C: float = 1.0) -> TiptonResult:
    """Tipton's generalizability index B of ``sample`` with respect to ``population`` rows.

    Steps (Tipton 2014; METHODS C5): stack the sample (S = 1) and the population (S = 0), fit a
    sampling-propensity logistic regression of S on the covariates (see
    :func:`propensity_scores`), then compute B with :func:`generalizability_index`. If the
    population contains the sample, pass the whole population (Tipton's convention).

    Parameters
    ----------
    sample, population : pandas.DataFrame
        Individual rows with the covariate columns.
    covariates : sequence of str
        Numeric (standardised) or categorical (one-hot) columns.
    C : float
        Inverse L2 penalty of the logistic regression.

    References
    ----------
    .. [1] Tipton E. How generalizable is your experiment? An index for comparing experimental
       samples and populations. J Educ Behav Stat. 2014;39(6):478-501.
       doi:10.3102/1076998614558486
    """
    covariates = [covariates] if isinstance(covariates, str) else list(covariates)
    for name, frame in (("sample", sample), ("population", population)):
        miss = [c for c in covariates if c not in frame.columns]
        if miss:
            raise InvalidParameterError(
                f"covariates {miss} are not columns of the {name}; available: "
                f"{', '.join(map(repr, frame.columns))}")
    ps_s, ps_p, info = propensity_scores(sample, population, covariates, C=C)
    b = generalizability_index(ps_s, ps_p)
    notes = []
    if info["dropped_sample"] or info["dropped_population"]:
        notes.append(f"rows with a missing covariate dropped: sample {info['dropped_sample']}, "
                     f"population {info['dropped_population']}")
    if not info.get("converged", True):
        notes.append("propensity model did not converge")
    return TiptonResult(
        b=b, interpretation=interpret_generalizability(b), n_sample=len(ps_s),
        n_population=len(ps_p), covariates=tuple(covariates),
        model=f"logistic regression of S on {', '.join(covariates)} (one-hot categoricals, "
              f"standardised numerics, L2 C={C:g}); Gaussian-kernel B (generalize::gen_index)",
        sample_ps_mean=float(np.mean(ps_s)), population_ps_mean=float(np.mean(ps_p)),
        notes=tuple(notes))
