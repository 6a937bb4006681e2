"""Shared result types: the confidence interval and the behaviour every result has.

Results are frozen dataclasses (scipy ``RelativeRiskResult`` / statsmodels style) that echo
their inputs and export ``to_frame()`` (tidy, stable columns), ``to_dict()`` (JSON-safe, for
results.json), ``summary()`` (text) and ``_repr_html_()`` (JupyterLab, delegating to
``to_frame``). Numbers stay numeric; formatting happens only when rendering.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import math
import re
import sys
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy and pandas are imported where a result needs them: the dossier's
    import pandas as pd  # plan-only sections (drift, change control, model card) load neither

__all__ = ["Interval", "ResultMixin", "json_safe", "canonical_json", "canonical_sha256",
           "GROUP_SEP", "LEVEL_SEP"]

#: Joins the attributes of an intersectional grouping's name: ``"sex x race"``.
GROUP_SEP = " x "
#: Joins the categories of an intersectional level's label: ``"F & Black"``.
LEVEL_SEP = " & "


@dataclass(frozen=True, slots=True)
class Interval:
    """A confidence interval: bounds, two-sided level and the method that produced it."""

    low: float
    high: float
    level: float
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {"low": json_safe(self.low), "high": json_safe(self.high),
                "level": self.level, "method": self.method}

    def contains(self, value: float) -> bool:
        return bool(self.low <= value <= self.high)

    def __iter__(self):  # allows ``low, high = ci``
        yield self.low
        yield self.high


class ResultMixin:
    """Behaviour shared by every rwe result (a frozen dataclass with ``to_frame``)."""

    def to_frame(self) -> pd.DataFrame:  # pragma: no cover - each result overrides
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if f.name.startswith("_"):
                continue
            out[f.name] = json_safe(getattr(self, f.name))
        return out

    def summary(self) -> str:
        import pandas as pd

        with pd.option_context("display.width", 120, "display.max_columns", 30):
            return self.to_frame().to_string(index=False)

    def _repr_html_(self) -> str:
        return self.to_frame().to_html(index=False, na_rep="—", float_format=lambda v: f"{v:.4g}")


def json_safe(obj: Any) -> Any:
    """Convert numpy / pandas / dataclass objects to plain JSON types; NaN and inf become None."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    np = sys.modules.get("numpy")  # no numpy loaded: obj cannot be a numpy object
    if np is not None and isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, int) or (np is not None and isinstance(obj, np.integer)):
        return int(obj)
    if isinstance(obj, float) or (np is not None and isinstance(obj, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, Interval):
        return obj.to_dict()
    if hasattr(obj, "to_dict") and dataclasses.is_dataclass(obj):
        return obj.to_dict()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: json_safe(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    pd = sys.modules.get("pandas")  # no pandas loaded: obj cannot be a pandas object
    if pd is not None and isinstance(obj, pd.DataFrame):
        return _frame_records(obj, np)
    if pd is not None and isinstance(obj, pd.Series):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if np is not None and isinstance(obj, np.ndarray):
        return [json_safe(v) for v in obj.tolist()]
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (_dt.datetime, _dt.date)) or (pd is not None
                                                       and isinstance(obj, pd.Timestamp)):
        return obj.isoformat()
    if pd is not None and (obj is pd.NA or obj is pd.NaT):
        return None
    return str(obj)


def _frame_records(frame: Any, np: Any) -> list[dict[str, Any]]:
    """``json_safe`` of each row of a DataFrame as a dict (column label as text): the same
    values as converting row by row, with numpy float, integer and boolean columns converted
    a column at a time (NaN and inf as None)."""
    if not frame.columns.is_unique:  # as pandas gives such rows: the last column wins
        return [json_safe(r) for r in frame.to_dict(orient="records")]
    columns = []
    for _, col in frame.items():
        kind = col.dtype.kind if isinstance(col.dtype, np.dtype) else "O"
        if kind == "f":
            values = col.to_numpy()
            out = values.tolist()
            for i in np.flatnonzero(~np.isfinite(values)).tolist():
                out[i] = None
        elif kind in "iub":
            out = col.to_numpy().tolist()
        else:
            out = [json_safe(v) for v in col.tolist()]
        columns.append(out)
    keys = [str(c) for c in frame.columns]
    return [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]


def dumps_json_safe(obj: Any, **kwargs: Any) -> str:
    """``json.dumps(json_safe(obj), allow_nan=False, **kwargs)``, without walking ``obj`` in
    Python when it already holds only JSON types (records made by ``to_dict``).

    json's C encoder is tried first. It refuses what :func:`json_safe` would convert (a numpy
    integer or boolean, NaN or inf, a tuple key, any other object); floats, numpy's included,
    are written by ``float.__repr__`` either way. Its one other difference is a True, False or
    None dict key, which it writes as "true", "false" or "null" where ``json_safe`` makes
    "True", "False" or "None": a text with such a key is made again from ``json_safe(obj)``.
    """
    try:
        text = json.dumps(obj, allow_nan=False, **kwargs)
    except (TypeError, ValueError):
        return json.dumps(json_safe(obj), allow_nan=False, **kwargs)
    if _LITERAL_KEY.search(text) is None:
        return text
    return json.dumps(json_safe(obj), allow_nan=False, **kwargs)


#: A JSON object key written from True, False or None (or from such a string).
_LITERAL_KEY = re.compile(r'"(?:true|false|null)"\s*:')

def _no_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)


