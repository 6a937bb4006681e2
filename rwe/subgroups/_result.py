"""The result of :func:`rwe.subgroups.subgroup_performance` and its plots (drawn from the
result's own tables: a result keeps no patient rows)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rwe._evidence import Finding, Verdict
from rwe._optional import import_pyplot, tight_layout
from rwe._results import ResultMixin, json_safe
from rwe.exceptions import InvalidParameterError

__all__ = ["SubgroupPerformanceResult", "TABLE_COLUMNS", "HET_COLUMNS", "FAIR_COLUMNS",
           "GOAL_COLUMNS", "ROC_COLUMNS", "CALIBRATION_COLUMNS", "STATUS_OK",
           "STATUS_INSUFFICIENT", "STATUS_DEGENERATE", "ROW_STATUSES"]

#: Row status of the subgroup table: usable evidence, below min_n / min_events, no estimate.
STATUS_OK = "ok"
STATUS_INSUFFICIENT = "insufficient"
STATUS_DEGENERATE = "degenerate"
ROW_STATUSES = (STATUS_OK, STATUS_INSUFFICIENT, STATUS_DEGENERATE)

TABLE_COLUMNS = ["group", "n_attributes", "level", "n", "events", "metric", "estimate",
                 "ci_low", "ci_high", "ci_level", "ci_method", "binning_bound", "n_clusters",
                 "design_effect", "status", "reason"]
HET_COLUMNS = ["group", "metric", "test", "statistic", "df", "pvalue", "pvalue_adjusted",
               "method", "i2", "levels", "multiplicity"]
FAIR_COLUMNS = ["group", "n_attributes", "metric", "definition", "gap", "ci_low", "ci_high",
                "ci_level", "ci_method", "level_max", "level_min", "levels_compared", "reason"]
GOAL_COLUMNS = ["goal_id", "version", "metric", "scope", "group", "level", "n", "events", "goal",
                "estimate", "bound", "bound_side", "status", "reason"]
ROC_COLUMNS = ["group", "level", "fpr", "tpr"]
CALIBRATION_COLUMNS = ["group", "level", "bin", "n", "events", "mean_predicted", "observed",
                       "ci_low", "ci_high"]
_FRAMES = {"table": TABLE_COLUMNS, "heterogeneity": HET_COLUMNS, "fairness": FAIR_COLUMNS,
           "goals": GOAL_COLUMNS, "roc": ROC_COLUMNS, "calibration": CALIBRATION_COLUMNS}


def _group_name(by: Any) -> str:
    from rwe.stats.summaries import grouping_name

    if isinstance(by, str):
        return by
    return grouping_name(tuple(by))


@dataclass(frozen=True, eq=False)
class SubgroupPerformanceResult(ResultMixin):
    """Subgroup performance: table, heterogeneity tests, fairness gaps, goal verdicts, curves.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (group, level, metric): ``group, n_attributes, level, n, events, metric,
        estimate, ci_low, ci_high, ci_level, ci_method, status, reason``. ``group`` is
        ``"overall"``, an attribute (``"sex"``) or an intersection (``"sex x race"``,
        ``n_attributes`` 2); ``level`` is ``"all"``, ``"F"`` or ``"F & Black"``. ``status``
        is ``"ok"``, ``"insufficient"`` (below ``min_n``/``min_events``) or ``"degenerate"``
        (no estimate); ``reason`` says why.
    heterogeneity : pandas.DataFrame
        ``group, metric, test, statistic, df, pvalue, pvalue_adjusted, method, i2, levels,
        multiplicity``.
    fairness : pandas.DataFrame
        ``group, n_attributes, metric, definition, gap, ci_low, ci_high, ci_level, ci_method,
        level_max, level_min, levels_compared, reason``.
    goals : pandas.DataFrame
        Every judged cell of every goal: ``goal_id, version, metric, scope, group, level, n,
        events, goal, estimate, bound, bound_side, status, reason`` (``version``: the model
        version whose scores were judged; from a protocol, a goal tagged with another version
        is judged on that version's scores).
    verdicts : tuple of Verdict
        One per goal (stable id, status pass / fail / not_evaluable / not_evaluated).
    findings : tuple of Finding
        Typed observations (text from templates: ``finding.text()``).
    roc, calibration : pandas.DataFrame
        What :meth:`plot_roc` and :meth:`plot_calibration` draw.
    settings : dict
        Echo of the inputs (version, threshold, level, methods, n, resolution, bootstrap
        resolution and the largest binned-AUROC error bound).
    """

    table: pd.DataFrame
    heterogeneity: pd.DataFrame
    fairness: pd.DataFrame
    goals: pd.DataFrame
    verdicts: tuple[Verdict, ...] = ()
    findings: tuple[Finding, ...] = ()
    roc: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ROC_COLUMNS))
    calibration: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=CALIBRATION_COLUMNS))
    settings: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """The tidy subgroup table."""
        return self.table

    def to_dict(self) -> dict[str, Any]:
        out = {name: json_safe(getattr(self, name)) for name in _FRAMES}
        out["verdicts"] = [v.to_dict() for v in self.verdicts]
        out["findings"] = [f.to_dict() for f in self.findings]
        out["settings"] = json_safe(self.settings)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SubgroupPerformanceResult:
        frames = {name: pd.DataFrame(d.get(name) or [], columns=cols).astype(
            {c: float for c in cols if c in ("estimate", "ci_low", "ci_high", "gap", "bound",
                                              "statistic", "pvalue", "pvalue_adjusted", "fpr",
                                              "binning_bound", "design_effect",
                                              "tpr", "mean_predicted", "observed")})
            for name, cols in _FRAMES.items()}
        return cls(**frames, verdicts=tuple(Verdict.from_dict(v) for v in d.get("verdicts", [])),
                   findings=tuple(Finding.from_dict(f) for f in d.get("findings", [])),
                   settings=dict(d.get("settings") or {}))

    def summary(self) -> str:
        s = self.settings
        lines = [f"Subgroup performance: version {s['version']}, n={s['n']}, threshold "
                 f"{s['threshold']}, {s['confidence_level']:.0%} CIs ({s['ci_method']})"]
        with pd.option_context("display.width", 140, "display.max_columns", 30,
                               "display.max_rows", 500):
            lines.append(self.table.to_string(index=False))
            if len(self.heterogeneity):
                lines += ["", "Heterogeneity:", self.heterogeneity.to_string(index=False)]
            if len(self.fairness):
                lines += ["", "Fairness gaps:", self.fairness.to_string(index=False)]
        if self.verdicts:
            from rwe._evidence import render_verdict

            lines += ["", "Goals:"] + [render_verdict(v) for v in self.verdicts]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        fmt = {"float_format": lambda v: f"{v:.4g}", "na_rep": "—", "index": False}
        parts = [f"<h4>Subgroup performance (n={self.settings.get('n')})</h4>",
                 self.table.to_html(**fmt)]
        for title, frame in (("Heterogeneity", self.heterogeneity),
                             ("Fairness gaps", self.fairness), ("Goals", self.goals)):
            if len(frame):
                parts += [f"<h4>{title}</h4>", frame.to_html(**fmt)]
        return "\n".join(parts)

    # ------------------------------------------------------------------ plots
    def plot_forest(self, metric: str | Sequence[str], *, ax=None):
        """Forest plot: estimates with CIs per subgroup, a dashed line at the overall estimate,
        insufficient or degenerate cells in grey.

        Parameters
        ----------
        metric : str or sequence of str
            One metric, or several drawn side by side in one figure with a shared row axis.
        ax : matplotlib Axes or sequence of Axes, optional
            Where to draw (one per metric); a new figure when omitted.

        Returns
        -------
        matplotlib Axes (one metric) or numpy array of Axes (several).
        """
        metrics = [metric] if isinstance(metric, str) else list(metric)
        tables = []
        for m in metrics:
            t = self.table[self.table["metric"] == m]
            if t.empty:
                raise InvalidParameterError(
                    f"metric={m!r} is not in this result; available: "
                    f"{sorted(self.table['metric'].unique())}")
            tables.append(t)
        plt = import_pyplot()
        keys: dict = {}
        for t in tables:  # rows in table order, each (group, level) once
            for g, lev, n in zip(t["group"], t["level"], t["n"], strict=True):
                keys.setdefault((g, lev), n)
        nrow = len(keys)
        if ax is None:
            _, axes = plt.subplots(1, len(metrics), sharey=True, squeeze=False,
                                   figsize=(3.0 + 3.4 * len(metrics), 0.32 * nrow + 1.2))
            axes = axes[0]
        else:
            axes = np.atleast_1d(np.asarray(ax, dtype=object))
            if len(axes) != len(metrics):
                raise InvalidParameterError(
                    f"ax: {len(axes)} Axes for {len(metrics)} metrics; pass one per metric")
        row = {k: nrow - 1 - i for i, k in enumerate(keys)}
        for a, m, t in zip(axes, metrics, tables, strict=True):
            ypos = np.array([row[(g, lev)] for g, lev in zip(t["group"], t["level"],
                                                               strict=True)])
            est = t["estimate"].to_numpy(dtype=float)
            lo = t["ci_low"].to_numpy(dtype=float)
            hi = t["ci_high"].to_numpy(dtype=float)
            grey = (t["status"] != "ok").to_numpy()
            ci = np.isfinite(lo) & np.isfinite(hi)
            for sel, color in ((~grey, "C0"), (grey, "0.65")):  # one artist per kind
                if (sel & ci).any():
                    a.hlines(ypos[sel & ci], lo[sel & ci], hi[sel & ci], color=color, lw=1.5)
                if (sel & np.isfinite(est)).any():
                    a.plot(est[sel], ypos[sel], "s", ls="none", color=color, ms=4)
            overall = t.loc[t["group"] == "overall", "estimate"]
            if len(overall) and np.isfinite(overall.iloc[0]):
                a.axvline(float(overall.iloc[0]), color="C3", ls="--", lw=1, label="overall")
            a.set_xlabel(f"{m} ({t['ci_level'].iloc[0]:.0%} CI)")
            if len(metrics) > 1:
                a.set_title(m, fontsize=10)
        labels = [f"{g}: {lev} (n={n})" if g != "overall" else f"overall (n={n})"
                  for (g, lev), n in keys.items()]
        axes[0].set_yticks([row[k] for k in keys], labels, fontsize=8)
        axes[0].set_ylim(-0.7, nrow - 0.3)
        if len(metrics) == 1:
            axes[0].set_title(f"{metrics[0]} by subgroup (grey: insufficient or degenerate)")
            return axes[0]
        fig = axes[0].figure
        fig.suptitle("By subgroup (grey: insufficient or degenerate)", fontsize=10)
        if ax is None:  # our figure: the title just above the panels, panels close together
            tight_layout(fig, w_pad=0.4)
        return axes

    def _levels(self, frame: pd.DataFrame, by: Any) -> list[tuple[str, pd.DataFrame]]:
        name = _group_name(by)
        f = frame[frame["group"] == name]
        if f.empty:
            groups = sorted(set(self.table["group"]))
            raise InvalidParameterError(
                f"by={by!r} is not a grouping of this result; groupings: {', '.join(groups)}")
        return [(lev, d) for lev, d in f.groupby("level", sort=False)]

    def plot_calibration(self, by: Any, *, ax=None):
        """Calibration curves by level of ``by``: observed event rate per uniform bin of the
        predicted probability (10 bins), with Wilson intervals. Returns the Axes."""
        plt = import_pyplot()
        if ax is None:
            _, ax = plt.subplots(figsize=(5.5, 5))
        ax.plot([0, 1], [0, 1], color="0.5", ls=":", lw=1)
        ns = self.table[self.table["group"] == _group_name(by)].drop_duplicates("level")
        ns = dict(zip(ns["level"], ns["n"], strict=True))
        for i, (lev, d) in enumerate(self._levels(self.calibration, by)):
            obs = d["observed"].to_numpy(dtype=float)
            err = np.clip(np.vstack([obs - d["ci_low"].to_numpy(dtype=float),
                                     d["ci_high"].to_numpy(dtype=float) - obs]), 0, None)
            ax.errorbar(d["mean_predicted"].to_numpy(dtype=float), obs, yerr=err, marker="o",
                        ms=3, lw=1, capsize=2, color=f"C{i % 10}",
                        label=f"{lev} (n={ns.get(lev, '?')})")
        ax.set_xlabel("predicted probability")
        ax.set_ylabel("observed proportion (Wilson CI)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7)
        return ax

    def plot_roc(self, by: Any, *, ax=None):
        """ROC curves by level of ``by`` (levels with both classes; at most 200 points per
        curve), labelled with the exact AUROC of the table when it was computed. Returns the
        Axes."""
        plt = import_pyplot()
        if ax is None:
            _, ax = plt.subplots(figsize=(5.5, 5))
        ax.plot([0, 1], [0, 1], color="0.5", ls=":", lw=1)
        t = self.table[(self.table["group"] == _group_name(by)) &
                       (self.table["metric"] == "auroc")]
        aucs = dict(zip(t["level"], t["estimate"], strict=True))
        for i, (lev, d) in enumerate(self._levels(self.roc, by)):
            label = f"{lev}: AUROC {aucs[lev]:.3f}" if lev in aucs else str(lev)
            ax.plot(d["fpr"].to_numpy(dtype=float), d["tpr"].to_numpy(dtype=float), lw=1.2,
                    color=f"C{i % 10}", label=label)
        ax.set_xlabel("1 - specificity")
        ax.set_ylabel("sensitivity")
        ax.legend(fontsize=7)
        return ax
