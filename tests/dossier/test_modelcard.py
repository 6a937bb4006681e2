"""The model card: FDA App E layout in HTML, CHAI applied model card XML (schema v0.2)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from rwe.dossier._modelcard import CHAI_NAMESPACE

NS = {"mc": CHAI_NAMESPACE}
#: Top-level sequence of AppliedModelCard in mc-schema v0.2 (schema.xsd).
CHAI_SEQUENCE = ["BasicInfo", "ReleaseInfo", "ModelSummary", "UsesAndDirections", "Warnings",
                 "TrustIngredients", "KeyMetrics", "Resources", "Bibliography"]


def test_chai_xml(dossier):
    root = ET.parse(dossier.path / "model-card.xml").getroot()
    assert root.tag == f"{{{CHAI_NAMESPACE}}}AppliedModelCard"
    assert [c.tag.split("}")[1] for c in root] == CHAI_SEQUENCE
    assert root.findtext("mc:BasicInfo/mc:ModelName", namespaces=NS) == "NoduleRisk CADx (demo)"
    assert root.findtext("mc:ReleaseInfo/mc:ReleaseVersion", namespaces=NS) == "1.0"
    assert root.findtext("mc:BasicInfo/mc:DeveloperContact", namespaces=NS) == "not provided"
    for block in ("UsefulnessUsabilityEfficacy", "FairnessEquity", "SafetyReliability"):
        results = root.findall(f"mc:KeyMetrics/mc:{block}/mc:Results/mc:MetricResult", NS)
        assert results, block
        for r in results:
            json.loads(r.findtext("mc:ValueJson", namespaces=NS))
    sens = next(r for r in root.findall(".//mc:MetricResult", NS)
                if r.findtext("mc:Label", namespaces=NS) == "sensitivity")
    value = json.loads(sens.findtext("mc:ValueJson", namespaces=NS))
    overall = next(r for r in dossier.results["sections"]["subgroups"]["table"]
                   if r["group"] == "overall" and r["metric"] == "sensitivity")
    assert value == {"kind": "estimate_ci", "estimate": overall["estimate"],
                     "lower": overall["ci_low"], "upper": overall["ci_high"], "level": 95}


def test_app_e_layout(dossier):
    html = (dossier.path / "model_card.html").read_text()
    heads = ["1. Device information", "2. Intended use", "3. Model description",
             "4. Development (training) data", "5. Evaluation data",
             "6. Performance, overall and by subgroup", "7. Representativeness",
             "8. Limitations and known risks", "9. Monitoring and change control"]
    pos = [html.index(h) for h in heads]
    assert pos == sorted(pos)
    assert "draft" in html and "not provided" in html
    card = dossier.results["sections"]["model_card"]["card"]
    assert card["device_information"]["device_name"] == "NoduleRisk CADx (demo)"
    assert card["performance"]["overall"]
