"""The result of :func:`rwe.assess_drift` and its plots (drawn from the result's own tables:
a result keeps no patient rows)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rwe._evidence import Finding, Verdict
from rwe._optional import import_pyplot
from rwe._results import ResultMixin, json_safe
from rwe.exceptions import InvalidParameterError

__all__ = ["DriftResult", "DRIFT_COLUMNS", "PERFORMANCE_COLUMNS", "PREVALENCE_COLUMNS",
           "CASE_MIX_COLUMNS", "INTEGRITY_COLUMNS", "RECALIBRATION_COLUMNS",
           "DIAGNOSTIC_COLUMNS", "CLASSIFIER_COLUMNS", "CHART_COLUMNS", "ALARM_COLUMNS",
           "STATUS_OK", "STATUS_NO_DATA", "STATUS_NO_LABELS", "STATUS_INSUFFICIENT",
           "STATUS_ESTIMATED", "STATUS_NOT_EVALUABLE", "REFERENCE_WINDOW", "BASELINE_WINDOW"]

#: Row statuses of the tables.
STATUS_OK = "ok"
STATUS_NO_DATA = "no_data"
STATUS_NO_LABELS = "no_labels"
STATUS_INSUFFICIENT = "insufficient"
STATUS_ESTIMATED = "estimated"
STATUS_NOT_EVALUABLE = "not_evaluable"
#: The ``window`` of rows describing the reference population and the baseline period.
REFERENCE_WINDOW = "reference"
BASELINE_WINDOW = "baseline"

DRIFT_COLUMNS = ["role", "feature", "kind", "test", "window", "group", "level", "n_reference",
                 "n", "missing", "statistic", "effect", "effect_name", "threshold", "pvalue",
                 "pvalue_adjusted", "drifted", "bound", "resolution", "status", "reason"]
PERFORMANCE_COLUMNS = ["window", "group", "level", "metric", "n", "events", "estimate",
                       "ci_low", "ci_high", "ci_level", "ci_method", "estimated", "status",
                       "reason"]
PREVALENCE_COLUMNS = ["window", "group", "level", "n", "events", "prevalence", "ci_low",
                      "ci_high", "mean_predicted", "reference_prevalence",
                      "reference_mean_predicted", "status"]
CASE_MIX_COLUMNS = ["feature", "category", "window", "group", "level", "n", "value",
                    "ci_low", "ci_high", "reference_value", "ppr", "smd", "flagged", "status"]
INTEGRITY_COLUMNS = ["window", "group", "level", "feature", "n", "missing", "missing_share",
                     "reference_missing_share", "out_of_range", "out_of_range_share",
                     "unlabelled", "duplicates", "status"]
RECALIBRATION_COLUMNS = ["window", "group", "level", "n", "events", "intercept",
                         "intercept_se", "slope", "slope_se", "dynamic_intercept",
                         "dynamic_slope", "status", "reason"]
DIAGNOSTIC_COLUMNS = ["window", "group", "level", "last_labelled_window", "citl",
                      "citl_low", "citl_high", "slope", "slope_low", "slope_high",
                      "calibration_ok", "outside_support_share", "support_ok", "assumption"]
CLASSIFIER_COLUMNS = ["window", "n_reference", "n", "auroc", "ci_low", "ci_high", "pvalue",
                      "threshold", "drifted", "top_features", "importance", "reason"]
CHART_COLUMNS = ["rule", "method", "metric", "group", "level", "window", "n", "estimate",
                 "z", "upper", "lower", "limit", "alarm", "side", "status"]
ALARM_COLUMNS = ["rule", "method", "metric", "group", "level", "window", "statistic",
                 "limit", "side", "run_length", "run_length_unit"]
_FRAMES = {"drift": DRIFT_COLUMNS, "performance": PERFORMANCE_COLUMNS,
           "prevalence": PREVALENCE_COLUMNS, "case_mix": CASE_MIX_COLUMNS,
           "integrity": INTEGRITY_COLUMNS, "recalibration": RECALIBRATION_COLUMNS,
           "diagnostics": DIAGNOSTIC_COLUMNS, "classifier": CLASSIFIER_COLUMNS,
           "charts": CHART_COLUMNS, "alarms": ALARM_COLUMNS}
_FLOATS = {"statistic", "effect", "threshold", "pvalue", "pvalue_adjusted", "bound", "estimate",
           "ci_low", "ci_high", "ci_level", "prevalence", "mean_predicted",
           "reference_prevalence", "reference_mean_predicted", "value", "reference_value",
           "ppr", "smd", "missing_share", "reference_missing_share", "out_of_range_share",
           "intercept", "intercept_se", "slope", "slope_se", "dynamic_intercept",
           "dynamic_slope", "citl", "citl_low", "citl_high",
           "slope_low", "slope_high", "outside_support_share", "auroc", "z", "upper", "lower",
           "limit", "importance"}


@dataclass(frozen=True, eq=False)
class DriftResult(ResultMixin):
    """What moved, when, where, and whether it matters (EVIDENCE.md MON-1..MON-4, MON-6).

    Every table is tidy, one row per window x group level (x feature, test, metric), with
    ``group`` the grouping (``"overall"``, ``"site"``, ``"site x sex"``) and ``level`` its
    level (``"all"``, ``"S3"``); windows with no row are explicit rows with status
    ``"no_data"``. Rows for the reference population have ``window = "reference"``, rows for
    the baseline period ``"baseline"``.

    Attributes
    ----------
    drift : pandas.DataFrame
        Input (``role = "input"``) and prediction (``role = "prediction"``: the score) drift:
        one row per feature x test x window x level with the effect, its threshold, the
        p-value and its Benjamini-Hochberg adjustment across features x levels x windows,
        ``drifted``, and the binning ``bound`` with the ``resolution`` it came from.
    performance : pandas.DataFrame
        Metrics per window x level with intervals; label-free estimates have
        ``estimated = True`` and status ``"estimated"``.
    prevalence : pandas.DataFrame
        Outcome rate (Wilson interval) and mean prediction per window x level.
    case_mix : pandas.DataFrame
        Shares of categories (Wilson interval, PPR, Austin's SMD) and means of numeric
        features per window x level against the reference.
    integrity : pandas.DataFrame
        Missing values, values outside the reference's range or categories unseen in it,
        unlabelled rows and duplicates per window x level x feature (MON-3).
    recalibration : pandas.DataFrame
        The logistic recalibration curve ``logit P(y) = a + b logit(p)`` per window x level
        (``intercept``, ``slope`` with their SEs), and the dynamic recalibration curve
        (``dynamic_intercept``, ``dynamic_slope``): the same fit on every window up to this one
        with weights ``memory^(age in windows)``, the update a deployment would apply next.
    diagnostics : pandas.DataFrame
        The label-free estimates' assumptions per unlabelled window x level: calibration of
        the last labelled window and the share of cases outside the reference's support.
    classifier : pandas.DataFrame
        Domain-classifier two-sample tests (out-of-fold AUROC, interval, driving features).
    charts, alarms : pandas.DataFrame
        Control-chart statistics per rule x level x window with their limits, and every alarm
        with its run length (windows, or cases for the risk-adjusted CUSUM).
    verdicts, findings : tuple
        Typed verdicts (one per input test, the classifier test, and alert rule) and findings.
    settings : dict
        Echo of the inputs: window, groupings, tests and thresholds, metrics, version,
        threshold, levels, resolution, limits of each rule and the chart states to continue.
    """

    drift: pd.DataFrame
    performance: pd.DataFrame
    prevalence: pd.DataFrame
    case_mix: pd.DataFrame
    integrity: pd.DataFrame
    recalibration: pd.DataFrame
    diagnostics: pd.DataFrame
    classifier: pd.DataFrame
    charts: pd.DataFrame
    alarms: pd.DataFrame
    verdicts: tuple[Verdict, ...] = ()
    findings: tuple[Finding, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ export
    def to_frame(self) -> pd.DataFrame:
        """The drift table (input and prediction drift)."""
        return self.drift

    def to_dict(self) -> dict[str, Any]:
        out = {name: json_safe(getattr(self, name)) for name in _FRAMES}
        out["verdicts"] = [v.to_dict() for v in self.verdicts]
        out["findings"] = [f.to_dict() for f in self.findings]
        out["settings"] = json_safe(self.settings)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DriftResult:
        frames = {}
        for name, cols in _FRAMES.items():
            rows = d.get(name) or []
            # a column a record adds (a merge's withheld_at, rwe.federation._withheld) is kept
            extra = list(dict.fromkeys(c for r in rows for c in r if c not in cols))
            f = pd.DataFrame(rows, columns=cols + extra)
            frames[name] = f.astype({c: float for c in cols if c in _FLOATS})
        return cls(**frames, verdicts=tuple(Verdict.from_dict(v) for v in d.get("verdicts", [])),
                   findings=tuple(Finding.from_dict(f) for f in d.get("findings", [])),
                   settings=dict(d.get("settings") or {}))

    @property
    def windows(self) -> list[str]:
        return list(self.settings.get("windows", []))

    def summary(self) -> str:
        from rwe._evidence import render_verdict

        s = self.settings
        lines = [f"Drift: {len(self.windows)} {s.get('window')} windows, groupings "
                 f"{', '.join(s.get('groupings', [])) or 'overall'}, version {s.get('version')}"]
        lines += [render_verdict(v) for v in self.verdicts]
        lines += [f.text(s.get("small_cell_k")) for f in self.findings]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        fmt = {"float_format": lambda v: f"{v:.4g}", "na_rep": "—", "index": False}
        parts = [f"<h4>Drift ({len(self.windows)} {self.settings.get('window')} windows)</h4>"]
        if self.verdicts:
            rows = pd.DataFrame([{"status": v.status, "criterion": v.criterion,
                                  "reason": v.reason} for v in self.verdicts])
            parts += ["<h5>Verdicts</h5>", rows.to_html(**fmt)]
        if len(self.alarms):
            parts += ["<h5>Alarms</h5>", self.alarms.to_html(**fmt)]
        flagged = self.drift[self.drift["drifted"] == True]  # noqa: E712
        if len(flagged):
            top = (flagged.groupby(["role", "feature", "test"], sort=False)
                   .agg(cells=("effect", "size"), max_effect=("effect", "max")).reset_index())
            parts += ["<h5>Drifted features (cells above threshold)</h5>", top.to_html(**fmt)]
        if len(self.classifier):
            parts += ["<h5>Classifier two-sample test</h5>", self.classifier.to_html(**fmt)]
        return "\n".join(parts)

    # ------------------------------------------------------------------ plots
    def plot_metric(self, metric: str, *, group: str = "overall", levels=None, ax=None):
        """The metric over the windows per level of ``group`` with its interval band, estimated
        (label-free) windows dashed, and the windows where a chart on this metric alarmed
        marked. Returns the Axes."""
        t = self.performance[(self.performance["metric"] == metric)
                             & (self.performance["group"] == group)
                             & ~self.performance["window"].isin([REFERENCE_WINDOW,
                                                                 BASELINE_WINDOW])]
        if t.empty:
            raise InvalidParameterError(
                f"metric={metric!r} with group={group!r} is not in this result; metrics: "
                f"{sorted(self.performance['metric'].unique())}, groups: "
                f"{sorted(self.performance['group'].unique())}")
        plt = import_pyplot()
        if ax is None:
            _, ax = plt.subplots(figsize=(8, 4))
        windows = self.windows or sorted(t["window"].unique())
        x_of = {w: i for i, w in enumerate(windows)}
        levs = list(dict.fromkeys(t["level"])) if levels is None else list(levels)
        al = self.alarms[(self.alarms["metric"] == metric) & (self.alarms["group"] == group)]
        for i, lev in enumerate(levs):
            d = t[t["level"] == lev]
            color = f"C{i % 10}"
            for est_flag, ls in ((False, "-"), (True, "--")):
                e = d[d["estimated"] == est_flag]
                if e.empty:
                    continue
                x = np.array([x_of[w] for w in e["window"]])
                y = e["estimate"].to_numpy(dtype=float)
                ax.plot(x, y, ls, marker="o", ms=3, color=color,
                        label=f"{lev}{' (estimated)' if est_flag else ''}")
                ax.fill_between(x, e["ci_low"].to_numpy(dtype=float),
                                e["ci_high"].to_numpy(dtype=float), color=color, alpha=0.15,
                                lw=0)
            a = al[al["level"] == lev]
            if len(a):
                xa = [x_of[w] for w in a["window"] if w in x_of]
                ya = [float(d.loc[d["window"] == w, "estimate"].iloc[0])
                      if (d["window"] == w).any() else np.nan for w in a["window"] if w in x_of]
                ax.plot(xa, ya, "v", color="C3", ms=8, mfc="none", mew=1.5)
        from rwe.metrics import get_metric

        spec = get_metric(metric)
        if spec.target is not None:
            ax.axhline(spec.target, color="0.5", ls=":", lw=1)
        ax.set_xticks(range(len(windows)), windows, rotation=90, fontsize=7)
        ax.set_ylabel(f"{spec.display} ({int(round(100 * t['ci_level'].dropna().iloc[0])) if t['ci_level'].notna().any() else 95}% CI)")
        ax.set_title(f"{spec.display} by {group} over time (red triangles: alarms)")
        ax.legend(fontsize=7, ncol=2)
        return ax

    def plot_recalibration(self, *, group: str = "overall", levels=None, ax=None):
        """The recalibration intercept and slope over the windows per level (markers: each
        window's own fit; lines: the dynamic recalibration curve). Returns two Axes."""
        r = self.recalibration[self.recalibration["group"] == group]
        if r.empty:
            raise InvalidParameterError(
                f"group={group!r} has no recalibration rows (metrics need a calibration "
                f"metric); groups: {sorted(self.recalibration['group'].unique())}")
        plt = import_pyplot()
        if ax is None:
            _, ax = plt.subplots(1, 2, figsize=(11, 3.8))
        windows = [w for w in self.windows if w in set(r["window"])]
        x_of = {w: i for i, w in enumerate(windows)}
        levs = list(dict.fromkeys(r["level"])) if levels is None else list(levels)
        for a, col, target in ((ax[0], "intercept", 0.0), (ax[1], "slope", 1.0)):
            for i, lev in enumerate(levs):
                d = r[r["level"] == lev]
                x = [x_of[w] for w in d["window"]]
                a.plot(x, d[col].to_numpy(dtype=float), "o", ms=3, color=f"C{i % 10}")
                a.plot(x, d[f"dynamic_{col}"].to_numpy(dtype=float), "-", color=f"C{i % 10}",
                       label=str(lev))
            a.axhline(target, color="0.5", ls=":", lw=1)
            a.set_xticks(range(len(windows)), windows, rotation=90, fontsize=7)
            a.set_title(f"recalibration {col} ({group}; line: dynamic, memory "
                        f"{self.settings.get('recalibration_memory', 0.7):g})", fontsize=9)
        ax[1].legend(fontsize=7)
        return ax

    def plot_heatmap(self, *, test: str | None = None, group: str = "overall", level=None,
                     role: str | None = None, ax=None):
        """Features x windows heat map of the drift effect divided by its threshold (>= 1:
        drifted, outlined) for one test (default: the first of the table) and one level."""
        d = self.drift[(self.drift["group"] == group)]
        if role is not None:
            d = d[d["role"] == role]
        tests = list(dict.fromkeys(d["test"]))
        if not tests:
            raise InvalidParameterError(f"group={group!r} has no drift rows in this result")
        test = tests[0] if test is None else test
        d = d[d["test"] == test]
        if d.empty:
            raise InvalidParameterError(f"test={test!r} is not in this result; tests: {tests}")
        lev = d["level"].iloc[0] if level is None else level
        d = d[d["level"] == lev]
        feats = list(dict.fromkeys(d["feature"]))
        windows = [w for w in (self.windows or list(dict.fromkeys(d["window"])))
                   if w in set(d["window"])]
        m = np.full((len(feats), len(windows)), np.nan)
        for r in d.itertuples(index=False):
            if r.window in windows and np.isfinite(r.effect) and r.threshold > 0:
                m[feats.index(r.feature), windows.index(r.window)] = r.effect / r.threshold
        plt = import_pyplot()
        if ax is None:
            _, ax = plt.subplots(figsize=(max(5, 0.28 * len(windows) + 2), 0.4 * len(feats) + 1.5))
        im = ax.imshow(m, aspect="auto", cmap="Reds", vmin=0, vmax=max(2.0, np.nanmax(m)
                                                                         if np.isfinite(m).any()
                                                                         else 2.0))
        ys, xs = np.nonzero(m >= 1)
        ax.plot(xs, ys, "s", mfc="none", mec="k", ms=7, mew=0.8)
        ax.set_yticks(range(len(feats)), feats, fontsize=8)
        ax.set_xticks(range(len(windows)), windows, rotation=90, fontsize=7)
        ax.figure.colorbar(im, ax=ax, label="effect / threshold")
        ax.set_title(f"{test} by window ({group}: {lev}; outlined: drifted)", fontsize=9)
        return ax

    def plot_chart(self, rule: str | None = None, *, level=None, ax=None):
        """A control chart with its limit and alarms (the first rule and level by default)."""
        c = self.charts
        if c.empty:
            raise InvalidParameterError("this result has no control chart (no alert rule)")
        rule = c["rule"].iloc[0] if rule is None else rule
        c = c[c["rule"] == rule]
        if c.empty:
            raise InvalidParameterError(
                f"rule={rule!r} is not in this result; rules: {sorted(self.charts['rule'].unique())}")
        lev = c["level"].iloc[0] if level is None else level
        c = c[c["level"] == lev]
        plt = import_pyplot()
        if ax is None:
            _, ax = plt.subplots(figsize=(8, 3.5))
        x = np.arange(len(c))
        method = c["method"].iloc[0]
        ax.plot(x, c["upper"].to_numpy(dtype=float), marker="o", ms=3,
                label="upper" if method == "cusum" else "statistic")
        if method == "cusum":
            ax.plot(x, c["lower"].to_numpy(dtype=float), marker="o", ms=3, label="lower")
        lim = c["limit"].to_numpy(dtype=float)
        ax.plot(x, lim, color="C3", ls="--", lw=1, label="limit")
        if method == "ewma":
            ax.plot(x, -lim, color="C3", ls="--", lw=1)
        al = c["alarm"].to_numpy(dtype=bool)
        ax.plot(x[al], lim[al], "v", color="C3", ms=8, label="alarm")
        ax.set_xticks(x, c["window"], rotation=90, fontsize=7)
        ax.set_title(f"{method} on {c['metric'].iloc[0]}: {c['group'].iloc[0]} = {lev}",
                     fontsize=9)
        ax.legend(fontsize=7)
        return ax
