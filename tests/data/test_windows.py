"""Calendar windows (ISO week, month, quarter) of the timestamp role: labels, gaps, time zones."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from rwe.data import WINDOW_FREQS, EvaluationSet, calendar_window
from rwe.exceptions import DataValidationError, InvalidParameterError


def _labels(s: pd.Series) -> list:
    return [None if pd.isna(v) else str(v) for v in s.astype(object)]


@pytest.mark.parametrize("day, week", [
    ("2024-01-01", "2024-W01"),   # a Monday: first day of ISO 2024
    ("2023-12-31", "2023-W52"),   # the Sunday before
    ("2024-12-30", "2025-W01"),   # Monday of the week holding 2025-01-02: ISO year 2025
    ("2021-01-03", "2020-W53"),   # Sunday of the 53rd ISO week of 2020
    ("2020-12-28", "2020-W53"),
    ("1969-12-31", "1970-W01"),   # before the epoch (a Wednesday; 1970-01-01 is Thursday)
    ("1969-12-28", "1969-W52"),
])
def test_iso_week_labels(day, week):
    got = calendar_window(pd.Series(pd.to_datetime([day])), "week")
    assert _labels(got) == [week]
    y, w, _ = dt.date.fromisoformat(day).isocalendar()
    assert week == f"{y:04d}-W{w:02d}"


def test_every_window_matches_python_calendar_on_random_instants():
    rng = np.random.default_rng(7)
    secs = rng.integers(-5 * 365 * 86400, 60 * 365 * 86400, size=3000)
    ts = pd.Series(pd.to_datetime(secs, unit="s"))
    oracle = {
        "week": [f"{d.isocalendar()[0]:04d}-W{d.isocalendar()[1]:02d}" for d in ts],
        "month": [f"{d.year:04d}-{d.month:02d}" for d in ts],
        "quarter": [f"{d.year:04d}-Q{(d.month - 1) // 3 + 1}" for d in ts],
    }
    for freq in WINDOW_FREQS:
        got = calendar_window(ts, freq)
        assert _labels(got) == oracle[freq], freq
        cats = list(got.cat.categories)
        assert got.cat.ordered and cats == sorted(cats) and len(set(cats)) == len(cats)
        # no gaps: as many categories as calendar periods from the first to the last
        per = ts.dt.to_period({"week": "W-SUN", "month": "M", "quarter": "Q"}[freq])
        assert len(cats) == (per.max() - per.min()).n + 1


def test_gaps_are_empty_categories_and_missing_stays_missing():
    ts = pd.Series(pd.to_datetime(["2024-01-15", None, "2024-04-02", "2024-01-31"]),
                   index=[10, 11, 12, 13])
    m = calendar_window(ts, "month")
    assert m.name == "month" and list(m.index) == [10, 11, 12, 13]
    assert _labels(m) == ["2024-01", None, "2024-04", "2024-01"]
    assert list(m.cat.categories) == ["2024-01", "2024-02", "2024-03", "2024-04"]
    assert m.value_counts(sort=False).tolist() == [2, 0, 0, 1]
    q = calendar_window(ts, "quarter")
    assert _labels(q) == ["2024-Q1", None, "2024-Q2", "2024-Q1"]
    assert list(q.cat.categories) == ["2024-Q1", "2024-Q2"]
    empty = calendar_window(pd.Series([pd.NaT, pd.NaT]), "week")
    assert empty.isna().all() and list(empty.cat.categories) == []


def test_timezone_aware_timestamps_are_converted_to_utc_first():
    # 23:30 at UTC-02:00 on 31 March is 01:30 UTC on 1 April
    ts = pd.Series(pd.to_datetime(["2024-03-31T23:30:00-02:00", "2024-03-01T00:30:00+01:00"],
                                  utc=True).tz_convert("America/Sao_Paulo"))
    assert _labels(calendar_window(ts, "month")) == ["2024-04", "2024-02"]
    # ISO text with offsets is parsed the same way; naive text is taken as it is
    text = pd.Series(["2024-03-31T23:30:00-02:00", "2024-03-01T00:30:00+01:00"])
    assert _labels(calendar_window(text, "quarter")) == ["2024-Q2", "2024-Q1"]
    assert _labels(calendar_window(pd.Series(["2024-03-31T23:30:00"]), "month")) == ["2024-03"]


def test_bad_freq_and_bad_input():
    ts = pd.Series(pd.to_datetime(["2024-01-01"]))
    with pytest.raises(InvalidParameterError,
                       match=r"^freq='day' is not valid; choose one of: week, month, quarter$"):
        calendar_window(ts, "day")
    with pytest.raises(InvalidParameterError, match="must be datetimes or ISO 8601 text, got "
                                                    "dtype int64"):
        calendar_window(pd.Series([1, 2]), "month")
    with pytest.raises(DataValidationError, match=r"unparseable timestamp \(expected ISO 8601\); "
                                                  r"1 offending row, first: 2"):
        calendar_window(pd.Series(["2024-01-01", "next tuesday"], name="ts"), "month")


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"id": range(6), "s": np.linspace(0.1, 0.9, 6), "y": [0, 1] * 3,
                         "ts": ["2024-01-03T10:00:00Z", "2024-01-20T10:00:00Z",
                                "2024-03-05T10:00:00Z", "2024-03-31T23:30:00-02:00",
                                "2024-03-09T10:00:00Z", "2024-01-09T10:00:00Z"]})


def test_evaluation_set_window_and_derived_window_attribute():
    roles = {"id": "id", "scores": {"v": "s"}, "label": "y", "timestamp": "ts"}
    ev = EvaluationSet.from_frame(_frame(), roles,
                                  derived={"month": {"from": "ts", "window": "month"}})
    assert "month" in ev.roles.attributes and "month" in ev.roles.grouping_columns()
    assert ev.derived == {"month": {"from": "ts", "window": "month"}}
    want = ["2024-01", "2024-01", "2024-03", "2024-04", "2024-03", "2024-01"]
    assert _labels(ev.attribute("month")) == want
    assert list(ev.attribute("month").cat.categories) == ["2024-01", "2024-02", "2024-03",
                                                          "2024-04"]
    assert _labels(ev.window("month")) == want
    assert _labels(ev.window("week")) == ["2024-W01", "2024-W03", "2024-W10", "2024-W14",
                                          "2024-W10", "2024-W02"]
    assert ev.subgroup_labels("month").tolist() == want
    sub = ev.subset(ev.frame["y"].to_numpy() == 1)
    assert sub.derived == ev.derived
    assert _labels(sub.window("quarter")) == ["2024-Q1", "2024-Q2", "2024-Q1"]
    with pytest.raises(InvalidParameterError, match="needs the 'timestamp' column role"):
        EvaluationSet.from_frame(_frame(), {"scores": {"v": "s"}, "label": "y"}).window("month")


def test_derived_window_must_come_from_the_timestamp_role():
    roles = {"scores": {"v": "s"}, "label": "y", "timestamp": "ts"}
    with pytest.raises(InvalidParameterError, match=r"derived window 'w' must come from the "
                                                    r"timestamp column \('ts'\), got from='id'"):
        EvaluationSet.from_frame(_frame(), roles, derived={"w": {"from": "id", "window": "week"}})
    with pytest.raises(InvalidParameterError, match=r"derived attribute 'w': give"):
        EvaluationSet.from_frame(_frame(), roles, derived={"w": {"from": "ts", "windw": "week"}})


@pytest.mark.parametrize("freq,parts", [
    ("month", [["2024-11", "2024-12"], ["2025-03"]]),
    ("quarter", [["2024-Q4"], ["2025-Q2", "2025-Q3"]]),
    ("week", [["2024-W52"], ["2025-W02"]]),
])
def test_window_range_is_the_windows_of_all_rows(freq, parts):
    """Rows windowed in parts (partitions, sites): the windows of all the rows, gaps filled."""
    from rwe.data import window_range

    days = {"month": ["2024-11-05", "2024-12-01", "2025-03-31"],
            "quarter": ["2024-10-01", "2025-06-30", "2025-07-01"],
            "week": ["2024-12-23", "2025-01-08"]}[freq]
    want = list(calendar_window(pd.Series(pd.to_datetime(days)), freq).cat.categories)
    got = window_range([x for p in parts for x in p], freq)
    assert got == want and window_range([x for p in parts for x in p]) == want
    assert window_range([]) == []
