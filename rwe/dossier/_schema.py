"""The JSON Schema of ``results.json``, generated from the result types.

Each section's record is its result's ``to_dict()``; the schema is derived from the result
dataclasses themselves (their fields and type hints, the column constants of their tables,
the status and severity vocabularies of :mod:`rwe._evidence`), so a field added to a result
shows up here and in ``rwe/dossier/results.schema.json`` when that file is regenerated::

    python -m rwe.dossier._schema > rwe/dossier/results.schema.json

A test regenerates the schema, compares it with the committed file and validates a demo
dossier's ``results.json`` against it (JSON Schema draft 2020-12).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["results_schema", "dataclass_schema", "SCHEMA_PATH", "schema_text"]

SCHEMA_PATH = Path(__file__).with_name("results.schema.json")
DIALECT = "https://json-schema.org/draft/2020-12/schema"
_NULL = {"type": "null"}


def _frame(columns: Sequence[str]) -> dict[str, Any]:
    """A table written as a list of records: every column present (more are allowed)."""
    return {"type": "array", "items": {"type": "object", "required": list(columns),
                                       "properties": {c: {} for c in columns}}}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, _NULL]}


def _type_schema(tp: Any, refs: Mapping[type, str]) -> dict[str, Any]:
    """JSON Schema of a type hint (floats may be null: ``json_safe`` writes NaN as null)."""
    import pandas as pd

    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any or tp is object:
        return {}
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        inner = _type_schema(rest[0], refs) if len(rest) == 1 else {
            "anyOf": [_type_schema(a, refs) for a in rest]}
        return _nullable(inner) if type(None) in args else inner
    if isinstance(tp, type) and tp in refs:
        return {"$ref": f"#/$defs/{refs[tp]}"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": ["number", "null"]}
    if tp is str:
        return {"type": "string"}
    if tp is pd.DataFrame:
        return {"type": "array", "items": {"type": "object"}}
    if origin in (tuple, list, Sequence) or tp in (tuple, list):
        if args and (len(args) == 1 or args[-1] is Ellipsis):
            return {"type": "array", "items": _type_schema(args[0], refs)}
        return {"type": "array"}
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if len(args) == 2 and args[1] is not Any:
            return {"type": "object", "additionalProperties": _type_schema(args[1], refs)}
        return {"type": "object"}
    if dataclasses.is_dataclass(tp):
        return {"type": "object"}
    raise TypeError(f"no JSON Schema for type {tp!r}")


def _hints(cls: type) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    from rwe._evidence import Finding, Verdict
    from rwe._results import Interval

    return typing.get_type_hints(cls, localns={"pd": pd, "np": np, "Verdict": Verdict,
                                               "Finding": Finding, "Interval": Interval})


def dataclass_schema(cls: type, refs: Mapping[type, str], *,
                     frames: Mapping[str, Sequence[str]] | None = None,
                     enums: Mapping[str, Sequence[str]] | None = None,
                     extra: Mapping[str, dict] | None = None,
                     override: Mapping[str, dict] | None = None,
                     skip: Sequence[str] = (), closed: bool = False) -> dict[str, Any]:
    """Schema of the ``to_dict()`` of dataclass ``cls``: one property per field (typed from
    its hint; ``frames`` gives the columns of table fields, ``enums`` the allowed values),
    plus ``extra`` keys that ``to_dict`` adds; every property is required."""
    hints = _hints(cls)
    props: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name.startswith("_") or f.name in skip:
            continue
        if frames and f.name in frames:
            props[f.name] = _frame(frames[f.name])
        elif override and f.name in override:
            props[f.name] = override[f.name]
        else:
            props[f.name] = _type_schema(hints[f.name], refs)
        if enums and f.name in enums:
            props[f.name] = {**props[f.name], "enum": list(enums[f.name])}
    props.update(extra or {})
    out = {"type": "object", "required": sorted(props), "properties": props}
    if closed:
        out["additionalProperties"] = False
    return out


def results_schema() -> dict[str, Any]:
    """The JSON Schema of ``results.json`` (schema ``rwe.dossier.results/3``)."""
    from rwe._evidence import SEVERITIES, STATUSES, Finding, Verdict
    from rwe._results import Interval
    from rwe.cohort import _table1 as t1
    from rwe.data._provenance import MISSING_COLUMNS, ProvenanceResult
    from rwe.dossier._build import RESULTS_SCHEMA
    from rwe.dossier._modelcard import ModelCardResult
    from rwe.dossier._plans import PlanResult
    from rwe.dossier._sections import ALL_SECTION_SPECS
    from rwe.federation import _result as fed
    from rwe.representativeness import TiptonResult
    from rwe.representativeness import _representativeness as rep
    from rwe.stats import MetaAnalysisResult
    from rwe.subgroups import _result as sub

    refs = {Verdict: "Verdict", Finding: "Finding", Interval: "Interval",
            TiptonResult: "TiptonResult"}
    findings = {"type": "array", "items": {"$ref": "#/$defs/Finding"}}
    verdicts = {"type": "array", "items": {"$ref": "#/$defs/Verdict"}}
    defs = {
        "Interval": dataclass_schema(Interval, refs, closed=True),
        "Verdict": dataclass_schema(Verdict, refs, enums={
            "status": STATUSES, "kind": ("goal", "check", "criterion")}, closed=True),
        "Finding": dataclass_schema(Finding, refs, enums={"severity": SEVERITIES}, closed=True),
        "TiptonResult": dataclass_schema(TiptonResult, refs),
    }
    import rwe.change_control._result as cr
    import rwe.drift._result as dr

    absent = dataclass_schema(PlanResult, refs, extra={"status": {"enum": list(STATUSES)}})
    sections = {
        "subgroups": dataclass_schema(sub.SubgroupPerformanceResult, refs, frames={
            "table": sub.TABLE_COLUMNS, "heterogeneity": sub.HET_COLUMNS,
            "fairness": sub.FAIR_COLUMNS, "goals": sub.GOAL_COLUMNS, "roc": sub.ROC_COLUMNS,
            "calibration": sub.CALIBRATION_COLUMNS}),
        "representativeness": dataclass_schema(rep.RepresentativenessResult, refs, frames={
            "shares": rep.SHARE_COLUMNS, "tests": rep.TEST_COLUMNS, "smd": rep.SMD_COLUMNS,
            "coverage": rep.COVERAGE_COLUMNS, "adequacy": rep.ADEQUACY_COLUMNS,
            "sites": rep.SITE_COLUMNS, "missingness": rep.MISSING_COLUMNS},
            override={"findings": findings, "reference": {"type": "object", "required": [
                "name", "source", "metadata", "shares"]},
                "intersections": {"type": "array", "items": {"type": "array",
                                                             "items": {"type": "string"}}}},
            extra={"verdicts": verdicts, "table1": dataclass_schema(
                t1.TableOneResult, refs, frames={"table": t1.TABLE_COLUMNS,
                                                 "counts": t1.COUNT_COLUMNS})}),
        "provenance": dataclass_schema(ProvenanceResult, refs, frames={
            "missingness": MISSING_COLUMNS, "files": (
                "role", "kind", "format", "file", "bytes", "sha256", "protocol_path")},
            extra={"verdicts": verdicts, "findings": findings}),
        # the section's result, or, when the protocol has no such block, a PlanResult
        "drift": {"oneOf": [dataclass_schema(dr.DriftResult, refs, frames=dr._FRAMES),
            absent]},
        "change_control": {"oneOf": [dataclass_schema(cr.ComparisonResult, refs, frames={
            "table": cr.TABLE_COLUMNS, "criteria": cr.CRITERIA_COLUMNS,
            "cumulative": cr.CUMULATIVE_COLUMNS, "roc": cr.ROC_COLUMNS},
            override={"decision": {"$ref": "#/$defs/Verdict"},
                      "ledger": {"type": ["object", "null"]}}), absent]},
        "model_card": dataclass_schema(ModelCardResult, refs),
    }
    # Table 1 needs rows: a federated merge's representativeness has none
    sections["representativeness"]["required"].remove("table1")
    site_file = {"type": "object", "required": ["site", "file", "checksum", "rows", "events",
                                                "period", "disclosure"]}
    sections["federation"] = dataclass_schema(
        fed.FederatedResult, refs, frames={"meta": fed.META_COLUMNS,
                                           "site_estimates": fed.SITE_COLUMNS},
        override={
            "sites": {"type": "array", "items": site_file},
            "per_site": {"type": "object", "additionalProperties": {
                "type": "object", "additionalProperties": False, "properties": {
                    "subgroups": {"$ref": "#/$defs/SubgroupPerformanceResult"},
                    "representativeness": {"$ref": "#/$defs/RepresentativenessResult"}}}},
            "meta_results": {"type": "object", "additionalProperties": dataclass_schema(
                MetaAnalysisResult, refs)},
            "findings": findings,
            "limitations": {"type": "array", "items": {
                "type": "object", "additionalProperties": False,
                "required": list(fed.LIMITATION_KEYS),
                "properties": {key: {"type": "string"} for key in fed.LIMITATION_KEYS}}}},
        skip=("sections", "merged"),
        extra={"counts": {"type": "object", "required": ["rows", "events", "sites"]},
               "period": {"type": ["object", "null"]}})
    # a site's own analyses have the pooled sections' shape: one definition each
    for name, ref in (("subgroups", "SubgroupPerformanceResult"),
                      ("representativeness", "RepresentativenessResult")):
        defs[ref] = sections[name]
        sections[name] = {"$ref": f"#/$defs/{ref}"}
    protocol = {"type": "object", "additionalProperties": False, "required": [
        "name", "title", "file", "sha256", "file_sha256", "version", "seed", "small_cell_k",
        "sections", "device"], "properties": {
        "name": {"type": "string"}, "title": {"type": "string"},
        "file": {"type": ["string", "null"]}, "sha256": {"type": "string"},
        "file_sha256": {"type": ["string", "null"]}, "version": {"type": "string"},
        "seed": {"type": ["integer", "null"]}, "small_cell_k": {"type": "integer"},
        "sections": {"type": "array", "items": {"enum": [s.name for s in ALL_SECTION_SPECS]}},
        "device": {"type": "object", "required": ["name", "intended_use"]}}}
    finding_item = {"type": "object", "required": ["section", "code", "subject", "values",
                                                   "counts", "severity", "text"],
                    "properties": {"section": {"enum": [s.name for s in ALL_SECTION_SPECS]},
                                   **defs["Finding"]["properties"],
                                   "text": {"type": "string"},
                                   "suppressed": {"const": True}},
                    "additionalProperties": False}
    return {
        "$schema": DIALECT,
        "$id": "https://rwe.invalid/schemas/results-2.json",
        "title": "rwe evidence dossier: results.json",
        "description": "Generated by rwe/dossier/_schema.py from the result types; do not edit.",
        "type": "object",
        "additionalProperties": False,
        "required": ["schema", "protocol", "sections", "verdicts", "findings"],
        "properties": {
            "schema": {"const": RESULTS_SCHEMA},
            "protocol": protocol,
            "sections": {"type": "object", "additionalProperties": False,
                         "properties": sections},
            "verdicts": verdicts,
            "findings": {"type": "array", "items": finding_item},
        },
        "$defs": defs,
    }


def schema_text() -> str:
    """The schema as the committed file holds it."""
    return json.dumps(results_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(schema_text(), end="")
