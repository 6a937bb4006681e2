"""Build an evidence dossier: compute each section's typed result once, write results.json
from the results, run the section notebooks with papermill to render them, write the
reviewer pages, manifest.json and the PDF, and move the finished directory into place
(DESIGN.md principles 6 and 8)."""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rwe._evidence import STATUS_FAIL, STATUS_NOT_EVALUABLE, STATUS_NOT_EVALUATED, STATUS_PASS
from rwe._results import json_safe
from rwe._validation import check_int
from rwe.dossier._notebook import (
    FIGURES_DIR,
    PROTOCOL_RECORD,
    ProtocolFacts,
    _ensure_demo_data,
    write_record,
)
from rwe.dossier._sections import ALL_SECTION_SPECS, SectionSpec
from rwe.exceptions import (
    DossierExistsError,
    DossierWriteError,
    InvalidParameterError,
    NotebookExecutionError,
    RWEError,
)

if TYPE_CHECKING:
    from rwe.dossier._computed import ComputedSections

__all__ = ["build_dossier", "DossierResult", "NotebookTemplateError", "RESULTS_SCHEMA",
           "MANIFEST_SCHEMA", "default_notebooks_dir", "check_template", "FAILED_SUFFIX",
           "KERNEL_NAME", "dump_results", "BUILDING_INFIX", "merge_results", "check_target"]

RESULTS_SCHEMA = "rwe.dossier.results/3"
MANIFEST_SCHEMA = "rwe.dossier.manifest/2"
FAILED_SUFFIX = ".FAILED"
FAILED_MARKER = "FAILED.txt"
#: A build lives in ``<parent>/.<name>.building-XXXX/`` (private, 0700): ``dossier/`` becomes
#: ``--out``, ``results/`` holds the section records handed to the notebooks, ``owner.json``
#: says which process builds it (a later run removes it when that process is gone).
BUILDING_INFIX = ".building-"
OWNER_FILE = "owner.json"
KERNEL_NAME = "python3"
PARAMETERS = ("protocol", "out_dir", "result")
#: Notebooks ready at the same time start longest first.
RENDER_ORDER = ("subgroups", "representativeness", "drift", "provenance", "change_control",
                "model_card")
#: Order of the analyses (each notebook starts as soon as its result, and the disclosure plan
#: when its page shows counts, are saved): the sections the plan is made from first,
#: subgroups (the longest notebook) before them; the model card reads the others.
COMPUTE_ORDER = ("subgroups", "provenance", "representativeness", "drift", "change_control",
                 "model_card")
DEPENDENCIES = ("numpy", "pandas", "scipy", "statsmodels", "scikit-learn", "lifelines",
                "fairlearn", "matplotlib", "pydantic", "PyYAML", "pyarrow", "papermill",
                "nbconvert", "nbformat", "nbclient", "ipykernel", "jupyter_client", "tqdm",
                "tableone")
_KERNEL_ARGS = ["--IPKernelApp.log_level=CRITICAL", "--HistoryManager.hist_file=:memory:"]

MSG_EXISTS = "{out}: a dossier already exists there; pass --force to replace it"
MSG_NOT_DOSSIER = ("{out}: exists and is not an rwe dossier (no manifest.json or index.html); "
                   "refusing to replace it, even with --force")
MSG_IS_FILE = "{out}: exists and is a file, not a dossier directory"
MSG_TEMPLATE_EMPTY = ("{path}: notebook template is empty ({size} bytes); restore it from the rwe "
                      "source checkout")
MSG_TEMPLATE_JSON = ("{path}: not a valid notebook: its JSON breaks at line {line}, column {col} "
                     "({msg}); the file may be truncated")
MSG_WRITE = "{out}: could not write the dossier: {what}: {reason}; nothing was written{hint}"
MSG_STALE = ("removed {path}: a build directory left by a run that was killed ({why}); it "
             "held no patient rows")


class NotebookTemplateError(RWEError):
    """A notebook template is unusable (missing, or without a tagged ``parameters`` cell)."""


class BuildTerminated(KeyboardInterrupt):
    """The build received SIGTERM (handled like Ctrl-C: the build directory is removed)."""


def default_notebooks_dir() -> Path:
    """``notebooks/`` of the source checkout rwe runs from."""
    return Path(__file__).resolve().parents[2] / "notebooks"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


# =============================================================================== result
@dataclass(frozen=True)
class DossierResult:
    """A finished dossier.

    Attributes
    ----------
    path : Path
        The dossier directory (``index.html`` inside).
    results : dict
        The content of ``results.json``.
    manifest : dict
        The content of ``manifest.json``.
    pdf : Path or None
        ``dossier.pdf`` when it was written.
    notes : list of str
        One-line notes (e.g. why the PDF was not written).
    """

    path: Path
    results: dict
    manifest: dict
    pdf: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def verdict_counts(self) -> dict[str, int]:
        """Verdicts per core status (the same count as the index page's headline)."""
        from rwe.dossier._page import verdict_counts

        return verdict_counts(self.results["verdicts"])

    def summary_lines(self) -> list[str]:
        """A few lines for the terminal: verdict counts, where to look, notes."""
        v = self.results["verdicts"]

        def count(kind: str, status: str) -> int:
            return sum(1 for x in v if x["kind"] == kind and x["status"] == status)

        from rwe.dossier._sections import section_spec

        lines = []
        goals = [x for x in v if x["kind"] == "goal"]
        if goals:
            lines.append(f"goals:  {count('goal', STATUS_PASS)} met, "
                         f"{count('goal', STATUS_FAIL)} not met, "
                         f"{count('goal', STATUS_NOT_EVALUABLE)} not evaluable "
                         f"(of {len(goals)} pre-specified)")
        for section in dict.fromkeys(x["section"] for x in v):
            mine = [x for x in v if x["section"] == section and x["kind"] != "goal"]
            if not mine:
                continue
            tally = ", ".join(f"{sum(x['status'] == s for x in mine)} {s.replace('_', ' ')}"
                              for s in (STATUS_PASS, STATUS_FAIL, STATUS_NOT_EVALUABLE,
                                        STATUS_NOT_EVALUATED)
                              if any(x["status"] == s for x in mine))
            lines.append(f"{section_spec(section).title.lower()}: {tally}")
        cc = self.results["sections"].get("change_control") or {}
        if cc.get("verdict"):
            led = cc.get("ledger")
            lines.append(f"model update: candidate {cc['candidate']} {cc['verdict']}, "
                         + (f"recorded in {led['file']} entry {led['seq']}" if led else
                            "NOT recorded in a ledger (not a change-control decision)"))
        lines.append(f"open    {self.path / 'index.html'}")
        if self.pdf is not None:
            lines.append(f"pdf     {self.pdf}")
        lines += list(self.notes)
        lines.append(f"built in {self.manifest['duration_seconds']:.1f} s "
                     f"({len(self.manifest['notebooks'])} notebooks, "
                     f"{self.manifest['jobs']} at a time)")
        return lines


