"""Reading a protocol file: YAML -> validated :class:`Protocol`, errors with line numbers.

Every problem is reported at once, one line each, as ``FILE:LINE: field.path: what is wrong``
so a reviewer can fix a protocol in one pass. Two layers of checks run:

1. the schema (pydantic, ``extra="forbid"``): unknown keys, wrong types, missing fields;
2. cross-references the schema cannot see: metric names exist in the registry, goals refer to
   metrics the protocol computes, subgroup attributes are columns the data section declares,
   versions are score columns, the reference population exists.

Checks that need the data itself (columns present, values valid) happen when the data are loaded
(:meth:`Protocol.load_data`, ``rwe validate``).

Reading is bounded in time and memory whatever the file holds: a protocol is a human-written
plan of a few hundred lines, so a file over :data:`MAX_PROTOCOL_BYTES`, a document holding more
than :data:`MAX_YAML_VALUES` values once its aliases are expanded (a "billion laughs" alias
bomb), nested deeper than :data:`MAX_YAML_DEPTH` levels, or with a recursive alias is refused
with one line before anything is built from it.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from rwe._results import canonical_sha256  # re-exported: rwe.protocol.canonical_sha256
from rwe.exceptions import InvalidParameterError, ProtocolError
from rwe.protocol._schema import Protocol

__all__ = ["canonical_sha256", "load_protocol", "protocol_from_dict", "MAX_PROTOCOL_BYTES",
           "MAX_YAML_VALUES", "MAX_YAML_DEPTH"]

Loc = tuple[Any, ...]

#: Largest protocol file read (bytes). The demo protocol is about 4 kB.
MAX_PROTOCOL_BYTES = 1_000_000
#: Most YAML values (scalars, lists, mappings, keys) a protocol may hold, counting every
#: alias (``*name``) as the values it stands for. The demo protocol holds about 300.
MAX_YAML_VALUES = 20_000
#: Deepest nesting of lists and mappings. The schema itself is five levels deep.
MAX_YAML_DEPTH = 50

MSG_TOO_LARGE = ("{where}: the file has {size} bytes; a protocol is a human-written plan and "
                 "is limited to {limit:,} bytes (1 MB)")
MSG_TOO_MANY = ("{where}:{line}: the YAML holds more than {limit:,} values{how}; a protocol is "
                "limited to {limit:,}")
MSG_TOO_DEEP = ("{where}:{line}: the YAML is nested more than {limit} levels deep; a protocol is "
                "at most a few levels deep")
MSG_RECURSIVE = ("{where}:{line}: alias *{anchor} refers to the value that contains it (a "
                 "recursive alias); a protocol cannot contain itself")
MSG_NOT_PROTOCOL = ("{where}: not an rwe protocol: none of its {n} top-level key(s) is one of "
                    "the sections {sections}")
#: Top-level keys many YAML files have: alone, they do not make a file a protocol.
_GENERIC_KEYS = ("name", "description")

# --------------------------------------------------------------------------------------------
# YAML with positions
# --------------------------------------------------------------------------------------------

class _Refused(Exception):
    """A document refused while it is composed (too big, too deep, recursive)."""

    def __init__(self, template: str, line: int, **values: Any):
        super().__init__(template)
        self.template, self.line, self.values = template, line, values


class _ProtocolLoader(yaml.SafeLoader):
    """PyYAML's safe loader, composing under bounds, with dates left as strings.

    The bounds are checked while the node graph is composed, before anything is expanded:
    every node counts once, an alias counts as the size of the node it names (so nine levels
    of nine aliases count 9**9 and are refused after a few dozen events), depth is checked
    before the composer recurses, and an alias naming a node still being composed is refused
    (PyYAML would build a cyclic graph). Dates stay strings so that pydantic parses them and
    reports an impossible one (``2024-13-45``) with its field and line.
    """

    def __init__(self, stream: str):
        super().__init__(stream)
        self.values = 0
        self.aliased = False
        self._depth = 0
        self._open: set[str] = set()
        self._sizes: dict[int, int] = {}

    def _count(self, n: int, line: int) -> None:
        self.values += n
        if self.values > MAX_YAML_VALUES:
            how = " once its aliases (*name) are expanded" if self.aliased else ""
            raise _Refused(MSG_TOO_MANY, line, limit=MAX_YAML_VALUES, how=how)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:
                raise _Refused(MSG_RECURSIVE, line, anchor=event.anchor)
            node = super().compose_node(parent, index)
            self.aliased = True
            self._count(self._sizes.get(id(node), 1), line)
            return node
        if self._depth >= MAX_YAML_DEPTH:
            raise _Refused(MSG_TOO_DEEP, line, limit=MAX_YAML_DEPTH)
        start = self.values
        self._count(1, line)
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self._open.add(anchor)
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
            self._open.discard(anchor)
        self._sizes[id(node)] = self.values - start
        return node


    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:  # e.g. ``!!int zz``: a YAML error of its line
            problem = str(exc).splitlines()[0].split("; use sys.set_int_max_str_digits")[0]
            raise yaml.constructor.ConstructorError(None, None, problem,
                                                    node.start_mark) from None


_ProtocolLoader.add_constructor("tag:yaml.org,2002:timestamp",
                                yaml.SafeLoader.construct_yaml_str)


class _Positions:
    """Line numbers (1-based) of every key and value in a composed YAML document.

    A node reached again through an alias is not walked again: its locations under the alias
    fall back to the alias's own line (see :meth:`line`), and the walk stays linear in the
    size of the file.
    """

    def __init__(self, root: yaml.Node | None):
        self.lines: dict[Loc, int] = {}
        self.duplicates: list[tuple[Loc, int]] = []
        self.source: str | None = None  # the file as the user named it, for messages
        self._seen: set[int] = set()
        if root is not None:
            self._walk(root, ())
        self._seen = set()

    def _walk(self, node: yaml.Node, loc: Loc) -> None:
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if id(node) in self._seen:
            return
        self._seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for knode, vnode in node.value:
                if not isinstance(knode, yaml.ScalarNode):
                    continue  # a list or mapping as a key: construction refuses it
                key = knode.value
                sub = (*loc, key)
                if key in seen:
                    self.duplicates.append((sub, knode.start_mark.line + 1))
                seen.add(key)
                self.lines[sub] = knode.start_mark.line + 1
                self._walk(vnode, sub)
                # keep the key's own line for the entry, not the value's
                self.lines[sub] = knode.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, (*loc, i))

    def __eq__(self, other: object) -> bool:  # two reads of one file give equal protocols
        if not isinstance(other, _Positions):
            return NotImplemented
        return (self.lines, self.duplicates, self.source) == (other.lines, other.duplicates,
                                                               other.source)

    __hash__ = None  # type: ignore[assignment]

    def line(self, loc: Loc) -> int | None:
        """Line of ``loc``, or of its nearest ancestor present in the file."""
        loc = tuple(loc)
        while True:
            if loc in self.lines:
                return self.lines[loc]
            if not loc:
                return None
            loc = loc[:-1]


def _fmt_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


# --------------------------------------------------------------------------------------------
# schema errors -> messages
# --------------------------------------------------------------------------------------------

def _unwrap(tp: Any) -> list[Any]:
    """Candidate model classes inside an annotation (Optional, list, dict values)."""
    origin = typing.get_origin(tp)
    if origin is None:
        return [tp]
    out: list[Any] = []
    args = typing.get_args(tp)
    if origin in (dict,):
        args = args[1:]
    for a in args:
        out.extend(_unwrap(a))
    return out


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The pydantic model class that validates the mapping at ``loc`` (for key suggestions)."""
    model: Any = Protocol
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = _field_by_name(model, part)
        if field is None:
            # dict key (e.g. derived.age_band): stay on the value model
            continue
        models = [m for m in _unwrap(field.annotation)
                  if isinstance(m, type) and issubclass(m, BaseModel)]
        if not models:
            return None
        model = models[0]
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _field_by_name(model: type[BaseModel], name: str):
    for fname, f in model.model_fields.items():
        if name in (fname, f.alias):
            return f
    return None


