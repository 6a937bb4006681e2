"""Provenance counts (rwe.data.provenance): files and hashes, counts, period, rows per site and
quarter, missingness; aggregates only. The dossier's provenance payload is a thin call to it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rwe.data import (
    VALIDATION_RULES,
    EvaluationSet,
    ProvenanceResult,
    load_evaluation_set,
    provenance,
)

ROLES = {"id": "scan_id", "patient_id": "pid", "scores": {"1.0": "s", "1.1": "t"}, "label": "y",
         "timestamp": "ts", "site": "site", "equipment": "vendor", "attributes": ["sex"],
         "features": ["age", "bmi"]}


def _frame() -> pd.DataFrame:
    # 10 rows, 4 patients, 2 sites; Jan, Feb and May 2024; 3 events; bmi missing twice
    return pd.DataFrame({
        "scan_id": [f"CT{i}" for i in range(10)],
        "pid": ["P1", "P1", "P2", "P3", "P3", "P3", "P4", "P4", "P2", "P1"],
        "s": np.linspace(0.05, 0.95, 10), "t": np.linspace(0.1, 0.9, 10),
        "y": [1, 0, 0, 1, 0, 0, 0, 1, 0, 0],
        "ts": ["2024-01-05", "2024-01-20", "2024-02-11", "2024-05-03", "2024-05-30",
               "2024-01-02", "2024-02-28", "2024-05-15", "2024-05-16", "2024-01-31"],
        "site": ["A", "A", "A", "A", "A", "B", "B", "B", "B", "B"],
        "vendor": ["GE", "GE", "Siemens", "GE", "GE", "GE", "GE", "GE", "GE", "GE"],
        "sex": ["F", "M", None, "F", "M", "F", "M", "F", "M", "F"],
        "age": [45, 52, 67, 70, 81, 38, 64, 50, 55, 60],
        "bmi": [22.0, None, 30.1, 25.3, None, 27.0, 31.2, 24.4, 26.5, 23.3]})


def test_counts_period_site_quarter_and_missingness(tmp_path):
    path = tmp_path / "scans.csv"
    _frame().to_csv(path, index=False)
    ev = load_evaluation_set(path, ROLES, derived={"age_band": {"from": "age", "cuts": [50]}})
    prov = provenance(ev, sources={"reference population": tmp_path / "absent.csv"})
    assert isinstance(prov, ProvenanceResult)
    assert prov.counts == {"rows": 10, "patients": 4, "events": 3, "prevalence": 0.3,
                           "sites": 2, "equipment_types": 2, "model_versions": ["1.0", "1.1"]}
    assert str(prov.period["first"]) == "2024-01-02 00:00:00"
    assert str(prov.period["last"]) == "2024-05-30 00:00:00" and prov.period["column"] == "ts"
    # quarters: site A has Q1 x3 (1 event), Q2 x2 (1 event); site B Q1 x3 (0), Q2 x2 (1)
    assert prov.by_site_quarter.to_dict("records") == [
        {"site": "A", "quarter": "2024-Q1", "n": 3, "events": 1},
        {"site": "A", "quarter": "2024-Q2", "n": 2, "events": 1},
        {"site": "B", "quarter": "2024-Q1", "n": 3, "events": 0},
        {"site": "B", "quarter": "2024-Q2", "n": 2, "events": 1}]
    miss = prov.missingness.set_index("column")
    assert miss.loc["bmi", "n_missing"] == 2 and miss.loc["bmi", "fraction"] == 0.2
    assert miss.loc["sex", "n_missing"] == 1 and miss.loc["sex", "role"] == "attribute"
    assert bool(miss.loc["age_band", "derived"]) and not bool(miss.loc["age", "derived"])
    assert list(miss.index) == ["scan_id", "pid", "y", "ts", "site", "vendor", "s", "t", "sex",
                                "age_band", "age", "bmi"]
    # files: the table's own source first, then the others (absent: no hash)
    data, ref = prov.files
    assert data["role"] == "evaluation data" and data["file"] == "scans.csv"
    assert data["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert data["rows"] == 10 and data["kind"] == "csv"
    assert ref["role"] == "reference population" and ref["sha256"] is None
    assert prov.validation == {"status": "passed", "rules": list(VALIDATION_RULES),
                               "source": "scans.csv"}
    d = prov.to_dict()
    text = json.dumps(d)  # JSON-safe
    assert "CT3" not in text and "P2" not in text  # no identifier
    assert d["by_site_quarter"][0] == {"site": "A", "quarter": "2024-Q1", "n": 3, "events": 1}
    assert dict(zip(prov.to_frame()["fact"], prov.to_frame()["value"], strict=True))["rows"] == 10


def test_a_dataframe_has_no_file_unless_given():
    ev = EvaluationSet.from_frame(_frame(), {"scores": {"1.0": "s"}, "label": "y"})
    prov = provenance(ev)
    assert prov.files == () and prov.period is None and len(prov.by_site_quarter) == 0
    assert prov.counts == {"rows": 10, "events": 3, "prevalence": 0.3, "model_versions": ["1.0"]}


def test_dossier_section_is_a_thin_call(tmp_path):
    from rwe.dossier import compute_section
    from rwe.protocol import protocol_from_dict

    path = tmp_path / "scans.parquet"
    _frame().assign(ts=pd.to_datetime(_frame()["ts"])).to_parquet(path, index=False)
    ref = tmp_path / "ref.csv"
    ref.write_text("# name: r\nattribute,category,share\nsex,F,0.5\nsex,M,0.5\n")
    spec = {"name": "t", "device": {"name": "d", "version": "1", "intended_use": "u",
                                    "intended_use_population": "adults"},
            "data": {"path": "scans.parquet", "columns": ROLES},
            "population": {"reference": "ref.csv"},
            "performance": {"metrics": ["sensitivity"], "threshold": 0.5, "seed": 3},
            "report": {"title": "t"}}
    p = protocol_from_dict(spec, base_dir=tmp_path)
    ev = p.load_data()
    result = compute_section("provenance", p, ev)
    out = result.to_dict()
    assert set(out) == {"files", "counts", "period", "by_site_quarter", "missingness",
                        "validation", "missingness_threshold", "verdicts", "findings"}
    files = [{k: f[k] for k in ("role", "file", "format", "sha256", "bytes", "protocol_path")}
             for f in out["files"]]
    assert files == [
        {"role": "evaluation data", "file": "scans.parquet", "format": "parquet",
         "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
         "bytes": path.stat().st_size, "protocol_path": "scans.parquet"},
        {"role": "reference population", "file": "ref.csv", "format": "csv",
         "sha256": hashlib.sha256(ref.read_bytes()).hexdigest(), "bytes": ref.stat().st_size,
         "protocol_path": "ref.csv"}]
    prov = provenance(ev).to_dict()
    for key in ("counts", "period", "by_site_quarter", "missingness", "validation"):
        assert out[key] == prov[key], key
    assert out["period"]["first"] == "2024-01-02T00:00:00"
    (v,) = result.verdicts
    assert v.status == "pass" and v.kind == "check" and v.section == "provenance"
    assert v.reason == f"{len(VALIDATION_RULES)} rule families checked on every row; no failure"
    texts = [f.text(11) for f in result.findings]
    assert texts[0].startswith("Evaluation data scans.parquet (sha256 ")
    # bmi is missing in 2 of 10 rows (20% >= the 0.2 default threshold): 2 is below k = 11,
    # so the sentence keeps its fraction out; with k = 2 it is shown
    assert [f.code for f in result.findings[1:]] == ["provenance.missing"]
    assert texts[1:] == ["bmi (feature) missing for some rows (count below 11: suppressed)."]
    assert result.findings[1].text(2) == "bmi (feature) missing for 20.0% of rows."
    # the record round-trips and holds no absolute path of this machine
    assert ProvenanceResult.from_dict(json.loads(json.dumps(out))).to_dict() == out
    assert str(Path(tmp_path)) not in json.dumps(out, default=str)


def test_provenance_of_a_file_that_changed_is_refused(tmp_path):
    from rwe.exceptions import DataValidationError

    path = tmp_path / "scans.csv"
    _frame().to_csv(path, index=False)
    ev = load_evaluation_set(path, {"scores": {"1.0": "s"}, "label": "y"})
    path.write_text(path.read_text() + "CTX,P9,0.5,0.5,1,2024-06-01,A,GE,F,50,20\n")
    with pytest.raises(DataValidationError, match="the file changed after it was read"):
        provenance(ev)
