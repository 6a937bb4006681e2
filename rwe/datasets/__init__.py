"""Datasets: the synthetic demo scenario and offline loaders for real public clinical data.

- :func:`make_demo` / :func:`write_demo`: the lung-nodule CADx demo with known, documented
  effects (data card: ``datasets/demo/README.md``).
- :func:`load_public` / :data:`PUBLIC_DATASETS`: real datasets shipped inside installed packages
  (lifelines, scikit-survival), loaded with no network (data cards: ``datasets/public/README.md``).
"""

from __future__ import annotations

from rwe.datasets._demo import (
    DEMO_COLUMNS,
    DEMO_EFFECTS,
    DEMO_N_SCANS,
    DEMO_N_TRAINING,
    DEMO_REFERENCE_SHARES,
    DEMO_SEED,
    TRAINING_COLUMNS,
    DemoData,
    demo_path,
    ensure_demo,
    file_sha256,
    make_demo,
    write_demo,
)
from rwe.datasets._public import (
    MSG_UNKNOWN_DATASET,
    PUBLIC_DATASETS,
    PublicDataset,
    load_public,
)

__all__ = [
    # demo scenario
    "DEMO_COLUMNS",
    "DEMO_EFFECTS",
    "DEMO_N_SCANS",
    "DEMO_N_TRAINING",
    "DEMO_REFERENCE_SHARES",
    "DEMO_SEED",
    "TRAINING_COLUMNS",
    "DemoData",
    "demo_path",
    "ensure_demo",
    "file_sha256",
    "make_demo",
    "write_demo",
    # real public data
    "MSG_UNKNOWN_DATASET",
    "PUBLIC_DATASETS",
    "PublicDataset",
    "load_public",
]
