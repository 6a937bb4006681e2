"""In simulation with no change, the false-alarm rate of the charts assess_drift runs stays
within the protocol's ARL target (issue 17, part 7): calibrated windows, the real
calibration-in-the-large kernel per window, the chart's z-series, restart after each alarm (so
the long-run alarm rate is 1 / ARL0). Vectorized over all windows of all streams, seeded."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rwe.drift import cusum_limit, cusum_path, ewma_limit, ewma_path
from rwe.metrics import get_metric
from rwe.metrics._registry import KernelContext
from rwe.stats.summaries import Segments

STREAMS, WINDOWS, ROWS = 250, 80, 200
TARGET_ARL = 50.0


@pytest.fixture(scope="module")
def z_series():
    """z = CITL / SE per window of calibrated data (what the monitor charts), streams x
    windows."""
    rng = np.random.default_rng(20261201)
    k = STREAMS * WINDOWS
    p = 1 / (1 + np.exp(-rng.normal(-1.8, 1.2, (k, ROWS))))
    y = rng.random(p.shape) < p
    lp = np.log(p) - np.log1p(-p)
    seg = Segments(np.arange(k) * ROWS, (~y).ravel().astype(float), y.ravel().astype(float),
                   exact=True, p=p.ravel(), lp=lp.ravel())
    v = get_metric("calibration_intercept").kernel(seg, KernelContext())
    z = (v.estimate / v.extras["se"]).reshape(STREAMS, WINDOWS)
    assert np.isfinite(z).all()
    return z


def _check_rate(alarms: int) -> None:
    windows = STREAMS * WINDOWS
    expected = windows / TARGET_ARL
    # alarms of renewal processes with mean cycle ARL0: Poisson-like count, 4 SE tolerance
    assert abs(alarms - expected) < 4 * math.sqrt(expected), (alarms, expected)


def test_cusum_false_alarm_rate_is_the_target(z_series):
    h = cusum_limit(TARGET_ARL, k=0.5)
    alarms = sum(int(cusum_path(z, k=0.5, h=h).alarm.sum()) for z in z_series)
    _check_rate(alarms)


def test_ewma_false_alarm_rate_is_the_target(z_series):
    L = ewma_limit(TARGET_ARL, lam=0.2)
    alarms = sum(int(ewma_path(z, lam=0.2, L=L, asymptotic=True).alarm.sum())
                 for z in z_series)
    _check_rate(alarms)


def test_the_charted_z_is_standard_normal_in_control(z_series):
    z = z_series.ravel()
    se = 1 / math.sqrt(z.size)
    assert abs(z.mean()) < 4 * se and abs(z.std() - 1) < 0.03
