"""Gaussian priors on the voxel grid: iid or separably correlated, optionally depth-weighted.

Conventions (SPEC section 1): density contrast in kg/m^3 on arrays shaped ``(nz, ny, nx)``,
flattened in C order; lengths in metres; depth measured down from the mesh top, or from the
ground of each column on a mesh with topography.

Notes
-----
The covariance is ``C = S (Cz kron Cy kron Cx) S`` with ``S`` the diagonal of per-cell standard
deviations and ``C_axis[i, j] = exp(-|c_i - c_j| / L)`` (exponential correlation of length
``L`` between cell centres along each axis; ``L = 0`` gives the identity, an iid prior; one length along x and y, another along z). The
Kronecker form makes ``C^(1/2)``, ``C^(-1/2)`` and ``C`` cheap: three small matrix products.

Depth weighting (Li & Oldenburg 1998): with ``w(z) = (depth(z) + z0)^(-beta/2)`` the sensitivity
decay of gravity data, a prior standard deviation ``prior_std * w(z_top) / w(z)`` normalised to
``prior_std`` in the top layer lets deep cells vary as much *in the data* as shallow ones.
``z0`` is half the top layer's thickness. Tarantola (2005) for the Gaussian algebra.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ..mesh import TensorMesh


def surface_depth(mesh: TensorMesh) -> tuple[np.ndarray, float]:
    """``(depth, top)`` of a mesh with topography: each cell centre's depth below the ground of
    its column (m, ``(nz, ny, nx)``, clipped at 0 for air cells, which the data never see), and
    ``top`` the depth the weights are normalised at, half the top layer's thickness (m): the
    depth of the top layer's centre below a flat mesh top, so a flat surface at the mesh top
    gives the weights of the mesh without topography."""
    return np.maximum(mesh.depth_below_surface, 0.0), 0.5 * float(mesh.widths_z[-1])


def depth_weighting(mesh: TensorMesh, exponent: float) -> np.ndarray:
    """Li & Oldenburg depth weights ``(depth + z0)^(-exponent/2)``, shape ``(nz, ny, nx)``, 1 at
    the top layer; depth below the mesh top, or below the ground with topography
    (:func:`surface_depth`: 1 at half a top-layer thickness below the ground)."""
    z0 = 0.5 * mesh.widths_z[-1]
    if mesh.has_topography:
        depth, top = surface_depth(mesh)
        return ((depth + z0) / (top + z0)) ** (-exponent / 2.0)
    depth = mesh.nodes_z[-1] - mesh.centers_z
    weights = (depth + z0) ** (-exponent / 2.0)
    weights = weights / weights[-1]
    return np.broadcast_to(weights[:, None, None], mesh.shape).copy()


def _axis_factors(centres: np.ndarray, length: float):
    if length <= 0:
        eye = np.eye(centres.size)
        return eye, eye
    correlation = np.exp(-np.abs(centres[:, None] - centres[None, :]) / length)
    values, vectors = np.linalg.eigh(correlation)
    values = np.clip(values, 1e-12, None)
    return (vectors * np.sqrt(values)) @ vectors.T, (vectors / np.sqrt(values)) @ vectors.T


class GaussianPrior(eqx.Module):
    """A zero-mean Gaussian prior on density contrast (kg/m^3) over the mesh cells.

    ``std`` holds per-cell standard deviations (kg/m^3, shape ``(nz, ny, nx)``); ``root_*`` and
    ``inverse_root_*`` the symmetric square roots of each axis's correlation matrix.
    """

    std: Float[Array, "nz ny nx"]
    root_z: Float[Array, "nz nz"]
    root_y: Float[Array, "ny ny"]
    root_x: Float[Array, "nx nx"]
    inverse_root_z: Float[Array, "nz nz"]
    inverse_root_y: Float[Array, "ny ny"]
    inverse_root_x: Float[Array, "nx nx"]

    @classmethod
    def build(cls, mesh: TensorMesh, prior_std: float, correlation_length: float = 0.0,
              depth_exponent: float = 0.0, vertical_correlation_length: float | None = None) -> GaussianPrior:
        """``prior_std`` kg/m^3 (in the top layer when depth-weighted), correlation lengths in m
        (``correlation_length`` along x and y, ``vertical_correlation_length`` along z: the
        same as horizontal when None)."""
        std = prior_std * np.ones(mesh.shape)
        if depth_exponent > 0:
            std = std / depth_weighting(mesh, depth_exponent)
        vertical = correlation_length if vertical_correlation_length is None else vertical_correlation_length
        lengths = (vertical, correlation_length, correlation_length)
        factors = [_axis_factors(c, length) for c, length in
                   zip((mesh.centers_z, mesh.centers_y, mesh.centers_x), lengths)]
        (rz, iz), (ry, iy), (rx, ix) = factors
        as_jax = lambda a: jnp.asarray(a, dtype=jnp.float64)  # noqa: E731
        return cls(as_jax(std), as_jax(rz), as_jax(ry), as_jax(rx), as_jax(iz), as_jax(iy), as_jax(ix))

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.std.shape

    def _kron(self, fields, z, y, x):
        fields = fields.reshape(*fields.shape[:-1], *self.shape)
        out = jnp.einsum("...kji,ak,bj,ci->...abc", fields, z, y, x)
        return out.reshape(*out.shape[:-3], -1)

    def correlate(self, white: Float[Array, "*batch cell"]) -> Float[Array, "*batch cell"]:
        """``C^(1/2) w``: turns iid N(0, 1) cell values into prior draws (kg/m^3)."""
        return self.std.ravel() * self._kron(white, self.root_z, self.root_y, self.root_x)

    def whiten(self, density: Float[Array, "*batch cell"]) -> Float[Array, "*batch cell"]:
        """``C^(-1/2) m``: the prior penalty is ``|whiten(m)|^2``."""
        scaled = density / self.std.ravel().astype(density.dtype)
        z, y, x = (a.astype(density.dtype) for a in (self.inverse_root_z, self.inverse_root_y, self.inverse_root_x))
        return self._kron(scaled, z, y, x)

    def whiten_transpose(self, white: Float[Array, "*batch cell"]) -> Float[Array, "*batch cell"]:
        """The transpose of :meth:`whiten`, ``C^(-T/2) w`` (the inverse roots are symmetric)."""
        z, y, x = (a.astype(white.dtype) for a in (self.inverse_root_z, self.inverse_root_y, self.inverse_root_x))
        return self._kron(white, z, y, x) / self.std.ravel().astype(white.dtype)

    def covariance_apply(self, fields: Float[Array, "*batch cell"]) -> Float[Array, "*batch cell"]:
        """``C v`` for each row ``v`` (symmetric, so rows or columns alike)."""
        std = self.std.ravel()
        z, y, x = (r @ r for r in (self.root_z, self.root_y, self.root_x))
        return std * self._kron(std * fields, z, y, x)

    def variance(self) -> Float[Array, " cell"]:
        """Prior variance per cell, (kg/m^3)^2: the diagonal of C (the correlation has unit diagonal)."""
        return (self.std**2).ravel()

    def sample(self, key: PRNGKeyArray, count: int) -> Float[Array, "count cell"]:
        """``count`` draws from the prior, kg/m^3."""
        white = jax.random.normal(key, (count, int(np.prod(self.shape))), dtype=jnp.float64)
        return self.correlate(white)


__all__ = ["GaussianPrior", "depth_weighting", "surface_depth"]
