"""What the dossier notebooks call: load the protocol, save a section's results, show reviewer
views and figures. Nothing here computes a statistic."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
from pathlib import Path
from typing import Any

from rwe._results import json_safe
from rwe.dossier._sections import section_spec

__all__ = ["SectionContext", "start_section", "save_section", "load_section",
           "section_json_path", "SECTIONS_DIR", "FIGURES_DIR", "SHARED_DIR",
           "configure_matplotlib", "share_evaluation_set", "announce_build", "abort_build"]

SECTIONS_DIR = "sections"
#: Where ``rwe dossier`` leaves the validated data for its kernels (removed before install).
SHARED_DIR = ".shared"
_SHARED_EVSET = "evaluation-set.pickle"
_SHARED_PROTOCOL = "protocol.pickle"
_PENDING = "evaluation-set.pending"
_EXPECTED = "sections.json"
_ABORT = "abort"
FIGURES_DIR = "figures"
FIGURE_DPI = 110


def section_json_path(out_dir: str | Path, name: str) -> Path:
    return Path(out_dir) / SECTIONS_DIR / f"{name}.json"


def _dump(payload: dict) -> str:
    return json.dumps(json_safe(payload), sort_keys=True, indent=1, ensure_ascii=False,
                      allow_nan=False) + "\n"


def save_section(name: str, result: Any, out_dir: str | Path, protocol: Any = None) -> dict:
    """Write section ``name``'s payload (from an rwe result object or a dict) to
    ``out_dir/sections/<name>.json`` and return it. The orchestrator merges these files into
    ``results.json``; floats keep their shortest round-trip repr, keys are sorted."""
    from rwe.dossier._payload import section_payload

    payload = section_payload(name, result, protocol)
    path = section_json_path(out_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(_dump(payload), encoding="utf-8")
    tmp.replace(path)
    return payload


def _shared(out_dir: str | Path, name: str = "") -> Path:
    """``out_dir/.shared/name`` (the directory itself without a name)."""
    return Path(out_dir) / SHARED_DIR / name


def announce_build(out_dir: str | Path, sections: list[str], *, data_pending: bool,
                   protocol: Any = None) -> None:
    """Tell the section kernels of an ``rwe dossier`` build what to expect in ``out_dir``:
    the sections being run (:meth:`SectionContext.results` waits for them), with
    ``data_pending`` that the validated data are on their way (:attr:`SectionContext.evset`
    waits for them instead of reading the files itself) and, with ``protocol``, the protocol
    the orchestrator has validated (:func:`start_section` takes it instead of parsing and
    checking the YAML again: about 0.25 s of CPU in each kernel that needs no numpy)."""
    import pickle

    d = _shared(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    (d / _EXPECTED).write_text(json.dumps(sorted(sections)), encoding="utf-8")
    if data_pending:
        (d / _PENDING).write_text("", encoding="utf-8")
    if protocol is not None and protocol.path is not None:
        tmp = d / (_SHARED_PROTOCOL + ".partial")
        with open(tmp, "wb") as fh:
            pickle.dump({"file": str(Path(protocol.path).resolve()),
                         "file_sha256": protocol.file_sha256, "protocol": protocol}, fh,
                        protocol=5)
        tmp.replace(d / _SHARED_PROTOCOL)


def _shared_protocol(out_dir: Path, path: str | Path) -> Any:
    """The validated protocol :func:`announce_build` left in ``out_dir``, if it was read
    from the file at ``path`` and that file's bytes have not changed since; else None."""
    import hashlib
    import pickle

    shared = _shared(out_dir, _SHARED_PROTOCOL)
    if not shared.is_file():
        return None
    with open(shared, "rb") as fh:
        got = pickle.load(fh)
    file = Path(path).resolve()
    if str(file) != got.get("file") or not file.is_file():
        return None
    if hashlib.sha256(file.read_bytes()).hexdigest() != got.get("file_sha256"):
        return None
    return got["protocol"]


def abort_build(out_dir: str | Path, reason: str) -> None:
    """Tell waiting kernels that the build has stopped (they raise instead of waiting)."""
    d = _shared(out_dir)
    if d.is_dir():
        (d / _ABORT).write_text(reason, encoding="utf-8")


def share_evaluation_set(out_dir: str | Path, protocol: Any, evset: Any) -> Path:
    """Leave the protocol's validated data in ``out_dir/.shared/`` for the section kernels.

    ``rwe dossier`` validates the data once, while the first kernels start; each section
    notebook then takes this snapshot instead of reading and validating the files again
    (0.3-0.5 s per kernel on the demo), and every section analyses the same rows. The pickle
    is tied to the protocol's sha256, lives only in the private build directory and is
    deleted before the dossier is moved into place (it holds patient-level rows).
    """
    import pickle

    path = _shared(out_dir, _SHARED_EVSET)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    with open(tmp, "wb") as fh:
        pickle.dump({"protocol_sha256": protocol.sha256, "evset": evset}, fh, protocol=5)
    tmp.replace(path)
    _shared(out_dir, _PENDING).unlink(missing_ok=True)
    return path


