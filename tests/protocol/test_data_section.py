"""The protocol's data section: column roles (rwe.data.ColumnRoles), with line-numbered
errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rwe.data import ColumnRoles, ParquetSource
from rwe.exceptions import ProtocolError
from rwe.protocol import load_protocol

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "protocols" / "demo.yaml"
BAND = "age_band: {from: age, cuts: [50, 65, 80]}"


def _messages(tmp_path, text: str) -> tuple[Path, list[str]]:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(ProtocolError) as info:
        load_protocol(path)
    return path, info.value.messages


def _line_of(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), 1) if needle in ln)


def test_typo_in_a_column_role_has_line_and_suggestion(tmp_path):
    text = DEMO.read_text().replace("    scores:\n", "    scroes:\n")
    path, msgs = _messages(tmp_path, text)
    assert msgs == [
        f"{path}:{_line_of(text, 'scroes:')}: data.columns.scroes: unknown key 'scroes'; did you "
        "mean 'scores'? (allowed: id, patient_id, scores, label, time, event, timestamp, site, "
        "equipment, attributes, features)"]


def test_roles_are_column_roles_with_derived_attributes_and_the_hash_is_unchanged():
    p = load_protocol(DEMO)
    assert isinstance(p.data.columns, ColumnRoles)
    roles = p.roles()
    assert isinstance(roles, ColumnRoles) and roles.attributes[-1] == "age_band"
    assert p.data.columns.attributes == ("sex", "race", "ethnicity", "smoking_status")
    # the canonical form (hashed) still writes the roles as the YAML does
    raw = yaml.safe_load(DEMO.read_text())["data"]["columns"]
    assert p.model_dump(mode="json", by_alias=True, exclude_unset=True)["data"]["columns"] == raw
    src = p.data_source()
    assert isinstance(src, ParquetSource) and src.path == (ROOT / "datasets/demo/demo.parquet")


def test_outcome_and_score_rules_are_the_data_sections(tmp_path):
    text = DEMO.read_text().replace('      "1.0": score_v1_0\n      "1.1": score_v1_1\n', "")
    text = text.replace("    scores:\n", "    scores: {}\n")
    path, msgs = _messages(tmp_path, text)
    assert msgs == [f"{path}:{_line_of(text, 'columns:')}: data.columns: give at least one score "
                    "column (scores: {version: column})"]
    text = DEMO.read_text().replace("path: ../datasets/demo/demo.parquet", "path: '  '")
    path, msgs = _messages(tmp_path, text)
    assert msgs[0].startswith(f"{path}:{_line_of(text, 'path:')}: data.path: the path is empty")
