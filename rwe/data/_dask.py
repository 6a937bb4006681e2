"""Evaluation tables held in partitions: a ``dask.dataframe`` or the files of a source, each
partition summarized where it is read, the summaries merged by tree reduction (DESIGN.md:
Scale, "beyond one machine").

A :class:`DaskEvaluationSet` never gathers rows. Its partitions are those of a dask DataFrame
(:meth:`DaskEvaluationSet.from_frame`) or the files of a :class:`rwe.data.Source`
(:meth:`DaskEvaluationSet.from_source`: the files a protocol's ``data.path`` pattern matches,
``data.engine: dask``). :meth:`DaskEvaluationSet.summarize` runs, on its scheduler (a
``dask.distributed`` client; by default the active one):

1. per partition, in one task (the read fused with the summary, so no partition outlives its
   task): the columns the roles need read (a file by its own source, naming the file in any
   message), the rows validated by :meth:`EvaluationSet.from_frame` (same rules, same
   messages, naming the partition or file), derived attributes added, and
   :func:`rwe.stats.summaries.summarize` with the same spec;
2. a tree reduction of the partition summaries with :meth:`Summary.merge` (``split_every``
   summaries per merge), the spine every merge in rwe goes through;
3. the levels put as a summary of all the rows has them (partitions see different subsets
   of the categories; :meth:`Summary.with_categories`): text columns (which dask may convert
   from ``object`` to ``string[pyarrow]``) get the sorted union of their values, as
   ``astype("category")`` of all the rows; a categorical column with known categories keeps
   them (unobserved ones included); a calendar window spans every window from the first to
   the last (:func:`rwe.data.window_range`), empty ones included; age bands keep their order.
   Categoricals whose categories are unknown to dask get the sorted union (an unordered
   categorical) or the merged order (an ordered one). The files of a source are one table as
   :meth:`rwe.data.FileSetSource.read` concatenates them (``pandas.concat``): a column whose
   categorical dtype is equal in every file (the same categories; in the same order when
   ordered) keeps the first file's categories, in their order; any other gets the sorted
   union of its values.

The summary equals the one :func:`rwe.summarize` makes of all the rows in memory: counts,
categories and histograms exactly, sums and moments up to floating-point summation order; so
every analysis of it equals the single-machine analysis of that summary. What needs rows is not
available from partitions: the patient index of the cluster bootstrap and of clustered
intervals (patients may span partitions; the number of distinct patients is counted exactly),
and the tests of rows (the drift classifier, Tipton's B).

:func:`dask_cluster` is the scheduler a protocol's ``data.dask`` names: a ``LocalCluster`` of
worker processes started for the analysis and closed after it, or the address of a running
scheduler. rwe's local workers start without dask's ``MALLOC_TRIM_THRESHOLD_=65536`` (which
makes glibc return every freed array to the system and fault its pages in again for the next
partition: the summary of a partition took about 1.6 times as long), without the statistical
profiler (a stack sample of the running task every 10 ms, for a dashboard rwe does not start)
and with the system, memory and event-loop monitors polled every 2 s, 1 s and 200 ms instead
of 500, 100 and 20 ms: an idle cluster of 2 workers then costs about 0.025 CPU seconds per
second instead of 0.15 (benchmarks/README.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from rwe.data._evaluation_set import EvaluationSet
from rwe.data._roles import ColumnRoles
from rwe.exceptions import DataValidationError, InvalidParameterError

__all__ = ["DaskEvaluationSet", "from_dask", "is_dask_frame", "dask_cluster",
           "DEFAULT_SPLIT_EVERY", "ROWS_NOTE", "MSG_SCHEDULER", "MSG_NOT_FILES"]

#: Partition summaries merged by one task of the tree reduction. A summary's size does not
#: shrink with its rows (at 1024 bins up to cells x 1024 x 2 entries, ~20 MB), and a worker
#: holds the summaries waiting for their merge besides the partition it reads: merging pairs
#: keeps fewest waiting, so a worker's peak hardly grows with the number of partitions (at
#: 100M rows in 50 files: 637 MB with 2, 775 with 4, about 1 GB with 8; benchmarks/README.md),
#: for about 2 merges of 2 per summary instead of 1.33 of 4 (a few percent of the CPU time).
DEFAULT_SPLIT_EVERY = 2
#: Why a dask-backed set has no rows for an analysis that needs them (the protocol route names
#: its ``data.engine`` field instead).
ROWS_NOTE = "a dask table is summarized per partition"
MSG_SCHEDULER = "{where}: cannot reach the dask scheduler at {address}: {reason}"
MSG_NOT_FILES = ("{name}: the dask engine reads CSV or Parquet files (a data.path, a pattern "
                 "such as data/*.parquet); {kind} sources are read in batches by rwe itself")


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
    """An evaluation table in partitions (a ``dask.dataframe`` or the files of a source) plus
    the roles of its columns.

    Build one with :meth:`EvaluationSet.from_frame` (given a dask DataFrame), :func:`from_dask`
    or :meth:`from_source` (files, read one task per file). The analyses
    (:func:`rwe.subgroup_performance`, :func:`rwe.assess_representativeness`,
    :func:`rwe.assess_drift`) accept it where they accept an :class:`EvaluationSet`: they
    analyse its :meth:`summarize` (module notes) and return the same result objects.

    Attributes
    ----------
    frame : dask.dataframe.DataFrame or None
        The columns the roles need (never computed as a whole); None for the files of a
        source.
    parts : tuple of Source or None
        The files of a source (:meth:`from_source`), one partition each.
    data_source : Source or None
        The source of the parts (its fingerprint records the files and, after a summary of
        all rows, the rows read).
    scheduler : optional
        What ``dask.compute`` runs on (a ``distributed.Client``); None: the active scheduler.
    rows_note : str
        Why the rows are not available to an analysis that needs them (in its messages).
    roles : ColumnRoles
    source : str
    derived : dict
        Derived attributes added per partition (name -> spec).
    resolution : "full", int or sequence of float
        The score resolution of the summaries the analyses take of it (``"full"``: exact
        point estimates, a histogram row per distinct score; a number of bins or edges: small
        summaries whatever the row count, binned numbers carrying their bound).
    """

    __slots__ = ("frame", "parts", "data_source", "scheduler", "rows_note", "roles", "source",
                 "derived", "resolution", "_columns", "_filters", "_cache")

    def __init__(self, frame: Any, roles: ColumnRoles, source: str,
                 derived: Mapping[str, dict[str, Any]], resolution: Any,
                 filters: Sequence[Any] = (), *, parts: Sequence[Any] | None = None,
                 columns: Sequence[str] = (), data_source: Any = None, scheduler: Any = None,
                 rows_note: str = ROWS_NOTE):
        self.frame = frame
        self.parts = tuple(parts) if parts is not None else None
        self.data_source = data_source
        self.scheduler = scheduler
        self.rows_note = rows_note
        self.roles = roles
        self.source = source
        self.derived = dict(derived)
        self.resolution = resolution
        self._columns = list(columns)
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
                                 self.resolution, (*self._filters, mask), parts=self.parts,
                                 columns=self._columns, data_source=self.data_source,
                                 scheduler=self.scheduler, rows_note=self.rows_note)

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
        if not is_dask_frame(ddf):
            raise InvalidParameterError(
                f"ddf must be a dask DataFrame, got {type(ddf).__name__}")
        roles, specs, cols = _needed(roles, derived, resolution)
        _check_present(source, roles, specs, cols, [str(c) for c in ddf.columns])
        return cls(ddf[cols], roles, source, specs, resolution, columns=cols)

    @classmethod
    def from_source(cls, source: Any, roles: ColumnRoles | Mapping[str, Any], *,
                    derived: Mapping[str, Mapping[str, Any]] | None = None,
                    resolution: Any = "full", scheduler: Any = None,
                    rows_note: str = ROWS_NOTE) -> DaskEvaluationSet:
        """The files of a source as partitions, one task per file: a
        :class:`rwe.data.FileSetSource` (a glob pattern) or one CSV / Parquet file.

        Every file's header (CSV) or footer (Parquet) is checked for the columns the roles
        need before any row is read: a missing one is the message of
        :func:`rwe.data.load_evaluation_set` for the first file, one line naming any other
        file that lacks it. The rows are validated per file when summarized, messages naming
        the file.

        Parameters
        ----------
        source : rwe.data.Source
        roles, derived, resolution
            As :meth:`from_frame`.
        scheduler : optional
            What the summaries run on (a ``distributed.Client``; default: the active one).
        rows_note : str
            Why rows are not available, for the messages of analyses that need them.

        Raises
        ------
        DataValidationError
            A column is missing in a file, a file cannot be read.
        InvalidParameterError
            The source is not files (a database, a DuckDB query).
        """
        from rwe.data._sources import CSVSource, FileSetSource, ParquetSource

        if isinstance(source, FileSetSource):
            parts = source.parts
        elif type(source) in (CSVSource, ParquetSource):
            parts = (source,)
        else:
            raise InvalidParameterError(MSG_NOT_FILES.format(
                name=getattr(source, "name", type(source).__name__),
                kind=getattr(source, "kind", type(source).__name__)))
        roles, specs, cols = _needed(roles, derived, resolution)
        _check_present(parts[0].name, roles, specs, cols, parts[0].columns())
        for part in parts[1:]:
            part._check_columns(cols)
        name = source.name if isinstance(source, FileSetSource) else parts[0].name
        return cls(None, roles, name, specs, resolution, parts=parts, columns=cols,
                   data_source=source, scheduler=scheduler, rows_note=rows_note)

    # ---------------------------------------------------------------- facts
    @property
    def npartitions(self) -> int:
        return len(self.parts) if self.parts is not None else int(self.frame.npartitions)

    # the same facts of the roles as an in-memory EvaluationSet
    versions = EvaluationSet.versions
    primary_version = EvaluationSet.primary_version

    def __repr__(self) -> str:
        return (f"DaskEvaluationSet(source={self.source!r}, partitions={self.npartitions}, "
                f"versions={self.versions}, attributes={list(self.grouping_columns())})")

    def grouping_columns(self) -> list[str]:
        return list(self.roles.with_attributes(tuple(self.derived)).grouping_columns())

    def describe(self, summary: Any = None) -> pd.DataFrame:
        """A short cohort summary as :meth:`EvaluationSet.describe` (one row per fact), from
        a summary of all the rows (default: :meth:`summarize`; the last one is kept): rows,
        patients, events, prevalence, partitions, model versions, levels of the site,
        equipment and attributes (with the share of rows without a value)."""
        if summary is not None:
            self._cache["describe"] = summary
        s = self._cache.get("describe")
        if s is None:
            s = self._cache["describe"] = self.summarize()
        rows: list[tuple[str, Any]] = [("rows", s.n_rows)]
        src = s.sources[0] if len(s.sources) == 1 else {}
        if src.get("patients") is not None:
            rows.append(("patients", int(src["patients"])))
        if s.events is not None:
            rows.append(("events (label = 1)", s.n_events))
            rows.append(("prevalence", round(s.n_events / s.n_rows, 4) if s.n_rows else 0.0))
        rows.append(("partitions", self.npartitions))

        def levels(col: str) -> tuple[int, float] | None:
            if col not in s.attributes:
                return None
            j = s.attributes.index(col)
            codes = s.cells.codes[:, j]
            used = np.unique(codes[codes >= 0]).size
            return int(used), float(s.n[codes < 0].sum() / s.n_rows) if s.n_rows else 0.0

        for role in ("site", "equipment"):
            col = getattr(self.roles, role)
            if col is not None and levels(col) is not None:
                rows.append((f"{role} levels", levels(col)[0]))
        rows.append(("model versions", ", ".join(self.versions)))
        for col in self.roles.attributes:
            lv = levels(col)
            if lv is not None:
                rows.append((f"{col}: levels (missing)", f"{lv[0]} ({lv[1]:.1%} missing)"))
        return pd.DataFrame(rows, columns=["fact", "value"]).astype({"value": "string"})

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
            Passed to ``dask.compute`` (default: :attr:`scheduler`, else the active
            scheduler, a distributed client when one is set up).

        Returns
        -------
        Summary
        """
        from rwe._optional import import_optional
        from rwe._validation import check_int
        from rwe.data._evaluation_set import _derived_specs
        from rwe.stats.summaries import SummarySpec, as_summary_spec

        import_optional("dask", extra="scale")
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
        value, levels = self.reduce(_SummaryOf(part_spec, self.roles.patient_id),
                                    _merge_summaries_ids, derived=derived, features=feats,
                                    split_every=split_every, scheduler=scheduler)
        if value is None:
            raise DataValidationError([f"{self.source}: the table has no row"],
                                      source=self.source)
        summary, patients = value
        summary = _canonical_levels(summary, derived, feats, self.fixed_levels(levels),
                                    observed=self.parts is not None)
        src: dict[str, Any] = {"rows": summary.n_rows}
        if spec.source is not None:
            src = {"source": spec.source, **src}
        if patients is not None:
            src["patients"] = int(patients.size)
        from dataclasses import replace

        summary = replace(summary, sources=(src,))
        if self.data_source is not None and not self._filters:
            self.data_source._record(summary.n_rows, self._columns)
        self._cache[key] = summary
        return summary

    def reduce(self, fn: Any, merge: Any, *, derived: Mapping[str, Any] | None = None,
               features: Sequence[str] = (), split_every: int = DEFAULT_SPLIT_EVERY,
               scheduler: Any = None) -> tuple[Any, dict[str, Any]]:
        """``fn`` of every partition, merged by tree reduction: what :meth:`summarize` and
        the site summaries of :mod:`rwe.federation` are built on.

        Parameters
        ----------
        fn : callable
            Picklable (it runs on the workers): the partition's validated
            :class:`EvaluationSet` (derived attributes added, :meth:`where` filters applied)
            -> a value; not called for a partition without rows.
        merge : callable
            Picklable: a list of values -> one value.
        derived : dict, optional
            The derived attributes to add (default :attr:`derived`).
        features : sequence of str
            Columns (besides the grouping columns) whose level facts to collect.
        split_every, scheduler
            As :meth:`summarize`.

        Returns
        -------
        value
            The merged value (None when no partition has a row).
        levels : dict
            Per grouping column and feature, its categories and order flag when it is
            categorical with the same ones in every partition, else None (for
            :meth:`fixed_levels`).
        """
        from rwe._optional import import_optional
        from rwe._validation import check_int

        dask = import_optional("dask", extra="scale")
        split_every = check_int(split_every, "split_every", minimum=2)
        derived = dict(self.derived if derived is None else derived)
        args = (self.roles, derived, self._filters,
                _level_columns(self.roles, derived, features), fn)
        if self.parts is not None:
            stats = self.data_source.opened() if hasattr(self.data_source, "opened") else [
                p._stat() for p in self.parts]
            level = [dask.delayed(_file_task, pure=False)(p, self._columns, st, *args)
                     for p, st in zip(self.parts, stats, strict=True)]
        else:  # one fused task per partition: the read and the summary (no frame persists)
            tasks = self.frame.map_partitions(
                _PartitionTask(self.source, args), meta=pd.Series([], dtype=object),
                enforce_metadata=False, align_dataframes=False)
            level = list(tasks.to_delayed())
        while len(level) > 1:
            level = [dask.delayed(_merge_task, pure=True)(level[i:i + split_every], merge)
                     for i in range(0, len(level), split_every)]
        sched = scheduler if scheduler is not None else self.scheduler
        result, = dask.compute(level[0], **({} if sched is None else {"scheduler": sched}))
        return _as_part(result)

    def fixed_levels(self, levels: Mapping[str, Any]) -> dict[str, Any]:
        """The columns whose categories the partitions fix, for :func:`_canonical_levels`:
        of files, the level facts :meth:`reduce` collected; of a dask DataFrame, its dtypes
        (module notes)."""
        if self.parts is not None:
            return {k: v for k, v in levels.items() if v is not None}
        return _frame_levels(self.frame)


