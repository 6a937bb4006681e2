"""Section payloads: the JSON-safe record of each section that goes into ``results.json``.

Each builder turns an rwe result object (or the protocol, for sections whose analysis module
does not exist yet) into a plain dict: tables as lists of records with the result's own column
names, the section's verdicts against pre-specified goals and criteria, and plain-language
findings. No statistic is computed here: verdicts and findings only read the results.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rwe._results import json_safe
from rwe.data import VALIDATION_RULES  # the load-time rules of rwe.data (imports no pandas)

if TYPE_CHECKING:  # payloads of the plan-only sections are built without pandas
    import pandas as pd
from rwe.dossier._sections import (
    STATUS_FAIL,
    STATUS_INSUFFICIENT,
    STATUS_NOT_EVALUATED,
    STATUS_PASS,
)

__all__ = ["section_payload", "representativeness_payload", "subgroups_payload",
           "drift_plan", "change_control_plan", "data_provenance", "PAYLOAD_BUILDERS",
           "VALIDATION_RULES"]


def _verdict(section: str, vid: str, kind: str, criterion: str, status: str, detail: str,
             source: str, **extra: Any) -> dict[str, Any]:
    return {"id": f"{section}.{vid}", "section": section, "kind": kind, "criterion": criterion,
            "status": status, "detail": detail, "source": source, **extra}


def _fmt(v: Any, digits: int = 3) -> str:
    try:
        return f"{float(v):.{digits}f}"
    except (TypeError, ValueError):
        return "n/a"


def _listing(items: list[str], limit: int = 5) -> str:
    shown = "; ".join(items[:limit])
    return shown + (f"; and {len(items) - limit} more" if len(items) > limit else "")


# =============================================================================== representativeness
def representativeness_payload(rep: Any, protocol: Any = None) -> dict[str, Any]:
    """Payload of a :class:`rwe.representativeness.RepresentativenessResult`."""
    meta = dict(getattr(rep.reference, "metadata", {}) or {})
    reference = {k: meta.get(k) for k in ("name", "title", "version", "year", "universe",
                                            "source", "verification", "card")}
    reference["name"] = reference.get("name") or rep.reference.name
    reference["derived"] = {k: v for k, v in meta.items() if k.startswith("derived:")}
    params = json_safe(rep.parameters)
    tipton = json_safe(rep.tipton) if rep.tipton is not None else None
    payload = {
        "n": int(rep.n),
        "attributes": list(rep.attributes),
        "intersections": [" x ".join(i) for i in rep.intersections],
        "parameters": params,
        "reference": json_safe(reference),
        "shares": json_safe(rep.shares),
        "tests": json_safe(rep.tests),
        "smd": json_safe(rep.smd),
        "tipton": tipton,
        "tipton_reason": rep.tipton_reason,
        "coverage": json_safe(rep.coverage),
        "adequacy": json_safe(rep.adequacy),
        "sites": json_safe(rep.sites),
        "missingness": json_safe(rep.missingness),
        "findings": rep.finding_texts(getattr(getattr(protocol, "report", None),
                                              "small_cell_k", None)),
        "notes": list(rep.notes),
    }
    payload["verdicts"] = _representativeness_verdicts(rep, params)
    return payload


def _not_evaluable(d: pd.DataFrame, attr: str, reference: str) -> str | None:
    """Why the PPR check of ``attr`` cannot be judged (its shares rows ``d``), or None.

    An attribute the reference does not define has no reference share in any row; one with no
    observed value in the cohort is flagged "no data" in every row. Either way there is no
    ratio to judge, and the check is "not evaluated" with this reason, never "pass".
    """
    from rwe.representativeness import FLAG_NO_DATA

    reasons = []
    if not d["reference_share"].notna().any():
        reasons.append(f"reference {reference!r} does not define {attr}")
    if not len(d) or d["flag"].eq(FLAG_NO_DATA).all():
        reasons.append(f"{attr} is missing for every row of the cohort")
    return "not evaluable: " + " and ".join(reasons) if reasons else None


def _representativeness_verdicts(rep: Any, params: dict) -> list[dict]:
    from rwe.representativeness import FLAG_ABSENT, FLAG_OVER, FLAG_UNDER

    sec = "representativeness"
    out: list[dict] = []
    low, high = params["ppr_band"]
    sh = rep.shares
    for attr in rep.attributes:
        d = sh[sh["attribute"] == attr]
        criterion = (f"{attr}: participation-to-prevalence ratio of every category within "
                     f"[{low:g}, {high:g}]")
        why = _not_evaluable(d, attr, rep.reference.name)
        if why is not None:
            out.append(_verdict(sec, f"ppr.{attr}", "check", criterion, STATUS_NOT_EVALUATED,
                                why, "population.attributes"))
            continue
        bad = d[d["flag"].isin([FLAG_UNDER, FLAG_OVER, FLAG_ABSENT])]
        items = [f"{r.category} PPR {_fmt(r.ppr, 2)} ({r.flag})" for r in bad.itertuples()]
        out.append(_verdict(
            sec, f"ppr.{attr}", "check", criterion,
            STATUS_FAIL if len(bad) else STATUS_PASS,
            (f"{len(bad)} of {len(d)} categories outside the band: " + _listing(items))
            if len(bad) else f"all {len(d)} categories within the band",
            "population.ppr_band"))
    smd = rep.smd[rep.smd["comparison"] != "reference shares"]
    thr = params["smd_threshold"]
    if len(smd):
        bad = smd[smd["flag"] == "imbalanced"]
        items = [f"{r.covariate}" + (f" = {r.level}" if isinstance(r.level, str) and r.level else "")
                 + f" SMD {_fmt(r.smd, 2)}" for r in bad.itertuples()]
        comp = str(smd["comparison"].iloc[0])
        out.append(_verdict(
            sec, "smd", "check", f"|SMD| <= {thr:g} for every covariate vs the {comp}",
            STATUS_FAIL if len(bad) else STATUS_PASS,
            (f"{len(bad)} of {len(smd)} covariate levels imbalanced: " + _listing(items))
            if len(bad) else f"all {len(smd)} covariate levels balanced",
            "population.smd_threshold"))
    else:
        out.append(_verdict(sec, "smd", "check", f"|SMD| <= {thr:g} for every covariate",
                            STATUS_NOT_EVALUATED, "no population rows to compare with",
                            "population.smd_threshold"))
    cov = rep.coverage
    if len(cov):
        small = cov[cov["below_min_n"].astype(bool)]
        out.append(_verdict(
            sec, "coverage", "check",
            f"every intersectional cell has at least {params['min_n']} rows",
            STATUS_FAIL if len(small) else STATUS_PASS,
            f"{len(small)} of {len(cov)} cells below {params['min_n']} rows "
            f"({int(cov['empty'].astype(bool).sum())} empty)" if len(small)
            else f"all {len(cov)} cells have at least {params['min_n']} rows",
            "subgroups.min_n"))
    ad = rep.adequacy
    if params.get("target_half_width") is not None and len(ad):
        single = ad[~ad["grouping"].str.contains(" x ", regex=False)]
        short = single[~single["reached"].fillna(True).astype(bool)]
        have = "n_positive" if str(ad["basis"].iloc[0]) == "positives" else "n"
        items = [f"{r.subgroup} ({int(getattr(r, have))} of {int(r.required)})"
                 for r in short.itertuples()]
        out.append(_verdict(
            sec, "adequacy", "check",
            f"every subgroup large enough for a ±{params['target_half_width']:g} "
            f"{params['confidence_level']:.0%} interval at an assumed value of "
            f"{params['assumed_value']:g}",
            STATUS_FAIL if len(short) else STATUS_PASS,
            (f"{len(short)} of {len(single)} subgroups short: " + _listing(items)) if len(short)
            else f"all {len(single)} subgroups reach the required size",
            "performance.target_half_width"))
    miss = rep.missingness
    if len(miss):
        thr_m = params["missingness_threshold"]
        bad = miss[miss["flag"].astype(bool)]
        items = [f"{r.variable} in {r.grouping} = {r.subgroup} ({100 * r.fraction:.1f}%)"
                 if r.grouping != "(all)" else f"{r.variable} overall ({100 * r.fraction:.1f}%)"
                 for r in bad.itertuples()]
        out.append(_verdict(
            sec, "missingness", "check",
            f"missing values below {thr_m:.0%} for every variable, overall and per subgroup",
            STATUS_FAIL if len(bad) else STATUS_PASS,
            (f"{len(bad)} variable x subgroup cells at or above the threshold: "
             + _listing(items)) if len(bad) else "no variable reaches the threshold",
            "population.missingness_threshold"))
    return out


# =============================================================================== subgroups
#: Core verdict statuses (rwe._evidence) -> the dossier's display words.
_DOSSIER_STATUS = {"pass": STATUS_PASS, "fail": STATUS_FAIL,
                   "not_evaluable": STATUS_INSUFFICIENT, "not_evaluated": STATUS_NOT_EVALUATED}


def _typed_verdict(v: Any) -> dict[str, Any]:
    """A typed :class:`rwe._evidence.Verdict` as the dossier's verdict record (no statistic
    is judged here: the status is the analysis's own)."""
    counts = dict(v.counts)
    detail = []
    if counts:
        total = sum(counts.values())
        detail.append(f"met in {counts.get('pass', 0)} of {total} cells")
        if counts.get("fail"):
            detail.append(f"not met in {counts['fail']}")
        if counts.get("not_evaluable"):
            detail.append(f"{counts['not_evaluable']} not judged (insufficient data)")
    elif v.reason:
        detail.append(v.reason)
    return {"id": v.id, "section": v.section, "kind": v.kind, "criterion": v.criterion,
            "status": _DOSSIER_STATUS[v.status], "detail": "; ".join(detail),
            "source": v.source, "description": v.description, "reason": v.reason,
            "counts": {"pass": counts.get("pass", 0), "fail": counts.get("fail", 0),
                       "not judged": counts.get("not_evaluable", 0)}}


