"""Every command in sequence, as a user would run them, on the tiny case of ``test_cli``
(8 x 8 x 4 cells of 50 m, a +400 kg/m^3 block, 64 stations, gz in mGal positive down):
forward, invert (tikhonov), ensemble (gaussian), compare, predict, drill, export ubc and vtk.
Each must exit 0, write its files and, with ``--quiet``, print nothing. ``gravuq demo`` is left
out (it trains a full-size ensemble; ``test_cli`` checks its help).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from gravuq.io import read_stations_csv
from gravuq_cli.main import app
from helpers import PNG_MAGIC

COMPARED = ("tikhonov", "deterministic", "ensemble", "gaussian")


def run_quietly(*arguments) -> None:
    """Run ``gravuq ARGUMENTS --quiet``: exit 0 and not a character printed."""
    result = CliRunner().invoke(app, [str(argument) for argument in arguments] + ["--quiet"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert result.output == "", result.output


def is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC


def test_every_command_in_sequence(case):
    folder = case.folder

    # forward: noisy data at the stations of [data] path, read back with the same config.
    forward_config = case.config("e2e_forward")
    run_quietly("forward", forward_config, "--noise", "-o", folder / "forward.csv")
    table = read_stations_csv(folder / "forward.csv", need_std=True)
    assert table.x.size == 64 and np.all(np.isfinite(table.gz)) and table.gz.max() > 0

    # invert (tikhonov) and ensemble (gaussian): files only here (figures take seconds each; the
    # compare run below writes every figure of both methods and checks them).
    run_quietly("invert", case.config("e2e_tikhonov", method="tikhonov", formats=("netcdf",)))
    tikhonov = case.results("e2e_tikhonov")
    for name in ("summary.nc", "metrics.json", "run.json"):
        assert (tikhonov / name).is_file(), name
    run_quietly("ensemble", case.config("e2e_gaussian", method="gaussian", formats=("netcdf",)))
    gaussian = case.results("e2e_gaussian")
    for name in ("posterior.nc", "summary.nc", "metrics.json", "run.json"):
        assert (gaussian / name).is_file(), name

    # compare: four methods on the same data, a table with one row each and one figure.
    compare_config = case.config("e2e_compare")
    compare_config.write_text(compare_config.read_text().replace("members = 4", "members = 2")
                              .replace("epochs = 50", "epochs = 10"))
    run_quietly("compare", compare_config)
    report = case.results("e2e_compare") / "compare"
    for method in COMPARED:
        assert (report / method / "summary.nc").is_file(), method
        assert (report / method / "metrics.json").is_file(), method
    assert (report / "ensemble" / "posterior.nc").is_file() and (report / "gaussian" / "posterior.nc").is_file()
    for name in ("mean_slices.png", "std_slices.png", "exceedance_slices.png", "drilling_map.png", "section.png",
                 "data_residuals.png", "resolution_depth.png"):
        assert is_png(report / "gaussian" / name), name
    assert is_png(report / "tikhonov" / "mean_slices.png")
    assert not (report / "tikhonov" / "drilling_map.png").exists()  # no probabilities for one model
    with open(report / "comparison.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["method"] for row in rows] == ["tikhonov", "deterministic", "ensemble (rml)", "gaussian"]
    for column in ("chi2_per_datum", "rms_mgal", "runtime_s", "model_rmse", "coverage_90",
                   "coverage_90_above_threshold", "crps", "exceedance_auc"):
        assert column in rows[0], column
    by_method = {row["method"].split()[0]: row for row in rows}
    for method in COMPARED:
        metrics = json.loads((report / method / "metrics.json").read_text())
        assert float(by_method[method]["chi2_per_datum"]) == pytest.approx(metrics["chi2_per_datum"], rel=1e-12)
        assert float(by_method[method]["model_rmse"]) == pytest.approx(metrics["model_rmse"], rel=1e-12)
    for method in ("tikhonov", "deterministic"):  # no interval: the probabilistic scores are blank
        assert by_method[method]["coverage_90"] == "" and by_method[method]["crps"] == ""
    for method in ("ensemble", "gaussian"):
        assert 0.0 <= float(by_method[method]["coverage_90"]) <= 1.0
    markdown = (report / "comparison.md").read_text()
    assert markdown.count("\n| ") >= 5 and "comparison_sections.png" in markdown
    assert is_png(report / "comparison_sections.png")
    assert json.loads((report / "run.json").read_text())["status"] == "complete"

    # predict: posterior-predictive gz at new stations (here the old ones, 10 m higher).
    new_stations = folder / "new_stations.csv"
    new_stations.write_text("x,y,z\n" + "".join(f"{x},{y},{z + 10.0}\n" for x, y, z in case.stations[:5]))
    run_quietly("predict", gaussian, new_stations, "-o", folder / "predict.csv")
    with open(folder / "predict.csv", newline="") as handle:
        predicted = list(csv.DictReader(handle))
    assert len(predicted) == 5
    assert {"gz_mean", "gz_std", "gz_q05", "gz_q95"} <= set(predicted[0])

    # drill: a vertical hole through the block, as CSV and PNG.
    run_quietly("drill", gaussian, "--collar", "175,225,0", "--azimuth", "0", "--dip", "90", "--length", "200",
                "-o", folder / "hole.csv")
    assert (folder / "hole.csv").is_file() and is_png(folder / "hole.png")

    # export: UBC-GIF mesh and models, and a VTK rectilinear grid.
    run_quietly("export", gaussian, "--format", "ubc", "-o", folder / "ubc")
    assert (folder / "ubc" / "mesh.msh").is_file() and (folder / "ubc" / "mean.mod").is_file()
    run_quietly("export", gaussian, "--format", "vtk", "-o", folder / "summary.vtr")
    assert (folder / "summary.vtr").stat().st_size > 0

    # Nothing was left half-written.
    assert not list(folder.rglob("*.tmp*"))
    with xr.open_dataset(report / "gaussian" / "summary.nc") as summary:
        assert summary.attrs["method"] == "gaussian"


def test_compare_with_one_member_exits_2_before_running(case):
    config = case.config("e2e_compare_one")
    config.write_text(config.read_text().replace("members = 4", "members = 1"))
    result = CliRunner().invoke(app, ["compare", str(config)])
    assert result.exit_code == 2, result.output
    assert "[inference] members" in result.output and "Traceback" not in result.output
    assert not case.results("e2e_compare_one").exists()
