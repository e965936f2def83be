"""Bayesian last layer: a Gaussian posterior over the last layer of a trained INR.

A deterministic INR with the linear head is trained first; its penultimate features
``Phi`` (cells x H) are then fixed. With ``Phi' = [Phi, 1]`` the density is
``m = mid + half * Phi' w`` (kg/m^3; ``mid``, ``half`` from ``[model] bounds``), so the data are
linear in the weights:

    d = G mid 1 + A w + e,    A = half * G Phi'  (stations x (H + 1)),    e ~ N(0, (s sigma)^2)

with ``sigma`` the stations' std (mGal). Priors: ``w = tau z``, ``z ~ N(0, I)``, with the weight
scale ``tau ~ LogNormal(log tau0, 1)`` where ``tau0`` makes the prior density std equal, on
average over cells, the root-mean-square std of the run's shared prior (learned from the data
by default, as for every probabilistic method), and the noise scale factor
``s ~ LogNormal(0, 0.5)`` on the shared noise model's std.

Two solvers:
- NUTS (NumPyro; Hoffman & Gelman 2014) over ``(w, tau, s)`` with a dense mass matrix, keeping
  its chains; R-hat and bulk ESS from ArviZ (Vehtari et al. 2021).
- The closed form for fixed hyperparameters: ``tau`` and ``s`` maximise the marginal likelihood
  (type-II maximum likelihood), then ``w ~ N(mu, Sigma)`` exactly, with
  ``Sigma = (A^T D A / s^2 + I / tau^2)^-1`` and ``mu = Sigma A^T D (d - G mid 1) / s^2``,
  ``D = diag(1 / sigma^2)``.

References: Harrison, Willes & Snoek (2024), Variational Bayesian last layers, arXiv:2404.11599;
Tarantola (2005) for the Gaussian algebra.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from scipy import optimize

from .deterministic import train_networks
from .problem import Hooks, MethodResult, TrainingRecord

#: Prior width of log(tau) around log(tau0), and of the log noise scale factor.
LOG_TAU_SCALE = 1.0
LOG_NOISE_SCALE = 0.5


@dataclass(frozen=True)
class LastLayerProblem:
    """The linear problem of the last layer, all float64.

    ``features`` (cells, H + 1) with the constant column last; ``design`` ``A`` (stations,
    H + 1) in mGal per unit weight; ``residual_data`` ``d - G mid 1`` (stations,) mGal; ``std``
    (stations,) mGal; ``mid``, ``half`` kg/m^3; ``tau0`` the reference weight scale.
    """

    features: np.ndarray
    design: np.ndarray
    residual_data: np.ndarray
    std: np.ndarray
    mid: float
    half: float
    tau0: float

    def density(self, weights: np.ndarray) -> np.ndarray:
        """Density (kg/m^3) for weight vectors ``(..., H + 1)``: ``mid + half * Phi' w``."""
        return self.mid + self.half * np.asarray(weights) @ self.features.T


def last_layer_problem(operator, features, data, std, bounds, prior_std: float) -> LastLayerProblem:
    """Build the linear problem from penultimate ``features`` (cells, H), observed ``data`` and
    ``std`` (mGal), the head's ``bounds`` (kg/m^3) and the prior density scale ``prior_std``."""
    features = np.concatenate([np.asarray(features, np.float64), np.ones((features.shape[0], 1))], axis=1)
    lower, upper = bounds
    mid, half = 0.5 * (lower + upper), 0.5 * (upper - lower)
    design = half * np.asarray(operator.forward(jnp.asarray(features.T, jnp.float64)), np.float64).T
    constant = np.asarray(operator.forward(jnp.full((1, features.shape[0]), mid, jnp.float64)), np.float64)[0]
    rms_norm = np.sqrt(np.mean(np.sum(features**2, axis=1)))
    tau0 = prior_std / (half * rms_norm)
    return LastLayerProblem(features, design, np.asarray(data, np.float64) - constant, np.asarray(std, np.float64),
                            mid, half, float(tau0))


