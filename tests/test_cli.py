"""The command line end to end on a tiny synthetic case written by the tests (SPEC sections 2-4):
forward modelling, deterministic and probabilistic recoveries with their files, exit codes and
one-line messages for bad input, and the help texts.

The case: 8 x 8 x 4 cells of 50 m, a +400 kg/m^3 block, 64 stations 1 m above the cell-centre
grid, gz in mGal (positive downward) with 1 % noise. INR runs train tiny networks (width 16,
depth 2) for 50 epochs: the point is the plumbing and the file contract, not the fit; the tests
that train networks are marked slow (``-m "not slow"`` skips them).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
import xarray as xr

import gravuq
from gravuq.io import read_stations_csv
from gravuq_cli.main import app
from helpers import MESH_TOML, PNG_MAGIC, SUMMARY_VARIABLES, Case, check_success, invoke  # noqa: F401

def read_metrics(directory: Path) -> dict:
    return json.loads((directory / "metrics.json").read_text())


# -- forward -------------------------------------------------------------------------------------
def test_forward_with_noise_is_reproducible_and_without_noise_is_exact(case):
    config = case.config("forward")
    first, second = case.folder / "noisy_1.csv", case.folder / "noisy_2.csv"
    check_success(invoke("forward", config, "--noise", "-o", first, "-q"))
    check_success(invoke("forward", config, "--noise", "--output", second, "-q"))
    assert first.read_bytes() == second.read_bytes()

    # Without -o the CSV goes to <output directory>/forward.csv.
    check_success(invoke("forward", config, "-q"))
    clean = read_stations_csv(case.results("forward") / "forward.csv", need_std=True)
    np.testing.assert_array_equal(clean.x, case.stations[:, 0])
    np.testing.assert_array_equal(clean.z, case.stations[:, 2])
    np.testing.assert_allclose(clean.gz, case.matrix @ case.truth.ravel(), rtol=1e-12, atol=1e-15)
    assert clean.gz.max() > 0  # positive contrast under the stations: positive gz (downward)
    np.testing.assert_allclose(clean.std, case.std)  # the file's std column

    noisy = read_stations_csv(first, need_std=True)
    standardised = (noisy.gz - clean.gz) / clean.std
    assert np.all(standardised != 0.0)
    assert abs(standardised.mean()) < 0.5 and 0.6 < standardised.std() < 1.5


def test_forward_without_truth_exits_2(case):
    config = case.config("forward_no_truth")
    config.write_text(config.read_text().split("[truth]")[0])
    result = invoke("forward", config)
    assert result.exit_code == 2
    assert "[truth]" in result.output and "Traceback" not in result.output


# -- invert --------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", [
    "tikhonov",
    pytest.param("deterministic", marks=pytest.mark.slow),
])
def test_invert_writes_summary_metrics_and_figures(case, method):
    config = case.config(f"invert_{method}", method=method)
    result = invoke("invert", config, "-q")
    check_success(result)
    assert result.output.strip() == ""  # --quiet: nothing but errors
    directory = case.results(f"invert_{method}")
    with xr.open_dataset(directory / "summary.nc") as summary:
        assert dict(summary["mean"].sizes) == {"z": 4, "y": 8, "x": 8}
        assert summary["mean"].dims == ("z", "y", "x")
        mean = summary["mean"].values
        np.testing.assert_allclose(summary["x"].values, case.mesh.centers_x)
        assert summary.attrs["method"] == method
    assert np.all(np.isfinite(mean)) and np.all(np.abs(mean) <= 600.0)  # [model] bounds default
    metrics = read_metrics(directory)
    for key in ("chi2_per_datum", "rms_mgal", "runtime_s", "members", "model_rmse"):
        assert key in metrics, key
    assert metrics["members"] == 1 and metrics["runtime_s"] > 0
    predicted = case.matrix @ mean.ravel()
    assert metrics["chi2_per_datum"] == pytest.approx(np.mean(((predicted - case.gz) / case.std) ** 2), rel=1e-4)
    assert metrics["model_rmse"] == pytest.approx(np.sqrt(np.mean((mean - case.truth) ** 2)), rel=1e-6)
    if method == "tikhonov":
        # Discrepancy principle: beta is tuned until chi^2/N reaches the target of 1.
        assert 0.9 <= metrics["chi2_per_datum"] <= 1.1
        assert metrics["model_rmse"] < np.sqrt(np.mean(case.truth**2))  # better than the zero model
    pngs = sorted(directory.glob("*.png"))
    assert {"mean_slices.png", "data_residuals.png", "section.png"} <= {path.name for path in pngs}
    for path in pngs:
        assert path.read_bytes()[:8] == PNG_MAGIC, path


# -- ensemble ------------------------------------------------------------------------------------
ENSEMBLE_RUNS = {
    "gaussian": ("gaussian", "", ("netcdf", "png")),
    "rml": ("ensemble", 'ensemble_mode = "rml"', ("netcdf",)),
    "init": ("ensemble", 'ensemble_mode = "init"', ("netcdf",)),
}


@pytest.mark.parametrize("name", [
    "gaussian",
    pytest.param("rml", marks=pytest.mark.slow),
    pytest.param("init", marks=pytest.mark.slow),
])
def test_ensemble_writes_posterior_summary_and_metrics(case, name):
    import arviz as az

    method, inference, formats = ENSEMBLE_RUNS[name]
    config = case.config(f"ensemble_{name}", method=method, inference=inference, formats=formats)
    # The rml run keeps progress bars on, so that code path runs too.
    result = invoke("ensemble", config) if name == "rml" else invoke("ensemble", config, "-q")
    check_success(result)
    assert "Traceback" not in result.output
    directory = case.results(f"ensemble_{name}")

    idata = az.from_netcdf(str(directory / "posterior.nc"))
    density = idata.posterior["density"]
    assert density.dims == ("chain", "draw", "z", "y", "x")
    assert density.shape == (1, 4, 4, 8, 8)
    gz = idata.posterior_predictive["gz"]
    assert gz.dims == ("chain", "draw", "station") and gz.shape == (1, 4, 64)
    # Each draw's predicted data is the forward model of that draw (mGal, positive down).
    expected = density.values.reshape(4, -1) @ case.matrix.T
    np.testing.assert_allclose(gz.values[0], expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    np.testing.assert_allclose(idata.observed_data["gz"].values, case.gz, rtol=1e-12)
    for key, values in (("x", case.stations[:, 0]), ("y", case.stations[:, 1]), ("z", case.stations[:, 2]),
                        ("std", np.full(64, case.std))):
        np.testing.assert_allclose(idata.constant_data[key].values, values, rtol=1e-12)
    assert "gz" in idata.log_likelihood
    assert idata.log_likelihood["gz"].shape == (1, 4, 64)
    assert idata.attrs["method"] == method
    assert idata.attrs["gravuq_version"] == gravuq.__version__
    assert idata.attrs["config"] == config.read_text()

    with xr.open_dataset(directory / "summary.nc") as summary:
        for variable in SUMMARY_VARIABLES:
            assert summary[variable].dims == ("z", "y", "x"), variable
        values = {variable: summary[variable].values for variable in SUMMARY_VARIABLES}
        assert summary.attrs["threshold"] == 200.0 and summary.attrs["method"] == method
    for variable in ("exceedance", "resolution"):
        assert np.all(np.isfinite(values[variable])), variable
        assert np.all((values[variable] >= 0.0) & (values[variable] <= 1.0)), variable
    assert np.all(values["std"] >= 0.0) and np.all(values["q05"] <= values["q95"])
    draws = density.values[0]
    if method == "ensemble":  # summaries of the draws themselves
        np.testing.assert_allclose(values["mean"], draws.mean(axis=0), rtol=1e-10, atol=1e-9)
        np.testing.assert_allclose(values["exceedance"], (draws > 200.0).mean(axis=0))

    metrics = read_metrics(directory)
    for key in ("chi2_per_datum", "rms_mgal", "runtime_s", "members", "model_rmse", "coverage_90", "crps",
                "exceedance_auc"):
        assert key in metrics, key
    assert metrics["members"] == 4
    assert 0.0 <= metrics["coverage_90"] <= 1.0 and metrics["crps"] >= 0.0
    assert 0.0 <= metrics["exceedance_auc"] <= 1.0
    inside = (case.truth >= values["q05"]) & (case.truth <= values["q95"])
    assert metrics["coverage_90"] == pytest.approx(inside.mean())
    if "png" in formats:
        names = {path.name for path in directory.glob("*.png")}
        assert {"mean_slices.png", "std_slices.png", "exceedance_slices.png", "section.png",
                "data_residuals.png", "resolution_depth.png"} <= names


# -- bad input: exit 2, one line, no traceback ---------------------------------------------------
def check_input_error(result, *needles: str) -> str:
    assert result.exit_code == 2, result.output + repr(result.exception)
    assert isinstance(result.exception, SystemExit)
    output = result.output
    assert "Traceback" not in output
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def test_unknown_config_key_exits_2_naming_the_key(case):
    config = case.config("bad_key")
    config.write_text(config.read_text().replace("width = 16", "widht = 16"))
    check_input_error(invoke("ensemble", config), "bad_key.toml", "[model]", "widht")


def test_missing_data_file_exits_2_naming_the_file(case):
    config = case.config("missing_data", method="tikhonov", data='path = "no_such_stations.csv"')
    check_input_error(invoke("invert", config), "[data] path", "no_such_stations.csv")


def test_missing_config_file_exits_2(case):
    check_input_error(invoke("ensemble", case.folder / "absent.toml"), "absent.toml")


@pytest.mark.parametrize("command, method", [("invert", "gaussian"), ("invert", "ensemble"),
                                             ("ensemble", "tikhonov"), ("ensemble", "deterministic")])
def test_method_not_run_by_the_command_exits_2(case, command, method):
    config = case.config(f"wrong_{command}_{method}", method=method)
    check_input_error(invoke(command, config), "[inference] method", method)
    assert not case.results(f"wrong_{command}_{method}").exists()  # nothing was run


def test_non_numeric_csv_cell_exits_2_naming_the_row(case):
    lines = (case.folder / "stations.csv").read_text().splitlines()
    cells = lines[3].split(",")
    cells[3] = "abc"  # the gz of the third data row (line 4 of the file)
    lines[3] = ",".join(cells)
    (case.folder / "bad_stations.csv").write_text("\n".join(lines) + "\n")
    config = case.config("bad_csv", method="tikhonov", data='path = "bad_stations.csv"')
    check_input_error(invoke("invert", config), "bad_stations.csv", "line 4", "gz", "abc")


# -- help ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["forward", "invert", "ensemble"])
def test_help_mentions_units(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "mGal" in result.output or "kg/m^3" in result.output


def test_every_command_has_help():
    group = typer.main.get_command(app)
    assert {"forward", "invert", "ensemble"} <= set(group.commands)
    for name in group.commands:
        result = invoke(name, "--help")
        assert result.exit_code == 0, name
        assert "Usage" in result.output and "Traceback" not in result.output
    top = invoke("--help")
    assert top.exit_code == 0 and "mGal" in top.output and "kg/m^3" in top.output


def test_forward_reproduces_the_shipped_example(tmp_path):
    """`gravuq forward examples/dipping_block/config.toml --noise` rewrites stations.csv: the same
    stations, the same noise draws, gz equal to float64 rounding (byte for byte on the machine
    that made it; other CPUs may differ in the last bits of the kernel's transcendentals)."""
    example = Path(__file__).resolve().parents[1] / "examples" / "dipping_block"
    output = tmp_path / "stations.csv"
    check_success(invoke("forward", example / "config.toml", "--noise", "-o", output, "-q"))
    made = read_stations_csv(output, need_std=True)
    shipped = read_stations_csv(example / "stations.csv", need_std=True)
    for column in ("x", "y", "z", "std"):
        np.testing.assert_array_equal(getattr(made, column), getattr(shipped, column))
    np.testing.assert_allclose(made.gz, shipped.gz, rtol=1e-12, atol=1e-15)
