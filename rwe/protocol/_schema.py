"""The protocol schema: the study plan written before the data are seen (DESIGN.md principle 5).

Every model forbids unknown keys (``extra="forbid"``), so a typo is an error rather than a
silently ignored setting. Regulatory numbers (goals, margins) have no defaults: they belong in
the protocol.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

if TYPE_CHECKING:
    from rwe.data import ColumnRoles, EvaluationSet

__all__ = [
    "AgeBandSpec", "AlertRule", "ChangeControlSpec", "ColumnsSpec", "DataSpec", "DeviceSpec",
    "DriftSpec", "Goal", "PerformanceSpec", "Period", "PopulationSpec", "Protocol", "ReportSpec",
    "SubgroupsSpec", "SECTIONS",
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


class ColumnsSpec(_Strict):
    """Column roles (see :class:`rwe.data.ColumnRoles`)."""

    id: str | None = None
    patient_id: str | None = None
    scores: dict[str, str] = Field(min_length=1)
    label: str | None = None
    time: str | None = None
    event: str | None = None
    timestamp: str | None = None
    site: str | None = None
    equipment: str | None = None
    attributes: list[str] = Field(default_factory=list)
    features: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _outcome(self) -> ColumnsSpec:
        if self.label is None and (self.time is None or self.event is None):
            raise ValueError("give either label (binary outcome) or both time and event (survival)")
        return self


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


class DataSpec(_Strict):
    path: str = Field(min_length=1)
    format: Literal["csv", "parquet", "duckdb"] | None = None
    query: str | None = None
    description: str | None = None
    columns: ColumnsSpec
    derived: dict[str, AgeBandSpec] = Field(default_factory=dict)
    reference_rows: str | None = Field(
        default=None, description="individual rows of a comparison population (e.g. the "
        "training snapshot): drift baseline and Tipton B")


class PopulationSpec(_Strict):
    reference: str | None = Field(
        default=None, description="a file name in datasets/reference or a path")
    attributes: list[str] = Field(default_factory=list)
    covariates: list[str] = Field(default_factory=list)
    ppr_band: tuple[float, float] = (0.8, 1.2)
    smd_threshold: float = Field(default=0.1, gt=0)
    comparison: str | None = Field(
        default=None, description="path to individual rows of a population to compare with")
    missingness_threshold: float = Field(default=0.2, gt=0, lt=1)

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


class AlertRule(_Strict):
    metric: str
    method: Literal["cusum", "ewma", "risk_adjusted_cusum", "threshold"]
    threshold: float | None = None
    params: dict[str, float] = Field(default_factory=dict)
    by: list[str] = Field(default_factory=list)


class DriftSpec(_Strict):
    reference_period: Period | None = None
    window: Literal["week", "month", "quarter"] = "month"
    features: list[str] = Field(default_factory=list)
    tests: list[Literal["ks", "chi2", "psi", "mmd", "classifier"]] = Field(
        default_factory=lambda: ["ks", "chi2", "psi"])
    alpha: float = Field(default=0.05, gt=0, lt=1)
    alerts: list[AlertRule] = Field(default_factory=list)
    by: list[str] = Field(default_factory=list)


class ChangeControlSpec(_Strict):
    original_version: str
    reference_version: str
    candidate_version: str
    margins: dict[str, float] = Field(min_length=1)
    alpha: float = Field(default=0.025, gt=0, lt=0.5)
    order: list[str] = Field(default_factory=list)
    subgroups: bool = True
    ledger: str | None = None


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
        to comments, whitespace and key order; changes whenever any setting changes."""
        if self._sha256 is None:
            from rwe.protocol._load import canonical_sha256

            self._sha256 = canonical_sha256(self.model_dump(mode="json", by_alias=True,
                                                            exclude_unset=True))
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
        from rwe.data import ColumnRoles

        c = self.data.columns
        attrs = list(c.attributes) + [d for d in self.data.derived if d not in c.attributes]
        return ColumnRoles(id=c.id, patient_id=c.patient_id, scores=dict(c.scores),
                           label=c.label, time=c.time, event=c.event, timestamp=c.timestamp,
                           site=c.site, equipment=c.equipment, attributes=tuple(attrs),
                           features=tuple(c.features))

    def derived_spec(self) -> dict[str, dict]:
        return {k: {"from": v.from_, "cuts": list(v.cuts)} for k, v in self.data.derived.items()}

    def load_data(self) -> EvaluationSet:
        """Load and validate the evaluation data the protocol names."""
        from rwe.data import load_evaluation_set

        return load_evaluation_set(self.resolve(self.data.path), self.roles(),
                                   format=self.data.format, query=self.data.query,
                                   derived=self.derived_spec())

    def summary_spec(self, *, resolution="full", source: str | None = None):
        """What :func:`rwe.summarize` keeps for this protocol: every grouping attribute the
        analyses use (subgroups, intersections, population attributes, site, equipment, drift
        groupings), every model version, the covariates and drift features, the performance
        threshold as a bin edge, and this protocol's sha256 (merges refuse other protocols)."""
        from rwe.stats.summaries import SummarySpec

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

    def load_reference_rows(self):
        """The comparison population rows (``data.reference_rows``) as a DataFrame, or None."""
        if self.data.reference_rows is None:
            return None
        from rwe.data import read_table
        from rwe.data._evaluation_set import apply_derived

        p = self.resolve(self.data.reference_rows)
        return apply_derived(read_table(p), self.derived_spec(), source=p.name)

