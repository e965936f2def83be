"""From a config to results: the stages every command shares.

config -> mesh and survey -> forward operator -> method -> posterior summaries -> files. The
command line (``cli/``) only parses arguments and formats errors; everything it runs is here, so
the same run is one function call from Python.

Conventions (SPEC section 1): metres with z up; density contrast kg/m^3; gz mGal positive down.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .config import Config
from .constants import GRAVITY_UNITS_TO_MGAL
from .errors import InputError
from .forward import MemoryEstimate, make_operator
from .io import read_model
from .mesh import TensorMesh, mesh_from_config
from .model import Normaliser
from .survey import Survey, read_stations_csv, read_survey, read_ubc_obs, sniff_format, write_stations_csv

Log = Callable[[str], None]


def _quiet(message: str) -> None:
    return None


@dataclass(frozen=True, eq=False)
class Setup:
    """Everything a method needs, built once from a config.

    ``coordinates`` are the cell centres in the network's normalised frame (float32);
    ``truth`` the known model (kg/m^3, ``(nz, ny, nx)``) when the config has ``[truth]``.
    """

    config: Config
    mesh: TensorMesh
    survey: Survey
    operator: object
    estimate: MemoryEstimate
    normaliser: Normaliser
    coordinates: jnp.ndarray
    truth: np.ndarray | None

    @property
    def output_directory(self) -> Path:
        return Path(self.config.output.directory)


def _stations(survey: Survey) -> np.ndarray:
    return np.stack([survey.x, survey.y, survey.z], axis=1)


def _warn_outside(mesh: TensorMesh, stations: np.ndarray, source: str, log: Log) -> None:
    west, east, south, north, _, _ = mesh.bounds
    outside = (stations[:, 0] < west) | (stations[:, 0] > east) | (stations[:, 1] < south) | (stations[:, 1] > north)
    if outside.any():
        log(f"warning: {source}: {int(outside.sum())} of {len(stations)} stations lie outside the mesh's "
            f"horizontal extent (x {west:.6g}..{east:.6g} m, y {south:.6g}..{north:.6g} m); "
            "their anomaly sources may be missing from the model")


def read_truth(config: Config, mesh: TensorMesh) -> np.ndarray | None:
    """The ``[truth]`` model on ``mesh`` (kg/m^3, ``(nz, ny, nx)``), or None."""
    if config.truth is None:
        return None
    return read_model(config.truth.path, mesh, config.truth.variable, config.truth.units)


def prepare(config: Config, log: Log = _quiet) -> Setup:
    """Read mesh, stations and truth, and build the forward operator (printing its memory)."""
    mesh = mesh_from_config(config.mesh)
    survey = read_survey(config.data)
    stations = _stations(survey)
    _warn_outside(mesh, stations, survey.source, log)
    truth = read_truth(config, mesh)
    forward = config.forward
    limit = None if forward.memory_limit_gb is None else int(forward.memory_limit_gb * 1024**3)
    operator, estimate = make_operator(mesh, stations, forward.mode, forward.dtype, forward.chunk_size, limit)
    log(f"{survey.n_stations} stations, {mesh.n_cells} cells; {type(operator).__name__}: {estimate.describe()}")
    normaliser = Normaliser.for_mesh(mesh)
    return Setup(config, mesh, survey, operator, estimate, normaliser, normaliser(mesh.cell_centers), truth)


def forward_stations(config: Config, output: Path | None = None, noise: bool = False, log: Log = _quiet) -> Path:
    """``gravuq forward``: gz of ``[truth]`` at the stations of ``[data] path``; writes a CSV.

    Only x, y, z are read from the station file. The CSV has columns x, y, z (m), gz and std in
    the config's ``[data] units`` (so the same config reads it back), gz positive downward.
    With ``noise``, iid Gaussian noise of that std is added, drawn from ``[inference] seed``.
    The std is the file's std column if it has one, else ``[data] std``, plus
    ``std_relative * |gz|`` of the noise-free gz.
    """
    if config.truth is None:
        raise InputError(f"{config.path}: [truth]: gravuq forward needs a [truth] section with the model's path")
    data = config.data
    path = Path(data.path)
    if (data.format or sniff_format(path)) == "ubc":
        table = read_ubc_obs(path)
    else:
        table = read_stations_csv(path, data.columns, need_gz=False)
    stations = np.stack([table.x, table.y, table.z], axis=1)
    mesh = mesh_from_config(config.mesh)
    _warn_outside(mesh, stations, table.source, log)
    truth = read_truth(config, mesh)
    operator, _ = make_operator(mesh, stations, "matrix_free" if config.forward.mode == "matrix_free" else "auto",
                                "float64", config.forward.chunk_size)
    gz = np.asarray(operator.forward(jnp.asarray(truth.ravel(), jnp.float64)))
    to_mgal = GRAVITY_UNITS_TO_MGAL[data.units]
    if table.std is not None:
        std = table.std * to_mgal
    elif data.std is not None:
        std = np.full_like(gz, data.std * to_mgal)
    else:
        std = np.zeros_like(gz)
    std = std + data.std_relative * np.abs(gz)
    if noise:
        if not np.all(std > 0):
            raise InputError(f"{config.path}: [data]: --noise needs a std > 0 at every station; set [data] std")
        from .synthetic import gaussian_noise
        gz = gz + gaussian_noise(jax.random.key(config.inference.seed), std)
    output = Path(output) if output is not None else Path(config.output.directory) / "forward.csv"
    write_stations_csv(output, table.x, table.y, table.z, gz / to_mgal, std / to_mgal)
    log(f"wrote {output}")
    return output


def timed(function, *args, **kwargs):
    """``(result, seconds)`` of one call, wall clock."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start
