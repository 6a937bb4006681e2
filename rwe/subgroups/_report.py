"""The result of :func:`rwe.subgroups.subgroup_performance` and its plots."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rwe._optional import import_pyplot, tight_layout
from rwe._results import ResultMixin, json_safe
from rwe.exceptions import InvalidParameterError

__all__ = ["SubgroupReport"]


@dataclass(frozen=True, eq=False)
class SubgroupReport(ResultMixin):
    """Subgroup performance: table, heterogeneity tests, fairness gaps and goal verdicts.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per (group, level, metric): ``group, level, n, events, metric, estimate,
        ci_low, ci_high, ci_level, ci_method, flags, reason``. ``group`` is ``"overall"``, an
        attribute (``"sex"``) or an intersection (``"sex x race"``); ``level`` is ``"all"``,
        ``"F"`` or ``"F & Black"``. ``flags`` marks cells below ``min_n``/``min_events``
        (``"insufficient: n<30"``) and degenerate cells (``"degenerate: no positives"``).
    heterogeneity : pandas.DataFrame
        ``group, metric, test, statistic, df, pvalue, pvalue_adjusted, method, i2, levels,
        multiplicity``.
    fairness : pandas.DataFrame
        ``group, metric, definition, gap, ci_low, ci_high, ci_level, ci_method, level_max,
        level_min, levels_compared, reason``.
    goals : pandas.DataFrame
        ``metric, scope, group, level, goal, estimate, bound, bound_side, met, verdict``.
    settings : dict
        Echo of the inputs (version, threshold, level, methods, n, bootstrap resolution and
        the largest binned-AUROC error bound).
    """

    table: pd.DataFrame
    heterogeneity: pd.DataFrame
    fairness: pd.DataFrame
    goals: pd.DataFrame
    settings: dict[str, Any]
    _evset: Any = field(default=None, repr=False)

    def to_frame(self) -> pd.DataFrame:
        """The tidy subgroup table."""
        return self.table

    def to_dict(self) -> dict[str, Any]:
        return {"table": json_safe(self.table), "heterogeneity": json_safe(self.heterogeneity),
                "fairness": json_safe(self.fairness), "goals": json_safe(self.goals),
                "settings": json_safe(self.settings)}

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
            if len(self.goals):
                lines += ["", "Goals:", self.goals.to_string(index=False)]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        fmt = {"float_format": lambda v: f"{v:.4g}", "na_rep": "—", "index": False}
        parts = [f"<h4>Subgroup performance (n={self.settings['n']})</h4>",
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
            One metric, or several drawn side by side in one figure with a shared row axis
            (one set of subgroup labels, rows aligned across the metrics).
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
                    f"metric={m!r} is not in this report; available: "
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
            grey = t["flags"].notna().to_numpy()
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

    def _groups(self, by: Any):
        """(level, y, score) per level of ``by`` in order of first appearance; rows with a
        missing label are left out."""
        ev = self._evset
        if ev is None:
            raise InvalidParameterError("this report holds no data for plotting")
        codes, labels = ev.subgroup_codes(by)  # missing: -1
        y = ev.y_true
        s = ev.score(self.settings["version"])
        for i, lev in enumerate(labels):
            m = codes == i
            yield lev, y[m], s[m]

    def plot_calibration(self, by: Any, *, n_bins: int = 10, ax=None):
        """Calibration curves by level of ``by``: observed event rate per uniform bin of the
        predicted probability, with Wilson intervals. Returns the Axes."""
        from statsmodels.stats.proportion import proportion_confint

        plt = import_pyplot()
        if ax is None:
            _, ax = plt.subplots(figsize=(5.5, 5))
        ax.plot([0, 1], [0, 1], color="0.5", ls=":", lw=1)
        edges = np.linspace(0, 1, n_bins + 1)
        for i, (lev, y, s) in enumerate(self._groups(by)):
            b = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, n_bins - 1)
            cnt = np.bincount(b, minlength=n_bins)
            ev = np.bincount(b, weights=y, minlength=n_bins)
            mp = np.bincount(b, weights=s, minlength=n_bins)
            ok = cnt > 0
            obs = ev[ok] / cnt[ok]
            lo, hi = proportion_confint(ev[ok], cnt[ok], alpha=1 - self.settings[
                "confidence_level"], method="wilson")
            x = mp[ok] / cnt[ok]
            # Wilson bounds can sit a rounding error inside the estimate: clip to >= 0
            ax.errorbar(x, obs, yerr=np.clip(np.vstack([obs - lo, hi - obs]), 0, None),
                        marker="o", ms=3, lw=1,
                        capsize=2, color=f"C{i % 10}", label=f"{lev} (n={len(y)})")
        ax.set_xlabel("predicted probability")
        ax.set_ylabel("observed proportion (Wilson CI)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7)
        return ax

    def plot_roc(self, by: Any, *, ax=None):
        """ROC curves by level of ``by`` (levels with both classes). Returns the Axes."""
        from sklearn.metrics import auc, roc_curve

        plt = import_pyplot()
        if ax is None:
            _, ax = plt.subplots(figsize=(5.5, 5))
        ax.plot([0, 1], [0, 1], color="0.5", ls=":", lw=1)
        for i, (lev, y, s) in enumerate(self._groups(by)):
            if y.all() or not y.any():
                continue
            fpr, tpr, _ = roc_curve(y, s)
            # the trapezoid area under the full ROC curve is roc_auc_score (ties count 1/2)
            ax.plot(fpr, tpr, lw=1.2, color=f"C{i % 10}",
                    label=f"{lev}: AUROC {auc(fpr, tpr):.3f}")
        ax.set_xlabel("1 - specificity")
        ax.set_ylabel("sensitivity")
        ax.legend(fontsize=7)
        return ax
