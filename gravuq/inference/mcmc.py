"""Reference MCMC (NUTS) for voxel-grid gravity posteriors under non-Gaussian priors.

Conventions (SPEC section 1): density contrast ``m`` in kg/m^3 over the mesh cells, flat in C
order of ``(nz, ny, nx)``; data ``d`` and their standard deviations ``std`` in mGal; the dense
sensitivity ``G`` (stations x cells) in mGal per kg/m^3; float64. The target is ``p(m | d) ~
N(d; G m, diag(std^2)) p(m)`` with a prior independent over cells: :class:`NormalPrior` (the
posterior is then exactly Gaussian), :class:`BoxPrior` (bounds scalar or per cell) or
:class:`MixturePrior` (background/body, optionally truncated). Each has ``log_density(m)``
(normalised, log (kg/m^3)^-cells, ``-inf`` outside the bounds) and ``sample(key, shape)``
(kg/m^3) for reuse by MAP or ensemble methods.

Notes
-----
Each cell has an unconstrained ``u``: ``m = u``, or with bounds ``m = lower + (upper - lower)
sigmoid(u)`` and the log-Jacobian ``log(upper - lower) + log sigmoid(u) + log sigmoid(-u)``;
draws are clipped to the bounds (a rounding error at most), so none is outside. The data fix a
few combinations of cells tightly, so per-cell scales would leave NUTS a condition number
``(prior std / posterior std)^2``; it runs instead on ``z`` whitened by a Laplace approximation:

    u = u* + L z,   L L^T = H^-1,   H = D + B^T B,   B = diag(1/std) G diag(dm/du)

with ``u*`` the mode in ``u`` (damped Newton) and ``D`` the diagonal rest of the Hessian (prior,
Jacobian, curvature of ``m(u)``) floored at ``CURVATURE_FLOOR`` times the prior's precision in
``u``, so ``H`` is positive definite where the posterior is not log-concave. With ``C = B D^-1/2
= U S V^T``: ``L = D^-1/2 (I + W diag(g) W^T)``, ``W = C^T U``, ``g = ((1 + s^2)^-1/2 - 1) / s^2``
(Woodbury), from one eigen-decomposition of ``C C^T`` (stations x stations); applying ``L``
costs ``O(cells x stations)`` like ``G``. A Gaussian prior whitens to exactly ``N(0, I)``;
otherwise the warm-up (step size, diagonal or dense mass matrix in ``z``) corrects the rest.

Mixture: ``p(m_i) = (1 - f) N_T(m_i; 0, s_b^2) + f N_T(m_i; mu, s_1^2)``, each component
truncated to the bounds and renormalised (``f`` stays the prior probability of "body"), the
indicator summed out by log-sum-exp so NUTS sees a smooth density. Separated components give
bimodal cells that NUTS does not cross, and R-hat sees it only if chains settle in different
modes: a reference for overlapping components (500 cells, ``s_b = 30``, ``mu = 300``: R-hat 1.8).
NUTS is NumPyro's (chains sequential by default, or vectorized); ArviZ gives rank-normalised
split R-hat and bulk and tail ESS over the cells. A leapfrog step is one gradient (``G``,
``G^T``, ``L``, ``L^T``), a draw up to ``2^max_tree_depth - 1`` steps: see :func:`estimate_cost`.

References: Hoffman & Gelman (2014), The No-U-Turn sampler, JMLR 15; Vehtari, Gelman, Simpson,
Carpenter & Buerkner (2021), Rank-normalization, folding, and localization: an improved R-hat,
Bayesian Analysis 16; Betancourt (2017), arXiv:1701.02434 (preconditioning as a metric).
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtr
from jax.scipy.stats import norm

from ..errors import InputError
from ..posterior import chain_diagnostics

#: D's floor as a fraction of the prior's precision in u (the whitening is at most 2x wider);
#: chains start uniformly in ``[-INIT_RADIUS, INIT_RADIUS]`` in ``z``; Newton stops when half its
#: decrement (log density) is below ``NEWTON_TOLERANCE``, or after 100 steps. The cost model
#: (2 shared CPU cores): ~3 Gflop/s in leapfrog steps on 500 cells x 100 stations, ~20 us per
#: step on tiny problems, ~10 s for compiling NUTS, the Laplace set-up and ArviZ.
CURVATURE_FLOOR, INIT_RADIUS, NEWTON_TOLERANCE = 0.25, 2.0, 1e-9
FLOPS_PER_SECOND, SECONDS_PER_STEP, FIXED_SECONDS = 3e9, 2e-5, 10.0


def _array(value):
    return None if value is None else jnp.asarray(value, jnp.float64)


def _check(name: str, ok, message: str, *values) -> None:
    """Raise InputError unless ``ok(*values)`` (numpy) holds everywhere; traced values pass."""
    if not any(isinstance(v, jax.core.Tracer) for v in values) and not np.all(ok(*map(np.asarray, values))):
        raise InputError(f"{name}: {message}" + "".join(f", got {np.asarray(v)}" for v in values))


def _check_bounds(name: str, lower, upper) -> None:
    _check(name, lambda: (lower is None) == (upper is None), "give both bounds or neither")
    if lower is not None:
        _check(name, lambda lo, hi: np.isfinite(lo) & np.isfinite(hi) & (lo < hi),
               "bounds must be finite with lower < upper in every cell (kg/m^3)", lower, upper)


class _CellPrior(eqx.Module):
    """Independent over cells; subclasses give ``_unchecked`` (log density per cell, no support
    test), ``_moments`` (centre kg/m^3, variance), ``sample(key, shape)`` (kg/m^3) and ``interval``."""

    def interval(self):
        """The bounds ``(lower, upper)`` in kg/m^3, or None."""

    def cell_log_density(self, m):
        """log p(m_i) per cell, in log (kg/m^3)^-1; ``-inf`` outside the bounds."""
        bounds = self.interval()
        if bounds is None:
            return self._unchecked(m)
        return jnp.where((m >= bounds[0]) & (m <= bounds[1]), self._unchecked(m), -jnp.inf)

    def log_density(self, m):
        """log p(m) of configurations ``m`` ``(..., cells)`` kg/m^3, normalised: shape ``(...)``."""
        return jnp.sum(self.cell_log_density(m), axis=-1)


class NormalPrior(_CellPrior):
    """Independent ``m_i ~ N(mean, std^2)``; ``std`` and ``mean`` kg/m^3, scalars or ``(cells,)``."""

    std: jax.Array = eqx.field(converter=_array)
    mean: jax.Array = eqx.field(converter=_array, default=0.0)

    def __check_init__(self):
        _check("NormalPrior", lambda s: s > 0, "std must be > 0 kg/m^3", self.std)

    def sample(self, key, shape):
        return self.mean + self.std * jax.random.normal(key, shape, jnp.float64)

    def _unchecked(self, m):
        return norm.logpdf(m, self.mean, self.std)

    def _moments(self):
        return self.mean, self.std**2


class BoxPrior(_CellPrior):
    """Independent ``m_i ~ U(lower, upper)``; bounds in kg/m^3, scalars or ``(cells,)``."""

    lower: jax.Array = eqx.field(converter=_array)
    upper: jax.Array = eqx.field(converter=_array)

    def __check_init__(self):
        _check_bounds("BoxPrior", self.lower, self.upper)

    def interval(self):
        return self.lower, self.upper

    def sample(self, key, shape):
        return jax.random.uniform(key, shape, jnp.float64, self.lower, self.upper)

    def _unchecked(self, m):
        return jnp.broadcast_to(-jnp.log(self.upper - self.lower), jnp.shape(m))

    def _moments(self):
        return 0.5 * (self.lower + self.upper), (self.upper - self.lower) ** 2 / 12.0


class MixturePrior(_CellPrior):
    """Background/body mixture per cell (kg/m^3; scalars or ``(cells,)``):
    ``(1 - f) N(0, background_std^2) + f N(body_mean, body_std^2)`` with ``f = body_fraction``,
    each component truncated to ``[lower, upper]`` and renormalised when bounds are given."""

    background_std: jax.Array = eqx.field(converter=_array)
    body_mean: jax.Array = eqx.field(converter=_array)
    body_std: jax.Array = eqx.field(converter=_array)
    body_fraction: jax.Array = eqx.field(converter=_array)
    lower: jax.Array | None = eqx.field(converter=_array, default=None)
    upper: jax.Array | None = eqx.field(converter=_array, default=None)

    def __check_init__(self):
        _check("MixturePrior", lambda a, b, f: (a > 0) & (b > 0) & (f > 0) & (f < 1),
               "need background_std, body_std > 0 and body_fraction in (0, 1)", self.background_std,
               self.body_std, self.body_fraction)
        _check_bounds("MixturePrior", self.lower, self.upper)

    def interval(self):
        return None if self.lower is None else (self.lower, self.upper)

    def _log_joint(self, m):
        """log p(m_i, c_i) per cell for the background and the body, each truncated to the bounds."""
        out = []
        for weight, mean, std in [(1 - self.body_fraction, 0.0, self.background_std),
                                  (self.body_fraction, self.body_mean, self.body_std)]:
            mass = 1.0 if self.lower is None else ndtr((self.upper - mean) / std) - ndtr((self.lower - mean) / std)
            out.append(jnp.log(weight) + norm.logpdf(m, mean, std) - jnp.log(mass))
        return out

    def _unchecked(self, m):
        return jnp.logaddexp(*self._log_joint(m))

    def sample(self, key, shape):  # the indicator, then its component
        pick_key, value_key = jax.random.split(key)
        body = jax.random.uniform(pick_key, shape, jnp.float64) < self.body_fraction
        mean = jnp.where(body, self.body_mean, 0.0)
        std = jnp.where(body, self.body_std, self.background_std)
        if self.lower is None:
            return mean + std * jax.random.normal(value_key, shape, jnp.float64)
        white = jax.random.truncated_normal(value_key, (self.lower - mean) / std, (self.upper - mean) / std,
                                            shape, jnp.float64)
        return jnp.clip(mean + std * white, self.lower, self.upper)

    def _moments(self):
        """The untruncated mixture's mean (kept inside the middle 98 % of the bounds) and variance."""
        f, mu = self.body_fraction, self.body_mean
        variance = (1 - f) * self.background_std**2 + f * (self.body_std**2 + (1 - f) * mu**2)
        if self.lower is None:
            return f * mu, variance
        margin = 0.01 * (self.upper - self.lower)
        return jnp.clip(f * mu, self.lower + margin, self.upper - margin), variance


