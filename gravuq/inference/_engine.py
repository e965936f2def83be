"""One particle engine: K INR members trained jointly through one forward operator.

Every method that trains networks (the deterministic INR, deep ensembles, later SVGD) is a
preset of this engine. The members are one batched pytree (a leading member axis on every
array, made with ``eqx.filter_vmap`` over keys), and one jitted epoch evaluates all members'
densities, then a single ``(members x cells) @ (cells x stations)`` product gives all their data.

Verbs, as in NumPyro's ``infer``: :meth:`Engine.init` makes an immutable :class:`EngineState`
carrying the keys; :meth:`Engine.update` runs a chunk of epochs in one ``lax.scan``;
:meth:`Engine.run` loops over chunks with a progress bar and returns the final state.

Each member ``k`` minimises, per station count ``N``,

    loss_k = |(G m_k - d_k) / sigma|^2 / N  +  |C^(-1/2) (m_k - a_k)|^2 / N

where ``d_k`` is its data (observed, or perturbed for randomised MAP) and ``a_k`` its anchor
(a prior draw; the second term is absent for plain fits). Units: gz in mGal, densities kg/m^3.
Members whose loss turns non-finite or explodes are frozen at their last finite state and
flagged ``diverged``; callers must leave them out of any average.
"""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from ..model import trainable
from ._prior import GaussianPrior
from ._stein import SteinKernel


class Problem(eqx.Module):
    """What the members fit: operator, cell coordinates, per-member data and anchors.

    ``coordinates`` are normalised cell centres (float32, ``(cells, 3)``); ``data`` is
    ``(members, stations)`` mGal; ``inverse_std`` 1/sigma per station (1/mGal); ``anchor``
    ``(members, cells)`` kg/m^3 or None; ``prior`` the Gaussian prior whose ``whiten`` gives the
    anchor penalty; ``offset`` ``(members, cells)`` kg/m^3 fixed fields and ``scale`` ``(cells,)``
    kg/m^3 per unit of network output: a member's density is ``offset + scale * network``.
    """

    operator: eqx.Module
    coordinates: Float[Array, "cell 3"]
    data: Float[Array, "member station"]
    inverse_std: Float[Array, " station"]
    anchor: Float[Array, "member cell"] | None = None
    prior: GaussianPrior | None = None
    offset: Float[Array, "member cell"] | None = None
    scale: Float[Array, " cell"] | None = None


class EngineState(eqx.Module):
    """Immutable training state; every array has a leading member axis except ``epoch``/``key``."""

    params: eqx.Module
    opt_state: optax.OptState
    best_params: eqx.Module
    best_loss: Float[Array, " member"]
    loss: Float[Array, " member"]
    chi2: Float[Array, " member"]
    since_best: Int[Array, " member"]
    done: Bool[Array, " member"]
    diverged: Bool[Array, " member"]
    reached_target: Bool[Array, " member"]
    epoch: Int[Array, ""]
    key: Array
    divergence_cause: Int[Array, " member"]
    divergence_epoch: Int[Array, " member"]


def _select(mask, new, old):
    """Per member: ``old`` where ``mask`` is True, else ``new`` (pytrees with a leading member axis)."""
    def pick(n, o):
        return jnp.where(mask.reshape(mask.shape + (1,) * (n.ndim - 1)), o, n)
    return jax.tree.map(pick, new, old)


