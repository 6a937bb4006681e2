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
