"""Load-time validation of an evaluation table.

Each failure is one line naming the source file, the column, the rule broken and up to five
offending row numbers (1-based data rows, header excluded, as a spreadsheet user counts them).
All failures are collected and raised together as one :class:`DataValidationError`.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from rwe.data._roles import ColumnRoles
from rwe.exceptions import DataValidationError

__all__ = ["validate_frame", "MAX_ROWS_SHOWN", "STRAY_TEXT_SHARE", "stray_text",
           "missing_column_messages"]

MAX_ROWS_SHOWN = 5
#: A text column whose non-missing values are numbers except at most this share (and at least
#: one cell) is a numeric column with stray text, not a categorical one.
STRAY_TEXT_SHARE = 0.05

MSG_EMPTY = "{src}: the table is empty (no rows)"
MSG_MISSING = "{src}: column {col!r} ({role}) is missing; available columns: {avail}"
MSG_DTYPE = "{src}: column {col!r} ({role}) must be {expected}, got dtype {dtype}"
MSG_ROWS = "{src}: column {col!r} ({role}): {rule}; {k} offending row{s}, first: {rows}"
MSG_STRAY_TEXT = ("text in a numeric column (found {values}): values must be numbers, an empty "
                  "cell for a missing value")
_TZ_SUFFIX = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")


def _rows(mask: np.ndarray) -> tuple[int, str]:
    idx = np.flatnonzero(mask)
    shown = ", ".join(str(i + 1) for i in idx[:MAX_ROWS_SHOWN])
    return len(idx), shown


def _row_msg(src: str, col: str, role: str, rule: str, mask: np.ndarray) -> str:
    k, shown = _rows(mask)
    return MSG_ROWS.format(src=src, col=col, role=role, rule=rule, k=k, s="" if k == 1 else "s",
                           rows=shown)


def _role_map(roles: ColumnRoles) -> dict[str, str]:
    """Column -> human-readable role, for messages."""
    out: dict[str, str] = {}
    for name in ("id", "patient_id", "label", "time", "event", "timestamp", "site", "equipment"):
        col = getattr(roles, name)
        if col is not None:
            out.setdefault(col, name.replace("_", " "))
    for version, col in roles.scores.items():
        out.setdefault(col, f"score of model version {version}")
    for col in roles.attributes:
        out.setdefault(col, "subgroup attribute")
    for col in roles.features:
        out.setdefault(col, "feature")
    return out


def _check_binary(src: str, col: str, role: str, s: pd.Series, errors: list[str]) -> None:
    if s.dtype == bool:
        return
    if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
        errors.append(MSG_DTYPE.format(src=src, col=col, role=role, expected="binary 0/1 or bool",
                                       dtype=s.dtype))
        return
    v = s.to_numpy(dtype=float, na_value=np.nan)
    if np.isnan(v).any():
        errors.append(_row_msg(src, col, role, "missing values are not allowed", np.isnan(v)))
    bad = ~np.isnan(v) & ~np.isin(v, (0.0, 1.0))
    if bad.any():
        vals = sorted({float(x) for x in v[bad][:MAX_ROWS_SHOWN]})
        errors.append(_row_msg(src, col, role, f"values must be 0 or 1 (found {vals})", bad))


def stray_text(s: pd.Series) -> np.ndarray | None:
    """Mask of the stray text cells of a numeric column read as text, or None.

    The rule: a text column (object or string dtype; never a pandas Categorical, which is
    categorical by declaration) whose non-missing values all parse as numbers except at most
    :data:`STRAY_TEXT_SHARE` of them (at least one cell, and two or more numbers) is numeric
    with stray text: a typo, a sentinel such as ``"unknown"``, a unit. A column with more text
    than that is categorical.
    """
    if isinstance(s.dtype, pd.CategoricalDtype) or not (
            pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)):
        return None
    text = s.astype("string")
    present = text.notna().to_numpy()
    n_present = int(present.sum())
    if n_present == 0:
        return None
    # parse each distinct value once (a categorical column has few; the rule is per cell)
    codes, uniques = pd.factorize(text)
    num = pd.to_numeric(pd.Series(uniques, dtype="string").str.strip(), errors="coerce")
    bad_u = num.isna().to_numpy()
    bad = present & (codes >= 0) & bad_u[np.maximum(codes, 0)]
    k = int(bad.sum())
    if k == 0 or n_present - k < 2 or k > max(1, STRAY_TEXT_SHARE * n_present):
        return None
    return bad


def stray_text_message(src: str, col: str, role: str, s: pd.Series, bad: np.ndarray) -> str:
    vals = list(dict.fromkeys(str(v) for v in s.to_numpy()[bad][:20]))[:3]
    shown = ", ".join(repr(v if len(v) <= 20 else v[:17] + "...") for v in vals)
    return _row_msg(src, col, role, MSG_STRAY_TEXT.format(values=shown), bad)


def missing_column_messages(src: str, roles: ColumnRoles, missing: list[str],
                            available: list[str], *, wanted: list[str] | None = None,
                            echo: bool = True,
                            labels: dict[str, str] | None = None) -> list[str]:
    """Messages for role columns absent from a table: one per column, listing the columns found;
    or a single line when the table looks written with another separator, or (``echo=False``,
    a file) shares no column with the roles, whose names are then not shown."""
    from rwe.data._sources import columns_message, separator_hint

    wanted = list(wanted) if wanted is not None else roles.required_columns()
    if not echo or separator_hint(missing, available) is not None:
        line = columns_message(src, missing, available, wanted)
        if line is not None:
            return [line]
    rmap = {**(labels or {}), **_role_map(roles)}
    avail = ", ".join(map(repr, list(available)[:30]))
    return [MSG_MISSING.format(src=src, col=col, role=rmap.get(col, "column"), avail=avail)
            for col in missing]


def parse_timestamps(s: pd.Series, src: str, col: str, errors: list[str]) -> pd.Series | None:
    """Parse a timestamp column: naive stays naive, aware is converted to UTC.

    A column that mixes timezone-aware and naive values is an error (the instants would be
    ambiguous), as is any value that cannot be parsed.
    """
    role = "timestamp"
    if pd.api.types.is_datetime64_any_dtype(s):
        return s
    if pd.api.types.is_numeric_dtype(s):
        errors.append(MSG_DTYPE.format(src=src, col=col, role=role,
                                       expected="datetime or ISO 8601 text", dtype=s.dtype))
        return None
    text = s.astype("string")
    present = text.notna().to_numpy()
    has_tz = text.str.strip().str.contains(_TZ_SUFFIX, na=False).to_numpy()
    if has_tz.any() and (~has_tz & present).any():
        minority = has_tz if has_tz.sum() <= (~has_tz & present).sum() else (~has_tz & present)
        errors.append(_row_msg(src, col, role,
                               "mixed timezones: some timestamps carry a UTC offset, others do not",
                               minority))
        return None
    try:
        parsed = pd.to_datetime(text, errors="coerce", utc=bool(has_tz.any()), format="ISO8601")
    except (ValueError, TypeError):
        parsed = pd.to_datetime(text, errors="coerce", utc=bool(has_tz.any()), format="mixed")
    bad = present & parsed.isna().to_numpy()
    if bad.any():
        errors.append(_row_msg(src, col, role, "unparseable timestamp (expected ISO 8601)", bad))
        return None
    return parsed


def validate_frame(df: pd.DataFrame, roles: ColumnRoles, *, source: str) -> pd.DataFrame:
    """Check ``df`` against ``roles`` and return a cleaned copy (typed columns).

    Raises
    ------
    DataValidationError
        With one message per failure.
    """
    src = source
    if len(df) == 0:
        raise DataValidationError([MSG_EMPTY.format(src=src)], source=src)
    errors: list[str] = []
    rmap = _role_map(roles)
    if not roles.scores and roles.label is None and roles.time is None:
        errors.append(f"{src}: the column roles name no score, label or survival outcome")
    missing = [c for c in roles.required_columns() if c not in df.columns]
    if missing:
        errors += missing_column_messages(src, roles, missing, [str(c) for c in df.columns])
        raise DataValidationError(errors, source=src)

    out = df.copy()
    # scores: numeric, no NaN, within [0, 1]
    for col in roles.scores.values():
        role = rmap[col]
        s = out[col]
        if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            errors.append(MSG_DTYPE.format(src=src, col=col, role=role,
                                           expected="numeric probabilities in [0, 1]", dtype=s.dtype))
            continue
        v = s.to_numpy(dtype=float, na_value=np.nan)
        if np.isnan(v).any():
            errors.append(_row_msg(src, col, role, "scores must not be NaN or missing", np.isnan(v)))
        oob = ~np.isnan(v) & ((v < 0) | (v > 1))
        if oob.any():
            errors.append(_row_msg(src, col, role, "probabilities must lie in [0, 1]", oob))
        out[col] = v
    if roles.label is not None:
        _check_binary(src, roles.label, "label", out[roles.label], errors)
    if roles.event is not None:
        _check_binary(src, roles.event, "event", out[roles.event], errors)
    if roles.time is not None:
        s = out[roles.time]
        if not pd.api.types.is_numeric_dtype(s):
            errors.append(MSG_DTYPE.format(src=src, col=roles.time, role="time",
                                           expected="numeric follow-up time", dtype=s.dtype))
        else:
            v = s.to_numpy(dtype=float, na_value=np.nan)
            bad = np.isnan(v) | (v < 0)
            if bad.any():
                errors.append(_row_msg(src, roles.time, "time",
                                       "follow-up time must be present and >= 0", bad))
    if roles.id is not None:
        s = out[roles.id]
        na = s.isna().to_numpy()
        if na.any():
            errors.append(_row_msg(src, roles.id, "id", "ids must not be missing", na))
        dup = s.duplicated(keep=False).to_numpy() & ~na
        if dup.any():
            errors.append(_row_msg(src, roles.id, "id", "ids must be unique (duplicates found)",
                                   dup))
    if roles.patient_id is not None:
        na = out[roles.patient_id].isna().to_numpy()
        if na.any():
            errors.append(_row_msg(src, roles.patient_id, "patient id",
                                   "patient ids must not be missing", na))
    if roles.timestamp is not None:
        parsed = parse_timestamps(out[roles.timestamp], src, roles.timestamp, errors)
        if parsed is not None:
            out[roles.timestamp] = parsed
    grouping = set(roles.grouping_columns())
    for col in roles.features:
        if col in grouping or rmap.get(col) != "feature":
            continue
        bad = stray_text(out[col])
        if bad is not None:
            errors.append(stray_text_message(src, col, "feature", out[col], bad))
    if errors:
        raise DataValidationError(errors, source=src)

    if roles.label is not None:
        out[roles.label] = out[roles.label].astype(bool)
    if roles.event is not None:
        out[roles.event] = out[roles.event].astype(bool)
    for col in roles.grouping_columns():
        s = out[col]
        if not isinstance(s.dtype, pd.CategoricalDtype):
            out[col] = s.astype("string").astype("category")
    return out
