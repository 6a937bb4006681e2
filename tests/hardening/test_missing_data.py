"""Data that leave a planned analysis without an answer (an attribute the reference lacks or
nobody has a value for, labels of one class): ``rwe validate`` refuses them in one line each,
and the dossier's check is "not_evaluable" with the reason, never "pass"."""

from __future__ import annotations

import pandas as pd
import pytest
from hardening_corpus import BASE_PROTOCOL, N_ROWS, TINY_REFERENCE, Case, assert_refused, tiny_csv

from rwe._evidence import STATUS_NOT_EVALUABLE, STATUS_PASS
from rwe.dossier._analyses import result_verdicts
from rwe.representativeness import (
    FLAG_NO_DATA,
    FLAG_NOT_IN_REFERENCE,
    representativeness,
    unevaluable_attributes,
)

VALIDATE = ("validate", "{p}")
NO_RACE = "".join(line + "\n" for line in TINY_REFERENCE.splitlines()
                  if not line.startswith("race"))

CASES = [
    Case("lacks_a_compared_attribute", files={"ref.csv": NO_RACE}, argv=VALIDATE,
         expect=["{p}:18: population.attributes[1]: attribute 'race' cannot be compared with the "
                 "reference population: reference 'tiny_ref' does not define it (it defines sex)"]),
    Case("fallback_attributes_lack_site", BASE_PROTOCOL.replace(
        "  attributes: [sex, race]\nsubgroups:\n  attributes: [sex, race]",
        "subgroups:\n  attributes: [sex, site]"), argv=VALIDATE,
        expect=["{p}:19: subgroups.attributes[1]: attribute 'site' cannot be compared with the "
                "reference population: reference 'tiny_ref' does not define it"]),
    Case("labels_all_zero", files={"data.csv": tiny_csv(label=lambda i: 0)}, argv=VALIDATE,
         expect=["{p}:12: data.columns.label: column 'label' of data.csv is 0 in all 60 rows "
                 "(no event); the performance metrics need both outcomes"]),
    Case("labels_all_one", files={"data.csv": tiny_csv(label=lambda i: 1)}, argv=VALIDATE,
         expect=["data.columns.label: column 'label' of data.csv is 1 in all 60 rows "
                 "(no non-event)"]),
    Case("attribute_entirely_empty", files={"data.csv": tiny_csv(race=lambda i: "")},
         argv=VALIDATE, lines=2,
         expect=["{p}:20: subgroups.attributes[1]: attribute 'race' has no value in any of the 60 "
                 "rows of data.csv; its subgroups cannot be evaluated",
                 "{p}:18: population.attributes[1]: attribute 'race' cannot be compared with the "
                 "reference population: no value in any of the 60 rows of data.csv"]),
    Case("site_entirely_empty", BASE_PROTOCOL.replace("  attributes: [sex, race]\n  min_n",
                                                      "  attributes: [sex, race, site]\n  min_n"),
         files={"data.csv": tiny_csv(site=lambda i: "")}, argv=VALIDATE,
         expect=["subgroups.attributes[2]: attribute 'site' has no value in any of the 60 rows"]),
    Case("intersection_component_empty",
         BASE_PROTOCOL.replace("    attributes: [sex, race]\n", "    attributes: [sex, race, "
                               "smoker]\n").replace("  min_n: 5\n", "  min_n: 5\n  intersections: "
                                                    "[[sex, smoker]]\n"),
         files={"data.csv": tiny_csv(smoker=lambda i: "")}, argv=VALIDATE,
         expect=["subgroups.intersections[0][1]: attribute 'smoker' has no value in any of the 60 "
                 "rows"]),
    Case("labels_one_class_and_attribute_empty",
         files={"data.csv": tiny_csv(label=lambda i: 0, race=lambda i: "")}, argv=VALIDATE,
         lines=3, expect=["data.columns.label", "subgroups.attributes[1]",
                          "population.attributes[1]"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_unanswerable_data_are_refused(case, ws, capsys):
    assert_refused(case, ws, capsys)


# --- the verdict: "not_evaluable" with its reason, never "pass" ----------------------------
def _cohort(**columns) -> pd.DataFrame:
    return pd.DataFrame({"sex": ["F", "M"] * (N_ROWS // 2),
                         "race": ["White", "Black", "Asian"] * (N_ROWS // 3)} | columns)


def _ppr_verdicts(rep) -> dict[str, dict]:
    verdicts = [v.to_dict() for v in result_verdicts("representativeness", rep)]
    return {v["criterion"].split(":")[0]: v for v in verdicts if v["id"].startswith(
        "representativeness.check.ppr-")}


REFERENCE = {"sex": {"F": 0.5, "M": 0.5}, "race": {"White": 0.6, "Black": 0.3, "Asian": 0.1}}


def test_attribute_absent_from_the_reference_is_not_evaluated():
    rep = representativeness(_cohort(), reference={"sex": REFERENCE["sex"]},
                             attributes=["sex", "race"])
    race = rep.shares[rep.shares["attribute"] == "race"]
    assert (race["flag"] == FLAG_NOT_IN_REFERENCE).all() and race["reference_share"].isna().all()
    v = _ppr_verdicts(rep)
    assert v["sex"]["status"] == STATUS_PASS  # F and M at 50% exactly
    assert v["race"]["status"] == STATUS_NOT_EVALUABLE
    assert v["race"]["reason"] == "reference 'custom' does not define race"


def test_attribute_with_no_observed_value_is_not_evaluated():
    rep = representativeness(_cohort(race=[None] * N_ROWS), reference=REFERENCE,
                             attributes=["sex", "race"])
    race = rep.shares[rep.shares["attribute"] == "race"]
    assert (race["flag"] == FLAG_NO_DATA).all() and (race["n"] == 0).all()
    v = _ppr_verdicts(rep)["race"]
    assert v["status"] == STATUS_NOT_EVALUABLE
    assert v["reason"] == "race is missing for every row of the cohort"
    assert "race: missing for every cohort row; its representativeness cannot be evaluated" \
        in rep.finding_texts()


def test_both_reasons_are_given():
    rep = representativeness(_cohort(race=[None] * N_ROWS), reference={"sex": REFERENCE["sex"]},
                             attributes=["race"])
    v = _ppr_verdicts(rep)["race"]
    assert v["status"] == STATUS_NOT_EVALUABLE
    assert v["reason"] == ("reference 'custom' does not define race and race is "
                           "missing for every row of the cohort")


def test_unevaluable_attributes_names_each_reason():
    cohort = _cohort(race=[None] * N_ROWS, site=["A", "B"] * (N_ROWS // 2))
    assert unevaluable_attributes(cohort, REFERENCE, ["sex", "race", "site"]) == {
        "race": f"no value in any of the {N_ROWS} rows of <DataFrame>",
        "site": "reference 'custom' does not define it (it defines sex, race)"}
    assert unevaluable_attributes(_cohort(), REFERENCE, ["sex", "race"]) == {}


def test_derived_age_bands_of_the_reference_are_not_reported_missing():
    """An age band the reference lacks but can derive from its 5-year groups is evaluable,
    exactly as representativeness() derives it."""
    ref = {"age": {"40-44": 0.25, "45-49": 0.25, "50-54": 0.25, "55+": 0.25}}
    cohort = pd.DataFrame({"age_band": ["<50", "50+"] * 10})
    assert unevaluable_attributes(cohort, ref, ["age_band"]) == {}
    rep = representativeness(cohort, reference=ref, attributes=["age_band"])
    assert _ppr_verdicts(rep)["age_band"]["status"] == STATUS_PASS