def _to_density(prior, u, clip=False):
    """m(u): the identity without bounds, ``lower + (upper - lower) sigmoid(u)`` (clipped) with."""
    bounds = prior.interval()
    if bounds is None:
        return u
    m = bounds[0] + (bounds[1] - bounds[0]) * jax.nn.sigmoid(u)
    return jnp.clip(m, *bounds) if clip else m


def _log_density_u(prior, u):
    """Per cell: log p(m(u)) + log |dm/du|, without a support test (u is unconstrained)."""
    bounds = prior.interval()
    if bounds is None:
        return prior._unchecked(u)
    jacobian = jnp.log(bounds[1] - bounds[0]) + jax.nn.log_sigmoid(u) + jax.nn.log_sigmoid(-u)
    return prior._unchecked(_to_density(prior, u)) + jacobian


def _reference_precision(prior):
    """The prior's precision in u: with bounds by the delta method at the centre, <= pi^2/3."""
    variance, bounds = prior._moments()[1], prior.interval()
    if bounds is not None:
        variance = jnp.minimum(variance * (4.0 / (bounds[1] - bounds[0])) ** 2, math.pi**2 / 3)
    return 1.0 / variance


def _derivatives(fn, u):
    """fn, fn' and fn'' of an elementwise function at u."""
    def first(v):
        return jax.grad(lambda w: jnp.sum(fn(w)))(v)

    return fn(u), first(u), jax.grad(lambda v: jnp.sum(first(v)))(u)


