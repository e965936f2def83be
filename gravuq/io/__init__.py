"""Readers, writers and figures: the boundary between gravuq and files."""

from ._atomic import atomic_path, write_text_atomic
from ._models import model_dataset, read_model, write_netcdf

__all__ = ["atomic_path", "model_dataset", "read_model", "write_netcdf", "write_text_atomic"]
