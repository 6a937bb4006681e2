"""Shared result types: the confidence interval and the behaviour every result has.

Results are frozen dataclasses (scipy ``RelativeRiskResult`` / statsmodels style) that echo
their inputs and export ``to_frame()`` (tidy, stable columns), ``to_dict()`` (JSON-safe, for
results.json), ``summary()`` (text) and ``_repr_html_()`` (JupyterLab, delegating to
``to_frame``). Numbers stay numeric; formatting happens only when rendering.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy and pandas are imported where a result needs them: the dossier's
    import pandas as pd  # plan-only sections (drift, change control, model card) load neither

__all__ = ["Interval", "ResultMixin", "json_safe", "canonical_json", "GROUP_SEP", "LEVEL_SEP"]

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


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, fixed separators, floats via repr) for hashing:
    ``json.dumps(json_safe(obj), ...)``, by :func:`dumps_json_safe`."""
    return dumps_json_safe(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
