"""Empirical Bayes: the prior and the noise model learned from the data.

Conventions (SPEC section 1): density contrast in kg/m^3 on the mesh cells (C order of
``(nz, ny, nx)``); lengths in metres; gz, its stated std and the noise floor in mGal; with
several components (stacked component-major: every station's first component, then every
station's second, ...) each component's data, stated std and floor in its own unit (mGal for
gz, Eotvos for the gradients).

Notes
-----
Gravity is linear in density, so with the Gaussian prior ``m ~ N(0, sigma^2 R)`` and Gaussian
noise the data are Gaussian: ``d ~ N(0, Sigma)``, ``Sigma = sigma^2 K + diag(n^2)``, with
``K = G R G^T`` (stations x stations). The hyperparameters are

- ``sigma``: the prior standard deviation in the top layer (kg/m^3);
- ``beta``: the Li-Oldenburg depth-weighting exponent, ``std(z) = sigma ((depth + z0) / z0)^(beta/2)``
  (deep cells may vary more, as the data see them less);
- ``L_h``, ``L_v``: the horizontal and vertical lengths of the exponential correlation
  ``R = R_z kron R_y kron R_x``, ``R_axis[i, j] = exp(-|c_i - c_j| / L)``;
- ``alpha``, ``tau``: the noise model ``n_i^2 = (alpha s_i)^2 + tau^2`` of the stated accuracy
  ``s_i`` (a scale factor on it, and an additive floor for the modelling error of cells wider
  than the station spacing and of everything else the stated accuracy leaves out). With several
  components, one ``(alpha_c, tau_c)`` per component ``c``, ``tau_c`` in its unit:
  ``inner = (log sigma, log alpha_1 .. log alpha_C, log tau_1 .. log tau_C)``
  (:func:`noise_variance`), learned jointly.

They maximise the log evidence ``log N(d; 0, Sigma)`` (type-II maximum likelihood; Rasmussen &
Williams 2006, chapter 5). The expensive part, ``K``, depends only on ``(beta, L_h, L_v)``: the
optimisation is profiled, an outer L-BFGS-B over ``(log L_h, log L_v, beta)`` whose every point
builds ``K`` once (``N^2 x cells`` products) and maximises over ``(log sigma, log alpha, log tau)``
(one Cholesky of the station system per evaluation). The inner objective's gradient is in closed
form (a Cholesky factor and its triangular inverse, :mod:`._station_evidence`); the profiled
objective's by the envelope theorem, ``dE*/dθ = <dE/dK, dK/dθ>`` at the inner optimum, one JAX
reverse-mode pass through ``K``. Everything is float64.

The evidence is one score; :func:`leave_one_out` gives the other, the closed-form leave-one-out
predictive of every station (R&W eq. 5.12): ``mean_i = d_i - [Sigma^-1 d]_i / [Sigma^-1]_ii``,
``var_i = 1 / [Sigma^-1]_ii``, which judges priors with many hyperparameters (per-cell scales)
that the evidence can be gamed by.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
from scipy import optimize, stats

from ..mesh import TensorMesh
from ._station_evidence import StructureGram, evidence_and_gradient, exponential_correlation, relative_std
from .noise_model import NOISE_SCALE, noise_plan, noise_values, noise_variance
from .prior import GaussianPrior

#: Bounds of the learned values: lengths in cell widths of the mesh's smallest / largest extent,
#: and the depth exponent (those of the noise model: :mod:`gravuq.inference.noise_model`).
LENGTH_CELLS = (0.05, 4.0)
DEPTH_EXPONENT = (0.0, 4.0)

#: A weak hyperprior on the prior's structure where it is learned (the evidence alone trades a
#: shallow compact source for a deep smooth one: gravity cannot tell them apart): the vertical
#: correlation length within about a factor e of the horizontal one, ``log(L_v / L_h) ~ N(0, 1)``,
#: and the depth-weighting exponent ``beta ~ N(1, 0.5^2)`` (Li & Oldenburg's 2 compensates
#: gravity's depth decay fully; half of that is the middle ground).
HYPERPRIOR = {"log_anisotropy_sd": 1.0, "depth_exponent": 1.0, "depth_exponent_sd": 0.5}


@dataclass(frozen=True)
class Hyperparameters:
    """The prior and noise model (see the module notes): ``prior_std`` kg/m^3 (top layer),
    ``depth_exponent`` (0: none), ``horizontal_length`` and ``vertical_length`` m (0: iid),
    ``noise_scale`` (times the stated std) and ``noise_floor`` mGal. With several components
    (data stacked component-major), ``component_scales`` and ``component_floors`` hold each
    component's factor and floor (the floor in the component's unit: mGal for gz, Eotvos for
    gradients) and ``noise_scale`` and ``noise_floor`` repeat the first component's; both are
    empty for one component."""

    prior_std: float = 50.0
    depth_exponent: float = 0.0
    horizontal_length: float = 0.0
    vertical_length: float = 0.0
    noise_scale: float = 1.0
    noise_floor: float = 0.0
    component_scales: tuple[float, ...] = ()
    component_floors: tuple[float, ...] = ()

    def noise_std(self, stated_std) -> np.ndarray:
        """Each datum's noise std from its stated std (mGal; with several components the
        component-major data vector, each in its component's unit)."""
        stated = np.asarray(stated_std, np.float64)
        scales, floors = (np.asarray(values, np.float64)[:, None] for values in (
            self.component_scales or (self.noise_scale,), self.component_floors or (self.noise_floor,)))
        blocks = stated.reshape(scales.shape[0], -1)
        return np.sqrt((scales * blocks) ** 2 + floors**2).reshape(stated.shape)

    def prior(self, mesh: TensorMesh) -> GaussianPrior:
        return GaussianPrior.build(mesh, self.prior_std, self.horizontal_length, self.depth_exponent,
                                   self.vertical_length)

    def as_dict(self) -> dict:
        """Every value as a float (the per-component ones as lists, only when there are several)."""
        return {key: ([float(item) for item in value] if isinstance(value, (tuple, list)) else float(value))
                for key, value in asdict(self).items() if not (isinstance(value, (tuple, list)) and not value)}


