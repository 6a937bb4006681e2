"""Reference populations: shipped files, custom populations and malformed files."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from rwe.exceptions import InvalidParameterError, ReferenceDataError
from rwe.representativeness import (
    SHARE_TOLERANCE,
    ReferencePopulation,
    available_references,
    load_reference,
    reference_dir,
)


def test_shipped_references_are_valid_and_cited():
    names = available_references()
    assert "us_census_2020" in names
    card = (reference_dir() / "README.md").read_text()
    for name in names:
        ref = load_reference(name)
        for attr, cats in ref.shares.items():
            assert math.fsum(cats.values()) == pytest.approx(1.0, abs=1e-12), (name, attr)
            assert all(v >= 0 for v in cats.values())
        for key in ("source", "year", "universe", "version"):
            assert ref.metadata.get(key), (name, key)
        assert f"## {name}" in card, f"no data card section for {name}"


def test_us_census_2020_figures():
    ref = load_reference("us_census_2020")
    # 2020 Census P1/P2 counts (total 331,449,281)
    assert_allclose(ref.shares["ethnicity"]["Hispanic or Latino"], 62_080_044 / 331_449_281,
                    rtol=1e-5)
    assert_allclose(ref.shares["race"]["Black or African American"], 41_104_200 / 331_449_281,
                    rtol=1e-5)
    assert_allclose(ref.shares["race_ethnicity"]["Non-Hispanic Black or African American"],
                    0.1205, atol=5e-4)
    assert set(ref.shares["sex"]) == {"F", "M"}
    assert len(ref.shares["age"]) == 18


def _write(tmp_path, body, header="# name: toy\n# source: test\n"):
    p = tmp_path / "toy.csv"
    p.write_text(header + body)
    return p


def test_from_csv_sum_error_names_file_attribute_and_sum(tmp_path):
    p = _write(tmp_path, "attribute,category,share\nsex,F,0.5\nsex,M,0.5\nrace,A,0.6\nrace,B,0.3\n")
    with pytest.raises(ReferenceDataError) as exc:
        ReferencePopulation.from_csv(p)
    msg = str(exc.value)
    assert str(p) in msg and "'race'" in msg and "0.9" in msg


def test_from_csv_within_tolerance_is_renormalised(tmp_path):
    p = _write(tmp_path, "attribute,category,share\nsex,F,0.5004\nsex,M,0.4999\n")
    ref = ReferencePopulation.from_csv(p)
    assert math.fsum(ref.shares["sex"].values()) == pytest.approx(1.0, abs=1e-15)
    assert ref.metadata["source"] == "test"
    assert SHARE_TOLERANCE == 1e-3


@pytest.mark.parametrize("body,match", [
    ("attribute,category,share\nsex,F,-0.1\nsex,M,1.1\n", "< 0"),
    ("attribute,category,share\nsex,F,0.5\nsex,F,0.5\n", "more than once"),
    ("attribute,cat,share\nsex,F,0.5\nsex,M,0.5\n", "needs the columns"),
    ("attribute,category,share\nsex,F,abc\nsex,M,0.5\n", "not a number"),
])
def test_from_csv_malformed(tmp_path, body, match):
    with pytest.raises(ReferenceDataError, match=match):
        ReferencePopulation.from_csv(_write(tmp_path, body))


def test_load_reference_unknown_name():
    with pytest.raises(ReferenceDataError, match="us_census_2020"):
        load_reference("no_such_population")


def test_from_shares_and_errors():
    ref = ReferencePopulation.from_shares({"sex": {"F": 0.6, "M": 0.4}}, name="catchment")
    assert ref.share("sex")["F"] == pytest.approx(0.6)
    with pytest.raises(ReferenceDataError, match="'sex'.*sum to 1.1"):
        ReferencePopulation.from_shares({"sex": {"F": 0.6, "M": 0.5}})
    with pytest.raises(InvalidParameterError, match="'race'.*'sex'"):
        ref.share("race")


def test_from_frame_keeps_rows_and_computes_marginals():
    rows = pd.DataFrame({"sex": ["F", "F", "M", None], "age": [50, 60, 70, 80]})
    ref = ReferencePopulation.from_frame(rows, ["sex"], name="training")
    assert ref.shares["sex"] == pytest.approx({"F": 2 / 3, "M": 1 / 3})
    assert ref.has_rows and len(ref.rows) == 4
    with pytest.raises(InvalidParameterError, match="'race'.*available"):
        ReferencePopulation.from_frame(rows, ["race"])


def test_with_age_bands_aggregates_and_restricts():
    ref = load_reference("us_census_2020")
    age = ref.share("age")
    b = ref.with_age_bands([50, 65, 75], min_age=50)
    s = b.share("age_band")
    assert list(s.index) == ["50-64", "65-74", "75+"]
    tot = age[["50-54", "55-59", "60-64", "65-69", "70-74", "75-79", "80-84", "85+"]].sum()
    assert_allclose(s["50-64"], age[["50-54", "55-59", "60-64"]].sum() / tot, rtol=1e-12)
    assert_allclose(s.sum(), 1.0)
    full = ref.with_age_bands([20, 65]).share("age_band")
    assert list(full.index) == ["<20", "20-64", "65+"]
    with pytest.raises(ReferenceDataError, match="age cut 52"):
        ref.with_age_bands([52, 65])


def test_rename_categories_merges():
    ref = load_reference("us_census_2020").rename_categories(
        "race", {"Some Other Race": "Other", "Two or More Races": "Other"})
    r = ref.share("race")
    assert "Other" in r.index and "Some Other Race" not in r.index
    assert_allclose(r["Other"], (27_915_715 + 33_848_943) / 331_449_281, rtol=1e-5)
    assert_allclose(r.sum(), 1.0)
    assert "mapping:race" in ref.metadata


def test_reference_to_dict_and_frame():
    ref = load_reference("us_census_2020")
    d = ref.to_dict()
    assert d["name"] == "us_census_2020" and not d["has_rows"]
    f = ref.to_frame()
    assert list(f.columns) == ["attribute", "category", "share"]
    assert_allclose(f.groupby("attribute")["share"].sum().to_numpy(), 1.0)
    assert np.isfinite(f["share"]).all()
