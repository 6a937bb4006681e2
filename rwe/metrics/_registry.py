"""The metric registry: specs, values and the ``compute_metric`` entry point.

Design follows scikit-learn's ``_SCORERS`` registry (each entry carries its direction and the
inputs it needs) and papermill's engine registries (a dict with ``register`` filled lazily from
the ``rwe.metrics`` entry-point group).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # checking a protocol's metric names must not load pandas
    import pandas as pd

from rwe._results import Interval, ResultMixin
from rwe._validation import as_1d, as_binary, check_choice, check_int, check_level, check_real
from rwe.exceptions import InvalidParameterError, RWEWarning

__all__ = [
    "MetricSpec",
    "MetricValue",
    "MetricData",
    "LevelValues",
    "KernelContext",
    "register_metric",
    "get_metric",
    "metric_names",
    "compute_metric",
    "compute_metrics",
    "KINDS",
    "NEEDS",
    "CI_METHODS",
    "ENTRY_POINT_GROUP",
]

KINDS = ("threshold", "ranking", "calibration", "survival")
NEEDS = frozenset({"y_true", "y_score", "threshold", "time", "event", "horizon"})
CI_METHODS = ("wilson", "clopper-pearson", "delong", "delong-logit-t", "log", "wald",
              "exact-poisson", "bootstrap", "jackknife", "none")
PROPORTION_INTERVALS = ("wilson", "clopper-pearson")
SUMMARY_MODES = ("exact", "binned", "rows")
CONFUSION_CELLS = ("tp", "fn", "fp", "tn")
HETEROGENEITY_TESTS = ("chi2", "delong", "lr_interaction")
BOOTSTRAP_BINS = ("threshold", "calibration", "score")
ENTRY_POINT_GROUP = "rwe.metrics"

UNKNOWN_METRIC = "metric={name!r} is unknown; valid metrics: {valid}"
DUPLICATE_METRIC = "metric {name!r} is already registered"
BAD_KIND = "kind={kind!r} is not valid; choose one of: {valid}"
BAD_NEEDS = "needs contains unknown inputs {unknown}; valid inputs: {valid}"
BAD_CI = "default_ci={ci!r} is not valid; choose one of: {valid}"
MISSING_INPUT = "metric {metric!r} needs the input {needs}, got {needs}={value!r}"
LENGTH_MISMATCH = "{name} has length {got} but y_true has length {expected}"
SCORE_NOT_PROBABILITY = ("y_score must contain probabilities in [0, 1] for metric {metric!r}; "
                         "got values in [{low}, {high}]")
NOT_A_SPEC = "spec must be a MetricSpec, got {type}"
ENTRY_POINT_FAILED = "could not load rwe.metrics entry point {name!r}: {error}"

#: Predicted probabilities are clipped to [EPS, 1 - EPS] before taking logits.
EPS = 1e-12


@dataclass(frozen=True)
class MetricSpec:
    """Description of one registered metric.

    Parameters
    ----------
    name : str
        Registry key, lowercase (e.g. ``"sensitivity"``).
    label : str
        Human-readable name (``"Sensitivity"``).
    kind : {"threshold", "ranking", "calibration", "survival"}
        ``threshold`` metrics dichotomise the score (``y_score >= threshold`` is positive);
        ``ranking`` metrics use the score's order; ``calibration`` metrics need probabilities;
        ``survival`` metrics need ``time`` and ``event``.
    needs : frozenset of str
        Inputs the metric needs, among ``y_true, y_score, threshold, time, event, horizon``.
    higher_is_better : bool or None
        Direction; ``None`` when the metric has a target value instead (see ``target``).
    target : float or None
        Ideal value for calibration metrics (1.0 for the slope and O/E, 0.0 for CITL).
    default_ci : str
        Interval method used by :func:`compute_metric` (one of :data:`CI_METHODS`).
    func : callable
        ``func(data: MetricData) -> MetricValue``; must never raise on degenerate data but
        return ``estimate=nan`` with a ``reason``.
    description, reference : str
        One-sentence definition and the full citation.
    kernel : callable, optional
        ``kernel(segments, ctx) -> LevelValues``: the metric computed for every segment
        (subgroup level) of score histograms at once (:class:`rwe.stats.summaries.Segments`,
        :class:`KernelContext`). This is the metric's one implementation: row arrays
        (:func:`compute_metric`), subgroup tables, merged site summaries and bootstrap
        replicates all call it. ``func`` is then unused (None); metrics that need rows
        (survival) have a ``func`` and no kernel.
    confusion : (tuple of str, tuple of str), optional
        For proportions: the confusion cells (``tp, fn, fp, tn``) of the numerator and of the
        denominator, e.g. ``(("tp",), ("tp", "fn"))`` for sensitivity. Heterogeneity tests,
        jackknives and the ``min_events`` rule read it.
    valid_range : (float, float), optional
        Range of the metric's values (a goal outside it is a protocol error).
    summary : {"exact", "binned", "rows"}
        From a summary the value is exact at any resolution (``"exact"``: threshold metrics
        at a threshold that is a bin edge, moment-based metrics), exact at full resolution
        and approximate at declared bins (``"binned"``, e.g. AUROC within its stated bound),
        or needs rows (``"rows"``).
    heterogeneity : {"chi2", "delong", "lr_interaction"}, optional
        Test of homogeneity across subgroup levels.
    bootstrap_bins : {"threshold", "calibration", "score"}, optional
        Score resolution the metric's bootstrap replicates need (None: not bootstrapped).
    abbrev : str, optional
        Short display label (``"PPV"``); default ``label``.
    """

    name: str
    label: str
    kind: str
    needs: frozenset[str]
    higher_is_better: bool | None
    target: float | None
    default_ci: str
    func: Callable[[MetricData], MetricValue] | None = field(repr=False, compare=False)
    description: str = ""
    reference: str = ""
    kernel: Callable[..., LevelValues] | None = field(default=None, repr=False, compare=False)
    confusion: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    valid_range: tuple[float, float] | None = None
    summary: str = "rows"
    heterogeneity: str | None = None
    bootstrap_bins: str | None = None
    abbrev: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidParameterError(BAD_KIND.format(kind=self.kind, valid=", ".join(KINDS)))
        needs = frozenset(self.needs)
        unknown = sorted(needs - NEEDS)
        if unknown:
            raise InvalidParameterError(BAD_NEEDS.format(unknown=unknown, valid=sorted(NEEDS)))
        object.__setattr__(self, "needs", needs)
        if self.default_ci not in CI_METHODS:
            raise InvalidParameterError(BAD_CI.format(ci=self.default_ci,
                                                      valid=", ".join(CI_METHODS)))
        if self.func is None and self.kernel is None:
            raise InvalidParameterError(f"metric {self.name!r} needs a kernel or a func")
        if self.summary not in SUMMARY_MODES:
            raise InvalidParameterError(
                f"summary={self.summary!r} is not valid; choose one of: {', '.join(SUMMARY_MODES)}")
        if self.kernel is None and self.summary != "rows":
            raise InvalidParameterError(f"metric {self.name!r} has no kernel: summary='rows'")
        if self.confusion is not None:
            cells = set(self.confusion[0]) | set(self.confusion[1])
            if not cells <= set(CONFUSION_CELLS) or not set(self.confusion[0]) <= set(
                    self.confusion[1]):
                raise InvalidParameterError(
                    f"confusion of {self.name!r} must name cells among {CONFUSION_CELLS}, the "
                    f"numerator's within the denominator's, got {self.confusion!r}")
        if self.heterogeneity not in (None, *HETEROGENEITY_TESTS):
            raise InvalidParameterError(
                f"heterogeneity={self.heterogeneity!r} is not valid; choose one of: "
                f"{', '.join(HETEROGENEITY_TESTS)}")
        if self.bootstrap_bins not in (None, *BOOTSTRAP_BINS):
            raise InvalidParameterError(
                f"bootstrap_bins={self.bootstrap_bins!r} is not valid; choose one of: "
                f"{', '.join(BOOTSTRAP_BINS)}")

    @property
    def display(self) -> str:
        """Short display label (``abbrev`` or ``label``)."""
        return self.abbrev or self.label

    @property
    def is_proportion(self) -> bool:
        return self.confusion is not None

    @property
    def needs_events(self) -> bool:
        """Whether the ``min_events`` rule applies: metrics conditioned on the positive cases
        (a proportion over tp + fn) and every metric that is not a proportion."""
        return self.confusion is None or set(self.confusion[1]) <= {"tp", "fn"}


@dataclass(frozen=True)
class MetricValue(ResultMixin):
    """One metric computed on one set of rows.

    Attributes
    ----------
    metric : str
        Registry name.
    estimate : float
        Point estimate; ``nan`` when undefined (then ``reason`` says why).
    ci : Interval or None
        Two-sided interval, ``None`` when none is available (``reason`` says why).
    n : int
        Rows used.
    events : int
        Positive cases (binary outcome) or observed events (survival).
    reason : str or None
        Why the estimate or its interval is missing or not finite, e.g. ``"no positive cases"``.
    extras : dict
        Metric-specific details (confusion counts, standard errors, p-values, bins).
    """

    metric: str
    estimate: float
    ci: Interval | None
    n: int
    events: int
    reason: str | None = None
    extras: dict[str, Any] = field(default_factory=dict, compare=False)

    FRAME_COLUMNS = ("metric", "estimate", "ci_low", "ci_high", "ci_level", "ci_method", "n",
                     "events", "reason")

    def to_frame(self) -> pd.DataFrame:
        """One tidy row: metric, estimate, ci_low, ci_high, ci_level, ci_method, n, events, reason."""
        ci = self.ci
        row = {
            "metric": self.metric,
            "estimate": float(self.estimate),
            "ci_low": float(ci.low) if ci is not None else math.nan,
            "ci_high": float(ci.high) if ci is not None else math.nan,
            "ci_level": float(ci.level) if ci is not None else math.nan,
            "ci_method": ci.method if ci is not None else None,
            "n": int(self.n),
            "events": int(self.events),
            "reason": self.reason,
        }
        import pandas as pd

        return pd.DataFrame([row], columns=list(self.FRAME_COLUMNS))


@dataclass(frozen=True, eq=False)
class KernelContext:
    """Settings every kernel reads (one object per call; see :class:`MetricSpec`)."""

    confidence_level: float = 0.95
    proportion_interval: str = "wilson"
    threshold: float | None = None
    n_boot: int = 1000
    random_state: Any = None
    n_bins: int = 10
    bin_edges: np.ndarray | None = None
    estimate_only: bool = False
    auroc_interval: str = "delong-logit-t"


@dataclass(eq=False)
class LevelValues:
    """A kernel's output: one entry per segment (level).

    ``low``/``high`` are NaN where there is no interval; ``reason`` (object array, None = no
    remark) says why an estimate or interval is missing or how it is qualified; ``extras``
    holds per-level arrays of metric-specific numbers (confusion counts, standard errors...).
    """

    estimate: np.ndarray
    low: np.ndarray
    high: np.ndarray
    method: str | None
    reason: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    level: float = 0.95

    def interval(self, i: int) -> Interval | None:
        lo, hi = float(self.low[i]), float(self.high[i])
        if math.isnan(lo) or math.isnan(hi) or self.method is None:
            return None
        return Interval(lo, hi, self.level, self.method)

    def value(self, i: int, metric: str, n: int, events: int) -> MetricValue:
        extras = {}
        for k, v in self.extras.items():
            x = v[i]
            if isinstance(x, np.generic):
                x = x.item()
            extras[k] = x
        r = self.reason[i]
        return MetricValue(metric=metric, estimate=float(self.estimate[i]), ci=self.interval(i),
                           n=int(n), events=int(events), reason=None if r is None else str(r),
                           extras=extras)


_METRICS: dict[str, MetricSpec] = {}
_ENTRY_POINTS_LOADED = False


def register_metric(spec: MetricSpec) -> MetricSpec:
    """Add ``spec`` to the registry; raise :class:`InvalidParameterError` on a duplicate name."""
    if not isinstance(spec, MetricSpec):
        raise InvalidParameterError(NOT_A_SPEC.format(type=type(spec).__name__))
    if spec.name in _METRICS:
        raise InvalidParameterError(DUPLICATE_METRIC.format(name=spec.name))
    _METRICS[spec.name] = spec
    return spec


def _load_entry_points() -> None:
    """Register third-party metrics from the ``rwe.metrics`` entry-point group (once).

    Each entry point must resolve to a :class:`MetricSpec`, an iterable of them, or a callable
    returning either. A failing plug-in emits an :class:`RWEWarning` instead of breaking rwe.
    """
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            if callable(obj) and not isinstance(obj, MetricSpec):
                obj = obj()
            specs = [obj] if isinstance(obj, MetricSpec) else list(obj)
            for spec in specs:
                if isinstance(spec, MetricSpec) and _METRICS.get(spec.name) is spec:
                    continue
                register_metric(spec)
        except Exception as exc:  # noqa: BLE001 - a broken plug-in must not break rwe
            warnings.warn(ENTRY_POINT_FAILED.format(name=ep.name, error=exc), RWEWarning,
                          stacklevel=3)


def get_metric(name: str) -> MetricSpec:
    """Return the spec registered under ``name``; the error lists the valid names."""
    _load_entry_points()
    try:
        return _METRICS[name]
    except (KeyError, TypeError):
        raise InvalidParameterError(
            UNKNOWN_METRIC.format(name=name, valid=", ".join(sorted(_METRICS)))) from None


def metric_names(kind: str | None = None) -> list[str]:
    """Registered metric names (sorted), optionally only those of one ``kind``."""
    _load_entry_points()
    if kind is not None:
        check_choice(kind, "kind", KINDS)
    return sorted(n for n, s in _METRICS.items() if kind is None or s.kind == kind)


# --------------------------------------------------------------------------------------------
# Inputs shared across metrics
# --------------------------------------------------------------------------------------------


class MetricData:
    """Validated inputs plus lazily computed shared quantities (e.g. the confusion matrix).

    One instance is built per :func:`compute_metrics` call so that work is shared between
    metrics. Metric functions read attributes; they must not mutate the arrays.
    """

    def __init__(self, y_true, y_score=None, *, threshold=None, confidence_level=0.95,
                 proportion_interval="wilson", time=None, event=None, horizon=None,
                 n_boot=1000, random_state=None, n_bins=10, bin_edges=None,
                 auroc_interval="delong-logit-t"):
        self.confidence_level = check_level(confidence_level)
        self.proportion_interval = check_choice(proportion_interval, "proportion_interval",
                                                PROPORTION_INTERVALS)
        from rwe.stats._intervals import AUC_INTERVALS

        self.auroc_interval = check_choice(auroc_interval, "auroc_interval", AUC_INTERVALS)
        self.n_boot = check_int(n_boot, "n_boot", minimum=1)
        self.random_state = random_state
        self.n_bins = check_int(n_bins, "n_bins", minimum=1)
        self.threshold = None if threshold is None else check_real(threshold, "threshold")
        self.horizon = None if horizon is None else check_real(horizon, "horizon", low=0,
                                                                low_inclusive=False)
        if event is not None and y_true is None:
            y_true = event
        self.y_true = as_binary(y_true, "y_true")
        n = self.y_true.shape[0]
        self.y_score = None
        if y_score is not None:
            s = as_1d(y_score, "y_score", dtype=float)
            if not np.isfinite(s).all():
                raise InvalidParameterError(
                    f"y_score must be finite, got non-finite values at positions "
                    f"{np.flatnonzero(~np.isfinite(s))[:5].tolist()}")
            self._check_len(s, "y_score", n)
            self.y_score = s
        self.time = None
        if time is not None:
            t = as_1d(time, "time", dtype=float)
            self._check_len(t, "time", n)
            bad = (t < 0) | ~np.isfinite(t)
            if bad.any():
                raise InvalidParameterError(
                    f"time must be finite and non-negative, got {t[bad][:5].tolist()} at "
                    f"positions {np.flatnonzero(bad)[:5].tolist()}")
            self.time = t
        self.event = None
        if event is not None:
            self.event = as_binary(event, "event")
            self._check_len(self.event, "event", n)
        self.bin_edges = None
        if bin_edges is not None:
            e = as_1d(bin_edges, "bin_edges", dtype=float)
            if e.size < 2 or np.any(np.diff(e) <= 0):
                raise InvalidParameterError(
                    f"bin_edges must be strictly increasing with at least 2 edges, got {e.tolist()}")
            self.bin_edges = e

    @staticmethod
    def _check_len(arr: np.ndarray, name: str, n: int) -> None:
        if arr.shape[0] != n:
            raise InvalidParameterError(LENGTH_MISMATCH.format(name=name, got=arr.shape[0],
                                                               expected=n))

    @property
    def n(self) -> int:
        return int(self.y_true.shape[0])

    @property
    def positives(self) -> int:
        return int(self.y_true.sum())

    @property
    def n_events(self) -> int:
        return int(self.event.sum()) if self.event is not None else self.positives

    @cached_property
    def y_pred(self) -> np.ndarray:
        """``y_score >= threshold`` (ties at the threshold are classified positive)."""
        return self.y_score >= self.threshold

    @cached_property
    def confusion(self) -> dict[str, int]:
        """Counts tp, fp, fn, tn at ``threshold``."""
        y, yp = self.y_true, self.y_pred
        tp = int(np.count_nonzero(y & yp))
        fp = int(np.count_nonzero(~y & yp))
        fn = int(np.count_nonzero(y & ~yp))
        tn = int(np.count_nonzero(~y & ~yp))
        return {"tp": tp, "fp": fp, "fn": fn, "tn": tn}

    @cached_property
    def segments(self):
        """The rows as one segment of an exact score histogram (kernel input)."""
        from rwe.stats.summaries import Segments

        return Segments.from_arrays(self.y_true, self.y_score, threshold=self.threshold)

    @cached_property
    def context(self) -> KernelContext:
        return KernelContext(self.confidence_level, self.proportion_interval, self.threshold,
                             self.n_boot, self.random_state, self.n_bins, self.bin_edges,
                             auroc_interval=self.auroc_interval)

    @cached_property
    def p_clipped(self) -> np.ndarray:
        """Probabilities clipped to ``[EPS, 1 - EPS]`` so that logits are finite."""
        return np.clip(self.y_score, EPS, 1.0 - EPS)

    @cached_property
    def logit_p(self) -> np.ndarray:
        p = self.p_clipped
        return np.log(p) - np.log1p(-p)

    def value(self, metric: str, estimate: float, ci: Interval | None = None, *,
              reason: str | None = None, events: int | None = None,
              **extras: Any) -> MetricValue:
        """Build a :class:`MetricValue` carrying this data's n and events."""
        return MetricValue(metric=metric, estimate=float(estimate), ci=ci, n=self.n,
                           events=self.positives if events is None else int(events),
                           reason=reason, extras=extras)


