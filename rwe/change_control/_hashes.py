"""Content hashes of what a comparison looked at (EVIDENCE.md CHG-3, PRV-4, PRV-6, PRV-7).

The file hash of the data (``Source.fingerprint``) changes with the file format, compression
and library versions; the *content* hashes below do not. They are defined on the case ids, so
that anyone can recompute them from the data with a few lines of code:

``test_set_sha256``
    sha256 of ``b"rwe-test-set-1\\n"``, then the case ids in ascending (string) order joined
    by ``"\\n"``, a NUL byte, the patient ids in the same order joined by ``"\\n"`` (empty
    when there is no patient id role), a NUL byte, and the labels in the same order as bytes
    ``0``/``1`` (ASCII). Without an id role the row number (``0 .. n-1``) is the case id.
``score_sha256``
    sha256 of ``b"rwe-scores-1\\n"``, the sorted case ids joined by ``"\\n"``, a NUL byte and
    the scores in that order as little-endian IEEE-754 float64 bytes.
"""

from __future__ import annotations

import hashlib
import platform
from collections.abc import Mapping
from importlib import metadata
from typing import Any

import numpy as np

__all__ = ["test_set_sha256", "score_sha256", "case_order", "package_versions"]

_PACKAGES = ("numpy", "scipy", "pandas", "statsmodels", "pyarrow", "pydantic")


def case_order(ids: np.ndarray) -> tuple[np.ndarray, bytes]:
    """The permutation that sorts the ids (as strings, by code point) and the sorted ids
    joined by ``"\n"`` as UTF-8 bytes."""
    s = np.asarray(ids).astype(str)
    order = np.argsort(s, kind="stable")
    return order, "\n".join(s[order].tolist()).encode("utf-8")


def _ids(evset) -> np.ndarray:
    col = evset.roles.id
    if col is None:
        return np.arange(evset.n).astype(str)
    return evset.frame[col].astype("string").to_numpy(dtype=object)


def test_set_sha256(evset, *, _order: tuple[np.ndarray, bytes] | None = None) -> str:
    """Content hash of the cases of an evaluation set: ids, patient ids and labels (see the
    module notes). Independent of row order, file format and the other columns."""
    order, joined = case_order(_ids(evset)) if _order is None else _order
    h = hashlib.sha256(b"rwe-test-set-1\n")
    h.update(joined)
    h.update(b"\0")
    if evset.roles.patient_id is not None:
        pat = evset.frame[evset.roles.patient_id].astype("string").to_numpy(dtype=object)
        h.update("\n".join(str(x) for x in pat[order]).encode("utf-8"))
    h.update(b"\0")
    h.update((evset.y_true[order].astype(np.uint8) + ord("0")).tobytes())
    return h.hexdigest()


test_set_sha256.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def score_sha256(ids: np.ndarray, scores: np.ndarray, *,
                 _order: tuple[np.ndarray, bytes] | None = None) -> str:
    """Content hash of one version's scores on the cases ``ids`` (see the module notes)."""
    order, joined = case_order(ids) if _order is None else _order
    h = hashlib.sha256(b"rwe-scores-1\n")
    h.update(joined)
    h.update(b"\0")
    h.update(np.ascontiguousarray(np.asarray(scores, dtype="<f8")[order]).tobytes())
    return h.hexdigest()


def package_versions(extra: Mapping[str, str] | None = None) -> dict[str, Any]:
    """rwe, Python and the numerical packages a comparison ran with (PRV-7)."""
    import rwe

    out: dict[str, Any] = {"rwe": rwe.__version__, "python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    out.update(extra or {})
    return out
