"""Power and sample size: AUROC versus 0.5 (Obuchowski) and proportions (performance goal)."""

from __future__ import annotations

import math

import numpy as np
from scipy import special, stats

from rwe._validation import check_choice, check_level, check_real
from rwe.exceptions import InvalidParameterError

__all__ = ["auc_power", "auc_sample_size", "auc_sig_level", "proportion_goal_sample_size",
           "ci_half_width_sample_size"]

_AUC_ALTERNATIVES = ("two-sided", "greater")

_OBU_REFS = """
    References
    ----------
    .. [1] Obuchowski NA, McClish DK. Sample size determination for diagnostic accuracy
       studies involving binormal ROC curve indices. Stat Med. 1997;16(13):1529-1542.
    .. [2] Obuchowski NA, Lieber ML, Wians FH Jr. ROC curves in Clinical Chemistry: uses,
       misuses, and possible solutions. Clin Chem. 2004;50(7):1118-1125.
    .. [3] Robin X, et al. pROC: an open-source package for R and S+ to analyze and compare
       ROC curves. BMC Bioinformatics. 2011;12:77 (``power.roc.test``).
"""


def _var_obuchowski(auc: float, kappa: float) -> float:
    """Binormal variance function ``V(θ)`` with ``A = 1.414·Φ⁻¹(θ)``, ``κ = controls/cases``."""
    a = 1.414 * float(special.ndtri(auc))
    return 0.0099 * math.exp(-a * a / 2.0) * ((5 * a * a + 8) + (a * a + 8) / kappa)


def _zalpha(sig_level: float, alternative: str) -> float:
    return float(special.ndtri(1 - sig_level / 2 if alternative == "two-sided" else 1 - sig_level))


def _check_auc(auc: float) -> float:
    return check_real(auc, "auc", low=0.5, high=1.0, low_inclusive=False, high_inclusive=False)


def auc_power(*, n_cases: float, n_controls: float, auc: float, sig_level: float = 0.05,
              alternative: str = "two-sided") -> float:
    """Power of the test of H0: AUC = 0.5 for a given sample (Obuchowski method).

    ``power = Φ((sqrt(n_cases)·(θ - 0.5) - z_α·sqrt(V₀)) / sqrt(V(θ)))`` with
    ``V₀ = 0.0792·(1 + 1/κ)`` and ``V(θ) = 0.0099·e^{-A²/2}·[(5A²+8) + (A²+8)/κ]``,
    ``A = 1.414·Φ⁻¹(θ)``, ``κ = n_controls/n_cases`` and ``z_α`` at α/2 when two-sided.

    Parameters
    ----------
    n_cases, n_controls : float
        Numbers of cases and controls (> 0).
    auc : float
        Expected AUROC θ in (0.5, 1).
    sig_level : float, default 0.05
    alternative : {"two-sided", "greater"}, default "two-sided"
        pROC's "two.sided" / "one.sided".

    Returns
    -------
    float

    Notes
    -----
    R equivalent: ``pROC::power.roc.test(auc=, ncases=, ncontrols=, sig.level=)``.
    """
    n1 = check_real(n_cases, "n_cases", low=0, low_inclusive=False)
    n0 = check_real(n_controls, "n_controls", low=0, low_inclusive=False)
    theta = _check_auc(auc)
    alpha = check_level(sig_level, "sig_level")
    alternative = check_choice(alternative, "alternative", _AUC_ALTERNATIVES)
    kappa = n0 / n1
    v0 = 0.0792 * (1 + 1 / kappa)
    va = _var_obuchowski(theta, kappa)
    zb = (math.sqrt(n1) * (theta - 0.5) - _zalpha(alpha, alternative) * math.sqrt(v0)) / math.sqrt(va)
    return float(special.ndtr(zb))


