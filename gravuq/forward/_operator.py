"""Forward operators: dense sensitivity, matrix-free forward and adjoint, over a tensor mesh
(the FFT operator for gridded stations lives in ``_fft.py`` and is chosen here by :func:`make_operator`).

Conventions (SPEC section 1): station and mesh coordinates in metres (z elevation, positive
up), density contrast in kg/m^3, gz in mGal (1 mGal = 1e-5 m/s^2), **positive downward**. The
sensitivity ``G[station, cell]`` is in mGal per kg/m^3 so that ``gz = G @ density``. Densities
are flat vectors in the mesh's C order of ``(nz, ny, nx)``.

Three layers, as in Choclo/Harmonica: the scalar SI kernel (``_prism.py``), the vectorised layer
below (one kernel evaluation per mesh node per station, then the alternating corner sum as
differences along each axis: 8 times fewer evaluations than per cell), and the one place where
SI becomes mGal (:data:`SENSITIVITY_SCALE`).

Every kernel evaluation runs in float64 (the corner sum cancels large terms: in float32 it errs by
about 3e-3 of max |gz|); only the stored matrix and the products use the operator's ``dtype``.
Coordinates are shifted to a local frame centred on the survey before they reach JAX, so UTM
inputs (x ~ 5e5, y ~ 7e6 m) lose nothing.

When stations take few distinct x, y and z values (a grid at one or a few heights), the node
offsets ``node - station`` along each axis take few distinct values too: the kernel is evaluated
once per distinct offset triple (a lookup table) and each row is gathered from it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from ..constants import GRAVITATIONAL_CONSTANT, SI_TO_MGAL
from ..errors import InputError
from ..mesh import TensorMesh
from ._prism import node_potential_gz

#: mGal per kg/m^3 per metre of corner sum. ``node_potential_gz``'s corner sum is already
#: positive downward, so the sign convention needs no flip here; this is the one SI -> mGal step.
SENSITIVITY_SCALE = GRAVITATIONAL_CONSTANT * SI_TO_MGAL

#: A table of distinct offsets is used when it needs at most this fraction of the direct
#: node evaluations and at most this many entries.
_TABLE_FRACTION = 0.25
_TABLE_MAX_ENTRIES = 50_000_000


# -- geometry ---------------------------------------------------------------------------------
def local_frame_origin(mesh: TensorMesh, stations: np.ndarray) -> np.ndarray:
    """The point that all kernels measure from: the survey's horizontal centre at the mesh top.

    ``stations`` is ``(n, 3)`` in metres. Returned as ``(x, y, z)`` in metres.
    """
    stations = np.asarray(stations, dtype=np.float64)
    centre_x = 0.5 * (stations[:, 0].min() + stations[:, 0].max())
    centre_y = 0.5 * (stations[:, 1].min() + stations[:, 1].max())
    return np.array([centre_x, centre_y, mesh.nodes_z[-1]])


def _distinct_offsets(station_values: np.ndarray, nodes: np.ndarray):
    """Distinct values of ``node - station`` along one axis and, per station, the index of each node.

    Returns ``(offsets (u,), index (n_stations, n_nodes))`` with ``offsets[index[s, i]]`` equal
    to ``nodes[i] - station_values[s]`` within 1e-9 of the axis extent (float64 noise only).
    """
    raw = nodes[None, :] - station_values[:, None]
    tolerance = 1e-9 * max(np.ptp(nodes), np.abs(raw).max(), 1.0)
    keys = np.round(raw / tolerance).astype(np.int64)
    unique_keys, first, inverse = np.unique(keys.ravel(), return_index=True, return_inverse=True)
    return raw.ravel()[first], inverse.reshape(raw.shape).astype(np.int32)


class _Rows(eqx.Module):
    """Builds rows of the sensitivity (mGal per kg/m^3) for any chunk of stations.

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

    @property
    def mesh_shape(self) -> tuple[int, int, int]:
        return (self.index_z.shape[1] - 1, self.index_y.shape[1] - 1, self.index_x.shape[1] - 1)

    def __call__(self, stations: Int[Array, " chunk"]) -> Float[Array, "chunk nz ny nx"]:
        nz, ny, nx = self.mesh_shape
        ix, iy, iz = self.index_x[stations], self.index_y[stations], self.index_z[stations]
        if self.way == "toeplitz":
            def one(start_z, start_y, start_x):
                return jax.lax.dynamic_slice(self.table, (start_z, start_y, start_x), (nz, ny, nx))
            return jax.vmap(one)(iz[:, 0], iy[:, 0], ix[:, 0])
        if self.way == "table":
            values = self.table[iz[:, :, None, None], iy[:, None, :, None], ix[:, None, None, :]]
        else:
            values = node_potential_gz(
                self.offsets_x[ix][:, None, None, :],
                self.offsets_y[iy][:, None, :, None],
                self.offsets_z[iz][:, :, None, None],
            )
        return SENSITIVITY_SCALE * _corner_sum(values)


