"""A whole dossier of the small demo: layout, results.json, manifest, reviewer pages."""

from __future__ import annotations

import json
import os
import re
from html import escape as html_escape

import pytest

from rwe.dossier import RESULTS_SCHEMA, SECTION_SPECS, build_dossier

PAGES = ["index.html"] + [s.page for s in SECTION_SPECS]


def _html(dossier, name: str) -> str:
    return (dossier.path / name).read_text(encoding="utf-8")


def test_layout(dossier):
    d = dossier.path
    for name in PAGES + ["results.json", "manifest.json", "model-card.xml"]:
        assert (d / name).is_file(), name
    for s in SECTION_SPECS:
        assert (d / "notebooks" / s.notebook).is_file()
    pngs = sorted((d / "figures").glob("*.png"))
    assert len(pngs) >= 6 and all(p.stat().st_size > 5000 for p in pngs)
    assert not (d / "sections").exists()  # merged into results.json
    assert not list(d.parent.glob(".small.building-*"))  # no temporary directory left


def test_index_puts_verdicts_first(dossier):
    html = _html(dossier, "index.html")
    pos = [html.index(f"id='{a}'") for a in ("evaluated", "verdicts", "findings", "contents")]
    assert pos == sorted(pos)
    for s in SECTION_SPECS:
        assert f"href='{s.page}'" in html
    # every pre-specified goal and criterion is listed, with its verdict
    for v in dossier.results["verdicts"]:
        assert v["status"] in ("pass", "fail", "insufficient data", "not evaluated")
    assert html.count("class='badge ") >= len(dossier.results["verdicts"])