# =============================================================================== templates
def check_template(path: Path) -> Any:
    """Read a template and check its tagged ``parameters`` cell defines protocol and out_dir;
    returns the notebook. A missing parameters cell is an error (papermill only warns).

    An empty, truncated or non-notebook file is a :class:`NotebookTemplateError` naming the
    file and where its JSON breaks; the file's content is never quoted.
    """
    import nbformat

    path = Path(path)
    if not path.is_file():
        raise NotebookTemplateError(f"{path}: notebook template not found")
    raw = path.read_bytes()
    if not raw.strip():
        raise NotebookTemplateError(MSG_TEMPLATE_EMPTY.format(path=path, size=len(raw)))
    try:
        text = raw.decode("utf-8")
        doc = json.loads(text)
    except UnicodeDecodeError as exc:
        raise NotebookTemplateError(
            f"{path}: not a notebook: not UTF-8 text ({exc.reason} at byte {exc.start}); a "
            "notebook template is JSON") from None
    except json.JSONDecodeError as exc:
        raise NotebookTemplateError(MSG_TEMPLATE_JSON.format(
            path=path, line=exc.lineno, col=exc.colno, msg=exc.msg)) from None
    if not isinstance(doc, dict) or "cells" not in doc or "nbformat" not in doc:
        raise NotebookTemplateError(
            f"{path}: not a Jupyter notebook: the JSON has no 'cells' and 'nbformat' keys")
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # nbformat / jsonschema: the notebook breaks the format
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NotebookTemplateError(f"{path}: not a valid notebook: {first}") from None
    cells = [c for c in nb.cells if "parameters" in (c.get("metadata", {}).get("tags") or [])]
    if not cells:
        raise NotebookTemplateError(
            f"{path}: no cell is tagged 'parameters'; tag the cell that sets "
            f"{' and '.join(PARAMETERS)} (JupyterLab: property inspector > cell tags)")
    src = "\n".join(c.source for c in cells)
    missing = [p for p in PARAMETERS if not re.search(rf"^\s*{p}\s*=", src, re.M)]
    if missing:
        raise NotebookTemplateError(
            f"{path}: the parameters cell does not set {', '.join(missing)}")
    return nb


# =============================================================================== target dir
def _check_target(out: Path, force: bool) -> None:
    """Refuse ``out`` (:class:`DossierExistsError`) when a build may not write there: a file, a
    dossier without ``force``, or a non-empty directory that is not a dossier."""
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir():
        raise DossierExistsError(MSG_IS_FILE.format(out=out))
    if not any(out.iterdir()):
        return
    if not force:
        raise DossierExistsError(MSG_EXISTS.format(out=out))
    if not ((out / "manifest.json").is_file() or (out / "index.html").is_file()):
        raise DossierExistsError(MSG_NOT_DOSSIER.format(out=out))


#: The check of ``--out`` a build makes first (for callers that work before building).
check_target = _check_target


