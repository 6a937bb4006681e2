"""compare_models: the numbers are the rwe.stats primitives on the right rows; the decision
rule (cells, intersection-union, gate-keeping, verdict) and the result object."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from cc_helpers import evset, frame, roles
from numpy.testing import assert_allclose

from rwe.change_control import (
    APPROVE,
    INCONCLUSIVE,
    MSG_NEEDS_ROWS,
    REJECT,
    ComparisonResult,
    compare_models,
    test_set_sha256,
)
from rwe.data import EvaluationSet
from rwe.exceptions import DataValidationError, InvalidParameterError
from rwe.stats import (
    delong_test,
    fit_logistic,
    paired_difference_ci,
    paired_difference_pvalue,
    proportion_ci,
)


@pytest.fixture(scope="module")
def ev():
    return evset(4000, seed=1, versions={"1.0": 1.0, "1.1": 0.9, "0.9": 1.3})


def _row(res, criterion, group="overall", level="all", comparator="1.0"):
    t = res.table
    sel = (t["criterion"] == criterion) & (t["group"] == group) & (t["level"] == level)
    if comparator is not None:
        sel &= t["comparator"] == comparator
    return t[sel].iloc[0]


def test_auroc_and_proportions_are_the_paired_primitives(ev):
    res = compare_models(ev, candidate="1.1", current="1.0", by=["sex"], threshold=0.5,
                         margins={"auroc": 0.05, "sensitivity": 0.05, "specificity": 0.05},
                         alpha=0.025, cluster="none")
    y = ev.y_true
    sc, sr = ev.score("1.1"), ev.score("1.0")
    # AUROC: paired DeLong difference and SE, interval at 95 %
    t = delong_test(y, sc, sr)
    r = _row(res, "auroc")
    assert_allclose([r.estimate, r.se, r.candidate_value, r.comparator_value],
                    [t.difference, t.se, t.auc_a, t.auc_b], rtol=1e-12)
    assert_allclose([r.ci_low, r.ci_high], [t.ci.low, t.ci.high], rtol=1e-12)
    assert r.ci_level == pytest.approx(0.95) and r.ci_method == "delong-paired"
    assert r.difference_pvalue == pytest.approx(t.pvalue, rel=1e-12)
    # sensitivity: Tango's interval on the cases' paired calls
    pc, pr = sc[y] >= 0.5, sr[y] >= 0.5
    a, b, c, d = (int((pc & pr).sum()), int((pc & ~pr).sum()), int((~pc & pr).sum()),
                  int((~pc & ~pr).sum()))
    ci = paired_difference_ci(a, b, c, d)
    r = _row(res, "sensitivity")
    assert_allclose([r.ci_low, r.ci_high], [ci.low, ci.high], rtol=1e-12)
    assert_allclose(r.estimate, (b - c) / (a + b + c + d), rtol=1e-12)
    assert_allclose(r.pvalue, paired_difference_pvalue(a, b, c, d, null=-0.05), rtol=1e-12)
    assert r.ci_method == "tango" and r.quantity.startswith("sensitivity difference")
    # and McNemar's mid-P test of no difference on the same discordant pairs
    from rwe.stats import mcnemar_from_counts

    assert (r.discordant_candidate, r.discordant_comparator) == (b, c)
    assert r.difference_test == "mcnemar-mid-p"
    assert r.difference_pvalue == mcnemar_from_counts(b, c, method="mid-p").pvalue
    # specificity on the controls, in the subgroup F
    f = ev.frame["sex"].to_numpy() == "F"
    nc, nr = sc[~y & f] < 0.5, sr[~y & f] < 0.5
    ci = paired_difference_ci(int((nc & nr).sum()), int((nc & ~nr).sum()),
                              int((~nc & nr).sum()), int((~nc & ~nr).sum()))
    r = _row(res, "specificity", "sex", "F")
    assert_allclose([r.ci_low, r.ci_high], [ci.low, ci.high], rtol=1e-12)
    assert r.n == int(f.sum()) and r.events == int((y & f).sum())


def test_newcombe_and_cluster_methods_are_used_when_asked(ev):
    res = compare_models(ev, candidate="1.1", current="1.0", threshold=0.5,
                         margins={"sensitivity": 0.05}, paired_interval="newcombe",
                         cluster="none")
    assert _row(res, "sensitivity").ci_method == "newcombe"
    clustered = evset(3000, seed=2, patients=True)
    assert clustered.has_repeated_patients
    res = compare_models(clustered, candidate="1.1", current="1.0", threshold=0.5,
                         margins={"sensitivity": 0.05, "auroc": 0.05})
    assert _row(res, "sensitivity").ci_method == "clustered-wald"
    r = _row(res, "auroc")
    t = delong_test(clustered.y_true, clustered.score("1.1"), clustered.score("1.0"),
                    clusters=clustered.clusters)
    assert r.ci_method == "delong-paired-clustered" and r.se == pytest.approx(t.se, rel=1e-12)
    assert res.provenance["clustered"] and res.settings["clustered"]
    res = compare_models(clustered, candidate="1.1", current="1.0", threshold=0.5,
                         margins={"calibration_slope": 0.1}, n_boot=200)
    assert _row(res, "calibration_slope").ci_method == "paired-cluster-bootstrap-se"


def test_goal_is_judged_on_the_candidate_alone(ev):
    res = compare_models(ev, candidate="1.1", current="1.0", threshold=0.5,
                         criteria=[{"name": "sens_goal", "metric": "sensitivity",
                                    "test": "goal", "goal": 0.6, "scope": "overall"}],
                         cluster="none", alpha=0.05)
    y, s = ev.y_true, ev.score("1.1")
    x, n = int((s[y] >= 0.5).sum()), int(y.sum())
    ci = proportion_ci(x, n, confidence_level=0.9)
    r = _row(res, "sens_goal", comparator=None)
    assert_allclose([r.estimate, r.ci_low, r.ci_high], [x / n, ci.low, ci.high], rtol=1e-12)
    assert pd.isna(r.comparator) and r.threshold_value == 0.6
    assert r.status == ("pass" if ci.low > 0.6 else "fail")
    # the p value is Wilson's score test: below alpha exactly when the bound is above the goal
    assert (r.pvalue < 0.05) == (ci.low > 0.6)


def test_calibration_slope_point_from_rows_se_from_the_paired_bootstrap():
    ev = evset(2500, seed=3, versions={"1.0": 1.0, "1.1": 1.0})
    res = compare_models(ev, candidate="1.1", current="1.0", threshold=0.5,
                         margins={"calibration_slope": 0.1}, n_boot=400, random_state=5,
                         cluster="none")
    r = _row(res, "calibration_slope")
    y = ev.y_true.astype(float)

    def slope(s, w=None):
        q = np.clip(s, 1e-12, 1 - 1e-12)
        x = np.log(q) - np.log1p(-q)
        w = np.ones_like(x) if w is None else w
        return fit_logistic(x, y * w, w).b[0]

    bc, br = slope(ev.score("1.1")), slope(ev.score("1.0"))
    assert_allclose([r.candidate_value, r.comparator_value], [bc, br], rtol=1e-9)
    assert_allclose(r.estimate, abs(br - 1) - abs(bc - 1), rtol=1e-9)
    # an exact row-level paired bootstrap (Poisson weights per row) gives the same SE within
    # Monte Carlo error (400 replicates: the SD of an SD estimate is about 3.5 %)
    rng = np.random.default_rng(9)
    reps = []
    for _ in range(400):
        w = rng.poisson(1.0, y.size).astype(float)
        reps.append(abs(slope(ev.score("1.0"), w) - 1) - abs(slope(ev.score("1.1"), w) - 1))
    assert r.se == pytest.approx(np.std(reps, ddof=1), rel=0.15)
    assert r.ci_method == "paired-bootstrap-se"
    z = (r.ci_high - r.estimate) / r.se
    assert z == pytest.approx(1.959963984540054, rel=1e-9)
    # calibration-in-the-large: the offset model's intercept, distance to 0
    res = compare_models(ev, candidate="1.1", current="1.0", threshold=0.5,
                         margins={"calibration_intercept": 0.1}, n_boot=200, cluster="none")
    r = _row(res, "calibration_intercept")

    def citl(s):
        q = np.clip(s, 1e-12, 1 - 1e-12)
        return fit_logistic(np.log(q) - np.log1p(-q), y, np.ones_like(y), model="offset").a[0]

    ac, ar = citl(ev.score("1.1")), citl(ev.score("1.0"))
    assert_allclose([r.candidate_value, r.estimate], [ac, abs(ar) - abs(ac)], rtol=1e-9)
    assert np.isfinite(r.se) and r.se > 0


def test_verdicts_approve_reject_inconclusive():
    good = evset(4000, seed=4, versions={"1.0": 1.0, "1.1": 0.7})
    res = compare_models(good, candidate="1.1", current="1.0", threshold=0.5,
                         margins={"auroc": 0.03}, cluster="none")
    assert res.verdict == APPROVE and res.exit_code == 0 and res.approved
    assert res.decision.status == "pass" and res.online["approved"]
    assert res.online["pvalue"] <= res.level
    bad = evset(4000, seed=4, versions={"1.0": 0.7, "1.1": 2.5})
    res = compare_models(bad, candidate="1.1", current="1.0", threshold=0.5,
                         margins={"auroc": 0.03}, cluster="none")
    assert res.verdict == REJECT and res.exit_code == 3 and res.decision.status == "fail"
    assert res.online["pvalue"] > res.level
    # every subgroup cell below min_n: nothing to judge
    res = compare_models(good, candidate="1.1", current="1.0", threshold=0.5, by=["site"],
                         criteria=[{"metric": "auroc", "margin": 0.03, "scope": "subgroups",
                                    "min_n": 100_000}], cluster="none")
    assert res.verdict == INCONCLUSIVE and res.exit_code == 4
    assert res.criteria["status"].iloc[0] == "not_evaluable"
    assert (res.table["status"] == "not_evaluated").all()
    assert res.table["reason"].str.startswith("outside the criterion: n = ").all()
    assert res.online["pvalue"] == 1.0


def test_small_cells_are_outside_the_criterion_not_failed(ev):
    res = compare_models(ev, candidate="1.1", current="1.0", threshold=0.5, by=["site"],
                         margins={"auroc": 0.05}, min_n=30, min_events=100, cluster="none")
    c = _row(res, "auroc", "site", "C")
    n_pos = int(ev.y_true[ev.frame["site"].to_numpy() == "C"].sum())
    assert n_pos < 100
    assert c.status == "not_evaluated"
    assert c.reason == f"outside the criterion: min(cases, controls) = {n_pos} < min_events = 100"
    assert np.isnan(c.estimate)
    assert res.criteria["cells_outside"].iloc[0] == 1
    assert any(f.code == "change_control.cells_outside" for f in res.findings)


def test_intersection_union_a_gain_must_not_cost_specificity():
    """Co-primary sensitivity and specificity: a candidate that calls more cases positive
    gains sensitivity but loses specificity beyond the margin: the step fails."""
    df = frame(4000, seed=6, versions={"1.0": 0.8})
    df["s_1.1"] = np.clip(df["s_1.0"] * 1.6, 0, 1)  # same ranking, lower operating point
    ev = EvaluationSet.from_frame(df, roles(["1.0", "1.1"]))
    res = compare_models(ev, candidate="1.1", current="1.0", threshold=0.5,
                         margins={"sensitivity": 0.02, "specificity": 0.02},
                         order=[["sensitivity", "specificity"]], cluster="none")
    sens, spec = _row(res, "sensitivity"), _row(res, "specificity")
    assert sens.estimate > 0.05 and sens.status == "pass"
    assert spec.estimate < -0.05 and spec.status == "fail"
    assert res.verdict == REJECT
    assert list(res.criteria["step"]) == [1, 1]


def test_gate_keeping_stops_after_a_failing_step():
    ev = evset(3000, seed=7, versions={"1.0": 0.8, "1.1": 2.0})
    res = compare_models(ev, candidate="1.1", current="1.0", threshold=0.5,
                         margins={"auroc": 0.01, "specificity": 0.5},
                         order=["auroc", "specificity"], cluster="none")
    crit = res.criteria.set_index("criterion")
    assert crit.loc["auroc", "status"] == "fail"
    assert crit.loc["specificity", "status"] == "not_evaluated"
    spec = _row(res, "specificity")
    # estimates are still shown, but the cell is not judged
    assert np.isfinite(spec.estimate) and spec.status == "not_evaluated"
    assert spec.reason.startswith("gate closed: step 1 did not pass")
    assert res.verdict == REJECT
    # without an order every criterion is one co-primary step: both judged
    res2 = compare_models(ev, candidate="1.1", current="1.0", threshold=0.5,
                          margins={"auroc": 0.01, "specificity": 0.5}, cluster="none")
    assert set(res2.criteria["status"]) == {"fail", "pass"}


def test_bio_creep_guard_compares_with_every_approved_version():
    ev = evset(4000, seed=1, versions={"0.9": 1.3, "0.95": 1.1, "1.0": 1.0, "1.1": 0.9})
    res = compare_models(ev, candidate="1.1", current="1.0", original="0.9",
                         approved=["0.95"], threshold=0.5, margins={"auroc": 0.05},
                         criteria=[{"metric": "sensitivity", "test": "superiority",
                                    "required": False}], cluster="none")
    comps = {c["version"]: c["roles"] for c in res.comparators}
    assert comps == {"1.0": ["current"], "0.9": ["original"], "0.95": ["approved"]}
    auroc = res.table[res.table["criterion"] == "auroc"]
    assert sorted(auroc["comparator"]) == ["0.9", "0.95", "1.0"]
    assert res.criteria.set_index("criterion").loc["auroc", "status"] == "pass"
    sup = res.table[res.table["criterion"] == "sensitivity_superiority"]
    assert list(sup["comparator"]) == ["1.0"]  # superiority: against the current version
    assert res.cumulative["role"].tolist()[:1] == ["original"]
    assert res.cumulative["version"].tolist()[:4] == ["0.9", "0.95", "1.0", "1.1"]
    assert res.cumulative["role"].tolist()[:4] == ["original", "approved", "current",
                                                    "candidate"]
    cum = res.cumulative[(res.cumulative["version"] == "1.1")].iloc[0]
    vs_orig = _row(res, "auroc", comparator="0.9")
    assert cum.improvement_vs_original == pytest.approx(vs_orig.estimate, rel=1e-12)


def test_multiplicity_bonferroni_and_holm(ev):
    common = dict(candidate="1.1", current="1.0", threshold=0.5, by=["sex", "site"],
                  margins={"auroc": 0.05}, cluster="none", min_events=5)
    none = compare_models(ev, **common)
    bonf = compare_models(ev, **common, multiplicity="bonferroni")
    holm = compare_models(ev, **common, multiplicity="holm")
    inside = (none.table["status"] != "not_evaluated").to_numpy()
    k = int(inside.sum())
    assert k == 6  # overall, F, M, A, B, C
    assert bonf.table["ci_level"].iloc[0] == pytest.approx(1 - 2 * 0.025 / k)
    w_none = (none.table["ci_high"] - none.table["ci_low"]).to_numpy()
    w_bonf = (bonf.table["ci_high"] - bonf.table["ci_low"]).to_numpy()
    assert (w_bonf > w_none).all()
    from rwe.stats import adjust_pvalues

    assert_allclose(holm.table["pvalue_adjusted"], adjust_pvalues(none.table["pvalue"]),
                    rtol=1e-12)
    assert ((holm.table["status"] == "pass") == (holm.table["pvalue_adjusted"] < 0.025)).all()


def test_result_round_trip_html_report_and_plots(ev, tmp_path):
    res = compare_models(ev, candidate="1.1", current="1.0", original="0.9", threshold=0.5,
                         by=["sex"], margins={"auroc": 0.05, "sensitivity": 0.05},
                         cluster="none")
    d = res.to_dict()
    text = json.dumps(d, allow_nan=False)
    back = ComparisonResult.from_dict(json.loads(text))
    assert back.to_dict() == d
    assert back.verdict == res.verdict and back.decision == res.decision
    pd.testing.assert_frame_equal(back.table, res.table, check_dtype=False)
    html = res._repr_html_()
    assert res.verdict in html and res.banner() in html
    report = res.report()
    lines = report.splitlines()
    assert res.banner() in lines[1] and lines[-1].startswith(f"VERDICT: {res.verdict}")
    assert "NOT RECORDED" in report
    for f in res.findings:
        assert "{" not in f.text()
    ax = res.plot_criteria("auroc")
    assert ax.get_title(loc="left").startswith("auroc:")
    res.plot_cumulative("auroc").figure.savefig(tmp_path / "cum.png")
    res.plot_roc().figure.savefig(tmp_path / "roc.png")
    with pytest.raises(InvalidParameterError, match=r"no ROC curve for sex=F; curves: "
                                                    r"overall=all"):
        res.plot_roc("sex", "F")
    assert (tmp_path / "cum.png").stat().st_size > 1000
    with pytest.raises(InvalidParameterError, match=r"criterion='x' is not in this result"):
        res.plot_criteria("x")
    import matplotlib.pyplot as plt

    plt.close("all")


def test_a_rejection_never_reads_like_an_approval():
    ok = evset(3000, seed=4, versions={"1.0": 1.0, "1.1": 0.7})
    bad = evset(3000, seed=4, versions={"1.0": 0.7, "1.1": 2.5})
    kw = dict(candidate="1.1", current="1.0", threshold=0.5, margins={"auroc": 0.03},
              cluster="none")
    approve, reject = compare_models(ok, **kw).report(), compare_models(bad, **kw).report()
    for word in ("REJECT", "INCONCLUSIVE", "NOT approved", "do not deploy"):
        assert word not in approve
    assert "APPROVE" not in reject and "APPROVED:" not in reject
    assert reject.count("NOT approved") == 2  # first banner and last line
    assert reject.splitlines()[0].startswith("#") and approve.splitlines()[0].startswith("=")
    assert "do not deploy" in reject and "do not deploy" not in approve
    assert reject.splitlines()[-1].startswith("VERDICT: REJECT (exit 3)")


# ----------------------------------------------------------------------------- bad input
def test_candidate_absent(ev):
    with pytest.raises(InvalidParameterError,
                       match=r"^candidate version '1.2' has no scores on the test set: "
                             r"versions with scores are '1.0', '1.1', '0.9'$"):
        compare_models(ev, candidate="1.2", current="1.0", threshold=0.5,
                       margins={"auroc": 0.05})
    with pytest.raises(InvalidParameterError, match=r"^current and original version '2.0' has "
                                                    r"no scores on the test set"):
        compare_models(ev, candidate="1.1", current="2.0", threshold=0.5,
                       margins={"auroc": 0.05})


def test_scores_on_different_case_sets(ev):
    ids = ev.frame["case"].astype(str)
    partial = pd.Series(ev.score("1.1")[:-3], index=ids[:-3])
    with pytest.raises(InvalidParameterError,
                       match=r"^scores of version '2.0' are not on the test set's cases: 3 of "
                             r"the 4,000 test-set cases have no score \(e.g. C003997, C003998, "
                             r"C003999\); the two versions must be scored on the same cases$"):
        compare_models(ev, candidate="2.0", current="1.0", threshold=0.5,
                       margins={"auroc": 0.05}, scores={"2.0": partial})
    extra = pd.concat([pd.Series(ev.score("1.1"), index=ids), pd.Series([0.5], index=["X1"])])
    with pytest.raises(InvalidParameterError, match=r"1 scored case\(s\) are not in the test "
                                                    r"set \(e.g. X1\)"):
        compare_models(ev, candidate="2.0", current="1.0", threshold=0.5,
                       margins={"auroc": 0.05}, scores={"2.0": extra.iloc[1:]})
    with pytest.raises(InvalidParameterError, match=r"have 10 values for 4,000 test-set cases"):
        compare_models(ev, candidate="2.0", current="1.0", threshold=0.5,
                       margins={"auroc": 0.05}, scores={"2.0": np.full(10, 0.5)})
    # joined by id whatever the order
    shuffled = pd.Series(ev.score("1.1"), index=ids).sample(frac=1, random_state=1)
    a = compare_models(ev, candidate="2.0", current="1.0", threshold=0.5,
                       margins={"auroc": 0.05}, scores={"2.0": shuffled}, cluster="none")
    b = compare_models(ev, candidate="1.1", current="1.0", threshold=0.5,
                       margins={"auroc": 0.05}, cluster="none")
    assert a.table["estimate"].iloc[0] == b.table["estimate"].iloc[0]
    assert a.provenance["scores"]["2.0"] == b.provenance["scores"]["1.1"]


def test_test_set_hash_mismatch(ev):
    good = test_set_sha256(ev)
    compare_models(ev, candidate="1.1", current="1.0", threshold=0.5, margins={"auroc": 0.05},
                   test_set_sha256=good)
    other = evset(4000, seed=2)
    with pytest.raises(DataValidationError, match=r"the test set has content sha256 [0-9a-f]{64} "
                       r"\(4,000 cases in <DataFrame>\), not the [0-9a-f]{64} the plan fixed"):
        compare_models(other, candidate="1.1", current="1.0", threshold=0.5,
                       margins={"auroc": 0.05}, test_set_sha256=good)


def test_hash_is_content_not_row_order(ev):
    df = ev.frame.sample(frac=1, random_state=3)
    ev2 = EvaluationSet.from_frame(df, ev.roles)
    assert test_set_sha256(ev2) == test_set_sha256(ev)
    df = ev.frame.copy()
    df.loc[df.index[5], "y"] = not df.loc[df.index[5], "y"]
    assert test_set_sha256(EvaluationSet.from_frame(df, ev.roles)) != test_set_sha256(ev)


def test_summary_and_settings_are_refused(ev):
    from rwe.stats.summaries import summarize

    with pytest.raises(InvalidParameterError, match="^" + MSG_NEEDS_ROWS.replace("(", r"\(")
                       .replace(")", r"\)") + "$"):
        compare_models(summarize(ev, attributes=["sex"]), candidate="1.1", current="1.0",
                       threshold=0.5, margins={"auroc": 0.05})
    with pytest.raises(InvalidParameterError, match=r"change control compares auroc, "
                       r"sensitivity, specificity, calibration_slope, calibration_intercept; "
                       r"got metric 'ppv'"):
        compare_models(ev, candidate="1.1", current="1.0", threshold=0.5, margins={"ppv": 0.1})
    with pytest.raises(InvalidParameterError, match=r"criteria\[0\]: a noninferiority criterion "
                                                    r"needs a margin"):
        compare_models(ev, candidate="1.1", current="1.0", threshold=0.5,
                       criteria=[{"metric": "auroc"}])
    with pytest.raises(InvalidParameterError, match=r"candidate '1.0' is the current"):
        compare_models(ev, candidate="1.0", current="1.0", threshold=0.5,
                       margins={"auroc": 0.05})
    with pytest.raises(InvalidParameterError, match=r"order must name criteria"):
        compare_models(ev, candidate="1.1", current="1.0", threshold=0.5,
                       margins={"auroc": 0.05}, order=["auroc", "sensitivity"])
