"""Derived grouping attributes: age bands (protocol-defined cut points) and calendar windows
(ISO week, month, quarter) of the timestamp role."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from rwe.exceptions import DataValidationError, InvalidParameterError

__all__ = ["age_band_labels", "derive_age_bands", "calendar_window", "window_range",
           "WINDOW_FREQS"]


def age_band_labels(cuts: Sequence[float]) -> list[str]:
    """Labels for the bands ``[c0, c1), [c1, c2), ..., [c_last, inf)``.

    Integer cut points give the familiar inclusive labels: cuts ``[18, 50, 65]`` ->
    ``["18-49", "50-64", "65+"]``. Ages below the first cut get the band ``"<18"``.
    """
    cuts = list(cuts)
    fmt = (lambda v: f"{int(v)}") if all(float(c).is_integer() for c in cuts) else (
        lambda v: f"{v:g}")
    labels = [f"<{fmt(cuts[0])}"]
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        if all(float(c).is_integer() for c in cuts):
            labels.append(f"{int(lo)}-{int(hi) - 1}")
        else:
            labels.append(f"[{lo:g}, {hi:g})")
    labels.append(f"{fmt(cuts[-1])}+")
    return labels


def derive_age_bands(age: pd.Series | np.ndarray, cuts: Sequence[float]) -> pd.Series:
    """Cut ``age`` into ordered bands ``[c0, c1), ..., [c_last, inf)``; missing age stays missing.

    Parameters
    ----------
    age : array-like of float
        Age in years.
    cuts : sequence of float
        Strictly increasing cut points (the protocol's ``data.derived`` entry).

    Returns
    -------
    pandas.Series
        Ordered categorical with the labels of :func:`age_band_labels`.
    """
    cuts = [float(c) for c in cuts]
    if len(cuts) < 1 or any(b <= a for a, b in zip(cuts[:-1], cuts[1:], strict=False)):
        raise InvalidParameterError(
            f"age band cut points must be a non-empty, strictly increasing list, got {cuts!r}")
    labels = age_band_labels(cuts)
    s = pd.Series(age, copy=False)
    values = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
    codes = np.searchsorted(np.asarray(cuts), values, side="right")  # 0 = below first cut
    codes = np.where(np.isnan(values), -1, codes)
    cat = pd.Categorical.from_codes(codes, categories=labels, ordered=True)
    used = [lab for i, lab in enumerate(labels) if i > 0 or (codes == 0).any()]
    out = pd.Series(cat, index=s.index if isinstance(age, pd.Series) else None, name="age_band")
    return out.cat.set_categories(used, ordered=True)


# ------------------------------------------------------------------------------ calendar windows
#: Calendar window lengths: ISO weeks (Monday to Sunday), calendar months and quarters.
WINDOW_FREQS = ("week", "month", "quarter")
_ISO_EPOCH_MONDAY = _dt.date(1969, 12, 29)  # the Monday of the week holding 1970-01-01


def _window_label(freq: str, ordinal: int) -> str:
    if freq == "month":
        return f"{1970 + ordinal // 12:04d}-{ordinal % 12 + 1:02d}"
    if freq == "quarter":
        return f"{1970 + ordinal // 4:04d}-Q{ordinal % 4 + 1}"
    iso = (_ISO_EPOCH_MONDAY + _dt.timedelta(weeks=ordinal)).isocalendar()
    return f"{iso[0]:04d}-W{iso[1]:02d}"


def _window_ordinal(label: str, freq: str) -> int:
    """Inverse of :func:`_window_label`."""
    year = int(label[:4])
    if freq == "month":
        return (year - 1970) * 12 + int(label[5:7]) - 1
    if freq == "quarter":
        return (year - 1970) * 4 + int(label[6]) - 1
    monday = _dt.date.fromisocalendar(year, int(label[6:8]), 1)
    return (monday - _ISO_EPOCH_MONDAY).days // 7


def window_range(labels: Sequence[str], freq: str | None = None) -> list[str]:
    """Every calendar window from the first to the last of ``labels`` (labels of
    :func:`calendar_window`), without gaps: the categories a single :func:`calendar_window`
    of all the rows has, when the rows were windowed in parts (partitions, sites).

    ``freq`` is inferred from the labels when omitted (``"2024-W05"``, ``"2024-Q1"``,
    ``"2024-01"``)."""
    labels = [str(x) for x in labels]
    if not labels:
        return []
    if freq is None:
        freq = {"W": "week", "Q": "quarter"}.get(labels[0][5:6], "month")
    if freq not in WINDOW_FREQS:
        raise InvalidParameterError(
            f"freq={freq!r} is not valid; choose one of: {', '.join(WINDOW_FREQS)}")
    ords = [_window_ordinal(x, freq) for x in labels]
    return [_window_label(freq, o) for o in range(min(ords), max(ords) + 1)]


def _as_naive_utc(s: pd.Series, name: str) -> pd.Series:
    """Datetimes as naive UTC: aware values are converted to UTC, naive ones kept, text parsed
    as ISO 8601 (the rules of :func:`rwe.data.EvaluationSet.from_frame`)."""
    from rwe.data._validate import parse_timestamps

    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_datetime64_dtype(s):
        return s
    if s.isna().all():
        return pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    errors: list[str] = []
    parsed = parse_timestamps(s, name, str(s.name) if s.name is not None else "timestamps",
                              errors)
    if errors or parsed is None:
        raise DataValidationError(errors, source=name)
    return _as_naive_utc(parsed, name)


def calendar_window(timestamps: pd.Series | Sequence[Any], freq: str) -> pd.Series:
    """The calendar window (ISO week, month or quarter) of each timestamp.

    Parameters
    ----------
    timestamps : pandas.Series or array-like
        Datetimes (naive or time-zone aware) or ISO 8601 text. Time-zone-aware values are
        converted to UTC before they are assigned a window; naive values are taken as they are
        (rwe's loaders store aware timestamps in UTC).
    freq : {"week", "month", "quarter"}
        ``"week"``: ISO 8601 weeks (Monday to Sunday, numbered within the ISO year), labelled
        ``"2024-W05"``; ``"month"``: ``"2024-01"``; ``"quarter"``: ``"2024-Q1"``.

    Returns
    -------
    pandas.Series
        Ordered categorical named ``freq``, on the index of ``timestamps``. Its categories are
        every window from the first to the last present one, without gaps (a month with no row
        is an explicit, empty category), and their labels sort as text in calendar order.
        Missing timestamps get a missing window.

    Raises
    ------
    InvalidParameterError
        For an unknown ``freq`` or numeric input.
    DataValidationError
        For text that does not parse as ISO 8601 (naming the rows).

    Examples
    --------
    >>> import pandas as pd
    >>> w = calendar_window(pd.Series(pd.to_datetime(["2024-01-31", "2024-03-01"])), "month")
    >>> list(w.astype(str)), list(w.cat.categories)
    (['2024-01', '2024-03'], ['2024-01', '2024-02', '2024-03'])
    """
    if freq not in WINDOW_FREQS:
        raise InvalidParameterError(
            f"freq={freq!r} is not valid; choose one of: {', '.join(WINDOW_FREQS)}")
    s = timestamps if isinstance(timestamps, pd.Series) else pd.Series(timestamps)
    if pd.api.types.is_numeric_dtype(s) and not s.isna().all():
        raise InvalidParameterError(
            f"timestamps must be datetimes or ISO 8601 text, got dtype {s.dtype}")
    ts = _as_naive_utc(s, "timestamps")
    v = ts.to_numpy()
    nat = np.isnat(v)
    present = ~nat
    if freq == "week":
        days = v.astype("datetime64[D]").astype(np.int64)
        ords = (days + 3) // 7  # 1970-01-01 is a Thursday: day 0 is 3 days after a Monday
    else:
        months = v.astype("datetime64[M]").astype(np.int64)
        ords = months if freq == "month" else months // 3
    if present.any():
        lo, hi = int(ords[present].min()), int(ords[present].max())
        codes = np.where(present, ords - lo, -1)
        labels = [_window_label(freq, o) for o in range(lo, hi + 1)]
    else:
        codes = np.full(len(v), -1, dtype=np.int64)
        labels = []
    cat = pd.Categorical.from_codes(codes.astype(np.int64), categories=labels, ordered=True)
    return pd.Series(cat, index=s.index, name=freq)
