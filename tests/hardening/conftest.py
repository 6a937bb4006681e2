"""Fixtures of the bad-input corpus (see hardening_corpus.py)."""

from __future__ import annotations

import pytest
from hardening_corpus import Workspace, make_workspace


@pytest.fixture
def ws(tmp_path, monkeypatch) -> Workspace:
    """A workspace with the tiny protocol's data and reference; the cwd of the test."""
    return make_workspace(tmp_path, monkeypatch)
