"""The protocol's drift section: strict, line-numbered errors naming the field (as the rest of
the protocol), and drift_from_protocol's one signature."""

from __future__ import annotations

from pathlib import Path

import pytest

from rwe.exceptions import ProtocolError
from rwe.protocol import load_protocol

ROOT = Path(__file__).resolve().parents[2]


def _protocol(tmp_path, old: str, new: str) -> Path:
    text = (ROOT / "protocols" / "demo.yaml").read_text()
    assert old in text, old
    text = text.replace("../datasets/", str(ROOT / "datasets") + "/").replace(old, new)
    p = tmp_path / "p.yaml"
    p.write_text(text)
    return p


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


@pytest.mark.parametrize("old, new, field, message", [
    ("tests: [psi, ks, wasserstein, chi2, js, classifier]",
     "tests: [psi, kss, wasserstein, chi2, js, classifier]", "drift.tests[1]",
     "unknown drift test 'kss'; did you mean 'ks'?"),
    ("tests: [psi, ks, wasserstein, chi2, js, classifier]", "tests: [psi, ks]",
     "drift.thresholds.wasserstein", "a threshold for 'wasserstein', which is not in "
     "drift.tests (psi, ks)"),
    ("features: [age, nodule_size_mm, pack_years, sex, smoking_status]",
     "features: [age, nodule_size, pack_years, sex, smoking_status]", "drift.features[1]",
     "drift feature 'nodule_size' is not a column the data section loads"),
    ("metrics: [auroc, sensitivity, specificity, calibration_intercept",
     "metrics: [auroc, sensitivty, specificity, calibration_intercept", "drift.metrics[1]",
     "unknown metric 'sensitivty'; did you mean 'sensitivity'?"),
    ("arl0: 370, params: {k: 0.5}, by: [site],",
     "arl0: 370, params: {k: 0.5, h: 4.0}, by: [site],", "drift.alerts[0]",
     "give arl0 or params.h, not both"),
    ("arl0: 370, params: {k: 0.5}, by: [site],", "params: {k: 0.5}, by: [site],",
     "drift.alerts[0]", "give arl0 (the target in-control ARL) or params.h"),
    ("arl0: 370, params: {k: 0.5}, by: [site],", "arl0: 370, params: {lambda: 0.5}, by: [site],",
     "drift.alerts[0]", "params 'lambda' is not a parameter of cusum (allowed: k, h)"),
    ("arl0: 370, params: {k: 0.5}, by: [site],", "arl0: 1, params: {k: 0.5}, by: [site],",
     "drift.alerts[0].arl0", "Input should be greater than 1"),
    ("decision: effect", "decision: pvalue", "drift.decision", "Input should be 'effect' or "
     "'effect_and_pvalue'"),
    ("reference: reference_rows", "reference: reference_row", "drift.reference",
     "Input should be 'reference_rows' or 'reference_period'"),
])
def test_bad_drift_sections_are_refused_with_file_line_and_field(tmp_path, old, new, field,
                                                                 message):
    p = _protocol(tmp_path, old, new)
    with pytest.raises(ProtocolError) as e:
        load_protocol(p)
    lines = e.value.messages
    hit = [x for x in lines if f": {field}: " in x and message in x]
    assert len(hit) == 1, lines
    assert all(x.startswith(f"{p}:") and "\n" not in x for x in lines)


def test_the_demo_drift_section_is_valid_and_drives_the_analysis():
    p = load_protocol(ROOT / "protocols" / "demo.yaml")
    d = p.drift
    assert d.reference == "reference_rows" and d.window == "month"
    assert [a.method for a in d.alerts] == ["cusum", "cusum", "ewma"]
    from rwe.drift._drift import drift_kwargs

    kw = drift_kwargs(p)
    assert kw["by"] == ["site", "scanner_vendor", "sex"] and kw["threshold"] == 0.15
    assert len(kw["reference"]) == 20_000  # the training snapshot's rows
    assert kw["alerts"][0]["_source"].endswith("drift.alerts[0]")
