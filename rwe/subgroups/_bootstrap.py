"""Bootstrap replicates of subgroup metrics from a summary (Poisson or patient-cluster).

Replicates are drawn per grouping on its level codes, never on the joint cells of all
attributes: the count array has (levels of the resampled groupings) x 2 labels x bins entries
(:func:`resampled_groupings`), and a grouping whose levels are unions of another's (``overall``
or ``sex`` next to ``sex x race``) is summed from it, exactly and from the same resampling.
Without patient clusters every (level, label, bin) count gets an independent Poisson(count)
draw: the exact distribution of the row-level Poisson(1) bootstrap. With clusters one
Poisson(1) weight per patient and replicate is shared by every row of the patient and every
grouping (sparse patient x code product). Each metric's replicates come from the metric's own
kernel (:mod:`rwe.metrics`) on replicate histograms at the resolution its registry entry asks
for (``bootstrap_bins``): the threshold split (exact for threshold metrics), the calibration
bins (<= 256, split at the threshold; covariate = the observed mean logit of the bin) or every
score bin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from rwe.metrics._registry import KernelContext
from rwe.stats.summaries import (
    Grouping,
    Segments,
    Summary,
    bin_index,
    poisson_bootstrap_counts,
    score_bin_edges,
)

__all__ = ["bootstrap_replicates", "resampled_groupings", "binned_jackknife", "CALIB_BINS"]

CALIB_BINS = 256
#: Elements of one replicate-count chunk (r x levels x 2 x bins): bounds the bootstrap memory.
CHUNK_ELEMENTS = 1 << 21


def resampled_groupings(groupings: Sequence[Grouping]) -> tuple[list[int], dict[int, Any]]:
    """Which groupings are resampled and which are sums of another's levels.

    Grouping ``A`` is *derived* from a resampled grouping ``B`` when every level of ``B``
    lies inside one level of ``A`` or outside ``A`` entirely and every cell of ``A`` is in
    ``B``. Returns the indices of the resampled groupings and, per derived grouping, ``(index
    of B, level of A per level of B, -1 = outside A)``.
    """
    order = sorted(range(len(groupings)), key=lambda i: -len(groupings[i].levels))
    bases: list[int] = []
    plan: dict[int, Any] = {}
    for i in order:
        a = groupings[i].cell_to_level
        plan[i] = None
        for j in bases:
            b = groupings[j].cell_to_level
            inb = b >= 0
            if np.any((a >= 0) & ~inb):
                continue
            pairs = np.unique(np.stack([b[inb], a[inb]]), axis=1)
            if pairs.shape[1] != len(groupings[j].levels):  # a level of B splits across A
                continue
            amap = np.full(len(groupings[j].levels), -1, dtype=np.int64)
            amap[pairs[0]] = pairs[1]
            plan[i] = (j, amap)
            break
        if plan[i] is None:
            bases.append(i)
    return sorted(bases), plan


def _sum_levels(amap: np.ndarray, n_levels: int, x: np.ndarray) -> np.ndarray:
    """Sum the level axis (-3 of ``(..., levels_B, 2, bins)``, -2 of ``(levels_B, bins)``) of a
    resampled grouping into the levels of a grouping derived from it."""
    agg = np.zeros((n_levels, len(amap)))
    ok = amap >= 0
    agg[amap[ok], np.flatnonzero(ok)] = 1.0
    if x.ndim >= 3:
        lead = x.shape[:-3]
        flat = x.reshape(lead + (x.shape[-3], -1))
        return (agg @ flat).reshape(lead + (n_levels,) + x.shape[-2:])
    return agg @ x


def _dense_segments(counts: np.ndarray, *, above: np.ndarray | None = None,
                    p: np.ndarray | None = None, lp: np.ndarray | None = None,
                    take: np.ndarray | None = None) -> Segments:
    """Segments of dense counts ``(r, L, 2, bins)``: one segment per (replicate, level);
    ``take`` keeps only some (level, bin) rows (flat indices into ``L x bins``)."""
    r, L, _, nb = counts.shape
    neg = counts[:, :, 0, :].reshape(r, L * nb)
    pos = counts[:, :, 1, :].reshape(r, L * nb)
    if take is None:
        per = np.full(L, nb)
        rows = None
    else:
        per = np.bincount(take // nb, minlength=L)
        rows = take
        neg, pos = neg[:, take], pos[:, take]
    width = neg.shape[1]
    starts = (np.arange(r)[:, None] * width + np.concatenate([[0], np.cumsum(per)[:-1]])[None, :]
              ).reshape(-1)

    def tile(v):
        return None if v is None else np.tile(v if rows is None else v[rows], r)

    return Segments(starts, neg.reshape(-1), pos.reshape(-1), exact=False,
                    above=None if above is None else np.tile(above, r * L),
                    p=tile(p), lp=tile(lp))


def bootstrap_replicates(summary: Summary, groupings: Sequence[Grouping], specs: Sequence[Any],
                         *, version: str | None, threshold: float, n_bins: int, n_boot: int,
                         rng: np.random.Generator, clusters: bool
                         ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
    """Replicates of each metric for every level of ``groupings``: {metric: {group: (B, L)}}.

    Also returns the bootstrap settings (resolution, bins, resampled levels, the largest
    binned-AUROC error bound) and, under private keys, the observed counts at the resampled
    resolution (``_level_counts``) and the threshold bin (``_threshold_bin``) for BCa.
    """
    groupings = list(groupings)
    t = summary.score_table(version)
    if t.full:
        edges = score_bin_edges(n_bins, [threshold])
        entry_bin = bin_index(t.values, edges)[t.bin]
    else:
        edges = t.edges
        entry_bin = t.bin
    nb = len(edges) - 1
    k = t.threshold_bin(threshold) if not t.full else int(np.flatnonzero(edges == threshold)[0])
    kinds = {s.bootstrap_bins for s in specs}
    cstarts = np.arange(0, nb, max(1, -(-nb // CALIB_BINS)))
    if "score" in kinds:
        starts = np.arange(nb)
        resolution = "score bins"
    elif "calibration" in kinds:
        starts = np.union1d(cstarts, [k])
        resolution = "calibration bins split at the threshold"
    else:
        starts = np.array([0, k])
        resolution = "threshold split"
    nbr = len(starts)
    kr = int(np.searchsorted(starts, k))
    cs = np.searchsorted(starts, cstarts)  # calibration bins, in resampled-bin indices
    to_res = (np.searchsorted(starts, np.arange(nb), side="right") - 1).astype(np.int32)
    ebin = to_res[entry_bin].astype(np.int64)

    bases, plan = resampled_groupings(groupings)
    base_off = np.cumsum([0] + [len(groupings[i].levels) for i in bases])
    n_base = int(base_off[-1])
    counts = np.zeros(n_base * 2 * nbr, dtype=np.int64)
    need_cal = "calibration" in kinds
    lsums = []
    codes, row_sel = [], []
    cl = summary.clusters if clusters else None
    lab = t.label.astype(np.int64)
    cnt = t.count.astype(np.float64)
    logit_e = t.moment("logit") if need_cal else None
    if cl is not None:
        v = version if version is not None else next(iter(summary.scores))
        re = cl.row_entry[v]
        r_cell, r_lab, r_bin = t.cell[re], lab[re], ebin[re]
    for off, i in zip(base_off, bases, strict=False):
        lev = groupings[i].cell_to_level[t.cell]
        keep = lev >= 0
        code = ((lev[keep] + off) * 2 + lab[keep]) * nbr + ebin[keep]
        counts += np.bincount(code, weights=cnt[keep], minlength=counts.size).astype(np.int64)
        if need_cal:
            lsums.append(np.bincount(lev[keep] * nbr + ebin[keep], weights=logit_e[keep],
                                     minlength=len(groupings[i].levels) * nbr))
        if cl is not None:
            rl = groupings[i].cell_to_level[r_cell]
            sel = np.flatnonzero(rl >= 0) if (rl < 0).any() else None
            rr = slice(None) if sel is None else sel
            codes.append(((rl[rr] + off) * 2 + r_lab[rr]) * nbr + r_bin[rr])
            row_sel.append(sel)
    counts = counts.reshape(n_base, 2, nbr)
    pos_of = {i: bases.index(i) for i in bases}

    def expand(base_arrays: Sequence[np.ndarray]) -> dict[int, Any]:
        out = {}
        for i, g in enumerate(groupings):
            if plan[i] is None:
                out[i] = base_arrays[pos_of[i]]
            else:
                j, amap = plan[i]
                out[i] = _sum_levels(amap, len(g.levels), base_arrays[pos_of[j]])
        return out

    obs = expand([counts[base_off[q]:base_off[q + 1]].astype(np.float64)
                  for q in range(len(bases))])

    # calibration bins: representative mean logit of each observed (level, bin); only the
    # non-empty ones enter a fit; starting values = the fit on the observed counts
    cal = {}
    if need_cal:
        from rwe.stats import fit_logistic

        lsum = expand([ls.reshape(-1, nbr) for ls in lsums])
        nbc = len(cs)
        for i in range(len(groupings)):
            cc = np.add.reduceat(obs[i], cs, axis=-1)  # (L, 2, Bc)
            tot = cc.sum(1)
            take = np.flatnonzero(tot.reshape(-1) > 0)
            with np.errstate(invalid="ignore", divide="ignore"):
                lp = (np.add.reduceat(lsum[i], cs, axis=-1).reshape(-1) / tot.reshape(-1))
            seg = _dense_segments(cc[None], lp=lp, take=take)
            f0 = fit_logistic(seg.lp, seg.pos, seg.pos + seg.neg, seg.starts, model="slope")
            cal[i] = (take, lp, (f0.a, f0.b), nbc)
    per_rep = (n_base + sum(len(g.levels) for g in groupings)) * 2 * nbr
    if cal:
        per_rep += 8 * sum(len(c[0]) for c in cal.values())
    chunk = max(1, min(n_boot, CHUNK_ELEMENTS // max(per_rep, 1)))
    if cl is not None:
        cl_all = np.concatenate([cl.patient if sel is None else cl.patient[sel]
                                 for sel in row_sel])
        code_all = np.concatenate(codes)
        del codes, row_sel
        it = poisson_bootstrap_counts(counts, n_boot, random_state=rng, chunk=chunk,
                                      codes=code_all, clusters=cl_all, sampler="table")
    else:
        it = poisson_bootstrap_counts(counts, n_boot, random_state=rng, chunk=chunk)
    ctx = KernelContext(threshold=threshold, estimate_only=True)
    above2 = np.array([False, True])
    reps: dict[str, dict[int, list[np.ndarray]]] = {
        s.name: {i: [] for i in range(len(groupings))} for s in specs}
    for rep_counts in it:
        r = rep_counts.shape[0]
        rep = expand([rep_counts[:, base_off[q]:base_off[q + 1]] for q in range(len(bases))])
        for i, g in enumerate(groupings):
            L = len(g.levels)
            c = rep[i]
            seg2 = segs = segc = None
            for s in specs:
                if s.bootstrap_bins == "threshold":
                    if seg2 is None:
                        two = np.stack([c[..., :kr].sum(-1), c[..., kr:].sum(-1)], axis=-1)
                        seg2 = _dense_segments(two, above=above2)
                    seg = seg2
                elif s.bootstrap_bins == "score":
                    if segs is None:
                        segs = _dense_segments(c, above=np.arange(nbr) >= kr)
                    seg = segs
                else:
                    take, lp, start, nbc = cal[i]
                    if segc is None:
                        cc = np.add.reduceat(c, cs, axis=-1)
                        segc = _dense_segments(cc, lp=lp, take=take)
                    seg = segc
                if s.name == "calibration_slope":
                    from rwe.stats import fit_logistic

                    a0, b0 = (np.tile(v, r) for v in start)
                    f = fit_logistic(seg.lp, seg.pos, seg.pos + seg.neg, seg.starts,
                                     model="slope", start=(a0, b0), tol=1e-6, max_iter=25)
                    est = f.b
                else:
                    est = s.kernel(seg, ctx).estimate
                reps[s.name][i].append(np.asarray(est, dtype=float).reshape(r, L))
        del rep, rep_counts
    out = {s.name: {g.name: np.concatenate(reps[s.name][i], axis=0)
                    for i, g in enumerate(groupings)} for s in specs}
    bound_max = math.nan
    if "score" in kinds:
        from rwe.stats import delong_segments

        bounds = []
        for i in range(len(groupings)):
            seg = _dense_segments(obs[i][None])
            bounds.append(delong_segments(seg.neg, seg.pos, seg.starts)[2])
        b = np.concatenate(bounds)
        bound_max = float(np.nanmax(b)) if np.isfinite(b).any() else math.nan
    info = {"n_bins": int(nb), "n_boot": int(n_boot),
            "bootstrap": "cluster (patients)" if cl is not None else "poisson (summary)",
            "bootstrap_bins": int(nbr), "bootstrap_resolution": resolution,
            "bootstrap_resampled_levels": n_base,
            "auroc_binned_error_bound_max": bound_max,
            "_level_counts": {g.name: obs[i] for i, g in enumerate(groupings)},
            "_threshold_bin": kr}
    return out, info


def binned_jackknife(counts: np.ndarray, threshold_bin: int, spec: Any
                     ) -> tuple[np.ndarray, np.ndarray] | None:
    """Exact leave-one-row-out values of a binned metric, one per (label, bin), or None when
    the metric has no closed form here (BCa then falls back to percentile).

    All rows of one (label, bin) have the same delete-one value, so the jackknife of ``n``
    rows is given by ``2 x bins`` values with weights ``counts``. Proportions (from the
    registry's ``confusion`` cells): deleting a row lowers the numerator and the denominator
    by 0 or 1 according to its cell. AUROC: a deleted case in bin b removes its placement
    ``controls below + controls in b / 2``, a deleted control the cases above plus half the
    cases in b.

    Parameters
    ----------
    counts : ndarray, shape (2, bins)
        One level's controls and cases per bin.
    """
    c = np.asarray(counts, dtype=np.float64)
    neg, pos = c[0], c[1]
    nb = c.shape[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        if spec.name == "auroc":
            P, N = pos.sum(), neg.sum()
            cneg_below = np.cumsum(neg) - neg
            cpos_above = P - np.cumsum(pos)
            num = float((pos * (cneg_below + 0.5 * neg)).sum())
            del_case = (num - (cneg_below + 0.5 * neg)) / ((P - 1) * N)
            del_ctrl = (num - (cpos_above + 0.5 * pos)) / (P * (N - 1))
            vals = np.stack([del_ctrl, del_case])
        elif spec.confusion is not None:
            above = np.arange(nb) >= threshold_bin
            cell = np.stack([np.where(above, "fp", "tn"), np.where(above, "tp", "fn")])
            num_m = np.isin(cell, spec.confusion[0]).astype(np.float64)
            den_m = np.isin(cell, spec.confusion[1]).astype(np.float64)
            x = float((num_m * c).sum())
            d = float((den_m * c).sum())
            vals = (x - num_m) / (d - den_m)
        else:
            return None
    vals = np.where(c > 0, vals, np.nan)
    return vals, c
