"""Node offsets of stations: the distinct values of ``node - station`` along each axis and, per
station, where each node's offset sits among them; and the cheapest way to build rows from them.
NumPy only: shared by the JAX rows (``_rows``) and the NumPy exact products (``_exact``), so both
evaluate the kernel at the very same offsets.

Conventions (SPEC section 1): metres, z elevation positive up; offsets are node minus station,
in a local frame (:func:`~gravuq.forward._kernel.local_frame_origin`) that keeps UTM coordinates
from costing precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import _components
from ._kernel import local_frame_origin

#: A table of distinct offsets is used when it needs at most this fraction of the direct
#: node evaluations and at most this many entries.
_TABLE_FRACTION = 0.25
_TABLE_MAX_ENTRIES = 50_000_000
#: Offsets that agree to this fraction of the extent are one (and within it of 0, exactly 0) for
#: the gradient components. Tighter than gz's 1e-9: just above the ground, a gradient varies on
#: the scale of the station's height over a cell edge (the lift of ``_components``), so a
#: station 1e-8 m beside an edge must not be moved onto it. 1e-11 still merges the float noise
#: of UTM coordinates (about 1e-9 m at 7e6 m) over extents from about 100 m.
_GRADIENT_RELATIVE = 1e-11


def _distinct_offsets(station_values: np.ndarray, nodes: np.ndarray, relative: float = 1e-9):
    """Distinct values of ``node - station`` along one axis and, per station, the index of each node.

    Returns ``(offsets (u,), index (n_stations, n_nodes))`` with ``offsets[index[s, i]]`` equal
    to ``nodes[i] - station_values[s]`` within ``relative`` of the axis extent (float64 noise
    only; the gradient components use a tighter one, see :data:`_GRADIENT_RELATIVE`).
    """
    # Stations that share a coordinate (a grid: 100 values for 10^4 stations) share their
    # offsets: work on the distinct values, in the order of their first appearance, so that
    # the first occurrence of each offset (its representative) is the one all stations would give.
    _, first_station, station_inverse = np.unique(station_values, return_index=True, return_inverse=True)
    order = np.argsort(first_station, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    raw = nodes[None, :] - station_values[first_station[order]][:, None]
    tolerance = relative * max(np.ptp(nodes), np.abs(raw).max(), 1.0)
    keys = np.round(raw / tolerance).astype(np.int64)
    unique_keys, first, inverse = np.unique(keys.ravel(), return_index=True, return_inverse=True)
    offsets = raw.ravel()[first]
    # A station within rounding of a node plane is on it: exactly 0, so that the face rules of
    # the diagonal gradient components (which compare with 0) see it there.
    offsets[unique_keys == 0] = 0.0
    return offsets, inverse.reshape(raw.shape).astype(np.int32)[rank[station_inverse.ravel()]]


@dataclass(frozen=True)
class NodeOffsets:
    """Where the stations' node offsets sit, per axis, and how to build rows from them.

    Attributes
    ----------
    offsets
        ``(x, y, z)``: the distinct node-minus-station offsets along each axis, metres, float64
        (z lifted for the gradient components, see :func:`gravuq.forward._components.lift`).
    index
        ``(x, y, z)``: ``(n_stations, n_nodes)`` int32 positions of each node's offset.
    way
        ``"direct"``, ``"table"`` or ``"toeplitz"`` (see :class:`gravuq.forward._rows.Rows`).
    faces
        Whether a station may sit on a cell face normal to the component's axis.
    """

    offsets: tuple[np.ndarray, np.ndarray, np.ndarray]
    index: tuple[np.ndarray, np.ndarray, np.ndarray]
    way: str
    faces: bool


def node_offsets(mesh, stations: np.ndarray, way: str | None = None, component: str = "gz") -> NodeOffsets:
    """The stations' node offsets (see :class:`NodeOffsets`) and the cheapest way to build rows:
    ``table`` when the distinct offset triples are few (at most :data:`_TABLE_FRACTION` of the
    direct evaluations and :data:`_TABLE_MAX_ENTRIES`), ``toeplitz`` when moreover every
    station's offsets are consecutive entries, else ``direct``; ``way`` forces one.

    ``stations`` is ``(n, 3)`` x, y, z in metres, z elevation positive up; ``component`` one of
    ``gz`` or ``gxx, gxy, gxz, gyy, gyz, gzz``.
    """
    _components.check_component(component)
    stations = np.asarray(stations, dtype=np.float64)
    origin = local_frame_origin(mesh, stations)
    local = stations - origin
    nodes = (mesh.nodes_x - origin[0], mesh.nodes_y - origin[1], mesh.nodes_z - origin[2])
    relative = 1e-9 if component == "gz" else _GRADIENT_RELATIVE
    per_axis = [_distinct_offsets(local[:, axis], nodes[axis], relative) for axis in range(3)]
    table_entries = math.prod(offsets.size for offsets, _ in per_axis)
    direct_entries = stations.shape[0] * math.prod(n.size for n in nodes)
    consecutive = all(np.all(np.diff(index, axis=1) == 1) for _, index in per_axis)
    if way is None:
        if table_entries > min(_TABLE_FRACTION * direct_entries, _TABLE_MAX_ENTRIES):
            way = "direct"
        else:
            way = "toeplitz" if consecutive else "table"
    if way == "toeplitz" and not consecutive:
        raise ValueError("the Toeplitz way needs stations on the mesh lattice over uniform cells")
    (ox, ix), (oy, iy), (oz, iz) = per_axis
    oz = _components.lift(component, oz, max(float(np.ptp(n)) for n in nodes))
    faces = _components.faces_possible(component, ox, oy, oz)
    return NodeOffsets((ox, oy, oz), (ix, iy, iz), way, faces)


__all__ = ["NodeOffsets", "node_offsets"]
