"""Readers and writers: the boundary between gravuq and files.

Station files (CSV, header-less xyz and value files, UBC-GIF observations) and the survey of a
``[data]`` section; UBC-GIF meshes and models; NetCDF models; VTK grids; checkpoints; atomic
writes. Figures live in :mod:`gravuq.io.plots` (imported on demand: it loads matplotlib).
"""

from ._atomic import atomic_path, write_text_atomic
from ._checkpoint import Checkpointer
from ._export import export_ubc, export_vtk, read_ubc_model, write_ubc_model
from ._json import metrics_json
from ._lock import FolderLock
from ._manifest import RUN_RECORD, file_digest, folder_manifest, manifest_mismatches, read_run_record, verify_manifest
from ._components_data import gradient_std, read_ubc_gg, write_component_csv
from ._models import mesh_from_dataset, model_dataset, read_model, write_netcdf
from ._stations import (ColumnNames, StationTable, read_station_table, read_stations_csv, read_survey, read_values,
                        read_xyz, write_stations_csv)
from ._text import csv_text
from ._topography import check_stations_above, interpolate_surface, mesh_with_topography, read_topography
from ._ubc_mesh import mesh_from_config, read_ubc_mesh, write_ubc_mesh
from ._ubc_obs import read_ubc_obs, write_ubc_obs
from .formats import sniff_format

__all__ = [
    "gradient_std", "read_ubc_gg", "write_component_csv",
    "check_stations_above", "interpolate_surface", "mesh_with_topography", "read_topography",
    "RUN_RECORD", "Checkpointer", "ColumnNames", "FolderLock", "StationTable", "atomic_path", "csv_text", "export_ubc",
    "export_vtk", "file_digest", "folder_manifest", "manifest_mismatches", "metrics_json", "read_run_record",
    "verify_manifest",
    "mesh_from_config", "mesh_from_dataset", "model_dataset", "read_model", "read_station_table",
    "read_stations_csv", "read_survey", "read_ubc_mesh", "read_ubc_model", "read_ubc_obs", "read_values", "read_xyz",
    "sniff_format", "write_netcdf", "write_stations_csv", "write_text_atomic", "write_ubc_mesh", "write_ubc_model",
    "write_ubc_obs",
]
