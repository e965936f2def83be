"""The manual in docs/ is complete and self-contained: every config key the code declares is
documented, every output variable is described, links between pages resolve, and nothing a user
reads points to files outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import invoke

from gravuq.config import DataColumns
from gravuq.config._checks import SECTIONS, _settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = ("index.md", "config.md", "outputs.md", "methods.md", "conventions.md", "runs.md")


def _section(text: str, name: str) -> str:
    """The part of config.md under the heading of ``[name]``."""
    match = re.search(rf"^## \[{re.escape(name)}\].*?(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"docs/config.md has no section [{name}]"
    return match.group(0)


def test_every_page_exists():
    for page in PAGES:
        assert (DOCS / page).is_file(), page


@pytest.mark.parametrize("name", list(SECTIONS))
def test_every_config_key_is_documented_in_its_section(name):
    text = _section((DOCS / "config.md").read_text(encoding="utf-8"), name)
    kind, _ = SECTIONS[name]
    missing = [key for key in _settings(kind) if f"| `{key}` |" not in text]
    assert not missing, f"[{name}] keys missing from docs/config.md: {missing}"


def test_the_csv_columns_are_documented():
    text = (DOCS / "config.md").read_text(encoding="utf-8")
    for key in _settings(DataColumns):
        assert f"| `{key}` |" in text


def test_every_summary_variable_and_output_file_is_described():
    text = (DOCS / "outputs.md").read_text(encoding="utf-8")
    for name in ("mean", "std", "q05", "q95", "exceedance", "resolution", "prior_std", "posterior.nc", "summary.nc",
                 "metrics.json", "report.html", "summary.vtr", "export_ubc/", "drill_ranking.csv", "predict.csv",
                 "log_likelihood", "r_hat", "hdi", "chi2_per_datum", "coverage_90", "crps", "exceedance_auc"):
        assert name in text, name
    for figure in ("data_residuals.png", "mean_slices.png", "truth_slices.png", "section.png", "std_slices.png",
                   "exceedance_slices.png", "drilling_map.png", "resolution_depth.png", "training_curve.png"):
        assert f"`{figure}`" in text, figure


def test_every_method_is_described():
    text = (DOCS / "methods.md").read_text(encoding="utf-8")
    for heading in ("### deterministic", "### tikhonov", "### gaussian", "### ensemble", "### svgd", "### last_layer"):
        assert heading in text
    for word in ('"rml"', '"prior_function"', '"init"', "empirical Bayes", "Levenberg-Marquardt"):
        assert word in text


def test_links_between_pages_resolve():
    for page in PAGES + ("../README.md",):
        path = (DOCS / page).resolve()
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
            if "://" in target:
                continue
            assert (path.parent / target).exists(), f"{path.name}: broken link {target}"


def test_nothing_a_user_reads_points_outside_the_repository():
    """README, --help texts, docstrings and the docs never send a user to shared/ (which an
    installed or cloned gravuq does not have). The real-data example's data paths may, and say
    the data set is obtained separately."""
    offenders = []
    files = [ROOT / "README.md", *DOCS.glob("*.md"), *(ROOT / "cli").glob("*.py"), *(ROOT / "gravuq").rglob("*.py"),
             *(ROOT / "examples").rglob("*.toml"), *(ROOT / "examples").rglob("*.md")]
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"shared/(SPEC|BENCHMARKS|REFERENCES|STYLE)|SPEC\.md|BENCHMARKS\.md", line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}")
            elif "shared/data" in line and "real_gambit" not in str(path):
                offenders.append(f"{path.relative_to(ROOT)}:{number}")
    assert not offenders, offenders


def test_ensemble_help_names_every_method_and_prior_option():
    result = invoke("ensemble", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for word in ("ensemble", "rml", "prior_function", "init", "gaussian", "svgd", "last_layer", "prior_scale",
                 "learned", "hierarchical", "fixed", "prior_std", "noise", "docs/config.md"):
        assert word in text, word


def test_report_is_a_command():
    result = invoke("--help")
    assert result.exit_code == 0 and "report" in result.output
