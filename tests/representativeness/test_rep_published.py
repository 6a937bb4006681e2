"""The census reference files against the vendored extracts of the published 2020 Census tables
(datasets/reference/published/, issue 14 part 7): every figure, cell by cell, so a later edit of
the figures, the files or the extracts cannot drift unnoticed.

The comparison here reads the extracts itself (it does not trust the build script's mapping),
and then checks that the build script refuses a figure that differs from them."""

from __future__ import annotations

import csv
import importlib.util
import shutil

import pandas as pd
import pytest

from rwe.representativeness import load_reference
from rwe.representativeness._reference import reference_dir

PUBLISHED = reference_dir() / "published"
FILES = ("us_census_2020", "us_census_2020_clinical")
#: category -> PL 94-171 cell, written out here independently of the build script
P1_CELLS = {"White": "P1_003N", "Black or African American": "P1_004N",
            "American Indian or Alaska Native": "P1_005N", "Asian": "P1_006N",
            "Native Hawaiian or Other Pacific Islander": "P1_007N",
            "Some Other Race": "P1_008N", "Two or More Races": "P1_009N"}
P2_CELLS = {"Hispanic or Latino": "P2_002N", "Non-Hispanic White": "P2_005N",
            "Non-Hispanic Black or African American": "P2_006N",
            "Non-Hispanic American Indian or Alaska Native": "P2_007N",
            "Non-Hispanic Asian": "P2_008N",
            "Non-Hispanic Native Hawaiian or Other Pacific Islander": "P2_009N",
            "Non-Hispanic Some Other Race": "P2_010N",
            "Non-Hispanic Two or More Races": "P2_011N"}


