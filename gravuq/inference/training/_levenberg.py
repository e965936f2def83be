"""Levenberg-Marquardt in weight space, matrix-free: the second-order step rule.

Units: residuals are dimensionless (data residuals ``(G m - d) / sigma`` with gz and sigma in
mGal; prior residuals ``C^(-1/2) (m - a)`` with densities in kg/m^3).

Notes
-----
A member's objective is a sum of squared residuals ``r(theta) = (r_data, r_prior)``, both linear
in the density ``m(theta) = offset + scale * u(theta)`` of its network ``u``. With ``J`` the
Jacobian of ``r`` with respect to the weights, each step solves the damped Gauss-Newton system

    (J^T J + lambda D) delta = -J^T r

with ``D = diag(J^T J) + floor * mean(diag(J^T J))`` (Marquardt's scaling, so weights of very
different scales, hash-table entries and MLP weights, are damped alike; the floor keeps
directions the residuals barely see from taking huge steps). ``J v`` is one forward-mode product
through the network (``jax.linearize``) followed by the forward operator; ``J^T w`` the adjoint
of the operator followed by one reverse-mode product (``jax.vjp``): the operator's own
``forward``/``adjoint`` are called explicitly, so a matrix-free or FFT operator never stores rows
(forward-mode autodiff through them would keep the dense sensitivity as linearisation
residuals, which is why Optimistix's ``LevenbergMarquardt``, which linearises the whole residual
function, does not fit here). The system is solved by a fixed number of preconditioned conjugate-
gradient iterations (:func:`conjugate_gradients`; a tolerance test would make the count, and so the
result, depend on rounding, which differs between device layouts) with
``D`` as a Jacobi preconditioner, ``diag(J^T J)`` estimated by Hutchinson's estimator,
``E[(J^T z)^2]`` over Rademacher probes ``z``. The solve runs over the weights the outputs at the
cells depend on (:meth:`gravuq.model.Points.restrict`: a hash table's rows no cell reads have zero
Jacobian columns, so CG would leave them at zero while carrying them through every iteration; on
the real survey's 40,128 cells the cells read 7 % of the 262,144 rows, and a CG iteration of 10
members took 90 ms instead of 130). The step is accepted when the actual decrease of
``|r|^2 / 2`` is a positive fraction ``rho`` of the decrease the linear model predicts, and
``lambda`` follows Nielsen's rule: times ``max(1/3, 1 - (2 rho - 1)^3)`` after a success, times
a factor that doubles with each consecutive failure otherwise. Gravity is linear in density, so
the only non-linearity the damping must control is the network's.

References: Nocedal & Wright (2006), Numerical Optimization, 2nd ed., chapter 10; Nielsen (1999),
"Damping parameter in Marquardt's method", IMM-REP-1999-05 (the update of lambda); Martens
(2020), JMLR 21 (Gauss-Newton as natural gradient); Hutchinson (1990) for the diagonal.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._objective import MemberTargets, Objective
from ._rules import Network, Outcome, StepRule

_tree_map = jax.tree.map


def _dot(a, b):
    return sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def conjugate_gradients(apply, rhs, preconditioner, steps: int):
    """``steps`` iterations of preconditioned conjugate gradients on ``apply(x) = rhs`` (pytrees),
    from zero, always exactly ``steps`` (a step whose curvature or residual vanished leaves the
    iterate unchanged, so the count does not depend on rounding: the result is the same however
    the members are laid out over devices, which a tolerance test would not give)."""
    zero = _tree_map(jnp.zeros_like, rhs)
    z = preconditioner(rhs)
    start = (zero, rhs, z, z, _dot(rhs, z))

    def body(_, carry):
        x, r, z, p, rz = carry
        q = apply(p)
        curvature = _dot(p, q)
        ok = (curvature > 0) & (rz > 0)
        alpha = jnp.where(ok, rz / jnp.where(ok, curvature, 1.0), 0.0)
        x = _tree_map(lambda a, b: a + alpha * b, x, p)
        r = _tree_map(lambda a, b: a - alpha * b, r, q)
        z = preconditioner(r)
        rz_new = _dot(r, z)
        beta = jnp.where(ok & (rz > 0), rz_new / jnp.where(rz > 0, rz, 1.0), 0.0)
        p = _tree_map(lambda a, b: a + beta * b, z, p)
        return x, r, z, p, rz_new

    return jax.lax.fori_loop(0, steps, body, start)[0]


class DampingState(eqx.Module):
    """Per member: the damping ``lambda``, the factor a rejected step multiplies it by, and the
    running estimate of ``diag(J^T J)`` (a pytree like the params; zero before the first step)."""

    damping: Float[Array, " member"]
    growth: Float[Array, " member"]
    diagonal: eqx.Module


class LevenbergMarquardt(StepRule):
    """The damped Gauss-Newton step of the module notes, one per member (vmapped).

    ``cg_steps`` conjugate-gradient iterations per step (each one forward-mode and one
    reverse-mode product through the network and the operator); ``probes`` Rademacher probes for the diagonal per step, averaged into a
    running estimate with weight ``1 - memory`` (the diagonal changes slowly from step to step,
    and a better diagonal is a better preconditioner: measured on B1, 8 probes a step reach a
    given optimality gap in about two thirds of the steps that 2 need); ``floor`` its fraction of
    the mean added to it; ``initial_damping`` the first ``lambda``; ``shrink`` its smallest
    factor after a success (squared after two good steps in a row); ``target_misfit``: a step
    that would take chi^2/N below it is shortened to land just below it (8 bisections on its
    length, forward evaluations only), so fits stopped by the discrepancy principle do not
    overshoot into the noise.
    """

    cg_steps: int = eqx.field(static=True, default=50)
    probes: int = eqx.field(static=True, default=4)
    memory: float = eqx.field(static=True, default=0.7)
    floor: float = eqx.field(static=True, default=1e-3)
    initial_damping: float = eqx.field(static=True, default=1e3)
    shrink: float = eqx.field(static=True, default=1.0 / 3.0)
    target_misfit: float | None = eqx.field(static=True, default=None)

    def init(self, params):
        members = jax.tree.leaves(params)[0].shape[0]
        dtype = jax.tree.leaves(params)[0].dtype
        return DampingState(jnp.full(members, self.initial_damping, dtype), jnp.full(members, 2.0, dtype),
                            jax.tree.map(jnp.zeros_like, params))

    def step(self, params, state: DampingState, network: Network, objective: Objective, key) -> Outcome:
        keys = jax.random.split(key, state.damping.shape[0])
        new_params, damping, growth, diagonal, loss, chi2, finite, accepted = network.map_members(
            lambda p, t, lam, grow, diag, k: self._member(p, t, lam, grow, diag, k, network, objective),
            params, objective.targets, state.damping, state.growth, state.diagonal, keys)
        return Outcome(new_params, DampingState(damping, growth, diagonal), loss, chi2, finite, accepted)

    def _member(self, params, targets: MemberTargets, damping, growth, previous, key, network: Network,
                objective: Objective):
        coordinates = objective.coordinates

        def output(p, forward_mode=False):
            return network.member_output(p, coordinates, forward_mode)

        def residuals(out):
            density = objective.density(out, targets)
            white = objective.prior_residual(density, targets)
            return objective.data_residual(density, targets), white

        def half_squares(pair):
            data, white = pair
            total = jnp.sum(data**2)
            return 0.5 * (total if white is None else total + jnp.sum(white**2))

        out, linear = jax.linearize(lambda p: output(p, True), params)
        _, pullback = jax.vjp(output, params)
        data, white = residuals(out)
        cost = half_squares((data, white))
        n_data = objective.n_data
        loss, chi2 = 2.0 * cost / n_data, jnp.sum(data**2) / n_data
        inverse_std = objective.inverse_std.astype(data.dtype)
        # The solve runs over the weights the outputs depend on (see the module notes).
        restrict, expand = network.support(coordinates, params)

        def jacobian(v):  # (restricted) weights -> residuals
            tangent = objective.tangent_density(linear(expand(v)))
            data_part = objective.operator.forward(tangent) * inverse_std
            return data_part, (None if white is None else objective.prior.whiten(tangent))

        def transpose(pair):  # residuals -> (restricted) weights
            data_part, white_part = pair
            cells = objective.operator.adjoint(data_part * inverse_std).astype(out.dtype)
            if white_part is not None:
                cells = cells + objective.prior.whiten_transpose(white_part).astype(out.dtype)
            return restrict(pullback(objective.cotangent_output(cells))[0])

        gradient = transpose((data, white))

        def probe(probe_key):
            data_key, white_key = jax.random.split(probe_key)
            z = (jax.random.rademacher(data_key, data.shape, data.dtype),
                 None if white is None else jax.random.rademacher(white_key, white.shape, white.dtype))
            return _tree_map(jnp.square, transpose(z))

        # One probe after the other (lax.map), not vmapped: a probe's transpose holds the network's
        # cotangents at every cell, and at 10^6 cells several at once would dominate the memory.
        estimate = _tree_map(lambda x: jnp.mean(x, axis=0), jax.lax.map(probe, jax.random.split(key, self.probes)))
        first = sum(jnp.sum(x) for x in jax.tree.leaves(previous)) == 0
        weight = jnp.where(first, 0.0, self.memory)
        diagonal = _tree_map(lambda old, new: weight * old + (1.0 - weight) * new, restrict(previous), estimate)
        # The mean over all the weights, the rows no cell reads included (as zeros): the floor
        # does not depend on how many rows the restriction leaves out.
        mean = sum(jnp.sum(x) for x in jax.tree.leaves(diagonal)) / sum(x.size for x in jax.tree.leaves(params))
        scaling = _tree_map(lambda x: x + self.floor * mean + jnp.finfo(x.dtype).tiny, diagonal)

        def normal(v):
            return _tree_map(lambda a, b, d: a + damping * d * b, transpose(jacobian(v)), v, scaling)

        def preconditioner(v):
            return _tree_map(lambda a, d: a / ((1.0 + damping) * d), v, scaling)

        solution = conjugate_gradients(normal, _tree_map(jnp.negative, gradient), preconditioner, self.cg_steps)
        delta = _tree_map(lambda d: jnp.where(jnp.isfinite(d), d, 0.0), solution)
        predicted_pair = jacobian(delta)
        predicted = -(_dot(gradient, delta) + half_squares(predicted_pair))
        delta = expand(delta)
        trial = _tree_map(jnp.add, params, delta)
        trial_pair = residuals(output(trial))
        trial_cost = half_squares(trial_pair)
        ratio = (cost - trial_cost) / jnp.maximum(predicted, jnp.finfo(cost.dtype).tiny)
        accepted = jnp.isfinite(trial_cost) & (predicted > 0) & (ratio > 1e-4)
        # Two good steps in a row (the last one accepted: growth is back at 2): shrink twice as fast.
        shrink = jnp.where((growth == 2.0) & (ratio > 0.75), self.shrink**2, self.shrink)
        damping = jnp.where(accepted, damping * jnp.maximum(shrink, 1.0 - (2.0 * ratio - 1.0) ** 3), damping * growth)
        growth = jnp.where(accepted, 2.0, 2.0 * growth)
        if self.target_misfit is not None:
            # Stop at the target, not past it (the discrepancy principle): where the step would
            # cross chi^2/N = target, shorten it, by bisection on its length, to just below it.
            target = self.target_misfit * n_data
            crossing = accepted & (jnp.sum(data**2) > target) & (jnp.sum(trial_pair[0] ** 2) < target)

            def data_misfit(length):
                return jnp.sum(residuals(output(_tree_map(lambda a, b: a + length * b, params, delta)))[0] ** 2)

            def bisect(_, bracket):
                low, high = bracket
                middle = 0.5 * (low + high)
                below = data_misfit(middle) < target
                return jnp.where(below, low, middle), jnp.where(below, middle, high)

            _, length = jax.lax.fori_loop(0, 8, bisect, (jnp.asarray(0.0, cost.dtype), jnp.asarray(1.0, cost.dtype)))
            length = jnp.where(crossing, length, 1.0)
            trial = _tree_map(lambda a, b: a + length * b, params, delta)
        new_params = _tree_map(lambda a, b: jnp.where(accepted, a, b), trial, params)
        finite = jax.tree.reduce(jnp.logical_and, _tree_map(lambda g: jnp.all(jnp.isfinite(g)), gradient))
        return new_params, damping, growth, expand(diagonal), loss, chi2, finite, accepted


__all__ = ["DampingState", "LevenbergMarquardt"]
