"""Stations on a lattice of the mesh's cell widths, and the per-layer block-Toeplitz kernel of
such a lattice: the parts of the FFT forward (see the notes of ``_fft``) that need no JAX,
shared by the JAX operator (``_fft``) and the NumPy exact products (``_exact``).

Conventions (SPEC section 1): metres, z elevation positive up; density contrast in kg/m^3; gz in
mGal (1 mGal = 1e-5 m/s^2), **positive downward**; the kernel in mGal (gradients: Eotvos) per
kg/m^3, evaluated in float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..mesh import TensorMesh
from . import _components

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


def layer_kernels(mesh: TensorMesh, lattice: StationLattice, component: str = "gz", xp=None,
                  layers: tuple[int, int] | None = None) -> np.ndarray:
    """``K[l, ty, tx]``: gz in mGal (positive down) per kg/m^3 of cell ``(l, ky + ty, kx + tx)`` at
    station ``(ky, kx)``, for ``ty`` in ``[-(Sy - 1), ny - 1]`` and ``tx`` in ``[-(Sx - 1), nx - 1]``
    (array index ``t + S - 1``). Evaluated in float64 once per distinct station-node offset. For
    a gradient ``component`` (``"gxx"`` ... ``"gzz"``) the same in Eotvos per kg/m^3 (Harmonica's
    signs; translation invariant in x and y as gz is). ``xp``: ``numpy`` evaluates the kernel in
    NumPy; by default (None) it is jitted in JAX (the FFT operator's build). A NumPy array either way.
    ``layers = (low, high)``: only the layers ``low:high`` (``K[low:high]``, the same numbers).
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
    if layers is not None:
        offsets[2] = offsets[2][layers[0]:layers[1] + 1]
    if xp is np:
        return _components.cells(component, *offsets, xp=np)
    import jax
    import jax.numpy as jnp

    as64 = (jnp.asarray(o, dtype=jnp.float64) for o in offsets)
    return np.asarray(jax.jit(_components.cells, static_argnums=0)(component, *as64))


__all__ = ["StationLattice", "fft_memory_bytes", "layer_kernels", "padded_shape", "station_lattice"]