def _needed(roles: Any, derived: Any, resolution: Any) -> tuple[ColumnRoles, dict, list[str]]:
    """The roles (as :class:`ColumnRoles`), the derived specs and the columns to read."""
    from rwe.data._evaluation_set import _as_roles, _derived_specs
    from rwe.stats.summaries import SummarySpec

    roles = _as_roles(roles)
    specs = _derived_specs(derived)
    SummarySpec(resolution=resolution).edges()  # raises for a bad resolution
    full_roles = roles.with_attributes(tuple(specs))
    cols = [c for c in full_roles.required_columns() if c not in specs]
    cols += [s["from"] for s in specs.values() if s["from"] not in cols]
    return roles, specs, cols


def _check_present(source: str, roles: ColumnRoles, specs: Mapping[str, Any], cols: list[str],
                   avail: list[str]) -> None:
    """The message of :func:`rwe.data.load_evaluation_set` for columns absent from a table."""
    from rwe.data._validate import missing_column_messages

    missing = [c for c in cols if c not in avail]
    if missing:
        full_roles = roles.with_attributes(tuple(specs))
        raise DataValidationError(
            missing_column_messages(
                source, full_roles, missing, avail, wanted=cols, echo=False,
                labels={s["from"]: f"source of derived attribute {k!r}"
                        for k, s in specs.items()}),
            source=source)


