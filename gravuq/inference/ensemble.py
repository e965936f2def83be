"""Deep ensembles of INRs, by mode.

- ``rml``, randomised MAP (Pearce et al. 2020; Bardsley et al. 2014): member ``k`` minimises
  ``|(G m_k - d - e_k) / sigma|^2 + |C^(-1/2) (m_k - a_k)|^2`` with its own noise draw ``e_k``
  and its own prior draw ``a_k`` (the problem's Gaussian prior), which for a linear problem makes
  ``m_k`` an exact posterior draw. The network represents the departure from the anchor,
  ``m_k = a_k + s u_k`` (whitened; ``_anchored.py``): the departure lies in the smooth range of
  ``C G^T`` (Matheron's rule), which a network can represent, whereas the rough anchor itself
  could not be.
- ``prior_function``: ``m_k = a_k + s u_k`` fitted to its perturbed data down to the target
  misfit, with no penalty (randomised prior functions, Osband et al. 2018).
- ``init``: networks that differ only in their random initialisation, fitted to the observed
  data (the seed paper's ensemble; Lakshminarayanan et al. 2017): known to under-cover.

Units: density contrast in kg/m^3; gz and std in mGal.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from ._anchored import exact_rml, optimality_report, train_anchored
from .deterministic import train_networks
from .problem import Hooks, InverseProblem, MethodResult, TrainingRecord
from .training import TrainingSettings

MODES = ("rml", "prior_function", "init")


@dataclass(frozen=True)
class EnsembleSettings:
    """``mode`` (see the module notes); ``members``; the ``[model]`` settings; how members are
    trained; ``target_misfit`` for the modes that stop at it; ``warm_start``: first fit each
    network, cell by cell, to its exact linear-Gaussian randomised-MAP solution (``rml``, where
    the dense float64 sensitivity fits) for ``warm_start_epochs``."""

    mode: str
    members: int
    model: object
    training: TrainingSettings
    target_misfit: float = 1.0
    warm_start: bool = False
    warm_start_epochs: int = 300


def run(problem: InverseProblem, settings: EnsembleSettings, key, hooks: Hooks = Hooks()) -> MethodResult:
    """An ensemble of ``settings.members`` INRs (see the module notes); keys split from ``key``."""
    members = settings.members
    init_key, anchor_key, noise_key = jax.random.split(key, 3)
    description = f"ensemble ({settings.mode}, {members} members)"
    info = {"ensemble_mode": settings.mode}
    warm = False
    if settings.mode in ("rml", "prior_function"):
        prior, prior_info = problem.prior()
        info["prior"] = prior_info
        anchors = np.asarray(prior.sample(anchor_key, members))
        perturbed = problem.perturbed_data(noise_key, members)
        rml = settings.mode == "rml"
        warm_fields = exact_rml(problem, prior, anchors, perturbed) if rml and settings.warm_start else None
        warm = warm_fields is not None
        target = None if rml else settings.target_misfit
        fit = train_anchored(problem, settings, init_key, prior=prior, data=perturbed, offsets=anchors,
                             anchors=anchors if rml else None, target_misfit=target, hooks=hooks,
                             description=description, warm_fields=warm_fields)
        prior_variance = np.asarray(prior.variance())
        if rml:
            report = optimality_report(problem, prior, fit, anchors, perturbed)
            info["members_optimality"] = report
            gaps = [entry["relative_optimality_gap"] for entry in report if "relative_optimality_gap" in entry]
            if gaps:
                info.update(relative_optimality_gap_median=float(np.median(gaps)),
                            relative_optimality_gap_max=float(np.max(gaps)))
    elif settings.mode == "init":
        target = settings.target_misfit
        fit = train_networks(problem, settings, init_key, members, hooks, description)
        # The method's own prior: the spread of the networks before training.
        prior_variance = fit.initial_density.var(axis=0, ddof=1) if fit.initial_density.shape[0] > 1 else None
    else:
        raise ValueError(f"unknown ensemble mode {settings.mode!r} (expected one of {MODES})")
    info.update(epochs=fit.epochs, parameter_count=fit.parameter_count, diverged_members=fit.diverged,
                encoding=settings.model.encoding, warm_start=warm, trainer=settings.training.trainer,
                kept_state=fit.kept)
    return MethodResult(fit.density, prior_variance=prior_variance,
                        training=TrainingRecord.of(fit, target), info=info)


__all__ = ["EnsembleSettings", "MODES", "run"]
