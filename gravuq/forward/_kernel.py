"""The kernel's leaf pieces that every operator shares: the SI -> mGal factor, the corner sum, the
local frame, and linear maps whose gradient is their adjoint.

Conventions (SPEC section 1): metres, z elevation positive up; density contrast in kg/m^3; gz in
mGal (1 mGal = 1e-5 m/s^2), **positive downward**. Sensitivities are in mGal per kg/m^3.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..constants import GRAVITATIONAL_CONSTANT, SI_TO_MGAL

#: mGal per kg/m^3 per metre of corner sum. ``node_potential_gz``'s corner sum is already
#: positive downward, so the sign convention needs no flip here; this is the one SI -> mGal step.
SENSITIVITY_SCALE = GRAVITATIONAL_CONSTANT * SI_TO_MGAL


def local_frame_origin(mesh, stations: np.ndarray) -> np.ndarray:
    """The point that all kernels measure from: the survey's horizontal centre at the mesh top.

    ``stations`` is ``(n, 3)`` in metres. Returned as ``(x, y, z)`` in metres. Working relative to
    it keeps UTM coordinates (x ~ 5e5, y ~ 7e6 m) from costing float precision.
    """
    stations = np.asarray(stations, dtype=np.float64)
    centre_x = 0.5 * (stations[:, 0].min() + stations[:, 0].max())
    centre_y = 0.5 * (stations[:, 1].min() + stations[:, 1].max())
    return np.array([centre_x, centre_y, mesh.nodes_z[-1]])


def corner_sum(values: Float[Array, "*batch nz1 ny1 nx1"]) -> Float[Array, "*batch nz ny nx"]:
    """The alternating 8-corner sum over node values: upper minus lower along each axis.

    The x difference is a product with a (nx, nx + 1) difference matrix (exact: entries are 0 and
    +-1) because XLA would otherwise fuse the kernel into each corner slice and evaluate it 8
    times per cell, the very cost the nodes save (measured: 4x slower).
    """
    n = values.shape[-1] - 1
    difference = jnp.eye(n + 1, dtype=values.dtype)[1:] - jnp.eye(n + 1, dtype=values.dtype)[:-1]
    along_x = jnp.einsum("...x,ix->...i", values, difference)
    return jnp.diff(jnp.diff(along_x, axis=-2), axis=-3)


def linear_map(apply, transpose):
    """``f(density, operator) = apply(density, operator)`` whose gradient is ``transpose``.

    The operators are linear in density, so reverse mode needs only their adjoint: a custom VJP
    keeps autodiff from storing the rows (or spectra) built inside ``apply``. Training code that
    needs forward-mode products calls the operator's ``forward`` on tangents directly.
    """

    @eqx.filter_custom_vjp
    def function(density, operator):
        return apply(density, operator)

    @function.def_fwd
    def forward(perturbed, density, operator):
        return apply(density, operator), None

    @function.def_bwd
    def backward(residuals, cotangent, perturbed, density, operator):
        return transpose(cotangent, operator).astype(density.dtype)

    return function


__all__ = ["SENSITIVITY_SCALE", "corner_sum", "linear_map", "local_frame_origin"]
