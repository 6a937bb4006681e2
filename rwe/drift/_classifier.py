"""Multivariate drift: the classifier two-sample test (a cross-fitted domain classifier).

Rows of the reference (label 0) and of the current data (label 1) are pooled; a gradient
boosting classifier (scikit-learn ``HistGradientBoostingClassifier``, categorical features
native) predicts which sample a row comes from, each row scored by the model fitted on the
other folds (``n_folds``-fold stratified cross-fitting). With no shift the out-of-fold AUROC is
0.5; its DeLong interval (:func:`rwe.stats.auc_delong`) says how far above 0.5 it is, and the
one-sided p-value tests AUROC = 0.5. The features driving the shift are ranked by permutation
importance on the held-out folds (mean drop of the out-of-fold AUROC when one feature's
values are permuted among the held-out rows). Each sample is subsampled to at most
``max_rows`` rows (seeded) so that the cost does not grow with the data.

References
----------
.. [1] Lopez-Paz D, Oquab M. Revisiting classifier two-sample tests. ICLR 2017.
.. [2] Friedman JH. On multivariate goodness-of-fit and two-sample testing. SLAC-PUB-10325;
   2004.
.. [3] Rabanser S, Guennemann S, Lipton ZC. Failing loudly: an empirical study of methods for
   detecting dataset shift. NeurIPS 2019 (domain classifiers for shift detection).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rwe.exceptions import InvalidParameterError

__all__ = ["ClassifierTest", "classifier_test", "DEFAULT_MAX_ROWS", "DEFAULT_FOLDS"]

DEFAULT_MAX_ROWS = 2000
DEFAULT_FOLDS = 3


@dataclass(frozen=True)
class ClassifierTest:
    """Out-of-fold AUROC of the domain classifier with its interval and the driving features."""

    auroc: float
    ci_low: float
    ci_high: float
    pvalue: float
    n_reference: int
    n_current: int
    importance: dict[str, float]
    reason: str | None = None


def _design(frames: list[pd.DataFrame], features: list[str]) -> tuple[np.ndarray, np.ndarray]:
    cols, cat = [], []
    for f in features:
        parts = [fr[f] for fr in frames]
        if all(pd.api.types.is_numeric_dtype(p) and not pd.api.types.is_bool_dtype(p)
               for p in parts):
            cols.append(np.concatenate([p.to_numpy(dtype=np.float64, na_value=np.nan)
                                        for p in parts]))
            cat.append(False)
        else:
            s = pd.concat([p.astype("string") for p in parts], ignore_index=True)
            codes, _ = pd.factorize(s, sort=True)
            cols.append(np.where(codes < 0, np.nan, codes).astype(np.float64))
            cat.append(True)
    return np.column_stack(cols), np.asarray(cat, dtype=bool)


def classifier_test(reference: pd.DataFrame, current: pd.DataFrame, features: list[str], *,
                    n_folds: int = DEFAULT_FOLDS, max_rows: int = DEFAULT_MAX_ROWS,
                    confidence_level: float = 0.95, random_state: Any = 0,
                    n_repeats: int = 1) -> ClassifierTest:
    """Cross-fitted domain-classifier two-sample test of ``reference`` vs ``current`` rows.

    Parameters
    ----------
    reference, current : pandas.DataFrame
        Rows with the ``features`` columns (numeric or categorical; missing values allowed).
    features : list of str
    n_folds : int
        Folds of the cross-fitting.
    max_rows : int
        Largest number of rows used from each sample (a seeded random subsample).
    confidence_level : float
    random_state : int or None
    n_repeats : int
        Permutations per feature and fold for the importances.

    Returns
    -------
    ClassifierTest
        ``reason`` is set (and the numbers are NaN) when a sample has too few rows.
    """
    from scipy.stats import norm
    from sklearn.model_selection import StratifiedKFold

    from rwe.stats import auc_delong

    if not features:
        raise InvalidParameterError("classifier_test needs at least one feature")
    rng = np.random.default_rng(random_state)
    r = reference.iloc[rng.permutation(len(reference))[:max_rows]]
    c = current.iloc[rng.permutation(len(current))[:max_rows]]
    nan = float("nan")
    if min(len(r), len(c)) < 2 * n_folds:
        return ClassifierTest(nan, nan, nan, nan, len(r), len(c), {},
                              f"fewer than {2 * n_folds} rows in a sample: no test")
    X, cat = _design([r, c], features)
    y = np.r_[np.zeros(len(r), dtype=bool), np.ones(len(c), dtype=bool)]
    seed = int(rng.integers(2**31 - 1))
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # OpenMP threads oversubscribe a small shared machine
        oof, drops = _cross_fit(X, y, cat, folds, seed, rng, n_repeats, len(features))
    res = auc_delong(y, oof)
    ci = res.confidence_interval(confidence_level)
    z = (res.auc - 0.5) / np.sqrt(res.variance) if res.variance > 0 else np.inf
    p = float(norm.sf(z))
    imp = dict(sorted(zip(features, drops.mean(axis=0).tolist(), strict=True),
                      key=lambda kv: -kv[1]))
    return ClassifierTest(float(res.auc), float(ci.low), float(ci.high), p, len(r), len(c), imp)


def roc_auc_score(y: np.ndarray, s: np.ndarray) -> float:
    """Mann-Whitney AUROC with mid-ranks (ties count 1/2)."""
    from scipy.stats import rankdata

    r = rankdata(s)
    n1 = int(y.sum())
    n0 = y.size - n1
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _cross_fit(X, y, cat, folds, seed, rng, n_repeats, n_features):
    from sklearn.ensemble import HistGradientBoostingClassifier

    oof = np.zeros(y.size)
    drops = np.zeros((folds.get_n_splits(), n_features))
    for f, (tr, te) in enumerate(folds.split(X, y)):
        model = HistGradientBoostingClassifier(max_iter=50, learning_rate=0.15,
                                               categorical_features=cat, random_state=seed)
        model.fit(X[tr], y[tr])
        oof[te] = model.predict_proba(X[te])[:, 1]
        base = roc_auc_score(y[te], oof[te])
        for j in range(n_features):
            vals = []
            for _ in range(n_repeats):
                Xp = X[te].copy()
                Xp[:, j] = Xp[rng.permutation(te.size), j]
                vals.append(base - roc_auc_score(y[te], model.predict_proba(Xp)[:, 1]))
            drops[f, j] = float(np.mean(vals))
    return oof, drops
