"""Readers, writers and figures: the boundary between gravuq and files."""

from ._atomic import atomic_path, write_text_atomic
from . import _plots as plots
from ._models import model_dataset, read_model, write_netcdf

__all__ = ["plots", "atomic_path", "model_dataset", "read_model", "write_netcdf", "write_text_atomic"]