def subgroups_payload(report: Any, protocol: Any = None) -> dict[str, Any]:
    """Payload of a :class:`rwe.subgroups.SubgroupPerformanceResult`: its tables, its typed
    verdicts as dossier records and its typed findings rendered with the small-cell rule."""
    k = getattr(getattr(protocol, "report", None), "small_cell_k", None)
    payload = {
        "settings": json_safe(report.settings),
        "table": json_safe(report.table),
        "heterogeneity": json_safe(report.heterogeneity),
        "fairness": json_safe(report.fairness),
        "goals": json_safe(report.goals),
    }
    goal_specs = []
    if protocol is not None:
        goal_specs = [json_safe(g.model_dump()) for g in protocol.performance.goals]
    payload["goal_specs"] = goal_specs
    payload["verdicts"] = [_typed_verdict(v) for v in report.verdicts]
    payload["findings"] = [f.text(k) for f in report.findings]
    return payload


# =============================================================================== drift / change
def drift_plan(protocol: Any) -> dict[str, Any]:
    """The pre-specified drift and monitoring plan (``protocol.drift``), not evaluated: rwe has
    no drift module in this release."""
    d = protocol.drift
    statement = ("Drift analysis is not part of this release of rwe. The plan below was "
                 "pre-specified in the protocol; none of its tests or alarms has been run, and "
                 "no statement about drift can be made from this dossier.")
    if d is None:
        return {"status": STATUS_NOT_EVALUATED, "statement": statement, "plan": None,
                "verdicts": [], "findings": ["The protocol has no drift plan."]}
    plan = json_safe(d.model_dump(mode="json"))
    verdicts = []
    period = (f"{d.reference_period.start} to {d.reference_period.end}" if d.reference_period
              else "not specified")
    if d.features or d.tests:
        verdicts.append(_verdict(
            "drift", "input", "plan",
            f"input drift: {', '.join(d.tests)} on {', '.join(d.features) or 'no features'} per "
            f"{d.window} vs the reference period ({period}), alpha {d.alpha:g}"
            + (f", by {', '.join(d.by)}" if d.by else ""),
            STATUS_NOT_EVALUATED, "drift analysis is not part of this release", "drift.tests"))
    for i, a in enumerate(d.alerts, start=1):
        params = ", ".join(f"{k}={v:g}" for k, v in sorted(a.params.items()))
        verdicts.append(_verdict(
            "drift", f"alert.{i}", "plan",
            f"alarm: {a.metric} {a.method}" + (f" ({params})" if params else "")
            + (f", threshold {a.threshold:g}" if a.threshold is not None else "")
            + (f", by {', '.join(a.by)}" if a.by else ""),
            STATUS_NOT_EVALUATED, "drift analysis is not part of this release",
            f"drift.alerts[{i - 1}]"))
    return {"status": STATUS_NOT_EVALUATED, "statement": statement, "plan": plan,
            "verdicts": verdicts,
            "findings": [f"Drift and monitoring: {len(verdicts)} pre-specified test(s) and "
                         "alarm(s) not evaluated (no drift module in this release)."]}