def _write_text(path: Path, text: str) -> None:
    """``path.write_text`` whose error names the file (a full disk reports no file name)."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        if exc.filename is not None:
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None


def _write_error(exc: OSError, out: Path, build: Path | None) -> OSError | None:
    """The one-line error of a failed write into the build (None when ``exc`` is not one:
    an unreadable input keeps its own message)."""
    if isinstance(exc, RWEError):
        return None
    what = f"writing into {out.parent}"
    if exc.filename is not None and build is not None:
        try:
            rel = Path(exc.filename).resolve().relative_to(build.resolve())
        except ValueError:
            return None  # not a file of the build: e.g. an input that could not be read
        if rel.parts:
            what = f"writing {rel.as_posix()}"
    reason = exc.strerror or str(exc) or type(exc).__name__
    hint = (" (free some space or choose another --out)"
            if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)) else "")
    return DossierWriteError(MSG_WRITE.format(out=out, what=what, reason=reason, hint=hint))


def _install(build: Path, out: Path, force: bool) -> None:
    """Move the finished build into place: one rename, or two (old out of the way first)."""
    _check_target(out, force)
    if out.exists():
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        out.rename(old)
        try:
            build.rename(out)
        except BaseException:
            old.rename(out)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        build.rename(out)


def _keep_failed(build: Path, out: Path, error: BaseException) -> Path:
    failed = out.parent / f"{out.name}{FAILED_SUFFIX}"
    if failed.exists() and (failed / FAILED_MARKER).is_file():
        shutil.rmtree(failed, ignore_errors=True)
    for name in ("index.html", "results.json", "manifest.json", "dossier.pdf"):
        (build / name).unlink(missing_ok=True)
    (build / FAILED_MARKER).write_text(
        f"FAILED DOSSIER BUILD - NOT EVIDENCE. Kept for debugging only.\n{_now()}\n{error}\n",
        encoding="utf-8")
    if failed.exists():  # not ours (no marker): keep it, use a fresh name
        failed = out.parent / f"{out.name}{FAILED_SUFFIX}-{uuid.uuid4().hex[:8]}"
    build.rename(failed)
    return failed


# =============================================================================== build dirs
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_builds(out: Path, *, min_age: float = 60.0) -> list[str]:
    """Remove the build directories of ``out`` left by killed runs; one note per directory.

    A build directory whose owner process (``owner.json``) no longer runs on this host is
    stale; so is one without an owner file (killed before writing it, or made by an older rwe
    whose builds held a pickled copy of the data) once it is ``min_age`` seconds old.
    """
    notes = []
    host = socket.gethostname()
    for d in sorted(out.parent.glob(f".{out.name}{BUILDING_INFIX}*")):
        if not d.is_dir() or d.is_symlink():
            continue
        why = None
        try:
            owner = json.loads((d / OWNER_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            owner = None
        if isinstance(owner, dict) and owner.get("host") == host:
            pid = int(owner.get("pid") or 0)
            if pid and not _alive(pid):
                why = f"process {pid} is not running"
        elif owner is None:
            try:
                age = time.time() - d.stat().st_mtime
            except OSError:
                continue
            if age >= min_age:
                why = "no owner file"
        if why is None:
            continue
        shutil.rmtree(d, ignore_errors=True)
        if not d.exists():
            notes.append(MSG_STALE.format(path=d, why=why))
    return notes


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Within the block, SIGTERM raises :class:`BuildTerminated` in the main thread, so a CI
    time-out or a container stop cleans up as Ctrl-C does (elsewhere: unchanged)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise BuildTerminated("SIGTERM")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# =============================================================================== execution
class _Slots:
    """Progress-bar rows for the notebooks running at the same time."""

    def __init__(self, n: int):
        self._free = list(range(1, n + 1))
        self._lock = threading.Lock()

    def take(self) -> int:
        with self._lock:
            return self._free.pop(0) if self._free else 1

    def give(self, slot: int) -> None:
        with self._lock:
            self._free.append(slot)
            self._free.sort()


def _template_cell(nb_path: Path, cell_index: int | None) -> int | None:
    """1-based position in the template of the executed notebook's cell ``cell_index``
    (papermill inserts an injected-parameters cell and error banners)."""
    if cell_index is None:
        return None
    try:
        import nbformat

        nb = nbformat.read(str(nb_path), as_version=4)
    except Exception:  # pragma: no cover - the kept notebook is unreadable
        return cell_index + 1
    skip = ("injected-parameters", "papermill-error-cell-tag")
    pos = 0
    executed = [c for c in nb.cells if "papermill-error-cell-tag" not in
                (c.get("metadata", {}).get("tags") or [])]
    for i, c in enumerate(executed):
        tags = c.get("metadata", {}).get("tags") or []
        if not any(t in tags for t in skip):
            pos += 1
        if i == cell_index:
            return pos
    return cell_index + 1


def _close_thread_loop() -> None:
    """Close the event loop jupyter_core made for this worker thread (else it leaks, with its
    sockets, until garbage collection warns about it)."""
    import asyncio
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            loop = asyncio.get_event_loop_policy().get_event_loop()
        except RuntimeError:
            return
    if not loop.is_running() and not loop.is_closed():
        loop.close()
    asyncio.set_event_loop(None)


def _run_notebook(spec: SectionSpec, template: Path, build: Path, record: Path,
                  protocol_path: Path, progress: bool, slots: _Slots) -> dict:
    """Execute one section notebook with papermill (a fresh kernel, nothing shared)."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    target = build / "notebooks" / spec.notebook
    params = {"protocol": str(protocol_path), "out_dir": str(build), "result": str(record)}
    slot = slots.take()
    bar: Any = ({"desc": f"{spec.notebook:<28}", "position": slot, "leave": False,
                 "disable": None, "unit": "cell"} if progress else False)
    t0 = time.perf_counter()
    try:
        for attempt in range(_KERNEL_START_TRIES):
            try:
                pm.execute_notebook(str(template), str(target), parameters=params,
                                    kernel_name=KERNEL_NAME, progress_bar=bar,
                                    request_save_on_cell_execute=False, log_output=False,
                                    extra_arguments=list(_KERNEL_ARGS))
                break
            except RuntimeError as exc:
                # the kernel died while starting (before any cell ran): jupyter_client picks
                # its five TCP ports by binding and releasing them, and another process can
                # take one before the kernel binds it ("Address already in use"). Nothing of
                # the notebook ran, so it is started again, at most _KERNEL_START_TRIES times.
                if not _kernel_start_failed(exc) or attempt == _KERNEL_START_TRIES - 1:
                    raise
    except PapermillExecutionError as exc:
        cell = _template_cell(target, exc.cell_index)
        evalue = (str(exc.evalue).strip().splitlines() or [""])[0]
        raise NotebookExecutionError(spec.notebook, cell, exc.ename, evalue) from None
    except RWEError:
        raise
    except Exception as exc:  # dead kernel, timeout, unreadable output: still one line
        text = (str(exc).strip().splitlines() or [""])[0]
        raise NotebookExecutionError(spec.notebook, None, type(exc).__name__, text) from None
    finally:
        slots.give(slot)
        _close_thread_loop()
    return {"section": spec.name, "template": template, "executed": target,
            "duration_seconds": round(time.perf_counter() - t0, 3)}


#: Starts of a notebook's kernel before its failure to start is reported.
_KERNEL_START_TRIES = 3


def _kernel_start_failed(exc: BaseException) -> bool:
    """True for a kernel that died before it answered (jupyter_client's start-up race)."""
    text = str(exc)
    return "Kernel died before replying to kernel_info" in text or \
        "Address already in use" in text


# =============================================================================== second process
#: Sections computed in a second process when the build can fork (POSIX, no thread yet).
#: Computed in the second process, in this order: representativeness (with Table 1) first, as
#: the disclosure plan reads it.
SIDE_SECTIONS = ("representativeness", "change_control")


