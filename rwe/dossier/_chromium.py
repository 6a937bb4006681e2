"""Headless Chromium (Debian's ``chromium`` package): PDF printing and screenshots.

Chromium is optional: without it the dossier is complete in HTML and the PDF is skipped with a
one-line note. Nothing here touches the network (background networking, component updates and
sync are off; pages are local files).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["find_chromium", "chromium_version", "print_pdf", "screenshot", "dump_dom",
           "CHROMIUM_MISSING"]

_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_MISSING = ("PDF not written: headless Chromium not found (Debian: apt-get install "
                    "chromium); the HTML dossier is complete")
_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--no-default-browser-check", "--disable-background-networking",
          "--disable-component-update", "--disable-sync", "--disable-default-apps",
          "--disable-extensions", "--mute-audio", "--hide-scrollbars",
          "--disable-dev-shm-usage", "--allow-file-access-from-files"]


def find_chromium() -> str | None:
    """Path of a Chromium executable (``RWE_CHROMIUM`` overrides the search), or None."""
    env = os.environ.get("RWE_CHROMIUM")
    if env:
        return env if Path(env).is_file() else shutil.which(env)
    for name in _NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    exe = find_chromium()
    if exe is None:
        raise FileNotFoundError(CHROMIUM_MISSING)
    with tempfile.TemporaryDirectory(prefix="rwe-chromium-") as profile:
        return subprocess.run([exe, *_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)


def chromium_version() -> str | None:
    exe = find_chromium()
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def _url(path: str | Path) -> str:
    return Path(path).resolve().as_uri()


def print_pdf(html: str | Path, pdf: str | Path, *, timeout: float = 180) -> Path:
    """Print a local HTML file to PDF (A4/Letter from the page's @page rule, no header or
    footer). Raises RuntimeError with Chromium's last line when no PDF appears."""
    pdf = Path(pdf)
    pdf.unlink(missing_ok=True)
    res = _run(["--no-pdf-header-footer", "--print-to-pdf-no-header",
                "--generate-pdf-document-outline",
                "--run-all-compositor-stages-before-draw", "--virtual-time-budget=10000",
                f"--print-to-pdf={pdf}", _url(html)], timeout)
    if not pdf.is_file() or pdf.stat().st_size == 0:
        last = (res.stderr.strip().splitlines() or [f"exit code {res.returncode}"])[-1]
        raise RuntimeError(f"Chromium did not write the PDF: {last}")
    return pdf


def screenshot(page: str | Path, png: str | Path, *, width: int = 1280, height: int = 1800,
               timeout: float = 120) -> Path:
    """Screenshot of a local page (for the browser test and for looking at a dossier)."""
    png = Path(png)
    png.unlink(missing_ok=True)
    res = _run([f"--window-size={width},{height}", "--run-all-compositor-stages-before-draw",
                "--virtual-time-budget=5000", f"--screenshot={png}", _url(page)], timeout)
    if not png.is_file():
        last = (res.stderr.strip().splitlines() or [f"exit code {res.returncode}"])[-1]
        raise RuntimeError(f"Chromium did not write the screenshot: {last}")
    return png


def dump_dom(page: str | Path, *, timeout: float = 120) -> str:
    """The page's DOM after load and scripts (``--dump-dom``)."""
    res = _run(["--virtual-time-budget=5000", "--dump-dom", _url(page)], timeout)
    return res.stdout
