"""Discrimination and calibration metrics for time-to-event outcomes.

The score is a **risk** score: higher means worse prognosis (earlier event). Metrics needing
an IPCW censoring distribution estimate it on the evaluation data themselves (the
``survival_train`` and ``survival_test`` arguments of scikit-survival are the same rows).
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

from rwe._optional import import_optional
from rwe._results import Interval
from rwe._validation import as_1d, as_binary, check_level
from rwe.exceptions import InvalidParameterError
from rwe.metrics._registry import MetricData, MetricSpec, MetricValue, register_metric

__all__ = ["kaplan_meier_by_group", "concordance_pair_counts"]

REF_HARRELL = ("Harrell FE Jr, Califf RM, Pryor DB, Lee KL, Rosati RA. Evaluating the yield of "
               "medical tests. JAMA 1982;247(18):2543-2546. Jackknife: Efron B. The jackknife, "
               "the bootstrap and other resampling plans. SIAM, 1982.")
REF_UNO_C = ("Uno H, Cai T, Pencina MJ, D'Agostino RB, Wei LJ. On the C-statistics for evaluating "
             "overall adequacy of risk prediction procedures with censored survival data. Stat "
             "Med 2011;30(10):1105-1117.")
REF_TD_AUC = ("Uno H, Cai T, Tian L, Wei LJ. Evaluating prediction rules for t-year survivors with "
              "censored regression models. J Am Stat Assoc 2007;102(478):527-537. Hung H, Chiang "
              "CT. Estimation methods for time-dependent AUC models with survival data. Can J "
              "Stat 2010;38(1):8-26.")
REF_GRAF = ("Graf E, Schmoor C, Sauerbrei W, Schumacher M. Assessment and comparison of "
            "prognostic classification schemes for survival data. Stat Med "
            "1999;18(17-18):2529-2545.")

#: Above this many rows the O(n²) jackknife of Harrell's C is skipped (no interval, reason).
JACKKNIFE_MAX_N = 30_000


def concordance_pair_counts(time, event, risk) -> tuple[np.ndarray, np.ndarray]:
    """Per-subject numbers of comparable pairs and concordant pairs (ties in risk count 1/2).

    A pair (i, j) is comparable when i has an event and ``T_i < T_j``, or ``T_i == T_j`` and j
    is censored (lifelines' convention). It is concordant when ``risk_i > risk_j``. Each pair is
    credited to both of its members, so the totals are half the sums of the returned arrays.
    Computed in row blocks (memory O(block·n), time O(n²)).
    """
    t = np.asarray(time, dtype=float)
    e = np.asarray(event, dtype=bool)
    r = np.asarray(risk, dtype=float)
    n = t.size
    comp_k = np.zeros(n)
    conc_k = np.zeros(n)
    block = max(1, 2_000_000 // max(n, 1))
    for start in range(0, n, block):
        sl = slice(start, min(n, start + block))
        ti, ei, ri = t[sl, None], e[sl, None], r[sl, None]
        comp = ei & ((ti < t[None, :]) | ((ti == t[None, :]) & ~e[None, :]))
        conc = comp * ((ri > r[None, :]) + 0.5 * (ri == r[None, :]))
        comp_k[sl] += comp.sum(axis=1)
        conc_k[sl] += conc.sum(axis=1)
        comp_k += comp.sum(axis=0)
        conc_k += conc.sum(axis=0)
    return comp_k, conc_k


def harrell_c(data: MetricData) -> MetricValue:
    """Harrell's concordance index for a risk score, with a jackknife Wald interval.

    The estimate is ``lifelines.utils.concordance_index(time, -risk, event)``: among comparable
    pairs (the earlier time is an event), the share where the earlier failure has the higher
    risk; ties in risk count 1/2, pairs tied in time count only when one is censored. The
    interval is ``C ± z SE_jack`` with the leave-one-out jackknife standard error
    ``SE² = (n-1)/n Σ_k (C_(-k) - C̄)²``, where ``C_(-k)`` is obtained exactly by removing
    subject k's pairs. Skipped above :data:`JACKKNIFE_MAX_N` rows (O(n²)).

    References
    ----------
    .. [1] Harrell FE Jr, Califf RM, Pryor DB, Lee KL, Rosati RA. Evaluating the yield of
       medical tests. JAMA 1982;247(18):2543-2546.
    .. [2] Efron B. The Jackknife, the Bootstrap and Other Resampling Plans. SIAM, 1982.
    """
    from lifelines.utils import concordance_index

    ev = data.n_events
    if ev == 0:
        return data.value("harrell_c", math.nan, reason="no events", events=0)
    if data.n > JACKKNIFE_MAX_N:
        c = float(concordance_index(data.time, -data.y_score, data.event))
        return data.value("harrell_c", c, reason=f"n > {JACKKNIFE_MAX_N}: jackknife interval "
                          "skipped", events=ev)
    comp_k, conc_k = concordance_pair_counts(data.time, data.event, data.y_score)
    pairs, conc = comp_k.sum() / 2, conc_k.sum() / 2
    if pairs == 0:
        return data.value("harrell_c", math.nan, reason="no comparable pairs", events=ev)
    c = float(concordance_index(data.time, -data.y_score, data.event))
    extras = {"comparable_pairs": int(pairs), "concordant": float(conc)}
    rest = pairs - comp_k
    if data.n < 3 or np.any(rest <= 0):
        return data.value("harrell_c", c, reason="too few comparable pairs for a jackknife "
                          "interval", events=ev, **extras)
    loo = (conc - conc_k) / rest
    n = data.n
    se = float(math.sqrt((n - 1) / n * np.sum((loo - loo.mean()) ** 2)))
    if se == 0:
        return data.value("harrell_c", c, reason="jackknife standard error is 0: no interval",
                          events=ev, **extras)
    import rwe.stats as stats

    ci = stats.wald_ci(c, se, confidence_level=data.confidence_level)
    return data.value("harrell_c", c, Interval(float(ci.low), float(ci.high), ci.level,
                                               "jackknife"), events=ev, se=se, **extras)


def _sksurv(data: MetricData, metric: str):
    """Import scikit-survival and build its structured outcome, or return a reason."""
    try:
        sk = import_optional("sksurv.metrics", extra="examples")
    except ImportError as exc:
        return None, None, str(exc)
    from sksurv.util import Surv

    y = Surv.from_arrays(event=data.event, time=data.time)
    return sk, y, None


def _survival_precheck(data: MetricData) -> str | None:
    if data.n_events == 0:
        return "no events"
    if data.n < 2:
        return "fewer than two observations"
    h = data.horizon
    if h is not None:
        if not np.any(data.event & (data.time <= h)):
            return f"no events by horizon {h:g}"
        if h < data.time.min():
            return f"horizon {h:g} is before the first follow-up time {data.time.min():g}"
        if h >= data.time.max():
            return (f"horizon {h:g} is not before the last follow-up time "
                    f"{data.time.max():g}")
    return None


def _call_sksurv(func, *args, **kwargs):
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        try:
            return func(*args, **kwargs), None
        except (ValueError, ZeroDivisionError, FloatingPointError) as exc:
            return None, f"not estimable: {exc}"



def _row_bootstrap_ci(data: MetricData, statistic) -> tuple[Interval | None, str | None]:
    """Percentile interval from the row bootstrap of an IPCW statistic
    (:func:`rwe.stats.bootstrap_resamples`: ``statistic(idx)`` recomputes the metric on the
    resampled rows, the censoring distribution re-estimated in each, as the estimator
    prescribes; scikit-survival takes no weights, so this is the engine's per-resample mode)."""
    from rwe.stats import bootstrap_resamples

    ci, _, reason = bootstrap_resamples(statistic, data.n, n_boot=data.n_boot,
                                        random_state=data.random_state,
                                        confidence_level=data.confidence_level)
    return ci, reason


def _sub(data: MetricData, idx: np.ndarray):
    """Structured outcome and scores of the resampled rows."""
    from sksurv.util import Surv

    return Surv.from_arrays(event=data.event[idx], time=data.time[idx]), data.y_score[idx]


def uno_c(data: MetricData) -> MetricValue:
    """Uno's IPCW concordance index, truncated at ``horizon`` when given; percentile
    row-bootstrap interval (``n_boot`` resamples, censoring re-estimated in each).

    ``sksurv.metrics.concordance_index_ipcw`` with the censoring distribution estimated by
    Kaplan-Meier on the evaluation rows. Requires scikit-survival (``pip install
    'rwe[examples]'``); without it the value is nan with the install hint as reason.

    References
    ----------
    .. [1] Uno H, Cai T, Pencina MJ, D'Agostino RB, Wei LJ. On the C-statistics for evaluating
       overall adequacy of risk prediction procedures with censored survival data. Stat Med
       2011;30(10):1105-1117.
    """
    ev = data.n_events
    reason = _survival_precheck(data)
    if reason:
        return data.value("uno_c", math.nan, reason=reason, events=ev)
    sk, y, reason = _sksurv(data, "uno_c")
    if reason:
        return data.value("uno_c", math.nan, reason=reason, events=ev)
    out, reason = _call_sksurv(sk.concordance_index_ipcw, y, y, data.y_score, tau=data.horizon)
    if reason and data.horizon is None:
        reason += "; pass a horizon (tau) before the last follow-up time"
    if reason:
        return data.value("uno_c", math.nan, reason=reason, events=ev)
    c = float(out[0])
    if not np.isfinite(c):
        return data.value("uno_c", math.nan, reason="no comparable pairs", events=ev)

    def stat(idx):
        yb, sb = _sub(data, idx)
        res, _ = _call_sksurv(sk.concordance_index_ipcw, yb, yb, sb, tau=data.horizon)
        return None if res is None else float(res[0])

    ci, why = _row_bootstrap_ci(data, stat)
    return data.value("uno_c", c, ci, reason=why, events=ev, tau=data.horizon,
                      concordant=int(out[1]), discordant=int(out[2]), n_boot=data.n_boot)


def time_dependent_auc(data: MetricData) -> MetricValue:
    """Cumulative/dynamic AUC at ``horizon``: cases have T ≤ horizon with an event, controls
    T > horizon; IPCW estimator with a percentile row-bootstrap interval.

    ``sksurv.metrics.cumulative_dynamic_auc`` with the censoring distribution estimated on the
    evaluation rows. Requires scikit-survival.

    References
    ----------
    .. [1] Uno H, Cai T, Tian L, Wei LJ. Evaluating prediction rules for t-year survivors with
       censored regression models. J Am Stat Assoc 2007;102(478):527-537.
    .. [2] Hung H, Chiang CT. Estimation methods for time-dependent AUC models with survival
       data. Can J Stat 2010;38(1):8-26.
    """
    ev = data.n_events
    reason = _survival_precheck(data)
    if reason is None:
        cases = int(np.count_nonzero(data.event & (data.time <= data.horizon)))
        controls = int(np.count_nonzero(data.time > data.horizon))
        if cases == 0:
            reason = f"no events by horizon {data.horizon:g}"
        elif controls == 0:
            reason = f"no subjects still at risk after horizon {data.horizon:g}"
    if reason:
        return data.value("time_dependent_auc", math.nan, reason=reason, events=ev)
    sk, y, reason = _sksurv(data, "time_dependent_auc")
    if reason:
        return data.value("time_dependent_auc", math.nan, reason=reason, events=ev)
    out, reason = _call_sksurv(sk.cumulative_dynamic_auc, y, y, data.y_score, [data.horizon])
    if reason:
        return data.value("time_dependent_auc", math.nan, reason=reason, events=ev)

    def stat(idx):
        yb, sb = _sub(data, idx)
        res, _ = _call_sksurv(sk.cumulative_dynamic_auc, yb, yb, sb, [data.horizon])
        return None if res is None else float(np.asarray(res[0])[0])

    ci, why = _row_bootstrap_ci(data, stat)
    return data.value("time_dependent_auc", float(np.asarray(out[0])[0]), ci, reason=why,
                      events=ev, horizon=data.horizon, cases=cases, controls=controls,
                      n_boot=data.n_boot)


def brier_ipcw(data: MetricData) -> MetricValue:
    """IPCW Brier score at ``horizon`` (Graf et al. 1999) with a percentile row-bootstrap
    interval.

    ``y_score`` is the predicted probability of the event by ``horizon`` (so the predicted
    survival is ``1 - y_score``). ``sksurv.metrics.brier_score`` with the censoring
    distribution estimated on the evaluation rows. Requires scikit-survival.

    References
    ----------
    .. [1] Graf E, Schmoor C, Sauerbrei W, Schumacher M. Assessment and comparison of
       prognostic classification schemes for survival data. Stat Med 1999;18(17-18):2529-2545.
    """
    ev = data.n_events
    if data.y_score.min() < 0 or data.y_score.max() > 1:
        raise InvalidParameterError(
            "y_score must be the predicted probability of the event by horizon (in [0, 1]) "
            f"for metric 'brier_ipcw'; got values in [{data.y_score.min()}, "
            f"{data.y_score.max()}]")
    reason = _survival_precheck(data)
    if reason:
        return data.value("brier_ipcw", math.nan, reason=reason, events=ev)
    sk, y, reason = _sksurv(data, "brier_ipcw")
    if reason:
        return data.value("brier_ipcw", math.nan, reason=reason, events=ev)
    surv = (1.0 - data.y_score)[:, None]
    out, reason = _call_sksurv(sk.brier_score, y, y, surv, [data.horizon])
    if reason:
        return data.value("brier_ipcw", math.nan, reason=reason, events=ev)

    def stat(idx):
        yb, sb = _sub(data, idx)
        res, _ = _call_sksurv(sk.brier_score, yb, yb, (1.0 - sb)[:, None], [data.horizon])
        return None if res is None else float(np.asarray(res[1])[0])

    ci, why = _row_bootstrap_ci(data, stat)
    return data.value("brier_ipcw", float(np.asarray(out[1])[0]), ci, reason=why, events=ev,
                      horizon=data.horizon, n_boot=data.n_boot)


def kaplan_meier_by_group(time, event, groups=None, *, confidence_level: float = 0.95
                          ) -> pd.DataFrame:
    """Kaplan-Meier survival curves per group as one tidy frame (lifelines).

    Parameters
    ----------
    time, event : array-like
        Follow-up time (non-negative) and event indicator.
    groups : array-like, optional
        Group label per row; rows with a missing label are dropped. ``None`` gives one curve
        labelled ``"all"``.
    confidence_level : float, default 0.95
        Level of the pointwise interval (lifelines' exponential Greenwood interval).

    Returns
    -------
    pandas.DataFrame
        Columns ``group, time, survival, ci_low, ci_high, n_at_risk, n_events, n_censored``,
        one row per distinct time (including 0) per group.

    References
    ----------
    .. [1] Kaplan EL, Meier P. Nonparametric estimation from incomplete observations. J Am Stat
       Assoc 1958;53(282):457-481.
    """
    from lifelines import KaplanMeierFitter

    level = check_level(confidence_level)
    t = as_1d(time, "time", dtype=float)
    e = as_binary(event, "event")
    if e.size != t.size:
        raise InvalidParameterError(f"event has length {e.size} but time has length {t.size}")
    import pandas as pd

    g = pd.Series(["all"] * t.size if groups is None else np.asarray(groups, dtype=object))
    if g.size != t.size:
        raise InvalidParameterError(f"groups has length {g.size} but time has length {t.size}")
    cols = ["group", "time", "survival", "ci_low", "ci_high", "n_at_risk", "n_events",
            "n_censored"]
    frames = []
    keep = g.notna().to_numpy()
    for label in pd.unique(g[keep]):
        m = (g == label).to_numpy()
        kmf = KaplanMeierFitter(alpha=1 - level).fit(t[m], e[m])
        sf = kmf.survival_function_.iloc[:, 0]
        ci = kmf.confidence_interval_
        et = kmf.event_table.reindex(sf.index)
        frames.append(pd.DataFrame({
            "group": str(label), "time": sf.index.to_numpy(dtype=float),
            "survival": sf.to_numpy(), "ci_low": ci.iloc[:, 0].to_numpy(),
            "ci_high": ci.iloc[:, 1].to_numpy(),
            "n_at_risk": et["at_risk"].to_numpy(dtype=int),
            "n_events": et["observed"].to_numpy(dtype=int),
            "n_censored": et["censored"].to_numpy(dtype=int)}))
    if not frames:
        return pd.DataFrame(columns=cols)
    return pd.concat(frames, ignore_index=True)[cols]


def km_survival(data: MetricData) -> MetricValue:
    """Kaplan-Meier survival probability at ``horizon`` with lifelines' pointwise interval
    (exponential Greenwood, "log-log"), the observed counterpart of the predicted risks; the
    score is not used. Undefined beyond the last follow-up time.

    References
    ----------
    .. [1] Kaplan EL, Meier P. Nonparametric estimation from incomplete observations. J Am Stat
       Assoc 1958;53(282):457-481.
    .. [2] Kalbfleisch JD, Prentice RL. The Statistical Analysis of Failure Time Data, 2nd ed.
       Wiley; 2002 (exponential Greenwood interval).
    """
    ev = data.n_events
    h = data.horizon
    if data.n == 0:
        return data.value("km_survival", math.nan, reason="no observations", events=0)
    if h > data.time.max():
        return data.value("km_survival", math.nan, events=ev,
                          reason=f"horizon {h:g} is after the last follow-up time "
                                 f"{data.time.max():g}")
    km = kaplan_meier_by_group(data.time, data.event, confidence_level=data.confidence_level)
    row = km[km["time"] <= h].iloc[-1]
    ci = Interval(float(row["ci_low"]), float(row["ci_high"]), data.confidence_level,
                  "exponential-greenwood")
    return data.value("km_survival", float(row["survival"]), ci, events=ev, horizon=h,
                      n_at_risk=int(km.loc[km["time"] <= h, "n_at_risk"].iloc[-1]))


_S = frozenset({"time", "event", "y_score"})
for _spec in (
    MetricSpec("harrell_c", "Harrell's C", "survival", _S, True, None, "jackknife", harrell_c,
               "Concordance of risk score with event order; jackknife interval.", REF_HARRELL),
    MetricSpec("uno_c", "Uno's C", "survival", _S, True, None, "bootstrap", uno_c,
               "IPCW concordance (truncated at horizon when given).", REF_UNO_C),
    MetricSpec("time_dependent_auc", "Time-dependent AUC", "survival", _S | {"horizon"}, True,
               None, "bootstrap", time_dependent_auc, "Cumulative/dynamic AUC at the horizon (IPCW).",
               REF_TD_AUC),
    MetricSpec("brier_ipcw", "Brier score at horizon (IPCW)", "survival", _S | {"horizon"},
               False, None, "bootstrap", brier_ipcw,
               "IPCW Brier score of the predicted event probability at the horizon.", REF_GRAF),
    MetricSpec("km_survival", "Kaplan-Meier survival at horizon", "survival",
               frozenset({"time", "event", "horizon"}), True, None, "wald", km_survival,
               "Kaplan-Meier probability of no event by the horizon, exponential Greenwood "
               "interval.", "Kaplan EL, Meier P. Nonparametric estimation from incomplete "
               "observations. J Am Stat Assoc 1958;53(282):457-481.",
               valid_range=(0.0, 1.0), abbrev="KM survival"),
):
    register_metric(_spec)
