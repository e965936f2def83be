"""The light input checks and readers shared by the whole commands (:mod:`gravuq.pipeline`) and
``gravuq forward`` (:mod:`gravuq.runs`): a log type, stations outside the mesh or below the
ground, the ``[truth]`` model. Importing this module costs no inference code (no optax,
numpyro, scipy.stats), so ``gravuq forward`` starts without them.

Conventions (SPEC section 1): metres, x east, y north, z elevation positive up; density
contrast in kg/m^3.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .config import Config
from .io import check_stations_above, read_model, read_topography
from .mesh import TensorMesh

Log = Callable[[str], None]


def quiet(message: str) -> None:
    """A log that prints nothing."""
    return None


def warn_outside(mesh: TensorMesh, stations: np.ndarray, source: str, log: Log) -> None:
    """Log a warning when stations (``(n, 3)`` m) lie outside the mesh's horizontal extent."""
    west, east, south, north, _, _ = mesh.bounds
    outside = (stations[:, 0] < west) | (stations[:, 0] > east) | (stations[:, 1] < south) | (stations[:, 1] > north)
    if outside.any():
        log(f"warning: {source}: {int(outside.sum())} of {len(stations)} stations lie outside the mesh's "
            f"horizontal extent (x {west:.6g}..{east:.6g} m, y {south:.6g}..{north:.6g} m); "
            "their anomaly sources may be missing from the model")


def check_terrain(config: Config, mesh: TensorMesh, stations: np.ndarray, source: str, log: Log = quiet) -> None:
    """With ``[mesh] topography``: an :class:`InputError` naming the first station below the
    ground (stations anywhere on or above it are fine), and a log line of the active cells."""
    topography = config.mesh.topography
    if topography is None:
        return
    check_stations_above(read_topography(topography), stations, source, topography)
    log(f"topography {topography}: {mesh.n_active} of {mesh.n_cells} cells below the ground are active, "
        f"{mesh.n_cells - mesh.n_active} air cells fixed at zero contrast")


def read_truth(config: Config, mesh: TensorMesh) -> np.ndarray | None:
    """The ``[truth]`` model on ``mesh`` (kg/m^3, ``(nz, ny, nx)``), or None."""
    if config.truth is None:
        return None
    return read_model(config.truth.path, mesh, config.truth.variable, config.truth.units)


__all__ = ["Log", "check_terrain", "quiet", "read_truth", "warn_outside"]
