"""Readers, writers and figures: the boundary between gravuq and files."""

from ._atomic import atomic_path, write_text_atomic
from ._checkpoint import Checkpointer
from ._export import export_ubc, export_vtk, read_ubc_model, write_ubc_model
from . import _plots as plots
from ._models import mesh_from_dataset, model_dataset, read_model, write_netcdf

__all__ = ["Checkpointer", "export_ubc", "export_vtk", "read_ubc_model", "write_ubc_model", "plots", "atomic_path", "mesh_from_dataset", "model_dataset", "read_model", "write_netcdf", "write_text_atomic"]
