"""The demo-like dossier in headless Chromium: every page renders with its figures."""

from __future__ import annotations

import re
import shutil

import pytest
from browser_checks import check_page

from rwe.dossier import SECTION_SPECS, find_chromium

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(find_chromium() is None,
                       reason="headless Chromium not installed (Debian: apt-get install "
                              "chromium)"),
]

PAGES = ["index.html"] + [s.page for s in SECTION_SPECS]


@pytest.fixture(scope="module")
def site(dossier, tmp_path_factory):
    d = tmp_path_factory.mktemp("browser") / "dossier"
    shutil.copytree(dossier.path, d)
    return d


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_with_its_figures(site, name, tmp_path):
    images = check_page(site, name, tmp_path)
    if name in ("representativeness.html", "subgroups.html"):
        assert images >= 2


def test_pdf(dossier):
    pdf = dossier.path / "dossier.pdf"
    assert dossier.pdf == pdf and pdf.is_file()
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 50_000


@pytest.fixture(scope="module")
def pdf(dossier):
    from pypdf import PdfReader

    return PdfReader(str(dossier.path / "dossier.pdf"))


def test_pdf_links_point_inside_the_document(pdf):
    """Every link is to a named destination of the PDF (no file: link to the machine that
    built it, none into the deleted build directory)."""
    dests = set(pdf.named_destinations)
    links = []
    for page in pdf.pages:
        for annot in page.get("/Annots") or []:
            a = annot.get_object()
            if a.get("/Subtype") != "/Link":
                continue
            action = a.get("/A")
            uri = action.get_object().get("/URI") if action is not None else None
            assert uri is None or str(uri).startswith(("http://", "https://")), uri
            if a.get("/Dest") is not None:
                links.append(str(a["/Dest"]))
    assert links and set(links) <= dests
    assert {f"/print-{s.name}" for s in SECTION_SPECS} <= dests


def test_pdf_outline_page_numbers_and_no_local_path(pdf, dossier):
    titles = [o.title for o in pdf.outline if not isinstance(o, list)]
    assert [s.title for s in SECTION_SPECS] == [t for t in titles if t in
                                                {s.title for s in SECTION_SPECS}]
    n = len(pdf.pages)
    assert n >= 10
    texts = [p.extract_text() for p in pdf.pages]
    for i, t in enumerate(texts, start=1):
        assert f"Page {i} of {n}" in t, i
    whole = "\n".join(texts)
    for path in (str(dossier.path.parent), "/tmp/", "/work/", "file:"):
        assert path not in whole
    # collapsed lists are printed open: every cell of the first goal is in the PDF
    first = next(v for v in dossier.results["verdicts"] if v["kind"] == "goal")
    assert len(first["cells"]) > 10
    assert f"All {len(first['cells'])} cells" in whole
    assert whole.count("race x age_band = ") > len(first["cells"]) // 4


def test_figure_text_is_at_least_7_pt_at_print_size(dossier):
    sizes = []
    for page in dossier.path.glob("*.html"):
        sizes += [float(x) for x in re.findall(r"data-print-min-pt=[\"']([\d.]+)[\"']",
                                               page.read_text())]
    assert len(sizes) >= 6 and min(sizes) >= 7.0
