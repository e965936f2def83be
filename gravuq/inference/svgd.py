"""Stein variational gradient descent over INR particles (Liu & Wang 2016), as a preset of the
engine's Stein step rule.

The particles move along the Stein direction of the same posterior that ``rml`` samples
(Gaussian likelihood of the observed data, the problem's Gaussian prior on the density at the
cells), with an RBF kernel and the median bandwidth, on the density fields (``kernel =
"function"``) or the weights (``"weight"``). The networks output density in units of the
prior's standard deviation (``_anchored.py``). With ``warm_start``, where the dense float64
sensitivity fits in memory, the particles first fit exact linear-Gaussian posterior draws
(Matheron's rule), cell by cell. Units: density contrast in kg/m^3, gz in mGal.

References: Liu & Wang (2016), arXiv:1608.04471; Zhang & Curtis (2020), arXiv:1908.08356.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from ._anchored import exact_rml, train_anchored
from .problem import Hooks, InverseProblem, MethodResult, TrainingRecord
from .training import SteinKernel, TrainingSettings


@dataclass(frozen=True)
class SvgdSettings:
    """``members`` particles; ``kernel`` space (``"function"`` or ``"weight"``); the ``[model]``
    settings; training; ``warm_start`` and its epochs as for ensembles."""

    members: int
    kernel: str
    model: object
    training: TrainingSettings
    warm_start: bool = False
    warm_start_epochs: int = 300


def run(problem: InverseProblem, settings: SvgdSettings, key, hooks: Hooks = Hooks()) -> MethodResult:
    """``settings.members`` SVGD particles (see the module notes); keys split from ``key``."""
    members = settings.members
    prior, prior_info = problem.prior()
    init_key, start_key, noise_key = jax.random.split(key, 3)
    warm_fields = None
    if settings.warm_start:
        starts = np.asarray(prior.sample(start_key, members))
        warm_fields = exact_rml(problem, prior, starts, problem.perturbed_data(noise_key, members))
    observed = np.broadcast_to(problem.data, (members, problem.n_stations))
    fit = train_anchored(problem, settings, init_key, prior=prior, data=observed, offsets=None,
                         anchors=np.zeros((members, problem.mesh.n_cells)), target_misfit=None, hooks=hooks,
                         description=f"SVGD ({settings.kernel} kernel, {members} particles)",
                         stein=SteinKernel(settings.kernel), warm_fields=warm_fields)
    info = {"svgd_kernel": settings.kernel, "epochs": fit.epochs, "parameter_count": fit.parameter_count,
            "diverged_members": fit.diverged, "encoding": settings.model.encoding, "prior": prior_info,
            "warm_start": warm_fields is not None, "trainer": "svgd (Adam on the Stein direction)",
            "kept_state": fit.kept}
    return MethodResult(fit.density, prior_variance=np.asarray(prior.variance()),
                        training=TrainingRecord.of(fit, None), info=info)


__all__ = ["SvgdSettings", "run"]