#: json's C scanner, refusing NaN and Infinity (which json.loads accepts): a text holding
#: them is not one rwe's writers made, and is checked the slow way.
_DECODER = json.JSONDecoder(parse_constant=_no_constant)


#: What :func:`compact_members` gives per member: the span of the member (from its key's
#: opening quote to its value's end), where its value starts, and the members of the value
#: when it is an object walked too (else None).
Span = tuple[int, int, int, "dict[str, Span] | None"]


def compact_members(text: str, start: int = 0, depth: int = 0
                    ) -> tuple[dict[str, Any], dict[str, Span], int] | None:
    """Parse the JSON object at ``text[start]`` as ``json.dumps(separators=(",", ":"))``
    writes it (no whitespace): the object, each member's :data:`Span` and where the object
    ends. Object values are walked the same way ``depth`` levels down, the others parsed by
    json's C scanner. None when the text there is not such an object (the caller then parses
    it as any JSON).

    Lets a reader check a checksum stated in a file against the file's own text: the text of
    the object without its checksum member is what the writer hashed, a slice of the file
    (:func:`compact_text_without`); hashing it costs nothing next to writing every number of
    the object again. What that verifies is the bytes: a writer that hashed text of its own
    layout (a duplicate key below the walked levels, a key written with escapes, ``1e0`` for
    1) has it accepted here where re-encoding the parsed content would not match. Such text
    needs a deliberate writer; the checksums guard against truncation and edits, and carry
    no key against forgery either way."""
    if not text.startswith("{", start):
        return None
    obj: dict[str, Any] = {}
    spans: dict[str, Span] = {}
    i = start + 1
    if text.startswith("}", i):
        return obj, spans, i + 1
    decode = _DECODER.raw_decode
    try:
        while True:
            if not text.startswith('"', i):
                return None
            key, j = decode(text, i)
            if not text.startswith(":", j) or key in obj:
                return None
            sub = None
            if depth > 0 and text.startswith("{", j + 1):
                walked = compact_members(text, j + 1, depth - 1)
                if walked is None:
                    return None
                value, sub, end = walked
            else:
                value, end = decode(text, j + 1)
            obj[key], spans[key] = value, (i, end, j + 1, sub)
            if text.startswith(",", end):
                i = end + 1
            elif text.startswith("}", end):
                return obj, spans, end + 1
            else:
                return None
    except json.JSONDecodeError:
        return None


def compact_text_without(text: str, start: int, end: int, spans: dict[str, Span],
                           key: str) -> str:
    """The text of the object ``text[start:end]`` (walked by :func:`compact_members`)
    without its member ``key``."""
    first, last = spans[key][:2]
    if text.startswith(",", last):  # not the last member: drop it and the comma after it
        return text[start:first] + text[last + 1:end]
    if text.startswith(",", first - 1):  # the last of several: and the comma before it
        return text[start:first - 1] + text[last:end]
    return text[start:first] + text[last:end]


def checksum_matches_text(text: str, start: int, end: int, obj: dict[str, Any],
                          spans: dict[str, Span], key: str = "checksum") -> bool:
    """True when the object ``text[start:end]`` states as ``key`` the sha256 of its own text
    without that member (what :meth:`rwe.stats.summaries.Summary.to_json` hashes)."""
    stated = obj.get(key)
    if not isinstance(stated, str) or key not in spans:
        return False
    return text_sha256(compact_text_without(text, start, end, spans, key)) == stated


_CONTAINERS = (list, tuple, dict)
#: The item separator of the one C-encoder pass of :func:`dumps_indented`: a character json
#: never writes raw (it escapes control characters in strings), replaced by ",\n" + pad after.
_SEP = "\x00"