class _Spectrum:
    """The design in whitened form, ``B = A / sigma`` and ``y = (d - G mid 1) / sigma``, with the
    eigen-decomposition ``B^T B = V diag(lambda) V^T`` and ``b = V^T B^T y``: with them the
    evidence and the weights' posterior cost O(H) for any ``(tau, s)``."""

    def __init__(self, problem: LastLayerProblem):
        whitened = problem.design / problem.std[:, None]
        self.y = problem.residual_data / problem.std
        self.eigenvalues, self.vectors = np.linalg.eigh(whitened.T @ whitened)
        self.eigenvalues = np.clip(self.eigenvalues, 0.0, None)
        self.projected = self.vectors.T @ (whitened.T @ self.y)
        self.n_data = self.y.size
        self.log_std_sum = float(np.log(problem.std).sum())

    def log_evidence(self, log_tau, log_noise, xp=np):
        """log p(d | tau, s), Gaussian with covariance s^2 diag(sigma^2) + tau^2 A A^T."""
        ratio = xp.exp(2 * (log_tau - log_noise))
        shrink = 1.0 + ratio * self.eigenvalues
        quadratic = (xp.sum(self.y**2) - ratio * xp.sum(self.projected**2 / shrink)) * xp.exp(-2 * log_noise)
        log_det = 2 * self.log_std_sum + 2 * self.n_data * log_noise + xp.sum(xp.log(shrink))
        return -0.5 * (quadratic + log_det + self.n_data * np.log(2 * np.pi))

    def weights(self, tau, noise, white):
        """Exact draws of w | d, tau, s from standard normal ``white`` (draws, H + 1)."""
        precision = self.eigenvalues / noise**2 + 1.0 / tau**2
        mean = self.vectors @ (self.projected / noise**2 / precision)
        return mean + (white / np.sqrt(precision)) @ self.vectors.T


def _log_hyperprior(log_tau, log_noise, tau0, xp=np):
    return -0.5 * ((log_tau - xp.log(tau0)) / LOG_TAU_SCALE) ** 2 - 0.5 * (log_noise / LOG_NOISE_SCALE) ** 2


def closed_form(problem: LastLayerProblem, key, draws: int):
    """Weights drawn from the exact Gaussian posterior at the ``tau`` and noise scale that
    maximise the evidence times the hyperpriors; returns ``(draws (draws, H + 1), info)``."""
    spectrum = _Spectrum(problem)

    def objective(log_parameters):
        log_tau, log_noise = log_parameters
        return -(spectrum.log_evidence(log_tau, log_noise) + _log_hyperprior(log_tau, log_noise, problem.tau0))

    result = optimize.minimize(objective, x0=np.array([np.log(problem.tau0), 0.0]), method="Nelder-Mead",
                               options={"xatol": 1e-6, "fatol": 1e-9})
    tau, noise = np.exp(result.x)
    white = np.asarray(jax.random.normal(key, (draws, problem.design.shape[1]), jnp.float64))
    return spectrum.weights(tau, noise, white), {"tau": float(tau), "noise_scale": float(noise), "solver": "closed_form"}


def nuts(problem: LastLayerProblem, key, chains: int, warmup: int, samples: int, progress: bool = False):
    """NUTS (NumPyro) over the hyperparameters with the weights integrated out exactly.

    The NumPyro model has ``log tau ~ Normal(log tau0, 1)`` and ``log s ~ Normal(0, 0.5)`` and
    the Gaussian evidence ``p(d | tau, s)`` (the weights ``w ~ N(0, tau^2 I)`` marginalised in
    closed form); each NUTS draw of ``(tau, s)`` is then completed with an exact draw of
    ``w | d, tau, s``. Sampling the weights themselves with NUTS mixes badly (collinear
    features and the tau-w funnel gave R-hat near 2 on B1), whereas this collapsed sampler has a
    2-D target. Returns ``(weights (chains, samples, H + 1), info)`` with ``rhat_max`` and
    ``ess_bulk_min`` over the sampled hyperparameters (ArviZ).
    """
    import arviz as az
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS

    spectrum = _Spectrum(problem)
    eigenvalues, projected = jnp.asarray(spectrum.eigenvalues), jnp.asarray(spectrum.projected)
    y_squared = float(np.sum(spectrum.y**2))
    n_data, log_std_sum = spectrum.n_data, spectrum.log_std_sum

    def model():
        log_tau = numpyro.sample("log_tau", dist.Normal(jnp.log(problem.tau0), LOG_TAU_SCALE))
        log_noise = numpyro.sample("log_noise_scale", dist.Normal(0.0, LOG_NOISE_SCALE))
        ratio = jnp.exp(2 * (log_tau - log_noise))
        shrink = 1.0 + ratio * eigenvalues
        quadratic = (y_squared - ratio * jnp.sum(projected**2 / shrink)) * jnp.exp(-2 * log_noise)
        log_det = 2 * log_std_sum + 2 * n_data * log_noise + jnp.sum(jnp.log(shrink))
        numpyro.factor("evidence", -0.5 * (quadratic + log_det + n_data * np.log(2 * np.pi)))

    sample_key, weight_key = jax.random.split(key)
    mcmc = MCMC(NUTS(model), num_warmup=warmup, num_samples=samples, num_chains=chains,
                chain_method="sequential", progress_bar=progress)
    mcmc.run(sample_key)
    grouped = {name: np.asarray(value) for name, value in mcmc.get_samples(group_by_chain=True).items()}
    posterior = az.from_dict(posterior=grouped)
    rhat = az.rhat(posterior)
    ess = az.ess(posterior, method="bulk")
    tau = np.exp(grouped["log_tau"])
    noise = np.exp(grouped["log_noise_scale"])
    white = np.asarray(jax.random.normal(weight_key, tau.shape + (problem.design.shape[1],), jnp.float64))
    weights = np.stack([np.stack([spectrum.weights(t, s, w[None])[0] for t, s, w in zip(tc, sc, wc)])
                        for tc, sc, wc in zip(tau, noise, white)])
    info = {
        "solver": "nuts",
        "rhat_max": float(max(float(np.max(rhat[name].values)) for name in rhat.data_vars)),
        "ess_bulk_min": float(min(float(np.min(ess[name].values)) for name in ess.data_vars)),
        "tau": float(np.median(tau)),
        "noise_scale": float(np.median(noise)),
        "divergences": int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum()),
    }
    return weights, info


