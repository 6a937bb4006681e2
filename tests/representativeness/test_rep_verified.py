"""Per-attribute verification status of a reference file (issue 14 part 7): a file may state,
attribute by attribute, whether its figures were checked against the published tables; the
findings and caveats then name exactly the attributes that rest on unverified figures."""

from __future__ import annotations

import pandas as pd
import pytest

from rwe.exceptions import ReferenceDataError
from rwe.representativeness import assess_representativeness, load_reference

UNVERIFIED = "reference figures not verified against the published tables"
BODY = ("attribute,category,share,verified\n"
        "race,A,0.6,true\nrace,B,0.4,true\n"
        "sex,F,0.5,false\nsex,M,0.5,false\n"
        "age,0-39,0.5,false\nage,40+,0.5,false\n")


def _file(tmp_path, body=BODY, header="# name: part\n# version: 2\n"):
    p = tmp_path / "part.csv"
    p.write_text(header + body)
    return p


def test_per_attribute_status_is_read(tmp_path):
    ref = load_reference(_file(tmp_path))
    assert ref.verified_for("race") is True
    assert ref.verified_for("sex") is False and ref.verified_for("age") is False
    assert ref.unverified_attributes() == ["sex", "age"]
    assert ref.verified is False  # not every attribute is verified
    # derived age bands carry the status of the age groups they come from
    assert ref.with_age_bands([40]).verified_for("age_band") is False
    # every attribute true, no header: verified
    all_true = load_reference(_file(tmp_path, BODY.replace("false", "true")))
    assert all_true.verified is True and all_true.unverified_attributes() == []
    # the header alone still speaks for every attribute
    head = load_reference(_file(tmp_path, "attribute,category,share\nsex,F,0.5\nsex,M,0.5\n",
                                header="# verified: false\n"))
    assert head.verified is False and head.verified_for("sex") is False
    silent = load_reference(_file(tmp_path, "attribute,category,share\nsex,F,0.5\nsex,M,0.5\n",
                                  header=""))
    assert silent.verified is None and silent.verified_for("sex") is None


@pytest.mark.parametrize("header,body,match", [
    ("# verified: true\n", BODY, "the header says 'verified: true' but the verified column says "
                                 "false for 'sex', 'age'"),
    ("# verified: false\n", BODY.replace("false", "true"),
     "says 'verified: false' but the verified column says true for every attribute"),
    ("", BODY.replace("sex,M,0.5,false", "sex,M,0.5,true"),
     "attribute 'sex' mixes verified values 'False', 'True'"),
    ("", BODY.replace("0.6,true", "0.6,partly").replace("0.4,true", "0.4,partly"),
     "verified value 'partly' of attribute 'race' is not one of true, false"),
])
def test_contradictory_or_unreadable_status_is_refused_in_one_line(tmp_path, header, body,
                                                                   match):
    p = _file(tmp_path, body, header=header)
    with pytest.raises(ReferenceDataError) as exc:
        load_reference(p)
    msg = str(exc.value)
    assert str(p) in msg and "\n" not in msg
    assert match in msg.replace('"', "'")


def test_findings_name_only_the_unverified_attributes(tmp_path):
    ref = load_reference(_file(tmp_path))
    df = pd.DataFrame({"race": ["A"] * 80 + ["B"] * 20, "sex": ["F"] * 70 + ["M"] * 30})
    r = assess_representativeness(df, reference=ref, attributes=["race", "sex"])
    by = {(f.subject.get("attribute"), f.subject.get("category")): f for f in r.findings}
    race = by[("race", "A")]
    sex = by[("sex", "F")]
    assert race.values["reference_verified"] is True and UNVERIFIED not in race.text()
    assert sex.values["reference_verified"] is False and sex.text().endswith(f" [{UNVERIFIED}]")
    unv = [f for f in r.findings if f.code == "representativeness.reference_unverified"]
    assert len(unv) == 1 and unv[0].values["attributes"] == ["sex"]
    assert unv[0].text() == ("Reference 'part' (version 2): its figures for sex were not "
                             "verified against the published tables; every share, PPR and test "
                             "on them rests on unverified figures (see its card)")
    # the PPR verdicts: only sex's reason carries the caveat
    reasons = {v.id.split(".")[3].split("-")[0]: v.reason for v in r.verdicts if ".ppr." in v.id}
    assert UNVERIFIED in reasons["sex"] and UNVERIFIED not in (reasons["race"] or "")
    # comparing only verified attributes: no unverified finding at all
    only = assess_representativeness(df, reference=ref, attributes=["race"])
    assert not any(f.code == "representativeness.reference_unverified" for f in only.findings)
    # every compared attribute unverified: the sentence of a wholly unverified reference
    s = assess_representativeness(df, reference=ref, attributes=["sex"])
    text = next(f.text() for f in s.findings
                if f.code == "representativeness.reference_unverified")
    assert text.startswith("Reference 'part' (version 2): its figures were not verified")
    assert "every share, PPR and test against it rests" in text
    # and the status survives the JSON round trip of the result
    from rwe.representativeness import RepresentativenessResult

    back = RepresentativenessResult.from_dict(r.to_dict())
    assert back.reference.verified_for("race") is True
    assert back.reference.verified_for("sex") is False
    assert back.finding_texts() == r.finding_texts()


def test_dossier_states_the_status_per_attribute():
    from rwe.dossier._views import _verified_text

    assert _verified_text({"verified": "true"}, ["race", "sex"]) == "yes"
    assert _verified_text({"verified": "false"}, ["race"]) == "NO"
    assert _verified_text({}, ["race"]) is None and _verified_text({}) is None
    assert _verified_text({"verified": "true", "verified:race": "true"}, ["race", "sex"]) == "yes"
    assert _verified_text({"verified:race": "true", "verified:sex": "false",
                           "verified:age": "false"}) == "NO for sex, age; yes for race"
    # attributes without their own status take the header's
    assert _verified_text({"verified": "false", "verified:race": "true"},
                          ["race", "sex", "age"]) == "NO for sex, age; yes for race"
    assert _verified_text({"verified:race": "true"}, ["race", "sex"]) == (
        "yes for race; not stated for sex")
