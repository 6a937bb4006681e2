"""Evaluation tables held as a ``dask.dataframe``: summarized per partition, merged by tree
reduction (DESIGN.md: Scale, "beyond one machine").

A :class:`DaskEvaluationSet` never gathers rows. :meth:`DaskEvaluationSet.summarize` runs, on
whatever dask scheduler is active (a ``dask.distributed`` client when one exists):

1. per partition, the load-time path of one machine: the partition's rows validated by
   :meth:`EvaluationSet.from_frame` (same rules, same messages, naming the partition), derived
   attributes added, and :func:`rwe.stats.summaries.summarize` with the same spec;
2. a tree reduction of the partition summaries with :meth:`Summary.merge` (``split_every``
   summaries per merge), the spine every merge in rwe goes through;
3. the levels put as a summary of all the rows has them (partitions see different subsets
   of the categories; :meth:`Summary.with_categories`): text columns (which dask may convert
   from ``object`` to ``string[pyarrow]``) get the sorted union of their values, as
   ``astype("category")`` of all the rows; a categorical column with known categories keeps
   them (unobserved ones included); a calendar window spans every window from the first to
   the last (:func:`rwe.data.window_range`), empty ones included; age bands keep their order.
   Categoricals whose categories are unknown to dask get the sorted union (an unordered
   categorical) or the merged order (an ordered one).

The summary equals the one :func:`rwe.summarize` makes of all the rows in memory: counts,
categories and histograms exactly, sums and moments up to floating-point summation order; so
every analysis of it equals the single-machine analysis of that summary. What needs rows is not
available from partitions: the patient index of the cluster bootstrap and of clustered
intervals (patients may span partitions; the number of distinct patients is counted exactly),
and the tests of rows (the drift classifier, Tipton's B).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from rwe.data._evaluation_set import EvaluationSet
from rwe.data._roles import ColumnRoles
from rwe.exceptions import DataValidationError, InvalidParameterError

__all__ = ["DaskEvaluationSet", "from_dask", "is_dask_frame", "DEFAULT_SPLIT_EVERY"]

#: Partition summaries merged by one task of the tree reduction.
DEFAULT_SPLIT_EVERY = 8


def is_dask_frame(obj: Any) -> bool:
    """Whether ``obj`` is a ``dask.dataframe.DataFrame`` (checked without importing dask)."""
    return type(obj).__module__.split(".")[0] in ("dask", "dask_expr") and hasattr(
        obj, "npartitions") and hasattr(obj, "to_delayed")


def from_dask(ddf: Any, roles: ColumnRoles | Mapping[str, Any], *,
              source: str = "<dask DataFrame>",
              derived: Mapping[str, Mapping[str, Any]] | None = None,
              resolution: Any = "full") -> DaskEvaluationSet:
    """Wrap a ``dask.dataframe`` with column roles (see :class:`DaskEvaluationSet`)."""
    return DaskEvaluationSet.from_frame(ddf, roles, source=source, derived=derived,
                                        resolution=resolution)


class DaskEvaluationSet:
    """An evaluation table as a ``dask.dataframe`` plus the roles of its columns.

    Build one with :meth:`EvaluationSet.from_frame` (given a dask DataFrame) or
    :func:`from_dask`. The analyses (:func:`rwe.subgroup_performance`,
    :func:`rwe.assess_representativeness`, :func:`rwe.assess_drift`) accept it where they
    accept an :class:`EvaluationSet`: they analyse its :meth:`summarize` (module notes) and
    return the same result objects.

    Attributes
    ----------
    frame : dask.dataframe.DataFrame
        The columns the roles need (never computed as a whole).
    roles : ColumnRoles
    source : str
    derived : dict
        Derived attributes added per partition (name -> spec).
    resolution : "full", int or sequence of float
        The score resolution of the summaries the analyses take of it (``"full"``: exact
        point estimates, a histogram row per distinct score; a number of bins or edges: small
        summaries whatever the row count, binned numbers carrying their bound).
    """

    __slots__ = ("frame", "roles", "source", "derived", "resolution", "_filters", "_cache")

    def __init__(self, frame: Any, roles: ColumnRoles, source: str,
                 derived: Mapping[str, dict[str, Any]], resolution: Any,
                 filters: Sequence[Any] = ()):
        self.frame = frame
        self.roles = roles
        self.source = source
        self.derived = dict(derived)
        self.resolution = resolution
        self._filters = tuple(filters)
        self._cache: dict[Any, Any] = {}

    def where(self, mask: Any, *, source: str | None = None) -> DaskEvaluationSet:
        """The rows where ``mask(evset)`` is true: ``mask`` (picklable; it runs on the
        workers) takes each partition's validated :class:`EvaluationSet` and returns one flag
        per row (e.g. the rows of a baseline period)."""
        if not callable(mask):
            raise InvalidParameterError(
                f"mask must be a callable of an EvaluationSet, got {type(mask).__name__}")
        return DaskEvaluationSet(self.frame, self.roles, source or self.source, self.derived,
                                 self.resolution, (*self._filters, mask))

    @classmethod
    def from_frame(cls, ddf: Any, roles: ColumnRoles | Mapping[str, Any], *,
                   source: str = "<dask DataFrame>",
                   derived: Mapping[str, Mapping[str, Any]] | None = None,
                   resolution: Any = "full") -> DaskEvaluationSet:
        """Check the columns the roles need against the frame's schema (no data is read) and
        wrap it; the rows are validated per partition when summarized.

        Raises
        ------
        DataValidationError
            A column the roles or a derived attribute need is absent (the message of
            :func:`rwe.data.load_evaluation_set`).
        """
        from rwe.data._evaluation_set import _as_roles, _derived_specs
        from rwe.data._validate import missing_column_messages
        from rwe.stats.summaries import SummarySpec

        if not is_dask_frame(ddf):
            raise InvalidParameterError(
                f"ddf must be a dask DataFrame, got {type(ddf).__name__}")
        roles = _as_roles(roles)
        specs = _derived_specs(derived)
        SummarySpec(resolution=resolution).edges()  # raises for a bad resolution
        full_roles = roles.with_attributes(tuple(specs))
        cols = [c for c in full_roles.required_columns() if c not in specs]
        cols += [s["from"] for s in specs.values() if s["from"] not in cols]
        avail = [str(c) for c in ddf.columns]
        missing = [c for c in cols if c not in avail]
        if missing:
            raise DataValidationError(
                missing_column_messages(
                    source, full_roles, missing, avail, wanted=cols, echo=False,
                    labels={s["from"]: f"source of derived attribute {k!r}"
                            for k, s in specs.items()}),
                source=source)
        return cls(ddf[cols], roles, source, specs, resolution)

    # ---------------------------------------------------------------- facts
    @property
    def npartitions(self) -> int:
        return int(self.frame.npartitions)

    # the same facts of the roles as an in-memory EvaluationSet
    versions = EvaluationSet.versions
    primary_version = EvaluationSet.primary_version

    def __repr__(self) -> str:
        return (f"DaskEvaluationSet(source={self.source!r}, partitions={self.npartitions}, "
                f"versions={self.versions}, attributes={list(self.grouping_columns())})")

    def grouping_columns(self) -> list[str]:
        return list(self.roles.with_attributes(tuple(self.derived)).grouping_columns())

    # ---------------------------------------------------------------- summary
    def summarize(self, spec: Any = None, *, attributes: Sequence[str] | None = None,
                  versions: Sequence[str] | None = None,
                  features: Sequence[str] | None = None, resolution: Any = None,
                  thresholds: Sequence[float] | None = None,
                  feature_edges: Mapping[str, Any] | None = None,
                  windows: Mapping[str, str] | None = None,
                  split_every: int = DEFAULT_SPLIT_EVERY, scheduler: Any = None):
        """The :class:`rwe.stats.summaries.Summary` of all the rows (module notes).

        Parameters
        ----------
        spec, attributes, versions, features, resolution, thresholds, feature_edges
            As :func:`rwe.summarize` (``resolution`` defaults to the spec's, else to
            :attr:`resolution`).
        windows : dict of str to str, optional
            Calendar windows of the timestamp role to add as attributes (name -> ``"week"``,
            ``"month"`` or ``"quarter"``), e.g. the drift analysis' window.
        split_every : int
            Summaries merged per task of the tree reduction (at least 2).
        scheduler : optional
            Passed to ``dask.compute`` (default: the active scheduler, a distributed client
            when one is set up).

        Returns
        -------
        Summary
        """
        from rwe._optional import import_optional
        from rwe._validation import check_int
        from rwe.data._evaluation_set import _derived_specs
        from rwe.stats.summaries import SummarySpec, as_summary_spec

        dask = import_optional("dask", extra="scale")
        split_every = check_int(split_every, "split_every", minimum=2)
        spec = as_summary_spec(spec)
        explicit = spec is not None
        spec = spec or SummarySpec()
        derived = dict(self.derived)
        for name, freq in (windows or {}).items():
            if self.roles.timestamp is None:
                raise InvalidParameterError(
                    f"{self.source}: calendar windows need the timestamp column role")
            derived.setdefault(str(name), {"from": self.roles.timestamp, "window": freq})
        derived = _derived_specs(derived)
        roles = self.roles.with_attributes(tuple(derived))
        grouping = list(roles.grouping_columns())
        attrs = list(attributes if attributes is not None else (
            spec.attributes if spec.attributes is not None else grouping))
        for a in attrs:
            if a not in grouping:
                raise InvalidParameterError(
                    f"attribute {a!r} is not a column of {self.source}; grouping columns: "
                    f"{', '.join(map(repr, grouping))}")
        vers = list(versions if versions is not None else (spec.versions or self.versions))
        for v in vers:
            if v not in self.roles.scores:
                raise InvalidParameterError(
                    f"version={v!r} is unknown; versions in {self.source}: "
                    f"{', '.join(map(repr, self.versions))}")
        feats = list(features if features is not None else (spec.features or roles.features))
        res = resolution if resolution is not None else (
            spec.resolution if explicit else self.resolution)
        thr = tuple(thresholds if thresholds is not None else spec.thresholds)
        if SummarySpec(resolution=res).edges() is None:
            thr = ()  # full resolution: thresholds make no bin edge (one summary serves all)
        fe = feature_edges if feature_edges is not None else spec.feature_edges
        part_spec = SummarySpec(attributes=tuple(attrs), versions=tuple(vers),
                                features=tuple(feats), resolution=res, thresholds=thr,
                                protocol_sha256=spec.protocol_sha256, source=None,
                                feature_edges=dict(fe) if fe else None)
        key = (part_spec.attributes, part_spec.versions, part_spec.features, repr(res), thr,
               spec.protocol_sha256, spec.source, repr(sorted((k, np.asarray(v).tolist())
                                                       for k, v in (fe or {}).items())),
               repr(sorted(derived.items())), split_every)
        if key in self._cache:
            return self._cache[key]
        delayed = dask.delayed
        pid = self.roles.patient_id
        level = [delayed(_summarize_partition, pure=True)(
            d, self.roles, derived, f"{self.source} partition {i}", part_spec, pid,
            self._filters)
            for i, d in enumerate(self.frame.to_delayed())]
        while len(level) > 1:
            level = [delayed(_merge_parts, pure=True)(level[i:i + split_every])
                     for i in range(0, len(level), split_every)]
        (summary, patients), = dask.compute(
            level[0], **({} if scheduler is None else {"scheduler": scheduler}))
        if summary is None:
            raise DataValidationError([f"{self.source}: the table has no row"],
                                      source=self.source)
        summary = _canonical_levels(summary, self.frame, derived, feats)
        src: dict[str, Any] = {"rows": summary.n_rows}
        if spec.source is not None:
            src = {"source": spec.source, **src}
        if patients is not None:
            src["patients"] = int(patients.size)
        from dataclasses import replace

        summary = replace(summary, sources=(src,))
        self._cache[key] = summary
        return summary


def _summarize_partition(df: pd.DataFrame, roles: ColumnRoles, derived: Mapping[str, Any],
                         source: str, spec: Any, patient_id: str | None,
                         filters: Sequence[Any] = ()):
    """One partition's summary and its distinct patient ids (None, None for an empty
    partition)."""
    from rwe.data._evaluation_set import EvaluationSet
    from rwe.stats.summaries import summarize

    if len(df) == 0:
        return None, None
    ev = EvaluationSet.from_frame(df, roles, source=source, derived=derived)
    for f in filters:
        m = np.asarray(f(ev), dtype=bool)
        if not m.any():
            return None, None
        if not m.all():
            ev = ev.subset(m)
    ids = None
    if patient_id is not None:
        ids = _distinct(ev.frame[patient_id].dropna().astype("string").to_numpy(dtype=object))
    return summarize(ev, spec), ids


def _distinct(values: np.ndarray) -> np.ndarray:
    return np.unique(values) if values.size else values


def _merge_parts(parts: Sequence[tuple[Any, Any]]):
    """Merge partition summaries with :meth:`Summary.merge` (empty partitions skipped) and
    unite their patient ids (to count distinct patients exactly)."""
    parts = [p for p in parts if p[0] is not None]
    if not parts:
        return None, None
    if len(parts) == 1:
        return parts[0]
    summaries = [p[0] for p in parts]
    ids = None
    if parts[0][1] is not None:
        ids = _distinct(np.concatenate([p[1] for p in parts]))
    return summaries[0].merge(*summaries[1:]), ids


def _canonical_levels(summary: Any, ddf: Any, derived: Mapping[str, Mapping[str, Any]],
                      features: Sequence[str]) -> Any:
    """The categories of attributes and categorical features as a summary of all the rows has
    them (module notes, step 3)."""
    from rwe.data._derive import window_range

    dtypes = ddf.dtypes
    names = [(a, summary.cells.categories[j]) for j, a in enumerate(summary.attributes)]
    names += [(f, summary.features[f].categories) for f in features
              if getattr(summary.features.get(f), "kind", None) == "categorical"]
    for name, cats in names:
        spec = derived.get(name)
        if spec is not None and "window" in spec:
            new = window_range(cats, spec["window"])
        elif spec is not None:  # age bands: every partition's bands are in band order
            continue
        else:
            dt = dtypes[name]
            if isinstance(dt, pd.CategoricalDtype) and _known(ddf[name]):
                new = [str(c) for c in dt.categories]
                new += [c for c in cats if c not in new]  # cannot happen: kept, never lost
            elif isinstance(dt, pd.CategoricalDtype) and dt.ordered:
                continue
            else:
                new = sorted(cats)
        if list(new) != list(cats):
            summary = summary.with_categories(name, new)
    return summary


def _known(col: Any) -> bool:
    try:
        return bool(col.cat.known)
    except AttributeError:  # pragma: no cover - dask without known/unknown categories
        return False
