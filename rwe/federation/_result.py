"""The result of a federated merge (no rows: aggregates only).

A merge's dossier (``rwe merge``, :func:`rwe.federation.build_federated_dossier`) holds the
pooled analyses as its ``subgroups``, ``representativeness`` and ``drift`` sections and this
result as its ``federation`` section: :meth:`FederatedResult.to_dict` is that section's record,
:meth:`FederatedResult.from_results` reads a dossier's ``results.json`` back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from rwe._evidence import Finding, register_finding_template
from rwe._results import ResultMixin, json_safe
from rwe.exceptions import InvalidParameterError

__all__ = ["FederatedResult", "META_COLUMNS", "SITE_COLUMNS", "SECTION_TYPES",
           "LIMITATION_KEYS"]

META_COLUMNS = ["metric", "scale", "k", "pooled_estimate", "pooled_ci_low", "pooled_ci_high",
                "pooled_ci_method", "re_estimate", "re_ci_low", "re_ci_high", "fe_estimate",
                "tau2", "q", "df", "pvalue", "i2", "prediction_low", "prediction_high",
                "ci_level", "method", "sites_excluded"]
SITE_COLUMNS = ["site", "metric", "n", "events", "estimate", "scale", "scale_estimate",
                "scale_variance", "ci_low", "ci_high", "ci_level", "weight"]
#: Keys of one limitation: what could not be evaluated, the protocol field asking for it, why.
LIMITATION_KEYS = ("analysis", "source", "reason")


# the federation's findings (registered where their result is: a notebook kernel that loads
# the result renders them)
register_finding_template(
    "federation.heterogeneity", "{metric} differs between sites (Cochran Q = {q:.2f}, df = "
    "{df}, p = {pvalue:.3g}; I^2 = {i2:.0%}, tau^2 = {tau2:.3g}): random-effects estimate "
    "{re_estimate:.3f} ({level:.0%} CI {re_ci_low:.3f} to {re_ci_high:.3f}) vs pooled "
    "{pooled_estimate:.3f}.")
register_finding_template(
    "federation.disclosure", "Disclosure control at {sites} site(s) withheld values of "
    "{attributes} in small cells (minimum count {min_count}): counts of their levels are those the "
    "sites released, lower bounds of the levels' counts.")
register_finding_template(
    "federation.withheld", "Disclosure control at the sites (minimum count {min_count}) left "
    "checks not evaluable, their result depending on withheld counts or values: "
    "{n_levels} level(s) ({levels}); {n_drift_cells} drift cell(s) ({drift}).")
register_finding_template(
    "federation.missing_sites", "Site(s) listed in the protocol but not merged: {missing}.")


def _section_type(name: str):
    if name == "subgroups":
        from rwe.subgroups import SubgroupPerformanceResult

        return SubgroupPerformanceResult
    if name == "representativeness":
        from rwe.representativeness import RepresentativenessResult

        return RepresentativenessResult
    if name == "drift":
        from rwe.drift import DriftResult

        return DriftResult
    raise KeyError(name)


#: The typed result of each section a federated merge computes.
SECTION_TYPES = ("representativeness", "subgroups", "drift")


@dataclass(frozen=True, eq=False)
class FederatedResult(ResultMixin):
    """Per-site and pooled results of site summaries (:func:`rwe.federation.merge_sites`).

    Attributes
    ----------
    settings : dict
        Protocol name and sha256, declared resolution, minimum count, sites, views, sections
        not evaluated (with the reason), pooled rows and events, and ``withheld``: per level
        some site withheld counts of, its released rows and events (lower bounds), the most
        rows not counted, the sites and the checks left not evaluable on it
        (:func:`rwe.federation._withheld.withheld_table`); ``withheld_drift``: per drift
        table and grouping, the cells not evaluable because sites withheld values they read,
        their windows, the sites and the minimum count
        (:func:`rwe.federation._withheld.withheld_drift_table`).
    sites : tuple of dict
        Per file: site, source, file name, checksum, rows, events, patients, period released and
        the disclosure record of each view (as stated in the file).
    sections : dict of str to result
        The pooled analyses (typed results of :mod:`rwe.subgroups`,
        :mod:`rwe.representativeness`, :mod:`rwe.drift`); in a dossier they are sections of
        their own (not part of :meth:`to_dict`).
    per_site : dict of str to dict of str to result
        The subgroup and representativeness analyses on each site's own summary.
    meta : pandas.DataFrame
        Per metric: the pooled estimate from the merged histograms with its interval, the
        random-effects (DerSimonian-Laird) estimate of the site estimates with its interval,
        the fixed-effect estimate, tau^2, Cochran's Q, df, p-value, I^2 and the prediction
        interval (columns :data:`META_COLUMNS`).
    site_estimates : pandas.DataFrame
        The site estimates that were meta-analysed, with each site's Wald interval on the
        pooling scale (back-transformed) and its random-effects weight (:data:`SITE_COLUMNS`).
    meta_results : dict of str to MetaAnalysisResult
    findings : tuple of Finding
        The federation's own findings (heterogeneity between sites, disclosure control,
        missing sites); each section's are in its result.
    limitations : tuple of dict
        The protocol's analyses that cannot be evaluated from site summaries
        (:data:`LIMITATION_KEYS`: the analysis, the protocol field asking for it, why).
    merged : dict of str to Summary
        The merged summary of each view (aggregates; not part of :meth:`to_dict`).
    """

    settings: dict[str, Any]
    sites: tuple[dict[str, Any], ...]
    sections: dict[str, Any]
    per_site: dict[str, dict[str, Any]]
    meta: pd.DataFrame
    site_estimates: pd.DataFrame
    meta_results: dict[str, Any] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()
    limitations: tuple[dict[str, str], ...] = ()
    merged: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def verdicts(self) -> tuple:
        """Every pooled section's verdicts, in section order (the federation judges no
        criterion of its own)."""
        return tuple(v for name in SECTION_TYPES if name in self.sections
                     for v in getattr(self.sections[name], "verdicts", ()))

    @property
    def counts(self) -> dict[str, int]:
        """Rows and events merged, and the number of sites."""
        s = self.settings
        return {"rows": int(s["n"]), "events": int(s["events"]), "sites": len(s["sites"])}

    @property
    def period(self) -> dict[str, str] | None:
        """First and last month (or day) the sites released, or None when a site released
        no period."""
        spans = [x.get("period") for x in self.sites]
        if not spans or any(not sp for sp in spans):
            return None
        return {"first": min(str(sp[0]) for sp in spans),
                "last": max(str(sp[1]) for sp in spans)}

    def to_frame(self) -> pd.DataFrame:
        return self.meta

    def finding_texts(self, k: int | None = None) -> list[str]:
        return [f.text(k) for f in self.findings]

    def to_dict(self) -> dict[str, Any]:
        """The record of a dossier's ``federation`` section: ``{settings, counts, period,
        sites, per_site, meta, site_estimates, meta_results, findings, limitations}`` (the
        pooled analyses are the dossier's other sections)."""
        return json_safe({
            "settings": self.settings, "counts": self.counts, "period": self.period,
            "sites": list(self.sites),
            "per_site": {s: {k: v.to_dict() for k, v in r.items()}
                         for s, r in self.per_site.items()},
            "meta": self.meta, "site_estimates": self.site_estimates,
            "meta_results": {k: v.to_dict() for k, v in self.meta_results.items()},
            "findings": [f.to_dict() for f in self.findings],
            "limitations": [dict(x) for x in self.limitations],
        })

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], sections: Mapping[str, Any] | None = None
                  ) -> FederatedResult:
        """The result from its record (:meth:`to_dict`), with the pooled ``sections`` when
        given (typed results)."""
        from rwe.stats import MetaAnalysisResult

        return cls(
            settings=dict(d["settings"]), sites=tuple(d["sites"]), sections=dict(sections or {}),
            per_site={s: {k: _section_type(k).from_dict(v) for k, v in r.items()}
                      for s, r in d["per_site"].items()},
            meta=pd.DataFrame(d["meta"], columns=META_COLUMNS),
            site_estimates=pd.DataFrame(d["site_estimates"], columns=SITE_COLUMNS),
            meta_results={k: MetaAnalysisResult.from_dict(v)
                          for k, v in d["meta_results"].items()},
            findings=tuple(Finding.from_dict(f) for f in d["findings"]),
            limitations=tuple(dict(x) for x in d.get("limitations") or ()))

    @classmethod
    def from_results(cls, results: Mapping[str, Any]) -> FederatedResult:
        """The result of a merge's dossier: its ``results.json`` (parsed), the pooled analyses
        from its sections."""
        secs = results["sections"]
        if "federation" not in secs:
            raise InvalidParameterError("results has no federation section: it is not the "
                                        "dossier of a federated merge (rwe merge)")
        return cls.from_dict(secs["federation"], sections={
            k: _section_type(k).from_dict(secs[k]) for k in SECTION_TYPES if k in secs})

    def summary_lines(self) -> list[str]:
        """A few lines for a terminal: sites, pooled numbers, heterogeneity."""
        s = self.settings
        out = [f"merged {s['files']} site summar{'y' if s['files'] == 1 else 'ies'} "
               f"({', '.join(s['sites'])}): {s['n']:,} rows, {s['events']:,} events"]
        for _, r in self.meta.iterrows():
            out.append(f"  {r['metric']}: pooled {r['pooled_estimate']:.3f} "
                       f"[{r['pooled_ci_low']:.3f}, {r['pooled_ci_high']:.3f}]; random effects "
                       f"{r['re_estimate']:.3f}, I^2 {r['i2']:.0%}, Q p = {r['pvalue']:.3g}")
        for k, why in s.get("not_evaluated", {}).items():
            out.append(f"  {k}: not evaluated ({why})")
        return out

    # ------------------------------------------------------------------ plots
    def plot_forest(self, metric: str, *, ax=None):
        """Forest plot of one meta-analysed metric: each site's estimate with its Wald
        interval on the pooling scale (marker area proportional to its random-effects
        weight), the random-effects estimate with its interval and prediction interval, and
        the pooled estimate of the merged histograms with its interval.

        Parameters
        ----------
        metric : str
            A metric of :attr:`meta`.
        ax : matplotlib Axes, optional

        Returns
        -------
        matplotlib Axes
        """
        import numpy as np

        from rwe._optional import import_pyplot

        meta = self.meta.set_index("metric")
        if metric not in meta.index:
            raise InvalidParameterError(f"metric={metric!r} was not meta-analysed; available: "
                                        f"{', '.join(meta.index)}")
        m = meta.loc[metric]
        sites = self.site_estimates[self.site_estimates["metric"] == metric]
        plt = import_pyplot()
        if ax is None:
            _, ax = plt.subplots(figsize=(6.6, 0.3 * (len(sites) + 2) + 1.2))
        labels = [f"{r.site} (n={int(r.n):,})" for r in sites.itertuples(index=False)]
        labels += ["random effects (DerSimonian-Laird)", "pooled (merged summaries)"]
        nrow = len(labels)
        y = np.arange(nrow)[::-1].astype(float)
        est = sites["estimate"].to_numpy(dtype=float)
        lo = sites["ci_low"].to_numpy(dtype=float)
        hi = sites["ci_high"].to_numpy(dtype=float)
        w = sites["weight"].to_numpy(dtype=float)
        ys = y[:len(sites)]
        ok = np.isfinite(lo) & np.isfinite(hi)
        if ok.any():
            ax.hlines(ys[ok], lo[ok], hi[ok], color="C0", lw=1.5)
        fin = np.isfinite(est)
        size = np.where(np.isfinite(w), 25 + 250 * np.nan_to_num(w), 25)
        ax.scatter(est[fin], ys[fin], s=size[fin], marker="s", color="C0", zorder=3)

        def diamond(yy, e, a, b, color):
            if all(math.isfinite(float(v)) for v in (e, a, b)):
                ax.fill([a, e, b, e], [yy, yy + 0.25, yy, yy - 0.25], color=color, zorder=3)

        diamond(y[-2], m["re_estimate"], m["re_ci_low"], m["re_ci_high"], "C3")
        if math.isfinite(float(m["prediction_low"])):
            ax.hlines(y[-2], m["prediction_low"], m["prediction_high"], color="C3", lw=1,
                      ls=":", label=f"{m['ci_level']:.0%} prediction interval")
        diamond(y[-1], m["pooled_estimate"], m["pooled_ci_low"], m["pooled_ci_high"], "0.25")
        if math.isfinite(float(m["re_estimate"])):
            ax.axvline(float(m["re_estimate"]), color="C3", ls="--", lw=0.8)
        ax.set_yticks(y, labels, fontsize=8)
        ax.set_ylim(-0.7, nrow - 0.3)
        scale = "logit scale" if m["scale"] == "logit" else "AUROC scale"
        ax.set_xlabel(f"{metric} ({m['ci_level']:.0%} CI; sites: Wald on the {scale})")
        het = (f"I\u00b2 = {m['i2']:.0%}, \u03c4\u00b2 = {m['tau2']:.3g}, Q = {m['q']:.2f} "
               f"(df {int(m['df'])}, p = {m['pvalue']:.2g})"
               if math.isfinite(float(m["q"])) else "not meta-analysed")
        ax.set_title(f"{metric} by site: {het}", loc="left", fontsize=9)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower right", fontsize=7, frameon=False)
        return ax
