"""Write the us_census_2020 reference files from the published figures typed below.

Run ``python datasets/reference/build_us_census_2020.py``; it rewrites
``us_census_2020.csv`` (race as published in P1, seven categories) and
``us_census_2020_clinical.csv`` (identical except "Some Other Race" and "Two or More Races" merged
into "Multiracial/Other", the coding most clinical records and the rwe demo use).
See README.md for sources and verification status.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
TOTAL = 331_449_281

# 2020 Census PL 94-171, Table P1 (race alone), total population. OMB labels ("or").
P1 = {
    "White": 204_277_273,
    "Black or African American": 41_104_200,
    "American Indian or Alaska Native": 3_727_135,
    "Asian": 19_886_049,
    "Native Hawaiian or Other Pacific Islander": 689_966,
    "Some Other Race": 27_915_715,
    "Two or More Races": 33_848_943,
}
# Table P2: Hispanic or Latino (any race) and not.
P2 = {"Hispanic or Latino": 62_080_044, "Not Hispanic or Latino": 269_369_237}
# Table P2: Hispanic or Latino, and non-Hispanic by race alone.
P2_RACE = {
    "Hispanic or Latino": 62_080_044,
    "Non-Hispanic White": 191_697_647,
    "Non-Hispanic Black or African American": 39_940_338,
    "Non-Hispanic American Indian or Alaska Native": 2_251_699,
    "Non-Hispanic Asian": 19_618_719,
    "Non-Hispanic Native Hawaiian or Other Pacific Islander": 622_018,
    "Non-Hispanic Some Other Race": 1_689_833,
    "Non-Hispanic Two or More Races": 13_548_983,
}
# ACS 2016-2020 5-year, Table S0101, percent of total population (rounded to 0.1 point).
SEX = {"F": 50.8, "M": 49.2}
AGE = {"0-4": 6.0, "5-9": 6.2, "10-14": 6.5, "15-19": 6.5, "20-24": 6.7, "25-29": 7.0,
       "30-34": 6.7, "35-39": 6.5, "40-44": 6.1, "45-49": 6.4, "50-54": 6.4, "55-59": 6.7,
       "60-64": 6.3, "65-69": 5.3, "70-74": 4.1, "75-79": 2.8, "80-84": 1.8, "85+": 1.9}

ACS = "ACS 2016-2020 5-year S0101"

HEADER = """# name: {name}
# title: United States resident population, 2020: sex, 5-year age group, race, Hispanic origin{title_extra}
# version: 1.0.0
# year: 2020
# universe: Total resident population of the United States (50 states + DC), all ages
# source: U.S. Census Bureau. race, ethnicity, race_ethnicity: 2020 Census Redistricting Data (Public Law 94-171) Summary File, Tables P1 (Race) and P2 (Hispanic or Latino, and Not Hispanic or Latino by Race). sex, age: American Community Survey 2016-2020 5-year estimates, Table S0101 (Age and Sex), percent distribution.
# mapping: {mapping}
# verification: figures typed from memory of the published tables; P1 and P2 counts are internally consistent (each sums to 331,449,281) but were NOT re-checked against data.census.gov. See README.md.
# generated_by: build_us_census_2020.py
# card: README.md#{name}
attribute,category,share,published_value,unit,table,universe
"""


def _rows(attr, values, unit, table):
    total = sum(values.values())
    return [f"{attr},{k},{v / total:.8f},{v},{unit},{table},total population"
            for k, v in values.items()]


def build(name: str, race: dict[str, int], mapping: str, title_extra: str = "") -> Path:
    for d in (race, P2, P2_RACE):
        assert sum(d.values()) == TOTAL, d
    lines = (_rows("sex", SEX, "percent", ACS) + _rows("age", AGE, "percent", ACS)
             + _rows("race", race, "count", "2020 Census PL 94-171 P1")
             + _rows("ethnicity", P2, "count", "2020 Census PL 94-171 P2")
             + _rows("race_ethnicity", P2_RACE, "count", "2020 Census PL 94-171 P2"))
    path = HERE / f"{name}.csv"
    path.write_text(HEADER.format(name=name, mapping=mapping, title_extra=title_extra)
                    + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def main() -> None:
    build("us_census_2020", P1, "OMB labels ('or'); categories as published; sex coded F/M; "
          "S0101 percentages renormalised to sum to 1")
    merged = {k: v for k, v in P1.items() if k not in ("Some Other Race", "Two or More Races")}
    merged["Multiracial/Other"] = P1["Some Other Race"] + P1["Two or More Races"]
    build("us_census_2020_clinical", merged,
          "as us_census_2020, and race 'Some Other Race' + 'Two or More Races' -> "
          "'Multiracial/Other'", title_extra=" (race: Multiracial/Other merged)")


if __name__ == "__main__":
    main()