def _corner_sum(values: Float[Array, "*batch nz1 ny1 nx1"]) -> Float[Array, "*batch nz ny nx"]:
    """The alternating 8-corner sum over node values: upper minus lower along each axis.

    The x difference is a product with a (nx, nx + 1) difference matrix (exact: entries are 0 and
    +-1) because XLA would otherwise fuse the kernel into each corner slice and evaluate it 8
    times per cell, the very cost the nodes save (measured: 4x slower).
    """
    n = values.shape[-1] - 1
    difference = jnp.eye(n + 1, dtype=values.dtype)[1:] - jnp.eye(n + 1, dtype=values.dtype)[:-1]
    along_x = jnp.einsum("...x,ix->...i", values, difference)
    return jnp.diff(jnp.diff(along_x, axis=-2), axis=-3)


def _make_rows(mesh: TensorMesh, stations: np.ndarray, way: str | None = None) -> _Rows:
    """Choose and set up the cheapest way to build rows (see :class:`_Rows`); ``way`` forces one."""
    stations = np.asarray(stations, dtype=np.float64)
    origin = local_frame_origin(mesh, stations)
    local = stations - origin
    nodes = (mesh.nodes_x - origin[0], mesh.nodes_y - origin[1], mesh.nodes_z - origin[2])
    per_axis = [_distinct_offsets(local[:, axis], nodes[axis]) for axis in range(3)]
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
    ox, oy, oz = (jnp.asarray(o, dtype=jnp.float64) for o in (ox, oy, oz))
    table = None
    if way in ("table", "toeplitz"):
        table = jax.jit(node_potential_gz)(ox[None, None, :], oy[None, :, None], oz[:, None, None])
        if way == "toeplitz":
            table = SENSITIVITY_SCALE * jax.jit(_corner_sum)(table)
    return _Rows(ox, oy, oz, jnp.asarray(ix), jnp.asarray(iy), jnp.asarray(iz), table, way)