class _Target(eqx.Module):
    """``G / std``, ``d / std``, the prior and ``u = centre + scale (z + basis (shrink basis^T z))``."""

    weighted_matrix: jax.Array
    weighted_data: jax.Array
    prior: eqx.Module
    centre: jax.Array
    scale: jax.Array
    basis: jax.Array
    shrink: jax.Array

    def unconstrained(self, z):
        return self.centre + self.scale * (z + (z @ self.basis * self.shrink) @ self.basis.T)


@jax.jit
def _objective(weighted_matrix, weighted_data, prior, u):
    """The negative log posterior in u, up to a constant."""
    residual = weighted_matrix @ _to_density(prior, u) - weighted_data
    return 0.5 * jnp.sum(residual**2) - jnp.sum(_log_density_u(prior, u))


def _low_rank(whitened):
    """``W`` (cells x r), ``s^2`` (r,) with ``C^T C = W W^T``, ``W^T W = diag(s^2)``: ``(I + C^T C)^-1 =
    I - W diag(1/(1 + s^2)) W^T``, square root ``I + W diag(g) W^T``, ``g = -1/(q (1 + q))``,
    ``q = sqrt(1 + s^2)``; ``W = C^T U`` from ``C C^T = U S^2 U^T`` (``V S`` if stations > cells)."""
    if whitened.shape[0] <= whitened.shape[1]:
        squares, vectors = jnp.linalg.eigh(whitened @ whitened.T)
        return whitened.T @ vectors, jnp.maximum(squares, 0.0)
    squares, vectors = jnp.linalg.eigh(whitened.T @ whitened)
    return vectors * jnp.sqrt(jnp.maximum(squares, 0.0)), jnp.maximum(squares, 0.0)


