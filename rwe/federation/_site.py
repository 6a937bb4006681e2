"""A site's summary: its rows validated, protected and summarized at the declared resolution.

A site summary file (``"schema": "rwe.site-summary/2"``, JSON; /1, whose views' checksums
hash sorted-key JSON, is still read) holds one
:class:`rwe.stats.summaries.Summary` per *view* of the protocol's analyses:

``cohort``
    the grouping attributes of the subgroup and representativeness analyses (subgroup
    attributes and intersections, population attributes, site, equipment), every model
    version, the population covariates;
``drift`` (with a drift section and ``data.reference_rows``)
    the calendar window and the drift groupings, the primary version, the drift features
    with their histograms on edges fixed on the reference rows (the same at every site).

Both views are summaries of the same protected rows (the disclosure rule of
:mod:`rwe.federation._disclosure` is applied until both views meet it), so their common
margins are identical and neither can be subtracted from the other. The file also states the
rule, the site, the period released and the protocol's sha256, and carries a sha256 checksum
of its content.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rwe._results import canonical_sha256, checksum_matches_text, compact_members
from rwe.exceptions import InvalidParameterError, RWEError
from rwe.federation._disclosure import DisclosureRecord, protect_arrays
from rwe.stats.summaries import summarize_arrays

__all__ = ["SITE_SCHEMA", "VIEWS", "SiteView", "SiteSummary", "FederationError", "site_views",
           "summarize_site", "load_site_summary"]

SITE_SCHEMA = "rwe.site-summary/2"
#: The site file schema of rwe before 2026-12-02 (views of "rwe.summary/1"): still read.
EARLIER_SITE_SCHEMA = "rwe.site-summary/1"
VIEWS = ("cohort", "drift")
MSG_SITE_CHECKSUM = "{where}: site summary checksum mismatch: the file is truncated or was edited"
MSG_SITE_SCHEMA = ("{where}: not an rwe site summary (schema {found!r}, expected "
                   "{expected!r})")


class FederationError(RWEError, ValueError):
    """Site summaries that cannot be made, released or merged (one line naming the file and
    what is wrong)."""


@dataclass(frozen=True)
class SiteView:
    """What one view of a site summary holds."""

    name: str
    attributes: tuple[str, ...]
    features: tuple[str, ...]
    versions: tuple[str, ...]
    feature_edges: Mapping[str, np.ndarray] = field(default_factory=dict)
    window: str | None = None


def site_views(protocol, reference_rows: pd.DataFrame | None = None
               ) -> tuple[dict[str, SiteView], dict[str, str]]:
    """The views a site summarizes for ``protocol`` and, per view left out, the reason.

    ``reference_rows`` (default ``protocol.load_reference_rows()``) fixes the drift features'
    histogram edges (:func:`rwe.drift.reference_edges`, the rule of
    :func:`rwe.drift.assess_drift`)."""
    spec = protocol.summary_spec()
    c = protocol.data.columns
    d = protocol.drift
    drift_only: set[str] = set()
    if d is not None:
        drift_only = set(d.by) | {a for rule in d.alerts for a in rule.by}
    cohort_attrs = list(protocol.subgroups.attributes)
    cohort_attrs += [a for inter in protocol.subgroups.intersections for a in inter]
    cohort_attrs += list(protocol.population.attributes)
    cohort_attrs += [a for a in (c.site, c.equipment) if a is not None]
    cohort_attrs = list(dict.fromkeys(cohort_attrs))
    if not cohort_attrs:  # nothing pre-specified: the drift groupings still group the cohort
        cohort_attrs = [a for a in spec.attributes or () if a not in drift_only]
    views = {"cohort": SiteView("cohort", tuple(cohort_attrs),
                                tuple(dict.fromkeys(protocol.population.covariates)),
                                tuple(c.scores))}
    skipped: dict[str, str] = {}
    if d is None:
        skipped["drift"] = "the protocol has no drift section"
        return views, skipped
    ref_kind = d.reference or ("reference_rows" if protocol.data.reference_rows else
                               "reference_period")
    if ref_kind != "reference_rows":
        skipped["drift"] = ("drift.reference is the reference period: the sites cannot fix the "
                            "feature bins before the data are pooled; give data.reference_rows")
        return views, skipped
    from rwe.drift._drift import feature_edges

    ref = reference_rows if reference_rows is not None else protocol.load_reference_rows()
    feats = list(d.features) or list(c.features)
    rows = protocol.data.reference_rows
    _, edges = feature_edges(
        ref, feats, d.feature_bins,
        absent=lambda f: FederationError(f"{rows}: drift feature {f!r} is not a column of the "
                                         "reference rows"),
        empty=lambda f: FederationError(f"{rows}: drift feature {f!r} has no value in the "
                                        "reference rows"))
    by = [a for a in dict.fromkeys([*d.by, *(a for r in d.alerts for a in r.by)])]
    views["drift"] = SiteView("drift", (d.window, *by), tuple(feats), (protocol.version,),
                              edges, window=d.window)
    return views, skipped


# ----------------------------------------------------------------------------- the file
@dataclass(frozen=True, eq=False)
class SiteSummary:
    """The protected summaries of one site (see the module notes).

    Attributes
    ----------
    site : str
    protocol_sha256 : str
    period : list of str or None
        The period released: the ``--period`` dates, else the first and last calendar month
        of the rows (never a row's own timestamp).
    views : dict of str to Summary
    disclosure : dict of str to dict
        Per view, the :class:`rwe.federation._disclosure.DisclosureRecord` (rule and
        references included).
    skipped : dict of str to str
        Views not summarized and why.
    """

    site: str
    protocol_sha256: str
    period: list[str] | None
    views: dict[str, Any]
    disclosure: dict[str, dict[str, Any]]
    skipped: dict[str, str] = field(default_factory=dict)
    protocol_name: str | None = None
    #: The checksum a file stated, once :func:`load_site_summary` has verified it (None: made
    #: here, computed on first use; not an init field, so ``dataclasses.replace`` drops it).
    _verified_checksum: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def source(self) -> str:
        return self.views["cohort"].sources[0]["source"]

    def to_dict(self) -> dict[str, Any]:
        """The file's content; ``checksum`` covers every field and each view's own checksum
        (which covers the view's content)."""
        out = self._meta()
        out["views"] = {k: v.to_dict() for k, v in self.views.items()}
        out["checksum"] = _site_checksum(out)
        return out

    def earlier_checksum(self) -> str:
        """The checksum rwe versions before 2026-12-02 stated for this content (schema
        "rwe.site-summary/1", each view's checksum over its sorted-key JSON as
        "rwe.summary/1", :func:`rwe.stats.summaries._sorted_checksum`): the differencing
        guard tells an identical release logged by such a version from a different one."""
        from rwe.stats.summaries import _sorted_checksum

        out = {**self._meta(), "schema": EARLIER_SITE_SCHEMA}
        out["views"] = {k: {"checksum": _sorted_checksum({**v._body(),
                                                          "schema": "rwe.summary/1"})}
                        for k, v in self.views.items()}
        return _site_checksum(out)

    def _meta(self) -> dict[str, Any]:
        return {"schema": SITE_SCHEMA, "site": self.site, "protocol_sha256": self.protocol_sha256,
                "protocol_name": self.protocol_name, "period": self.period,
                "disclosure": self.disclosure, "skipped": dict(self.skipped)}

    @cached_property
    def checksum(self) -> str:
        """The file's checksum: the one a loaded file stated (verified when it was read),
        else computed from the content, which writes every view's numbers again. A file
        written by an earlier version states its views' checksums over sorted-key JSON
        (:meth:`earlier_checksum`): this is then the checksum the file states, which is what
        the merge's provenance records, not the one :meth:`save` would write now."""
        return self._verified_checksum or self.to_dict()["checksum"]

    def save(self, path: str | Path) -> Path:
        """Write the file atomically (a temporary file renamed into place), as compact JSON:
        each view's text is then what its checksum hashes, and a merge checks the checksum on
        the file's text (:func:`load_site_summary`)."""
        p = Path(path)
        tmp = p.with_name(f".{p.name}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False,
                                  ensure_ascii=False), encoding="utf-8")
        tmp.replace(p)
        return p


def _site_checksum(d: Mapping[str, Any]) -> str:
    """sha256 of the file's fields with each view replaced by its own checksum."""
    body = {k: v for k, v in d.items() if k not in ("checksum", "views")}
    body["views"] = {k: (v.get("checksum") if isinstance(v, Mapping) else None)
                     for k, v in (d.get("views") or {}).items()}
    return canonical_sha256(body)


def _checked_views(text: str) -> tuple[Any, set[str]]:
    """Parse a site summary file: its content, and the views whose checksum was checked on
    the file's text (written compact by :meth:`SiteSummary.save`: a view's checksum is the
    sha256 of the view's text without that member). The others, all of them for a file
    written another way, are checked on their parsed content (:meth:`Summary.from_dict`)."""
    parsed = compact_members(text, depth=2)
    if parsed is None or parsed[2] != len(text):
        return json.loads(text), set()
    d, spans, _ = parsed
    views = spans.get("views")
    if views is None or views[3] is None or not isinstance(d.get("views"), dict):
        return d, set()
    checked = set()
    for name, (_, end, start, members) in views[3].items():
        view = d["views"][name]
        if members is not None and checksum_matches_text(text, start, end, view, members):
            checked.add(name)
    return d, checked


def load_site_summary(path: str | Path) -> SiteSummary:
    """Read and check a site summary file: readable JSON, its schema, its checksum and every
    view's own schema and checksum (one line naming the file otherwise)."""
    from rwe.stats.summaries import Summary, SummaryError

    p = Path(path)
    where = str(p)
    if not p.is_file():
        raise FederationError(f"{where}: site summary file not found")
    try:
        d, checked = _checked_views(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FederationError(f"{where}: not a readable site summary ({type(exc).__name__}: "
                              "the file is truncated or is not JSON)") from None
    if not isinstance(d, dict) or d.get("schema") not in (SITE_SCHEMA, EARLIER_SITE_SCHEMA):
        found = d.get("schema") if isinstance(d, dict) else type(d).__name__
        raise FederationError(MSG_SITE_SCHEMA.format(where=where, found=found,
                                                     expected=SITE_SCHEMA))
    if not isinstance(d.get("views"), Mapping) or d.get("checksum") != _site_checksum(d):
        raise FederationError(MSG_SITE_CHECKSUM.format(where=where))
    try:
        views = {k: Summary.from_dict(v, where=f"{where}: view {k!r}",
                                      text_checked=k in checked)
                 for k, v in d["views"].items()}
        if "cohort" not in views:
            raise KeyError("views.cohort")
        summary = SiteSummary(str(d["site"]), str(d["protocol_sha256"]), d.get("period"),
                              views, dict(d["disclosure"]), dict(d.get("skipped") or {}),
                              d.get("protocol_name"))
        object.__setattr__(summary, "_verified_checksum", d["checksum"])  # verified above
        return summary
    except SummaryError as exc:
        raise FederationError(str(exc)) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise FederationError(f"{where}: malformed site summary ({type(exc).__name__}: "
                              f"{exc})") from None


# ----------------------------------------------------------------------------- building
def _parse_date(text: Any, what: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(_dt.date.fromisoformat(str(text)))
    except ValueError:
        raise InvalidParameterError(f"{what} must be a date YYYY-MM-DD, got {text!r}") from None


def _month(ts: pd.Timestamp) -> str:
    return f"{ts.year:04d}-{ts.month:02d}"


def summarize_site(protocol, site: str, *, data: Any = None,
                   period: Sequence[str] | None = None,
                   reference_rows: pd.DataFrame | None = None) -> tuple[SiteSummary, dict]:
    """Summarize one site's rows for a federated evaluation.

    Parameters
    ----------
    protocol : rwe.protocol.Protocol
        Needs a ``federation`` section (the declared score resolution).
    site : str
        The site's name (the source of its summaries; with a ``data.columns.site`` role only
        the rows of that site are kept).
    data : EvaluationSet, DaskEvaluationSet, path or None
        The site's rows (default: the protocol's data; a path replaces ``data.path``). With
        ``data.engine: dask`` the rows are read in partitions on the protocol's cluster
        (:meth:`rwe.protocol.Protocol.open_data`) and never gathered: one pass counts the
        distinct kinds of row (cells of the grouping attributes x outcome x the categories
        the disclosure rule looks at in the features), the rule is applied to those counts
        (the same decisions as on the rows: :func:`rwe.federation._disclosure.protect_arrays`
        with weights), and a second pass summarizes each partition's protected rows, merged.
    period : (start, end), optional
        Dates (``YYYY-MM-DD``, both included): only rows with a timestamp in the period are
        summarized, and the period is what the file says was released.
    reference_rows : DataFrame, optional
        The reference rows that fix the drift features' bins (default: the protocol's).

    Returns
    -------
    SiteSummary
    release : dict
        What the site's release log records (exact period of the rows, rows, checksum): it
        stays at the site.

    Raises
    ------
    FederationError
        No federation section, no row for the site or the period, an unknown attribute.
    """
    from rwe.data import EvaluationSet

    p = protocol
    if p.federation is None:
        raise FederationError(f"{p.path or '<protocol>'}: rwe summarize needs the protocol's "
                              "federation section (federation.score_bins: the declared "
                              "resolution of site summaries)")
    site = str(site)
    if not site.strip():
        raise InvalidParameterError("site must be a non-empty name")
    fed = p.federation
    if fed.sites and site not in fed.sites:
        raise FederationError(p.locate(("federation", "sites")) + f": site {site!r} is not "
                              f"listed (sites: {', '.join(fed.sites)})")
    if data is not None and (isinstance(data, EvaluationSet) or callable(
            getattr(data, "summarize", None))):
        return _summarize_site(p, site, data, period, reference_rows)
    with p.open_data(path=data) as ev:
        return _summarize_site(p, site, ev, period, reference_rows)


@dataclass
class _Rows:
    """What the disclosure rule looks at, per row (or per kind of row, with ``weights``)."""

    codes: dict[str, np.ndarray]  # attribute -> category codes (-1 missing)
    cats: dict[str, tuple[Any, bool]]  # attribute -> (categories, ordered)
    y: np.ndarray
    fvals: dict[str, np.ndarray]  # feature -> float values, or category codes
    fcats: dict[str, Any]  # categorical feature -> categories
    fbinary: dict[str, bool]  # numeric feature -> only 0 / 1 values
    weights: np.ndarray | None = None


def _period_bounds(period, roles, source: str):
    """(declared period, lo, hi) of ``--period`` (hi: the day after the end), or Nones."""
    if period is None:
        return None, None, None
    if roles.timestamp is None:
        raise FederationError(f"{source}: --period needs the timestamp column role")
    if len(period) != 2:
        raise InvalidParameterError(f"period must be (start, end), got {period!r}")
    lo, hi = _parse_date(period[0], "period start"), _parse_date(period[1], "period end")
    if hi < lo:
        raise InvalidParameterError(f"period end {period[1]} is before its start "
                                    f"{period[0]}")
    return [str(lo.date()), str(hi.date())], lo, hi + pd.Timedelta(days=1)


class _SiteRows:
    """The rows of a site (and a period): a mask of an EvaluationSet (picklable: it runs on
    dask workers)."""

    def __init__(self, site_col: str | None, site: str, lo: Any = None, hi: Any = None):
        self.site_col, self.site, self.lo, self.hi = site_col, site, lo, hi

    def __call__(self, ev: Any) -> np.ndarray:
        mask = np.ones(len(ev), dtype=bool)
        if self.site_col is not None:
            values = ev.frame[self.site_col].astype("string")
            mask &= (values == self.site).fillna(False).to_numpy(dtype=bool)
        if self.lo is not None:
            ts = ev.timestamps
            if isinstance(ts.dtype, pd.DatetimeTZDtype):
                ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
            mask &= ((ts >= self.lo) & (ts < self.hi)).to_numpy(dtype=bool)
        return mask


def _summarize_site(p, site: str, ev: Any, period, reference_rows):
    from rwe.data import EvaluationSet

    roles = ev.roles
    if roles.label is None:
        raise FederationError(f"{ev.source}: a site summary needs the binary label role")
    declared, lo, hi = _period_bounds(period, roles, ev.source)
    views, skipped = site_views(p, reference_rows)
    window = views["drift"].window if "drift" in views else None
    attrs_all = list(dict.fromkeys(a for v in views.values() for a in v.attributes))
    feats_all = list(dict.fromkeys(f for v in views.values() for f in v.features))
    if not isinstance(ev, EvaluationSet):
        return _summarize_site_partitions(p, site, ev, views, skipped, window, attrs_all,
                                          feats_all, declared, lo, hi)
    mask = _SiteRows(roles.site, site)(ev)
    if roles.site is not None and not mask.any():
        values = ev.frame[roles.site].astype("string")
        found = sorted(map(str, values.dropna().unique()))[:8]
        raise FederationError(f"{ev.source}: no row has {roles.site} = {site!r} (values "
                              f"found: {', '.join(found) or 'none'})")
    if declared is not None:
        mask &= _SiteRows(None, site, lo, hi)(ev)
        if not mask.any():
            raise FederationError(f"{ev.source}: no row of site {site!r} in the period "
                                  f"{period[0]} to {period[1]}")
    if not mask.all():
        ev = ev.subset(mask)
    k = p.min_count
    for a in attrs_all:
        if a != window:
            ev.attribute(a)  # raises naming the grouping columns
    # ---------------------------------------------------------------- arrays to protect
    cats: dict[str, tuple[Any, bool]] = {}
    codes: dict[str, np.ndarray] = {}
    for a in attrs_all:
        col = ev.window(window) if a == window else ev.attribute(a)
        cats[a] = (col.cat.categories, bool(col.cat.ordered))
        codes[a] = col.cat.codes.to_numpy().astype(np.int32)
    y = ev.y_true
    fvals: dict[str, np.ndarray] = {}
    fcats: dict[str, Any] = {}
    fbinary: dict[str, bool] = {}
    for f in feats_all:
        col = ev.frame[f]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            x = col.to_numpy(dtype=np.float64, na_value=np.nan)
            fvals[f] = x
            fin = x[~np.isnan(x)]
            fbinary[f] = bool(fin.size and np.isin(fin, (0.0, 1.0)).all())
        else:
            c = col if isinstance(col.dtype, pd.CategoricalDtype) else col.astype(
                "string").astype("category")
            fcats[f] = c.cat.categories
            fvals[f] = c.cat.codes.to_numpy().astype(np.int64)
    rows = _Rows(codes, cats, y, fvals, fcats, fbinary)
    keep, records = _protect(p, views, rows, k)
    # ---------------------------------------------------------------- summaries
    idx = np.flatnonzero(keep)
    if idx.size == 0:
        raise FederationError(f"{ev.source}: every row of site {site!r} is withheld by the "
                              f"disclosure rule (fewer than {k} rows per outcome)")
    ts_all = ev.timestamps.iloc[idx] if roles.timestamp is not None else None
    first = last = None
    if ts_all is not None and ts_all.notna().any():
        first, last = pd.Timestamp(ts_all.min()), pd.Timestamp(ts_all.max())
    source = site if declared is None else f"{site} {declared[0]}..{declared[1]}"
    patients = None
    if roles.patient_id is not None:
        patients = int(pd.unique(ev.frame[roles.patient_id].to_numpy()[idx]).size)
    out_views = {}
    for name, view in views.items():
        s = summarize_arrays(**_view_arrays(p, view, rows, idx, ev, source),
                             patients=patients)
        out_views[name] = s
    return _site_summary(p, site, out_views, records, skipped, declared, first, last,
                         int(idx.size))


#: Prefix of a feature's column among the kinds of row (a feature may also be an attribute).
_TOKEN = "\x00"
#: What the disclosure rule sees of a numeric feature's value: 0, 1 or another number.
_NUMERIC_TOKENS = {"0": 0.0, "1": 1.0, "x": 0.5}


class _RowKinds:
    """A partition's kinds of row: a summary whose cells are the grouping attributes and, per
    feature, what the disclosure rule looks at (its category; of a numeric feature: missing,
    0, 1 or another number), with rows and events per cell; and each feature's kind
    (picklable: it runs on dask workers)."""

    def __init__(self, attributes: Sequence[str], features: Sequence[str]):
        self.attributes, self.features = list(attributes), list(features)

    def __call__(self, ev: Any):
        attrs: dict[str, Any] = {a: ev.attribute(a) for a in self.attributes}
        kinds = {}
        for f in self.features:
            attrs[_TOKEN + f], kinds[f] = _feature_token(ev, f)
        return summarize_arrays(y_true=ev.y_true, attributes=attrs), kinds


def _feature_token(ev: Any, f: str) -> tuple[pd.Series, str]:
    """What the disclosure rule looks at in feature ``f``, as a categorical per row, and the
    feature's kind: its category (``"categorical"``), or of a number whether it is missing,
    0, 1 or another (``"numeric"``), as :func:`summarize_site` reads features."""
    col = ev.frame[f]
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        x = col.to_numpy(dtype=np.float64, na_value=np.nan)
        tok = np.where(x == 0, 0, np.where(x == 1, 1, 2))
        tok[np.isnan(x)] = -1
        return pd.Series(pd.Categorical.from_codes(tok, categories=list(_NUMERIC_TOKENS))), \
            "numeric"
    if not isinstance(col.dtype, pd.CategoricalDtype):
        col = col.astype("string").astype("category")
    return col, "categorical"


def _merge_kinds(values: Sequence[tuple[Any, dict[str, str]]]):
    kinds = dict(values[0][1])
    for _, k in values[1:]:
        for f, v in k.items():
            if kinds.get(f) != v:
                kinds[f] = "mixed"
    summaries = [v[0] for v in values]
    return summaries[0].merge(*summaries[1:]), kinds


def _cell_keys(codes: np.ndarray, radix: Sequence[int]) -> np.ndarray:
    """One integer per row of ``codes`` (cells x columns, -1 = missing) in mixed radix."""
    key = np.zeros(codes.shape[0], dtype=np.int64)
    stride = 1
    for j, r in enumerate(radix):
        key += (codes[:, j].astype(np.int64) + 1) * stride
        stride *= r
    return key


class _ProtectedRows:
    """A partition's protected rows summarized per view (the decisions made on the kinds of
    row, looked up by each row's kind and outcome), with the distinct patient ids, the
    first and last timestamp and the number of rows kept (picklable)."""

    def __init__(self, p, views: Mapping[str, SiteView], columns: Sequence[str],
                 categories: Sequence[Sequence[str]], keys: np.ndarray, radix: Sequence[int],
                 decisions: Mapping[str, Any]):
        self.views = dict(views)
        self.columns, self.categories = list(columns), [list(c) for c in categories]
        self.keys, self.radix, self.d = keys, list(radix), dict(decisions)
        self.resolution = p.declared_resolution()
        self.threshold = p.performance.threshold
        self.sha = p.sha256

    def __call__(self, ev: Any):
        from rwe.data._dask import distinct_ids

        codes = np.empty((len(ev), len(self.columns)), dtype=np.int64)
        for j, (name, cats) in enumerate(zip(self.columns, self.categories, strict=True)):
            col = (ev.attribute(name) if not name.startswith(_TOKEN) else
                   _feature_token(ev, name[len(_TOKEN):])[0])
            pos = {c: i for i, c in enumerate(cats)}
            lut = np.array([pos.get(str(c), -2) for c in col.cat.categories] + [-1],
                           dtype=np.int64)
            codes[:, j] = lut[col.cat.codes.to_numpy()]
        key = _cell_keys(codes, self.radix)
        cell = np.searchsorted(self.keys, key)
        cell = np.minimum(cell, self.keys.size - 1)
        if (self.keys[cell] != key).any():  # pragma: no cover - pass 1 saw every row
            raise FederationError(f"{ev.source}: a row of a kind the first pass did not see "
                                  "(the data changed between the passes)")
        y = ev.y_true.astype(np.int64)
        kept = self.d["keep"][cell, y]
        idx = np.flatnonzero(kept)
        c, yk = cell[idx], y[idx]
        out = {}
        for name, view in self.views.items():
            attributes = {a: pd.Categorical.from_codes(self.d["codes"][a][c, yk],
                                                       categories=self.d["cats"][a])
                          for a in view.attributes}
            features: dict[str, Any] = {}
            for f in view.features:
                if f in self.d["fcats"]:
                    features[f] = pd.Categorical.from_codes(self.d["fcodes"][f][c, yk],
                                                            categories=self.d["fcats"][f])
                else:
                    x = ev.frame[f].to_numpy(dtype=np.float64, na_value=np.nan)[idx]
                    x[self.d["withheld"][f][c, yk]] = np.nan
                    features[f] = x
            out[name] = summarize_arrays(
                y_true=ev.y_true[idx], scores={v: ev.score(v)[idx] for v in view.versions},
                attributes=attributes, features=features, resolution=self.resolution,
                thresholds=(self.threshold,), protocol_sha256=self.sha,
                feature_edges={f: e for f, e in view.feature_edges.items()})
        pid = ev.roles.patient_id
        ids = None if pid is None else distinct_ids(ev.frame[pid].iloc[idx])
        first = last = None
        if ev.roles.timestamp is not None:
            ts = ev.timestamps.iloc[idx]
            if ts.notna().any():
                first, last = ts.min(), ts.max()
        return out, ids, first, last, int(idx.size)


def _merge_protected(values: Sequence[tuple]):
    from rwe.data._dask import unite_ids

    views = {name: values[0][0][name].merge(*(v[0][name] for v in values[1:]))
             for name in values[0][0]}
    ids = None if values[0][1] is None else unite_ids([v[1] for v in values])
    firsts = [v[2] for v in values if v[2] is not None]
    lasts = [v[3] for v in values if v[3] is not None]
    return (views, ids, min(firsts) if firsts else None, max(lasts) if lasts else None,
            sum(v[4] for v in values))


def _summarize_site_partitions(p, site: str, dev: Any, views, skipped, window, attrs_all,
                               feats_all, declared, lo, hi):
    """:func:`summarize_site` of a dask-backed set (module notes of the function): two
    passes over the partitions, the disclosure rule on the kinds of row in between."""
    from rwe.data._dask import _canonical_levels, _categories

    roles = dev.roles
    k = p.min_count
    grouping = dev.grouping_columns()
    for a in attrs_all:
        if a != window and a not in grouping:
            raise InvalidParameterError(
                f"attribute {a!r} is not a column of {dev.source}; grouping columns: "
                f"{', '.join(map(repr, grouping))}")
    derived = dict(dev.derived)
    if window is not None:
        if roles.timestamp is None:
            raise InvalidParameterError(
                f"{dev.source}: calendar windows need the timestamp column role")
        derived.setdefault(window, {"from": roles.timestamp, "window": window})
    rows_set = dev.where(_SiteRows(roles.site, site, lo, hi))
    value, levels = rows_set.reduce(_RowKinds(attrs_all, feats_all), _merge_kinds,
                                    derived=derived, features=feats_all)
    if value is None:
        if roles.site is not None:
            every = dev.summarize(attributes=[roles.site], versions=[], features=[])
            found = sorted(_categories(every, roles.site))
            if site not in found:
                raise FederationError(f"{dev.source}: no row has {roles.site} = {site!r} "
                                      f"(values found: {', '.join(found[:8]) or 'none'})")
        raise FederationError(f"{dev.source}: no row of site {site!r} in the period "
                              f"{declared[0]} to {declared[1]}")
    kinds_summary, fkinds = value
    mixed = [f for f, v in fkinds.items() if v == "mixed"]
    if mixed:
        raise FederationError(f"{dev.source}: feature {mixed[0]!r} is numeric in some "
                              "partitions and text in others; give every file the same "
                              "column types")
    S = _canonical_levels(kinds_summary, derived, [], rows_set.fixed_levels(levels),
                          observed=rows_set.parts is not None,
                          alias={_TOKEN + f: f for f in feats_all})
    # ---------------------------------------------------------------- the kinds of row
    C = S.cells.n_cells
    n, ev_ = S.n.astype(np.int64), S.events.astype(np.int64)
    has1, has0 = ev_ > 0, n - ev_ > 0
    cell = np.concatenate([np.flatnonzero(has1), np.flatnonzero(has0)])
    y = np.concatenate([np.ones(int(has1.sum()), bool), np.zeros(int(has0.sum()), bool)])
    w = np.concatenate([ev_[has1], (n - ev_)[has0]])
    col = {a: j for j, a in enumerate(S.attributes)}
    codes = {a: S.cells.codes[cell, col[a]].astype(np.int32) for a in attrs_all}
    cats = {a: (pd.Index(S.cells.categories[col[a]]), False) for a in attrs_all}
    fvals: dict[str, np.ndarray] = {}
    fcats: dict[str, Any] = {}
    fbinary: dict[str, bool] = {}
    for f in feats_all:
        j = col[_TOKEN + f]
        tok = S.cells.codes[cell, j].astype(np.int64)
        if fkinds[f] == "categorical":
            fcats[f] = pd.Index(S.cells.categories[j])
            fvals[f] = tok
        else:
            labels = S.cells.categories[j]
            vals = np.array([_NUMERIC_TOKENS[t] for t in labels] + [np.nan])
            fvals[f] = vals[np.where(tok < 0, len(labels), tok)]
            seen = {labels[t] for t in np.unique(tok[tok >= 0])}
            fbinary[f] = bool(seen & {"0", "1"}) and "x" not in seen
    rows = _Rows(codes, cats, y, fvals, fcats, fbinary, weights=w)
    keep, records = _protect(p, views, rows, k)
    if not keep.any():
        raise FederationError(f"{dev.source}: every row of site {site!r} is withheld by the "
                              f"disclosure rule (fewer than {k} rows per outcome)")
    # ---------------------------------------------------------------- the decisions
    yi = y.astype(np.int64)
    dk = np.zeros((C, 2), dtype=bool)
    dk[cell, yi] = keep
    decisions: dict[str, Any] = {"keep": dk, "codes": {}, "cats": {}, "fcodes": {},
                                 "fcats": {}, "withheld": {}}
    for a in attrs_all:  # the categories of the kept rows, in order, as remove_unused
        final, lut = _final_categories(codes[a][keep], cats[a][0])
        arr = np.full((C, 2), -1, dtype=np.int32)
        arr[cell, yi] = lut[codes[a]]
        decisions["codes"][a], decisions["cats"][a] = arr, final
    for f in feats_all:
        if f in fcats:
            final, lut = _final_categories(fvals[f][keep], fcats[f])
            arr = np.full((C, 2), -1, dtype=np.int64)
            arr[cell, yi] = lut[fvals[f]]
            decisions["fcodes"][f], decisions["fcats"][f] = arr, final
        else:
            arr = np.zeros((C, 2), dtype=bool)
            arr[cell, yi] = np.isnan(fvals[f]) & (S.cells.codes[cell, col[_TOKEN + f]] >= 0)
            decisions["withheld"][f] = arr
    columns = list(S.attributes)
    radix = [len(c) + 1 for c in S.cells.categories]
    if math.prod(radix) >= 2**62:
        raise FederationError(f"{dev.source}: too many kinds of row to protect in partitions "
                              "(the attributes and features have too many categories); read "
                              "the site's data with engine: pandas")
    keys = _cell_keys(S.cells.codes.astype(np.int64), radix)
    order = np.argsort(keys)
    for group in ("codes", "fcodes", "withheld"):
        decisions[group] = {k_: v[order] for k_, v in decisions[group].items()}
    decisions["keep"] = dk[order]
    fn = _ProtectedRows(p, views, columns, S.cells.categories, keys[order], radix, decisions)
    value, _ = rows_set.reduce(fn, _merge_protected, derived=derived, features=feats_all)
    out, ids, first, last, kept = value
    source = site if declared is None else f"{site} {declared[0]}..{declared[1]}"
    for name, s in out.items():
        src: dict[str, Any] = {"source": source, "rows": s.n_rows}
        if ids is not None:
            src["patients"] = int(ids.size)
        out[name] = replace(s, sources=(src,))
    first = None if first is None else pd.Timestamp(first)
    last = None if last is None else pd.Timestamp(last)
    return _site_summary(p, site, {name: out[name] for name in views}, records, skipped,
                         declared, first, last, kept)


def _final_categories(codes: np.ndarray, categories: Any) -> tuple[list[str], np.ndarray]:
    """The categories ``codes`` use, in order, and the map of old codes to new ones (-1 ->
    -1), as ``remove_unused_categories``."""
    used = np.unique(codes[codes >= 0])
    lut = np.full(len(categories) + 1, -1, dtype=np.int64)
    lut[used] = np.arange(used.size)
    return [str(categories[i]) for i in used], lut


def _view_arrays(p, view: SiteView, rows: _Rows, idx: np.ndarray, ev: Any,
                 source: str | None) -> dict[str, Any]:
    """The arguments of :func:`summarize_arrays` for one view of the protected rows ``idx``
    (row positions of ``ev``; ``rows`` indexed the same way)."""
    attributes = {}
    for a in view.attributes:
        categories, ordered = rows.cats[a]
        attributes[a] = pd.Categorical.from_codes(
            rows.codes[a][idx], categories=categories, ordered=ordered
        ).remove_unused_categories()
    features = {}
    for f in view.features:
        if f in rows.fcats:
            features[f] = pd.Categorical.from_codes(
                rows.fvals[f][idx], categories=rows.fcats[f]).remove_unused_categories()
        else:
            features[f] = rows.fvals[f][idx]
    return dict(y_true=rows.y[idx], scores={v: ev.score(v)[idx] for v in view.versions},
                attributes=attributes, features=features,
                resolution=p.declared_resolution(), thresholds=(p.performance.threshold,),
                protocol_sha256=p.sha256, source=source,
                feature_edges={f: e for f, e in view.feature_edges.items()})


def _protect(p, views: Mapping[str, SiteView], rows: _Rows, k: int
             ) -> tuple[np.ndarray, dict[str, DisclosureRecord]]:
    """The disclosure rule applied to both views until neither changes (values only get
    withheld): the rows kept; ``rows.codes`` and ``rows.fvals`` are updated in place."""
    codes, cats, y, fvals = rows.codes, rows.cats, rows.y, rows.fvals
    fcats, fbinary, w = rows.fcats, rows.fbinary, rows.weights
    order = _recode_order(p, views)
    keep = np.ones(len(y), dtype=bool)
    codes0 = {a: c.copy() for a, c in codes.items()}
    fvals0 = {f: v.copy() for f, v in fvals.items()}
    records: dict[str, DisclosureRecord] = {}
    for _round in range(64):  # both views until neither changes (values only get withheld)
        changed = False
        for name, view in views.items():
            idx = np.flatnonzero(keep)
            fspec = {}
            for f in view.features:
                if f in fcats:
                    fspec[f] = ("categorical", fvals[f][idx], len(fcats[f]))
                elif fbinary[f]:
                    x = fvals[f][idx]
                    fspec[f] = ("categorical", np.where(np.isnan(x), -1, x).astype(np.int64), 2)
                else:
                    fspec[f] = ("continuous", fvals[f][idx], 0)
            oa, kp, of, rec = protect_arrays(
                attributes={a: (codes[a][idx], len(cats[a][0])) for a in view.attributes},
                y=y[idx], features=fspec, k=k,
                recode_order=[a for a in order if a in view.attributes],
                weights=None if w is None else w[idx])
            records[name] = _accumulate(records.get(name), rec)
            if not kp.all():
                keep[idx[~kp]] = False
                changed = True
            kidx = idx[kp]
            for a, new in oa.items():
                if (codes[a][kidx] != new).any():
                    codes[a][kidx] = new
                    changed = True
            for f, new in of.items():
                old = fvals[f][kidx]
                if f in fcats:
                    upd = new.astype(np.int64)
                elif fbinary[f]:
                    upd = np.where(new < 0, np.nan, old)
                else:
                    upd = new
                if not np.array_equal(old, upd, equal_nan=True):
                    fvals[f][kidx] = upd
                    changed = True
        if not changed:
            break
    else:  # pragma: no cover - each round withholds something or stops
        raise FederationError("disclosure control did not converge")
    levels, within = _withheld_positions(rows, codes0, fvals0, keep)
    for name, view in views.items():
        names = set(view.attributes) | set(view.features)
        records[name] = replace(
            records[name],
            withheld_levels={a: v for a, v in levels.items() if a in view.attributes},
            withheld_within={a: {lv: [x for x in xs if x in names] for lv, xs in d.items()
                                 if any(x in names for x in xs)}
                             for a, d in within.items() if a in view.attributes})
    return keep, records


def _withheld_positions(rows: _Rows, codes0: Mapping[str, np.ndarray],
                        fvals0: Mapping[str, np.ndarray], keep: np.ndarray
                        ) -> tuple[dict[str, list[str]], dict[str, dict[str, list[str]]]]:
    """Where the rule withheld values (the positions of the suppressed cells, not their
    counts): per attribute, the levels some rows of which are not counted under them (value
    withheld, or cell withheld whole); per attribute and released level, the variables
    whose values were withheld in rows released under it."""
    levels: dict[str, list[str]] = {}
    lost: dict[str, np.ndarray] = {}
    for a, c0 in codes0.items():
        gone = (c0 >= 0) & ((rows.codes[a] != c0) | ~keep)
        lost[a] = gone & keep
        if gone.any():
            cats = rows.cats[a][0]
            levels[a] = [str(cats[i]) for i in np.unique(c0[gone])]
    for f, v0 in fvals0.items():
        v = rows.fvals[f]
        gone = (keep & (v0 >= 0) & (v != v0) if f in rows.fcats else
                keep & ~np.isnan(v0) & np.isnan(v))
        lost[f] = gone | lost[f] if f in lost else gone  # a feature may be an attribute
    within: dict[str, dict[str, list[str]]] = {}
    for a, c in rows.codes.items():
        cats = rows.cats[a][0]
        for x, gone in lost.items():
            if x == a or not gone.any():
                continue
            at = c[gone]
            for i in np.unique(at[at >= 0]):
                within.setdefault(a, {}).setdefault(str(cats[i]), []).append(x)
    return levels, within


def _site_summary(p, site: str, out_views: dict[str, Any], records, skipped, declared,
                  first, last, rows: int) -> tuple[SiteSummary, dict]:
    """The site summary file and its release record from the views' summaries."""
    if declared is not None:
        released_period = declared
    elif first is not None:
        released_period = [_month(first), _month(last)]
    else:
        released_period = None
    source = site if declared is None else f"{site} {declared[0]}..{declared[1]}"
    views = {}
    disclosure = {}
    for name, s in out_views.items():
        s = _site_range_extremes(s)
        rec = records[name].to_dict()
        src = {**s.sources[0], "site": site, "period": released_period, "view": name,
               "disclosure": rec}
        views[name] = replace(s, sources=(src,))
        disclosure[name] = rec
    summary = SiteSummary(site=site, protocol_sha256=p.sha256, period=released_period,
                          views=views, disclosure=disclosure, skipped=skipped,
                          protocol_name=p.name)
    release = {"site": site, "protocol_sha256": p.sha256, "source": source,
               "period": [str(first), str(last)] if first is not None else None,
               "declared_period": declared, "rows": rows, "checksum": summary.checksum}
    return summary, release


def _recode_order(protocol, views: Mapping[str, SiteView]) -> list[str]:
    """``federation.recode_order``, then the other attributes in reverse order of the
    protocol's lists, the calendar window last; the site attribute is never recoded (one site
    per file)."""
    site_col = protocol.data.columns.site
    window = views["drift"].window if "drift" in views else None
    attrs = list(dict.fromkeys(a for v in views.values() for a in v.attributes))
    given = list(protocol.federation.recode_order)
    rest = [a for a in reversed(attrs) if a not in given and a not in (site_col, window)]
    order = given + rest
    if window is not None and window not in order:
        order.append(window)
    return [a for a in order if a != site_col]


def _accumulate(a: DisclosureRecord | None, b: DisclosureRecord) -> DisclosureRecord:
    if a is None:
        return b

    def add(x, y):
        return {k: int(x.get(k, 0)) + int(y.get(k, 0)) for k in dict.fromkeys([*x, *y])}

    def rows(x, y):
        if isinstance(x, str) or isinstance(y, str):
            return x if isinstance(x, str) else y
        return x + y

    return replace(a, recoded_cells=add(a.recoded_cells, b.recoded_cells),
                   withheld_rows=rows(a.withheld_rows, b.withheld_rows),
                   withheld_values=add(a.withheld_values, b.withheld_values))


def _site_range_extremes(s):
    """Per-cell extremes of numeric features replaced by the site's range (rule 4)."""
    feats = {}
    for name, f in s.features.items():
        if f.kind == "numeric" and f.min is not None:
            lo, hi = f.pooled_range()
            has = f.n > 0
            feats[name] = replace(f, min=np.where(has, lo, np.nan), max=np.where(has, hi, np.nan))
        else:
            feats[name] = f
    return replace(s, features=feats)