def _chunked_indices(n_stations: int, chunk_size: int) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Station indices padded to whole chunks ``(n_chunks, chunk)`` and the mask of real ones."""
    chunk_size = max(1, min(chunk_size, n_stations))
    n_chunks = -(-n_stations // chunk_size)
    padded = np.arange(n_chunks * chunk_size)
    valid = padded < n_stations
    padded = np.where(valid, padded, 0).reshape(n_chunks, chunk_size)
    return jnp.asarray(padded, dtype=jnp.int32), jnp.asarray(valid.reshape(n_chunks, chunk_size))


# -- operators --------------------------------------------------------------------------------
class DenseOperator(eqx.Module):
    """The sensitivity held as one dense matrix.

    ``matrix[station, cell]`` is in mGal per kg/m^3 (gz positive downward); cells in the mesh's
    flat C order of ``(nz, ny, nx)``. ``forward`` and ``adjoint`` accept leading batch axes
    (ensemble members), so one matrix product serves them all.
    """

    matrix: Float[Array, "station cell"]

    @property
    def n_stations(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_cells(self) -> int:
        return self.matrix.shape[1]

    @property
    def dtype(self):
        return self.matrix.dtype

    def forward(self, density: Float[Array, "*batch cell"]) -> Float[Array, "*batch station"]:
        """gz in mGal (positive down) of density contrasts in kg/m^3."""
        return density.astype(self.matrix.dtype) @ self.matrix.T

    def adjoint(self, residual: Float[Array, "*batch station"]) -> Float[Array, "*batch cell"]:
        """The transpose: mGal at stations to kg/m^3-dual values at cells, ``G^T r``."""
        return residual.astype(self.matrix.dtype) @ self.matrix


class MatrixFreeOperator(eqx.Module):
    """The sensitivity applied chunk by chunk without ever holding the whole matrix.

    Each call rebuilds the rows of ``chunk_size`` stations at a time, so peak memory is about
    ``chunk_size x (nodes + cells)`` numbers, whatever the survey size. Gradients through
    :meth:`forward` use :meth:`adjoint` (a custom VJP), so training never stores the rows.
    Units and conventions as :class:`DenseOperator`.
    """

    rows: _Rows
    chunks: Int[Array, "n_chunks chunk"]
    valid: Float[Array, "n_chunks chunk"]
    n_stations: int = eqx.field(static=True)
    n_cells: int = eqx.field(static=True)
    dtype: np.dtype = eqx.field(static=True)

    def forward(self, density: Float[Array, "*batch cell"]) -> Float[Array, "*batch station"]:
        """gz in mGal (positive down) of density contrasts in kg/m^3."""
        return _matrix_free_forward(density, self)

    def adjoint(self, residual: Float[Array, "*batch station"]) -> Float[Array, "*batch cell"]:
        """The transpose, ``G^T r``, accumulated over station chunks."""
        return _matrix_free_adjoint(residual, self)


def _row_block(operator: MatrixFreeOperator, chunk) -> jnp.ndarray:
    return operator.rows(chunk).reshape(chunk.shape[0], -1).astype(operator.dtype)


def _forward_impl(density, operator: MatrixFreeOperator):
    batch = density.shape[:-1]
    flat = density.reshape(-1, operator.n_cells).astype(operator.dtype)

    def one_chunk(chunk):
        return flat @ _row_block(operator, chunk).T  # (members, chunk)

    values = jax.lax.map(one_chunk, operator.chunks)  # (n_chunks, members, chunk)
    values = jnp.moveaxis(values, 1, 0).reshape(flat.shape[0], -1)[:, : operator.n_stations]
    return values.reshape(*batch, operator.n_stations)


def _matrix_free_adjoint(residual, operator: MatrixFreeOperator):
    batch = residual.shape[:-1]
    flat = residual.reshape(-1, operator.n_stations).astype(operator.dtype)
    n_chunks, chunk_size = operator.chunks.shape
    padded = jnp.zeros((flat.shape[0], n_chunks * chunk_size), operator.dtype)
    padded = padded.at[:, : operator.n_stations].set(flat).reshape(flat.shape[0], n_chunks, chunk_size)
    padded = jnp.moveaxis(padded, 1, 0)  # (n_chunks, members, chunk)

    def accumulate(total, inputs):
        chunk, weights = inputs
        return total + weights @ _row_block(operator, chunk), None

    start = jnp.zeros((flat.shape[0], operator.n_cells), operator.dtype)
    total, _ = jax.lax.scan(accumulate, start, (operator.chunks, padded))
    return total.reshape(*batch, operator.n_cells)


def linear_map(apply, transpose):
    """``f(density, operator) = apply(density, operator)`` whose gradient is ``transpose``.

    The operators are linear in density, so reverse mode needs only their adjoint: a custom VJP
    keeps autodiff from storing the rows (or spectra) built inside ``apply``.
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


_matrix_free_forward = linear_map(_forward_impl, _matrix_free_adjoint)


