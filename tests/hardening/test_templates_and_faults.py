"""Broken notebook templates and faults while writing the dossier (a full disk): one line naming
the template or the output directory, exit 2, nothing left behind."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest
from hardening_corpus import ROOT, Case, assert_refused, run_cli

import rwe.dossier._build as build_module
from rwe.dossier import NotebookTemplateError, build_dossier, check_template
from rwe.exceptions import DossierWriteError, InvalidParameterError

NOTEBOOKS = ROOT / "notebooks"
TEMPLATE = "02_subgroups.ipynb"
DOSSIER = ("dossier", "{p}", "--quiet", "--no-pdf")


# --- notebook templates ----------------------------------------------------------------------
def _template(text: str | bytes | None):
    """A copy of notebooks/ with TEMPLATE replaced (None: deleted)."""
    def write(ws) -> str:
        d = ws.dir / "nb"
        if not d.exists():
            shutil.copytree(NOTEBOOKS, d, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        target = d / TEMPLATE
        if text is None:
            target.unlink()
        elif isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(text)
        return "see the templates directory"
    return write


def _edited_template(edit) -> str:
    nb = json.loads((NOTEBOOKS / TEMPLATE).read_text())
    edit(nb)
    return json.dumps(nb)


def _untag(nb: dict) -> None:
    for c in nb["cells"]:
        c.get("metadata", {}).pop("tags", None)


def _drop_out_dir(nb: dict) -> None:
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    cell["source"] = [line for line in cell["source"] if not line.startswith("out_dir")]


def _drop_metadata(nb: dict) -> None:
    del nb["cells"][1]["metadata"]


FULL = (NOTEBOOKS / TEMPLATE).read_text()
T = "{d}/nb/" + TEMPLATE
TEMPLATE_CASES = [
    ("empty", "", [f"{T}: notebook template is empty (0 bytes); restore it from the rwe source "
                   "checkout"]),
    ("blank", "\n\n  \n", [f"{T}: notebook template is empty (5 bytes)"]),
    ("truncated", FULL[: len(FULL) // 2],
     [f"{T}: not a valid notebook: its JSON breaks at line", "the file may be truncated"]),
    ("binary", b"\x89PNG\r\n\x1a\n\x00TOPSECRET", [f"{T}: not a notebook: not UTF-8 text"]),
    ("json_not_a_notebook", "{}", [f"{T}: not a Jupyter notebook: the JSON has no 'cells' and "
                                   "'nbformat' keys"]),
    ("json_list", "[1, 2]", [f"{T}: not a Jupyter notebook"]),
    ("cell_without_metadata", _edited_template(_drop_metadata), [f"{T}: not a valid notebook: "]),
    ("missing", None, [f"{T}: notebook template not found"]),
    ("no_parameters_cell", _edited_template(_untag), [f"{T}: no cell is tagged 'parameters'"]),
    ("parameters_without_out_dir", _edited_template(_drop_out_dir),
     [f"{T}: the parameters cell does not set out_dir"]),
]


@pytest.mark.parametrize("text, expect", [t[1:] for t in TEMPLATE_CASES],
                         ids=[t[0] for t in TEMPLATE_CASES])
def test_broken_template_is_refused(text, expect, ws, capsys, monkeypatch):
    monkeypatch.setattr(build_module, "default_notebooks_dir", lambda: ws.dir / "nb")
    case = Case("template", files={"nb/.written": _template(text)}, argv=DOSSIER, expect=expect,
                absent=["TOPSECRET", "Notebook does not appear to be JSON"])
    assert_refused(case, ws, capsys)


@pytest.mark.parametrize("text", ["", '{"cells": [', "{}"], ids=["empty", "truncated", "{}"])
def test_check_template_raises_a_template_error(text, tmp_path):
    p = tmp_path / "t.ipynb"
    p.write_text(text)
    with pytest.raises(NotebookTemplateError) as info:
        check_template(p)
    assert str(info.value).startswith(f"{p}: ") and "\n" not in str(info.value)


# --- faults ----------------------------------------------------------------------------------
def test_full_disk_names_the_dossier_and_leaves_nothing(ws, capsys, monkeypatch):
    """The first write into the build directory fails with ENOSPC (as a full disk reports it:
    no file name): one line naming the output, the build directory removed."""
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(build_module, "_make_build", full)
    case = Case("disk_full", argv=(*DOSSIER, "--out", "{d}/reports/tiny"),
                expect=["rwe: error: {d}/reports/tiny: could not write the dossier: writing "
                        "into {d}/reports: No space left on device; nothing was written (free "
                        "some space or choose another --out)"])
    ws.write("reports/.keep", "")  # the parent exists: only the build directory could be left
    assert_refused(case, ws, capsys)


def test_a_write_error_names_the_file(tmp_path):
    """/dev/full fails every write with ENOSPC and, like a full disk, names no file."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    with pytest.raises(OSError) as info:
        build_module._write_text(Path("/dev/full"), "x" * 10_000)
    assert info.value.errno == errno.ENOSPC and info.value.filename == "/dev/full"
    build = tmp_path / ".d.building-x"
    err = build_module._write_error(OSError(errno.ENOSPC, "No space left on device",
                                            str(build / "results.json")), tmp_path / "d", build)
    assert isinstance(err, DossierWriteError)
    assert str(err) == (f"{tmp_path / 'd'}: could not write the dossier: writing results.json: "
                        "No space left on device; nothing was written (free some space or "
                        "choose another --out)")
    # a failure outside the build (an input that cannot be read) keeps its own message
    assert build_module._write_error(OSError(errno.EACCES, "Permission denied", "/data/x.csv"),
                                     tmp_path / "d", build) is None


# --- the Python API --------------------------------------------------------------------------
@pytest.mark.parametrize("jobs", [-3, 0, 2.5, True, "2"])
def test_build_dossier_refuses_bad_jobs_before_anything(jobs, ws):
    p = ws.protocol()
    before = ws.snapshot()
    with pytest.raises(InvalidParameterError, match="jobs must be an integer not less than 1"):
        build_dossier(p, ws.dir / "out", jobs=jobs, pdf=False, progress=False)
    assert ws.snapshot() == before


def test_cli_prints_a_dossier_write_error_in_one_line(ws, capsys, monkeypatch):
    def fail(*args, **kwargs):
        raise DossierWriteError("/x: could not write the dossier: writing results.json: "
                                "No space left on device; nothing was written")

    monkeypatch.setattr("rwe.dossier.build_dossier", fail)
    code, out, err = run_cli(["dossier", str(ws.protocol()), "--quiet"], capsys)
    assert (code, out) == (2, "")
    assert err.splitlines() == ["rwe: error: /x: could not write the dossier: writing "
                                "results.json: No space left on device; nothing was written"]
