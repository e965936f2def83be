"""The measured components gravuq models: gz and the six gravity-gradient components.

Conventions (SPEC section 1): metres, x easting, y northing, z elevation positive up; density
contrast in kg/m^3. ``gz`` is in mGal (1 mGal = 1e-5 m/s^2), **positive downward**; the
gradients ``gxx, gxy, gxz, gyy, gyz, gzz`` are in Eotvos (1 E = 1e-9 s^-2) with the signs of
Harmonica's ``g_ee, g_en, g_ez, g_nn, g_nz, g_zz``: ``gxz`` and ``gyz`` with z downward
(``gxz = d(gz)/dx``), ``gzz = -d(gz)/dz`` positive above a positive mass (see ``_prism_tensor``).

Each component is a corner function (its node potential) evaluated once per mesh node, the
alternating corner sum over each cell, and one SI -> unit factor. A diagonal gradient component
is discontinuous across the faces normal to its axis: the corner sum gives the limit from
smaller coordinate, and :func:`cells` adds the jump ``4 pi G`` (per kg/m^3) where a station lies
exactly on the open upper face of a cell, so every face gives the limit from **outside** (as
Harmonica). A station exactly on a horizontal node plane (a ground station on the mesh top, or
on the top of a buried cell) is moreover evaluated :data:`LIFT` times the mesh extent above it
(:func:`lift`): the gradients of the cells whose edges and vertices it sits on are not defined
there (Harmonica gives NaN), their limit from above is, and it is what a ground station measures.
The lift is 1e-30 of the extent (a few 1e-27 m: representable, since the offsets are small
numbers near 0, yet far below any distance from a station to an edge): the value differs from
the exact limit from above by about ``lift / distance to the nearest cell edge``, below float64
rounding, and the sum over cells keeps Laplace's identity ``gxx + gyy + gzz = 0`` at every such
station.

Every function here takes the array module ``xp`` (``jax.numpy`` by default, or ``numpy`` for the
exact one-off products of ``_exact``): the same formula and the same face rule for both.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..constants import COMPONENT_UNITS, COMPONENTS
from ._kernel import SENSITIVITY_SCALE, array_module, corner_sum
from ._prism import node_potential_gz
from ._prism_tensor import (
    TENSOR_SENSITIVITY_SCALE,
    node_potential_gxx,
    node_potential_gxy,
    node_potential_gxz,
    node_potential_gyy,
    node_potential_gyz,
    node_potential_gzz,
)

if TYPE_CHECKING:  # jaxtyping's Array imports JAX; the annotations are never evaluated
    from jaxtyping import Array, Float

#: Every component a survey may hold, in the order files and outputs list them.
ALL_COMPONENTS = COMPONENTS

#: The unit of each component's data and std.
UNITS = COMPONENT_UNITS

_POTENTIALS = {"gz": node_potential_gz, "gxx": node_potential_gxx, "gxy": node_potential_gxy,
               "gxz": node_potential_gxz, "gyy": node_potential_gyy, "gyz": node_potential_gyz,
               "gzz": node_potential_gzz}

#: The axis (0 = x, 1 = y, 2 = z) of each diagonal component: its face jump is normal to it.
_DIAGONAL_AXIS = {"gxx": 0, "gyy": 1, "gzz": 2}


#: A station on a horizontal node plane is evaluated this fraction of the mesh extent above it.
LIFT = 1e-30


def lift(component: str, offsets_z, extent: float):
    """Node-minus-station z offsets (metres) with exact zeros moved to ``-LIFT * extent`` for the
    gradient components (the station just above the plane); gz (continuous) is left as it is."""
    offsets_z = np.asarray(offsets_z, dtype=np.float64)
    if check_component(component) == "gz":
        return offsets_z
    return np.where(offsets_z == 0, -LIFT * max(extent, 1.0), offsets_z)


def check_component(component: str) -> str:
    """``component`` if it is one of :data:`ALL_COMPONENTS`, else a ValueError naming them."""
    if component not in _POTENTIALS:
        raise ValueError(f"unknown component {component!r}; expected one of {', '.join(ALL_COMPONENTS)}")
    return component


def node_potential(component: str):
    """The corner function of ``component`` (offsets corner minus station, metres, z up)."""
    return _POTENTIALS[check_component(component)]


def scale(component: str) -> float:
    """The component's unit per kg/m^3 per unit of corner sum: mGal for gz, Eotvos otherwise."""
    return SENSITIVITY_SCALE if check_component(component) == "gz" else TENSOR_SENSITIVITY_SCALE


