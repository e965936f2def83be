"""Training a batch of INR members on the engine: construction, sharding over devices,
checkpoints, and the members kept at the end.

Units: gz and std in mGal (gz positive downward), densities in kg/m^3.
"""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ...forward import split_devices
from ...model import parameter_count, trainable
from ._engine import Engine, Stopping, TrainState, divergence_report
from ._levenberg import LevenbergMarquardt
from ._objective import MemberTargets, Objective
from ._rules import FirstOrder, Network, Stein, adam
from ._sharding import gather_members, local_member_range, member_sharding, members_divide, replicate, shard_members
from ._stein import SteinKernel


def stack_members(make_model, keys):
    """Build one model per key and stack them: returns ``(params, static)`` with a member axis."""
    models = eqx.filter_vmap(make_model)(keys)
    return trainable(models)


@dataclass(frozen=True)
class TrainingSettings:
    """How members are trained (from ``[inference]``).

    ``trainer``: ``"levenberg_marquardt"`` (:class:`LevenbergMarquardt`, ``cg_steps``
    conjugate-gradient iterations per step) or ``"adam"`` (the first-order optimiser with
    ``learning_rate``, ``schedule`` and ``gradient_clip``, global norm, 0 = off); ``epochs`` steps
    at most; a member stops after ``patience`` steps whose loss did not fall by the fraction
    ``tolerance`` (0 = never); ``chunk_epochs`` steps per jitted chunk (the progress bar and
    checkpoints move between chunks); ``member_batch``: Levenberg-Marquardt linearises this many
    members at a time (None: all; see :class:`Network`), chosen from the memory budget by
    :func:`gravuq.sizes.member_batch`.
    """

    trainer: str = "levenberg_marquardt"
    epochs: int = 60
    learning_rate: float = 1e-2
    schedule: str = "constant"
    gradient_clip: float = 0.0
    patience: int = 3
    tolerance: float = 1e-4
    cg_steps: int = 50
    chunk_epochs: int = 25
    member_batch: int | None = None

    @property
    def second_order(self) -> bool:
        return self.trainer == "levenberg_marquardt"


def make_engine(static, settings: TrainingSettings, *, target_misfit: float | None,
                stein: SteinKernel | None = None) -> Engine:
    """The engine for ``settings``: Levenberg-Marquardt or Adam per member, or SVGD particles
    with ``stein`` (moved by Adam on the Stein direction; a particle set is never stopped early).
    Levenberg-Marquardt accepts only steps that lower the loss, so its members keep their last
    state; Adam members keep their lowest-loss state (recorded as ``kept`` in the training record)."""
    if stein is not None:
        rule = Stein(stein, adam(settings.learning_rate, settings.schedule, settings.epochs,
                                 settings.gradient_clip or None))
        stopping = Stopping(target_misfit=target_misfit, patience=0, keep="last")
    elif settings.second_order:
        chunk = min(5, settings.epochs)
        rule = LevenbergMarquardt(cg_steps=settings.cg_steps, target_misfit=target_misfit)
        stopping = Stopping(target_misfit=target_misfit, patience=settings.patience, tolerance=settings.tolerance,
                            keep="last")
        return Engine(Network(static, settings.member_batch), rule, stopping, chunk_epochs=chunk)
    else:
        rule = FirstOrder(adam(settings.learning_rate, settings.schedule, settings.epochs,
                               settings.gradient_clip or None))
        stopping = Stopping(target_misfit=target_misfit, patience=settings.patience, tolerance=settings.tolerance)
    return Engine(Network(static), rule, stopping, chunk_epochs=min(settings.chunk_epochs, settings.epochs))


class _Identity(eqx.Module):
    """The identity as a forward operator: the engine then fits density fields cell by cell."""

    def forward(self, density):
        return density


def fit_to_fields(static, params, coordinates, fields, offset=None, scale=None, learning_rate: float = 1e-2,
                  epochs: int = 300):
    """A warm start: fit each member's network to its own target field ``(members, cells)``
    kg/m^3 by least squares at the cells, in units of ``scale`` (a regression, no forward
    operator; cosine-decayed Adam), and return the fitted params."""
    unit = np.ones(fields.shape[1]) if scale is None else np.asarray(scale, np.float64)
    targets = MemberTargets(data=jnp.asarray(fields, jnp.float32),
                            offset=None if offset is None else jnp.asarray(offset, jnp.float32))
    objective = Objective(operator=_Identity(), coordinates=Network(static).points(params, coordinates), inverse_std=jnp.asarray(1.0 / unit, jnp.float32),
                          targets=targets, scale=None if scale is None else jnp.asarray(unit, jnp.float32))
    engine = Engine(Network(static), FirstOrder(adam(learning_rate, "cosine", epochs)),
                    Stopping(target_misfit=None, patience=0), chunk_epochs=epochs)
    state = engine.init(params, jax.random.key(0), objective)
    state, _ = engine.update(state, objective, epochs)
    return engine.kept_params(state)


