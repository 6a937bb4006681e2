"""Atomic output, --force, failing notebooks, missing parameters cells, CLI exit codes."""

from __future__ import annotations

import json

import nbformat
import pytest
from dossier_helpers import copy_notebooks, small_protocol

from rwe.cli import main
from rwe.dossier import FAILED_SUFFIX, NotebookTemplateError, build_dossier
from rwe.exceptions import DossierExistsError, NotebookExecutionError


@pytest.fixture(scope="module")
def drift_only(tmp_path_factory):
    """A protocol whose dossier has one section (drift): a build takes a few seconds."""
    return small_protocol(tmp_path_factory.mktemp("drift-only"), n_scans=500,
                          sections=["drift"])


def test_existing_dossier_needs_force(drift_only, tmp_path):
    out = tmp_path / "d"
    first = build_dossier(drift_only, out, pdf=False, progress=False)
    stamp = json.loads((out / "manifest.json").read_text())["started_at"]
    with pytest.raises(DossierExistsError, match="pass --force"):
        build_dossier(drift_only, out, pdf=False, progress=False)
    assert json.loads((out / "manifest.json").read_text())["started_at"] == stamp
    again = build_dossier(drift_only, out, pdf=False, progress=False, force=True)
    assert again.path == first.path and (out / "index.html").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_force_never_replaces_something_else(drift_only, tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.txt").write_text("not a dossier")
    with pytest.raises(DossierExistsError, match="not an rwe dossier"):
        build_dossier(drift_only, out, force=True, pdf=False, progress=False)
    assert (out / "thesis.txt").read_text() == "not a dossier"


def test_cli_exit_2_on_existing_output(drift_only, tmp_path, capsys):
    out = tmp_path / "d"
    out.mkdir()
    (out / "index.html").write_text("<html></html>")
    code = main(["dossier", str(drift_only), "--out", str(out), "--quiet", "--no-pdf"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("rwe: error:") and "--force" in err[0]


def _break(notebooks, name: str, source: str) -> int:
    """Append a failing cell to a template; returns its 1-based position."""
    path = notebooks / name
    nb = nbformat.read(str(path), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(source))
    nbformat.write(nb, str(path))
    return len(nb.cells)


def test_failing_notebook_stops_the_run(drift_only, tmp_path):
    notebooks = copy_notebooks(tmp_path)
    cell = _break(notebooks, "03_drift.ipynb", "raise ValueError('boom')")
    out = tmp_path / "reports" / "d"
    with pytest.raises(NotebookExecutionError) as info:
        build_dossier(drift_only, out, pdf=False, progress=False, notebooks_dir=notebooks)
    err = info.value
    assert err.notebook == "03_drift.ipynb" and err.cell_index == cell
    assert err.ename == "ValueError" and err.evalue == "boom"
    msg = str(err)
    assert "\n" not in msg and "03_drift.ipynb" in msg and f"cell {cell}" in msg
    failed = out.parent / f"d{FAILED_SUFFIX}"
    assert err.kept_at == str(failed / "notebooks" / "03_drift.ipynb")
    assert (failed / "notebooks" / "03_drift.ipynb").is_file()
    assert "NOT EVIDENCE" in (failed / "FAILED.txt").read_text()
    assert not (failed / "index.html").exists()
    assert sorted(p.name for p in failed.iterdir()) == ["FAILED.txt", "figures", "notebooks"]
    assert not out.exists()  # nothing complete-looking at the target
    assert not list(out.parent.glob(".d.building-*"))


def test_failed_rebuild_keeps_the_previous_dossier(drift_only, tmp_path):
    out = tmp_path / "d"
    build_dossier(drift_only, out, pdf=False, progress=False)
    before = (out / "results.json").read_bytes()
    notebooks = copy_notebooks(tmp_path)
    _break(notebooks, "03_drift.ipynb", "1 / 0")
    with pytest.raises(NotebookExecutionError, match="ZeroDivisionError"):
        build_dossier(drift_only, out, pdf=False, progress=False, force=True,
                      notebooks_dir=notebooks)
    assert (out / "results.json").read_bytes() == before
    # a later successful build clears the stale failed directory
    build_dossier(drift_only, out, pdf=False, progress=False, force=True)
    assert not (tmp_path / f"d{FAILED_SUFFIX}").exists()


def test_cli_reports_a_failing_notebook_in_one_line(drift_only, tmp_path, capsys,
                                                   monkeypatch):
    notebooks = copy_notebooks(tmp_path)
    _break(notebooks, "03_drift.ipynb", "raise RuntimeError('kaput')")
    import rwe.dossier._build as b

    monkeypatch.setattr(b, "default_notebooks_dir", lambda: notebooks)
    code = main(["dossier", str(drift_only), "--out", str(tmp_path / "d"), "--quiet",
                 "--no-pdf"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "03_drift.ipynb" in err[0] and "RuntimeError: kaput" in err[0]


def test_missing_parameters_cell_is_an_error(drift_only, tmp_path):
    notebooks = copy_notebooks(tmp_path)
    path = notebooks / "03_drift.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    for c in nb.cells:
        c.metadata.pop("tags", None)
    nbformat.write(nb, str(path))
    with pytest.raises(NotebookTemplateError, match="no cell is tagged 'parameters'"):
        build_dossier(drift_only, tmp_path / "d", pdf=False, progress=False,
                      notebooks_dir=notebooks)
    assert not (tmp_path / "d").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["notebooks"]


def test_without_chromium_the_html_is_complete(drift_only, tmp_path, monkeypatch):
    monkeypatch.setenv("RWE_CHROMIUM", str(tmp_path / "no-such-chromium"))
    res = build_dossier(drift_only, tmp_path / "d", pdf=True, progress=False)
    assert res.pdf is None and not (res.path / "dossier.pdf").exists()
    assert len(res.notes) == 1 and "Chromium not found" in res.notes[0]
    assert any("Chromium not found" in line for line in res.summary_lines())
    assert "Chromium not found" in (res.path / "index.html").read_text()
    assert res.manifest["pdf"] == {"written": False, "note": res.notes[0]}
