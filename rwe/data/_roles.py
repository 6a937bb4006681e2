"""Column roles: which column of the table plays which part in an evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ColumnRoles"]


@dataclass(frozen=True)
class ColumnRoles:
    """Roles of the columns of an evaluation table.

    Parameters
    ----------
    id : str, optional
        Row (case / scan) identifier; must be unique.
    patient_id : str, optional
        Patient identifier, for clustered data (several rows per patient). Enables the
        patient-level cluster bootstrap (AI-DSF App C).
    scores : dict of str to str
        Model version -> column of predicted probabilities in [0, 1]. The first entry is the
        primary version unless the protocol names another.
    label : str, optional
        Binary reference-standard outcome (0/1 or bool).
    time, event : str, optional
        Survival outcome: follow-up time (>= 0) and event indicator (0/1).
    timestamp : str, optional
        Prediction time (for drift windows).
    site, equipment : str, optional
        Site and acquisition equipment (e.g. scanner vendor); also usable as subgroups.
    attributes : tuple of str
        Categorical subgroup attributes (sex, race, ethnicity, derived age band, ...).
    features : tuple of str
        Model input features (continuous or categorical), for drift and SMD.
    """

    id: str | None = None
    patient_id: str | None = None
    scores: dict[str, str] = field(default_factory=dict)
    label: str | None = None
    time: str | None = None
    event: str | None = None
    timestamp: str | None = None
    site: str | None = None
    equipment: str | None = None
    attributes: tuple[str, ...] = ()
    features: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "scores", dict(self.scores))
        object.__setattr__(self, "attributes", tuple(self.attributes))
        object.__setattr__(self, "features", tuple(self.features))

    def __hash__(self) -> int:  # dict field: hash on a canonical tuple
        return hash((self.id, self.patient_id, tuple(self.scores.items()), self.label, self.time,
                     self.event, self.timestamp, self.site, self.equipment, self.attributes,
                     self.features))

    def required_columns(self) -> list[str]:
        """Every column named by a role, in a stable order, without duplicates."""
        cols: list[str] = []
        for c in (self.id, self.patient_id, *self.scores.values(), self.label, self.time,
                  self.event, self.timestamp, self.site, self.equipment, *self.attributes,
                  *self.features):
            if c is not None and c not in cols:
                cols.append(c)
        return cols

    def grouping_columns(self) -> list[str]:
        """Columns that may define subgroups: attributes, site and equipment."""
        cols = list(self.attributes)
        for c in (self.site, self.equipment):
            if c is not None and c not in cols:
                cols.append(c)
        return cols

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "patient_id": self.patient_id, "scores": dict(self.scores),
                "label": self.label, "time": self.time, "event": self.event,
                "timestamp": self.timestamp, "site": self.site, "equipment": self.equipment,
                "attributes": list(self.attributes), "features": list(self.features)}
