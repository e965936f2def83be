"""SVGD on the particle engine against exact answers: a 2-D Gaussian posterior (mean and
covariance) and, with one particle, the MAP."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gravuq.forward import DenseOperator
from gravuq.inference import GaussianPrior, gaussian_posterior
from gravuq.inference.training import (Engine, MemberTargets, Network, Objective, Stein, SteinKernel, Stopping,
                                       adam)
from gravuq.mesh import TensorMesh
from gravuq.model import VoxelField, trainable

MATRIX = np.array([[1.0, 0.5], [0.2, 1.0], [0.7, -0.4]]) * 1e-2  # mGal per kg/m^3
STD = np.array([0.3, 0.4, 0.5])
DATA = np.array([0.8, 0.1, 0.5])


@pytest.fixture(scope="module")
def target():
    """A two-cell linear-Gaussian problem: the posterior is an exact, correlated 2-D Gaussian."""
    prior = GaussianPrior.build(TensorMesh.uniform((0, 0, 0), (1, 1, 1), (1, 1, 2)), 40.0)
    exact = gaussian_posterior(MATRIX, DATA, STD, prior, jax.random.key(0), draws=2)
    covariance_prior = np.asarray(prior.covariance_apply(jnp.eye(2)))
    precision = MATRIX.T @ np.diag(STD**-2) @ MATRIX + np.linalg.inv(covariance_prior)
    return prior, exact, np.linalg.inv(precision)


def _svgd(prior, particles, space, epochs=3000, rate=1.0):
    params, static = trainable(jax.vmap(lambda a: VoxelField(a))(jnp.asarray(particles)))
    members = particles.shape[0]
    problem = Objective(operator=DenseOperator(jnp.asarray(MATRIX)), coordinates=jnp.zeros((2, 3)),
                        inverse_std=jnp.asarray(1.0 / STD), prior=prior,
                        targets=MemberTargets(data=jnp.tile(jnp.asarray(DATA), (members, 1)),
                                              anchor=jnp.zeros((members, 2))))
    engine = Engine(Network(static), Stein(SteinKernel(space), adam(rate, "cosine", epochs)),
                    Stopping(target_misfit=None), chunk_epochs=500)
    state, _ = engine.run(engine.init(params, jax.random.key(0), problem), problem, epochs)
    return np.asarray(engine.densities(engine.kept_params(state), problem))


@pytest.mark.parametrize("space", ["function", "weight"])
def test_svgd_recovers_a_two_dimensional_gaussian(target, space):
    prior, exact, covariance = target
    start = np.asarray(jax.random.normal(jax.random.key(1), (200, 2))) * 5.0 + np.array([-100.0, 120.0])
    particles = _svgd(prior, start, space)
    np.testing.assert_allclose(particles.mean(axis=0), exact.mean, atol=0.1 * np.sqrt(np.diag(covariance)).max())
    empirical = np.cov(particles.T)
    np.testing.assert_allclose(np.sqrt(np.diag(empirical)), np.sqrt(np.diag(covariance)), rtol=0.12)
    correlation = covariance[0, 1] / np.sqrt(covariance[0, 0] * covariance[1, 1])
    empirical_correlation = empirical[0, 1] / np.sqrt(empirical[0, 0] * empirical[1, 1])
    assert abs(empirical_correlation - correlation) < 0.1
    # The particles started far from the posterior: they moved there.
    assert np.linalg.norm(start.mean(axis=0) - exact.mean) > 5 * np.sqrt(np.diag(covariance)).max()


def test_svgd_with_one_particle_is_the_map(target):
    prior, exact, _ = target
    particle = _svgd(prior, np.array([[25.0, -20.0]]), "function")
    # For a Gaussian posterior the MAP is the mean.
    np.testing.assert_allclose(particle[0], exact.mean, rtol=1e-4, atol=1e-3)
