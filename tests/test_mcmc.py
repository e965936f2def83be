"""The NUTS reference sampler against exact answers on tiny problems.

A Gaussian prior gives the closed-form posterior ``N(C G^T W d, C)``, ``C = (G^T W G + I/s^2)^-1``;
box and mixture priors on two cells give posteriors that numerical quadrature on a fine grid
computes exactly, with the prior densities written independently here (scipy.stats). Moments
must agree within Monte-Carlo error: the mean within a few ``sd / sqrt(ESS_bulk)``, the
standard deviation within a few times its own error from the ESS of the squared deviations
and the kurtosis. Every sampling test shares one warm-up/draw setting, so each target's NUTS
program compiles once.
"""

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import gravuq  # noqa: F401  (64-bit mode)
from gravuq.errors import InputError
from gravuq.forward import sensitivity_matrix
from gravuq.inference.mcmc import BoxPrior, MixturePrior, NormalPrior, check_cost, estimate_cost, sample_posterior
from gravuq.mesh import TensorMesh

RUN = {"chains": 2, "warmup": 300, "samples": 1000}
Z = 4.5  # Monte-Carlo tolerance in standard errors (several cells are checked at once)


@pytest.fixture(scope="module")
def pair():
    """Two adjacent 100 m cubes 150-250 m deep under a line of 6 stations: strongly correlated columns."""
    mesh = TensorMesh.uniform((0.0, 0.0, -250.0), (100.0, 100.0, 100.0), (2, 1, 1))
    x = np.linspace(-100.0, 300.0, 6)
    stations = np.stack([x, np.full(6, 50.0), np.full(6, 5.0)], axis=1)
    return np.asarray(sensitivity_matrix(mesh, stations, dtype="float64"))


def _grid_moments(matrix, data, std, log_prior, lower, upper, n=801):
    """Posterior mean, std and kurtosis per cell of a 2-cell problem by the midpoint rule on ``n^2`` points."""
    edges = [np.linspace(lo, hi, n + 1) for lo, hi in zip(lower, upper)]
    axes = [0.5 * (e[1:] + e[:-1]) for e in edges]
    a, b = np.meshgrid(*axes, indexing="ij")
    points = np.stack([a.ravel(), b.ravel()], axis=1)
    log_post = -0.5 * np.sum(((points @ matrix.T - data) / std) ** 2, axis=1) + log_prior(points)
    weights = np.exp(log_post - log_post.max())
    weights /= weights.sum()
    mean = weights @ points
    centred = points - mean
    variance = weights @ centred**2
    return mean, np.sqrt(variance), (weights @ centred**4) / variance**2


def _assert_moments(result, mean, sd, kurtosis):
    """MCMC mean and std per cell within Z standard errors of the exact values."""
    draws = result.draws
    assert np.all(np.abs(result.mean - mean) < Z * sd / np.sqrt(result.ess_bulk))
    ess_squares = az.ess(az.convert_to_dataset({"x": (draws - mean) ** 2}))["x"].values
    # Var of a sample variance is (kurtosis - 1) sigma^4 / n; the std's relative error is half of it.
    std_error = 0.5 * np.sqrt((kurtosis - 1) / ess_squares)
    assert np.all(np.abs(result.std / sd - 1) < Z * std_error + 1e-3)


def _assert_mixed(result, ess=200):
    assert result.rhat_max < 1.05
    assert result.ess_bulk_min > ess and result.ess_tail_min > ess / 2
    assert result.divergences == 0
    assert result.draws.shape == (RUN["chains"], RUN["samples"], result.draws.shape[-1])


