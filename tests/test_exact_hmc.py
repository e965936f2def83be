"""Exact HMC for truncated Gaussians (gravuq.inference.exact_hmc) against exact answers.

The wall times are the first crossings found by brute force along the trajectory; the draws of
a correlated 3-D truncated Gaussian match rejection sampling from the untruncated one, and a
1-D one scipy's truncated normal, within Monte-Carlo error; none leaves the box.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from gravuq.inference.exact_hmc import _first_walls, _time_of, sample_truncated_gaussian

Z = 4.5  # Monte-Carlo tolerance in standard errors (a few numbers checked at once)


def test_the_earliest_wall_is_the_first_crossing_along_the_trajectory():
    rng = np.random.default_rng(0)
    n = 400
    offset, velocity, mean = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
    lower, upper = mean + offset - rng.uniform(0.05, 2.0, n), mean + offset + rng.uniform(0.05, 2.0, n)
    roots, keys = (np.asarray(x) for x in _first_walls(*(jnp.asarray(a) for a in (offset, velocity, mean, lower, upper))))
    t = np.linspace(0.0, 2 * np.pi, 200_001)[1:]
    path = mean[:, None] + offset[:, None] * np.cos(t) + velocity[:, None] * np.sin(t)
    outside = (path < lower[:, None]) | (path > upper[:, None])
    reaches = outside.any(axis=1)
    assert 0.2 < reaches.mean() < 0.95  # both kinds of trajectory are checked
    first = t[np.argmax(outside, axis=1)]
    side = np.where(path[np.arange(n), np.argmax(outside, axis=1)] < lower, 0, 1)
    assert np.array_equal(np.isfinite(keys).any(axis=1), reaches)
    cells = np.flatnonzero(reaches)
    chosen = np.argmin(keys[cells], axis=1)
    np.testing.assert_array_equal(chosen, side[cells])
    times = np.asarray(_time_of(jnp.asarray(roots[cells, chosen])))
    np.testing.assert_allclose(times, first[cells], atol=1e-4)
    # The key orders the walls as their times do.
    order = np.argsort(keys[cells, chosen])
    assert np.all(np.diff(times[order]) >= -1e-12)


@pytest.fixture(scope="module")
def correlated():
    rng = np.random.default_rng(0)
    factor = rng.normal(size=(3, 3))
    covariance = factor @ factor.T + 0.5 * np.eye(3)
    mean = np.array([0.5, -1.0, 2.0])
    lower, upper = np.array([0.0, -1.5, 0.0]), np.array([2.0, 1.0, 3.0])
    return mean, covariance, lower, upper


def test_draws_match_rejection_sampling_of_a_correlated_truncated_gaussian(correlated):
    mean, covariance, lower, upper = correlated
    result = sample_truncated_gaussian(mean, covariance, lower, upper, jax.random.key(1), chains=4, samples=2000)
    draws = result.draws.reshape(-1, 3)
    assert result.draws.shape == (4, 2000, 3) and result.truncated == 0
    assert np.all((draws >= lower) & (draws <= upper))
    assert result.bounces.mean() > 0.5  # the walls are met
    exact = np.random.default_rng(2).multivariate_normal(mean, covariance, size=1_000_000)
    exact = exact[np.all((exact >= lower) & (exact <= upper), axis=1)]
    # Successive trajectories of pi / 2 are nearly independent: half the draws as effective is cautious.
    effective = draws.shape[0] / 2
    sd = exact.std(axis=0)
    assert np.all(np.abs(draws.mean(axis=0) - exact.mean(axis=0)) < Z * sd / np.sqrt(effective))
    assert np.all(np.abs(draws.std(axis=0) / sd - 1) < Z * np.sqrt(1 / effective))
    assert abs(np.corrcoef(draws.T)[0, 2] - np.corrcoef(exact.T)[0, 2]) < Z / np.sqrt(effective)


@pytest.mark.parametrize("mean", [0.0, -2.5])
def test_one_dimension_matches_scipy_truncnorm(mean):
    """A box around the mode and one in the far tail (the mean 2.5 sd below the box)."""
    lower, upper = 0.0, 1.5
    result = sample_truncated_gaussian(np.array([mean]), np.array([[1.0]]), lower, upper, jax.random.key(3),
                                       chains=2, samples=2000)
    draws = result.draws.ravel()
    law = stats.truncnorm(lower - mean, upper - mean, loc=mean)
    effective = draws.size / 2
    assert draws.min() >= lower and draws.max() <= upper
    assert abs(draws.mean() - law.mean()) < Z * law.std() / np.sqrt(effective)
    assert abs(draws.std() / law.std() - 1) < Z * np.sqrt(1 / effective)


def test_a_gravity_posterior_truncated_at_zero_matches_rejection_sampling():
    """Six cells under four stations (the data fix combinations of cells, so the posterior is
    strongly correlated and many walls are met), prior sd 100 kg/m^3, bounds [0, 600]."""
    from gravuq.forward import sensitivity_matrix
    from gravuq.inference.linear_gaussian import gaussian_covariance
    from gravuq.inference.prior import GaussianPrior
    from gravuq.mesh import TensorMesh

    mesh = TensorMesh.uniform((0.0, 0.0, -100.0), (50.0, 50.0, 50.0), (3, 2, 1))
    # (Six cells: the rejection sampler keeps about 1 % of its draws.)
    stations = np.array([[25.0, 25.0, 1.0], [125.0, 25.0, 1.0], [75.0, 75.0, 1.0], [125.0, 75.0, 1.0]])
    matrix = np.asarray(sensitivity_matrix(mesh, stations, dtype="float64"))
    truth = np.zeros(mesh.n_cells)
    truth[[1, 4]] = 200.0
    std = np.full(4, 0.01 * np.abs(matrix @ truth).max())
    data = matrix @ truth + np.random.default_rng(4).normal(0.0, std)
    prior = GaussianPrior.build(mesh, 100.0)
    mean, covariance = gaussian_covariance(matrix, data, std, prior)
    result = sample_truncated_gaussian(mean, covariance, 0.0, 600.0, jax.random.key(5), chains=4, samples=1500)
    draws = result.draws.reshape(-1, mesh.n_cells)
    assert result.bounces.mean() > 2
    exact = np.random.default_rng(6).multivariate_normal(mean, covariance, size=2_000_000)
    exact = exact[np.all((exact >= 0.0) & (exact <= 600.0), axis=1)]
    assert exact.shape[0] > 5000
    effective = draws.shape[0] / 4
    sd = exact.std(axis=0)
    assert np.all(np.abs(draws.mean(axis=0) - exact.mean(axis=0)) < Z * sd / np.sqrt(effective))
    assert np.all(np.abs(draws.std(axis=0) / sd - 1) < Z * np.sqrt(1 / effective) + Z / np.sqrt(exact.shape[0]))
