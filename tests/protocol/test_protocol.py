"""Protocol loading: strict schema, line-numbered errors, cross-references, canonical hash."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from rwe.exceptions import ProtocolError
from rwe.protocol import SECTIONS, Protocol, load_protocol, protocol_from_dict

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "protocols" / "demo.yaml"


def _write(tmp_path, text: str, name: str = "p.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _demo_text() -> str:
    return DEMO.read_text()


def _messages(path) -> list[str]:
    with pytest.raises(ProtocolError) as info:
        load_protocol(path)
    return info.value.messages


def _line_of(text: str, needle: str) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(needle)


def test_demo_protocol_loads():
    p = load_protocol(DEMO)
    assert isinstance(p, Protocol)
    assert p.version == "1.0" and p.performance.threshold == 0.15
    assert p.path == DEMO.resolve()
    assert p.resolve(p.data.path) == (ROOT / "datasets/demo/demo.parquet").resolve()
    roles = p.roles()
    assert roles.scores == {"1.0": "score_v1_0", "1.1": "score_v1_1"}
    assert "age_band" in roles.attributes
    assert set(p.report.sections) == set(SECTIONS)
    assert re.fullmatch(r"[0-9a-f]{64}", p.sha256)
    assert re.fullmatch(r"[0-9a-f]{64}", p.file_sha256)


def test_sha256_is_of_the_canonical_form(tmp_path):
    text = _demo_text()
    base = load_protocol(DEMO).sha256
    # comments, blank lines, flow vs block style and key order do not change it
    data = yaml.safe_load(text)
    reordered = dict(reversed(list(data.items())))
    p2 = _write(tmp_path, "# a comment\n\n" + yaml.safe_dump(reordered, sort_keys=False,
                                                            default_flow_style=True))
    # relative paths: keep the file next to the demo's so they mean the same thing
    assert load_protocol(p2).sha256 == base
    assert load_protocol(p2).file_sha256 != load_protocol(DEMO).file_sha256
    # any change of a setting changes it
    changed = _write(tmp_path, text.replace("threshold: 0.15", "threshold: 0.16"), "c.yaml")
    assert load_protocol(changed).sha256 != base


def test_typo_is_an_error_with_line_number_and_suggestion(tmp_path):
    text = _demo_text().replace("  small_cell_k: 11", "  smal_cell_k: 11")
    path = _write(tmp_path, text)
    line = _line_of(text, "smal_cell_k")
    msgs = _messages(path)
    assert msgs == [f"{path}:{line}: report.smal_cell_k: unknown key 'smal_cell_k'; did you mean "
                    "'small_cell_k'? (allowed: title, sections, small_cell_k, authors, pdf)"]


def test_unknown_top_level_section(tmp_path):
    text = _demo_text() + "\nreportt:\n  title: x\n"
    msgs = _messages(_write(tmp_path, text))
    assert len(msgs) == 1
    assert f":{_line_of(text, 'reportt')}: reportt: unknown key 'reportt'; did you mean 'report'?" \
        in msgs[0]


def test_missing_required_and_wrong_type_reported_together(tmp_path):
    text = _demo_text().replace("  threshold: 0.15\n", "").replace(
        "  confidence_level: 0.95", "  confidence_level: high")
    path = _write(tmp_path, text)
    msgs = _messages(path)
    perf_line = _line_of(text, "performance:")
    lvl_line = _line_of(text, "confidence_level: high")
    assert f"{path}:{perf_line}: performance.threshold: required field is missing" in msgs
    assert any(m.startswith(f"{path}:{lvl_line}: performance.confidence_level: Input should be "
                            "a valid number") and m.endswith("(got 'high')") for m in msgs)
    assert len(msgs) == 2


def test_value_constraints(tmp_path):
    text = _demo_text().replace("cuts: [50, 65, 80]", "cuts: [50, 80, 65]").replace(
        "threshold: 0.15", "threshold: 1.5").replace("proportion_interval: wilson",
                                                     "proportion_interval: wald")
    path = _write(tmp_path, text)
    msgs = "\n".join(_messages(path))
    assert f":{_line_of(text, 'cuts: [50, 80, 65]')}: data.derived.age_band.cuts: cut points must " \
           "be strictly increasing, got [50.0, 80.0, 65.0]" in msgs
    assert "performance.threshold: Input should be less than 1 (got 1.5)" in msgs
    assert "performance.proportion_interval: Input should be 'wilson' or 'clopper-pearson' " \
           "(got 'wald')" in msgs


def test_cross_references_unknown_metric_attribute_version(tmp_path):
    text = (_demo_text()
            .replace("metrics: [sensitivity, specificity,", "metrics: [sensitivty, specificity,")
            .replace("  attributes: [sex, race, ethnicity, age_band, site, scanner_vendor]",
                     "  attributes: [sex, race, ethnicity, age_group, site, scanner_vendor]")
            .replace('  candidate_version: "1.1"', '  candidate_version: "1.2"'))
    path = _write(tmp_path, text)
    msgs = _messages(path)
    m_line = _line_of(text, "metrics: [sensitivty")
    a_line = _line_of(text, "age_group")
    v_line = _line_of(text, 'candidate_version: "1.2"')
    assert msgs[0].startswith(f"{path}:{m_line}: performance.metrics[0]: unknown metric "
                              "'sensitivty'; did you mean 'sensitivity'? (known: accuracy, ")
    assert f"{path}:{a_line}: subgroups.attributes[3]: attribute 'age_group' is not declared in " \
           "data.columns (attributes, site, equipment) or data.derived; did you mean " \
           "'age_band'? (declared: sex, race, ethnicity, smoking_status, age_band, site, " \
           "scanner_vendor)" in msgs
    assert f"{path}:{v_line}: change_control.candidate_version: version '1.2' is not a key of " \
           "data.columns.scores; did you mean '1.1'? (versions: 1.0, 1.1)" in msgs
    # the goal on sensitivity now refers to a metric the protocol does not compute
    assert any("performance.goals[0].metric: goal metric 'sensitivity' is not in "
               "performance.metrics" in m for m in msgs)


def test_unknown_reference_population(tmp_path):
    text = _demo_text().replace("reference: us_census_2020_clinical",
                                "reference: us_census_2021")
    msgs = _messages(_write(tmp_path, text))
    assert len(msgs) == 1 and "population.reference: reference population 'us_census_2021' is " \
        "neither a file (relative to the protocol) nor a bundled reference; did you mean " in msgs[0]


def test_goal_outside_unit_interval_and_negative_margin(tmp_path):
    text = _demo_text().replace("goal: 0.75", "goal: 75").replace("auroc: 0.02", "auroc: -0.02")
    msgs = "\n".join(_messages(_write(tmp_path, text)))
    assert "performance.goals[0].goal: a goal for sensitivity must lie in [0, 1], got 75.0" in msgs
    assert "change_control.margins.auroc: a non-inferiority margin is a non-negative amount, " \
           "got -0.02" in msgs


def test_intersection_needs_two_attributes(tmp_path):
    text = _demo_text().replace("    - [sex, race]\n", "    - [sex]\n")
    msgs = "\n".join(_messages(_write(tmp_path, text)))
    assert "subgroups.intersections: an intersection needs two or more distinct attributes, " \
           "got ['sex']" in msgs


def test_duplicate_key_is_an_error(tmp_path):
    text = _demo_text().replace("  small_cell_k: 11", "  small_cell_k: 11\n  small_cell_k: 5")
    path = _write(tmp_path, text)
    line = _line_of(text, "small_cell_k: 5")
    assert _messages(path) == [f"{path}:{line}: report.small_cell_k: key 'small_cell_k' appears "
                               "more than once"]


def test_yaml_syntax_error_has_line(tmp_path):
    text = _demo_text().replace("  threshold: 0.15", "  threshold: [0.15")
    path = _write(tmp_path, text)
    msgs = _messages(path)
    assert len(msgs) == 1 and re.match(rf"{re.escape(str(path))}:\d+: not valid YAML: ", msgs[0])


@pytest.mark.parametrize("content, expected", [
    ("", "the protocol file is empty"),
    ("- a\n- b\n", "a protocol is a mapping of sections"),
])
def test_empty_or_not_a_mapping(tmp_path, content, expected):
    msgs = _messages(_write(tmp_path, content))
    assert len(msgs) == 1 and expected in msgs[0]


def test_missing_file_and_directory(tmp_path):
    assert _messages(tmp_path / "nope.yaml") == [f"{tmp_path / 'nope.yaml'}: protocol file not found"]
    assert "is a directory" in _messages(tmp_path)[0]


def test_label_or_survival_outcome_required(tmp_path):
    text = _demo_text().replace("    label: malignant\n", "")
    msgs = "\n".join(_messages(_write(tmp_path, text)))
    assert "data.columns: give either label (binary outcome) or both time and event (survival)" \
        in msgs


def test_protocol_from_dict_and_load_data(tmp_path):
    import pandas as pd

    df = pd.DataFrame({"id": range(40), "s": [i / 40 for i in range(40)], "y": [0, 1] * 20,
                       "sex": ["F", "M"] * 20, "age": range(30, 70)})
    df.to_csv(tmp_path / "d.csv", index=False)
    spec = {"name": "t", "device": {"name": "d", "version": "1", "intended_use": "u",
                                    "intended_use_population": "adults"},
            "data": {"path": "d.csv", "columns": {"id": "id", "scores": {"a": "s"}, "label": "y",
                                                  "attributes": ["sex"], "features": ["age"]},
                     "derived": {"age_band": {"from": "age", "cuts": [50]}}},
            "subgroups": {"attributes": ["sex", "age_band"]},
            "performance": {"metrics": ["sensitivity"], "threshold": 0.5},
            "report": {"title": "t"}}
    p = protocol_from_dict(spec, base_dir=tmp_path)
    ev = p.load_data()
    assert ev.n == 40 and list(ev.attribute("age_band").cat.categories) == ["<50", "50+"]
    spec["performance"]["metrics"] = ["harrell_c"]
    with pytest.raises(ProtocolError, match="'harrell_c' is a survival metric"):
        protocol_from_dict(spec, base_dir=tmp_path)


def test_protocol_is_frozen():
    p = load_protocol(DEMO)
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="frozen"):
        p.performance.threshold = 0.5  # type: ignore[misc]


def test_relative_reference_file_resolves_against_the_protocol_not_cwd(tmp_path, monkeypatch):
    proto_dir = tmp_path / "study"
    proto_dir.mkdir()
    (proto_dir / "catchment.csv").write_text(
        "# name: catchment\n# source: test\nattribute,category,share\nsex,F,0.5\nsex,M,0.5\n")
    text = _demo_text().replace("reference: us_census_2020_clinical",
                                "reference: catchment.csv")
    path = _write(proto_dir, text)
    monkeypatch.chdir(tmp_path)  # another working directory
    p = load_protocol(path)
    assert p.reference_path() == (proto_dir / "catchment.csv").resolve()
    assert load_protocol(DEMO).reference_path().name == "us_census_2020_clinical.csv"


def test_covariate_must_be_a_loaded_column(tmp_path):
    text = _demo_text().replace("covariates: [age, pack_years, nodule_size_mm]",
                                "covariates: [age, bmi]")
    path = _write(tmp_path, text)
    line = _line_of(text, "covariates: [age, bmi]")
    assert _messages(path) == [f"{path}:{line}: population.covariates[1]: covariate 'bmi' is not "
                               "a column the data section loads; list it in data.columns.features"]
