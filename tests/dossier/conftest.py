"""Fixtures of the dossier tests: a small demo (3,000 scans) and one dossier built from it."""

from __future__ import annotations

from pathlib import Path

import pytest
from dossier_helpers import small_protocol


@pytest.fixture(scope="session")
def small_demo_protocol(tmp_path_factory) -> Path:
    return small_protocol(tmp_path_factory.mktemp("small-demo"))


@pytest.fixture(scope="session")
def dossier(small_demo_protocol, tmp_path_factory):
    """One dossier of the small demo, built once for the whole session (PDF when Chromium is
    installed)."""
    from rwe.dossier import build_dossier

    out = tmp_path_factory.mktemp("dossiers") / "small"
    return build_dossier(small_demo_protocol, out, progress=False)
