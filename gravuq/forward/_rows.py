"""Rows of the sensitivity for any chunk of stations, node-shared, from the float64 kernel.

Conventions (SPEC section 1): station and mesh coordinates in metres (z elevation, positive up),
density contrast in kg/m^3, gz in mGal, **positive downward**; ``G[station, cell]`` is in mGal
per kg/m^3 with cells in the mesh's C order of ``(nz, ny, nx)``. The same rows are built for a
gravity-gradient component (``component = "gxx"`` ... ``"gzz"``, see ``_components``): then in
Eotvos (1 E = 1e-9 s^-2) per kg/m^3, Harmonica's signs (``gxz``, ``gyz`` z down, ``gzz > 0``
above a positive mass), the diagonal ones the limit from outside on cell faces.

One kernel evaluation per mesh node per station, then the alternating corner sum as differences
along each axis: 8 times fewer evaluations than per cell. Every evaluation runs in float64 (the
corner sum cancels large terms: in float32 it errs by about 3e-3 of max |gz|). When stations take
few distinct x, y and z values (a grid at one or a few heights), the node offsets ``node -
station`` along each axis take few distinct values too: the kernel is evaluated once per distinct
offset triple (a lookup table) and each row is gathered from it. The offsets and the choice of
way are ``_offsets``'s (NumPy, shared with the exact products of ``_exact``).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from ..errors import InputError
from . import _components
from ._offsets import node_offsets


class Rows(eqx.Module):
    """Builds rows of the sensitivity of one ``component`` (gz: mGal per kg/m^3; a gradient
    component: Eotvos per kg/m^3) for any chunk of stations.

    ``index_*[s]`` hold, for station ``s``, the position of each node's offset in ``offsets_*``.
    Three ways, chosen once from the geometry:

    - ``direct``: the kernel at every node of every station, then the corner sums;
    - ``table``: the kernel once per distinct offset triple (``table``), rows gathered from it;
    - ``toeplitz``: each station's node offsets are consecutive entries of the offset lists
      (stations on the mesh's lattice, uniform cells), so the corner sums are taken once on the
      table (``cell_table``) and every row is one contiguous slice of it: the sensitivity is
      block-Toeplitz.
    """

    offsets_x: Float[Array, " ux"]
    offsets_y: Float[Array, " uy"]
    offsets_z: Float[Array, " uz"]
    index_x: Int[Array, "station node_x"]
    index_y: Int[Array, "station node_y"]
    index_z: Int[Array, "station node_z"]
    table: Float[Array, "uz uy ux"] | None
    way: str = eqx.field(static=True)
    component: str = eqx.field(static=True, default="gz")
    #: Whether a station may sit on a cell face normal to the component's axis (the face rule
    #: is then evaluated; skipped otherwise, as for ground stations lifted above the top).
    faces: bool = eqx.field(static=True, default=True)

    @property
    def mesh_shape(self) -> tuple[int, int, int]:
        return (self.index_z.shape[1] - 1, self.index_y.shape[1] - 1, self.index_x.shape[1] - 1)

    @property
    def n_stations(self) -> int:
        return self.index_x.shape[0]

    def __call__(self, stations: Int[Array, " chunk"]) -> Float[Array, "chunk nz ny nx"]:
        nz, ny, nx = self.mesh_shape
        ix, iy, iz = self.index_x[stations], self.index_y[stations], self.index_z[stations]
        if self.way == "toeplitz":
            def one(start_z, start_y, start_x):
                return jax.lax.dynamic_slice(self.table, (start_z, start_y, start_x), (nz, ny, nx))
            return jax.vmap(one)(iz[:, 0], iy[:, 0], ix[:, 0])
        ox, oy, oz = self.offsets_x[ix], self.offsets_y[iy], self.offsets_z[iz]
        if self.way == "table":
            values = self.table[iz[:, :, None, None], iy[:, None, :, None], ix[:, None, None, :]]
            return _components.table_cells(self.component, values, ox, oy, oz, self.faces)
        return _components.cells(self.component, ox, oy, oz, self.faces)


def make_rows(mesh, stations: np.ndarray, way: str | None = None, component: str = "gz") -> Rows:
    """Choose and set up the cheapest way to build rows (see :class:`Rows` and
    :func:`gravuq.forward._offsets.node_offsets`); ``way`` forces one.

    ``stations`` is ``(n, 3)`` x, y, z in metres, z elevation positive up; ``component`` one of
    ``gz`` (mGal) or ``gxx, gxy, gxz, gyy, gyz, gzz`` (Eotvos, Harmonica's signs).
    """
    found = node_offsets(mesh, stations, way, component)
    ix, iy, iz = found.index
    ox, oy, oz = (jnp.asarray(o, dtype=jnp.float64) for o in found.offsets)
    table = None
    if found.way == "table":
        potential = _components.node_potential(component)
        table = jax.jit(potential)(ox[None, None, :], oy[None, :, None], oz[:, None, None])
    elif found.way == "toeplitz":  # consecutive offsets: the cell values of the table are every row's
        table = jax.jit(_components.cells, static_argnums=0)(component, ox, oy, oz)
    return Rows(ox, oy, oz, jnp.asarray(ix), jnp.asarray(iy), jnp.asarray(iz), table, found.way, component,
                found.faces)


def chunked_indices(n_stations: int, chunk_size: int) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Station indices padded to whole chunks ``(n_chunks, chunk)`` and the mask of real ones."""
    chunk_size = max(1, min(chunk_size, n_stations))
    n_chunks = -(-n_stations // chunk_size)
    padded = np.arange(n_chunks * chunk_size)
    valid = padded < n_stations
    padded = np.where(valid, padded, 0).reshape(n_chunks, chunk_size)
    return jnp.asarray(padded, dtype=jnp.int32), jnp.asarray(valid.reshape(n_chunks, chunk_size))


def default_chunk(mesh, budget_bytes: float = 64e6) -> int:
    """Stations per chunk of rows so that one chunk's float64 node values take at most about
    ``budget_bytes``, rounded down to a power of two.

    Small chunks keep a chunk's node values near the cache, and powers of two suit XLA's loop
    partitioning: on the 1600 scattered stations x 32,000 cells of ``benchmarks/forward.py`` a
    chunk of 32 stations (64 MB) built the matrix 1.5-2 times faster than one of 184 (256 MB),
    and chunks of 24 or 48 were slower than 16, 32 or 64 (measured on 2 cores).
    """
    nz, ny, nx = mesh.shape
    per_station = 4 * 8 * (nx + 1) * (ny + 1) * (nz + 1) + 8 * mesh.n_cells
    stations = int(max(1, min(4096, budget_bytes // per_station)))
    return 1 << (stations.bit_length() - 1)


@eqx.filter_jit
def _dense_matrix(rows: Rows, chunks, n_stations: int, dtype) -> jnp.ndarray:
    blocks = jax.lax.map(lambda chunk: rows(chunk).reshape(chunk.shape[0], -1).astype(dtype), chunks)
    return blocks.reshape(-1, blocks.shape[-1])[:n_stations]


def dense_from_rows(rows: Rows, dtype="float64", chunk_size: int = 256, stations=None) -> jnp.ndarray:
    """The whole sensitivity ``(n_stations, n_cells)`` in mGal per kg/m^3 from ``rows``, stored in
    ``dtype`` (the kernel always runs in float64); refuses non-finite entries, naming the station
    (``stations``, ``(n, 3)`` m, are only used for that message)."""
    chunks, _ = chunked_indices(rows.n_stations, chunk_size)
    matrix = _dense_matrix(rows, chunks, rows.n_stations, jnp.dtype(dtype))
    # A guard for extreme geometry (or a dtype too narrow for it): never train on inf or NaN.
    if not bool(jnp.all(jnp.isfinite(matrix))):
        bad = int(np.flatnonzero(~np.all(np.isfinite(np.asarray(matrix)), axis=1))[0])
        where = f" (x, y, z = {np.asarray(stations)[bad].tolist()} m)" if stations is not None else ""
        raise InputError(f"the sensitivity of station {bad}{where} is not finite in {jnp.dtype(dtype).name}: "
                         "check the station and mesh coordinates and units")
    return matrix


def sensitivity_matrix(mesh, stations, dtype="float32", chunk_size: int | None = None,
                       way: str | None = None, component: str = "gz") -> jnp.ndarray:
    """The dense sensitivity ``G`` (n_stations, n_cells), mGal per kg/m^3, gz positive down (for
    ``component`` a gradient one, ``"gxx"`` ... ``"gzz"``: Eotvos per kg/m^3, Harmonica's signs).

    Parameters
    ----------
    mesh
        The tensor mesh (metres, z up).
    stations
        ``(n, 3)`` station coordinates ``x, y, z`` in metres, z elevation positive up.
    dtype
        Storage dtype of the matrix; the kernel is always evaluated in float64.
    chunk_size
        Stations built at once (memory ~ chunk x nodes x 32 bytes); by default at most about 64 MB.
    way
        Force how rows are built: ``"direct"``, ``"table"`` or ``"toeplitz"`` (see :class:`Rows`);
        by default the cheapest that the geometry allows.
    """
    stations = np.asarray(stations, dtype=np.float64).reshape(-1, 3)
    rows = make_rows(mesh, stations, way, component)
    return dense_from_rows(rows, dtype, chunk_size or default_chunk(mesh), stations)


__all__ = ["Rows", "chunked_indices", "default_chunk", "dense_from_rows", "make_rows", "sensitivity_matrix"]