def _field_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(str(word), options, n=1, cutoff=0.55)
    if not close:  # same stem, different ending ("age_group" for "age_band")
        scored = [(len(os.path.commonprefix([str(word), o])), o) for o in options]
        best = max(scored, default=(0, ""))
        close = [best[1]] if best[0] >= 4 else []
    return f"; did you mean {close[0]!r}?" if close else ""


def _schema_messages(err: ValidationError) -> Iterator[tuple[Loc, str]]:
    for e in err.errors():
        loc = tuple(e["loc"])
        typ = e["type"]
        if typ == "extra_forbidden":
            parent = _model_at(loc[:-1])
            opts = _field_names(parent) if parent is not None else []
            msg = f"unknown key {loc[-1]!r}" + _suggest(loc[-1], opts)
            if opts:
                msg += f" (allowed: {', '.join(opts)})"
            yield loc, msg
        elif typ == "missing":
            yield loc, "required field is missing"
        else:
            msg = e["msg"]
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, "):]
            inp = e.get("input")
            if typ not in ("model_type", "dict_type", "list_type") and not isinstance(
                    inp, (dict, list)):
                msg += f" (got {inp!r})"
            yield loc, msg


# --------------------------------------------------------------------------------------------
# cross-reference checks
# --------------------------------------------------------------------------------------------

