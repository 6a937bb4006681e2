"""Federated protocols on the demo data (the demo protocol plus a federation section)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "protocols" / "demo.yaml"
SITES = ("S1", "S2", "S3", "S4")


def federated_protocol(d: Path, *, min_count: int | None = None, score_bins: int = 200,
                       name: str = "fed.yaml", data: Path | None = None,
                       training: Path | None = None, extra: str = "") -> Path:
    """demo.yaml with absolute data paths and a federation section, written to ``d``."""
    text = DEMO.read_text()
    scans = data or ROOT / "datasets" / "demo" / "demo.parquet"
    train = training or ROOT / "datasets" / "demo" / "training_snapshot.parquet"
    text = text.replace("../datasets/demo/demo.parquet", str(scans)).replace(
        "../datasets/demo/training_snapshot.parquet", str(train))
    fed = (f"federation:\n  score_bins: {score_bins}\n"
           "  recode_order: [ethnicity, age_band, race, sex, scanner_vendor, month]\n"
           f"  sites: [{', '.join(SITES)}]\n")
    if min_count is not None:
        fed += f"  min_count: {min_count}\n"
    p = d / name
    p.write_text(text + fed + extra)
    return p
