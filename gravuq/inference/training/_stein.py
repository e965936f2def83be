"""Stein variational gradient descent directions (Liu & Wang 2016), in weight or function space.

Given particles ``x_i`` (rows) and the scores ``s_i = grad log p(x_i)``, the SVGD direction is

    phi(x_i) = (1/n) sum_j [ k(x_j, x_i) s_j + grad_{x_j} k(x_j, x_i) ]

with the RBF kernel ``k(x, y) = exp(-|x - y|^2 / h)`` and the median heuristic
``h = median(|x_i - x_j|^2) / log(n + 1)``. The first term drives particles up the posterior,
the second repels them from each other. For one particle the direction is the score: SVGD is
then gradient ascent to the MAP.

In function space (Wang et al. 2019, "Function space particle optimization") the particles are
the members' density fields at the cells (kg/m^3) and the direction is pulled back to each
member's weights through its network; this avoids the collapse of weight-space kernels in high
dimension, where all distances look alike. References: Liu & Wang (2016), arXiv:1608.04471;
Zhang & Curtis (2020), arXiv:1908.08356.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float


class SteinKernel(eqx.Module):
    """An RBF Stein kernel with the median bandwidth; ``space`` is ``"function"`` or ``"weight"``."""

    space: str = eqx.field(static=True, default="function")

    def direction(self, particles: Float[Array, "n d"], scores: Float[Array, "n d"]) -> Float[Array, "n d"]:
        """The SVGD direction for each particle (rows), same units as the scores."""
        n = particles.shape[0]
        norms = jnp.sum(particles**2, axis=1)
        squared = jnp.maximum(norms[:, None] + norms[None, :] - 2.0 * particles @ particles.T, 0.0)
        if n > 1:
            off_diagonal = squared[np.triu_indices(n, 1)]
            bandwidth = jnp.median(off_diagonal) / jnp.log(n + 1.0)
            bandwidth = jnp.where(bandwidth > 0, bandwidth, 1.0)
        else:
            bandwidth = jnp.asarray(1.0, particles.dtype)
        kernel = jnp.exp(-squared / bandwidth)  # symmetric: kernel[j, i] = k(x_j, x_i)
        driving = kernel.T @ scores
        # sum_j grad_{x_j} k(x_j, x_i) = (2 / h) (x_i sum_j k_ji - sum_j k_ji x_j)
        repulsion = (2.0 / bandwidth) * (particles * kernel.sum(axis=0)[:, None] - kernel.T @ particles)
        return (driving + repulsion) / n
