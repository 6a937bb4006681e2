"""Write the us_census_2020 reference files from the published 2020 Census figures below.

Run ``python datasets/reference/build_us_census_2020.py``; it rewrites
``us_census_2020.csv`` (race as published in P1, seven categories) and
``us_census_2020_clinical.csv`` (identical except "Some Other Race" and "Two or More Races" merged
into "Multiracial/Other", the coding most clinical records and the rwe demo use).

Every figure comes from the 2020 Census (census day April 1, 2020, resident population of the
50 states and DC, all ages): race from PL 94-171 Table P1, ethnicity and race-ethnicity from
Table P2, sex and 5-year age groups from the Demographic Profile DP1 (SEX AND AGE). Before
writing, the script

* checks every figure cell by cell, exactly, against the extracts of the published tables
  vendored in ``published/`` (:func:`published_checks`; the extracts' headers name the source
  repository, commit and path, or page), and the extracts against each other (the DP1 total
  and 18+ against P1_001N and P3_001N, the P1 cells read from the summary file against the same
  cells read through the Census API); and
* runs the internal identities of the tables (:func:`consistency_checks`: sums to the total).

It stops on the first check that fails, naming the cell, the script's value and the published
one. Each row of the files says ``verified: true`` only because these checks passed; what they
establish is stated in the files' ``verification`` header and in README.md.
"""

from __future__ import annotations

import csv
from pathlib import Path

HERE = Path(__file__).resolve().parent
PUBLISHED = HERE / "published"
PL_EXTRACT = PUBLISHED / "pl94171_2020_us_p1_p2.csv"
DP1_EXTRACT = PUBLISHED / "dp1_2020_us_sex_age.csv"

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
# 2020 Census Demographic Profile DP1, SEX AND AGE: counts (female = total - male in DP1).
SEX = {"F": 168_763_470, "M": 162_685_811}
AGE = {"0-4": 18_400_235, "5-9": 20_130_423, "10-14": 21_627_830, "15-19": 22_036_076,
       "20-24": 22_166_199, "25-29": 22_301_254, "30-34": 22_533_412, "35-39": 21_874_944,
       "40-44": 20_309_193, "45-49": 20_145_294, "50-54": 20_723_512, "55-59": 22_120_489,
       "60-64": 21_287_919, "65-69": 18_288_727, "70-74": 14_823_238, "75-79": 9_955_322,
       "80-84": 6_388_779, "85+": 6_336_435}

#: The published cell behind each figure (the variable of the PL 94-171 extract).
P1_CELLS = dict(zip(P1, ["P1_003N", "P1_004N", "P1_005N", "P1_006N", "P1_007N", "P1_008N",
                         "P1_009N"], strict=True))
P2_RACE_CELLS = dict(zip(P2_RACE, ["P2_002N", "P2_005N", "P2_006N", "P2_007N", "P2_008N",
                                   "P2_009N", "P2_010N", "P2_011N"], strict=True))

PL = "2020 Census PL 94-171"
DP = "2020 Census DP1"
#: Every attribute of these files is for the whole population (all ages): P1/P2 have no age
#: breakdown, and the files keep DP1's sex for all ages (DP1 also has sex by age: see README).
UNIVERSE_AGES = "0+"
ROW_UNIVERSE = "resident population (all ages)"

VERIFICATION = (
    "Checked cell by cell, exactly, by build_us_census_2020.py on every build (it stops on a "
    "difference) against extracts of the published 2020 Census tables in published/, whose "
    "headers name each source. race, ethnicity, race_ethnicity: PL 94-171 P1_003N-P1_009N, "
    "P2_001N, P2_002N, P2_005N-P2_011N for the United States (summary level 010) as "
    "extracted from the Bureau's national summary file us2020.npl by "
    "jcervas/democracys-data (commit eaf467ba, labs/01-census-bureau/demographics/data/"
    "derived/nation.csv); P1 and P2_002N also as read through the Census API (same repository, "
    "commit dab7ddd6, census-decennial/data/derived/race.csv); the P2 cells also equal the sum "
    "over 48 states and DC of alarm-redist/census-2020 (commit 4b896e7a) plus CA and OR. "
    "sex, age: DP1 SEX AND AGE (total and male by 5-year age group; female = total - male) as "
    "reproduced by the Maryland State Data Center (planning.maryland.gov, US_DP_2020_Census), "
    "a secondary copy read offline, whose total equals P1_001N and whose 18+ row equals "
    "P3_001N. The ACS 2016-2020 S0101 percentages used up to version 1.1.0 could not be checked "
    "(no offline copy found) and were replaced. See README.md")


