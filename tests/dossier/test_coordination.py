"""How the orchestrator and the section kernels share work: the validated data snapshot, the
early-started model card, bad data stopping a build, and what never leaves the build."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from dossier_helpers import ROOT, small_protocol

from rwe.cli import main
from rwe.dossier import build_dossier
from rwe.dossier._build import _schedule
from rwe.dossier._notebook import (
    SHARED_DIR,
    SectionContext,
    _shared_evaluation_set,
    abort_build,
    announce_build,
    save_section,
    share_evaluation_set,
)
from rwe.dossier._sections import SectionSpec
from rwe.exceptions import DataValidationError, NotebookExecutionError, RWEError


def _later(delay: float, fn, *args) -> threading.Thread:
    def go():
        time.sleep(delay)
        fn(*args)

    t = threading.Thread(target=go)
    t.start()
    return t


def test_kernel_waits_for_the_validated_data(tmp_path):
    proto = SimpleNamespace(sha256="abc")
    announce_build(tmp_path, ["subgroups"], data_pending=True)
    t = _later(0.3, share_evaluation_set, tmp_path, proto, {"rows": 3})
    t0 = time.perf_counter()
    got = _shared_evaluation_set(tmp_path, proto)
    t.join()
    assert got == {"rows": 3} and time.perf_counter() - t0 >= 0.25
    # another protocol (sha256) never takes this snapshot
    assert _shared_evaluation_set(tmp_path, SimpleNamespace(sha256="other")) is None


def test_kernel_takes_the_validated_protocol_while_its_file_is_unchanged(tmp_path,
                                                                          monkeypatch):
    import shutil

    import rwe.protocol
    from rwe.dossier import start_section

    src = tmp_path / "proto.yaml"
    shutil.copy(ROOT / "protocols" / "demo.yaml", src)
    protocol = rwe.protocol.load_protocol(src)
    build = tmp_path / "build"
    announce_build(build, ["drift"], data_pending=False, protocol=protocol)
    calls = []
    real = rwe.protocol.load_protocol
    monkeypatch.setattr(rwe.protocol, "load_protocol", lambda p: (calls.append(p), real(p))[1])
    ctx = start_section("drift", str(src), build)
    assert calls == [] and ctx.protocol.sha256 == protocol.sha256
    assert ctx.protocol.resolve(ctx.protocol.data.path) == protocol.resolve(protocol.data.path)
    # outside that build, or once the file has changed, the file is read again
    start_section("drift", str(src), tmp_path / "elsewhere")
    src.write_text(src.read_text() + "\n# edited\n")
    again = start_section("drift", str(src), build)
    assert len(calls) == 2 and again.protocol.file_sha256 != protocol.file_sha256


def test_waiting_kernel_stops_when_the_build_is_aborted(tmp_path):
    announce_build(tmp_path, ["subgroups"], data_pending=True)
    t = _later(0.2, abort_build, tmp_path, "demo.parquet: column 'score' out of range")
    with pytest.raises(RWEError, match="stopped while this section waited for the validated "
                                       "data: demo.parquet: column 'score' out of range"):
        _shared_evaluation_set(tmp_path, SimpleNamespace(sha256="abc"))
    t.join()


def test_outside_a_build_nothing_waits(tmp_path):
    assert _shared_evaluation_set(tmp_path, SimpleNamespace(sha256="abc")) is None
    ctx = SectionContext(name="model_card", protocol=None, out_dir=tmp_path)
    assert ctx.results() == {}  # JupyterLab: whatever has been saved, at once


def test_model_card_waits_for_every_other_section(tmp_path):
    announce_build(tmp_path, ["drift", "provenance", "model_card"], data_pending=False)
    ctx = SectionContext(name="model_card", protocol=None, out_dir=tmp_path)
    save_section("drift", {"status": "not evaluated"}, tmp_path)
    t = _later(0.3, save_section, "provenance", {"status": "done"}, tmp_path)
    t0 = time.perf_counter()
    got = ctx.results()
    t.join()
    assert sorted(got) == ["drift", "provenance"] and time.perf_counter() - t0 >= 0.25


def _spec(name: str, after: tuple[str, ...] = ()) -> SectionSpec:
    return SectionSpec(name, name, f"{name}.ipynb", f"{name}.html", (), "", after=after)


def test_schedule_starts_a_dependent_section_once_its_inputs_have_started():
    specs = [_spec("subgroups"), _spec("drift"), _spec("model_card", after=("subgroups",
                                                                           "drift"))]
    events: list[tuple[str, str]] = []
    lock = threading.Lock()

    def run(spec):
        with lock:
            events.append(("start", spec.name))
        time.sleep({"subgroups": 0.6, "drift": 0.1, "model_card": 0.05}[spec.name])
        with lock:
            events.append(("end", spec.name))
        return {"section": spec.name}

    recs = _schedule(specs, run, 2, None)
    assert [r["section"] for r in recs] == ["subgroups", "drift", "model_card"]
    # the model card's kernel starts while subgroups is still running (drift's slot is free)
    assert events.index(("start", "model_card")) < events.index(("end", "subgroups"))


def test_schedule_reports_the_cause_not_the_section_stopped_by_it():
    specs = [_spec("drift"), _spec("model_card", after=("drift",))]
    stopped: list[str] = []

    def run(spec):
        if spec.name == "drift":
            time.sleep(0.2)
            raise NotebookExecutionError("03_drift.ipynb", 3, "ValueError", "boom")
        while not stopped:
            time.sleep(0.01)
        raise NotebookExecutionError("06_model_card.ipynb", 3, "RWEError", "build stopped")

    with pytest.raises(NotebookExecutionError, match="03_drift.ipynb") as info:
        _schedule(specs, run, 2, None, on_failure=lambda exc: stopped.append(str(exc)))
    assert info.value.notebook == "03_drift.ipynb" and stopped


def _bad_data_protocol(directory: Path) -> Path:
    proto = small_protocol(directory, n_scans=400, sections=["drift", "provenance",
                                                             "model_card"])
    data = directory / "data" / "demo.parquet"
    frame = pd.read_parquet(data)
    score = [c for c in frame.columns if c.startswith("score")][0]
    frame.loc[frame.index[7], score] = 1.5  # not a probability
    frame.to_parquet(data)
    return proto


def test_bad_data_stop_the_build_with_their_error(tmp_path, capsys):
    proto = _bad_data_protocol(tmp_path / "bad")
    out = tmp_path / "reports" / "d"
    with pytest.raises(DataValidationError) as info:
        build_dossier(proto, out, pdf=False, progress=False)
    assert "demo.parquet" in str(info.value) and "\n" not in str(info.value).strip()
    assert not out.exists() and not list(out.parent.glob("*")), "nothing is left behind"
    assert main(["dossier", str(proto), "--out", str(out), "--quiet", "--no-pdf"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rwe: error: ") and "demo.parquet" in err
    assert "Traceback" not in err and not out.exists()


def test_the_data_snapshot_never_leaves_the_build(dossier):
    assert not (dossier.path / SHARED_DIR).exists()
    assert not list(dossier.path.rglob("*.pickle"))
    assert all(not o["path"].startswith(SHARED_DIR) for o in dossier.manifest["outputs"])


def test_reviewer_pages_link_their_figure_files(dossier):
    """Pages show the figure files (no inline PNG); the executed notebooks keep theirs."""
    import re

    pages = [p for p in dossier.path.glob("*.html") if p.name != "index.html"]
    srcs = []
    for page in pages:
        text = page.read_text()
        assert "base64," not in text, page.name
        srcs += re.findall(r"""<img[^>]*\ssrc=["']([^"']+)["']""", text)
    assert srcs and all((dossier.path / s).is_file() for s in srcs)
    nb = json.loads((dossier.path / "notebooks" / "02_subgroups.ipynb").read_text())
    assert "data:image/png;base64," in json.dumps(nb)


def test_plan_sections_never_load_numpy_pandas_or_matplotlib(tmp_path, dossier):
    """The drift, change-control and model-card kernels only read the protocol and the other
    sections' results: no numpy, pandas, matplotlib or scipy import (each costs a kernel
    0.1-1 s), nor the build machinery."""
    sections = tmp_path / "sections"
    sections.mkdir()
    for name, payload in dossier.results["sections"].items():
        if name != "model_card":
            (sections / f"{name}.json").write_text(json.dumps(payload))
    proto = dossier.manifest["protocol"]["path"]
    from rwe.protocol import load_protocol

    # as rwe dossier does: the kernels take the protocol it validated
    announce_build(tmp_path, list(dossier.results["sections"]), data_pending=False,
                   protocol=load_protocol(proto))
    code = f"""
