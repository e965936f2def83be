"""Choosing and building the forward operator under one memory budget.

Conventions (SPEC section 1): metres, z elevation positive up; density contrast in kg/m^3; gz in
mGal, positive downward. Memory in bytes (GiB in messages).

Every path that holds something of the size of the survey (an operator, a dense float64 copy of
the sensitivity for an exact method or a learned prior, a prediction) asks the same
:class:`MemoryBudget` first, so ``[forward] memory_limit_gb`` is honoured everywhere and a problem
that cannot fit is refused before any work, with the numbers and the key to change.

The operators (JAX) are imported when one is built, not with this module: the budget and the
estimates serve ``gravuq forward``'s NumPy products (``_exact``) too, which never import JAX.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ._components import ALL_COMPONENTS, check_component
from ._lattice import fft_memory_bytes, station_lattice

if TYPE_CHECKING:
    from ._operator import ForwardOperator

GIB = 1024.0**3

#: Without ``[forward] memory_limit_gb``, a run may use this fraction of the memory available
#: when it starts (leaving room for training, which needs a few copies of the members).
DEFAULT_FRACTION = 0.4


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


@dataclass(frozen=True)
class MemoryBudget:
    """The memory a run may use, in bytes: ``limit_bytes`` if given (``[forward]
    memory_limit_gb``), else 40 % of what is available at the time of each check."""

    limit_bytes: int | None = None

    @classmethod
    def from_gb(cls, gigabytes: float | None) -> MemoryBudget:
        return cls(None if gigabytes is None else int(gigabytes * GIB))

    @property
    def source(self) -> str:
        return ("[forward] memory_limit_gb" if self.limit_bytes is not None
                else f"{DEFAULT_FRACTION:.0%} of the memory available; set [forward] memory_limit_gb to change it")

    def allowed(self) -> int:
        if self.limit_bytes is not None:
            return int(self.limit_bytes)
        return int(DEFAULT_FRACTION * available_memory_bytes())

    def fits(self, nbytes: float) -> bool:
        return nbytes <= self.allowed()

    def require(self, nbytes: float, what: str, remedy: str, item: str = "") -> None:
        """Raise :class:`InputError` ("``what`` needs ``item`` N GiB, more than the M GiB allowed
        (source); ``remedy``") when ``nbytes`` do not fit."""
        allowed = self.allowed()
        if nbytes > allowed:
            raise InputError(f"{what} needs {item}{nbytes / GIB:.3g} GiB, more than the {allowed / GIB:.3g} GiB "
                             f"allowed ({self.source}); {remedy}")


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
        fft = "FFT not applicable" if self.fft_bytes is None else f"FFT {self.fft_bytes / GIB:.3g} GiB"
        return (f"dense sensitivity {self.dense_bytes / GIB:.3g} GiB, matrix-free working set "
                f"{self.matrix_free_bytes / GIB:.3g} GiB, {fft}, limit {self.limit_bytes / GIB:.3g} GiB")


def dense_float64_bytes(n_stations: int, n_cells: int) -> float:
    """Bytes of a float64 sensitivity and its station system (``G C G^T`` and a factor): what the
    exact Gaussian methods need at once (the product with the prior covariance too)."""
    return 8.0 * (2 * n_stations * n_cells + 2 * n_stations**2)


def estimate_memory(mesh, n_stations: int, dtype="float32", chunk_size: int = 256,
                    memory_limit_bytes: int | None = None, stations=None, n_components: int = 1) -> MemoryEstimate:
    """Estimate the memory of the dense, matrix-free and FFT operators (bytes).

    The dense matrix needs ``n_stations x n_cells`` numbers of ``dtype`` plus one chunk of
    float64 kernel work; the matrix-free one a chunk of rows (float64 node values, and the rows);
    the FFT one (only with ``stations``, ``(n, 3)`` in metres, on a grid at one height) the
    kernel spectrum plus its float64 build. The default limit is that of :class:`MemoryBudget`.
    With ``n_components`` measured components the dense matrices and spectra are that many.
    """
    itemsize = np.dtype(dtype).itemsize
    nz, ny, nx = mesh.shape
    n_nodes = (nx + 1) * (ny + 1) * (nz + 1)
    chunk = min(chunk_size, n_stations)
    working = chunk * (3 * n_nodes * 8 + mesh.n_cells * (8 + itemsize))
    dense = float(n_components) * n_stations * mesh.n_cells * itemsize + working
    limit = MemoryBudget(memory_limit_bytes).allowed()
    fft_bytes, fft_reason = None, "no station coordinates given"
    if stations is not None:
        lattice = station_lattice(mesh, stations)
        if isinstance(lattice, str):
            fft_reason = lattice
        else:
            fft_bytes, fft_reason = n_components * fft_memory_bytes(mesh, lattice.shape, dtype), ""
    return MemoryEstimate(int(dense), int(working), int(limit), fft_bytes, fft_reason)


#: Coordinates beyond this magnitude (m) are not on Earth in any projection gravuq reads.
MAX_COORDINATE = 1e8
#: Stations farther from the mesh than this many times its largest extent see it as a point.
MAX_DISTANCE_IN_EXTENTS = 1e3


def check_station_distance(mesh, stations, source: str) -> None:
    """Refuse stations absurdly far from the mesh (or any coordinate beyond 1e8 m).

    A station more than a thousand mesh extents away sees the whole model as one point mass:
    it carries no information about the model, and its lattice offsets make every operator's
    size explode. ``stations`` is ``(n, 3)`` in metres; ``source`` names the file in the message.
    """
    stations = np.asarray(stations, dtype=np.float64).reshape(-1, 3)
    west, east, south, north, bottom, top = mesh.bounds
    extent = max(east - west, north - south, top - bottom)
    for low, high, axis in ((west, east, 0), (south, north, 1), (bottom, top, 2)):
        values = stations[:, axis]
        distance = np.maximum(low - values, values - high)
        far = (np.abs(values) > MAX_COORDINATE) | (distance > MAX_DISTANCE_IN_EXTENTS * extent)
        if far.any():
            row = int(np.argmax(far))
            name = "xyz"[axis]
            raise InputError(f"{source}: station {row + 1} (of {len(stations)}) has {name} = {values[row]:.6g} m, "
                             f"absurdly far from the mesh ({name} {low:.6g}..{high:.6g} m; more than "
                             f"{MAX_DISTANCE_IN_EXTENTS:g} mesh extents or beyond {MAX_COORDINATE:g} m): check the "
                             "station coordinates and their units, or the [mesh] origin")


def make_operator(mesh, stations, mode: str = "auto", dtype="float32", chunk_size: int | None = None,
                  memory_limit_bytes: int | None = None,
                  components: tuple[str, ...] = ("gz",)) -> tuple[ForwardOperator, MemoryEstimate]:
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
        dense matrix when it fits under the limit, else the matrix-free operator. A choice that
        does not fit (the matrix-free working set included), or a forced ``fft`` on a geometry
        that does not allow it, is an :class:`InputError` naming why and the alternative.
    dtype
        Storage and product dtype (``"float32"`` or ``"float64"``); kernels run in float64.
    chunk_size, memory_limit_bytes
        Stations per chunk of rows; the memory limit (default: :class:`MemoryBudget`'s).
    components
        The measured components, ``"gz"`` (mGal) and any of ``"gxx" ... "gzz"`` (Eotvos,
        Harmonica's signs). One component gives that component's operator; several a
        :class:`~gravuq.forward.StackedOperator` (component-major rows), every part of one mode.

    Returns
    -------
    ``(operator, estimate)``: a :class:`~gravuq.forward.ForwardOperator` (gz in mGal per kg/m^3,
    positive down) and the :class:`MemoryEstimate`.
    """
    from ._fft import fft_operator
    from ._operator import DenseOperator, matrix_free_operator
    from ._rows import default_chunk, dense_from_rows, make_rows

    stations = np.asarray(stations, dtype=np.float64).reshape(-1, 3)
    components = tuple(check_component(c) for c in components)
    if not components or len(set(components)) != len(components):
        raise InputError(f"components: expected distinct names among {', '.join(ALL_COMPONENTS)}, "
                         f"found {list(components)}")
    check_station_distance(mesh, stations, "stations")
    chunk = chunk_size or default_chunk(mesh)
    estimate = estimate_memory(mesh, stations.shape[0], dtype, chunk, memory_limit_bytes, stations,
                               len(components))
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
                             "use mode = 'matrix_free' or 'auto', or raise [forward] memory_limit_gb")
        lattice = station_lattice(mesh, stations)
        return _stack([fft_operator(mesh, stations, dtype, lattice, c) for c in components], components), estimate
    if mode == "dense":
        if estimate.dense_bytes > estimate.limit_bytes:
            raise InputError(f"[forward] mode = 'dense' does not fit in memory ({estimate.describe()}); "
                             "use mode = 'matrix_free' or 'auto', raise [forward] memory_limit_gb, or split its "
                             "stations over several processes (gravuq ensemble --distributed, [forward] split)")
        parts = []
        for component in components:
            rows = make_rows(mesh, stations, component=component)
            parts.append(DenseOperator(matrix=dense_from_rows(rows, dtype, chunk, stations), rows=rows))
        return _stack(parts, components), estimate
    if mode == "matrix_free":
        if estimate.matrix_free_bytes > estimate.limit_bytes and chunk_size is None:
            # Fewer stations per chunk: the working set shrinks in proportion.
            per_station = estimate.matrix_free_bytes / max(1, min(chunk, stations.shape[0]))
            chunk = int(estimate.limit_bytes // per_station)
            if chunk >= 1:
                estimate = estimate_memory(mesh, stations.shape[0], dtype, chunk, memory_limit_bytes, stations,
                                           len(components))
        if chunk < 1 or estimate.matrix_free_bytes > estimate.limit_bytes:
            raise InputError(f"[forward] the matrix-free operator's working set does not fit in memory "
                             f"({estimate.describe()}); lower [forward] chunk_size (now {max(chunk, 1)} stations), "
                             "use a coarser [mesh], or raise [forward] memory_limit_gb")
        parts = [matrix_free_operator(make_rows(mesh, stations, component=c), chunk, dtype) for c in components]
        return _stack(parts, components), estimate
    raise InputError(f"[forward] mode: expected 'auto', 'dense', 'matrix_free' or 'fft', found '{mode}'")


def exact_operator(mesh, stations, budget: MemoryBudget | None = None, chunk_size: int | None = None,
                   matrix_free: bool = False, components: tuple[str, ...] = ("gz",)) -> ForwardOperator:
    """The operator for synthetic data and predictions: exact to float64 rounding, the fastest
    that the geometry allows.

    Stations on a grid of the cell widths at one height (see :func:`station_lattice`) get the FFT
    operator in float64 (complex128 products of a float64 kernel table), when it fits in
    ``budget``: it differs from the float64 rows by float64 rounding only (about 1e-14 of
    max |gz|; tests/test_forward.py holds it to 1e-12), at a fraction of their cost. Other
    geometries get the float64 rows, held dense when they fit (and ``matrix_free`` is not asked
    for), else applied matrix-free. ``components`` as for :func:`make_operator` (several:
    component-major rows). Units: metres (z up), kg/m^3, gz in mGal positive down.
    """
    budget = budget or MemoryBudget()
    limit = budget.allowed()
    stations = np.asarray(stations, dtype=np.float64).reshape(-1, 3)
    components = tuple(components)
    estimate = estimate_memory(mesh, len(stations), "float64", chunk_size or 256, limit, stations,
                               n_components=len(components))
    if estimate.fft_bytes is not None and estimate.fft_bytes <= limit:
        mode = "fft"
    else:
        mode = "dense" if estimate.dense_bytes <= limit and not matrix_free else "matrix_free"
    operator, _ = make_operator(mesh, stations, mode, "float64", chunk_size, limit, components)
    return operator


def _stack(parts: list[ForwardOperator], components: tuple[str, ...]) -> ForwardOperator:
    """One part as it is; several as a :class:`StackedOperator` (component-major rows)."""
    from ._operator import StackedOperator

    return parts[0] if len(parts) == 1 else StackedOperator(parts=tuple(parts), components=components)


__all__ = ["MemoryBudget", "MemoryEstimate", "available_memory_bytes", "check_station_distance",
           "dense_float64_bytes", "estimate_memory",
           "exact_operator", "make_operator"]