def test_prior_densities_are_normalised_and_match_their_draws():
    grid = np.linspace(-600.0, 900.0, 100_001)
    step = grid[1] - grid[0]
    priors = [NormalPrior(80.0, 20.0), BoxPrior(-50.0, 250.0), MixturePrior(20.0, 200.0, 60.0, 0.3),
              MixturePrior(20.0, 200.0, 60.0, 0.3, -50.0, 250.0)]
    for index, prior in enumerate(priors):
        density = np.exp(np.asarray(prior.log_density(jnp.asarray(grid)[:, None])))
        assert np.sum(density) * step == pytest.approx(1.0, abs=2e-4)
        draws = np.asarray(prior.sample(jax.random.key(index), (50_000, 1)))[:, 0]
        mean = np.sum(grid * density) * step
        sd = np.sqrt(np.sum((grid - mean) ** 2 * density) * step)
        assert abs(draws.mean() - mean) < 4.5 * sd / np.sqrt(50_000)
        assert draws.std() == pytest.approx(sd, rel=0.02)
        bounds = prior.interval()
        if bounds is not None:
            lower, upper = (float(v) for v in bounds)
            assert draws.min() >= lower and draws.max() <= upper
            assert prior.log_density(jnp.array([lower - 1.0])) == -np.inf
    # Batches of configurations: one value per configuration.
    box = BoxPrior(jnp.array([0.0, 10.0]), jnp.array([1.0, 30.0]))
    values = box.log_density(jnp.array([[0.5, 20.0], [0.5, 40.0], [0.2, 11.0]]))
    np.testing.assert_allclose(values, [-np.log(20.0), -np.inf, -np.log(20.0)])


def test_invalid_priors_are_refused():
    with pytest.raises(InputError, match="lower < upper"):
        BoxPrior(1.0, 0.0)
    with pytest.raises(InputError, match="body_fraction"):
        MixturePrior(10.0, 100.0, 20.0, 1.5)
    with pytest.raises(InputError, match="both bounds"):
        MixturePrior(10.0, 100.0, 20.0, 0.5, lower=0.0)
    with pytest.raises(InputError, match="std"):
        NormalPrior(0.0)


def test_normal_prior_matches_the_exact_gaussian_posterior():
    """24 cells under 12 stations: NUTS mean and std against ``(G^T W G + I/s^2)^-1``."""
    mesh = TensorMesh.uniform((0.0, 0.0, -200.0), (100.0, 100.0, 100.0), (4, 3, 2))
    x, y = np.meshgrid(np.linspace(50.0, 350.0, 4), np.linspace(50.0, 250.0, 3))
    stations = np.stack([x.ravel(), y.ravel(), np.full(x.size, 10.0)], axis=1)
    matrix = np.asarray(sensitivity_matrix(mesh, stations, dtype="float64"))
    rng = np.random.default_rng(0)
    prior_std, std = 100.0, np.full(12, 0.01)
    data = matrix @ rng.normal(0.0, prior_std, mesh.n_cells) + std * rng.normal(size=12)
    covariance = np.linalg.inv(matrix.T @ (matrix / std[:, None] ** 2) + np.eye(mesh.n_cells) / prior_std**2)
    mean = covariance @ matrix.T @ (data / std**2)
    sd = np.sqrt(np.diag(covariance))
    assert np.max(sd) / np.min(sd) > 5  # the data constrain some cells far more than others

    result = sample_posterior(matrix, data, std, NormalPrior(prior_std), jax.random.key(1), **RUN)
    _assert_mixed(result)
    _assert_moments(result, mean, sd, np.full(mesh.n_cells, 3.0))
    # The whole covariance, in the prior's units: correlations too.
    empirical = np.cov(result.draws.reshape(-1, mesh.n_cells).T)
    assert np.max(np.abs(empirical - covariance)) < 0.15 * np.max(np.diag(covariance))
    np.testing.assert_allclose(result.laplace_centre, mean, rtol=1e-8, atol=1e-8 * np.abs(mean).max())
    assert result.steps > 0 and result.warmup_steps > 0 and result.run_s > 0


def test_box_prior_draws_stay_in_bounds_and_match_quadrature(pair):
    """Per-cell bounds that the data push against: the posterior piles up at the upper bounds."""
    lower, upper = np.array([0.0, 50.0]), np.array([200.0, 180.0])
    std = np.full(6, 0.02)
    data = pair @ np.array([230.0, 200.0])
    result = sample_posterior(pair, data, std, BoxPrior(lower, upper), jax.random.key(2), **RUN)
    _assert_mixed(result)
    assert np.all(result.draws >= lower) and np.all(result.draws <= upper)

    def log_prior(points):
        return np.sum(stats.uniform(lower, upper - lower).logpdf(points), axis=1)

    mean, sd, kurtosis = _grid_moments(pair, data, std, log_prior, lower, upper)
    assert np.all(upper - mean < 1.5 * sd)  # truncation matters
    _assert_moments(result, mean, sd, kurtosis)


