"""The exact linear-Gaussian posterior on the voxel grid: the reference for every other method.

Gravity is linear in density: ``d = G m + e`` with ``e ~ N(0, C_d)``, ``C_d = diag(sigma^2)``
(mGal^2), and a Gaussian prior ``m ~ N(0, C)`` (kg/m^3; see ``_prior.GaussianPrior``). The
posterior is Gaussian with

    mean       = C G^T S^-1 d,            S = G C G^T + C_d   (stations x stations)
    covariance = C - C G^T S^-1 G C

so one Cholesky factorisation of ``S`` (size n_stations) gives the exact mean and the exact
marginal variances ``diag(C) - sum((L^-1 G C)^2, axis=0)``. Posterior draws use Matheron's rule
(exact): ``m = m0 + C G^T S^-1 (d + e - G m0)`` with ``m0`` a prior draw and ``e`` a noise draw,
which is also what a randomised-MAP ensemble computes for a linear problem. Everything runs in
float64 on the dense sensitivity.

References: Tarantola (2005), Inverse Problem Theory, SIAM, section 3.2; resolution
``1 - C_post / C_prior`` per cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np

from ._prior import GaussianPrior


@dataclass(frozen=True)
class GaussianPosterior:
    """Exact posterior moments and draws (kg/m^3): ``mean``, ``variance`` and ``prior_variance``
    ``(cells,)``; ``draws`` ``(count, cells)``; ``prior_draws`` the ``m0`` behind them."""

    mean: np.ndarray
    variance: np.ndarray
    prior_variance: np.ndarray
    draws: np.ndarray
    prior_draws: np.ndarray


@jax.jit
def _posterior(matrix, data, std, prior: GaussianPrior, prior_draws, noise):
    gc = prior.covariance_apply(matrix)  # rows of G C, (stations, cells)
    system = gc @ matrix.T + jnp.diag(std**2)
    factor = jnp.linalg.cholesky(system)
    mean = gc.T @ jsl.cho_solve((factor, True), data)
    reduction = jsl.solve_triangular(factor, gc, lower=True)
    variance = prior.variance() - jnp.sum(reduction**2, axis=0)
    innovations = data[None, :] + noise - prior_draws @ matrix.T
    draws = prior_draws + jsl.cho_solve((factor, True), innovations.T).T @ gc
    return mean, jnp.maximum(variance, 0.0), draws


def gaussian_posterior(matrix, data, std, prior: GaussianPrior, key, draws: int = 20) -> GaussianPosterior:
    """The exact posterior for the dense sensitivity ``matrix`` (mGal per kg/m^3, float64 used),
    observed ``data`` and its ``std`` (mGal), with ``draws`` exact posterior draws from ``key``."""
    matrix = jnp.asarray(matrix, jnp.float64)
    data = jnp.asarray(data, jnp.float64)
    std = jnp.asarray(std, jnp.float64)
    prior_key, noise_key = jax.random.split(key)
    prior_draws = prior.sample(prior_key, draws)
    noise = jax.random.normal(noise_key, (draws, data.size), jnp.float64) * std
    mean, variance, samples = _posterior(matrix, data, std, prior, prior_draws, noise)
    return GaussianPosterior(np.asarray(mean), np.asarray(variance), np.asarray(prior.variance()),
                             np.asarray(samples), np.asarray(prior_draws))
