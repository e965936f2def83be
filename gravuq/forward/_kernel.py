"""The kernel's leaf pieces that every operator shares: the SI -> mGal factor, the corner sum, the
local frame, the array module, and linear maps whose gradient is their adjoint.

Conventions (SPEC section 1): metres, z elevation positive up; density contrast in kg/m^3; gz in
mGal (1 mGal = 1e-5 m/s^2), **positive downward**. Sensitivities are in mGal per kg/m^3.

The closed-form kernels (``_prism``, ``_prism_tensor``, ``_components``) are written once for
both array modules: they take ``xp``, ``jax.numpy`` (the default: traced, jitted, differentiated)
or ``numpy`` (the exact one-off products of ``_exact``, which never import JAX). This module and
those import JAX only when a JAX path runs, so that ``gravuq forward`` starts without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..constants import GRAVITATIONAL_CONSTANT, SI_TO_MGAL

if TYPE_CHECKING:  # jaxtyping's Array imports JAX; the annotations are never evaluated
    from jaxtyping import Array, Float

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


def array_module(xp=None):
    """``xp`` (``numpy`` or ``jax.numpy``), or ``jax.numpy`` when None: the kernels' default.

    JAX is imported here, on first use, not when the kernel modules are imported.
    """
    if xp is not None:
        return xp
    import jax.numpy as jnp

    return jnp


def corner_sum(values: Float[Array, "*batch nz1 ny1 nx1"], xp=None) -> Float[Array, "*batch nz ny nx"]:
    """The alternating 8-corner sum over node values: upper minus lower along each axis.

    Under JAX the x difference is a product with a (nx, nx + 1) difference matrix (exact: entries
    are 0 and +-1) because XLA would otherwise fuse the kernel into each corner slice and evaluate
    it 8 times per cell, the very cost the nodes save (measured: 4x slower). NumPy evaluates the
    node values once anyway, so there it is a plain difference (same numbers). ``xp`` as for
    :func:`array_module`.
    """
    if xp is np:
        return np.diff(np.diff(np.diff(values, axis=-1), axis=-2), axis=-3)
    jnp = array_module(xp)
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
    import equinox as eqx  # here, not at the top: the NumPy kernels import this module without JAX

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


__all__ = ["SENSITIVITY_SCALE", "array_module", "corner_sum", "linear_map", "local_frame_origin"]