def change_control_plan(protocol: Any) -> dict[str, Any]:
    """The pre-specified change-control (PCCP) acceptance criteria, not evaluated."""
    c = protocol.change_control
    statement = ("The formal change-control procedure (PCCP: candidate versus locked and "
                 "original versions on the same cases, hierarchical testing, ledger) is not "
                 "part of this release of rwe. The acceptance criteria below were "
                 "pre-specified in the protocol and have not been evaluated; no modification "
                 "can be accepted on the basis of this dossier.")
    if c is None:
        return {"status": STATUS_NOT_EVALUATED, "statement": statement, "plan": None,
                "criteria": [], "verdicts": [],
                "findings": ["The protocol has no change-control plan."]}
    order = list(c.order) or list(c.margins)
    order += [m for m in c.margins if m not in order]
    comparisons = [("reference", c.reference_version)]
    if c.original_version != c.reference_version:
        comparisons.append(("original", c.original_version))
    criteria, verdicts = [], []
    for step, metric in enumerate(order, start=1):
        margin = c.margins.get(metric)
        for role, version in comparisons:
            crit = {"step": step, "metric": metric, "margin": margin, "alpha": c.alpha,
                    "candidate_version": c.candidate_version, "comparator_role": role,
                    "comparator_version": version, "subgroups": c.subgroups,
                    "status": STATUS_NOT_EVALUATED}
            criteria.append(crit)
            text = (f"step {step}: {metric} of candidate {c.candidate_version} non-inferior to "
                    f"{role} version {version}"
                    + (f" with margin {margin:g}" if margin is not None else " (no margin given)")
                    + f", one-sided alpha {c.alpha:g}"
                    + (", overall and in subgroups" if c.subgroups else ""))
            verdicts.append(_verdict("change_control", f"{metric}.{role}", "plan", text,
                                     STATUS_NOT_EVALUATED,
                                     "formal change-control procedure not part of this release",
                                     f"change_control.margins.{metric}"))
    return {"status": STATUS_NOT_EVALUATED, "statement": statement,
            "plan": json_safe(c.model_dump(mode="json")), "criteria": criteria,
            "verdicts": verdicts,
            "findings": [f"Change control: {len(verdicts)} pre-specified acceptance criteria for "
                         f"candidate {c.candidate_version} not evaluated (no change-control "
                         "module in this release)."]}


