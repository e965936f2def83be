"""Whole commands with their guards and records: ``gravuq invert``/``ensemble`` (guard the output
folder, prepare, recover with checkpoints, write, record) and ``gravuq forward``.

``run.json`` in an output folder records the status (running, interrupted, complete), versions,
the config hash and path, the digests of the input files, the seed and timings: what is needed
to reproduce the run; for complete results also the SHA-256 of every file of the set.

The whole-run rules (docs/runs.md): one writer per folder (:class:`~gravuq.io.FolderLock`);
a run's files replace the old set as a whole (written into a staging folder, renamed into place,
recorded last), with the products derived from the old set removed; a rerun of finished results
with the same config and inputs does nothing unless forced; the checkpoint goes once the results
are written. Conventions (SPEC section 1): metres with z up; density contrast kg/m^3; gz mGal
positive down.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import __version__
from .config import Config
from .constants import GRAVITY_UNITS_TO_MGAL
from .distributed import Processes, from_leader
from .errors import InputError
from .forward import MemoryBudget, exact_forward
from .inputs import Log, check_terrain, quiet, read_truth, warn_outside
from .io import Checkpointer, mesh_from_config, read_station_table, write_stations_csv, write_text_atomic
from .io import gradient_std, write_component_csv
from .io import RUN_RECORD, FolderLock, file_digest, folder_manifest, manifest_mismatches, read_run_record
from .sizes import check_output_space, output_bytes
from .survey import station_std

if TYPE_CHECKING:
    from .pipeline import Recovery


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


#: Products that ``predict``, ``drill``, ``export`` and ``compare`` derive from a folder's results
#: (their default names): a new set of results makes them stale, so they are removed with the old set.
DERIVED_PRODUCTS = ("export_ubc", "summary.vtr", "compare", "predict.csv", "drill.csv", "drill.png",
                    "drill_ranking.csv")
#: Where a run writes its new files before they replace the old set (inside the output folder, so
#: that moving them into place is a rename on one filesystem).
STAGING = ".gravuq-staging"


def input_digests(config: Config) -> dict[str, str]:
    """SHA-256 of the files a config reads (data, UBC mesh, truth), by path: with the config hash,
    what decides whether a folder already holds this run's results."""
    paths = [config.data.path, config.mesh.path, config.truth.path if config.truth is not None else None]
    return {str(path): file_digest(path) for path in paths if path is not None and Path(path).is_file()}


class RunRecord:
    """The ``run.json`` of one command in ``directory``: what the folder's results are.

    A folder that holds a complete set keeps its record until a new set replaces it
    (:meth:`complete`): a rerun that is stopped or fails leaves the old results and their record
    as they were. In a folder without complete results, :meth:`start` records the run as
    running, and :meth:`interrupted` (with the command that resumes it) or :meth:`failed` (the
    previous record restored) say how it ended. Each write is atomic.
    """

    def __init__(self, directory: Path, command: str, config: Config, **fields):
        self.directory = Path(directory)
        self.previous = read_run_record(self.directory)
        self.record = {"command": command, "config_hash": config.hash, "config_path": str(config.path),
                       "seed": config.inference.seed, "versions": versions(), "inputs": input_digests(config),
                       **fields}
        self._started = False

    @property
    def holds_results(self) -> bool:
        """Whether the folder holds the complete results of an earlier run."""
        return (self.previous or {}).get("status") == "complete"

    def already_done(self) -> bool:
        """Whether the folder holds this run's complete results: same config and input files,
        and every file as recorded."""
        previous = self.previous or {}
        return (self.holds_results and previous.get("config_hash") == self.record["config_hash"]
                and previous.get("inputs") == self.record["inputs"] and isinstance(previous.get("files"), dict)
                and not manifest_mismatches(self.directory, previous["files"]))

    def _write(self, record: dict) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.directory / RUN_RECORD, json.dumps(record, indent=2, sort_keys=True) + "\n")

    def start(self) -> None:
        self.record.update(started_at=_now())
        if not self.holds_results:
            self._started = True
            self._write({**self.record, "status": "running"})

    def interrupted(self, resume: str) -> None:
        if self._started:
            self._write({**self.record, "status": "interrupted", "resume": resume})

    def failed(self) -> None:
        """Put back the record the folder had before :meth:`start` (none if it had none)."""
        if not self._started:
            return
        if self.previous is None:
            (self.directory / RUN_RECORD).unlink(missing_ok=True)
        else:
            self._write(self.previous)

    def complete(self, timings: dict, files: dict[str, str] | None = None, warnings: list[str] = ()) -> None:
        """Record the results as complete; ``files`` (relative path -> SHA-256) is the set readers
        check (none: a folder whose files are not replaced as a set, as ``compare``'s)."""
        extra = {} if files is None else {"files": files, "warnings": list(warnings)}
        self._write({**self.record, "status": "complete", "finished_at": _now(), "timings_s": timings, **extra})


