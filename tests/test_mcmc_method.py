"""``method = "mcmc"`` through the pipeline and the command line, on a 32-cell problem.

Under an uncorrelated Gaussian prior the NUTS posterior must be the exact one (the ``gaussian``
method's closed form) within Monte-Carlo error; under a box prior no draw may leave the bounds,
and the box must matter (the exact Gaussian posterior puts mass below the lower bound there);
a problem whose estimated cost exceeds the budget is refused with exit 2 before any work.
"""

import json

import arviz as az
import numpy as np
import pytest
import xarray as xr
from helpers import check_success, invoke

from gravuq.config import load_config
from gravuq.forward import sensitivity_matrix
from gravuq.io import model_dataset, write_netcdf, write_stations_csv
from gravuq.mesh import TensorMesh
from gravuq.pipeline import prepare, recover

Z = 4.5  # Monte-Carlo tolerance in standard errors (32 cells are checked at once)
NUTS = "nuts_chains = 2\nnuts_warmup = 300\nnuts_samples = 500\n"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """4 x 4 x 2 cells of 50 m, a +300 kg/m^3 cell pair, 16 stations 1 m above the top, 1 % noise."""
    folder = tmp_path_factory.mktemp("mcmc_method")
    mesh = TensorMesh.uniform((0.0, 0.0, -100.0), (50.0, 50.0, 50.0), (4, 4, 2))
    truth = np.zeros(mesh.shape)
    truth[1, 1:3, 1] = 300.0
    x, y = np.meshgrid(mesh.centers_x, mesh.centers_y)
    stations = np.stack([x.ravel(), y.ravel(), np.full(x.size, 1.0)], axis=1)
    gz_true = np.asarray(sensitivity_matrix(mesh, stations, dtype="float64")) @ truth.ravel()
    std = 0.01 * gz_true.std()
    gz = gz_true + np.random.default_rng(1).normal(0.0, std, gz_true.shape)
    write_netcdf(folder / "truth.nc", model_dataset(mesh, {"density": truth}))
    write_stations_csv(folder / "stations.csv", *stations.T, gz, np.full(gz.shape, std))
    return folder


def _config(folder, name, inference, bounds="[0.0, 600.0]"):
    path = folder / f"{name}.toml"
    path.write_text(f'[data]\npath = "stations.csv"\n\n[mesh]\norigin = [0.0, 0.0, -100.0]\n'
                    f'cell_size = [50.0, 50.0, 50.0]\nshape = [4, 4, 2]\n\n[model]\nbounds = {bounds}\n\n'
                    f'[inference]\nmethod = "mcmc"\nmembers = 20\n{inference}\n'
                    f'[output]\ndirectory = "results_{name}"\nformats = ["netcdf"]\n\n[truth]\npath = "truth.nc"\n')
    return path


def test_normal_prior_gives_the_exact_gaussian_posterior(folder):
    config = load_config(_config(folder, "normal", 'mcmc_prior = "normal"\nprior_scale = "fixed"\n'
                                 'prior_std = 100.0\nnoise = "stated"\n' + NUTS))
    setup = prepare(config)
    nuts, exact = recover(setup, "mcmc"), recover(setup, "gaussian")
    mean, variance = exact.result.moments
    sd = np.sqrt(variance)
    draws = nuts.draws.reshape(2, 500, -1)
    ess = az.ess(az.convert_to_dataset({"m": draws}))["m"].values
    assert nuts.result.chains == 2 and nuts.metrics["rhat_max"] < 1.05
    assert np.all(np.abs(nuts.summary.mean - mean) < Z * sd / np.sqrt(ess))
    # A Gaussian's kurtosis is 3: the sample sd's relative error is sqrt(2 / ESS) / 2.
    ess_squares = az.ess(az.convert_to_dataset({"m": (draws - mean) ** 2}))["m"].values
    assert np.all(np.abs(nuts.summary.std / sd - 1) < Z * 0.5 * np.sqrt(2 / ess_squares))
    assert nuts.metrics["mcmc_prior"]["correlations_dropped"] is False


