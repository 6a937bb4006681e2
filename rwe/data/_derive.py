"""Derived subgroup attributes (age bands from age with protocol-defined cut points)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from rwe.exceptions import InvalidParameterError

__all__ = ["age_band_labels", "derive_age_bands"]


def age_band_labels(cuts: Sequence[float]) -> list[str]:
    """Labels for the bands ``[c0, c1), [c1, c2), ..., [c_last, inf)``.

    Integer cut points give the familiar inclusive labels: cuts ``[18, 50, 65]`` ->
    ``["18-49", "50-64", "65+"]``. Ages below the first cut get the band ``"<18"``.
    """
    cuts = list(cuts)
    fmt = (lambda v: f"{int(v)}") if all(float(c).is_integer() for c in cuts) else (
        lambda v: f"{v:g}")
    labels = [f"<{fmt(cuts[0])}"]
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        if all(float(c).is_integer() for c in cuts):
            labels.append(f"{int(lo)}-{int(hi) - 1}")
        else:
            labels.append(f"[{lo:g}, {hi:g})")
    labels.append(f"{fmt(cuts[-1])}+")
    return labels


def derive_age_bands(age: pd.Series | np.ndarray, cuts: Sequence[float]) -> pd.Series:
    """Cut ``age`` into ordered bands ``[c0, c1), ..., [c_last, inf)``; missing age stays missing.

    Parameters
    ----------
    age : array-like of float
        Age in years.
    cuts : sequence of float
        Strictly increasing cut points (the protocol's ``data.derived`` entry).

    Returns
    -------
    pandas.Series
        Ordered categorical with the labels of :func:`age_band_labels`.
    """
    cuts = [float(c) for c in cuts]
    if len(cuts) < 1 or any(b <= a for a, b in zip(cuts[:-1], cuts[1:], strict=False)):
        raise InvalidParameterError(
            f"age band cut points must be a non-empty, strictly increasing list, got {cuts!r}")
    labels = age_band_labels(cuts)
    s = pd.Series(age, copy=False)
    values = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
    codes = np.searchsorted(np.asarray(cuts), values, side="right")  # 0 = below first cut
    codes = np.where(np.isnan(values), -1, codes)
    cat = pd.Categorical.from_codes(codes, categories=labels, ordered=True)
    used = [lab for i, lab in enumerate(labels) if i > 0 or (codes == 0).any()]
    out = pd.Series(cat, index=s.index if isinstance(age, pd.Series) else None, name="age_band")
    return out.cat.set_categories(used, ordered=True)