def check_output_directory(directory: Path, where: str) -> Path:
    """Refuse an output folder that cannot be one: under a regular file, itself a file, or in a
    folder this process may not write to. ``where`` names the setting in the message."""
    directory = Path(directory)
    for path in (directory, *directory.parents):
        if path.exists():
            if not path.is_dir():
                what = "is" if path == directory else f"is a file, so {directory} cannot be made under it; it"
                raise InputError(f"{where} = {directory}: {path} {what} a regular file, not a folder; "
                                 "choose another folder")
            if not os.access(path, os.W_OK | os.X_OK):
                raise InputError(f"{where} = {directory}: {path} is not writable (read-only folder or "
                                 "filesystem); choose another folder")
            break
    return directory


def guard_output_directory(directory: Path, config: Config, force: bool = False) -> Path:
    """Refuse to overwrite results of a different config unless ``force``.

    The folder's ``run.json`` records the config hash of the run that wrote it; the same config
    may overwrite its own results (a rerun), another may not.
    """
    directory = Path(directory)
    record = directory / RUN_RECORD
    if record.exists() and not force:
        previous = (read_run_record(directory) or {}).get("config_hash")
        if previous != config.hash:
            raise InputError(f"{directory}: holds the results of a different config (see its run.json); "
                             "use --force to overwrite them, or set [output] directory to another folder")
    return directory


def publish(directory: Path, staging: Path, record: RunRecord, timings: dict, warnings: list[str], log: Log) -> None:
    """Replace the folder's results by the complete new set in ``staging``.

    The old set stays whole until every new file is written: a failure or a stop while writing
    (full disk, SIGTERM) loses only the staging folder. Then stale files go (those of the old set
    the new one lacks, and the products derived from the old results), the new files are
    renamed into place and ``run.json`` is rewritten with their digests last. A stop between
    the renames and that record is the one window left; readers detect it by the digests.
    """
    files = folder_manifest(staging)
    previous = (record.previous or {}).get("files")
    stale = [name for name in (previous if isinstance(previous, dict) else {}) if name not in files]
    removed = []
    for name in (*stale, *DERIVED_PRODUCTS):
        path = directory / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            continue
        removed.append(name)
    if removed:
        log(f"removed what the previous results left that the new ones replace or make stale: {', '.join(removed)}")
    for name in files:
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / name, target)
    record.complete(timings, files, warnings)
    shutil.rmtree(staging, ignore_errors=True)


def fit_warnings(config: Config, metrics: dict) -> list[str]:
    """Warnings about a fit far from its target: chi^2/N above three times ``[inference]
    target_misfit`` (against the learned noise model where one was learned)."""
    target = config.inference.target_misfit
    chi2 = metrics.get("chi2_per_datum_learned", metrics.get("chi2_per_datum"))
    if isinstance(chi2, float) and math.isfinite(chi2) and chi2 > 3.0 * target:
        return [f"the mean model fits the data to chi2/N = {chi2:.4g}, more than 3 times the target "
                f"[inference] target_misfit = {target:g}: the model cannot explain the data at their stated "
                "noise (check the std, the mesh extent and depth, the prior's scale and correlation length)"]
    if isinstance(chi2, float) and not math.isfinite(chi2):
        return [f"the mean model's chi2/N is {chi2} (not a number): check the data and their std"]
    return []