def _side_main(conn: Any, parent_end: Any, names: list[str], protocol: Any,
               evset: Any) -> None:
    """The forked process: compute each section's record from the inherited data, send it,
    and leave without running the parent's exit handlers. It closes its copy of the pipe's
    reading end first, so that a parent killed meanwhile makes its send fail (and this
    process end) instead of blocking on a pipe nobody reads."""
    parent_end.close()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    code = 0
    try:
        from rwe.dossier._analyses import compute_record

        for name in names:
            t0 = time.perf_counter()
            try:
                _, record, _ = compute_record(name, protocol, evset)
                conn.send((name, record, round(time.perf_counter() - t0, 3), None))
            except BaseException as exc:  # reported to the parent, raised there
                conn.send((name, None, 0.0, exc))
    except BaseException:  # pragma: no cover - the pipe broke: the parent is gone
        code = 1
    finally:
        conn.close()
        os._exit(code)


class _Side:
    """Sections computed in a forked process that inherits the data in memory (nothing is
    written) and sends back their records through a pipe; when the build cannot fork, they
    are computed in this process when asked for."""

    def __init__(self, protocol: Any, evset: Any, names: list[str]):
        self.names = list(names)
        self._protocol, self._evset = protocol, evset
        self._got: dict[str, tuple] = {}
        self._taken: set[str] = set()
        self._proc = self._conn = None
        if self.names:
            import multiprocessing

            ctx = multiprocessing.get_context("fork")
            self._conn, child = ctx.Pipe(duplex=False)
            self._proc = ctx.Process(target=_side_main, args=(child, self._conn, self.names,
                                                              protocol, evset), daemon=True)
            self._proc.start()
            child.close()

    def arrived(self, *, block: bool) -> list[str]:
        """The sections whose results have arrived and were not yet asked for; with
        ``block``, all of them (waiting for the rest)."""
        if self._proc is not None:
            while len(self._got) < len(self.names) and (block or self._conn.poll(0)):
                self._receive()
        out = [n for n in self.names if n not in self._taken
               and (self._proc is None or n in self._got)]
        return out

    def _receive(self) -> None:
        try:
            got, record, seconds, exc = self._conn.recv()
        except EOFError:
            raise RuntimeError("the process computing " + ", ".join(
                n for n in self.names if n not in self._got) + " ended without a result "
                f"(exit code {self._proc.exitcode})") from None
        self._got[got] = (record, seconds, exc)

    def result(self, name: str) -> tuple[dict, float]:
        self._taken.add(name)
        if self._proc is None:
            from rwe.dossier._analyses import compute_record

            t0 = time.perf_counter()
            _, record, _ = compute_record(name, self._protocol, self._evset)
            return record, round(time.perf_counter() - t0, 3)
        while name not in self._got:
            self._receive()
        record, seconds, exc = self._got[name]
        if exc is not None:
            raise exc
        return record, seconds

    def close(self) -> None:
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.terminate()
            self._proc.join(timeout=30)
            self._conn.close()
            self._proc = None


#: Modules each section's analysis imports when it first runs (its libraries are imported
#: lazily, so that ``import rwe`` and a kernel that only renders stay light).
SECTION_IMPORTS = {
    "subgroups": ("rwe.subgroups._performance", "scipy.stats", "statsmodels.stats.multitest",
                  "statsmodels.stats.proportion"),
    "representativeness": ("rwe.representativeness._indices", "rwe.cohort", "scipy.stats",
                           "statsmodels.stats.proportion"),
    "drift": ("rwe.drift._drift", "scipy.stats"),
    "change_control": ("rwe.change_control._compare", "scipy.stats"),
}


def _import_before_fork(names: list[str]) -> None:
    """Import what the analyses of ``names`` and the notebooks' runner (papermill) will
    import, before the second process is forked: it inherits them instead of importing them
    again (scipy.stats alone is about 1.3 s of CPU), and the first notebook starts without
    waiting for papermill's import. The build needs every one of them anyway."""
    import importlib

    for module in dict.fromkeys(m for n in names for m in SECTION_IMPORTS.get(n, ())):
        importlib.import_module(module)
    import papermill  # noqa: F401


def _start_side(protocol: Any, evset: Any, names: list[str], jobs: int) -> _Side:
    import multiprocessing

    if (not names or jobs < 2 or evset is None or threading.active_count() > 1
            or "fork" not in multiprocessing.get_all_start_methods()):
        return _Side(protocol, evset, [])
    return _Side(protocol, evset, names)


# =============================================================================== rendering
#: A figure shown by ``ctx.figure``: the PNG inline (the notebook stays self-contained) and its
#: file in the dossier (``data-file``).
_INLINE_FIGURE = re.compile(r"src='data:image/png;base64,[A-Za-z0-9+/=]*'(?P<rest>[^>]*?)"
                            r"data-file='(?P<file>[^']+)'")


def _link_figures(html: str) -> str:
    """Point a figure's ``<img>`` at its file in the dossier instead of the inline PNG."""
    return _INLINE_FIGURE.sub(lambda m: f"src='{m['file']}'{m['rest']}data-file='{m['file']}'",
                              html)


def reviewer_body(nb_path: Path, exporter: Any = None) -> str:
    """The executed notebook as reviewer HTML: no code, no prompts, no stderr; figures
    linked to their files (``figures/``). nbconvert's ``HTMLExporter`` ("basic" template)."""
    import nbformat

    nb = nbformat.read(str(nb_path), as_version=4)
    keep = []
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags") or []
        if "parameters" in tags or "injected-parameters" in tags:
            continue
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", [])
                            if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
            for o in cell.outputs:
                html = (o.get("data") or {}).get("text/html")
                if html is not None:
                    o["data"]["text/html"] = _link_figures(
                        html if isinstance(html, str) else "".join(html))
            if not cell.outputs:
                continue
        keep.append(cell)
    nb.cells = keep
    if exporter is None:
        exporter = _exporter()
    body, _ = exporter.from_notebook_node(nb)
    return body


def _exporter() -> Any:
    from nbconvert import HTMLExporter

    return HTMLExporter(template_name="basic", exclude_input=True, exclude_input_prompt=True,
                        exclude_output_prompt=True)