def _semantic_messages(p: Protocol) -> Iterator[tuple[Loc, str]]:
    from rwe.metrics import get_metric, metric_names

    known = list(metric_names())
    cols = p.data.columns
    versions = list(cols.scores)
    grouping = list(cols.attributes) + list(p.data.derived)
    grouping += [c for c in (cols.site, cols.equipment) if c is not None]

    def metric_ok(loc: Loc, name: str) -> Iterator[tuple[Loc, str]]:
        if name not in known:
            yield loc, (f"unknown metric {name!r}" + _suggest(name, known)
                        + f" (known: {', '.join(known)})")

    def version_ok(loc: Loc, v: str | None) -> Iterator[tuple[Loc, str]]:
        if v is not None and v not in versions:
            yield loc, (f"version {v!r} is not a key of data.columns.scores"
                        + _suggest(v, versions) + f" (versions: {', '.join(versions)})")

    def attr_ok(loc: Loc, a: str) -> Iterator[tuple[Loc, str]]:
        if a not in grouping:
            yield loc, (f"attribute {a!r} is not declared in data.columns (attributes, site, "
                        f"equipment) or data.derived" + _suggest(a, grouping)
                        + f" (declared: {', '.join(grouping) or 'none'})")

    # data
    for name, spec in p.data.derived.items():
        if name in cols.attributes:
            yield ("data", "derived", name), (
                f"derived attribute {name!r} would replace the data column of the same name "
                "listed in data.columns.attributes; choose another name")
        if spec.from_ == name:
            yield ("data", "derived", name, "from"), "a derived band needs a different source column"
    # performance
    perf = p.performance
    for i, m in enumerate(perf.metrics):
        yield from metric_ok(("performance", "metrics", i), m)
    yield from version_ok(("performance", "version"), perf.version)
    for i, g in enumerate(perf.goals):
        if g.metric not in perf.metrics:
            if g.metric in known:
                yield ("performance", "goals", i, "metric"), (
                    f"goal metric {g.metric!r} is not in performance.metrics "
                    f"({', '.join(perf.metrics)}); add it there so it is computed")
            else:
                yield from metric_ok(("performance", "goals", i, "metric"), g.metric)
        yield from version_ok(("performance", "goals", i, "version"), g.version)
        if g.metric in known and g.description:
            hib = get_metric(g.metric).higher_is_better
            weak, strict = (">=", ">") if hib is not False else ("<=", "<")
            if weak in g.description or {">=": "≥", "<=": "≤"}[weak] in g.description:
                yield ("performance", "goals", i, "description"), (
                    f"the description says '{weak}' but a goal is met only when the "
                    f"{'lower' if hib is not False else 'upper'} confidence bound is strictly "
                    f"'{strict}' the goal (the one-sided test of H0: {g.metric} "
                    f"{'<=' if hib is not False else '>='} goal); write '{strict}' so the "
                    "rule shown is the rule applied")
        rng = get_metric(g.metric).valid_range if g.metric in known else None
        if rng is not None and not rng[0] <= g.goal <= rng[1]:
            yield ("performance", "goals", i, "goal"), (
                f"a goal for {g.metric} must lie in [{rng[0]:g}, {rng[1]:g}], got {g.goal}")

    for i, m in enumerate(perf.metrics):
        if m not in known:
            continue
        spec = get_metric(m)
        if spec.kind == "survival":
            if cols.time is None or cols.event is None:
                yield ("performance", "metrics", i), (
                    f"{m!r} is a survival metric and needs data.columns.time and "
                    "data.columns.event")
            elif "horizon" in spec.needs and perf.horizon is None:
                yield ("performance", "metrics", i), (
                    f"{m!r} needs a time horizon: set performance.horizon")
        elif cols.label is None:
            yield ("performance", "metrics", i), (
                f"{m!r} needs a binary outcome, but data.columns.label is not set")
    # subgroups / population
    for i, a in enumerate(p.subgroups.attributes):
        yield from attr_ok(("subgroups", "attributes", i), a)
    for i, inter in enumerate(p.subgroups.intersections):
        for j, a in enumerate(inter):
            yield from attr_ok(("subgroups", "intersections", i, j), a)
    for i, a in enumerate(p.population.attributes):
        yield from attr_ok(("population", "attributes", i), a)
    loaded = set(cols.features) | set(cols.attributes)
    for i, c in enumerate(p.population.covariates):
        if c not in loaded:
            yield ("population", "covariates", i), (
                f"covariate {c!r} is not a column the data section loads; list it in "
                "data.columns.features")
    if p.population.reference is not None and p.reference_path() is None:
        from rwe._paths import available_references

        ref = p.population.reference
        avail = available_references()
        yield ("population", "reference"), (
            f"reference population {ref!r} is neither a file (relative to the protocol) "
            f"nor a bundled reference" + _suggest(ref, avail)
            + f" (bundled: {', '.join(avail) or 'none'})")
    # drift
    if p.drift is not None:
        for i, a in enumerate(p.drift.by):
            yield from attr_ok(("drift", "by", i), a)
        for i, rule in enumerate(p.drift.alerts):
            for j, a in enumerate(rule.by):
                yield from attr_ok(("drift", "alerts", i, "by", j), a)
            if rule.metric is not None:
                yield from metric_ok(("drift", "alerts", i, "metric"), rule.metric)
        yield from _drift_messages(p, known, metric_ok)
    # federation
    if p.federation is not None:
        summary_attrs = list(p.summary_spec().attributes or ())
        if p.drift is not None:
            summary_attrs.append(p.drift.window)
        for i, a in enumerate(p.federation.recode_order):
            if a not in summary_attrs:
                yield ("federation", "recode_order", i), (
                    f"attribute {a!r} is not an attribute of the site summaries"
                    + _suggest(a, summary_attrs)
                    + f" (attributes: {', '.join(summary_attrs) or 'none'})")
        fed_seen: set[str] = set()
        for i, a in enumerate(p.federation.recode_order):
            if a in fed_seen:
                yield ("federation", "recode_order", i), f"attribute {a!r} is listed twice"
            fed_seen.add(a)
        if cols.label is None:
            yield ("federation",), ("site summaries need a binary outcome "
                                    "(data.columns.label)")
    # change control
    if p.change_control is not None:
        yield from _change_control_messages(p, known, versions, grouping, metric_ok, attr_ok)
    # report
    seen: set[str] = set()
    for i, s in enumerate(p.report.sections):
        if s in seen:
            yield ("report", "sections", i), f"section {s!r} is listed twice"
        seen.add(s)


