"""The demo-like dossier in headless Chromium: every page renders with its figures."""

from __future__ import annotations

import re
import shutil

import pytest

from rwe.dossier import SECTION_SPECS, find_chromium

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(find_chromium() is None,
                       reason="headless Chromium not installed (Debian: apt-get install "
                              "chromium)"),
]

PAGES = ["index.html"] + [s.page for s in SECTION_SPECS]

#: Appended to a copy of each page: after load, report every image that did not decode.
PROBE = """<script>
window.addEventListener('load', function () {
  var bad = [], imgs = document.images;
  for (var i = 0; i < imgs.length; i++) {
    if (!imgs[i].complete || imgs[i].naturalWidth === 0) bad.push(imgs[i].getAttribute('alt'));
  }
  document.body.setAttribute('data-images', String(imgs.length));
  document.body.setAttribute('data-broken', JSON.stringify(bad));
});
</script>"""


@pytest.fixture(scope="module")
def site(dossier, tmp_path_factory):
    d = tmp_path_factory.mktemp("browser") / "dossier"
    shutil.copytree(dossier.path, d)
    return d


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_with_its_figures(site, name, tmp_path):
    from matplotlib.image import imread

    from rwe.dossier._chromium import dump_dom, screenshot

    html = (site / name).read_text(encoding="utf-8")
    probe = site / f"_probe_{name}"
    probe.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = dump_dom(probe)
    images = int(re.search(r'data-images="(\d+)"', dom).group(1))
    broken = re.search(r'data-broken="([^"]*)"', dom).group(1)
    assert broken == "[]", f"{name}: images that did not load: {broken}"
    if name in ("representativeness.html", "subgroups.html"):
        assert images >= 2
    # links to files of the dossier resolve
    for href in re.findall(r"href='([^'#:]+)'", html):
        assert (site / href).exists(), f"{name}: broken link {href}"

    png = screenshot(site / name, tmp_path / "shot.png", width=1280, height=1600)
    pixels = imread(str(png))[..., :3]
    assert pixels.std() > 0.02, f"{name}: screenshot is blank"
    assert (pixels.mean(axis=2) < 0.5).mean() > 0.005, f"{name}: no text drawn"


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
