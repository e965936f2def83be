"""Density models on a tensor mesh as NetCDF files (xarray), with checks a user can act on.

Conventions (SPEC section 1): variables with dims ``("z", "y", "x")`` and cell-centre
coordinates in metres (z elevation, positive up); density contrast in kg/m^3.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from ..constants import DENSITY_UNITS_TO_KG_M3
from ..errors import InputError
from ..mesh import TensorMesh
from ._atomic import atomic_path


def model_dataset(mesh: TensorMesh, variables: dict[str, np.ndarray], attrs: dict | None = None,
                  units: dict[str, str] | None = None) -> xr.Dataset:
    """An xarray Dataset with each ``(nz, ny, nx)`` array as a variable on the mesh's cell centres."""
    units = units or {}
    data_vars = {}
    for name, values in variables.items():
        array = np.asarray(values).reshape(mesh.shape)
        data_vars[name] = xr.Variable(("z", "y", "x"), array, {"units": units.get(name, "kg/m^3")})
    coords = {axis: xr.Variable(axis, values, {"units": "m"}) for axis, values in mesh.coords().items()}
    # The cell boundaries too, so that the mesh (variable widths included) can be rebuilt.
    for axis, nodes in (("x", mesh.nodes_x), ("y", mesh.nodes_y), ("z", mesh.nodes_z)):
        coords[f"{axis}_node"] = xr.Variable(f"{axis}_node", nodes, {"units": "m", "long_name": f"cell boundaries along {axis}"})
    if mesh.has_topography:
        # The ground of [mesh] topography: air cells (centre above it) are NaN in the fields.
        data_vars["surface"] = xr.Variable(("y", "x"), mesh.surface, {
            "units": "m", "positive": "up", "long_name": "ground elevation at the column centres; cells whose "
            "centre lies above it are air (inactive, zero density contrast, NaN here)"})
    dataset = xr.Dataset(data_vars, coords=coords, attrs=dict(attrs or {}))
    dataset["z"].attrs["positive"] = "up"
    return dataset


def mesh_from_dataset(dataset: xr.Dataset):
    """The tensor mesh of a dataset written by :func:`model_dataset` (from its ``*_node``
    coordinates), with its ground ``surface`` (m, ``(y, x)``) when the dataset has one."""
    nodes = [np.asarray(dataset[f"{axis}_node"], np.float64) for axis in ("x", "y", "z")]
    surface = None
    if "surface" in dataset.variables and set(dataset["surface"].dims) == {"y", "x"}:
        surface = np.asarray(dataset["surface"].transpose("y", "x").values, np.float64)
    return TensorMesh(np.diff(nodes[0]), np.diff(nodes[1]), np.diff(nodes[2]), (nodes[0][0], nodes[1][0], nodes[2][0]),
                      surface)


def write_netcdf(path: str | Path, dataset: xr.Dataset) -> None:
    """Write ``dataset`` to NetCDF-4 (h5netcdf engine) atomically."""
    with atomic_path(path) as tmp:
        dataset.to_netcdf(tmp, engine="h5netcdf")


def read_model(path: str | Path, mesh: TensorMesh, variable: str = "density", units: str = "kg/m3") -> np.ndarray:
    """Read a density model for ``mesh`` from NetCDF; returns kg/m^3 shaped ``(nz, ny, nx)``.

    The file must hold ``variable`` with dims ``(z, y, x)`` and the mesh's shape; where it has
    coordinates, they must be the mesh's cell centres (m). ``units`` (kg/m3 or g/cc) converts on
    read. Every mismatch is an :class:`InputError` naming the file and what was expected.
    """
    path = Path(path)
    try:
        dataset = xr.load_dataset(path)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except Exception as err:  # the engines raise many types for a file that is not NetCDF
        raise InputError(f"{path}: cannot read as NetCDF ({type(err).__name__}: {err})") from None
    if variable not in dataset:
        raise InputError(f"{path}: no variable '{variable}' (found: {', '.join(map(str, dataset.data_vars)) or 'none'})")
    array = dataset[variable]
    if set(array.dims) != {"z", "y", "x"}:
        raise InputError(f"{path}: variable '{variable}' has dims {array.dims}, expected ('z', 'y', 'x')")
    array = array.transpose("z", "y", "x")
    if array.shape != mesh.shape:
        raise InputError(f"{path}: variable '{variable}' has shape {array.shape} (z, y, x), "
                         f"but the mesh has {mesh.shape}")
    for axis, centres in mesh.coords().items():
        if axis in array.coords:
            found = np.asarray(array.coords[axis], dtype=np.float64)
            tolerance = 1e-6 * max(1.0, np.abs(centres).max())
            if not np.allclose(found, centres, rtol=0.0, atol=tolerance):
                raise InputError(f"{path}: coordinate '{axis}' does not match the mesh cell centres "
                                 f"(found {found[0]:.6g}..{found[-1]:.6g} m, expected {centres[0]:.6g}..{centres[-1]:.6g} m)")
    values = np.asarray(array.values, dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        k, j, i = np.argwhere(bad)[0]
        raise InputError(f"{path}: variable '{variable}' has {bad.sum()} non-finite values, first at z={k}, y={j}, x={i}")
    return values * DENSITY_UNITS_TO_KG_M3[units]
