"""Whole commands with their guards and records: ``gravuq invert``/``ensemble`` (guard the output
folder, prepare, recover with checkpoints, write, record) and ``gravuq forward``.

``run.json`` in an output folder records the status (running, interrupted, complete), versions,
the config hash and path, the seed and timings: what is needed to reproduce the run. Conventions
(SPEC section 1): metres with z up; density contrast kg/m^3; gz mGal positive down.
"""

from __future__ import annotations

import json
import platform
import time
from importlib import metadata
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from . import __version__
from .config import Config
from .constants import GRAVITY_UNITS_TO_MGAL
from .errors import InputError
from .forward import MemoryBudget, exact_operator
from .io import Checkpointer, mesh_from_config, read_station_table, write_stations_csv, write_text_atomic
from .outputs import write_outputs
from .pipeline import Log, Recovery, prepare, quiet, read_truth, recover, timed, warn_outside
from .survey import station_std
from .synthetic import gaussian_noise


def versions() -> dict:
    """The versions of gravuq, Python and the libraries a result depends on."""
    found = {"gravuq": __version__, "python": platform.python_version()}
    for name in ("jax", "jaxlib", "equinox", "optax", "numpyro", "arviz", "numpy", "xarray", "lineax", "optimistix"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class RunRecord:
    """The ``run.json`` of one command in ``directory``: :meth:`start` writes it as running,
    :meth:`interrupted` and :meth:`complete` rewrite it with the outcome (each atomically)."""

    def __init__(self, directory: Path, command: str, config: Config, **fields):
        self.directory = Path(directory)
        self.record = {"command": command, "config_hash": config.hash, "config_path": str(config.path),
                       "seed": config.inference.seed, "versions": versions(), **fields}

    def _write(self, record: dict) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.directory / "run.json", json.dumps(record, indent=2, sort_keys=True) + "\n")

    def start(self) -> None:
        self.record.update(started_at=_now(), status="running")
        self._write(self.record)

    def interrupted(self, resume: str) -> None:
        self._write({**self.record, "status": "interrupted", "resume": resume})

    def complete(self, timings: dict) -> None:
        self._write({**self.record, "status": "complete", "finished_at": _now(), "timings_s": timings})


def guard_output_directory(directory: Path, config: Config, force: bool = False) -> Path:
    """Refuse to overwrite results of a different config unless ``force``.

    The folder's ``run.json`` records the config hash of the run that wrote it; the same config
    may overwrite its own results (a rerun), another may not.
    """
    directory = Path(directory)
    record = directory / "run.json"
    if record.exists() and not force:
        try:
            previous = json.loads(record.read_text()).get("config_hash")
        except (OSError, ValueError):
            previous = None
        if previous != config.hash:
            raise InputError(f"{directory}: holds the results of a different config (see its run.json); "
                             "use --force to overwrite them, or set [output] directory to another folder")
    return directory


def run_command(config: Config, command: str, allowed: tuple[str, ...], progress=None, log: Log = quiet,
                resume: bool = False, force: bool = False, checkpoint_every: int = 50) -> Recovery:
    """``gravuq invert``/``ensemble``: guard the output folder, prepare, recover (with
    checkpoints under ``<output>/checkpoint``), write the outputs and ``run.json`` last."""
    method = config.inference.method
    if method not in allowed:
        raise InputError(f"{config.path}: [inference] method = '{method}': gravuq {command} runs "
                         f"{' or '.join(repr(m) for m in allowed)}")
    if command == "ensemble" and config.inference.members < 2:
        raise InputError(f"{config.path}: [inference] members: expected at least 2 for a posterior, "
                         f"found {config.inference.members}")
    directory = guard_output_directory(Path(config.output.directory), config, force or resume)
    record = RunRecord(directory, command, config, method=method)
    setup, prepare_s = timed(prepare, config, log)
    record.start()
    checkpoint = Checkpointer(directory / "checkpoint", config.hash, checkpoint_every, resume)
    try:
        recovery, recover_s = timed(recover, setup, method, progress, checkpoint, log)
    except KeyboardInterrupt:
        record.interrupted(f"gravuq {command} {config.path} --resume")
        raise
    _, write_s = timed(write_outputs, setup, recovery, None, True, log)
    record.complete({"prepare": prepare_s, "recover": recover_s, "write": write_s})
    return recovery


def forward_stations(config: Config, output: Path | None = None, noise: bool = False, log: Log = quiet) -> Path:
    """``gravuq forward``: gz of ``[truth]`` at the stations of ``[data] path``; writes a CSV.

    Only x, y, z are read from the station file. The CSV has columns x, y, z (m), gz and std in
    the config's ``[data] units`` (so the same config reads it back), gz positive downward.
    With ``noise``, iid Gaussian noise of that std is added, drawn from ``[inference] seed``.
    The std is the file's std column if it has one, else ``[data] std``, plus
    ``std_relative * |gz|`` of the noise-free gz. The gz are computed with the exact float64
    rows (:func:`gravuq.forward.exact_operator`), never the FFT path: the file must not change
    with the choice of operator.
    """
    if config.truth is None:
        raise InputError(f"{config.path}: [truth]: gravuq forward needs a [truth] section with the model's path")
    data = config.data
    table = read_station_table(data, need_gz=False)
    stations = np.stack([table.x, table.y, table.z], axis=1)
    mesh = mesh_from_config(config.mesh)
    warn_outside(mesh, stations, table.source, log)
    truth = read_truth(config, mesh)
    operator = exact_operator(mesh, stations, MemoryBudget.from_gb(config.forward.memory_limit_gb),
                              config.forward.chunk_size, matrix_free=config.forward.mode == "matrix_free")
    gz = np.asarray(operator.forward(jnp.asarray(truth.ravel(), jnp.float64)))
    to_mgal = GRAVITY_UNITS_TO_MGAL[data.units]
    std = station_std(data, table.std, gz)
    if noise:
        if not np.all(std > 0):
            raise InputError(f"{config.path}: [data]: --noise needs a std > 0 at every station; set [data] std")
        gz = gz + gaussian_noise(jax.random.key(config.inference.seed), std)
    output = Path(output) if output is not None else Path(config.output.directory) / "forward.csv"
    write_stations_csv(output, table.x, table.y, table.z, gz / to_mgal, std / to_mgal)
    log(f"wrote {output}")
    return output


__all__ = ["RunRecord", "forward_stations", "guard_output_directory", "run_command", "versions"]
