"""Build an evidence dossier: run the section notebooks with papermill, render reviewer pages
with nbconvert, merge results.json, write manifest.json and the PDF, and move the finished
directory into place (DESIGN.md principles 6 and 8)."""

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
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from rwe._results import json_safe
from rwe._validation import check_int
from rwe.dossier._notebook import (
    FIGURES_DIR,
    SECTIONS_DIR,
    SHARED_DIR,
    _ensure_demo_data,
    abort_build,
    announce_build,
    load_section,
    share_evaluation_set,
)
from rwe.dossier._sections import (
    SECTION_SPECS,
    STATUS_FAIL,
    STATUS_INSUFFICIENT,
    STATUS_NOT_EVALUATED,
    STATUS_PASS,
    SectionSpec,
)
from rwe.exceptions import (
    DossierExistsError,
    DossierWriteError,
    NotebookExecutionError,
    RWEError,
)

__all__ = ["build_dossier", "DossierResult", "NotebookTemplateError", "RESULTS_SCHEMA",
           "MANIFEST_SCHEMA", "default_notebooks_dir", "check_template", "FAILED_SUFFIX",
           "KERNEL_NAME", "dump_results"]

RESULTS_SCHEMA = "rwe.dossier.results/1"
MANIFEST_SCHEMA = "rwe.dossier.manifest/1"
FAILED_SUFFIX = ".FAILED"
FAILED_MARKER = "FAILED.txt"
KERNEL_NAME = "python3"
PARAMETERS = ("protocol", "out_dir")
#: Longest first, so that two workers finish together; the model card reads the others.
RUN_ORDER = ("subgroups", "representativeness", "provenance", "change_control", "drift",
             "model_card")
DEPENDENCIES = ("numpy", "pandas", "scipy", "statsmodels", "scikit-learn", "lifelines",
                "fairlearn", "matplotlib", "pydantic", "PyYAML", "pyarrow", "papermill",
                "nbconvert", "nbformat", "nbclient", "ipykernel", "jupyter_client", "tqdm")

MSG_EXISTS = "{out}: a dossier already exists there; pass --force to replace it"
MSG_NOT_DOSSIER = ("{out}: exists and is not an rwe dossier (no manifest.json or index.html); "
                   "refusing to replace it, even with --force")
MSG_IS_FILE = "{out}: exists and is a file, not a dossier directory"
MSG_TEMPLATE_EMPTY = ("{path}: notebook template is empty ({size} bytes); restore it from the rwe "
                      "source checkout")
MSG_TEMPLATE_JSON = ("{path}: not a valid notebook: its JSON breaks at line {line}, column {col} "
                     "({msg}); the file may be truncated")
MSG_WRITE = "{out}: could not write the dossier: {what}: {reason}; nothing was written{hint}"


class NotebookTemplateError(RWEError):
    """A notebook template is unusable (missing, or without a tagged ``parameters`` cell)."""


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
        return dict(self.results.get("verdict_counts", {}))

    def summary_lines(self) -> list[str]:
        """A few lines for the terminal: verdict counts, where to look, notes."""
        v = self.results["verdicts"]

        def count(kind: str, status: str) -> int:
            return sum(1 for x in v if x["kind"] == kind and x["status"] == status)

        lines = []
        goals = [x for x in v if x["kind"] == "goal"]
        if goals:
            lines.append(f"goals:  {count('goal', STATUS_PASS)} met, "
                         f"{count('goal', STATUS_FAIL)} not met, "
                         f"{count('goal', STATUS_INSUFFICIENT)} insufficient data "
                         f"(of {len(goals)} pre-specified)")
        checks = [x for x in v if x["kind"] == "check"]
        if checks:
            lines.append(f"checks: {count('check', STATUS_PASS)} pass, "
                         f"{count('check', STATUS_FAIL)} fail")
        plans = [x for x in v if x["status"] == STATUS_NOT_EVALUATED]
        if plans:
            lines.append(f"not evaluated in this release: {len(plans)} pre-specified "
                         "criteria (drift, change control)")
        lines.append(f"open    {self.path / 'index.html'}")
        if self.pdf is not None:
            lines.append(f"pdf     {self.pdf}")
        lines += list(self.notes)
        lines.append(f"built in {self.manifest['duration_seconds']:.1f} s "
                     f"({len(self.manifest['notebooks'])} notebooks, "
                     f"{self.manifest['jobs']} at a time)")
        return lines