#: What process 0 tells the others in a multi-process run (:func:`gravuq.distributed.from_leader`).
_GO, _DONE, _FAILED = 1, 2, 3


class _Agreement:
    """Process 0's word to the others at one point of a multi-process run, said exactly once
    (a no-op in a single-process run)."""

    def __init__(self, processes: Processes | None):
        self.processes, self.said = processes, False

    def say(self, code: int) -> None:
        if self.processes is not None and not self.said:
            self.said = True
            from_leader(code)


def run_command(config: Config, command: str, allowed: tuple[str, ...], progress=None, log: Log = quiet,
                resume: bool = False, force: bool = False, checkpoint_every: int = 50,
                replace_other: bool = False, processes: Processes | None = None) -> Recovery | None:
    """``gravuq invert``/``ensemble``: guard and lock the output folder, prepare, recover (with
    checkpoints under ``<output>/checkpoint``), write the new set of outputs and ``run.json``.

    Returns None, doing nothing, when the folder already holds this run's complete results
    (same config, same input files, files intact) and ``force`` is not given; ``--resume`` does
    not change that. ``replace_other`` lets results of another config be replaced (the demo's
    own folder), as ``force`` does, without forcing a rerun of finished results.

    ``processes`` (:func:`gravuq.distributed.initialize`): one of several processes running
    this same command; the ensemble's members are split over all their devices. Process 0 guards,
    locks and writes the output folder as above; the others only read the inputs, train their
    members and wait for process 0's outputs, never touching the folder. No checkpoints.
    """
    method = config.inference.method
    if method not in allowed:
        raise InputError(f"{config.path}: [inference] method = '{method}': gravuq {command} runs "
                         f"{' or '.join(repr(m) for m in allowed)}")
    if command == "ensemble" and config.inference.members < 2:
        raise InputError(f"{config.path}: [inference] members: expected at least 2 for a posterior, "
                         f"found {config.inference.members}")
    if processes is not None:
        if method != "ensemble":
            raise InputError(f"{config.path}: [inference] method = '{method}': --distributed splits the members of "
                             "method = 'ensemble' over the processes; run other methods on one process")
        if resume:
            raise InputError("--resume: a --distributed run keeps no checkpoint (its members live on several "
                             "machines); run it again without --resume")
        if not processes.leader:
            return _follow(config, progress, log, processes)
    start = _Agreement(processes)
    try:
        directory = check_output_directory(Path(config.output.directory), f"{config.path}: [output] directory")
        guard_output_directory(directory, config, force or replace_other)
        with FolderLock(directory, f"gravuq {command} {config.path}"):
            # Read the record under the lock: another run may have finished meanwhile.
            guard_output_directory(directory, config, force or replace_other)
            extra = {} if processes is None else {"processes": processes.count, "devices": processes.devices}
            record = RunRecord(directory, command, config, method=method, **extra)
            if record.already_done() and not force:
                log(f"{directory}: already holds the complete results of {config.path} (finished "
                    f"{record.previous.get('finished_at', '')}; same config and input files): nothing to do; "
                    "use --force to run it again")
                start.say(_DONE)
                return None
            return _run(config, command, directory, record, progress, log, resume, checkpoint_every, start)
    except BaseException:
        start.say(_FAILED)  # the others must not wait for a run that does not start
        raise


def _follow(config: Config, progress, log: Log, processes: Processes) -> Recovery | None:
    """A process other than 0 of a multi-process run: prepare and train as process 0 does (the
    same collectives in the same order), then wait until process 0 has written the outputs."""
    from .pipeline import check_run_sizes, prepare, recover  # the inference code: only for the commands that train
    try:
        setup = prepare(config, log, processes)
    except InputError as error:
        raise _in_config(config, error) from None
    check_run_sizes(setup)
    said = from_leader(0)
    if said == _DONE:
        log("process 0 found the complete results in the [output] directory: nothing to do")
        return None
    if said != _GO:
        raise InputError(f"process {processes.index} of {processes.count}: process 0 did not start the run "
                         "(its message says why)")
    recovery = recover(setup, config.inference.method, progress, None, log)
    if from_leader(0) != _GO:
        raise RuntimeError(f"process {processes.index} of {processes.count}: process 0 failed to write the "
                           "outputs (its message says why)")
    log(f"process {processes.index} of {processes.count}: done; process 0 wrote the outputs")
    return recovery