def face_jump(component: str, offsets_x, offsets_y, offsets_z, xp=None):
    """The face correction of each cell, unit per kg/m^3 (0 off faces), or None for components
    that are continuous across faces (gz and the off-diagonal gradients).

    ``offsets_*`` are node minus station, ``(..., n + 1)`` along each axis (metres, z up). A
    cell gets ``4 pi G`` (in Eotvos) when the station is on its upper plane along the
    component's axis and strictly between its planes along the other two: the corner sum is the
    inside limit there, the jump turns it into the outside one.
    """
    axis = _DIAGONAL_AXIS.get(check_component(component))
    if axis is None:
        return None

    def on_upper(offsets):
        return offsets[..., 1:] == 0

    def between(offsets):
        return (offsets[..., :-1] < 0) & (offsets[..., 1:] > 0)

    masks = [on_upper(o) if a == axis else between(o) for a, o in enumerate((offsets_x, offsets_y, offsets_z))]
    mx, my, mz = masks
    face = mz[..., :, None, None] & my[..., None, :, None] & mx[..., None, None, :]
    return array_module(xp).where(face, TENSOR_SENSITIVITY_SCALE * 4.0 * math.pi, 0.0)


def cells(component: str, offsets_x: Float[Array, "*batch nx1"], offsets_y: Float[Array, "*batch ny1"],
          offsets_z: Float[Array, "*batch nz1"], faces: bool = True, xp=None) -> Float[Array, "*batch nz ny nx"]:
    """``component`` of every cell per unit density (mGal or Eotvos per kg/m^3), from node offsets.

    ``offsets_*`` are node minus station coordinates, metres, increasing along each axis, with
    any common leading batch axes (stations). Use float64: the corner sum cancels large terms.
    ``faces = False`` skips the face rule, for callers that know no offset along the
    component's axis is 0 (see :func:`faces_possible`). ``xp``: ``jax.numpy`` (default) or ``numpy``.
    """
    values = node_potential(component)(offsets_x[..., None, None, :], offsets_y[..., None, :, None],
                                       offsets_z[..., :, None, None], xp=xp)
    return table_cells(component, values, offsets_x, offsets_y, offsets_z, faces, xp)


def table_cells(component: str, table, offsets_x, offsets_y, offsets_z, faces: bool = True, xp=None):
    """As :func:`cells`, from node values already gathered from a table (``(..., nz1, ny1, nx1)``)."""
    total = scale(component) * corner_sum(table, xp)
    jump = face_jump(component, offsets_x, offsets_y, offsets_z, xp) if faces else None
    return total if jump is None else total + jump


def faces_possible(component: str, offsets_x, offsets_y, offsets_z) -> bool:
    """Whether any station can lie on a face normal to the component's axis: an offset of exactly
    0 along it (numpy arrays of every offset). False for gz and the off-diagonal components."""
    axis = _DIAGONAL_AXIS.get(check_component(component))
    return axis is not None and bool(np.any(np.asarray((offsets_x, offsets_y, offsets_z)[axis]) == 0))


__all__ = ["ALL_COMPONENTS", "LIFT", "UNITS", "cells", "check_component", "face_jump", "faces_possible", "lift",
           "node_potential",
           "scale", "table_cells"]
