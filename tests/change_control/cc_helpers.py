"""Small synthetic evaluation sets for change-control tests (two or more versions scored on
the same cases), and a protocol writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rwe.data import ColumnRoles, EvaluationSet


def frame(n: int = 3000, seed: int = 0, *, versions: dict[str, float] | None = None,
          patients: bool = False, prevalence: float = 0.3) -> pd.DataFrame:
    """Cases with a shared latent signal; version v sees it with noise sd ``versions[v]``
    (larger = worse). Attributes: sex (F/M), site (A/B/C, C small)."""
    rng = np.random.default_rng(seed)
    versions = versions or {"1.0": 1.0, "1.1": 1.0}
    if patients:
        k = rng.integers(1, 4, n)
        pid = np.repeat(np.arange(n), k)[:n]
    else:
        pid = np.arange(n)
    u = rng.normal(0, 0.6, n)[pid]
    y = rng.random(n) < prevalence
    latent = 1.6 * y + u + rng.normal(0, 0.5, n)
    df = pd.DataFrame({
        "case": [f"C{i:06d}" for i in range(n)], "pid": [f"P{i:06d}" for i in pid],
        "y": y.astype(int), "sex": rng.choice(["F", "M"], n),
        "site": rng.choice(["A", "B", "C"], n, p=[0.5, 0.45, 0.05])})
    for v, sd in versions.items():
        df[f"s_{v}"] = 1 / (1 + np.exp(-(latent - 1.0 + rng.normal(0, sd, n))))
    return df


def roles(versions, *, patients: bool = True) -> ColumnRoles:
    return ColumnRoles(id="case", patient_id="pid" if patients else None,
                       scores={v: f"s_{v}" for v in versions}, label="y",
                       attributes=("sex", "site"))


def evset(n: int = 3000, seed: int = 0, *, versions: dict[str, float] | None = None,
          patients: bool = False, prevalence: float = 0.3) -> EvaluationSet:
    versions = versions or {"1.0": 1.0, "1.1": 1.0}
    df = frame(n, seed, versions=versions, patients=patients, prevalence=prevalence)
    return EvaluationSet.from_frame(df, roles(versions, patients=True))


PROTOCOL = """\
name: cc-test
device: {{name: T, version: "1.0", intended_use: test, intended_use_population: adults}}
data:
  path: {data}
  columns:
    id: case
    patient_id: pid
    scores: {scores}
    label: y
    attributes: [sex, site]
performance:
  metrics: [sensitivity, specificity, auroc]
  threshold: 0.5
subgroups:
  attributes: [sex, site]
  min_n: 30
  min_events: 5
change_control:
{change_control}
report:
  title: t
"""


def write_protocol(dirpath: Path, df: pd.DataFrame, change_control: str, *,
                   versions=None, name: str = "p.yaml") -> Path:
    """Write the data (CSV) and a protocol whose change_control block is ``change_control``
    (indented YAML lines)."""
    versions = versions or [c[2:] for c in df.columns if c.startswith("s_")]
    data = dirpath / "data.csv"
    if not data.exists():
        df.to_csv(data, index=False)
    scores = "{" + ", ".join(f'"{v}": s_{v}' for v in versions) + "}"
    p = dirpath / name
    p.write_text(PROTOCOL.format(data=data.name, scores=scores, change_control=change_control))
    return p