def _change_control_messages(p: Protocol, known: list[str], versions: list[str],
                             grouping: list[str], metric_ok, attr_ok) -> Iterator[tuple[Loc, str]]:
    """Cross-references of ``change_control``: versions have scores, criteria name metrics
    change control can compare, names are unique, the order lists every criterion once,
    subgroups are declared attributes, score files and the test set exist."""
    from rwe.metrics import get_metric
    from rwe.protocol._schema import CHANGE_CONTROL_METRICS

    cc = p.change_control
    files = [v for v, m in cc.models.items() if m.scores is not None]
    scored = versions + [v for v in files if v not in versions]

    def version_ok(loc: Loc, v: str) -> Iterator[tuple[Loc, str]]:
        if v not in scored:
            yield loc, (f"version {v!r} is not a key of data.columns.scores"
                        + _suggest(v, scored) + f" (versions: {', '.join(versions)}"
                        + (f"; score files in change_control.models: {', '.join(files)}"
                           if files else "") + ")")

    for key in ("original_version", "reference_version", "candidate_version"):
        yield from version_ok(("change_control", key), getattr(cc, key))
    if cc.reference_version == cc.candidate_version:
        yield ("change_control", "candidate_version"), (
            "candidate_version must differ from reference_version")

    def comparable(loc: Loc, m: str) -> Iterator[tuple[Loc, str]]:
        if m not in known:
            yield from metric_ok(loc, m)
        elif m not in CHANGE_CONTROL_METRICS:
            yield loc, (f"change control compares {', '.join(CHANGE_CONTROL_METRICS)} on the "
                        f"same cases; {m!r} is not one of them")

    names: dict[str, Loc] = {}
    for m, margin in cc.margins.items():
        loc = ("change_control", "margins", m)
        yield from comparable(loc, m)
        if margin < 0:
            yield loc, f"a non-inferiority margin is a non-negative amount, got {margin}"
        names[m] = loc
    for i, c in enumerate(cc.criteria):
        loc = ("change_control", "criteria", i)
        yield from comparable((*loc, "metric"), c.metric)
        if c.test == "goal" and c.metric in CHANGE_CONTROL_METRICS:
            spec = get_metric(c.metric)
            if spec.higher_is_better is None:
                yield (*loc, "test"), (
                    f"{c.metric} has a target value ({spec.target:g}), not a direction: judge "
                    "it by noninferiority or superiority against the comparators")
            elif spec.valid_range is not None and not (
                    spec.valid_range[0] <= c.goal <= spec.valid_range[1]):
                yield (*loc, "goal"), (f"a goal for {c.metric} must lie in "
                                       f"[{spec.valid_range[0]:g}, {spec.valid_range[1]:g}], "
                                       f"got {c.goal}")
        if c.key in names:
            first = names[c.key]
            yield (*loc, "name" if c.name else "metric"), (
                f"criterion name {c.key!r} is used twice (first at change_control."
                f"{'.'.join(str(x) for x in first[1:])}); give each criterion a distinct name")
        else:
            names[c.key] = loc
    if cc.order:
        seen: set[str] = set()
        for i, step in enumerate(cc.order):
            members = [step] if isinstance(step, str) else step
            for j, name in enumerate(members):
                loc = ("change_control", "order", i) + (() if isinstance(step, str) else (j,))
                if name not in names:
                    yield loc, (f"{name!r} in the testing order is not a criterion (margins or "
                                f"criteria)" + _suggest(name, list(names))
                                + f" (criteria: {', '.join(names)})")
                elif name in seen:
                    yield loc, f"criterion {name!r} appears twice in the testing order"
                seen.add(name)
    steps = cc.steps()
    req = [i for i, s in enumerate(steps) for n in s if n in names and _required(cc, n)]
    for i, s in enumerate(steps):
        for n in s:
            if n in names and not _required(cc, n) and req and i < max(req):
                loc = names[n]
                yield (*loc, "required") if loc[1] == "criteria" else loc, (
                    f"secondary criterion {n!r} (required: false) is tested before a required "
                    "one; place secondary criteria after every required one in "
                    "change_control.order, so that a secondary claim cannot close the gate on "
                    "the approval")
    if isinstance(cc.subgroups, list):
        for i, g in enumerate(cc.subgroups):
            if isinstance(g, str):
                yield from attr_ok(("change_control", "subgroups", i), g)
            else:
                if len(g) < 2 or len(set(g)) != len(g):
                    yield ("change_control", "subgroups", i), (
                        f"an intersection needs two or more distinct attributes, got {g}")
                for j, a in enumerate(g):
                    yield from attr_ok(("change_control", "subgroups", i, j), a)
    for v, m in cc.models.items():
        if m.scores is not None:
            if p.data.columns.id is None:
                yield ("change_control", "models", v, "scores"), (
                    "a score file is joined on the case id: set data.columns.id")
            if not p.resolve(m.scores.path).exists():
                yield ("change_control", "models", v, "scores", "path"), (
                    f"score file {m.scores.path!r} not found (relative to the protocol)")
    if cc.test_set.path is not None and not p.resolve(cc.test_set.path).exists():
        yield ("change_control", "test_set", "path"), (
            f"test set file {cc.test_set.path!r} not found (relative to the protocol)")
    if cc.online.procedure == "saffron" and cc.online.w0 is not None:
        target = cc.online.alpha or cc.alpha
        if cc.online.w0 > (1 - cc.online.lambda_) * target:
            yield ("change_control", "online", "w0"), (
                f"SAFFRON's initial wealth must be at most (1 - lambda) alpha = "
                f"{(1 - cc.online.lambda_) * target:g}, got {cc.online.w0}")
    elif cc.online.w0 is not None and cc.online.w0 > (cc.online.alpha or cc.alpha):
        yield ("change_control", "online", "w0"), (
            f"the initial wealth must be at most alpha = {cc.online.alpha or cc.alpha:g}, got "
            f"{cc.online.w0}")