def _run(config: Config, command: str, directory: Path, record: RunRecord, progress, log: Log, resume: bool,
         checkpoint_every: int, start: _Agreement = _Agreement(None)) -> Recovery:
    from .outputs import write_outputs  # with the inference code: only for the commands that train
    from .pipeline import check_run_sizes, prepare, recover, timed

    try:
        setup, prepare_s = timed(prepare, config, log, start.processes)
    except InputError as error:
        raise _in_config(config, error) from None
    check_run_sizes(setup)
    check_output_space(directory, *output_bytes(config, setup.mesh.n_cells, setup.survey.n_data),
                       f"{config.path}: [output] directory")
    record.start()
    several = start.processes is not None
    # A multi-process run's members live on several machines: no process can save them alone.
    checkpoint = None if several else Checkpointer(directory / "checkpoint", config.hash, checkpoint_every, resume)
    staging = directory / STAGING
    finish, trained = _Agreement(start.processes), False
    start.say(_GO)
    try:
        recovery, recover_s = timed(recover, setup, config.inference.method, progress, checkpoint, log)
        trained = True  # from here on the other processes wait for this one's word
        if several:
            recovery.metrics.update(processes=start.processes.count, devices=start.processes.devices)
        warnings = fit_warnings(config, recovery.metrics)
        for warning in warnings:
            log(f"warning: {warning}")
        if warnings:
            recovery.metrics["warnings"] = warnings
        shutil.rmtree(staging, ignore_errors=True)
        _, write_s = timed(write_outputs, setup, recovery, staging, True)
        publish(directory, staging, record, {"prepare": prepare_s, "recover": recover_s, "write": write_s},
                warnings, log)
        finish.say(_GO)
    except KeyboardInterrupt:
        shutil.rmtree(staging, ignore_errors=True)
        resume_command = f"gravuq {command} {config.path}" + ("" if several else " --resume")
        if record.holds_results and not several:
            log(f"stopped: {directory} keeps the complete results of the previous run; "
                f"{resume_command} --force continues this one from its checkpoint")
        record.interrupted(resume_command)
        raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        record.failed()
        if trained:  # a failure while training is every process's (the same work) and ends them all
            finish.say(_FAILED)
        raise
    if checkpoint is not None:
        checkpoint.remove()
    log(f"wrote {directory}")
    return recovery


def _in_config(config: Config, error: InputError) -> InputError:
    """``error`` naming the file it is about: the operator's messages name a [forward] key or
    "stations" without knowing the config or data file."""
    message = str(error)
    if message.startswith("stations: "):
        return InputError(f"{config.data.path}: {message.removeprefix('stations: ')}")
    if message.startswith("["):
        return InputError(f"{config.path}: {message}")
    return error