def _wait_for(out_dir: Path, ready: Any, what: str) -> None:
    """Poll until ``ready()`` while the orchestrator says the build goes on."""
    import time

    abort = _shared(out_dir, _ABORT)
    while not ready():
        if abort.is_file():
            from rwe.exceptions import RWEError

            raise RWEError(f"dossier build stopped while this section waited for {what}: "
                           f"{abort.read_text(encoding='utf-8').strip()}")
        if not _shared(out_dir).is_dir():  # build directory gone
            return
        time.sleep(0.02)


def _shared_evaluation_set(out_dir: Path, protocol: Any) -> Any:
    """The snapshot :func:`share_evaluation_set` left for this protocol (waiting for it while
    the orchestrator is still validating), or None outside ``rwe dossier``."""
    import pickle

    path = _shared(out_dir, _SHARED_EVSET)
    pending = _shared(out_dir, _PENDING)
    if pending.is_file():
        _wait_for(out_dir, lambda: not pending.is_file(), "the validated data")
    if not path.is_file():
        return None
    with open(path, "rb") as fh:
        got = pickle.load(fh)
    return got["evset"] if got.get("protocol_sha256") == protocol.sha256 else None


def load_section(name: str, out_dir: str | Path) -> dict | None:
    """A saved section payload, or None when that section has not been run."""
    path = section_json_path(out_dir, name)
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def configure_matplotlib() -> None:
    """Agg backend and deterministic output (no date or version in files, fixed hash salt)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    matplotlib.rcParams.update({"svg.hashsalt": "rwe-dossier", "figure.dpi": FIGURE_DPI,
                                "savefig.dpi": FIGURE_DPI, "font.size": 9,
                                "axes.titlesize": 10, "figure.max_open_warning": 0})


def _freeze_long_lived() -> None:
    """Move every object alive now (imported modules, the protocol, the data) out of the
    cyclic garbage collector's reach (:func:`gc.freeze`).

    They live as long as the kernel, yet each full collection walks them again: automatic
    ones while the analysis allocates, and the explicit ``gc.collect()`` statsmodels runs in
    every Holm adjustment (0.1 s each with pandas, scipy and 100k rows loaded). Objects made
    later are collected as usual. Saves about 0.4 s of the demo's subgroup analysis.
    """
    import gc

    gc.freeze()


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
    """State of one section notebook: the protocol, the data (loaded on first use), where the
    outputs go and the small-cell threshold. Made by :func:`start_section`."""

    name: str
    protocol: Any
    out_dir: Path
    payload: dict | None = None
    _evset: Any = None
    _figures: int = 0

    @property
    def k(self) -> int:
        """Small-cell threshold (``report.small_cell_k``)."""
        return int(self.protocol.report.small_cell_k)

    @property
    def spec(self):
        return section_spec(self.name)

    @property
    def evset(self):
        """The protocol's evaluation data (loaded and validated once; inside ``rwe dossier``,
        the snapshot the orchestrator validated)."""
        if self._evset is None:
            evset = _shared_evaluation_set(self.out_dir, self.protocol)
            if evset is None:
                _ensure_demo_data(self.protocol)
                evset = self.protocol.load_data()
            self._evset = evset
            _freeze_long_lived()
        return self._evset

    # ----------------------------------------------------------------------------- output
    def header(self) -> None:
        """Section title, device and the evidence items answered."""
        from rwe.dossier._format import esc

        p = self.protocol
        _display_html(
            f"<div class='section-head'><h1>{esc(self.spec.title)}</h1><p class='lede'>"
            f"{esc(p.device.name)} version {esc(p.version)} — protocol <code>{esc(p.name)}</code>"
            f" (sha256 <code>{p.sha256[:12]}</code>…). Evidence items: "
            f"{esc(', '.join(self.spec.evidence))}.</p></div>")

    def save(self, result: Any) -> dict:
        """Save this section's results (see :func:`save_section`) and keep the payload for
        :meth:`show`."""
        self.payload = save_section(self.name, result, self.out_dir, self.protocol)
        return self.payload

    def show(self, view: str) -> None:
        """Display a reviewer view of the saved payload (tables with small cells suppressed)."""
        from rwe.dossier._views import render_view

        if self.payload is None:
            from rwe.exceptions import InvalidParameterError

            raise InvalidParameterError("call ctx.save(result) before ctx.show(...)")
        _display_html(render_view(self.name, view, self.payload, self.k))

    def results(self) -> dict[str, dict]:
        """Payloads of the other sections already saved in ``out_dir``. Inside ``rwe
        dossier`` (which starts this kernel before the others finish), first waits until
        every other section of the build has saved its results."""
        from rwe.dossier._sections import SECTION_SPECS

        expected = _shared(self.out_dir, _EXPECTED)
        if expected.is_file():
            want = [n for n in json.loads(expected.read_text(encoding="utf-8"))
                    if n != self.name]
            _wait_for(self.out_dir, lambda: all(section_json_path(self.out_dir, n).is_file()
                                                for n in want), "the other sections")
        out = {}
        for s in SECTION_SPECS:
            if s.name != self.name:
                got = load_section(s.name, self.out_dir)
                if got is not None:
                    out[s.name] = got
        return out

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
        buf = io.BytesIO()
        # bbox "tight" costs a full extra draw; figures already laid out fit as they are
        tight = None if is_laid_out(fig) else "tight"
        fig.savefig(buf, format="png", dpi=FIGURE_DPI, bbox_inches=tight,
                    metadata={"Software": None}, pil_kwargs={"compress_level": 3})
        plt.close(fig)
        data = buf.getvalue()
        path = self.out_dir / FIGURES_DIR / f"{self.name}-{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self._figures += 1
        alt = alt or caption
        b64 = base64.b64encode(data).decode("ascii")
        _display_html(
            f"<figure class='rwe-fig' id='fig-{esc(name)}'><img src='data:image/png;base64,{b64}'"
            f" alt='{esc(alt)}' data-file='{FIGURES_DIR}/{esc(path.name)}'>"
            f"<figcaption><b>Figure {self._figures}.</b> {esc(caption)} "
            f"<a class='figlink' href='{FIGURES_DIR}/{esc(path.name)}'>PNG</a></figcaption>"
            "</figure>")

    def write_text(self, filename: str, text: str) -> Path:
        """Write a file at the top of the dossier (e.g. ``model-card.xml``)."""
        path = self.out_dir / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    # ----------------------------------------------------------------------------- plots
    def reviewer_report(self, report: Any, *, intersections: bool = False) -> Any:
        """A copy of a subgroup result for reviewer figures: cells with a count below k
        dropped (and intersections unless asked for)."""
        import numpy as np

        from rwe.dossier._suppress import small_rows

        t = report.table
        keep = ~small_rows(t, self.k, counts=["n", "events"], complements=[("n", "events")])
        if not intersections:
            keep &= t["n_attributes"].to_numpy() <= 1
        return dataclasses.replace(report, table=t[np.asarray(keep)].reset_index(drop=True))

    def reviewer_rows(self, report: Any, by: Any) -> Any:
        """A copy of a subgroup result whose curves (calibration, ROC) exclude the levels of
        ``by`` with fewer than k rows, k events or k non-events."""
        from rwe.subgroups._result import _group_name

        name = _group_name(by)
        t = report.table.drop_duplicates(["group", "level"])
        t = t[t["group"] == name]
        n, e = t["n"].to_numpy(), t["events"].to_numpy()
        big = set(t["level"][(n >= self.k) & (e >= self.k) & ((n - e) >= self.k)])

        def keep(f):
            return f[(f["group"] != name) | f["level"].isin(big)].reset_index(drop=True)

        return dataclasses.replace(report, roc=keep(report.roc),
                                   calibration=keep(report.calibration))

    def panels(self, draw: Any, items: list, *, ncols: int = 3, size: tuple = (4.2, 3.6),
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


def start_section(name: str, protocol: Any, out_dir: str | Path | None = None) -> SectionContext:
    """Begin a section notebook: load the protocol (a path or a Protocol), make ``out_dir``
    and, for a section with figures, set up matplotlib. ``out_dir`` defaults to
    ``reports/notebooks`` next to the protocol's directory."""
    from rwe.protocol import Protocol, load_protocol

    if section_spec(name).figures:
        configure_matplotlib()
    proto = protocol if isinstance(protocol, Protocol) else None
    if proto is None and out_dir is not None:  # inside rwe dossier: the validated protocol
        proto = _shared_protocol(Path(out_dir).resolve(), protocol)
    if proto is None:
        proto = load_protocol(protocol)
    if out_dir is None:
        out_dir = proto.base_dir.parent / "reports" / "notebooks"
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    _freeze_long_lived()
    return SectionContext(name=name, protocol=proto, out_dir=out)
