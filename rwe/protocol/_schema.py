"""The protocol schema: the study plan written before the data are seen (DESIGN.md principle 5).

Every model forbids unknown keys (``extra="forbid"``), so a typo is an error rather than a
silently ignored setting. Regulatory numbers (goals, margins) have no defaults: they belong in
the protocol.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from rwe.data import ColumnRoles  # imports pydantic only (rwe/data/_roles.py)

if TYPE_CHECKING:
    import pandas as pd

    from rwe.data import EvaluationSet, Source

__all__ = [
    "ALERT_PARAMS", "AgeBandSpec", "AlertRule", "ChangeControlSpec", "ColumnsSpec",
    "CriterionSpec", "DataSpec", "DeviceSpec", "DriftSpec", "Goal", "ModelIdentitySpec",
    "OnlineSpec", "PerformanceSpec", "Period", "PopulationSpec", "Protocol", "ReportSpec",
    "ScoresFileSpec", "SubgroupsSpec", "TestSetSpec", "WindowSpec", "FederationSpec",
    "SECTIONS", "SQLSourceSpec", "OMOPSourceSpec", "SOURCE_KINDS", "DaskSpec", "ENGINES",
    "CHANGE_CONTROL_METRICS", "CRITERION_TESTS",
]

SECTIONS = ("representativeness", "subgroups", "drift", "change_control", "provenance",
            "model_card")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class DeviceSpec(_Strict):
    """The device under evaluation (FDA AI-DSF App E: model card header)."""

    name: str
    version: str
    manufacturer: str | None = None
    intended_use: str
    intended_use_population: str
    description: str | None = None
    training_population: str | None = None
    reference_standard: str | None = None
    udi: str | None = None


#: The protocol's ``data.columns``: the same model as :class:`rwe.data.ColumnRoles` (kept as
#: an alias of it; the data section adds the protocol's outcome rule, :class:`DataSpec`).
ColumnsSpec = ColumnRoles


class AgeBandSpec(_Strict):
    """A derived band attribute: ``{from: age, cuts: [18, 50, 65, 75]}``."""

    from_: str = Field(alias="from")
    cuts: list[float] = Field(min_length=1)

    @field_validator("cuts")
    @classmethod
    def _increasing(cls, v: list[float]) -> list[float]:
        if any(b <= a for a, b in zip(v[:-1], v[1:], strict=False)):
            raise ValueError(f"cut points must be strictly increasing, got {v}")
        return v


class WindowSpec(_Strict):
    """A derived calendar window of the timestamp role: ``{from: scan_date, window: month}``
    (ISO weeks, calendar months or quarters: :func:`rwe.data.calendar_window`)."""

    from_: str = Field(alias="from")
    window: Literal["week", "month", "quarter"]


#: The kinds of derived attribute, by the key that tells them apart.
DERIVED_KINDS: dict[str, type[_Strict]] = {"cuts": AgeBandSpec, "window": WindowSpec}
MSG_DERIVED_KIND = ("a derived attribute is {{from: <numeric column>, cuts: [...]}} (bands) or "
                    "{{from: <timestamp column>, window: week | month | quarter}}; {got}")


def _relocated(err: ValidationError, name: str, kind: str) -> list[dict[str, Any]]:
    """The line errors of a derived spec under ``name`` (no union tag in the path); an unknown
    key gets its suggestion from the spec class chosen (the loader's would look at another)."""
    from rwe.protocol._load import _suggest

    opts = [f.alias or n for n, f in DERIVED_KINDS[kind].model_fields.items()]
    out: list[dict[str, Any]] = []
    for e in err.errors():
        loc = (name, *e["loc"])
        if e["type"] == "extra_forbidden" and e["loc"]:
            key = e["loc"][-1]
            msg = (f"unknown key {key!r}" + _suggest(key, opts)
                   + f" (allowed: {', '.join(opts)})")
            out.append({"type": PydanticCustomError("derived_unknown_key", "{msg}", {"msg": msg}),
                        "loc": loc, "input": {}})
            continue
        rec = {"type": e["type"], "loc": loc, "input": e.get("input")}
        if "ctx" in e:
            rec["ctx"] = e["ctx"]
        out.append(rec)
    return out


def _kind_errors(name: str, spec: Any) -> list[dict[str, Any]]:
    """Why a derived spec is neither kind: not a mapping, both keys, or neither (an unknown key
    is named at its own path, with a suggestion)."""
    from rwe.protocol._load import _suggest

    def err(loc: tuple[Any, ...], msg: str) -> dict[str, Any]:
        return {"type": PydanticCustomError("derived_kind", "{msg}", {"msg": msg}), "loc": loc,
                "input": {}}

    if not isinstance(spec, dict):
        return [err((name,), MSG_DERIVED_KIND.format(got=f"got {type(spec).__name__}"))]
    if all(k in spec for k in DERIVED_KINDS):
        return [err((name,), MSG_DERIVED_KIND.format(got="give cuts or window, not both"))]
    unknown = [k for k in spec if k != "from"]
    if unknown:
        return [err((name, k), f"unknown key {k!r}" + _suggest(k, list(DERIVED_KINDS))
                    + " (allowed: from and either cuts or window)") for k in unknown]
    return [err((name,), MSG_DERIVED_KIND.format(got="cuts or window is missing"))]


_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
MSG_SOURCE_KIND = ("a data source is {{kind: sql, url: ..., query: ...}} or {{kind: omop, url: ..., "
                   "cohort: ..., outcome: ..., horizon: ...}}; {got}")
MSG_SOURCE_PASSWORD = ("a password is never written in a protocol: give it in PGPASSWORD, a "
                       "pgpass file (PGPASSFILE, default ~/.pgpass) or the environment variable "
                       "named by password_env")


def _custom(loc: tuple[Any, ...], kind: str, msg: str) -> dict[str, Any]:
    """A line error whose input is not echoed (``input`` is a mapping): the value may be a
    secret (a URL with a password)."""
    return {"type": PydanticCustomError(kind, "{msg}", {"msg": msg}), "loc": loc, "input": {}}


class _SourceBase(_Strict):
    """What every database source has: the URL (never a password) and how to authenticate."""

    url: str = Field(min_length=1, description="postgresql://[user@]host[:port]/db, or "
                     "duckdb:FILE (relative to the protocol) / duckdb::memory:")
    password_env: str | None = Field(
        default=None, pattern=_IDENTIFIER, description="name of an environment variable "
        "holding the PostgreSQL password (default: PGPASSWORD or a pgpass file)")
    connect_timeout: float = Field(default=10, gt=0, le=600, description="seconds")
    description: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_secret(cls, v: Any) -> Any:
        """A URL holding a password, or a ``password`` key, is refused without echoing it."""
        errors = _secret_errors(v)
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return v


def _secret_errors(v: Any) -> list[dict[str, Any]]:
    """Errors of a source mapping that must not echo their value: a ``password`` key, a URL
    that carries a password or is not a supported database URL."""
    if not isinstance(v, dict):
        return []
    errors = []
    if "password" in v:
        errors.append(_custom(("password",), "source_password", MSG_SOURCE_PASSWORD))
    url = v.get("url")
    if isinstance(url, str) and url.strip():
        from rwe.data._sql import parse_database_url
        from rwe.exceptions import InvalidParameterError

        try:
            parse_database_url(url, Path("."))
        except InvalidParameterError as exc:
            errors.append(_custom(("url",), "source_url", str(exc)))
    return errors


class SQLSourceSpec(_SourceBase):
    """``data.source: {kind: sql, url: ..., query: ...}``: the evaluation table is the result
    of one SQL query on PostgreSQL or DuckDB (:class:`rwe.data.SQLSource`)."""

    kind: Literal["sql"]
    query: str = Field(min_length=1)

    @field_validator("query")
    @classmethod
    def _query(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("the query is empty")
        return v


class OMOPSourceSpec(_SourceBase):
    """``data.source: {kind: omop, ...}``: one row per entry of an OMOP CDM 5.3 / 5.4 cohort,
    outcome from a cohort within ``horizon`` days, scores from a predictions table
    (:class:`rwe.data.OMOPSource`, whose docstring lists the columns)."""

    kind: Literal["omop"]
    schema_: str | None = Field(default=None, alias="schema", pattern=_IDENTIFIER,
                                description="CDM schema (default: the connection's)")
    results_schema: str | None = Field(default=None, pattern=_IDENTIFIER, description="schema "
                                       "of the cohort and predictions tables (default: schema)")
    cohort_table: str = Field(default="cohort", pattern=_IDENTIFIER)
    cohort: int = Field(ge=0, description="cohort_definition_id of the target cohort")
    outcome: int = Field(ge=0, description="cohort_definition_id of the outcome cohort")
    horizon: int = Field(ge=1, description="end of the time at risk, days after the index date")
    risk_window_start: int = Field(default=1, ge=0, description="start of the time at risk, "
                                   "days after the index date")
    predictions: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*"
                                    r"(\.[A-Za-z_][A-Za-z0-9_]*)?$",
                                    description="TABLE or SCHEMA.TABLE of the scores")
    cdm_version: Literal["5.3", "5.4"] | None = None

    @model_validator(mode="after")
    def _window(self) -> OMOPSourceSpec:
        if self.risk_window_start > self.horizon:
            raise ValueError(f"risk_window_start ({self.risk_window_start}) is after the "
                             f"horizon ({self.horizon} days)")
        return self


#: The kinds of data source, by ``kind``.
SOURCE_KINDS: dict[str, type[_SourceBase]] = {"sql": SQLSourceSpec, "omop": OMOPSourceSpec}


def _source_errors(err: ValidationError, kind: str) -> list[dict[str, Any]]:
    """Line errors of a source spec (no union tag in the path; unknown keys with a suggestion
    from the chosen kind)."""
    from rwe.protocol._load import _suggest

    opts = [f.alias or n for n, f in SOURCE_KINDS[kind].model_fields.items()]
    out: list[dict[str, Any]] = []
    for e in err.errors():
        loc = tuple(e["loc"])
        if e["type"] == "extra_forbidden" and loc:
            key = loc[-1]
            out.append(_custom(loc, "source_unknown_key", f"unknown key {key!r}"
                               + _suggest(key, opts) + f" (allowed: {', '.join(opts)})"))
            continue
        rec = {"type": e["type"], "loc": loc, "input": e.get("input")}
        if e["type"] in ("source_password", "source_url"):
            rec = _custom(loc, e["type"], e["msg"])
        elif "ctx" in e:
            rec["ctx"] = e["ctx"]
        out.append(rec)
    return out


MSG_ENGINE_ROWS = ("{where}: dask keeps the rows in their partitions, and this needs them in "
                   "memory as one table (the dossier, change control, monitoring and row-level "
                   "checks); run it with engine: pandas (subgroup performance, "
                   "representativeness, drift and rwe summarize run from partitions)")
#: How the evaluation data are read: ``pandas``, one table in memory; ``dask``, the files in
#: partitions on a dask cluster (``data.dask``).
ENGINES = ("pandas", "dask")
_SCHEDULER = re.compile(r"^(local|((tcp|tls|ws|wss|ucx|inproc)://)?[^\s/:]+(:\d+)?)$")


class DaskSpec(_Strict):
    """``data.dask``: the cluster of ``data.engine: dask``.

    ``scheduler: local`` (the default) starts a ``LocalCluster`` of ``workers`` processes with
    ``threads_per_worker`` threads each for every analysis and closes it afterwards
    (:func:`rwe.data.dask_cluster`); an address (``tcp://HOST:PORT``) uses a running
    scheduler and its workers, which must be able to read ``data.path`` and import rwe.
    """

    scheduler: str = Field(default="local", description="'local' (worker processes started "
                           "by rwe, closed after the analysis) or the address of a running "
                           "dask scheduler, tcp://HOST:PORT")
    workers: int | None = Field(default=None, ge=1, le=512, description="local: worker "
                                "processes (default: the CPUs rwe may use)")
    threads_per_worker: int | None = Field(default=None, ge=1, le=256, description="local: "
                                           "threads per worker (default 1)")
    memory_limit: str | None = Field(default=None, pattern=r"^\d+(\.\d+)?\s*([KMGT]i?B)?$",
                                     description="local: memory per worker, e.g. 4GiB "
                                     "(default: dask's share of the machine)")
    timeout: float = Field(default=10, gt=0, le=600, description="seconds to wait for the "
                           "scheduler")

    @field_validator("scheduler")
    @classmethod
    def _address(cls, v: str) -> str:
        if not _SCHEDULER.match(v.strip()):
            raise ValueError("the scheduler is 'local' or an address such as "
                             "tcp://HOST:PORT")
        return v.strip()

    @model_validator(mode="after")
    def _local_only(self) -> DaskSpec:
        if self.scheduler != "local":
            given = [k for k in ("workers", "threads_per_worker", "memory_limit")
                     if getattr(self, k) is not None]
            if given:
                raise ValueError(f"{', '.join(given)} set{'s' if len(given) == 1 else ''} up "
                                 "a local cluster; a running scheduler (scheduler: "
                                 f"{self.scheduler}) has its own workers")
        return self

    def cluster(self, where: str = "data.dask.scheduler"):
        """The ``with`` block of the analysis (:func:`rwe.data.dask_cluster`)."""
        from rwe.data import dask_cluster

        return dask_cluster(self.scheduler, workers=self.workers,
                            threads_per_worker=self.threads_per_worker or 1,
                            memory_limit=self.memory_limit, timeout=self.timeout, where=where)


class DataSpec(_Strict):
    """The evaluation data: where to read it (a file or a glob pattern of files, ``path``, or a
    database, ``source``), how (``engine``), its column roles, its derived attributes."""

    path: str | None = Field(default=None, min_length=1, description="the data file relative "
                             "to the protocol, or a glob pattern of CSV or Parquet files "
                             "(data/*.parquet; ** matches subdirectories), one table of them "
                             "all")
    format: Literal["csv", "parquet", "duckdb"] | None = None
    query: str | None = None
    engine: Literal[ENGINES] = Field(  # type: ignore[valid-type]
        default="pandas", description="pandas: one table in memory; dask: the files of path "
        "read and summarized in partitions on a dask cluster (data.dask), one task per file; "
        "subgroup performance, representativeness, drift and rwe summarize run from the "
        "merged summaries, what needs rows in memory (the dossier, change control, monitor) "
        "is refused. Not part of the protocol's sha256 (nor data.dask): it changes how the "
        "rows are read, not any result")
    dask: DaskSpec | None = Field(default=None, description="the cluster of engine: dask "
                                  "(default: a local one)")
    source: SQLSourceSpec | OMOPSourceSpec | None = Field(
        default=None, description="a database instead of a file: {kind: sql, url, query} or "
        "{kind: omop, url, schema, cohort, outcome, horizon, predictions}")
    description: str | None = None
    columns: ColumnRoles
    derived: dict[str, AgeBandSpec | WindowSpec] = Field(default_factory=dict)
    reference_rows: str | None = Field(
        default=None, description="individual rows of the development (training) population, "
        "e.g. the training snapshot: drift baseline, and the shift from the development "
        "population in representativeness (SMD, Tipton B)")

    @field_validator("path", "reference_rows")
    @classmethod
    def _not_blank(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("the path is empty; give a data file (relative to the protocol)")
        return v

    @field_validator("source", mode="before")
    @classmethod
    def _source_kind(cls, v: Any) -> Any:
        """Pick the source spec by ``kind``; errors keep their field path (no union tag)."""
        if v is None or isinstance(v, tuple(SOURCE_KINDS.values())):
            return v
        if not isinstance(v, dict):
            raise ValidationError.from_exception_data("DataSpec", [_custom(
                (), "source_kind", MSG_SOURCE_KIND.format(got=f"got {type(v).__name__}"))])
        kind = v.get("kind")
        if kind not in SOURCE_KINDS:
            got = "kind is missing" if kind is None else f"got kind {kind!r}"
            loc = ("kind",) if kind is not None else ()
            raise ValidationError.from_exception_data("DataSpec", [_custom(
                loc, "source_kind", MSG_SOURCE_KIND.format(got=got))])
        # secrets first, then the rest of the spec without them: every problem at once
        errors = _secret_errors(v)
        clean = {k: x for k, x in v.items() if k != "password"}
        if any(e["loc"] == ("url",) for e in errors):
            clean["url"] = "duckdb::memory:"
        try:
            spec = SOURCE_KINDS[kind].model_validate(clean)
        except ValidationError as err:
            errors += _source_errors(err, kind)
        if errors:
            raise ValidationError.from_exception_data("DataSpec", errors)
        return spec

    @model_validator(mode="after")
    def _one_place(self) -> DataSpec:
        if self.source is None and self.path is None:
            raise ValueError("give the evaluation data: path (a file) or source (a database)")
        if self.engine == "dask":
            if self.source is not None:
                raise ValueError("engine: dask reads files (path, e.g. data/*.parquet); a "
                                 "database source is read in batches by rwe (engine: pandas)")
            if self.query is not None or self.format == "duckdb":
                raise ValueError("engine: dask reads CSV or Parquet files in partitions; a "
                                 "DuckDB query reads one table (drop the query, or engine: "
                                 "pandas)")
        elif self.dask is not None:
            raise ValueError("dask (the cluster) is set but engine is pandas; set engine: dask "
                             "to read the data in partitions")
        if self.source is not None:
            given = [k for k in ("path", "format", "query") if getattr(self, k) is not None]
            if given:
                raise ValueError(f"give either path (a file) or source (a database), not both: "
                                 f"{', '.join(given)} belong{'s' if len(given) == 1 else ''} to "
                                 "a file; a source has its own url and query")
        return self

    @field_validator("columns")
    @classmethod
    def _outcome(cls, v: ColumnRoles) -> ColumnRoles:
        # the protocol's rule; the Python API accepts any roles the table satisfies
        if v.label is None and (v.time is None or v.event is None):
            raise ValueError("give either label (binary outcome) or both time and event (survival)")
        if not v.scores:
            raise ValueError("give at least one score column (scores: {version: column})")
        return v

    @field_validator("derived", mode="before")
    @classmethod
    def _derived_kind(cls, v: Any, info: ValidationInfo) -> Any:
        """Pick the spec class by its key (``cuts`` or ``window``), validate it, and check a
        window comes from the timestamp role; errors keep their field path."""
        if not isinstance(v, dict):
            return v  # the dict type check reports it
        columns = info.data.get("columns")
        out: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        for name, spec in v.items():
            if isinstance(spec, tuple(DERIVED_KINDS.values())):
                out[name] = spec
                continue
            kinds = [k for k in DERIVED_KINDS if isinstance(spec, dict) and k in spec]
            if len(kinds) != 1:
                errors += _kind_errors(name, spec)
                continue
            try:
                out[name] = DERIVED_KINDS[kinds[0]].model_validate(spec)
            except ValidationError as err:
                errors += _relocated(err, name, kinds[0])
                continue
            if kinds[0] == "window" and isinstance(columns, ColumnRoles):
                ts = columns.timestamp
                if out[name].from_ != ts:
                    errors.append({"type": PydanticCustomError("window_source", "{msg}", {
                        "msg": ("a calendar window comes from the timestamp column "
                                f"(data.columns.timestamp: {ts!r})" if ts else
                                "a calendar window needs data.columns.timestamp, which is not "
                                "set") + f", got from: {out[name].from_!r}"}),
                        "loc": (name, "from"), "input": {}})
        if errors:
            raise ValidationError.from_exception_data("DataSpec", errors)
        return out


class PopulationSpec(_Strict):
    reference: str | None = Field(
        default=None, description="a file name in datasets/reference or a path")
    attributes: list[str] = Field(default_factory=list)
    covariates: list[str] = Field(default_factory=list)
    ppr_band: tuple[float, float] = (0.8, 1.2)
    smd_threshold: float = Field(default=0.1, gt=0)
    comparison: str | None = Field(
        default=None, description="path to individual rows of a population the device is "
        "meant for, to compare with (else data.reference_rows, the development population, is "
        "compared as the shift from it)")
    missingness_threshold: float = Field(default=0.2, gt=0, lt=1)
    min_age: float | None = Field(
        default=None, ge=0, lt=130,
        description="youngest age of the intended-use population in years (device."
        "intended_use_population; e.g. 40 for adults aged 40 and older): the reference's age "
        "groups are restricted to it, and findings on attributes whose reference figures "
        "cover other ages say so. It must be an age at which a reference age group starts")

    @field_validator("ppr_band")
    @classmethod
    def _band(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 < v[0] < 1 < v[1]:
            raise ValueError(f"ppr_band must be (low, high) with 0 < low < 1 < high, got {v}")
        return v


class SubgroupsSpec(_Strict):
    attributes: list[str] = Field(default_factory=list)
    intersections: list[list[str]] = Field(default_factory=list)
    min_n: int = Field(default=30, ge=1)
    min_events: int = Field(default=5, ge=0)

    @field_validator("intersections")
    @classmethod
    def _pairs(cls, v: list[list[str]]) -> list[list[str]]:
        for item in v:
            if len(item) < 2 or len(set(item)) != len(item):
                raise ValueError(f"an intersection needs two or more distinct attributes, got {item}")
        return v


class Goal(_Strict):
    """A pre-specified performance goal, judged on the confidence bound (SUB-3)."""

    metric: str
    goal: float
    scope: Literal["overall", "subgroups", "all"] = "overall"
    version: str | None = None
    description: str | None = None


class PerformanceSpec(_Strict):
    version: str | None = None
    metrics: list[str] = Field(min_length=1)
    threshold: float = Field(gt=0, lt=1)
    confidence_level: float = Field(default=0.95, gt=0, lt=1)
    proportion_interval: Literal["wilson", "clopper-pearson"] = "wilson"
    ci_method: Literal["analytic", "bootstrap"] = "analytic"
    horizon: float | None = Field(
        default=None, gt=0, description="time horizon of the survival metrics (same unit as "
        "data.columns.time)")
    n_boot: int = Field(default=1000, ge=50, le=100_000,
                        description="bootstrap replicates; 100,000 already make the Monte "
                        "Carlo error negligible")
    seed: int = 0
    multiplicity: Literal["holm", "fdr_bh", "bonferroni", "none"] = "holm"
    heterogeneity_alpha: float = Field(default=0.05, gt=0, lt=1)
    target_half_width: float | None = Field(default=None, gt=0, lt=0.5)
    assumed_value: float = Field(default=0.85, gt=0, lt=1)
    goals: list[Goal] = Field(default_factory=list)


class Period(_Strict):
    start: _dt.date
    end: _dt.date

    @model_validator(mode="after")
    def _order(self) -> Period:
        if self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        return self


#: Parameters each alert method accepts (``params``).
ALERT_PARAMS = {"cusum": ("k", "h"), "ewma": ("lambda", "L"),
                "risk_adjusted_cusum": ("odds_ratio", "h"), "threshold": ()}


class AlertRule(_Strict):
    """A pre-specified alarm rule on a monitored series (EVIDENCE.md MON-1, MON-4).

    ``cusum`` / ``ewma`` chart a metric's per-window z-score against its target value (or its
    baseline); ``risk_adjusted_cusum`` follows the (score, outcome) case stream (Steiner et al.
    2000; ``metric`` is not used); ``threshold`` alarms when a window's interval lies beyond
    ``threshold``. Limits come from ``arl0`` (the target in-control average run length:
    windows, or cases for the risk-adjusted CUSUM) unless ``params`` fixes them (h, L).
    """

    metric: str | None = None
    method: Literal["cusum", "ewma", "risk_adjusted_cusum", "threshold"]
    threshold: float | None = None
    params: dict[str, float] = Field(default_factory=dict)
    by: list[str] = Field(default_factory=list)
    arl0: float | None = Field(default=None, gt=1, description="target in-control ARL")
    side: Literal["two-sided", "upper", "lower"] = "two-sided"
    description: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AlertRule:
        allowed = ALERT_PARAMS[self.method]
        bad = [k for k in self.params if k not in allowed]
        if bad:
            raise ValueError(f"params {bad[0]!r} is not a parameter of {self.method} "
                             f"(allowed: {', '.join(allowed) or 'none'})")
        if self.method != "risk_adjusted_cusum" and self.metric is None:
            raise ValueError(f"a {self.method} rule needs a metric")
        if self.method == "threshold" and self.threshold is None:
            raise ValueError("a threshold rule needs threshold")
        limit = {"cusum": "h", "ewma": "L", "risk_adjusted_cusum": "h"}.get(self.method)
        if limit is not None and self.arl0 is None and limit not in self.params:
            raise ValueError(f"give arl0 (the target in-control ARL) or params.{limit}")
        if limit is not None and self.arl0 is not None and limit in self.params:
            raise ValueError(f"give arl0 or params.{limit}, not both (arl0 chooses the limit)")
        return self


class DriftSpec(_Strict):
    """Drift and monitoring plan (EVIDENCE.md MON-1..MON-6): reference, window, features,
    tests with their effect-size thresholds, groupings, charted metrics and alert rules."""

    reference: Literal["reference_rows", "reference_period"] | None = Field(
        default=None, description="input-drift baseline: data.reference_rows (default when "
        "given) or drift.reference_period of data.path")
    reference_period: Period | None = None
    window: Literal["week", "month", "quarter"] = "month"
    features: list[str] = Field(default_factory=list)
    tests: list[str] = Field(default_factory=lambda: ["ks", "chi2", "psi"])
    thresholds: dict[str, float] = Field(default_factory=dict)
    decision: Literal["effect", "effect_and_pvalue"] = "effect"
    alpha: float = Field(default=0.05, gt=0, lt=1)
    metrics: list[str] = Field(default_factory=lambda: [
        "auroc", "sensitivity", "specificity", "calibration_intercept", "calibration_slope",
        "oe_ratio"])
    feature_bins: int = Field(default=100, ge=2, le=10_000)
    psi_bins: int = Field(default=10, ge=2, le=100)
    exact: bool = False
    min_n: int = Field(default=30, ge=1)
    recalibration_memory: float = Field(
        default=0.7, gt=0, le=1, description="weight per window of age in the dynamic "
        "recalibration curve (1: cumulative)")
    alerts: list[AlertRule] = Field(default_factory=list)
    by: list[str] = Field(default_factory=list)

    @field_validator("thresholds")
    @classmethod
    def _positive(cls, v: dict[str, float]) -> dict[str, float]:
        for k, x in v.items():
            if not x > 0:
                raise ValueError(f"threshold of {k!r} must be > 0, got {x}")
        return v


#: Metrics change control compares on the same cases (paired methods exist for these).
CHANGE_CONTROL_METRICS = ("auroc", "sensitivity", "specificity", "calibration_slope",
                          "calibration_intercept")
#: Tests a change-control criterion can make.
CRITERION_TESTS = ("noninferiority", "superiority", "goal")
_SHA256 = r"^[0-9a-f]{64}$"
MSG_SHA256 = "a sha256 is 64 lowercase hexadecimal digits"


def _sha256_ok(v: str | None) -> str | None:
    if v is not None and not re.fullmatch(_SHA256, v):
        raise ValueError(f"{MSG_SHA256}, got {v!r}")
    return v


class ScoresFileSpec(_Strict):
    """A model version's scores delivered as a file (case id + score), joined on the test set
    by the ``data.columns.id`` column."""

    path: str = Field(min_length=1)
    column: str = Field(min_length=1, description="the score column of the file")
    format: Literal["csv", "parquet", "duckdb"] | None = None


class ModelIdentitySpec(_Strict):
    """Identity of a model version (EVIDENCE.md PRV-6): the tested version is the released one."""

    weights_sha256: str = Field(description="sha256 of the model weights file")
    code_sha256: str | None = Field(default=None, description="sha256 of the pre- and "
                                    "post-processing code (or its release archive)")
    udi: str | None = None
    scores: ScoresFileSpec | None = Field(
        default=None, description="the version's scores on the test set, when they are not a "
        "column of the data (data.columns.scores)")
    description: str | None = None

    @field_validator("weights_sha256", "code_sha256")
    @classmethod
    def _hex(cls, v: str | None) -> str | None:
        return _sha256_ok(v)


class TestSetSpec(_Strict):
    """The sequestered test set (EVIDENCE.md CHG-3, CHG-6): its content hash (case ids, patient
    ids, labels; :func:`rwe.change_control.test_set_sha256`) and how often it may be used."""

    __test__ = False  # not a pytest test class

    sha256: str | None = Field(default=None, description="content hash the data must have")
    path: str | None = Field(default=None, description="a file holding the test set (default: "
                             "data.path), read with the protocol's column roles")
    max_looks: int | None = Field(default=None, ge=1, description="comparisons allowed on this "
                                  "test set before it must be refreshed")
    description: str | None = None

    @field_validator("sha256")
    @classmethod
    def _hex(cls, v: str | None) -> str | None:
        return _sha256_ok(v)


class OnlineSpec(_Strict):
    """Error control across successive updates (METHODS.md C7; :func:`rwe.stats.online_test`).

    ``procedure: fixed`` tests every update at ``change_control.alpha`` (no control across
    updates); the others give update ``t`` a level ``alpha_t`` from the earlier outcomes
    recorded in the ledger."""

    procedure: Literal["fixed", "lord++", "alpha_investing", "saffron"] = "fixed"
    alpha: float | None = Field(default=None, gt=0, lt=1, description="target false discovery "
                                "rate of approvals (default change_control.alpha)")
    w0: float | None = Field(default=None, gt=0, lt=1, description="initial wealth")
    lambda_: float = Field(default=0.5, gt=0, lt=1, alias="lambda",
                           description="SAFFRON candidate threshold")


class CriterionSpec(_Strict):
    """One acceptance criterion of a model update, judged on a confidence bound.

    ``noninferiority``: the candidate's improvement over each comparator (candidate minus
    comparator; for calibration metrics the reduction of the distance to the target) has its
    lower bound above ``-margin``. ``superiority``: above 0. ``goal``: the candidate's own
    metric has its lower bound above ``goal``. Overall and/or in every pre-specified subgroup
    with at least ``min_n`` rows and ``min_events`` events."""

    name: str | None = None
    metric: str
    test: Literal["noninferiority", "superiority", "goal"] = "noninferiority"
    margin: float | None = Field(default=None, ge=0)
    goal: float | None = None
    scope: Literal["overall", "subgroups", "all"] = "all"
    against: Literal["all", "current", "original"] | None = None
    min_n: int | None = Field(default=None, ge=1)
    min_events: int | None = Field(default=None, ge=0)
    required: bool = True
    description: str | None = None

    @model_validator(mode="after")
    def _fields_of_the_test(self) -> CriterionSpec:
        if self.test == "noninferiority" and self.margin is None:
            raise ValueError("a noninferiority criterion needs a margin")
        if self.test != "noninferiority" and self.margin is not None:
            raise ValueError(f"a {self.test} criterion takes no margin")
        if self.test == "goal" and self.goal is None:
            raise ValueError("a goal criterion needs a goal")
        if self.test != "goal" and self.goal is not None:
            raise ValueError(f"a {self.test} criterion takes no goal (use test: goal)")
        if self.test == "goal" and self.against is not None:
            raise ValueError("a goal criterion judges the candidate alone: it takes no against")
        return self

    @property
    def key(self) -> str:
        """The criterion's name: given, else the metric (non-inferiority) or ``metric_test``."""
        if self.name:
            return self.name
        return self.metric if self.test == "noninferiority" else f"{self.metric}_{self.test}"

    @property
    def comparators(self) -> str:
        """Which versions it compares with: every approved one (default for non-inferiority,
        the bio-creep guard), the current one (default for superiority), or the original."""
        if self.against is not None:
            return self.against
        return "current" if self.test == "superiority" else "all"


class ChangeControlSpec(_Strict):
    """The change-control (PCCP) plan: how a model update is accepted (EVIDENCE.md CHG-5..7).

    ``margins: {metric: margin}`` is shorthand for non-inferiority criteria (overall and, with
    ``subgroups``, in every subgroup); ``criteria`` gives the full form. ``order`` is the
    gate-keeping sequence of criterion names; a nested list is a co-primary step judged as an
    intersection-union test (every member must pass); criteria it does not name follow, one
    step each, in the order written. Without ``order`` all criteria form one co-primary step.
    """

    original_version: str
    reference_version: str
    candidate_version: str
    margins: dict[str, float] = Field(default_factory=dict)
    criteria: list[CriterionSpec] = Field(default_factory=list)
    alpha: float = Field(default=0.025, gt=0, lt=0.5, description="one-sided level of each "
                         "update (online.procedure fixed) or the online target rate")
    order: list[str | list[str]] = Field(default_factory=list)
    subgroups: bool | list[str | list[str]] = True
    min_n: int | None = Field(default=None, ge=1, description="default: subgroups.min_n")
    min_events: int | None = Field(default=None, ge=0, description="default: "
                                   "subgroups.min_events")
    multiplicity: Literal["none", "bonferroni", "holm"] = "none"
    paired_interval: Literal["tango", "newcombe", "wald"] = "tango"
    cluster: Literal["auto", "patients", "none"] = "auto"
    n_boot: int = Field(default=1000, ge=200, le=100_000)
    seed: int | None = None
    test_set: TestSetSpec = Field(default_factory=TestSetSpec)
    models: dict[str, ModelIdentitySpec] = Field(default_factory=dict)
    online: OnlineSpec = Field(default_factory=OnlineSpec)
    ledger: str | None = None

    @model_validator(mode="after")
    def _some_criterion(self) -> ChangeControlSpec:
        if not self.margins and not self.criteria:
            raise ValueError("give at least one acceptance criterion (margins or criteria)")
        return self

    def all_criteria(self) -> list[CriterionSpec]:
        """The margins shorthand as criteria, followed by ``criteria`` (a margin's value is
        checked by the protocol loader, which names its line)."""
        out = [CriterionSpec.model_construct(metric=m, test="noninferiority", margin=float(v),
                                             scope="all" if self.subgroups else "overall")
               for m, v in self.margins.items()]
        return out + list(self.criteria)

    def steps(self) -> list[list[str]]:
        """The gate-keeping steps (criterion names; several in a step are co-primary)."""
        names = [c.key for c in self.all_criteria()]
        if not self.order:
            return [names]
        steps = [[x] if isinstance(x, str) else list(x) for x in self.order]
        placed = {n for s in steps for n in s}
        return steps + [[n] for n in names if n not in placed]


#: Largest number of declared score bins (a site summary stays small).
MAX_SCORE_BINS = 100_000


class FederationSpec(_Strict):
    """Federated evaluation (``rwe summarize`` at each site, ``rwe merge`` at the coordinator):
    the resolution of the site summaries and how they are protected before they leave a site.

    ``score_bins`` is the declared score resolution: a number of uniform bins on [0, 1] or the
    bin edges (the performance threshold is always made an edge, so threshold metrics stay
    exact). ``min_count`` is the smallest count other than 0 a site may release (default
    ``report.small_cell_k``; :mod:`rwe.federation` states the rule). ``recode_order`` lists the
    attributes whose values are withheld first when a cell is too small (default: the
    attributes in reverse order of importance: the last attributes of the protocol first, the
    calendar window last). ``sites`` lists the sites expected (a merge refuses any other).
    """

    score_bins: int | list[float] = Field(description="declared score resolution: a number "
                                           "of uniform bins on [0, 1], or the bin edges")
    min_count: int | None = Field(default=None, ge=1, description="smallest non-zero count "
                                  "a site releases (default report.small_cell_k)")
    recode_order: list[str] = Field(default_factory=list)
    sites: list[str] = Field(default_factory=list)

    @field_validator("score_bins")
    @classmethod
    def _bins(cls, v: int | list[float]) -> int | list[float]:
        if isinstance(v, int):
            if not 2 <= v <= MAX_SCORE_BINS:
                raise ValueError(f"score_bins must be between 2 and {MAX_SCORE_BINS:,} bins")
            return v
        if len(v) < 3:
            raise ValueError(f"score bin edges need at least 3 values, got {v}")
        if any(b <= a for a, b in zip(v[:-1], v[1:], strict=False)):
            raise ValueError(f"score bin edges must be strictly increasing, got {v[:8]}")
        if v[0] > 0 or v[-1] < 1:
            raise ValueError(f"score bin edges must cover [0, 1] (first <= 0, last >= 1), got "
                             f"first {v[0]} and last {v[-1]}")
        if len(v) - 1 > MAX_SCORE_BINS:
            raise ValueError(f"at most {MAX_SCORE_BINS:,} score bins, got {len(v) - 1}")
        return v

    @field_validator("sites")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        dup = [s for i, s in enumerate(v) if s in v[:i]]
        if dup:
            raise ValueError(f"site {dup[0]!r} is listed twice")
        if any(not str(s).strip() for s in v):
            raise ValueError("a site name is empty")
        return v


class ReportSpec(_Strict):
    title: str
    sections: list[Literal[SECTIONS]] = Field(default_factory=lambda: list(SECTIONS))  # type: ignore[valid-type]
    small_cell_k: int = Field(default=11, ge=1)
    authors: list[str] = Field(default_factory=list)
    pdf: bool = True


class Protocol(_Strict):
    """A parsed, validated protocol. Build it with :func:`rwe.protocol.load_protocol`."""

    name: str
    description: str | None = None
    device: DeviceSpec
    data: DataSpec
    population: PopulationSpec = Field(default_factory=PopulationSpec)
    subgroups: SubgroupsSpec = Field(default_factory=SubgroupsSpec)
    performance: PerformanceSpec
    drift: DriftSpec | None = None
    change_control: ChangeControlSpec | None = None
    federation: FederationSpec | None = None
    report: ReportSpec

    _path: Path | None = PrivateAttr(default=None)
    _sha256: str | None = PrivateAttr(default=None)
    _file_sha256: str | None = PrivateAttr(default=None)
    _positions: Any = PrivateAttr(default=None)  # line numbers of the YAML, when read from a file

    @property
    def path(self) -> Path | None:
        """The protocol file, when loaded from one."""
        return self._path

    @property
    def base_dir(self) -> Path:
        """Relative paths in the protocol are resolved against the protocol's directory."""
        return self._path.parent if self._path is not None else Path.cwd()

    @property
    def sha256(self) -> str:
        """sha256 of the protocol's canonical form (parsed YAML as sorted-key JSON): insensitive
        to comments, whitespace and key order; changes whenever any setting changes, except
        ``data.engine`` and ``data.dask``: how the rows are read (in memory or in partitions,
        on which cluster), which changes no result (the summaries are the same), so that a
        site reading with dask releases summaries of the coordinator's protocol."""
        if self._sha256 is None:
            from rwe.protocol._load import canonical_sha256

            self._sha256 = canonical_sha256(self.model_dump(
                mode="json", by_alias=True, exclude_unset=True,
                exclude={"data": {"engine", "dask"}}))
        return self._sha256

    @property
    def file_sha256(self) -> str | None:
        """sha256 of the protocol file's bytes, when loaded from a file."""
        return self._file_sha256

    def locate(self, loc: tuple[Any, ...]) -> str:
        """``FILE:LINE: field.path`` of a protocol field, for messages (``loc`` is a pydantic
        location such as ``("population", "attributes", 2)``)."""
        from rwe.protocol._load import _fmt_loc

        pos = self._positions
        where = (pos.source if pos is not None and pos.source else None) or (
            str(self._path) if self._path is not None else "<protocol>")
        line = pos.line(loc) if pos is not None else None
        return f"{where}{f':{line}' if line is not None else ''}: {_fmt_loc(loc)}"

    def resolve(self, path: str | Path) -> Path:
        p = Path(path)
        return p if p.is_absolute() else (self.base_dir / p).resolve()

    def reference_path(self) -> Path | None:
        """The file ``population.reference`` names: a path relative to the protocol, else a
        bundled reference in ``datasets/reference``; None when unset or not found."""
        ref = self.population.reference
        if ref is None:
            return None
        cand = self.resolve(ref)
        if cand.is_file():
            return cand
        from rwe._paths import bundled_reference

        return bundled_reference(ref)

    @property
    def version(self) -> str:
        """The primary model version: performance.version or the first score column."""
        return self.performance.version or next(iter(self.data.columns.scores))

    def roles(self) -> ColumnRoles:
        """The column roles of ``data.columns``, with the derived attributes (age bands,
        calendar windows) appended to the attributes."""
        return self.data.columns.with_attributes(tuple(self.data.derived))

    def derived_spec(self) -> dict[str, dict]:
        """``data.derived`` as plain dicts: ``{"from", "cuts"}`` or ``{"from", "window"}``."""
        return {k: ({"from": v.from_, "cuts": list(v.cuts)} if isinstance(v, AgeBandSpec)
                    else {"from": v.from_, "window": v.window})
                for k, v in self.data.derived.items()}

    def data_source(self) -> Source:
        """The :class:`rwe.data.Source` of ``data`` (path resolved against the protocol; a
        ``data.source`` database: :class:`rwe.data.SQLSource` or :class:`rwe.data.OMOPSource`,
        a relative DuckDB file resolved against the protocol)."""
        from rwe.data import source_from_spec

        return source_from_spec(self.data, self.base_dir)

    def data_location(self) -> str:
        """Where the evaluation data are, for display: the resolved ``data.path``, or the
        database URL of ``data.source`` (never a password)."""
        if self.data.source is None:
            return str(self.resolve(self.data.path))
        from rwe.data._sql import parse_database_url

        src = self.data.source
        where = parse_database_url(src.url, self.base_dir).display
        if isinstance(src, OMOPSourceSpec):
            return (f"{where} (OMOP CDM{' schema ' + src.schema_ if src.schema_ else ''}, "
                    f"cohort {src.cohort}, outcome {src.outcome})")
        return f"{where} (SQL query)"

    def load_data(self) -> EvaluationSet:
        """Load and validate the evaluation data the protocol names, as one table in memory.

        Raises
        ------
        ProtocolError
            ``data.engine`` is dask: the rows stay in their partitions (:meth:`open_data`
            reads them for the analyses that run from summaries).
        """
        from rwe.data import load_evaluation_set

        if self.data.engine == "dask":
            from rwe.exceptions import ProtocolError

            raise ProtocolError(MSG_ENGINE_ROWS.format(where=self.locate(("data", "engine"))),
                                path=str(self.path) if self.path else None)
        return load_evaluation_set(self.data_source(), self.roles(), derived=self.derived_spec())

    @contextlib.contextmanager
    def open_data(self, data: Any = None, *, path: str | Path | None = None) -> Iterator[Any]:
        """The evaluation data of one analysis: ``data`` when given, else :meth:`load_data`
        (``engine: pandas``) or, with ``engine: dask``, a :class:`rwe.data.DaskEvaluationSet`
        of the files of ``data.path`` on the cluster of ``data.dask``, which is started for
        the ``with`` block and closed after it (a local one; a running scheduler is left
        running).

        Parameters
        ----------
        data : EvaluationSet, DaskEvaluationSet or Summary, optional
            Used as it is.
        path : path-like, optional
            A file or pattern (relative to the protocol) read instead of ``data.path``, by the
            same engine.

        Raises
        ------
        DataValidationError
            The pattern matches no file, a file lacks a column, the scheduler is unreachable
            (one line each, naming the file or the protocol field).
        """
        if data is not None:
            yield data
            return
        if self.data.engine != "dask":
            if path is None:
                yield self.load_data()
            else:
                from rwe.data import load_evaluation_set

                yield load_evaluation_set(self.resolve(path), self.roles(),
                                          derived=self.derived_spec())
            return
        from rwe.data import DaskEvaluationSet, source_from_path

        engine = self.locate(("data", "engine"))
        try:
            import dask  # noqa: F401
            import distributed  # noqa: F401
        except ImportError:
            from rwe.exceptions import ProtocolError

            raise ProtocolError(f"{engine}: dask needs dask.distributed, which is not "
                                "installed: pip install 'rwe[scale]'",
                                path=str(self.path) if self.path else None) from None
        src = self.data_source() if path is None else source_from_path(self.resolve(path))
        dev = DaskEvaluationSet.from_source(
            src, self.roles(), derived=self.derived_spec(),
            rows_note=f"{engine} is dask: the rows stay in their partitions")
        spec = self.data.dask or DaskSpec()
        with spec.cluster(where=self.locate(("data", "dask", "scheduler"))
                          if self.data.dask is not None else engine) as client:
            dev.scheduler = client
            try:
                yield dev
            finally:
                dev.scheduler = None

    def summary_spec(self, *, resolution="full", source: str | None = None):
        """What :func:`rwe.summarize` keeps for this protocol: every grouping attribute the
        analyses use (subgroups, intersections, population attributes, site, equipment, drift
        groupings), every model version, the covariates and drift features, the performance
        threshold as a bin edge, and this protocol's sha256 (merges refuse other protocols).

        ``resolution``: ``"full"``, ``"declared"`` (``federation.score_bins``), a number of
        bins or bin edges."""
        from rwe.stats.summaries import SummarySpec

        if isinstance(resolution, str) and resolution == "declared":
            resolution = self.declared_resolution()

        c = self.data.columns
        attrs = list(self.subgroups.attributes)
        attrs += [a for inter in self.subgroups.intersections for a in inter]
        attrs += list(self.population.attributes)
        attrs += [a for a in (c.site, c.equipment) if a is not None]
        if self.drift is not None:
            attrs += list(self.drift.by)
        feats = list(self.population.covariates)
        if self.drift is not None:
            feats += list(self.drift.features)
        return SummarySpec(attributes=tuple(dict.fromkeys(attrs)),
                           versions=tuple(c.scores), features=tuple(dict.fromkeys(feats)),
                           resolution=resolution, thresholds=(self.performance.threshold,),
                           protocol_sha256=self.sha256, source=source)

    def summarize_data(self, *, resolution="full", source: str | None = None,
                       batch_rows: int | None = None):
        """The protocol's data summarized batch by batch (:func:`rwe.stats.streaming.
        summarize_source`: memory bounded by one batch, e.g. a large database table read
        through a server-side cursor), with :meth:`summary_spec`."""
        from rwe.stats.streaming import summarize_source

        return summarize_source(self.data_source(), self.roles(),
                                self.summary_spec(resolution=resolution, source=source),
                                derived=self.derived_spec(), batch_rows=batch_rows)

    def declared_resolution(self) -> int | list[float]:
        """The declared score resolution of summaries (``federation.score_bins``)."""
        if self.federation is None:
            from rwe.exceptions import InvalidParameterError

            raise InvalidParameterError(
                f"{self.path or '<protocol>'}: a declared resolution needs the protocol's "
                "federation section (federation.score_bins)")
        return self.federation.score_bins

    @property
    def min_count(self) -> int:
        """The smallest non-zero count a site summary may release: ``federation.min_count``,
        else ``report.small_cell_k``."""
        fed = self.federation
        return fed.min_count if fed is not None and fed.min_count is not None else (
            self.report.small_cell_k)

    def load_rows(self, path: str | Path) -> pd.DataFrame:
        """Individual rows of another population (a file relative to the protocol) with the
        protocol's derived attributes; calendar windows are skipped when the rows have no
        timestamp column."""
        from rwe.data import apply_derived, source_from_path

        src = source_from_path(self.resolve(path))
        windows = [k for k, v in self.data.derived.items() if isinstance(v, WindowSpec)]
        return apply_derived(src.read(), self.derived_spec(), source=src.name, optional=windows)

    def load_reference_rows(self) -> pd.DataFrame | None:
        """The development population rows (``data.reference_rows``) as a DataFrame, or None."""
        if self.data.reference_rows is None:
            return None
        return self.load_rows(self.data.reference_rows)
