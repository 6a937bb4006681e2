"""The dossier engine: analyses run once in the build, notebooks render the saved results (and
compute them when run on their own), bad data stop a build, killed builds leave no patient
rows and are cleaned up by the next run."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from dossier_helpers import NOTEBOOKS, ROOT, small_protocol

from rwe.cli import main
from rwe.dossier import build_dossier, remove_stale_builds
from rwe.exceptions import DataValidationError

#: Identifiers of the demo data (scan and patient ids): what a file with patient rows holds.
IDS = re.compile(rb"\b(?:CT|P)\d{6}\b")


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


def test_no_file_of_a_build_holds_patient_rows(dossier):
    """The data are never written anywhere: the dossier holds aggregates only (ids of the
    demo's scans and patients appear in no file), and no pickle exists."""
    ids = set(pd.read_parquet(Path(dossier.manifest["inputs"][1]["path"]),
                              columns=["scan_id"])["scan_id"].head(50))
    assert all(IDS.fullmatch(i.encode()) for i in ids)
    for p in dossier.path.rglob("*"):
        if p.is_file():
            assert not IDS.search(p.read_bytes()), p
    assert not list(dossier.path.parent.rglob("*.pickle"))


def _record(dossier, name: str) -> dict:
    return dossier.results["sections"][name]


def _run(template: Path, out: Path, **params) -> dict:
    import nbformat
    import papermill as pm

    pm.execute_notebook(str(template), str(out / "run.ipynb"), parameters=params,
                        kernel_name="python3", progress_bar=False)
    return nbformat.read(str(out / "run.ipynb"), as_version=4)


def _html(nb) -> str:
    return "\n".join("".join(o.get("data", {}).get("text/html", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_a_batch_notebook_renders_the_saved_result(dossier, tmp_path):
    """Given a result record, the notebook shows that record: it computes nothing (an edited
    record is what appears on the page)."""
    from rwe.dossier._notebook import write_record

    record = json.loads(json.dumps(_record(dossier, "change_control")))
    record["statement"] = "EDITED statement, read from the saved record"
    path = write_record(tmp_path / "change_control.json", record)
    (tmp_path / "figures").mkdir()
    nb = _run(NOTEBOOKS / "04_change_control.ipynb", tmp_path,
              protocol=dossier.manifest["protocol"]["path"], out_dir=str(tmp_path),
              result=str(path))
    html = _html(nb)
    assert "EDITED statement, read from the saved record" in html
    assert "Run on its own" not in html


def test_model_card_notebook_loads_neither_numpy_pandas_nor_matplotlib(dossier, tmp_path):
    """Rendering a saved model-card record imports no numpy, pandas, matplotlib or scipy
    (each costs a kernel 0.1-1 s), nor the build machinery."""
    from rwe.dossier._notebook import PROTOCOL_RECORD, ProtocolFacts, write_record
    from rwe.protocol import load_protocol

    paths = {n: str(write_record(tmp_path / f"{n}.json", _record(dossier, n)))
             for n in ("model_card",)}
    proto = dossier.manifest["protocol"]["path"]
    # as the build does: the validated protocol's record next to the section records
    write_record(tmp_path / PROTOCOL_RECORD, ProtocolFacts.record(load_protocol(proto)))
    code = f"""
import sys
from rwe.dossier import start_section
for name, views in [("model_card", ["card"])]:
    ctx = start_section(name, {proto!r}, {str(tmp_path)!r}, {paths!r}[name])
    ctx.header()
    for v in views:
        ctx.show(v)
print(sorted(m for m in ("numpy", "pandas", "matplotlib", "scipy", "papermill", "nbconvert")
            if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("name", ["representativeness", "subgroups", "drift", "change_control"])
def test_a_section_notebook_renders_its_saved_result_without_scipy_stats(dossier, tmp_path,
                                                                         name):
    """A batch build's notebook loads its section's saved result and draws its pages and
    figures without importing scipy.stats or statsmodels (about 1.5 s of CPU per kernel):
    every code cell of the section's notebook, run on the record as the build passes it."""
    import nbformat

    from rwe.dossier._notebook import PROTOCOL_RECORD, ProtocolFacts, write_record
    from rwe.dossier._privacy import PRIVACY_RECORD
    from rwe.dossier._sections import section_spec
    from rwe.protocol import load_protocol

    proto = dossier.manifest["protocol"]["path"]
    write_record(tmp_path / PROTOCOL_RECORD, ProtocolFacts.record(load_protocol(proto)))
    plan = _plan_record(dossier)
    write_record(tmp_path / PRIVACY_RECORD, plan)
    record = str(write_record(tmp_path / f"{name}.json", _record(dossier, name)))
    nb = nbformat.read(str(NOTEBOOKS / section_spec(name).notebook), as_version=4)
    cells = [c.source for c in nb.cells if c.cell_type == "code"]
    code = "\n".join([
        "import sys", cells[0],
        f"protocol, out_dir, result = {proto!r}, {str(tmp_path)!r}, {record!r}",
        *cells[1:],
        "print(sorted(m for m in ('scipy.stats', 'statsmodels', 'sklearn') if m in sys.modules))"])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert len(list((tmp_path / "figures").glob(f"{name}-*.png"))) >= (
        0 if name == "change_control" else 2)


def test_what_the_build_imports_before_its_fork_covers_the_analyses(small_demo_protocol):
    """The build imports the analyses' libraries before it forks its second process, so that
    the fork inherits them: computing every data section afterwards (in a fresh interpreter)
    imports no further scipy or statsmodels module (the table SECTION_IMPORTS is complete)."""
    code = f"""
import sys
from rwe.dossier._analyses import compute_record
from rwe.dossier._build import SECTION_IMPORTS, _import_before_fork
from rwe.protocol import load_protocol
p = load_protocol({str(small_demo_protocol)!r})
ev = p.load_data()
names = ["subgroups", "provenance", "representativeness", "drift", "change_control"]
assert set(SECTION_IMPORTS) <= set(names)
_import_before_fork(names)
before = set(sys.modules)
res = {{}}
for n in names:
    res[n] = compute_record(n, p, ev, dict(res))[0]
print(sorted(m for m in set(sys.modules) - before
             if m.split(".")[0] in ("scipy", "statsmodels", "papermill")))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def _plan_record(dossier) -> dict:
    from rwe.dossier._analyses import load_extras, load_result
    from rwe.dossier._privacy import PLAN_SECTIONS, plan_from_results
    from rwe.protocol import load_protocol

    p = load_protocol(dossier.manifest["protocol"]["path"])
    sections = dossier.results["sections"]
    res = {n: load_result(n, sections[n]) for n in PLAN_SECTIONS if n in sections}
    return plan_from_results(p, res, load_extras("representativeness",
                                                 sections["representativeness"])).to_dict()


def test_model_card_run_alone_says_what_it_lacks(tmp_path):
    """Run by hand on a protocol whose dossier has no subgroup or representativeness section,
    the model-card notebook computes what it can and lists the missing sections."""
    proto = small_protocol(tmp_path / "p", n_scans=400, sections=["drift", "model_card"])
    nb = _run(NOTEBOOKS / "06_model_card.ipynb", tmp_path, protocol=str(proto),
              out_dir=str(tmp_path / "out"))
    html = _html(nb)
    assert "Run on its own" in html
    for title in ("Representativeness", "Subgroup performance", "Data provenance and quality"):
        assert f"The {title} section is not part of this dossier" in html
    assert "None" not in re.sub(r"<[^>]+>", " ", html).split()


def _build_in_subprocess(proto: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rwe.cli", "dossier", str(proto), "--out",
                             str(out), "--quiet", "--no-pdf"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def _wait_for_notebooks(out: Path, proc: subprocess.Popen, timeout: float = 120) -> Path:
    """The build directory, once a notebook of the build is running in it."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        for d in out.parent.glob(f".{out.name}.building-*"):
            if list((d / "dossier" / "notebooks").glob("*.ipynb")) or list(
                    (d / "results").glob("*.json")):
                return d
        if proc.poll() is not None:
            raise AssertionError(f"the build ended first: {proc.communicate()}")
        time.sleep(0.05)
    raise AssertionError("no notebook started")


def _scan_for_rows(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and (
        IDS.search(p.read_bytes()) or p.suffix == ".pickle")]


@pytest.fixture(scope="module")
def kill_protocol(tmp_path_factory):
    return small_protocol(tmp_path_factory.mktemp("kill"), n_scans=1500)


def test_a_build_killed_mid_way_leaves_no_patient_rows_and_is_cleaned_up(kill_protocol,
                                                                       tmp_path):
    """SIGKILL while the notebooks run: nothing under the output's parent holds a patient row;
    the next build removes the stale build directory, says so, and succeeds."""
    out = tmp_path / "reports" / "d"
    proc = _build_in_subprocess(kill_protocol, out)
    stale = _wait_for_notebooks(out, proc)
    proc.kill()
    proc.wait(timeout=30)
    proc.communicate()
    assert stale.exists() and not out.exists()
    assert _scan_for_rows(tmp_path / "reports") == []
    res = build_dossier(kill_protocol, out, pdf=False, progress=False)
    assert not stale.exists()
    assert any(str(stale) in n and "killed" in n for n in res.notes), res.notes
    assert res.manifest["notes"] == res.notes
    assert [p.name for p in out.parent.iterdir()] == ["d"]
    assert _scan_for_rows(tmp_path / "reports") == []


def test_sigterm_is_handled_like_ctrl_c(kill_protocol, tmp_path):
    """SIGTERM (a CI time-out, a container stop): the build stops, removes its directory and
    exits 143 with one line."""
    out = tmp_path / "reports" / "d"
    proc = _build_in_subprocess(kill_protocol, out)
    _wait_for_notebooks(out, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert err.decode().strip().splitlines() == ["rwe: terminated (SIGTERM); nothing was "
                                                 "written"]
    assert list((tmp_path / "reports").iterdir()) == []


def test_stale_builds_of_live_processes_and_other_outputs_are_kept(tmp_path):
    out = tmp_path / "d"
    live = tmp_path / ".d.building-live"
    live.mkdir()
    import socket

    (live / "owner.json").write_text(json.dumps({"pid": os.getpid(),
                                                 "host": socket.gethostname()}))
    other = tmp_path / ".e.building-x"
    other.mkdir()
    fresh = tmp_path / ".d.building-fresh"  # no owner yet: could be starting right now
    fresh.mkdir()
    old = tmp_path / ".d.building-old"  # an older rwe's build: a data pickle, no owner
    (old / ".shared").mkdir(parents=True)
    (old / ".shared" / "evaluation-set.pickle").write_bytes(b"rows")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    notes = remove_stale_builds(out)
    assert live.exists() and other.exists() and fresh.exists() and not old.exists()
    assert len(notes) == 1 and str(old) in notes[0] and "no owner file" in notes[0]