def _footer(results: dict, rwe_version: str, extra: str = "") -> str:
    from rwe.dossier._format import esc

    p = results["protocol"]
    return (f"Generated by rwe {esc(rwe_version)} from protocol <code>{esc(p['name'])}</code> "
            f"(sha256 <code>{esc(p['sha256'][:16])}</code>…). Aggregates only; small cells "
            f"(&lt;{p['small_cell_k']}) suppressed. {extra}")


# =============================================================================== results.json
def merge_results(protocol: Any, specs: list[SectionSpec], records: dict[str, dict],
                  results: dict[str, Any], plan: Any = None) -> dict:
    """results.json: ``{schema, protocol, sections, verdicts, findings}``. ``sections`` holds
    each section's result record (``to_dict``, unsuppressed, for analysts); ``verdicts`` and
    ``findings`` are the typed verdicts and findings of the results (their ``to_dict``), in
    section order, as reviewers may see them: under the disclosure ``plan`` a hidden cell of a
    verdict keeps no number, a finding that would disclose one keeps no value or count, and
    each finding carries its sentence (``text``) and its section."""
    from rwe.dossier._analyses import result_findings, result_verdicts
    from rwe.dossier._privacy import finding_for_reviewers, verdict_for_reviewers

    k = protocol.report.small_cell_k
    sub = results.get("subgroups")
    metrics = ({} if sub is None else
               dict(zip(sub.goals["goal_id"], sub.goals["metric"], strict=True)))
    verdicts: list[dict] = []
    findings: list[dict] = []
    for s in specs:
        verdicts += [verdict_for_reviewers(v.to_dict(), k, plan, metrics)
                     for v in result_verdicts(s.name, results[s.name])]
    by_id = {v["id"]: v for v in verdicts}
    for s in specs:
        findings += [{"section": s.name, **finding_for_reviewers(f, k, plan, by_id)}
                     for f in result_findings(s.name, results[s.name])]
    # the section records are JSON already (compute_record's): only the rest is converted
    return {**json_safe({
        "schema": RESULTS_SCHEMA,
        "protocol": {"name": protocol.name, "title": protocol.report.title,
                     "file": protocol.path.name if protocol.path else None,
                     "sha256": protocol.sha256, "file_sha256": protocol.file_sha256,
                     "version": protocol.version, "seed": protocol.performance.seed,
                     "small_cell_k": protocol.report.small_cell_k,
                     "sections": [s.name for s in specs],
                     "device": protocol.device.model_dump(mode="json")},
        "verdicts": verdicts,
        "findings": findings,
    }), "sections": {s.name: records[s.name] for s in specs}}


def dump_results(results: dict) -> str:
    """results.json text: sorted keys, two-space indent, floats as their shortest repr
    (:func:`rwe._results.dumps_indented`: what ``json.dumps`` with those settings writes)."""
    from rwe._results import dumps_indented

    return dumps_indented(results) + "\n"


