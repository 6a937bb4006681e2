"""A site's summary: its rows validated, protected and summarized at the declared resolution.

A site summary file (``"schema": "rwe.site-summary/1"``, JSON) holds one
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
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rwe._results import canonical_json
from rwe.exceptions import InvalidParameterError, RWEError
from rwe.federation._disclosure import DisclosureRecord, protect_arrays

__all__ = ["SITE_SCHEMA", "VIEWS", "SiteView", "SiteSummary", "FederationError", "site_views",
           "summarize_site", "load_site_summary"]

SITE_SCHEMA = "rwe.site-summary/1"
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

    def _meta(self) -> dict[str, Any]:
        return {"schema": SITE_SCHEMA, "site": self.site, "protocol_sha256": self.protocol_sha256,
                "protocol_name": self.protocol_name, "period": self.period,
                "disclosure": self.disclosure, "skipped": dict(self.skipped)}

    @cached_property
    def checksum(self) -> str:
        return self.to_dict()["checksum"]

    def save(self, path: str | Path) -> Path:
        """Write the file atomically (a temporary file renamed into place)."""
        p = Path(path)
        tmp = p.with_name(f".{p.name}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False),
                       encoding="utf-8")
        tmp.replace(p)
        return p


def _site_checksum(d: Mapping[str, Any]) -> str:
    """sha256 of the file's fields with each view replaced by its own checksum."""
    body = {k: v for k, v in d.items() if k not in ("checksum", "views")}
    body["views"] = {k: (v.get("checksum") if isinstance(v, Mapping) else None)
                     for k, v in (d.get("views") or {}).items()}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def load_site_summary(path: str | Path) -> SiteSummary:
    """Read and check a site summary file: readable JSON, its schema, its checksum and every
    view's own schema and checksum (one line naming the file otherwise)."""
    from rwe.stats.summaries import Summary, SummaryError

    p = Path(path)
    where = str(p)
    if not p.is_file():
        raise FederationError(f"{where}: site summary file not found")
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FederationError(f"{where}: not a readable site summary ({type(exc).__name__}: "
                              "the file is truncated or is not JSON)") from None
    if not isinstance(d, dict) or d.get("schema") != SITE_SCHEMA:
        found = d.get("schema") if isinstance(d, dict) else type(d).__name__
        raise FederationError(MSG_SITE_SCHEMA.format(where=where, found=found,
                                                     expected=SITE_SCHEMA))
    if not isinstance(d.get("views"), Mapping) or d.get("checksum") != _site_checksum(d):
        raise FederationError(MSG_SITE_CHECKSUM.format(where=where))
    try:
        views = {k: Summary.from_dict(v, where=f"{where}: view {k!r}")
                 for k, v in d["views"].items()}
        if "cohort" not in views:
            raise KeyError("views.cohort")
        return SiteSummary(str(d["site"]), str(d["protocol_sha256"]), d.get("period"), views,
                           dict(d["disclosure"]), dict(d.get("skipped") or {}),
                           d.get("protocol_name"))
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
    data : EvaluationSet, path or None
        The site's rows (default: the protocol's data).
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
    from rwe.data import EvaluationSet, load_evaluation_set
    from rwe.stats.summaries import summarize_arrays

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
    if data is None:
        ev = p.load_data()
    elif isinstance(data, EvaluationSet):
        ev = data
    else:
        ev = load_evaluation_set(p.resolve(data), p.roles(), derived=p.derived_spec())
    roles = ev.roles
    if roles.label is None:
        raise FederationError(f"{ev.source}: a site summary needs the binary label role")
    mask = np.ones(len(ev), dtype=bool)
    if roles.site is not None:
        values = ev.frame[roles.site].astype("string")
        mask &= (values == site).fillna(False).to_numpy(dtype=bool)
        if not mask.any():
            found = sorted(map(str, values.dropna().unique()))[:8]
            raise FederationError(f"{ev.source}: no row has {roles.site} = {site!r} (values "
                                  f"found: {', '.join(found) or 'none'})")
    declared = None
    if period is not None:
        if roles.timestamp is None:
            raise FederationError(f"{ev.source}: --period needs the timestamp column role")
        if len(period) != 2:
            raise InvalidParameterError(f"period must be (start, end), got {period!r}")
        lo, hi = _parse_date(period[0], "period start"), _parse_date(period[1], "period end")
        if hi < lo:
            raise InvalidParameterError(f"period end {period[1]} is before its start "
                                        f"{period[0]}")
        ts = ev.timestamps
        if isinstance(ts.dtype, pd.DatetimeTZDtype):
            ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
        mask &= ((ts >= lo) & (ts < hi + pd.Timedelta(days=1))).to_numpy(dtype=bool)
        if not mask.any():
            raise FederationError(f"{ev.source}: no row of site {site!r} in the period "
                                  f"{period[0]} to {period[1]}")
        declared = [str(lo.date()), str(hi.date())]
    if not mask.all():
        ev = ev.subset(mask)
    views, skipped = site_views(p, reference_rows)
    k = p.min_count
    attrs_all = list(dict.fromkeys(a for v in views.values() for a in v.attributes))
    for a in attrs_all:
        if a != (views.get("drift").window if "drift" in views else None):
            ev.attribute(a)  # raises naming the grouping columns
    # ---------------------------------------------------------------- arrays to protect
    cats: dict[str, tuple[Any, bool]] = {}
    codes: dict[str, np.ndarray] = {}
    for a in attrs_all:
        col = (ev.window(views["drift"].window) if "drift" in views and
               a == views["drift"].window else ev.attribute(a))
        cats[a] = (col.cat.categories, bool(col.cat.ordered))
        codes[a] = col.cat.codes.to_numpy().astype(np.int32)
    y = ev.y_true
    feats_all = list(dict.fromkeys(f for v in views.values() for f in v.features))
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
    order = _recode_order(p, views)
    keep = np.ones(len(ev), dtype=bool)
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
                recode_order=[a for a in order if a in view.attributes])
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
    # ---------------------------------------------------------------- summaries
    idx = np.flatnonzero(keep)
    if idx.size == 0:
        raise FederationError(f"{ev.source}: every row of site {site!r} is withheld by the "
                              f"disclosure rule (fewer than {k} rows per outcome)")
    ts_all = ev.timestamps.iloc[idx] if roles.timestamp is not None else None
    if declared is not None:
        released_period = declared
    elif ts_all is not None and ts_all.notna().any():
        released_period = [_month(pd.Timestamp(ts_all.min())), _month(pd.Timestamp(ts_all.max()))]
    else:
        released_period = None
    source = site if declared is None else f"{site} {declared[0]}..{declared[1]}"
    patients = None
    if roles.patient_id is not None:
        patients = int(pd.unique(ev.frame[roles.patient_id].to_numpy()[idx]).size)
    edges_resolution = p.declared_resolution()
    thr = (p.performance.threshold,)
    out_views = {}
    disclosure = {}
    for name, view in views.items():
        attributes = {}
        for a in view.attributes:
            categories, ordered = cats[a]
            attributes[a] = pd.Categorical.from_codes(
                codes[a][idx], categories=categories, ordered=ordered
            ).remove_unused_categories()
        features = {}
        for f in view.features:
            if f in fcats:
                features[f] = pd.Categorical.from_codes(
                    fvals[f][idx], categories=fcats[f]).remove_unused_categories()
            else:
                features[f] = fvals[f][idx]
        s = summarize_arrays(
            y_true=y[idx], scores={v: ev.score(v)[idx] for v in view.versions},
            attributes=attributes, features=features, resolution=edges_resolution,
            thresholds=thr, protocol_sha256=p.sha256, source=source, patients=patients,
            feature_edges={f: e for f, e in view.feature_edges.items()})
        s = _site_range_extremes(s)
        rec = records[name].to_dict()
        src = {**s.sources[0], "site": site, "period": released_period, "view": name,
               "disclosure": rec}
        out_views[name] = replace(s, sources=(src,))
        disclosure[name] = rec
    summary = SiteSummary(site=site, protocol_sha256=p.sha256, period=released_period,
                          views=out_views, disclosure=disclosure, skipped=skipped,
                          protocol_name=p.name)
    first = last = None
    if ts_all is not None and ts_all.notna().any():
        first, last = str(pd.Timestamp(ts_all.min())), str(pd.Timestamp(ts_all.max()))
    release = {"site": site, "protocol_sha256": p.sha256, "source": source,
               "period": [first, last] if first is not None else None,
               "declared_period": declared, "rows": int(idx.size),
               "checksum": summary.checksum}
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