def _check_inputs(spec: MetricSpec, data: MetricData) -> None:
    for need in ("y_score", "threshold", "time", "event", "horizon"):
        if need in spec.needs and getattr(data, need) is None:
            raise InvalidParameterError(MISSING_INPUT.format(metric=spec.name, needs=need,
                                                             value=None))
    if spec.kind == "calibration" and data.n > 0:
        lo, hi = float(data.y_score.min()), float(data.y_score.max())
        if lo < 0 or hi > 1:
            raise InvalidParameterError(SCORE_NOT_PROBABILITY.format(metric=spec.name, low=lo,
                                                                     high=hi))


def _evaluate(spec: MetricSpec, data: MetricData) -> MetricValue:
    _check_inputs(spec, data)
    if data.n == 0:
        return data.value(spec.name, math.nan, reason="no observations", events=0)
    if spec.kernel is None:
        return spec.func(data)
    seg = data.segments
    return spec.kernel(seg, data.context).value(0, spec.name, data.n, data.positives)


def compute_metric(name: str, y_true, y_score=None, *, threshold: float | None = None,
                   confidence_level: float = 0.95, proportion_interval: str = "wilson",
                   time=None, event=None, horizon: float | None = None, n_boot: int = 1000,
                   random_state=None, n_bins: int = 10, bin_edges=None,
                   auroc_interval: str = "delong-logit-t") -> MetricValue:
    """Compute one registered metric with its default interval.

    Parameters
    ----------
    name : str
        A name from :func:`metric_names`.
    y_true : array-like of {0, 1} or bool
        Binary reference standard. For survival metrics pass the event indicator (``y_true``
        may then be ``None`` and ``event`` is used).
    y_score : array-like of float, optional
        Model output. Threshold metrics classify ``y_score >= threshold`` as positive.
        Calibration metrics need probabilities in [0, 1]. Survival metrics take a risk score
        (higher = worse prognosis); ``brier_ipcw`` takes the predicted probability of the event
        by ``horizon``.
    threshold : float, optional
        Decision threshold for ``threshold`` metrics (and the threshold probability of
        ``net_benefit``).
    confidence_level : float, default 0.95
        Two-sided level of the interval.
    proportion_interval : {"wilson", "clopper-pearson"}, default "wilson"
        Interval for proportions (sensitivity, specificity, PPV, NPV, accuracy, FPR, FNR).
    time, event : array-like, optional
        Follow-up time and event indicator for survival metrics.
    horizon : float, optional
        Time horizon for ``time_dependent_auc``, ``brier_ipcw`` and (truncation) ``uno_c``.
    n_boot : int, default 1000
        Bootstrap replicates for metrics whose default interval is the bootstrap.
    random_state : int, numpy Generator or None
        Seed for bootstrap intervals.
    n_bins : int, default 10
        Equal-width bins on [0, 1] for ``ece``.
    bin_edges : array-like, optional
        Custom bin edges for ``ece`` (override ``n_bins``).
    auroc_interval : {"delong-logit-t", "delong"}, default "delong-logit-t"
        AUROC interval (:func:`rwe.stats.auc_interval`): the logit interval with
        Brunner-Munzel degrees of freedom, or pROC's Wald interval.

    Returns
    -------
    MetricValue
        Degenerate inputs (one class, no predicted positives, n = 1, ...) never raise: they
        give ``estimate = nan`` (or an infinite likelihood ratio) and a ``reason``.

    Raises
    ------
    InvalidParameterError
        Unknown metric, an input the metric needs is missing, or invalid arguments.

    Examples
    --------
    FDA 2007 guidance, Table 2: sensitivity 44/51 with the Wilson score interval.

    >>> import numpy as np
    >>> y = np.r_[np.ones(51), np.zeros(169)]
    >>> s = np.r_[np.ones(44), np.zeros(7), np.ones(1), np.zeros(168)]
    >>> v = compute_metric("sensitivity", y, s, threshold=0.5)
    >>> round(v.estimate, 4), round(v.ci.low, 6), round(v.ci.high, 6), v.ci.method
    (0.8627, 0.742783, 0.931889, 'wilson')
    >>> compute_metric("sensitivity", np.zeros(3), [0.2, 0.7, 0.9], threshold=0.5).reason
    'no positive cases'
    """
    return compute_metrics([name], y_true, y_score, threshold=threshold,
                           confidence_level=confidence_level,
                           proportion_interval=proportion_interval, time=time, event=event,
                           horizon=horizon, n_boot=n_boot, random_state=random_state,
                           n_bins=n_bins, bin_edges=bin_edges,
                           auroc_interval=auroc_interval)[0]


def compute_metrics(names: Iterable[str], y_true, y_score=None, *,
                    threshold: float | None = None, confidence_level: float = 0.95,
                    proportion_interval: str = "wilson", time=None, event=None,
                    horizon: float | None = None, n_boot: int = 1000, random_state=None,
                    n_bins: int = 10, bin_edges=None,
                    auroc_interval: str = "delong-logit-t") -> list[MetricValue]:
    """Compute several metrics on the same rows, sharing work (confusion matrix, logits).

    Parameters are those of :func:`compute_metric`; ``names`` is a list of metric names (a
    single string is accepted). Returns one :class:`MetricValue` per name, in order.
    """
    if isinstance(names, str):
        names = [names]
    specs = [get_metric(n) for n in names]
    data = MetricData(y_true, y_score, threshold=threshold, confidence_level=confidence_level,
                      proportion_interval=proportion_interval, time=time, event=event,
                      horizon=horizon, n_boot=n_boot, random_state=random_state,
                      n_bins=n_bins, bin_edges=bin_edges, auroc_interval=auroc_interval)
    return [_evaluate(spec, data) for spec in specs]