def _read_extract(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(line for line in fh if not line.startswith("#")))


def published() -> tuple[dict[str, dict[str, int | None]], dict[str, dict[str, int]]]:
    """The vendored extracts: ``({variable: {"value", "value_api"}}, {age_group: {"total",
    "male"}})`` (the DP1 rows by ``age_group``: ``"0+"`` the total, ``"18+"``, the 5-year
    groups; the printed percentages under ``"total_percent"`` / ``"male_percent"``)."""
    def num(v: str) -> int | None:
        return int(v) if v.strip() else None

    pl = {r["variable"]: {"value": num(r["value"]), "value_api": num(r["value_api"])}
          for r in _read_extract(PL_EXTRACT)}
    dp: dict[str, dict] = {}
    for r in _read_extract(DP1_EXTRACT):
        dp[r["age_group"]] = {"row": r["row"], "total": num(r["total"]), "male": num(r["male"]),
                              "total_percent": r["total_percent"],
                              "male_percent": r["male_percent"]}
    return pl, dp


def published_checks() -> list[str]:
    """Every figure of this script against the vendored extracts of the published tables,
    cell by cell and exactly, and the extracts against each other; raises ``AssertionError``
    on the first difference, naming the cell and both values.

    Returns
    -------
    list of str
        One line per check that passed.
    """
    pl, dp = published()
    done: list[str] = []

    def same(ours: int, cell: str, theirs: int | None, what: str) -> None:
        if theirs is None or ours != theirs:
            raise AssertionError(f"published check failed: {what}: this script has {ours:,}, "
                                 f"the published {cell} is {theirs!r}")

    def cell(var: str) -> int:
        v = pl[var]["value"]
        api = pl[var]["value_api"]
        if api is not None and v is not None and api != v:
            raise AssertionError(f"published check failed: {var} is {v:,} in the summary-file "
                                 f"extract but {api:,} through the Census API")
        return v if v is not None else api

    same(TOTAL, "P1_001N", cell("P1_001N"), "total population")
    same(TOTAL, "P2_001N", cell("P2_001N"), "total population")
    for cat, var in P1_CELLS.items():
        same(P1[cat], var, cell(var), f"P1 race {cat!r}")
    done.append("P1 race counts equal P1_003N-P1_009N (summary file and Census API)")
    same(P2["Hispanic or Latino"], "P2_002N", cell("P2_002N"), "P2 'Hispanic or Latino'")
    same(P2["Not Hispanic or Latino"], "P2_001N - P2_002N",
         cell("P2_001N") - cell("P2_002N"), "P2 'Not Hispanic or Latino'")
    for cat, var in P2_RACE_CELLS.items():
        same(P2_RACE[cat], var, cell(var), f"P2 race-ethnicity {cat!r}")
    done.append("P2 counts equal P2_002N, P2_001N - P2_002N and P2_005N-P2_011N")
    same(dp["0+"]["total"], "P1_001N", TOTAL, "DP1 total population")
    same(dp["18+"]["total"], "P3_001N", cell("P3_001N"), "DP1 '18 years and over'")
    done.append("DP1 total equals P1_001N and its 18+ row equals P3_001N")
    for grp, n in AGE.items():
        same(n, f"DP1 {grp!r} total", dp[grp]["total"], f"age {grp!r}")
    same(SEX["M"], "DP1 male total", dp["0+"]["male"], "sex 'M'")
    same(SEX["F"], "DP1 total - male", dp["0+"]["total"] - dp["0+"]["male"], "sex 'F'")
    done.append("DP1 sex and 18 age-group counts equal the published rows")
    groups = [g for g, r in dp.items() if r["row"] == "age"]
    for col in ("total", "male"):
        whole = dp["0+"][col]
        same(sum(dp[g][col] for g in groups), f"DP1 {col} population", whole,
             f"DP1 {col} age rows summed")
        for g in groups:
            printed = dp[g][f"{col}_percent"]
            if f"{100 * dp[g][col] / whole:.1f}" != printed:
                raise AssertionError(f"published check failed: DP1 {col} {g!r}: "
                                     f"{dp[g][col]:,} is not the printed {printed}%")
    same(sum(dp[g]["total"] for g in groups if int(g.rstrip("+").split("-")[0]) >= 65),
         "DP1 '65 years and over'", dp["65+"]["total"], "DP1 rows from 65 summed")
    done.append("DP1 age rows sum to the total and male populations and to 65+; every "
                "printed percentage equals count / total")
    return done


