"""The coordinator: site summaries checked, merged and analysed, per site and pooled.

:func:`merge_sites` reads every file first and refuses, with one line naming the file,
anything that would make the pooled numbers wrong: a file that is not a site summary, is
truncated or was edited (checksums), was made for another protocol (sha256) or at another
resolution (score bin edges), another schema version, a site given twice for overlapping
periods, a site the protocol does not list, views or feature bins that differ. Nothing is
merged before every file has passed.

The pooled analyses are the library's own on the merged summaries (:func:`rwe.
subgroup_performance_from_protocol`, :func:`rwe.representativeness_from_protocol`,
:func:`rwe.drift_from_protocol`): the pooled AUROC and its DeLong interval come from the
merged histograms (within the binning bound the table reports). Between-site heterogeneity is
a random-effects meta-analysis of the site estimates (:func:`rwe.stats.random_effects_meta`):
AUROC on its own scale with its DeLong variance, proportions on the logit scale with the
variance ``1/x + 1/(n - x)`` (0.5 added to both counts when one is 0), back-transformed.

Levels some site withheld counts of (disclosure control) are judged on the bounds the released
counts give, or are not evaluable (:mod:`rwe.federation._withheld`), in the pooled sections and
in each site's own results; ``settings["withheld"]`` lists them. In the pooled drift section
every window, level and feature distribution some site withheld values of is not evaluable
(:func:`rwe.federation._withheld.apply_withheld_drift`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rwe._evidence import Finding
from rwe.federation._result import META_COLUMNS, SITE_COLUMNS, FederatedResult
from rwe.federation._site import FederationError, SiteSummary, load_site_summary, site_views
from rwe.federation._withheld import (
    apply_withheld,
    withheld_drift_table,
    withheld_of,
    withheld_table,
)
from rwe.metrics import get_metric

__all__ = ["merge_sites", "META_METRICS", "check_sites"]

#: Metrics meta-analysed across sites (each has a site-level variance).
META_METRICS = ("auroc", "sensitivity", "specificity", "ppv", "npv")
#: The proportions among them: metric -> (numerator count, the other count of its denominator),
#: read from the metric registry's confusion formula.
_PROPORTIONS = {m: tuple(get_metric(m).confusion[1]) for m in META_METRICS
                if get_metric(m).confusion is not None}

def _load_all(paths: Sequence[str | Path]) -> list[tuple[Path, SiteSummary]]:
    if not paths:
        raise FederationError("nothing to merge: no site summary file given")
    out = []
    seen: dict[str, Path] = {}
    for p in paths:
        p = Path(p)
        key = str(p.resolve())
        if key in seen:
            raise FederationError(f"{p}: the same file is given twice")
        seen[key] = p
        out.append((p, load_site_summary(p)))
    return out


def _span(period):
    if not period:
        return pd.Timestamp.min, pd.Timestamp.max
    lo = pd.Timestamp(period[0])
    hi = pd.Timestamp(period[1])
    if len(str(period[1])) == 7:  # a month: to its last day
        hi = hi + pd.offsets.MonthEnd(0)
    return lo, hi


def check_sites(protocol, files: Sequence[tuple[Path, SiteSummary]]) -> None:
    """Every check of the module notes, before anything is merged (one line, the file)."""
    from rwe.stats.summaries import SUMMARY_SCHEMA, SummarySpec

    p = protocol
    if p.federation is None:
        raise FederationError(f"{p.path or '<protocol>'}: rwe merge needs the protocol's "
                              "federation section")
    edges = SummarySpec(resolution=p.declared_resolution(),
                        thresholds=(p.performance.threshold,)).edges()
    views0 = None
    for path, s in files:
        if s.protocol_sha256 != p.sha256:
            raise FederationError(
                f"{path}: made for another protocol (sha256 {s.protocol_sha256[:16]}..., this "
                f"protocol {p.sha256[:16]}...): summaries of different protocols cannot be "
                "merged")
        for name, v in s.views.items():
            if v.schema != SUMMARY_SCHEMA:
                raise FederationError(f"{path}: view {name!r} has schema {v.schema!r}, expected "
                                      f"{SUMMARY_SCHEMA!r}")
            if v.protocol_sha256 != p.sha256:
                raise FederationError(f"{path}: view {name!r} was made for another protocol")
            if v.resolution != "binned":
                raise FederationError(f"{path}: view {name!r} is at {v.resolution!r} "
                                      "resolution; a site releases the declared resolution")
            for ver, t in v.scores.items():
                if not (t.edges is not None and t.edges.shape == edges.shape
                        and np.array_equal(t.edges, edges)):
                    raise FederationError(
                        f"{path}: view {name!r}, version {ver!r}: score bins differ from the "
                        f"protocol's declared resolution ({t.n_bins} bins vs {len(edges) - 1} "
                        "from federation.score_bins and the threshold)")
        if views0 is None:
            views0 = (path, sorted(s.views))
        elif sorted(s.views) != views0[1]:
            raise FederationError(f"{path}: holds views {sorted(s.views)}, {views0[0]} holds "
                                  f"{views0[1]}")
        if p.federation.sites and s.site not in p.federation.sites:
            raise FederationError(f"{path}: site {s.site!r} is not listed in "
                                  f"federation.sites ({', '.join(p.federation.sites)})")
    by_site: dict[str, list[tuple[Path, SiteSummary]]] = {}
    for path, s in files:
        by_site.setdefault(s.site, []).append((path, s))
    for site, items in by_site.items():
        for i, (pa, a) in enumerate(items):
            a0, a1 = _span(a.period)
            for pb, b in items[:i]:
                b0, b1 = _span(b.period)
                if a0 <= b1 and b0 <= a1:
                    raise FederationError(
                        f"{pa}: site {site!r} is given twice ({pb} covers an overlapping "
                        "period): a site may be merged only once per period")


def _merge_views(files: Sequence[tuple[Path, SiteSummary]], view: str):
    """Merge one view of several files; a refusal names the file that cannot join."""
    from rwe.stats.summaries import SummaryError, merge_summaries

    parts = [s.views[view] for _, s in files]
    try:
        return merge_summaries(parts)
    except SummaryError as exc:
        for (path, s) in files[1:]:
            try:
                merge_summaries([parts[0], s.views[view]])
            except SummaryError as e2:
                raise FederationError(f"{path}: view {view!r}: {e2} (compared with "
                                      f"{files[0][0]})") from None
        raise FederationError(f"view {view!r}: {exc}") from None


def _canonical_windows(summary, window: str):
    """Gapless calendar windows from the first to the last (as a pooled run's)."""
    from rwe.data import window_range

    cats = summary.cells.categories[summary.attributes.index(window)]
    if not cats:
        return summary
    return summary.with_categories(window, window_range(cats))


def _site_estimates(summary, protocol) -> dict[str, tuple[float, float, float, str]]:
    """(estimate, variance on the pooling scale, estimate, scale) per meta-analysed metric."""
    from rwe.stats import delong_segments

    version = protocol.version
    thr = protocol.performance.threshold
    seg = summary.segments(summary.grouping(()), version, threshold=thr)
    out = {}
    auc, var, _ = delong_segments(seg.neg_count, seg.pos_count, seg.starts)
    out["auroc"] = (float(auc[0]), float(var[0]), float(auc[0]), "auroc")
    conf = {k: float(v[0]) for k, v in seg.confusion.items()}
    for m, (a, b) in _PROPORTIONS.items():
        x, y = conf[a], conf[b]
        n = x + y
        est = x / n if n > 0 else math.nan
        if x == 0 or y == 0:
            x, y = x + 0.5, y + 0.5
        out[m] = (math.log(x / y) if n > 0 else math.nan,
                  1 / x + 1 / y if n > 0 else math.nan, est, "logit")
    return out


def _expit(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if math.isfinite(x) else math.nan


def _meta_table(protocol, site_summaries: Mapping[str, Any], pooled) -> tuple[
        pd.DataFrame, dict[str, Any], list[Finding]]:
    from rwe.stats import random_effects_meta

    level = protocol.performance.confidence_level
    alpha = protocol.performance.heterogeneity_alpha
    metrics = [m for m in protocol.performance.metrics if m in META_METRICS]
    per_site = {s: _site_estimates(summ, protocol) for s, summ in site_summaries.items()}
    t = pooled.table
    overall = t[(t["group"] == "overall")].set_index("metric")
    rows, metas, findings = [], {}, []
    for m in metrics:
        ok = [(s, e) for s, e in per_site.items()
              if math.isfinite(e[m][0]) and math.isfinite(e[m][1]) and e[m][1] > 0]
        excluded = sorted(set(per_site) - {s for s, _ in ok})
        row: dict[str, Any] = {c: math.nan for c in META_COLUMNS}
        po = overall.loc[m] if m in overall.index else None
        row.update(metric=m, scale="logit" if m in _PROPORTIONS else "auroc", k=len(ok),
                   sites_excluded=", ".join(excluded) or None, ci_level=level,
                   pooled_estimate=float(po["estimate"]) if po is not None else math.nan,
                   pooled_ci_low=float(po["ci_low"]) if po is not None else math.nan,
                   pooled_ci_high=float(po["ci_high"]) if po is not None else math.nan,
                   pooled_ci_method=po["ci_method"] if po is not None else None,
                   method="dersimonian-laird")
        if not ok:
            row["method"] = "not meta-analysed: no site has a finite variance"
            rows.append(row)
            continue
        r = random_effects_meta([e[m][0] for _, e in ok], [e[m][1] for _, e in ok],
                                labels=[s for s, _ in ok], confidence_level=level)
        metas[m] = r
        back = _expit if m in _PROPORTIONS else (lambda x: x)
        pred = r.prediction
        row.update(re_estimate=back(r.estimate), re_ci_low=back(r.ci.low),
                   re_ci_high=back(r.ci.high), fe_estimate=back(r.fixed_estimate),
                   tau2=r.tau2, q=r.q, df=r.df, pvalue=r.pvalue, i2=r.i2,
                   prediction_low=back(pred.low) if pred else math.nan,
                   prediction_high=back(pred.high) if pred else math.nan)
        rows.append(row)
        if r.df > 0 and r.pvalue < alpha:
            findings.append(Finding(
                "federation.heterogeneity", subject={"metric": m},
                values={k: row[k] for k in ("q", "pvalue", "i2", "tau2", "re_estimate",
                                            "re_ci_low", "re_ci_high", "pooled_estimate")}
                | {"df": r.df, "level": level}, severity="warning"))
    table = pd.DataFrame(rows, columns=META_COLUMNS)
    # each site's Wald interval on the pooling scale and its random-effects weight, as the
    # meta-analysis used them (MetaAnalysisResult.to_frame), back-transformed
    study = {m: r.to_frame().set_index("study") for m, r in metas.items()}
    site_rows = []
    for s, est in per_site.items():
        summ = site_summaries[s]
        for m in metrics:
            e = est[m]
            back = _expit if m in _PROPORTIONS else (lambda x: x)
            st = study[m].loc[s] if m in study and s in study[m].index else None
            site_rows.append({"site": s, "metric": m, "n": summ.n_rows,
                              "events": summ.n_events, "estimate": e[2],
                              "scale": e[3], "scale_estimate": e[0], "scale_variance": e[1],
                              "ci_low": back(float(st["ci_low"])) if st is not None else math.nan,
                              "ci_high": back(float(st["ci_high"])) if st is not None
                              else math.nan, "ci_level": level,
                              "weight": float(st["weight"]) if st is not None else math.nan})
    return table, {"sites": pd.DataFrame(site_rows, columns=SITE_COLUMNS), **metas}, findings


#: What a coordinator cannot evaluate from site summaries, whatever the analyses say: the
#: analyses and dossier parts that read individual rows (their own refusals are quoted where
#: they make one, :func:`_limitations`).
_NEEDS_ROWS = {
    "table1": ("Table 1 (REP-2)", "report.sections",
               "Table 1 is computed from individual rows, which stay at the "
               "sites; the representativeness page shows the cohort's shares, standardised mean "
               "differences and coverage computed from the merged summary"),
    "provenance": ("data provenance and quality section (PRV-1, PRV-2)", "report.sections",
                   "file fingerprints, per-column missing values and load-time validation are "
                   "made at each site by rwe summarize; the coordinator holds the site files, "
                   "their checksums and the rows, events and period each site released"),
    # rwe.change_control.compare_models refuses a Summary (MSG_NEEDS_ROWS)
    "change_control": ("change control (CHG-5 to CHG-7)", "change_control",
                       "a paired comparison uses both versions' scores on the same cases, and "
                       "a site summary keeps one score histogram per version, not their joint "
                       "distribution"),
    "model_card": ("model card (PRV-9)", "report.sections",
                   "the model card reads the data provenance section, which needs rows"),
}


def _limitations(p, sections: Mapping[str, Any], reasons: Mapping[str, str]
                 ) -> list[dict[str, str]]:
    """The protocol's analyses this merge could not run, each with the protocol field that asks
    for it and why: the sections left out, the analyses that refused a summary (in their own
    words) and the dossier parts that need rows."""
    out: list[dict[str, str]] = []

    def add(analysis: str, source: str, reason: str) -> None:
        out.append({"analysis": analysis, "source": source, "reason": reason})

    for name, why in reasons.items():
        add(f"{name} section", name if name != "representativeness" else
            "population.reference", why)
    sub = sections.get("subgroups")
    for f in getattr(sub, "findings", ()):
        if f.code == "subgroups.not_cluster_adjusted":
            add("patient-clustered intervals (SUB-6)", "data.columns.patient_id", f.text())
    rep = sections.get("representativeness")
    if rep is not None and rep.tipton is None and p.population.covariates:
        add("Tipton's generalizability index (REP-3)", "population.covariates",
            f"not computed: {rep.tipton_reason}")
    drift = sections.get("drift")
    clf = getattr(drift, "classifier", None)
    if clf is not None and len(clf):
        for why in dict.fromkeys(r for r in clf["reason"] if isinstance(r, str)):
            add("domain-classifier drift test (MON-2)", "drift.tests", why)
    wanted = set(p.report.sections)
    if "representativeness" in wanted and "representativeness" in sections:
        add(*_NEEDS_ROWS["table1"])
    if p.change_control is not None:
        add(*_NEEDS_ROWS["change_control"])
    for name in ("provenance", "model_card"):
        if name in wanted:
            add(*_NEEDS_ROWS[name])
    return out


def merge_sites(protocol, paths: Sequence[str | Path], *, per_site: bool = True,
                reference_rows: pd.DataFrame | None = None) -> FederatedResult:
    """Check, merge and analyse site summary files (see the module notes).

    Parameters
    ----------
    protocol : rwe.protocol.Protocol or path
        The protocol every site summarized for (its sha256 must match).
    paths : sequence of path
        Site summary files (``rwe summarize`` output).
    per_site : bool
        Also run the subgroup and representativeness analyses on each site.
    reference_rows : DataFrame, optional
        Reference rows of the drift analysis (default ``protocol.load_reference_rows()``).

    Returns
    -------
    FederatedResult
    """
    if not hasattr(protocol, "performance"):
        from rwe.protocol import load_protocol

        protocol = load_protocol(protocol)
    p = protocol
    files = _load_all(paths)
    check_sites(p, files)
    files = sorted(files, key=lambda f: (f[1].site, str(_span(f[1].period)[0])))
    merged = {v: _merge_views(files, v) for v in files[0][1].views}
    # per site (several disjoint periods of a site merge into its summary)
    sites: dict[str, list[tuple[Path, SiteSummary]]] = {}
    for path, s in files:
        sites.setdefault(s.site, []).append((path, s))
    site_cohort = {s: _merge_views(items, "cohort") for s, items in sites.items()}

    from rwe.representativeness import representativeness_from_protocol
    from rwe.subgroups import subgroup_performance_from_protocol

    sections: dict[str, Any] = {}
    reasons: dict[str, str] = {}
    sections["subgroups"] = subgroup_performance_from_protocol(p, merged["cohort"])
    if p.population.reference is not None:
        sections["representativeness"] = representativeness_from_protocol(p, merged["cohort"])
    else:
        reasons["representativeness"] = "population.reference is not set"
    skipped = files[0][1].skipped
    baseline: tuple[str, ...] = ()
    if "drift" in merged:
        sections["drift"], baseline = _pooled_drift(p, merged["drift"], reference_rows)
    elif p.drift is not None:
        reasons["drift"] = skipped.get("drift", "the site summaries hold no drift view")
    # the levels some site withheld counts of: judged on their bounds, or not evaluable
    withheld = withheld_of(files, site_cohort, p.min_count)
    drift_withheld = (withheld_of(files, {}, p.min_count, view="drift") if "drift" in sections
                      else None)
    sections = apply_withheld(sections, withheld, drift=drift_withheld,
                              site_attr=p.data.columns.site, baseline=baseline,
                              equipment_attr=p.data.columns.equipment)
    site_results: dict[str, dict[str, Any]] = {}
    if per_site:
        for s, summ in site_cohort.items():
            r = {"subgroups": subgroup_performance_from_protocol(p, summ, fairness=False)}
            if "representativeness" in sections:
                r["representativeness"] = representativeness_from_protocol(p, summ)
            site_results[s] = apply_withheld(r, withheld.restrict(s),
                                             equipment_attr=p.data.columns.equipment)
    meta, meta_details, findings = _meta_table(p, site_cohort, sections["subgroups"])
    site_info = []
    recoded: dict[str, set] = {}
    for path, s in files:
        src = s.views["cohort"].sources[0]
        site_info.append({"site": s.site, "source": src.get("source"), "file": path.name,
                          "checksum": s.checksum, "rows": int(src.get("rows", 0)),
                          "events": s.views["cohort"].n_events,
                          "patients": src.get("patients"), "period": s.period,
                          "disclosure": s.disclosure})
        for rec in s.disclosure.values():
            for a, c in rec.get("recoded_cells", {}).items():
                if c:
                    recoded.setdefault(a, set()).add(s.site)
    if recoded:
        findings.append(Finding(
            "federation.disclosure",
            subject={"attributes": ", ".join(sorted(recoded))},
            values={"min_count": p.min_count, "sites": len(set().union(*recoded.values()))},
            severity="info"))
    partial = withheld_table(withheld, sections)
    partial_drift = withheld_drift_table(sections.get("drift"), p.min_count)
    undetermined = [r for r in partial if r["checks_not_evaluable"]]
    if undetermined or partial_drift:
        # one finding for everything withholding removed from judgement: levels, then drift
        by_table: dict[str, list[dict]] = {}
        for r in partial_drift:
            by_table.setdefault(r["table"], []).append(r)
        drift_text = "; ".join(
            f"{t}: {sum(r['cells_not_evaluable'] for r in rs)} of "
            f"{sum(r['cells'] for r in rs)} cells "
            f"({', '.join(sorted({x for r in rs for x in r['sites'].split(', ')}))})"
            for t, rs in by_table.items())
        findings.append(Finding(
            "federation.withheld",
            subject={"levels": "; ".join(f"{r['group']} = {r['level']} ({r['sites']})"
                                         for r in undetermined[:8])
                     + (f"; and {len(undetermined) - 8} more" if len(undetermined) > 8
                        else "") or "none",
                     "drift": drift_text or "none"},
            values={"min_count": p.min_count, "n_levels": len(undetermined),
                    "n_drift_cells": sum(r["cells_not_evaluable"] for r in partial_drift)},
            severity="warning"))
    if p.federation.sites:
        missing = [s for s in p.federation.sites if s not in sites]
        if missing:
            findings.append(Finding("federation.missing_sites",
                                    subject={"missing": ", ".join(missing)},
                                    severity="warning"))
    settings = {"protocol": p.name, "protocol_sha256": p.sha256,
                "resolution": p.declared_resolution(), "min_count": p.min_count,
                "sites": sorted(sites), "files": len(files), "views": sorted(merged),
                "not_evaluated": reasons, "withheld": partial,
                "withheld_drift": partial_drift, "n": merged["cohort"].n_rows,
                "events": merged["cohort"].n_events}
    return FederatedResult(settings=settings, sites=tuple(site_info), sections=sections,
                           per_site=site_results, meta=meta, site_estimates=meta_details.pop(
                               "sites"), meta_results=meta_details, findings=tuple(findings),
                           limitations=tuple(_limitations(p, sections, reasons)),
                           merged=merged)


def _pooled_drift(p, merged, reference_rows):
    """The drift analysis of the merged drift view against the reference rows (whose edges
    every site used: checked), the baseline period being the merged view's windows inside it;
    with the baseline's windows."""
    from rwe.drift import drift_from_protocol, summarize_reference
    from rwe.drift._drift import _period_text

    d = p.drift
    ref_rows = reference_rows if reference_rows is not None else p.load_reference_rows()
    views, _ = site_views(p, ref_rows)
    for f, e in views["drift"].feature_edges.items():
        got = merged.features[f].edges
        if got is None or got.shape != e.shape or not np.array_equal(got, e):
            raise FederationError(f"drift feature {f!r}: the sites' histogram bins differ from "
                                  "those of this protocol's reference rows")
    merged = _canonical_windows(merged, d.window)
    # the reference summarized as assess_drift summarizes reference rows, with the roles of the
    # protocol (a summary of the current data carries none: score and label columns)
    ref = summarize_reference(ref_rows, roles=p.roles(), features=list(views["drift"].features),
                              version=p.version, threshold=p.performance.threshold,
                              feature_bins=d.feature_bins)
    baseline = None
    windows: tuple[str, ...] = ()
    if d.reference_period is not None:
        baseline = _window_subset(merged, d.window, d.reference_period)
        if baseline is None:
            raise FederationError(
                p.locate(("drift", "reference_period")) + f": the period "
                f"{_period_text(d.reference_period)} does not start and end on "
                f"{d.window} boundaries: its rows cannot be taken from summaries by window")
        j = baseline.attributes.index(d.window)
        cats = baseline.cells.categories[j]
        windows = tuple(str(cats[i]) for i in np.unique(baseline.cells.codes[:, j]) if i >= 0)
    # every pre-specified test: the classifier test, which needs rows, refuses the summary
    # itself (its verdict is not evaluable, with the reason)
    return drift_from_protocol(p, merged, reference=ref, baseline=baseline,
                               tests=list(d.tests)), windows


def _window_subset(summary, window: str, period):
    """The cells of the windows inside ``period`` (None when the period is not a union of
    whole windows)."""
    from rwe.data import calendar_window

    start, end = pd.Timestamp(period.start), pd.Timestamp(period.end)
    days = pd.Series(pd.date_range(start - pd.Timedelta(days=400),
                                   end + pd.Timedelta(days=400), freq="D"))
    w = calendar_window(days, window).astype(str).to_numpy()
    inside = (days >= start).to_numpy() & (days <= end).to_numpy()
    labels = set(w[inside])
    if set(w[~inside]) & labels:  # a window straddles a period boundary
        return None
    j = summary.attributes.index(window)
    cats = summary.cells.categories[j]
    keep_cat = np.array([c in labels for c in cats] + [False])
    mask = keep_cat[summary.cells.codes[:, j]]
    if not mask.any():
        return None
    return summary.select_cells(mask)
