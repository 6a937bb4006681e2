"""Model card (EVIDENCE.md PRV-9): FDA AI-DSF draft guidance Appendix E layout and the CHAI
applied model card XML (schema v0.2), both generated from the dossier's own facts.

Everything comes from the protocol and the other sections' payloads; a field neither supplies
reads "not provided" (EVIDENCE.md: items rwe cannot compute are fields the protocol supplies).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from rwe._results import json_safe
from rwe.dossier._format import Col, RawHTML, bullet_list, definition_list, esc, html_table
from rwe.dossier._suppress import scrub_text, small_record

__all__ = ["model_card", "chai_xml", "render_card_html", "CHAI_NAMESPACE", "NOT_PROVIDED"]

CHAI_NAMESPACE = "https://mc.chai.org/v0.2/schema.xsd"
NOT_PROVIDED = "not provided"
_RATE_METRICS = ("sensitivity", "specificity", "ppv", "npv")


def _np(v: Any) -> Any:
    return NOT_PROVIDED if v in (None, "", []) else v


def _cell_ok(row: dict, k: int) -> bool:
    return not small_record(row, k, counts=["n", "events"], complements=[("n", "events")])


def model_card(protocol: Any, sections: dict[str, dict]) -> dict[str, Any]:
    """The model card as a dict (Appendix E headings as keys), from the protocol and the
    payloads of the other sections (missing sections read "not evaluated in this dossier")."""
    dev = protocol.device
    rep = sections.get("representativeness")
    sub = sections.get("subgroups")
    prov = sections.get("provenance")
    drift = sections.get("drift")
    cc = sections.get("change_control")
    k = protocol.report.small_cell_k
    roles = protocol.data.columns
    perf = protocol.performance

    overall: list[dict] = []
    worst: list[dict] = []
    goals: list[dict] = []
    if sub:
        for r in sub["table"]:
            if r["group"] == "overall":
                overall.append({key: r[key] for key in ("metric", "estimate", "ci_low", "ci_high",
                                                        "ci_level", "ci_method", "n", "events")})
        goal_metrics = [g["metric"] for g in sub.get("goal_specs") or []] or list(
            dict.fromkeys(r["metric"] for r in sub["table"]))[:2]
        for m in dict.fromkeys(goal_metrics):
            cands = [r for r in sub["table"] if r["metric"] == m and r["group"] != "overall"
                     and r.get("n_attributes", 0) <= 1 and r.get("status") == "ok"
                     and r["estimate"] is not None and _cell_ok(r, k)]
            if cands:
                w = min(cands, key=lambda r: r["estimate"])
                worst.append({key: w[key] for key in ("metric", "group", "level", "estimate",
                                                      "ci_low", "ci_high", "n", "events")})
        goals = [{"criterion": v["criterion"], "status": v["status"], "detail": v["detail"]}
                 for v in sub.get("verdicts") or []]

    limitations: list[str] = []
    if rep:
        for f in rep.get("findings") or []:
            if "under-represented" in f or "absent from cohort" in f:
                limitations.append(f)
    for g in goals:
        if g["status"] != "pass":
            limitations.append(f"Goal {g['status']}: {g['criterion']}.")
    if sub:
        limitations += [f for f in sub.get("findings") or [] if "below the minimum size" in f]
    limitations.append("Drift over time and the change-control (PCCP) criteria were not "
                       "evaluated in this release; see the drift and change-control sections.")
    counts = (prov or {}).get("counts") or {}
    period = (prov or {}).get("period") or {}
    files = (prov or {}).get("files") or []
    inputs = list(roles.features) + [f"{a} (subgroup attribute)" for a in roles.attributes]

    card = {
        "layout": "FDA draft guidance, AI-enabled device software functions (Jan 2025; draft, "
                  "not for implementation), Appendix E example model card",
        "device_information": {
            "device_name": dev.name, "model_version": perf.version or protocol.version,
            "manufacturer": dev.manufacturer, "udi": dev.udi,
            "regulatory_status": None, "release_date": None, "contact": None,
        },
        "intended_use": {
            "intended_use": dev.intended_use,
            "intended_use_population": dev.intended_use_population,
            "intended_users": None, "clinical_workflow": None, "out_of_scope": None,
        },
        "model_description": {
            "description": dev.description or protocol.description,
            "model_type": None,
            "inputs": inputs,
            "outputs": (f"probability score in [0, 1] (column {roles.scores.get(protocol.version)}); "
                        f"action threshold {perf.threshold:g}") if roles.label else
                       "risk score for a time-to-event outcome",
        },
        "development_data": {
            "training_population": dev.training_population,
            "comparison_rows": (rep or {}).get("tipton", {}) and {
                "rows": rep["tipton"].get("n_population"),
                "generalizability_index_b": rep["tipton"].get("b"),
                "interpretation": rep["tipton"].get("interpretation")} or None,
        },
        "evaluation_data": {
            "files": [{"file": f["file"], "sha256": f["sha256"]} for f in files[:1]],
            "rows": counts.get("rows"), "patients": counts.get("patients"),
            "events": counts.get("events"), "sites": counts.get("sites"),
            "equipment_types": counts.get("equipment_types"),
            "period": period or None,
            "reference_standard": dev.reference_standard,
        },
        "performance": {
            "threshold": perf.threshold, "confidence_level": perf.confidence_level,
            "overall": overall, "lowest_subgroups": worst, "goals": goals,
        },
        "representativeness": [f for f in (rep or {}).get("findings", [])[:8]],
        "limitations": limitations,
        "monitoring_and_change_control": {
            "drift": (drift or {}).get("statement", "not evaluated in this dossier"),
            "drift_plan": [v["criterion"] for v in (drift or {}).get("verdicts", [])],
            "change_control": (cc or {}).get("statement", "not evaluated in this dossier"),
            "change_control_criteria": [v["criterion"] for v in (cc or {}).get("verdicts", [])],
        },
        "evidence": {"protocol": protocol.name, "protocol_sha256": protocol.sha256,
                     "sections": sorted(sections)},
    }
    return json_safe({"card": card, "verdicts": [],
                      "findings": [f"Model card generated from {len(sections)} section(s); "
                                   f"{len(limitations)} limitation(s) listed."]})


# =============================================================================== HTML (App E)
def _metric_rows(rows: list[dict], k: int) -> list[dict]:
    out = []
    for r in rows:
        ok = _cell_ok(r, k)
        out.append({**r, "label": r["metric"] + (f" — {r['group']} = {r['level']}"
                                                 if r.get("group") else ""),
                    "estimate": r["estimate"] if ok else "suppressed",
                    "ci_low": r["ci_low"] if ok else None, "ci_high": r["ci_high"] if ok
                    else None,
                    "n": r["n"] if ok else f"<{k}", "events": r["events"] if ok else f"<{k}"})
    return out


def render_card_html(payload: dict, k: int) -> str:
    """The model card in the Appendix E layout (reviewer page: small cells suppressed)."""
    c = payload["card"]
    di, iu, md = c["device_information"], c["intended_use"], c["model_description"]
    dd, ed, pf = c["development_data"], c["evaluation_data"], c["performance"]
    mc = c["monitoring_and_change_control"]
    lvl = f"{pf['confidence_level']:.0%}"
    parts = [f"<p class='tnote'>Layout: {esc(c['layout'])}. Machine-readable version: "
             "<a href='model-card.xml'>model-card.xml</a> (CHAI applied model card, schema "
             "v0.2).</p>"]
    parts.append("<h3>1. Device information</h3>" + definition_list([
        ("Device name", di["device_name"]), ("Model version", di["model_version"]),
        ("Manufacturer", di["manufacturer"]), ("UDI", di["udi"]),
        ("Regulatory status", di["regulatory_status"]), ("Release date", di["release_date"]),
        ("Contact", di["contact"])]))
    parts.append("<h3>2. Intended use</h3>" + definition_list([
        ("Intended use", iu["intended_use"]),
        ("Intended-use population", iu["intended_use_population"]),
        ("Intended users", iu["intended_users"]), ("Clinical workflow", iu["clinical_workflow"]),
        ("Out of scope", iu["out_of_scope"])]))
    parts.append("<h3>3. Model description</h3>" + definition_list([
        ("Description", md["description"]), ("Model type / architecture", md["model_type"]),
        ("Inputs", md["inputs"]), ("Outputs", md["outputs"])]))
    comp = dd.get("comparison_rows") or {}
    parts.append("<h3>4. Development (training) data</h3>" + definition_list([
        ("Training population", dd["training_population"]),
        ("Comparison rows (training snapshot)",
         f"{comp.get('rows'):,} rows; generalizability index B = {comp['generalizability_index_b']:.3f} "
         f"({comp.get('interpretation')}) for the evaluation cohort" if comp else None)]))
    per = ed.get("period") or {}
    parts.append("<h3>5. Evaluation data</h3>" + definition_list([
        ("Data file", ", ".join(f"{f['file']} (sha256 {str(f['sha256'])[:16]}...)"
                                for f in ed["files"]) or None),
        ("Rows / patients / events",
         " / ".join(f"{v:,}" if isinstance(v, int) else "n/a"
                    for v in (ed.get("rows"), ed.get("patients"), ed.get("events")))),
        ("Sites / equipment types", f"{ed.get('sites')} / {ed.get('equipment_types')}"),
        ("Period", f"{str(per.get('first'))[:10]} to {str(per.get('last'))[:10]}"
         if per else None),
        ("Reference standard", ed["reference_standard"])]))
    perf_html = html_table(_metric_rows(pf["overall"], k), [
        Col("Metric", "label"), Col(f"Estimate ({lvl} CI)", "estimate", "ci", low="ci_low",
                                    high="ci_high"),
        Col("Method", "ci_method"), Col("n", "n", "int"), Col("Events", "events", "int")],
        caption="Overall performance")
    if pf["lowest_subgroups"]:
        perf_html += html_table(_metric_rows(pf["lowest_subgroups"], k), [
            Col("Metric — subgroup", "label"),
            Col(f"Estimate ({lvl} CI)", "estimate", "ci", low="ci_low", high="ci_high"),
            Col("n", "n", "int"), Col("Events", "events", "int")],
            caption="Lowest single-attribute subgroup per goal metric (full table: Subgroup "
                    "performance)")
    if pf["goals"]:
        perf_html += html_table(
            [{**g, "detail": scrub_text(g["detail"], k)} for g in pf["goals"]],
            [Col("Pre-specified goal", "criterion"), Col("Verdict", "status", "status"),
             Col("Detail", "detail")], caption="Acceptance against pre-specified goals",
            css="verdicts")
    parts.append("<h3>6. Performance, overall and by subgroup</h3>" + perf_html)
    parts.append("<h3>7. Representativeness of the evaluation data</h3>"
                 + bullet_list(scrub_text(f, k) for f in c["representativeness"]))
    parts.append("<h3>8. Limitations and known risks</h3>"
                 + bullet_list(scrub_text(f, k) for f in c["limitations"]))
    parts.append("<h3>9. Monitoring and change control</h3>" + definition_list([
        ("Drift and monitoring", mc["drift"]),
        ("Pre-specified drift tests and alarms", RawHTML(bullet_list(mc["drift_plan"], "plain"))
         if mc["drift_plan"] else None),
        ("Change control", mc["change_control"]),
        ("Pre-specified change-control criteria",
         RawHTML(bullet_list(mc["change_control_criteria"], "plain"))
         if mc["change_control_criteria"] else None)]))
    ev = c["evidence"]
    parts.append("<h3>10. Evidence record</h3>" + definition_list([
        ("Protocol", ev["protocol"]),
        ("Protocol sha256", RawHTML(f"<code>{esc(ev['protocol_sha256'])}</code>")),
        ("Dossier sections used", ev["sections"])]))
    return "\n".join(parts)


# =============================================================================== CHAI XML
def _estimate_ci(r: dict) -> str:
    return json.dumps({"kind": "estimate_ci", "estimate": r["estimate"], "lower": r["ci_low"],
                       "upper": r["ci_high"], "level": round(100 * r["ci_level"])}
                      if "ci_level" in r and r.get("ci_level") is not None else
                      {"kind": "estimate_ci", "estimate": r["estimate"], "lower": r["ci_low"],
                       "upper": r["ci_high"]}, sort_keys=True)


def chai_xml(payload: dict, k: int) -> str:
    """The card as a CHAI ``AppliedModelCard`` (schema v0.2) XML document; small cells are left
    out (the XML is meant to be published)."""
    c = payload["card"]
    ET.register_namespace("", CHAI_NAMESPACE)

    def el(parent, tag, *text):
        e = ET.SubElement(parent, f"{{{CHAI_NAMESPACE}}}{tag}")
        if text:
            e.text = str(_np(text[0]))
        return e

    di, iu, md = c["device_information"], c["intended_use"], c["model_description"]
    ed, pf = c["evaluation_data"], c["performance"]
    mc = c["monitoring_and_change_control"]
    root = ET.Element(f"{{{CHAI_NAMESPACE}}}AppliedModelCard")
    b = el(root, "BasicInfo")
    el(b, "ModelName", di["device_name"])
    el(b, "ModelDeveloper", di["manufacturer"])
    el(b, "DeveloperContact", di["contact"])
    r = el(root, "ReleaseInfo")
    el(r, "ReleaseStage", di["regulatory_status"])
    el(r, "ReleaseDate", di["release_date"])
    el(r, "ReleaseVersion", di["model_version"])
    el(r, "GlobalAvailability", None)
    el(r, "RegulatoryApproval", di["regulatory_status"])
    s = el(root, "ModelSummary")
    el(s, "Summary", md["description"] or iu["intended_use"])
    kw = el(s, "Keywords")
    for word in ("real-world evidence", "subgroup performance", "representativeness"):
        el(kw, "Keyword", word)
    u = el(root, "UsesAndDirections")
    el(u, "IntendedUseAndWorkflow", iu["intended_use"])
    el(u, "PrimaryIntendedUsers", iu["intended_users"])
    el(u, "HowToUse", iu["clinical_workflow"])
    el(u, "TargetedPatientPopulation", iu["intended_use_population"])
    el(u, "CautionedOutOfScopeSettings", iu["out_of_scope"])
    w = el(root, "Warnings")
    el(w, "KnownRisksAndLimitations", "\n".join(f"- {scrub_text(x, k)}" for x in c["limitations"]))
    el(w, "KnownBiasesOrEthicalConsiderations",
       "\n".join(f"- {scrub_text(x, k)}" for x in c["representativeness"]) or None)
    el(w, "ClinicalRiskLevel", None)
    t = el(root, "TrustIngredients")
    f = el(t, "AISystemFacts")
    el(f, "OutcomesAndOutputs", md["outputs"])
    el(f, "ModelType", md["model_type"])
    el(f, "InputDataSource", f"Evaluation data: {', '.join(x['file'] for x in ed['files'])}; "
                             f"{ed.get('rows')} rows from {ed.get('sites')} site(s)")
    el(f, "OutputAndInputDataTypes", f"Inputs: {', '.join(md['inputs'])}. Output: "
                                     f"{md['outputs']}.")
    el(f, "DevelopmentDataCharacterization", c["development_data"]["training_population"])
    el(f, "BiasMitigationApproaches", None)
    el(f, "OngoingMaintenance", mc["drift"])
    ti = el(t, "TransparencyInformation")
    el(ti, "FundingSource", None)
    el(ti, "StakeholdersConsulted", None)
    km = el(root, "KeyMetrics")
    goals_text = "; ".join(f"{g['criterion']}: {g['status']}" for g in pf["goals"])
    overall = [x for x in pf["overall"] if _cell_ok(x, k) and x.get("estimate") is not None]
    blocks = (
        ("UsefulnessUsabilityEfficacy",
         [x for x in overall if x["metric"] in _RATE_METRICS + ("auroc",)],
         goals_text or None),
        ("FairnessEquity", [x for x in pf["lowest_subgroups"] if _cell_ok(x, k)],
         "Lowest single-attribute subgroup per goal metric"),
        ("SafetyReliability",
         [x for x in overall if x["metric"] not in _RATE_METRICS + ("auroc",)],
         "Calibration and overall accuracy of the probability score"),
    )
    for tag, rows, goal in blocks:
        blk = el(km, tag)
        el(blk, "MetricGoal", goal)
        res = el(blk, "Results")
        for x in rows or [None]:
            mr = el(res, "MetricResult")
            if x is None:
                el(mr, "Label", "not evaluated")
                el(mr, "ValueJson", json.dumps({"kind": "single", "value": None}))
            else:
                label = x["metric"] + (f" ({x['group']} = {x['level']})" if x.get("group") else "")
                el(mr, "Label", label)
                el(mr, "ValueJson", _estimate_ci({**x, "ci_level": pf["confidence_level"]}))
        el(blk, "Interpretation", goals_text or None)
        el(blk, "TestType", "Retrospective real-world performance evaluation against a "
                            "pre-specified protocol (rwe evidence dossier)")
        el(blk, "TestingDataDescription",
           f"{ed.get('rows')} rows, {ed.get('patients')} patients, {ed.get('sites')} site(s)")
        el(blk, "ValidationProcessAndJustification",
           f"Two-sided {pf['confidence_level']:.0%} confidence intervals; goals judged on the "
           "confidence bound. Protocol sha256 " + c["evidence"]["protocol_sha256"])
    res = el(root, "Resources")
    el(res, "EvaluationReferences", "Evidence dossier: index.html, results.json, manifest.json")
    el(res, "PeerReviewedPublications", None)
    el(res, "PatientConsentOrDisclosure", None)
    el(root, "Bibliography", "")
    ET.indent(root, space="  ")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            + ET.tostring(root, encoding="unicode") + "\n")
