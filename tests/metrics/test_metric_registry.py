"""Registry API, result shape, and registry-driven invariance / degenerate-input properties."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

import rwe.metrics as rm
from rwe._results import Interval
from rwe.exceptions import InvalidParameterError
from rwe.metrics import (
    MetricSpec,
    MetricValue,
    compute_metric,
    compute_metrics,
    get_metric,
    metric_names,
    register_metric,
)
from rwe.metrics import _registry as reg

BINARY_KINDS = ("threshold", "ranking", "calibration")
#: Test statistics (not estimates): they scale with sqrt(n) when every row is duplicated.
SAMPLE_SIZE_DEPENDENT = {"spiegelhalter_z"}
EXPECTED = {
    "threshold": ["accuracy", "fnr", "fpr", "lr_negative", "lr_positive", "net_benefit", "npv",
                  "ppv", "sensitivity", "specificity"],
    "ranking": ["auprc", "auroc"],
    "calibration": ["brier", "calibration_intercept", "calibration_slope", "ece", "oe_ratio",
                    "spiegelhalter_z"],
    "survival": ["brier_ipcw", "harrell_c", "km_survival", "time_dependent_auc", "uno_c"],
}


def _binary_names():
    return [n for k in BINARY_KINDS for n in metric_names(k)]


def test_metric_names_by_kind():
    for kind, names in EXPECTED.items():
        assert metric_names(kind) == names
    assert metric_names() == sorted(sum(EXPECTED.values(), []))


def test_specs_are_complete():
    for name in metric_names():
        spec = get_metric(name)
        assert spec.name == name and spec.label and spec.description and spec.reference
        assert spec.default_ci in rm.CI_METHODS
        assert spec.needs <= rm.NEEDS
        assert (spec.higher_is_better is None) == (spec.target is not None)
        impl = spec.kernel or spec.func
        if spec.confusion is None:  # proportions share one kernel; their spec has the refs
            assert impl.__doc__ and "References" in impl.__doc__
        assert (spec.kernel is None) == (spec.summary == "rows")
    assert get_metric("calibration_slope").target == 1.0
    assert get_metric("calibration_intercept").target == 0.0
    assert get_metric("oe_ratio").target == 1.0
    assert get_metric("sensitivity").higher_is_better is True
    assert get_metric("auroc").default_ci == "delong-logit-t"


def test_get_metric_unknown_message():
    with pytest.raises(InvalidParameterError) as exc:
        get_metric("sensitivty")
    assert str(exc.value) == reg.UNKNOWN_METRIC.format(
        name="sensitivty", valid=", ".join(metric_names()))


def test_metric_names_bad_kind():
    with pytest.raises(InvalidParameterError, match="kind='binary' is not valid"):
        metric_names("binary")


def _dummy(data):
    return data.value("dummy_metric", float(data.y_true.mean()))


@pytest.fixture
def clean_registry(monkeypatch):
    monkeypatch.setattr(reg, "_METRICS", dict(reg._METRICS))
    monkeypatch.setattr(reg, "_ENTRY_POINTS_LOADED", False)
    return reg


def test_register_and_duplicate(clean_registry):
    spec = MetricSpec("dummy_metric", "Dummy", "ranking", frozenset({"y_true"}), True, None,
                      "none", _dummy, "prevalence", "none")
    assert register_metric(spec) is spec
    assert compute_metric("dummy_metric", [0, 1, 1, 1]).estimate == 0.75
    with pytest.raises(InvalidParameterError) as exc:
        register_metric(spec)
    assert str(exc.value) == reg.DUPLICATE_METRIC.format(name="dummy_metric")


def test_spec_validation():
    with pytest.raises(InvalidParameterError, match="kind='binary'"):
        MetricSpec("x", "X", "binary", frozenset(), True, None, "none", _dummy)
    with pytest.raises(InvalidParameterError, match="unknown inputs"):
        MetricSpec("x", "X", "ranking", frozenset({"weights"}), True, None, "none", _dummy)
    with pytest.raises(InvalidParameterError, match="default_ci='normal'"):
        MetricSpec("x", "X", "ranking", frozenset(), True, None, "normal", _dummy)


def test_entry_points_are_loaded_lazily(clean_registry, monkeypatch):
    spec = MetricSpec("dummy_metric", "Dummy", "ranking", frozenset({"y_true"}), True, None,
                      "none", _dummy, "prevalence", "none")

    class EP:
        name = "dummy"

        def load(self):
            return spec

    seen = []

    def fake_entry_points(*, group):
        seen.append(group)
        return [EP()]

    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points)
    assert "dummy_metric" in metric_names()
    assert seen == ["rwe.metrics"]
    metric_names()
    assert seen == ["rwe.metrics"]  # loaded once


def test_broken_entry_point_warns(clean_registry, monkeypatch):
    class EP:
        name = "broken"

        def load(self):
            raise ImportError("no module named nowhere")

    import importlib.metadata

    from rwe.exceptions import RWEWarning

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda *, group: [EP()])
    with pytest.warns(RWEWarning, match="broken"):
        metric_names()


def test_metric_value_frame_and_dict():
    v = compute_metric("sensitivity", [1, 1, 0], [0.9, 0.1, 0.2], threshold=0.5)
    f = v.to_frame()
    assert list(f.columns) == ["metric", "estimate", "ci_low", "ci_high", "ci_level",
                               "ci_method", "n", "events", "reason"]
    assert f.shape == (1, 9)
    assert f.loc[0, "estimate"] == 0.5 and f.loc[0, "ci_method"] == "wilson"
    d = v.to_dict()
    assert d["ci"]["method"] == "wilson" and d["n"] == 3 and d["events"] == 2
    json.dumps(d, allow_nan=False)
    assert "sensitivity" in v.summary() and "<table" in v._repr_html_()
    u = compute_metric("sensitivity", [0, 0], [0.9, 0.1], threshold=0.5)
    fu = u.to_frame()
    assert math.isnan(fu.loc[0, "ci_low"]) and fu.loc[0, "reason"] == "no positive cases"
    assert u.to_dict()["estimate"] is None


def test_length_mismatch():
    with pytest.raises(InvalidParameterError) as exc:
        compute_metric("auroc", [0, 1, 1], [0.1, 0.2])
    assert str(exc.value) == reg.LENGTH_MISMATCH.format(name="y_score", got=2, expected=3)


# ------------------------------------------------------------------ registry-driven properties

@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    n = 300
    p = rng.beta(2, 3, size=n)
    y = (rng.uniform(size=n) < np.clip(p * 1.2, 0, 1)).astype(int)
    return y, p


def _estimates(names, y, p):
    return {v.metric: v.estimate for v in
            compute_metrics(names, y, p, threshold=0.4, n_boot=20, random_state=0)}


def test_row_permutation_invariance(data):
    y, p = data
    names = _binary_names()
    base = _estimates(names, y, p)
    perm = np.random.default_rng(1).permutation(y.size)
    shuffled = _estimates(names, y[perm], p[perm])
    for n in names:
        assert np.isfinite(base[n]), n
        np.testing.assert_allclose(shuffled[n], base[n], rtol=1e-9, err_msg=n)


def test_duplicating_rows_leaves_estimates_unchanged(data):
    y, p = data
    names = _binary_names()
    base = _estimates(names, y, p)
    dup = _estimates(names, np.r_[y, y], np.r_[p, p])
    for n in names:
        if n in SAMPLE_SIZE_DEPENDENT:
            np.testing.assert_allclose(dup[n], math.sqrt(2) * base[n], rtol=1e-9, err_msg=n)
        else:
            np.testing.assert_allclose(dup[n], base[n], rtol=1e-7, err_msg=n)


DEGENERATE = {
    "all_negative": ([0, 0, 0, 0], [0.1, 0.4, 0.6, 0.9]),
    "all_positive": ([1, 1, 1, 1], [0.1, 0.4, 0.6, 0.9]),
    "no_predicted_positives": ([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.2]),
    "n_equals_1": ([1], [0.7]),
    "empty": ([], []),
}


@pytest.mark.parametrize("case", list(DEGENERATE))
def test_degenerate_inputs_never_crash_and_are_explained(case):
    y, p = DEGENERATE[case]
    names = _binary_names()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = compute_metrics(names, y, p, threshold=0.5, n_boot=20, random_state=0)
    for v in out:
        assert isinstance(v, MetricValue)
        assert v.n == len(y)
        if not math.isfinite(v.estimate):
            assert v.reason, (case, v.metric)
        if v.ci is None:
            assert v.reason or get_metric(v.metric).default_ci == "none", (case, v.metric)
        else:
            assert isinstance(v.ci, Interval)
            assert math.isfinite(v.ci.low) and math.isfinite(v.ci.high), (case, v.metric)
        json.dumps(v.to_dict(), allow_nan=False)


def test_degenerate_reasons_are_specific():
    v = dict((m.metric, m) for m in compute_metrics(
        ["sensitivity", "specificity", "ppv", "auroc", "calibration_slope"],
        *DEGENERATE["all_negative"], threshold=0.5))
    assert v["sensitivity"].reason == "no positive cases"
    assert v["specificity"].reason is None and v["specificity"].estimate == 0.5
    assert v["auroc"].reason.startswith("one class only")
    assert v["calibration_slope"].reason.startswith("one class only")
    w = compute_metric("ppv", *DEGENERATE["no_predicted_positives"], threshold=0.5)
    assert w.reason == "no predicted positives"


def test_docstring_examples():
    import doctest

    res = doctest.testmod(reg, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert res.attempted >= 4 and res.failed == 0