# =============================================================================== provenance
_FILE_KEYS = ("role", "file", "format", "sha256", "bytes")


def data_provenance(protocol: Any, evset: Any) -> dict[str, Any]:
    """Provenance and quality facts of the evaluation data (PRV-1, PRV-2, PRV-4, PRV-6, PRV-7):
    the counts of :func:`rwe.data.provenance` (files and sha256, rows, patients, events, period,
    rows per site and quarter, missing values per column role, validation rules), with the
    protocol's hashes and the paths as the protocol writes them. Aggregates only."""
    from rwe.data import provenance

    p = protocol
    written = {"evaluation data": p.data.path}
    sources: dict[str, Any] = {"evaluation data": p.data_source()}
    if p.data.reference_rows:
        role = "comparison population rows (data.reference_rows)"
        written[role] = p.data.reference_rows
        sources[role] = p.resolve(p.data.reference_rows)
    if p.population.comparison:
        role = "comparison population rows (population.comparison)"
        written[role] = p.population.comparison
        sources[role] = p.resolve(p.population.comparison)
    ref = p.population.reference
    if ref is not None:
        written["reference population"] = ref
        sources["reference population"] = p.reference_path() or p.resolve(ref)
    prov = provenance(evset, sources=sources).to_dict()
    files = [{**{k: f[k] for k in _FILE_KEYS}, "protocol_path": written.get(f["role"])}
             for f in prov["files"]]
    counts, period, missing = prov["counts"], prov["period"], prov["missingness"]
    n = counts["rows"]
    return {
        "protocol": {"name": p.name, "file": p.path.name if p.path else None,
                     "sha256": p.sha256, "file_sha256": p.file_sha256,
                     "seed": p.performance.seed},
        "files": files,
        "source": {"description": p.data.description, "query": p.data.query,
                   "format": p.data.format, "derived": p.derived_spec()},
        "counts": counts,
        "period": period,
        "by_site_quarter": prov["by_site_quarter"],
        "missingness": missing,
        "missingness_threshold": p.population.missingness_threshold,
        "validation": prov["validation"],
        "reference_standard": p.device.reference_standard,
        "not_provided": ["data extraction date", "source version and latency",
                         "annotation protocol and reader agreement (PRV-5)",
                         "model weights hash (PRV-6)"],
        "verdicts": [_verdict(
            "provenance", "validation", "check",
            "evaluation data pass rwe's load-time validation rules",
            STATUS_PASS, f"{n:,} rows, {len(VALIDATION_RULES)} rule families checked; "
            "no failure", "data.columns")],
        "findings": [f"Evaluation data {files[0]['file']} (sha256 "
                     f"{(files[0]['sha256'] or 'n/a')[:12]}...): {n:,} rows"
                     + (f", {counts['patients']:,} patients" if "patients" in counts else "")
                     + (f", {str(period['first'])[:10]} to {str(period['last'])[:10]}"
                        if period else "")
                     + "; validation passed."]
        + [f"{m['column']} ({m['role']}) missing for {100 * m['fraction']:.1f}% of rows."
           for m in missing if m["fraction"] and m["fraction"] >= p.population.missingness_threshold],
    }


# =============================================================================== registry
def _passthrough(obj: Any, protocol: Any = None) -> dict[str, Any]:
    if not isinstance(obj, dict):
        from rwe.exceptions import InvalidParameterError

        raise InvalidParameterError(
            f"this section saves a dict payload, got {type(obj).__name__}")
    return obj


PAYLOAD_BUILDERS: dict[str, Callable[..., dict[str, Any]]] = {
    "representativeness": representativeness_payload,
    "subgroups": subgroups_payload,
    "drift": _passthrough,
    "change_control": _passthrough,
    "provenance": _passthrough,
    "model_card": _passthrough,
}


def section_payload(name: str, obj: Any, protocol: Any = None) -> dict[str, Any]:
    """The JSON-safe payload of section ``name`` from its result object (or a ready dict)."""
    from rwe.dossier._sections import section_spec

    section_spec(name)
    if isinstance(obj, dict):
        payload = dict(obj)
    else:
        payload = PAYLOAD_BUILDERS[name](obj, protocol)
    payload.setdefault("verdicts", [])
    payload.setdefault("findings", [])
    return json_safe(payload)