def forward_stations(config: Config, output: Path | None = None, noise: bool = False, log: Log = quiet) -> Path:
    """``gravuq forward``: gz of ``[truth]`` at the stations of ``[data] path``; writes a CSV.

    Only x, y, z are read from the station file. The CSV has columns x, y, z (m), gz and std in
    the config's ``[data] units`` (so the same config reads it back), gz positive downward.
    With ``noise``, iid Gaussian noise of that std is added, drawn from ``[inference] seed``.
    The std is the file's std column if it has one, else ``[data] std``, plus
    ``std_relative * |gz|`` of the noise-free gz. The gz are computed in float64 by
    :func:`gravuq.forward.exact_forward`: in NumPy (the FFT for stations on a grid of the cell
    widths at one height, else node-shared rows), or by the JAX exact operator for large problems
    off a grid; the same numbers to float64 rounding (1e-12 of max |gz|, tested) whatever the
    path, which the log names. Only the input checks, readers and the forward code are imported:
    no inference code, and JAX only for the JAX path or ``noise`` (drawn as ever from the seed).
    """
    if config.truth is None:
        raise InputError(f"{config.path}: [truth]: gravuq forward needs a [truth] section with the model's path")
    data = config.data
    table = read_station_table(data, need_gz=False)
    stations = np.stack([table.x, table.y, table.z], axis=1)
    mesh = mesh_from_config(config.mesh)
    warn_outside(mesh, stations, table.source, log)
    check_terrain(config, mesh, stations, table.source, log)
    truth = read_truth(config, mesh)
    components = tuple(data.components)
    try:
        # The truth's air cells (above the ground) count as zero contrast.
        values, how = exact_forward(mesh, stations, truth.ravel(), MemoryBudget.from_gb(config.forward.memory_limit_gb),
                                    config.forward.chunk_size, matrix_free=config.forward.mode == "matrix_free",
                                    components=components)
    except InputError as error:
        raise _in_config(config, error) from None
    log(f"{', '.join(components)} of [truth] at {len(stations)} stations: {how}")
    if components != ("gz",):
        return _forward_components(config, table, values, output, noise, log)
    gz = values
    to_mgal = GRAVITY_UNITS_TO_MGAL[data.units]
    std = station_std(data, table.std, gz)
    if noise:
        if not np.all(std > 0):
            raise InputError(f"{config.path}: [data]: --noise needs a std > 0 at every station; set [data] std")
        gz = gz + _noise(config.inference.seed, std)
    output = Path(output) if output is not None else Path(config.output.directory) / "forward.csv"
    write_stations_csv(output, table.x, table.y, table.z, gz / to_mgal, std / to_mgal)
    log(f"wrote {output}")
    return output


def _noise(seed: int, std: np.ndarray) -> np.ndarray:
    """iid Gaussian noise of ``std`` (per datum, in its unit) from ``[inference] seed``: JAX's
    generator, as every gravuq run draws, imported only when noise is asked for."""
    import jax

    from .synthetic import gaussian_noise

    return gaussian_noise(jax.random.key(seed), std)


def _forward_components(config: Config, table, values, output: Path | None, noise: bool, log: Log) -> Path:
    """``gravuq forward`` with ``[data] components``: one column per component and its std
    (gz in ``[data] units``, gradients in Eotvos; see :func:`gravuq.io.write_component_csv`),
    the stds by the rules of ``[data]`` (gz: std column, ``std``, ``std_relative``, ``std_min``;
    gradients: ``gradient_std`` plus ``std_relative``), noise drawn per datum with ``--noise``."""
    data = config.data
    components = tuple(data.components)
    n = table.x.size
    values = np.asarray(values, np.float64).reshape(len(components), n)
    blocks = dict(zip(components, values))
    std = {c: station_std(data, table.std, blocks[c]) if c == "gz" else
           gradient_std(data, c, blocks[c], source=f"{config.path}: [data]") for c in components}
    if noise:
        if not all(np.all(s > 0) for s in std.values()):
            raise InputError(f"{config.path}: [data]: --noise needs a std > 0 at every station; set [data] std")
        stacked = np.concatenate([std[c] for c in components])
        noisy = np.concatenate([blocks[c] for c in components]) + _noise(config.inference.seed, stacked)
        blocks = dict(zip(components, np.asarray(noisy).reshape(len(components), n)))
    output = Path(output) if output is not None else Path(config.output.directory) / "forward.csv"
    write_component_csv(output, table.x, table.y, table.z, blocks, std, data.columns, data.units)
    log(f"wrote {output} ({', '.join(components)})")
    return output


__all__ = ["DERIVED_PRODUCTS", "RunRecord", "check_output_directory", "fit_warnings", "forward_stations",
           "guard_output_directory", "input_digests", "publish", "run_command", "versions"]