def test_results_schema(dossier):
    r = json.loads((dossier.path / "results.json").read_text())
    assert r == dossier.results
    assert r["schema"] == RESULTS_SCHEMA
    assert r["section_order"] == [s.name for s in SECTION_SPECS]
    assert sorted(r["sections"]) == sorted(r["section_order"])
    kinds = {v["kind"] for v in r["verdicts"]}
    assert kinds == {"goal", "check", "plan"}
    goals = [v for v in r["verdicts"] if v["kind"] == "goal"]
    assert len(goals) == 3  # the demo protocol's three performance goals
    # drift and change control are listed honestly as not evaluated, never as passed
    for v in r["verdicts"]:
        if v["section"] in ("drift", "change_control"):
            assert v["status"] == "not evaluated"
    assert r["sections"]["drift"]["status"] == "not evaluated"
    cc = r["sections"]["change_control"]["criteria"]
    assert {c["metric"] for c in cc} == {"auroc", "sensitivity"}
    # the drift plan's input tests and alert rules, and the change-control criteria
    n_plan = 1 + len(r["sections"]["drift"]["plan"]["alerts"]) + len(cc)
    assert r["verdict_counts"]["not evaluated"] == n_plan
    text = (dossier.path / "results.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    # no times, durations or absolute paths of this run
    assert str(dossier.path) not in text and "duration" not in text


def test_manifest(dossier):
    m = dossier.manifest
    assert m["seed"] == 20261123
    assert m["protocol"]["sha256"] == dossier.results["protocol"]["sha256"]
    assert m["started_at"] <= m["finished_at"]
    assert m["dependencies"]["papermill"] and m["dependencies"]["pandas"]
    roles = {i["role"] for i in m["inputs"]}
    assert {"protocol", "evaluation data", "reference population"} <= roles
    assert all(len(i["sha256"]) == 64 for i in m["inputs"])
    outs = {o["path"]: o["sha256"] for o in m["outputs"]}
    assert "results.json" in outs and "index.html" in outs and "manifest.json" not in outs
    assert all(len(n["template_sha256"]) == 64 for n in m["notebooks"])
    import hashlib

    assert outs["results.json"] == hashlib.sha256(
        (dossier.path / "results.json").read_bytes()).hexdigest()


def test_results_json_is_reproducible(dossier, small_demo_protocol, tmp_path, monkeypatch):
    """Same protocol, data and seed: the same results.json, byte for byte (here without the
    PDF, into another directory, one section at a time, so the sections share kernels in
    another order). The build never changes the process's working directory: sections run
    on threads, and a chdir() in one moves them all."""
    cwd = os.getcwd()
    chdirs = []
    real_chdir = os.chdir
    monkeypatch.setattr(os, "chdir", lambda path: (chdirs.append(path), real_chdir(path)))
    again = build_dossier(small_demo_protocol, tmp_path / "again", jobs=1, pdf=False,
                          progress=False)
    assert (again.path / "results.json").read_bytes() == (
        dossier.path / "results.json").read_bytes()
    assert set(map(str, chdirs)) <= {cwd} and os.getcwd() == cwd  # papermill re-enters cwd


def test_no_patient_rows_in_html(dossier):
    ids = re.compile(r"\b(?:CT|P)\d{6}\b")
    for name in PAGES:
        html = _html(dossier, name)
        assert not ids.search(html), name
        assert "Traceback" not in html
    assert not ids.search((dossier.path / "model-card.xml").read_text())


def _cells(html: str, level: str) -> list[str]:
    """The cells of the performance-table row whose first cell is ``level``."""
    row = re.search(r"<tr><td class=[\"']txt[\"']>" + re.escape(html_escape(level, quote=False))
                    + r"</td>(.*?)</tr>", html)
    assert row, level
    return re.findall(r"<td class=[\"']num[\"']>(.*?)</td>", row.group(1))


def test_small_cells_suppressed_on_reviewer_pages(dossier):
    k = dossier.results["small_cell_k"]
    table = dossier.results["sections"]["subgroups"]["table"]
    small = [r for r in table if r["group"] != "overall" and 1 <= r["n"] < k]
    assert small, "the small demo has subgroup cells below k"
    html = _html(dossier, "subgroups.html")
    for r in small[:10]:
        cells = _cells(html, r["level"])
        assert "&lt;11" in cells[0]  # n shown as <11
        assert all("suppressed" in c for c in cells[2:])  # every estimate suppressed
    # a large cell is shown in full
    big = next(r for r in table if r["group"] == "sex")
    assert re.sub(r"\D", "", _cells(html, big["level"])[0]) == str(big["n"])
    # findings and figure labels never spell a small n
    for name in PAGES:
        for m in re.finditer(r"\bn\s*=\s*(\d[\d,]*)", _html(dossier, name)):
            assert not 1 <= int(m.group(1).replace(",", "")) < k, (name, m.group(0))


def test_summary_lines(dossier):
    lines = dossier.summary_lines()
    assert any(line.startswith("goals:") for line in lines)
    assert any("index.html" in line for line in lines)
    assert any("not evaluated" in line for line in lines)


@pytest.mark.parametrize("name", [s.page for s in SECTION_SPECS])
def test_section_pages_have_no_code(dossier, name):
    html = _html(dossier, name)
    assert "start_section" not in html and "ctx.show" not in html
    assert "<figure" in html or name in ("drift.html", "change_control.html",
                                         "provenance.html", "model_card.html")
    for img in re.findall(r"<img [^>]*>", html):
        assert re.search(r"""alt=["'][^"']{20,}["']""", img), img[:200]


def test_pages_escape_their_text(dossier):
    """"<0.001" and "<11" are text: written as &lt; (a raw "<" before a digit is invalid)."""
    import re

    for page in dossier.path.glob("*.html"):
        text = page.read_text()
        assert not re.search(r"<[0-9 =]", text), page.name
    assert "&lt;11" in (dossier.path / "subgroups.html").read_text()


def test_reviewer_exporter_matches_nbconvert(dossier):
    """The reviewer pages skip nbconvert's BeautifulSoup post-pass (no-op with the "basic"
    template): the text and images are those of nbconvert's own HTMLExporter."""
    from html.parser import HTMLParser

    import nbformat
    from nbconvert import HTMLExporter

    from rwe.dossier._build import _exporter

    class Visible(HTMLParser):
        def __init__(self):
            super().__init__()
            self.items = []

        def handle_data(self, data):
            if data.strip():
                self.items.append(data.strip())

        def handle_starttag(self, tag, attrs):
            if tag == "img":
                self.items.append(sorted(attrs))

    def visible(html):
        p = Visible()
        p.feed(html)
        return p.items

    kw = dict(template_name="basic", exclude_input=True, exclude_input_prompt=True,
              exclude_output_prompt=True)
    standard, fast = HTMLExporter(**kw), _exporter()
    for path in sorted((dossier.path / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        assert visible(fast.from_notebook_node(nb)[0]) == visible(
            standard.from_notebook_node(nb)[0]), path.name
