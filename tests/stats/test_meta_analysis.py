"""DerSimonian-Laird random-effects meta-analysis against metafor's BCG example and
statsmodels' ``combine_effects``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from rwe.exceptions import InvalidParameterError
from rwe.stats import MetaAnalysisResult, random_effects_meta
from rwe.stats._meta import MSG_META_VARIANCE

# BCG vaccine trials (Colditz et al. 1994; metafor's dat.bcg): tpos, tneg, cpos, cneg
BCG = np.array([[4, 119, 11, 128], [6, 300, 29, 274], [3, 228, 11, 209], [62, 13536, 248, 12619],
                [33, 5036, 47, 5761], [180, 1361, 372, 1079], [8, 2537, 10, 619],
                [505, 87886, 499, 87892], [29, 7470, 45, 7232], [17, 1699, 65, 1600],
                [186, 50448, 141, 27197], [5, 2493, 3, 2338], [27, 16886, 29, 17825]], float)


def _log_rr():
    a, b, c, d = BCG.T
    return np.log((a / (a + b)) / (c / (c + d))), 1 / a - 1 / (a + b) + 1 / c - 1 / (c + d)


def test_bcg_example_matches_metafor():
    # R: library(metafor); dat <- escalc(measure="RR", ai=tpos, bi=tneg, ci=cpos, di=cneg,
    #    data=dat.bcg); rma(yi, vi, data=dat, method="DL")
    # estimate -0.7141 (se 0.1787), CI -1.0644 to -0.3638, tau^2 0.3088, Q(df=12) 152.2330,
    # I^2 92.12%, H^2 12.69
    yi, vi = _log_rr()
    r = random_effects_meta(yi, vi)
    assert_allclose([r.estimate, r.se, r.ci.low, r.ci.high], [-0.7141, 0.1787, -1.0644, -0.3638],
                    atol=5e-5)
    assert_allclose([r.tau2, r.q, r.i2], [0.3088, 152.2330, 0.9212], atol=5e-5)
    assert_allclose(r.h2, 12.69, atol=5e-3)
    assert r.df == 12 and r.k == 13 and r.pvalue < 1e-25
    assert_allclose(sum(r.weights), 1.0, rtol=1e-12)


def test_equals_statsmodels_combine_effects():
    from statsmodels.stats.meta_analysis import combine_effects

    rng = np.random.default_rng(3)
    for k in (2, 3, 7, 25):
        y = rng.normal(0.8, 0.05, k)
        v = rng.uniform(1e-4, 3e-3, k)
        ours = random_effects_meta(y, v, confidence_level=0.9)
        with np.errstate(invalid="ignore"):
            sm = combine_effects(y, v, method_re="dl", alpha=0.1)
        if sm.tau2 < 0:  # statsmodels does not truncate the moment estimator at 0 (ours does)
            assert ours.tau2 == 0 and ours.estimate == ours.fixed_estimate
            assert_allclose(ours.q, sm.q, rtol=1e-10)
            continue
        f = sm.summary_frame(alpha=0.1)
        assert_allclose(ours.tau2, sm.tau2, rtol=1e-10, atol=1e-15)
        assert_allclose(ours.q, sm.q, rtol=1e-10)
        assert_allclose(ours.i2, sm.i2, rtol=1e-10, atol=1e-15)
        assert_allclose([ours.estimate, ours.se, ours.ci.low, ours.ci.high],
                        f.loc["random effect", ["eff", "sd_eff", "ci_low", "ci_upp"]].to_numpy(
                            float), rtol=1e-10)
        assert_allclose([ours.fixed_estimate, ours.fixed_se],
                        f.loc["fixed effect", ["eff", "sd_eff"]].to_numpy(float), rtol=1e-10)
        assert_allclose(ours.weights, f["w_re"].to_numpy(float)[:k], rtol=1e-10)


def test_homogeneous_studies_have_zero_tau2_and_the_fixed_estimate():
    r = random_effects_meta([0.5, 0.5, 0.5], [0.01, 0.02, 0.04])
    assert r.tau2 == 0 and r.q == 0 and r.i2 == 0
    assert r.estimate == r.fixed_estimate == 0.5
    # the prediction interval is then the t interval of the pooled estimate
    t = stats.t.ppf(0.975, 1)
    assert_allclose([r.prediction.low, r.prediction.high], [0.5 - t * r.se, 0.5 + t * r.se])


def test_one_study_is_itself():
    r = random_effects_meta([0.7], [0.0025], labels=["S1"])
    assert r.estimate == 0.7 and math.isclose(r.se, 0.05)
    assert r.df == 0 and math.isnan(r.pvalue) and math.isnan(r.i2) and r.prediction is None
    assert list(r.to_frame()["study"]) == ["S1", "fixed effect", "random effects"]


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(InvalidParameterError, match=MSG_META_VARIANCE.format(value=0.0, i=1)
                       .replace("(", r"\(").replace(")", r"\)")):
        random_effects_meta([0.7, 0.8], [0.01, 0.0])
    with pytest.raises(InvalidParameterError, match="same length"):
        random_effects_meta([0.7, 0.8], [0.01])
    with pytest.raises(InvalidParameterError, match="at least one estimate"):
        random_effects_meta([], [])
    with pytest.raises(InvalidParameterError, match="method="):
        random_effects_meta([0.7], [0.01], method="reml")


def test_round_trip():
    yi, vi = _log_rr()
    r = random_effects_meta(yi, vi, labels=[f"trial {i}" for i in range(13)])
    back = MetaAnalysisResult.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r
