"""The result object: export, text, HTML, plots; and the protocol entry point."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from rwe._results import canonical_json
from rwe.data import ColumnRoles, EvaluationSet
from rwe.exceptions import InvalidParameterError
from rwe.representativeness import (
    RepresentativenessResult,
    representativeness,
    representativeness_from_protocol,
)

REF = {"sex": {"F": 0.5, "M": 0.5}, "race": {"A": 0.6, "B": 0.3, "C": 0.1}}


def _frame(n=800, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "scan_id": np.arange(n), "sex": rng.choice(["F", "M"], n, p=[0.65, 0.35]),
        "race": rng.choice(["A", "B", "C"], n, p=[0.85, 0.13, 0.02]),
        "age": rng.normal(60, 9, n).round(1), "y": (rng.random(n) < 0.3).astype(int),
        "score": rng.random(n), "site": rng.choice(["s1", "s2"], n)})


@pytest.fixture(scope="module")
def result():
    df = _frame()
    roles = ColumnRoles(id="scan_id", scores={"1.0": "score"}, label="y", site="site",
                        attributes=("sex", "race"))
    ev = EvaluationSet.from_frame(df, roles)
    return representativeness(ev, reference=REF, target_half_width=0.1, covariates=["age"],
                              comparison=_frame(500, 1))


def test_result_is_frozen_and_exports(result):
    assert isinstance(result, RepresentativenessResult)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.n = 3  # type: ignore[misc]
    d = result.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["reference"]["shares"]["sex"] == {"F": 0.5, "M": 0.5}
    assert d["tipton"]["b"] == pytest.approx(result.tipton.b)
    assert len(d["shares"]) == len(result.shares)
    # deterministic
    again = representativeness(_frame(),
                               reference=REF, attributes=["sex", "race"], label="y",
                               site="site", target_half_width=0.1, covariates=["age"],
                               comparison=_frame(500, 1))
    assert canonical_json(again.shares) == canonical_json(result.shares)
    assert again.tipton.b == result.tipton.b


def test_summary_and_html(result):
    text = result.summary()
    assert "Findings:" in text and "Tipton B" in text and "over-represented" in text
    html = result._repr_html_()
    assert "<table" in html and "<li>" in html


def test_plots_return_figures(result):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    for fig in (result.plot_shares(), result.plot_ppr(), result.plot_coverage(),
                result.plot_shares(["race"]), result.plot_coverage(["sex", "race"])):
        assert isinstance(fig, Figure)
        plt.close(fig)
    with pytest.raises(InvalidParameterError, match="not analysed"):
        result.plot_coverage("race x site")
    with pytest.raises(InvalidParameterError, match="not analysed"):
        result.plot_shares(["site"])


def test_parameter_validation():
    df = _frame()
    with pytest.raises(InvalidParameterError, match="confidence_level"):
        representativeness(df, reference=REF, attributes=["sex"], confidence_level=95)
    with pytest.raises(InvalidParameterError, match="min_n"):
        representativeness(df, reference=REF, attributes=["sex"], min_n=0)
    with pytest.raises(InvalidParameterError, match="covariate 'bmi'"):
        representativeness(df, reference=REF, attributes=["sex"], covariates=["bmi"])
    with pytest.raises(InvalidParameterError, match="reference must be"):
        representativeness(df, reference=3, attributes=["sex"])
    with pytest.raises(InvalidParameterError, match="data must be"):
        representativeness([1, 2], reference=REF, attributes=["sex"])


def test_confidence_level_changes_intervals_only():
    df = _frame()
    a = representativeness(df, reference=REF, attributes=["sex"])
    b = representativeness(df, reference=REF, attributes=["sex"], confidence_level=0.9)
    assert np.allclose(a.shares["ppr"], b.shares["ppr"])
    assert (b.shares["ci_high"] - b.shares["ci_low"] < a.shares["ci_high"] - a.shares["ci_low"]).all()
    assert (b.shares["ci_level"] == 0.9).all()


def _protocol(tmp_path, **population):
    from rwe.protocol import Protocol

    df = _frame()
    data = tmp_path / "scans.csv"
    df.to_csv(data, index=False)
    ref = tmp_path / "ref.csv"
    ref.write_text("# name: toyref\n# source: test\nattribute,category,share\n"
                   "sex,F,0.5\nsex,M,0.5\nrace,A,0.6\nrace,B,0.3\nrace,C,0.1\n")
    spec = {
        "name": "t", "device": {"name": "d", "version": "1", "intended_use": "x",
                                "intended_use_population": "adults"},
        "data": {"path": str(data), "columns": {"id": "scan_id", "scores": {"1.0": "score"},
                                                "label": "y", "site": "site",
                                                "attributes": ["sex", "race"]},
                 "derived": {"age_band": {"from": "age", "cuts": [50, 65]}}},
        "population": {"reference": str(ref), "attributes": ["sex", "race"],
                       "ppr_band": [0.9, 1.1], **population},
        "subgroups": {"attributes": ["sex", "race"], "intersections": [["sex", "race"]],
                      "min_n": 40},
        "performance": {"metrics": ["sensitivity"], "threshold": 0.5,
                        "target_half_width": 0.08, "assumed_value": 0.8},
        "report": {"title": "t"},
    }
    return Protocol.model_validate(spec), df


def test_from_protocol_applies_prespecified_settings(tmp_path):
    p, df = _protocol(tmp_path)
    r = representativeness_from_protocol(p)
    assert r.reference.name == "toyref"
    assert r.parameters["ppr_band"] == (0.9, 1.1)
    assert r.parameters["min_n"] == 40 and r.parameters["target_half_width"] == 0.08
    assert r.parameters["assumed_value"] == 0.8
    assert r.intersections == (("sex", "race"),)
    direct = representativeness(df, reference=r.reference, attributes=["sex", "race"],
                                label="y", site="site", ppr_band=(0.9, 1.1), min_n=40,
                                target_half_width=0.08, assumed_value=0.8,
                                intersections=[["sex", "race"]])
    pd.testing.assert_frame_equal(r.shares, direct.shares)
    pd.testing.assert_frame_equal(r.adequacy, direct.adequacy)


def test_from_protocol_with_comparison_rows(tmp_path):
    comp = tmp_path / "training.csv"
    _frame(400, 7).to_csv(comp, index=False)
    p, _ = _protocol(tmp_path, comparison=str(comp), covariates=["age"])
    r = representativeness_from_protocol(p)
    assert r.tipton is not None
    assert (r.smd["comparison"] == "comparison rows").any()
    assert any(f.code == "representativeness.generalizability" for f in r.findings)


def test_from_protocol_restricts_reference_age_to_population_min_age(tmp_path):
    p, df = _protocol(tmp_path)
    spec = p.model_dump(by_alias=True)
    spec["population"] = {"reference": "us_census_2020", "attributes": ["sex", "age_band"],
                          "min_age": 40}
    from rwe.protocol import Protocol

    r = representativeness_from_protocol(Protocol.model_validate(spec))
    assert any("restricted to ages >= 40 (intended-use minimum age)" in n for n in r.notes)
    assert r.parameters["reference_min_age"] == 40
    from rwe.representativeness import load_reference

    want = load_reference("us_census_2020").with_age_bands([50, 65], min_age=40)
    got = r.shares[r.shares["attribute"] == "age_band"].set_index("category")["reference_share"]
    for cat, share in want.shares["age_band"].items():
        assert got[cat] == pytest.approx(share, rel=1e-12)
    # the youngest cohort row (about 30 here) no longer decides the restriction
    assert df["age"].min() < 35
    spec["population"].pop("min_age")
    r = representativeness_from_protocol(Protocol.model_validate(spec))
    allages = load_reference("us_census_2020").with_age_bands([50, 65]).shares["age_band"]
    got = r.shares[r.shares["attribute"] == "age_band"].set_index("category")["reference_share"]
    assert got["<50"] == pytest.approx(allages["<50"], rel=1e-12)
    assert any("over all its ages (no intended-use minimum age given)" in n for n in r.notes)
