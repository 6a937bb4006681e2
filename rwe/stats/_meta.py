"""Random-effects meta-analysis of independent estimates (DerSimonian-Laird).

One implementation, used wherever rwe combines estimates of separate populations (the sites
of a federation: :mod:`rwe.federation`); the tests of homogeneity across the levels of one
data set stay with their analyses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from rwe._results import Interval, ResultMixin, json_safe
from rwe._validation import check_choice, check_level
from rwe.exceptions import InvalidParameterError

from ._intervals import _z

__all__ = ["META_METHODS", "MetaAnalysisResult", "random_effects_meta"]

#: Estimators of the between-study variance tau^2.
META_METHODS = ("dersimonian-laird",)
MSG_META_LENGTHS = "estimates and variances must have the same length, got {a} and {b}"
MSG_META_VARIANCE = ("variances must be finite and > 0 (a study without a standard error "
                     "cannot be weighted), got {value!r} at position {i}")
MSG_META_EMPTY = "a meta-analysis needs at least one estimate, got none"


@dataclass(frozen=True)
class MetaAnalysisResult(ResultMixin):
    """A random-effects meta-analysis: the pooled estimate, its interval and heterogeneity.

    Attributes
    ----------
    k : int
        Number of studies (sites).
    estimate, se : float
        Random-effects pooled estimate and its standard error.
    ci : Interval
        Wald interval of the random-effects estimate.
    fixed_estimate, fixed_se : float
        Inverse-variance (fixed-effect) estimate and its standard error.
    fixed_ci : Interval
    tau2 : float
        Between-study variance (DerSimonian-Laird moment estimator, truncated at 0).
    q, df, pvalue : float
        Cochran's Q, its degrees of freedom (k - 1) and the chi-square p-value of homogeneity.
    i2 : float
        Higgins' I^2 = max(0, (Q - df) / Q) (NaN for k = 1; 0 for Q = 0).
    h2 : float
        Q / df (NaN for k = 1).
    prediction : Interval or None
        Higgins-Thompson-Spiegelhalter prediction interval of a new study's true effect
        (t with k - 2 df; None for k < 3).
    labels : tuple of str
    estimates, variances, weights : tuple of float
        The inputs and the normalised random-effects weights.
    method : str
    """

    k: int
    estimate: float
    se: float
    ci: Interval
    fixed_estimate: float
    fixed_se: float
    fixed_ci: Interval
    tau2: float
    q: float
    df: int
    pvalue: float
    i2: float
    h2: float
    prediction: Interval | None
    labels: tuple[str, ...]
    estimates: tuple[float, ...]
    variances: tuple[float, ...]
    weights: tuple[float, ...]
    method: str = "dersimonian-laird"

    def to_frame(self) -> pd.DataFrame:
        """One row per study, then ``"fixed effect"`` and ``"random effects"`` rows."""
        z = _z(self.ci.level)
        rows = [{"study": lab, "estimate": e, "se": math.sqrt(v),
                 "ci_low": e - z * math.sqrt(v), "ci_high": e + z * math.sqrt(v), "weight": w}
                for lab, e, v, w in zip(self.labels, self.estimates, self.variances,
                                        self.weights, strict=True)]
        rows.append({"study": "fixed effect", "estimate": self.fixed_estimate,
                     "se": self.fixed_se, "ci_low": self.fixed_ci.low,
                     "ci_high": self.fixed_ci.high, "weight": math.nan})
        rows.append({"study": "random effects", "estimate": self.estimate, "se": self.se,
                     "ci_low": self.ci.low, "ci_high": self.ci.high, "weight": 1.0})
        out = pd.DataFrame(rows)
        out["ci_level"] = self.ci.level
        return out

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["ci"] = self.ci.to_dict()
        d["fixed_ci"] = self.fixed_ci.to_dict()
        d["prediction"] = None if self.prediction is None else self.prediction.to_dict()
        return json_safe(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MetaAnalysisResult:
        def iv(x):
            return None if x is None else Interval(
                *(math.nan if x[k] is None else x[k] for k in ("low", "high")), x["level"],
                x["method"])

        def f(x):
            return math.nan if x is None else float(x)

        return cls(int(d["k"]), f(d["estimate"]), f(d["se"]), iv(d["ci"]),
                   f(d["fixed_estimate"]), f(d["fixed_se"]), iv(d["fixed_ci"]), f(d["tau2"]),
                   f(d["q"]), int(d["df"]), f(d["pvalue"]), f(d["i2"]), f(d["h2"]),
                   iv(d["prediction"]), tuple(d["labels"]), tuple(map(f, d["estimates"])),
                   tuple(map(f, d["variances"])), tuple(map(f, d["weights"])), d["method"])


def random_effects_meta(estimates: Sequence[float], variances: Sequence[float], *,
                        labels: Sequence[str] | None = None, confidence_level: float = 0.95,
                        method: str = "dersimonian-laird") -> MetaAnalysisResult:
    """Random-effects meta-analysis of independent estimates with known variances.

    Parameters
    ----------
    estimates : sequence of float
        One estimate per study (site), on the scale to be pooled (e.g. AUROC, or the logit
        of a proportion).
    variances : sequence of float
        Their sampling variances (finite, > 0).
    labels : sequence of str, optional
        Study names (default ``"1"``, ``"2"``, ...).
    confidence_level : float
    method : {"dersimonian-laird"}

    Returns
    -------
    MetaAnalysisResult

    Notes
    -----
    Inverse-variance weights ``w_i = 1 / v_i`` give the fixed-effect estimate and Cochran's
    ``Q = sum w_i (y_i - y_FE)^2`` [2]_ with ``k - 1`` degrees of freedom. The
    DerSimonian-Laird moment estimator of the between-study variance is ``tau^2 = max(0, (Q -
    (k - 1)) / (sum w - sum w^2 / sum w))`` [1]_; random-effects weights ``1 / (v_i + tau^2)``
    give the pooled estimate, its standard error ``1 / sqrt(sum w*)`` and a Wald interval.
    ``I^2 = max(0, (Q - df) / Q)`` and ``H^2 = Q / df`` [3]_. The prediction interval is
    ``y_RE +- t_{k-2} sqrt(tau^2 + se^2)`` [4]_. R: ``metafor::rma(yi, vi, method = "DL")``;
    Python: ``statsmodels.stats.meta_analysis.combine_effects(method_re="dl")``.

    References
    ----------
    .. [1] DerSimonian R, Laird N. Meta-analysis in clinical trials. Control Clin Trials
       1986;7(3):177-188.
    .. [2] Cochran WG. The combination of estimates from different experiments. Biometrics
       1954;10(1):101-129.
    .. [3] Higgins JPT, Thompson SG. Quantifying heterogeneity in a meta-analysis. Stat Med
       2002;21(11):1539-1558.
    .. [4] Higgins JPT, Thompson SG, Spiegelhalter DJ. A re-evaluation of random-effects
       meta-analysis. J R Stat Soc A 2009;172(1):137-159.

    Examples
    --------
    >>> r = random_effects_meta([0.80, 0.84, 0.78], [0.0004, 0.0009, 0.0005])
    >>> round(r.estimate, 4), r.df
    (0.8018, 2)
    """
    level = check_level(confidence_level)
    check_choice(method, "method", META_METHODS)
    y = np.asarray(estimates, dtype=np.float64).ravel()
    v = np.asarray(variances, dtype=np.float64).ravel()
    if y.size != v.size:
        raise InvalidParameterError(MSG_META_LENGTHS.format(a=y.size, b=v.size))
    if y.size == 0:
        raise InvalidParameterError(MSG_META_EMPTY)
    if not np.isfinite(y).all():
        i = int(np.flatnonzero(~np.isfinite(y))[0])
        raise InvalidParameterError(f"estimates must be finite, got {y[i]!r} at position {i}")
    bad = ~(np.isfinite(v) & (v > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidParameterError(MSG_META_VARIANCE.format(value=float(v[i]), i=i))
    labels = tuple(str(x) for x in labels) if labels is not None else tuple(
        str(i + 1) for i in range(y.size))
    if len(labels) != y.size:
        raise InvalidParameterError(MSG_META_LENGTHS.format(a=y.size, b=len(labels)))
    k = int(y.size)
    w = 1.0 / v
    sw = float(w.sum())
    fe = float((w * y).sum() / sw)
    fe_se = math.sqrt(1.0 / sw)
    q = float((w * (y - fe) ** 2).sum())
    df = k - 1
    c = sw - float((w * w).sum()) / sw
    tau2 = max(0.0, (q - df) / c) if df > 0 and c > 0 else 0.0
    ws = 1.0 / (v + tau2)
    re = float((ws * y).sum() / ws.sum())
    re_se = math.sqrt(1.0 / float(ws.sum()))
    z = _z(level)
    name = "dersimonian-laird random effects (Wald)"
    ci = Interval(re - z * re_se, re + z * re_se, level, name)
    fixed_ci = Interval(fe - z * fe_se, fe + z * fe_se, level, "inverse-variance fixed effect "
                        "(Wald)")
    pvalue = float(stats.chi2.sf(q, df)) if df > 0 else math.nan
    i2 = (max(0.0, (q - df) / q) if q > 0 else 0.0) if df > 0 else math.nan
    h2 = q / df if df > 0 else math.nan
    prediction = None
    if k >= 3:
        t = float(stats.t.ppf(0.5 + level / 2, k - 2))
        half = t * math.sqrt(tau2 + re_se ** 2)
        prediction = Interval(re - half, re + half, level,
                              "Higgins-Thompson-Spiegelhalter prediction (t, k - 2 df)")
    return MetaAnalysisResult(
        k=k, estimate=re, se=re_se, ci=ci, fixed_estimate=fe, fixed_se=fe_se,
        fixed_ci=fixed_ci, tau2=float(tau2), q=q, df=df, pvalue=pvalue, i2=float(i2),
        h2=float(h2), prediction=prediction, labels=labels,
        estimates=tuple(float(x) for x in y), variances=tuple(float(x) for x in v),
        weights=tuple(float(x) for x in ws / ws.sum()), method=method)