def _mixture_log_prior(background_std, body_mean, body_std, fraction, lower=-np.inf, upper=np.inf):
    background = stats.truncnorm(lower / background_std, upper / background_std, 0.0, background_std)
    body = stats.truncnorm((lower - body_mean) / body_std, (upper - body_mean) / body_std, body_mean, body_std)
    return lambda points: np.sum(np.logaddexp(np.log1p(-fraction) + background.logpdf(points),
                                              np.log(fraction) + body.logpdf(points)), axis=1)


def test_truncated_mixture_prior_matches_quadrature(pair):
    """Bounds that cut the body component (20 % of its mass): the renormalised components matter."""
    settings = (20.0, 200.0, 60.0, 0.3)
    lower, upper = -50.0, 250.0
    std = np.full(6, 0.005)
    data = pair @ np.array([200.0, 20.0])
    result = sample_posterior(pair, data, std, MixturePrior(*settings, lower, upper), jax.random.key(3), **RUN)
    _assert_mixed(result)
    assert np.all(result.draws >= lower) and np.all(result.draws <= upper)
    mean, sd, kurtosis = _grid_moments(pair, data, std, _mixture_log_prior(*settings, lower, upper),
                                       [lower, lower], [upper, upper])
    _assert_moments(result, mean, sd, kurtosis)


def test_mixture_prior_matches_quadrature(pair):
    """Overlapping background and body components, no bounds: a non-Gaussian posterior."""
    settings = (40.0, 150.0, 60.0, 0.3)
    std = np.full(6, 0.01)
    data = pair @ np.array([150.0, 0.0])
    result = sample_posterior(pair, data, std, MixturePrior(*settings), jax.random.key(4), **RUN)
    _assert_mixed(result)
    mean, sd, kurtosis = _grid_moments(pair, data, std, _mixture_log_prior(*settings), [-400.0] * 2, [700.0] * 2,
                                       n=1001)
    assert np.any(np.abs(kurtosis - 3) > 0.3)  # not a Gaussian posterior
    _assert_moments(result, mean, sd, kurtosis)


def test_dense_mass_vectorized_chains_and_thinning(pair):
    lower, upper = np.array([0.0, 50.0]), np.array([200.0, 180.0])
    std = np.full(6, 0.02)
    data = pair @ np.array([230.0, 200.0])
    result = sample_posterior(pair, data, std, BoxPrior(lower, upper), jax.random.key(6), chains=2, warmup=300,
                              samples=2000, thinning=2, dense_mass=True, chain_method="vectorized")
    assert result.draws.shape == (2, 1000, 2)
    assert result.rhat_max < 1.05 and result.ess_bulk_min > 200 and result.divergences == 0
    assert result.step_size.shape == (2,)
    mean, sd, kurtosis = _grid_moments(pair, data, std, lambda p: np.zeros(len(p)), lower, upper)
    _assert_moments(result, mean, sd, kurtosis)


def test_cost_estimate_refuses_large_problems_before_any_work():
    small = estimate_cost(40, 20, chains=2, warmup=300, samples=300)
    large = estimate_cost(20_000, 2_000, chains=4, warmup=1000, samples=1000)
    assert small.gradient_evaluations == 2 * 600 * (2**5 - 1)
    assert small.worst_case_gradient_evaluations == 2 * 600 * 1023
    assert large.seconds > 3600 > small.seconds
    assert estimate_cost(500, 100, dense_mass=True).flops_per_gradient > estimate_cost(500, 100).flops_per_gradient
    check_cost(small, max_seconds=600)
    with pytest.raises(InputError, match="too large .* 20000 cells x 2000 stations"):
        check_cost(large, max_seconds=600)
    matrix = np.zeros((2_000, 20_000), np.float32)
    with pytest.raises(InputError, match="too large"):
        sample_posterior(matrix, np.zeros(2_000), np.ones(2_000), NormalPrior(1.0), jax.random.key(0),
                         chains=4, warmup=1000, samples=1000, max_seconds=600)
