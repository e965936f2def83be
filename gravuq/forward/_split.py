"""The forward operator split by stations over the devices of several processes.

Conventions (SPEC section 1): metres, z elevation positive up; density contrast in kg/m^3; gz in
mGal, **positive downward**; rows in mGal per kg/m^3 (Eotvos for gradient components), cells in
the mesh's C order. Memory in bytes (MiB and GiB in messages).

A problem whose dense operator does not fit on one host can still run on several: the stations
are cut into ``D`` contiguous blocks of ``B = ceil(n / D)`` stations, one block per device of a
one-axis device mesh named ``"stations"``, and each device holds only its block's rows (a dense
``B x cells`` matrix, or the chunks of a matrix-free operator, which rebuild those rows only).
With ``G_d`` the rows of block ``d``::

    forward(m) = [G_0 m; G_1 m; ...]             (each device its block, then gathered)
    adjoint(r) = sum_d G_d^T r_d                 (each device its block, then summed: psum)

Both run in :func:`jax.shard_map`. ``forward`` returns the whole predicted data on every device
(an all-gather of ``members x n`` numbers, small beside the ``n x cells`` rows) so that everything
indexed by station outside the operator (residuals, chi^2, the Gauss-Newton products and the
conjugate-gradient dot products, the probes of the diagonal) stays whole and replicated: the sums
over stations are then the same sums as on one process, and no code outside the operator needs a
collective. The members are not split (every device trains all of them on its stations).

A block past the last station repeats it (padding): its outputs are dropped and its residuals are
zero, so it changes nothing. Several components keep their component-major order: each block holds
its stations of every component.

Every product is a collective: every process calls it at the same point of the run, as the
training does; a process alone (writing outputs) must not.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ..errors import InputError
from ._build import GIB, estimate_memory, make_operator
from ._kernel import linear_map
from ._operator import DenseOperator, ForwardOperator, MatrixFreeOperator, StackedOperator, matrix_free_operator
from ._operator import _forward_impl as _matrix_free_rows_forward
from ._rows import Rows, default_chunk, dense_from_rows, make_rows

#: The name of the device-mesh axis the stations are split along.
STATION_AXIS = "stations"
#: ``[forward] split`` values.
SPLITS = ("auto", "stations", "none")


def _local(blocks):
    """A device's block operator inside ``shard_map`` (its leaves without the device axis)."""
    return jax.tree.map(lambda leaf: leaf[0], blocks)


def _block_forward(operator: ForwardOperator, density):
    """``operator.forward`` without the matrix-free operator's custom VJP, which ``shard_map``
    cannot trace (the split operator's own custom VJP, outside, makes the gradient its adjoint)."""
    if isinstance(operator, MatrixFreeOperator):
        return _matrix_free_rows_forward(density, operator)
    if isinstance(operator, StackedOperator):
        return jnp.concatenate([_block_forward(part, density) for part in operator.parts], axis=-1)
    return operator.forward(density)


class SplitOperator(ForwardOperator):
    """The sensitivity with its stations split over the devices of ``mesh`` (see the module notes).

    ``blocks`` is a block operator (dense, matrix-free, or stacked components of either) whose
    every array leaf has a leading device axis split along ``"stations"``:
    device ``d`` holds block ``d`` only. ``stations`` stations of ``components`` components,
    ``block`` stations per device, ``cells`` cells.
    """

    blocks: ForwardOperator
    mesh: Mesh = eqx.field(static=True)
    stations: int = eqx.field(static=True)
    block: int = eqx.field(static=True)
    cells: int = eqx.field(static=True)
    components: int = eqx.field(static=True, default=1)

    @property
    def rows(self):
        raise AttributeError("a SplitOperator's rows are spread over the devices of several processes")

    @property
    def devices(self) -> int:
        return int(self.mesh.devices.size)

    @property
    def dtype(self) -> np.dtype:
        return self.blocks.dtype

    @property
    def kind(self) -> str:
        return self.blocks.kind

    @property
    def n_stations(self) -> int:
        """Rows of the whole operator: stations times components (the data vector's length)."""
        return self.stations * self.components

    @property
    def n_cells(self) -> int:
        return self.cells

    def forward(self, density):
        """gz in mGal (positive down) of density contrasts in kg/m^3, whole, on every device."""
        return _split_forward(density, self)

    def adjoint(self, residual):
        """The transpose: each device's block of residuals through its rows, summed over devices."""
        return _split_adjoint(residual, self)

    def dense(self, dtype="float64", chunk_size: int = 256):
        raise InputError("the sensitivity is split over several processes ([forward] split): no process holds it "
                         "whole; use a method or prior that works through its products")

    @property
    def stored_bytes(self) -> int:
        """Bytes this process holds of the operator, its devices' blocks: the dense rows, or a
        matrix-free block's station indices and the shared offset tables."""
        return int(sum(shard.data.nbytes for leaf in jax.tree.leaves(self.blocks) if hasattr(leaf, "addressable_shards")
                       for shard in leaf.addressable_shards))

    def local_blocks(self) -> list[int]:
        """The blocks (device positions in the mesh) this process holds."""
        return [d for d, device in enumerate(self.mesh.devices.flat) if device.process_index == jax.process_index()]

    def record(self) -> dict:
        """What this process holds, for the log and metrics.json."""
        held = [d for d in self.local_blocks() if d * self.block < self.stations]
        first = min(held) * self.block if held else 0
        stop = min((max(held) + 1) * self.block, self.stations) if held else 0
        return {"split": "stations", "devices": self.devices, "stations": self.stations, "stations_per_device":
                self.block, "process_stations": [first + 1, stop], "process_rows": (stop - first) * self.components,
                "process_bytes": self.stored_bytes, "kind": self.kind}

    def describe(self) -> str:
        record = self.record()
        first, stop = record["process_stations"]
        rows = f"{record['process_rows']} rows of {self.n_cells} cells"
        if self.kind == "matrix_free":  # rebuilt chunk by chunk at each product, never stored
            held = f"applies the rows of stations {first}..{stop} of {self.stations} ({rows}, rebuilt by chunks"
        else:
            held = f"holds the rows of stations {first}..{stop} of {self.stations} ({rows}"
        return (f"the {self.kind} operator's stations are split over {self.devices} devices: this process {held}, "
                f"{record['process_bytes'] / 2**20:.3g} MiB)")


