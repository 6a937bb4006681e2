"""Shared helpers for tests/metrics (not a test module)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_RESULTS = Path(__file__).resolve().parents[1] / "results" / "results_metrics.py"


def load_results():
    spec = importlib.util.spec_from_file_location("results_metrics", _RESULTS)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def o5_data():
    """O5: 100 with p = 0.2 (30 events), 100 with p = 0.6 (50 events)."""
    import numpy as np

    p = np.r_[np.full(100, 0.2), np.full(100, 0.6)]
    y = np.r_[np.ones(30), np.zeros(70), np.ones(50), np.zeros(50)].astype(int)
    return y, p
