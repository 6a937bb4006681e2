"""Checks that need a protocol and its loaded data together (``rwe validate``).

The schema and cross-reference checks (:mod:`rwe.protocol._load`) see the protocol only, and
loading the data (:meth:`Protocol.load_data`) checks each column on its own. A protocol can
pass both and still plan an analysis its data cannot answer: labels of one class only (no
sensitivity or AUROC can be estimated), a subgroup attribute with no value in any row, or an
attribute to compare with a reference population that the reference does not define. The
dossier reports such an analysis as "not evaluated"; ``rwe validate`` refuses the protocol with
one line per problem, ``FILE:LINE: field.path: problem``, so it is fixed before the dossier is
built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from rwe.data import EvaluationSet
    from rwe.protocol._schema import Protocol

__all__ = ["check_inputs"]

MSG_ONE_CLASS = ("column {column!r} of {source} is {value} in all {n:,} rows ({what}); the "
                 "performance metrics need both outcomes")
MSG_EMPTY = ("attribute {attribute!r} has no value in any of the {n:,} rows of {source}; its "
             "subgroups cannot be evaluated")


def _is_summary(data: Any) -> bool:
    from rwe.stats.summaries import Summary

    return isinstance(data, Summary)


def _outcome(p: Protocol, evset: EvaluationSet, source: str
             ) -> list[tuple[tuple[Any, ...], str]]:
    import numpy as np

    cols = p.data.columns
    if _is_summary(evset):  # the label of a summary of all rows (engine: dask)
        if cols.label is None or evset.events is None:
            return []
        n, k = evset.n_rows, int(evset.n_events)
        if n == 0 or 0 < k < n:
            return []
        what = "no event" if k == 0 else "no non-event"
        return [(("data", "columns", "label"), MSG_ONE_CLASS.format(
            column=cols.label, source=source, value=int(k == n), n=n, what=what))]
    if cols.label is not None:
        role, column, values = "label", cols.label, evset.y_true
    elif cols.event is not None:
        role, column, values = "event", cols.event, evset.event
    else:  # pragma: no cover - the schema requires one outcome
        return []
    n = len(values)
    k = int(np.count_nonzero(values))
    if n == 0 or 0 < k < n:
        return []
    what = "no event" if k == 0 else "no non-event"
    return [(("data", "columns", role), MSG_ONE_CLASS.format(
        column=column, source=source, value=int(k == n), n=n, what=what))]


def _has_values(data: Any, a: str) -> bool | None:
    """Whether attribute ``a`` has a value in some row (None: not a column of ``data``)."""
    if _is_summary(data):
        if a not in data.attributes:
            return None
        return bool((data.cells.codes[:, data.attributes.index(a)] >= 0).any())
    if a not in data.frame.columns:
        return None
    return bool(data.frame[a].notna().any())


def _empty_groupings(p: Protocol, evset: EvaluationSet, source: str
                     ) -> list[tuple[tuple[Any, ...], str]]:
    n = evset.n_rows if _is_summary(evset) else len(evset.frame)
    places: dict[str, tuple[Any, ...]] = {}
    for i, a in enumerate(p.subgroups.attributes):
        places.setdefault(a, ("subgroups", "attributes", i))
    for i, inter in enumerate(p.subgroups.intersections):
        for j, a in enumerate(inter):
            places.setdefault(a, ("subgroups", "intersections", i, j))
    out = []
    for a, loc in places.items():
        if _has_values(evset, a) is False:
            out.append((loc, MSG_EMPTY.format(attribute=a, n=n, source=source)))
    return out


def check_inputs(protocol: Protocol, evset: EvaluationSet, *,
                 source: str | None = None) -> list[str]:
    """Problems that leave a pre-specified analysis of ``protocol`` without an answer on
    ``evset``, one line each as ``FILE:LINE: field.path: problem``; empty when there is none.

    Parameters
    ----------
    protocol : Protocol
        A validated protocol (:func:`rwe.protocol.load_protocol`).
    evset : EvaluationSet or Summary
        Its data (:meth:`Protocol.load_data`), or the summary of all its rows
        (:meth:`Protocol.summary_spec`: with ``data.engine: dask`` the rows are only ever
        summarized).
    source : str, optional
        The data's name in messages (default: the EvaluationSet's source).

    Returns
    -------
    list of str
        Labels (or survival events) of one class only; a subgroup attribute without any value;
        an attribute the protocol compares with its reference population that is empty or that
        the reference does not define
        (:func:`rwe.representativeness.unevaluable_attributes`).

    Raises
    ------
    ReferenceDataError
        The reference population file is malformed.
    """
    from rwe.representativeness import unevaluable_from_protocol

    source = source or getattr(evset, "source", "the data")
    found = _outcome(protocol, evset, source) + _empty_groupings(protocol, evset, source)
    found += unevaluable_from_protocol(protocol, evset)
    return [f"{protocol.locate(loc)}: {msg}" for loc, msg in found]