@dataclass(frozen=True, eq=False)
class Engine:
    """Training settings shared by all members (static: changing one recompiles).

    Parameters
    ----------
    static
        The non-trained part of the members' model (``eqx.partition``).
    optimizer
        An Optax optimiser, applied to each member independently.
    target_misfit
        Stop a member once its chi^2/N reaches this (discrepancy principle); None to run on.
    patience
        Stop a member whose loss has not improved for this many epochs (0: never).
    stein
        With a :class:`SteinKernel`, the members are SVGD particles: each step follows the
        Stein direction of the log posterior ``-N loss / 2`` instead of each member's own
        gradient, and the final members are the last particles (not each one's best).
    chunk_epochs
        Epochs per jitted ``lax.scan`` chunk (the progress bar moves between chunks).
    """

    static: eqx.Module
    optimizer: optax.GradientTransformation
    target_misfit: float | None = 1.0
    patience: int = 0
    chunk_epochs: int = 25
    divergence_factor: float = 1e6
    stein: SteinKernel | None = None

    @eqx.filter_jit
    def densities(self, params, coordinates) -> Float[Array, "member cell"]:
        """All members' density contrasts (kg/m^3) at the cells."""
        def one(member_params):
            return eqx.combine(member_params, self.static).density(coordinates)
        return jax.vmap(one)(params)

    def fields(self, params, problem: Problem) -> Float[Array, "member cell"]:
        """All members' density (kg/m^3) at the cells, fixed offsets included."""
        density = self.densities(params, problem.coordinates)
        if problem.scale is not None:
            density = density * problem.scale.astype(density.dtype)
        if problem.offset is not None:
            density = density + problem.offset.astype(density.dtype)
        return density

    def losses(self, params, problem: Problem):
        """Per-member loss (see module notes) and chi^2/N against the member's own data."""
        return self.field_losses(self.fields(params, problem), problem)

    def field_losses(self, density, problem: Problem):
        """Per-member loss and chi^2/N of density fields ``(members, cells)``, kg/m^3."""
        predicted = problem.operator.forward(density)
        residual = (predicted - problem.data.astype(predicted.dtype)) * problem.inverse_std.astype(predicted.dtype)
        n_data = residual.shape[-1]
        chi2 = jnp.sum(residual**2, axis=-1) / n_data
        loss = chi2
        if problem.anchor is not None:
            white = problem.prior.whiten(density - problem.anchor.astype(density.dtype))
            loss = loss + jnp.sum(white**2, axis=-1) / n_data
        return loss, chi2

    @eqx.filter_jit
    def init(self, params, key: PRNGKeyArray, problem: Problem) -> EngineState:
        """A fresh state for members ``params`` (leading member axis)."""
        opt_state = jax.vmap(self.optimizer.init)(params)
        loss, chi2 = self.losses(params, problem)
        members = loss.shape[0]
        false = jnp.zeros(members, bool)
        # Raw key data rather than a typed key, so the state serialises as plain arrays.
        none = jnp.zeros(members, jnp.int32)
        return EngineState(params, opt_state, params, loss, loss, chi2, none, false, false, false,
                           jnp.asarray(0, jnp.int32), jax.random.key_data(key), none, none - 1)

    def _epoch(self, state: EngineState, problem: Problem) -> EngineState:
        def total(params):
            loss, chi2 = self.losses(params, problem)
            return jnp.sum(jnp.where(jnp.isfinite(loss), loss, 0.0)), (loss, chi2)

        if self.stein is None:
            (_, (loss, chi2)), grads = jax.value_and_grad(total, has_aux=True)(state.params)
        else:
            loss, chi2, grads = self._stein_gradients(state.params, problem)
        # loss/chi2 belong to the current params: decide stopping before stepping.
        finite_gradient = jax.tree.reduce(
            jnp.logical_and, jax.tree.map(lambda g: jnp.all(jnp.isfinite(g).reshape(g.shape[0], -1), axis=1), grads))
        finite = jnp.isfinite(loss) & finite_gradient
        exploded = loss > self.divergence_factor * jnp.maximum(state.best_loss, 1.0)
        newly_diverged = ~state.done & (~finite | exploded)
        diverged = state.diverged | newly_diverged
        cause = jnp.where(~jnp.isfinite(loss), 1, jnp.where(~finite_gradient, 2, 3))
        divergence_cause = jnp.where(newly_diverged, cause, state.divergence_cause)
        # Explicit dtype: a state restored from a checkpoint has no weak types to fall back on.
        divergence_epoch = jnp.where(newly_diverged, state.epoch.astype(jnp.int32), state.divergence_epoch)
        reached = jnp.zeros_like(state.done) if self.target_misfit is None else (chi2 <= self.target_misfit)
        reached = state.reached_target | (~state.done & finite & reached)
        improved = finite & (loss < state.best_loss) & ~state.done
        best_params = _select(~improved, state.params, state.best_params)
        best_loss = jnp.where(improved, loss, state.best_loss)
        since_best = jnp.where(improved, 0, state.since_best + 1)
        out_of_patience = (since_best > self.patience) if self.patience > 0 else jnp.zeros_like(state.done)
        done = state.done | diverged | reached | out_of_patience
        # A member that reached its target keeps exactly the params that reached it.
        best_params = _select(reached & ~state.reached_target, best_params, state.params)
        best_loss = jnp.where(reached & ~state.reached_target, loss, best_loss)

        updates, opt_state = jax.vmap(self.optimizer.update)(grads, state.opt_state, state.params)
        stepped = eqx.apply_updates(state.params, updates)
        params = _select(done, stepped, state.params)
        opt_state = _select(done, opt_state, state.opt_state)
        # Members stopped earlier keep the loss they stopped with.
        return EngineState(params, opt_state, best_params, best_loss,
                           jnp.where(state.done, state.loss, loss), jnp.where(state.done, state.chi2, chi2),
                           since_best, done, diverged, reached, state.epoch + 1, state.key, divergence_cause,
                           divergence_epoch)

    def _stein_gradients(self, params, problem: Problem):
        """Minus the SVGD direction, as a gradient for the optimiser (see :class:`SteinKernel`)."""
        density, pullback = jax.vjp(lambda p: self.fields(p, problem), params)
        n_data = problem.data.shape[-1]

        def log_posterior(fields):
            loss, chi2 = self.field_losses(fields, problem)
            return -0.5 * n_data * jnp.sum(jnp.where(jnp.isfinite(loss), loss, 0.0)), (loss, chi2)

        scores, (loss, chi2) = jax.grad(log_posterior, has_aux=True)(density)
        if self.stein.space == "function":
            direction = self.stein.direction(density, scores)
            (grads,) = pullback(-direction.astype(density.dtype))
            return loss, chi2, grads
        (weight_scores,) = pullback(scores)
        leaves, treedef = jax.tree.flatten(params)
        score_leaves = jax.tree.leaves(weight_scores)
        members = density.shape[0]
        flat = jnp.concatenate([leaf.reshape(members, -1) for leaf in leaves], axis=1)
        flat_scores = jnp.concatenate([leaf.reshape(members, -1) for leaf in score_leaves], axis=1)
        direction = -self.stein.direction(flat, flat_scores)
        sizes = np.cumsum([0] + [int(np.prod(leaf.shape[1:])) for leaf in leaves])
        pieces = [direction[:, a:b].reshape(leaf.shape) for a, b, leaf in zip(sizes[:-1], sizes[1:], leaves)]
        return loss, chi2, jax.tree.unflatten(treedef, pieces)

    @eqx.filter_jit
    def update(self, state: EngineState, problem: Problem, epochs: int):
        """Run ``epochs`` epochs of all members in one ``lax.scan``.

        Returns the new state and the members' chi^2/N at each epoch, ``(epochs, members)``.
        """
        def body(carry, _):
            new = self._epoch(carry, problem)
            return new, new.chi2
        return jax.lax.scan(body, state, None, length=epochs)

    def run(self, state: EngineState, problem: Problem, epochs: int, progress=None, history=None,
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
        while done_epochs < epochs and not bool(jnp.all(state.done)):
            chunk = min(self.chunk_epochs, epochs - done_epochs)
            state, chi2 = self.update(state, problem, chunk)
            pieces.append(np.asarray(chi2))
            done_epochs += chunk
            # Checkpoint first: an interrupt may arrive while the progress bar draws.
            if after_chunk is not None:
                after_chunk(state, np.concatenate(pieces))
            if progress is not None:
                progress(done_epochs, state)
        return state, np.concatenate(pieces) if pieces else np.zeros((0, state.chi2.shape[0]))

    def final_params(self, state: EngineState):
        """Per member: the params that reached the target, else the best seen; SVGD particles
        are a set, so for them the last state."""
        return state.params if self.stein is not None else state.best_params


def stack_members(make_model, keys: PRNGKeyArray):
    """Build one model per key and stack them: returns ``(params, static)`` with a member axis."""
    models = eqx.filter_vmap(make_model)(keys)
    return trainable(models)


def make_optimizer(learning_rate: float, schedule: str = "constant", epochs: int = 500,
                   clip_norm: float | None = None) -> optax.GradientTransformation:
    """Adam with an optional cosine or exponential decay over ``epochs`` (to 1 % of the rate)."""
    if schedule == "cosine":
        rate = optax.cosine_decay_schedule(learning_rate, epochs, alpha=0.01)
    elif schedule == "exponential":
        rate = optax.exponential_decay(learning_rate, epochs, 0.01)
    else:
        rate = learning_rate
    steps = [optax.clip_by_global_norm(clip_norm)] if clip_norm else []
    return optax.chain(*steps, optax.adam(rate))


#: Why a member was stopped as diverged (``EngineState.divergence_cause``).
DIVERGENCE_CAUSES = {1: "non-finite loss", 2: "non-finite gradient", 3: "loss exploded (over 1e6 times its best)"}


def divergence_report(state: EngineState) -> list[dict]:
    """One record per diverged member: its index, the epoch it was stopped at, and why."""
    diverged = np.flatnonzero(np.asarray(state.diverged))
    causes, epochs = np.asarray(state.divergence_cause), np.asarray(state.divergence_epoch)
    return [{"member": int(i), "epoch": int(epochs[i]), "cause": DIVERGENCE_CAUSES.get(int(causes[i]), "unknown")}
            for i in diverged]


def misfit_summary(state: EngineState) -> str:
    """``chi2/N min..max`` over the members still valid, for progress bars."""
    chi2 = np.asarray(state.chi2)[~np.asarray(state.diverged)]
    if chi2.size == 0:
        return "all members diverged"
    if chi2.size == 1:
        return f"chi2/N {chi2[0]:.3g}"
    return f"chi2/N {chi2.min():.3g}..{chi2.max():.3g}"

