"""``method = "mcmc"``: the NUTS reference posterior on the voxel grid, for small problems.

Gravity is linear in density, so under the Gaussian prior the exact posterior is the
``gaussian`` method's one linear solve. Priors a Gaussian cannot express have no closed form;
this method samples them with NumPyro's NUTS (:mod:`gravuq.inference.mcmc`) on the dense
float64 sensitivity: every cell's density contrast is a free variable, nothing is
approximated but the Monte-Carlo error, which R-hat and the effective sample sizes (ESS)
measure. It is the reference that INR methods under the same prior are judged against, and
its cost grows as cells x stations x leapfrog steps, so it is for problems of a few thousand
cells at most (:func:`~gravuq.inference.mcmc.estimate_cost` is checked before any work).

Priors (``[inference] mcmc_prior``), independent over cells, density contrast in kg/m^3:

- ``"box"``: uniform within ``[model] bounds`` (the bounded network head's limits);
- ``"mixture"``: ``(1 - f) N(0, mcmc_background_std^2) + f N(mcmc_body_mean, mcmc_body_std^2)``,
  ``f = mcmc_body_fraction``, each component truncated to ``[model] bounds``;
- ``"normal"``: the shared (learned or fixed) Gaussian prior's per-cell standard deviation,
  zero mean, without its correlations (a check on the sampler: with an uncorrelated shared prior
  the posterior is exactly the ``gaussian`` method's).

Draws are ``nuts_chains`` chains of ``nuts_samples`` after ``nuts_warmup`` adaptation
iterations each, kept as chains in ``posterior.nc`` (SPEC section 4). Data and their std in
mGal (gz positive downward), with the noise model the probabilistic methods share.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..errors import InputError
from ..posterior import chain_diagnostics
from .exact_hmc import MAX_BOUNCES, estimate_seconds, sample_truncated_gaussian
from .linear_gaussian import gaussian_covariance
from .mcmc import BoxPrior, MixturePrior, NormalPrior, estimate_cost, sample_posterior
from .problem import Hooks, InverseProblem, MethodResult

PRIORS = ("box", "mixture", "normal", "truncated")


@dataclass(frozen=True)
class McmcSettings:
    """``prior`` one of :data:`PRIORS`; ``bounds`` ``(lower, upper)`` kg/m^3 of the box and the
    mixture; ``chains``, ``warmup``, ``samples`` per chain; ``max_seconds`` the expected run time
    above which the run is refused; the mixture's ``background_std``, ``body_mean``,
    ``body_std`` (kg/m^3) and ``body_fraction``; ``source`` names the config in messages."""

    prior: str = "box"
    bounds: tuple[float, float] = (-600.0, 600.0)
    chains: int = 2
    warmup: int = 500
    samples: int = 500
    max_seconds: float = 600.0
    background_std: float = 20.0
    body_mean: float = 400.0
    body_std: float = 150.0
    body_fraction: float = 0.1
    source: str = "config"


def check_budget(settings: McmcSettings, cells: int, stations: int) -> None:
    """Refuse (:class:`InputError`, naming the keys to change) a run whose expected time
    exceeds ``settings.max_seconds``, before any work."""
    if settings.prior == "truncated":
        trajectories = settings.chains * (settings.warmup + settings.samples)
        seconds = estimate_seconds(cells, trajectories)
        if seconds > settings.max_seconds:
            raise InputError(
                f"{settings.source}: [inference] mcmc_prior = \"truncated\" (exact HMC) would take about "
                f"{seconds:.0f} s for {trajectories} trajectories over {cells} cells (about {1.5 * cells:.0f} wall "
                f"bounces each), more than [inference] mcmc_max_seconds = {settings.max_seconds:g}. Raise "
                "mcmc_max_seconds, lower nuts_chains, nuts_warmup or nuts_samples, or use a coarser [mesh]")
        return
    cost = estimate_cost(cells, stations, chains=settings.chains, warmup=settings.warmup, samples=settings.samples)
    if cost.seconds > settings.max_seconds:
        raise InputError(
            f"{settings.source}: [inference] method = \"mcmc\" is the reference for small problems, and this one is "
            f"too large for [inference] mcmc_max_seconds = {settings.max_seconds:g}: {cost.describe()}. Raise "
            "mcmc_max_seconds, lower nuts_chains, nuts_warmup or nuts_samples, use a coarser [mesh], or use "
            "method = \"gaussian\" (exact for a Gaussian prior) or \"ensemble\"")


def _truncated_moments(mean: float, std: float, lower: float, upper: float) -> tuple[float, float]:
    law = stats.truncnorm((lower - mean) / std, (upper - mean) / std, loc=mean, scale=std)
    return float(law.mean()), float(law.var())


def cell_prior(settings: McmcSettings, problem: InverseProblem, log) -> tuple[object, np.ndarray, dict]:
    """The NUTS prior of ``settings`` (kg/m^3), its exact variance per cell ((kg/m^3)^2) and its
    description for metrics.json."""
    cells = problem.mesh.n_cells
    lower, upper = (float(b) for b in settings.bounds)
    if settings.prior == "box":
        variance = np.full(cells, (upper - lower) ** 2 / 12.0)
        return BoxPrior(lower, upper), variance, {"kind": "box", "lower": lower, "upper": upper}
    if settings.prior == "mixture":
        f = settings.body_fraction
        parts = [_truncated_moments(0.0, settings.background_std, lower, upper),
                 _truncated_moments(settings.body_mean, settings.body_std, lower, upper)]
        mean = (1 - f) * parts[0][0] + f * parts[1][0]
        second = (1 - f) * (parts[0][1] + parts[0][0] ** 2) + f * (parts[1][1] + parts[1][0] ** 2)
        prior = MixturePrior(settings.background_std, settings.body_mean, settings.body_std, f, lower, upper)
        return prior, np.full(cells, second - mean**2), {
            "kind": "mixture", "lower": lower, "upper": upper, "background_std": settings.background_std,
            "body_mean": settings.body_mean, "body_std": settings.body_std, "body_fraction": f}
    if settings.prior == "normal":
        shared, shared_info = problem.prior()
        std = np.asarray(shared.std, np.float64).ravel()
        correlated = any(not np.allclose(np.asarray(root), np.eye(np.shape(root)[0]))
                         for root in (shared.root_z, shared.root_y, shared.root_x))
        if correlated:
            log("warning: mcmc_prior = \"normal\" samples independent cells: the shared prior's correlations are "
                "not used (its per-cell std is); method = \"gaussian\" is the exact posterior under the full prior")
        return NormalPrior(std), std**2, {"kind": "normal (independent cells, the shared prior's per-cell std)",
                                          "shared_prior": shared_info, "correlations_dropped": bool(correlated)}
    raise ValueError(f"unknown mcmc prior {settings.prior!r} (expected one of {PRIORS})")


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _diagnostics(draws: np.ndarray) -> tuple[np.ndarray, dict]:
    """Per-cell R-hat and the worst cells' R-hat and bulk and tail ESS of draws ``(chains,
    samples, cells)``, for metrics.json."""
    rhat, ess_bulk, ess_tail = chain_diagnostics(draws)
    return rhat, {"rhat_max": _finite(float(np.max(rhat))), "ess_bulk_min": _finite(float(np.min(ess_bulk))),
                  "ess_tail_min": _finite(float(np.min(ess_tail))),
                  "rhat_above_1_01_cells": int(np.sum(np.nan_to_num(rhat) > 1.01))}


def _run_truncated(problem: InverseProblem, settings: McmcSettings, key, hooks: Hooks) -> MethodResult:
    """Exact-HMC draws (:mod:`gravuq.inference.exact_hmc`) from the exact Gaussian posterior of the
    shared prior (correlations included) truncated to ``settings.bounds``."""
    cells = problem.mesh.n_cells
    check_budget(settings, cells, problem.n_stations)
    lower, upper = (float(b) for b in settings.bounds)
    shared, shared_info = problem.prior()
    mean, covariance = gaussian_covariance(problem.dense(), problem.data, problem.std, shared)
    hooks.log(f"mcmc: exact HMC on the {cells}-cell Gaussian posterior truncated to [{lower:g}, {upper:g}] kg/m^3, "
              f"{settings.chains} chains x ({settings.warmup} + {settings.samples}) trajectories (about "
              f"{estimate_seconds(cells, settings.chains * (settings.warmup + settings.samples)):.0f} s expected)")
    result = sample_truncated_gaussian(mean, covariance, lower, upper, key, chains=settings.chains,
                                       warmup=settings.warmup, samples=settings.samples)
    rhat, diagnostics = _diagnostics(result.draws)
    hooks.log(f"mcmc: R-hat max {diagnostics['rhat_max']}, bulk ESS min {diagnostics['ess_bulk_min']:.0f}, "
              f"{result.bounces.mean():.0f} wall bounces a trajectory, {result.run_s:.1f} s sampling "
              f"(+{result.setup_s:.1f} s factorising)")
    if result.truncated:
        hooks.log(f"warning: mcmc: {result.truncated} trajectories stopped at {MAX_BOUNCES} bounces before their end")
    draws = result.draws.reshape(-1, cells)
    # Per cell, the variance of the prior's marginal truncated as a 1-D normal: exact for
    # independent cells, an approximation where the shared prior correlates them.
    prior_sd = np.sqrt(np.asarray(shared.variance(), np.float64))
    prior_variance = stats.truncnorm(lower / prior_sd, upper / prior_sd, scale=prior_sd).var()
    info = {"mcmc_prior": {"kind": "truncated (the shared Gaussian prior truncated to the bounds)", "lower": lower,
                           "upper": upper, "shared_prior": shared_info},
            "sampler": "exact HMC (Pakman & Paninski 2014)", "chains": settings.chains,
            "draws_per_chain": settings.samples, "warmup_per_chain": settings.warmup, **diagnostics,
            "bounces_per_trajectory_mean": float(result.bounces.mean()), "trajectories_cut": result.truncated,
            "sampling_s": result.run_s, "setup_s": result.setup_s,
            "draws_outside_bounds": int(np.sum((draws < lower) | (draws > upper)))}
    return MethodResult(draws, prior_variance=prior_variance, chains=settings.chains, info=info)


def run(problem: InverseProblem, settings: McmcSettings, key, hooks: Hooks = Hooks()) -> MethodResult:
    """NUTS draws ``(chains * samples, cells)`` kg/m^3 under the prior of ``settings``, from
    ``key`` (exact HMC for the truncated Gaussian); the diagnostics (R-hat, bulk and tail ESS,
    divergences, cost) in ``info``."""
    if settings.prior == "truncated":
        return _run_truncated(problem, settings, key, hooks)
    cells, stations = problem.mesh.n_cells, problem.n_stations
    check_budget(settings, cells, stations)
    estimate = estimate_cost(cells, stations, chains=settings.chains, warmup=settings.warmup,
                             samples=settings.samples)
    matrix = problem.dense()
    prior, prior_variance, prior_info = cell_prior(settings, problem, hooks.log)
    hooks.log(f"mcmc: {estimate.describe()}")
    result = sample_posterior(matrix, problem.data, problem.std, prior, key, chains=settings.chains,
                              warmup=settings.warmup, samples=settings.samples)
    draws = result.draws.reshape(-1, cells)
    bounds = prior.interval()
    outside = 0 if bounds is None else int(np.sum((draws < bounds[0]) | (draws > bounds[1])))
    rhat = _finite(result.rhat_max)
    hooks.log(f"mcmc: {settings.chains} chains x {settings.samples} draws; R-hat max "
              f"{'undefined (one chain)' if rhat is None else format(rhat, '.3f')}, bulk ESS min "
              f"{result.ess_bulk_min:.0f}, tail ESS min {result.ess_tail_min:.0f}, {result.divergences} divergences, "
              f"{result.steps + result.warmup_steps} leapfrog steps in {result.run_s:.1f} s "
              f"(+{result.compile_s:.1f} s compiling)")
    if rhat is not None and rhat > 1.01:
        hooks.log(f"warning: mcmc: R-hat {rhat:.3f} > 1.01: the chains disagree (not mixed); the draws are not yet "
                  "a reference: raise nuts_warmup and nuts_samples")
    info = {"mcmc_prior": prior_info, "chains": settings.chains, "draws_per_chain": settings.samples,
            "warmup_per_chain": settings.warmup, "rhat_max": rhat, "ess_bulk_min": _finite(result.ess_bulk_min),
            "ess_tail_min": _finite(result.ess_tail_min),
            "rhat_above_1_01_cells": int(np.sum(np.nan_to_num(result.rhat) > 1.01)),
            "divergences": result.divergences, "leapfrog_steps": result.steps,
            "warmup_leapfrog_steps": result.warmup_steps, "step_size_mean": float(np.mean(result.step_size)),
            "accept_rate_mean": float(np.mean(result.accept_rate)), "sampling_s": result.run_s,
            "compile_s": result.compile_s, "estimated_s": estimate.seconds,
            "newton_iterations": result.newton_iterations, "draws_outside_bounds": outside}
    return MethodResult(draws, prior_variance=prior_variance, chains=settings.chains, info=info)


__all__ = ["McmcSettings", "PRIORS", "check_budget", "cell_prior", "run"]
