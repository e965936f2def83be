"""The prior and noise model every probabilistic method shares, built from its settings in one
place: given, or learned from the data (empirical Bayes), with per-cell scales on top when the
held-out data prefer them.

Conventions (SPEC section 1): density contrast in kg/m^3 on the mesh cells; lengths in metres;
gz and std in mGal.

``scale``:

- ``"fixed"``: the Gaussian prior of ``std`` (kg/m^3), ``correlation_length`` and
  ``vertical_correlation_length`` (m) and the Li-Oldenburg ``depth_exponent``, as given;
- ``"learned"`` (the default): three candidates learned by type-II maximum likelihood
  (:mod:`gravuq.inference.empirical_bayes`, the given values as the start): a correlated prior
  (scale, depth weighting, horizontal and vertical correlation lengths, with the noise model),
  and per-cell scales of an independent prior (``_hierarchical.py``: a bounded, smoothed EM from
  the learned scale and its quarters, with the learned noise); the one that predicts the
  stations best, by the
  closed-form leave-one-out log predictive density, is kept (the evidence alone can be gamed by
  thousands of hyperparameters). Smooth, space-filling density favours the first; compact
  bodies the last;
- ``"hierarchical"``: the per-cell scales, whatever leave-one-out says.

``noise``: ``"learned"`` (a scale factor on the stated std and an additive floor, learned with
the prior) or ``"stated"``. Learning needs the dense float64 sensitivity.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ._hierarchical import hierarchical_prior
from .empirical_bayes import Hyperparameters, learn_hyperparameters, leave_one_out
from .prior import GaussianPrior

#: A per-cell scale is held within this factor of its start either way, and the EM takes at
#: most this many steps from each start.
HIERARCHICAL_BOUND = 30.0
HIERARCHICAL_STEPS = 30

#: Per-cell scales sit on a correlation of at most this many horizontal cells.
PER_CELL_LENGTH = 2.0

#: Per-cell scales are refused when their leave-one-out log predictive density is worse than the
#: constant prior's by more than this many nats per station.
HOLDOUT_GUARD = 1.0


@dataclass(frozen=True)
class PriorSettings:
    """``std`` kg/m^3, ``correlation_length`` and ``vertical_correlation_length`` m (None: the
    horizontal one), ``depth_exponent`` (0: none), ``scale`` (``"learned"``, ``"hierarchical"``
    or ``"fixed"``), the hierarchical ``smoothing`` in cells and ``noise`` (``"learned"`` or
    ``"stated"``)."""

    std: float = 50.0
    correlation_length: float = 0.0
    depth_exponent: float = 0.0
    scale: str = "learned"
    smoothing: float = 1.0
    noise: str = "learned"
    vertical_correlation_length: float | None = None

    @property
    def learns(self) -> bool:
        return self.scale != "fixed" or self.noise == "learned"

    def given(self) -> Hyperparameters:
        vertical = self.correlation_length if self.vertical_correlation_length is None \
            else self.vertical_correlation_length
        return Hyperparameters(prior_std=self.std, depth_exponent=self.depth_exponent,
                               horizontal_length=self.correlation_length, vertical_length=vertical)


@dataclass(frozen=True)
class ProbabilisticModel:
    """The prior and noise of a run: ``prior`` (:class:`GaussianPrior`), ``noise_std``
    ``(stations,)`` mGal, and ``info``, what metrics.json says of how they were chosen."""

    prior: GaussianPrior
    noise_std: np.ndarray
    info: dict


def build_model(settings: PriorSettings, mesh, data, stated_std, dense, log=None) -> ProbabilisticModel:
    """The prior and noise model of ``settings`` (see the module notes).

    ``data``, ``stated_std`` (mGal) and ``dense()`` (the float64 sensitivity, budget-checked by
    the caller) are used only to learn.
    """
    log = log or (lambda message: None)
    stated = np.asarray(stated_std, np.float64)
    given = settings.given()
    if not settings.learns:
        return ProbabilisticModel(given.prior(mesh), stated, {"prior_scale": "fixed", "noise": "stated",
                                                              **given.as_dict()})
    matrix = dense()
    begun = time.perf_counter()
    noise_learned = settings.noise == "learned"
    if settings.scale == "fixed":
        log("learning the noise model by evidence maximisation (the prior is fixed)")
        fit = learn_hyperparameters(matrix, data, stated, mesh, given, structure=(), learn_scale=False,
                                    learn_noise=noise_learned)
        info = {"prior_scale": "fixed", "noise": settings.noise, "learned": fit.as_dict(),
                "seconds_learning": time.perf_counter() - begun}
        return ProbabilisticModel(given.prior(mesh), fit.hyperparameters.noise_std(stated), info)
    start = given if (settings.correlation_length > 0 or settings.depth_exponent > 0) else None
    candidates = {}  # name -> (prior, noise std, hyperparameters)
    log("learning the prior and noise model by evidence maximisation: a correlated prior ...")
    smooth = learn_hyperparameters(matrix, data, stated, mesh, start, learn_noise=noise_learned)
    candidates["correlated"] = _candidate(smooth, mesh, stated, noise_learned)
    prior, noise, values = candidates["correlated"]
    # Per-cell scales are for compact bodies: they sit on a short-range correlation (at most
    # PER_CELL_LENGTH cells), or the bodies are smeared into blobs of the learned length.
    cell = float(np.mean(np.concatenate([mesh.widths_x, mesh.widths_y])))
    length = min(values.horizontal_length, PER_CELL_LENGTH * cell)
    log(f"... and per-cell scales on a {length:.4g} m correlation (bounded, smoothed EM from the learned scale "
        "and its quarter)")
    best = None
    for fraction in (1.0, 0.25):
        base = GaussianPrior.build(mesh, values.prior_std * fraction, length)
        candidate, candidate_report = hierarchical_prior(matrix, data, noise, mesh, base=base,
                                                         smoothing=settings.smoothing, bound=HIERARCHICAL_BOUND,
                                                         max_steps=HIERARCHICAL_STEPS)
        if best is None or candidate_report.log_evidence > best[1].log_evidence:
            best = (candidate, candidate_report)
    per_cell, report = best
    candidates["per_cell"] = (per_cell, noise, values)
    info = {"prior_scale": settings.scale, "noise": settings.noise, "learned": smooth.as_dict(),
            "hierarchical": {**report.as_dict(), "correlation_length": length}}
    scores = {name: leave_one_out(matrix, data, std, prior) for name, (prior, std, _) in candidates.items()}
    info["leave_one_out"] = {name: score.scores() for name, score in scores.items()}
    evidence = {"correlated": smooth.log_evidence, "per_cell": report.log_evidence}
    info["log_evidence"] = evidence
    loss = (scores["correlated"].log_density - scores["per_cell"].log_density) / len(stated)
    if settings.scale == "hierarchical":
        chosen = "per_cell"
    else:
        # The evidence picks, unless per-cell scales predict the held-out stations clearly worse
        # (by more than HOLDOUT_GUARD nats per station): then they were bought with the data.
        chosen = "per_cell" if evidence["per_cell"] > evidence["correlated"] and loss < HOLDOUT_GUARD \
            else "correlated"
    log(f"log evidence: correlated {evidence['correlated']:.6g}, per-cell {evidence['per_cell']:.6g}; "
        f"leave-one-out log predictive density per station: correlated {scores['correlated'].log_density / len(stated):.4g}, "
        f"per-cell {scores['per_cell'].log_density / len(stated):.4g}: keeping the {chosen} prior")
    if chosen == "per_cell" and report.at_bound > 0.05:
        message = (f"{report.at_bound:.0%} of the cells hold their prior std at the bound of {HIERARCHICAL_BOUND:g} "
                   f"times its start ({report.start_std:.4g} kg/m^3): the per-cell scales want "
                   "to run away; check the data and the mesh, or set [inference] prior_scale = \"learned\"")
        info["warning"] = message
        log(f"warning: {message}")
    prior, noise, hyperparameters = candidates[chosen]
    info.update(chosen=chosen, hyperparameters=hyperparameters.as_dict(), seconds_learning=time.perf_counter() - begun)
    return ProbabilisticModel(prior, noise, info)


def _candidate(fit, mesh, stated, noise_learned: bool):
    values = fit.hyperparameters
    return values.prior(mesh), (values.noise_std(stated) if noise_learned else stated), values

__all__ = ["PriorSettings", "ProbabilisticModel", "build_model"]
