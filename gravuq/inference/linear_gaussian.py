"""The linear-Gaussian algebra on the voxel grid: exact posterior moments, draws, randomised-MAP
solutions and the evidence, from one factorisation of the station system.

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

from .prior import GaussianPrior


@dataclass(frozen=True)
class GaussianPosterior:
    """Exact posterior moments and draws (kg/m^3): ``mean``, ``variance`` and ``prior_variance``
    ``(cells,)``; ``draws`` ``(count, cells)``; ``prior_draws`` the ``m0`` behind them."""

    mean: np.ndarray
    variance: np.ndarray
    prior_variance: np.ndarray
    draws: np.ndarray
    prior_draws: np.ndarray


def station_system(matrix, std, prior: GaussianPrior):
    """``(G C, L)``: the rows of ``G C`` (stations, cells) and the Cholesky factor of the station
    system ``S = G C G^T + diag(std^2)`` (mGal^2)."""
    gc = prior.covariance_apply(matrix)  # rows of G C, (stations, cells)
    return gc, jnp.linalg.cholesky(gc @ matrix.T + jnp.diag(std**2))


def _mean_and_reduction(matrix, data, std, prior: GaussianPrior):
    """``(G C, L, mean, R)``: :func:`station_system`, the posterior mean ``C G^T S^-1 d`` and
    ``R = L^-1 G C``, so that the posterior covariance is ``C - R^T R``."""
    gc, factor = station_system(matrix, std, prior)
    mean = gc.T @ jsl.cho_solve((factor, True), data)
    return gc, factor, mean, jsl.solve_triangular(factor, gc, lower=True)


@jax.jit
def _posterior(matrix, data, std, prior: GaussianPrior, prior_draws, noise):
    gc, factor, mean, reduction = _mean_and_reduction(matrix, data, std, prior)
    variance = prior.variance() - jnp.sum(reduction**2, axis=0)
    innovations = data[None, :] + noise - prior_draws @ matrix.T
    draws = prior_draws + jsl.cho_solve((factor, True), innovations.T).T @ gc
    return mean, jnp.maximum(variance, 0.0), draws


@jax.jit
def _rml(matrix, std, prior: GaussianPrior, anchors, targets):
    gc, factor = station_system(matrix, std, prior)
    innovations = targets - anchors @ matrix.T
    return anchors + jsl.cho_solve((factor, True), innovations.T).T @ gc


@jax.jit
def gaussian_moments(matrix, data, std, prior: GaussianPrior):
    """Exact posterior mean and marginal variance (kg/m^3, (kg/m^3)^2) and the log evidence
    ``log N(d; 0, G C G^T + diag(std^2))`` for the dense ``matrix`` (mGal per kg/m^3)."""
    _, factor, mean, reduction = _mean_and_reduction(matrix, data, std, prior)
    whitened = jsl.solve_triangular(factor, data, lower=True)
    variance = jnp.maximum(prior.variance() - jnp.sum(reduction**2, axis=0), 0.0)
    log_evidence = (-0.5 * whitened @ whitened - jnp.sum(jnp.log(jnp.diag(factor)))
                    - 0.5 * data.size * jnp.log(2.0 * jnp.pi))
    return mean, variance, log_evidence


@jax.jit
def _dense_posterior(matrix, data, std, prior: GaussianPrior):
    gc, _, mean, reduction = _mean_and_reduction(matrix, data, std, prior)
    covariance = prior.covariance_apply(jnp.eye(gc.shape[1], dtype=gc.dtype)) - reduction.T @ reduction
    return mean, 0.5 * (covariance + covariance.T)


def gaussian_covariance(matrix, data, std, prior: GaussianPrior) -> tuple[np.ndarray, np.ndarray]:
    """The exact posterior mean (kg/m^3) and full covariance ``C - C G^T S^-1 G C`` ((kg/m^3)^2,
    ``(cells, cells)``, float64: cells^2 x 8 bytes) for the dense ``matrix`` (mGal per kg/m^3)."""
    as64 = lambda a: jnp.asarray(a, jnp.float64)  # noqa: E731
    mean, covariance = _dense_posterior(as64(matrix), as64(data), as64(std), prior)
    return np.asarray(mean), np.asarray(covariance)


@jax.jit
def _predictive(matrix, data, std, prior: GaussianPrior, held):
    gc, factor = station_system(matrix, std, prior)
    cross = prior.covariance_apply(held) @ matrix.T  # H C G^T, (held, stations)
    mean = cross @ jsl.cho_solve((factor, True), data)
    reduction = jsl.solve_triangular(factor, cross.T, lower=True)
    variance = jnp.sum(prior.covariance_apply(held) * held, axis=1) - jnp.sum(reduction**2, axis=0)
    return mean, jnp.maximum(variance, 0.0)


def gaussian_predictive(matrix, data, std, prior: GaussianPrior, held_matrix) -> tuple[np.ndarray, np.ndarray]:
    """The exact posterior-predictive mean and variance (mGal, mGal^2) of the noise-free field at
    other stations, whose sensitivity is ``held_matrix`` (mGal per kg/m^3): ``H m`` under the
    posterior of ``data`` (``matrix``, ``std`` in mGal, ``prior``), ``H C G^T S^-1 d`` and
    ``diag(H C H^T - H C G^T S^-1 G C H^T)``. Add the noise of a new observation to the variance
    to score predictions of observed values."""
    as64 = lambda a: jnp.asarray(a, jnp.float64)  # noqa: E731
    mean, variance = _predictive(as64(matrix), as64(data), as64(std), prior, as64(held_matrix))
    return np.asarray(mean), np.asarray(variance)


def rml_solutions(matrix, std, prior: GaussianPrior, anchors, targets) -> np.ndarray:
    """The exact randomised-MAP solutions ``argmin |(G m - d_k) / std|^2 + |C^(-1/2) (m - a_k)|^2``
    for anchors ``a_k`` ``(members, cells)`` kg/m^3 and data ``d_k`` ``(members, stations)`` mGal:
    ``m_k = a_k + C G^T S^-1 (d_k - G a_k)`` (float64, dense ``matrix`` in mGal per kg/m^3)."""
    as64 = lambda a: jnp.asarray(a, jnp.float64)  # noqa: E731
    return np.asarray(_rml(as64(matrix), as64(std), prior, as64(anchors), as64(targets)))


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


__all__ = ["GaussianPosterior", "gaussian_moments", "gaussian_posterior", "gaussian_predictive", "rml_solutions", "station_system"]