def _extract(name):
    with (PUBLISHED / name).open(encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    header = {}
    for line in lines:
        if line.startswith("#"):
            key, _, value = line[1:].partition(":")
            header[key.strip()] = value.strip()
    rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    return header, rows


@pytest.fixture(scope="module")
def pl():
    header, rows = _extract("pl94171_2020_us_p1_p2.csv")
    cells = {}
    for r in rows:
        v, api = r["value"], r["value_api"]
        if v and api:  # two independent readings of one cell agree
            assert int(v) == int(api), r["variable"]
        cells[r["variable"]] = int(v or api)
    return header, cells


@pytest.fixture(scope="module")
def dp1():
    header, rows = _extract("dp1_2020_us_sex_age.csv")
    return header, {r["age_group"]: r for r in rows}


def _expected(pl, dp1, attribute):
    """{category: published count} of one attribute, from the extracts alone."""
    c = pl[1]
    d = dp1[1]
    if attribute == "race":
        return {k: c[v] for k, v in P1_CELLS.items()}
    if attribute == "ethnicity":
        return {"Hispanic or Latino": c["P2_002N"],
                "Not Hispanic or Latino": c["P2_001N"] - c["P2_002N"]}
    if attribute == "race_ethnicity":
        return {k: c[v] for k, v in P2_CELLS.items()}
    if attribute == "sex":
        return {"F": int(d["0+"]["total"]) - int(d["0+"]["male"]), "M": int(d["0+"]["male"])}
    if attribute == "age":
        return {g: int(r["total"]) for g, r in d.items() if r["row"] == "age"}
    raise KeyError(attribute)


def test_extracts_name_their_sources_and_tables(pl, dp1):
    h = pl[0]
    assert "jcervas/democracys-data, commit eaf467ba27d4db7218b98000eb4121c4f9f4bbb3" in \
        h["column value"]
    assert "us2020.npl.zip" in h["column value"] and "sha256 0ba1272f" in h["column value"]
    assert "commit dab7ddd65bd4f0667c49f9ab292af0752249b241" in h["column value_api"]
    assert "alarm-redist/census-2020, commit 4b896e7a6b3444ee815d1f1afa0c06caa7e5573f" in \
        h["check P2"]
    assert set(pl[1]) >= {f"P1_00{i}N" for i in range(1, 10)} | {"P2_001N", "P2_002N", "P3_001N"}
    assert "US_DP_2020_Census" in dp1[0]["source"] and "DP1" in dp1[0]["title"]
    assert "female = total - male" in dp1[0]["coverage"]


def test_extracts_hold_the_identities_of_the_tables(pl, dp1):
    c = pl[1]
    assert c["P1_001N"] == c["P2_001N"] == 331_449_281
    assert c["P1_002N"] + c["P1_009N"] == c["P1_001N"]
    assert sum(c[f"P1_00{i}N"] for i in range(3, 9)) == c["P1_002N"]
    assert c["P2_002N"] + sum(c[f"P2_{i:03d}N"] for i in range(5, 12)) == c["P2_001N"]
    d = dp1[1]
    groups = [g for g, r in d.items() if r["row"] == "age"]
    assert len(groups) == 18 and groups[0] == "0-4" and groups[-1] == "85+"
    for col in ("total", "male"):
        whole = int(d["0+"][col])
        assert sum(int(d[g][col]) for g in groups) == whole
        for g in groups:  # the printed percentage is the count over the total, to 0.1 point
            assert f"{100 * int(d[g][col]) / whole:.1f}" == d[g][f"{col}_percent"], (col, g)
    assert int(d["0+"]["total"]) == c["P1_001N"]
    assert int(d["18+"]["total"]) == c["P3_001N"]  # a figure the age groups cannot produce


@pytest.mark.parametrize("name", FILES)
def test_every_figure_of_the_reference_files_is_the_published_one(name, pl, dp1):
    body = pd.read_csv(reference_dir() / f"{name}.csv", comment="#")
    ref = load_reference(name)
    assert ref.verified is True and ref.unverified_attributes() == []
    assert set(body["attribute"]) == {"sex", "age", "race", "ethnicity", "race_ethnicity"}
    for attr, g in body.groupby("attribute"):
        want = _expected(pl, dp1, attr)
        if name.endswith("_clinical") and attr == "race":
            want = {k: v for k, v in want.items()
                    if k not in ("Some Other Race", "Two or More Races")}
            want["Multiracial/Other"] = pl[1]["P1_008N"] + pl[1]["P1_009N"]
        got = dict(zip(g["category"], g["published_value"].astype(int), strict=True))
        assert got == want, (name, attr)
        assert sum(want.values()) == 331_449_281
        total = sum(want.values())
        for cat, share in zip(g["category"], g["share"], strict=True):
            assert share == pytest.approx(want[cat] / total, abs=5e-9)
            assert ref.shares[attr][cat] == pytest.approx(want[cat] / total, abs=1e-8)
        assert set(g["unit"]) == {"count"} and g["verified"].all()


def _build_module():
    spec = importlib.util.spec_from_file_location(
        "build_us_census_2020", reference_dir() / "build_us_census_2020.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_files_are_what_the_build_script_writes(tmp_path):
    mod = _build_module()
    for path in mod.build_all(out_dir=tmp_path):
        assert path.read_bytes() == (reference_dir() / path.name).read_bytes(), path.name


@pytest.mark.parametrize("table,key,delta,match", [
    ("AGE", "40-44", 1, r"age '40-44': this script has 20,309,194, the published DP1 '40-44' "
                        r"total is 20309193"),
    ("SEX", "M", -5, r"sex 'M': this script has 162,685,806, the published DP1 male total is "
                     r"162685811"),
    ("P1", "Asian", 10, r"P1 race 'Asian': this script has 19,886,059, the published P1_006N"),
    ("P2_RACE", "Non-Hispanic Asian", 1, r"'Non-Hispanic Asian': .* the published P2_008N"),
])
def test_the_build_refuses_a_figure_that_differs_from_the_published_one(
        monkeypatch, tmp_path, table, key, delta, match):
    mod = _build_module()
    monkeypatch.setitem(getattr(mod, table), key, getattr(mod, table)[key] + delta)
    with pytest.raises(AssertionError, match=match):
        mod.published_checks()
    with pytest.raises(AssertionError, match=match):
        mod.build_all(out_dir=tmp_path)
    assert not list(tmp_path.iterdir())  # nothing written


def test_the_build_refuses_an_extract_that_was_edited(monkeypatch, tmp_path):
    mod = _build_module()
    pl = tmp_path / "pl.csv"
    text = mod.PL_EXTRACT.read_text()
    pl.write_text(text.replace(",204277273,204277273,", ",204277273,204277274,"))
    monkeypatch.setattr(mod, "PL_EXTRACT", pl)
    with pytest.raises(AssertionError, match="P1_003N is 204,277,273 in the summary-file extract "
                                             "but 204,277,274 through the Census API"):
        mod.published_checks()
    dp = tmp_path / "dp.csv"
    shutil.copy(mod.DP1_EXTRACT, dp)
    dp.write_text(dp.read_text().replace("age,75-79,75 to 79 years,9955322,3.0",
                                         "age,75-79,75 to 79 years,9955322,3.1"))
    monkeypatch.setattr(mod, "PL_EXTRACT", mod.HERE / "published" / "pl94171_2020_us_p1_p2.csv")
    monkeypatch.setattr(mod, "DP1_EXTRACT", dp)
    with pytest.raises(AssertionError, match=r"DP1 total '75-79': 9,955,322 is not the printed "
                                             r"3.1%"):
        mod.published_checks()