def consistency_checks() -> list[str]:
    """The internal identities of the tables; raises ``AssertionError`` on the first failure.

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
    for race in P1:
        nh_key = f"Non-Hispanic {race}"
        check(P2_RACE[nh_key] <= P1[race], f"P2 {nh_key} <= P1 {race}")
    check(sum(SEX.values()) == TOTAL, f"DP1 sex counts sum to {TOTAL:,}")
    check(sum(AGE.values()) == TOTAL, f"DP1 age-group counts sum to {TOTAL:,}")
    ends = [0] + [int(k.split("-")[1]) + 1 for k in AGE if not k.endswith("+")]
    starts = [int(k.rstrip("+").split("-")[0]) for k in AGE]
    check(starts == ends, "DP1 age groups are contiguous from 0 to 85+")
    return done


HEADER = """# name: {name}
# title: United States resident population, 2020 Census: sex, 5-year age group, race, Hispanic origin{title_extra}
# version: 2.0.0
# year: 2020
# universe: Total resident population of the United States (50 states + DC), all ages, on census day April 1, 2020
# universe_ages: {ages}
# universe_geography: United States (50 states and the District of Columbia); Puerto Rico excluded
# universe_date: census day April 1, 2020 (every attribute)
# tables: race: {pl} P1; ethnicity, race_ethnicity: {pl} P2; sex, age: {dp} (SEX AND AGE)
# source: U.S. Census Bureau, 2020 Census. race, ethnicity, race_ethnicity: Redistricting Data (Public Law 94-171) Summary File, Tables P1 (Race) and P2 (Hispanic or Latino, and Not Hispanic or Latino by Race). sex, age: Demographic Profile, Table DP1, SEX AND AGE (counts).
# mapping: {mapping}
# verified: true
# verification: {verification}
# generated_by: build_us_census_2020.py
# card: README.md#{name}
attribute,category,share,published_value,unit,table,universe,ages,verified
"""


def _rows(attr, values, table):
    total = sum(values.values())
    return [f"{attr},{k},{v / total:.8f},{v},count,{table},{ROW_UNIVERSE},{UNIVERSE_AGES},true"
            for k, v in values.items()]


def build(name: str, race: dict[str, int], mapping: str, title_extra: str = "",
          out_dir: Path = HERE) -> Path:
    """Check every figure (:func:`published_checks`, :func:`consistency_checks`), then write
    ``<out_dir>/<name>.csv``."""
    published_checks()
    consistency_checks()
    lines = (_rows("sex", SEX, f"{DP} SEX AND AGE") + _rows("age", AGE, f"{DP} SEX AND AGE")
             + _rows("race", race, f"{PL} P1")
             + _rows("ethnicity", P2, f"{PL} P2")
             + _rows("race_ethnicity", P2_RACE, f"{PL} P2"))
    path = Path(out_dir) / f"{name}.csv"
    path.write_text(HEADER.format(name=name, mapping=mapping, title_extra=title_extra,
                                  ages=UNIVERSE_AGES, pl=PL, dp=DP,
                                  verification=VERIFICATION)
                    + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def build_all(out_dir: Path = HERE) -> list[Path]:
    """Write both files (``us_census_2020``, ``us_census_2020_clinical``) into ``out_dir``."""
    merged = {k: v for k, v in P1.items() if k not in ("Some Other Race", "Two or More Races")}
    merged["Multiracial/Other"] = P1["Some Other Race"] + P1["Two or More Races"]
    return [
        build("us_census_2020", P1, "OMB labels ('or'); categories as published; sex coded F/M",
              out_dir=out_dir),
        build("us_census_2020_clinical", merged,
              "as us_census_2020, and race 'Some Other Race' + 'Two or More Races' -> "
              "'Multiracial/Other'", title_extra=" (race: Multiracial/Other merged)",
              out_dir=out_dir),
    ]


def main() -> None:
    for line in published_checks() + consistency_checks():
        print(f"ok  {line}")
    for path in build_all():
        print(f"wrote {path.name}")


if __name__ == "__main__":
    main()