def _versions() -> dict[str, str | None]:
    out = {}
    for name in DEPENDENCIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _git() -> dict[str, Any]:
    """The commit of the rwe source the dossier was built with, or why there is none."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return {"commit": None, "note": "not a git checkout"}
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "note": "not a git checkout (git not available)"}
    return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


#: What the manifest records of a database source (``data.source``): its identity, the query
#: text and the rows read (never a password: the URL carries none).
_DB_KEYS = ("kind", "format", "url", "database", "query", "rows", "rows_sha256", "omop")


def _inputs(protocol: Any, evset: Any = None) -> list[dict]:
    items = [("protocol", protocol.path)] if protocol.path else []
    db = None
    if protocol.data.source is not None:
        src = getattr(evset, "data_source", None)
        fp = src.fingerprint() if src is not None else protocol.data_source().fingerprint()
        db = {"role": "evaluation data", "path": fp.get("path"), "sha256": fp.get("sha256"),
              "bytes": fp.get("bytes"), "source": {k: fp.get(k) for k in _DB_KEYS}}
    else:
        items.append(("evaluation data", protocol.resolve(protocol.data.path)))
    if protocol.data.reference_rows:
        items.append(("comparison rows", protocol.resolve(protocol.data.reference_rows)))
    if protocol.population.comparison:
        items.append(("comparison rows", protocol.resolve(protocol.population.comparison)))
    ref = protocol.population.reference
    if ref is not None:
        cand = protocol.reference_path() or protocol.resolve(ref)
        items.append(("reference population", cand))
    out = []
    for role, p in items:
        p = Path(p)
        out.append({"role": role, "path": str(p), "sha256": _sha256(p) if p.is_file() else None,
                    "bytes": p.stat().st_size if p.is_file() else None})
    if db is not None:
        out.insert(1 if protocol.path else 0, db)
    return out


def _make_build(out: Path) -> tuple[Path, Path, Path]:
    """The private build directory (owner file first), its ``dossier/`` and ``results/``."""
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}{BUILDING_INFIX}", dir=out.parent))
    (work / OWNER_FILE).write_text(json.dumps({"pid": os.getpid(),
                                               "host": socket.gethostname(),
                                               "started": _now()}), encoding="utf-8")
    build = work / "dossier"
    build.mkdir()
    umask = os.umask(0)
    os.umask(umask)
    build.chmod(0o777 & ~umask)  # the work directory stays private; a dossier is not
    (build / "notebooks").mkdir()
    (build / FIGURES_DIR).mkdir()
    records = work / "results"
    records.mkdir()
    return work, build, records


# =============================================================================== entry point
def build_dossier(protocol_path: str | Path, out_dir: str | Path, *, force: bool = False,
                  pdf: bool | None = None, jobs: int | None = None, progress: bool = True,
                  notebooks_dir: str | Path | None = None, evset=None,
                  computed: ComputedSections | None = None) -> DossierResult:
    """Build the evidence dossier of a protocol into ``out_dir``.

    Computes each section of ``protocol.report.sections`` once (the rwe analyses, in this
    process), writes ``results.json`` from the typed results, and renders each section by
    running its notebook (``notebooks/``) through papermill with ``protocol``, ``out_dir`` and
    ``result`` (the section's saved record) as parameters, ``jobs`` notebooks at a time, each
    starting as soon as its result is ready; turns each executed notebook without its code into
    a reviewer page; writes ``index.html`` (verdicts first), ``model-card.xml``,
    ``manifest.json`` and, with headless Chromium, ``dossier.pdf``. Everything is built in a
    private directory next to ``out_dir`` and renamed into place when complete; the records
    handed to the notebooks stay in that private directory and never reach ``out_dir``.

    Parameters
    ----------
    protocol_path : str or Path
        The YAML protocol.
    out_dir : str or Path
        The dossier directory to create.
    force : bool, default False
        Replace an existing dossier at ``out_dir`` (never a directory that is not a dossier).
    pdf : bool, optional
        Render ``dossier.pdf``; None follows the protocol's ``report.pdf``.
    jobs : int, optional
        Notebooks run at the same time; default ``min(2, os.cpu_count())``.
    progress : bool, default True
        tqdm bars, overall and per notebook (on a terminal).
    notebooks_dir : str or Path, optional
        Templates directory (default: ``notebooks/`` of the checkout).
    evset : EvaluationSet, optional
        The protocol's data, already loaded and validated by the caller (``rwe demo``).
    computed : rwe.dossier._computed.ComputedSections, optional
        Every section's typed result, computed beforehand from something other than the
        protocol's data (a federated merge's site summaries): the dossier holds those
        sections, reads no data, and lists the inputs that come with them.

    Returns
    -------
    DossierResult

    Raises
    ------
    ProtocolError, DataValidationError
        The protocol or its data are invalid (nothing is written).
    DossierExistsError
        ``out_dir`` holds a dossier and ``force`` is False, or holds something else.
    NotebookTemplateError
        A template is missing or has no tagged ``parameters`` cell.
    NotebookExecutionError
        A notebook failed: the message names the notebook and the cell (1-based position in
        the template); the partial build is kept in ``<out_dir>.FAILED/`` (no index.html) and
        nothing is written at ``out_dir``.
    KeyboardInterrupt
        Ctrl-C or SIGTERM (:class:`BuildTerminated`): the build directory is removed.

    Notes
    -----
    ``results.json`` depends only on the protocol, the data and the seed: the same inputs give
    the same bytes. Times, versions and hashes of the outputs are in ``manifest.json``. A build
    directory left by a killed run is removed by the next build of the same ``out_dir`` (its
    note is in :attr:`DossierResult.notes`).
    """
    import rwe
    from rwe.protocol import load_protocol

    started = _now()
    t0 = time.perf_counter()
    if jobs is not None:
        jobs = check_int(jobs, "jobs", minimum=1)
    protocol = load_protocol(protocol_path)
    protocol_abs = Path(protocol.path).resolve() if protocol.path else Path(protocol_path)
    out = Path(out_dir).resolve()
    _check_target(out, force)
    wanted = list(protocol.report.sections) if computed is None else list(computed.results)
    if "representativeness" in wanted and protocol.population.reference is None:
        # fail before reading any data, not half-way through the build
        raise InvalidParameterError(
            f"{protocol.locate(('population', 'reference'))}: the report includes the "
            "representativeness section, which needs a reference population: name a bundled "
            "reference (e.g. us_census_2020) or a CSV file of attribute,category,share, or "
            "leave representativeness out of report.sections; nothing was built")
    specs = [s for s in ALL_SECTION_SPECS if s.name in wanted]
    nb_dir = Path(notebooks_dir).resolve() if notebooks_dir else default_notebooks_dir()
    templates = {s.name: nb_dir / s.notebook for s in specs}
    for s in specs:
        check_template(templates[s.name])
    if jobs is None:
        jobs = min(2, os.cpu_count() or 1)
    if pdf is None:
        pdf = bool(protocol.report.pdf)

    notes: list[str] = []
    with _sigterm_as_interrupt():
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            notes += remove_stale_builds(out)
            work, build, records_dir = _make_build(out)
        except OSError as exc:
            raise (_write_error(exc, out, None) or exc) from None
        try:
            result = _build(protocol, protocol_abs, specs, templates, out, work, build,
                            records_dir, jobs=jobs, pdf=pdf, progress=progress, evset=evset,
                            force=force, started=started, t0=t0, version=rwe.__version__,
                            notes=notes, computed=computed)
        except BaseException as exc:
            shutil.rmtree(work, ignore_errors=True)
            err = _write_error(exc, out, build) if isinstance(exc, OSError) else None
            if err is not None:
                raise err from None
            raise
    shutil.rmtree(work, ignore_errors=True)
    stale = out.parent / f"{out.name}{FAILED_SUFFIX}"
    if (stale / FAILED_MARKER).is_file():
        shutil.rmtree(stale, ignore_errors=True)
    return result


def _build(protocol: Any, protocol_abs: Path, specs: list[SectionSpec],
           templates: dict[str, Path], out: Path, work: Path, build: Path, records_dir: Path,
           *, jobs: int, pdf: bool, progress: bool, evset: Any, force: bool, started: str,
           t0: float, version: str, notes: list[str],
           computed: ComputedSections | None = None) -> DossierResult:
    from tqdm.auto import tqdm

    from rwe.dossier._analyses import analysis, compute_record, load_extras, load_result
    from rwe.dossier._chromium import CHROMIUM_MISSING, chromium_version, find_chromium, print_pdf
    from rwe.dossier._modelcard import chai_xml
    from rwe.dossier._page import index_body, page, print_document
    from rwe.dossier._privacy import (
        PLAN_SECTIONS,
        PRIVACY_RECORD,
        check_attributes,
        plan_from_results,
    )

    k = protocol.report.small_cell_k
    by_name = {s.name: s for s in specs}
    order = [n for n in COMPUTE_ORDER if n in by_name] + [
        s.name for s in specs if s.name not in COMPUTE_ORDER]
    analysis_seconds: dict[str, float] = {}
    given = dict(computed.results) if computed is not None else {}
    rows = computed is None  # a build from computed results reads no data
    if rows and any(analysis(n).needs_data for n in order) and evset is None:
        t2 = time.perf_counter()
        _ensure_demo_data(protocol)
        evset = protocol.load_data()
        analysis_seconds["load data"] = round(time.perf_counter() - t2, 3)
    if rows and any(analysis(n).needs_data for n in order):
        t2 = time.perf_counter()
        check_attributes(protocol, evset)
        analysis_seconds["check attributes"] = round(time.perf_counter() - t2, 3)
    # representativeness (with Table 1) is computed in a second process while this one
    # computes the rest: forked before any thread of the build starts, it inherits the data
    # in memory (nothing is written) and returns its record
    _import_before_fork([n for n in order if rows and analysis(n).needs_data])
    side = _start_side(protocol, evset, [n for n in SIDE_SECTIONS if n in by_name], jobs)
    overall = tqdm(total=2 * len(specs), desc="dossier", unit="step", position=0,
                   leave=False, disable=None) if progress else None
    slots = _Slots(jobs)
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="rwe-dossier")
    renderer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rwe-dossier-render")
    exporter: dict[str, Any] = {}

    def render(rec: dict) -> str:
        if "x" not in exporter:
            exporter["x"] = _exporter()
        return reviewer_body(rec["executed"], exporter["x"])

    def run(spec: SectionSpec, record: Path) -> dict:
        rec = _run_notebook(spec, templates[spec.name], build, record, protocol_abs, progress,
                            slots)
        rec["body"] = renderer.submit(render, rec)
        if overall is not None:
            overall.update(1)
        return rec

    phases: dict[str, float] = {"prepare": round(time.perf_counter() - t0, 3)}
    results: dict[str, Any] = {}
    records: dict[str, dict] = {}
    running: dict = {}
    extras: dict[str, Any] = {}
    # notebooks are started only when one of the ``jobs`` slots is free, by this thread or by
    # a notebook that has just finished (so that the longest ready one goes next,
    # RENDER_ORDER, even while this thread is computing an analysis)
    lock = threading.RLock()
    closing: list[bool] = []
    try:
        try:
            t1 = time.perf_counter()
            write_record(records_dir / PROTOCOL_RECORD, ProtocolFacts.record(protocol))
            # a section whose page shows counts starts once the disclosure plan, made from
            # the PLAN_SECTIONS' results, is saved; the plan sections start at once
            counted = {n for n in order if analysis(n).needs_data or analysis(n).needs
                       or n in given}
            plan_sections = [n for n in PLAN_SECTIONS if n in by_name]
            pending: list[tuple[str, Path]] = []
            plan = None

            def make_plan():
                t2 = time.perf_counter()
                made = plan_from_results(protocol, results, extras)
                write_record(records_dir / PRIVACY_RECORD, made.to_dict())
                analysis_seconds["disclosure plan"] = round(time.perf_counter() - t2, 3)
                return made

            # this process's own analyses in order; the second process's results are taken
            # as they arrive, so the plan (made from the sections that show counts of cells,
            # PLAN_SECTIONS) and the notebooks that wait for it start as early as they can
            local = [n for n in order if n not in side.names and not analysis(n).needs]
            later = [n for n in order if n not in side.names and analysis(n).needs]

            def saved(name: str, record: dict, seconds: float) -> None:
                records[name] = record
                path = write_record(records_dir / f"{name}.json", record)
                with lock:
                    pending.append((name, path))
                analysis_seconds[name] = seconds
                if overall is not None:
                    overall.update(1)

            def arrived(block: bool) -> None:
                for name in side.arrived(block=block):
                    t2 = time.perf_counter()
                    record, seconds = side.result(name)
                    results[name] = load_result(name, record)
                    extras.update(load_extras(name, record))
                    analysis_seconds[name + " (second process)"] = seconds
                    saved(name, record, round(time.perf_counter() - t2, 3))

            def failed_any() -> bool:
                with lock:
                    return any(f.done() and f.exception() is not None for f in running)

            def start_ready(*_: Any) -> None:
                """Start ready notebooks (result saved, and the plan when their page shows
                counts), longest first, while a slot is free; none once one failed."""
                with lock:
                    if closing or failed_any():
                        return
                    ready = [x for x in pending if plan is not None or x[0] not in counted]
                    ready.sort(key=lambda x: RENDER_ORDER.index(x[0])
                               if x[0] in RENDER_ORDER else 9)
                    free = jobs - sum(not f.done() for f in running)
                    for w, wpath in ready[:max(free, 0)]:
                        pending.remove((w, wpath))
                        f = pool.submit(run, by_name[w], wpath)
                        running[f] = w
                        f.add_done_callback(start_ready)  # runs when it finishes

            def launch() -> bool:
                """Make the plan once its sections are computed and start what is ready;
                False once a notebook failed."""
                nonlocal plan
                if plan is None and all(n in results for n in plan_sections):
                    plan = make_plan()
                start_ready()
                return not failed_any()

            for name in local + [None] + later:
                if name is None:  # every section the later ones read is computed first
                    arrived(block=True)
                    if not launch():
                        break
                    continue
                if analysis(name).needs and plan is None:
                    plan = make_plan()
                t2 = time.perf_counter()
                results[name], record, more = compute_record(
                    name, protocol, evset, {**results, "_plan": plan},
                    result=given.get(name))
                extras.update(more)
                saved(name, record, round(time.perf_counter() - t2, 3))
                arrived(block=False)
                if not launch():
                    break
            else:
                arrived(block=True)
                launch()
            if plan is None:
                plan = make_plan()
            phases["analyses"] = round(time.perf_counter() - t1, 3)
            # results.json needs only the results and the plan: it is made while the last
            # notebooks run, not after them (every section is computed unless one failed)
            if not failed_any():
                results_json = merge_results(protocol, specs, records, results, plan)
                results_text = dump_results(results_json)
            while True:  # until every notebook ran, or one failed
                start_ready()
                with lock:
                    futures = list(running)
                wait(futures, return_when=FIRST_EXCEPTION)
                with lock:
                    if failed_any() or (not pending and all(f.done() for f in running)):
                        break
            failed = [f for f in running if f.done() and f.exception() is not None]
            if failed:
                for f in running:
                    f.cancel()
                wait(running)
                first = min(failed, key=lambda f: order.index(running[f]))
                raise first.exception()
            recs = {running[f]: f.result() for f in running}
            bodies = {name: r["body"].result() for name, r in recs.items()}
            phases["notebooks"] = round(time.perf_counter() - t1, 3)
        finally:
            closing.append(True)  # a notebook finishing now starts no other
            pool.shutdown(wait=True, cancel_futures=True)
            renderer.shutdown(wait=True, cancel_futures=True)
            side.close()
    except NotebookExecutionError as exc:
        failed_dir = _keep_failed(build, out, exc)
        kept = failed_dir / "notebooks" / exc.notebook
        raise NotebookExecutionError(exc.notebook, exc.cell_index, exc.ename, exc.evalue,
                                     kept_at=str(kept)) from None
    finally:
        if overall is not None:
            overall.close()

    t1 = time.perf_counter()
    _write_text(build / "results.json", results_text)
    if "model_card" in records:
        _write_text(build / "model-card.xml", chai_xml(records["model_card"], k, plan))
    if computed is not None and computed.write is not None:
        computed.write(build)
    for s in specs:
        foot = _footer(results_json, version, f"Code: <a href='notebooks/{s.notebook}'>"
                                              f"notebooks/{s.notebook}</a>.")
        _write_text(build / s.page, page(
            title=s.title, dossier_title=protocol.report.title, body=bodies[s.name],
            specs=specs, here=s.name, footer=foot))

    pdf_path: Path | None = None
    pdf_note: str | None = None
    if pdf and find_chromium() is None:
        pdf_note = CHROMIUM_MISSING
    elif not pdf:
        pdf_note = "PDF not requested (report.pdf: false or --no-pdf)"
    files = {"results.json": True, "manifest.json": True,
             "model-card.xml": (build / "model-card.xml").is_file(),
             "dossier.pdf": bool(pdf and pdf_note is None),
             "figures/": any((build / FIGURES_DIR).iterdir()), "notebooks/": True,
             "merged/": (build / "merged").is_dir()}
    index = index_body(results_json, specs, k=k, built=started, rwe_version=version,
                       files=files, pdf_note=pdf_note)
    phases["render"] = round(time.perf_counter() - t1, 3)
    if pdf and pdf_note is None:
        t1 = time.perf_counter()
        doc = print_document(dossier_title=protocol.report.title,
                             bodies=[("index", index)] + [(s.name, bodies[s.name])
                                                          for s in specs],
                             specs=specs, footer=_footer(results_json, version))
        tmp_html = build / "_print.html"  # next to figures/, which it shows
        _write_text(tmp_html, doc)
        try:
            pdf_path = print_pdf(tmp_html, build / "dossier.pdf")
        except Exception as exc:  # RuntimeError, OSError, subprocess.TimeoutExpired ...
            pdf_note = (f"PDF not written: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                        "; the HTML dossier is complete")
            files["dossier.pdf"] = False
            (build / "dossier.pdf").unlink(missing_ok=True)
            index = index_body(results_json, specs, k=k, built=started, rwe_version=version,
                               files=files, pdf_note=pdf_note)
        finally:
            tmp_html.unlink(missing_ok=True)
            phases["pdf"] = round(time.perf_counter() - t1, 3)
    if pdf and pdf_note:
        notes.append(pdf_note)
    _write_text(build / "index.html", page(
        title="Overview", dossier_title=protocol.report.title, body=index, specs=specs,
        here=None, footer=_footer(results_json, version)))

    finished = _now()
    outputs = sorted(p for p in build.rglob("*") if p.is_file())
    manifest = {
        "schema": MANIFEST_SCHEMA,
        "rwe_version": version,
        "git": _git(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "executable": sys.executable,
        "dependencies": _versions(),
        "chromium": chromium_version() if pdf_path is not None else None,
        "protocol": {"path": str(protocol_abs), "name": protocol.name,
                     "sha256": protocol.sha256, "file_sha256": protocol.file_sha256},
        "seed": protocol.performance.seed,
        "small_cell_k": k,
        "started_at": started,
        "finished_at": finished,
        "duration_seconds": round(time.perf_counter() - t0, 3),
        "phases_seconds": phases,
        "analysis_seconds": analysis_seconds,
        "jobs": jobs,
        "kernel": KERNEL_NAME,
        "inputs": _inputs(protocol, evset) if rows else [dict(x) for x in computed.inputs],
        # the change-control ledger as this dossier read it: its head hash lets
        # `rwe ledger verify --head` detect a later truncation or an older copy
        "ledger": (results_json["sections"].get("change_control") or {}).get("ledger"),
        "notebooks": [{
            "section": r["section"],
            "template": str(r["template"]), "template_sha256": _sha256(r["template"]),
            "executed": str(r["executed"].relative_to(build)),
            "executed_sha256": _sha256(r["executed"]),
            "parameters": {"protocol": str(protocol_abs), "out_dir": str(out),
                           "result": f"results.json sections.{r['section']} (a private copy "
                                     "in the build directory)"},
            "duration_seconds": r["duration_seconds"]} for r in
            (recs[s.name] for s in specs)],
        "outputs": [{"path": str(p.relative_to(build)), "sha256": _sha256(p),
                     "bytes": p.stat().st_size} for p in outputs],
        "pdf": {"written": pdf_path is not None, "note": pdf_note},
        "notes": list(notes),
    }
    _write_text(build / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    _install(build, out, force)
    return DossierResult(path=out, results=results_json, manifest=manifest,
                         pdf=out / "dossier.pdf" if pdf_path is not None else None, notes=notes)