@jax.jit
def _newton_system(weighted_matrix, weighted_data, prior, u):
    """Value, gradient, Newton step with the Hessian ``D + B^T B``, and ``D^-1/2``, ``W``, ``g``."""
    m, dm, d2m = _derivatives(lambda v: _to_density(prior, v), u)
    h, dh, d2h = _derivatives(lambda v: _log_density_u(prior, v), u)
    residual = weighted_matrix @ m - weighted_data
    back = weighted_matrix.T @ residual
    floor = CURVATURE_FLOOR * jnp.broadcast_to(_reference_precision(prior), u.shape)
    scale = jax.lax.rsqrt(jnp.maximum(d2m * back - d2h, floor))
    factor, squares = _low_rank(weighted_matrix * (dm * scale))
    gradient = dm * back - dh
    y = scale * gradient
    step = -scale * (y - factor @ ((factor.T @ y) / (1.0 + squares)))
    root = jnp.sqrt(1.0 + squares)
    return 0.5 * jnp.sum(residual**2) - jnp.sum(h), gradient, step, scale, factor, -1.0 / (root * (1.0 + root))


def _laplace(weighted_matrix, weighted_data, prior):
    """Damped (Armijo) Newton from the prior's centre to the mode: ``u*, D^-1/2, W, g, iterations``."""
    u, bounds = jnp.broadcast_to(prior._moments()[0], weighted_matrix.shape[1:]), prior.interval()
    if bounds is not None:
        u = jnp.log(u - bounds[0]) - jnp.log(bounds[1] - u)
    for iteration in range(1, 101):
        value, gradient, step, scale, factor, shrink = _newton_system(weighted_matrix, weighted_data, prior, u)
        decrement = float(-(gradient @ step))
        if not np.isfinite(decrement):
            raise FloatingPointError(f"non-finite log posterior at Newton step {iteration}: NaN or inf inputs?")
        if decrement / 2 < NEWTON_TOLERANCE:
            break
        length = 1.0
        while length > 1e-10 and (float(_objective(weighted_matrix, weighted_data, prior, u + length * step))
                                  > float(value) - 1e-4 * length * decrement):
            length /= 2
        if length <= 1e-10:
            break  # no descent left: at the mode to rounding error
        u = u + length * step
    return u, scale, factor, shrink, iteration


