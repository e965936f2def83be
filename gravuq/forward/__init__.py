"""Forward modelling of gz (mGal, positive downward) and of the gravity-gradient components
(Eotvos, Harmonica's signs: ``gxz``, ``gyz`` z down, ``gzz > 0`` above a positive mass) for prisms
and tensor meshes.

Layers, as in Choclo/Harmonica: the scalar SI kernel (``_prism``), the shared leaf pieces and the
one SI -> mGal factor (``_kernel``), node-shared float64 rows (``_rows``), the operators behind one
interface (``_operator``: dense and matrix-free; ``_fft``: gridded stations), and the choice under
one memory budget (``_build``), split by stations over several processes (``_split``). ``_exact``
computes one model's exact float64 values in NumPy (``gravuq forward``), from the same kernel
(written once for NumPy and JAX).

Each name below is imported from its module on first use: ``gravuq forward`` reaches the NumPy
products without importing JAX, which the operators need.
"""

import importlib

#: Public name -> the module (in this package) that defines it.
_LAZY = {
    "ActiveCellOperator": "_active", "active_cell_operator": "_active",
    "MemoryBudget": "_build", "MemoryEstimate": "_build", "available_memory_bytes": "_build",
    "check_station_distance": "_build", "dense_float64_bytes": "_build", "estimate_memory": "_build",
    "exact_operator": "_build", "make_operator": "_build",
    "ALL_COMPONENTS": "_components", "UNITS": "_components",
    "exact_forward": "_exact",
    "FFTOperator": "_fft", "fft_operator": "_fft",
    "StationLattice": "_lattice", "station_lattice": "_lattice",
    "SENSITIVITY_SCALE": "_kernel", "local_frame_origin": "_kernel",
    "DenseOperator": "_operator", "ForwardOperator": "_operator", "MatrixFreeOperator": "_operator",
    "StackedOperator": "_operator",
    "node_potential_gz": "_prism", "prism_gz": "_prism",
    "HARMONICA_FIELDS": "_prism_tensor", "prism_tensor": "_prism_tensor",
    "sensitivity_matrix": "_rows",
    "SPLITS": "_split", "SplitOperator": "_split", "split_devices": "_split", "split_operator": "_split",
    "split_plan": "_split", "split_record": "_split",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__)


__all__ = [*_LAZY]