def _level_columns(roles: ColumnRoles, derived: Mapping[str, Any],
                   features: Sequence[str]) -> tuple[str, ...]:
    """The columns whose levels a summary's categories come from (not derived)."""
    names = [*roles.grouping_columns(), *features]
    return tuple(c for c in dict.fromkeys(names) if c not in derived)


def _level_facts(df: pd.DataFrame, columns: Sequence[str]) -> dict[str, Any]:
    """Per column: its categories and order flag when categorical (else None), as
    ``pandas.concat`` of the partitions decides whether a column stays categorical."""
    out: dict[str, Any] = {}
    for c in columns:
        if c not in df.columns:
            continue
        dt = df[c].dtype
        out[c] = ((tuple(str(x) for x in dt.categories), bool(dt.ordered))
                  if isinstance(dt, pd.CategoricalDtype) else None)
    return out


def _merge_levels(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Level facts of consecutive partitions, as ``pandas.concat`` unites their dtypes: the
    first partition's categories when every partition has an equal categorical dtype (the
    same set of categories when unordered, the same order when ordered), else None."""
    out = dict(parts[0])
    for p in parts[1:]:
        for k, v in p.items():
            a = out.get(k)
            if a is None or v is None or a[1] != v[1] or (
                    a[0] != v[0] if a[1] else set(a[0]) != set(v[0])):
                out[k] = None
        for k in out:
            if k not in p:
                out[k] = None
    return out


def _partition_set(df: pd.DataFrame, roles: ColumnRoles, derived: Mapping[str, Any],
                   source: str, filters: Sequence[Any] = ()) -> EvaluationSet | None:
    """A partition's rows validated as on one machine (:meth:`EvaluationSet.from_frame`:
    same rules, same messages, naming the partition), with the filters applied; None when no
    row is left."""
    if len(df) == 0:
        return None
    ev = EvaluationSet.from_frame(df, roles, source=source, derived=derived)
    for f in filters:
        m = np.asarray(f(ev), dtype=bool)
        if not m.any():
            return None
        if not m.all():
            ev = ev.subset(m)
    return ev


def _file_task(part: Any, columns: Sequence[str], stat: Any, roles: ColumnRoles,
               derived: Mapping[str, Any], filters: Sequence[Any],
               level_columns: Sequence[str], fn: Any):
    """One file's task: read the columns, validate, ``fn``; with the file's level facts
    (nothing is kept but the result)."""
    from rwe.data._sources import MSG_CHANGED

    if stat is not None and part._stat() != tuple(stat):
        raise DataValidationError([MSG_CHANGED.format(path=part.path)], source=str(part.path))
    df = part.read(columns)
    levels = _level_facts(df, level_columns)
    ev = _partition_set(df, roles, derived, part.name, filters)
    del df
    return (None if ev is None else fn(ev)), levels


class _PartitionTask:
    """The task of a dask DataFrame's partition (fused with its read by ``map_partitions``):
    ``fn`` of its validated rows and its level facts, as a one-element object Series."""

    def __init__(self, source: str, args: tuple):
        self.source = source
        self.args = args

    def __call__(self, df: pd.DataFrame, partition_info: Mapping[str, Any] | None = None):
        roles, derived, filters, level_columns, fn = self.args
        i = (partition_info or {}).get("number", "?")
        ev = _partition_set(df, roles, derived, f"{self.source} partition {i}", filters)
        out = (None if ev is None else fn(ev)), _level_facts(df, level_columns)
        ser = pd.Series([None], dtype=object)
        ser.iloc[0] = out
        return ser


def _merge_task(parts: Sequence[Any], merge: Any):
    """Merge the values of partitions (None, a partition without rows, skipped) and their
    level facts."""
    parts = [_as_part(p) for p in parts]
    levels = _merge_levels([p[1] for p in parts])
    values = [p[0] for p in parts if p[0] is not None]
    if not values:
        return None, levels
    return (values[0] if len(values) == 1 else merge(values)), levels


class _SummaryOf:
    """A partition's summary and its distinct patient ids (the ``fn`` of
    :meth:`DaskEvaluationSet.summarize`)."""

    def __init__(self, spec: Any, patient_id: str | None):
        self.spec = spec
        self.patient_id = patient_id

    def __call__(self, ev: EvaluationSet):
        from rwe.stats.summaries import summarize

        ids = None
        if self.patient_id is not None:
            ids = distinct_ids(ev.frame[self.patient_id])
        return summarize(ev, self.spec), ids


def distinct_ids(values: pd.Series) -> np.ndarray:
    """The distinct non-missing values of an id column, as text (to count patients exactly
    across partitions: :func:`unite_ids`)."""
    return _distinct(values.dropna().astype("string").to_numpy(dtype=object))


def unite_ids(parts: Sequence[np.ndarray]) -> np.ndarray:
    """The distinct ids of several partitions' :func:`distinct_ids`."""
    return _distinct(np.concatenate(list(parts)))


