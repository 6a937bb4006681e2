"""Write the us_census_2020 reference files from the published figures listed below.

Run ``python datasets/reference/build_us_census_2020.py``; it rewrites
``us_census_2020.csv`` (race as published in P1, seven categories) and
``us_census_2020_clinical.csv`` (identical except "Some Other Race" and "Two or More Races" merged
into "Multiracial/Other", the coding most clinical records and the rwe demo use).

Before writing, it runs every check that can be made without the published tables themselves
(:func:`consistency_checks`) and stops on the first that fails. What those checks do and do not
establish is stated in the files' ``verification`` header and in README.md ("Verification
status"): the figures have NOT been compared cell by cell with data.census.gov.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
TOTAL = 331_449_281
NON_HISPANIC = 269_369_237

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
P2 = {"Hispanic or Latino": 62_080_044, "Not Hispanic or Latino": NON_HISPANIC}
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
PL = "2020 Census PL 94-171"
#: Every attribute of these files is for the whole population (all ages): the P1/P2 tables and
#: the S0101 percent distribution have no age-specific sex, race or ethnicity breakdown.
UNIVERSE_AGES = "0+"
ROW_UNIVERSE = "resident population (all ages)"

VERIFICATION = (
    "NOT checked against the published tables (no network where the figures were entered; "
    "they were typed from the tables as remembered). Checked instead, by this script on every "
    "build: P1 race counts sum to 331,449,281; P2 Hispanic + non-Hispanic sum to 331,449,281; "
    "the eight P2 race-ethnicity counts sum to 331,449,281 and their non-Hispanic part to "
    "269,369,237; S0101 sex percentages sum to 100.0 and the 18 age-group percentages to 99.9 "
    "(rounding). Corroboration only: the P1 single-race counts, the Hispanic total and the P2 "
    "non-Hispanic White, Black and Asian counts match independent third-party transcriptions "
    "in public code; no independent copy of the S0101 figures (sex, age) was found. "
    "See README.md")


def consistency_checks() -> list[str]:
    """The checks that can be made without the published tables; raises on the first failure.

    Returns
    -------
    list of str
        One line per check that passed.
    """
    done = []

    def check(ok: bool, what: str) -> None:
        if not ok:
            raise AssertionError(f"consistency check failed: {what}")
        done.append(what)

    check(sum(P1.values()) == TOTAL, f"P1 race counts sum to {TOTAL:,}")
    check(sum(P2.values()) == TOTAL, f"P2 Hispanic + non-Hispanic sum to {TOTAL:,}")
    check(sum(P2_RACE.values()) == TOTAL, f"P2 race-ethnicity counts sum to {TOTAL:,}")
    nh = sum(v for k, v in P2_RACE.items() if k.startswith("Non-Hispanic"))
    check(nh == NON_HISPANIC, f"P2 non-Hispanic race counts sum to {NON_HISPANIC:,}")
    for race, nh_key in (("White", "Non-Hispanic White"),
                         ("Black or African American", "Non-Hispanic Black or African American"),
                         ("Asian", "Non-Hispanic Asian")):
        check(P2_RACE[nh_key] <= P1[race], f"P2 {nh_key} <= P1 {race}")
    check(round(sum(SEX.values()), 1) == 100.0, "S0101 sex percentages sum to 100.0")
    check(round(sum(AGE.values()), 1) == 99.9, "S0101 age-group percentages sum to 99.9")
    ends = [0] + [int(k.split("-")[1]) + 1 for k in AGE if not k.endswith("+")]
    starts = [int(k.rstrip("+").split("-")[0]) for k in AGE]
    check(starts == ends, "S0101 age groups are contiguous from 0 to 85+")
    return done


HEADER = """# name: {name}
# title: United States resident population, 2020: sex, 5-year age group, race, Hispanic origin{title_extra}
# version: 1.1.0
# year: 2020
# universe: Total resident population of the United States (50 states + DC), all ages
# universe_ages: {ages}
# universe_geography: United States (50 states and the District of Columbia); Puerto Rico excluded
# universe_date: race, ethnicity, race_ethnicity: census day April 1, 2020; sex, age: ACS 5-year period estimate 2016-2020
# tables: race: {pl} P1; ethnicity, race_ethnicity: {pl} P2; sex, age: {acs}
# source: U.S. Census Bureau. race, ethnicity, race_ethnicity: 2020 Census Redistricting Data (Public Law 94-171) Summary File, Tables P1 (Race) and P2 (Hispanic or Latino, and Not Hispanic or Latino by Race). sex, age: American Community Survey 2016-2020 5-year estimates, Table S0101 (Age and Sex), percent distribution.
# mapping: {mapping}
# verified: false
# verification: {verification}
# generated_by: build_us_census_2020.py
# card: README.md#{name}
attribute,category,share,published_value,unit,table,universe,ages
"""


def _rows(attr, values, unit, table):
    total = sum(values.values())
    return [f"{attr},{k},{v / total:.8f},{v},{unit},{table},{ROW_UNIVERSE},{UNIVERSE_AGES}"
            for k, v in values.items()]


def build(name: str, race: dict[str, int], mapping: str, title_extra: str = "") -> Path:
    consistency_checks()
    lines = (_rows("sex", SEX, "percent", ACS) + _rows("age", AGE, "percent", ACS)
             + _rows("race", race, "count", f"{PL} P1")
             + _rows("ethnicity", P2, "count", f"{PL} P2")
             + _rows("race_ethnicity", P2_RACE, "count", f"{PL} P2"))
    path = HERE / f"{name}.csv"
    path.write_text(HEADER.format(name=name, mapping=mapping, title_extra=title_extra,
                                  ages=UNIVERSE_AGES, pl=PL, acs=ACS,
                                  verification=VERIFICATION)
                    + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def main() -> None:
    for line in consistency_checks():
        print(f"ok  {line}")
    build("us_census_2020", P1, "OMB labels ('or'); categories as published; sex coded F/M; "
          "S0101 percentages renormalised to sum to 1")
    merged = {k: v for k, v in P1.items() if k not in ("Some Other Race", "Two or More Races")}
    merged["Multiracial/Other"] = P1["Some Other Race"] + P1["Two or More Races"]
    build("us_census_2020_clinical", merged,
          "as us_census_2020, and race 'Some Other Race' + 'Two or More Races' -> "
          "'Multiracial/Other'", title_extra=" (race: Multiracial/Other merged)")


if __name__ == "__main__":
    main()
