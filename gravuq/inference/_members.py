"""Training INR members on the particle engine: the shared core of the deterministic INR and
the deep ensembles.

Units: gz and std in mGal (gz positive downward), densities in kg/m^3.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..model import model_from_config, parameter_count
from ._engine import Engine, Problem, divergence_report, make_optimizer, misfit_summary, stack_members
from ._prior import GaussianPrior
from ._sharding import gather_members, member_sharding, members_divide, replicate, shard_members


class _Identity(eqx.Module):
    """The identity as a forward operator: the engine then fits density fields cell by cell."""

    def forward(self, density):
        return density


def _warm_start(params, static, coordinates, targets, offset, scale, learning_rate: float, epochs: int):
    """Fit each member's network to its own target field ``(members, cells)`` kg/m^3, by least
    squares at the cells in units of ``scale`` (a well-conditioned regression, no forward
    operator); returns the fitted params."""
    base = 0.0 if offset is None else np.asarray(offset, np.float64)
    unit = np.ones(targets.shape[1]) if scale is None else np.asarray(scale, np.float64)
    problem = Problem(_Identity(), coordinates, jnp.asarray(targets, jnp.float32),
                      jnp.asarray(1.0 / unit, jnp.float32), None, None,
                      None if offset is None else jnp.asarray(base, jnp.float32),
                      None if scale is None else jnp.asarray(unit, jnp.float32))
    engine = Engine(static, make_optimizer(learning_rate, "cosine", epochs), target_misfit=None, patience=0,
                    chunk_epochs=epochs)
    state = engine.init(params, jax.random.key(0), problem)
    state, _ = engine.update(state, problem, epochs)
    return engine.final_params(state)


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
    """

    density: np.ndarray
    initial_density: np.ndarray
    chi2: np.ndarray
    history: np.ndarray
    diverged: np.ndarray
    epochs: int
    parameter_count: int
    params: object
    static: object