def _holds_container(values: Any) -> bool:
    return any(issubclass(t, _CONTAINERS) for t in set(map(type, values)))


def dumps_indented(obj: Any, indent: int = 2) -> str:
    """``json.dumps(obj, sort_keys=True, indent=indent, ensure_ascii=False, allow_nan=False)``,
    byte for byte, at C-encoder speed.

    With ``indent`` set, :func:`json.dumps` uses json's pure-Python encoder, about a microsecond
    per value. Here json's C encoder writes every container that holds no container (a record,
    a list of numbers), and every list of such records, in one call, with a character json
    never writes raw as its item separator; the separators are then replaced by "," and the
    newline and indent of their depth (a separator between two records is the one preceded by
    the record's closing bracket and followed by the next one's opening bracket: no value in
    a record ends or starts so). Only the containers above those are walked in Python.
    Raises as :func:`json.dumps` does, ValueError for NaN or inf and TypeError for a value or
    key that is not JSON, though not always with its message (json's C encoder does not name
    the value); a structure that contains itself raises RecursionError, not ValueError.
    """
    c_encode = json.JSONEncoder(sort_keys=True, ensure_ascii=False, allow_nan=False,
                                separators=(_SEP, ": ")).encode
    keystr = json.encoder.encode_basestring  # as json writes a key with ensure_ascii=False

    def pad(depth: int) -> str:
        return " " * (indent * depth)

    def leaf(o: Any, depth: int) -> str:  # a container at ``depth`` holding no container
        text, inner = c_encode(o), pad(depth + 1)
        return (f"{text[0]}\n{inner}{text[1:-1].replace(_SEP, ',' + chr(10) + inner)}\n"
                f"{pad(depth)}{text[-1]}")

    def records(o: Any, depth: int) -> str | None:  # a list of non-empty leaves of one kind
        kinds = set(map(type, o))
        if kinds == {dict}:
            values, op, cl = chain.from_iterable(map(dict.values, o)), "{", "}"
        elif kinds <= {list, tuple}:
            values, op, cl = chain.from_iterable(o), "[", "]"
        else:
            return None
        if not all(o) or _holds_container(values):
            return None
        text, p1, p2 = c_encode(o), pad(depth + 1), pad(depth + 2)
        body = text[2:-2].replace(cl + _SEP + op, f"\n{p1}{cl},\n{p1}{op}\n{p2}")
        return (f"[\n{p1}{op}\n{p2}{body.replace(_SEP, ',' + chr(10) + p2)}\n{p1}{cl}\n"
                f"{pad(depth)}]")

    def key(k: Any) -> str:  # json's key rules, applied after sorting as json does
        if isinstance(k, str):
            return keystr(k)
        if isinstance(k, float) or k is True or k is False or k is None:
            return keystr(json.dumps(k, allow_nan=False))
        if isinstance(k, int):
            return keystr(int.__repr__(k))
        raise TypeError(f"keys must be str, int, float, bool or None, not {type(k).__name__}")

    def enc(o: Any, depth: int) -> str:
        t = type(o)
        if t is dict:
            if not o:
                return "{}"
            if not _holds_container(o.values()):
                return leaf(o, depth)
            p = "\n" + pad(depth + 1)
            items = [f"{key(k)}: {enc(o[k], depth + 1)}" for k in sorted(o)]
            return "{" + p + ("," + p).join(items) + "\n" + pad(depth) + "}"
        if t is list or t is tuple:
            if not o:
                return "[]"
            if not _holds_container(o):
                return leaf(o, depth)
            text = records(o, depth)
            if text is not None:
                return text
            p = "\n" + pad(depth + 1)
            return "[" + p + ("," + p).join([enc(v, depth + 1) for v in o]) + "\n" + pad(depth) + "]"
        if isinstance(o, _CONTAINERS):  # a subclass: as json writes it, at this depth
            return json.dumps(o, sort_keys=True, indent=indent, ensure_ascii=False,
                              allow_nan=False).replace("\n", "\n" + pad(depth))
        return json.dumps(o, ensure_ascii=False, allow_nan=False)

    return enc(obj, 0)


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, fixed separators, floats via repr) for hashing:
    ``json.dumps(json_safe(obj), ...)``, by :func:`dumps_json_safe`."""
    return dumps_json_safe(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def text_sha256(text: str) -> str:
    """sha256 (hex) of ``text`` as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_sha256(obj: Any) -> str:
    """sha256 (hex) of ``obj``'s canonical JSON (sorted keys, no whitespace, UTF-8): the hash
    of protocols, plans, ledger entries, monitor states, criteria ids and site files."""
    return text_sha256(canonical_json(obj))
