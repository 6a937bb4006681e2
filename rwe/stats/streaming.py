"""Summaries of a table too large to hold: read a :class:`rwe.data.Source` in batches, validate
and summarize each batch, merge as they come (DESIGN.md principle 3).

Batches are disjoint row sets, so their summaries merge by addition into the summary of the
whole table (:func:`rwe.stats.summaries.merge_summaries`): counts and events per cell exactly,
score histograms exactly at full resolution (values united) and on declared edges, moments by
Chan et al.'s pairwise update (equal up to floating-point summation order). Memory holds one
batch and the running summary: at a declared resolution the summary's size does not grow with
the rows (at full resolution it grows with the distinct scores).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rwe.exceptions import InvalidParameterError

if TYPE_CHECKING:
    from rwe.data import ColumnRoles, Source
    from rwe.stats.summaries import Summary, SummarySpec

__all__ = ["summarize_source"]


def summarize_source(source: Source, roles: ColumnRoles | Mapping[str, Any],
                     spec: SummarySpec | Any = None, *,
                     derived: Mapping[str, Mapping[str, Any]] | None = None,
                     batch_rows: int | None = None) -> Summary:
    """Summarize a source batch by batch into one mergeable summary.

    Parameters
    ----------
    source : rwe.data.Source
        Any source (file, SQL query, OMOP CDM): read with :meth:`Source.iter_batches`, only
        the columns the roles and derived attributes need.
    roles : ColumnRoles or dict
    spec : SummarySpec, a protocol, or None
        What to keep (see :func:`rwe.stats.summaries.summarize`); a protocol gives its
        :meth:`~rwe.protocol.Protocol.summary_spec`.
    derived : dict, optional
        Derived attributes (age bands, calendar windows), added to every batch.
    batch_rows : int, optional
        Rows per batch (default: the source's, :data:`rwe.data.DEFAULT_BATCH_ROWS`).

    Returns
    -------
    Summary
        Its ``sources`` hold one entry: the source's name (or ``spec.source``), the rows, the
        number of batches and, with a patient id role, ``patients``: the sum of each batch's
        distinct patients (an upper bound when a patient's rows fall in two batches; order the
        source by patient to make it exact).

    Raises
    ------
    DataValidationError
        A batch breaks a load-time rule (the rules of :meth:`EvaluationSet.from_frame`, per
        batch: ids are unique within a batch), or the source returned no rows.

    Notes
    -----
    The summary has no patient index (a merged summary never has one): analyses use
    row-level intervals on it.
    """
    from rwe.data import EvaluationSet
    from rwe.data._evaluation_set import _as_roles, _derived_specs
    from rwe.data._sources import Source
    from rwe.data._validate import MSG_EMPTY
    from rwe.exceptions import DataValidationError
    from rwe.stats.summaries import SummarySpec, merge_summaries, summarize

    if not isinstance(source, Source):
        raise InvalidParameterError(f"source must be an rwe.data.Source, got "
                                    f"{type(source).__name__}")
    if spec is not None and not isinstance(spec, SummarySpec):
        if not hasattr(spec, "summary_spec"):
            raise InvalidParameterError(
                f"spec must be a SummarySpec or a protocol, got {type(spec).__name__}")
        spec = spec.summary_spec()
    spec = spec or SummarySpec()
    name = spec.source
    batch_spec = replace(spec, source=None)
    roles = _as_roles(roles)
    specs = _derived_specs(derived)
    full_roles = roles.with_attributes(tuple(specs))
    cols = [c for c in full_roles.required_columns() if c not in specs]
    cols += [s["from"] for s in specs.values() if s["from"] not in cols]
    total = batches = 0
    patients = 0
    merged = None
    for frame in source.iter_batches(cols, **({} if batch_rows is None else
                                               {"batch_rows": batch_rows})):
        ev = EvaluationSet._build(frame, roles, source=source.name, derived=specs,
                                  data_source=source)
        part = summarize(ev, batch_spec)
        merged = part if merged is None else merge_summaries([merged, part])
        total += len(frame)
        batches += 1
        if full_roles.patient_id is not None:
            patients += int(frame[full_roles.patient_id].nunique())
        del ev, part, frame
    if merged is None:
        raise DataValidationError([MSG_EMPTY.format(src=source.name)], source=source.name)
    entry: dict[str, Any] = {"source": name if name is not None else source.name,
                             "rows": total, "batches": batches}
    if full_roles.patient_id is not None:
        entry["patients"] = patients
    return replace(merged, sources=(entry,))