def _required(cc, name: str) -> bool:
    return next((c.required for c in cc.all_criteria() if c.key == name), True)


def _drift_messages(p: Protocol, known: list[str], metric_ok) -> Iterator[tuple[Loc, str]]:
    """Drift tests exist in the drift-test registry, thresholds name a listed test, features
    are loaded columns, the chosen reference exists."""
    from rwe.drift._registry import drift_test_names

    d = p.drift
    tests = [*drift_test_names(), "classifier"]
    for i, t in enumerate(d.tests):
        if t not in tests:
            yield ("drift", "tests", i), (f"unknown drift test {t!r}" + _suggest(t, tests)
                                          + f" (known: {', '.join(tests)})")
    for k in d.thresholds:
        if k not in d.tests:
            yield ("drift", "thresholds", k), (
                f"a threshold for {k!r}, which is not in drift.tests ({', '.join(d.tests)})")
    for i, m in enumerate(d.metrics):
        yield from metric_ok(("drift", "metrics", i), m)
    cols = p.data.columns
    loaded = set(cols.features) | set(cols.attributes) | set(p.data.derived)
    loaded |= {c for c in (cols.site, cols.equipment) if c is not None}
    for i, f in enumerate(d.features):
        if f not in loaded:
            yield ("drift", "features", i), (
                f"drift feature {f!r} is not a column the data section loads; list it in "
                "data.columns.features")
    if d.reference == "reference_rows" and p.data.reference_rows is None:
        yield ("drift", "reference"), ("reference_rows is chosen but data.reference_rows is "
                                       "not set")
    if (d.reference == "reference_period" or (d.reference is None
                                              and p.data.reference_rows is None)) \
            and d.reference_period is None:
        yield ("drift", "reference_period"), (
            "the drift baseline is the reference period (no data.reference_rows), but "
            "drift.reference_period is not set")


