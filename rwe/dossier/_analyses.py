"""What each dossier section computes, and how its typed result is saved and loaded.

One :class:`SectionAnalysis` per section: ``compute(protocol, evset, others)`` calls the rwe
analysis (the dossier computes no statistic itself), ``to_dict`` / ``from_dict`` give the
JSON record that goes into ``results.json["sections"][name]`` and that a batch build hands to
the section's notebook, and ``verdicts`` / ``findings`` read the typed verdicts and findings
of a result. ``rwe dossier`` runs every analysis once, in the orchestrator; a notebook run by
hand in JupyterLab computes its own section through the same function.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["SectionAnalysis", "ANALYSES", "analysis", "compute_section", "load_result",
           "result_verdicts", "result_findings", "provenance_sources"]


def _attr(name: str) -> Callable[[Any], tuple]:
    return lambda result: tuple(getattr(result, name, ()) or ())


@dataclass(frozen=True)
class SectionAnalysis:
    """How one section gets its typed result.

    Attributes
    ----------
    compute : callable
        ``compute(protocol, evset, others) -> result``; ``evset`` is None for a section with
        ``needs_data=False``; ``others`` maps the names in ``needs`` to their results.
    to_dict, from_dict : callable
        The result's JSON record and back.
    needs_data : bool
        The analysis reads the evaluation data.
    needs : tuple of str
        Sections whose results it reads (they are computed first).
    verdicts, findings : callable
        The result's typed verdicts and findings.
    extras : dict
        Further results shown in the same section: ``{key: (compute, to_dict, from_dict)}``;
        each record is stored under ``key`` in the section's record.
    """

    compute: Callable[..., Any]
    to_dict: Callable[[Any], dict]
    from_dict: Callable[[Mapping[str, Any]], Any]
    needs_data: bool = True
    needs: tuple[str, ...] = ()
    verdicts: Callable[[Any], tuple] = _attr("verdicts")
    findings: Callable[[Any], tuple] = _attr("findings")
    extras: dict[str, tuple] = dataclasses.field(default_factory=dict)


# ----------------------------------------------------------------------------- sections
def _representativeness(protocol: Any, evset: Any, others: Mapping[str, Any]) -> Any:
    from rwe.representativeness import representativeness_from_protocol

    return representativeness_from_protocol(protocol, evset)


def _rep_bridge() -> Any:
    from rwe.dossier import _rep_bridge

    return _rep_bridge


def _table1(protocol: Any, evset: Any, others: Mapping[str, Any]) -> Any:
    from rwe.cohort import table_one_from_protocol

    return table_one_from_protocol(protocol, evset)


def _table1_from_dict(d: Mapping[str, Any]) -> Any:
    from rwe.cohort import TableOneResult

    return TableOneResult.from_dict(d)


def _subgroups(protocol: Any, evset: Any, others: Mapping[str, Any]) -> Any:
    from rwe.subgroups import subgroup_performance_from_protocol

    return subgroup_performance_from_protocol(protocol, evset)


def _subgroups_from_dict(d: Mapping[str, Any]) -> Any:
    from rwe.subgroups import SubgroupPerformanceResult

    return SubgroupPerformanceResult.from_dict(d)


def provenance_sources(protocol: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The inputs to fingerprint, by role, and the paths as the protocol writes them."""
    p = protocol
    written: dict[str, Any] = {"evaluation data": p.data.path}
    sources: dict[str, Any] = {"evaluation data": p.data_source()}
    if p.data.reference_rows:
        role = "comparison population rows (data.reference_rows)"
        written[role] = p.data.reference_rows
        sources[role] = p.resolve(p.data.reference_rows)
    if p.population.comparison:
        role = "comparison population rows (population.comparison)"
        written[role] = p.population.comparison
        sources[role] = p.resolve(p.population.comparison)
    ref = p.population.reference
    if ref is not None:
        written["reference population"] = ref
        sources["reference population"] = p.reference_path() or p.resolve(ref)
    return sources, written


#: Fingerprint fields kept in a dossier: no absolute path of the machine that built it.
_FILE_KEYS = ("role", "kind", "format", "file", "bytes", "sha256", "query", "rows", "columns")


def _generator(path: Any) -> str | None:
    """The program that wrote a Parquet file, when it says so (``rwe.generator`` in its
    key-value metadata: the demo data are synthetic)."""
    from pathlib import Path

    p = Path(str(path)) if path is not None else None
    if p is None or p.suffix.lower() != ".parquet" or not p.is_file():
        return None
    try:
        import pyarrow.parquet as pq

        meta = pq.read_schema(p).metadata or {}
    except Exception:  # unreadable metadata: no claim either way
        return None
    value = meta.get(b"rwe.generator")
    return value.decode("utf-8", "replace") if value else None


