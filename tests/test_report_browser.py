"""The report in a real browser: headless Chromium (Debian's ``chromium`` package) renders
``report.html`` with its embedded figures, offline. Skipped where Chromium is not installed.

To look at a report yourself: ``chromium --headless --no-sandbox --screenshot=report.png
--window-size=1200,3000 file:///path/to/report.html``.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from helpers import check_success, invoke

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


def test_chromium_renders_the_report_with_its_figures(case, tmp_path):
    from PIL import Image

    config = case.config("browser", method="gaussian", inference="members = 12")
    check_success(invoke("ensemble", config, "-q"))
    results = case.results("browser")
    check_success(invoke("report", results, "-q"))
    page = (results / "report.html").read_text(encoding="utf-8")
    stripped = tmp_path / "no_images.html"  # the same page with its figures removed, for contrast
    stripped.write_text(re.sub(r"src='data:image/png;base64,[^']*'", "src=''", page), encoding="utf-8")

    def colour(path):
        screenshot = tmp_path / f"{path.stem}.png"
        subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--screenshot={screenshot}", "--window-size=1200,3000", path.resolve().as_uri()],
                       check=True, capture_output=True, timeout=120)
        pixels = np.asarray(Image.open(screenshot).convert("RGB"), dtype=np.int16)
        assert pixels.shape[:2] == (3000, 1200)
        assert (pixels.sum(axis=2) < 600).mean() > 0.01  # not a blank page
        return ((pixels.max(axis=2) - pixels.min(axis=2)) > 60).mean()  # saturated pixels

    # Text is black on white and the notes' boxes pale: the colour comes from the figures (the
    # red-blue density maps, the magma probability maps), so a page whose images did not load
    # (a broken data URL, an image that wants the network) has several times less of it.
    with_figures, without = colour(results / "report.html"), colour(stripped)
    assert with_figures > 4 * without and with_figures > 0.005
