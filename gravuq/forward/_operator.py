"""One forward-operator interface, and the dense and matrix-free operators behind it (the FFT
operator for gridded stations lives in ``_fft.py``; :func:`gravuq.forward.make_operator` chooses).

Conventions (SPEC section 1): station and mesh coordinates in metres (z elevation, positive
up), density contrast in kg/m^3, gz in mGal (1 mGal = 1e-5 m/s^2), **positive downward**. The
sensitivity ``G[station, cell]`` is in mGal per kg/m^3 so that ``gz = G @ density`` (for a
gradient component, Eotvos per kg/m^3 with Harmonica's signs; :class:`StackedOperator` stacks
components). Densities
are flat vectors in the mesh's C order of ``(nz, ny, nx)``.

Every operator is linear and has the same verbs: ``forward`` (kg/m^3 at cells -> mGal at
stations), ``adjoint`` (its exact transpose), ``dense(dtype)`` (the whole matrix, built from the
float64 kernel, never from a float32 copy) and ``stored_bytes``. Leading batch axes (ensemble
members) are batched, so one product serves every member. Gradients of ``forward`` use
``adjoint`` (a custom VJP), so training never stores rows; second-order training calls
``forward`` and ``adjoint`` on tangents and cotangents explicitly.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from ._kernel import linear_map
from ._rows import Rows, chunked_indices, dense_from_rows


class ForwardOperator(eqx.Module):
    """The sensitivity as a linear operator (abstract): gz (mGal, positive down) of density
    contrasts (kg/m^3). Subclasses hold ``rows`` (the float64 row builder every exact product or
    dense copy is made from) and a static storage ``dtype``."""

    # Subclasses hold ``rows: Rows`` (a field; an AbstractVar would put it first in __init__).

    @property
    @abc.abstractmethod
    def dtype(self) -> np.dtype:
        """The storage and product dtype."""

    @property
    def n_stations(self) -> int:
        return self.rows.n_stations

    @property
    def n_cells(self) -> int:
        nz, ny, nx = self.rows.mesh_shape
        return nz * ny * nx

    @property
    @abc.abstractmethod
    def kind(self) -> str:
        """``"dense"``, ``"matrix_free"`` or ``"fft"``."""

    @abc.abstractmethod
    def forward(self, density: Float[Array, "*batch cell"]) -> Float[Array, "*batch station"]:
        """gz in mGal (positive down) of density contrasts in kg/m^3."""

    @abc.abstractmethod
    def adjoint(self, residual: Float[Array, "*batch station"]) -> Float[Array, "*batch cell"]:
        """The transpose, ``G^T r``: mGal at stations to kg/m^3-dual values at cells."""

    def dense(self, dtype="float64", chunk_size: int = 256) -> jnp.ndarray:
        """The whole sensitivity ``(n_stations, n_cells)``, mGal per kg/m^3, built from the
        float64 kernel and stored in ``dtype``. Callers check the memory first
        (:meth:`gravuq.forward.MemoryBudget.require`)."""
        return dense_from_rows(self.rows, dtype, chunk_size)

    @property
    def stored_bytes(self) -> int:
        """Bytes of the arrays this operator holds."""
        return int(sum(leaf.nbytes for leaf in jax.tree.leaves(self) if hasattr(leaf, "nbytes")))


class DenseOperator(ForwardOperator):
    """The sensitivity held as one dense matrix ``matrix[station, cell]`` (mGal per kg/m^3)."""

    matrix: Float[Array, "station cell"]
    rows: Rows | None = None

    @property
    def dtype(self):
        return self.matrix.dtype

    @property
    def n_stations(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_cells(self) -> int:
        return self.matrix.shape[1]

    @property
    def kind(self) -> str:
        return "dense"

    def forward(self, density: Float[Array, "*batch cell"]) -> Float[Array, "*batch station"]:
        """gz in mGal (positive down) of density contrasts in kg/m^3."""
        # G @ m as a column (a plain matrix product) rather than m @ G^T: for a batch of members
        # XLA's CPU backend runs the latter as a transposed-operand product 1.6 times slower
        # (real survey, 1630 x 40,128 float32, 10 members: 0.034 s against 0.020 s).
        return jnp.matmul(self.matrix, density.astype(self.matrix.dtype)[..., None])[..., 0]

    def adjoint(self, residual: Float[Array, "*batch station"]) -> Float[Array, "*batch cell"]:
        """The transpose: mGal at stations to kg/m^3-dual values at cells, ``G^T r``."""
        return residual.astype(self.matrix.dtype) @ self.matrix

    def dense(self, dtype="float64", chunk_size: int = 256) -> jnp.ndarray:
        if jnp.dtype(dtype) == self.matrix.dtype or self.rows is None:
            return self.matrix.astype(dtype)
        return super().dense(dtype, chunk_size)


class MatrixFreeOperator(ForwardOperator):
    """The sensitivity applied chunk by chunk without ever holding the whole matrix.

    Each call rebuilds the rows of ``chunk`` stations at a time, so peak memory is about
    ``chunk x (nodes + cells)`` numbers, whatever the survey size.
    """

    rows: Rows
    chunks: Int[Array, "n_chunks chunk"]
    valid: Float[Array, "n_chunks chunk"]
    storage: np.dtype = eqx.field(static=True)

    @property
    def dtype(self) -> np.dtype:
        return self.storage

    @property
    def kind(self) -> str:
        return "matrix_free"

    def forward(self, density: Float[Array, "*batch cell"]) -> Float[Array, "*batch station"]:
        """gz in mGal (positive down) of density contrasts in kg/m^3."""
        return _matrix_free_forward(density, self)

    def adjoint(self, residual: Float[Array, "*batch station"]) -> Float[Array, "*batch cell"]:
        """The transpose, ``G^T r``, accumulated over station chunks."""
        return _matrix_free_adjoint(residual, self)


def matrix_free_operator(rows: Rows, chunk_size: int, dtype="float32") -> MatrixFreeOperator:
    """A :class:`MatrixFreeOperator` over ``rows`` with ``chunk_size`` stations per chunk."""
    chunks, valid = chunked_indices(rows.n_stations, chunk_size)
    return MatrixFreeOperator(rows=rows, chunks=chunks, valid=valid, storage=np.dtype(dtype))


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


_matrix_free_forward = linear_map(_forward_impl, _matrix_free_adjoint)


class StackedOperator(ForwardOperator):
    """Several components at the same stations as one linear operator: the rows are the
    component-major blocks ``[G_c1; G_c2; ...]`` (all stations of ``components[0]``, then all of
    ``components[1]``, ...), each block in its component's unit per kg/m^3 (gz: mGal, positive
    down; gradients: Eotvos, Harmonica's signs). So a joint inversion sees one operator, one
    data vector and one std vector stacked the same way.

    ``parts`` are the per-component operators (all dense, all matrix-free or all FFT, one dtype);
    ``forward`` concatenates their outputs, ``adjoint`` sums their adjoints of the blocks.
    """

    parts: tuple
    components: tuple[str, ...] = eqx.field(static=True)

    @property
    def rows(self):  # the per-component row builders are the parts'
        raise AttributeError("a StackedOperator has one Rows per component: see .parts")

    @property
    def dtype(self) -> np.dtype:
        return self.parts[0].dtype

    @property
    def kind(self) -> str:
        return self.parts[0].kind

    @property
    def n_stations(self) -> int:
        """Rows of the operator: stations times components (the data vector's length)."""
        return sum(part.n_stations for part in self.parts)

    @property
    def n_cells(self) -> int:
        return self.parts[0].n_cells

    @property
    def block_size(self) -> int:
        """Stations per component block."""
        return self.parts[0].n_stations

    def forward(self, density: Float[Array, "*batch cell"]) -> Float[Array, "*batch datum"]:
        """Every component (mGal or Eotvos) of density contrasts in kg/m^3, component-major."""
        return jnp.concatenate([part.forward(density) for part in self.parts], axis=-1)

    def adjoint(self, residual: Float[Array, "*batch datum"]) -> Float[Array, "*batch cell"]:
        """The transpose: the sum of each block's adjoint."""
        n = self.block_size
        total = self.parts[0].adjoint(residual[..., :n])
        for index, part in enumerate(self.parts[1:], start=1):
            total = total + part.adjoint(residual[..., index * n:(index + 1) * n])
        return total

    def dense(self, dtype="float64", chunk_size: int = 256) -> jnp.ndarray:
        """The stacked sensitivity ``(components x stations, cells)`` from the float64 kernels."""
        return jnp.concatenate([part.dense(dtype, chunk_size) for part in self.parts], axis=0)

    @property
    def stored_bytes(self) -> int:
        return int(sum(part.stored_bytes for part in self.parts))


__all__ = ["DenseOperator", "ForwardOperator", "MatrixFreeOperator", "StackedOperator", "matrix_free_operator"]
