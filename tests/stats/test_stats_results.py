"""Every rwe.stats result serialises (to_dict -> canonical JSON, to_frame, summary, HTML)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import rwe.stats as S
from rwe._results import canonical_json

Y = np.array([0, 0, 1, 0, 1, 1, 0, 1, 1, 0], bool)
A = np.array([0.1, 0.4, 0.35, 0.8, 0.9, 0.6, 0.2, 0.7, 0.75, 0.3])
B = np.array([0.2, 0.3, 0.5, 0.6, 0.7, 0.4, 0.1, 0.9, 0.65, 0.45])


def _results():
    return [
        S.auc_delong(Y, A),
        S.delong_test(Y, A, B),
        S.delong_unpaired_test(Y, A, Y, B),
        S.auc_noninferiority(Y, A, B, margin=0.1),
        S.mcnemar_test(A > 0.5, B > 0.5),
        S.likelihood_ratios(10, 0, 0, 5),
        S.performance_goal_test(0.9, S.proportion_ci(9, 10), 0.5),
        S.bootstrap(lambda y, s, weights=None: S.weighted_auc(y, s, weights), Y, A,
                    n_boot=50, random_state=0),
    ]


@pytest.mark.parametrize("res", _results(), ids=lambda r: type(r).__name__)
def test_result_protocol(res):
    d = res.to_dict()
    text = canonical_json(d)  # no NaN/inf, no numpy types left
    assert "NaN" not in text and "Infinity" not in text
    frame = res.to_frame()
    assert len(frame) >= 1 and all(isinstance(c, str) for c in frame.columns)
    assert isinstance(res.summary(), str) and "<table" in res._repr_html_()


def test_infinite_lr_serialises_as_null():
    d = S.likelihood_ratios(10, 0, 0, 5).to_dict()
    assert d["lr_pos"] is None and math.isinf(S.likelihood_ratios(10, 0, 0, 5).lr_pos)


def test_public_api_is_complete():
    for name in S.__all__:
        assert hasattr(S, name), name
    assert S.PROPORTION_CI_METHODS == ("wilson", "clopper-pearson")
