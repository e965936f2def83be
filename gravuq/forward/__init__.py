"""Forward modelling of gz (mGal, positive downward) for prisms and tensor meshes."""

from ._fft import FFTOperator, StationLattice, fft_operator, station_lattice
from ._operator import (
    SENSITIVITY_SCALE,
    DenseOperator,
    MatrixFreeOperator,
    MemoryEstimate,
    estimate_memory,
    local_frame_origin,
    make_operator,
    sensitivity_matrix,
)
from ._prism import node_potential_gz, prism_gz

__all__ = [
    "SENSITIVITY_SCALE", "DenseOperator", "FFTOperator", "MatrixFreeOperator", "MemoryEstimate",
    "StationLattice", "estimate_memory", "fft_operator", "local_frame_origin", "make_operator",
    "node_potential_gz", "prism_gz", "sensitivity_matrix", "station_lattice",
]