def test_box_prior_through_the_command_line_keeps_chains_and_bounds(folder):
    path = _config(folder, "box", 'prior_scale = "fixed"\nnoise = "stated"\n' + NUTS)  # mcmc_prior "box": default
    result = invoke("ensemble", path, "-q")
    check_success(result)
    results = folder / "results_box"
    metrics = json.loads((results / "metrics.json").read_text())
    assert metrics["method"] == "mcmc" and metrics["mcmc_prior"] == {"kind": "box", "lower": 0.0, "upper": 600.0}
    assert metrics["draws_outside_bounds"] == 0 and metrics["chains"] == 2
    assert metrics["rhat_max"] < 1.05 and metrics["ess_bulk_min"] > 50
    with xr.open_dataset(results / "posterior.nc", group="posterior") as posterior:
        density = posterior["density"].values
    assert density.shape == (2, 500, 2, 4, 4)
    assert density.min() >= 0.0 and density.max() <= 600.0
    # The bound binds: the exact Gaussian posterior (unbounded, same noise) puts many cells' 5 %
    # quantile below 0, the box posterior's sits at or above it.
    assert np.quantile(density, 0.05, axis=(0, 1)).min() >= 0.0
    assert (density < 10.0).mean() > 0.1


def test_a_problem_over_the_budget_exits_2_before_any_work(folder):
    path = _config(folder, "too_big", "mcmc_max_seconds = 1.0\n" + NUTS)
    result = invoke("ensemble", path, "-q")
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "too_big.toml" in message and "mcmc_max_seconds = 1" in message and "gradient evaluations" in message
    assert "Traceback" not in result.output
    assert not (folder / "results_too_big" / "metrics.json").exists()


def test_truncated_prior_is_the_exact_gaussian_where_the_bounds_do_not_bind_and_bounded_where_they_do(folder):
    """mcmc_prior = "truncated": the shared prior, its correlations included, truncated to [model]
    bounds and sampled by exact HMC. Far bounds: the exact Gaussian posterior within
    Monte-Carlo error; [0, 600]: no draw outside, the bound binds."""
    inference = ('mcmc_prior = "truncated"\nprior_scale = "fixed"\nprior_std = 100.0\nprior_correlation_length = 60.0\n'
                 'noise = "stated"\nnuts_chains = 2\nnuts_warmup = 20\nnuts_samples = 500\n')
    wide = prepare(load_config(_config(folder, "truncated_wide", inference, bounds="[-1e5, 1e5]")))
    sampled, exact = recover(wide, "mcmc"), recover(wide, "gaussian")
    mean, variance = exact.result.moments
    sd = np.sqrt(variance)
    draws = sampled.draws.reshape(2, 500, -1)
    ess = az.ess(az.convert_to_dataset({"m": draws}))["m"].values
    assert sampled.metrics["sampler"].startswith("exact HMC") and sampled.metrics["rhat_max"] < 1.05
    assert sampled.metrics["bounces_per_trajectory_mean"] == 0.0
    assert np.all(np.abs(sampled.summary.mean - mean) < Z * sd / np.sqrt(ess))
    ess_squares = az.ess(az.convert_to_dataset({"m": (draws - mean) ** 2}))["m"].values
    assert np.all(np.abs(sampled.summary.std / sd - 1) < Z * 0.5 * np.sqrt(2 / ess_squares))
    bounded = recover(prepare(load_config(_config(folder, "truncated_box", inference))), "mcmc")
    assert bounded.metrics["draws_outside_bounds"] == 0 and bounded.metrics["bounces_per_trajectory_mean"] > 1
    assert bounded.draws.min() >= 0.0 and np.quantile(bounded.draws, 0.05, axis=0).min() >= 0.0
    assert np.quantile(exact.draws, 0.05, axis=0).min() < 0.0


def test_a_truncated_run_over_the_budget_exits_2_naming_exact_hmc(folder):
    path = _config(folder, "truncated_too_big", 'mcmc_prior = "truncated"\nmcmc_max_seconds = 0.001\n' + NUTS)
    result = invoke("ensemble", path, "-q")
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "truncated_too_big.toml" in message and "exact HMC" in message and "mcmc_max_seconds" in message
    assert "Traceback" not in result.output