def _provenance(protocol: Any, evset: Any, others: Mapping[str, Any]) -> Any:
    from rwe.data import provenance

    sources, written = provenance_sources(protocol)
    prov = provenance(evset, sources=sources,
                      missingness_threshold=protocol.population.missingness_threshold)
    files = tuple({**{k: f.get(k) for k in _FILE_KEYS}, "protocol_path": written.get(f["role"]),
                   "generator": _generator(f.get("path"))} for f in prov.files)
    return dataclasses.replace(prov, files=files)


def _provenance_from_dict(d: Mapping[str, Any]) -> Any:
    from rwe.data._provenance import ProvenanceResult

    return ProvenanceResult.from_dict(d)


def _plan(name: str) -> SectionAnalysis:
    def compute(protocol: Any, evset: Any, others: Mapping[str, Any]) -> Any:
        from rwe.dossier import _plans

        return getattr(_plans, f"{name}_plan")(protocol)

    def from_dict(d: Mapping[str, Any]) -> Any:
        from rwe.dossier._plans import PlanResult

        return PlanResult.from_dict(d)

    return SectionAnalysis(compute, lambda r: r.to_dict(), from_dict, needs_data=False)


def _model_card(protocol: Any, evset: Any, others: Mapping[str, Any]) -> Any:
    from rwe.dossier._modelcard import model_card

    return model_card(protocol, {k: v for k, v in others.items() if not k.startswith("_")},
                      plan=others.get("_plan"))


def _model_card_from_dict(d: Mapping[str, Any]) -> Any:
    from rwe.dossier._modelcard import ModelCardResult

    return ModelCardResult.from_dict(d)


ANALYSES: dict[str, SectionAnalysis] = {
    # stop-gap until the representativeness result types its own verdicts and findings and
    # round-trips through to_dict/from_dict: then this entry becomes
    # SectionAnalysis(_representativeness, lambda r: r.to_dict(),
    #                 RepresentativenessResult.from_dict)
    "representativeness": SectionAnalysis(
        _representativeness, lambda r: _rep_bridge().to_dict(r),
        lambda d: _rep_bridge().from_dict(d),
        verdicts=lambda r: _rep_bridge().verdicts(r),
        findings=lambda r: _rep_bridge().findings(r),
        # Table 1 (REP-2) belongs to this section until the representativeness module owns it
        extras={"table1": (_table1, lambda t: t.to_dict(), _table1_from_dict)}),
    "subgroups": SectionAnalysis(_subgroups, lambda r: r.to_dict(), _subgroups_from_dict),
    "drift": _plan("drift"),
    "change_control": _plan("change_control"),
    "provenance": SectionAnalysis(_provenance, lambda r: r.to_dict(), _provenance_from_dict),
    "model_card": SectionAnalysis(_model_card, lambda r: r.to_dict(), _model_card_from_dict,
                                  needs_data=False,
                                  needs=("representativeness", "subgroups", "drift",
                                         "change_control", "provenance")),
}


def analysis(name: str) -> SectionAnalysis:
    """The :class:`SectionAnalysis` of section ``name``."""
    from rwe.dossier._sections import section_spec

    section_spec(name)  # unknown names: one clear error
    return ANALYSES[name]


def compute_section(name: str, protocol: Any, evset: Any = None,
                    others: Mapping[str, Any] | None = None) -> Any:
    """The typed result of section ``name`` (``others``: results it reads, by section)."""
    a = analysis(name)
    got = {k: v for k, v in (others or {}).items() if k in a.needs or k.startswith("_")}
    return a.compute(protocol, evset if a.needs_data else None, got)


def load_result(name: str, record: Mapping[str, Any]) -> Any:
    """The typed result of section ``name`` from its saved record."""
    return analysis(name).from_dict(record)


def compute_record(name: str, protocol: Any, evset: Any = None,
                   others: Mapping[str, Any] | None = None) -> tuple[Any, dict, dict]:
    """Section ``name``'s result, its JSON record (with its extras' records) and the extras'
    results."""
    import json

    from rwe._results import json_safe

    a = analysis(name)
    result = compute_section(name, protocol, evset, others)
    record = a.to_dict(result)
    extras = {}
    for key, (compute, to_dict, _) in a.extras.items():
        extras[key] = compute(protocol, evset, others or {})
        record = {**record, key: to_dict(extras[key])}
    return result, json.loads(json.dumps(json_safe(record), allow_nan=False)), extras


def load_extras(name: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """The extras' results of section ``name`` from its record."""
    return {key: from_dict(record[key]) for key, (_, _, from_dict) in
            analysis(name).extras.items() if key in record}


def result_verdicts(name: str, result: Any) -> tuple:
    return tuple(analysis(name).verdicts(result))


def result_findings(name: str, result: Any) -> tuple:
    return tuple(analysis(name).findings(result))
