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

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Complex, Float, Int

from ..mesh import TensorMesh
from . import _components
from ._kernel import linear_map
from ._operator import ForwardOperator
from ._rows import Rows, make_rows

#: Horizontal cell widths count as one width when they agree to this fraction.
_WIDTH_TOLERANCE = 1e-9
#: Stations count as on the lattice (and at one height) within this fraction of a cell width.
#: Moving a station this far changes gz by about this fraction of its scale: below float32.
_LATTICE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class StationLattice:
    """Where stations sit on a lattice of the mesh's horizontal cell widths.

    Attributes
    ----------
    spacing
        ``(dy, dx)``: the lattice spacing, metres (the cell widths).
    start
        ``(y0, x0)``: the lattice point of index ``(0, 0)``, metres (south-west of all stations).
    height
        The stations' elevation, metres, z positive up.
    shape
        ``(Sy, Sx)``: lattice points in the box that holds the stations.
    index
        ``(n_stations, 2)`` integer ``(ky, kx)`` of each station, in the stations' order.
    """

    spacing: tuple[float, float]
    start: tuple[float, float]
    height: float
    shape: tuple[int, int]
    index: np.ndarray


def station_lattice(mesh: TensorMesh, stations) -> StationLattice | str:
    """The stations' lattice if the geometry allows the FFT operator, else why it does not.

    Parameters
    ----------
    mesh
        The tensor mesh (metres, z up); its x widths must all be equal, and its y widths.
    stations
        ``(n, 3)`` station ``x, y, z`` in metres, z elevation positive up.

    Returns
    -------
    A :class:`StationLattice`, or a one-line reason (a string) naming what is not FFT-able.
    """
    stations = np.asarray(stations, dtype=np.float64).reshape(-1, 3)
    spacing = []
    for axis, widths in (("y", mesh.widths_y), ("x", mesh.widths_x)):
        if np.ptp(widths) > _WIDTH_TOLERANCE * widths[0]:
            return (f"the mesh's cell widths along {axis} vary ({widths.min():g} to {widths.max():g} m); "
                    "the FFT operator needs one width per horizontal axis")
        spacing.append(float(np.mean(widths)))
    heights = stations[:, 2]
    if np.ptp(heights) > _LATTICE_TOLERANCE * min(spacing):
        return (f"the stations are at more than one height (z from {heights.min():g} to {heights.max():g} m); "
                "the FFT operator needs them all at one height")
    start, shape, index = [], [], []
    for column, axis, width in ((1, "y", spacing[0]), (0, "x", spacing[1])):
        values = stations[:, column]
        steps = (values - values.min()) / width
        whole = np.round(steps)
        off = np.abs(steps - whole)
        if off.max() > _LATTICE_TOLERANCE:
            row = int(np.argmax(off))
            return (f"station {row} at {axis} = {values[row]:.6g} m is {off[row]:.3g} cell widths off the "
                    f"lattice of {width:g} m through the other stations; the FFT operator needs stations on "
                    "a grid with the mesh's cell width as spacing")
        start.append(float(values.min()))
        shape.append(int(whole.max()) + 1)
        index.append(whole.astype(np.int64))
    return StationLattice(tuple(spacing), tuple(start), float(np.mean(heights)), tuple(shape),
                          np.stack(index, axis=1))


def _fft_size(minimum: int) -> int:
    """The smallest ``n >= minimum`` with no prime factor above 7 (fast for FFT libraries).

    Found by walking the products ``2^a 3^b 5^c 7^d`` up to ``2 * minimum`` (a power of two that
    large always qualifies): O(log^4 n) candidates, however large ``minimum`` is.
    """
    minimum = max(1, int(minimum))
    best = 1 << (minimum - 1).bit_length()
    power7 = 1
    while power7 < best:
        power5 = power7
        while power5 < best:
            power3 = power5
            while power3 < best:
                # The smallest power of two that lifts power3 to at least minimum.
                candidate = power3 << max(0, (-(-minimum // power3) - 1).bit_length())
                best = min(best, candidate)
                power3 *= 3
            power5 *= 5
        power7 *= 7
    return best


def padded_shape(mesh: TensorMesh, lattice_shape: tuple[int, int]) -> tuple[int, int]:
    """``(Py, Px)``: FFT points per axis, at least cells + lattice points - 1 (no wrap-around)."""
    nz, ny, nx = mesh.shape
    return _fft_size(ny + lattice_shape[0] - 1), _fft_size(nx + lattice_shape[1] - 1)


def fft_memory_bytes(mesh: TensorMesh, lattice_shape: tuple[int, int], dtype="float32") -> int:
    """Bytes of the FFT operator: the stored kernel spectrum plus the larger of its float64 build
    (about 8 arrays over the offset nodes) and one member's frequency-domain work."""
    nz, ny, nx = mesh.shape
    py, px = padded_shape(mesh, lattice_shape)
    complex_size = 2 * np.dtype(dtype).itemsize
    spectrum = nz * py * (px // 2 + 1) * complex_size
    build = 8 * 8 * (nz + 1) * (ny + lattice_shape[0]) * (nx + lattice_shape[1])
    return int(spectrum + max(build, 2 * spectrum))


def layer_kernels(mesh: TensorMesh, lattice: StationLattice, component: str = "gz") -> np.ndarray:
    """``K[l, ty, tx]``: gz in mGal (positive down) per kg/m^3 of cell ``(l, ky + ty, kx + tx)`` at
    station ``(ky, kx)``, for ``ty`` in ``[-(Sy - 1), ny - 1]`` and ``tx`` in ``[-(Sx - 1), nx - 1]``
    (array index ``t + S - 1``). Evaluated in float64 once per distinct station-node offset. For
    a gradient ``component`` (``"gxx"`` ... ``"gzz"``) the same in Eotvos per kg/m^3 (Harmonica's
    signs; translation invariant in x and y as gz is).
    """
    nz, ny, nx = mesh.shape
    (dy, dx), (y0, x0), (sy, sx) = lattice.spacing, lattice.start, lattice.shape
    # Node offsets (node - station) for node index minus station index m in [-(S - 1), n].
    offsets_y = (mesh.nodes_y[0] - y0) + dy * np.arange(-(sy - 1), ny + 1)
    offsets_x = (mesh.nodes_x[0] - x0) + dx * np.arange(-(sx - 1), nx + 1)
    offsets_z = mesh.nodes_z - lattice.height

    offsets = [np.asarray(o, dtype=np.float64) for o in (offsets_x, offsets_y, offsets_z)]
    relative = 1e-9 if component == "gz" else 1e-11  # as make_rows's (a station on a node plane is on it)
    for values in offsets:
        values[np.abs(values) <= relative * max(np.abs(values).max(), 1.0)] = 0.0
    extent = max(float(np.ptp(n)) for n in (mesh.nodes_x, mesh.nodes_y, mesh.nodes_z))
    offsets[2] = _components.lift(component, offsets[2], extent)
    as64 = (jnp.asarray(o, dtype=jnp.float64) for o in offsets)
    return np.asarray(jax.jit(_components.cells, static_argnums=0)(component, *as64))


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
