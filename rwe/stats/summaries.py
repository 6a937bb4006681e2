"""Mergeable summaries: the spine every rwe analysis passes through (DESIGN.md principle 3).

:func:`summarize` turns an evaluation set into a :class:`Summary` holding everything the
analyses need and nothing more: no row, no identifier. Rows are cross-classified into *finest
cells* (every combination of the grouping attributes that occurs, "missing" a level of its
own); per cell the summary keeps

* the number of rows and of events (label = 1);
* per model version, a sparse **score histogram**: counts per (score bin, cell, label), with
  the sums of p, p^2, p^3, p^4 and logit(p) per entry when the bins are declared;
* per input feature, the count, mean and sum of squared deviations, the range and the number
  of values other than 0 and 1 (numeric) or the counts of each category (categorical), with
  missing values counted; for a numeric feature with declared bin edges (``feature_edges``,
  fixed on a reference population by the drift analysis) also its histogram on those edges:
  counts and sums of x per bin, with an underflow and an overflow bin.

Summaries of disjoint row sets merge by addition (``a + b``): categories are united, cells
matched, histograms and moments added (Chan et al.'s pairwise update for the moments), so one
machine, a Dask cluster (one summary per partition) and a federation of sites (one summary per
site) reach the same numbers. A merge refuses summaries with different schema versions,
protocol hashes, resolutions, attributes, versions or features, and a source given twice.

Resolution
----------
``"full"``
    one histogram row per distinct score: every point estimate (threshold metrics, AUROC with
    its DeLong variance, average precision, Brier, O/E, calibration fits, ECE) is exactly the
    row-level one, up to floating-point summation order. Full-resolution summaries still merge
    (their score values are united).
declared
    fixed bin edges (uniform on [0, 1], with every decision threshold an edge, or edges given
    by the protocol): the summary is small and shippable. Threshold metrics at a threshold that
    is an edge stay exact; AUROC is within the deterministic bound of
    :func:`rwe.stats.delong_segments` (reported); calibration fits use the mean logit of each
    bin (stated as binned).

Analyses read a summary through :meth:`Summary.segments`: for one grouping and one version,
the histogram rows of every level, ascending in score, as a :class:`Segments` object (the input
of every metric kernel in :mod:`rwe.metrics`).

The patient-cluster bootstrap needs to know which rows belong to which patient. A summary made
with ``keep_clusters=True`` holds, while it lives in memory, anonymous patient numbers and the
histogram entry of each row (:class:`ClusterIndex`); they are never serialized, pickled or
merged (a merged summary has none: patients may repeat across partitions or sites).

References
----------
.. [1] Chan TF, Golub GH, LeVeque RJ. Algorithms for computing the sample variance: analysis
   and recommendations. Am Stat 1983;37(3):242-247 (pairwise merge of means and variances).
.. [2] DeLong ER, DeLong DM, Clarke-Pearson DL. Comparing the areas under two or more
   correlated receiver operating characteristic curves: a nonparametric approach. Biometrics
   1988;44(3):837-845.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from rwe._results import (
    GROUP_SEP,
    LEVEL_SEP,
    canonical_sha256,
    checksum_matches_text,
    compact_members,
    dumps_json_safe,
    json_safe,
    text_sha256,
)
from rwe._validation import check_int, check_real
from rwe.exceptions import InvalidParameterError, RWEError
from rwe.stats._chunks import (
    bincount,
    chunks,
    int_dtype,
    segment_ids,
    segment_sums,
    stable_argsort,
    uint_dtype,
)
from rwe.stats._poisson import poisson1_weights, poisson_bootstrap_counts

__all__ = [
    "SUMMARY_SCHEMA", "FULL", "DEFAULT_N_BINS", "EPS",
    "Summary", "SummarySpec", "CellIndex", "Grouping", "ScoreTable", "NumericFeature",
    "CategoricalFeature", "ClusterIndex", "Segments", "SummaryError", "check_feature_edges",
    "feature_bin_column",
    "summarize", "summarize_arrays", "merge_summaries", "score_bin_edges", "bin_index",
    "poisson1_weights", "poisson_bootstrap_counts",
]

SUMMARY_SCHEMA = "rwe.summary/2"
#: Schemas still read: "rwe.summary/1" hashed the sorted-key JSON of the body
#: (:func:`_sorted_checksum`); /2 hashes the compact JSON in member order, the text the file
#: holds (:func:`_checksum`). A summary read from either is a /2 summary in memory.
READABLE_SUMMARY_SCHEMAS = (SUMMARY_SCHEMA, "rwe.summary/1")
FULL = "full"
DEFAULT_N_BINS = 2048
#: Probabilities are clipped to [EPS, 1 - EPS] before taking logits.
EPS = 1e-12

MSG_MERGE = "summaries cannot be merged: {what} differ ({a!r} vs {b!r})"
MSG_CHECKSUM = "{where}: summary checksum mismatch: the file is truncated or was edited"
MSG_SCHEMA = "{where}: not an rwe summary (schema {found!r}, expected {expected!r})"


class SummaryError(RWEError, ValueError):
    """Summaries that cannot be built, merged or read (one line naming what differs)."""


# ============================================================================ resolution
def score_bin_edges(n_bins: int = DEFAULT_N_BINS, thresholds: Iterable[float] | float | None = (),
                    ) -> np.ndarray:
    """Uniform bin edges on [0, 1] with every threshold inserted as an edge.

    Returns ``n_bins + 1`` edges plus one per threshold that is not already a grid point.
    """
    n_bins = check_int(n_bins, "n_bins", minimum=2)
    if thresholds is None:
        thresholds = ()
    elif isinstance(thresholds, (int, float)):
        thresholds = (thresholds,)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    extra = [check_real(t, "threshold", low=0.0, high=1.0) for t in thresholds]
    return np.unique(np.concatenate([edges, np.asarray(extra, dtype=np.float64)]))


def bin_index(y_score: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each score for ``edges`` (left-closed bins, the last one closed): a score equal to
    an edge falls in the bin that starts there, so ``bin >= j`` if and only if ``score >=
    edges[j]`` (thresholds that are edges stay exact).

    Equal to ``clip(searchsorted(edges, y_score, "right") - 1, 0, len(edges) - 2)``, computed
    without a binary search per score: a lookup table on a uniform grid of 4 cells per bin
    gives a guess, moved up or down while a neighbouring edge says so (the result does not
    depend on the guess).
    """
    s = np.asarray(y_score, dtype=np.float64)
    nb = len(edges) - 1
    dt = np.int32 if len(edges) < 2**31 else np.int64
    lo, hi = float(edges[0]), float(edges[-1])
    if nb < 64 or s.size < 4 * nb or not (hi > lo):
        b = np.searchsorted(edges, s, side="right") - 1
        np.clip(b, 0, nb - 1, out=b)
        return b.astype(dt, copy=False)
    G = 4 * nb
    scale = G / (hi - lo)
    grid = np.searchsorted(edges, lo + np.arange(G + 1) / scale, side="right") - 1
    lut = np.clip(grid, 0, nb - 1).astype(dt)
    out = np.empty(s.size, dtype=dt)
    for a, c in chunks(s.size, 1 << 20):
        x = s[a:c]
        g = (x - lo) * scale
        np.clip(g, 0, G, out=g)
        b = lut[g.astype(np.int64)]
        for step in (1, -1):  # move up while x >= the next edge, then down while x < edge
            while True:
                if step == 1:
                    mv = np.flatnonzero((b < nb - 1) & (x >= edges[np.minimum(b + 1, nb)]))
                else:
                    mv = np.flatnonzero((b > 0) & (x < edges[b]))
                if not mv.size:
                    break
                b[mv] += step
        out[a:c] = b
    return out


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, EPS, 1.0 - EPS)
    return np.log(q) - np.log1p(-q)


# ============================================================================ cells
@dataclass(frozen=True, eq=False)
class Grouping:
    """A grouping of the finest cells: its name (``"overall"``, ``"sex"``, ``"sex x race"``),
    attributes, level labels (``"F"``, ``"F & Black"``) and the level of each cell (-1: the
    cell's value of a component is missing, so it belongs to no level)."""

    name: str
    attrs: tuple[str, ...]
    levels: tuple[str, ...]
    cell_to_level: np.ndarray

    @property
    def n_attributes(self) -> int:
        return len(self.attrs)


def grouping_name(attrs: Sequence[str]) -> str:
    """``"overall"`` for no attribute, else the attributes joined by ``" x "``."""
    return GROUP_SEP.join(attrs) if attrs else "overall"


