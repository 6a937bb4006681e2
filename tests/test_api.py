"""The top-level API: lazy exports, and ``rwe.representativeness`` callable in either state."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

import rwe


def test_import_is_light():
    code = ("import sys, rwe; heavy = [m for m in ('matplotlib', 'statsmodels', 'papermill') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_export_resolves():
    for name in rwe.__all__:
        assert getattr(rwe, name) is not None, name


def test_representativeness_callable_after_subpackage_import():
    import rwe.representativeness as mod  # binds the subpackage on rwe

    df = pd.DataFrame({"sex": ["F"] * 60 + ["M"] * 40})
    ref = {"sex": {"F": 0.5, "M": 0.5}}
    via_module = mod(df, reference=ref, attributes=["sex"])
    via_function = mod.representativeness(df, reference=ref, attributes=["sex"])
    pd.testing.assert_frame_equal(via_module.shares, via_function.shares)
    assert rwe.representativeness(df, reference=ref, attributes=["sex"]).shares.equals(
        via_function.shares)
