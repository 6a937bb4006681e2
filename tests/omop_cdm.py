"""A tiny OMOP CDM 5.3 written by hand, whose evaluation table is known row by row
(:data:`EXPECTED`): unknown concepts, a concept missing from the vocabulary, devices before
and after the index date, outcomes on the time-at-risk boundaries, a care site without a name,
a subject with two eras. Tests build it in DuckDB (:func:`write_cdm`) and copy it into
PostgreSQL (``rwe.datasets._eunomia.load_cdm_into_postgres``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

HORIZON = 365
COHORT, OUTCOME = 1, 2

DDL = {
    "person": "person_id BIGINT, gender_concept_id BIGINT, year_of_birth INTEGER, "
              "race_concept_id BIGINT, ethnicity_concept_id BIGINT, care_site_id BIGINT, "
              "location_id BIGINT, provider_id BIGINT",
    "concept": "concept_id BIGINT, concept_name VARCHAR, domain_id VARCHAR",
    "observation_period": "observation_period_id BIGINT, person_id BIGINT, "
                          "observation_period_start_date DATE, observation_period_end_date DATE",
    "care_site": "care_site_id BIGINT, care_site_name VARCHAR",
    "device_exposure": "device_exposure_id BIGINT, person_id BIGINT, device_concept_id BIGINT, "
                       "device_exposure_start_date DATE",
    "cohort": "cohort_definition_id BIGINT, subject_id BIGINT, cohort_start_date DATE, "
              "cohort_end_date DATE",
    "cdm_source": "cdm_source_name VARCHAR, cdm_version VARCHAR, vocabulary_version VARCHAR",
    "preds": "subject_id BIGINT, cohort_start_date DATE, s_a DOUBLE, s_b DOUBLE",
}

ROWS: dict[str, list[tuple]] = {
    "person": [(1, 8507, 1950, 8527, 0, 10, None, None),
               (2, 8532, 1980, 0, 38003564, 20, None, None),
               (3, 9999, 2000, 8516, 38003563, None, None, None),
               (4, 8507, 1960, None, 38003564, 10, None, None),
               (5, 8532, 1970, 8527, 38003564, 10, None, None)],   # in no cohort
    "concept": [(0, "No matching concept", "Metadata"), (8507, "MALE", "Gender"),
                (8532, "FEMALE", "Gender"), (8527, "White", "Race"),
                (8516, "Black or African American", "Race"),
                (38003563, "Hispanic or Latino", "Ethnicity"),
                (38003564, "Not Hispanic or Latino", "Ethnicity"),
                (4001, "CT scanner X", "Device"), (4002, "CT scanner Y", "Device")],
    "observation_period": [(1, 1, "2015-01-01", "2021-12-31"), (2, 2, "2015-01-01", "2022-12-31"),
                           (3, 3, "2015-01-01", "2022-03-01"), (4, 4, "2018-01-01", "2020-06-30"),
                           (5, 5, "2015-01-01", "2022-12-31")],
    "care_site": [(10, "North"), (20, None)],
    "device_exposure": [(1, 1, 4001, "2019-01-01"), (2, 1, 4002, "2020-02-01"),
                        (3, 1, 4001, "2020-04-01"), (4, 3, 0, "2021-01-01")],
    "cohort": [(COHORT, 1, "2020-03-01", "2020-03-31"), (COHORT, 2, "2021-06-15", "2021-07-15"),
               (COHORT, 3, "2022-01-10", "2022-01-20"), (COHORT, 4, "2019-01-01", "2019-01-31"),
               (COHORT, 4, "2020-01-01", "2020-01-31"),
               # outcomes: day 0 (not at risk) and day 1 for person 1; day 365 for person 2;
               # day 366 for person 3; none for person 4
               (OUTCOME, 1, "2020-03-01", "2020-03-01"), (OUTCOME, 1, "2020-03-02", "2020-03-02"),
               (OUTCOME, 2, "2022-06-15", "2022-06-15"), (OUTCOME, 3, "2023-01-11", "2023-01-11")],
    "cdm_source": [("tiny test CDM", "v5.3.1", "test vocabulary")],
    "preds": [(1, "2020-03-01", 0.9, 0.8), (2, "2021-06-15", 0.7, 0.6),
              (3, "2022-01-10", 0.2, 0.3), (4, "2019-01-01", 0.1, 0.2),
              (4, "2020-01-01", 0.4, 0.5)],
}

#: The evaluation table OMOPSource must produce (horizon 365, risk window from day 1).
EXPECTED = {
    "row_id": ["1-2020-03-01", "2-2021-06-15", "3-2022-01-10", "4-2019-01-01", "4-2020-01-01"],
    "person_id": [1, 2, 3, 4, 4],
    "age": [70, 41, 22, 59, 60],
    "gender": ["MALE", "FEMALE", "concept 9999", "MALE", "MALE"],
    "race": ["White", "unknown", "Black or African American", None, None],
    "ethnicity": ["unknown", "Not Hispanic or Latino", "Hispanic or Latino",
                  "Not Hispanic or Latino", "Not Hispanic or Latino"],
    "care_site": ["North", "20", None, "North", "North"],
    "device": ["CT scanner Y", None, "unknown", None, None],
    "outcome": [1, 1, 0, 0, 0],
    "days_to_outcome": [1, 365, None, None, None],
    "followup_days": [365, 365, 50, 365, 181],
    "s_a": [0.9, 0.7, 0.2, 0.1, 0.4],
}


def write_cdm(path: Path, *, edit: Callable | None = None,
              sql: Sequence[str] = ()) -> Path:
    """Write the tiny CDM into DuckDB file ``path``; ``edit(rows)`` may change the rows (a
    dict like :data:`ROWS`, copied) and ``sql`` statements run after the load."""
    import copy

    import duckdb

    rows = copy.deepcopy(ROWS)
    ddl = dict(DDL)
    if edit is not None:
        edit(rows, ddl)
    con = duckdb.connect(str(path))
    try:
        for table, cols in ddl.items():
            con.execute(f"CREATE TABLE {table} ({cols})")
            if rows.get(table):
                marks = ", ".join("?" * len(rows[table][0]))
                con.executemany(f"INSERT INTO {table} VALUES ({marks})", rows[table])
        for stmt in sql:
            con.execute(stmt)
    finally:
        con.close()
    return path
