"""Fixtures for the subgroup tests: real data (flchain) with a fitted risk model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rwe.data import ColumnRoles, EvaluationSet


@pytest.fixture(scope="session")
def flchain_frame() -> pd.DataFrame:
    """sksurv flchain: death predicted by a logistic model on age, kappa, lambda, creatinine.

    Groups: sex and an age band; creatinine is missing for some rows (imputed by the median
    for the model only).
    """
    sksurv = pytest.importorskip("sksurv.datasets")
    from sklearn.linear_model import LogisticRegression

    X, y = sksurv.load_flchain()
    death = y["death"].astype(bool)
    feats = X[["age", "kappa", "lambda", "creatinine"]].astype(float)
    feats = feats.fillna(feats.median())
    model = LogisticRegression(max_iter=1000).fit(np.log1p(feats), death)
    p = model.predict_proba(np.log1p(feats))[:, 1]
    age_band = pd.cut(X["age"], [0, 60, 70, 80, 200], right=False,
                      labels=["<60", "60-69", "70-79", "80+"])
    return pd.DataFrame({"id": np.arange(len(X)), "sex": X["sex"].astype(str).to_numpy(),
                         "age_band": age_band.astype(str).to_numpy(),
                         "mgus": X["mgus"].astype(str).to_numpy(),
                         "y": np.asarray(death).astype(int), "score": p})


@pytest.fixture(scope="session")
def flchain_ev(flchain_frame) -> EvaluationSet:
    roles = ColumnRoles(id="id", scores={"glm": "score"}, label="y",
                        attributes=("sex", "age_band", "mgus"))
    return EvaluationSet.from_frame(flchain_frame, roles)