# =============================================================================== templates
def _import_nbformat() -> Any:
    """Import nbformat (and papermill) without building jsonschema's optional IRI grammar.

    jsonschema loads ``rfc3987_syntax`` when it is installed (jupyter_events pulls it in), and
    that module compiles a Lark grammar at import: about 1.5 s, spent before the first kernel
    starts. nbformat never checks IRI formats, and jsonschema skips a format checker whose
    module is missing, so the module is hidden while jsonschema's format table is built.
    """
    if "jsonschema" not in sys.modules and "rfc3987_syntax" not in sys.modules:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]
        try:
            import jsonschema  # noqa: F401
        finally:
            del sys.modules["rfc3987_syntax"]
    import nbformat

    return nbformat


def check_template(path: Path) -> Any:
    """Read a template and check its tagged ``parameters`` cell defines protocol and out_dir;
    returns the notebook. A missing parameters cell is an error (papermill only warns).

    An empty, truncated or non-notebook file is a :class:`NotebookTemplateError` naming the
    file and where its JSON breaks; the file's content is never quoted.
    """
    nbformat = _import_nbformat()

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
    shutil.rmtree(build / SHARED_DIR, ignore_errors=True)  # patient-level rows: never kept
    for name in ("index.html", "results.json", "manifest.json", "dossier.pdf"):
        (build / name).unlink(missing_ok=True)
    (build / FAILED_MARKER).write_text(
        f"FAILED DOSSIER BUILD - NOT EVIDENCE. Kept for debugging only.\n{_now()}\n{error}\n",
        encoding="utf-8")
    if failed.exists():  # not ours (no marker): keep it, use a fresh name
        failed = out.parent / f"{out.name}{FAILED_SUFFIX}-{uuid.uuid4().hex[:8]}"
    build.rename(failed)
    return failed


# =============================================================================== execution
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


@contextlib.contextmanager
def _kernel_threads(n: int = 1):
    """Kernels started inside this block use ``n`` math-library threads (unless the user set
    them). The build uses one: notebooks already run side by side, and oversubscribed BLAS
    threads spin against each other (seen here: the demo's subgroup analysis took 13 s
    instead of 4 s); and a multi-threaded BLAS splits its sums by thread count, which moved
    the last digit of a few results between ``--jobs 1`` and ``--jobs 2`` (tested: the same
    ``results.json`` bytes whatever ``--jobs``)."""
    saved = {v: os.environ.get(v) for v in _THREAD_VARS}
    user_set = any(val is not None for val in saved.values())
    if not user_set:
        for v in _THREAD_VARS:
            os.environ[v] = str(n)
    try:
        yield None if user_set else n
    finally:
        if not user_set:
            for v in _THREAD_VARS:
                os.environ.pop(v, None)


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


_KERNEL_ARGS = ["--IPKernelApp.log_level=CRITICAL", "--HistoryManager.hist_file=:memory:"]
#: Run in a kernel between two notebooks: a clean namespace, no figure left open, counts from
#: 1, the start folder, nothing kept frozen from the last section (see _KernelPool).
_RESET = """\
get_ipython().run_line_magic("reset", "-f")
if "matplotlib.pyplot" in __import__("sys").modules:
    __import__("sys").modules["matplotlib.pyplot"].close("all")
__import__("os").chdir({cwd!r})
__import__("gc").unfreeze()
__import__("gc").collect()
get_ipython().execution_count = 1
"""
_ENGINE = "rwe-kernel-pool"


