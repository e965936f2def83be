"""Density logs along planned drill holes.

Conventions (SPEC section 1): x easting, y northing, z elevation positive up, metres; density
contrast in kg/m^3. Drill holes: azimuth in degrees clockwise from north (90 = east), dip in
degrees below the horizontal (positive down, 90 = vertical down); a hole's unit direction is
``(sin(az) cos(dip), cos(az) cos(dip), -sin(dip))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import csv_text, write_text_atomic
from ..mesh import TensorMesh
from ..posterior import Q_HIGH, Q_LOW
from ._results import Results


def _check_hole(collar, azimuth_deg: float, dip_deg: float, length_m: float, step_m: float, where: str) -> None:
    values = np.asarray(collar, np.float64).ravel()
    if values.size != 3 or not np.all(np.isfinite(values)):
        raise InputError(f"{where}collar: expected three finite numbers x, y, z (m), found {list(np.ravel(collar))}")
    if not math.isfinite(azimuth_deg):
        raise InputError(f"{where}azimuth: expected a finite angle in degrees clockwise from north, found {azimuth_deg}")
    if not (math.isfinite(dip_deg) and -90.0 <= dip_deg <= 90.0):
        raise InputError(f"{where}dip: expected degrees below horizontal in [-90, 90] (90 = vertical down), "
                         f"found {dip_deg}")
    if not (math.isfinite(length_m) and length_m > 0):
        raise InputError(f"{where}length: expected a hole length > 0 m, found {length_m}")
    if not (math.isfinite(step_m) and step_m > 0):
        raise InputError(f"{where}step: expected a sample spacing > 0 m, found {step_m}")
    if length_m / step_m > 1e7:
        raise InputError(f"{where}step: {step_m} m gives {length_m / step_m:.3g} samples over {length_m} m; "
                         "expected at most 1e7 (use a larger step)")


def hole_direction(azimuth_deg: float, dip_deg: float) -> np.ndarray:
    """Unit vector ``(east, north, up)`` along a hole: ``(sin(az) cos(dip), cos(az) cos(dip),
    -sin(dip))`` with azimuth clockwise from north and dip below horizontal (degrees)."""
    azimuth, dip = math.radians(azimuth_deg), math.radians(dip_deg)
    return np.array([math.sin(azimuth) * math.cos(dip), math.cos(azimuth) * math.cos(dip), -math.sin(dip)])


def hole_samples(collar, azimuth_deg: float, dip_deg: float, length_m: float, step_m: float):
    """Sample intervals along a straight hole.

    The hole ``[0, length_m]`` (m along the hole from the collar) is cut into intervals of
    ``step_m`` (the last one shorter when ``length_m`` is not a multiple); each is sampled at
    its midpoint, so that a sum of interval lengths measures length along the hole exactly.

    Returns ``(depth_from, depth_to, depth, points)``: interval ends and midpoints (m along the
    hole, each ``(samples,)``) and the midpoints' ``(samples, 3)`` x, y, z in m (z up).
    """
    _check_hole(collar, azimuth_deg, dip_deg, length_m, step_m, "")
    count = max(1, math.ceil(length_m / step_m - 1e-9))
    edges = np.minimum(np.arange(count + 1) * step_m, length_m)
    edges[-1] = length_m
    depth_from, depth_to = edges[:-1], edges[1:]
    depth = 0.5 * (depth_from + depth_to)
    points = np.asarray(collar, np.float64).reshape(1, 3) + depth[:, None] * hole_direction(azimuth_deg, dip_deg)[None, :]
    return depth_from, depth_to, depth, points


def cells_at(mesh: TensorMesh, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cell containing each point.

    ``points`` ``(n, 3)`` x, y, z in m. Returns ``(index, inside)``: the flat C-order index into
    ``(nz, ny, nx)`` (0 where outside) and whether the point lies in the mesh. A point on a face
    between two cells belongs to the cell above it (east, north, up); the mesh's outer faces
    count as inside.
    """
    points = np.asarray(points, np.float64).reshape(-1, 3)
    inside = np.ones(points.shape[0], bool)
    indices = []
    for axis, nodes in enumerate((mesh.nodes_x, mesh.nodes_y, mesh.nodes_z)):
        coordinate = points[:, axis]
        inside &= (coordinate >= nodes[0]) & (coordinate <= nodes[-1])
        indices.append(np.clip(np.searchsorted(nodes, coordinate, side="right") - 1, 0, nodes.size - 2))
    i, j, k = indices
    nz, ny, nx = mesh.shape
    index = np.where(inside, (k * ny + j) * nx + i, 0)
    return index, inside


