"""Locations of the data that ship with rwe, importable without the analysis packages
(so that reading a protocol does not pull in scipy.stats)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["available_references", "bundled_reference", "reference_dir"]


def reference_dir() -> Path:
    """``datasets/reference`` of the repository (``Path(rwe.__file__).parents[1]``)."""
    return Path(__file__).resolve().parents[1] / "datasets" / "reference"


def available_references() -> list[str]:
    """Names of the reference files shipped in ``datasets/reference``."""
    d = reference_dir()
    return sorted(p.stem for p in d.glob("*.csv")) if d.is_dir() else []


def bundled_reference(name: str) -> Path | None:
    """The bundled reference file called ``name`` (with or without ``.csv``), or None."""
    d = reference_dir()
    for cand in (d / str(name), d / f"{name}.csv"):
        if cand.is_file():
            return cand
    return None
