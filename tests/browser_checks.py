"""Headless-Chromium checks of a dossier page, shared by the dossier and federation tests:
every image decodes, every link to a file of the dossier resolves, the page draws text."""

from __future__ import annotations

import re
from pathlib import Path

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


def check_page(site: Path, name: str, tmp_path: Path) -> int:
    """Render ``site/name`` in headless Chromium and check it (assertions); returns the number
    of images on the page."""
    from matplotlib.image import imread

    from rwe.dossier._chromium import dump_dom, screenshot

    html = (site / name).read_text(encoding="utf-8")
    probe = site / f"_probe_{name}"
    probe.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    try:
        dom = dump_dom(probe)
    finally:
        probe.unlink()
    images = int(re.search(r'data-images="(\d+)"', dom).group(1))
    broken = re.search(r'data-broken="([^"]*)"', dom).group(1)
    assert broken == "[]", f"{name}: images that did not load: {broken}"
    # links to files of the dossier resolve
    for href in re.findall(r"href='([^'#:]+)'", html):
        assert (site / href).exists(), f"{name}: broken link {href}"
    png = screenshot(site / name, tmp_path / "shot.png", width=1280, height=1600)
    pixels = imread(str(png))[..., :3]
    assert pixels.std() > 0.02, f"{name}: screenshot is blank"
    assert (pixels.mean(axis=2) < 0.5).mean() > 0.005, f"{name}: no text drawn"
    return images
