"""The OMOP Common Data Model (CDM 5.3 / 5.4) as a data source: one evaluation row per cohort
entry, demographics from the CDM, outcomes from a cohort table, scores from a predictions table.

:class:`OMOPSource` is a :class:`rwe.data.SQLSource` whose query rwe writes from the CDM
tables (on PostgreSQL or DuckDB alike). Before reading it checks the database: the tables and
columns it reads exist, ``cdm_source.cdm_version`` is 5.3 or 5.4, both cohorts have entries, no
subject's cohort eras overlap (the OHDSI layout: eras of one subject and definition are
disjoint), every subject is a person, the predictions are unique per cohort entry and cover
every entry. Each failure is one line naming the table and what was found.

The evaluation table (:data:`OMOP_COLUMNS`, in order; then the prediction columns):

``row_id``
    ``"<person_id>-<index date YYYY-MM-DD>"``: unique per cohort entry.
``person_id``, ``index_date``, ``cohort_end_date``
    The target cohort's ``subject_id``, ``cohort_start_date`` (the index date) and
    ``cohort_end_date``.
``age``
    Age at index in years, ``YEAR(index_date) - year_of_birth``, as OHDSI FeatureExtraction
    computes it (``DemographicsAge``) [1]_.
``gender``, ``race``, ``ethnicity`` (and their ``*_concept_id``)
    ``person``'s concept ids mapped to ``concept.concept_name``. Concept id 0 (no matching
    concept; Synthea-derived data write it for non-Hispanic ethnicity) becomes the explicit
    category ``"unknown"``, never merged into another; an id absent from ``concept`` becomes
    ``"concept <id>"``; NULL stays missing.
``care_site``, ``care_site_id``
    The person's care site: ``care_site.care_site_name`` (its id as text when the name is
    NULL or the table is absent).
``device``, ``device_concept_id``
    The device concept of the person's latest ``device_exposure`` starting on or before the
    index date (``"unknown"`` for concept 0); missing where the person has none or the table
    is absent.
``outcome``
    1 when an entry of the outcome cohort starts within the time at risk,
    ``index_date + risk_window_start`` to ``index_date + horizon`` days (inclusive; the
    PatientLevelPrediction convention, default start 1 day [2]_), else 0.
``days_to_outcome``
    Days from the index date to the first such outcome (missing without one).
``followup_days``
    Days observed after the index date within the horizon: ``min(horizon, end of the
    observation period holding the index date - index_date)`` (missing when no observation
    period holds the index date). With ``outcome`` as event and
    ``coalesce(days_to_outcome, followup_days)`` as time it gives a survival outcome.

References
----------
.. [1] OHDSI FeatureExtraction, DemographicsAge: ``YEAR(cohort_start_date) - year_of_birth``
   (https://github.com/OHDSI/FeatureExtraction, inst/sql/sql_server/DemographicsAge.sql).
.. [2] Reps JM, Schuemie MJ, Suchard MA, Ryan PB, Rijnbeek PR. Design and implementation of a
   standardized framework to generate and evaluate patient-level prediction models using
   observational healthcare data. J Am Med Inform Assoc 2018;25(8):969-975.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rwe.data._sources import _shown
from rwe.data._sql import DEFAULT_CONNECT_TIMEOUT, SQLSource
from rwe.exceptions import DataValidationError, InvalidParameterError

__all__ = ["OMOPSource", "OMOP_COLUMNS", "CDM_VERSIONS", "UNKNOWN_CONCEPT", "REQUIRED_COLUMNS",
           "MSG_CDM_VERSION", "MSG_OVERLAP", "MSG_NO_TABLE", "MSG_NO_COLUMN", "MSG_EMPTY_COHORT"]

#: CDM versions read (major.minor).
CDM_VERSIONS = ("5.3", "5.4")
#: The category of concept id 0.
UNKNOWN_CONCEPT = "unknown"
#: Columns of the evaluation table, in order (the prediction columns follow).
OMOP_COLUMNS = ("row_id", "person_id", "index_date", "cohort_end_date", "age", "gender", "race",
                "ethnicity", "gender_concept_id", "race_concept_id", "ethnicity_concept_id",
                "care_site", "care_site_id", "device", "device_concept_id", "outcome",
                "days_to_outcome", "followup_days")
#: CDM tables read and the columns each must have (CDM 5.3 and 5.4 alike).
REQUIRED_COLUMNS = {
    "person": ("person_id", "gender_concept_id", "year_of_birth", "race_concept_id",
               "ethnicity_concept_id", "care_site_id"),
    "concept": ("concept_id", "concept_name"),
    "observation_period": ("person_id", "observation_period_start_date",
                           "observation_period_end_date"),
}
#: Tables read where present, and the columns each must then have.
OPTIONAL_COLUMNS = {
    "care_site": ("care_site_id", "care_site_name"),
    "device_exposure": ("device_exposure_id", "person_id", "device_concept_id",
                        "device_exposure_start_date"),
}
#: The OHDSI cohort table layout.
COHORT_COLUMNS = ("cohort_definition_id", "subject_id", "cohort_start_date", "cohort_end_date")
_PERSON_KEYS = ("subject_id", "person_id")
_DATE_KEYS = ("cohort_start_date", "index_date")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

MSG_NO_SCHEMA = "{where}: schema {schema!r} holds no table{hint}"
MSG_NO_TABLE = "{where}: table {table} not found: {why} (tables in {schema}: {found})"
MSG_NO_COLUMN = "{where}: table {table} has no column{s} {missing}: {why}"
MSG_CDM_VERSION = ("{where}: {what} is {found!r}, OMOP CDM {version}; rwe reads OMOP CDM 5.3 and "
                   "5.4")
MSG_CDM_LAYOUT = ("{where}: {person} has a death_datetime column and no cdm_source.cdm_version "
                  "says otherwise: the layout of OMOP CDM 6.0; rwe reads OMOP CDM 5.3 and 5.4")
MSG_CDM_DECLARED = ("{where}: the protocol declares cdm_version {declared}, but {what} is "
                    "{found!r}")
MSG_EMPTY_COHORT = ("{where}: {role} cohort {cid} has no entry in {table} (cohort_definition_ids "
                    "found: {found})")
MSG_OVERLAP = ("{where}: {role} cohort {cid} in {table} has {n} overlapping era{s} (a subject's "
               "cohort_start_date on or before the end of their previous era); OHDSI cohort eras "
               "of one subject are disjoint: collapse them before evaluating")
MSG_REVERSED = ("{where}: {role} cohort {cid} in {table} has {n} era{s} ending before {it} "
                "starts (cohort_end_date < cohort_start_date)")
MSG_NOT_PERSONS = ("{where}: {n} subject{s} of cohort {cid} in {table} {are} not in {person} "
                   "(subject_id must be a person_id)")
MSG_DUPLICATE_PREDICTIONS = ("{where}: predictions table {table} has {n} cohort entr{ies} "
                             "(subject, index date) with more than one row")
MSG_MISSING_PREDICTIONS = ("{where}: {n} of the {total} entries of cohort {cid} have no row in "
                           "predictions table {table} (joined on {keys})")
MSG_PREDICTION_KEYS = ("{where}: predictions table {table} has no {what} column ({options}); "
                       "predictions are joined by person and index date")
MSG_PREDICTION_NAMES = ("{where}: predictions table {table}: column{s} {names} would replace "
                        "the evaluation column{s} of the same name; rename {them}")
_WHY = {
    "person": "not an OMOP CDM schema",
    "concept": "the vocabulary table is needed to name the concepts",
    "observation_period": "not an OMOP CDM schema",
}


def _ident(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _IDENT.match(value):
        raise InvalidParameterError(
            f"{what} must be a plain SQL identifier (letters, digits, _; not starting with a "
            f"digit), got {value!r}")
    return value.lower()


def _int(value: Any, what: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidParameterError(f"{what} must be an integer not less than {low}, but got "
                                    f"{value!r}")
    return value


def _version(text: Any) -> str | None:
    m = re.search(r"(\d+)\.(\d+)", str(text)) if text is not None else None
    return f"{m.group(1)}.{m.group(2)}" if m else None


def _plural(n: int, word: str = "") -> str:
    return "" if n == 1 else "s"



def _missing_columns(problems: list[str], where: str, cdm: str, table: str,
                     need: Sequence[str], have: Any) -> None:
    """Append the message for the columns of ``need`` a CDM table lacks, if any."""
    missing = [c for c in need if c not in have]
    if missing:
        problems.append(MSG_NO_COLUMN.format(
            where=where, table=f"{cdm}.{table}", s=_plural(len(missing)),
            missing=", ".join(missing),
            why=f"an OMOP CDM 5.3 / 5.4 {table} table has {', '.join(need)}"))

class OMOPSource(SQLSource):
    """One evaluation row per entry of an OMOP CDM cohort (see the module notes).

    Parameters
    ----------
    url : str
        The database, as for :class:`rwe.data.SQLSource` (PostgreSQL or DuckDB; no password).
    schema : str, optional
        The CDM schema (default: the connection's current schema).
    results_schema : str, optional
        Where the cohort and predictions tables are (default: ``schema``).
    cohort : int
        ``cohort_definition_id`` of the target cohort (index date: ``cohort_start_date``).
    outcome : int
        ``cohort_definition_id`` of the outcome cohort.
    horizon : int
        End of the time at risk, in days after the index date.
    risk_window_start : int, default 1
        Start of the time at risk, in days after the index date.
    cohort_table : str, default "cohort"
    predictions : str, optional
        A table (``name`` in ``results_schema`` or ``schema.name``) with a person column
        (``subject_id`` or ``person_id``), an index date column (``cohort_start_date`` or
        ``index_date``), optionally ``cohort_definition_id``, and the scores (every other
        column, joined onto the cohort entries).
    cdm_version : {"5.3", "5.4"}, optional
        When given, the database's ``cdm_source.cdm_version`` must agree.
    base_dir, password_env, connect_timeout
        As for :class:`rwe.data.SQLSource`.
    """

    kind = "omop"

    def __init__(self, url: str, *, cohort: int, outcome: int, horizon: int,
                 schema: str | None = None, results_schema: str | None = None,
                 risk_window_start: int = 1, cohort_table: str = "cohort",
                 predictions: str | None = None, cdm_version: str | None = None,
                 base_dir: str | Path | None = None, password_env: str | None = None,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT):
        super().__init__(url, None, base_dir=base_dir, password_env=password_env,
                         connect_timeout=connect_timeout)
        self.schema = None if schema is None else _ident(schema, "schema")
        self.results_schema = (None if results_schema is None
                               else _ident(results_schema, "results_schema"))
        self.cohort = _int(cohort, "cohort", 0)
        self.outcome = _int(outcome, "outcome", 0)
        self.horizon = _int(horizon, "horizon", 1)
        self.risk_window_start = _int(risk_window_start, "risk_window_start", 0)
        if self.risk_window_start > self.horizon:
            raise InvalidParameterError(
                f"risk_window_start ({self.risk_window_start}) is after the horizon "
                f"({self.horizon} days)")
        self.cohort_table = _ident(cohort_table, "cohort_table")
        self.predictions = None
        if predictions is not None:
            parts = str(predictions).split(".")
            if len(parts) > 2:
                raise InvalidParameterError(f"predictions must be TABLE or SCHEMA.TABLE, got "
                                            f"{predictions!r}")
            self.predictions = ".".join(_ident(p, "predictions") for p in parts)
        if cdm_version is not None and str(cdm_version) not in CDM_VERSIONS:
            raise InvalidParameterError(f"cdm_version={cdm_version!r} is not valid; choose one "
                                        f"of: {CDM_VERSIONS}")
        self.cdm_version = None if cdm_version is None else str(cdm_version)
        self._plan: dict[str, Any] | None = None

    # ------------------------------------------------------------------ identity
    @property
    def query(self) -> str | None:  # type: ignore[override]
        """The SQL rwe wrote for this CDM (None until the database was inspected)."""
        return None if self._plan is None else self._plan["sql"]

    def describe(self) -> str:
        what = "PostgreSQL" if self.backend == "postgresql" else "DuckDB"
        return (f"OMOP CDM on {what} {self.url.display}: cohort {self.cohort}, outcome "
                f"{self.outcome} within {self.horizon} days")

    def fingerprint(self) -> dict[str, Any]:
        fp = super().fingerprint()
        plan = self._plan or {}
        fp["omop"] = {"cdm_version": plan.get("cdm_version"), "cdm_source": plan.get("source"),
                      "vocabulary_version": plan.get("vocabulary"),
                      "schema": plan.get("cdm", self.schema),
                      "results_schema": plan.get("res", self.results_schema),
                      "cohort_table": self.cohort_table, "cohort": self.cohort,
                      "outcome": self.outcome, "horizon": self.horizon,
                      "risk_window_start": self.risk_window_start,
                      "predictions": self.predictions, "cohort_entries": plan.get("entries")}
        return fp

    def columns(self) -> list[str]:
        if self._plan is None:
            with self._connection() as con:
                self._prepare(con)
        return list(self._plan["columns"])

    # ------------------------------------------------------------------ inspection
    def _raise(self, lines: list[str]) -> None:
        if lines:
            raise DataValidationError(lines, source=self.where)

    def _prepare(self, con: Any) -> None:
        if self._plan is not None:
            return
        w = self.where
        one = self._fetchall(con, "SELECT current_schema()")
        current = str(one[0][0]).lower() if one and one[0][0] is not None else "main"
        cdm = self.schema or current
        res = self.results_schema or cdm
        pred_schema, pred_table = (self.predictions.split(".") if self.predictions and "."
                                   in self.predictions else (res, self.predictions))
        schemas = sorted({cdm, res} | ({pred_schema} if self.predictions else set()))
        rows = self._fetchall(con, (
            "SELECT lower(table_schema), lower(table_name), lower(column_name) FROM "
            "information_schema.columns WHERE lower(table_schema) IN ("
            + ", ".join(f"'{s}'" for s in schemas) + ") ORDER BY table_schema, table_name, "
            "ordinal_position"))
        tables: dict[tuple[str, str], list[str]] = {}
        for s, t, c in rows:
            tables.setdefault((s, t), []).append(c)

        def names_in(schema: str) -> str:
            found = sorted(t for s, t in tables if s == schema)
            return _shown(found, 12) if found else "none"

        if not any(s == cdm for s, _ in tables):
            others = self._fetchall(con, "SELECT DISTINCT lower(table_schema) FROM "
                                         "information_schema.tables")
            hint = ("; schemas with tables: " + _shown(sorted(r[0] for r in others), 12)
                    if others else "")
            self._raise([MSG_NO_SCHEMA.format(where=w, schema=cdm, hint=hint)])

        # the CDM version first: a schema of another version is named as such
        version, what, found = self._cdm_version(con, cdm, tables)
        problems: list[str] = []
        for table, need in REQUIRED_COLUMNS.items():
            have = tables.get((cdm, table))
            if have is None:
                problems.append(MSG_NO_TABLE.format(where=w, table=f"{cdm}.{table}",
                                                    why=_WHY[table], schema=cdm,
                                                    found=names_in(cdm)))
                continue
            _missing_columns(problems, w, cdm, table, need, have)
        optional = {}
        for table, need in OPTIONAL_COLUMNS.items():
            have = tables.get((cdm, table))
            if have is None:
                optional[table] = False
                continue
            _missing_columns(problems, w, cdm, table, need, have)
            optional[table] = True
        cohort_tab = f"{res}.{self.cohort_table}"
        have = tables.get((res, self.cohort_table))
        if have is None:
            problems.append(MSG_NO_TABLE.format(
                where=w, table=cohort_tab, why="the cohort table (OHDSI layout) holds the index "
                "dates and the outcomes", schema=res, found=names_in(res)))
        else:
            missing = [c for c in COHORT_COLUMNS if c not in have]
            if missing:
                problems.append(MSG_NO_COLUMN.format(
                    where=w, table=cohort_tab, s=_plural(len(missing)),
                    missing=", ".join(missing),
                    why="a cohort table in the OHDSI layout has " + ", ".join(COHORT_COLUMNS)))
        pred_cols: list[str] = []
        pkey = dkey = None
        filter_def = False
        pred_tab = f"{pred_schema}.{pred_table}" if self.predictions else None
        if self.predictions:
            have = tables.get((pred_schema, pred_table))
            if have is None:
                problems.append(MSG_NO_TABLE.format(
                    where=w, table=pred_tab, why="the predictions table holds the scores",
                    schema=pred_schema, found=names_in(pred_schema)))
            else:
                pkey = next((k for k in _PERSON_KEYS if k in have), None)
                dkey = next((k for k in _DATE_KEYS if k in have), None)
                for key, what_, opts in ((pkey, "person", _PERSON_KEYS),
                                         (dkey, "index date", _DATE_KEYS)):
                    if key is None:
                        problems.append(MSG_PREDICTION_KEYS.format(
                            where=w, table=pred_tab, what=what_, options=" or ".join(opts)))
                filter_def = "cohort_definition_id" in have
                pred_cols = [c for c in have if c not in (pkey, dkey, "cohort_definition_id")]
                clash = [c for c in pred_cols if c in OMOP_COLUMNS]
                if clash:
                    problems.append(MSG_PREDICTION_NAMES.format(
                        where=w, table=pred_tab, s=_plural(len(clash)), names=", ".join(clash),
                        them="them" if len(clash) > 1 else "it"))
        self._raise(problems)

        # the cohorts' content
        problems = []
        counts = dict(self._fetchall(con, (
            f"SELECT cohort_definition_id, COUNT(*) FROM {cohort_tab} GROUP BY "
            "cohort_definition_id")))
        counts = {int(k): int(v) for k, v in counts.items() if k is not None}
        ids = _shown([str(k) for k in sorted(counts)], 12) if counts else "none"
        for role, cid in (("target", self.cohort), ("outcome", self.outcome)):
            if not counts.get(cid):
                problems.append(MSG_EMPTY_COHORT.format(where=w, role=role, cid=cid,
                                                        table=cohort_tab, found=ids))
        self._raise(problems)
        for role, cid in dict.fromkeys([("target", self.cohort), ("outcome", self.outcome)]):
            (n_over, n_rev), = self._fetchall(con, (
                "SELECT COALESCE(SUM(CASE WHEN prev_end IS NOT NULL AND cohort_start_date <= "
                "prev_end THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN cohort_end_date < "
                "cohort_start_date THEN 1 ELSE 0 END), 0) FROM (SELECT cohort_start_date, "
                "cohort_end_date, LAG(cohort_end_date) OVER (PARTITION BY subject_id ORDER BY "
                "cohort_start_date, cohort_end_date) AS prev_end FROM "
                f"{cohort_tab} WHERE cohort_definition_id = {cid}) AS eras"))
            n_over, n_rev = int(n_over), int(n_rev)
            if n_over:
                problems.append(MSG_OVERLAP.format(where=w, role=role, cid=cid, table=cohort_tab,
                                                   n=n_over, s=_plural(n_over)))
            if n_rev:
                problems.append(MSG_REVERSED.format(where=w, role=role, cid=cid,
                                                    table=cohort_tab, n=n_rev, s=_plural(n_rev),
                                                    it="it" if n_rev == 1 else "they"))
        (n_np,), = self._fetchall(con, (
            f"SELECT COUNT(DISTINCT c.subject_id) FROM {cohort_tab} c LEFT JOIN {cdm}.person p "
            f"ON p.person_id = c.subject_id WHERE c.cohort_definition_id = {self.cohort} AND "
            "p.person_id IS NULL"))
        if int(n_np):
            n_np = int(n_np)
            problems.append(MSG_NOT_PERSONS.format(where=w, n=n_np, s=_plural(n_np),
                                                   cid=self.cohort, table=cohort_tab,
                                                   are="is" if n_np == 1 else "are",
                                                   person=f"{cdm}.person"))
        if pred_tab is not None:
            cond = f" WHERE cohort_definition_id = {self.cohort}" if filter_def else ""
            (n_dup,), = self._fetchall(con, (
                f"SELECT COUNT(*) FROM (SELECT {pkey}, {dkey} FROM {pred_tab}{cond} GROUP BY "
                f"{pkey}, {dkey} HAVING COUNT(*) > 1) AS d"))
            if int(n_dup):
                n_dup = int(n_dup)
                problems.append(MSG_DUPLICATE_PREDICTIONS.format(
                    where=w, table=pred_tab, n=n_dup, ies="y" if n_dup == 1 else "ies"))
            on = self._prediction_join("c", "pr", pkey, dkey, filter_def)
            (n_miss,), = self._fetchall(con, (
                f"SELECT COUNT(*) FROM {cohort_tab} c LEFT JOIN {pred_tab} pr ON {on} WHERE "
                f"c.cohort_definition_id = {self.cohort} AND pr.{pkey} IS NULL"))
            if int(n_miss):
                problems.append(MSG_MISSING_PREDICTIONS.format(
                    where=w, n=int(n_miss), total=counts[self.cohort], cid=self.cohort,
                    table=pred_tab, keys=f"{pkey} and {dkey}"))
        self._raise(problems)
        source = vocabulary = None
        if (cdm, "cdm_source") in tables:
            cols = tables[(cdm, "cdm_source")]
            pick = [c for c in ("cdm_source_name", "vocabulary_version") if c in cols]
            if pick:
                got = self._fetchall(con, f"SELECT {', '.join(pick)} FROM {cdm}.cdm_source "
                                          "LIMIT 1")
                if got:
                    vals = dict(zip(pick, got[0], strict=True))
                    source, vocabulary = vals.get("cdm_source_name"), vals.get(
                        "vocabulary_version")
        sql = self._build_sql(cdm, cohort_tab, pred_tab, pkey, dkey, filter_def, pred_cols,
                              optional)
        self._plan = {"sql": sql, "columns": list(OMOP_COLUMNS) + pred_cols,
                      "cdm_version": version, "cdm": cdm, "res": res, "source": source,
                      "vocabulary": vocabulary, "entries": counts[self.cohort]}

    def _cdm_version(self, con: Any, cdm: str, tables: dict) -> tuple[str | None, str, Any]:
        """The CDM version (major.minor) from ``cdm_source.cdm_version``, else from the
        structure (CDM 6.0 moved the death date into ``person``); refuses other versions."""
        w = self.where
        found = None
        what = f"{cdm}.cdm_source.cdm_version"
        cols = tables.get((cdm, "cdm_source"), [])
        if "cdm_version" in cols:
            rows = self._fetchall(con, f"SELECT cdm_version FROM {cdm}.cdm_source WHERE "
                                       "cdm_version IS NOT NULL LIMIT 1")
            found = rows[0][0] if rows else None
        version = _version(found)
        if version is None and "death_datetime" in tables.get((cdm, "person"), []):
            self._raise([MSG_CDM_LAYOUT.format(where=w, person=f"{cdm}.person")])
        if version is not None and version not in CDM_VERSIONS:
            self._raise([MSG_CDM_VERSION.format(where=w, what=what, found=found,
                                                version=version)])
        if self.cdm_version is not None and version is not None and version != self.cdm_version:
            self._raise([MSG_CDM_DECLARED.format(where=w, declared=self.cdm_version, what=what,
                                                 found=found)])
        return version, what, found

    @staticmethod
    def _prediction_join(c: str, pr: str, pkey: str, dkey: str, filter_def: bool) -> str:
        on = f"{pr}.{pkey} = {c}.subject_id AND {pr}.{dkey} = {c}.cohort_start_date"
        if filter_def:
            on += f" AND {pr}.cohort_definition_id = {c}.cohort_definition_id"
        return on

    def _date_text(self, expr: str) -> str:
        if self.backend == "postgresql":
            return f"to_char({expr}, 'YYYY-MM-DD')"
        return f"strftime({expr}, '%Y-%m-%d')"

    def _build_sql(self, cdm: str, cohort_tab: str, pred_tab: str | None, pkey: str | None,
                   dkey: str | None, filter_def: bool, pred_cols: list[str],
                   optional: dict[str, bool]) -> str:
        """The evaluation query: dialect-neutral SQL (PostgreSQL and DuckDB), every output
        column cast to one type so that both databases give the same Arrow schema."""

        def named(cid: str, alias: str) -> str:
            return (f"CASE WHEN {cid} IS NULL THEN NULL WHEN {cid} = 0 THEN '{UNKNOWN_CONCEPT}' "
                    f"ELSE CAST(COALESCE({alias}.concept_name, 'concept ' || CAST({cid} AS "
                    "VARCHAR)) AS VARCHAR) END")

        s, h = self.risk_window_start, self.horizon
        ctes = [
            f"target AS (SELECT cohort_definition_id, subject_id, cohort_start_date, "
            f"cohort_end_date FROM {cohort_tab} WHERE cohort_definition_id = {self.cohort})",
            f"outcome_first AS (SELECT t.subject_id, t.cohort_start_date, "
            f"MIN(o.cohort_start_date) AS outcome_date FROM target t JOIN {cohort_tab} o ON "
            f"o.subject_id = t.subject_id AND o.cohort_definition_id = {self.outcome} AND "
            f"o.cohort_start_date >= t.cohort_start_date + {s} AND o.cohort_start_date <= "
            f"t.cohort_start_date + {h} GROUP BY t.subject_id, t.cohort_start_date)",
            f"observed AS (SELECT t.subject_id, t.cohort_start_date, "
            f"MAX(op.observation_period_end_date) AS observed_until FROM target t JOIN "
            f"{cdm}.observation_period op ON op.person_id = t.subject_id AND "
            "op.observation_period_start_date <= t.cohort_start_date AND "
            "op.observation_period_end_date >= t.cohort_start_date GROUP BY t.subject_id, "
            "t.cohort_start_date)",
        ]
        joins = [
            f"JOIN {cdm}.person p ON p.person_id = t.subject_id",
            f"LEFT JOIN {cdm}.concept cg ON cg.concept_id = p.gender_concept_id",
            f"LEFT JOIN {cdm}.concept cr ON cr.concept_id = p.race_concept_id",
            f"LEFT JOIN {cdm}.concept ce ON ce.concept_id = p.ethnicity_concept_id",
            "LEFT JOIN outcome_first o1 ON o1.subject_id = t.subject_id AND "
            "o1.cohort_start_date = t.cohort_start_date",
            "LEFT JOIN observed ob ON ob.subject_id = t.subject_id AND "
            "ob.cohort_start_date = t.cohort_start_date",
        ]
        if optional.get("care_site"):
            joins.append(f"LEFT JOIN {cdm}.care_site cs ON cs.care_site_id = p.care_site_id")
            site = ("CAST(COALESCE(cs.care_site_name, CAST(p.care_site_id AS VARCHAR)) AS "
                    "VARCHAR)")
        else:
            site = "CAST(p.care_site_id AS VARCHAR)"
        if optional.get("device_exposure"):
            ctes.append(
                "device AS (SELECT subject_id, cohort_start_date, device_concept_id FROM ("
                "SELECT t.subject_id, t.cohort_start_date, d.device_concept_id, ROW_NUMBER() "
                "OVER (PARTITION BY t.subject_id, t.cohort_start_date ORDER BY "
                "d.device_exposure_start_date DESC, d.device_exposure_id DESC) AS rn FROM target "
                f"t JOIN {cdm}.device_exposure d ON d.person_id = t.subject_id AND "
                "d.device_exposure_start_date <= t.cohort_start_date) AS latest WHERE rn = 1)")
            joins.append("LEFT JOIN device dv ON dv.subject_id = t.subject_id AND "
                         "dv.cohort_start_date = t.cohort_start_date")
            joins.append(f"LEFT JOIN {cdm}.concept cd ON cd.concept_id = dv.device_concept_id")
            device_id, device = "dv.device_concept_id", named("dv.device_concept_id", "cd")
        else:
            device_id, device = "NULL", "CAST(NULL AS VARCHAR)"
        if pred_tab is not None:
            joins.append(f"LEFT JOIN {pred_tab} pr ON "
                         + self._prediction_join("t", "pr", pkey, dkey, filter_def))
        select = [
            f"CAST(t.subject_id AS VARCHAR) || '-' || {self._date_text('t.cohort_start_date')} "
            "AS row_id",
            "CAST(t.subject_id AS BIGINT) AS person_id",
            "CAST(t.cohort_start_date AS DATE) AS index_date",
            "CAST(t.cohort_end_date AS DATE) AS cohort_end_date",
            "CAST(EXTRACT(YEAR FROM t.cohort_start_date) AS INTEGER) - CAST(p.year_of_birth AS "
            "INTEGER) AS age",
            f"{named('p.gender_concept_id', 'cg')} AS gender",
            f"{named('p.race_concept_id', 'cr')} AS race",
            f"{named('p.ethnicity_concept_id', 'ce')} AS ethnicity",
            "CAST(p.gender_concept_id AS BIGINT) AS gender_concept_id",
            "CAST(p.race_concept_id AS BIGINT) AS race_concept_id",
            "CAST(p.ethnicity_concept_id AS BIGINT) AS ethnicity_concept_id",
            f"{site} AS care_site",
            "CAST(p.care_site_id AS BIGINT) AS care_site_id",
            f"{device} AS device",
            f"CAST({device_id} AS BIGINT) AS device_concept_id",
            "CAST(CASE WHEN o1.outcome_date IS NULL THEN 0 ELSE 1 END AS INTEGER) AS outcome",
            "CAST(o1.outcome_date - t.cohort_start_date AS INTEGER) AS days_to_outcome",
            f"CAST(CASE WHEN ob.observed_until IS NULL THEN NULL WHEN ob.observed_until - "
            f"t.cohort_start_date < {h} THEN ob.observed_until - t.cohort_start_date ELSE {h} "
            "END AS INTEGER) AS followup_days",
        ]
        select += [f"pr.{c} AS {c}" for c in pred_cols]
        return ("WITH " + ",\n".join(ctes) + "\nSELECT " + ",\n  ".join(select)
                + "\nFROM target t\n" + "\n".join(joins)
                + "\nORDER BY t.subject_id, t.cohort_start_date")
