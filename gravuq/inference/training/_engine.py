"""One training engine: K members trained jointly through one forward operator, built from parts.

As Diffrax's ``diffeqsolve`` takes a solver, a step-size controller and an adjoint, the
:class:`Engine` takes a step rule (``_rules.py``, ``_levenberg.py``: how members move), a
:class:`Stopping` rule (when each member stops and which of its states is kept) and runs them on
an :class:`~gravuq.inference.training.Objective`. Verbs, as in NumPyro's ``infer``:
:meth:`Engine.init` makes an immutable :class:`TrainState` carrying the PRNG key (split every
epoch); :meth:`Engine.update` runs a chunk of epochs in one ``lax.scan``; :meth:`Engine.run`
loops over chunks with progress and checkpoint hooks.

Everything a member owns lives under ``TrainState.members`` (a leading member axis on every
array), so sharding and gathering act on that subtree whole. Members whose loss turns
non-finite or explodes are frozen at their last finite state and flagged ``diverged``; callers
leave them out of any average. Units: losses dimensionless, chi^2 per datum.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from ._objective import Objective
from ._rules import Network, StepRule
from ._sharding import gather_members, local_members


class MemberState(eqx.Module):
    """Per member: the params and the rule's state; the best loss seen, its params and the epoch
    it was seen at; the last loss and chi^2/N; epochs since the last improvement; whether it is
    done (and since which epoch), diverged (and why, when) or reached its target. Every array has
    a leading member axis."""

    params: eqx.Module
    rule_state: object
    best_params: eqx.Module
    best_loss: Float[Array, " member"]
    loss: Float[Array, " member"]
    chi2: Float[Array, " member"]
    since_best: Int[Array, " member"]
    done: Bool[Array, " member"]
    diverged: Bool[Array, " member"]
    reached_target: Bool[Array, " member"]
    divergence_cause: Int[Array, " member"]
    divergence_epoch: Int[Array, " member"]
    best_epoch: Int[Array, " member"]
    done_epoch: Int[Array, " member"]


class TrainState(eqx.Module):
    """Immutable training state: the members, the epoch count and the PRNG key (raw key data,
    so the state serialises as plain arrays)."""

    members: MemberState
    epoch: Int[Array, ""]
    key: Array


def _select(mask, new, old):
    """Per member: ``old`` where ``mask`` is True, else ``new`` (pytrees with a leading member axis)."""
    def pick(n, o):
        return jnp.where(mask.reshape(mask.shape + (1,) * (n.ndim - 1)), o, n)
    return jax.tree.map(pick, new, old)


#: Why a member was stopped as diverged (``MemberState.divergence_cause``).
DIVERGENCE_CAUSES = {1: "non-finite loss", 2: "non-finite gradient", 3: "loss exploded (over 1e6 times its best)"}


class Stopping(eqx.Module):
    """When a member stops, and which of its states it keeps.

    ``target_misfit``: stop once chi^2/N reaches it (discrepancy principle), keeping the params
    that reached it; None to run on. ``patience``: stop after this many epochs without an
    improvement, a loss below ``(1 - tolerance)`` times the best so far (0: never).
    ``divergence_factor``: a loss this many times its best counts as diverged. ``keep``:
    ``"best"`` (each member's lowest-loss params) or ``"last"`` (the last params).
    """

    target_misfit: float | None = eqx.field(static=True, default=1.0)
    patience: int = eqx.field(static=True, default=0)
    tolerance: float = eqx.field(static=True, default=0.0)
    divergence_factor: float = eqx.field(static=True, default=1e6)
    keep: str = eqx.field(static=True, default="best")


class Engine(eqx.Module):
    """Trains members with ``rule`` until ``stopping`` says so (static: changing one recompiles).

    ``chunk_epochs`` epochs run per jitted ``lax.scan`` (progress and checkpoints between chunks).
    """

    network: Network
    rule: StepRule
    stopping: Stopping = Stopping()
    chunk_epochs: int = eqx.field(static=True, default=25)

    @eqx.filter_jit
    def densities(self, params, objective: Objective) -> Float[Array, "member cell"]:
        """All members' density contrasts (kg/m^3) at the cells, offsets included."""
        return objective.density(self.network.outputs(params, objective.coordinates))

    @eqx.filter_jit
    def init(self, params, key, objective: Objective) -> TrainState:
        """A fresh state for members ``params`` (leading member axis), carrying ``key``."""
        loss, chi2 = objective.losses(self.densities(params, objective))
        members = loss.shape[0]
        false = jnp.zeros(members, bool)
        none = jnp.zeros(members, jnp.int32)
        state = MemberState(params=params, rule_state=self.rule.init(params), best_params=params, best_loss=loss,
                            loss=loss, chi2=chi2, since_best=none, done=false, diverged=false, reached_target=false,
                            divergence_cause=none, divergence_epoch=none - 1, best_epoch=none, done_epoch=none - 1)
        return TrainState(members=state, epoch=jnp.asarray(0, jnp.int32), key=jax.random.key_data(key))

    def _epoch(self, state: TrainState, objective: Objective) -> TrainState:
        key, step_key = jax.random.split(jax.random.wrap_key_data(state.key))
        old = state.members
        outcome = self.rule.step(old.params, old.rule_state, self.network, objective, step_key)
        loss, chi2 = outcome.loss, outcome.chi2  # of the params the step started from
        stopping = self.stopping
        finite = jnp.isfinite(loss) & outcome.finite_gradient
        exploded = loss > stopping.divergence_factor * jnp.maximum(old.best_loss, 1.0)
        newly_diverged = ~old.done & (~finite | exploded)
        diverged = old.diverged | newly_diverged
        cause = jnp.where(~jnp.isfinite(loss), 1, jnp.where(~outcome.finite_gradient, 2, 3))
        # Explicit dtype: a state restored from a checkpoint has no weak types to fall back on.
        divergence_epoch = jnp.where(newly_diverged, state.epoch.astype(jnp.int32), old.divergence_epoch)
        reached = jnp.zeros_like(old.done) if stopping.target_misfit is None else (chi2 <= stopping.target_misfit)
        reached = old.reached_target | (~old.done & finite & reached)
        lower = finite & (loss < old.best_loss) & ~old.done
        improved = lower & (loss < (1.0 - stopping.tolerance) * old.best_loss)
        best_params = _select(~lower, old.params, old.best_params)
        best_loss = jnp.where(lower, loss, old.best_loss)
        # Patience counts the steps that moved a member without improving it.
        moved = jnp.ones_like(old.done) if outcome.moved is None else outcome.moved
        since_best = jnp.where(improved, 0, old.since_best + jnp.where(moved, 1, 0))
        out_of_patience = (since_best > stopping.patience) if stopping.patience > 0 else jnp.zeros_like(old.done)
        done = old.done | diverged | reached | out_of_patience
        # A member that reached its target keeps exactly the params that reached it.
        first_reach = reached & ~old.reached_target
        best_params = _select(first_reach, best_params, old.params)
        best_loss = jnp.where(first_reach, loss, best_loss)
        epoch = state.epoch.astype(jnp.int32)
        best_epoch = jnp.where(lower | first_reach, epoch, old.best_epoch)
        done_epoch = jnp.where(done & ~old.done, epoch, old.done_epoch)
        # Members stopped earlier keep the loss they stopped with.
        members = MemberState(
            params=_select(done, outcome.params, old.params), rule_state=_select(done, outcome.state, old.rule_state),
            best_params=best_params, best_loss=best_loss, loss=jnp.where(old.done, old.loss, loss),
            chi2=jnp.where(old.done, old.chi2, chi2), since_best=since_best, done=done, diverged=diverged,
            reached_target=reached, divergence_cause=jnp.where(newly_diverged, cause, old.divergence_cause),
            divergence_epoch=divergence_epoch, best_epoch=best_epoch, done_epoch=done_epoch)
        return TrainState(members=members, epoch=state.epoch + 1, key=jax.random.key_data(key))

    @eqx.filter_jit
    def update(self, state: TrainState, objective: Objective, epochs: int):
        """Run ``epochs`` epochs of all members in one ``lax.scan``.

        Returns the new state and the members' chi^2/N at each epoch, ``(epochs, members)``.
        """
        def body(carry, _):
            new = self._epoch(carry, objective)
            return new, new.members.chi2
        return jax.lax.scan(body, state, None, length=epochs)

    def run(self, state: TrainState, objective: Objective, epochs: int, progress=None, history=None,
            after_chunk=None):
        """Train until every member is done or ``epochs`` epochs (in all) have run.

        A state from a checkpoint carries its epoch, so training continues where it stopped,
        chunk by chunk as an uninterrupted run would (``history`` holds the chi^2/N so far).
        ``progress(epochs_done, state)`` and ``after_chunk(state, history)`` are called between
        chunks (progress bars, checkpoints). Returns the final state and the chi^2/N history
        ``(epochs_run, members)`` as numpy.
        """
        done_epochs = int(state.epoch)
        pieces = [] if history is None or len(history) == 0 else [np.asarray(history)]
        while done_epochs < epochs and not bool(jnp.all(state.members.done)):
            chunk = min(self.chunk_epochs, epochs - done_epochs)
            state, chi2 = self.update(state, objective, chunk)
            pieces.append(gather_members(chi2))  # members split over processes: a collective
            done_epochs += chunk
            # Checkpoint first: an interrupt may arrive while the progress bar draws.
            if after_chunk is not None:
                after_chunk(state, np.concatenate(pieces))
            if progress is not None:
                progress(done_epochs, state)
        return state, np.concatenate(pieces) if pieces else np.zeros((0, state.members.chi2.shape[0]))

    def kept_epochs(self, state: TrainState) -> np.ndarray:
        """Per member, the epoch of the state :meth:`kept_params` keeps (the epoch a member
        stopped at, or the last one, for ``"last"``; the epoch of its best loss for ``"best"``);
        epoch ``e`` is the state the ``e``-th step started from (the ``e``-th history row)."""
        members = state.members
        if self.rule.interacting or self.stopping.keep == "last":
            done = gather_members(members.done_epoch)
            return np.where(done >= 0, done, int(state.epoch))
        return gather_members(members.best_epoch)

    def kept_params(self, state: TrainState):
        """Per member, the params the stopping rule keeps: the last ones for interacting rules
        (SVGD particles are a set) or ``keep = "last"``, else each member's best (the params that
        reached the target when it was reached)."""
        if self.rule.interacting or self.stopping.keep == "last":
            return state.members.params
        return state.members.best_params


def divergence_report(state: TrainState) -> list[dict]:
    """One record per diverged member: its index, the epoch it was stopped at, and why (a
    collective when the members are split over processes: every process calls it)."""
    members = state.members
    diverged = np.flatnonzero(gather_members(members.diverged))
    causes, epochs = gather_members(members.divergence_cause), gather_members(members.divergence_epoch)
    return [{"member": int(i), "epoch": int(epochs[i]), "cause": DIVERGENCE_CAUSES.get(int(causes[i]), "unknown")}
            for i in diverged]


def misfit_summary(state: TrainState) -> str:
    """``chi2/N min..max`` over the members still valid, for progress bars: this process's own
    members when they are split over several (no communication, so any process may call it)."""
    chi2 = local_members(state.members.chi2)[~local_members(state.members.diverged)]
    if chi2.size == 0:
        return "all members diverged"
    if chi2.size == 1:
        return f"chi2/N {chi2[0]:.3g}"
    return f"chi2/N {chi2.min():.3g}..{chi2.max():.3g}"


__all__ = ["DIVERGENCE_CAUSES", "Engine", "MemberState", "Stopping", "TrainState", "divergence_report",
           "misfit_summary"]
