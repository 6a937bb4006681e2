"""The protocol's change_control section: strict schema, line-numbered cross-reference errors,
the gate-keeping steps, and the plan hash a ledger is bound to."""

from __future__ import annotations

from pathlib import Path

import pytest

from rwe.exceptions import ProtocolError
from rwe.protocol import load_protocol

BASE = """\
name: cc
device: {name: T, version: "1", intended_use: u, intended_use_population: p}
data:
  path: data.csv
  columns:
    id: case
    scores: {"1.0": s10, "1.1": s11}
    label: y
    attributes: [sex, site]
performance:
  metrics: [auroc]
  threshold: 0.5
subgroups:
  attributes: [sex]
change_control:
  original_version: "1.0"
  reference_version: "1.0"
  candidate_version: "1.1"
CC
report:
  title: t
"""


def _load(tmp_path, cc: str):
    (tmp_path / "data.csv").write_text("case,s10,s11,y,sex,site\n")
    p = tmp_path / "p.yaml"
    p.write_text(BASE.replace("CC\n", cc))
    return p, p.read_text()


def _errors(tmp_path, cc: str) -> tuple[Path, list[str], str]:
    p, text = _load(tmp_path, cc)
    with pytest.raises(ProtocolError) as e:
        load_protocol(p)
    return p, e.value.messages, text


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize("cc, needle, message", [
    ("  margins: {auroc: 0.02}\n  criteira: []\n", "criteira",
     "change_control.criteira: unknown key 'criteira'; did you mean 'criteria'?"),
    ("  criteria:\n    - {metric: auroc}\n", "metric: auroc",
     "change_control.criteria[0]: a noninferiority criterion needs a margin"),
    ("  criteria:\n    - {metric: auroc, test: goal}\n", "metric: auroc",
     "change_control.criteria[0]: a goal criterion needs a goal"),
    ("  criteria:\n    - {metric: auroc, test: superiority, margin: 0.1}\n", "metric: auroc",
     "change_control.criteria[0]: a superiority criterion takes no margin"),
    ("  criteria:\n    - {metric: auroc, test: goal, goal: 0.8, against: current}\n",
     "metric: auroc", "change_control.criteria[0]: a goal criterion judges the candidate "
                      "alone: it takes no against"),
    ("  criteria:\n    - {metric: ppv, margin: 0.1}\n", "metric: ppv",
     "change_control.criteria[0].metric: change control compares auroc, sensitivity, "
     "specificity, calibration_slope, calibration_intercept on the same cases; 'ppv' is not "
     "one of them"),
    ("  criteria:\n    - {metric: sensitivty, margin: 0.1}\n", "sensitivty",
     "change_control.criteria[0].metric: unknown metric 'sensitivty'; did you mean "
     "'sensitivity'?"),
    ("  criteria:\n    - {metric: calibration_slope, test: goal, goal: 1}\n",
     "calibration_slope", "change_control.criteria[0].test: calibration_slope has a target "
                          "value (1), not a direction"),
    ("  criteria:\n    - {metric: auroc, test: goal, goal: 1.5}\n", "goal: 1.5",
     "change_control.criteria[0].goal: a goal for auroc must lie in [0, 1], got 1.5"),
    ("  margins: {auroc: 0.02}\n  criteria:\n    - {metric: auroc, margin: 0.01}\n",
     "margin: 0.01", "change_control.criteria[0].metric: criterion name 'auroc' is used twice "
                     "(first at change_control.margins.auroc)"),
    ("  margins: {auroc: 0.02}\n  order: [auroc, sensitivity]\n", "order:",
     "change_control.order[1]: 'sensitivity' in the testing order is not a criterion (margins "
     "or criteria) (criteria: auroc)"),
    ("  margins: {auroc: 0.02, sensitivity: 0.03}\n  order: [[auroc, auroc]]\n", "order:",
     "change_control.order[0][1]: criterion 'auroc' appears twice in the testing order"),
    ("  margins: {auroc: 0.02}\n  criteria:\n    - {metric: sensitivity, test: superiority, "
     "required: false}\n  order: [sensitivity_superiority, auroc]\n", "required: false",
     "change_control.criteria[0].required: secondary criterion 'sensitivity_superiority' "
     "(required: false) is tested before a required one"),
    ("  margins: {auroc: 0.02}\n  subgroups: [sex, agegroup]\n", "subgroups: [sex",
     "change_control.subgroups[1]: attribute 'agegroup' is not declared in data.columns"),
    ("  margins: {auroc: 0.02}\n  subgroups: [[sex]]\n", "subgroups: [[sex]]",
     "change_control.subgroups[0]: an intersection needs two or more distinct attributes"),
    ("  margins: {auroc: 0.02}\n  test_set: {sha256: abc}\n", "sha256: abc",
     "change_control.test_set.sha256: a sha256 is 64 lowercase hexadecimal digits, got 'abc'"),
    ("  margins: {auroc: 0.02}\n  test_set: {path: gone.csv}\n", "gone.csv",
     "change_control.test_set.path: test set file 'gone.csv' not found (relative to the "
     "protocol)"),
    ("  margins: {auroc: 0.02}\n  models:\n    \"1.2\": {weights_sha256: " + "a" * 64 +
     ", scores: {path: s12.csv, column: s}}\n", "s12.csv",
     "change_control.models.1.2.scores.path: score file 's12.csv' not found"),
    ("  margins: {auroc: 0.02}\n  models:\n    \"1.0\": {weights_sha256: XYZ}\n", "XYZ",
     "change_control.models.1.0.weights_sha256: a sha256 is 64 lowercase hexadecimal digits"),
    ("  margins: {auroc: 0.02}\n  online: {procedure: saffron, w0: 0.02}\n", "saffron",
     "change_control.online.w0: SAFFRON's initial wealth must be at most (1 - lambda) alpha = "
     "0.0125, got 0.02"),
    ("  margins: {auroc: 0.02}\n  online: {procedure: lord}\n", "lord",
     "change_control.online.procedure: Input should be 'fixed', 'lord++', 'alpha_investing' or "
     "'saffron'"),
    ("  alpha: 0.025\n", "alpha: 0.025",
     "change_control: give at least one acceptance criterion (margins or criteria)"),
])
def test_change_control_errors_name_file_line_and_field(tmp_path, cc, needle, message):
    p, msgs, text = _errors(tmp_path, cc)
    line = _line(text, needle)
    prefix = f"{p}:{line}: " if not message.startswith("change_control: ") else f"{p}:"
    assert any(m.startswith(prefix) and message in m for m in msgs), (prefix, message, msgs)


