"""Bad protocols: every one refused by ``rwe validate`` in one line per problem, naming the file,
the line and the field; pathological YAML refused quickly and in bounded memory."""

from __future__ import annotations

from pathlib import Path

import pytest
from hardening_corpus import BASE_PROTOCOL, Case, assert_refused, check_refusal, run_bounded

from rwe.exceptions import ProtocolError
from rwe.protocol import load_protocol, protocol_from_dict
from rwe.protocol._load import MAX_PROTOCOL_BYTES, MAX_YAML_DEPTH, MAX_YAML_VALUES


def rep(old: str, new: str):
    """An edit of the base protocol that must apply (a stale case fails loudly)."""
    def edit(text: str) -> str:
        assert old in text, f"{old!r} is not in the base protocol"
        return text.replace(old, new, 1)
    return edit


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """Nine levels of nine aliases: 9**9 values once expanded ("billion laughs")."""
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def line_of(needle: str) -> int:
    return next(i for i, line in enumerate(BASE_PROTOCOL.splitlines(), 1) if needle in line)


CASES = [
    # --- schema: keys, types, required fields ------------------------------------------
    Case("unknown_key_did_you_mean", rep("  threshold: 0.5", "  thresold: 0.5"),
         expect=[f"{{p}}:{line_of('threshold')}: performance.thresold: unknown key 'thresold'; "
                 "did you mean 'threshold'?", "performance.threshold: required field is missing"],
         lines=2),
    Case("unknown_section_did_you_mean", rep("performance:", "performace:"),
         expect=["performace: unknown key 'performace'; did you mean 'performance'?",
                 "{p}:1: performance: required field is missing"], lines=2),
    Case("wrong_type_number", rep("threshold: 0.5", "threshold: high"),
         expect=["performance.threshold: Input should be a valid number", "(got 'high')"]),
    Case("wrong_type_list", rep("metrics: [sensitivity, specificity]", "metrics: 3"),
         expect=["performance.metrics: Input should be a valid list"]),
    Case("wrong_type_mapping", rep("device:\n  name: Tiny CADx\n  version: \"1\"\n"
                                   "  intended_use: triage\n  intended_use_population: adults\n",
                                   "device: Tiny CADx\n"),
         expect=["{p}:2: device: Input should be a valid dictionary"]),
    Case("missing_required_field", rep("  name: Tiny CADx\n", ""),
         expect=["{p}:2: device.name: required field is missing"]),
    Case("missing_required_section", rep("report:\n  title: Tiny dossier\n", ""),
         expect=["report: required field is missing"]),
    Case("no_outcome_column", rep("    label: label\n", ""),
         expect=["data.columns: give either label (binary outcome) or both time and event"]),
    Case("empty_scores", rep('scores: {"1": score}', "scores: {}"),
         expect=["data.columns: give at least one score column (scores: {version: column})"]),
    # --- values out of range ---------------------------------------------------------------
    Case("threshold_zero", rep("threshold: 0.5", "threshold: 0"),
         expect=["performance.threshold: Input should be greater than 0"]),
    Case("confidence_level_above_one", rep("threshold: 0.5", "threshold: 0.5\n  confidence_level: 1.5"),
         expect=["performance.confidence_level: Input should be less than 1 (got 1.5)"]),
    Case("n_boot_10_to_the_12", rep("threshold: 0.5", "threshold: 0.5\n  n_boot: 1000000000000"),
         expect=["performance.n_boot: Input should be less than or equal to 100000 "
                 "(got 1000000000000)"]),
    Case("n_boot_too_few", rep("threshold: 0.5", "threshold: 0.5\n  n_boot: 10"),
         expect=["performance.n_boot: Input should be greater than or equal to 50"]),
    Case("min_n_zero", rep("min_n: 5", "min_n: 0"),
         expect=["subgroups.min_n: Input should be greater than or equal to 1"]),
    Case("ppr_band_reversed", rep("  attributes: [sex, race]\nsubgroups:",
                                  "  attributes: [sex, race]\n  ppr_band: [1.2, 0.8]\nsubgroups:"),
         expect=["population.ppr_band: ppr_band must be (low, high) with 0 < low < 1 < high"]),
    Case("smd_threshold_negative", rep("  reference: ref.csv\n",
                                       "  reference: ref.csv\n  smd_threshold: -0.1\n"),
         expect=["population.smd_threshold: Input should be greater than 0"]),
    Case("drift_alpha_two", rep("drift:\n", "drift:\n  alpha: 2\n"),
         expect=["drift.alpha: Input should be less than 1"]),
    Case("empty_data_path", rep("path: data.csv", 'path: ""'),
         expect=[f"{{p}}:{line_of('path: data.csv')}: data.path: String should have at least 1 "
                 "character"]),
    # --- dates -------------------------------------------------------------------------------
    Case("impossible_date_month_13", rep("start: 2024-01-01", "start: 2024-13-45"),
         expect=[f"{{p}}:{line_of('reference_period')}: drift.reference_period.start: Input should "
                 "be a valid date", "month value is outside expected range of 1-12",
                 "(got '2024-13-45')"]),
    Case("impossible_date_feb_30", rep("end: 2024-06-30", "end: 2024-02-30"),
         expect=["drift.reference_period.end: Input should be a valid date",
                 "day value is outside expected range"]),
    Case("period_reversed", rep("{start: 2024-01-01, end: 2024-06-30}",
                                "{start: 2024-06-30, end: 2024-01-01}"),
         expect=["drift.reference_period: end (2024-01-01) is before start (2024-06-30)"]),
    # --- cross-references ----------------------------------------------------------------------
    Case("unknown_metric_did_you_mean", rep("[sensitivity, specificity]", "[sensitivity, specifcity]"),
         expect=["performance.metrics[1]: unknown metric 'specifcity'; did you mean 'specificity'?"]),
    Case("goal_out_of_unit_interval", rep("goal: 0.5", "goal: 1.5"),
         expect=["performance.goals[0].goal: a goal for sensitivity must lie in [0, 1], got 1.5"]),
    Case("goal_metric_not_computed", rep("metric: sensitivity, goal", "metric: auroc, goal"),
         expect=["performance.goals[0].metric: goal metric 'auroc' is not in performance.metrics"]),
    Case("survival_metric_on_binary_outcome",
         rep("[sensitivity, specificity]", "[sensitivity, specificity, harrell_c]"),
         expect=["performance.metrics[2]: 'harrell_c' is a survival metric"]),
    Case("unknown_version", rep("threshold: 0.5", "threshold: 0.5\n  version: \"2\""),
         expect=["performance.version: version '2' is not a key of data.columns.scores"]),
    Case("unknown_attribute_did_you_mean", rep("  attributes: [sex, race]\n  min_n",
                                               "  attributes: [sex, rcae]\n  min_n"),
         expect=["subgroups.attributes[1]: attribute 'rcae' is not declared", "did you mean 'race'?"]),
    Case("intersection_of_one_attribute_twice",
         rep("  min_n: 5\n", "  min_n: 5\n  intersections: [[sex, sex]]\n"),
         expect=["subgroups.intersections: an intersection needs two or more distinct attributes, "
                 "got ['sex', 'sex']"]),
    Case("unknown_reference_population", rep("reference: ref.csv", "reference: census_2021"),
         expect=["population.reference: reference population 'census_2021' is neither a file",
                 "bundled: us_census_2020"]),
    Case("covariate_not_loaded", rep("  reference: ref.csv\n",
                                     "  reference: ref.csv\n  covariates: [bmi]\n"),
         expect=["population.covariates[0]: covariate 'bmi' is not a column the data section loads"]),
    Case("derived_band_replaces_a_column", rep("    features: [age]\n",
                                               "    features: [age]\n  derived:\n"
                                               "    sex: {from: age, cuts: [50]}\n"),
         expect=["data.derived.sex: derived attribute 'sex' would replace the data column"]),
    Case("cuts_not_increasing", rep("    features: [age]\n",
                                    "    features: [age]\n  derived:\n"
                                    "    age_band: {from: age, cuts: [65, 50]}\n"),
         expect=["data.derived.age_band.cuts: cut points must be strictly increasing"]),
    Case("change_control_same_versions",
         rep("report:", 'change_control:\n  original_version: "1"\n  reference_version: "1"\n'
                        '  candidate_version: "1"\n  margins: {auroc: 0.02}\nreport:'),
         expect=["change_control.candidate_version: candidate_version must differ from "
                 "reference_version"]),
    Case("unknown_report_section", rep("  title: Tiny dossier\n",
                                       "  title: Tiny dossier\n  sections: [subgroups, fairness]\n"),
         expect=["report.sections[1]: Input should be 'representativeness'"]),
    Case("report_section_twice", rep("  title: Tiny dossier\n",
                                     "  title: Tiny dossier\n  sections: [subgroups, subgroups]\n"),
         expect=["report.sections[1]: section 'subgroups' is listed twice"]),
    Case("duplicate_key", rep("  threshold: 0.5\n", "  threshold: 0.5\n  threshold: 0.6\n"),
         expect=[f"{{p}}:{line_of('threshold') + 1}: performance.threshold: key 'threshold' "
                 "appears more than once"]),
    # --- YAML --------------------------------------------------------------------------------
    Case("yaml_unclosed_list", rep("threshold: 0.5", "threshold: [0.5"),
         expect=["{p}:", ": not valid YAML: "]),
    Case("yaml_tab_indentation", rep("  threshold: 0.5", "\tthreshold: 0.5"),
         expect=[f"{{p}}:{line_of('threshold')}: not valid YAML: found character '\\t'"]),
    Case("yaml_undefined_alias", rep("threshold: 0.5", "threshold: *nope"),
         expect=[f"{{p}}:{line_of('threshold')}: not valid YAML: found undefined alias 'nope'"]),
    Case("yaml_two_documents", BASE_PROTOCOL + "---\nname: other\n",
         expect=["not valid YAML: expected a single document in the stream, but found another "
                 "document"]),
    Case("yaml_python_object_tag", rep("name: tiny", "name: !!python/object/apply:os.system [id]"),
         expect=["{p}:1: not valid YAML: could not determine a constructor for the tag"]),
    Case("yaml_bad_int_tag", rep("min_n: 5", "min_n: !!int five"),
         expect=[f"{{p}}:{line_of('min_n')}: not valid YAML: invalid literal for int()"]),
    Case("yaml_int_of_5000_digits", rep("threshold: 0.5", "threshold: 0.5\n  seed: " + "9" * 5000),
         expect=["not valid YAML: Exceeds the limit (4300 digits) for integer string conversion"],
         absent=["set_int_max_str_digits"]),
    Case("yaml_unhashable_key", "? [a, b]\n: 1\n" + BASE_PROTOCOL,
         expect=["{p}:1: not valid YAML: found unhashable key"]),
    Case("yaml_recursive_alias", "x: &a [*a]\n",
         expect=["{p}:1: alias *a refers to the value that contains it (a recursive alias)"]),
    Case("yaml_recursive_alias_in_mapping", "x: &a {y: *a}\n",
         expect=["{p}:1: alias *a refers to the value that contains it"]),
    Case("yaml_nested_20000_levels_flow", "x: " + "[" * 20_000 + "]" * 20_000 + "\n",
         expect=[f"{{p}}:1: the YAML is nested more than {MAX_YAML_DEPTH} levels deep"]),
    Case("yaml_nested_200_levels_block",
         "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "v\n",
         expect=[f"the YAML is nested more than {MAX_YAML_DEPTH} levels deep"]),
    Case("yaml_alias_bomb", alias_bomb(),
         expect=[f"the YAML holds more than {MAX_YAML_VALUES:,} values once its aliases (*name) "
                 "are expanded"]),
    Case("yaml_too_many_values", "name: [" + ", ".join(["1"] * 30_000) + "]\n",
         expect=[f"{{p}}:1: the YAML holds more than {MAX_YAML_VALUES:,} values; a protocol is "
                 "limited"]),
    Case("file_over_1_mb", "name: x\n" + "#" * (MAX_PROTOCOL_BYTES + 10) + "\n",
         expect=[f"{{p}}: the file has {MAX_PROTOCOL_BYTES + 19:,} bytes; a protocol is a "
                 "human-written plan and is limited to 1,000,000 bytes (1 MB)"]),
    # --- not a protocol at all ------------------------------------------------------------------
    Case("empty_file", "", expect=["{p}: the protocol file is empty"]),
    Case("comments_only", "# to do\n", expect=["{p}: the protocol file is empty"]),
    Case("top_level_list", "- a\n- b\n",
         expect=["{p}: a protocol is a mapping of sections (name, device, data, ...), got list"]),
    Case("plain_text", "TOPSECRET the first line of some file\n",
         expect=["a protocol is a mapping of sections", "got str"], absent=["TOPSECRET"]),
    Case("foreign_yaml_keys_not_echoed", "password: TOPSECRET\napi_key: hunter2\n",
         expect=["{p}: not an rwe protocol: none of its 2 top-level key(s) is one of the "
                 "sections device, data, population, subgroups, performance, drift, "
                 "change_control, federation, report"], absent=["TOPSECRET", "hunter2", "password", "api_key"]),
    Case("compose_file_with_a_name_not_echoed",
         "name: web\nservices:\n  db: {image: TOPSECRET, environment: {PW: hunter2}}\n",
         expect=["{p}: not an rwe protocol: none of its 2 top-level key(s) is one of the "
                 "sections device, data"],
         absent=["TOPSECRET", "hunter2", "services"]),
    Case("binary_file", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR TOPSECRET",
         expect=["{p}: not UTF-8 text (invalid start byte at byte 0)"], absent=["TOPSECRET"]),
    Case("nul_character", "name: a\x00b\n" + BASE_PROTOCOL,
         expect=["{p}", "not valid YAML: unacceptable character #x0000"]),
    Case("file_not_found", argv=("validate", "{d}/missing.yaml"),
         expect=["{d}/missing.yaml: protocol file not found"]),
    Case("directory", argv=("validate", "{d}"),
         expect=["{d}: is a directory, expected a YAML protocol file"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_protocol_is_refused(case, ws, capsys):
    assert_refused(case, ws, capsys)


def test_the_base_protocol_is_valid(ws, capsys):
    """The corpus edits a protocol that passes, with its data: each refusal is the edit's."""
    from hardening_corpus import run_cli

    p = ws.protocol()
    code, out, err = run_cli(["validate", str(p)], capsys)
    assert (code, err) == (0, "") and f"OK  {p}: protocol valid" in out


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_an_endless_file_is_refused(ws, capsys):
    case = Case("dev_zero", argv=("validate", "/dev/zero"),
                expect=["/dev/zero: the file has more than 1,000,000 bytes"])
    assert_refused(case, ws, capsys)


# --- bounded in time and memory: a child process, 2 GB address space, 5 s -----------------
BOUNDED = [
    ("alias_bomb", alias_bomb(), "values once its aliases (*name) are expanded"),
    ("forty_megabytes", "name: x\ndescription: " + "x" * 40_000_000 + "\n",
     "is limited to 1,000,000 bytes (1 MB)"),
    ("nested_20000_levels", "x: " + "[" * 20_000 + "]" * 20_000 + "\n", "levels deep"),
    ("recursive_alias", "x: &a [*a]\n", "recursive alias"),
]


@pytest.mark.parametrize("name, text, message", BOUNDED, ids=[b[0] for b in BOUNDED])
def test_pathological_yaml_is_refused_quickly(name, text, message, tmp_path):
    """Before the fix the alias bomb grew to about 3 GB within 20 s (the line-number walk
    expanded every alias) and a 40 MB protocol took 29 s; now each is refused in milliseconds.
    The 5 s bound is of the child's CPU time and includes starting the interpreter (wall
    time failed it on a loaded machine: 6.5 s at load ~8)."""
    p = tmp_path / f"{name}.yaml"
    p.write_text(text)
    code, out, err, seconds = run_bounded(["validate", "--no-data", str(p)], tmp_path)
    check_refusal(code, out, err, lines=1, expect=[str(p), message])
    assert seconds < 5, f"took {seconds:.1f} s of CPU"


def test_the_python_api_raises_protocol_error_quickly(tmp_path):
    p = tmp_path / "bomb.yaml"
    p.write_text(alias_bomb())
    with pytest.raises(ProtocolError, match="values once its aliases") as info:
        load_protocol(p)
    assert len(info.value.messages) == 1


def test_protocol_from_dict_refuses_a_foreign_mapping():
    with pytest.raises(ProtocolError) as info:
        protocol_from_dict({"password": "TOPSECRET"})
    assert info.value.messages == [
        "<protocol>: not an rwe protocol: none of its 1 top-level key(s) is one of the sections "
        "device, data, population, subgroups, performance, drift, change_control, federation, report"]


def test_aliases_within_the_bound_still_work(ws):
    """Anchors, aliases and merge keys are legitimate YAML: a protocol using them loads."""
    text = BASE_PROTOCOL.replace("name: tiny\n", "name: tiny\ndescription: &d a tiny plan\n")
    text = text.replace("  intended_use: triage\n", "  intended_use: triage\n  description: *d\n")
    text = text.replace("    - {metric: sensitivity, goal: 0.5}\n",
                        "    - &g {metric: sensitivity, goal: 0.5}\n"
                        "    - {<<: *g, scope: subgroups}\n")
    proto = load_protocol(ws.protocol(text))
    assert proto.device.description == proto.description == "a tiny plan"
    assert [(g.metric, g.goal, g.scope) for g in proto.performance.goals] == [
        ("sensitivity", 0.5, "overall"), ("sensitivity", 0.5, "subgroups")]


def test_a_value_reached_twice_through_an_alias_is_reported_twice(ws):
    """The line-number walk visits an aliased node once, yet every location is still
    reported (at the anchor's line: PyYAML gives both the same node)."""
    text = BASE_PROTOCOL.replace("    - {metric: sensitivity, goal: 0.5}\n",
                                 "    - &g {metric: sensitivity, goal: 1.5}\n    - *g\n")
    p = ws.protocol(text)
    with pytest.raises(ProtocolError) as info:
        load_protocol(p)
    line = text.splitlines().index("    - &g {metric: sensitivity, goal: 1.5}") + 1
    assert info.value.messages == [
        f"{p}:{line}: performance.goals[{i}].goal: a goal for sensitivity must lie in [0, 1], "
        "got 1.5" for i in (0, 1)]


def test_a_goal_description_that_contradicts_the_rule_is_refused(tmp_path):
    from pathlib import Path

    from rwe.exceptions import ProtocolError
    from rwe.protocol import load_protocol

    src = Path("protocols/demo.yaml").read_text().replace(
        "lower 95% bound > 0.75, overall", "lower 95% bound >= 0.75, overall")
    p = tmp_path / "demo.yaml"
    p.write_text(src)
    with pytest.raises(ProtocolError) as info:
        load_protocol(p)
    msg = str(info.value)
    assert "performance.goals[0].description" in msg and "strictly '>'" in msg