# -- construction -----------------------------------------------------------------------------
@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes each operator needs for one survey and mesh.

    ``fft_bytes`` is None when the geometry does not allow the FFT operator (``fft_reason`` says
    why; see :func:`gravuq.forward.station_lattice`).
    """

    dense_bytes: int
    matrix_free_bytes: int
    limit_bytes: int
    fft_bytes: int | None = None
    fft_reason: str = ""

    def describe(self) -> str:
        gib = 1024.0**3
        fft = "FFT not applicable" if self.fft_bytes is None else f"FFT {self.fft_bytes / gib:.3g} GiB"
        return (f"dense sensitivity {self.dense_bytes / gib:.3g} GiB, matrix-free working set "
                f"{self.matrix_free_bytes / gib:.3g} GiB, {fft}, limit {self.limit_bytes / gib:.3g} GiB")


def available_memory_bytes() -> int:
    """Memory this process may use: MemAvailable from /proc/meminfo, else physical memory."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def estimate_memory(mesh: TensorMesh, n_stations: int, dtype="float32", chunk_size: int = 256,
                    memory_limit_bytes: int | None = None, stations=None) -> MemoryEstimate:
    """Estimate the memory of the dense, matrix-free and FFT operators (bytes).

    The dense matrix needs ``n_stations x n_cells`` numbers of ``dtype`` plus one chunk of
    float64 kernel work; the matrix-free one a chunk of rows (float64 node values, and the rows);
    the FFT one (only with ``stations``, ``(n, 3)`` in metres, on a grid at one height) the
    kernel spectrum plus its float64 build. The default limit is 40 % of the memory available
    now, leaving room for training.
    """
    from ._fft import fft_memory_bytes, station_lattice  # _fft builds on this module's kernel pieces

    itemsize = np.dtype(dtype).itemsize
    nz, ny, nx = mesh.shape
    n_nodes = (nx + 1) * (ny + 1) * (nz + 1)
    chunk = min(chunk_size, n_stations)
    working = chunk * (3 * n_nodes * 8 + mesh.n_cells * (8 + itemsize))
    dense = n_stations * mesh.n_cells * itemsize + working
    if memory_limit_bytes is None:
        memory_limit_bytes = int(0.4 * available_memory_bytes())
    fft_bytes, fft_reason = None, "no station coordinates given"
    if stations is not None:
        lattice = station_lattice(mesh, stations)
        if isinstance(lattice, str):
            fft_reason = lattice
        else:
            fft_bytes, fft_reason = fft_memory_bytes(mesh, lattice.shape, dtype), ""
    return MemoryEstimate(int(dense), int(working), int(memory_limit_bytes), fft_bytes, fft_reason)


