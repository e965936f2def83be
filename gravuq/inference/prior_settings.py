"""The prior and noise model every probabilistic method shares, built from its settings in one
place: given, or learned from the data (empirical Bayes), with per-cell scales on top when the
held-out data prefer them.

Conventions (SPEC section 1): density contrast in kg/m^3 on the mesh cells; lengths in metres;
gz and std in mGal; with several components (stacked component-major) each component's data,
std and noise floor in its unit (mGal for gz, Eotvos for gradients).

``scale``:

- ``"fixed"``: the Gaussian prior of ``std`` (kg/m^3), ``correlation_length`` and
  ``vertical_correlation_length`` (m) and the Li-Oldenburg ``depth_exponent``, as given;
- ``"learned"`` (the default): two candidates learned by type-II maximum likelihood
  (:mod:`gravuq.inference.empirical_bayes`, the given values as the start): a correlated prior
  (scale and horizontal correlation length, the vertical one tied to it, with the noise model),
  and per-cell scales (``_hierarchical.py``: a bounded, smoothed EM from the learned scale and
  its quarter, on a correlation of at most two cells, with the learned noise). The evidence
  picks between them unless the per-cell scales predict the stations clearly worse by the
  closed-form leave-one-out log predictive density (by more than :data:`HOLDOUT_GUARD` nats a
  station: the evidence alone can be gamed by thousands of hyperparameters). Both scores are
  reported. Smooth, space-filling density favours the first; compact bodies the second;
- ``"hierarchical"``: the per-cell scales, whatever leave-one-out says.

``noise``: ``"learned"`` (a scale factor on the stated std and an additive floor, learned with
the prior; with several components one factor and one floor per component, the floor in the
component's unit, all learned jointly: :mod:`gravuq.inference.noise_model`) or ``"stated"``.

Cost. The dense evidence builds the station gram ``G R G^T`` (``N^2 x cells`` products) and
its gradient at every outer step, and the per-cell EM a posterior variance per step. Where the
gradient-based fit would take more than :data:`DENSE_FLOP_BUDGET` floating-point operations
(about a minute on two cores), the correlation length is chosen on a grid of
``LENGTH_GRID_CELLS`` cell widths instead (one gram each, no gradient), and per-cell scales
are not tried unless asked for (``"hierarchical"``). Where the dense matrix does not fit at all,
the prior and noise are learned from a randomised Nystrom factor of the gram
(:mod:`gravuq.inference.matrix_free_evidence`; products with the operator only; exact when its
rank reaches the number of stations). metrics.json says which was done.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from ..constants import COMPONENT_UNITS
from ._hierarchical import hierarchical_prior
from .empirical_bayes import Hyperparameters, learn_hyperparameters, leave_one_out
from .matrix_free_evidence import LENGTH_GRID_CELLS, learn_matrix_free
from .prior import GaussianPrior

#: A per-cell scale is held within this factor of its start either way, and the EM takes at
#: most this many steps from each start.
HIERARCHICAL_BOUND = 30.0
HIERARCHICAL_STEPS = 30

#: Per-cell scales sit on a correlation of at most this many horizontal cells.
PER_CELL_LENGTH = 2.0

#: Floating-point operations beyond which the dense evidence fit and the per-cell EM give way
#: to the matrix-free evidence (see the module notes).
DENSE_FLOP_BUDGET = 1.0e12


def dense_evidence_flops(stations: int, cells: int) -> float:
    """About what the dense evidence fit costs: 16 outer steps, each a gram and its gradient."""
    return 16 * 3 * 2.0 * stations**2 * cells


def per_cell_flops(stations: int, cells: int) -> float:
    """About what the per-cell EM costs: two starts of HIERARCHICAL_STEPS posterior variances."""
    return 2 * HIERARCHICAL_STEPS * 2 * 2.0 * stations**2 * cells


#: Per-cell scales are refused when their leave-one-out log predictive density is worse than the
#: constant prior's by more than this many nats per station.
HOLDOUT_GUARD = 1.0


@dataclass(frozen=True)
class PriorSettings:
    """``std`` kg/m^3, ``correlation_length`` and ``vertical_correlation_length`` m (None: the
    horizontal one), ``depth_exponent`` (0: none), ``scale`` (``"learned"``, ``"hierarchical"``
    or ``"fixed"``), the hierarchical ``smoothing`` in cells and ``noise`` (``"learned"`` or
    ``"stated"``), ``noise_floor`` whether the learned noise has its floor."""

    std: float = 50.0
    correlation_length: float = 0.0
    depth_exponent: float = 0.0
    scale: str = "learned"
    smoothing: float = 1.0
    noise: str = "learned"
    vertical_correlation_length: float | None = None
    #: Whether the learned noise has an additive floor (per component, in its unit).
    noise_floor: bool = True
    #: The measured components of the data vector, stacked component-major (each its own
    #: noise factor and floor).
    components: tuple[str, ...] = ("gz",)

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
    ``(data,)`` (mGal; with several components each in its unit), and ``info``, what
    metrics.json says of how they were chosen. ``noise_scale`` and ``noise_floor`` (mGal) the
    learned factor and floor; with several components ``component_scales`` and
    ``component_floors`` (each component's unit) hold every component's, and the two others
    the first's."""

    prior: GaussianPrior
    noise_std: np.ndarray
    info: dict
    noise_scale: float = 1.0
    noise_floor: float = 0.0
    component_scales: tuple[float, ...] = ()
    component_floors: tuple[float, ...] = ()

    @classmethod
    def of(cls, prior: GaussianPrior, values: Hyperparameters, stated, info: dict, noise_learned: bool):
        """The model of ``prior`` with the noise of ``values`` (learned) or the ``stated`` std."""
        if not noise_learned:
            return cls(prior, stated, info)
        return cls(prior, values.noise_std(stated), info, values.noise_scale, values.noise_floor,
                   values.component_scales, values.component_floors)

    def noise_for(self, stated_std, component: int = 0) -> np.ndarray:
        """The noise std of new observations of the ``component``-th measured component (index
        into the run's components) with stated std ``stated_std`` (in that component's unit:
        mGal for gz): ``sqrt((scale * stated)^2 + floor^2)`` with that component's factor and
        floor, the stated std itself when noise is not learned."""
        stated = np.asarray(stated_std, np.float64)
        scale, floor = ((self.component_scales[component], self.component_floors[component])
                        if self.component_scales else (self.noise_scale, self.noise_floor))
        return np.sqrt((scale * stated) ** 2 + floor**2)