class _KernelPool:
    """Kernels handed from one section notebook to the next within a build.

    Starting a kernel costs about 0.5 s of CPU and as much again of waiting, and a section's
    imports (pandas, scipy, matplotlib) up to 2 s: a notebook that finishes cleanly gives its
    kernel back, and the next section runs in it after :data:`_RESET` (IPython's ``%reset
    -f``: no variable of the previous notebook survives; pyplot figures left open are
    closed; execution counts restart at 1; the working directory is the templates' folder
    again). Imported modules stay imported, which is the point; rwe keeps no results in
    module state, and the matplotlib settings are the same in every section
    (:func:`rwe.dossier._notebook.configure_matplotlib`). A kernel whose notebook failed,
    or whose reset failed (which fails that notebook), is shut down, never reused. Kernels
    start inside :func:`_kernel_threads`, in the templates' folder (as in JupyterLab), and
    :meth:`close` shuts every one down.
    """

    def __init__(self, cwd: Path):
        self._cwd = str(cwd)
        self._idle: list = []
        self._all: list = []
        self._lock = threading.Lock()
        self.started = 0
        self.reused = 0

    def take(self) -> tuple[Any, str | None]:
        """A kernel for the next notebook (an idle one, else a new one), on this thread, and
        the code the notebook's client must run in it before the first cell: :data:`_RESET`
        for a reused kernel, None for a new one. The reset runs in the notebook's own client
        session (:func:`_pool_engine`), not in a session of its own: connecting a client costs
        about 0.2 s, and a kernel nobody takes again is never reset at all."""
        with self._lock:
            if self._idle:
                self.reused += 1
                return self._idle.pop(), _RESET.format(cwd=self._cwd)
            self.started += 1
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        km = AsyncKernelManager(kernel_name=KERNEL_NAME)
        with self._lock:
            self._all.append(km)
        run_sync(km.start_kernel)(cwd=self._cwd, extra_arguments=list(_KERNEL_ARGS))
        return km, None

    def give(self, km: Any) -> None:
        """Keep ``km``, whose notebook ran cleanly, for the next notebook (which resets it
        first, see :meth:`take`)."""
        with self._lock:
            self._idle.append(km)

    def discard(self, km: Any) -> None:
        """Shut ``km`` down now (its notebook failed, or the build is over)."""
        from jupyter_core.utils import run_sync

        with self._lock:
            if km in self._idle:
                self._idle.remove(km)
        with contextlib.suppress(Exception):
            if km.has_kernel:
                run_sync(km.shutdown_kernel)(now=True)

    def close(self) -> None:
        """Shut every kernel down (on a worker thread: the caller's event loop, if it has a
        running one, as in JupyterLab, is left alone)."""
        with self._lock:
            kms, self._all, self._idle = list(self._all), [], []
        if not kms:
            return

        def shut() -> None:
            try:
                for km in kms:
                    self.discard(km)
            finally:
                _close_thread_loop()

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rwe-dossier-stop") as ex:
            ex.submit(shut).result()


