"""The top-level API: lazy exports and the analysis names."""

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


def test_assess_representativeness_is_the_top_level_name():
    """No callable-module trick: ``rwe.representativeness`` is the subpackage (importing it
    binds that name on rwe) and the analysis is ``rwe.assess_representativeness``."""
    import rwe.representativeness as mod  # binds the subpackage on rwe

    assert rwe.representativeness is mod and not callable(mod)
    assert rwe.assess_representativeness is mod.assess_representativeness
    assert mod.representativeness is mod.assess_representativeness
    assert "representativeness" not in rwe.__all__
    df = pd.DataFrame({"sex": ["F"] * 60 + ["M"] * 40})
    ref = {"sex": {"F": 0.5, "M": 0.5}}
    res = rwe.assess_representativeness(df, reference=ref, attributes=["sex"])
    assert res.shares.set_index("category")["ppr"].to_dict() == {"F": 1.2, "M": 0.8}
