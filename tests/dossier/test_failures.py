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


def test_representativeness_without_a_reference_fails_before_reading_data(tmp_path):
    """The report asks for representativeness but the protocol names no reference: one line
    naming the field, before any data are read, nothing written."""
    from rwe.exceptions import InvalidParameterError

    proto = small_protocol(tmp_path / "p", n_scans=200)
    text = proto.read_text()
    text = "\n".join(line for line in text.splitlines()
                     if not line.strip().startswith("reference: us_census_2020_clinical"))
    proto.write_text(text + "\n")
    out = tmp_path / "out"
    with pytest.raises(InvalidParameterError, match=r"population\.reference: the report "
                                                    r"includes the representativeness section"):
        build_dossier(proto, out, progress=False, pdf=False)
    assert not out.exists() and not list(tmp_path.glob(".out.building-*"))


def test_a_kernel_that_dies_while_starting_is_started_again(drift_only, tmp_path, monkeypatch):
    """jupyter_client's port race ("Address already in use", the kernel dies before it
    answers): nothing of the notebook ran, so it is started again; a kernel that never starts
    is one error after three tries."""
    import papermill

    real = papermill.execute_notebook
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("Kernel died before replying to kernel_info")
        return real(*args, **kwargs)

    monkeypatch.setattr(papermill, "execute_notebook", flaky)
    build_dossier(drift_only, tmp_path / "ok", pdf=False, progress=False)
    assert len(calls) == 2 and (tmp_path / "ok" / "drift.html").is_file()

    def dead(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("Kernel died before replying to kernel_info")

    calls.clear()
    monkeypatch.setattr(papermill, "execute_notebook", dead)
    with pytest.raises(NotebookExecutionError, match="Kernel died before replying"):
        build_dossier(drift_only, tmp_path / "dead", pdf=False, progress=False)
    assert len(calls) == 3 and not (tmp_path / "dead").exists()
