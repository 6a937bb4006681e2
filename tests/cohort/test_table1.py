"""Table 1 (rwe.cohort.table_one, built with tableone): its cells against pandas by hand."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rwe.cohort import TableOneResult, table_one


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 400
    return pd.DataFrame({
        "age": rng.normal(60, 10, n).round(1),
        "pack_years": np.where(rng.random(n) < 0.3, 0.0, rng.gamma(2.0, 10.0, n)).round(1),
        "sex": rng.choice(["F", "M"], n),
        "smoking": np.where(rng.random(n) < 0.05, None, rng.choice(["never", "former"], n)),
        "site": rng.choice(["A", "B", "C"], n, p=[0.5, 0.3, 0.2]),
        "y": (rng.random(n) < 0.2).astype(int)})


@pytest.fixture(scope="module")
def t1(frame) -> TableOneResult:
    return table_one(frame, continuous=["age", "pack_years"], categorical=["sex", "smoking"],
                     strata={"site": "site"}, outcome="y")


def _cell(t1, by, stratum, variable, level=""):
    t = t1.table
    m = t[(t["by"] == by) & (t["stratum"] == stratum) & (t["variable"] == variable)
          & (t["level"] == level) & (t["statistic"] != "missing")]
    assert len(m) == 1, (by, stratum, variable, level, m)
    return m.iloc[0]


def test_continuous_cells_match_pandas(frame, t1):
    assert t1.nonnormal == ("pack_years",)  # 30% zeros: median [Q1,Q3]
    age = _cell(t1, "overall", "Overall", "age")
    assert age["statistic"] == "mean (SD)"
    assert age["value"] == f"{frame['age'].mean():.1f} ({frame['age'].std(ddof=1):.1f})"
    b = frame[frame["site"] == "B"]["pack_years"]
    py = _cell(t1, "site", "B", "pack_years")
    q1, med, q3 = np.percentile(b, [25, 50, 75])
    assert py["statistic"] == "median [Q1,Q3]"
    assert py["value"] == f"{med:.1f} [{q1:.1f},{q3:.1f}]"


def test_categorical_counts_match_pandas(frame, t1):
    c = t1.counts
    for site, d in frame.groupby("site"):
        got = c[(c["by"] == "site") & (c["stratum"] == site) & (c["variable"] == "sex")]
        assert dict(zip(got["level"], got["n"], strict=True)) == d["sex"].value_counts().to_dict()
        n = int(d["smoking"].isna().sum())
        miss = c[(c["by"] == "site") & (c["stratum"] == site) & (c["variable"] == "smoking")
                 & (c["level"] == "missing")]
        assert (int(miss["n"].iloc[0]) if len(miss) else 0) == n
        cell = _cell(t1, "site", site, "sex", "F")
        f = int((d["sex"] == "F").sum())
        assert cell["value"] == f"{f} ({100 * f / len(d):.1f})"
    prev = _cell(t1, "overall", "Overall", "y", "1")  # the outcome's prevalence
    k = int(frame["y"].sum())
    assert prev["value"] == f"{k} ({100 * k / len(frame):.1f})"


def test_round_trip(t1):
    d = json.loads(json.dumps(t1.to_dict()))
    again = TableOneResult.from_dict(d)
    assert again.to_dict() == d and again.strata == {"site": "site"}
    assert [f.code for f in t1.findings] == ["cohort.table1"]


def test_strata_equal_tableones_grouped_table(frame):
    """One TableOne call per stratum gives the cells of tableone's own grouped table, in its
    order, including a category absent from one stratum ("0 (0.0)") and the missing counts."""
    import warnings

    from tableone import TableOne

    f = frame.copy()
    f.loc[f["site"] == "C", "smoking"] = "never"  # "former" absent from site C
    f["smoking"] = f["smoking"].astype(object).where(f["smoking"].notna(), None)
    cont, cat = ["age", "pack_years"], ["sex", "smoking", "y"]
    got = table_one(f, continuous=cont, categorical=cat[:2], strata={"site": "site"},
                    outcome="y").table
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = TableOne(f.assign(sex=f["sex"].astype(str), y=f["y"].astype(str)),
                       columns=cont + cat, categorical=cat, nonnormal=["pack_years"],
                       groupby="site", missing=True, overall=True, include_null=True,
                       decimals=1).tableone
    ref.columns = [c[-1] for c in ref.columns]
    want = []
    for (label, level), rec in zip(ref.index, ref.to_dict("records"), strict=True):
        variable, _, statistic = str(label).rpartition(", ")
        variable, statistic = (variable, statistic) if variable else (str(label), "n")
        lv = "" if level in ("", None) else str(level)
        if rec["Missing"] not in ("", None) and variable != "n":
            want.append(("overall", "Overall", variable, "missing", "", str(rec["Missing"])))
        want.append(("overall", "Overall", variable, statistic, lv, str(rec["Overall"])))
        want += [("site", s, variable, statistic, lv, str(rec[s])) for s in ("A", "B", "C")]
    assert [tuple(r) for r in got.itertuples(index=False)] == want
    assert ("site", "C", "smoking", "n (%)", "former", "0 (0.0)") in want