def train_members(operator, coordinates, data, std, model_settings, inference_settings, key,
                  members: int, data_per_member=None, anchor=None, prior: GaussianPrior | None = None,
                  offset=None, scale=None, target_misfit: float | None = 1.0, progress: Callable | None = None,
                  checkpoint=None, stein=None, warm_start=None, warm_start_epochs: int = 300) -> MemberFit:
    """Train ``members`` INRs jointly on one engine.

    Parameters
    ----------
    operator
        Forward operator, mGal per kg/m^3.
    coordinates
        ``(cells, 3)`` normalised cell centres (float32).
    data, std
        Observed gz and its std, ``(stations,)``, mGal.
    model_settings, inference_settings
        ``[model]`` and ``[inference]`` sections.
    key
        JAX PRNG key for the members' initialisation.
    data_per_member
        ``(members, stations)`` mGal each member fits (randomised MAP); default: ``data``.
    anchor, prior
        ``(members, cells)`` kg/m^3 prior draws each member is anchored to, and the prior
        whose inverse covariance weighs the anchor term; None for plain fits.
    offset
        ``(members, cells)`` kg/m^3 fixed fields added to each member's network (randomised
        prior functions); the returned densities include them.
    scale
        ``(cells,)`` kg/m^3 per unit of network output (a whitened parametrisation: with the
        prior's standard deviations, the anchor penalty is well conditioned however much they
        vary); None for networks that output kg/m^3.
    target_misfit
        Discrepancy-principle stop (chi^2/N against the member's own data), or None.
    progress
        ``progress(epochs_done, state)`` between chunks.
    stein
        A ``SteinKernel``: train the members as SVGD particles (no per-member stopping).
    warm_start
        ``(members, cells)`` kg/m^3 fields the networks are first fitted to, cell by cell, for
        ``warm_start_epochs`` (cosine-decayed Adam), before training on the real objective from
        there with a fresh optimiser. For randomised MAP these are the members' exact
        linear-Gaussian solutions: the objective is quadratic in density, badly conditioned
        (noise of 1e-3 mGal against prior scales of 1e2 kg/m^3), and first-order training from a
        random network stalls far from its minimum; the regression is well conditioned.
    checkpoint
        A :class:`gravuq.io.Checkpointer`: saves the state every few epochs and on Ctrl-C or
        SIGTERM, and with ``resume`` continues from its last save to the same result as an
        uninterrupted run.

    With more than one device (``jax.devices()``) and a member count that divides evenly over
    them, the members are split over the devices (``gravuq.inference._sharding``: params,
    optimiser state and per-member data sharded along the member axis, the rest replicated);
    otherwise all members train on one device (logged at INFO level).
    """
    data = np.asarray(data, np.float64)
    std = np.asarray(std, np.float64)
    keys = jax.random.split(key, members)
    params, static = stack_members(lambda k: model_from_config(model_settings, key=k), keys)
    if warm_start is not None:
        params = _warm_start(params, static, coordinates, warm_start, offset, scale,
                             inference_settings.learning_rate, warm_start_epochs)
    targets = np.broadcast_to(data if data_per_member is None else data_per_member, (members, data.size))
    problem = Problem(
        operator, coordinates, jnp.asarray(targets, jnp.float32), jnp.asarray(1.0 / std, jnp.float32),
        None if anchor is None else jnp.asarray(anchor, jnp.float32), prior,
        None if offset is None else jnp.asarray(offset, jnp.float32),
        None if scale is None else jnp.asarray(scale, jnp.float32))
    sharding = member_sharding() if members_divide(members) else None
    if sharding is not None:
        params = shard_members(params, sharding)
        problem = Problem(**{name: (shard_members if name in ("data", "anchor", "offset") else replicate)(
            getattr(problem, name), sharding) for name in problem.__dataclass_fields__})
    epochs = inference_settings.epochs
    clip = inference_settings.gradient_clip or None
    engine = Engine(static, make_optimizer(inference_settings.learning_rate, inference_settings.schedule, epochs, clip),
                    target_misfit=target_misfit, patience=0 if stein is not None else inference_settings.patience,
                    chunk_epochs=min(25, epochs), stein=stein)
    state = engine.init(params, jax.random.key(0), problem)
    added = 0.0 if offset is None else np.asarray(offset, np.float64)
    factor = 1.0 if scale is None else np.asarray(scale, np.float64)

    def member_densities(member_params):
        return gather_members(engine.densities(member_params, coordinates)).astype(np.float64) * factor + added

    initial = member_densities(params)
    history = None
    if checkpoint is not None and checkpoint.resume:
        state, history = checkpoint.restore(state)
    if sharding is not None:
        # Every field but the epoch and the key has a leading member axis.
        state = eqx.tree_at(lambda s: (s.params, s.opt_state, s.best_params, s.best_loss, s.loss, s.chi2,
                                       s.since_best, s.done, s.diverged, s.reached_target),
                            state, replace_fn=lambda node: shard_members(node, sharding))
    try:
        state, history = engine.run(state, problem, epochs, progress, history,
                                    None if checkpoint is None else checkpoint.after_chunk)
    except KeyboardInterrupt:
        if checkpoint is not None:
            checkpoint.save_latest()
        raise
    final = engine.final_params(state)
    density = member_densities(final)
    diverged = gather_members(state.diverged)
    keep = ~diverged
    predicted = np.asarray(operator.forward(jnp.asarray(density[keep], jnp.float64)), np.float64)
    chi2 = np.mean(((predicted - data) / std) ** 2, axis=1)
    kept_params = final if keep.all() else jax.tree.map(lambda leaf: leaf[np.flatnonzero(keep)], final)
    one = jax.tree.map(lambda leaf: leaf[0], final)
    count = parameter_count(eqx.combine(one, static))
    return MemberFit(density[keep], initial[keep], chi2, history, divergence_report(state),
                     int(state.epoch), count, kept_params, static)


__all__ = ["MemberFit", "train_members", "misfit_summary"]
