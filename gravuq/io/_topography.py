"""Topography (a digital elevation model) for ``[mesh] topography``: read the file, interpolate
the ground under every mesh column, and check that stations lie above it.

Conventions (SPEC section 1): x easting, y northing, z elevation in metres, **z positive up**.

Files:

- CSV of ``x, y, z`` points (a header naming the columns ``x``, ``y`` and ``z`` or
  ``elevation``, case-insensitive, in any order; or no header and the first three columns in
  that order; comma, semicolon, tab or space separated). Scattered points are fine.
- NetCDF (``.nc``): one 2-D variable on dims ``(y, x)`` (the first 2-D variable of the file; a
  variable named ``z``, ``elevation`` or ``topography`` is preferred), elevation in metres.

The surface is interpolated linearly (a Delaunay triangulation, scipy's
``LinearNDInterpolator``) inside the points' convex hull and by the nearest point outside it,
so a DEM a little smaller than the mesh still gives every column a ground elevation.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..mesh import TensorMesh
from ._text import parse_number, read_text

_Z_NAMES = ("z", "elevation", "elev", "topography", "topo", "height")


def _read_csv_points(path: Path) -> np.ndarray:
    text = read_text(path, "a CSV of x, y, z topography points (m)")
    rows = [(number, line) for number, line in enumerate(text.splitlines(), start=1)
            if line.strip() and not line.lstrip().startswith("#")]
    if not rows:
        raise InputError(f"{path}: no topography points (expected x, y, z rows in m)")
    split = lambda line: [cell for cell in re.split(r"[,;\t ]+", line.strip()) if cell != ""]  # noqa: E731
    first = split(rows[0][1])
    try:
        [float(cell) for cell in first]
        columns = (0, 1, 2)
    except ValueError:
        names = [cell.strip().strip('"').lower() for cell in first]
        try:
            z_name = next(name for name in _Z_NAMES if name in names)
            columns = (names.index("x"), names.index("y"), names.index(z_name))
        except (StopIteration, ValueError):
            raise InputError(f"{path}, line {rows[0][0]}: header {first} must name columns x, y and z "
                             f"(or elevation), m") from None
        rows = rows[1:]
    points = []
    for number, line in rows:
        cells = split(line)
        if len(cells) <= max(columns):
            raise InputError(f"{path}, line {number}: found {len(cells)} fields, expected x, y, z (m)")
        points.append([parse_number(cells[c], f"{path}, line {number}, column {c + 1}") for c in columns])
    return np.asarray(points, np.float64).reshape(-1, 3)


def _read_netcdf_points(path: Path) -> np.ndarray:
    import xarray as xr

    try:
        dataset = xr.load_dataset(path)
    except Exception as err:  # the engines raise many types for a file that is not NetCDF
        raise InputError(f"{path}: cannot read as NetCDF ({type(err).__name__}: {err})") from None
    grids = [name for name, variable in dataset.data_vars.items() if set(variable.dims) == {"y", "x"}]
    if not grids:
        raise InputError(f"{path}: no 2-D variable on dims (y, x) (expected the elevation grid, m)")
    name = next((n for n in grids if str(n).lower() in _Z_NAMES), grids[0])
    grid = dataset[name].transpose("y", "x")
    y, x = np.meshgrid(np.asarray(grid["y"], np.float64), np.asarray(grid["x"], np.float64), indexing="ij")
    values = np.asarray(grid.values, np.float64)
    keep = np.isfinite(values)  # a NaN cell of a grid is no data, not an error
    return np.stack([x[keep], y[keep], values[keep]], axis=1)


def read_topography(path: str | Path) -> np.ndarray:
    """The ``(points, 3)`` x, y, z (m, z elevation up) of a topography file (see the module notes).

    Raises :class:`InputError` naming the file (and line) for a value that is not a finite
    number, a missing column, or fewer than three points not on one line.
    """
    path = Path(path)
    points = _read_netcdf_points(path) if path.suffix.lower() in (".nc", ".nc4", ".netcdf") else _read_csv_points(path)
    bad = ~np.all(np.isfinite(points), axis=1)
    if bad.any():
        raise InputError(f"{path}: point {int(np.argmax(bad)) + 1} is not finite (expected x, y, z in m)")
    if len(points) < 3 or np.linalg.matrix_rank(points[:, :2] - points[0, :2], tol=1e-9 * np.ptp(points[:, :2])) < 2:
        raise InputError(f"{path}: found {len(points)} topography points, expected at least three not on one line "
                         "(x, y, z in m)")
    return points


def interpolate_surface(points: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The ground elevation (m) at ``(x, y)`` (any equal shapes, m) from topography ``points``
    ``(n, 3)``: linear inside their convex hull, the nearest point's elevation outside."""
    from scipy.interpolate import LinearNDInterpolator, NearestNDInterpolator

    where = np.stack([np.ravel(x), np.ravel(y)], axis=1)
    values = LinearNDInterpolator(points[:, :2], points[:, 2])(where)
    outside = ~np.isfinite(values)
    if outside.any():
        values[outside] = NearestNDInterpolator(points[:, :2], points[:, 2])(where[outside])
    return values.reshape(np.shape(x))


def mesh_with_topography(mesh: TensorMesh, path: str | Path) -> TensorMesh:
    """``mesh`` with the ground of topography file ``path`` at its column centres (cells whose
    centre lies above it become air). An :class:`InputError` if no cell is left active."""
    points = read_topography(path)
    y, x = np.meshgrid(mesh.centers_y, mesh.centers_x, indexing="ij")
    terrain = mesh.with_surface(interpolate_surface(points, x, y))
    if terrain.n_active == 0:
        raise InputError(f"{path}: the surface lies below every cell centre of the mesh (ground "
                         f"{terrain.surface.min():.6g}..{terrain.surface.max():.6g} m, lowest cell centre "
                         f"{mesh.centers_z[0]:.6g} m): no active cells")
    return terrain


def check_stations_above(points: np.ndarray, stations: np.ndarray, source: str, topography: str | Path) -> None:
    """Raise an :class:`InputError` naming the first station (from 1, in the file's order) that
    lies below the ground of topography ``points`` ``(n, 3)`` (interpolated as for the mesh);
    ``stations`` ``(n, 3)`` m, ``source`` their file, ``topography`` the DEM file, for the
    message. Stations on the surface (within 1 mm) or anywhere above it are fine."""
    stations = np.asarray(stations, np.float64).reshape(-1, 3)
    ground = interpolate_surface(points, stations[:, 0], stations[:, 1])
    below = stations[:, 2] < ground - 1e-3
    if below.any():
        row = int(np.argmax(below))
        raise InputError(f"{source}: station {row + 1} (of {len(stations)}; x {stations[row, 0]:.6g}, "
                         f"y {stations[row, 1]:.6g} m) lies at z {stations[row, 2]:.6g} m, below the ground of "
                         f"[mesh] topography {topography} there ({ground[row]:.6g} m); {int(below.sum())} station(s) "
                         "lie below it: stations must be on or above the surface (check z and its datum)")


__all__ = ["check_stations_above", "interpolate_surface", "mesh_with_topography", "read_topography"]
