"""Row-chunked primitives: per-row temporaries O(chunk), never O(rows).

numpy makes full-size copies behind some calls (``np.bincount`` casts its input to intp and
its weights to float64; ``ufunc.reduceat`` with a ``dtype`` casts the whole input), and a
vectorized kernel over ten million histogram rows makes a dozen float64 temporaries at once.
The helpers here walk the rows in chunks of :data:`CHUNK`, so the memory of an analysis stays
that of its inputs and outputs (issue 13: peak <= 2x the input columns). Integer-valued sums
are exact whatever the chunking; float sums differ from one pass only by summation order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

__all__ = ["CHUNK", "chunks", "segment_ids", "n_ids", "per_row", "add_sums", "add_dot", "bincount",
           "segment_sums", "int_dtype", "uint_dtype", "stable_argsort"]

#: Rows per chunk: 65536 rows x 8 bytes = 0.5 MB per float64 temporary.
CHUNK = 1 << 16


def chunks(n: int, chunk: int = CHUNK) -> Iterator[tuple[int, int]]:
    """``(a, b)`` bounds of consecutive row chunks covering ``range(n)``."""
    for a in range(0, n, chunk):
        yield a, min(n, a + chunk)


def segment_ids(starts: np.ndarray, a: int, b: int) -> tuple[int, np.ndarray | None]:
    """Segment of each row ``a..b-1`` for contiguous segments starting at ``starts``
    (ascending; the last one runs to the end): ``(s0, ids)`` with segment ``s0 + ids[i]``;
    ``ids`` is None when every row is in segment ``s0`` (the common case of long segments).
    """
    s0 = max(int(np.searchsorted(starts, a, side="right")) - 1, 0)
    s1 = int(np.searchsorted(starts, b, side="left"))
    if s1 - s0 == 1:
        return s0, None
    lo = np.clip(starts[s0:s1], a, b)
    lens = np.diff(np.append(lo, b))
    return s0, np.repeat(np.arange(s1 - s0), lens)


def n_ids(ids: np.ndarray | None) -> int:
    """Number of segments a chunk's ``ids`` (from :func:`segment_ids`) span."""
    return 1 if ids is None else int(ids[-1]) + 1


def per_row(v: np.ndarray, s0: int, ids: np.ndarray | None):
    """Per-segment values ``v`` for each row of a chunk (a scalar when ``ids`` is None)."""
    return v[s0] if ids is None else v[s0 + ids]


def add_dot(out: np.ndarray, s0: int, ids: np.ndarray | None, u: np.ndarray,
            v: np.ndarray) -> None:
    """``out[s] += `` the sum of ``u * v`` over the chunk's rows of segment ``s`` (einsum's
    own loop: no temporary, and no BLAS threads competing for the cores)."""
    if ids is None:
        out[s0] += float(np.einsum("i,i->", u, v))
    else:
        add_sums(out, s0, ids, u * v)


def add_sums(out: np.ndarray, s0: int, ids: np.ndarray | None, w: np.ndarray) -> None:
    """``out[s] += `` the sum of ``w`` over the chunk's rows of segment ``s``."""
    if ids is None:
        out[s0] += w.sum()
    else:
        m = int(ids[-1]) + 1
        out[s0:s0 + m] += np.bincount(ids, weights=w, minlength=m)


def bincount(x: np.ndarray, weights: np.ndarray | None = None, minlength: int = 0
             ) -> np.ndarray:
    """``np.bincount`` in chunks (int64 counts, or float64 sums of ``weights``)."""
    size = max(int(minlength), int(x.max()) + 1 if x.size else 0)
    out = np.zeros(size, dtype=np.int64 if weights is None else np.float64)
    for a, b in chunks(x.size, 1 << 20):
        w = None if weights is None else weights[a:b]
        out += np.bincount(x[a:b], weights=w, minlength=size)
    return out


def segment_sums(starts: np.ndarray, n: int,
                 columns: Callable[[int, int], Sequence[np.ndarray]], k: int) -> np.ndarray:
    """``(segments, k)`` sums over the rows of each segment of the ``k`` per-row columns that
    ``columns(a, b)`` returns for rows ``a..b-1`` (computed chunk by chunk)."""
    out = np.zeros((k, len(starts)))
    for a, b in chunks(n):
        s0, ids = segment_ids(starts, a, b)
        for j, col in enumerate(columns(a, b)):
            add_sums(out[j], s0, ids, col)
    return out.T


def int_dtype(max_value: int) -> np.dtype:
    """Smallest signed integer dtype holding ``-1..max_value``."""
    for dt in (np.int8, np.int16, np.int32):
        if max_value <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.int64)


def uint_dtype(max_value: int) -> np.dtype:
    """Smallest unsigned integer dtype holding ``0..max_value`` (counts)."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if max_value <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.uint64)


def stable_argsort(keys: np.ndarray, n_bits: int | None = None) -> np.ndarray:
    """``np.argsort(keys, kind="stable")`` of non-negative integer keys, by one ``np.sort``.

    Each key is packed with its row number into one uint64 (key in the high bits, row in the
    low ``ceil(log2 n)`` bits) and the packed words are sorted, which numpy does with SIMD
    quicksort several times faster than a stable argsort; equal keys keep row order, so the
    result is the stable argsort. Keys wider than the high bits left (``n_bits`` + row bits >
    64) fall back to ``np.argsort(kind="stable")``.
    """
    n = keys.size
    rb = max(1, int(n - 1).bit_length())
    if n_bits is None:
        n_bits = int(keys.max()).bit_length() if n else 1
    if n_bits + rb > 64:
        return np.argsort(keys, kind="stable")
    packed = np.empty(n, dtype=np.uint64)
    for a, b in chunks(n, 1 << 20):
        k = keys[a:b].astype(np.uint64)
        k <<= np.uint64(rb)
        k |= np.arange(a, b, dtype=np.uint64)
        packed[a:b] = k
    packed.sort()
    packed &= np.uint64((1 << rb) - 1)
    return packed.view(np.int64)
