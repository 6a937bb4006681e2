"""Figures of a RepresentativenessResult (matplotlib, imported lazily)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from rwe._optional import import_pyplot, tight_layout
from rwe.exceptions import InvalidParameterError

__all__ = ["plot_shares", "plot_ppr", "plot_coverage"]

if TYPE_CHECKING:  # pragma: no cover
    from rwe.representativeness._representativeness import RepresentativenessResult

_FLAG_COLOURS = {"under-represented": "#c0392b", "adequate": "#2c7fb8",
                 "over-represented": "#e67e22"}


def _pick(result: RepresentativenessResult, attributes: Sequence[str] | None) -> list[str]:
    if attributes is None:
        return list(result.attributes)
    attributes = [attributes] if isinstance(attributes, str) else list(attributes)
    unknown = [a for a in attributes if a not in result.attributes]
    if unknown:
        raise InvalidParameterError(
            f"attributes {unknown} were not analysed; available: {list(result.attributes)}")
    return attributes


def plot_shares(result: RepresentativenessResult, attributes: Sequence[str] | None = None):
    plt = import_pyplot()
    attrs = _pick(result, attributes)
    sizes = [int((result.shares["attribute"] == a).sum()) for a in attrs]
    fig, axes = plt.subplots(len(attrs), 1, figsize=(7.5, 0.9 + 0.38 * sum(sizes) + 0.5 * len(attrs)),
                             squeeze=False, gridspec_kw={"height_ratios": [max(s, 1) for s in sizes]})
    level = result.parameters.get("confidence_level", 0.95)
    for ax, a in zip(axes[:, 0], attrs, strict=True):
        d = result.shares[result.shares["attribute"] == a]
        y = np.arange(len(d))[::-1]
        share = d["cohort_share"].to_numpy(dtype=float)
        err = np.vstack([share - d["ci_low"].to_numpy(dtype=float),
                         d["ci_high"].to_numpy(dtype=float) - share])
        ax.errorbar(share, y + 0.12, xerr=np.nan_to_num(err), fmt="o", color="#2c7fb8",
                    capsize=3, label=f"cohort ({level:.0%} Wilson CI)")
        ax.scatter(d["reference_share"].to_numpy(dtype=float), y - 0.12, marker="D",
                   color="#444444", zorder=3, label="reference")
        ax.set_yticks(y, [str(c) for c in d["category"]])
        ax.set_ylim(-0.6, len(d) - 0.4)
        ax.set_title(a, loc="left", fontsize=10)
        ax.set_xlim(0, min(1.0, 1.1 * np.nanmax(np.r_[d["ci_high"].to_numpy(dtype=float),
                                                       d["reference_share"].to_numpy(dtype=float),
                                                       0.05])))
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
        ax.grid(axis="x", alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", fontsize=8, ncols=2)
    axes[-1, 0].set_xlabel("share")
    fig.suptitle(f"Cohort vs reference ({result.reference.name})", fontsize=11, x=0.02,
                 ha="left")
    tight_layout(fig, rect=(0, 0, 1, 0.97))
    return fig


def plot_ppr(result: RepresentativenessResult, attributes: Sequence[str] | None = None):
    plt = import_pyplot()
    attrs = _pick(result, attributes)
    d = result.shares[result.shares["attribute"].isin(attrs) & result.shares["ppr"].notna()]
    d = d[np.isfinite(d["ppr"].to_numpy(dtype=float))]
    labels = [f"{c} ({a})" for a, c in zip(d["attribute"], d["category"], strict=True)]
    y = np.arange(len(d))[::-1]
    low, high = result.parameters.get("ppr_band", (0.8, 1.2))
    width = 5.0 + 0.07 * max((len(t) for t in labels), default=10)
    fig, ax = plt.subplots(figsize=(width, 1.4 + 0.32 * max(len(d), 1)))
    ax.axvspan(low, high, color="#2ca25f", alpha=0.12, label=f"adequate ({low:g}-{high:g})")
    ax.axvline(1.0, color="#555555", lw=0.8)
    ppr = d["ppr"].to_numpy(dtype=float)
    lo = d["ppr_low"].to_numpy(dtype=float)
    hi = d["ppr_high"].to_numpy(dtype=float)
    colours = [_FLAG_COLOURS.get(f, "#888888") for f in d["flag"]]
    ax.hlines(y, lo, hi, colors=colours, lw=1.5)
    ax.scatter(ppr, y, c=colours, zorder=3)
    ax.set_yticks(y, labels)
    absent = ppr == 0
    if absent.any():
        ax.scatter(ppr[absent], y[absent], marker="x", s=60, color="#c0392b", zorder=4,
                   label="absent from cohort")
    ax.set_xlim(0, 1.05 * max(float(np.nanmax(np.r_[hi, high])), 1.0))
    ax.set_xlabel("participation-to-prevalence ratio (cohort share / reference share)")
    ax.set_title(f"PPR vs {result.reference.name}", loc="left", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    tight_layout(fig)
    return fig


def plot_coverage(result: RepresentativenessResult,
                  intersection: str | Sequence[str] | None = None):
    plt = import_pyplot()
    cov = result.coverage
    names = list(dict.fromkeys(cov["intersection"]))
    if not names:
        raise InvalidParameterError("no intersection was analysed; pass intersections=")
    if intersection is None:
        name = names[0]
    else:
        name = intersection if isinstance(intersection, str) else " x ".join(intersection)
        if name not in names:
            raise InvalidParameterError(
                f"intersection={intersection!r} was not analysed; available: {names}")
    d = cov[cov["intersection"] == name]
    mat = d.pivot_table(index="row_level", columns="col_level", values="n", aggfunc="sum",
                        sort=False)
    mat = mat.reindex(index=list(dict.fromkeys(d["row_level"])),
                      columns=list(dict.fromkeys(d["col_level"])))
    parts = name.split(" x ")
    ylab, xlab = parts[0], " x ".join(parts[1:])
    if mat.shape[1] > mat.shape[0]:  # the longer dimension down the page
        mat, ylab, xlab = mat.T, xlab, ylab
    min_n = result.parameters.get("min_n", 30)
    longest_row = max((len(str(r)) for r in mat.index), default=5)
    longest_col = max((len(str(c)) for c in mat.columns), default=5)
    fig, ax = plt.subplots(figsize=(2.5 + 0.07 * longest_row + 1.0 * mat.shape[1],
                                    1.8 + 0.05 * longest_col + 0.45 * mat.shape[0]))
    vals = mat.to_numpy(dtype=float)
    im = ax.imshow(np.log10(vals + 1), cmap="Blues", aspect="auto")
    for (i, j), v in np.ndenumerate(vals):
        small = v < min_n
        ax.text(j, i, f"{int(v)}", ha="center", va="center", fontsize=8,
                color="#c0392b" if small else ("white" if np.log10(v + 1) > 0.6 * np.log10(
                    np.nanmax(vals) + 1) else "black"),
                fontweight="bold" if small else "normal")
    ax.set_xticks(np.arange(mat.shape[1]), [str(c) for c in mat.columns], rotation=35,
                  ha="right", fontsize=8)
    ax.set_yticks(np.arange(mat.shape[0]), [str(r) for r in mat.index], fontsize=8)
    ax.set_ylabel(ylab)
    ax.set_xlabel(xlab)
    ax.set_title(f"Coverage: {name} (red: n < {min_n})", loc="left", fontsize=10)
    cb = fig.colorbar(im, ax=ax, fraction=0.04)
    cb.set_label("log10(n + 1)")
    tight_layout(fig)
    return fig