@jax.jit
def _log_evidence(gram, data, stated, inner):
    noise = noise_variance(stated, inner)
    system = jnp.exp(2 * inner[0]) * gram + jnp.diag(noise)
    factor = jnp.linalg.cholesky(system)
    white = jsl.solve_triangular(factor, data, lower=True)
    return -0.5 * white @ white - jnp.sum(jnp.log(jnp.diag(factor))) - 0.5 * data.size * jnp.log(2 * jnp.pi)


# The gradient over the gram too (the outer fit's envelope gradient); the inner fit's gradient over
# (log sigma, log alpha, log tau) alone is in closed form (_station_evidence), which is faster.
_value_and_grad = jax.jit(jax.value_and_grad(_log_evidence, argnums=(0, 3)))


@dataclass(frozen=True)
class EvidenceFit:
    """The learned :class:`Hyperparameters`, their ``log_evidence``, the evidence of the start
    values, how many times ``K`` was built (``gram_evaluations``) and the ``seconds`` it took."""

    hyperparameters: Hyperparameters
    log_evidence: float
    start_log_evidence: float
    gram_evaluations: int
    seconds: float

    def as_dict(self) -> dict:
        return {**self.hyperparameters.as_dict(), "log_evidence": self.log_evidence,
                "log_evidence_start": self.start_log_evidence, "gram_evaluations": self.gram_evaluations,
                "seconds": self.seconds}