def build_model(settings: PriorSettings, mesh, data, stated_std, dense, log=None, operator=None) -> ProbabilisticModel:
    """The prior and noise model of ``settings`` (see the module notes).

    ``data``, ``stated_std`` (mGal) and ``dense()`` (the float64 sensitivity, budget-checked by
    the caller) are used only to learn. With ``dense`` None (it does not fit in memory) the
    correlated prior and the noise are learned matrix-free from ``operator()`` (a float64
    forward operator; :func:`~gravuq.inference.matrix_free_evidence.learn_matrix_free`).
    """
    log = log or (lambda message: None)
    stated = np.asarray(stated_std, np.float64)
    given = settings.given()
    if not settings.learns:
        return ProbabilisticModel(given.prior(mesh), stated, {"prior_scale": "fixed", "noise": "stated",
                                                              **given.as_dict()})
    stations, cells = stated.size, mesh.n_cells
    if dense is None:
        return _matrix_free_model(settings, mesh, data, stated, operator(), log)
    matrix = dense()
    if dense_evidence_flops(stations, cells) > DENSE_FLOP_BUDGET and settings.scale == "learned":
        return _grid_model(settings, mesh, matrix, data, stated, log)
    begun = time.perf_counter()
    noise_learned = settings.noise == "learned"
    if settings.scale == "fixed":
        log("learning the noise model by evidence maximisation (the prior is fixed)")
        fit = learn_hyperparameters(matrix, data, stated, mesh, given, structure=(), learn_scale=False,
                                    learn_noise=noise_learned, learn_floor=settings.noise_floor,
                                    components=settings.components)
        info = {"prior_scale": "fixed", "noise": settings.noise, "learned": fit.as_dict(),
                "seconds_learning": time.perf_counter() - begun}
        return ProbabilisticModel.of(given.prior(mesh), fit.hyperparameters, stated, info, noise_learned)
    start = given if (settings.correlation_length > 0 or settings.depth_exponent > 0) else None
    candidates = {}  # name -> (prior, noise std, hyperparameters)
    log("learning the prior and noise model by evidence maximisation: a correlated prior ...")
    smooth = learn_hyperparameters(matrix, data, stated, mesh, start, learn_noise=noise_learned,
                                   learn_floor=settings.noise_floor, components=settings.components)
    candidates["correlated"] = _candidate(smooth, mesh, stated, noise_learned)
    prior, noise, values = candidates["correlated"]
    if settings.scale == "learned" and per_cell_flops(stations, cells) > DENSE_FLOP_BUDGET:
        reason = (f"per-cell scales not tried: their EM would take about {per_cell_flops(stations, cells):.2g} "
                  f"floating-point operations ({stations} stations, {cells} cells); set [inference] prior_scale = "
                  "\"hierarchical\" to have them anyway")
        log(reason)
        info = {"prior_scale": settings.scale, "noise": settings.noise, "learned": smooth.as_dict(),
                "chosen": "correlated", "per_cell": reason, "hyperparameters": values.as_dict(),
                "log_evidence": {"correlated": smooth.log_evidence}, "seconds_learning": time.perf_counter() - begun}
        return ProbabilisticModel.of(prior, values, stated, info, noise_learned)
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
    return ProbabilisticModel.of(prior, hyperparameters, stated, info, noise_learned)


