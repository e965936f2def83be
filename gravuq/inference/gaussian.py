"""The exact linear-Gaussian posterior as a method: the reference every other method is judged by.

Gravity is linear in density, so with the Gaussian prior the posterior is Gaussian and one
factorisation of the station system gives its exact mean, marginal variances and draws (see
:mod:`gravuq.inference.linear_gaussian`). Units: density contrast in kg/m^3, gz in mGal.
"""

from __future__ import annotations

from dataclasses import dataclass

from .linear_gaussian import gaussian_posterior
from .problem import Hooks, InverseProblem, MethodResult


@dataclass(frozen=True)
class GaussianSettings:
    """``draws``: exact posterior draws to write (Matheron's rule)."""

    draws: int = 20


def run(problem: InverseProblem, settings: GaussianSettings, key, hooks: Hooks = Hooks()) -> MethodResult:
    """Exact moments and ``settings.draws`` exact draws (from ``key``) under the problem's prior;
    needs the dense float64 sensitivity (``problem.dense``)."""
    matrix = problem.dense()
    prior, prior_info = problem.prior()
    posterior = gaussian_posterior(matrix, problem.data, problem.std, prior, key, settings.draws)
    return MethodResult(posterior.draws, prior_variance=posterior.prior_variance,
                        moments=(posterior.mean, posterior.variance), info={"prior": prior_info})


__all__ = ["GaussianSettings", "run"]