def _length_bounds(mesh: TensorMesh, axis: str) -> tuple[float, float]:
    widths = np.concatenate([mesh.widths_x, mesh.widths_y]) if axis == "h" else mesh.widths_z
    extent = (max(np.ptp(mesh.nodes_x), np.ptp(mesh.nodes_y)) if axis == "h" else np.ptp(mesh.nodes_z))
    return float(LENGTH_CELLS[0] * widths.min()), float(LENGTH_CELLS[1] * extent)


def learn_hyperparameters(matrix, data, stated_std, mesh: TensorMesh, start: Hyperparameters | None = None, *,
                          structure: tuple[str, ...] = ("horizontal",), learn_scale: bool = True,
                          learn_noise: bool = True, max_outer: int = 15, log=None,
                          learn_floor: bool = True, components: tuple[str, ...] = ("gz",)) -> EvidenceFit:
    """Maximise the evidence (see the module notes) over the hyperparameters.

    Parameters
    ----------
    matrix
        Dense float64 sensitivity ``(stations, cells)``, mGal per kg/m^3.
    data, stated_std
        ``(stations,)`` gz (regional removed) and its stated std, mGal; with several
        ``components``, ``(components * stations,)`` stacked component-major, each component in
        its unit (mGal for gz, Eotvos for gradients).
    start
        Where to start, and the values of what is not learned. By default: a prior std that
        makes the prior predictive spread match the data's, isotropic correlation lengths of
        two horizontal cells, no depth weighting, the stated noise.
    structure
        Which of the prior's structure is learned: ``"horizontal"`` (the correlation length along
        x and y; the vertical one follows it in the start's ratio, isotropic by default, unless
        ``"vertical"`` is learned too) and ``"depth"`` (the depth-weighting exponent). Surface
        gravity cannot tell a deep smooth source from a shallow compact one, so the evidence
        drives the vertical length and the depth exponent to their bounds where they are free;
        a weak hyperprior (:data:`HYPERPRIOR`) restrains them, and by default they are not
        learned. ``()`` learns none (an independent prior where the start has no lengths).
    learn_scale
        Learn ``sigma`` (else the start's).
    learn_noise
        Learn the noise model, a scale factor and a floor per component; the floor only where
        the component's stated stds differ between stations (a single stated std and a floor
        cannot be told apart). A one-component ``start`` gives its factor and floor; one of
        several components gives them by ``component_scales`` and ``component_floors``.
    learn_floor
        False: no floor; the scale factors alone are learned.
    components
        The names of the stacked components (their number is what counts; names for messages).
    """
    begun = time.perf_counter()
    data = jnp.asarray(data, jnp.float64)
    stated = jnp.asarray(stated_std, jnp.float64)
    builder = StructureGram(matrix, mesh)
    low_h, high_h = _length_bounds(mesh, "h")
    low_v, high_v = _length_bounds(mesh, "v")
    cell_h = float(np.mean(np.concatenate([mesh.widths_x, mesh.widths_y])))
    if start is None:
        start = Hyperparameters(prior_std=1.0, horizontal_length=2 * cell_h, vertical_length=2 * cell_h)
        gram = builder(_outer_of(replace(start, horizontal_length=2 * cell_h)))
        spread = float(np.sqrt(max(np.var(np.asarray(data)) - np.mean(np.asarray(stated) ** 2), 1e-30)
                               / np.mean(np.diag(np.asarray(gram)))))
        start = replace(start, prior_std=spread)
    correlated = start.horizontal_length > 0 or "horizontal" in structure
    if correlated and start.horizontal_length <= 0:
        start = replace(start, horizontal_length=2 * cell_h, vertical_length=start.vertical_length or 2 * cell_h)
    if not correlated:
        start = replace(start, horizontal_length=low_h, vertical_length=low_v)
    start = replace(start, horizontal_length=float(np.clip(start.horizontal_length, low_h, high_h)),
                    vertical_length=float(np.clip(start.vertical_length or start.horizontal_length, low_v, high_v)))
    ratio = np.log(start.vertical_length / start.horizontal_length)
    free = [name for name in ("horizontal", "vertical", "depth") if name in structure]

    def outer_of(values):  # free values -> (log L_h, log L_v, beta), and its Jacobian
        named = dict(zip(free, values))
        log_h = named.get("horizontal", np.log(start.horizontal_length))
        log_v = named.get("vertical", log_h + ratio if "horizontal" in named else np.log(start.vertical_length))
        jacobian = np.zeros((3, len(free)))
        for column, name in enumerate(free):
            jacobian[{"horizontal": 0, "vertical": 1, "depth": 2}[name], column] = 1.0
            if name == "horizontal" and "vertical" not in named:
                jacobian[1, column] = 1.0
        return np.array([log_h, log_v, named.get("depth", start.depth_exponent)]), jacobian

    plan = noise_plan(np.asarray(data), np.asarray(stated), len(components), start, learn_noise, learn_floor)
    inner_bounds = [(np.log(start.prior_std) - 12.0, np.log(start.prior_std) + 12.0) if learn_scale
                    else (np.log(start.prior_std),) * 2, *plan["scale_bounds"], *plan["floor_bounds"]]
    learn_floor = any(plan["learned"])
    counts = {"grams": 0}
    best = {"value": -np.inf}

    data_values, stated_values = np.asarray(data), np.asarray(stated)

    def inner_fit(gram, inner_start):
        per_datum = 1.0 / data.size
        gram_values = np.asarray(gram)

        def objective(inner):
            # Per datum: L-BFGS-B's first step follows the raw gradient, and the evidence of
            # thousands of stations has gradients of hundreds of nats, which threw that step to
            # the corner of the bounds (a prior std e^12 times the start: a singular system).
            value, grad = evidence_and_gradient(gram_values, data_values, stated_values, inner)
            value, grad = -value * per_datum, -grad * per_datum
            if not (np.isfinite(value) and np.all(np.isfinite(grad))):
                # A trial point where the station system is numerically singular: far worse
                # than any finite point, never taken as the optimum.
                return 1e30, np.zeros_like(grad)
            return value, grad

        low, high = [b[0] for b in inner_bounds], [b[1] for b in inner_bounds]
        # The noise scale and the floor trade off (both explain misfit), with a local optimum for
        # each: start from the current point and from a floor of a tenth of the data's spread.
        starts = [inner_start]
        if learn_floor:
            starts.append(np.array([inner_start[0], *[0.0] * len(components), *plan["second_floors"]]))
        best_fit = None
        for start_point in starts:
            result = optimize.minimize(objective, np.clip(start_point, low, high), jac=True, method="L-BFGS-B",
                                       bounds=inner_bounds)
            if best_fit is None or result.fun < best_fit.fun:
                best_fit = result
        return best_fit.x, -float(best_fit.fun) / per_datum

    inner_now = np.array([np.log(start.prior_std), *plan["scale_starts"], *plan["floor_starts"]])

    def profile(values):
        nonlocal inner_now
        outer, jacobian = outer_of(values)
        counts["grams"] += 1
        if not free:  # nothing of K is learned: no gradient through it
            gram = builder(outer)
            inner_now, value = inner_fit(gram, inner_now)
            gradient = np.zeros(3)
        else:
            gram, pullback = builder.with_vjp(outer)
            inner_now, value = inner_fit(gram, inner_now)
            _, (gradient_gram, _) = _value_and_grad(gram, data, stated, jnp.asarray(inner_now))
            gradient = np.asarray(pullback(gradient_gram))
        penalty, penalty_gradient = _log_hyperprior(outer, free)
        value, gradient = value + penalty, (gradient + penalty_gradient) @ jacobian
        if value > best["value"]:
            best.update(value=value, outer=outer, inner=inner_now.copy())
        if log is not None:
            log(f"  evidence {value:.6g} at L_h {np.exp(outer[0]):.4g} m, L_v {np.exp(outer[1]):.4g} m, "
                f"beta {outer[2]:.3g}, sigma {np.exp(inner_now[0]):.4g} kg/m^3")
        return -value, -gradient

    first = np.array([{"horizontal": np.log(start.horizontal_length), "vertical": np.log(start.vertical_length),
                       "depth": start.depth_exponent}[name] for name in free])
    start_value = -profile(first)[0]
    if free:
        limits = {"horizontal": (np.log(low_h), np.log(high_h)), "vertical": (np.log(low_v), np.log(high_v)),
                  "depth": DEPTH_EXPONENT}
        optimize.minimize(profile, first, jac=True, method="L-BFGS-B", bounds=[limits[name] for name in free],
                          options={"maxfun": max_outer, "maxiter": max_outer})
    outer, inner = best["outer"], best["inner"]
    learned = Hyperparameters(prior_std=float(np.exp(inner[0])), depth_exponent=float(outer[2]),
                              horizontal_length=float(np.exp(outer[0])) if correlated else 0.0,
                              vertical_length=float(np.exp(outer[1])) if correlated else 0.0,
                              **noise_values(inner, plan["kept"]))
    return EvidenceFit(learned, float(best["value"]), float(start_value), counts["grams"],
                       time.perf_counter() - begun)


