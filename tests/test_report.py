"""``gravuq report``: one self-contained HTML page per run (figures embedded, no network), with
the metrics, the learned prior, the maps and what each can be trusted for; exit 2 for a folder
that is not a results folder."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import pytest
from helpers import PNG_MAGIC, check_success, invoke

from gravuq.report import build_report, figures


class Page(HTMLParser):
    """The tags, attributes, text and headings (h2, h3) of a page."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.heading_text: dict[str, list[str]] = {"h2": [], "h3": []}
        self._open: str | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in self.heading_text:
            self._open = tag
            self.heading_text[tag].append("")

    def handle_endtag(self, tag):
        if tag == self._open:
            self._open = None

    def handle_data(self, data):
        self.text.append(data)
        if self._open:
            self.heading_text[self._open][-1] += data

    def headings(self, level: str) -> list[str]:
        return self.heading_text[level]


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    return page


@pytest.fixture(scope="module")
def gaussian_run(case):
    config = case.config("report_gaussian", method="gaussian", inference="members = 12")
    check_success(invoke("ensemble", config, "-q"))
    results = case.results("report_gaussian")
    (results / "drill_ranking.csv").write_text(
        "rank,name,x,y,z,azimuth,dip,length,expected_length,length_q05,length_q95,probability_hit\n"
        "1,A,150,200,1,0,90,200,80,0,150,1.0\n2,B,300,300,1,0,90,200,10,0,50,0.2\n")
    return results


def test_the_page_is_self_contained(gaussian_run):
    result = invoke("report", gaussian_run)
    check_success(result)
    text = (gaussian_run / "report.html").read_text(encoding="utf-8")
    page = parse(text)
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", text, re.IGNORECASE)  # no network
    assert not any(tag in ("script", "link", "iframe", "object", "embed") for tag, _ in page.tags)
    images = [attrs["src"] for tag, attrs in page.tags if tag == "img"]
    assert len(images) >= 7
    for source in images:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1])[:8] == PNG_MAGIC


def test_the_page_holds_the_run(gaussian_run):
    page = parse(build_report(gaussian_run))
    text = " ".join(page.text)
    sections = page.headings("h2")
    for heading in ("Run metrics", "Learned settings (prior and noise model)", "Maps", "Collar ranking"):
        assert heading in sections
    figures_shown = page.headings("h3")
    assert "Data fit: observed, predicted and residual gz" in figures_shown
    assert any(heading.startswith("P(density > 200") for heading in figures_shown)
    assert "Drilling map" in figures_shown
    # Every map says what it can and cannot be trusted for.
    assert text.count("Can be trusted for:") == text.count("Cannot be trusted for:") >= 7
    assert "exact Gaussian moments" in text
    assert "chi²/N of the mean model" in text and "model RMSE" in text
    assert "probability_hit" in text and "A" in text


def test_an_ensemble_report_states_the_sampling_error():
    shown = {figure.file: figure for figure in figures("ensemble", 10, 200.0, has_truth=True)}
    assert "±0.16" in shown["exceedance_slices.png"].trust
    assert "10 draws" in shown["exceedance_slices.png"].caveat
    assert "0.47" in shown["resolution_depth.png"].trust
    assert "±24 %" in shown["std_slices.png"].trust


def test_a_single_model_report_says_it_has_no_spread(case):
    config = case.config("report_tikhonov", method="tikhonov")
    check_success(invoke("invert", config, "-q"))
    output = case.folder / "elsewhere" / "page.html"
    output.parent.mkdir()
    check_success(invoke("report", case.results("report_tikhonov"), "-o", output, "-q"))
    text = output.read_text(encoding="utf-8")
    assert "no posterior draws" in text
    assert "tikhonov" in text


@pytest.mark.parametrize("make", ["missing", "empty", "file"])
def test_not_a_results_folder_exits_2(tmp_path, make):
    target = tmp_path / "target"
    if make == "empty":
        target.mkdir()
    elif make == "file":
        target.write_text("x")
    result = invoke("report", target)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert str(target) in result.output and ("results folder" in result.output)


def test_a_demo_folder_points_to_its_results(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "summary.nc").write_bytes(b"")
    result = invoke("report", tmp_path)
    assert result.exit_code == 2 and "did you mean" in result.output


def test_summary_holds_the_prior_sd_the_hatching_compares_against(gaussian_run):
    import numpy as np
    import xarray as xr

    with xr.open_dataset(gaussian_run / "summary.nc") as summary:
        assert summary["prior_std"].attrs["units"] == "kg/m^3"
        prior, std = summary["prior_std"].values, summary["std"].values
    assert np.all(prior > 0) and np.all(std <= prior * (1 + 1e-9))  # data only shrink a Gaussian's spread
