"""Bad input to the drift analysis: one clear line, or an explicit "no data in this window"
row; never a crash or a silent drop (issue 17, bad input)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rwe.data import ColumnRoles, EvaluationSet
from rwe.drift import DriftError, assess_drift
from rwe.exceptions import DataValidationError, InvalidParameterError

ROLES = ColumnRoles(scores={"v": "p"}, label="y", timestamp="ts", site="site",
                    features=("x", "c"))


def _frame(n=3000, seed=0, months=("2024-01", "2024-02", "2024-03", "2024-04")):
    rng = np.random.default_rng(seed)
    p = 1 / (1 + np.exp(-rng.normal(-1.5, 1.2, n)))
    start = np.array([np.datetime64(f"{m}-01") for m in months])
    ts = start[rng.integers(0, len(months), n)] + rng.integers(0, 27 * 24, n).astype(
        "timedelta64[h]")
    return pd.DataFrame({"p": p, "y": rng.random(n) < p, "ts": ts,
                         "site": rng.choice(["A", "B"], n), "x": rng.normal(0, 1, n),
                         "c": rng.choice(["u", "v", "w"], n)})


def _ev(df, roles=ROLES):
    return EvaluationSet.from_frame(df, roles)


def test_a_reference_period_with_no_rows_is_one_line():
    ev = _ev(_frame())
    with pytest.raises(DriftError) as e:
        assess_drift(ev, reference=("2023-01-01", "2023-06-30"), metrics=())
    msg = str(e.value)
    assert "\n" not in msg and "reference period 2023-01-01 to 2023-06-30 has no rows" in msg
    assert "the data run from 2024-01" in msg
    with pytest.raises(DriftError, match="the reference has no rows"):
        assess_drift(ev, reference=_frame().iloc[:0], metrics=())


def test_a_window_with_no_rows_is_an_explicit_row():
    df = _frame(months=("2024-01", "2024-02", "2024-04"))  # March is missing
    res = assess_drift(_ev(df), reference=_frame(seed=1), metrics=("calibration_intercept",),
                       alerts=[{"metric": "calibration_intercept", "method": "cusum",
                                "arl0": 100, "by": ["site"]}])
    assert res.windows == ["2024-01", "2024-02", "2024-03", "2024-04"]
    march = res.drift[res.drift["window"] == "2024-03"]
    assert len(march) and (march["status"] == "no_data").all() and not march["drifted"].any()
    assert (march["reason"] == "no data in this window").all() and (march["n"] == 0).all()
    perf = res.performance[res.performance["window"] == "2024-03"]
    assert (perf["status"] == "no_data").all() and perf["estimate"].isna().all()
    ch = res.charts[res.charts["window"] == "2024-03"]
    assert (ch["status"] == "no_data").all() and ch["z"].isna().all()
    # the chart carries its statistic through the empty window unchanged
    for lev in ("A", "B"):
        c = res.charts[res.charts["level"] == lev].set_index("window")
        if not c.loc["2024-03", "alarm"] and not c.loc["2024-02", "alarm"]:
            assert c.loc["2024-03", "upper"] == c.loc["2024-02", "upper"]
    assert any(f.code == "drift.no_data" for f in res.findings)


def test_a_window_with_no_labels_yet_is_estimated_and_said_so():
    df = _frame()
    late = df["ts"] >= np.datetime64("2024-04-01")
    lab = _ev(df[~late])
    unl = _ev(df[late].drop(columns=["y"]), ROLES.model_copy(update={"label": None}))
    res = assess_drift(lab, unlabelled=unl, reference=_frame(seed=1), threshold=0.3,
                       metrics=("sensitivity", "auroc", "calibration_intercept",
                                "calibration_slope"))
    apr = res.performance[(res.performance["window"] == "2024-04")]
    cal = apr[apr["metric"].str.startswith("calibration")]
    assert (cal["status"] == "no_labels").all() and not cal["estimated"].any()
    apr = apr[~apr["metric"].str.startswith("calibration")]
    assert set(apr["metric"]) == {"sensitivity", "auroc"}
    assert apr["estimated"].all() and (apr["status"] == "estimated").all()
    assert (apr["ci_method"] == "cbpe-parametric").all()
    assert apr["reason"].str.contains("estimated from the scores assuming calibration").all()
    diag = res.diagnostics
    assert set(diag["window"]) == {"2024-04"}
    assert (diag["last_labelled_window"] == "2024-03").all()
    assert diag["calibration_ok"].notna().all() and diag["support_ok"].notna().all()
    assert any(f.code == "drift.estimated" for f in res.findings)
    # input drift needs no label: one row per window x level x feature x test, April included
    key = ["role", "feature", "test", "window", "group", "level"]
    assert not res.drift.duplicated(key).any()
    aprd = res.drift[res.drift["window"] == "2024-04"]
    assert (aprd["status"] == "ok").all() and (aprd["n"] > 0).all()
    integ = res.integrity[res.integrity["window"] == "2024-04"]
    assert (integ["unlabelled"] == integ["n"]).all()
    assert res.prevalence.loc[res.prevalence["window"] == "2024-04", "status"].eq(
        "no_labels").all()


def test_a_feature_absent_from_the_reference_is_one_line():
    with pytest.raises(DriftError) as e:
        assess_drift(_ev(_frame()), reference=_frame(seed=1).drop(columns=["x"]), metrics=())
    assert "feature 'x' is absent from the reference" in str(e.value)
    assert "\n" not in str(e.value)


def test_a_schema_change_of_a_feature_is_one_line():
    ref = _frame(seed=1).assign(x=lambda d: d["x"].round(1).astype(str) + "mm")
    with pytest.raises(DriftError, match="feature 'x' is numeric in the current data but "
                                         "categorical in the reference"):
        assess_drift(_ev(_frame()), reference=ref, metrics=())


def test_mixed_time_zones_are_refused_at_load():
    df = _frame(50)
    ts = df["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S").astype(object)
    ts.iloc[:3] = ts.iloc[:3] + "Z"
    with pytest.raises(DataValidationError) as e:
        _ev(df.assign(ts=ts))
    assert "mixed timezones" in str(e.value) and str(e.value).count("\n") == 0


def test_drift_needs_a_time_axis_and_valid_arguments():
    no_ts = ROLES.model_copy(update={"timestamp": None})
    ev = _ev(_frame())
    with pytest.raises(DriftError, match="needs the timestamp column role"):
        assess_drift(_ev(_frame(), no_ts), reference=_frame(seed=1), metrics=())
    with pytest.raises(DriftError, match="give a reference"):
        assess_drift(ev, metrics=())
    with pytest.raises(InvalidParameterError, match="drift test 'kss' is unknown"):
        assess_drift(ev, reference=_frame(seed=1), tests=["kss"], metrics=())
    with pytest.raises(InvalidParameterError, match="thresholds names 'chi'"):
        assess_drift(ev, reference=_frame(seed=1), thresholds={"chi": 0.1}, metrics=())
    with pytest.raises(InvalidParameterError, match="needs threshold="):
        assess_drift(ev, reference=_frame(seed=1), metrics=("sensitivity",))
    with pytest.raises(InvalidParameterError, match="give arl0"):
        assess_drift(ev, reference=_frame(seed=1), metrics=(),
                     alerts=[{"metric": "calibration_intercept", "method": "cusum"}])
    with pytest.raises(InvalidParameterError, match="has no target value"):
        assess_drift(_ev(_frame()), reference=_frame(seed=1).drop(columns=["y"]), metrics=(),
                     alerts=[{"metric": "auroc", "method": "cusum", "arl0": 100}])


def test_a_summary_without_the_window_attribute_is_one_line():
    from rwe.stats.summaries import summarize

    ev = _ev(_frame())
    with pytest.raises(DriftError, match="the summary has no 'month' attribute"):
        assess_drift(summarize(ev, attributes=["site"]), reference=_frame(seed=1), metrics=())


def test_exact_mode_needs_rows():
    from rwe.drift import summarize_reference

    ev = _ev(_frame())
    ref = summarize_reference(_frame(seed=1), roles=ROLES, features=["x", "c"])
    with pytest.raises(DriftError, match="exact=True needs rows"):
        assess_drift(ev, reference=ref, exact=True, tests=["ks"], metrics=())


def test_case_mix_smd_is_representativeness_smd():
    from rwe.representativeness import smd_from_summary

    res = assess_drift(_ev(_frame()), reference=_frame(seed=1, n=500), metrics=(), tests=["psi"])
    cm = res.case_mix[res.case_mix["status"] == "ok"]
    for r in cm.sample(40, random_state=0).itertuples(index=False):
        if r.category == "mean":
            continue
        assert r.smd == pytest.approx(smd_from_summary(r.value, r.reference_value, binary=True),
                                      rel=1e-12)
    x = cm[(cm["feature"] == "x") & (cm["group"] == "overall")].iloc[0]
    w = res.windows[0]
    rows = _frame()
    rows = rows[rows["ts"].dt.strftime("%Y-%m") == w]["x"]
    ref = _frame(seed=1, n=500)["x"]
    want = smd_from_summary(rows.mean(), ref.mean(), sd_a=rows.std(ddof=0), sd_b=ref.std(ddof=0))
    assert x["smd"] == pytest.approx(want, rel=1e-9)


def test_dynamic_recalibration_with_full_memory_is_the_cumulative_fit():
    from rwe.metrics import get_metric
    from rwe.metrics._registry import KernelContext
    from rwe.stats.summaries import summarize_arrays

    df = _frame(4000)
    res = assess_drift(_ev(df), reference=_frame(seed=1), metrics=("calibration_slope",),
                       recalibration_memory=1.0, tests=["psi"])
    rec = res.recalibration[res.recalibration["group"] == "overall"].set_index("window")
    month = df["ts"].dt.strftime("%Y-%m")
    for w in ("2024-01", "2024-03"):
        m = (month <= w).to_numpy()
        s = summarize_arrays(y_true=df["y"].to_numpy()[m], scores={"v": df["p"].to_numpy()[m]})
        v = get_metric("calibration_slope").kernel(s.segments(s.grouping(())), KernelContext())
        assert rec.loc[w, "dynamic_slope"] == pytest.approx(v.estimate[0], rel=1e-8)
        assert rec.loc[w, "dynamic_intercept"] == pytest.approx(v.extras["intercept"][0],
                                                                rel=1e-8, abs=1e-10)
    assert rec.loc["2024-01", "dynamic_slope"] == pytest.approx(rec.loc["2024-01", "slope"])
    # a memory so short that older windows weigh under 5% is each window's own fit
    short = assess_drift(_ev(df), reference=_frame(seed=1), metrics=("calibration_slope",),
                         recalibration_memory=0.01, tests=["psi"])
    r2 = short.recalibration
    assert np.allclose(r2["dynamic_slope"], r2["slope"], rtol=1e-8, equal_nan=True)