@dataclass(frozen=True)
class McmcCost:
    """Leapfrog steps (gradient evaluations), flop each, bytes and seconds: expected and worst case."""

    problem: str
    gradient_evaluations: int
    worst_case_gradient_evaluations: int
    flops_per_gradient: float
    memory_bytes: int
    seconds: float
    worst_case_seconds: float

    def describe(self) -> str:
        return (f"NUTS on {self.problem}: about {self.gradient_evaluations:.3g} gradient evaluations "
                f"({self.flops_per_gradient:.3g} flop each) and {self.seconds:.3g} s, up to "
                f"{self.worst_case_gradient_evaluations:.3g} and {self.worst_case_seconds:.3g} s if every tree "
                f"reaches its maximum depth; {self.memory_bytes / 2**20:.3g} MiB")


def estimate_cost(cells: int, stations: int, *, chains: int = 2, warmup: int = 500, samples: int = 500,
                  dense_mass: bool = False, typical_tree_depth: int = 5, max_tree_depth: int = 10,
                  flops_per_second: float = FLOPS_PER_SECOND) -> McmcCost:
    """The cost of :func:`sample_posterior` before running it: ``chains x (warmup + samples) x
    (2^depth - 1)`` gradient evaluations, each ``4 S N`` flop for ``G m`` and ``G^T r`` (``S``
    stations, ``N`` cells), ``8 N r`` for ``L`` and ``L^T`` (``r = min(S, N)``), ``2 N^2`` more
    with a dense mass matrix; about 10 Newton iterations of ``4 r^2 max(S, N) + 10 r^3`` flop;
    ``SECONDS_PER_STEP`` per step and ``FIXED_SECONDS``. On 500 cells x 100 stations (box prior,
    2 x 1000 iterations): 24 s estimated, 18 s taken."""
    rank = min(cells, stations)
    per_gradient = 4.0 * stations * cells + 8.0 * cells * rank + (2.0 * cells**2 if dense_mass else 0.0)
    setup = 10 * (4.0 * rank**2 * max(cells, stations) + 10.0 * rank**3)
    iterations = warmup + samples
    steps = [chains * iterations * (2**depth - 1) for depth in (typical_tree_depth, max_tree_depth)]
    seconds = [FIXED_SECONDS + setup / flops_per_second + n * (per_gradient / flops_per_second + SECONDS_PER_STEP)
               for n in steps]
    memory = 8 * (3 * stations * cells + cells * rank + 2 * chains * samples * cells + 3 * cells**2 * dense_mass)
    problem = f"{cells} cells x {stations} stations, {chains} chains x {iterations} iterations"
    return McmcCost(problem, steps[0], steps[1], per_gradient, memory, *seconds)


def check_cost(cost: McmcCost, max_seconds: float) -> None:
    """Raise :class:`InputError` when the expected run time exceeds ``max_seconds``."""
    if cost.seconds > max_seconds:
        raise InputError(f"the MCMC reference is too large for its budget of {max_seconds:g} s: {cost.describe()}. "
                         "Use fewer cells (a coarser mesh), fewer chains or draws, or the exact Gaussian posterior.")