def test_versions_may_come_from_score_files(tmp_path):
    (tmp_path / "s12.csv").write_text("case,s\n")
    p, _ = _load(tmp_path, "  margins: {auroc: 0.02}\n  candidate_version: \"1.2\"\n"
                 .replace("  candidate_version: \"1.2\"\n", "") +
                 "  models:\n    \"1.2\": {weights_sha256: " + "a" * 64 +
                 ", scores: {path: s12.csv, column: s}}\n")
    text = p.read_text().replace('candidate_version: "1.1"', 'candidate_version: "1.2"')
    p.write_text(text)
    proto = load_protocol(p)
    assert proto.change_control.candidate_version == "1.2"
    text = text.replace('candidate_version: "1.2"', 'candidate_version: "1.3"')
    p.write_text(text)
    with pytest.raises(ProtocolError) as e:
        load_protocol(p)
    assert e.value.messages == [
        f"{p}:{_line(text, 'candidate_version')}: change_control.candidate_version: version "
        "'1.3' is not a key of data.columns.scores; did you mean '1.2'? (versions: 1.0, 1.1; "
        "score files in change_control.models: 1.2)"]


def test_plan_hash_ignores_what_may_change_between_updates(tmp_path):
    from rwe.change_control import compare_plan

    p, text = _load(tmp_path, "  margins: {auroc: 0.02}\n  ledger: l.jsonl\n")
    base = compare_plan(load_protocol(p))
    variants = {
        "candidate": text.replace('candidate_version: "1.1"', 'candidate_version: "1.0x"')
        .replace('scores: {"1.0": s10, "1.1": s11}', 'scores: {"1.0": s10, "1.1": s11, '
                 '"1.0x": s11}'),
        "ledger path": text.replace("ledger: l.jsonl", "ledger: other.jsonl"),
        "a new score column": text.replace('scores: {"1.0": s10, "1.1": s11}',
                                           'scores: {"1.0": s10, "1.1": s11, "1.2": s11}'),
    }
    for what, t in variants.items():
        p.write_text(t)
        assert compare_plan(load_protocol(p)) == base, what
    changed = {
        "margin": text.replace("auroc: 0.02", "auroc: 0.03"),
        "threshold": text.replace("threshold: 0.5", "threshold: 0.4"),
        "subgroups": text.replace("attributes: [sex]\n", "attributes: [sex, site]\n"),
        "alpha": text.replace("  ledger: l.jsonl", "  ledger: l.jsonl\n  alpha: 0.01"),
    }
    for what, t in changed.items():
        p.write_text(t)
        assert compare_plan(load_protocol(p)) != base, what