def _grid_model(settings: PriorSettings, mesh, matrix, data, stated, log) -> ProbabilisticModel:
    """The learned correlated prior where the gradient-based fit would cost too much: the
    correlation length on a grid of cell multiples (one gram each, no gradient through it), the
    scale and noise maximised at each; per-cell scales are not tried.

    The grid is climbed, not swept: from its middle length to the neighbour with the higher
    evidence, and on while the evidence rises (the evidence of a correlation length is
    unimodal in the cases measured: the demo, B1, B4 and the real survey), so an optimum inside
    the grid costs three to four fits instead of all of them. The lengths evaluated and their
    evidences are recorded (``evidence_by_length``)."""
    begun = time.perf_counter()
    noise_learned = settings.noise == "learned"
    stations, cells = stated.size, mesh.n_cells
    log(f"the gradient-based evidence fit would take about {dense_evidence_flops(stations, cells):.2g} floating-point "
        f"operations ({stations} stations, {cells} cells): the correlation length is chosen on a grid of "
        f"{len(LENGTH_GRID_CELLS)} lengths instead (climbed from its middle), and per-cell scales are not tried")
    cell = float(np.mean(np.concatenate([mesh.widths_x, mesh.widths_y])))
    fits: dict[int, object] = {}

    def fit_at(index: int, previous: Hyperparameters):
        if index not in fits:
            factor = LENGTH_GRID_CELLS[index]
            # From the scale and noise learned at the neighbouring length (the evidence changes
            # smoothly along the grid): fewer inner steps than from the config's prior std.
            start = replace(previous, horizontal_length=factor * cell, vertical_length=factor * cell)
            fit = learn_hyperparameters(matrix, data, stated, mesh, start, structure=(), learn_noise=noise_learned,
                                        learn_floor=settings.noise_floor, components=settings.components)
            values = fit.hyperparameters
            log(f"  evidence {fit.log_evidence:.6g} at L {factor * cell:.4g} m: sigma {values.prior_std:.4g} kg/m^3, "
                f"noise {describe_noise(values, settings.components)}")
            fits[index] = fit
        return fits[index]

    here = len(LENGTH_GRID_CELLS) // 2
    current = fit_at(here, Hyperparameters(prior_std=settings.std))
    for step in (-1, 1):  # try one side; go the other way only if the first neighbour is worse
        moved = False
        while 0 <= here + step < len(LENGTH_GRID_CELLS):
            neighbour = fit_at(here + step, current.hyperparameters)
            if neighbour.log_evidence <= current.log_evidence:
                break
            here, current, moved = here + step, neighbour, True
        if moved:
            break
    best = current
    values = best.hyperparameters
    ordered = [fits[index] for index in sorted(fits)]
    info = {"prior_scale": settings.scale, "noise": settings.noise, "chosen": "correlated", "length_grid": True,
            "learned": best.as_dict(), "hyperparameters": values.as_dict(),
            "evidence_by_length": {f"{fit.hyperparameters.horizontal_length:.6g}": fit.log_evidence for fit in ordered},
            "per_cell": "not tried (cost)", "seconds_learning": time.perf_counter() - begun}
    return ProbabilisticModel.of(values.prior(mesh), values, stated, info, noise_learned)


def _matrix_free_model(settings: PriorSettings, mesh, data, stated, operator, log) -> ProbabilisticModel:
    """The learned model where the dense sensitivity does not fit: a correlated prior and the
    noise by the Nystrom evidence (no per-cell scales, no leave-one-out: both need the matrix)."""
    if settings.scale == "hierarchical":
        raise ValueError("per-cell (hierarchical) scales need the dense sensitivity")
    begun = time.perf_counter()
    noise_learned = settings.noise == "learned"
    fixed = settings.scale == "fixed"
    log("learning the prior and noise model from a randomised "
        "Nystrom factor of the station gram (products with the operator only), one per correlation length")
    values, evidence, details = learn_matrix_free(
        operator, data, stated, mesh, learn_noise=noise_learned, learn_floor=settings.noise_floor,
        components=settings.components,
        lengths=(settings.correlation_length,) if fixed else None, prior_std=settings.std if fixed else None, log=log)
    if fixed:
        values = replace(values, horizontal_length=settings.correlation_length,
                         vertical_length=settings.given().vertical_length)
    info = {"prior_scale": settings.scale, "noise": settings.noise, "chosen": "correlated", "matrix_free": True,
            "learned": {**values.as_dict(), "log_evidence": evidence, **details},
            "hyperparameters": values.as_dict(), "seconds_learning": time.perf_counter() - begun}
    prior = settings.given().prior(mesh) if fixed else values.prior(mesh)
    return ProbabilisticModel.of(prior, values, stated, info, noise_learned)


def describe_noise(values, components: tuple[str, ...]) -> str:
    """The learned noise of ``values`` (:class:`Hyperparameters` or :class:`ProbabilisticModel`)
    in words, per component with its floor's unit."""
    scales = values.component_scales or (values.noise_scale,)
    floors = values.component_floors or (values.noise_floor,)
    return "; ".join(f"{name}: scale {scale:.3g}, floor {floor:.3g} {COMPONENT_UNITS[name]}"
                     for name, scale, floor in zip(components, scales, floors))


def _candidate(fit, mesh, stated, noise_learned: bool):
    values = fit.hyperparameters
    return values.prior(mesh), (values.noise_std(stated) if noise_learned else stated), values

__all__ = ["PriorSettings", "ProbabilisticModel", "build_model", "describe_noise"]
