"""The notebook templates: tagged parameters cells, thin code, interactive defaults."""

from __future__ import annotations

import re
import shutil

import nbformat
import pytest
from dossier_helpers import NOTEBOOKS, small_protocol

from rwe.dossier import ALL_SECTION_SPECS, check_template


@pytest.mark.parametrize("spec", ALL_SECTION_SPECS, ids=lambda s: s.name)
def test_template_is_well_formed(spec):
    path = NOTEBOOKS / spec.notebook
    nb = check_template(path)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert all(c.get("id") for c in nb.cells)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    params = [c for c in nb.cells if "parameters" in (c.metadata.get("tags") or [])]
    assert len(params) == 1
    assert 'protocol = "../protocols/demo.yaml"' in params[0].source
    assert re.search(r"^result = None\b", params[0].source, re.M)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert f'start_section("{spec.name}", protocol, out_dir, result)' in code
    # no statistics in notebooks: no numpy/scipy/pandas arithmetic, only calls into rwe
    assert not re.search(r"\b(import numpy|import scipy|import pandas|np\.|pd\.)", code)


def test_defaults_run_interactively(tmp_path):
    """A notebook run as is (no parameters injected) uses ../protocols/demo.yaml relative to
    itself, as in JupyterLab, computes its section and says so."""
    import papermill as pm

    proto = small_protocol(tmp_path / "data-home", n_scans=500)
    (tmp_path / "protocols").mkdir()
    shutil.copy(proto, tmp_path / "protocols" / "demo.yaml")
    (tmp_path / "notebooks").mkdir()
    src = NOTEBOOKS / "04_change_control.ipynb"
    shutil.copy(src, tmp_path / "notebooks" / src.name)
    pm.execute_notebook(str(tmp_path / "notebooks" / src.name), str(tmp_path / "out.ipynb"),
                        kernel_name="python3", progress_bar=False,
                        cwd=str(tmp_path / "notebooks"))
    out = nbformat.read(str(tmp_path / "out.ipynb"), as_version=4)
    html = "".join("".join(o.get("data", {}).get("text/html", "")) for c in out.cells
                   for o in c.get("outputs", []))
    assert "Run on its own" in html and "Pre-specified acceptance criteria" in html
    # no ledger next to this protocol: shown, and never as a change-control decision
    assert "NOT RECORDED: this comparison is not a change-control decision" in html
    assert re.search(r"<b>(APPROVE|REJECT|INCONCLUSIVE)</b>", html)