import sys
import rwe
from rwe.dossier import start_section
for name, view in [("drift", "plan"), ("change_control", "criteria")]:
    ctx = start_section(name, {proto!r}, {str(tmp_path)!r})
    ctx.header()
    ctx.save(getattr(rwe.dossier, name + "_plan")(ctx.protocol))
    for v in ("statement", "verdicts", view):
        ctx.show(v)
ctx = start_section("model_card", {proto!r}, {str(tmp_path)!r})
card = rwe.dossier.model_card(ctx.protocol, ctx.results())
ctx.save(card)
ctx.write_text("model-card.xml", rwe.dossier.chai_xml(card, ctx.k))
ctx.show("card")
print(sorted(m for m in ("numpy", "pandas", "matplotlib", "scipy", "papermill", "nbconvert")
            if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def _notebook(path, *sources):
    """Write a notebook of code cells for the pool's kernel at ``path``."""
    import nbformat

    from rwe.dossier._build import KERNEL_NAME

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
    return path


def test_kernel_pool_hands_a_clean_kernel_to_the_next_notebook(tmp_path):
    """A kernel is reused only after %reset: no variable, frozen object, open figure or
    working directory of the previous notebook survives, and counts restart at 1; close()
    stops every kernel and leaves no thread behind."""
    import nbformat
    import papermill as pm

    from rwe.dossier._build import KERNEL_NAME, _KernelPool, _pool_engine

    def notebook(name, *sources):
        return _notebook(tmp_path / name, *sources)

    first = notebook("a.ipynb", "import gc, os\nleft_over = 42\ngc.freeze()\n"
                                "os.chdir(os.path.expanduser('~'))\n"
                                "import matplotlib\nmatplotlib.use('Agg')\n"
                                "import matplotlib.pyplot as plt\nplt.figure()")
    second = notebook("b.ipynb", "import os, sys\nprint(sorted(k for k in ('left_over', 'gc')"
                                 " if k in globals()), os.getcwd(),"
                                 " sys.modules['matplotlib.pyplot'].get_fignums())")
    threads = threading.active_count()
    pool = _KernelPool(tmp_path)
    try:
        for path in (first, second):
            km, reset = pool.take()
            assert (reset is None) == (path == first)
            pm.execute_notebook(str(path), str(path.with_suffix(".out.ipynb")), km=km,
                                rwe_reset=reset,
                                engine_name=_pool_engine(), kernel_name=KERNEL_NAME,
                                progress_bar=False, request_save_on_cell_execute=False)
            pool.give(km)
        assert (pool.started, pool.reused) == (1, 1)
    finally:
        pool.close()
    out = nbformat.read(str(second.with_suffix(".out.ipynb")), as_version=4)
    cell = out.cells[0]
    assert cell.execution_count == 1
    assert cell.outputs[0]["text"].strip() == f"[] {tmp_path} []"
    assert not km.has_kernel and threading.active_count() == threads


def test_a_kernel_that_cannot_be_reset_fails_its_notebook_before_any_cell(tmp_path):
    """The reset of a reused kernel runs before the first cell; if it fails, the notebook
    fails with that reason (the orchestrator then discards the kernel) and no cell runs."""
    import nbformat
    import papermill as pm

    from rwe.dossier._build import KERNEL_NAME, _KernelPool, _pool_engine

    path = _notebook(tmp_path / "a.ipynb", "ran = True")
    pool = _KernelPool(tmp_path)
    try:
        km, _ = pool.take()
        with pytest.raises(RuntimeError, match=r"reused kernel could not be reset \(error\)"):
            pm.execute_notebook(str(path), str(tmp_path / "out.ipynb"), km=km,
                                rwe_reset="raise ValueError('no')", engine_name=_pool_engine(),
                                kernel_name=KERNEL_NAME, progress_bar=False,
                                request_save_on_cell_execute=False)
        _notebook(path, "print('ran' in globals())")
        pm.execute_notebook(str(path), str(tmp_path / "out.ipynb"), km=km,
                            engine_name=_pool_engine(), kernel_name=KERNEL_NAME,
                            progress_bar=False, request_save_on_cell_execute=False)
        out = nbformat.read(str(tmp_path / "out.ipynb"), as_version=4)
        assert out.cells[0].outputs[0]["text"].strip() == "False"
    finally:
        pool.close()
