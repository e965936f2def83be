"""Bayesian last layer: the evidence against brute-force algebra, NUTS against the closed form,
and both new posteriors (last_layer, svgd) writing the files of SPEC section 4."""

from __future__ import annotations

import arviz as az
import jax
import numpy as np
import pytest
import xarray as xr
from scipy import stats

from gravuq.config import load_config
from gravuq.inference.last_layer import LastLayerProblem, _Spectrum, closed_form, nuts
from gravuq.runs import run_command



def _problem(stations=150, features=5, seed=0):
    rng = np.random.default_rng(seed)
    design = rng.normal(size=(stations, features)) * np.linspace(1.0, 0.1, features)
    std = rng.uniform(0.5, 1.5, stations)
    truth = rng.normal(0.0, 2.0, features)
    data = design @ truth + std * rng.normal(size=stations)
    return LastLayerProblem(np.eye(features), design, data, std, 0.0, 1.0, 2.0)


def test_the_evidence_is_the_gaussian_marginal_likelihood():
    problem = _problem(stations=40, features=4)
    spectrum = _Spectrum(problem)
    for log_tau, log_noise in [(0.3, -0.2), (1.5, 0.4), (-1.0, 0.0)]:
        covariance = np.exp(2 * log_tau) * problem.design @ problem.design.T + np.diag((np.exp(log_noise) * problem.std) ** 2)
        expected = stats.multivariate_normal(np.zeros(40), covariance).logpdf(problem.residual_data)
        assert spectrum.log_evidence(log_tau, log_noise) == pytest.approx(expected, rel=1e-10)


def test_weight_draws_are_the_exact_conditional_posterior():
    problem = _problem()
    spectrum = _Spectrum(problem)
    tau, noise = 1.7, 0.9
    white = np.asarray(jax.random.normal(jax.random.key(0), (40_000, 5)))
    draws = spectrum.weights(tau, noise, white)
    weighted = problem.design / problem.std[:, None]
    covariance = np.linalg.inv(weighted.T @ weighted / noise**2 + np.eye(5) / tau**2)
    mean = covariance @ weighted.T @ (problem.residual_data / problem.std) / noise**2
    np.testing.assert_allclose(draws.mean(axis=0), mean, atol=5 * np.sqrt(np.diag(covariance) / 40_000).max())
    np.testing.assert_allclose(np.cov(draws.T), covariance, atol=0.03 * np.abs(covariance).max())


def test_nuts_and_the_closed_form_agree_when_the_data_fix_the_hyperparameters():
    problem = _problem(stations=400)
    weights, info = nuts(problem, jax.random.key(1), chains=2, warmup=300, samples=400)
    assert weights.shape == (2, 400, 5)
    assert info["rhat_max"] < 1.02 and info["ess_bulk_min"] > 150
    closed, closed_info = closed_form(problem, jax.random.key(2), draws=4000)
    flat = weights.reshape(-1, 5)
    sd = closed.std(axis=0)
    assert np.all(np.abs(flat.mean(axis=0) - closed.mean(axis=0)) < 0.15 * sd + 4 * sd / np.sqrt(300))
    np.testing.assert_allclose(flat.std(axis=0), sd, rtol=0.15)
    assert info["noise_scale"] == pytest.approx(closed_info["noise_scale"], rel=0.1)


@pytest.mark.slow
@pytest.mark.parametrize("method, inference, chains", [
    ("last_layer", 'last_layer_solver = "nuts"\nnuts_chains = 2\nnuts_warmup = 100\nnuts_samples = 100\n', 2),
    ("last_layer", 'last_layer_solver = "closed_form"\n', 1),
    ("svgd", 'svgd_kernel = "function"\n', 1),
])
def test_new_posteriors_write_the_spec_files(case, method, inference, chains):
    name = f"{method}_{chains}"
    config = load_config(case.config(name, method=method, inference=inference))
    recovery = run_command(config, "ensemble", ("ensemble", "gaussian", "svgd", "last_layer"))
    folder = case.results(name)
    idata = az.from_netcdf(folder / "posterior.nc")
    density = idata.posterior["density"]
    assert density.dims == ("chain", "draw", "z", "y", "x")
    assert density.sizes["chain"] == chains
    assert idata.posterior_predictive["gz"].dims == ("chain", "draw", "station")
    assert idata.attrs["method"] == method
    with xr.open_dataset(folder / "summary.nc") as summary:
        for name_ in ("mean", "std", "q05", "q95", "exceedance", "resolution"):
            assert summary[name_].dims == ("z", "y", "x")
        assert float(summary["exceedance"].min()) >= 0 and float(summary["exceedance"].max()) <= 1
        assert float(summary["resolution"].min()) >= 0 and float(summary["resolution"].max()) <= 1
    assert {"coverage_90", "crps", "exceedance_auc"} <= set(recovery.metrics)
    if method == "last_layer" and chains == 2:
        assert recovery.metrics["rhat_max"] < 1.1