def _merge_summaries_ids(values: Sequence[tuple[Any, Any]]):
    """Merge partition summaries with :meth:`Summary.merge` and unite their patient ids."""
    summaries = [v[0] for v in values]
    ids = None if values[0][1] is None else unite_ids([v[1] for v in values])
    return summaries[0].merge(*summaries[1:]), ids


def _as_part(x: Any):
    """A partition's result, whether a task's tuple or ``map_partitions``' one-element
    Series."""
    return x.iloc[0] if isinstance(x, pd.Series) else x


def _distinct(values: np.ndarray) -> np.ndarray:
    return np.unique(values) if values.size else values


def _frame_levels(ddf: Any) -> dict[str, Any]:
    """The levels a dask DataFrame's dtypes fix: known categories (in order, unobserved ones
    included); ``"merged"`` for an ordered categorical with unknown categories (the merged
    order of the partitions); others get the sorted union."""
    out: dict[str, Any] = {}
    for name, dt in ddf.dtypes.items():
        if isinstance(dt, pd.CategoricalDtype):
            if _known(ddf[name]):
                out[str(name)] = ([str(c) for c in dt.categories], bool(dt.ordered))
            elif dt.ordered:
                out[str(name)] = "merged"
    return out


def _canonical_levels(summary: Any, derived: Mapping[str, Mapping[str, Any]],
                      features: Sequence[str], fixed: Mapping[str, Any], *,
                      observed: bool = False, alias: Mapping[str, str] | None = None) -> Any:
    """The categories of attributes and categorical features as a summary of all the rows has
    them (module notes, step 3); ``fixed``: the columns whose categories are given (a
    ``(categories, ordered)`` pair, or ``"merged"``: keep the merged order); ``observed``:
    the others are the sorted values of the rows (the files of a source, concatenated as
    text), not also the unobserved categories of a partition's categorical."""
    from rwe.data._derive import window_range

    names = [(a, summary.cells.categories[j]) for j, a in enumerate(summary.attributes)]
    names += [(f, summary.features[f].categories) for f in features
              if getattr(summary.features.get(f), "kind", None) == "categorical"]
    for name, cats in names:
        rule = (alias or {}).get(name, name)
        spec = derived.get(rule)
        if spec is not None and "window" in spec:
            new = window_range(cats, spec["window"])
        elif spec is not None:  # age bands: every partition's bands are in band order
            continue
        elif fixed.get(rule) == "merged":
            continue
        elif fixed.get(rule) is not None:
            new = list(fixed[rule][0])
            new += [c for c in cats if c not in new]  # cannot happen: kept, never lost
        else:
            new = sorted(_categories(summary, name) if observed else cats)
        if list(new) != list(cats):
            summary = summary.with_categories(name, new, drop_unused=observed)
    return summary


