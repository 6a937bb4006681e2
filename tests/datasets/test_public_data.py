"""Offline loaders of real public datasets: documented columns, sizes and outcome coding."""

from __future__ import annotations

import numpy as np
import pytest

from rwe.datasets import MSG_UNKNOWN_DATASET, PUBLIC_DATASETS, load_public
from rwe.exceptions import InvalidParameterError

LIFELINES = [n for n, d in PUBLIC_DATASETS.items() if d.package == "lifelines"]
SKSURV = [n for n, d in PUBLIC_DATASETS.items() if d.package == "scikit-survival"]

# number of events, counted from the raw package loaders (see test_events_match_raw_loader)
EXPECTED = {
    "kidney_transplant": (863, 140),
    "rossi": (432, 114),
    "lung": (228, 165),
    "flchain": (7874, 2169),
    "whas500": (500, 215),
    "gbsg2": (686, 299),
    "veterans_lung_cancer": (137, 128),
    "aids": (1151, 96),
}


def _load(name):
    if PUBLIC_DATASETS[name].package == "scikit-survival":
        pytest.importorskip("sksurv")
    return load_public(name)


@pytest.mark.parametrize("name", sorted(PUBLIC_DATASETS))
def test_documented_columns_rows_and_outcome(name):
    df = _load(name)
    spec = PUBLIC_DATASETS[name]
    assert list(df.columns) != [] and set(df.columns) == set(spec.columns)
    assert len(df) == spec.n_rows == EXPECTED[name][0]
    assert df["time"].dtype == np.float64 and (df["time"] >= 0).all()
    assert df["event"].dtype == np.int64 and set(np.unique(df["event"])) == {0, 1}
    assert int(df["event"].sum()) == EXPECTED[name][1]
    assert spec.license and spec.citation and spec.outcome


def test_registry_covers_brief():
    assert {"kidney_transplant", "rossi", "flchain", "whas500", "gbsg2",
            "veterans_lung_cancer", "aids"} <= set(PUBLIC_DATASETS)


def test_kidney_transplant_race_by_sex_matches_indicator_columns():
    from lifelines.datasets import load_kidney_transplant

    raw = load_kidney_transplant()
    df = load_public("kidney_transplant")
    cells = df.groupby(["race", "sex"], observed=True).size()
    assert cells[("Black", "M")] == raw["black_male"].sum()
    assert cells[("Black", "F")] == raw["black_female"].sum()
    assert cells[("White", "M")] == raw["white_male"].sum()
    assert cells.sum() == 863
    np.testing.assert_array_equal(df["event"], raw["death"])


@pytest.mark.parametrize(("name", "loader", "event", "time"), [
    ("flchain", "load_flchain", "death", "futime"),
    ("whas500", "load_whas500", "fstat", "lenfol"),
    ("aids", "load_aids", "censor", "time"),
    ("veterans_lung_cancer", "load_veterans_lung_cancer", "Status", "Survival_in_days"),
    ("gbsg2", "load_gbsg2", "cens", "time"),
])
def test_events_match_raw_loader(name, loader, event, time):
    ds = pytest.importorskip("sksurv.datasets")
    _, y = getattr(ds, loader)()
    df = load_public(name)
    np.testing.assert_array_equal(df["event"].to_numpy(), y[event].astype(int))
    np.testing.assert_array_equal(df["time"].to_numpy(), y[time])


def test_readable_labels():
    pytest.importorskip("sksurv")
    aids = load_public("aids")
    counts = aids["raceth"].value_counts()
    assert counts["White Non-Hispanic"] == 596 and counts["Black Non-Hispanic"] == 327
    assert counts["American Indian, Alaskan Native"] == 11
    assert aids["raceth"].notna().all() and set(aids["sex"]) == {"F", "M"}
    whas = load_public("whas500")
    assert whas["gender"].value_counts().to_dict() == {"M": 300, "F": 200}
    fl = load_public("flchain")
    assert {"sample_yr", "sex", "age"} <= set(fl.columns)
    assert sorted(fl["sample_yr"].astype(int).unique()) == list(range(1995, 2004))


def test_unknown_name():
    msg = MSG_UNKNOWN_DATASET.format(name="nope", valid=", ".join(sorted(PUBLIC_DATASETS)))
    with pytest.raises(InvalidParameterError) as exc:
        load_public("nope")
    assert str(exc.value) == msg