@dataclass(frozen=True, eq=False)
class CellIndex:
    """The finest cells: attributes, their categories and each cell's category codes.

    ``codes[c, j]`` is the category index of attribute ``j`` in cell ``c`` (-1 = missing).
    """

    attributes: tuple[str, ...]
    categories: tuple[tuple[str, ...], ...]
    codes: np.ndarray

    @property
    def n_cells(self) -> int:
        return int(self.codes.shape[0])

    def grouping(self, attrs: str | Sequence[str] = ()) -> Grouping:
        """The :class:`Grouping` of ``attrs`` (empty: overall), levels ordered by category with
        the first attribute varying slowest."""
        attrs = (attrs,) if isinstance(attrs, str) else tuple(attrs)
        if not attrs:
            return Grouping("overall", (), ("all",), np.zeros(self.n_cells, dtype=np.int64))
        unknown = [a for a in attrs if a not in self.attributes]
        if unknown:
            raise InvalidParameterError(
                f"attribute {unknown[0]!r} is not an attribute of this summary; attributes: "
                f"{', '.join(map(repr, self.attributes)) or 'none'}")
        if len(set(attrs)) != len(attrs):
            raise InvalidParameterError(
                f"a grouping needs distinct attributes, got {attrs!r}")
        idx = [self.attributes.index(a) for a in attrs]
        comp = self.codes[:, idx].astype(np.int64)
        missing = (comp < 0).any(axis=1)
        present = comp[~missing]
        if present.size:
            uniq, inv = np.unique(present, axis=0, return_inverse=True)
        else:
            uniq, inv = np.zeros((0, len(idx)), dtype=np.int64), np.zeros(0, dtype=np.int64)
        c2l = np.full(self.n_cells, -1, dtype=np.int64)
        c2l[~missing] = inv.reshape(-1)
        cats = [self.categories[j] for j in idx]
        levels = tuple(LEVEL_SEP.join(cats[t][int(row[t])] for t in range(len(idx)))
                       for row in uniq)
        return Grouping(grouping_name(attrs), attrs, levels, c2l)

    def to_dict(self) -> dict[str, Any]:
        return {"attributes": list(self.attributes),
                "categories": [list(c) for c in self.categories],
                "codes": self.codes.tolist()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CellIndex:
        attrs = tuple(d["attributes"])
        codes = np.asarray(d["codes"], dtype=np.int32).reshape(len(d["codes"]), len(attrs))
        return cls(attrs, tuple(tuple(c) for c in d["categories"]), codes)


def _merge_categories(a: Sequence[str], b: Sequence[str]) -> tuple[str, ...]:
    """``a`` followed by ``b``'s new categories, each inserted after its predecessor in ``b``
    (keeps the order of ordered categories such as age bands or calendar months)."""
    out = list(a)
    prev = None
    for c in b:
        if c not in out:
            pos = out.index(prev) + 1 if prev is not None else 0
            if prev is None and out:
                # before everything b has seen: keep it ahead of b's next known category
                nxt = next((x for x in b[b.index(c) + 1:] if x in out), None)
                pos = out.index(nxt) if nxt is not None else len(out)
            out.insert(pos, c)
        prev = c
    return tuple(out)


def _union_cells(indexes: Sequence[CellIndex]) -> tuple[CellIndex, list[np.ndarray]]:
    """United cell index of several summaries and the position of every cell of each in it.

    Categories are united in order (:func:`_merge_categories`), every index recoded once, and
    the united cells found by one sort of a mixed-radix key of all cells (the first attribute
    most significant, missing first: the lexicographic order of the codes)."""
    first = indexes[0]
    n_attr = len(first.attributes)
    cats = []
    for j in range(n_attr):
        c: tuple[str, ...] = first.categories[j]
        for ci in indexes[1:]:
            if ci.categories[j] != c:
                c = _merge_categories(c, ci.categories[j])
        cats.append(tuple(c))
    rec = []
    for ci in indexes:
        out = np.empty(ci.codes.shape, dtype=np.int64)
        for j in range(n_attr):
            if ci.categories[j] == cats[j]:
                out[:, j] = ci.codes[:, j]
            else:
                pos = {v: i for i, v in enumerate(cats[j])}
                lut = np.array([pos[v] for v in ci.categories[j]] + [-1], dtype=np.int64)
                out[:, j] = lut[ci.codes[:, j]]  # code -1 takes the appended -1
        rec.append(out)
    both = np.concatenate(rec) if rec else np.zeros((0, n_attr), np.int64)
    sizes = [len(c) + 1 for c in cats]
    if n_attr == 0:
        uniq = np.zeros((1 if both.shape[0] else 0, 0), dtype=np.int32)
        inv = np.zeros(both.shape[0], dtype=np.int64)
    elif math.prod(sizes) < 2**62:
        key = np.zeros(both.shape[0], dtype=np.int64)
        for j in range(n_attr):
            key *= sizes[j]
            key += both[:, j] + 1
        ukey, inv = np.unique(key, return_inverse=True)
        uniq = np.empty((ukey.size, n_attr), dtype=np.int64)
        for j in range(n_attr - 1, -1, -1):
            uniq[:, j] = ukey % sizes[j] - 1
            ukey = ukey // sizes[j]
    else:
        uniq, inv = np.unique(both, axis=0, return_inverse=True)
    inv = np.asarray(inv).reshape(-1)
    bounds = np.cumsum([0, *(ci.codes.shape[0] for ci in indexes)])
    maps = [inv[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return CellIndex(first.attributes, tuple(cats), uniq.astype(np.int32)), maps


def _encode_rows(codes: Sequence[np.ndarray], n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Finest-cell number of every row (the smallest integer dtype that holds the cells) and
    the category codes of each cell.

    ``codes`` holds one int array per attribute (category index, -1 = missing). The mixed-radix
    key of a row is built in the smallest dtype that holds it, chunk by chunk.
    """
    if not codes:
        return np.zeros(n_rows, dtype=np.int8), np.zeros((1 if n_rows else 0, 0), np.int32)
    ks = [int(c.max()) + 2 if c.size else 1 for c in codes]
    total = math.prod(ks)
    if total < 2**62:
        kd = int_dtype(total)
        key = np.zeros(n_rows, dtype=kd)
        stride = 1
        strides = []
        for c, k in zip(codes, ks, strict=True):
            for a, b in chunks(n_rows, 1 << 20):
                part = c[a:b].astype(kd)
                part += 1
                part *= stride
                key[a:b] += part
            strides.append(stride)
            stride *= k
        if stride <= 4 * n_rows + 1_000_000:
            used = np.flatnonzero(bincount(key, minlength=stride))
            lut = np.full(stride, -1, dtype=int_dtype(len(used)))
            lut[used] = np.arange(len(used))
            cell = lut[key]
        else:
            used, cell = np.unique(key, return_inverse=True)
            cell = cell.reshape(-1).astype(int_dtype(len(used)))
        del key
        comp = np.stack([(used // s) % k - 1 for s, k in zip(strides, ks, strict=True)], axis=1)
        return cell, comp.astype(np.int32)
    stacked = np.stack([c.astype(np.int64) for c in codes], axis=1)
    uniq, cell = np.unique(stacked, axis=0, return_inverse=True)
    return cell.reshape(-1).astype(int_dtype(len(uniq))), uniq.astype(np.int32)


# ============================================================================ score tables
def _aggregate(key: np.ndarray, weights: Sequence[np.ndarray] = (), *, sorted_: bool = False,
               runs: bool = False
               ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], np.ndarray | None]:
    """Unique keys (ascending), their counts and the sums of ``weights`` per key, plus the
    position of each input in the output (for ``sorted_`` input: None, positions follow).

    The order is the stable argsort of ``key`` (sums run in input order within a key):
    :func:`rwe.stats._chunks.stable_argsort`, or numpy's timsort for ``runs`` (the
    concatenation of a few sorted runs, as in a merge), which it merges in near-linear time.
    """
    if sorted_:
        k = key
        perm = None
    else:
        perm = np.argsort(key, kind="stable") if runs else stable_argsort(key)
        k = key[perm]
    if k.size == 0:
        return k, np.zeros(0, np.int64), [np.zeros(0) for _ in weights], perm
    new = np.empty(k.size, dtype=bool)
    new[0] = True
    np.not_equal(k[1:], k[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    counts = np.diff(np.append(starts, k.size)).astype(np.int64)
    sums = [np.add.reduceat(w if perm is None else w[perm], starts) for w in weights]
    return k[starts], counts, sums, perm


def _sort_scores(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stable argsort of scores in [0, 1] and the sorted scores, by one ``np.sort``.

    Non-negative doubles order as their bit patterns (62 bits for values <= 1), so the high
    bits of each pattern are packed with the row number into one uint64 and sorted (SIMD
    quicksort: several times faster than ``np.argsort(kind="stable")``). Rows whose patterns
    share the packed prefix but differ below it (rare for continuous scores) can come out of
    order; exactly those runs of equal prefix are re-sorted by the full score, stably.
    """
    n = s.size
    rb = max(1, int(n - 1).bit_length())
    shift = max(0, 62 - (64 - rb))
    bits = s.view(np.uint64)
    packed = np.empty(n, dtype=np.uint64)
    for a, b in chunks(n, 1 << 20):
        k = bits[a:b] >> np.uint64(shift)
        k <<= np.uint64(rb)
        k |= np.arange(a, b, dtype=np.uint64)
        packed[a:b] = k
    packed.sort()
    low = np.uint64((1 << rb) - 1)
    ss = np.empty(n, dtype=np.float64)
    for a, b in chunks(n, 1 << 20):
        np.take(s, (packed[a:b] & low).view(np.int64), out=ss[a:b])
    sub = None
    if shift > 0 and n > 1:
        bad = [np.flatnonzero(ss[a + 1:b + 1] < ss[a:b]) + a + 1
               for a, b in chunks(n - 1, 1 << 20)]
        bad = np.concatenate(bad)
        if bad.size:  # whole runs of the prefix of each out-of-order row
            pre = np.unique(packed[bad] >> np.uint64(rb))
            lo = np.searchsorted(packed, pre << np.uint64(rb), side="left")
            hi = np.searchsorted(packed, (pre + np.uint64(1)) << np.uint64(rb), side="left")
            lens = hi - lo
            sub = np.repeat(lo - np.cumsum(lens) + lens, lens) + np.arange(int(lens.sum()))
    packed &= low
    order = packed.view(np.int64)
    if sub is not None:
        p = np.argsort(ss[sub], kind="stable")
        order[sub] = order[sub][p]
        ss[sub] = ss[sub][p]
    return order, ss


def _sorted_entries(ss: np.ndarray, cs: np.ndarray, ls: np.ndarray, n_cells: int, *,
                    cnt: np.ndarray | None = None, order: np.ndarray | None = None
                    ) -> tuple[ScoreTable, np.ndarray | None]:
    """Full-resolution table of rows (or entries, with counts ``cnt``) sorted by score.

    Blocks of tied scores are sorted by (cell, label) (``cs``, ``ls``, ``cnt`` and ``order``
    are permuted in place) and duplicates merged. Returns the table and the entry-start flag
    of every input (None: every input is its own entry).
    """
    n = ss.size
    new = np.empty(n, dtype=bool)
    if n:
        new[0] = True
        np.not_equal(ss[1:], ss[:-1], out=new[1:])
    if new.all():  # no tied scores: every row is its own entry, entry i in bin i
        count = np.ones(n, dtype=np.uint8) if cnt is None else cnt
        return ScoreTable(ss, None, None, cs, ls, count), None
    values = ss[new]
    b = np.cumsum(new, dtype=np.int32 if n < 2**31 else np.int64)
    b -= 1
    # rows of tied blocks: sort by (cell, label) within the block, then merge duplicates
    tied = ~new
    tied[:-1] |= ~new[1:]
    sub = np.flatnonzero(tied)
    del tied
    key = (b[sub].astype(np.int64) * n_cells + cs[sub]) * 2 + ls[sub]
    p = stable_argsort(key)
    key = key[p]
    for arr in (cs, ls, cnt, order):
        if arr is not None:
            arr[sub] = arr[sub][p]
    est = new
    est[sub[1:][key[1:] != key[:-1]]] = True
    del key, p, sub
    if est.all():
        count = np.ones(n, dtype=np.uint8) if cnt is None else cnt
        return ScoreTable(values, None, b, cs, ls, count), None
    if cnt is None:
        count = _run_lengths(est)
    else:
        count = np.add.reduceat(cnt.astype(np.int64), np.flatnonzero(est))
        count = count.astype(uint_dtype(int(count.max())))
    b, cs, ls = b[est], cs[est], ls[est]
    if b.size == values.size:  # one entry per score after all
        b = None
    return ScoreTable(values, None, b, cs, ls, count), est


def _run_lengths(start: np.ndarray) -> np.ndarray:
    """Lengths of the runs that begin where ``start`` is True (``start[0]`` must be True), in
    the smallest unsigned dtype that holds them."""
    parts = []
    n = start.size
    for a, b in chunks(n, 1 << 20):
        parts.append(np.flatnonzero(start[a:b]) + a)
    pos = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    lens = np.diff(np.append(pos, n))
    return lens.astype(uint_dtype(int(lens.max()) if lens.size else 0))


@dataclass(frozen=True, eq=False)
class ScoreTable:
    """Sparse score histogram of one model version: entries (bin, cell, label) with counts.

    Attributes
    ----------
    values : ndarray or None
        Full resolution: the distinct scores, ascending (``bin`` indexes them).
    edges : ndarray or None
        Declared resolution: the bin edges.
    bin, cell, label, count : ndarray, shape (E,)
        Entries, sorted by (bin, cell, label), unique, ``count > 0``. A full-resolution table
        of distinct scores (one entry per score: entry ``i`` is in bin ``i``) stores no bin
        array (``_bin`` is None): ``bin`` is then made on access and :meth:`bins` gives slices
        of it without making it.
    psum : ndarray, shape (E, 5), or None
        Declared resolution: sums of p, p^2, p^3, p^4 and logit(p) (p clipped to [1e-12,
        1 - 1e-12] for the logit) of the entry's rows.
    """

    values: np.ndarray | None
    edges: np.ndarray | None
    _bin: np.ndarray | None
    cell: np.ndarray
    label: np.ndarray
    count: np.ndarray
    psum: np.ndarray | None = None

    @property
    def bin(self) -> np.ndarray:
        return self._bin if self._bin is not None else self.bins(0, self.n_entries)

    @cached_property
    def value_logit(self) -> np.ndarray:
        """Full resolution: logit of each distinct score (clipped as in :func:`_logit`),
        computed once for the segments of every grouping."""
        return _logit(self.values)

    @cached_property
    def value_powers(self) -> tuple[np.ndarray, np.ndarray]:
        """Full resolution: ``values ** 3`` and ``values ** 4`` (for the moments)."""
        return self.values ** 3, self.values ** 4

    def __getstate__(self):  # the per-value caches are remade on use, never pickled
        return {k: v for k, v in self.__dict__.items()
                if k not in ("value_logit", "value_powers")}

    def bins(self, a: int, b: int) -> np.ndarray:
        """Bins of entries ``a..b-1``."""
        if self._bin is not None:
            return self._bin[a:b]
        return np.arange(a, b, dtype=np.int32 if self.n_entries < 2**31 else np.int64)

    @property
    def one_per_bin(self) -> bool:
        """Full resolution with one entry per distinct score (rows of a level = its entries)."""
        return self.values is not None and self.n_entries == len(self.values)

    @property
    def full(self) -> bool:
        return self.values is not None

    @property
    def n_bins(self) -> int:
        return len(self.values) if self.values is not None else len(self.edges) - 1

    @property
    def n_entries(self) -> int:
        return int(self.count.size)

    def moment(self, k: int) -> np.ndarray:
        """Per-entry sum of p^k (k = 1..4) or, for ``k = "logit"``, of logit(p)."""
        col = {1: 0, 2: 1, 3: 2, 4: 3, "logit": 4}[k]
        if self.values is not None:
            v = self.values[self.bin]
            v = _logit(v) if k == "logit" else v ** k
            return self.count * v
        return self.psum[:, col]

    def threshold_bin(self, threshold: float) -> int:
        """First bin at or above ``threshold``: exact when the resolution is full or the
        threshold is a bin edge (otherwise an error: confusion counts would be binned)."""
        if self.values is not None:
            return int(np.searchsorted(self.values, threshold, side="left"))
        hit = np.flatnonzero(self.edges == threshold)
        if hit.size == 0:
            raise SummaryError(
                f"threshold {threshold!r} is not an edge of this summary's declared score bins: "
                "threshold metrics would be binned; declare it in the summary's thresholds")
        return int(hit[0])

    def _key(self, n_cells: int) -> np.ndarray:
        return (self.bin.astype(np.int64) * n_cells + self.cell) * 2 + self.label

    @staticmethod
    def _from_key(key, count, psum, n_cells, values, edges) -> ScoreTable:
        label = (key % 2).astype(np.int8)
        cell = ((key // 2) % n_cells).astype(int_dtype(n_cells))
        b = key // (2 * n_cells)
        b = b.astype(np.int32 if b.size == 0 or b.max() < 2**31 else np.int64)
        if values is not None and b.size == len(values):  # one entry per score: implicit
            b = None
        count = np.asarray(count)
        return ScoreTable(values, edges, b, cell, label,
                          count.astype(uint_dtype(int(count.max()) if count.size else 0)), psum)

    def to_dict(self) -> dict[str, Any]:
        return {"values": None if self.values is None else self.values.tolist(),
                "edges": None if self.edges is None else self.edges.tolist(),
                "bin": self.bin.tolist(), "cell": self.cell.tolist(),
                "label": self.label.tolist(), "count": self.count.tolist(),
                "psum": None if self.psum is None else self.psum.tolist()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ScoreTable:
        vals = None if d.get("values") is None else np.asarray(d["values"], dtype=np.float64)
        edges = None if d.get("edges") is None else np.asarray(d["edges"], dtype=np.float64)
        psum = None if d.get("psum") is None else np.asarray(d["psum"],
                                                             dtype=np.float64).reshape(-1, 5)
        count = np.asarray(d["count"], dtype=np.int64)
        return cls(vals, edges, np.asarray(d["bin"], dtype=np.int64),
                   np.asarray(d["cell"], dtype=np.int32), np.asarray(d["label"], dtype=np.int8),
                   count.astype(uint_dtype(int(count.max()) if count.size else 0)), psum)


def _score_table(s: np.ndarray, cell: np.ndarray, y: np.ndarray, n_cells: int,
                 edges: np.ndarray | None, keep_rows: bool
                 ) -> tuple[ScoreTable, np.ndarray | None]:
    """Histogram of one score column; with ``keep_rows`` also the entry of every row.

    Full resolution: one stable sort of the scores (:func:`_sort_scores`); rows in score order
    are the entries, except in blocks of tied scores, which are sorted by (cell, label) and
    merged. Memory: the sort's int64 order and the sorted scores, then the entries in compact
    dtypes (bin int32, cell the smallest integer type, label int8, count the smallest unsigned
    type).
    """
    n = s.size
    y8 = y.view(np.int8) if y.dtype == bool else y.astype(np.int8)
    if edges is None:  # full resolution: one bin per distinct score
        if n and np.signbit(s).any():  # -0.0 sorts as a bit pattern above 1.0
            s = s + 0.0
        order, ss = _sort_scores(s)
        cs = cell[order]
        ls = y8[order]
        if not keep_rows:
            del order
        table, est = _sorted_entries(ss, cs, ls, n_cells, order=order if keep_rows else None)
        del ss, cs, ls
        row_entry = None
        if keep_rows:  # the entry of every row (rows in score order -> back to row order)
            row_entry = np.empty(n, dtype=np.int64)
            row_entry[order] = (np.arange(n) if est is None else np.cumsum(est) - 1)
            del order
        return table, row_entry
    b = bin_index(s, edges)
    key = (b.astype(np.int64) * n_cells + cell) * 2 + y8
    del b
    lg = _logit(s)
    weights = [s, s * s, s ** 3, s ** 4, lg]
    space = (len(edges) - 1) * n_cells * 2
    if space <= max(4 * n, 1 << 22):
        # dense key space: one bincount per sum, in row order within an entry, which is the
        # order of the stable sort + reduceat below (the same sums), without any sort
        cnt = np.bincount(key, minlength=space)
        uk = np.flatnonzero(cnt)
        sums = [np.bincount(key, weights=w, minlength=space)[uk] for w in weights]
        cnt = cnt[uk]
        row_entry = None
        if keep_rows:
            lut = np.zeros(space, dtype=np.int64)
            lut[uk] = np.arange(uk.size)
            row_entry = lut[key]
    else:
        uk, cnt, sums, perm = _aggregate(key, weights)
        row_entry = np.searchsorted(uk, key) if keep_rows else None
    psum = np.stack(sums, axis=1) if sums else np.zeros((0, 5))
    return ScoreTable._from_key(uk, cnt, psum, n_cells, None, edges.copy()), row_entry


def _remap_table(t: ScoreTable, cell_map: np.ndarray, n_cells: int,
                 bin_map: np.ndarray | None, values, edges) -> tuple[np.ndarray, ...]:
    b = t.bin.astype(np.int64) if bin_map is None else bin_map[t.bin].astype(np.int64)
    key = (b * n_cells + cell_map[t.cell]) * 2 + t.label
    psum = t.psum
    if psum is None and values is None:  # full -> declared: moments from the exact values
        psum = np.stack([t.moment(k) for k in (1, 2, 3, 4, "logit")], axis=1)
    return key, t.count, psum


def _union_values(values: Sequence[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """United distinct scores of several ascending arrays and each array's positions in it
    (one stable timsort of the concatenation, which merges sorted runs in near-linear time)."""
    allv = np.concatenate(values)
    perm = np.argsort(allv, kind="stable")
    ss = allv[perm]
    new = np.empty(ss.size, dtype=bool)
    if ss.size:
        new[0] = True
        np.not_equal(ss[1:], ss[:-1], out=new[1:])
    inv = np.empty(ss.size, dtype=np.int64)
    inv[perm] = np.cumsum(new) - 1
    cuts = np.cumsum([0] + [len(x) for x in values])
    return ss[new], [inv[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


def _merge_distinct(tables: Sequence[ScoreTable], cell_maps: Sequence[np.ndarray], n_cells: int
                    ) -> ScoreTable:
    """Merge full-resolution tables with one entry per score: their entries are their scores,
    so one stable timsort of the concatenated scores (sorted runs) orders all entries, and
    scores present in several tables are merged like tied rows (:func:`_sorted_entries`)."""
    perm = np.argsort(np.concatenate([t.values for t in tables]), kind="stable")
    ss = np.concatenate([t.values for t in tables])[perm]
    cd = int_dtype(n_cells)
    cs = np.concatenate([m.astype(cd)[t.cell] for t, m in zip(tables, cell_maps,
                                                               strict=True)])[perm]
    ls = np.concatenate([t.label for t in tables])[perm]
    cnt = np.concatenate([t.count for t in tables])[perm]
    return _sorted_entries(ss, cs, ls, n_cells, cnt=cnt)[0]


def _combine_tables(parts, n_cells, values, edges) -> ScoreTable:
    key = np.concatenate([p[0] for p in parts])
    cnt = np.concatenate([p[1] for p in parts]).astype(np.float64)
    has_psum = parts[0][2] is not None
    psum = np.concatenate([p[2] for p in parts]) if has_psum else None
    space = (len(edges) - 1) * n_cells * 2 if edges is not None else 0
    if edges is not None and space <= max(4 * key.size, 1 << 22):
        # dense key space (declared bins): one bincount per sum, in input order within a key,
        # which is the order of the stable sort below (the same sums), without the sort; every
        # entry counts at least one row, so the keys present are those of a positive count
        total = np.bincount(key, weights=cnt, minlength=space)
        uk = np.flatnonzero(total)
        count = np.rint(total[uk]).astype(np.int64)
        ps = None
        if has_psum:
            ps = np.empty((uk.size, 5))
            for j in range(5):
                ps[:, j] = np.bincount(key, weights=psum[:, j], minlength=space)[uk]
        return ScoreTable._from_key(uk, count, ps, n_cells, values, edges)
    weights = [cnt] + ([psum[:, j] for j in range(5)] if has_psum else [])
    uk, _, sums, _ = _aggregate(key, weights, runs=True)  # each part's keys come sorted
    count = np.rint(sums[0]).astype(np.int64)
    ps = np.stack(sums[1:], axis=1) if has_psum else None
    return ScoreTable._from_key(uk, count, ps, n_cells, values, edges)


# ============================================================================ features
@dataclass(frozen=True, eq=False)
class NumericFeature:
    """Per cell: non-missing count, mean and sum of squared deviations; missing count.

    Optionally (made by :func:`summarize`) per cell also the smallest and largest value
    (``min``, ``max``; NaN for a cell without a value) and ``nonbinary``, the number of values
    other than 0 and 1: a feature is binary, exactly, when no cell has such a value. All three
    merge exactly (minimum, maximum, sum).

    With declared ``edges`` (B + 1 increasing values) also a histogram per cell: ``hist[c, j]``
    counts the non-missing values of cell ``c`` in column ``j`` and ``hsum[c, j]`` sums them;
    column 0 holds x < edges[0] (underflow), column j = 1..B the bin [edges[j-1], edges[j])
    (the last bin closed), column B + 1 holds x > edges[-1] (overflow). Counts and sums merge
    by addition; the edges of merged summaries must be equal.
    """

    n: np.ndarray
    mean: np.ndarray
    m2: np.ndarray
    missing: np.ndarray
    kind: str = "numeric"
    min: np.ndarray | None = None
    max: np.ndarray | None = None
    nonbinary: np.ndarray | None = None
    edges: np.ndarray | None = None
    hist: np.ndarray | None = None
    hsum: np.ndarray | None = None

    def pooled(self, mask: np.ndarray | None = None) -> tuple[float, float, float, int]:
        """(n, mean, sd with ddof = 1, missing) over the cells in ``mask`` (Chan merge)."""
        sel = slice(None) if mask is None else mask
        n, mean, m2 = _chan(self.n[sel], self.mean[sel], self.m2[sel])
        sd = math.sqrt(m2 / (n - 1)) if n > 1 else math.nan
        return float(n), mean, sd, int(self.missing[sel].sum())

    def pooled_range(self, mask: np.ndarray | None = None) -> tuple[float, float]:
        """(smallest, largest) value over the cells in ``mask``; NaN when unknown or empty."""
        if self.min is None or self.max is None:
            return math.nan, math.nan
        sel = slice(None) if mask is None else mask
        lo, hi = self.min[sel], self.max[sel]
        if not np.isfinite(lo).any():
            return math.nan, math.nan
        return float(np.nanmin(lo)), float(np.nanmax(hi))

    def is_binary(self, mask: np.ndarray | None = None) -> bool | None:
        """True when every value in the cells of ``mask`` is 0 or 1 (vacuously for no value);
        None when the summary does not record it."""
        if self.nonbinary is None:
            return None
        sel = slice(None) if mask is None else mask
        return bool(self.nonbinary[sel].sum() == 0)

    def to_dict(self) -> dict[str, Any]:
        out = {"kind": "numeric", "n": self.n.tolist(), "mean": json_safe(self.mean),
               "m2": json_safe(self.m2), "missing": self.missing.tolist()}
        if self.min is not None and self.max is not None and self.nonbinary is not None:
            out.update(min=json_safe(self.min), max=json_safe(self.max),
                       nonbinary=self.nonbinary.tolist())
        if self.edges is not None:
            out.update(edges=self.edges.tolist(), hist=self.hist.tolist(),
                       hsum=self.hsum.tolist())
        return out


@dataclass(frozen=True, eq=False)
class CategoricalFeature:
    """Per cell: the count of each category, the last column counting missing values."""

    categories: tuple[str, ...]
    counts: np.ndarray
    kind: str = "categorical"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "categorical", "categories": list(self.categories),
                "counts": self.counts.tolist()}


def _chan(n: np.ndarray, mean: np.ndarray, m2: np.ndarray) -> tuple[float, float, float]:
    """Pooled count, mean and sum of squared deviations of several groups (exact merge)."""
    tot = float(n.sum())
    if tot == 0:
        return 0.0, math.nan, math.nan
    ok = n > 0
    mu = float((n[ok] * mean[ok]).sum() / tot)
    m2t = float(m2[ok].sum() + (n[ok] * (mean[ok] - mu) ** 2).sum())
    return tot, mu, m2t


def check_feature_edges(edges: Any, name: str) -> np.ndarray:
    """Declared bin edges of a numeric feature: finite, strictly increasing, at least two."""
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.size < 2 or not np.isfinite(e).all() or np.any(np.diff(e) <= 0):
        raise InvalidParameterError(
            f"feature_edges[{name!r}] must be at least two finite, strictly increasing values, "
            f"got {e.ravel().tolist()[:6]}{'...' if e.size > 6 else ''}")
    return e


def feature_bin_column(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Histogram column of each value for ``edges``: 0 underflow (x < edges[0]), j = 1..B the
    bin [edges[j-1], edges[j]) (the last bin closed), B + 1 overflow (x > edges[-1])."""
    col = np.searchsorted(edges, x, side="right")
    col[x == edges[-1]] = len(edges) - 1
    return col


def _numeric_feature(x: np.ndarray, cell: np.ndarray, n_cells: int,
                     order: np.ndarray | None = None,
                     edges: np.ndarray | None = None) -> NumericFeature:
    """Moments per cell with pairwise summation (``np.add.reduceat`` over the rows sorted by
    cell; ``order`` is that sort, shared by the features of one summary) and one correction
    pass of the mean (the corrected two-pass algorithm, Chan et al. 1983): mean and variance
    per cell as accurate as numpy's own ``mean`` and ``var`` of the cell's values."""
    if order is None:
        order = np.argsort(cell, kind="stable")
    xs = x[order]
    cs = cell[order]
    ok = ~np.isnan(xs)
    missing = np.bincount(cs[~ok], minlength=n_cells).astype(np.int64)
    xs, cs = xs[ok], cs[ok]
    n = np.bincount(cs, minlength=n_cells).astype(np.int64)
    has = n > 0
    starts = np.searchsorted(cs, np.flatnonzero(has))

    def per_cell(v, ufunc=np.add, empty=0.0):
        out = np.full(n_cells, empty)
        if starts.size:
            out[has] = ufunc.reduceat(v, starts)
        return out

    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(has, per_cell(xs) / np.maximum(n, 1), np.nan)
        d = xs - mean[cs]
        mean = np.where(has, mean + per_cell(d) / np.maximum(n, 1), np.nan)
    d = xs - mean[cs]
    m2 = np.where(has, per_cell(d * d), 0.0)
    lo = per_cell(xs, np.minimum, np.nan)
    hi = per_cell(xs, np.maximum, np.nan)
    nonbinary = np.bincount(cs, weights=(xs != 0) & (xs != 1), minlength=n_cells)
    hist_kw: dict[str, Any] = {}
    if edges is not None:  # histogram on the declared edges (drift)
        width = len(edges) + 1
        key = cs.astype(np.int64) * width + feature_bin_column(xs, edges)
        hist_kw = {"edges": edges.copy(),
                   "hist": np.bincount(key, minlength=n_cells * width).reshape(
                       n_cells, width).astype(np.int64),
                   "hsum": np.bincount(key, weights=xs, minlength=n_cells * width).reshape(
                       n_cells, width)}
    return NumericFeature(n, mean, m2, missing, min=lo, max=hi,
                          nonbinary=nonbinary.astype(np.int64), **hist_kw)


def _merge_numeric(parts: list[tuple[NumericFeature, np.ndarray]], n_cells: int
                   ) -> NumericFeature:
    """Moments of united cells from the inputs' (Chan et al. 1983, the k-way form of their
    pairwise update): n = sum n_i, mean = sum n_i mean_i / n and
    m2 = sum m2_i + sum n_i (mean_i - mean)^2, deviations taken from the merged mean."""
    cm = np.concatenate([m for _, m in parts]).astype(np.int64)
    nn = np.concatenate([f.n for f, _ in parts]).astype(np.float64)
    has_in = nn > 0
    mm = np.where(has_in, np.concatenate([f.mean for f, _ in parts]), 0.0)
    qq = np.where(has_in, np.concatenate([f.m2 for f, _ in parts]), 0.0)
    n = np.bincount(cm, weights=nn, minlength=n_cells)
    has = n > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(has, np.bincount(cm, weights=nn * mm, minlength=n_cells)
                        / np.where(has, n, 1), np.nan)
    dev = np.where(has_in, mm - np.nan_to_num(mean)[cm], 0.0)
    m2 = np.bincount(cm, weights=qq + nn * dev * dev, minlength=n_cells)
    m2 = np.where(has, m2, 0.0)  # as summarize: no value, no squared deviation
    missing = np.bincount(cm, weights=np.concatenate([f.missing for f, _ in parts]),
                          minlength=n_cells).astype(np.int64)
    extra: dict[str, Any] = {}
    if all(f.min is not None and f.max is not None and f.nonbinary is not None
           for f, _ in parts):
        lo = np.full(n_cells, np.nan)
        hi = np.full(n_cells, np.nan)
        np.fmin.at(lo, cm, np.concatenate([f.min for f, _ in parts]))  # fmin skips NaN
        np.fmax.at(hi, cm, np.concatenate([f.max for f, _ in parts]))
        nonbinary = np.bincount(cm, weights=np.concatenate([f.nonbinary for f, _ in parts]),
                                minlength=n_cells).astype(np.int64)
        extra = {"min": lo, "max": hi, "nonbinary": nonbinary}
    edges = parts[0][0].edges
    if edges is not None:
        hist = np.zeros((n_cells, len(edges) + 1), dtype=np.int64)
        hsum = np.zeros((n_cells, len(edges) + 1))
        np.add.at(hist, cm, np.concatenate([f.hist for f, _ in parts]))
        np.add.at(hsum, cm, np.concatenate([f.hsum for f, _ in parts]))
        extra.update(edges=edges.copy(), hist=hist, hsum=hsum)
    return NumericFeature(n.astype(np.int64), mean, m2, missing, **extra)


def _merge_categorical(parts: list[tuple[CategoricalFeature, np.ndarray]], n_cells: int
                       ) -> CategoricalFeature:
    cats: tuple[str, ...] = ()
    for f, _ in parts:
        cats = _merge_categories(cats, f.categories)
    counts = np.zeros((n_cells, len(cats) + 1), dtype=np.int64)
    for f, cmap in parts:
        cols = np.array([cats.index(c) for c in f.categories] + [len(cats)], dtype=np.int64)
        np.add.at(counts, (cmap[:, None], cols[None, :]), f.counts)
    return CategoricalFeature(cats, counts)


def _feature_from_dict(d: Mapping[str, Any]):
    if d["kind"] == "numeric":
        def arr(v):
            return np.array([np.nan if x is None else x for x in v], dtype=np.float64)
        extra = {}
        if d.get("nonbinary") is not None:
            extra = {"min": arr(d["min"]), "max": arr(d["max"]),
                     "nonbinary": np.asarray(d["nonbinary"], dtype=np.int64)}
        if d.get("edges") is not None:
            edges = np.asarray(d["edges"], dtype=np.float64)
            width = len(edges) + 1
            extra.update(edges=edges,
                         hist=np.asarray(d["hist"], dtype=np.int64).reshape(-1, width),
                         hsum=np.asarray(d["hsum"], dtype=np.float64).reshape(-1, width))
        return NumericFeature(np.asarray(d["n"], dtype=np.int64), arr(d["mean"]), arr(d["m2"]),
                              np.asarray(d["missing"], dtype=np.int64), **extra)
    counts = np.asarray(d["counts"], dtype=np.int64).reshape(-1, len(d["categories"]) + 1)
    return CategoricalFeature(tuple(d["categories"]), counts)


# ============================================================================ clusters
@dataclass(frozen=True, eq=False)
class ClusterIndex:
    """Transient, in-memory only: anonymous patient numbers (0..P-1) of the rows and the
    histogram entry of each row per version (for the patient-cluster bootstrap)."""

    patient: np.ndarray
    row_entry: dict[str, np.ndarray]
    cell: np.ndarray
    label: np.ndarray

    @property
    def n_patients(self) -> int:
        return int(self.patient.max()) + 1 if self.patient.size else 0

    @property
    def repeated(self) -> bool:
        return self.n_patients < self.patient.size


# ============================================================================ segments
class Segments:
    """Histogram rows of several segments (levels), ascending in score within each.

    The input of every metric kernel (:mod:`rwe.metrics`). Row ``r`` of segment ``s`` (rows
    ``starts[s]:starts[s + 1]``) holds ``neg[r]`` controls and ``pos[r]`` cases sharing one
    score (``exact``) or one score bin. Representative probability ``p`` and logit ``lp`` of a
    row: the score itself (exact) or the bin's means; ``moments(label)`` gives the per-row sums
    of p, p^2, p^3, p^4 of that label's rows; ``above`` flags rows at or above the threshold.

    Memory. Segments of a summary hold their counts as the summary does (``neg_count``,
    ``pos_count``: compact unsigned integers) and, per row, the score bin (``bins``); ``neg``,
    ``pos``, ``p``, ``lp`` and ``above`` are full float64 / bool arrays made on first use.
    Kernels that walk the rows in chunks (:meth:`rows`, :meth:`counts`, :meth:`p_rows`,
    :meth:`above_rows`; confusion counts, DeLong, curves) never make them, so ten million rows
    cost a few bytes each, not a dozen float64 temporaries.

    Parameters
    ----------
    starts : array_like of int
        First row of each segment.
    neg, pos : array_like
        Controls and cases per row (any real dtype).
    exact : bool
        One row per distinct score (True) or per score bin.
    above, p, lp : array_like or callable, optional
        Per-row threshold flags, probabilities and logits (a callable is called once, on use).
    moments : callable, optional
        ``moments(label)`` -> (rows, 4) per-row sums of p^k (binned rows).
    labels : sequence of str, optional
    bins : array_like of int, optional
        Score bin of each row; with ``threshold_bin``, ``above = bins >= threshold_bin``; with
        ``bin_values``, ``p = bin_values[bins]`` (exact rows). None with ``bin_values``: row
        ``i`` is bin ``i`` (one segment of every distinct score).
    """

    def __init__(self, starts, neg, pos, *, exact: bool, above=None, p=None, lp=None,
                 moments=None, labels: Sequence[str] | None = None, bins=None,
                 threshold_bin: int | None = None, bin_values: np.ndarray | None = None,
                 table: ScoreTable | None = None):
        self.starts = np.asarray(starts, dtype=np.int64)
        self.neg_count = np.asarray(neg)
        self.pos_count = np.asarray(pos)
        self.exact = bool(exact)
        self._above = above
        self._p = p
        self._lp = lp
        self._moments = moments
        self.bins = None if bins is None else np.asarray(bins)
        self._kt = threshold_bin
        self._values = bin_values
        self._table = table if table is not None and bin_values is table.values else None
        self.labels = tuple(labels) if labels is not None else tuple(
            str(i) for i in range(len(self.starts)))
        #: Logistic fits of the calibration kernels on these rows, by model (``"slope"``,
        #: ``"offset"``): ``(LogisticFit, whether predictions of exactly 0 or 1 were left
        #: out)``, so that a test on the same rows (the slope x level likelihood-ratio test)
        #: reuses the fit instead of refitting it.
        self.fits: dict[str, tuple[Any, bool]] = {}

    @classmethod
    def from_arrays(cls, y_true, y_score, *, threshold: float | None = None) -> Segments:
        """One segment from row arrays (exact: one row per distinct score)."""
        y = np.asarray(y_true, dtype=bool)
        s = np.asarray(y_score, dtype=np.float64)
        values, inv = np.unique(s, return_inverse=True)
        inv = inv.reshape(-1)
        pos = np.bincount(inv, weights=y, minlength=values.size)
        tot = np.bincount(inv, minlength=values.size).astype(np.float64)
        seg = cls(np.zeros(1, dtype=np.int64), tot - pos, pos, exact=True,
                  above=None if threshold is None else values >= threshold, p=values,
                  lp=_logit(values))
        return seg

    @property
    def has_threshold(self) -> bool:
        """Whether the rows carry threshold flags (:attr:`above`)."""
        return self._above is not None or self._kt is not None

    @property
    def n_segments(self) -> int:
        return len(self.starts)

    @property
    def n_rows(self) -> int:
        return int(self.neg_count.size)

    @cached_property
    def lengths(self) -> np.ndarray:
        return np.diff(np.append(self.starts, self.n_rows))

    @cached_property
    def row_segment(self) -> np.ndarray:
        return np.repeat(np.arange(self.n_segments), self.lengths)

    # ------------------------------------------------------------------ row access
    @cached_property
    def neg(self) -> np.ndarray:
        return np.asarray(self.neg_count, dtype=np.float64)

    @cached_property
    def pos(self) -> np.ndarray:
        return np.asarray(self.pos_count, dtype=np.float64)

    def rows(self) -> Iterable[tuple[int, int, int, np.ndarray | None]]:
        """Chunks of rows: ``(a, b, s0, ids)``, rows ``a..b-1`` in segments ``s0 + ids``
        (``ids`` None: all in segment ``s0``; see :func:`rwe.stats._chunks.segment_ids`)."""
        for a, b in chunks(self.n_rows):
            s0, ids = segment_ids(self.starts, a, b)
            yield a, b, s0, ids

    def counts(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """float64 controls and cases of rows ``a..b-1``."""
        return (np.asarray(self.neg_count[a:b], dtype=np.float64),
                np.asarray(self.pos_count[a:b], dtype=np.float64))

    def _bins(self, a: int, b: int) -> np.ndarray:
        return self.bins[a:b] if self.bins is not None else np.arange(a, b)

    def p_rows(self, a: int, b: int) -> np.ndarray:
        """Representative probability of rows ``a..b-1``."""
        if self._values is not None and "p" not in self.__dict__:
            return self._values[a:b] if self.bins is None else self._values[self.bins[a:b]]
        return self.p[a:b]

    def above_rows(self, a: int, b: int) -> np.ndarray:
        """Threshold flags of rows ``a..b-1``."""
        if self._kt is not None and self._above is None:
            return self._bins(a, b) >= self._kt
        return self.above[a:b]

    def seg_sum(self, v: np.ndarray) -> np.ndarray:
        """Sum of a per-row array over each segment (0 for an empty segment)."""
        out = np.zeros(self.n_segments)
        ne = self.lengths > 0
        if v.size and ne.any():
            out[ne] = np.add.reduceat(np.asarray(v, dtype=np.float64), self.starts[ne])
        return out

    def _count_sum(self, c: np.ndarray) -> np.ndarray:
        if c.dtype == np.float64:
            return self.seg_sum(c)
        return segment_sums(self.starts, self.n_rows, lambda a, b: (c[a:b],), 1)[:, 0]

    @cached_property
    def n_pos(self) -> np.ndarray:
        return self._count_sum(self.pos_count)

    @cached_property
    def n_neg(self) -> np.ndarray:
        return self._count_sum(self.neg_count)

    @property
    def n(self) -> np.ndarray:
        return self.n_pos + self.n_neg

    @cached_property
    def above(self) -> np.ndarray:
        if self._above is None:
            if self._kt is not None:
                return self._bins(0, self.n_rows) >= self._kt
            raise InvalidParameterError("these segments were built without a threshold")
        return self._above() if callable(self._above) else self._above

    @cached_property
    def confusion(self) -> dict[str, np.ndarray]:
        """TP, FN, FP, TN per segment at the threshold (exact)."""
        if self._kt is None and self._above is None:
            raise InvalidParameterError("these segments were built without a threshold")

        def cols(a, b):
            neg, pos = self.counts(a, b)
            ab = self.above_rows(a, b)
            return pos * ab, neg * ab

        tp, fp = segment_sums(self.starts, self.n_rows, cols, 2).T
        return {"tp": tp, "fn": self.n_pos - tp, "fp": fp, "tn": self.n_neg - fp}

    @cached_property
    def p(self) -> np.ndarray:
        if self._values is not None:
            return self._values if self.bins is None else self._values[self.bins]
        return self._p() if callable(self._p) else self._p

    @cached_property
    def lp(self) -> np.ndarray:
        if self._table is not None:  # the same elementwise logit, of each value once
            lv = self._table.value_logit
            return lv if self.bins is None else lv[self.bins]
        if self._values is not None:
            return _logit(self.p)
        return self._lp() if callable(self._lp) else self._lp

    def moments(self, label: int) -> np.ndarray:
        """(rows, 4): sums of p, p^2, p^3, p^4 over the rows of class ``label`` (0 or 1)."""
        if self._moments is not None:
            return self._moments(label)
        w = self.pos if label else self.neg
        p = self.p
        return np.stack([w * p, w * p * p, w * p ** 3, w * p ** 4], axis=1)

    def seg_moments(self, label: int) -> np.ndarray:
        """(segments, 4): the sums of p^k of class ``label`` per segment."""
        if self._moments is not None:
            m = self.moments(label)
            return np.stack([self.seg_sum(m[:, j]) for j in range(4)], axis=1)

        def cols(a, b):
            w = self.counts(a, b)[1 if label else 0]
            p = self.p_rows(a, b)
            if self._table is not None and "p" not in self.__dict__:  # powers once per value
                p3, p4 = self._table.value_powers
                b_ = self._bins(a, b)
                return w * p, w * p * p, w * p3[b_], w * p4[b_]
            return w * p, w * p * p, w * p ** 3, w * p ** 4

        return segment_sums(self.starts, self.n_rows, cols, 4)


def _by_level(lev_of_cell: np.ndarray, cell: np.ndarray, n_levels: int, columns
              ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Entries reordered level by level, entry order kept within a level, entries of no level
    (-1) dropped: a counting sort in chunks (no full-length permutation).

    ``columns`` are callables ``f(a, b)`` giving a per-entry column for entries ``a..b-1``.
    Returns the first position of each level and the reordered columns.
    """
    E = cell.size
    per = np.zeros(n_levels, dtype=np.int64)
    for a, b in chunks(E, 1 << 20):
        lv = lev_of_cell[cell[a:b]]
        per += np.bincount(lv[lv >= 0], minlength=n_levels)
    starts = np.cumsum(per) - per
    total = int(per.sum())
    outs = []
    for f in columns:
        proto = f(0, 0)
        outs.append(np.empty((total,) + proto.shape[1:], dtype=proto.dtype))
    cursor = starts.copy()
    for a, b in chunks(E, 1 << 18):
        lv = lev_of_cell[cell[a:b]]
        order = np.argsort(lv, kind="stable")
        ls = lv[order]
        k0 = int(np.searchsorted(ls, 0))
        order, ls = order[k0:], ls[k0:]
        cc = np.bincount(ls, minlength=n_levels)
        first = np.cumsum(cc) - cc
        dest = cursor[ls] + (np.arange(ls.size) - first[ls])
        for o, f in zip(outs, columns, strict=True):
            o[dest] = f(a, b)[order]
        cursor += cc
    return starts, outs


# ============================================================================ the summary
@dataclass(frozen=True)
class SummarySpec:
    """What :func:`summarize` keeps: grouping attributes, versions, features and resolution.

    Parameters
    ----------
    attributes : sequence of str
        Grouping columns cross-classified into the finest cells (attributes, site,
        equipment, derived bands and windows). Default: every grouping column of the data.
    versions : sequence of str, optional
        Model versions (default all).
    features : sequence of str
        Input features whose per-cell moments (or category counts) are kept.
    resolution : "full", int or sequence of float
        ``"full"``, a number of uniform bins on [0, 1], or explicit edges.
    thresholds : sequence of float
        Decision thresholds, made bin edges at a declared resolution (exact threshold metrics).
    protocol_sha256 : str, optional
        Hash of the protocol the summary serves (merges refuse different protocols).
    source : str, optional
        Name of the site or partition that made the summary.
    feature_edges : dict of str to sequence of float, optional
        Declared bin edges of numeric features (fixed on a reference population, e.g. by
        :func:`rwe.drift.reference_edges`): the summary keeps each one's histogram on them.
    """

    attributes: tuple[str, ...] | None = None
    versions: tuple[str, ...] | None = None
    features: tuple[str, ...] = ()
    resolution: Any = FULL
    thresholds: tuple[float, ...] = ()
    protocol_sha256: str | None = None
    source: str | None = None
    feature_edges: Mapping[str, Any] | None = None

    def edges(self) -> np.ndarray | None:
        r = self.resolution
        if isinstance(r, str):
            if r != FULL:
                raise InvalidParameterError(
                    f"resolution={r!r} is not valid; give 'full', a number of bins or edges")
            return None
        if isinstance(r, (int, np.integer)) and not isinstance(r, bool):
            return score_bin_edges(int(r), self.thresholds)
        e = np.asarray(r, dtype=np.float64)
        if e.ndim != 1 or e.size < 2 or np.any(np.diff(e) <= 0) or e[0] > 0 or e[-1] < 1:
            raise InvalidParameterError(
                "resolution edges must be strictly increasing and cover [0, 1], got "
                f"{e.tolist()[:6]}{'...' if e.size > 6 else ''}")
        return np.unique(np.concatenate([e, np.asarray(self.thresholds, dtype=np.float64)]))


@dataclass(frozen=True, eq=False)
class Summary:
    """Everything the analyses need, per finest cell; no rows, no identifiers; mergeable.

    Build one with :func:`summarize`; merge with ``+`` (:func:`merge_summaries`); save with
    :meth:`to_dict` / :meth:`save`, read with :meth:`from_dict` / :meth:`load`.

    Attributes
    ----------
    cells : CellIndex
    n, events : ndarray, shape (cells,)
        Rows and events (label = 1) per cell; ``events`` is None without a binary label.
    scores : dict of str to ScoreTable
        One histogram per model version.
    features : dict of str to NumericFeature or CategoricalFeature
    resolution : str
        ``"full"`` or ``"binned"``.
    protocol_sha256 : str or None
    sources : tuple of dict
        Where the rows came from (``{"source": name, "rows": n, ...}``), one per merged
        summary.
    """

    cells: CellIndex
    n: np.ndarray
    events: np.ndarray | None
    scores: dict[str, ScoreTable]
    features: dict[str, Any]
    resolution: str = FULL
    protocol_sha256: str | None = None
    sources: tuple[dict, ...] = ()
    schema: str = SUMMARY_SCHEMA
    _clusters: ClusterIndex | None = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ basic facts
    @property
    def n_rows(self) -> int:
        return int(self.n.sum())

    @property
    def n_events(self) -> int | None:
        return None if self.events is None else int(self.events.sum())

    @property
    def attributes(self) -> tuple[str, ...]:
        return self.cells.attributes

    @property
    def versions(self) -> list[str]:
        return list(self.scores)

    @property
    def repeats_patients(self) -> bool:
        """Whether some source reported fewer patients than rows (clustered rows)."""
        return any(src.get("patients") is not None and src["patients"] < src.get("rows", 0)
                   for src in self.sources)

    @property
    def clusters(self) -> ClusterIndex | None:
        """Patient index of the rows (only in a summary made with ``keep_clusters=True``)."""
        return self._clusters

    def grouping(self, attrs: str | Sequence[str] = ()) -> Grouping:
        return self.cells.grouping(attrs)

    def score_table(self, version: str | None = None) -> ScoreTable:
        if version is None:
            if not self.scores:
                raise InvalidParameterError("this summary holds no score histogram")
            return next(iter(self.scores.values()))
        try:
            return self.scores[str(version)]
        except KeyError:
            raise InvalidParameterError(
                f"version={version!r} is not in this summary; versions: "
                f"{', '.join(map(repr, self.scores)) or 'none'}") from None

    def level_counts(self, grouping: Grouping) -> tuple[np.ndarray, np.ndarray | None]:
        """Rows and events per level of ``grouping``."""
        c2l = grouping.cell_to_level
        ok = c2l >= 0
        L = len(grouping.levels)
        n = np.bincount(c2l[ok], weights=self.n[ok], minlength=L).astype(np.int64)
        ev = None if self.events is None else np.bincount(
            c2l[ok], weights=self.events[ok], minlength=L).astype(np.int64)
        return n, ev

    def feature_histogram(self, name: str, grouping: Grouping
                          ) -> tuple[tuple[str, ...] | np.ndarray, np.ndarray, np.ndarray | None]:
        """Histogram of a feature per level of ``grouping``.

        Returns ``(edges, counts, sums)`` for a numeric feature with declared edges (counts
        and sums of x of shape (levels, B + 2): underflow, the B bins, overflow; see
        :class:`NumericFeature`), ``(categories, counts, None)`` for a categorical one (shape
        (levels, K + 1), the last column counting missing values). Missing values of a numeric
        feature are in ``self.features[name].missing``.
        """
        try:
            f = self.features[name]
        except KeyError:
            raise InvalidParameterError(
                f"feature {name!r} is not in this summary; features: "
                f"{', '.join(map(repr, self.features)) or 'none'}") from None
        c2l = grouping.cell_to_level
        ok = c2l >= 0
        L = len(grouping.levels)

        def by_level(a: np.ndarray) -> np.ndarray:
            out = np.zeros((L, a.shape[1]), dtype=a.dtype)
            np.add.at(out, c2l[ok], a[ok])
            return out

        if f.kind == "categorical":
            return f.categories, by_level(f.counts), None
        if f.edges is None:
            raise InvalidParameterError(
                f"numeric feature {name!r} was summarized without declared bin edges "
                "(feature_edges): it has moments but no histogram")
        return f.edges, by_level(f.hist), by_level(f.hsum)

    # ------------------------------------------------------------------ segments
    def segments(self, grouping: Grouping, version: str | None = None, *,
                 threshold: float | None = None) -> Segments:
        """Histogram rows of every level of ``grouping`` for one version (see
        :class:`Segments`); rows of one level are aggregated over its cells.

        The entries (in score-bin order) are dealt out to the levels by a chunked counting
        sort, so each level's entries stay in bin order; entries of one level sharing a bin
        (several cells or both labels) are then summed into one row. A full-resolution table
        with one entry per distinct score needs no summing: its rows are its entries.
        """
        t = self.score_table(version)
        L = len(grouping.levels)
        c2l = grouping.cell_to_level
        kt = None if threshold is None else t.threshold_bin(threshold)
        one_per_bin = t.one_per_bin
        lab, cnt = t.label, t.count
        labu = lab.view(np.uint8) if lab.dtype.itemsize == 1 else lab.astype(np.uint8)

        def pos_of(a, b):
            return cnt[a:b] * labu[a:b]

        def neg_of(a, b):
            out = cnt[a:b] * labu[a:b]
            np.subtract(cnt[a:b], out, out=out)
            return out

        cols = [t.bins]
        if one_per_bin:  # rows = entries: only bins and the two counts are needed
            cols += [neg_of, pos_of]
        else:
            cols += [lambda a, b: lab[a:b], lambda a, b: cnt[a:b]]
            if t.psum is not None:
                cols.append(lambda a, b: t.psum[a:b])
        if L == 1 and (c2l >= 0).all():  # one level of every entry: entries in order
            starts = np.zeros(1, dtype=np.int64)
            arrs = [t._bin] + [f(0, t.n_entries) for f in cols[1:]]
        else:
            starts, arrs = _by_level(c2l.astype(int_dtype(L)), t.cell, L, cols)
        if one_per_bin:  # bins None: row i is bin i
            bin_r, neg, pos = arrs
            return Segments(starts, neg, pos, exact=True, bins=bin_r, threshold_bin=kt,
                            bin_values=t.values, labels=grouping.levels, table=t)
        bin_e, lab_e, cnt_e = arrs[:3]
        ps = arrs[3] if t.psum is not None else None
        n_e = bin_e.size
        new = np.empty(n_e, dtype=bool)
        if n_e:
            new[0] = True
            np.not_equal(bin_e[1:], bin_e[:-1], out=new[1:])
        new[starts[starts < n_e]] = True
        rs = np.flatnonzero(new)
        del new
        lab = lab_e.astype(bool)
        cf = cnt_e.astype(np.int64)
        pos = np.add.reduceat(np.where(lab, cf, 0), rs) if n_e else np.zeros(0, np.int64)
        neg = np.add.reduceat(np.where(lab, 0, cf), rs) if n_e else np.zeros(0, np.int64)
        del cf
        hi = int(max(pos.max(), neg.max())) if n_e else 0
        pos, neg = pos.astype(uint_dtype(hi)), neg.astype(uint_dtype(hi))
        bin_r = bin_e[rs]
        starts = np.searchsorted(rs, starts)
        if t.full:
            return Segments(starts, neg, pos, exact=True, bins=bin_r, threshold_bin=kt,
                            bin_values=t.values, labels=grouping.levels, table=t)
        tot = pos.astype(np.float64) + neg

        def sums(cols, label=None):
            w = ps[:, cols] if label is None else np.where(
                (lab == bool(label))[:, None], ps[:, cols], 0.0)
            return np.add.reduceat(w, rs, axis=0) if n_e else np.zeros((0, len(cols)))

        def p_fn():
            with np.errstate(invalid="ignore", divide="ignore"):
                return sums([0])[:, 0] / tot

        def lp_fn():
            with np.errstate(invalid="ignore", divide="ignore"):
                return sums([4])[:, 0] / tot

        def mom_fn(label):
            return sums([0, 1, 2, 3], label)

        return Segments(starts, neg, pos, exact=False, bins=bin_r, threshold_bin=kt, p=p_fn,
                        lp=lp_fn, moments=mom_fn, labels=grouping.levels)

    # ------------------------------------------------------------------ resolution
    def coarsen(self, edges: np.ndarray | int, thresholds: Sequence[float] = ()) -> Summary:
        """The same summary at a declared resolution (``edges``, or a number of uniform bins
        with ``thresholds`` as edges). Cluster information is kept (rows map to the coarse
        entries), so a coarsened summary can still be cluster-bootstrapped in memory."""
        if not isinstance(edges, np.ndarray):
            edges = score_bin_edges(int(edges), thresholds)
        new_scores = {}
        new_rows = {}
        C = self.cells.n_cells
        for v, t in self.scores.items():
            if t.full:
                bmap = bin_index(t.values, edges)
            else:
                if not np.array_equal(t.edges, edges):
                    mids = 0.5 * (t.edges[:-1] + t.edges[1:])
                    if not np.isin(edges, t.edges).all():
                        raise SummaryError("a binned summary can only be coarsened to a subset "
                                           "of its own edges")
                    bmap = bin_index(mids, edges)
                else:
                    bmap = None
            key, cnt, psum = _remap_table(t, np.arange(C), C, bmap, None, edges)
            new_scores[v] = _combine_tables([(key, cnt, psum)], C, None, edges.copy())
            if self._clusters is not None and v in self._clusters.row_entry:
                new_key = key[self._clusters.row_entry[v]]
                new_rows[v] = np.searchsorted(new_scores[v]._key(C), new_key)
        cl = None
        if self._clusters is not None:
            cl = replace(self._clusters, row_entry=new_rows)
        return replace(self, scores=new_scores, resolution="binned", _clusters=cl)

    def without_clusters(self) -> Summary:
        return replace(self, _clusters=None)

    # ------------------------------------------------------------------ cells
    def select_cells(self, mask: np.ndarray) -> Summary:
        """The summary of the rows of the cells where ``mask`` (one flag per finest cell) is
        true: counts, histogram entries and features of the other cells are dropped (e.g. the
        calendar windows of a baseline period). Sources are kept; cluster information is not."""
        m = np.asarray(mask, dtype=bool)
        if m.shape != (self.cells.n_cells,):
            raise InvalidParameterError(
                f"mask must have one flag per cell ({self.cells.n_cells}), got shape {m.shape}")
        new_id = np.cumsum(m) - 1
        C = int(m.sum())
        cells = CellIndex(self.attributes, self.cells.categories, self.cells.codes[m])
        scores = {}
        for v, t in self.scores.items():
            e = m[t.cell]
            b = t.bin[e]
            if t.values is not None and b.size == len(t.values):
                b = None
            cnt = t.count[e]
            scores[v] = ScoreTable(t.values, t.edges, b,
                                   new_id[t.cell[e]].astype(int_dtype(max(C, 1))),
                                   t.label[e], cnt.astype(uint_dtype(int(cnt.max()) if cnt.size
                                                                     else 0)),
                                   None if t.psum is None else t.psum[e])
        feats: dict[str, Any] = {}
        for k, f in self.features.items():
            if f.kind == "categorical":
                feats[k] = CategoricalFeature(f.categories, f.counts[m])
            else:
                feats[k] = replace(f, **{name: getattr(f, name)[m] for name in (
                    "n", "mean", "m2", "missing", "min", "max", "nonbinary", "hist", "hsum")
                    if getattr(f, name) is not None})
        return Summary(cells, self.n[m], None if self.events is None else self.events[m],
                       scores, feats, self.resolution, self.protocol_sha256, self.sources,
                       self.schema)

    def with_categories(self, attribute: str, categories: Sequence[str], *,
                        drop_unused: bool = False) -> Summary:
        """The same summary with the categories of ``attribute`` (a grouping attribute or a
        categorical feature) replaced by ``categories``, which must contain every category it
        has: the order of levels, and categories without any row (e.g. calendar windows
        between two sites' periods), as a summary of all the rows has them.

        ``drop_unused``: categories left out may be ones without any row, which are dropped
        (the levels of a text column, which are its values, e.g. when the parts of a table
        had categoricals with other categories)."""
        new = tuple(str(c) for c in categories)
        feat = self.features.get(attribute)
        is_feature = attribute not in self.attributes and isinstance(feat, CategoricalFeature)
        if is_feature:
            old = feat.categories
            used = set(np.flatnonzero(feat.counts[:, :len(old)].sum(axis=0) > 0).tolist())
        else:
            if attribute not in self.attributes:
                self.grouping(attribute)  # raises naming the attributes
            old = self.cells.categories[self.attributes.index(attribute)]
            used = set(np.unique(self.cells.codes[:, self.attributes.index(attribute)]
                                 ).tolist())
        missing = [c for i, c in enumerate(old) if c not in new and (
            not drop_unused or i in used)]
        if missing:
            raise InvalidParameterError(
                f"categories of {attribute!r} must include {missing[0]!r}, which the summary has")
        if new == tuple(old):
            return self
        pos = {c: i for i, c in enumerate(new)}
        if is_feature:
            kept = [i for i, c in enumerate(old) if c in pos]
            cols = np.array([pos[old[i]] for i in kept] + [len(new)], dtype=np.int64)
            counts = np.zeros((feat.counts.shape[0], len(new) + 1), dtype=feat.counts.dtype)
            counts[:, cols] = feat.counts[:, [*kept, len(old)]]
            return replace(self, features={**self.features,
                                           attribute: CategoricalFeature(new, counts)})
        j = self.attributes.index(attribute)
        lut = np.array([pos.get(c, -1) for c in old] + [-1], dtype=np.int32)
        codes = self.cells.codes.copy()
        codes[:, j] = lut[codes[:, j]]
        cats = tuple(new if i == j else c for i, c in enumerate(self.cells.categories))
        return replace(self, cells=CellIndex(self.attributes, cats, codes))

    # ------------------------------------------------------------------ merging
    def __add__(self, other: Summary) -> Summary:
        return merge_summaries([self, other])

    def merge(self, *others: Summary) -> Summary:
        return merge_summaries([self, *others])

    # ------------------------------------------------------------------ serialization
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form with a sha256 ``checksum`` of its content (no rows, no ids)."""
        body = self._body()
        body["checksum"] = _checksum(body)
        return body

    def _body(self) -> dict[str, Any]:
        return {"schema": self.schema, "resolution": self.resolution,
                "protocol_sha256": self.protocol_sha256,
                "sources": [json_safe(s) for s in self.sources],
                "cells": self.cells.to_dict(), "n": self.n.tolist(),
                "events": None if self.events is None else self.events.tolist(),
                "scores": {v: t.to_dict() for v, t in self.scores.items()},
                "features": {k: f.to_dict() for k, f in self.features.items()}}

    def to_json(self) -> str:
        """:meth:`to_dict` as compact JSON text: the text the checksum hashes, with the
        ``checksum`` member appended, so that a reader checks the checksum on the text itself
        (:meth:`load`) instead of writing every number again."""
        text = _compact(self._body())
        return f'{text[:-1]},"checksum":"{text_sha256(text)}"}}'

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, where: str = "summary",
                  text_checked: bool = False) -> Summary:
        """The summary of :meth:`to_dict`'s form; its schema and checksum are checked first
        (``text_checked``: the checksum was already checked on the text ``d`` was parsed
        from, :func:`checked_json`)."""
        if not isinstance(d, Mapping) or d.get("schema") not in READABLE_SUMMARY_SCHEMAS:
            found = d.get("schema") if isinstance(d, Mapping) else type(d).__name__
            raise SummaryError(MSG_SCHEMA.format(where=where, found=found,
                                                 expected=SUMMARY_SCHEMA))
        if not text_checked or d["schema"] != SUMMARY_SCHEMA:
            digest = _checksum if d["schema"] == SUMMARY_SCHEMA else _sorted_checksum
            if d.get("checksum") != digest({k: v for k, v in d.items() if k != "checksum"}):
                raise SummaryError(MSG_CHECKSUM.format(where=where))
        try:
            return cls(CellIndex.from_dict(d["cells"]), np.asarray(d["n"], dtype=np.int64),
                       None if d["events"] is None else np.asarray(d["events"], dtype=np.int64),
                       {v: ScoreTable.from_dict(t) for v, t in d["scores"].items()},
                       {k: _feature_from_dict(f) for k, f in d["features"].items()},
                       d["resolution"], d.get("protocol_sha256"),
                       tuple(d.get("sources") or ()))
        except (KeyError, TypeError, ValueError) as exc:
            raise SummaryError(f"{where}: malformed summary ({type(exc).__name__}: {exc})") \
                from None

    def save(self, path: str | Path) -> Path:
        """Write the summary as JSON (``.json``) or Parquet (``.parquet``: one row group of
        histogram entries per version, the rest in the file metadata), atomically."""
        p = Path(path)
        tmp = p.with_name(f".{p.name}.tmp")
        if p.suffix == ".parquet":
            _write_parquet(self, tmp)
        else:
            tmp.write_text(self.to_json(), encoding="utf-8")
        tmp.replace(p)
        return p

    @classmethod
    def load(cls, path: str | Path) -> Summary:
        p = Path(path)
        if not p.is_file():
            raise SummaryError(f"{p}: summary file not found")
        if p.suffix == ".parquet":
            return cls.from_dict(_read_parquet(p), where=str(p))
        try:
            d, checked = checked_json(p.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SummaryError(f"{p}: not a readable summary file ({type(exc).__name__})") \
                from None
        return cls.from_dict(d, where=str(p), text_checked=checked)

    def __getstate__(self):  # pickles never carry the patient index
        state = dict(self.__dict__)
        state["_clusters"] = None
        return state

    def __repr__(self) -> str:
        return (f"Summary(rows={self.n_rows}, cells={self.cells.n_cells}, attributes="
                f"{list(self.attributes)}, versions={self.versions}, resolution="
                f"{self.resolution!r}, features={list(self.features)})")


def checked_json(text: str) -> tuple[Any, bool]:
    """Parse a summary's JSON text: the object, and True when its checksum was checked on the
    text (compact text, as :meth:`Summary.to_json` writes it, whose ``checksum`` is the
    sha256 of the text without that member). False when the text is laid out otherwise or
    its hash differs: the caller then checks the parsed object (:meth:`Summary.from_dict`),
    which tells a mismatch from a file written another way."""
    parsed = compact_members(text)
    if parsed is None or parsed[2] != len(text):
        return json.loads(text), False
    obj, spans, end = parsed
    return obj, checksum_matches_text(text, 0, end, obj, spans)


def _compact(body: Mapping[str, Any]) -> str:
    return dumps_json_safe(body, separators=(",", ":"), ensure_ascii=False)


def _checksum(body: Mapping[str, Any]) -> str:
    """sha256 of the body's compact JSON, members in their order (``json.dumps`` with
    ``separators=(",", ":")`` and ``ensure_ascii=False``, by json's C encoder: a body made by
    :meth:`Summary.to_dict` or read from JSON holds plain Python numbers). The order is
    content: the first score version is the primary one, features are in the protocol's
    order. It is the text :meth:`Summary.to_json` writes, so a reader checks it on the file's
    text (:func:`checked_json`)."""
    return text_sha256(_compact(body))


def _sorted_checksum(body: Mapping[str, Any]) -> str:
    """The checksum of schema "rwe.summary/1", written before :func:`_checksum` hashed the
    members in their order: sha256 of the body's :func:`rwe._results.canonical_json` (keys
    sorted). Such files are still read."""
    return canonical_sha256(body)


def _write_parquet(s: Summary, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    d = s.to_dict()
    meta = {k: {} if k == "scores" else v for k, v in d.items()}  # in order: the checksum
    # hashes the members in their order (the reader puts the histograms back in place)
    tables = []
    for v, t in d["scores"].items():
        meta["scores"][v] = {"values": t["values"], "edges": t["edges"]}
        cols = {"version": pa.array([v] * len(t["count"])), "bin": pa.array(t["bin"]),
                "cell": pa.array(t["cell"]), "label": pa.array(t["label"], pa.int8()),
                "count": pa.array(t["count"], pa.int64())}
        ps = np.asarray(t["psum"]) if t["psum"] is not None else None
        for j, name in enumerate(("s1", "s2", "s3", "s4", "slogit")):
            cols[name] = pa.array(ps[:, j] if ps is not None and len(ps)
                                  else [None] * len(t["count"]), pa.float64())
        tables.append(pa.table(cols))
    table = pa.concat_tables(tables) if tables else pa.table({"version": pa.array([], pa.string())})
    table = table.replace_schema_metadata({b"rwe.summary": json.dumps(meta).encode("utf-8")})
    pq.write_table(table, path)


def _read_parquet(path: Path) -> dict[str, Any]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
        meta = json.loads(table.schema.metadata[b"rwe.summary"].decode("utf-8"))
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one line
        raise SummaryError(f"{path}: not a readable summary file ({type(exc).__name__})") \
            from None
    df = table.to_pydict()
    scores = {}
    versions = np.asarray(df.get("version", []), dtype=object)
    for v, info in meta["scores"].items():
        m = versions == v
        ent = {k: np.asarray(df[k], dtype=object)[m] for k in ("bin", "cell", "label", "count")}
        psum = None
        if info["values"] is None:
            psum = np.stack([np.asarray(df[k], dtype=object)[m].astype(float)
                             for k in ("s1", "s2", "s3", "s4", "slogit")], axis=1).tolist()
        scores[v] = {**info, **{k: [int(x) for x in a] for k, a in ent.items()}, "psum": psum}
    meta["scores"] = scores
    return meta


def merge_summaries(summaries: Sequence[Summary]) -> Summary:
    """Merge summaries of disjoint row sets (see the module notes); nothing is merged partially:
    every incompatibility is found before anything is combined."""
    summaries = list(summaries)
    if not summaries:
        raise SummaryError("nothing to merge: no summary given")
    for s in summaries:
        if not isinstance(s, Summary):
            raise SummaryError(f"can only merge rwe Summary objects, got {type(s).__name__}")
    first = summaries[0]
    for other in summaries[1:]:
        for what, a, b in (("schema versions", first.schema, other.schema),
                           ("protocol hashes", first.protocol_sha256, other.protocol_sha256),
                           ("resolutions", first.resolution, other.resolution),
                           ("attributes", first.attributes, other.attributes),
                           ("model versions", tuple(first.scores), tuple(other.scores)),
                           ("features", tuple(first.features), tuple(other.features)),
                           ("labels (binary outcome present)", first.events is None,
                            other.events is None)):
            if a != b:
                raise SummaryError(MSG_MERGE.format(what=what, a=a, b=b))
        for v in first.scores:
            ta, tb = first.scores[v], other.scores[v]
            if not ta.full and not (ta.edges.shape == tb.edges.shape
                                    and np.array_equal(ta.edges, tb.edges)):
                raise SummaryError(MSG_MERGE.format(what=f"score bin edges of version {v!r}",
                                                    a=f"{ta.n_bins} bins", b=f"{tb.n_bins} bins"))
        for k in first.features:
            if first.features[k].kind != other.features[k].kind:
                raise SummaryError(MSG_MERGE.format(what=f"kinds of feature {k!r}",
                                                    a=first.features[k].kind,
                                                    b=other.features[k].kind))
            ea = getattr(first.features[k], "edges", None)
            eb = getattr(other.features[k], "edges", None)
            if (ea is None) != (eb is None) or (ea is not None and not (
                    ea.shape == eb.shape and np.array_equal(ea, eb))):
                raise SummaryError(MSG_MERGE.format(
                    what=f"histogram bin edges of feature {k!r}",
                    a="none" if ea is None else f"{len(ea) - 1} bins",
                    b="none" if eb is None else f"{len(eb) - 1} bins"))
    seen: dict[str, int] = {}
    for s in summaries:
        for src in s.sources:
            name = src.get("source")
            if name is not None:
                if name in seen:
                    raise SummaryError(f"source {name!r} is given twice: a site or partition "
                                       "may be merged only once")
                seen[name] = 1
    # united cells, and each summary's cell positions in them
    cells, maps = _union_cells([s.cells for s in summaries])
    C = cells.n_cells
    n = np.zeros(C, dtype=np.int64)
    for s, m in zip(summaries, maps, strict=True):
        np.add.at(n, m, s.n)
    events = None
    if first.events is not None:
        events = np.zeros(C, dtype=np.int64)
        for s, m in zip(summaries, maps, strict=True):
            np.add.at(events, m, s.events)
    scores = {}
    for v, t0 in first.scores.items():
        tabs = [s.scores[v] for s in summaries]
        if t0.full and all(t.one_per_bin for t in tabs):
            scores[v] = _merge_distinct(tabs, maps, C)
        elif t0.full:
            values, bin_maps = _union_values([t.values for t in tabs])
            parts = [_remap_table(t, m, C, bm, values, None)
                     for t, m, bm in zip(tabs, maps, bin_maps, strict=True)]
            scores[v] = _combine_tables(parts, C, values, None)
        else:
            parts = [_remap_table(s.scores[v], m, C, None, None, t0.edges)
                     for s, m in zip(summaries, maps, strict=True)]
            scores[v] = _combine_tables(parts, C, None, t0.edges.copy())
    features = {}
    for k, f0 in first.features.items():
        parts = [(s.features[k], m) for s, m in zip(summaries, maps, strict=True)]
        features[k] = (_merge_numeric(parts, C) if f0.kind == "numeric"
                       else _merge_categorical(parts, C))
    sources = tuple(src for s in summaries for src in s.sources)
    return Summary(cells, n, events, scores, features, first.resolution,
                   first.protocol_sha256, sources)


# ============================================================================ building
def summarize_arrays(*, y_true=None, scores: Mapping[str, Any] | None = None,
                     attributes: Mapping[str, Any] | None = None,
                     features: Mapping[str, Any] | None = None, resolution: Any = FULL,
                     thresholds: Sequence[float] = (), clusters=None,
                     protocol_sha256: str | None = None, source: str | None = None,
                     patients: int | None = None,
                     feature_edges: Mapping[str, Any] | None = None) -> Summary:
    """Build a :class:`Summary` from arrays.

    Parameters
    ----------
    y_true : array_like of bool, optional
        Binary outcome per row.
    scores : dict of str to array_like
        Model version -> predicted probabilities in [0, 1] (no NaN).
    attributes : dict of str to array_like or pandas categorical
        Grouping attribute -> value per row (missing: NaN/None); a pandas Categorical keeps its
        category order, other values are sorted as strings.
    features : dict of str to array_like
        Numeric (float; NaN missing) or categorical (anything else) feature per row.
    resolution, thresholds
        See :class:`SummarySpec`.
    clusters : array_like of int, optional
        Patient code per row: keeps a transient :class:`ClusterIndex`.
    patients : int, optional
        Number of distinct patients, recorded in ``sources`` (an anonymous count: a merged
        summary knows its rows repeat patients even though it has no patient index).
    feature_edges : dict of str to sequence of float, optional
        Declared histogram edges of numeric features (see :class:`NumericFeature`).
    """
    scores = dict(scores or {})
    attributes = dict(attributes or {})
    features = dict(features or {})
    lengths = {len(v) for v in (*scores.values(), *attributes.values(), *features.values())}
    if y_true is not None:
        lengths.add(len(y_true))
    if len(lengths) > 1:
        raise InvalidParameterError(f"all arrays must have the same length, got {sorted(lengths)}")
    n_rows = lengths.pop() if lengths else 0
    spec = SummarySpec(resolution=resolution, thresholds=tuple(thresholds))
    edges = spec.edges()
    names, codes, cats = [], [], []
    for name, values in attributes.items():
        c, k = _codes(values)
        names.append(str(name))
        codes.append(c)
        cats.append(k)
    cell, comp = _encode_rows(codes, n_rows)
    C = comp.shape[0]
    cells = CellIndex(tuple(names), tuple(cats), comp)
    n = bincount(cell, minlength=C)
    y = None
    events = None
    if y_true is not None:
        y = np.asarray(y_true)
        if y.dtype != bool:
            y = y.astype(bool)
        events = bincount(cell[y], minlength=C)
    tables = {}
    row_entry = {}
    for v, sv in scores.items():
        if y is None:
            raise InvalidParameterError("score histograms need y_true (a binary label)")
        s = np.asarray(sv, dtype=np.float64)
        if s.size and (np.isnan(s).any() or s.min() < 0 or s.max() > 1):
            raise InvalidParameterError(f"scores of version {v!r} must lie in [0, 1] without NaN")
        tables[str(v)], re = _score_table(s, cell, y, C, edges, clusters is not None)
        if re is not None:
            row_entry[str(v)] = re
    fedges = {str(k): check_feature_edges(e, str(k)) for k, e in (feature_edges or {}).items()}
    unknown = sorted(set(fedges) - {str(k) for k in features})
    if unknown:
        raise InvalidParameterError(f"feature_edges names {unknown[0]!r}, which is not a "
                                    "summarized feature")
    feats = {}
    order = None
    for k, x in features.items():
        arr = np.asarray(x)
        if arr.dtype.kind in "fiub":
            if order is None:  # rows sorted by cell, shared by the numeric features
                order = np.argsort(cell, kind="stable")
            feats[str(k)] = _numeric_feature(arr.astype(np.float64), cell, C, order,
                                             fedges.get(str(k)))
        else:
            if str(k) in fedges:
                raise InvalidParameterError(
                    f"feature_edges[{str(k)!r}]: the feature is categorical (dtype "
                    f"{arr.dtype}); its category counts are its histogram")
            c, cat = _codes(x)
            cnt = np.zeros((C, len(cat) + 1), dtype=np.int64)
            np.add.at(cnt, (cell, np.where(c < 0, len(cat), c.astype(np.int64))), 1)
            feats[str(k)] = CategoricalFeature(cat, cnt)
    cl = None
    if clusters is not None:
        pc = np.asarray(clusters)
        _, inv = np.unique(pc, return_inverse=True)
        cl = ClusterIndex(inv.reshape(-1).astype(np.int64), row_entry, cell,
                          np.zeros(0, np.int8) if y is None else y.astype(np.int8))
    src: dict[str, Any] = {"rows": int(n_rows)}
    if source is not None:
        src = {"source": source, **src}
    if patients is not None:
        src["patients"] = int(patients)
    elif cl is not None:
        src["patients"] = cl.n_patients
    sources = (src,)
    return Summary(cells, n, events, tables, feats, FULL if edges is None else "binned",
                   protocol_sha256, sources, _clusters=cl)


def _codes(values: Any) -> tuple[np.ndarray, tuple[str, ...]]:
    """Category codes (-1 = missing) and category labels of a column."""
    import pandas as pd

    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if not isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype("string").astype("category")
    cats = tuple(str(c) for c in s.cat.categories)
    return np.asarray(s.cat.codes.to_numpy()), cats



def as_summary_spec(spec: Any) -> SummarySpec | None:
    """``spec`` as a :class:`SummarySpec`: itself, a protocol's (``spec.summary_spec()``), or
    None when None."""
    if spec is None or isinstance(spec, SummarySpec):
        return spec
    if hasattr(spec, "summary_spec"):
        return spec.summary_spec()
    raise InvalidParameterError(
        f"spec must be a SummarySpec or a protocol, got {type(spec).__name__}")

def summarize(data: Any, spec: Any = None, *, attributes: Sequence[str] | None = None,
              versions: Sequence[str] | None = None, features: Sequence[str] | None = None,
              resolution: Any = None, thresholds: Sequence[float] | None = None,
              keep_clusters: bool = False,
              feature_edges: Mapping[str, Any] | None = None) -> Summary:
    """Summarize an evaluation set into a mergeable :class:`Summary` (no rows, no ids).

    Parameters
    ----------
    data : rwe.data.EvaluationSet or rwe.data.DaskEvaluationSet
        A dask-backed set is summarized per partition and merged by tree reduction
        (:meth:`rwe.data.DaskEvaluationSet.summarize`): the same summary.
    spec : SummarySpec, a protocol (anything with ``summary_spec()``) or None
        What to keep; keyword arguments override it. Default: every grouping column of the
        data as attributes, every version, the data's features, full resolution.
    attributes, versions, features, resolution, thresholds
        See :class:`SummarySpec`.
    keep_clusters : bool
        Keep the transient patient index (needs the patient id role) for the cluster bootstrap.
    feature_edges : dict of str to sequence of float, optional
        Declared histogram edges of numeric features (default: the spec's).

    Returns
    -------
    Summary

    Examples
    --------
    >>> import rwe
    >>> ev = rwe.make_demo(n=2000, seed=1)                  # doctest: +SKIP
    >>> s = rwe.summarize(ev, attributes=["site"], resolution=256, thresholds=[0.15])
    ... # doctest: +SKIP
    """
    if callable(getattr(data, "summarize", None)):  # a DaskEvaluationSet: per partition
        if keep_clusters:
            raise InvalidParameterError(
                "keep_clusters=True needs the rows of every patient together; "
                f"{getattr(data, 'rows_note', 'a dask table is summarized per partition')} "
                "(patients may span partitions)")
        return data.summarize(spec, attributes=attributes, versions=versions,
                              features=features, resolution=resolution,
                              thresholds=thresholds, feature_edges=feature_edges)
    spec = as_summary_spec(spec) or SummarySpec()
    roles = data.roles
    attrs = list(attributes if attributes is not None else (
        spec.attributes if spec.attributes is not None else roles.grouping_columns()))
    vers = list(versions if versions is not None else (spec.versions or data.versions))
    feats = list(features if features is not None else (spec.features or roles.features))
    res = resolution if resolution is not None else spec.resolution
    thr = tuple(thresholds if thresholds is not None else spec.thresholds)
    y = data.y_true if roles.label is not None else None
    clusters = None
    if keep_clusters:
        clusters = data.clusters
        if clusters is None:
            raise InvalidParameterError(
                "keep_clusters=True needs a patient_id column role, which is not set")
    frame = data.frame
    feat_arrays = {}
    for f in feats:
        col = frame[f]
        import pandas as pd

        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            feat_arrays[f] = col.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            feat_arrays[f] = col
    patients = None
    if roles.patient_id is not None:
        pc = data.clusters
        patients = int(pc.max()) + 1 if pc is not None and pc.size else 0
    return summarize_arrays(
        patients=patients,
        y_true=y, scores={v: data.score(v) for v in vers} if y is not None else {},
        attributes={a: data.attribute(a) for a in attrs}, features=feat_arrays,
        resolution=res, thresholds=thr, clusters=clusters,
        protocol_sha256=spec.protocol_sha256, source=spec.source,
        feature_edges=feature_edges if feature_edges is not None else spec.feature_edges)
