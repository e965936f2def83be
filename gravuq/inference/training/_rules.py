"""Step rules: how one training step moves every member, given the objective.

A rule has two verbs over an immutable per-member state (a leading member axis on every array):
``init(params)`` and ``step(params, state, network, objective, key)``, which returns the loss
and chi^2/N of the params it was given (so stopping is decided on them) and the stepped params.

- :class:`FirstOrder`: each member's own gradient, through an Optax optimiser (Adam by default).
- :class:`Stein`: SVGD: every member moves along the Stein direction of the log posterior, a
  kernel-weighted average of all members' scores plus a repulsion (Liu & Wang 2016).
- :class:`~gravuq.inference.training.LevenbergMarquardt` (``_levenberg.py``): a damped
  Gauss-Newton step per member, matrix-free.

Units: losses are dimensionless (chi^2 per datum plus the prior penalty per datum).
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Bool, Float

from ...model import Points
from ._objective import Objective
from ._stein import SteinKernel


class Network(eqx.Module):
    """The static part of the members' model (``eqx.partition``): combines with each member's
    params into a model whose ``density(points)`` gives its output at the cells.

    ``member_batch``: evaluate (and, in :class:`~gravuq.inference.training.LevenbergMarquardt`,
    linearise) this many members at a time, one batch after the other (``jax.lax.map``); None:
    all at once (``jax.vmap``). The results are the same; a batch bounds the memory of the
    networks' activations at every cell, which grows with members x cells x width x depth.
    """

    static: eqx.Module
    member_batch: int | None = eqx.field(static=True, default=None)

    def map_members(self, function, *arguments):
        """``function`` over the leading member axis of every argument (pytrees), by batches of
        :attr:`member_batch` members or all at once."""
        members = jax.tree.leaves(arguments)[0].shape[0]
        if self.member_batch is None or self.member_batch >= members:
            return jax.vmap(function)(*arguments)
        return jax.lax.map(lambda packed: function(*packed), arguments, batch_size=self.member_batch)

    def member_output(self, params, coordinates, forward_mode: bool = False) -> Float[Array, " cell"]:
        """One member's network output at ``coordinates`` (normalised ``(cells, 3)``, or
        :class:`gravuq.model.Points`); ``forward_mode`` for Jacobian-vector products."""
        return eqx.combine(params, self.static).density(coordinates, forward_mode=forward_mode)

    def support(self, coordinates, like):
        """``(restrict, expand)``: one member's weights (shaped as ``like``) cut to those its
        outputs at ``coordinates`` depend on, and back (:meth:`gravuq.model.Points.restrict`);
        identities for plain coordinates."""
        if not isinstance(coordinates, Points):
            return (lambda tree: tree), (lambda tree: tree)
        return coordinates.restrict, lambda tree: coordinates.expand(tree, like)

    def points(self, params, coordinates):
        """``coordinates`` prepared once for every evaluation (by the first member's model)."""
        return eqx.combine(jax.tree.map(lambda leaf: leaf[0], params), self.static).points(coordinates)

    def outputs(self, params, coordinates) -> Float[Array, "member cell"]:
        """Every member's output (params with a leading member axis)."""
        return self.map_members(lambda p: self.member_output(p, coordinates), params)


class Outcome(eqx.Module):
    """What a step found: ``loss`` and ``chi2`` of the params it started from (per member),
    whether their gradient was finite, the stepped ``params`` and rule ``state``, and whether each
    member moved (a rejected trial step leaves it where it was: the step then says nothing about
    convergence; None means every member moved)."""

    params: eqx.Module
    state: object
    loss: Float[Array, " member"]
    chi2: Float[Array, " member"]
    finite_gradient: Bool[Array, " member"]
    moved: Bool[Array, " member"] | None = None


def _finite_per_member(tree) -> Bool[Array, " member"]:
    return jax.tree.reduce(jnp.logical_and,
                           jax.tree.map(lambda g: jnp.all(jnp.isfinite(g).reshape(g.shape[0], -1), axis=1), tree))


class StepRule(eqx.Module):
    """A way of moving the members one step (abstract; see the module notes)."""

    @abc.abstractmethod
    def init(self, params):
        """The rule's state for members ``params`` (leading member axis)."""

    @abc.abstractmethod
    def step(self, params, state, network: Network, objective: Objective, key) -> Outcome:
        """One step of every member."""

    @property
    def interacting(self) -> bool:
        """Whether members move together (SVGD): then each member's 'best' state means nothing."""
        return False


class FirstOrder(StepRule):
    """Each member follows the gradient of its own loss through ``optimizer`` (Optax)."""

    optimizer: optax.GradientTransformation

    def init(self, params):
        return jax.vmap(self.optimizer.init)(params)

    def step(self, params, state, network: Network, objective: Objective, key) -> Outcome:
        def total(params):
            loss, chi2 = objective.losses(objective.density(network.outputs(params, objective.coordinates)))
            return jnp.sum(jnp.where(jnp.isfinite(loss), loss, 0.0)), (loss, chi2)

        (_, (loss, chi2)), grads = jax.value_and_grad(total, has_aux=True)(params)
        updates, state = jax.vmap(self.optimizer.update)(grads, state, params)
        return Outcome(eqx.apply_updates(params, updates), state, loss, chi2, _finite_per_member(grads))


class Stein(StepRule):
    """SVGD particles: minus the Stein direction of the log posterior ``-N loss / 2`` is handed
    to ``optimizer`` as the gradient (see :class:`SteinKernel`)."""

    kernel: SteinKernel
    optimizer: optax.GradientTransformation

    @property
    def interacting(self) -> bool:
        return True

    def init(self, params):
        return jax.vmap(self.optimizer.init)(params)

    def step(self, params, state, network: Network, objective: Objective, key) -> Outcome:
        density, pullback = jax.vjp(lambda p: objective.density(network.outputs(p, objective.coordinates)), params)
        n_data = objective.n_data

        def log_posterior(fields):
            loss, chi2 = objective.losses(fields)
            return -0.5 * n_data * jnp.sum(jnp.where(jnp.isfinite(loss), loss, 0.0)), (loss, chi2)

        scores, (loss, chi2) = jax.grad(log_posterior, has_aux=True)(density)
        if self.kernel.space == "function":
            direction = self.kernel.direction(density, scores)
            (grads,) = pullback(-direction.astype(density.dtype))
        else:
            (weight_scores,) = pullback(scores)
            leaves, treedef = jax.tree.flatten(params)
            score_leaves = jax.tree.leaves(weight_scores)
            members = density.shape[0]
            flat = jnp.concatenate([leaf.reshape(members, -1) for leaf in leaves], axis=1)
            flat_scores = jnp.concatenate([leaf.reshape(members, -1) for leaf in score_leaves], axis=1)
            direction = -self.kernel.direction(flat, flat_scores)
            sizes = np.cumsum([0] + [int(np.prod(leaf.shape[1:])) for leaf in leaves])
            pieces = [direction[:, a:b].reshape(leaf.shape) for a, b, leaf in zip(sizes[:-1], sizes[1:], leaves)]
            grads = jax.tree.unflatten(treedef, pieces)
        updates, state = jax.vmap(self.optimizer.update)(grads, state, params)
        return Outcome(eqx.apply_updates(params, updates), state, loss, chi2, _finite_per_member(grads))


def adam(learning_rate: float, schedule: str = "constant", epochs: int = 500,
         clip_norm: float | None = None) -> optax.GradientTransformation:
    """Adam with an optional cosine or exponential decay over ``epochs`` (to 1 % of the rate),
    after an optional clip of each member's gradient to ``clip_norm`` (global norm)."""
    if schedule == "cosine":
        rate = optax.cosine_decay_schedule(learning_rate, epochs, alpha=0.01)
    elif schedule == "exponential":
        rate = optax.exponential_decay(learning_rate, epochs, 0.01)
    else:
        rate = learning_rate
    steps = [optax.clip_by_global_norm(clip_norm)] if clip_norm else []
    return optax.chain(*steps, optax.adam(rate))


__all__ = ["FirstOrder", "Network", "Outcome", "Stein", "StepRule", "adam"]