def auc_sample_size(*, auc: float, power: float, kappa: float,
                    sig_level: float = 0.05, alternative: str = "two-sided") -> tuple[float, float]:
    """Cases and controls needed to show AUC > 0.5 (Obuchowski method).

    ``n_cases = (z_α·sqrt(V₀) + z_β·sqrt(V(θ)))² / (θ - 0.5)²`` and
    ``n_controls = κ·n_cases`` (formulas in :func:`auc_power`).

    Parameters
    ----------
    auc : float
        Expected AUROC θ in (0.5, 1).
    power : float
        Target power in (0, 1).
    kappa : float
        Ratio controls / cases (> 0).
    sig_level : float, default 0.05
    alternative : {"two-sided", "greater"}, default "two-sided"

    Returns
    -------
    (n_cases, n_controls) : tuple of float
        Unrounded, as pROC prints them; round **up** to plan a study.

    Notes
    -----
    R equivalent: ``pROC::power.roc.test(auc=, power=, kappa=, sig.level=)``.
    """
    theta = _check_auc(auc)
    pw = check_level(power, "power")
    kappa = check_real(kappa, "kappa", low=0, low_inclusive=False)
    alpha = check_level(sig_level, "sig_level")
    alternative = check_choice(alternative, "alternative", _AUC_ALTERNATIVES)
    v0 = 0.0792 * (1 + 1 / kappa)
    va = _var_obuchowski(theta, kappa)
    zb = float(special.ndtri(pw))
    n1 = (_zalpha(alpha, alternative) * math.sqrt(v0) + zb * math.sqrt(va)) ** 2 / (theta - 0.5) ** 2
    return float(n1), float(kappa * n1)


def auc_sig_level(*, n_cases: float, n_controls: float, auc: float, power: float,
                  alternative: str = "two-sided") -> float:
    """Significance level at which a study of the given size reaches ``power`` (Obuchowski).

    Solves the :func:`auc_power` equation for ``z_α``; two-sided returns ``2·(1 - Φ(z_α))``.

    Parameters
    ----------
    n_cases, n_controls : float
    auc : float
        Expected AUROC θ in (0.5, 1).
    power : float
    alternative : {"two-sided", "greater"}, default "two-sided"

    Returns
    -------
    float

    Notes
    -----
    R equivalent: ``pROC::power.roc.test(auc=, ncases=, ncontrols=, power=, sig.level=NULL)``.
    """
    n1 = check_real(n_cases, "n_cases", low=0, low_inclusive=False)
    n0 = check_real(n_controls, "n_controls", low=0, low_inclusive=False)
    theta = _check_auc(auc)
    pw = check_level(power, "power")
    alternative = check_choice(alternative, "alternative", _AUC_ALTERNATIVES)
    kappa = n0 / n1
    v0 = 0.0792 * (1 + 1 / kappa)
    va = _var_obuchowski(theta, kappa)
    za = (math.sqrt(n1) * (theta - 0.5) - float(special.ndtri(pw)) * math.sqrt(va)) / math.sqrt(v0)
    tail = float(special.ndtr(-za))
    return 2 * tail if alternative == "two-sided" else tail


for _f in (auc_power, auc_sample_size, auc_sig_level):
    _f.__doc__ = (_f.__doc__ or "") + _OBU_REFS
del _f


# ----------------------------------------------------------------------------- proportions


def _exact_goal_power(n: np.ndarray, goal: float, expected: float, a2: float) -> np.ndarray:
    """P(Clopper-Pearson lower bound > goal | Se = expected) for each n (vectorized).

    The CP lower bound at x exceeds ``goal`` iff ``P(X >= x | goal) < a2`` (test/CI duality),
    so the critical count is the smallest such x; it is found with ``binom.ppf`` and
    verified against ``beta.ppf`` to guard against boundary rounding.
    """
    k = stats.binom.ppf(1 - a2, n, goal)
    x = k + 1  # smallest x with sf(x-1) <= a2
    for _ in range(2):  # adjust by at most one step either way
        lower_x = stats.beta.ppf(a2, x, n - x + 1)
        x = np.where((x <= n) & ~(lower_x > goal), x + 1, x)
    lower_prev = stats.beta.ppf(a2, np.maximum(x - 1, 1), n - x + 2)
    x = np.where((x - 1 >= 1) & (lower_prev > goal), x - 1, x)
    return np.where(x <= n, stats.binom.sf(x - 1, n, expected), 0.0)


