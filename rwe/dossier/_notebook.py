"""What the dossier notebooks call: the section's typed result (loaded from the record the
build saved, or computed when the notebook runs on its own), reviewer views and figures.
Nothing here computes a statistic."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
from pathlib import Path
from typing import Any

from rwe.dossier._sections import section_spec

__all__ = ["SectionContext", "start_section", "FIGURES_DIR", "configure_matplotlib",
           "write_record", "read_record", "ProtocolFacts", "PROTOCOL_RECORD"]

FIGURES_DIR = "figures"
FIGURE_DPI = 110
#: Name of the protocol's record next to the section records of a build.
PROTOCOL_RECORD = "protocol.json"


class _Facts:
    """Read-only attribute access to JSON data (``facts.performance.goals[0].metric``)."""

    __slots__ = ("_d",)

    def __init__(self, data: dict):
        self._d = data

    def __getattr__(self, name: str) -> Any:
        try:
            value = self._d[name]
        except KeyError:
            raise AttributeError(name) from None
        return _wrap(value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._d!r})"


def _wrap(value: Any) -> Any:
    if isinstance(value, dict):
        return _Facts(value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


class ProtocolFacts(_Facts):
    """The protocol as a batch notebook sees it: the fields the build validated (the
    protocol's JSON form) with its name, hashes and primary model version, read from the
    build's protocol record instead of loading and checking the YAML again in every kernel
    (which imports pydantic, numpy and the metric registry)."""

    __slots__ = ()

    @classmethod
    def record(cls, protocol: Any) -> dict:
        """The record the build writes (:data:`PROTOCOL_RECORD`)."""
        return {"fields": protocol.model_dump(mode="json"), "sha256": protocol.sha256,
                "file_sha256": protocol.file_sha256, "version": protocol.version,
                "path": str(Path(protocol.path).resolve()) if protocol.path else None}

    def __init__(self, record: dict):
        super().__init__({**record["fields"], "_record": record})

    @property
    def sha256(self) -> str:
        return self._d["_record"]["sha256"]

    @property
    def file_sha256(self) -> str | None:
        return self._d["_record"]["file_sha256"]

    @property
    def version(self) -> str:
        return self._d["_record"]["version"]

    @property
    def path(self) -> Path | None:
        p = self._d["_record"]["path"]
        return None if p is None else Path(p)


def write_record(path: str | Path, record: dict) -> Path:
    """Write a section's result record (``result.to_dict()``) as JSON: sorted keys, floats as
    their shortest round-trip repr, NaN as null. Written to a temporary name, then renamed."""
    from rwe._results import dumps_json_safe

    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(dumps_json_safe(record, sort_keys=True, ensure_ascii=False),
                   encoding="utf-8")
    tmp.replace(path)
    return path


def read_record(path: str | Path) -> dict:
    """A record written by :func:`write_record`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def configure_matplotlib() -> None:
    """Agg backend and deterministic output (no date or version in files, fixed hash salt).

    Titles sit at the top of their axes (``axes.titley: 1.0``) instead of being placed above
    whatever the axes show at their top: matplotlib's automatic placement measures the tick
    labels of every axes of the figure at each layout pass and draw (about 0.8 s of CPU over
    the demo dossier's figures). No dossier figure has ticks or labels at the top of an axes,
    so the title lands where the automatic placement puts it: the 15 figures of the demo
    dossier and the 20 of its federated merge are pixel-identical either way."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    matplotlib.rcParams.update({"svg.hashsalt": "rwe-dossier", "figure.dpi": FIGURE_DPI,
                                "savefig.dpi": FIGURE_DPI, "font.size": 9,
                                "axes.titlesize": 10, "axes.titley": 1.0,
                                "figure.max_open_warning": 0})


#: Smallest text of a figure at print size (points).
MIN_PRINT_PT = 7.0


def fit_for_print(fig: Any) -> float:
    """Enlarge every text of ``fig`` that would print below :data:`MIN_PRINT_PT` (a figure
    wider than the printed page is scaled down to its width), lay the figure out again when
    anything changed, and return the smallest text size at print size."""
    import warnings

    from matplotlib.text import Text

    from rwe._optional import tight_layout
    from rwe.dossier._page import PRINT_WIDTH_IN

    width = float(fig.get_size_inches()[0])
    scale = min(1.0, PRINT_WIDTH_IN / width) if width > 0 else 1.0
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    small = [t for t in texts if t.get_fontsize() * scale < MIN_PRINT_PT - 1e-9]
    for t in small:
        t.set_fontsize(MIN_PRINT_PT / scale)
    if small:
        with warnings.catch_warnings():  # a layout that cannot shrink further keeps its margins
            warnings.simplefilter("ignore", UserWarning)
            tight_layout(fig)
    return min((t.get_fontsize() * scale for t in texts), default=MIN_PRINT_PT)


def _display_html(html: str) -> None:
    from IPython.display import HTML, display

    display(HTML(html))


def _ensure_demo_data(protocol: Any) -> None:
    """Generate the bundled demo data when the protocol points at them and they are missing
    (so the notebooks run in JupyterLab on a fresh checkout)."""
    from rwe.datasets import ensure_demo

    ensure_demo(protocol.resolve(p) for p in (protocol.data.path, protocol.data.reference_rows)
                if p is not None)


@dataclasses.dataclass
class SectionContext:
    """State of one section notebook: the protocol, the section's typed result, where the
    figures go and the small-cell threshold. Made by :func:`start_section`.

    In a batch build (``rwe dossier``) the result is read from the record the orchestrator
    saved (``result_path``); run on its own (JupyterLab), the notebook computes it with the
    same analysis as the build (:func:`rwe.dossier._analyses.compute_section`), reading the
    protocol's data itself.
    """

    name: str
    protocol: Any
    out_dir: Path
    result_path: Path | None = None
    _result: Any = None
    _record: dict | None = None
    _evset: Any = None
    _figures: int = 0
    _plan: Any = None
    _others: dict | None = None

    @property
    def k(self) -> int:
        """Small-cell threshold (``report.small_cell_k``)."""
        return int(self.protocol.report.small_cell_k)

    @property
    def spec(self):
        return section_spec(self.name)

    @property
    def batch(self) -> bool:
        """True inside ``rwe dossier`` (the result was computed by the build)."""
        return self.result_path is not None

    @property
    def evset(self):
        """The protocol's evaluation data (read and validated on first use; a batch build never
        needs them here)."""
        if self._evset is None:
            _ensure_demo_data(self.protocol)
            self._evset = self.protocol.load_data()
        return self._evset

    @property
    def result(self) -> Any:
        """The section's typed result."""
        if self._result is None:
            from rwe.dossier._analyses import analysis, compute_section, load_result

            if self.result_path is not None:
                self._record = read_record(self.result_path)
                self._result = load_result(self.name, self._record)
            else:
                a = analysis(self.name)
                others = {}
                for dep in a.needs:  # run alone: compute what it reads (the model card)
                    if dep in self.protocol.report.sections:
                        evset = self.evset if analysis(dep).needs_data else None
                        others[dep] = compute_section(dep, self.protocol, evset)
                self._others = others
                evset = self.evset if a.needs_data else None
                if a.needs_data:
                    from rwe.dossier._privacy import check_attributes

                    check_attributes(self.protocol, evset)
                if self.name == "model_card":
                    others = {**others, "_plan": self.plan}
                self._result = compute_section(self.name, self.protocol, evset, others)
        return self._result

    @property
    def plan(self) -> Any:
        """The dossier's disclosure plan (:mod:`rwe.dossier._privacy`): the build's, or, run
        on its own, one made from this section's result."""
        if self._plan is None:
            from rwe.dossier._privacy import PRIVACY_RECORD, DisclosurePlan, plan_from_results

            rec = None if self.result_path is None else self.result_path.with_name(
                PRIVACY_RECORD)
            if rec is not None and rec.is_file():
                self._plan = DisclosurePlan.from_dict(read_record(rec))
            elif self.name == "model_card":
                if self._others is None:
                    self.result  # noqa: B018 - computes the sections it reads
                self._plan = plan_from_results(self.protocol, self._others or {})
            else:
                self._plan = plan_from_results(self.protocol, {self.name: self.result})
        return self._plan

    @property
    def record(self) -> dict:
        """The result's JSON record (what ``results.json`` holds for this section)."""
        if self._record is None and self.result_path is not None:
            self._record = read_record(self.result_path)
        if self._record is None:
            from rwe._results import dumps_json_safe
            from rwe.dossier._analyses import analysis

            self._record = json.loads(dumps_json_safe(analysis(self.name).to_dict(
                self.result)))
        return self._record

    # ----------------------------------------------------------------------------- output
    def header(self) -> None:
        """Section title, device, the evidence items delivered and, run on its own, how the
        result was obtained."""
        from rwe.dossier._format import esc

        p = self.protocol
        spec = self.spec
        items = ""
        if spec.evidence:
            items += f" Evidence items: {esc(', '.join(spec.evidence))}."
        if spec.planned:
            items += (f" Pre-specified, not evaluated in this release: "
                      f"{esc(', '.join(spec.planned))}.")
        alone = ("" if self.batch else
                 "<p class='tnote'>Run on its own (not by <code>rwe dossier</code>): this "
                 "notebook computed its section from the protocol's data.</p>")
        _display_html(
            f"<div class='section-head'><h1>{esc(spec.title)}</h1><p class='lede'>"
            f"{esc(p.device.name)} version {esc(p.version)} — protocol <code>{esc(p.name)}</code>"
            f" (sha256 <code>{p.sha256[:12]}</code>…).{items}</p>{alone}</div>")

    def show(self, view: str) -> None:
        """Display a reviewer view of the result (tables with small cells suppressed)."""
        from rwe.dossier._views import render_view

        _display_html(render_view(self.name, view, self.record, self.k, self.protocol,
                                  self.plan))

    def figure(self, fig: Any, name: str, *, caption: str, alt: str | None = None) -> None:
        """Save ``fig`` (a Figure, Axes or array of Axes) as ``figures/<section>-<name>.png``,
        show it with its caption and alt text, and close it. Small counts in its labels are
        scrubbed first."""
        import matplotlib.pyplot as plt
        import numpy as np

        from rwe._optional import is_laid_out
        from rwe.dossier._format import esc
        from rwe.dossier._suppress import scrub_figure

        if isinstance(fig, (list, tuple, np.ndarray)):  # Axes from plt.subplots
            fig = np.asarray(fig, dtype=object).flat[0]
        fig = getattr(fig, "figure", fig)
        if hasattr(fig, "get_figure") and not hasattr(fig, "savefig"):
            fig = fig.get_figure()
        scrub_figure(fig, self.k)
        print_pt = fit_for_print(fig)
        buf = io.BytesIO()
        # bbox "tight" costs a full extra draw; figures already laid out fit as they are
        tight = None if is_laid_out(fig) else "tight"
        fig.savefig(buf, format="png", dpi=FIGURE_DPI, bbox_inches=tight,
                    metadata={"Software": None}, pil_kwargs={"compress_level": 3})
        plt.close(fig)
        data = buf.getvalue()
        folder = self.out_dir / FIGURES_DIR
        folder.mkdir(exist_ok=True)  # never its parents: a removed build stays removed
        path = folder / f"{self.name}-{name}.png"
        path.write_bytes(data)
        self._figures += 1
        alt = alt or caption
        b64 = base64.b64encode(data).decode("ascii")
        _display_html(
            f"<figure class='rwe-fig' id='fig-{esc(name)}' data-print-min-pt='{print_pt:.1f}'>"
            f"<img src='data:image/png;base64,{b64}'"
            f" alt='{esc(alt)}' data-file='{FIGURES_DIR}/{esc(path.name)}'>"
            f"<figcaption><b>Figure {self._figures}.</b> {esc(caption)} "
            f"<a class='figlink' href='{FIGURES_DIR}/{esc(path.name)}'>PNG</a></figcaption>"
            "</figure>")

    # ----------------------------------------------------------------------------- plots
    def reviewer_report(self, report: Any, *, intersections: bool = False) -> Any:
        """A copy of a subgroup result for reviewer figures: cells the disclosure plan hides
        (or with a count below k) dropped, threshold-metric estimates of cells whose confusion
        counts it hides removed (and intersections unless asked for)."""
        from rwe.dossier._privacy import reviewer_subgroups

        return reviewer_subgroups(report, self.plan, self.k, intersections=intersections)

    def reviewer_rows(self, report: Any, by: Any) -> Any:
        """A copy of a subgroup result whose curves (calibration, ROC) show no point derived
        from fewer than k cases: hidden levels dropped, calibration bins and ROC points whose
        counts (cases, events, non-events; true and false positives and negatives) fall in
        1..k-1 removed."""
        from rwe.dossier._privacy import reviewer_curves

        return reviewer_curves(report, self.plan, self.k, by)

    def reviewer_drift(self, drift: Any) -> Any:
        """A copy of a drift result for reviewer figures: the levels the disclosure plan hides
        removed from its tables (control charts, series, heat maps)."""
        from rwe.dossier._privacy import reviewer_drift

        return reviewer_drift(drift, self.plan)

    def reviewer_representativeness(self, rep: Any) -> Any:
        """A copy of a representativeness result for reviewer figures: the categories and
        intersectional cells the plan hides removed from the shares (PPR and share plots)."""
        from rwe.dossier._privacy import reviewer_representativeness

        return reviewer_representativeness(rep, self.plan, self.k)

    def reviewer_federation(self, fed: Any) -> Any:
        """A copy of a federated result for reviewer figures: the site estimates whose site
        cell the disclosure plan hides (or whose counts are small) removed."""
        from rwe.dossier._privacy import reviewer_federation

        return reviewer_federation(fed, self.plan, self.k, self.protocol.data.columns.site)

    def coverage_figure(self, rep: Any, intersection: Any) -> Any:
        """The coverage heat map of ``intersection`` with the hidden cells masked: their
        count reads "<k" or "supp.", their colour is blank, the colour scale is set by the
        shown cells only."""
        from rwe.dossier._privacy import mask_coverage

        return mask_coverage(rep.plot_coverage(intersection), rep, intersection, self.plan,
                             self.k)

    def panels(self, draw: Any, items: list, *, ncols: int = 2, size: tuple = (3.6, 3.2),
               share: bool = False):
        """One figure with a panel per item: ``draw(item, ax)`` draws each.

        ``share=True`` gives every panel the same x and y axes (curves on [0, 1]: calibration,
        ROC): tick labels and axis titles are drawn once per row and column, not per panel.
        """
        import math

        import matplotlib.pyplot as plt

        from rwe._optional import mark_laid_out, tight_layout

        nrows = max(1, math.ceil(len(items) / ncols))
        ncols = min(ncols, max(1, len(items)))
        fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows),
                                 squeeze=False, sharex=share, sharey=share)
        for ax, item in zip(axes.flat, items, strict=False):
            try:
                draw(item, ax)
            except Exception as exc:  # one bad panel must not hide the others: say so in it
                ax.clear()
                ax.set_axis_off()
                ax.text(0.02, 0.5, f"panel not drawn:\n{type(exc).__name__}: {exc}",
                        fontsize=8, color="#b42318", wrap=True, va="center")
            ax.set_title(str(item), loc="left", fontsize=10)
        for ax in list(axes.flat)[len(items):]:
            ax.set_visible(False)
        if share:
            used = len(items)
            for i, ax in enumerate(axes.flat[:used]):
                r, c = divmod(i, ncols)
                bottom = (r + 1) * ncols + c >= used  # no visible panel below this one
                ax.xaxis.set_tick_params(labelbottom=bottom)
                if not bottom:
                    ax.set_xlabel("")
                if c > 0:
                    ax.yaxis.set_tick_params(labelleft=False)
                    ax.set_ylabel("")
            # shared [0, 1] axes: the labels are the same size in every figure, so fixed
            # margins (in inches) fit them; tight_layout would measure every text again
            w, h = fig.get_size_inches()
            left, right, bottom, top, gap_w, gap_h = 0.62, 0.12, 0.52, 0.28, 0.12, 0.34
            aw = (w - left - right - gap_w * (ncols - 1)) / ncols
            ah = (h - bottom - top - gap_h * (nrows - 1)) / nrows
            fig.subplots_adjust(left=left / w, right=1 - right / w, bottom=bottom / h,
                                top=1 - top / h, wspace=gap_w / aw, hspace=gap_h / ah)
            return mark_laid_out(fig)  # figure() saves it without another layout pass
        return tight_layout(fig)


