"""Statistics of the inference methods on problems with exact answers.

A linear problem with a Gaussian prior has an exact Gaussian posterior; every check here is
against it: the dense closed form against brute-force algebra, its coverage on truths drawn
from its own prior, and randomised MAP on the particle engine (with one free value per cell)
against the closed form, within Monte-Carlo error.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gravuq.forward import make_operator, sensitivity_matrix
from gravuq.inference import GaussianPrior, gaussian_posterior
from gravuq.inference.tikhonov import tikhonov
from gravuq.inference.training import (Engine, FirstOrder, MemberTargets, Network, Objective, Stopping, adam,
                                       divergence_report)
from gravuq.mesh import TensorMesh
from gravuq.model import VoxelField, trainable
from gravuq.synthetic import gaussian_noise, sphere


@pytest.fixture(scope="module")
def small():
    """5 x 4 x 3 cells of 100 m under 12 stations: small enough for brute-force algebra."""
    mesh = TensorMesh.uniform((0.0, 0.0, -300.0), (100.0, 100.0, 100.0), (5, 4, 3))
    x, y = np.meshgrid(np.linspace(50.0, 450.0, 4), np.linspace(50.0, 350.0, 3))
    stations = np.stack([x.ravel(), y.ravel(), np.full(x.size, 10.0)], axis=1)
    matrix = np.asarray(sensitivity_matrix(mesh, stations, dtype="float64"))
    return mesh, stations, matrix


@pytest.mark.parametrize("length, depth_exponent", [(0.0, 0.0), (150.0, 1.0)])
def test_prior_draws_have_the_prior_covariance(small, length, depth_exponent):
    mesh, _, _ = small
    prior = GaussianPrior.build(mesh, 80.0, length, depth_exponent)
    draws = np.asarray(prior.sample(jax.random.key(0), 40_000))
    covariance = np.asarray(prior.covariance_apply(jnp.eye(mesh.n_cells)))
    empirical = np.cov(draws.T)
    scale = np.sqrt(np.outer(np.diag(covariance), np.diag(covariance)))
    # Monte-Carlo error of a correlation with 40,000 draws is about 0.005.
    assert np.max(np.abs(empirical - covariance) / scale) < 0.03
    whitened = np.asarray(prior.whiten(jnp.asarray(draws[:5000])))
    np.testing.assert_allclose(np.cov(whitened.T), np.eye(mesh.n_cells), atol=0.08)


def test_gaussian_posterior_matches_brute_force_algebra(small):
    mesh, _, matrix = small
    prior = GaussianPrior.build(mesh, 50.0, 120.0, 0.5)
    prior_covariance = np.asarray(prior.covariance_apply(jnp.eye(mesh.n_cells)))
    rng = np.random.default_rng(1)
    std = np.full(matrix.shape[0], 0.01)
    data = matrix @ rng.normal(0, 50, mesh.n_cells) + rng.normal(0, 0.01, matrix.shape[0])
    # Precision form, the other textbook route: (G^T Cd^-1 G + C^-1)^-1.
    posterior_covariance = np.linalg.inv(matrix.T @ np.diag(std**-2) @ matrix + np.linalg.inv(prior_covariance))
    mean = posterior_covariance @ matrix.T @ (data / std**2)
    result = gaussian_posterior(matrix, data, std, prior, jax.random.key(2), draws=4)
    np.testing.assert_allclose(result.mean, mean, rtol=1e-6, atol=1e-6 * np.abs(mean).max())
    np.testing.assert_allclose(result.variance, np.diag(posterior_covariance), rtol=1e-6)
    assert np.all(result.variance <= result.prior_variance + 1e-9)


def test_gaussian_draws_follow_the_exact_posterior(small):
    """Matheron's rule: the draws' mean and variance converge to the closed form."""
    mesh, _, matrix = small
    prior = GaussianPrior.build(mesh, 50.0)
    std = np.full(matrix.shape[0], 0.02)
    data = matrix @ np.asarray(prior.sample(jax.random.key(3), 1))[0]
    result = gaussian_posterior(matrix, data, std, prior, jax.random.key(4), draws=8000)
    sd = np.sqrt(result.variance)
    error_of_mean = 4.5 * sd / np.sqrt(8000)
    assert np.all(np.abs(result.draws.mean(axis=0) - result.mean) < error_of_mean)
    np.testing.assert_allclose(result.draws.std(axis=0), sd, rtol=0.06)


def test_gaussian_interval_coverage_is_nominal_on_truths_from_the_prior(small):
    mesh, _, matrix = small
    prior = GaussianPrior.build(mesh, 60.0, 100.0)
    std = np.full(matrix.shape[0], 0.01)
    truths = np.asarray(prior.sample(jax.random.key(5), 400))
    noise = np.asarray(jax.random.normal(jax.random.key(6), (400, matrix.shape[0]))) * std
    inside = []
    for truth, e in zip(truths, noise):
        result = gaussian_posterior(matrix, matrix @ truth + e, std, prior, jax.random.key(0), draws=2)
        half = 1.6448536 * np.sqrt(result.variance)
        inside.append(np.abs(truth - result.mean) <= half)
    coverage = np.mean(inside)
    # 400 x 60 correlated indicators: the standard error is well under 0.01.
    assert abs(coverage - 0.90) < 0.02


def test_randomised_map_on_the_engine_is_the_exact_posterior(small):
    """Each member fits its own perturbed data, anchored to its own prior draw; with one free
    value per cell the minimiser is an exact posterior draw, so the ensemble's mean and standard
    deviation match the closed form within Monte-Carlo error."""
    mesh, stations, matrix = small
    members = 256
    prior = GaussianPrior.build(mesh, 50.0, 100.0)
    std = np.full(matrix.shape[0], 0.02)
    data = matrix @ np.asarray(prior.sample(jax.random.key(7), 1))[0] + 0.02 * np.random.default_rng(8).normal(size=matrix.shape[0])
    exact = gaussian_posterior(matrix, data, std, prior, jax.random.key(9), draws=2)

    anchors = np.asarray(prior.sample(jax.random.key(10), members))
    perturbed = data + np.stack([gaussian_noise(k, std) for k in jax.random.split(jax.random.key(11), members)])
    operator, _ = make_operator(mesh, stations, mode="dense", dtype="float64")
    params, static = trainable(jax.vmap(lambda a: VoxelField(a))(jnp.asarray(anchors)))
    problem = Objective(operator=operator, coordinates=jnp.zeros((mesh.n_cells, 3)), inverse_std=jnp.asarray(1.0 / std),
                        targets=MemberTargets(data=jnp.asarray(perturbed), anchor=jnp.asarray(anchors)), prior=prior)
    engine = Engine(Network(static), FirstOrder(adam(2.0, "cosine", 3000)), Stopping(target_misfit=None),
                    chunk_epochs=500)
    state, _ = engine.run(engine.init(params, jax.random.key(0), problem), problem, 3000)
    draws = np.asarray(engine.densities(engine.kept_params(state), problem))

    sd = np.sqrt(exact.variance)
    z = (draws.mean(axis=0) - exact.mean) / (sd / np.sqrt(members))
    assert np.abs(z).max() < 4.5, np.abs(z).max()
    ratio = draws.std(axis=0, ddof=1) / sd
    # The relative standard error of a standard deviation from 256 draws is about 0.045.
    assert np.all(np.abs(ratio - 1.0) < 0.2), ratio
    assert abs(ratio.mean() - 1.0) < 0.05


def test_engine_stops_diverging_members_and_keeps_the_rest(small):
    mesh, stations, _ = small
    operator, _ = make_operator(mesh, stations, mode="dense", dtype="float64")
    values = jnp.zeros((3, mesh.n_cells)).at[1].set(jnp.nan)
    params, static = trainable(jax.vmap(lambda a: VoxelField(a))(values))
    data = jnp.ones((3, len(stations)))
    problem = Objective(operator=operator, coordinates=jnp.zeros((mesh.n_cells, 3)),
                        inverse_std=jnp.ones(len(stations)) * 10.0, targets=MemberTargets(data=data))
    engine = Engine(Network(static), FirstOrder(adam(1.0)), Stopping(target_misfit=None), chunk_epochs=20)
    state, _ = engine.run(engine.init(params, jax.random.key(0), problem), problem, 40)
    assert np.asarray(state.members.diverged).tolist() == [False, True, False]
    assert divergence_report(state) == [{"member": 1, "epoch": 0, "cause": "non-finite loss"}]
    final = np.asarray(engine.densities(engine.kept_params(state), problem))
    assert np.all(np.isfinite(final[[0, 2]]))


@pytest.fixture(scope="module")
def sphere_case():
    return sphere(shape=(14, 14, 7), cell_size=50.0, centre=(325.0, 375.0, -175.0), radius=90.0)


def test_tikhonov_reaches_its_target_and_finds_the_sphere(sphere_case):
    case = sphere_case
    operator, _ = make_operator(case.mesh, case.stations, mode="dense", dtype="float64")
    result = tikhonov(operator, case.mesh, case.gz, case.std, target=1.0, depth_exponent=1.0, alpha_s=10.0)
    assert abs(result.chi2 - 1.0) < 0.05
    recovered = result.density.reshape(case.mesh.shape)
    k, j, i = np.unravel_index(np.argmax(recovered), case.mesh.shape)
    assert abs(case.mesh.centers_x[i] - 325.0) <= 100.0
    assert abs(case.mesh.centers_y[j] - 375.0) <= 100.0
    # A positive body gives a positive recovery where it is.
    assert recovered.ravel()[case.density.ravel() > 0].mean() > 0.2 * recovered.max()
