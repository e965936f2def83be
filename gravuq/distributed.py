"""Several processes, one run: ``jax.distributed`` set up from the environment, and the few
agreements the processes need beyond the training's own collectives.

Every process runs the same command on the same inputs (JAX's multi-controller model): each
reads the config and data, builds the same operator and learns the same prior, then trains its
share of the ensemble's members on its own devices (members split along the device mesh,
:mod:`gravuq.inference.training`); the members' densities are gathered to every process, and
process 0 alone writes the outputs. Where to find the others:

- ``GRAVUQ_COORDINATOR`` (``host:port`` of process 0, which listens there),
  ``GRAVUQ_NUM_PROCESSES`` and ``GRAVUQ_PROCESS_ID`` (0 .. count - 1), all three or none;
- otherwise JAX's own detection: SLURM (``srun``), Open MPI, Kubernetes, Cloud TPU
  (``JAX_COORDINATOR_PORT`` picks the port; JAX derives one from the SLURM job id otherwise).

Collectives on CPU devices use gloo (``jax_cpu_collectives_implementation``) unless
``JAX_CPU_COLLECTIVES_IMPLEMENTATION`` says otherwise. See docs/runs.md, "Several machines".
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Mapping

from .errors import InputError

_log = logging.getLogger(__name__)

#: The variables that name the processes explicitly (all three, or none).
VARIABLES = ("GRAVUQ_COORDINATOR", "GRAVUQ_NUM_PROCESSES", "GRAVUQ_PROCESS_ID")
#: How long a process waits for the others to join (s), unless ``GRAVUQ_DISTRIBUTED_TIMEOUT`` says.
JOIN_TIMEOUT_S = 300


@dataclass(frozen=True)
class Processes:
    """This process's place in a multi-process run: ``index`` of ``count`` processes, its
    ``local_devices`` and the ``devices`` of all processes, and how they were found (``source``)."""

    index: int
    count: int
    local_devices: int
    devices: int
    source: str

    @property
    def leader(self) -> bool:
        """Whether this process writes the outputs (process 0)."""
        return self.index == 0

    def describe(self) -> str:
        return (f"process {self.index} of {self.count} ({self.source}): {self.local_devices} local "
                f"device{'s' if self.local_devices != 1 else ''}, {self.devices} in all")


def _integer(environ: Mapping[str, str], name: str, low: int, high: int | None = None) -> int:
    text = environ[name].strip()
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise InputError(f"environment variable {name} = {text!r}: expected an integer {bound}")
    return value


def _explicit(environ: Mapping[str, str]) -> dict | None:
    """The arguments named by ``GRAVUQ_*`` variables, or None when none is set."""
    present = [name for name in VARIABLES if environ.get(name, "").strip()]
    if not present:
        return None
    if len(present) < len(VARIABLES):
        missing = [name for name in VARIABLES if name not in present]
        raise InputError(f"--distributed: {', '.join(present)} set but not {', '.join(missing)}: set all three "
                         "(the coordinator's host:port, the number of processes, this process's id) or none")
    address = environ["GRAVUQ_COORDINATOR"].strip()
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"environment variable GRAVUQ_COORDINATOR = {address!r}: expected host:port "
                         "(process 0's address and a free port, e.g. node001:12355)")
    count = _integer(environ, "GRAVUQ_NUM_PROCESSES", 1)
    index = _integer(environ, "GRAVUQ_PROCESS_ID", 0, count - 1)
    return {"coordinator_address": address, "num_processes": count, "process_id": index}


def initialize(environ: Mapping[str, str] | None = None) -> Processes:
    """Join the other processes of a run (:func:`jax.distributed.initialize`); call it before
    anything else uses JAX (the first computation fixes the devices a process sees).

    Reads ``GRAVUQ_COORDINATOR``, ``GRAVUQ_NUM_PROCESSES`` and ``GRAVUQ_PROCESS_ID``, else lets
    JAX detect the cluster (SLURM, Open MPI, Kubernetes, Cloud TPU). Raises
    :class:`~gravuq.errors.InputError` when the variables are incomplete or malformed, or no
    cluster is found.
    """
    import jax

    environ = os.environ if environ is None else environ
    arguments = _explicit(environ)
    timeout = (_integer(environ, "GRAVUQ_DISTRIBUTED_TIMEOUT", 1)
               if environ.get("GRAVUQ_DISTRIBUTED_TIMEOUT", "").strip() else JOIN_TIMEOUT_S)
    if not environ.get("JAX_CPU_COLLECTIVES_IMPLEMENTATION"):
        try:  # CPU devices of different processes talk through gloo (the default of recent JAX)
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
        except (AttributeError, ValueError):  # pragma: no cover - a JAX without the option
            pass
    if arguments is None:
        source = "found by JAX's cluster detection"
        arguments = {}
    else:
        source = f"GRAVUQ_COORDINATOR {arguments['coordinator_address']}"
    try:
        jax.distributed.initialize(**arguments, initialization_timeout=timeout)
    except ValueError as error:
        # JAX's message when it finds no cluster and no coordinator address was given.
        raise InputError(f"--distributed: no cluster found (JAX: {error}); under SLURM run the command with srun, or "
                         f"set {', '.join(VARIABLES)}") from None
    except RuntimeError as error:
        if "already" in str(error).lower():
            raise InputError(f"--distributed: {error}") from None
        raise
    processes = Processes(jax.process_index(), jax.process_count(), len(jax.local_devices()), len(jax.devices()),
                          source)
    _log.info("%s", processes.describe())
    return processes


def from_leader(value: int) -> int:
    """Process 0's ``value`` (an int), on every process: a collective, so every process calls
    it at the same point of the run (the others' ``value`` is ignored)."""
    import numpy as np
    from jax.experimental import multihost_utils

    return int(multihost_utils.broadcast_one_to_all(np.int32(value)))


__all__ = ["JOIN_TIMEOUT_S", "Processes", "VARIABLES", "from_leader", "initialize"]