def proportion_goal_sample_size(*, goal: float, expected: float, confidence_level: float = 0.95,
                                power: float = 0.8, method: str = "normal") -> int:
    """Number of positives (or negatives) needed to show a proportion exceeds a goal.

    The performance-goal test rejects H0: Se <= goal when the lower bound of the two-sided
    ``confidence_level`` interval exceeds the goal (one-sided α = (1 - level)/2).

    * ``"normal"``: ``n = ⌈[z_{1-α}·sqrt(g(1-g)) + z_{1-β}·sqrt(Se(1-Se))]² / (Se - g)²⌉``
      (METHODS.md C1).
    * ``"exact"``: the smallest n for which the exact-binomial probability, under
      ``Se = expected``, that the Clopper-Pearson lower bound exceeds the goal is at least
      ``power`` (``scipy.stats.binom``). Exact power saw-tooths in n, so a slightly larger
      n can occasionally fall below ``power``; report the power at the chosen n.

    Parameters
    ----------
    goal : float
        Performance goal in (0, 1).
    expected : float
        Anticipated proportion, ``goal < expected < 1``.
    confidence_level : float, default 0.95
    power : float, default 0.8
    method : {"normal", "exact"}, default "normal"

    Returns
    -------
    int
        Positives needed; divide by the prevalence for the total sample.

    References
    ----------
    .. [1] Chow SC, Shao J, Wang H. Sample Size Calculations in Clinical Research, 2nd ed.
       Chapman & Hall/CRC; 2008. Section 4.1 (one-sample proportion).
    .. [2] Clopper CJ, Pearson ES. Biometrika. 1934;26(4):404-413.
    """
    g = check_real(goal, "goal", low=0, high=1, low_inclusive=False, high_inclusive=False)
    se = check_real(expected, "expected", low=g, high=1, low_inclusive=False,
                    high_inclusive=False)
    level = check_level(confidence_level)
    pw = check_level(power, "power")
    check_choice(method, "method", ("normal", "exact"))
    a2 = (1 - level) / 2
    za, zb = float(special.ndtri(1 - a2)), float(special.ndtri(pw))
    n_norm = math.ceil((za * math.sqrt(g * (1 - g)) + zb * math.sqrt(se * (1 - se))) ** 2
                       / (se - g) ** 2)
    if method == "normal":
        return int(n_norm)
    hi = max(4 * n_norm, 50)
    while True:
        n = np.arange(1, hi + 1, dtype=float)
        ok = _exact_goal_power(n, g, se, a2) >= pw
        if ok.any():
            return int(n[np.argmax(ok)])
        if hi > 10_000_000:  # pragma: no cover - defensive
            raise InvalidParameterError("no sample size up to 1e7 reaches the requested power")
        hi *= 4


def _wilson_half_width(n: np.ndarray, p: float, z: float) -> np.ndarray:
    return z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)


def ci_half_width_sample_size(*, p: float, half_width: float, confidence_level: float = 0.95,
                              method: str = "wilson") -> int:
    """Smallest n whose Wilson interval at proportion ``p`` is no wider than ``±half_width``.

    The half-width ``z·sqrt(p(1-p)/n + z²/4n²)/(1 + z²/n)`` is evaluated at ``p̂ = p``; the
    returned n is the smallest from which every larger n also meets the target.

    Parameters
    ----------
    p : float
        Anticipated proportion in [0, 1].
    half_width : float
        Target half-width in (0, 0.5].
    confidence_level : float, default 0.95
    method : {"wilson"}, default "wilson"

    Returns
    -------
    int

    References
    ----------
    .. [1] Wilson EB. J Am Stat Assoc. 1927;22(158):209-212.
    """
    p = check_real(p, "p", low=0, high=1)
    h = check_real(half_width, "half_width", low=0, high=0.5, low_inclusive=False)
    level = check_level(confidence_level)
    check_choice(method, "method", ("wilson",))
    z = float(special.ndtri(0.5 + level / 2))
    hi = 64
    while _wilson_half_width(np.array([hi], dtype=float), p, z)[0] > h:
        hi *= 2
    n = np.arange(1, hi + 1, dtype=float)
    bad = _wilson_half_width(n, p, z) > h
    return int(n[np.flatnonzero(bad)[-1] + 1]) if bad.any() else 1