@dataclass(frozen=True)
class DrillLog:
    """A density log along a planned hole, one row per sample interval.

    ``depth_along_hole`` the interval midpoints, ``depth_from``/``depth_to`` its ends (m along
    the hole from the collar); ``x, y, z`` the midpoints (m, z up); ``mean``, ``q05``, ``q95``
    the posterior mean and 90 % interval of the density contrast in the cell at each midpoint
    (kg/m^3); ``exceedance`` P(density > ``threshold``) there. NaN outside the mesh, and the
    spread and exceedance are NaN for a single model. ``collar`` (m), ``azimuth`` and ``dip``
    (degrees), ``threshold`` (kg/m^3) describe the hole. On a mesh with topography,
    ``depth_below_surface`` is each midpoint's vertical depth below the ground of its column (m,
    positive down; negative above it), and samples above the ground or in air cells are NaN;
    without topography it is None (the mesh top is the surface).
    """

    depth_along_hole: np.ndarray
    depth_from: np.ndarray
    depth_to: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    mean: np.ndarray
    q05: np.ndarray
    q95: np.ndarray
    exceedance: np.ndarray
    collar: tuple[float, float, float]
    azimuth: float
    dip: float
    threshold: float
    depth_below_surface: np.ndarray | None = None


def default_step(mesh: TensorMesh) -> float:
    """Half the smallest cell width (m): every cell a hole crosses squarely gets two samples."""
    return 0.5 * float(min(mesh.widths_x.min(), mesh.widths_y.min(), mesh.widths_z.min()))


def drill_log(results: Results, collar, azimuth_deg: float, dip_deg: float, length_m: float,
              step_m: float | None = None, threshold: float | None = None) -> DrillLog:
    """The posterior density log along a straight planned hole.

    Parameters
    ----------
    results
        From :func:`load_results`.
    collar
        ``(x, y, z)`` of the collar, m, z elevation positive up.
    azimuth_deg
        Azimuth, degrees clockwise from north (90 = east).
    dip_deg
        Dip, degrees below the horizontal, positive down (90 = vertical down), in [-90, 90].
    length_m
        Hole length along the hole, m (> 0).
    step_m
        Sample interval along the hole, m; default :func:`default_step`.
    threshold
        kg/m^3 for the exceedance; default the run's threshold.

    Returns
    -------
    DrillLog
        For each interval midpoint, the mean, 5 % and 95 % quantiles of the draws in the cell
        containing it and the fraction of draws above ``threshold`` (the same per-cell numbers
        as ``summary.nc`` for ensembles); NaN outside the mesh.
    """
    step_m = default_step(results.mesh) if step_m is None else float(step_m)
    threshold = results.threshold if threshold is None else float(threshold)
    depth_from, depth_to, depth, points = hole_samples(collar, float(azimuth_deg), float(dip_deg), float(length_m), step_m)
    mesh = results.mesh
    index, inside = cells_at(mesh, points)
    below_surface = None
    if mesh.has_topography:
        # Depth below the ground (not the mesh top): the ground of the column holding each point.
        _, j, i = np.unravel_index(index, mesh.shape)
        below_surface = np.where(inside, mesh.ground[j, i] - points[:, 2], np.nan)
        # Air holds no posterior: samples above the ground, or in a cell whose centre is above it.
        inside = inside & mesh.active.ravel()[index] & (np.nan_to_num(below_surface, nan=-1.0) >= 0.0)
    values = results.draws[:, index[inside]]
    nan = np.full(depth.shape, np.nan)
    mean, q05, q95, exceedance = nan.copy(), nan.copy(), nan.copy(), nan.copy()
    mean[inside] = values.mean(axis=0)
    if results.n_draws > 1 and values.shape[1]:
        q05[inside], q95[inside] = np.quantile(values, [Q_LOW, Q_HIGH], axis=0)
        exceedance[inside] = (values > threshold).mean(axis=0)
    collar = tuple(float(v) for v in np.ravel(collar))
    return DrillLog(depth, depth_from, depth_to, points[:, 0], points[:, 1], points[:, 2], mean, q05, q95, exceedance,
                    collar, float(azimuth_deg), float(dip_deg), threshold, below_surface)


_DRILL_COLUMNS = ("depth_along_hole", "depth_from", "depth_to", "x", "y", "z", "mean", "q05", "q95", "exceedance")


def write_drill_log(csv_path: str | Path | None, png_path: str | Path | None, log: DrillLog) -> None:
    """Write a :class:`DrillLog` as CSV and/or a PNG strip log (each atomically; None skips it).

    CSV columns: depth_along_hole, depth_from, depth_to (m along the hole), x, y, z (m, z up),
    mean, q05, q95 (kg/m^3), exceedance (probability), and on a mesh with topography
    depth_below_surface (m below the ground, positive down). The PNG has depth along the hole
    increasing downward: the mean with its 90 % band and the threshold on the left, the
    exceedance probability on the right.
    """
    if csv_path is not None:
        names = _DRILL_COLUMNS + (("depth_below_surface",) if log.depth_below_surface is not None else ())
        columns = [np.asarray(getattr(log, name), np.float64).tolist() for name in names]
        write_text_atomic(csv_path, csv_text(names, columns))
    if png_path is not None:
        from ..io import plots

        plots.drill_log(Path(png_path), log)


__all__ = ["DrillLog", "cells_at", "default_step", "drill_log", "hole_direction", "hole_samples", "write_drill_log"]
