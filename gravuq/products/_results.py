"""A finished run's results read back from its folder (``summary.nc``, ``posterior.nc``).

Conventions (SPEC section 1): x easting, y northing, z elevation positive up, metres; density
contrast in kg/m^3 on ``(nz, ny, nx)`` meshes flattened in C order; gz in mGal, positive down.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import InputError
from ..io import mesh_from_dataset
from ..io import verify_manifest
from ..mesh import TensorMesh
from ..survey import evaluate_trend

SUMMARY_FILE = "summary.nc"
POSTERIOR_FILE = "posterior.nc"


@dataclass(frozen=True, eq=False)
class Results:
    """A run's results, read back from its directory.

    Attributes
    ----------
    directory
        The results directory.
    mesh
        The tensor mesh of the models.
    summary
        ``summary.nc`` as an xarray Dataset (dims ``(z, y, x)``; mean, std, q05, q95 in kg/m^3,
        exceedance, resolution), loaded into memory.
    draws
        Posterior draws of the density contrast, ``(draws, cells)`` float64, kg/m^3, cells flat
        in C order of ``(nz, ny, nx)``; chains are stacked. Without ``posterior.nc``, one row:
        the summary mean.
    threshold
        The run's exceedance threshold, kg/m^3 (``summary.nc`` attribute ``threshold``).
    method
        The method that produced the results (``summary.nc`` attribute, or ``"unknown"``).
    detrend
        ``"none"``, ``"mean"`` or ``"plane"``: the regional removed before inversion.
    trend_coefficients
        ``(c0, cx, cy)`` in mGal, mGal/m, mGal/m: regional = ``c0 + cx (x - x0) + cy (y - y0)``.
    trend_origin
        ``(x0, y0)`` in m.
    has_posterior
        Whether the draws came from ``posterior.nc``.
    """

    directory: Path
    mesh: TensorMesh
    summary: xr.Dataset
    draws: np.ndarray
    threshold: float
    method: str
    detrend: str = "none"
    trend_coefficients: tuple[float, float, float] = (0.0, 0.0, 0.0)
    trend_origin: tuple[float, float] = (0.0, 0.0)
    has_posterior: bool = False

    @property
    def n_draws(self) -> int:
        return int(self.draws.shape[0])

    def regional_at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The regional trend removed before inversion, at easting ``x`` and northing ``y`` (m),
        in mGal (positive down); zeros for ``detrend = "none"``."""
        return evaluate_trend(self.trend_coefficients, self.trend_origin, x, y)


def _open_group(path: Path, group: str | None) -> xr.Dataset:
    try:
        with xr.open_dataset(path, group=group, engine="h5netcdf") as dataset:
            return dataset.load()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except Exception as err:  # the engines raise many types for a file that is not NetCDF
        where = f" (group '{group}')" if group else ""
        raise InputError(f"{path}: cannot read as NetCDF{where} ({type(err).__name__}: {err})") from None


def _trend_from_attrs(attrs: dict) -> tuple[str, tuple[float, float, float], tuple[float, float]] | None:
    if "trend_coefficients" not in attrs:
        return None
    coefficients = tuple(float(c) for c in np.ravel(attrs["trend_coefficients"]))
    origin = tuple(float(c) for c in np.ravel(attrs.get("trend_origin", (0.0, 0.0))))
    if len(coefficients) != 3 or len(origin) != 2:
        return None
    return str(attrs.get("detrend", "plane")), coefficients, origin


def load_results(directory: str | Path) -> Results:
    """Read a results directory written by ``gravuq ensemble`` or ``gravuq invert``.

    Parameters
    ----------
    directory
        The folder holding ``summary.nc`` and, for probabilistic runs, ``posterior.nc``.

    Returns
    -------
    Results
        Mesh, summary, draws ``(draws, cells)`` in kg/m^3 (the summary mean as one draw when
        there is no ``posterior.nc``), threshold (kg/m^3) and the regional trend removed before
        inversion (read from ``posterior.nc``'s ``constant_data`` attributes, else from
        ``summary.nc``'s attributes, else none).

    Raises
    ------
    InputError
        The folder's files are not the set its ``run.json`` records (a run stopped while
        replacing them), the folder or ``summary.nc`` is missing or unreadable, ``summary.nc`` lacks ``mean``,
        the cell boundaries or ``threshold``, or ``posterior.nc`` does not match its mesh.
    """
    directory = Path(directory)
    if not directory.exists():
        raise InputError(f"{directory}: results directory not found (expected the [output] directory of a "
                         "gravuq ensemble or invert run, holding summary.nc)")
    if not directory.is_dir():
        raise InputError(f"{directory}: expected a results directory (holding summary.nc), found a file")
    verify_manifest(directory)
    summary_path = directory / SUMMARY_FILE
    if not summary_path.is_file():
        raise InputError(f"{summary_path}: file not found; is {directory} the output directory of a gravuq "
                         "ensemble or invert run?")
    summary = _open_group(summary_path, None)
    for name in ("mean", "x_node", "y_node", "z_node"):
        if name not in summary.variables:
            raise InputError(f"{summary_path}: no '{name}' (expected a summary.nc written by gravuq, with the mean "
                             "and the cell boundaries x_node, y_node, z_node)")
    if "threshold" not in summary.attrs:
        raise InputError(f"{summary_path}: no 'threshold' attribute (the [output] threshold, kg/m^3)")
    mesh = mesh_from_dataset(summary)
    mean = summary["mean"]
    if set(mean.dims) != {"z", "y", "x"} or mean.transpose("z", "y", "x").shape != mesh.shape:
        raise InputError(f"{summary_path}: 'mean' has dims {mean.dims} and shape {mean.shape}, expected "
                         f"(z, y, x) = {mesh.shape} from the cell boundaries")
    trend = _trend_from_attrs(summary.attrs)

    posterior_path = directory / POSTERIOR_FILE
    if posterior_path.is_file():
        posterior = _open_group(posterior_path, "posterior")
        if "density" not in posterior:
            raise InputError(f"{posterior_path}: group 'posterior' has no variable 'density'")
        density = posterior["density"]
        if set(density.dims) != {"chain", "draw", "z", "y", "x"}:
            raise InputError(f"{posterior_path}: posterior 'density' has dims {density.dims}, expected "
                             "(chain, draw, z, y, x)")
        density = density.transpose("chain", "draw", "z", "y", "x")
        if density.shape[2:] != mesh.shape:
            raise InputError(f"{posterior_path}: posterior 'density' has (z, y, x) shape {density.shape[2:]}, "
                             f"but {summary_path} has {mesh.shape}")
        draws = np.asarray(density.values, np.float64).reshape(-1, mesh.n_cells)
        try:
            constant_attrs = _open_group(posterior_path, "constant_data").attrs
        except InputError:  # a posterior written without station data: no trend recorded there
            constant_attrs = {}
        trend = _trend_from_attrs(constant_attrs) or trend
        has_posterior = True
    else:
        draws = np.asarray(mean.transpose("z", "y", "x").values, np.float64).reshape(1, -1)
        has_posterior = False
    if mesh.has_topography:  # air cells hold their fixed zero contrast (NaN in summary.nc)
        draws = np.where(mesh.active.ravel()[None, :], draws, 0.0)
    detrend, coefficients, origin = trend or ("none", (0.0, 0.0, 0.0), (0.0, 0.0))
    return Results(directory, mesh, summary, draws, float(summary.attrs["threshold"]),
                   str(summary.attrs.get("method", "unknown")), detrend, coefficients, origin, has_posterior)


__all__ = ["POSTERIOR_FILE", "Results", "SUMMARY_FILE", "load_results"]
