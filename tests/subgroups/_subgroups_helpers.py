"""Data helpers shared by the subgroup tests (imported by module name)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rwe.data import ColumnRoles, EvaluationSet


def synthetic_frame(n: int, seed: int = 0, *, prevalence: float = 0.2) -> pd.DataFrame:
    """The anchor benchmark's data: sex x race, score = expit(N(0,1) + 1.5 y - 1)."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], n)
    race = rng.choice(["White", "Black", "Asian", "Other"], n, p=[.6, .13, .07, .2])
    y = rng.random(n) < prevalence
    score = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.5 * y - 1)))
    return pd.DataFrame({"sex": sex, "race": race, "y": y.astype(int), "score": score})


def make_ev(df: pd.DataFrame, attributes=("sex", "race"), **roles) -> EvaluationSet:
    return EvaluationSet.from_frame(
        df, ColumnRoles(scores={"v1": "score"}, label="y", attributes=tuple(attributes),
                        **roles))