@dataclass(frozen=True)
class McmcResult:
    """NUTS draws ``(chains, draws, cells)`` kg/m^3, all within the prior's bounds, and diagnostics:
    per cell ``rhat`` (rank-normalised split R-hat; NaN with one chain), ``ess_bulk``, ``ess_tail``
    (ArviZ) and their worst cells ``rhat_max``, ``ess_bulk_min``, ``ess_tail_min``; ``divergences``
    after warm-up; per chain ``step_size`` (in ``z``) and ``accept_rate``; ``steps`` and
    ``warmup_steps`` the leapfrog steps (gradient evaluations) of both phases, all chains;
    ``wall_s`` the call, ``compile_s`` compilation, ``run_s`` warm-up plus sampling (seconds);
    ``laplace_centre`` the mode in u mapped to kg/m^3, after ``newton_iterations``."""

    draws: np.ndarray
    rhat: np.ndarray
    ess_bulk: np.ndarray
    ess_tail: np.ndarray
    rhat_max: float
    ess_bulk_min: float
    ess_tail_min: float
    divergences: int
    step_size: np.ndarray
    accept_rate: np.ndarray
    steps: int
    warmup_steps: int
    wall_s: float
    compile_s: float
    run_s: float
    laplace_centre: np.ndarray
    newton_iterations: int

    @property
    def mean(self) -> np.ndarray:
        """Posterior mean per cell, kg/m^3."""
        return self.draws.mean(axis=(0, 1))

    @property
    def std(self) -> np.ndarray:
        """Posterior standard deviation per cell, kg/m^3."""
        return self.draws.reshape(-1, self.draws.shape[-1]).std(axis=0, ddof=1)


def _potential(target: _Target):
    return lambda z: _objective(target.weighted_matrix, target.weighted_data, target.prior, target.unconstrained(z))


