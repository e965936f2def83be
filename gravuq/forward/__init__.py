"""Forward modelling of gz (mGal, positive downward) and of the gravity-gradient components
(Eotvos, Harmonica's signs: ``gxz``, ``gyz`` z down, ``gzz > 0`` above a positive mass) for prisms
and tensor meshes.

Layers, as in Choclo/Harmonica: the scalar SI kernel (``_prism``), the shared leaf pieces and the
one SI -> mGal factor (``_kernel``), node-shared float64 rows (``_rows``), the operators behind one
interface (``_operator``: dense and matrix-free; ``_fft``: gridded stations), and the choice under
one memory budget (``_build``).
"""

from ._active import ActiveCellOperator, active_cell_operator
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
from ._components import ALL_COMPONENTS, UNITS
from ._fft import FFTOperator, StationLattice, fft_operator, station_lattice
from ._kernel import SENSITIVITY_SCALE, local_frame_origin
from ._operator import DenseOperator, ForwardOperator, MatrixFreeOperator, StackedOperator
from ._prism import node_potential_gz, prism_gz
from ._prism_tensor import HARMONICA_FIELDS, prism_tensor
from ._rows import sensitivity_matrix

__all__ = [
    "ActiveCellOperator", "active_cell_operator",
    "ALL_COMPONENTS", "HARMONICA_FIELDS", "UNITS", "StackedOperator", "prism_tensor",
    "SENSITIVITY_SCALE", "DenseOperator", "FFTOperator", "ForwardOperator", "MatrixFreeOperator", "MemoryBudget",
    "MemoryEstimate", "StationLattice", "available_memory_bytes",
    "check_station_distance", "dense_float64_bytes", "estimate_memory",
    "exact_operator", "fft_operator", "local_frame_origin", "make_operator", "node_potential_gz", "prism_gz",
    "sensitivity_matrix", "station_lattice",
]