def _categories(summary: Any, name: str) -> tuple[str, ...]:
    """The categories that hold a row: of an attribute, or of a categorical feature."""
    if name in summary.attributes:
        j = summary.attributes.index(name)
        used = set(np.unique(summary.cells.codes[:, j]).tolist())
        return tuple(c for i, c in enumerate(summary.cells.categories[j]) if i in used)
    f = summary.features[name]
    n = f.counts[:, :len(f.categories)].sum(axis=0)
    return tuple(c for c, k in zip(f.categories, n, strict=True) if k > 0)


def _known(col: Any) -> bool:
    try:
        return bool(col.cat.known)
    except AttributeError:  # pragma: no cover - dask without known/unknown categories
        return False


#: The glibc variable dask's nannies set for their workers (``distributed.nanny.pre-spawn-
#: environ``); rwe's local workers start without it (module notes).
_TRIM = "MALLOC_TRIM_THRESHOLD_"
#: The dask settings of the local cluster rwe starts (module notes).
LOCAL_CONFIG = {
    f"distributed.nanny.pre-spawn-environ.{_TRIM}": None,
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.tick.interval": "200ms",
}


def default_workers() -> int:
    """Worker processes of a local cluster by default: the CPUs this process may use."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def dask_cluster(scheduler: str = "local", *, workers: int | None = None,
                 threads_per_worker: int = 1, memory_limit: str | None = None,
                 timeout: float = 10.0, where: str = "data.dask.scheduler") -> Iterator[Any]:
    """A ``distributed.Client`` for one analysis, closed (with the workers rwe started) when
    the ``with`` block ends.

    Parameters
    ----------
    scheduler : str
        ``"local"``: a ``LocalCluster`` of ``workers`` processes with ``threads_per_worker``
        threads each, on the loopback interface, without a dashboard, started now and closed
        afterwards (its workers start without ``MALLOC_TRIM_THRESHOLD_``: module notes). Else
        the address of a running scheduler (``tcp://HOST:PORT``), which is left running.
        The local cluster's settings are :data:`LOCAL_CONFIG` (module notes).
    workers : int, optional
        Default: the CPUs this process may use (:func:`default_workers`).
    threads_per_worker : int
    memory_limit : str, optional
        Per worker, as dask writes it (``"4GiB"``); default: dask's share of the machine.
    timeout : float
        Seconds to wait for the scheduler.
    where : str
        The protocol field named in messages.

    Raises
    ------
    DataValidationError
        The scheduler cannot be reached (one line naming ``where`` and the address).
    """
    import logging
    import os

    from rwe._optional import import_optional

    distributed = import_optional("distributed", extra="scale")
    import dask

    if scheduler != "local":
        try:
            client = distributed.Client(scheduler, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            reason = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()),
                          type(exc).__name__)
            raise DataValidationError([MSG_SCHEDULER.format(where=where, address=scheduler,
                                                            reason=reason)],
                                      source=where) from None
        try:
            yield client
        finally:
            client.close()
        return
    trim = os.environ.pop(_TRIM, None)  # an earlier nanny of this process may have set it
    try:
        with dask.config.set(LOCAL_CONFIG):
            cluster = distributed.LocalCluster(
                n_workers=workers or default_workers(), threads_per_worker=threads_per_worker,
                processes=True, host="127.0.0.1", dashboard_address=None,
                memory_limit=memory_limit if memory_limit is not None else "auto",
                silence_logs=logging.ERROR)
    finally:
        if trim is not None:
            os.environ[_TRIM] = trim
    try:
        client = distributed.Client(cluster, set_as_default=False)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()
