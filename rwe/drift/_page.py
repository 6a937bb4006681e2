"""The dossier's drift page, rendered from ``DriftResult.to_dict()`` alone (what results.json
holds): verdicts first, then the alarms with their run lengths, the drift summary per feature,
performance and calibration over time, label-free estimates with their assumptions, the
classifier test, integrity, and the methods. Small cells (0 < n < k) are shown without their
numbers. The dossier engine owns the page layout and figures; this is the content.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["drift_page_html"]


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return html.escape(str(v))


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _table(rows: Sequence[Mapping[str, Any]], cols: Sequence[tuple[str, str]],
           caption: str, k: int | None = None, n_key: str = "n",
           hide: Sequence[str] = ()) -> str:
    if not rows:
        return ""
    numeric = {key for key, _ in cols if any(_is_num(r.get(key)) for r in rows)}
    head = "".join(f"<th class='{'num' if key in numeric else 'txt'}'>{html.escape(label)}</th>"
                   for key, label in cols)
    body = []
    for r in rows:
        n = r.get(n_key)
        small = k is not None and isinstance(n, (int, float)) and 0 < n < k
        cells = []
        for key, _ in cols:
            v = r.get(key)
            css = "num" if key in numeric else "txt"
            cells.append(f"<td class='{css}'>suppressed</td>" if small and key in hide else
                         f"<td class='{css}'>{_fmt(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<table class='rwe'><caption>{html.escape(caption)}</caption><thead><tr>{head}"
            f"</tr></thead><tbody>{''.join(body)}</tbody></table>")


def _performance_table(perf: Sequence[Mapping[str, Any]], k: int) -> str:
    """Overall performance per window, one row per window and one column per metric
    (estimate and interval; a window of fewer than k rows shows none)."""
    metrics = list(dict.fromkeys(r["metric"] for r in perf))
    by_window: dict[str, dict[str, Any]] = {}
    for r in perf:
        w = by_window.setdefault(r["window"], {"window": r["window"], "n": r.get("n"),
                                               "status": set()})
        est, lo, hi = r.get("estimate"), r.get("ci_low"), r.get("ci_high")
        small = _is_num(r.get("n")) and 0 < r["n"] < k
        w[r["metric"]] = ("suppressed" if small else
                          f"{_fmt(est)} ({_fmt(lo)} to {_fmt(hi)})" if _is_num(lo) and
                          _is_num(hi) else _fmt(est))
        if r.get("status") and r["status"] != "ok":
            w["status"].add(str(r["status"]))
    rows = [{**w, "status": ", ".join(sorted(w["status"])) or "ok"} for w in by_window.values()]
    lv = next((r["ci_level"] for r in perf if _is_num(r.get("ci_level"))), None)
    level = f"{lv:.0%} CI" if lv is not None else "CI"
    cols = [("window", "Window"), ("n", "n")] + [(m, m) for m in metrics] + [
        ("status", "Status")]
    return _table(rows, cols, f"Performance and calibration over time, overall: estimate "
                  f"({level}); ESTIMATED rows have no labels yet", k=k, hide=tuple(metrics))


def drift_page_html(d: Mapping[str, Any], *, small_cell_k: int | None = None,
                    heading: bool = True, verdicts: bool = True) -> str:
    """HTML content of the drift page from a ``DriftResult.to_dict()``.

    Parameters
    ----------
    d : dict
        ``DriftResult.to_dict()`` (or results.json's drift section).
    small_cell_k : int, optional
        Smallest count shown (default: the result's ``settings.small_cell_k``).
    heading, verdicts : bool, default True
        Start with the page heading and the verdict table (a dossier section has its own).
    """
    from rwe._evidence import Finding, Verdict

    s = d.get("settings") or {}
    k = small_cell_k if small_cell_k is not None else s.get("small_cell_k", 11)
    out = [("<h2>Drift and monitoring</h2>" if heading else "")
           + f"<p>{len(s.get('windows', []))} "
           f"{html.escape(str(s.get('window')))} windows "
           f"({_fmt((s.get('windows') or ['—'])[0])} to {_fmt((s.get('windows') or ['—'])[-1])}),"
           f" groupings {html.escape(', '.join(s.get('groupings', [])))}; model version "
           f"{_fmt(s.get('version'))}; reference: {_fmt((s.get('reference') or {}).get('source'))}"
           f" (n = {_fmt((s.get('reference') or {}).get('n'))}).</p>"]
    if verdicts:
        vs = [Verdict.from_dict(v) for v in d.get("verdicts", [])]
        out.append(_table([{"status": v.status.upper(), "criterion": v.criterion,
                            "reason": v.reason} for v in vs],
                          [("status", "Status"), ("criterion", "Pre-specified criterion"),
                           ("reason", "Why")], "Verdicts"))
    alarms = d.get("alarms") or []
    first: dict[tuple, dict] = {}
    for a in alarms:
        first.setdefault((a["rule"], a["group"], a["level"]), {**a, "count": 0})
        first[(a["rule"], a["group"], a["level"])]["count"] += 1
    out.append(_table(list(first.values()), [
        ("method", "Chart"), ("metric", "Series"), ("group", "By"), ("level", "Level"),
        ("window", "First alarm"), ("run_length", "Run length"), ("run_length_unit", "Unit"),
        ("count", "Alarms")], "Alarms (first per chart and level)") or
        "<p>No control chart raised an alarm.</p>")
    findings = [Finding.from_dict(f) for f in d.get("findings", [])]
    if findings:
        out.append("<h3>Findings</h3><ul>" + "".join(
            f"<li>{html.escape(f.text(k))}</li>" for f in findings) + "</ul>")
    # drift summary: per role x feature x test
    agg: dict[tuple, dict] = {}
    for r in d.get("drift") or []:
        key = (r["role"], r["feature"], r["test"])
        a = agg.setdefault(key, {"role": r["role"], "feature": r["feature"], "test": r["test"],
                                 "effect_name": r["effect_name"], "threshold": r["threshold"],
                                 "cells": 0, "drifted": 0, "max_effect": None, "first": None,
                                 "resolution": r["resolution"], "max_bound": 0.0})
        if r["status"] == "ok":
            a["cells"] += 1
            e = r["effect"]
            if e is not None and (a["max_effect"] is None or e > a["max_effect"]):
                a["max_effect"] = e
            if r.get("bound") is not None:
                a["max_bound"] = max(a["max_bound"], r["bound"])
        if r["drifted"]:
            a["drifted"] += 1
            a["first"] = r["window"] if a["first"] is None else min(a["first"], r["window"])
    out.append(_table(list(agg.values()), [
        ("role", "Role"), ("feature", "Feature"), ("test", "Test"), ("effect_name", "Effect"),
        ("threshold", "Threshold"), ("drifted", "Cells drifted"), ("cells", "Cells"),
        ("max_effect", "Largest effect"), ("first", "First drifted"),
        ("max_bound", "Largest binning bound")],
        "Input and prediction drift (windows x levels; effect sizes decide, p-values BH-"
        "adjusted)"))
    clf = d.get("classifier") or []
    out.append(_table(clf, [("window", "Windows"), ("auroc", "Out-of-fold AUROC"),
                            ("ci_low", "CI low"), ("ci_high", "CI high"),
                            ("threshold", "Threshold"), ("top_features", "Driving features"),
                            ("reason", "Note")], "Classifier two-sample test"))
    perf = [r for r in d.get("performance") or [] if r["group"] == "overall"]
    out.append(_performance_table(perf, k))
    diag = d.get("diagnostics") or []
    # a merge's diagnostics say which cells read values the sites withheld
    # (rwe.federation._withheld): their status and why, nothing judged on them
    held = [("status", "Status"), ("reason", "Note")] if any(
        "withheld_at" in r for r in diag) else []
    out.append(_table(diag, [("window", "Window"), ("group", "By"), ("level", "Level"),
                             ("last_labelled_window", "Last labelled"), ("citl", "CITL"),
                             ("slope", "Slope"), ("calibration_ok", "Calibrated"),
                             ("outside_support_share", "Outside reference support"),
                             ("support_ok", "Support ok"), *held],
                      "Label-free estimates: the calibration assumption and its diagnostics"))
    integ = [r for r in d.get("integrity") or [] if r["group"] == "overall"
             and (r["out_of_range"] or r["missing"] or r["duplicates"] or r["unlabelled"])]
    out.append(_table(integ, [("window", "Window"), ("feature", "Feature"), ("n", "n"),
                              ("missing_share", "Missing"),
                              ("reference_missing_share", "Missing in reference"),
                              ("out_of_range_share", "Outside reference range"),
                              ("unlabelled", "Unlabelled"), ("duplicates", "Duplicates")],
                      "Data integrity (windows with a remark)", k=k,
                      hide=("missing_share", "out_of_range_share")))
    rules = s.get("rules") or []
    if rules:
        items = []
        for r in rules:
            lim = ", ".join(f"{a}={v:.4g}" for a, v in r["params"].items())
            ic = (f"in-control value {r['target']:.4g} ({r['target_source']})"
                  if r.get("target") is not None else "in-control risk: the model's predictions")
            est = (" The in-control value was estimated; the actual in-control ARL differs from "
                   "the nominal one (Jensen et al. 2006)." if r.get("estimated_in_control")
                   else "")
            items.append(f"<li>{html.escape(r['criterion'])}: {html.escape(lim)}; "
                         f"{html.escape(ic)}.{html.escape(est)}</li>")
        out.append("<h3>Methods</h3><ul>" + "".join(items) + "</ul>")
    out.append("<p>Charted series are z = (estimate - in-control value) / SE per window; limits "
               "are chosen for the protocol's in-control average run length by a Brook-Evans "
               "Markov chain; after an alarm a chart restarts. Binned tests state their "
               "bound; label-free estimates assume calibration and never enter a chart.</p>")
    return "\n".join(x for x in out if x)
