"""Helpers of the dossier tests: a small demo protocol and a copy of the templates."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "protocols" / "demo.yaml"
NOTEBOOKS = ROOT / "notebooks"



def small_protocol(directory: Path, *, n_scans: int = 3000, sections: list[str] | None = None,
                   extra: str = "") -> Path:
    """The demo protocol pointed at a small demo written into ``directory``."""
    from rwe.datasets import write_demo

    data = directory / "data"
    if not (data / "demo.parquet").is_file():
        write_demo(data, n_scans=n_scans, n_training=1000)
    text = DEMO.read_text()
    text = text.replace("../datasets/demo/demo.parquet", str(data / "demo.parquet"))
    text = text.replace("../datasets/demo/training_snapshot.parquet",
                        str(data / "training_snapshot.parquet"))
    # 50 bootstrap replicates (the fairness gaps) keep the small test fast; the demo uses 1000
    text = text.replace("  ci_method: analytic\n", "  ci_method: analytic\n  n_boot: 50\n")
    # the small demo is not the sequestered test set the demo plan pins by content hash
    text = re.sub(r"\n    sha256: [0-9a-f]{64}\n", "\n", text, count=1)
    if sections is not None:
        text = text.replace("  small_cell_k: 11\n",
                            f"  small_cell_k: 11\n  sections: [{', '.join(sections)}]\n")
    text += extra
    p = directory / "protocol.yaml"
    p.write_text(text)
    return p


def copy_notebooks(directory: Path) -> Path:
    out = directory / "notebooks"
    shutil.copytree(NOTEBOOKS, out)
    return out