def hyperparameter_uncertainty(matrix, data, stated_std, mesh: TensorMesh, values: Hyperparameters,
                               structure: tuple[str, ...] = ("horizontal",),
                               components: tuple[str, ...] = ("gz",)) -> dict:
    """Laplace standard errors of the learned values: the inverse Hessian of minus the log
    evidence at ``values`` over what was learned, ``log prior_std``, ``log noise_scale`` and,
    by ``structure`` (as for :func:`learn_hyperparameters`), ``log horizontal_length`` (the
    vertical length tied to it unless ``"vertical"`` is learned too), ``log vertical_length``
    and ``depth_exponent`` (the floors are held fixed). With several ``components`` (data
    stacked component-major) one ``log_noise_scale_<component>`` each instead of
    ``log_noise_scale``. Returns each one's standard error on that scale (a relative error for
    the logs)."""
    builder = StructureGram(matrix, mesh)
    count = len(components)
    scales = values.component_scales or (values.noise_scale,) * count
    given = values.component_floors or (values.noise_floor,) * count
    spreads = [float(np.std(block)) for block in np.asarray(data, np.float64).reshape(count, -1)]
    floors = jnp.asarray([np.log(max(floor, 1e-12 * spread)) for floor, spread in zip(given, spreads)])
    data = jnp.asarray(data, jnp.float64)
    stated = jnp.asarray(stated_std, jnp.float64)
    names = ["log_prior_std"] + (["log_noise_scale"] if count == 1 else
                                 [f"log_noise_scale_{name}" for name in components])
    point = [np.log(values.prior_std), *np.log(scales)]
    for name, value in (("horizontal", np.log(values.horizontal_length)), ("vertical", np.log(values.vertical_length)),
                        ("depth", values.depth_exponent)):
        if name in structure:
            names.append({"horizontal": "log_horizontal_length", "vertical": "log_vertical_length",
                          "depth": "depth_exponent"}[name])
            point.append(value)
    ratio = np.log(values.vertical_length / values.horizontal_length)

    def minus_evidence(theta):
        named = dict(zip(names, theta))
        log_h = named.get("log_horizontal_length", jnp.log(values.horizontal_length))
        log_v = named.get("log_vertical_length", log_h + ratio)
        beta = named.get("depth_exponent", jnp.asarray(values.depth_exponent, jnp.float64))
        gram = builder._gram(jnp.stack([log_h, log_v, beta]))
        return -_log_evidence(gram, data, stated, jnp.concatenate([theta[:1 + count], floors]))

    covariance = np.linalg.inv(np.asarray(jax.hessian(minus_evidence)(jnp.asarray(point, jnp.float64))))
    errors = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    return dict(zip(names, errors.tolist()))


