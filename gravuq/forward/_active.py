"""The forward operator of a mesh with topography: air cells (above the ground) are fixed at zero
density contrast, so they never reach the data.

Conventions (SPEC section 1): density contrast in kg/m^3 on the mesh cells (flat C order of
``(nz, ny, nx)``), gz in mGal, **positive downward**; the sensitivity in mGal per kg/m^3.

``G_active = G D`` with ``D = diag(active)`` (1 at cells whose centre lies at or below the ground,
0 at air cells): ``forward(m) = G (D m)`` and ``adjoint(r) = D G^T r``, its exact transpose, and
``dense() = G D`` (the air columns zero). Any inner operator (dense, matrix-free, FFT, stacked
components) keeps its own products; the wrapper only masks their input and output, so every
method that uses ``forward``/``adjoint``/``dense`` sees exactly the active-cell problem: with a
Gaussian prior on all cells, zero air columns make the posterior of the active cells the exact
posterior under the prior's marginal on them (an air cell's value is never seen by the data).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._operator import ForwardOperator


class ActiveCellOperator(ForwardOperator):
    """``inner`` with the air cells' columns removed (zeroed; see the module notes).

    ``active`` ``(cells,)`` is 1.0 at active cells and 0.0 at air cells, in the inner
    operator's dtype.
    """

    inner: ForwardOperator
    active: Float[Array, " cell"]

    @property
    def rows(self):
        return self.inner.rows

    @property
    def dtype(self) -> np.dtype:
        return self.inner.dtype

    @property
    def kind(self) -> str:
        return self.inner.kind

    @property
    def n_stations(self) -> int:
        return self.inner.n_stations

    @property
    def n_cells(self) -> int:
        return self.inner.n_cells

    def __getattr__(self, name):
        # Component-specific attributes of the inner operator (block_size, components, ...).
        if name in ("inner", "active") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def forward(self, density: Float[Array, "*batch cell"]) -> Float[Array, "*batch station"]:
        """gz in mGal (positive down) of density contrasts in kg/m^3, air cells taken as zero."""
        return self.inner.forward(density * self.active.astype(density.dtype))

    def adjoint(self, residual: Float[Array, "*batch station"]) -> Float[Array, "*batch cell"]:
        """The exact transpose, ``D G^T r`` (zero at air cells)."""
        values = self.inner.adjoint(residual)
        return values * self.active.astype(values.dtype)

    def dense(self, dtype="float64", chunk_size: int = 256) -> jnp.ndarray:
        """The sensitivity ``(stations, cells)`` with zero columns at air cells (mGal per kg/m^3)."""
        matrix = self.inner.dense(dtype, chunk_size)
        return matrix * self.active.astype(matrix.dtype)[None, :]

    @property
    def stored_bytes(self) -> int:
        return int(self.inner.stored_bytes + self.active.nbytes)


def active_cell_operator(operator: ForwardOperator, mesh) -> ForwardOperator:
    """``operator`` restricted to the active cells of ``mesh`` (itself when every cell is active,
    as on a mesh without topography)."""
    if not getattr(mesh, "has_topography", False):
        return operator
    active = np.asarray(mesh.active, np.float64).ravel()
    if active.all():
        return operator
    return ActiveCellOperator(operator, jnp.asarray(active, operator.dtype))


__all__ = ["ActiveCellOperator", "active_cell_operator"]
