"""Exact Hamiltonian Monte Carlo for a multivariate Gaussian truncated to a box.

Conventions (SPEC section 1): density contrast in kg/m^3 over the mesh cells (flat C order of
``(nz, ny, nx)``), float64. The target is ``N(mean, covariance)`` restricted to ``lower <= m <=
upper`` cell by cell and renormalised: the exact posterior of a linear forward model with
Gaussian noise under a Gaussian prior truncated to the bounds (the ``gaussian`` method's
posterior, with every draw outside the box ruled out).

Notes
-----
With the covariance ``S`` of the (untruncated) Gaussian as the mass matrix, Hamilton's equations
for the potential ``-log N(m; mean, S)`` are a harmonic oscillator of period ``2 pi`` in every
direction at once, solved exactly:

    m(t) = mean + (m0 - mean) cos t + v0 sin t,        v0 ~ N(0, S)

(Pakman & Paninski 2014). Cell ``i`` follows ``mean_i + R_i cos(t - phi_i)``, so the first time
it reaches a bound has a closed form (a root of a quadratic in ``tan(t / 2)``, see
:func:`_first_walls`); at the earliest such time over the cells the
velocity is reflected off that wall, ``v <- v - 2 v_i S[:, i] / S_ii`` (the mirror image in the
metric ``S^-1``, which keeps the energy), and the motion continues from there. Each iteration
draws a fresh velocity and runs for ``pi / 2``; nothing is discretised, so every trajectory is
accepted and there is no step size to tune. Without walls ``pi / 2`` gives independent draws; the
walls only correlate successive draws a little, which the effective sample size measures.
A trajectory costs ``O(cells^2)`` for the velocity plus ``O(cells)`` a bounce; the set-up, the
Cholesky factor of ``S``, ``O(cells^3)`` (a second on 2 cores at 5,000 cells). Mixing does not
depend on how badly the data condition ``S``, which is what stops NUTS on gravity posteriors.

Reference: Pakman & Paninski (2014), "Exact Hamiltonian Monte Carlo for truncated multivariate
Gaussians", Journal of Computational and Graphical Statistics 23(2), 518-542.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

#: A wall whose order key (about half its time, in radians, for small times) is below this is
#: the one just left; a trajectory stops after ``MAX_BOUNCES`` bounces (counted, and reported as truncated).
TINY_TIME, MAX_BOUNCES = 1e-10, 100_000

#: The cost model (2 shared CPU cores, float64), from B1 under [0, 600]: about 1.5 bounces a cell
#: per trajectory (1167 at 726 cells, 7062 at 4851: it grows with the cells near a bound), 30 ns
#: a cell and 3 us a bounce, 3e9 flop/s for the set-up (a cells^3 factorisation and products).
BOUNCES_PER_CELL, SECONDS_PER_CELL_BOUNCE, SECONDS_PER_BOUNCE, FLOPS_PER_SECOND = 1.5, 3e-8, 3e-6, 3e9


def estimate_seconds(cells: int, trajectories: int) -> float:
    """Expected seconds of :func:`sample_truncated_gaussian` for ``trajectories`` (all chains,
    warm-up included) on ``cells`` cells, by the module's cost model (a guide: the bounces
    depend on how much of the posterior lies near the bounds)."""
    bounces = BOUNCES_PER_CELL * cells
    return (2 * cells**3 / FLOPS_PER_SECOND
            + trajectories * (bounces * (cells * SECONDS_PER_CELL_BOUNCE + SECONDS_PER_BOUNCE)
                              + 2 * cells**2 / FLOPS_PER_SECOND))


@dataclass(frozen=True)
class TruncatedDraws:
    """Draws ``(chains, samples, cells)`` kg/m^3, inside the box; ``bounces`` ``(chains, samples)``
    per kept trajectory; ``truncated`` how many trajectories stopped at ``MAX_BOUNCES``;
    ``setup_s`` (factorisation) and ``run_s`` (sampling, compilation included) seconds."""

    draws: np.ndarray
    bounces: np.ndarray
    truncated: int
    setup_s: float
    run_s: float


def _first_walls(offset, velocity, mean, lower, upper):
    """When each cell, moving as ``mean + offset cos t + velocity sin t``, first crosses its lower
    bound downward and its upper bound upward: ``s = tan(t / 2)`` per (cell, side), ``(cells,
    2)``, and an order key increasing with ``t`` in ``(0, 2 pi)`` (inf where it never does).

    ``t`` solves ``offset cos t + velocity sin t = bound - mean``, with ``s`` a root of
    ``(h + a) s^2 - 2 b s + (h - a) = 0`` (``a`` offset, ``b`` velocity, ``h`` the bound's
    height), taken in the numerically stable form; of its two roots the one whose velocity
    ``b (1 - s^2) - 2 a s`` points out of the box. ``t = 2 atan(s)`` (plus ``2 pi`` for
    ``s < 0``) is increasing along the order ``s in [0, inf)`` then ``(-inf, 0)``, which the key
    follows without an arctangent per cell: only the earliest wall's time is computed.
    """
    def crossing(bound, outward):
        height = bound - mean
        discriminant = offset**2 + velocity**2 - height**2
        root = jnp.sqrt(jnp.maximum(discriminant, 0.0))
        q = velocity + jnp.where(velocity >= 0, root, -root)
        first = q / jnp.where(height + offset != 0, height + offset, jnp.inf)  # q / (h + a)
        second = (height - offset) / jnp.where(q != 0, q, jnp.inf)            # (h - a) / q
        def points_out(s):
            return outward * (velocity * (1.0 - s * s) - 2.0 * offset * s) > 0
        s = jnp.where(points_out(first), first, second)
        valid = (discriminant >= 0) & points_out(s)
        key = jnp.where(s >= 0, s / (1.0 + s), 1.0 + 1.0 / (1.0 - s))
        return s, jnp.where(valid & (key > TINY_TIME), key, jnp.inf)

    (s_low, key_low), (s_up, key_up) = crossing(lower, -1.0), crossing(upper, 1.0)
    return jnp.stack([s_low, s_up], axis=-1), jnp.stack([key_low, key_up], axis=-1)


def _time_of(s):
    """``t`` in ``[0, 2 pi)`` of ``s = tan(t / 2)``."""
    t = 2.0 * jnp.arctan(s)
    return jnp.where(t < 0, t + 2.0 * jnp.pi, t)


def _trajectory(position, velocity, mean, covariance, lower, upper, duration):
    """Move for ``duration`` from a feasible ``position`` with ``velocity``: (end, bounces)."""
    diagonal = jnp.diag(covariance)

    def moving(carry):
        *_, remaining, bounces = carry
        return (remaining > 0) & (bounces < MAX_BOUNCES)

    def advance(carry):
        offset, velocity, remaining, bounces = carry
        roots, keys = _first_walls(offset, velocity, mean, lower, upper)
        flat = jnp.argmin(keys)
        cell, side = flat // 2, flat % 2
        hit_time = jnp.where(jnp.isfinite(keys.reshape(-1)[flat]), _time_of(roots.reshape(-1)[flat]), jnp.inf)
        hits = hit_time < remaining
        step = jnp.where(hits, hit_time, remaining)
        position = mean + offset * jnp.cos(step) + velocity * jnp.sin(step)
        velocity = velocity * jnp.cos(step) - offset * jnp.sin(step)
        reflected = velocity - 2.0 * velocity[cell] / diagonal[cell] * covariance[cell]
        wall = jnp.where(side == 0, lower[cell], upper[cell])
        position = jnp.where(hits, jnp.clip(position, lower, upper).at[cell].set(wall), position)
        velocity = jnp.where(hits, reflected, velocity)
        return position - mean, velocity, jnp.where(hits, remaining - step, 0.0), bounces + hits

    start = (position - mean, velocity, jnp.asarray(duration, position.dtype), jnp.asarray(0, jnp.int32))
    offset, _, remaining, bounces = jax.lax.while_loop(moving, advance, start)
    return jnp.clip(mean + offset, lower, upper), bounces, remaining > 0


@functools.partial(jax.jit, static_argnames=("warmup", "samples"))
def _chain(start, key, mean, covariance, factor, lower, upper, warmup: int, samples: int):
    def iterate(position, key):
        velocity = factor @ jax.random.normal(key, mean.shape, mean.dtype)
        position, bounces, cut = _trajectory(position, velocity, mean, covariance, lower, upper, 0.5 * jnp.pi)
        return position, (position, bounces, cut)

    _, (positions, bounces, cut) = jax.lax.scan(iterate, start, jax.random.split(key, warmup + samples))
    return positions[warmup:], bounces[warmup:], jnp.sum(cut)


def sample_truncated_gaussian(mean, covariance, lower, upper, key, *, chains: int = 2, warmup: int = 50,
                              samples: int = 500) -> TruncatedDraws:
    """Exact-HMC draws from ``N(mean, covariance)`` truncated to ``[lower, upper]`` (see the module
    notes): ``mean`` ``(cells,)`` kg/m^3, ``covariance`` ``(cells, cells)`` (kg/m^3)^2 symmetric
    positive definite, bounds scalars or ``(cells,)`` with ``lower < upper``. Each chain starts at
    the mean moved a thousandth of the box inside it and runs ``warmup`` trajectories before the
    ``samples`` it keeps; chains run one after another (one compiled program)."""
    begin = time.perf_counter()
    mean = jnp.asarray(mean, jnp.float64)
    covariance = jnp.asarray(covariance, jnp.float64)
    lower, upper = (jnp.broadcast_to(jnp.asarray(b, jnp.float64), mean.shape) for b in (lower, upper))
    factor = jnp.linalg.cholesky(covariance)
    if not bool(jnp.all(jnp.isfinite(factor))):
        raise ValueError("sample_truncated_gaussian: the covariance is not positive definite")
    margin = 1e-3 * (upper - lower)
    start = jnp.clip(mean, lower + margin, upper - margin)
    jax.block_until_ready(factor)
    setup_s = time.perf_counter() - begin
    draws, bounces, truncated = [], [], 0
    for chain_key in jax.random.split(key, chains):
        positions, counts, cut = _chain(start, chain_key, mean, covariance, factor, lower, upper, warmup, samples)
        draws.append(np.asarray(positions))
        bounces.append(np.asarray(counts))
        truncated += int(cut)
    return TruncatedDraws(np.stack(draws), np.stack(bounces), truncated, setup_s,
                          time.perf_counter() - begin - setup_s)


__all__ = ["MAX_BOUNCES", "TruncatedDraws", "estimate_seconds", "sample_truncated_gaussian"]