def _log_hyperprior(outer, free) -> tuple[float, np.ndarray]:
    """The weak hyperprior on the free structure (see :data:`HYPERPRIOR`): its log density and
    gradient over ``(log L_h, log L_v, beta)``."""
    log_h, log_v, beta = (float(value) for value in outer)
    value, gradient = 0.0, np.zeros(3)
    if "vertical" in free:
        anisotropy = (log_v - log_h) / HYPERPRIOR["log_anisotropy_sd"]
        value -= 0.5 * anisotropy**2
        gradient += np.array([1.0, -1.0, 0.0]) * anisotropy / HYPERPRIOR["log_anisotropy_sd"]
    if "depth" in free:
        depth = (beta - HYPERPRIOR["depth_exponent"]) / HYPERPRIOR["depth_exponent_sd"]
        value -= 0.5 * depth**2
        gradient[2] -= depth / HYPERPRIOR["depth_exponent_sd"]
    return value, gradient


def _outer_of(values: Hyperparameters) -> np.ndarray:
    return np.array([np.log(values.horizontal_length), np.log(values.vertical_length), values.depth_exponent])


@dataclass(frozen=True)
class Predictive:
    """Leave-one-out (or held-out) predictions of the data: ``mean`` and ``std`` per station
    (mGal, noise included) and their scores against the observed values: ``log_density`` (sum
    over stations of the log predictive density), ``rmse`` (mGal), ``coverage_90`` and ``crps``
    (mGal, mean over stations)."""

    mean: np.ndarray
    std: np.ndarray
    log_density: float
    rmse: float
    coverage_90: float
    crps: float

    def scores(self) -> dict:
        return {"log_predictive_density": self.log_density, "rmse_mgal": self.rmse, "coverage_90": self.coverage_90,
                "crps_mgal": self.crps}


