"""Forward modelling of gz (mGal, positive downward) for prisms and tensor meshes.

Layers, as in Choclo/Harmonica: the scalar SI kernel (``_prism``), the shared leaf pieces and the
one SI -> mGal factor (``_kernel``), node-shared float64 rows (``_rows``), the operators behind one
interface (``_operator``: dense and matrix-free; ``_fft``: gridded stations), and the choice under
one memory budget (``_build``).
"""

from ._build import (
    MemoryBudget,
    MemoryEstimate,
    available_memory_bytes,
    check_station_distance,
    dense_float64_bytes,
    estimate_memory,
    exact_operator,
    make_operator,
)
from ._fft import FFTOperator, StationLattice, fft_operator, station_lattice
from ._kernel import SENSITIVITY_SCALE, local_frame_origin
from ._operator import DenseOperator, ForwardOperator, MatrixFreeOperator
from ._prism import node_potential_gz, prism_gz
from ._rows import sensitivity_matrix

__all__ = [
    "SENSITIVITY_SCALE", "DenseOperator", "FFTOperator", "ForwardOperator", "MatrixFreeOperator", "MemoryBudget",
    "MemoryEstimate", "StationLattice", "available_memory_bytes",
    "check_station_distance", "dense_float64_bytes", "estimate_memory",
    "exact_operator", "fft_operator", "local_frame_origin", "make_operator", "node_potential_gz", "prism_gz",
    "sensitivity_matrix", "station_lattice",
]
