"""Acceptance against pre-specified goals is judged on the confidence bound (SUB-3)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _subgroups_helpers import make_ev, synthetic_frame

from rwe.exceptions import InvalidParameterError
from rwe.subgroups import subgroup_performance


def _fixed_ev():
    # overall sensitivity 44/51 = 0.863, Wilson 95% (0.7428, 0.9319); specificity 168/169
    y = np.r_[np.ones(51), np.zeros(169)].astype(int)
    score = np.r_[np.full(44, .9), np.full(7, .1), np.full(1, .9), np.full(168, .1)]
    sex = np.r_[np.tile(["F", "M"], 25), ["F"], np.tile(["F", "M"], 84), ["M"]]
    return make_ev(pd.DataFrame({"y": y, "score": score, "sex": sex}), attributes=("sex",))


def test_point_estimate_passes_but_bound_fails_is_not_met():
    ev = _fixed_ev()
    g = subgroup_performance(ev, metrics=("sensitivity",), by=("sex",), fairness=False,
                             goals=[{"metric": "sensitivity", "goal": 0.80}]).goals
    assert len(g) == 1
    row = g.iloc[0]
    assert row["estimate"] > 0.80 and row["bound"] < 0.80  # 0.863 vs lower bound 0.743
    assert row["met"] is False or row["met"] == False  # noqa: E712
    assert row["verdict"].startswith("not met") and row["bound_side"] == "lower"


def test_bound_above_goal_is_met_and_scopes():
    ev = _fixed_ev()
    goals = [{"metric": "sensitivity", "goal": 0.70, "scope": "all"},
             {"metric": "specificity", "goal": 0.95, "scope": "subgroups"}]
    g = subgroup_performance(ev, metrics=("sensitivity", "specificity"), by=("sex",),
                             fairness=False, goals=goals, min_n=10).goals
    sens = g[g["metric"] == "sensitivity"]
    assert list(sens["group"]) == ["overall", "sex", "sex"]
    assert bool(sens.iloc[0]["met"]) is True
    assert sens.iloc[0]["verdict"].startswith("met: lower 95% bound 0.7428")
    spec = g[g["metric"] == "specificity"]
    assert set(spec["group"]) == {"sex"}


def test_lower_is_better_metric_uses_upper_bound():
    ev = _fixed_ev()
    g = subgroup_performance(ev, metrics=("fpr",), by=("sex",), fairness=False,
                             goals=[{"metric": "fpr", "goal": 0.05}]).goals.iloc[0]
    # FPR 1/169, Wilson upper bound 0.0328 < 0.05
    assert g["bound_side"] == "upper" and bool(g["met"]) is True
    assert g["bound"] == pytest.approx(1 - 0.967249, abs=1e-6)


def test_insufficient_cells_are_not_evidence():
    df = synthetic_frame(2000, seed=3)
    df.loc[:19, "race"] = "Tiny"
    df.loc[:19, "y"] = 1
    df.loc[:19, "score"] = 0.99  # sensitivity 1.0 in a 20-row cell: still not evidence
    ev = make_ev(df)
    g = subgroup_performance(ev, metrics=("sensitivity",), by=("race",), fairness=False,
                             goals=[{"metric": "sensitivity", "goal": 0.3,
                                     "scope": "subgroups"}]).goals
    tiny = g[g["level"] == "Tiny"].iloc[0]
    assert tiny["verdict"] == "insufficient data" and tiny["met"] is None
    assert (g[g["level"] != "Tiny"]["verdict"].str.startswith("met")).all()


def test_goal_on_uncomputed_metric_raises():
    ev = _fixed_ev()
    with pytest.raises(InvalidParameterError, match="goal metric 'auroc'"):
        subgroup_performance(ev, metrics=("sensitivity",), by=("sex",), fairness=False,
                             goals=[{"metric": "auroc", "goal": 0.8}])
