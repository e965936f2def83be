"""Checkpoints of training: every member's parameters, optimiser state, best-so-far, epoch.

A checkpoint is a folder with ``state.eqx`` (Equinox leaf serialisation of the engine state),
``history.npy`` (chi^2/N per epoch and member) and ``checkpoint.json`` (epoch, config hash,
time), each written atomically; ``checkpoint.json`` last, so a checkpoint is complete when it
names the epoch. Resuming with a config other than the one that made the checkpoint is refused.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

from ..errors import InputError
from ._atomic import atomic_path, write_text_atomic


class Checkpointer:
    """Saves training state every ``every`` epochs (and on request) under ``directory``.

    ``config_hash`` identifies the run's settings; ``resume`` asks :meth:`restore` to load the
    last checkpoint instead of starting afresh.
    """

    def __init__(self, directory: str | Path, config_hash: str, every: int = 50, resume: bool = False):
        self.directory = Path(directory)
        self.config_hash = config_hash
        self.every = max(1, int(every))
        self.resume = resume
        self._last_saved = None
        self._latest = None

    @property
    def _manifest(self) -> Path:
        return self.directory / "checkpoint.json"

    def save(self, state, history: np.ndarray) -> None:
        """Write ``state`` and ``history`` now (atomically)."""
        import equinox as eqx  # here: gravuq.io is read by `gravuq forward`, which needs no JAX

        self.directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.directory / "state.eqx") as tmp:
            eqx.tree_serialise_leaves(tmp, state)
        with atomic_path(self.directory / "history.npy") as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, np.asarray(history))
        epoch = int(state.epoch)
        write_text_atomic(self._manifest, json.dumps(
            {"epoch": epoch, "config_hash": self.config_hash, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, indent=2))
        self._last_saved = epoch

    def after_chunk(self, state, history: np.ndarray) -> None:
        """Remember the latest state; save it when ``every`` epochs have passed since the last save."""
        self._latest = (state, history)
        epoch = int(state.epoch)
        if self._last_saved is None or epoch - self._last_saved >= self.every:
            self.save(state, history)

    def save_latest(self) -> bool:
        """Save the last state seen (on an interrupt); False when there is none."""
        if self._latest is None:
            return False
        self.save(*self._latest)
        return True

    def restore(self, like):
        """Load the checkpoint into the structure of ``like``; returns ``(state, history)``.

        Raises InputError when there is no checkpoint, it was made with another config, or its
        files are missing, damaged or of another structure (saying how to start over).
        """
        if not self._manifest.exists():
            raise InputError(f"{self.directory}: no checkpoint to resume from (run without --resume first)")
        start_over = (f"delete {self.directory} or run without --resume to start over")
        try:
            manifest = json.loads(self._manifest.read_text())
            if not isinstance(manifest, dict):
                raise ValueError("checkpoint.json does not hold a JSON object")
        except (OSError, ValueError) as error:
            raise InputError(f"{self._manifest}: the checkpoint is unusable ({error}); {start_over}") from None
        if manifest.get("config_hash") != self.config_hash:
            raise InputError(f"{self.directory}: the checkpoint was made with a different config "
                             "(its hash differs); resume with the same config, or run afresh without --resume")
        import equinox as eqx

        try:
            state = eqx.tree_deserialise_leaves(self.directory / "state.eqx", like)
            history = np.load(self.directory / "history.npy")
        except Exception as error:  # missing, truncated or of another structure: each raises its own type
            raise InputError(f"{self.directory}: the checkpoint is unusable ({type(error).__name__}: {error}); "
                             f"{start_over}") from None
        self._last_saved = int(state.epoch)
        return state, history

    def remove(self) -> None:
        """Delete the checkpoint folder (after the run it belongs to has written its results)."""
        shutil.rmtree(self.directory, ignore_errors=True)