def _pool_engine() -> str:
    """The papermill engine that runs a notebook on a kernel of the build's pool (``km=``):
    nbclient's, except that it first runs ``rwe_reset`` (the pool's reset of a reused kernel,
    see :meth:`_KernelPool.take`) in the kernel, and that the kernel client it opens is
    closed when the notebook ends (nbclient leaves the client of a kernel it does not own
    running, heartbeat thread included)."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.exceptions import PapermillException
    from papermill.log import logger
    from papermill.utils import merge_kwargs, remove_args

    try:
        papermill_engines.get_engine(_ENGINE)
        return _ENGINE
    except PapermillException:
        pass

    class ResettingClient(PapermillNotebookClient):
        def __init__(self, nb_man, *, rwe_reset: str | None = None, **kw):
            super().__init__(nb_man, **kw)
            self._rwe_reset = rwe_reset

        def papermill_execute_cells(self):
            if self._rwe_reset:
                reply = self.wait_for_reply(self.kc.execute(
                    self._rwe_reset, silent=True, store_history=False))
                status = (reply or {}).get("content", {}).get("status")
                if status != "ok":
                    raise RuntimeError(f"the reused kernel could not be reset ({status})")
            super().papermill_execute_cells()

    class PooledKernelEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False,
                                     stdout_file=None, stderr_file=None, start_timeout=60,
                                     execution_timeout=None, **kwargs):
            kwargs = remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
            client = ResettingClient(nb_man, **merge_kwargs(
                kwargs, timeout=execution_timeout, startup_timeout=start_timeout,
                kernel_name=kernel_name, log=logger, log_output=log_output,
                stdout_file=stdout_file, stderr_file=stderr_file))
            try:
                return client.execute()
            finally:
                if client.kc is not None:
                    client.kc.stop_channels()

    papermill_engines.register(_ENGINE, PooledKernelEngine)
    return _ENGINE


def _run_notebook(spec: SectionSpec, template: Path, build: Path, protocol_path: Path,
                  progress: bool, slots: _Slots, pool: _KernelPool) -> dict:
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    target = build / "notebooks" / spec.notebook
    params = {"protocol": str(protocol_path), "out_dir": str(build)}
    slot = slots.take()
    bar: Any = ({"desc": f"{spec.notebook:<28}", "position": slot, "leave": False,
                 "disable": None, "unit": "cell"} if progress else False)
    t0 = time.perf_counter()
    km = None
    try:
        # the pool's kernels start in the templates' folder (as in JupyterLab); papermill's
        # cwd= would chdir() the whole process, and with sections on several threads the
        # restores interleave and leave the caller in notebooks/
        km, reset = pool.take()
        pm.execute_notebook(str(template), str(target), parameters=params,
                            kernel_name=KERNEL_NAME, progress_bar=bar, km=km, rwe_reset=reset,
                            engine_name=_pool_engine(),
                            request_save_on_cell_execute=False, log_output=False)
        pool.give(km)
        km = None
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
        if km is not None:  # the notebook failed: its kernel is not reused
            pool.discard(km)
        slots.give(slot)
        _close_thread_loop()
    return {"section": spec.name, "template": template, "executed": target,
            "parameters": params, "duration_seconds": round(time.perf_counter() - t0, 3)}


def _schedule(specs: list[SectionSpec], run, jobs: int, overall, *,
              on_failure=None, halted=None) -> list[dict]:
    """Run the sections ``jobs`` at a time, longest first.

    A section that reads others' results (``after``) takes the first free slot once every
    one of them has *started* (it waits for their results in
    :meth:`SectionContext.results`): the kernel pool hands it a kernel that is already up,
    so it needs no start-up of its own while the others finish. ``on_failure(exc)`` is called at
    the first failure (the orchestrator tells waiting kernels to stop); ``halted()`` returns
    an exception when the build must stop for a reason outside the notebooks (the data
    failed validation), which is then raised.
    """
    names = {s.name for s in specs}
    order = sorted(specs, key=lambda s: RUN_ORDER.index(s.name) if s.name in RUN_ORDER else 99)
    pending = list(order)
    started: set[str] = set()
    records: list[dict] = []
    failures: list[tuple[SectionSpec | None, BaseException]] = []  # None: halted()
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="rwe-dossier") as ex:
        running: dict = {}
        try:
            while pending or running:
                stop = halted() if halted is not None else None
                if stop is not None and not any(e is stop for _, e in failures):
                    failures.insert(0, (None, stop))
                    if on_failure is not None:
                        on_failure(stop)
                for s in list(pending):
                    if failures:
                        break
                    if len(running) >= jobs:
                        break
                    if all(d in started or d not in names for d in s.after):
                        running[ex.submit(run, s)] = s
                        started.add(s.name)
                        pending.remove(s)
                if failures:
                    pending.clear()
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED, timeout=0.5)
                for f in finished:
                    s = running.pop(f)
                    exc = f.exception()
                    if exc is not None:
                        if not failures and on_failure is not None:
                            on_failure(exc)
                        failures.append((s, exc))
                        pending.clear()
                    else:
                        records.append(f.result())
                        if overall is not None:
                            overall.update(1)
        except BaseException as exc:  # Ctrl-C: kernels waiting on others must not wait on
            if on_failure is not None and not failures:
                on_failure(exc)
            raise

    if failures:
        # a section stopped by another's failure (it was waiting for that one) is not the cause
        first = [e for s, e in failures if s is None or not s.after] or [failures[0][1]]
        raise first[0]
    by = {r["section"]: r for r in records}
    return [by[s.name] for s in specs]


# =============================================================================== rendering
def _exporter():
    """nbconvert's HTML exporter, "basic" template, no inputs or prompts, without its
    BeautifulSoup post-pass.

    ``HTMLExporter.from_notebook_node`` renders the template and then re-parses the whole
    page with BeautifulSoup to give alt text to images without one and ``tabindex`` to the
    "lab" template's input and output areas. With the "basic" template and rwe's figures
    (always with alt text) that pass changes nothing, yet cost ~0.2 s of the orchestrator's
    CPU per page (~1.3 s a dossier, taken from the kernels on a 2-core machine). The fast
    path repeats the filter set-up of ``HTMLExporter.from_notebook_node`` and renders the
    template; if nbconvert's internals differ from what it expects, the standard method is
    used.
    """
    from nbconvert import HTMLExporter

    class ReviewerHTMLExporter(HTMLExporter):
        def from_notebook_node(self, nb, resources=None, **kw):
            try:
                from nbconvert.exporters.templateexporter import TemplateExporter
                from nbconvert.filters.highlight import Highlight2HTML
                from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

                info = nb.metadata.get("language_info", {})
                self.register_filter("highlight_code", self.filters.get(
                    "highlight_code", Highlight2HTML(
                        pygments_lexer=info.get("pygments_lexer", info.get("name")),
                        parent=self)))
                resources = self._init_resources(resources)
                self.register_filter("filter_data_type", WidgetsDataTypeFilter(
                    notebook_metadata=self._nb_metadata, parent=self, resources=resources))
            except (ImportError, AttributeError, TypeError):  # pragma: no cover - other nbconvert
                return super().from_notebook_node(nb, resources, **kw)
            return TemplateExporter.from_notebook_node(self, nb, resources, **kw)

    return ReviewerHTMLExporter(template_name="basic", exclude_input=True,
                                exclude_input_prompt=True, exclude_output_prompt=True)


#: A figure shown by ``ctx.figure``: the PNG inline (the notebook stays self-contained) and its
#: file in the dossier (``data-file``).
_INLINE_FIGURE = re.compile(r"src='data:image/png;base64,[A-Za-z0-9+/=]*'(?P<rest>[^>]*?)"
                            r"data-file='(?P<file>[^']+)'")


def _link_figures(html: str) -> str:
    """Point a figure's ``<img>`` at its file in the dossier instead of the inline PNG: pages
    a tenth of the size, and nbconvert's HTML pass has less to parse."""
    return _INLINE_FIGURE.sub(lambda m: f"src='{m['file']}'{m['rest']}data-file='{m['file']}'",
                              html)


