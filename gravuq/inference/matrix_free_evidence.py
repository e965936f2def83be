"""The evidence without a dense matrix: for surveys whose sensitivity does not fit in memory.

Conventions (SPEC section 1): density contrast in kg/m^3; gz, its stated std and the noise
floor in mGal; with several components (stacked component-major) each component's data, std
and floor in its unit (mGal for gz, Eotvos for gradients).

Notes
-----
The log evidence of :mod:`gravuq.inference.empirical_bayes`,
``log N(d; 0, S)``, ``S = sigma^2 K + D``, ``K = G R G^T``, ``D = diag((alpha s_i)^2 + tau^2)``,
needs ``K`` (stations x stations), whose dense build costs ``N^2 x cells``. Here ``K`` is only
ever applied to vectors, ``K v = G (R (G^T v))`` (the forward operator and its adjoint in
float64, and the prior's Kronecker correlation), and approximated by a randomised Nystrom
factor (Halko, Martinsson & Tropp 2011; ``matfree.stochtrace.nystrom_eigh``) of the
noise-whitened gram ``K0 = S0^-1 K S0^-1`` (``S0 = diag(s_i)``, the stated std):

    K ~ S0 L L^T S0,   L: (stations, rank),

from ``2 rank`` products (one power step on Gaussian test vectors, then the Nystrom
extension). Gravity's gram has a fast-decaying spectrum, so a few hundred directions hold
nearly all of it; with ``rank >= N`` the factor is exact. With ``W = D^(-1/2) S0 L`` and
``w = D^(-1/2) d`` the evidence follows exactly (matrix determinant lemma and Woodbury):

    log det S = sum log D_ii + log det(I + sigma^2 W^T W)
    d^T S^-1 d = w^T w - sigma^2 w^T W (I + sigma^2 W^T W)^-1 W^T w,

``rank x rank`` algebra, differentiable by JAX in ``(sigma, alpha, tau)``. What the factor
misses is reported as the fraction of ``trace(K0)`` outside it (Hutchinson estimate); it bounds
the error of the log-determinant by ``sigma^2 max(s_i^2 / D_ii) trace(K0 - L L^T)``.

With several components the noise is per component, ``D_ii = (alpha_c s_i)^2 + tau_c^2``
(:mod:`gravuq.inference.noise_model`): ``D`` stays diagonal, so the same algebra holds, and the
factors and floors are learned jointly as in the dense fit.

The correlation length enters ``K`` itself: it is chosen on a short grid (one factor per
length), the scale and noise maximised at each (a profile over the length).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from matfree import stochtrace
from scipy import optimize

from ..mesh import TensorMesh
from .empirical_bayes import Hyperparameters
from .noise_model import COMPONENT_NOISE_SCALE, NOISE_SCALE, noise_values, noise_variance
from .prior import GaussianPrior

__all__ = ["NystromGram", "learn_matrix_free", "nystrom_gram"]

#: Directions of the Nystrom factor (at most the number of stations), and the probes of the
#: missed-trace estimate.
RANK = 400
TRACE_PROBES = 8

#: Correlation lengths tried, in mean horizontal cell widths, wherever the length is not fitted by
#: gradients (here, and on the dense grid path of :mod:`gravuq.inference.prior_settings`).
LENGTH_GRID_CELLS = (0.5, 1.0, 2.0, 4.0, 8.0)


@dataclass(frozen=True)
class NystromGram:
    """``K ~ S0 L L^T S0`` (see the module notes): ``factor`` ``L`` ``(stations, rank)``,
    ``stated_std`` ``S0``'s diagonal (mGal), ``missed`` the fraction of ``trace(K0)`` it leaves
    out and ``residual_trace`` that trace itself (Hutchinson estimates; 0 when exact)."""

    factor: jnp.ndarray
    stated_std: jnp.ndarray
    missed: float
    residual_trace: float = 0.0

    def log_det_error_bound(self, inner) -> float:
        """An upper bound (nats) on the log-determinant error of the factor at ``inner``:
        ``sigma^2 max(s_i^2 / D_ii) trace(K0 - L L^T)``."""
        inner = np.asarray(inner, np.float64)
        stated = np.asarray(self.stated_std)
        noise = np.asarray(noise_variance(jnp.asarray(stated), jnp.asarray(inner)))
        return float(np.exp(2 * inner[0])) * float(np.max(stated**2 / noise)) * self.residual_trace

    def log_evidence(self, data, inner):
        """``log N(d; 0, sigma^2 K + D)`` for ``inner = (log sigma, log alpha, log tau)`` (JAX;
        with several components ``(log sigma, log alpha_1 .., log tau_1 ..)``)."""
        return _nystrom_log_evidence(self.factor, self.stated_std, jnp.asarray(data, jnp.float64),
                                     jnp.asarray(inner, jnp.float64))


@jax.jit
def _nystrom_log_evidence(factor, stated, data, inner):
    noise = noise_variance(stated, inner)
    root = jnp.sqrt(noise)
    weighted = (stated / root)[:, None] * factor
    white = data / root
    core = jnp.eye(factor.shape[1]) + jnp.exp(2 * inner[0]) * weighted.T @ weighted
    cholesky = jnp.linalg.cholesky(core)
    projected = jax.scipy.linalg.solve_triangular(cholesky, weighted.T @ white, lower=True)
    quadratic = white @ white - jnp.exp(2 * inner[0]) * projected @ projected
    log_det = jnp.sum(jnp.log(noise)) + 2 * jnp.sum(jnp.log(jnp.diag(cholesky)))
    return -0.5 * quadratic - 0.5 * log_det - 0.5 * data.size * jnp.log(2 * jnp.pi)


_nystrom_value_and_grad = jax.jit(jax.value_and_grad(_nystrom_log_evidence, argnums=3))


@eqx.filter_jit
def _whitened_products(operator, prior: GaussianPrior, stated, vectors):
    """``K0 V = S0^-1 G C G^T S0^-1 V`` for the columns of ``vectors`` ``(stations, k)``; the
    operator and prior are arguments, not constants folded into the compiled code."""
    def one(vector):
        return operator.forward(prior.covariance_apply(operator.adjoint(vector / stated))) / stated
    return jax.vmap(one, in_axes=1, out_axes=1)(vectors)


def nystrom_gram(operator, prior: GaussianPrior, stated_std, rank: int = RANK, key=None) -> NystromGram:
    """The Nystrom factor of the gram ``G C G^T`` of a float64 ``operator`` (mGal per kg/m^3)
    and a unit-std ``prior``, whitened by the stated std (mGal), from ``2 rank`` products (see
    the module notes)."""
    key = jax.random.key(0) if key is None else key
    stated = jnp.asarray(stated_std, jnp.float64)
    count = stated.size
    rank = min(rank, count)

    def products(vectors):
        return _whitened_products(operator, prior, stated, vectors)

    test_key, trace_key = jax.random.split(key)
    sketch = products(jax.random.normal(test_key, (count, rank), jnp.float64))
    basis, _ = jnp.linalg.qr(sketch)  # one power step: the test vectors in K0's range
    factor, _, _ = stochtrace.nystrom_eigh()(lambda vector: products(vector[:, None])[:, 0], basis)
    # Hutchinson on the residual K0 - L L^T itself: its variance is that of the residual, small
    # when the factor is good (an estimate of trace(K0) alone would be swamped by K0's spread).
    signs = jax.random.rademacher(trace_key, (count, TRACE_PROBES), jnp.float64)
    residual = float(jnp.mean(jnp.sum(signs * products(signs), axis=0) - jnp.sum((factor.T @ signs) ** 2, axis=0)))
    captured = float(jnp.sum(factor**2))
    missed = 0.0 if rank >= count else max(residual, 0.0) / max(residual + captured, 1e-300)
    return NystromGram(factor, stated, missed, 0.0 if rank >= count else max(residual, 0.0))


def learn_matrix_free(operator, data, stated_std, mesh: TensorMesh, *, learn_noise: bool = True,
                      lengths: tuple[float, ...] | None = None, prior_std: float | None = None, rank: int = RANK,
                      log=None, learn_floor: bool = True, components: tuple[str, ...] = ("gz",)):
    """Learn ``(sigma, alpha, tau)`` and the correlation length matrix-free (see the notes).

    ``operator`` a float64 forward operator (mGal per kg/m^3); ``data`` and ``stated_std``
    ``(stations,)`` mGal (several ``components``: stacked component-major, each in its unit,
    with a factor and a floor each); ``lengths`` the correlation lengths to try (m; 0 = independent cells),
    ``prior_std`` a fixed prior std (kg/m^3) instead of a learned one. Returns
    ``(Hyperparameters, log evidence, details)``; ``details``
    holds each length's evidence, the trace fraction the factor missed and the seconds taken.
    """
    begun = time.perf_counter()
    log = log or (lambda message: None)
    data = jnp.asarray(data, jnp.float64)
    stated = jnp.asarray(stated_std, jnp.float64)
    cell = float(np.mean(np.concatenate([mesh.widths_x, mesh.widths_y])))
    lengths = lengths or tuple(factor * cell for factor in LENGTH_GRID_CELLS)
    count = len(components)
    if data.size % count:
        raise ValueError(f"{data.size} data are not {count} components of equal length")
    scale_bounds = tuple(np.log(NOISE_SCALE if count == 1 else COMPONENT_NOISE_SCALE)) if learn_noise else (0.0, 0.0)
    floor_bounds, learned_floors, second_floors = [], [], []
    for block_data, block_stated in zip(np.asarray(data).reshape(count, -1), np.asarray(stated).reshape(count, -1)):
        varied = float(np.ptp(block_stated)) > 1e-6 * float(np.mean(block_stated))
        spread = float(np.std(block_data)) or 1.0
        learned = learn_noise and varied and learn_floor  # a single stated std: no floor
        learned_floors.append(learned)
        second_floors.append(np.log(0.1 * spread))
        floor_bounds.append((np.log(1e-6 * spread), np.log(10.0 * spread)) if learned
                            else (np.log(1e-12 * spread),) * 2)
    bounds = [None if prior_std is None else (np.log(prior_std),) * 2, *[scale_bounds] * count, *floor_bounds]
    results = []
    inner = None
    for length in lengths:
        gram = nystrom_gram(operator, GaussianPrior.build(mesh, 1.0, length), stated, rank)
        if inner is None:  # sigma^2 mean(diag K) = var(d): the prior predictive spread of the data
            diagonal = float(jnp.sum((stated[:, None] * gram.factor) ** 2)) / data.size
            spread = 0.5 * np.log(max(float(np.var(np.asarray(data))), 1e-30) / max(diagonal, 1e-300))
            inner = np.array([spread if prior_std is None else np.log(prior_std), *[0.0] * count,
                              *[low for low, _ in floor_bounds]])
            if bounds[0] is None:  # as the dense fit: within e^12 of the start (the evidence is flat
                bounds[0] = (spread - 12.0, spread + 12.0)  # as sigma -> 0, and L-BFGS-B may run there)

        def minus(values, gram=gram):
            value, gradient = _nystrom_value_and_grad(gram.factor, gram.stated_std, data, jnp.asarray(values))
            return -float(value), -np.asarray(gradient)

        low, high = [b[0] for b in bounds], [b[1] for b in bounds]
        starts = [inner]
        if count > 1 and any(learned_floors):  # several factors and floors trade off: the dense fit's
            starts.append(np.array([inner[0], *[0.0] * count, *second_floors]))  # second start too
        fits = [optimize.minimize(minus, np.clip(point, low, high), jac=True, method="L-BFGS-B", bounds=bounds)
                for point in starts]
        fit = min(fits, key=lambda result: result.fun)
        bound = gram.log_det_error_bound(fit.x)
        results.append((-float(fit.fun), length, fit.x.copy(), gram.missed, bound))
        inner = fit.x
        log(f"  evidence {-fit.fun:.6g} at L {length:.4g} m (matrix-free, rank {gram.factor.shape[1]}, "
            f"log-det error <= {bound:.2g}): sigma {np.exp(fit.x[0]):.4g} kg/m^3, noise scale "
            + ", ".join(f"{np.exp(value):.3g}" for value in fit.x[1:1 + count]))
    value, length, inner, missed, bound = max(results, key=lambda entry: entry[0])
    learned = Hyperparameters(prior_std=float(np.exp(inner[0])), horizontal_length=float(length),
                              vertical_length=float(length), **noise_values(inner, learned_floors))
    details = {"evidence_by_length": {f"{entry[1]:.6g}": entry[0] for entry in results},
               "trace_missed": missed, "log_det_error_bound": bound, "rank": int(min(rank, data.size)),
               "seconds": time.perf_counter() - begun}
    return learned, value, details