def _split_forward_impl(density, operator: SplitOperator):
    batch = density.shape[:-1]
    flat = density.reshape(-1, operator.n_cells)
    local = jax.shard_map(lambda blocks, x: _block_forward(_local(blocks), x), mesh=operator.mesh,
                          in_specs=(PartitionSpec(STATION_AXIS), PartitionSpec()),
                          out_specs=PartitionSpec(None, STATION_AXIS), check_vma=False)(operator.blocks, flat)
    whole = jax.lax.with_sharding_constraint(local, NamedSharding(operator.mesh, PartitionSpec()))
    # (members, device, component, station in block) -> (members, component, station)
    d, c, b = operator.devices, operator.components, operator.block
    whole = whole.reshape(-1, d, c, b).transpose(0, 2, 1, 3).reshape(-1, c, d * b)[:, :, : operator.stations]
    return whole.reshape(*batch, operator.n_stations)


def _split_adjoint(residual, operator: SplitOperator):
    batch = residual.shape[:-1]
    d, c, b = operator.devices, operator.components, operator.block
    flat = residual.reshape(-1, c, operator.stations)
    padded = jnp.zeros((flat.shape[0], c, d * b), flat.dtype).at[:, :, : operator.stations].set(flat)
    padded = padded.reshape(-1, c, d, b).transpose(0, 2, 1, 3).reshape(-1, d * c * b)

    def block_adjoint(blocks, r):  # the matrix-free scan starts from zeros: unchecked replication (check_vma)
        return jax.lax.psum(_local(blocks).adjoint(r), STATION_AXIS)

    total = jax.shard_map(block_adjoint, mesh=operator.mesh,
                          in_specs=(PartitionSpec(STATION_AXIS), PartitionSpec(None, STATION_AXIS)),
                          out_specs=PartitionSpec(), check_vma=False)(operator.blocks, padded)
    return total.reshape(*batch, operator.n_cells)


_split_forward = linear_map(_split_forward_impl, _split_adjoint)


def _block_rows(rows: Rows, stations: np.ndarray) -> Rows:
    """``rows`` for ``stations`` (indices) only: their node indices; the offsets and tables shared."""
    index = jnp.asarray(stations)
    return eqx.tree_at(lambda r: (r.index_x, r.index_y, r.index_z), rows,
                       (rows.index_x[index], rows.index_y[index], rows.index_z[index]))


