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


def _representativeness_to_dict(result: Any) -> dict[str, Any]:
    """The result's record, with the reference's file named by its base name only (a dossier
    carries no path of the machine that built it)."""
    from pathlib import Path

    d = result.to_dict()
    ref = dict(d.get("reference") or {})
    src = ref.get("source")
    if isinstance(src, str) and ("/" in src or "\\" in src):
        ref["source"] = Path(src).name
    d["reference"] = ref
    return d


def _representativeness_from_dict(d: Mapping[str, Any]) -> Any:
    from rwe.representativeness import RepresentativenessResult

    return RepresentativenessResult.from_dict(d)


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
    written: dict[str, Any] = {"evaluation data": p.data.path if p.data.source is None
                               else p.data.source.url}
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
#: A database source (``data.source``) adds its identity (backend, host, port, database, user,
#: server version), the rows' sha256 and, for an OMOP CDM, the CDM version and cohorts.
_FILE_KEYS = ("role", "kind", "format", "file", "bytes", "sha256", "query", "rows", "columns")
_DB_KEYS = ("database", "rows_sha256", "omop")


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
    files = tuple({**{k: f.get(k) for k in _FILE_KEYS},
                   **{k: f[k] for k in _DB_KEYS if f.get(k) is not None},
                   "protocol_path": written.get(f["role"]),
                   "generator": _generator(f.get("path"))} for f in prov.files)
    return dataclasses.replace(prov, files=files)


def _provenance_from_dict(d: Mapping[str, Any]) -> Any:
    from rwe.data._provenance import ProvenanceResult

    return ProvenanceResult.from_dict(d)


def _planned(section: str, protocol: Any, run: Callable[[], Any]) -> Any:
    """``run()``, the section's analysis, when the protocol has the section's block; a result
    saying the block is absent otherwise, and one saying why when the analysis refuses its
    input (the rest of the dossier stands)."""
    from rwe.dossier._plans import absent_plan, unavailable
    from rwe.exceptions import RWEError

    if getattr(protocol, section) is None:
        return absent_plan(section)
    try:
        return run()
    except RWEError as exc:
        return unavailable(section, exc)


def _drift(protocol: Any, evset: Any, others: Mapping[str, Any]) -> Any:
    """:func:`rwe.drift.drift_from_protocol` on the evaluation data."""
    def run() -> Any:
        from rwe.drift import drift_from_protocol

        return drift_from_protocol(protocol, evset)

    return _planned("drift", protocol, run)


def _drift_from_dict(d: Mapping[str, Any]) -> Any:
    from rwe.dossier._plans import PlanResult
    from rwe.drift import DriftResult

    return (DriftResult if "settings" in d else PlanResult).from_dict(d)


def _change_control(protocol: Any, evset: Any, others: Mapping[str, Any]) -> Any:
    """The protocol's change-control comparison, computed again on the test set and matched
    with its decision in the ledger (:func:`rwe.dossier._plans.recorded_comparison`): a
    dossier build never appends to the ledger (every append is a look at the sequestered
    test set); ``rwe compare`` records the decision."""
    def run() -> Any:
        from rwe.dossier._plans import recorded_comparison

        data = evset if protocol.change_control.test_set.path is None else None
        return recorded_comparison(protocol, data)

    return _planned("change_control", protocol, run)


def _change_control_from_dict(d: Mapping[str, Any]) -> Any:
    from rwe.change_control import ComparisonResult
    from rwe.dossier._plans import PlanResult

    return (ComparisonResult if "verdict" in d else PlanResult).from_dict(d)


def _change_control_verdicts(result: Any) -> tuple:
    decision = getattr(result, "decision", None)
    return ((decision,) if decision is not None else ()) + tuple(result.verdicts)


def _model_card(protocol: Any, evset: Any, others: Mapping[str, Any]) -> Any:
    from rwe.dossier._modelcard import model_card

    return model_card(protocol, {k: v for k, v in others.items() if not k.startswith("_")},
                      plan=others.get("_plan"))


def _model_card_from_dict(d: Mapping[str, Any]) -> Any:
    from rwe.dossier._modelcard import ModelCardResult

    return ModelCardResult.from_dict(d)


MSG_FEDERATION_ALONE = ("the federation section is made by rwe merge from site summaries "
                        "(rwe.federation.build_federated_dossier): it has no analysis of the "
                        "protocol's data; open the executed notebook of a merge's dossier, or "
                        "pass its saved record as result")


def _federation(protocol: Any, evset: Any, others: Mapping[str, Any]) -> Any:
    from rwe.exceptions import RWEError

    raise RWEError(MSG_FEDERATION_ALONE)


def _federation_from_dict(d: Mapping[str, Any]) -> Any:
    from rwe.federation import FederatedResult

    return FederatedResult.from_dict(d)


ANALYSES: dict[str, SectionAnalysis] = {
    "representativeness": SectionAnalysis(
        _representativeness, _representativeness_to_dict, _representativeness_from_dict,
        # Table 1 (REP-2) is shown in this section
        extras={"table1": (_table1, lambda t: t.to_dict(), _table1_from_dict)}),
    "subgroups": SectionAnalysis(_subgroups, lambda r: r.to_dict(), _subgroups_from_dict),
    "drift": SectionAnalysis(_drift, lambda r: r.to_dict(), _drift_from_dict),
    "change_control": SectionAnalysis(_change_control, lambda r: r.to_dict(),
                                      _change_control_from_dict,
                                      verdicts=_change_control_verdicts),
    "provenance": SectionAnalysis(_provenance, lambda r: r.to_dict(), _provenance_from_dict),
    "model_card": SectionAnalysis(_model_card, lambda r: r.to_dict(), _model_card_from_dict,
                                  needs_data=False,
                                  needs=("representativeness", "subgroups", "drift",
                                         "change_control", "provenance")),
    # the result of a merge (rwe.federation.FederatedResult): its verdicts are those of the
    # pooled sections, each judged in its own section
    "federation": SectionAnalysis(_federation, lambda r: r.to_dict(), _federation_from_dict,
                                  needs_data=False, verdicts=lambda r: ()),
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
                   others: Mapping[str, Any] | None = None, *, result: Any = None
                   ) -> tuple[Any, dict, dict]:
    """Section ``name``'s result, its JSON record (with its extras' records) and the extras'
    results. A ``result`` computed beforehand (a federated merge's) is recorded as it is,
    without extras."""
    import json

    from rwe._results import dumps_json_safe

    a = analysis(name)
    given = result is not None
    if not given:
        result = compute_section(name, protocol, evset, others)
    record = a.to_dict(result)
    extras = {}
    for key, (compute, to_dict, _) in ({} if given else a.extras).items():
        extras[key] = compute(protocol, evset, others or {})
        record = {**record, key: to_dict(extras[key])}
    return result, json.loads(dumps_json_safe(record)), extras


def load_extras(name: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """The extras' results of section ``name`` from its record."""
    return {key: from_dict(record[key]) for key, (_, _, from_dict) in
            analysis(name).extras.items() if key in record}


def result_verdicts(name: str, result: Any) -> tuple:
    return tuple(analysis(name).verdicts(result))


def result_findings(name: str, result: Any) -> tuple:
    return tuple(analysis(name).findings(result))
