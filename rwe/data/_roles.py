"""Column roles: which column of the table plays which part in an evaluation.

One model serves the Python API and the protocol (``data.columns`` of a protocol is a
:class:`ColumnRoles`). This module imports only pydantic, so reading a protocol does not load
pandas.
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rwe.exceptions import InvalidParameterError

__all__ = ["ColumnRoles", "ROLE_NAMES", "MSG_UNKNOWN_ROLE"]

MSG_UNKNOWN_ROLE = "unknown column role {role!r}{hint}; valid roles: {valid}"
MSG_BAD_ROLE = "column roles: {field}: {problem}"


class _PythonAPIChecks(type(BaseModel)):  # pydantic's model metaclass
    """Constructor checks for calls from Python only: ``ColumnRoles(foo="x")`` raises one
    :class:`~rwe.exceptions.InvalidParameterError` line. Validation inside a protocol goes
    through pydantic's own (nested) path, whose errors the protocol loader turns into
    ``FILE:LINE: data.columns.<key>`` messages with did-you-mean."""

    def __call__(cls, *args: Any, **data: Any) -> Any:
        if args:
            raise InvalidParameterError(
                f"{cls.__name__} takes keyword arguments only (roles by name), got "
                f"{len(args)} positional")
        unknown = [k for k in data if k not in cls.model_fields]
        if unknown:
            role = unknown[0]
            close = difflib.get_close_matches(str(role), list(cls.model_fields), n=1,
                                              cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InvalidParameterError(MSG_UNKNOWN_ROLE.format(
                role=role, hint=hint, valid=", ".join(cls.model_fields)))
        try:
            return super().__call__(**data)
        except ValidationError as err:
            raise InvalidParameterError(_one_line(err)) from None


class ColumnRoles(BaseModel, metaclass=_PythonAPIChecks):
    """Roles of the columns of an evaluation table.

    Build it with keywords (``ColumnRoles(scores={"1.0": "score"}, label="y")``) or from a
    dict (``ColumnRoles(**roles)``); a protocol's ``data.columns`` section is parsed into the
    same class. Frozen and hashable.

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
        Prediction time (for drift and calendar windows).
    site, equipment : str, optional
        Site and acquisition equipment (e.g. scanner vendor); also usable as subgroups.
    attributes : tuple of str
        Categorical subgroup attributes (sex, race, ethnicity, derived age band, ...). A list
        is accepted and stored as a tuple.
    features : tuple of str
        Model input features (continuous or categorical), for drift and SMD.

    Raises
    ------
    InvalidParameterError
        For an unknown role (one line naming it and listing the valid roles) or a value of the
        wrong type.

    Notes
    -----
    The protocol adds its own rule on top (a label, or both time and event, and at least one
    score: :class:`rwe.protocol.DataSpec`); the Python API only requires what
    :meth:`rwe.data.EvaluationSet.from_frame` checks against the table.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = None
    patient_id: str | None = None
    scores: dict[str, str] = Field(default_factory=dict)
    label: str | None = None
    time: str | None = None
    event: str | None = None
    timestamp: str | None = None
    site: str | None = None
    equipment: str | None = None
    attributes: tuple[str, ...] = ()
    features: tuple[str, ...] = ()

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
        """Plain dict (lists for attributes and features); ``ColumnRoles(**d)`` rebuilds it."""
        return {"id": self.id, "patient_id": self.patient_id, "scores": dict(self.scores),
                "label": self.label, "time": self.time, "event": self.event,
                "timestamp": self.timestamp, "site": self.site, "equipment": self.equipment,
                "attributes": list(self.attributes), "features": list(self.features)}

    def with_attributes(self, extra: tuple[str, ...] | list[str]) -> ColumnRoles:
        """A copy with ``extra`` appended to the attributes (those already listed are kept once)."""
        attrs = tuple(dict.fromkeys((*self.attributes, *extra)))
        if attrs == self.attributes:
            return self
        return self.model_copy(update={"attributes": attrs})


#: The role names, in declaration order (valid keys of :class:`ColumnRoles`).
ROLE_NAMES: tuple[str, ...] = tuple(ColumnRoles.model_fields)


def _one_line(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "(roles)"
        problem = e["msg"]
        if "input" in e and not isinstance(e["input"], dict):
            problem += f" (got {e['input']!r})"
        parts.append(MSG_BAD_ROLE.format(field=field, problem=problem))
    return "; ".join(parts)