def share_bytes(estimate, n_stations: int, devices: int, local_devices: int) -> float:
    """Bytes of one process's share (a :class:`MemoryEstimate`'s dense operator of
    ``n_stations`` stations split over ``devices`` devices, ``local_devices`` blocks of
    ``ceil(n_stations / devices)`` stations held here): its rows plus one chunk of kernel work."""
    per_station = (estimate.dense_bytes - estimate.matrix_free_bytes) / max(n_stations, 1)
    return local_devices * -(-n_stations // devices) * per_station + estimate.matrix_free_bytes


def split_plan(mesh, stations, mode: str, dtype: str, chunk_size: int | None, limit_bytes: int | None,
               components: tuple[str, ...], split: str, devices: int, local_devices: int) -> str | None:
    """Whether to split the operator's stations over ``devices`` devices (``local_devices`` of
    them this process's), and as which operator: ``"dense"``, ``"matrix_free"`` or None (build
    it whole, :func:`make_operator`).

    ``split = "auto"`` splits a dense operator (``mode`` ``"dense"``, or ``"auto"`` without an
    FFT operator that fits) when the whole does not fit in the memory limit but one process's
    share does; ``"stations"`` splits every dense or matrix-free operator; ``"none"`` never.
    An :class:`InputError` names the key when the share does not fit either, or ``mode = "fft"``
    is asked to be split (it holds no rows).
    """
    if split == "none" or (split == "auto" and devices < 2) or mode not in ("auto", "dense", "matrix_free", "fft"):
        return None
    chunk = chunk_size or default_chunk(mesh)
    estimate = estimate_memory(mesh, len(stations), dtype, chunk, limit_bytes, stations, len(components))
    limit = estimate.limit_bytes
    share = share_bytes(estimate, len(stations), devices, local_devices)
    if mode == "fft" or (mode == "auto" and estimate.fft_bytes is not None and estimate.fft_bytes <= limit):
        if split == "stations" and mode == "fft":
            raise InputError("[forward] split = 'stations' applies to mode = 'dense' or 'matrix_free' (the FFT "
                             "operator holds no rows to split); set split = 'auto' or 'none', or another mode")
        return None
    if mode == "matrix_free":
        return "matrix_free" if split == "stations" else None
    whole_fits = estimate.dense_bytes <= limit
    if whole_fits and split == "auto":
        return None
    if share <= limit:
        return "dense"
    if mode == "auto":
        return "matrix_free" if split == "stations" else None
    raise InputError(f"[forward] mode = 'dense' does not fit in memory even split over {devices} devices: each "
                     f"process's share needs {share / GIB:.3g} GiB, more than the {limit / GIB:.3g} GiB allowed "
                     f"({estimate.describe()}); use mode = 'matrix_free' or 'auto', more processes, or raise "
                     "[forward] memory_limit_gb")


def split_operator(mesh, stations, mode: str, dtype="float32", chunk_size: int | None = None,
                   memory_limit_bytes: int | None = None, components: tuple[str, ...] = ("gz",),
                   devices=None) -> SplitOperator:
    """The operator of ``mode`` (``"dense"`` or ``"matrix_free"``, see :func:`split_plan`) with
    its stations split over ``devices`` (default ``jax.devices()``, those of every process):
    each process builds and holds only its devices' blocks of rows.

    ``stations`` ``(n, 3)`` in metres (z up); ``components`` as for :func:`make_operator`.
    """
    stations = np.asarray(stations, dtype=np.float64).reshape(-1, 3)
    devices = jax.devices() if devices is None else list(devices)
    count, n = len(devices), len(stations)
    block = -(-n // count)
    chunk = chunk_size or default_chunk(mesh)
    if mode == "matrix_free":  # the working set checked (and the chunk shrunk) as for one process
        whole, _ = make_operator(mesh, stations, "matrix_free", dtype, chunk_size, memory_limit_bytes, components)
        parts = whole.parts if isinstance(whole, StackedOperator) else (whole,)
        rows_of = [part.rows for part in parts]
        chunk = int(parts[0].chunks.shape[1])
    else:
        rows_of = [make_rows(mesh, stations, component=component) for component in components]
    mesh_devices = Mesh(np.asarray(devices), (STATION_AXIS,))

    def block_operator(d: int) -> ForwardOperator:
        index = np.minimum(np.arange(d * block, (d + 1) * block), n - 1)
        parts = []
        for rows in rows_of:
            local = _block_rows(rows, index)
            if mode == "matrix_free":
                parts.append(matrix_free_operator(local, chunk, dtype))
            else:
                parts.append(DenseOperator(matrix=dense_from_rows(local, dtype, chunk, stations[index])))
        return parts[0] if len(parts) == 1 else StackedOperator(parts=tuple(parts), components=tuple(components))

    blocks = _lay_out(block_operator, mesh_devices)
    return SplitOperator(blocks=blocks, mesh=mesh_devices, stations=n, block=block, cells=mesh.n_cells,
                         components=len(components))


def _lay_out(block_operator, mesh: Mesh):
    """One global operator from the blocks of this process's devices: each array leaf gets a
    leading device axis split along ``"stations"`` (built from the local blocks only)."""
    sharding = NamedSharding(mesh, PartitionSpec(STATION_AXIS))
    local = [(d, device) for d, device in enumerate(mesh.devices.flat) if device.process_index == jax.process_index()]
    built = [(device, jax.tree.flatten(block_operator(d))) for d, device in local]
    treedef = built[0][1][1]
    leaves = []
    for position, first in enumerate(built[0][1][0]):
        if not hasattr(first, "shape"):
            leaves.append(first)
            continue
        shape = (mesh.devices.size, *first.shape)
        pieces = [jax.device_put(jnp.asarray(flat[position])[None], device) for device, (flat, _) in built]
        leaves.append(jax.make_array_from_single_device_arrays(shape, sharding, pieces))
    return jax.tree.unflatten(treedef, leaves)


def split_devices(operator) -> int:
    """How many devices ``operator``'s stations are split over (1: not split)."""
    inner = _unwrapped(operator)
    return inner.devices if isinstance(inner, SplitOperator) else 1


def split_record(operator) -> dict | None:
    """What this process holds of a split ``operator`` (see :meth:`SplitOperator.record`), or None."""
    inner = _unwrapped(operator)
    return inner.record() if isinstance(inner, SplitOperator) else None


def _unwrapped(operator):
    while hasattr(operator, "inner"):  # the air-cell mask around it
        operator = operator.inner
    return operator


__all__ = ["SPLITS", "STATION_AXIS", "SplitOperator", "share_bytes", "split_devices", "split_operator", "split_plan",
           "split_record"]