def score_predictive(mean, std, observed) -> Predictive:
    """A Gaussian predictive ``N(mean, std^2)`` per station scored against ``observed`` (mGal)."""
    from ..posterior import crps_gaussian

    mean, std, observed = (np.asarray(a, np.float64) for a in (mean, std, observed))
    z = stats.norm.ppf(0.95)
    inside = np.abs(observed - mean) <= z * std
    return Predictive(mean, std, float(np.sum(stats.norm.logpdf(observed, mean, std))),
                      float(np.sqrt(np.mean((observed - mean) ** 2))), float(inside.mean()),
                      float(crps_gaussian(mean, std, observed).mean()))


def leave_one_out(matrix, data, noise_std, prior: GaussianPrior) -> Predictive:
    """The closed-form leave-one-out predictive of every datum under ``prior`` and the noise
    ``noise_std`` (mGal) for the dense ``matrix`` (see the module notes)."""
    matrix = jnp.asarray(matrix, jnp.float64)
    data = jnp.asarray(data, jnp.float64)
    mean, std = _loo(matrix, data, jnp.asarray(noise_std, jnp.float64), prior)
    return score_predictive(np.asarray(mean), np.asarray(std), np.asarray(data))


@jax.jit
def _loo(matrix, data, noise_std, prior: GaussianPrior):
    system = prior.covariance_apply(matrix) @ matrix.T + jnp.diag(noise_std**2)
    factor = jnp.linalg.cholesky(system)
    inverse_factor = jsl.solve_triangular(factor, jnp.eye(data.size), lower=True)
    precision_diagonal = jnp.sum(inverse_factor**2, axis=0)
    weights = jsl.cho_solve((factor, True), data)
    return data - weights / precision_diagonal, 1.0 / jnp.sqrt(precision_diagonal)


__all__ = ["NOISE_SCALE", "EvidenceFit", "Hyperparameters", "Predictive", "StructureGram", "exponential_correlation",
           "hyperparameter_uncertainty", "learn_hyperparameters", "leave_one_out", "relative_std", "score_predictive"]
