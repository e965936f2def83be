"""The forward operator as FFT convolutions: stations on a regular grid at one height.

Conventions (SPEC section 1): metres, z elevation positive up; density contrast in kg/m^3; gz in
mGal (1 mGal = 1e-5 m/s^2), **positive downward**. Densities are flat vectors in the mesh's C
order of ``(nz, ny, nx)``; the sensitivity is in mGal per kg/m^3, as for the dense operator.

Notes
-----
Over a mesh whose cells have one width ``dx`` along x and one width ``dy`` along y (the layers
may have any thicknesses), a station at ``(xs + kx dx, ys + ky dy, h)`` sees cell ``(l, j, i)``
through a value that depends only on the layer ``l`` and the offsets ``j - ky`` and ``i - kx``:

    gz[ky, kx] = sum_l sum_{j, i} K_l[j - ky, i - kx] m[l, j, i]

so each layer's block of the sensitivity is block-Toeplitz (Toeplitz blocks), and the forward
and adjoint are 2-D discrete convolutions. Embedded in circulant matrices of ``P >= n + S - 1``
points per axis (``n`` cells, ``S`` station lattice points), they become products of FFTs with
no wrap-around, so they are exact, not approximate (e.g. Vogel 2002, *Computational Methods for
Inverse Problems*, section 5.2; Zhang & Wong 2015, Geophysics 80(2), G43-G55, for gravity).

The kernel ``K_l`` is built once in float64 from the same scalar kernel and the same corner sum
as the dense operator (one evaluation per distinct station-node offset); its FFT is stored and
the products run in the operator's dtype (float32 -> complex64). The layer sum is taken in the
frequency domain, so a forward needs ``nz`` forward FFTs and one inverse per member, the adjoint
one forward and ``nz`` inverse: ``O(nz P^2 log P)`` instead of ``O(stations x cells)``.

The stations may cover part of the mesh, reach beyond it, leave holes in their grid or repeat:
they only need to sit on one lattice of the cell widths (with any offset from the cell edges) at
one height. The convolution is computed on the lattice box that holds them and then cropped
(forward: gathered at the stations; adjoint: scattered from them).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Complex, Float, Int

from ..mesh import TensorMesh
from ._kernel import linear_map

# The lattice and the kernel table need no JAX: they live in ``_lattice`` (shared with the NumPy
# products of ``_exact``) and are re-exported here, where the FFT operator's callers find them.
from ._lattice import (  # noqa: F401  (_fft_size: for the tests of the FFT size search)
    StationLattice,
    _fft_size,
    fft_memory_bytes,
    layer_kernels,
    padded_shape,
    station_lattice,
)
from ._operator import ForwardOperator
from ._rows import Rows, make_rows


class FFTOperator(ForwardOperator):
    """The sensitivity applied as per-layer 2-D FFT convolutions (see the module notes).

    ``forward`` maps density contrasts ``(..., cells)`` in kg/m^3 to gz ``(..., stations)`` in mGal,
    positive downward; ``adjoint`` is its exact transpose. Leading axes (ensemble members) are
    batched. Gradients through ``forward`` use ``adjoint`` (a custom VJP). ``rows`` builds exact
    float64 rows (block-Toeplitz slices of one table) for ``dense``. Build it with
    :func:`fft_operator` or ``make_operator(..., mode="fft")``.
    """

    spectrum: Complex[Array, "nz py px_half"]
    station_y: Int[Array, " station"]
    station_x: Int[Array, " station"]
    rows: Rows
    mesh_shape: tuple[int, int, int] = eqx.field(static=True)
    padded_shape: tuple[int, int] = eqx.field(static=True)
    storage: np.dtype = eqx.field(static=True)

    @property
    def dtype(self) -> np.dtype:
        return self.storage

    @property
    def kind(self) -> str:
        return "fft"

    def forward(self, density: Float[Array, "*batch cell"]) -> Float[Array, "*batch station"]:
        """gz in mGal (positive down) of density contrasts in kg/m^3."""
        return _jit_forward(density, self)

    def adjoint(self, residual: Float[Array, "*batch station"]) -> Float[Array, "*batch cell"]:
        """The transpose, ``G^T r``: mGal at stations to kg/m^3-dual values at cells."""
        return _jit_adjoint(residual, self)


def _forward_impl(density, operator: FFTOperator):
    batch = density.shape[:-1]
    model = density.astype(operator.dtype).reshape(*batch, *operator.mesh_shape)
    # Zero-padded to (Py, Px) at the end; the layer sum is taken on the spectra.
    spectra = jnp.fft.rfft2(model, s=operator.padded_shape)
    field = jnp.fft.irfft2(jnp.sum(spectra * operator.spectrum, axis=-3), s=operator.padded_shape)
    return field[..., operator.station_y, operator.station_x]


def _fft_adjoint(residual, operator: FFTOperator):
    batch = residual.shape[:-1]
    _, ny, nx = operator.mesh_shape
    weights = residual.astype(operator.dtype)
    grid = jnp.zeros((*batch, *operator.padded_shape), operator.dtype)
    grid = grid.at[..., operator.station_y, operator.station_x].add(weights)
    spectra = jnp.fft.rfft2(grid)[..., None, :, :]
    # Correlation with the kernel: the transpose of the circulant convolution.
    cells = jnp.fft.irfft2(jnp.conj(operator.spectrum) * spectra, s=operator.padded_shape)[..., :ny, :nx]
    return cells.reshape(*batch, operator.n_cells)


_fft_forward = linear_map(_forward_impl, _fft_adjoint)
# One compiled program per shape when called outside a jit (gravuq forward, predict): run op by
# op, the FFTs, products and gathers each compiled on their own, about 20 programs. Inside an
# outer jit these are inlined.
_jit_forward = eqx.filter_jit(_fft_forward)
_jit_adjoint = eqx.filter_jit(_fft_adjoint)


def fft_operator(mesh: TensorMesh, stations, dtype="float32", lattice: StationLattice | None = None,
                 component: str = "gz") -> FFTOperator:
    """Build the FFT forward operator for stations on a grid at one height (gz in mGal, or the
    gradient ``component`` ``"gxx"`` ... ``"gzz"`` in Eotvos, Harmonica's signs).

    Parameters
    ----------
    mesh
        The tensor mesh (metres, z up), with one cell width along x and one along y.
    stations
        ``(n, 3)`` station ``x, y, z`` in metres, z elevation positive up, on a lattice of the
        cell widths at one height (see :func:`station_lattice`), in any order.
    dtype
        ``"float32"`` (products in complex64) or ``"float64"``; the kernel is built in float64.
    lattice
        The stations' lattice, if already found.

    Raises
    ------
    ValueError
        When the geometry is not FFT-able (the message says why).
    """
    stations = np.asarray(stations, dtype=np.float64).reshape(-1, 3)
    if lattice is None:
        lattice = station_lattice(mesh, stations)
    if isinstance(lattice, str):
        raise ValueError(lattice)
    nz, ny, nx = mesh.shape
    py, px = padded_shape(mesh, lattice.shape)
    # Reversed, the correlation kernel becomes a convolution kernel F[u] = K[n - 1 - u].
    flipped = layer_kernels(mesh, lattice, component)[:, ::-1, ::-1]
    spectrum = np.fft.rfft2(flipped, s=(py, px))
    complex_dtype = jnp.complex64 if np.dtype(dtype) == np.float32 else jnp.complex128
    index = lattice.index
    return FFTOperator(
        spectrum=jnp.asarray(spectrum, dtype=complex_dtype),
        station_y=jnp.asarray(ny - 1 + index[:, 0], dtype=jnp.int32),
        station_x=jnp.asarray(nx - 1 + index[:, 1], dtype=jnp.int32),
        rows=make_rows(mesh, stations, component=component), mesh_shape=(nz, ny, nx), padded_shape=(py, px),
        storage=np.dtype(dtype))


__all__ = ["FFTOperator", "StationLattice", "fft_memory_bytes", "fft_operator", "layer_kernels", "padded_shape",
           "station_lattice"]
