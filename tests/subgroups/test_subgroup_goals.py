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
    assert row["status"] == "fail" and row["bound_side"] == "lower"


def test_bound_above_goal_is_met_and_scopes():
    ev = _fixed_ev()
    goals = [{"metric": "sensitivity", "goal": 0.70, "scope": "all"},
             {"metric": "specificity", "goal": 0.95, "scope": "subgroups"}]
    res = subgroup_performance(ev, metrics=("sensitivity", "specificity"), by=("sex",),
                               fairness=False, goals=goals, min_n=10)
    g = res.goals
    sens = g[g["metric"] == "sensitivity"]
    assert list(sens["group"]) == ["overall", "sex", "sex"]
    assert sens.iloc[0]["status"] == "pass"
    assert sens.iloc[0]["bound"] == pytest.approx(0.742783, abs=1e-6)
    spec = g[g["metric"] == "specificity"]
    assert set(spec["group"]) == {"sex"}
    v = res.verdicts[0]
    assert v.criterion == ("sensitivity: lower 95% confidence bound > 0.7, overall and in "
                           "every subgroup")
    # headline counts equal the table
    assert v.counts == {s: int((sens["status"] == s).sum())
                        for s in ("pass", "fail", "not_evaluable")}
    assert v.status == ("pass" if (sens["status"] == "pass").all() else v.status)


def test_lower_is_better_metric_uses_upper_bound():
    ev = _fixed_ev()
    g = subgroup_performance(ev, metrics=("fpr",), by=("sex",), fairness=False,
                             goals=[{"metric": "fpr", "goal": 0.05}]).goals.iloc[0]
    # FPR 1/169, Wilson upper bound 0.0328 < 0.05
    assert g["bound_side"] == "upper" and g["status"] == "pass"
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
    assert tiny["status"] == "not_evaluable" and "min_n" in tiny["reason"]
    assert (g[g["level"] != "Tiny"]["status"] == "pass").all()


def test_goal_on_uncomputed_metric_raises():
    ev = _fixed_ev()
    with pytest.raises(InvalidParameterError, match="goal metric 'auroc'"):
        subgroup_performance(ev, metrics=("sensitivity",), by=("sex",), fairness=False,
                             goals=[{"metric": "auroc", "goal": 0.8}])


def test_verdict_ids_are_stable_under_reordering_and_change_with_content():
    ev = _fixed_ev()
    a = {"metric": "sensitivity", "goal": 0.70, "scope": "all"}
    b = {"metric": "specificity", "goal": 0.95, "scope": "subgroups"}
    kw = dict(metrics=("sensitivity", "specificity"), by=("sex",), fairness=False, min_n=10)
    v1 = subgroup_performance(ev, goals=[a, b], **kw).verdicts
    v2 = subgroup_performance(ev, goals=[b, a], **kw).verdicts
    assert {v.id for v in v1} == {v.id for v in v2}
    v3 = subgroup_performance(ev, goals=[{**a, "goal": 0.71}], **kw).verdicts
    assert v3[0].id != v1[0].id and v3[0].id.startswith("subgroups.goal.sensitivity-")


def test_goal_for_another_version_is_not_evaluated():
    df = pd.DataFrame({"y": np.r_[np.ones(60), np.zeros(140)].astype(int),
                       "s1": np.r_[np.full(60, .9), np.full(140, .1)],
                       "s2": np.r_[np.full(60, .2), np.full(140, .1)],
                       "sex": np.tile(["F", "M"], 100)})
    from rwe.data import ColumnRoles, EvaluationSet

    ev = EvaluationSet.from_frame(df, ColumnRoles(scores={"v1": "s1", "v2": "s2"}, label="y",
                                                  attributes=("sex",)))
    res = subgroup_performance(ev, metrics=("sensitivity",), by=("sex",), fairness=False,
                               version="v1", threshold=0.5,
                               goals=[{"metric": "sensitivity", "goal": 0.8, "version": "v2"}])
    v = res.verdicts[0]
    assert v.status == "not_evaluated" and "'v2'" in v.reason and "'v1'" in v.reason


def test_unreachable_goal_is_not_evaluable_not_fail():
    """7/7 has a Wilson lower bound of 0.646: a goal of 0.75 cannot be met at this n."""
    df = pd.DataFrame({"y": np.r_[np.ones(7), np.zeros(60), np.ones(200), np.zeros(300)],
                       "score": np.r_[np.full(7, .9), np.full(60, .1), np.full(200, .9),
                                      np.full(300, .1)],
                       "sex": np.r_[np.full(67, "F"), np.full(500, "M")]})
    ev = make_ev(df, attributes=("sex",))
    res = subgroup_performance(ev, metrics=("sensitivity",), by=("sex",), fairness=False,
                               min_events=5, goals=[{"metric": "sensitivity", "goal": 0.75,
                                                     "scope": "subgroups"}])
    f = res.goals.set_index("level")
    assert f.loc["F", "status"] == "not_evaluable" and "unreachable" in f.loc["F", "reason"]
    assert f.loc["M", "status"] == "pass"
    assert res.verdicts[0].status == "not_evaluable"


def test_an_attribute_without_values_never_lets_a_goal_pass():
    df = synthetic_frame(2000, seed=4)
    df["race"] = None  # every value missing
    ev = make_ev(df)
    res = subgroup_performance(ev, metrics=("sensitivity",), by=("sex", "race"), fairness=False,
                               goals=[{"metric": "sensitivity", "goal": 0.1, "scope": "all"}])
    row = res.table[res.table["group"] == "race"].iloc[0]
    assert row["level"] == "(no data)" and row["status"] == "degenerate"
    assert "no row has a value of race" in row["reason"]
    v = res.verdicts[0]
    assert v.status == "not_evaluable" and v.counts["not_evaluable"] == 1


def test_from_protocol_judges_a_goal_on_the_version_it_names(tmp_path):
    """A goal tagged with the candidate version is judged on the candidate's scores (issue:
    a goal tagged v2 was judged on v1's scores and reported met)."""
    from pathlib import Path

    import yaml

    from rwe.protocol import load_protocol
    from rwe.subgroups import subgroup_performance_from_protocol

    d = yaml.safe_load(Path("protocols/demo.yaml").read_text())
    d["data"]["path"] = str((__import__("pathlib").Path("protocols") / d["data"]["path"])
                            .resolve())
    d["data"]["reference_rows"] = None
    d["performance"]["goals"] = [
        {"metric": "auroc", "goal": 0.8, "scope": "overall", "version": "1.0"},
        {"metric": "auroc", "goal": 0.8, "scope": "overall", "version": "1.1"}]
    d["subgroups"] = {"attributes": ["sex"], "intersections": []}
    d["population"] = {}
    for k in ("drift", "change_control"):
        d.pop(k, None)
    p = tmp_path / "p.yaml"
    p.write_text(yaml.safe_dump(d))
    proto = load_protocol(p)
    res = subgroup_performance_from_protocol(proto, fairness=False)
    g = res.goals.set_index("version")
    assert set(g.index) == {"1.0", "1.1"}
    ev = proto.load_data()
    from sklearn.metrics import roc_auc_score

    for v, col in (("1.0", "score_v1_0"), ("1.1", "score_v1_1")):
        assert g.loc[v, "estimate"] == pytest.approx(roc_auc_score(ev.y_true, ev.frame[col]),
                                                     rel=1e-12)
    assert [v.status for v in res.verdicts] == ["pass", "pass"]
    assert len({v.id for v in res.verdicts}) == 2