@functools.lru_cache(maxsize=8)
def _programs(warmup, samples, thinning, dense_mass, max_tree_depth, target_accept, vectorized):
    """NumPyro's functional NUTS (``hmc(potential_fn_gen=...)``) as one jitted program, a chain's
    initialisation, warm-up and sampling in one ``fori_loop`` (vmapped over chains when vectorized),
    with a cache for its executables; ``G`` is an argument, never a constant in the program."""
    from numpyro.infer.hmc import hmc

    init_kernel, sample_kernel = hmc(potential_fn_gen=_potential, algo="NUTS")

    def run(z, key, target):
        def advance(i, carry):  # one NUTS iteration; every thinning-th after warm-up is stored
            state, warm_steps, steps, divergences, draws = carry
            state = sample_kernel(state, model_args=(target,))
            sampling, offset = i >= warmup, i - warmup
            slot = jnp.where(sampling & (offset % thinning == thinning - 1), offset // thinning, kept)
            return (state, warm_steps + jnp.where(sampling, 0, state.num_steps),
                    steps + jnp.where(sampling, state.num_steps, 0), divergences + (sampling & state.diverging),
                    draws.at[slot].set(state.z, mode="drop"))

        state = init_kernel(z, warmup, dense_mass=dense_mass, target_accept_prob=target_accept,
                            max_tree_depth=max_tree_depth, model_args=(target,), rng_key=key)
        zero = jnp.zeros((), jnp.int64)
        carry = (state, zero, zero, zero, jnp.zeros((kept,) + z.shape, z.dtype))
        state, warm_steps, steps, divergences, draws = jax.lax.fori_loop(0, warmup + kept * thinning, advance, carry)
        return draws, warm_steps, steps, divergences, state.adapt_state.step_size, state.mean_accept_prob

    kept = samples // thinning
    return jax.jit(jax.vmap(run, (0, 0, None)) if vectorized else run), {}


def _execute(program, *args):
    """Run a program, compiled ahead of time once per argument signature: (outputs, compile s)."""
    function, executables = program
    leaves, tree = jax.tree.flatten(args)
    signature = (tree, tuple((jnp.shape(x), jnp.result_type(x)) for x in leaves))
    begin = time.perf_counter()
    if signature not in executables:
        executables[signature] = function.lower(*args).compile()
    compile_s = time.perf_counter() - begin
    return jax.block_until_ready(executables[signature](*args)), compile_s


def sample_posterior(matrix, data, std, prior, key, *, chains: int = 2, warmup: int = 500, samples: int = 500,
                     dense_mass: bool = False, progress: bool = False, thinning: int = 1,
                     max_tree_depth: int = 10, target_accept: float = 0.8, chain_method: str = "sequential",
                     max_seconds: float | None = None) -> McmcResult:
    """NUTS draws from ``p(m | d) ~ N(d; G m, diag(std^2)) p(m)``.

    ``matrix`` the dense sensitivity ``(stations, cells)`` mGal per kg/m^3, ``data`` and ``std``
    ``(stations,)`` mGal, ``prior`` a :class:`NormalPrior`, :class:`BoxPrior` or
    :class:`MixturePrior` (kg/m^3), ``key`` a JAX key. ``warmup`` adaptation iterations per chain
    (step size, and a diagonal or with ``dense_mass`` dense mass matrix, in the whitened
    coordinates), then ``samples`` iterations of which every ``thinning``-th is kept. Chains run
    one after another (``"sequential"``, one compiled program) or batched (``"vectorized"``);
    ``progress`` prints a line per chain. A dense mass matrix needs far more warm-up draws than
    cells (a warning says so). With ``max_seconds`` a too-large :func:`estimate_cost` raises.
    """
    start = time.perf_counter()
    stations, cells = np.shape(matrix)
    _check("sample_posterior", lambda: np.shape(data) == np.shape(std) == (stations,),
           f"data {np.shape(data)} and std {np.shape(std)} must be ({stations},) to match G {np.shape(matrix)}")
    _check("sample_posterior", lambda: chain_method in ("sequential", "vectorized") and chains >= 1 <= thinning
           <= samples and warmup >= 0, f"need chain_method 'sequential' or 'vectorized', chains >= 1, warmup >= 0, "
           f"1 <= thinning <= samples; got {chain_method!r}, {chains}, {warmup}, {thinning}, {samples}")
    if dense_mass and 10 * cells > warmup:
        warnings.warn(f"a dense mass matrix over {cells} cells from {warmup} warm-up iterations is poorly estimated "
                      "and can send every tree to the maximum depth; use at least 10 per cell", stacklevel=2)
    if max_seconds is not None:
        check_cost(estimate_cost(cells, stations, chains=chains, warmup=warmup, samples=samples,
                                 dense_mass=dense_mass, max_tree_depth=max_tree_depth), max_seconds)

    std = jnp.asarray(std, jnp.float64)
    weighted = jnp.asarray(matrix, jnp.float64) / std[:, None], jnp.asarray(data, jnp.float64) / std
    centre, scale, basis, shrink, iterations = _laplace(*weighted, prior)
    target = _Target(*weighted, prior, centre, scale, basis, shrink)

    init_key, chain_key = jax.random.split(key)
    init = jax.random.uniform(init_key, (chains, cells), jnp.float64, -INIT_RADIUS, INIT_RADIUS)
    keys = jax.random.split(chain_key, chains)
    vectorized = chain_method == "vectorized"
    program = _programs(warmup, samples, thinning, dense_mass, max_tree_depth, float(target_accept), vectorized)
    outputs, compile_s, run_s = [], 0.0, 0.0
    for index, batch in enumerate([(init, keys)] if vectorized else zip(init, keys)):
        begin = time.perf_counter()
        output, seconds = _execute(program, *batch, target)
        compile_s, run_s = compile_s + seconds, run_s + time.perf_counter() - begin - seconds
        outputs.append(output if vectorized else [x[None] for x in output])
        if progress:
            print(f"{'chains' if vectorized else f'chain {index + 1}'}: {int(np.sum(output[1] + output[2]))} "
                  f"leapfrog steps, step size "
                  f"{np.mean(output[4]):.3g}, {int(np.sum(output[3]))} divergences")
    z, warmup_steps, steps, divergences, step_size, accept_rate = (np.concatenate(x) for x in zip(*outputs))

    draws = np.asarray(_to_density(prior, target.unconstrained(jnp.asarray(z)), clip=True))
    rhat, ess_bulk, ess_tail = chain_diagnostics(draws)
    return McmcResult(draws, rhat, ess_bulk, ess_tail, float(np.max(rhat)), float(np.min(ess_bulk)),
                      float(np.min(ess_tail)), int(divergences.sum()), step_size, accept_rate, int(steps.sum()),
                      int(warmup_steps.sum()), time.perf_counter() - start, compile_s, run_s,
                      np.asarray(_to_density(prior, centre, clip=True)), iterations)
