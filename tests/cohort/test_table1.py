"""Table 1 (rwe.cohort.table_one, tableone's cells): against pandas by hand and against
tableone itself (its grouped table, cell for cell)."""

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


def _tableone_rows(f, cont, cat, nonnormal, by):
    """tableone's own grouped table (``TableOne(groupby=by)``) as table_one's tidy rows."""
    import warnings

    from tableone import TableOne

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = TableOne(f, columns=cont + cat, categorical=cat, nonnormal=nonnormal,
                       groupby=by, missing=True, overall=True, include_null=True,
                       decimals=1).tableone
    ref.columns = [c[-1] for c in ref.columns]
    strata = [c for c in ref.columns if c not in ("Missing", "Overall")]
    want = []
    for (label, level), rec in zip(ref.index, ref.to_dict("records"), strict=True):
        variable, _, statistic = str(label).rpartition(", ")
        variable, statistic = (variable, statistic) if variable else (str(label), "n")
        lv = "" if level in ("", None) else str(level)
        if rec["Missing"] not in ("", None) and variable != "n":
            want.append(("overall", "Overall", variable, "missing", "", str(rec["Missing"])))
        want.append(("overall", "Overall", variable, statistic, lv, str(rec["Overall"])))
        want += [(by, s, variable, statistic, lv, str(rec[s])) for s in strata]
    return want


def test_strata_equal_tableones_grouped_table(frame):
    """table_one's cells are those of tableone's own grouped table, in its order, including a
    category absent from one stratum ("0 (0.0)") and the missing counts."""
    f = frame.copy()
    f.loc[f["site"] == "C", "smoking"] = "never"  # "former" absent from site C
    f["smoking"] = f["smoking"].astype(object).where(f["smoking"].notna(), None)
    cont, cat = ["age", "pack_years"], ["sex", "smoking", "y"]
    got = table_one(f, continuous=cont, categorical=cat[:2], strata={"site": "site"},
                    outcome="y").table
    want = _tableone_rows(f.assign(sex=f["sex"].astype(str), y=f["y"].astype(str)), cont, cat,
                          ["pack_years"], "site")
    assert [tuple(r) for r in got.itertuples(index=False)] == want
    assert ("site", "C", "smoking", "n (%)", "former", "0 (0.0)") in want


def test_demo_table_equals_tableone():
    """On demo data (categorical dtypes, a boolean outcome, missing smoking status and
    pack-years, skewed features), overall, per site and per scanner vendor: tableone's
    cells, cell for cell."""
    from rwe.datasets import make_demo

    scans = make_demo(n_scans=6000).scans
    cont = ["age", "pack_years", "nodule_size_mm"]
    cat = ["sex", "race", "ethnicity", "smoking_status"]
    t1 = table_one(scans, continuous=cont, categorical=cat,
                   strata={"site": "site", "equipment": "scanner_vendor"}, outcome="malignant")
    assert set(t1.nonnormal) >= {"pack_years"}
    text = scans.assign(**{c: scans[c].astype(object).where(scans[c].notna(), None).map(
        lambda v: v if v is None else str(v)) for c in [*cat, "malignant"]})
    for by in ("site", "scanner_vendor"):
        want = _tableone_rows(text, cont, cat + ["malignant"], list(t1.nonnormal), by)
        t = t1.table
        got = t[(t["by"] == by) | ((t["by"] == "overall") & (by == "site"))]
        rows = [tuple(r) for r in got.itertuples(index=False)]
        if by == "site":
            assert rows == want
        else:  # the overall column is carried by the first stratifying column's table
            assert rows == [w for w in want if w[0] != "overall"]


def test_edge_levels_and_counts_order():
    """A value whose text is "None" shares tableone's level with missing values; a stratum of
    one row has SD 0.0; a stratifying column that is also a variable is grouped by its text;
    counts come in value_counts order (ties by first appearance), as pandas gives them."""
    f = pd.DataFrame({
        "x": [1.0, 2.0, np.nan, 4.0, 5.0, 6.0, 7.0],
        "g": pd.Categorical(["b", "a", None, "None", "b", "a", "c"]),
        "s": ["u", "v", "v", "u", "v", "w", "u"],
        "k": [2, 10, 2, 10, 1, 1, 2],
    })
    t1 = table_one(f, continuous=["x"], categorical=["g", "k"], strata={"site": "s",
                                                                      "equipment": "k"})
    got = [tuple(r) for r in t1.table[t1.table["by"] != "k"].itertuples(index=False)]
    text = f.assign(g=f["g"].astype(object).where(f["g"].notna(), None),
                    k=f["k"].astype(str))
    assert got == _tableone_rows(text, ["x"], ["g", "k"], [], "s")
    assert ("s", "w", "x", "mean (SD)", "", "6.0 (0.0)") in got
    by_k = t1.table[t1.table["by"] == "k"]
    assert list(dict.fromkeys(by_k["stratum"])) == ["1", "10", "2"]  # sorted as text
    c = t1.counts
    for stratum, d in [("Overall", f)] + [(s, f[f["s"] == s]) for s in ("u", "v", "w")]:
        by = "overall" if stratum == "Overall" else "s"
        for var in ("g", "k"):
            want = text.loc[d.index, var].astype(object).fillna("missing").value_counts()
            rows = c[(c["by"] == by) & (c["stratum"] == stratum) & (c["variable"] == var)]
            assert list(zip(rows["level"], rows["n"], strict=True)) == list(
                zip(want.index.astype(str), want.to_numpy(), strict=True))
