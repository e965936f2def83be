"""Exact one-off forward products in NumPy float64, without importing JAX: what ``gravuq forward``
computes for a ``[truth]`` model.

Conventions (SPEC section 1): metres, x east, y north, z elevation positive up; density contrast
in kg/m^3 (flat, the mesh's C order of ``(nz, ny, nx)``); gz in mGal (1 mGal = 1e-5 m/s^2),
**positive downward**; the gradient components in Eotvos with Harmonica's signs (``_components``).

One product of one model needs no compiled program, and importing JAX and compiling cost more
than the product on the benchmark's B4 grid (about 1.6 s and 1 s against a few milliseconds),
so this module evaluates the same closed-form kernel (the corner functions of ``_prism`` and
``_prism_tensor``, the face rule of ``_components``, written once for both array modules) with
NumPy, at the same node offsets as the JAX rows (``_offsets``):

- stations on a lattice of the cell widths at one height (:func:`station_lattice`): the
  per-layer block-Toeplitz kernel (:func:`layer_kernels`) and one 2-D convolution per layer by
  ``numpy.fft.rfft2`` in float64, as the FFT operator of ``_fft`` does in complex128;
- other stations: node-shared rows, a few stations at a time (chunks sized to stay in the CPU
  cache), from a table of the distinct offset triples when they are few, as ``_rows`` does.

Both agree with the JAX float64 rows to float64 rounding (tests/test_exact.py holds them to 1e-12
of max |gz|). :func:`exact_forward` takes the NumPy path when it applies, else the JAX exact
operator (:func:`gravuq.forward.exact_operator`); it says which it took.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from . import _components
from ._build import MemoryBudget
from ._lattice import StationLattice, fft_memory_bytes, layer_kernels, padded_shape, station_lattice
from ._offsets import node_offsets

#: Node values evaluated at once (per chunk of stations or of kernel layers): a few hundred kB
#: per float64 temporary, so that the formula's temporaries stay in the CPU cache. Measured on B4
#: scattered (35,301 nodes a station), CPU seconds for 1600 stations: 1.1 one station at a time,
#: 1.9-2.7 four, 2.4-4.7 sixteen.
_CHUNK_VALUES = 2**15
#: Without a lattice, the NumPy rows are used up to this many kernel evaluations (stations x
#: nodes, or table entries): about 5 s on one core. Beyond it the JAX rows run on every core (or
#: an accelerator) and their start-up (importing JAX, compiling: about 3 s) no longer dominates.
NUMPY_ROWS_MAX_EVALUATIONS = 3e8


def lattice_product(mesh, lattice: StationLattice, density: np.ndarray, component: str = "gz") -> np.ndarray:
    """``component`` at the lattice stations (mGal or Eotvos) of ``density`` (``(cells,)``, kg/m^3):
    per-layer 2-D FFT convolutions in float64, the kernel from :func:`layer_kernels` in NumPy.

    The kernel is built a few layers at a time (the same numbers as all at once), which keeps the
    formula's temporaries small.
    """
    nz, ny, nx = mesh.shape
    py, px = padded_shape(mesh, lattice.shape)
    # At least 4 layers a slab: a slab evaluates its top node plane again as the next one's bottom.
    planes = max(4, _CHUNK_VALUES // ((ny + lattice.shape[0]) * (nx + lattice.shape[1])))
    model = np.asarray(density, np.float64).reshape(nz, ny, nx)
    total = np.zeros((py, px // 2 + 1), np.complex128)
    for low in range(0, nz, planes):
        high = min(nz, low + planes)
        part = layer_kernels(mesh, lattice, component, xp=np, layers=(low, high))
        # Reversed, the correlation kernel becomes a convolution kernel F[u] = K[n - 1 - u].
        spectrum = np.fft.rfft2(part[:, ::-1, ::-1], s=(py, px))
        total += np.einsum("lij,lij->ij", np.fft.rfft2(model[low:high], s=(py, px)), spectrum)
    field = np.fft.irfft2(total, s=(py, px))
    return field[ny - 1 + lattice.index[:, 0], nx - 1 + lattice.index[:, 1]]


def rows_product(mesh, stations: np.ndarray, density: np.ndarray, component: str = "gz") -> np.ndarray:
    """``component`` at any stations (``(n, 3)`` m, z up) of ``density`` (``(cells,)``, kg/m^3), in
    mGal or Eotvos: node-shared rows in NumPy float64, a few stations at a time (never stored)."""
    found = node_offsets(mesh, stations, None, component)
    ox, oy, oz = found.offsets
    ix, iy, iz = found.index
    model = np.asarray(density, np.float64).ravel()
    n_nodes = ix.shape[1] * iy.shape[1] * iz.shape[1]
    chunk = max(1, _CHUNK_VALUES // n_nodes)
    table = None
    if found.way != "direct":  # few distinct offsets ("toeplitz" too: its rows are the table's)
        potential = _components.node_potential(component)
        planes = max(1, _CHUNK_VALUES // (oy.size * ox.size))
        table = np.concatenate([potential(ox[None, None, :], oy[None, :, None], oz[low:low + planes, None, None],
                                          xp=np) for low in range(0, oz.size, planes)])
    values = np.empty(len(ix))
    for start in range(0, len(ix), chunk):
        cx, cy, cz = ix[start:start + chunk], iy[start:start + chunk], iz[start:start + chunk]
        if table is None:
            cells = _components.cells(component, ox[cx], oy[cy], oz[cz], found.faces, xp=np)
        else:
            gathered = table[cz[:, :, None, None], cy[:, None, :, None], cx[:, None, None, :]]
            cells = _components.table_cells(component, gathered, ox[cx], oy[cy], oz[cz], found.faces, xp=np)
        # einsum, not a BLAS product: OpenBLAS threads for products this small spin and, on a
        # loaded machine, made the whole 1.9 s command take 9-13 s (measured on B4 scattered).
        values[start:start + chunk] = np.einsum("sk,k->s", cells.reshape(len(cx), -1), model)
    return values


def numpy_way(mesh, stations: np.ndarray, budget: MemoryBudget | None = None,
              n_components: int = 1) -> StationLattice | str | None:
    """How :func:`exact_forward` computes in NumPy: the stations' :class:`StationLattice` (FFT),
    ``"rows"``, or None when the JAX exact operator is the better choice (no lattice, or an FFT
    table over the memory budget, and more than :data:`NUMPY_ROWS_MAX_EVALUATIONS` kernel
    evaluations)."""
    budget = budget or MemoryBudget()
    lattice = station_lattice(mesh, stations)
    if not isinstance(lattice, str) and budget.fits(n_components * fft_memory_bytes(mesh, lattice.shape, "float64")):
        return lattice
    nz, ny, nx = mesh.shape
    evaluations = len(stations) * (nx + 1) * (ny + 1) * (nz + 1)
    return "rows" if evaluations <= NUMPY_ROWS_MAX_EVALUATIONS else None


def exact_forward(mesh, stations, density, budget: MemoryBudget | None = None, chunk_size: int | None = None,
                  matrix_free: bool = False, components: tuple[str, ...] = ("gz",)) -> tuple[np.ndarray, str]:
    """Every ``component`` of one density model at the stations, exact to float64 rounding.

    Parameters
    ----------
    mesh
        The tensor mesh (metres, z up); with topography its air cells count as zero contrast.
    stations
        ``(n, 3)`` station x, y, z in metres, z elevation positive up.
    density
        ``(cells,)`` density contrast in kg/m^3, the mesh's C order.
    budget, chunk_size, matrix_free, components
        As for :func:`gravuq.forward.exact_operator` (``chunk_size`` and ``matrix_free`` concern
        only its JAX rows: the NumPy rows are never stored and go a few stations at a time).

    Returns
    -------
    ``(values, how)``: ``(len(components) * n,)`` float64, component-major, gz in mGal (positive
    down) and gradients in Eotvos; ``how`` names the path taken ("float64 FFT in NumPy",
    "float64 rows in NumPy" or the JAX operator's kind).
    """
    stations = np.asarray(stations, dtype=np.float64).reshape(-1, 3)
    components = tuple(_components.check_component(c) for c in components)
    density = np.asarray(density, np.float64).ravel()
    if getattr(mesh, "has_topography", False):
        density = density * np.asarray(mesh.active, np.float64).ravel()
    way = numpy_way(mesh, stations, budget, len(components))
    if way is None:
        return _jax_forward(mesh, stations, density, budget, chunk_size, matrix_free, components)
    if isinstance(way, StationLattice):
        values, how = [lattice_product(mesh, way, density, c) for c in components], "float64 FFT in NumPy"
    else:
        values, how = [rows_product(mesh, stations, density, c) for c in components], "float64 rows in NumPy"
    values = np.concatenate(values)
    if not np.all(np.isfinite(values)):
        bad = int(np.flatnonzero(~np.isfinite(values))[0]) % len(stations)
        raise InputError(f"the forward value at station {bad} (x, y, z = {stations[bad].tolist()} m) is not finite: "
                         "check the station and mesh coordinates and units")
    return values, how


def _jax_forward(mesh, stations, density, budget, chunk_size, matrix_free, components):
    """The JAX exact operator's product (air cells already zeroed in ``density``)."""
    import jax.numpy as jnp

    from ._build import exact_operator

    operator = exact_operator(mesh, stations, budget, chunk_size, matrix_free, components)
    values = np.asarray(operator.forward(jnp.asarray(density, jnp.float64)))
    return values.ravel(), f"float64 {operator.kind.replace('_', '-')} operator in JAX"


__all__ = ["NUMPY_ROWS_MAX_EVALUATIONS", "exact_forward", "lattice_product", "numpy_way", "rows_product"]
