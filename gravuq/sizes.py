"""What a config's sizes cost, checked before any work starts.

Every size a config controls (the members or particles, the NUTS draws, the network's width and
depth, the hash encoding's tables) sets the memory of a run: the draws and predictions that are
summarised and written, and the networks' activations and optimiser state while training. Each
is estimated here from the config and the problem's dimensions and checked against the run's
:class:`~gravuq.forward.MemoryBudget` (``[forward] memory_limit_gb``), so an impossible run ends
at once with exit 2, the numbers and the key to change, instead of hours later in an
out-of-memory error, a hang or an integer overflow.

The estimates are deliberately simple upper-bound style counts (float64 for draws and
predictions, float32 for networks, a small factor for the copies an operation makes); they are
meant to catch sizes that cannot work, not to predict a run's peak to the byte.
"""

from __future__ import annotations

import dataclasses

from .config import Config
from .errors import InputError
from .forward import MemoryBudget

#: The hash encoding indexes its tables with 32-bit integers.
MAX_HASH_TABLE_SIZE = 2**31
#: HDF5 metadata of a NetCDF file with ArviZ's groups and attributes, bytes (about 120 kB measured).
NETCDF_OVERHEAD_BYTES = 256e3
#: Methods that train networks, and how many the config asks for.
NETWORK_METHODS = ("deterministic", "ensemble", "svgd", "last_layer")


#: The range of the default hash-table size (entries per level), see :func:`table_size_for`.
TABLE_SIZE_RANGE = (2**12, 2**19)


def table_size_for(n_cells: int) -> int:
    """The default hash-table size for a mesh of ``n_cells`` cells: the smallest power of two at
    least ``n_cells``, within :data:`TABLE_SIZE_RANGE`.

    Notes
    -----
    A level whose grid has more vertices than its table shares rows between vertices (hash
    collisions); with fewer entries than cells, the finest levels cannot give every cell its own
    value, and a network cannot reach a randomised-MAP solution that needs it. Measured on the
    real survey of ``examples/real_gambit`` (40,128 cells, 10 members, 32 Levenberg-Marquardt
    steps): members' median relative optimality gap 8.1 % with 4096 entries, 3.0 % with 32,768,
    for 13 % more time. The upper end bounds the memory of the tables (2^19 entries x 4 levels x
    2 features is 4.2 million parameters a network).
    """
    low, high = TABLE_SIZE_RANGE
    return int(min(high, max(low, 1 << max(0, int(n_cells) - 1).bit_length())))


def with_table_size(settings, n_cells: int):
    """``[model]`` settings with ``hash_table_size`` set: as given, else :func:`table_size_for`
    (other encodings: unchanged)."""
    if settings.encoding != "hash" or settings.hash_table_size is not None:
        return settings
    return dataclasses.replace(settings, hash_table_size=table_size_for(n_cells))


def encoding_features(config: Config) -> int:
    """Inputs of the network's first layer for ``[model] encoding``."""
    model = config.model
    if model.encoding == "fourier":
        return 2 * model.frequencies
    if model.encoding == "positional":
        return 3 + 6 * model.frequencies
    if model.encoding == "hash":
        return model.hash_levels * model.hash_features
    return 3


def network_parameters(config: Config, n_cells: int = 0) -> int:
    """Parameters of one network of ``[model]`` (the hash tables included: an unset
    ``hash_table_size`` is the default for ``n_cells`` cells, :func:`table_size_for`)."""
    model = with_table_size(config.model, n_cells)
    width, depth = model.width, model.depth
    parameters = (encoding_features(config) + 1) * width + max(0, depth - 1) * (width + 1) * width + width + 1
    if model.encoding == "hash":
        parameters += model.hash_levels * model.hash_table_size * model.hash_features
    return parameters


def activation_bytes(config: Config, n_cells: int) -> float:
    """Bytes one network's training keeps at ``n_cells`` cells for its Jacobian products
    (float32): its layers' values and tangents, its encoding's features and the step's working
    copies. About 1.2 kB a cell for the default network, as measured for one Gauss-Newton
    product on 125,000 cells (XLA's temporary buffers), with a margin."""
    model = config.model
    return 4.0 * n_cells * (8 * model.width * model.depth + 8 * encoding_features(config) + 32)