def prior_density_variance(problem: LastLayerProblem, key, draws: int = 400) -> np.ndarray:
    """Per-cell variance (kg/m^3)^2 of the density under the last layer's prior, from draws."""
    tau_key, weight_key = jax.random.split(key)
    log_tau = np.log(problem.tau0) + LOG_TAU_SCALE * np.asarray(jax.random.normal(tau_key, (draws, 1), jnp.float64))
    weights = np.exp(log_tau) * np.asarray(jax.random.normal(weight_key, (draws, problem.design.shape[1]), jnp.float64))
    return problem.density(weights).var(axis=0, ddof=1)


#: At most this many draws per chain are kept in the outputs (NUTS chains are thinned to it).
MAX_DRAWS_PER_CHAIN = 250


@dataclass(frozen=True)
class LastLayerSettings:
    """The network (``model``, trained with ``training`` to ``target_misfit``), ``prior_std``
    (kg/m^3; unused: the density scale behind ``tau0`` is the shared prior's, see :func:`run`), the ``solver`` (``"auto"``, ``"nuts"``,
    ``"closed_form"``; auto takes NUTS up to 128 features), NUTS ``chains``, ``warmup`` and
    ``samples``, and the closed form's ``draws``."""

    model: object
    training: object
    target_misfit: float
    prior_std: float
    solver: str = "auto"
    chains: int = 2
    warmup: int = 500
    samples: int = 500
    draws: int = 20


def run(problem, settings: LastLayerSettings, key, hooks: Hooks | None = None) -> MethodResult:
    """A Bayesian last layer over one trained INR's features (see the module notes)."""
    hooks = hooks or Hooks()
    train_key, sample_key, prior_key = jax.random.split(key, 3)
    network_settings = dataclasses.replace(settings, model=dataclasses.replace(settings.model, head="linear"))
    fit = train_networks(problem, network_settings, train_key, 1, hooks, "last layer: training the INR")
    network = eqx.combine(jax.tree.map(lambda leaf: leaf[0], fit.params), fit.static)
    features = np.asarray(jax.vmap(network.features)(problem.coordinates), np.float64)
    # The shared prior (learned from the data by default) sets the density scale behind tau0: its
    # root-mean-square std over the cells; the data are fitted with the shared noise model.
    prior, prior_info = problem.prior()
    prior_scale = float(np.sqrt(np.mean(np.asarray(prior.variance()))))
    linear = last_layer_problem(problem.operator, features, problem.data, problem.std, settings.model.bounds,
                                prior_scale)
    solver = settings.solver
    if solver == "auto":
        solver = "nuts" if linear.design.shape[1] <= 128 else "closed_form"
    chains = 1
    if solver == "nuts":
        weights, info = nuts(linear, sample_key, settings.chains, settings.warmup, settings.samples,
                             progress=hooks.progress is not None)
        chains = weights.shape[0]
        step = max(1, -(-weights.shape[1] // MAX_DRAWS_PER_CHAIN))
        weights = weights[:, ::step].reshape(-1, weights.shape[-1])
    else:
        weights, info = closed_form(linear, sample_key, settings.draws)
    info = {**info, "features": int(linear.design.shape[1]), "epochs": fit.epochs,
            "parameter_count": fit.parameter_count, "encoding": settings.model.encoding, "warm_start": False,
            "trainer": settings.training.trainer, "prior_density_scale": prior_scale, "prior": prior_info}
    return MethodResult(linear.density(weights), prior_variance=prior_density_variance(linear, prior_key),
                        chains=chains, training=TrainingRecord.of(fit, settings.target_misfit),
                        info=info)
