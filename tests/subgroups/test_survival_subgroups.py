"""Survival outcomes by subgroup (issue: intervals and verdicts, part 8): with time + event
roles, subgroup_performance gives Harrell's and Uno's C, time-dependent AUC, IPCW Brier and
Kaplan-Meier survival at the horizon, each with an interval, per subgroup and intersection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from rwe.data import ColumnRoles, EvaluationSet
from rwe.metrics import compute_metric
from rwe.subgroups import subgroup_performance

METRICS = ("harrell_c", "uno_c", "time_dependent_auc", "brier_ipcw", "km_survival")


@pytest.fixture(scope="module")
def whas():
    sk = pytest.importorskip("sksurv.datasets")
    X, y = sk.load_whas500()
    age_band = np.where(X["age"].to_numpy() < 70, "<70", "70+")
    risk = 1 / (1 + np.exp(-(X["age"].to_numpy() - 70) / 10))  # a crude risk score in (0, 1)
    df = pd.DataFrame({"time": y["lenfol"].astype(float), "event": y["fstat"].astype(int),
                       "risk": risk, "sex": X["gender"].astype(str).to_numpy(),
                       "age_band": age_band})
    ev = EvaluationSet.from_frame(df, ColumnRoles(scores={"v1": "risk"}, time="time",
                                                  event="event",
                                                  attributes=("sex", "age_band")))
    return df, ev


def test_survival_metrics_by_subgroup_equal_the_metric_per_level(whas):
    df, ev = whas
    res = subgroup_performance(ev, metrics=METRICS, by=("sex", ("sex", "age_band")),
                               horizon=730.0, n_boot=60, random_state=1, fairness=False,
                               min_n=10, min_events=3)
    t = res.table
    assert set(t["metric"]) == set(METRICS)
    assert set(t["group"]) == {"overall", "sex", "sex x age_band"}
    for r in t[t["group"] != "overall"].itertuples():
        parts = dict(zip(r.group.split(" x "), r.level.split(" & "), strict=True))
        m = np.ones(len(df), bool)
        for a, v in parts.items():
            m &= (df[a] == v).to_numpy()
        want = compute_metric(r.metric, None, df["risk"][m], time=df["time"][m],
                              event=df["event"][m], horizon=730.0, n_boot=60)
        assert r.n == m.sum() and r.events == int(df["event"][m].sum())
        assert_allclose(r.estimate, want.estimate, rtol=1e-12)
        if want.ci is not None:  # every level has an interval (bootstrap seeds differ)
            assert np.isfinite(r.ci_low) and r.ci_low <= r.ci_high
    km = t[(t["metric"] == "km_survival") & (t["group"] == "overall")].iloc[0]
    from lifelines import KaplanMeierFitter

    kmf = KaplanMeierFitter().fit(df["time"], df["event"])
    assert_allclose(km.estimate, kmf.predict(730.0), rtol=1e-12)
    assert km.ci_method == "exponential-greenwood"


def test_survival_metrics_from_a_summary_are_refused(whas):
    from rwe.exceptions import InvalidParameterError
    from rwe.stats.summaries import summarize_arrays

    s = summarize_arrays(y_true=[0, 1, 1], scores={"v": [0.1, 0.5, 0.9]},
                         attributes={"sex": ["F", "M", "F"]})
    with pytest.raises(InvalidParameterError, match="needs individual rows"):
        subgroup_performance(s, metrics=("harrell_c",), by=("sex",))