def start_section(name: str, protocol: Any, out_dir: str | Path | None = None,
                  result: str | Path | None = None) -> SectionContext:
    """Begin a section notebook.

    Parameters
    ----------
    name : str
        The section (``SECTION_SPECS``).
    protocol : str, Path or Protocol
        The protocol (a path is loaded and checked).
    out_dir : str or Path, optional
        Where figures go: the dossier being built, or ``reports/notebooks`` next to the
        protocol's directory when run on its own.
    result : str or Path, optional
        The section's saved result record (``rwe dossier`` passes it); None computes the
        section from the protocol's data. Next to it, the build's protocol record
        (:data:`PROTOCOL_RECORD`) stands in for the protocol file when it was made from it.
    """
    if section_spec(name).figures:
        configure_matplotlib()
    proto = None
    if result is not None and isinstance(protocol, (str, Path)):
        facts = Path(result).with_name(PROTOCOL_RECORD)
        if facts.is_file():
            rec = read_record(facts)
            if rec.get("path") == str(Path(protocol).resolve()):
                proto = ProtocolFacts(rec)
    if proto is None:
        from rwe.protocol import Protocol, load_protocol

        proto = protocol if isinstance(protocol, Protocol) else load_protocol(protocol)
    if out_dir is None:
        out_dir = proto.base_dir.parent / "reports" / "notebooks"
    out = Path(out_dir).resolve()
    path = None if result is None else Path(result)
    if path is None:
        out.mkdir(parents=True, exist_ok=True)
    elif not out.is_dir():
        from rwe.exceptions import RWEError

        raise RWEError(f"{out}: the dossier directory of this build does not exist (the build "
                       "was stopped)")
    return SectionContext(name=name, protocol=proto, out_dir=out, result_path=path)