def _default_chunk(mesh: TensorMesh, budget_bytes: float = 256e6) -> int:
    nz, ny, nx = mesh.shape
    per_station = 4 * 8 * (nx + 1) * (ny + 1) * (nz + 1) + 8 * mesh.n_cells
    return int(max(1, min(4096, budget_bytes // per_station)))


@eqx.filter_jit
def _dense_matrix(rows: _Rows, chunks, n_stations: int, dtype) -> jnp.ndarray:
    blocks = jax.lax.map(lambda chunk: rows(chunk).reshape(chunk.shape[0], -1).astype(dtype), chunks)
    return blocks.reshape(-1, blocks.shape[-1])[:n_stations]


def sensitivity_matrix(mesh: TensorMesh, stations, dtype="float32", chunk_size: int | None = None,
                       way: str | None = None) -> jnp.ndarray:
    """The dense sensitivity ``G`` (n_stations, n_cells), mGal per kg/m^3, gz positive down.

    Parameters
    ----------
    mesh
        The tensor mesh (metres, z up).
    stations
        ``(n, 3)`` station coordinates ``x, y, z`` in metres, z elevation positive up.
    dtype
        Storage dtype of the matrix; the kernel is always evaluated in float64.
    chunk_size
        Stations built at once (memory ~ chunk x nodes x 32 bytes); by default about 256 MB.
    way
        Force how rows are built: ``"direct"``, ``"table"`` or ``"toeplitz"`` (see ``_Rows``);
        by default the cheapest that the geometry allows.
    """
    stations = np.asarray(stations, dtype=np.float64).reshape(-1, 3)
    rows = _make_rows(mesh, stations, way)
    chunks, _ = _chunked_indices(stations.shape[0], chunk_size or _default_chunk(mesh))
    matrix = _dense_matrix(rows, chunks, stations.shape[0], jnp.dtype(dtype))
    # A guard for extreme geometry (or a dtype too narrow for it): never train on inf or NaN.
    if not bool(jnp.all(jnp.isfinite(matrix))):
        bad = int(np.flatnonzero(~np.all(np.isfinite(np.asarray(matrix)), axis=1))[0])
        raise InputError(f"the sensitivity of station {bad} (x, y, z = {stations[bad].tolist()} m) is not finite "
                         f"in {jnp.dtype(dtype).name}: check the station and mesh coordinates and units")
    return matrix


def make_operator(mesh: TensorMesh, stations, mode: str = "auto", dtype="float32",
                  chunk_size: int | None = None, memory_limit_bytes: int | None = None):
    """Build the forward operator for a mesh and stations.

    Parameters
    ----------
    mesh
        The tensor mesh (metres, z up).
    stations
        ``(n, 3)`` station ``x, y, z`` in metres, z elevation positive up.
    mode
        ``"auto"``, ``"dense"``, ``"matrix_free"`` or ``"fft"``. ``auto`` takes the FFT operator
        when the geometry allows it (stations on a grid of the cell widths at one height over a
        horizontally uniform mesh: it is then both the smallest and the fastest), else the
        dense matrix when :func:`estimate_memory` says it fits under the limit, else the
        matrix-free operator. A forced ``dense`` that does not fit, or a forced ``fft`` on a
        geometry that does not allow it, is an :class:`InputError` naming why and the
        alternative.
    dtype
        Storage and product dtype (``"float32"`` or ``"float64"``); kernels run in float64.
    chunk_size, memory_limit_bytes
        Stations per chunk of rows; the memory limit (default 40 % of what is available).

    Returns
    -------
    ``(operator, estimate)``: a :class:`DenseOperator`, :class:`MatrixFreeOperator` or
    :class:`~gravuq.forward.FFTOperator` (gz in mGal per kg/m^3, positive down), and the
    :class:`MemoryEstimate`.
    """
    from ._fft import fft_operator, station_lattice  # _fft builds on this module's kernel pieces

    stations = np.asarray(stations, dtype=np.float64).reshape(-1, 3)
    chunk = chunk_size or _default_chunk(mesh)
    estimate = estimate_memory(mesh, stations.shape[0], dtype, chunk, memory_limit_bytes, stations)
    fft_fits = estimate.fft_bytes is not None and estimate.fft_bytes <= estimate.limit_bytes
    if mode == "auto":
        if fft_fits:
            mode = "fft"
        else:
            mode = "dense" if estimate.dense_bytes <= estimate.limit_bytes else "matrix_free"
    if mode == "fft":
        if estimate.fft_bytes is None:
            raise InputError(f"[forward] mode = 'fft' does not apply: {estimate.fft_reason}; "
                             "use mode = 'dense', 'matrix_free' or 'auto'")
        if not fft_fits:
            raise InputError(f"[forward] mode = 'fft' does not fit in memory ({estimate.describe()}); "
                             "use mode = 'matrix_free' or 'auto'")
        return fft_operator(mesh, stations, dtype, station_lattice(mesh, stations)), estimate
    if mode == "dense":
        if estimate.dense_bytes > estimate.limit_bytes:
            raise InputError(f"[forward] mode = 'dense' does not fit in memory ({estimate.describe()}); "
                             "use mode = 'matrix_free' or 'auto'")
        return DenseOperator(sensitivity_matrix(mesh, stations, dtype, chunk)), estimate
    if mode == "matrix_free":
        rows = _make_rows(mesh, stations)
        chunks, valid = _chunked_indices(stations.shape[0], chunk)
        operator = MatrixFreeOperator(rows, chunks, valid, stations.shape[0], mesh.n_cells, np.dtype(dtype))
        return operator, estimate
    raise InputError(f"[forward] mode: expected 'auto', 'dense', 'matrix_free' or 'fft', found '{mode}'")