def member_bytes(config: Config, n_cells: int, n_stations: int) -> float:
    """Bytes each member holds through training whatever the batch: its parameters with their
    optimiser state (six float32 copies), its draw and prediction (float64, with the summaries'
    copies) and its anchor, offset and output at every cell (float32)."""
    return 6 * 4.0 * network_parameters(config, n_cells) + 3 * 8.0 * (n_cells + n_stations) + 12.0 * n_cells


def member_batch(config: Config, n_cells: int, n_stations: int, budget: MemoryBudget,
                 method: str | None = None) -> int | None:
    """How many ensemble members Levenberg-Marquardt linearises at a time so that their
    activations (:func:`activation_bytes`), beside what every member holds anyway
    (:func:`member_bytes`), fit in ``budget``: None when all of them fit at once (or the method
    or trainer trains them together anyway: Adam, SVGD's particles), else at least 1
    (:func:`check_sizes` refuses when one does not fit). ``method``: the one run (default
    ``[inference] method``)."""
    inference = config.inference
    if (method or inference.method) != "ensemble" or inference.trainer != "levenberg_marquardt":
        return None
    one = activation_bytes(config, n_cells)
    room = budget.allowed() - inference.members * member_bytes(config, n_cells, n_stations)
    if inference.members * one <= room:
        return None
    return max(1, int(room // one))


def draw_count(config: Config) -> int:
    """How many posterior draws the method writes."""
    inference = config.inference
    if inference.method in ("deterministic", "tikhonov"):
        return 1
    if inference.method == "last_layer" and inference.last_layer_solver != "closed_form":
        return max(inference.members, inference.nuts_chains * inference.nuts_samples)
    if inference.method == "mcmc":
        return inference.nuts_chains * inference.nuts_samples
    return inference.members


def check_sizes(config: Config, n_cells: int, n_stations: int, budget: MemoryBudget) -> None:
    """Refuse, before any work, sizes whose memory exceeds ``budget``.

    Parameters
    ----------
    config
        The run's config: ``[inference]`` method, members, NUTS settings; ``[model]`` sizes.
    n_cells, n_stations
        The problem's dimensions (active cells of the mesh, stations).
    budget
        The run's memory budget.

    Raises
    ------
    InputError
        Naming the config file, the key to change, the estimate and the limit.
    """
    where = f"{config.path}: "
    inference, model = config.inference, with_table_size(config.model, n_cells)
    method = inference.method
    if method in NETWORK_METHODS and model.encoding == "hash" and model.hash_table_size > MAX_HASH_TABLE_SIZE:
        raise InputError(f"{where}[model] hash_table_size = {model.hash_table_size}: at most 2^31 = "
                         f"{MAX_HASH_TABLE_SIZE} entries (tables are indexed with 32-bit integers); typical "
                         "values are 2^12..2^19")
    draws = draw_count(config)
    key = {"last_layer": "[inference] nuts_samples (times nuts_chains) or members",
           "mcmc": "[inference] nuts_samples (times nuts_chains)"}.get(method, "[inference] members")
    # Draws and their predictions in float64, with the copies the summaries (sorting for the
    # quantiles) and the written files make.
    budget.require(3 * 8.0 * draws * (n_cells + n_stations), f"{where}{key}",
                   f"lower {key} (now {draws} draws), or raise [forward] memory_limit_gb",
                   item=f"{draws} posterior draws of {n_cells} cells and {n_stations} stations: ")
    if method == "mcmc" and inference.mcmc_prior == "truncated":
        # Exact HMC holds the posterior covariance, its Cholesky factor and the prior's, float64.
        budget.require(3 * 8.0 * n_cells**2, f"{where}[inference] mcmc_prior = \"truncated\"",
                       "use a coarser [mesh], or raise [forward] memory_limit_gb",
                       item=f"the {n_cells} x {n_cells} posterior covariance, its factor and the prior's: ")
    if method not in NETWORK_METHODS:
        return
    networks = 1 if method in ("deterministic", "last_layer") else inference.members
    parameters = network_parameters(config, n_cells)
    # Optimiser state (Adam's two moments, Gauss-Newton's step and search directions) and the
    # gradient: about six copies of the parameters in float32.
    budget.require(6 * 4.0 * networks * parameters, f"{where}[model] width, depth"
                   + (", hash_table_size" if model.encoding == "hash" else "")
                   + ("" if networks == 1 else " and [inference] members"),
                   f"use a smaller [model] width (now {model.width}), depth (now {model.depth})"
                   + (f", hash_table_size (now {model.hash_table_size})" if model.encoding == "hash" else "")
                   + ("" if networks == 1 else f" or fewer [inference] members (now {networks})")
                   + ", or raise [forward] memory_limit_gb",
                   item=f"{networks} network(s) of {parameters} parameters with their optimiser state: ")
    # Activations at every cell, kept for the Jacobian products. Levenberg-Marquardt can
    # linearise the members a batch at a time (member_batch): then one network's activations
    # must fit beside what every member holds anyway.
    held = 0.0
    if member_batch(config, n_cells, n_stations, budget) is not None:
        held, networks = inference.members * member_bytes(config, n_cells, n_stations), 1
    budget.require(held + networks * activation_bytes(config, n_cells),
                   f"{where}[model] width" + ("" if networks == 1 else " and [inference] members"),
                   f"use a smaller [model] width (now {model.width}) or depth (now {model.depth})"
                   + ("" if networks == 1 else f", fewer [inference] members (now {networks})")
                   + ", a coarser [mesh], or raise [forward] memory_limit_gb",
                   item=f"the activations of {networks} network(s) of width {model.width} and depth {model.depth} "
                        f"at {n_cells} cells" + (f" (beside the {inference.members} members' own state)" if held
                                                 else "") + ": ")


def output_bytes(config: Config, n_cells: int, n_stations: int) -> tuple[float, float]:
    """``(largest file, all files)`` in bytes that a run writes, roughly: ``posterior.nc`` holds
    the draws and, per draw, the predicted data, the log-likelihood and room to spare (float64);
    ``summary.nc`` a few fields per cell; each NetCDF file its HDF5 metadata (groups, attributes,
    the config text); each figure up to about half a megabyte."""
    largest = 8.0 * draw_count(config) * (n_cells + 3 * n_stations) + NETCDF_OVERHEAD_BYTES
    figures = 0.5e6 * 12 if "png" in config.output.formats else 0.0
    return largest, largest + 8.0 * 10 * n_cells + figures


def check_output_space(directory, largest: float, total: float, where: str) -> None:
    """Refuse a run whose files will not fit: on the disk that holds ``directory`` (its nearest
    existing folder), or under the process's file-size limit (``ulimit -f``), which would
    otherwise end the run in the middle of writing (HDF5 even crashes the interpreter)."""
    import resource
    import shutil
    from pathlib import Path

    folder = Path(directory)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if total > free:
        raise InputError(f"{where}: the results need about {total / 1e6:.3g} MB, but only {free / 1e6:.3g} MB are "
                         f"free on the disk that holds {directory}; free some space or set [output] directory "
                         "to another disk")
    limit, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if limit != resource.RLIM_INFINITY and largest > limit:
        raise InputError(f"{where}: the largest result file needs about {largest / 1e6:.3g} MB, more than this "
                         f"process may write to one file ({limit / 1e6:.3g} MB, ulimit -f); raise the limit")


__all__ = ["MAX_HASH_TABLE_SIZE", "NETWORK_METHODS", "TABLE_SIZE_RANGE", "table_size_for", "with_table_size", "check_output_space", "check_sizes", "draw_count", "encoding_features",
           "network_parameters", "output_bytes", "activation_bytes", "member_batch", "member_bytes"]