# --------------------------------------------------------------------------------------------
# entry points
# --------------------------------------------------------------------------------------------

def _raise(found: list[tuple[Loc, str]], where: str, pos: _Positions | None, path: str | None):
    lines = []
    for loc, msg in found:
        line = pos.line(loc) if pos is not None else None
        prefix = f"{where}:{line}" if line is not None else where
        lines.append(f"{prefix}: {_fmt_loc(loc)}: {msg}")
    raise ProtocolError(lines, path=path)


def protocol_from_dict(data: dict[str, Any], *, source: str = "<protocol>",
                       base_dir: str | Path | None = None,
                       _positions: _Positions | None = None,
                       _file: Path | None = None) -> Protocol:
    """Validate a protocol given as a mapping (e.g. papermill parameters).

    ``base_dir`` anchors relative paths (defaults to the current directory).
    """
    if not isinstance(data, dict):
        raise ProtocolError(f"{source}: a protocol is a mapping of sections "
                            f"(name, device, data, ...), got {type(data).__name__}")
    sections = [f for f in _field_names(Protocol) if f not in _GENERIC_KEYS]
    if data and not any(isinstance(k, str) and k in sections for k in data):
        # a file that is not a protocol at all (a compose file, a config): its keys and values
        # are not echoed
        raise ProtocolError(MSG_NOT_PROTOCOL.format(where=source, n=len(data),
                                                    sections=", ".join(sections)), path=source)
    try:
        proto = Protocol.model_validate(data)
    except ValidationError as err:
        _raise(list(_schema_messages(err)), source, _positions, source)
    # anchor relative paths before the cross-reference checks, which resolve them
    if _file is not None:
        proto._path = _file
    elif base_dir is not None:
        proto._path = Path(base_dir).resolve() / "<protocol>"
    problems = list(_semantic_messages(proto))
    if problems:
        _raise(problems, source, _positions, source)
    return proto