@dataclass(frozen=True)
class MemberFit:
    """Trained members.

    Attributes
    ----------
    density
        ``(members, cells)`` kg/m^3 of the members kept (diverged ones removed).
    initial_density
        ``(members, cells)`` kg/m^3 of the same members before training.
    chi2
        ``(members,)`` chi^2/N of each kept member against the *observed* data.
    history
        ``(epochs, all members)`` chi^2/N against each member's own data, per epoch.
    diverged
        One record per member stopped as diverged: ``member`` (index into the original list),
        ``epoch`` and ``cause``.
    epochs
        Epochs run.
    parameter_count
        Trained weights per member.
    params, static
        The kept members' trained arrays (leading member axis) and the shared static part.
    kept
        Which state of each member was kept: ``"best"`` (its lowest loss) or ``"last"``.
    kept_epochs
        ``(all members,)`` the epoch (history row) of each member's kept state.
    """

    density: np.ndarray
    initial_density: np.ndarray
    chi2: np.ndarray
    history: np.ndarray
    diverged: list
    epochs: int
    parameter_count: int
    params: object
    static: object
    kept: str = "last"
    kept_epochs: np.ndarray | None = None


def train_members(engine: Engine, params, objective: Objective, key, epochs: int, *, observed, std,
                  progress=None, checkpoint=None, log=None) -> MemberFit:
    """Train members ``params`` (leading member axis) on ``objective`` for at most ``epochs``.

    Parameters
    ----------
    engine
        Step rule and stopping rule (:func:`make_engine`).
    key
        The PRNG key the training state carries (split every epoch).
    observed, std
        The observed gz and its std, ``(stations,)`` mGal: each kept member's chi^2/N is
        reported against them.
    progress
        ``progress(epochs_done, state)`` between chunks.
    log
        ``log(message)`` for the stages before the first chunk (which includes compiling).
    checkpoint
        A :class:`gravuq.io.Checkpointer`: saves the state every few epochs and on Ctrl-C or
        SIGTERM, and with ``resume`` continues from its last save to the same result as an
        uninterrupted run.

    With more than one device (``jax.devices()``) and a member count that divides evenly over
    them, the members are split over the devices: params, the per-member targets and the whole
    ``TrainState.members`` subtree sharded along the member axis, everything else replicated;
    unless the operator's stations are split over the devices (``[forward] split``), when every
    device trains all the members.
    Raises RuntimeError when every member diverged.
    """
    members = jax.tree.leaves(params)[0].shape[0]
    # An operator split by stations over the devices (gravuq.forward.SplitOperator) lays itself
    # out on them: every device then trains all the members on its own stations' rows.
    split = split_devices(objective.operator)
    sharding = member_sharding() if split == 1 and members_divide(members) else None
    if sharding is not None:
        params = shard_members(params, sharding)
        targets = shard_members(objective.targets, sharding)
        objective = eqx.tree_at(lambda o: o.targets, replicate(objective, sharding), targets)
    if log is not None and jax.process_count() > 1:
        log(_process_share(members, sharding, split))
    state = engine.init(params, key, objective)
    initial = gather_members(engine.densities(params, objective)).astype(np.float64)
    history = None
    if checkpoint is not None and checkpoint.resume:
        state, history = checkpoint.restore(state)
    if sharding is not None:
        state = eqx.tree_at(lambda s: s.members, state, shard_members(state.members, sharding))
    if log is not None:
        log(f"training {members} member{'s' if members > 1 else ''} ({type(engine.rule).__name__}): compiling the "
            f"training step, then {epochs} steps at most")
    try:
        state, history = engine.run(state, objective, epochs, progress, history,
                                    None if checkpoint is None else checkpoint.after_chunk)
    except KeyboardInterrupt:
        if checkpoint is not None:
            checkpoint.save_latest()
        raise
    return _kept(engine, state, objective, initial, history, np.asarray(observed, np.float64),
                 np.asarray(std, np.float64))


def _process_share(members: int, sharding, split: int = 1) -> str:
    """Which members this process trains, for the log of a multi-process run."""
    process = f"process {jax.process_index()} of {jax.process_count()}"
    if split > 1:
        return (f"{process}: trains all {members} members on its own stations (the operator's stations are split "
                f"over {split} devices; the products are summed over them)")
    if sharding is None:
        return (f"{process}: {members} members do not divide over the {len(jax.devices())} devices of all processes: "
                "this process trains all of them (as every other does), no faster than one process")
    first, stop = local_member_range(members, sharding)
    local = len(jax.local_devices())
    return (f"{process}: trains members {first + 1}..{stop} of {members} on its {local} "
            f"device{'s' if local > 1 else ''} ({len(jax.devices())} devices in all)")


def _kept(engine: Engine, state: TrainState, objective: Objective, initial, history, observed, std) -> MemberFit:
    final = engine.kept_params(state)
    density = gather_members(engine.densities(final, objective)).astype(np.float64)
    keep = ~gather_members(state.members.diverged)
    if not keep.any():
        raise RuntimeError("every member diverged (non-finite or exploding loss); lower [inference] learning_rate")
    predicted = np.asarray(objective.operator.forward(jnp.asarray(density[keep], jnp.float64)), np.float64)
    chi2 = np.mean(((predicted - observed) / std) ** 2, axis=1)
    kept_params = final if keep.all() else jax.tree.map(lambda leaf: leaf[np.flatnonzero(keep)], final)
    one = jax.tree.map(lambda leaf: leaf[0], final)
    count = parameter_count(eqx.combine(one, engine.network.static))
    kept = "last" if engine.rule.interacting or engine.stopping.keep == "last" else "best"
    return MemberFit(density[keep], initial[keep], chi2, history, divergence_report(state), int(state.epoch), count,
                     kept_params, engine.network.static, kept, gather_members(engine.kept_epochs(state)))


__all__ = ["MemberFit", "TrainingSettings", "fit_to_fields", "make_engine", "stack_members", "train_members"]