def _reviewer_body(nb_path: Path, cache: dict) -> str:
    """The executed notebook as reviewer HTML: no code, no prompts, no stderr; figures
    linked to their files (``figures/``). Runs on the build's single render thread, which
    keeps the one exporter in ``cache``."""
    import nbformat

    nb = nbformat.read(str(nb_path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", [])
                            if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
            for o in cell.outputs:
                html = (o.get("data") or {}).get("text/html")
                if html is not None:
                    o["data"]["text/html"] = _link_figures(
                        html if isinstance(html, str) else "".join(html))
    keep = []
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags") or []
        if cell.cell_type == "code" and not cell.get("outputs"):
            continue
        if "parameters" in tags or "injected-parameters" in tags:
            continue
        keep.append(cell)
    nb.cells = keep
    if "exporter" not in cache:
        cache["exporter"] = _exporter()
    body, _ = cache["exporter"].from_notebook_node(nb)
    return body


def _footer(results: dict, rwe_version: str, extra: str = "") -> str:
    from rwe.dossier._format import esc

    p = results["protocol"]
    return (f"Generated by rwe {esc(rwe_version)} from protocol <code>{esc(p['name'])}</code> "
            f"(sha256 <code>{esc(p['sha256'][:16])}</code>…). Aggregates only; small cells "
            f"(&lt;{results['small_cell_k']}) suppressed. {extra}")


# =============================================================================== merging
def _merge(protocol: Any, specs: list[SectionSpec], build: Path) -> dict:
    sections: dict[str, dict] = {}
    verdicts: list[dict] = []
    findings: list[dict] = []
    for s in specs:
        payload = load_section(s.name, build)
        if payload is None:
            raise NotebookExecutionError(
                s.notebook, None, "MissingResults",
                f"the notebook did not save its results (ctx.save) to {SECTIONS_DIR}/"
                f"{s.name}.json")
        verdicts += payload.pop("verdicts", [])
        findings += [{"section": s.name, "text": t} for t in payload.pop("findings", [])]
        sections[s.name] = payload
    counts = {st: sum(1 for v in verdicts if v["status"] == st)
              for st in (STATUS_PASS, STATUS_FAIL, STATUS_INSUFFICIENT, STATUS_NOT_EVALUATED)}
    return json_safe({
        "schema": RESULTS_SCHEMA,
        "protocol": {"name": protocol.name, "title": protocol.report.title,
                     "file": protocol.path.name if protocol.path else None,
                     "sha256": protocol.sha256, "file_sha256": protocol.file_sha256},
        "device": protocol.device.model_dump(mode="json"),
        "model_version": protocol.version,
        "seed": protocol.performance.seed,
        "small_cell_k": protocol.report.small_cell_k,
        "section_order": [s.name for s in specs],
        "verdict_counts": counts,
        "verdicts": verdicts,
        "findings": findings,
        "sections": sections,
    })


def dump_results(results: dict) -> str:
    """results.json text: sorted keys, two-space indent, floats as their shortest repr."""
    return json.dumps(results, sort_keys=True, indent=2, ensure_ascii=False,
                      allow_nan=False) + "\n"


def _versions() -> dict[str, str | None]:
    out = {}
    for name in DEPENDENCIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _inputs(protocol: Any) -> list[dict]:
    items = [("protocol", protocol.path)] if protocol.path else []
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
    return out


def _load_and_share(protocol: Any, build: Path) -> None:
    """Generate the demo data if needed, read and validate the protocol's data, and leave the
    snapshot for the kernels (runs on its own thread while they start)."""
    _ensure_demo_data(protocol)
    share_evaluation_set(build, protocol, protocol.load_data())


# =============================================================================== entry point
def build_dossier(protocol_path: str | Path, out_dir: str | Path, *, force: bool = False,
                  pdf: bool | None = None, jobs: int | None = None, progress: bool = True,
                  notebooks_dir: str | Path | None = None, evset=None) -> DossierResult:
    """Build the evidence dossier of a protocol into ``out_dir``.

    Runs one notebook per section in ``protocol.report.sections`` (``notebooks/``) through
    papermill with ``protocol`` and ``out_dir`` as parameters, independent sections in parallel;
    renders each executed notebook without its code as a reviewer page; merges the sections'
    results into ``results.json``; writes ``index.html`` (verdicts first), ``model-card.xml``,
    ``manifest.json`` and, with headless Chromium, ``dossier.pdf``. Everything is built in a
    temporary directory next to ``out_dir`` and renamed into place when complete.

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
        The protocol's data, already loaded and validated by the caller (``rwe demo``), so the
        build does not read and validate them a second time before the notebooks start.

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

    Notes
    -----
    ``results.json`` depends only on the protocol, the data and the seed: the same inputs give
    the same bytes. Times, versions and hashes of the outputs are in ``manifest.json``.
    """
    from tqdm.auto import tqdm

    import rwe
    from rwe.dossier._chromium import CHROMIUM_MISSING, chromium_version, find_chromium, print_pdf
    from rwe.dossier._page import index_body, page, print_document
    from rwe.protocol import load_protocol

    started = _now()
    t0 = time.perf_counter()
    if jobs is not None:
        jobs = check_int(jobs, "jobs", minimum=1)
    protocol = load_protocol(protocol_path)
    protocol_abs = Path(protocol.path).resolve() if protocol.path else Path(protocol_path)
    out = Path(out_dir).resolve()
    _check_target(out, force)
    wanted = list(protocol.report.sections)
    specs = [s for s in SECTION_SPECS if s.name in wanted]
    nb_dir = Path(notebooks_dir).resolve() if notebooks_dir else default_notebooks_dir()
    templates = {s.name: nb_dir / s.notebook for s in specs}
    for s in specs:
        check_template(templates[s.name])
    if jobs is None:
        jobs = min(2, os.cpu_count() or 1)
    if pdf is None:
        pdf = bool(protocol.report.pdf)
    k = protocol.report.small_cell_k

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        build = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    except OSError as exc:
        raise (_write_error(exc, out, None) or exc) from None
    loader = None
    try:
        umask = os.umask(0)
        os.umask(umask)
        build.chmod(0o777 & ~umask)  # mkdtemp makes it private; a dossier is a normal directory
        (build / "notebooks").mkdir()
        # The data are read and validated once, here, while the first kernels start up (they
        # wait for the snapshot when they need it); bad data stop the build with their one-line
        # error and nothing is written.
        announce_build(build, [s.name for s in specs], data_pending=evset is None,
                       protocol=protocol)
        if evset is None:
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rwe-dossier-data")
            loader = pool.submit(_load_and_share, protocol, build)
            pool.shutdown(wait=False)
        else:
            share_evaluation_set(build, protocol, evset)
    except BaseException as exc:
        shutil.rmtree(build, ignore_errors=True)
        err = _write_error(exc, out, build) if isinstance(exc, OSError) else None
        if err is not None:
            raise err from None
        raise

    def halted() -> BaseException | None:
        if loader is not None and loader.done():
            return loader.exception()
        return None

    def stop_waiting(exc: BaseException) -> None:
        abort_build(build, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    overall = tqdm(total=len(specs), desc="dossier", unit="notebook", position=0,
                   leave=False, disable=None) if progress else None
    slots = _Slots(jobs)
    cache: dict = {}
    # reviewer pages are rendered on their own thread while the kernels run: a worker goes
    # straight on to its next notebook
    renderer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rwe-dossier-render")
    rendering: dict = {}

    pool = _KernelPool(nb_dir)

    def run(spec: SectionSpec) -> dict:
        rec = _run_notebook(spec, templates[spec.name], build, protocol_abs, progress, slots,
                            pool)
        rendering[spec.name] = renderer.submit(_reviewer_body, rec["executed"], cache)
        return rec

    phases: dict[str, float] = {"prepare": round(time.perf_counter() - t0, 3)}
    try:
        try:
            t1 = time.perf_counter()
            try:
                with _kernel_threads(1) as kernel_threads:
                    records = _schedule(specs, run, jobs, overall, on_failure=stop_waiting,
                                        halted=halted)
                if loader is not None and loader.exception() is not None:
                    raise loader.exception()  # only plan sections ran: the data still count
                bodies = {name: f.result() for name, f in rendering.items()}
            finally:
                pool.close()
                renderer.shutdown(wait=True, cancel_futures=True)
                if loader is not None:
                    loader.exception()  # never leave the loader writing into the build
            phases["notebooks"] = round(time.perf_counter() - t1, 3)
        except NotebookExecutionError as exc:
            failed = _keep_failed(build, out, exc)
            kept = failed / "notebooks" / exc.notebook
            raise NotebookExecutionError(exc.notebook, exc.cell_index, exc.ename, exc.evalue,
                                         kept_at=str(kept)) from None
        t1 = time.perf_counter()
        results = _merge(protocol, specs, build)
        _write_text(build / "results.json", dump_results(results))
        shutil.rmtree(build / SECTIONS_DIR, ignore_errors=True)
        shutil.rmtree(build / SHARED_DIR, ignore_errors=True)

        version = rwe.__version__
        for s in specs:
            foot = _footer(results, version, f"Code: <a href='notebooks/{s.notebook}'>"
                                             f"notebooks/{s.notebook}</a>.")
            _write_text(build / s.page, page(
                title=s.title, dossier_title=protocol.report.title, body=bodies[s.name],
                specs=specs, here=s.name, footer=foot))

        pdf_path: Path | None = None
        notes: list[str] = []
        pdf_note: str | None = None
        if pdf and find_chromium() is None:
            pdf_note = CHROMIUM_MISSING
        elif not pdf:
            pdf_note = "PDF not requested (report.pdf: false or --no-pdf)"
        files = {"results.json": True, "manifest.json": True,
                 "model-card.xml": (build / "model-card.xml").is_file(),
                 "dossier.pdf": bool(pdf and pdf_note is None),
                 "figures/": (build / FIGURES_DIR).is_dir(), "notebooks/": True}
        index = index_body(results, specs, k=k, built=started, rwe_version=version,
                           files=files, pdf_note=pdf_note)
        phases["render"] = round(time.perf_counter() - t1, 3)
        if pdf and pdf_note is None:
            t1 = time.perf_counter()
            if overall is not None:
                overall.set_description("dossier (pdf)")
            doc = print_document(dossier_title=protocol.report.title,
                                 bodies=[("index", index)]
                                 + [(s.name, bodies[s.name]) for s in specs],
                                 footer=_footer(results, version))
            tmp_html = build / "_print.html"
            _write_text(tmp_html, doc)
            try:
                pdf_path = print_pdf(tmp_html, build / "dossier.pdf")
            except (RuntimeError, OSError, TimeoutError) as exc:
                pdf_note = f"PDF not written: {str(exc).splitlines()[0]}; the HTML dossier is complete"
                files["dossier.pdf"] = False
                index = index_body(results, specs, k=k, built=started, rwe_version=version,
                                   files=files, pdf_note=pdf_note)
            except Exception as exc:  # subprocess.TimeoutExpired and friends
                pdf_note = (f"PDF not written: {type(exc).__name__}: {exc}; the HTML dossier is "
                            "complete")
                files["dossier.pdf"] = False
                index = index_body(results, specs, k=k, built=started, rwe_version=version,
                                   files=files, pdf_note=pdf_note)
            finally:
                tmp_html.unlink(missing_ok=True)
                phases["pdf"] = round(time.perf_counter() - t1, 3)
        if pdf and pdf_note:
            notes.append(pdf_note)
        _write_text(build / "index.html", page(
            title="Overview", dossier_title=protocol.report.title, body=index, specs=specs,
            here=None, footer=_footer(results, version)))

        finished = _now()
        outputs = sorted(p for p in build.rglob("*") if p.is_file())
        manifest = {
            "schema": MANIFEST_SCHEMA,
            "rwe_version": version,
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
            "jobs": jobs,
            "kernel": KERNEL_NAME,
            "kernels": {"started": pool.started, "reused": pool.reused},
            "kernel_threads": kernel_threads,
            "inputs": _inputs(protocol),
            "notebooks": [{
                "section": r["section"],
                "template": str(r["template"]), "template_sha256": _sha256(r["template"]),
                "executed": str(r["executed"].relative_to(build)),
                "executed_sha256": _sha256(r["executed"]),
                "parameters": {"protocol": r["parameters"]["protocol"], "out_dir": str(out)},
                "duration_seconds": r["duration_seconds"]} for r in records],
            "outputs": [{"path": str(p.relative_to(build)), "sha256": _sha256(p),
                         "bytes": p.stat().st_size} for p in outputs],
            "pdf": {"written": pdf_path is not None, "note": pdf_note},
        }
        _write_text(build / "manifest.json",
                    json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        _install(build, out, force)
    except BaseException as exc:
        if build.exists():
            shutil.rmtree(build, ignore_errors=True)
        err = _write_error(exc, out, build) if isinstance(exc, OSError) else None
        if err is not None:
            raise err from None
        raise
    finally:
        if overall is not None:
            overall.close()
    stale = out.parent / f"{out.name}{FAILED_SUFFIX}"
    if (stale / FAILED_MARKER).is_file():
        shutil.rmtree(stale, ignore_errors=True)
    return DossierResult(path=out, results=results, manifest=manifest,
                         pdf=out / "dossier.pdf" if pdf_path is not None else None, notes=notes)