def load_protocol(path: str | Path) -> Protocol:
    """Read, validate and return the protocol at ``path``.

    Parameters
    ----------
    path : str or Path
        A YAML protocol (see ``protocols/demo.yaml``). Relative paths inside it are resolved
        against its directory.

    Returns
    -------
    Protocol
        Frozen; ``.sha256`` is the hash of its canonical form, ``.file_sha256`` of the bytes.

    Raises
    ------
    ProtocolError
        With one message per problem, each ``FILE:LINE: field.path: problem``; also for a file
        over :data:`MAX_PROTOCOL_BYTES`, with more than :data:`MAX_YAML_VALUES` values once
        its aliases are expanded, nested deeper than :data:`MAX_YAML_DEPTH` or with a
        recursive alias (refused before anything is expanded).
    InvalidParameterError
        ``path`` is not a path.

    Examples
    --------
    >>> from rwe.protocol import load_protocol
    >>> p = load_protocol("protocols/demo.yaml")      # doctest: +SKIP
    >>> p.performance.threshold                        # doctest: +SKIP
    0.15
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidParameterError(
            f"path must be a file path (str or os.PathLike), got {type(path).__name__}")
    p = Path(path)
    where = str(path)
    if not p.exists():
        raise ProtocolError(f"{where}: protocol file not found", path=where)
    if p.is_dir():
        raise ProtocolError(f"{where}: is a directory, expected a YAML protocol file", path=where)
    with p.open("rb") as fh:  # bounded read: also safe on /dev/zero or a huge file
        raw = fh.read(MAX_PROTOCOL_BYTES + 1)
    if len(raw) > MAX_PROTOCOL_BYTES:
        size = f"{p.stat().st_size:,}" if p.is_file() else f"more than {MAX_PROTOCOL_BYTES:,}"
        raise ProtocolError(MSG_TOO_LARGE.format(where=where, size=size,
                                                 limit=MAX_PROTOCOL_BYTES), path=where)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                            path=where) from None
    node, loader = _parse_yaml(text, where)
    pos = _Positions(node)  # before construction, which rewrites merge keys (<<) in place
    if pos.duplicates:
        loader.dispose()
        _raise([(loc, f"key {loc[-1]!r} appears more than once") for loc, _ in pos.duplicates],
               where, pos, where)
    data = _construct(loader, node, where)
    if data is None:
        raise ProtocolError(f"{where}: the protocol file is empty", path=where)
    proto = protocol_from_dict(data, source=where, _positions=pos, _file=p.resolve())
    proto._file_sha256 = hashlib.sha256(raw).hexdigest()
    pos.source = where
    proto._positions = pos
    return proto


def _yaml_error(exc: yaml.YAMLError, where: str) -> ProtocolError:
    mark = getattr(exc, "problem_mark", None)
    line = f":{mark.line + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    if context and problem.startswith("but "):  # "expected a single document ..., but found"
        problem = f"{context}, {problem}"
    return ProtocolError(f"{where}{line}: not valid YAML: {problem}", path=where)


def _parse_yaml(text: str, where: str) -> tuple[yaml.Node | None, _ProtocolLoader]:
    """Compose ``text`` under the bounds; returns the node graph and the loader that built it
    (construction, after the positions are read, reuses it)."""
    loader = None
    try:
        loader = _ProtocolLoader(text)  # the reader refuses control characters here
        return loader.get_single_node(), loader
    except _Refused as exc:
        loader.dispose()
        raise ProtocolError(exc.template.format(where=where, line=exc.line, **exc.values),
                            path=where) from None
    except yaml.YAMLError as exc:
        if loader is not None:
            loader.dispose()
        raise _yaml_error(exc, where) from None


def _construct(loader: _ProtocolLoader, node: yaml.Node | None, where: str) -> Any:
    """Python values of a composed document (a bad ``!!int`` or an unhashable key is a YAML
    error of its line, not a traceback); disposes of the loader."""
    try:
        return None if node is None else loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, where) from None
    finally:
        loader.dispose()
