"""A hierarchical Gaussian prior: per-cell prior variances learned from the data (empirical Bayes).

Conventions (SPEC section 1): density contrast in kg/m^3 on the mesh cells, ``(nz, ny, nx)``
flattened in C order; gz and its std in mGal, positive downward.

Notes
-----
An iid (or correlated) Gaussian prior with one scale must spread the same variance over every
cell of a depth. A compact body then ends up both smeared (the mean) and unbracketed (its cells
lie far in the posterior's tails), while the empty background is given more spread than it
needs. A Gaussian *scale mixture* lets each cell have its own prior variance ``v_i``, with
``m | v ~ N(0, S R S)``, ``S = diag(sqrt(v))``, ``R`` the prior's correlation (identity when
iid). Given ``v``, gravity being linear, the posterior is exactly Gaussian; ``v`` itself is set
by type-II maximum likelihood (evidence maximisation, the sparse-Bayesian-learning EM of
Tipping 2001 and Wipf & Rao 2004):

    v_i <- E[m_i^2 | d, v] = mu_i^2 + Sigma_ii,

made spatially coherent by a Gaussian filter of ``smoothing`` cells on the ``(nz, ny, nx)``
grid after each step. Unfiltered, the EM collapses onto a few cells (the sparsest model that
fits, the classic failure of ARD on an under-determined problem); filtered over about one cell,
the variance grows where the data call for mass and stays at the background scale elsewhere.

The iteration starts from the constant scale ``prior_std * 4^-k`` for ``k = 0 .. scales - 1``
and runs until the log evidence ``log N(d; 0, G C G^T + C_d)`` has not risen for a few steps
(the filtered update is not an exact EM step, so it can fall); the step with the highest
evidence is kept, and the start with the highest evidence wins. Each
step is one dense solve of size n_stations, in float64. Where the data are uninformative (deep
cells far from the body) the variance stays at the start scale: that part is still prior.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from scipy import ndimage

from ..mesh import TensorMesh
from .linear_gaussian import gaussian_moments
from .prior import GaussianPrior


@dataclass(frozen=True)
class HierarchicalReport:
    """How the prior was chosen: the start scale (kg/m^3), EM steps kept, the log evidence of the
    chosen prior and of the constant-scale start, the std range (kg/m^3) and the fraction of
    cells whose std was held at its upper bound."""

    start_std: float
    steps: int
    log_evidence: float
    log_evidence_constant: float
    std_min: float
    std_max: float
    at_bound: float = 0.0

    def as_dict(self) -> dict:
        return {"prior_scale": "hierarchical", "start_std": self.start_std, "em_steps": self.steps,
                "log_evidence": self.log_evidence, "log_evidence_constant_prior": self.log_evidence_constant,
                "prior_std_min": self.std_min, "prior_std_max": self.std_max, "fraction_at_upper_bound": self.at_bound}


def _with_std(prior: GaussianPrior, std: np.ndarray) -> GaussianPrior:
    return GaussianPrior(jnp.asarray(std, jnp.float64), prior.root_z, prior.root_y, prior.root_x,
                         prior.inverse_root_z, prior.inverse_root_y, prior.inverse_root_x)


def _em(matrix, data, std, mesh: TensorMesh, start: GaussianPrior, smoothing: float, bound: float, shape: float,
        max_steps: int, patience: int):
    """The smoothed EM from ``start`` with the variance field held in ``[v0 / bound^2, v0 bound^2]``
    (``v0`` the start's variance per cell) and pulled towards ``v0`` by an inverse-gamma
    hyperprior of shape ``shape`` and mode ``v0``: ``v <- (E[m^2] + 2 (shape + 1) v0) / (2 shape + 3)``.
    Returns ``(evidence, prior, steps, fraction of cells at the upper bound, evidence of the start)``."""
    start_variance = np.asarray(start.std).reshape(mesh.shape) ** 2
    low, high = start_variance / bound**2, start_variance * bound**2
    # With topography the air cells (no data, zero contrast) keep their start, and the smoothing
    # averages over active cells only (a normalised convolution), so they never pull on the rest.
    active = mesh.active if mesh.has_topography else None
    if active is not None:
        weight = ndimage.gaussian_filter(active.astype(np.float64), smoothing, mode="nearest")
    mean, variance, evidence = gaussian_moments(matrix, data, std, start)
    start_evidence = float(evidence)
    kept = (start_evidence, start, 0, 0.0)
    for step in range(1, max_steps + 1):
        second_moment = (np.asarray(mean) ** 2 + np.asarray(variance)).reshape(mesh.shape)
        if active is None:
            smoothed = ndimage.gaussian_filter(second_moment, smoothing, mode="nearest")
        else:
            smoothed = ndimage.gaussian_filter(np.where(active, second_moment, 0.0), smoothing, mode="nearest")
            smoothed = np.where(active, smoothed / np.maximum(weight, 1e-300), start_variance)
        updated = (smoothed + 2.0 * (shape + 1.0) * start_variance) / (2.0 * shape + 3.0) if shape > 0 else smoothed
        field = np.clip(updated, low, high)
        candidate = _with_std(start, np.sqrt(field))
        mean, variance, evidence = gaussian_moments(matrix, data, std, candidate)
        if not np.isfinite(float(evidence)):
            break
        if float(evidence) > kept[0]:
            at_high = field >= high * (1 - 1e-9)
            kept = (float(evidence), candidate, step, float(np.mean(at_high if active is None else at_high[active])))
        elif step - kept[2] >= patience:
            break
    return (*kept, start_evidence)


def hierarchical_prior(matrix, data, std, mesh: TensorMesh, prior_std: float | None = None,
                       correlation_length: float = 0.0, depth_exponent: float = 0.0, smoothing: float = 1.0,
                       scales: int = 4, max_steps: int = 30, patience: int = 3, base: GaussianPrior | None = None,
                       bound: float = 30.0, shape: float = 0.0) -> tuple[GaussianPrior, HierarchicalReport]:
    """The evidence-maximising scale-mixture prior (see the module Notes).

    Parameters
    ----------
    matrix
        Dense sensitivity, ``(stations, cells)``, mGal per kg/m^3.
    data, std
        Observed gz and its standard deviation (the noise model), mGal.
    prior_std, correlation_length, depth_exponent
        Without ``base``: the largest start scale (kg/m^3) and the structure of the start and of
        the correlation ``R`` (as for :meth:`GaussianPrior.build`); ``scales`` starts, each a
        quarter of the last, and the one of highest evidence wins.
    base
        A (learned) Gaussian prior to start from instead: its per-cell scales, correlation and
        depth structure; one start.
    smoothing
        Standard deviation of the Gaussian filter on the variance field, in cells (> 0).
    max_steps, patience
        At most ``max_steps`` EM steps from each start, stopping once ``patience`` steps have
        not raised the evidence; the step with the highest evidence is kept.
    bound, shape
        Safety: each cell's std stays within ``bound`` times the start's either way, and an
        inverse-gamma hyperprior of ``shape`` (0: none) pulls the variances towards the start's.
        The report gives the fraction of cells held at the upper bound.
    """
    if smoothing <= 0:
        raise ValueError("smoothing must be positive (in cells)")
    matrix = jnp.asarray(matrix, jnp.float64)
    data = jnp.asarray(data, jnp.float64)
    std = jnp.asarray(std, jnp.float64)
    if base is None:
        base = GaussianPrior.build(mesh, prior_std, correlation_length, depth_exponent)
        starts = [(_with_std(base, np.asarray(base.std) * 4.0**-k), float(prior_std * 4.0**-k)) for k in range(scales)]
    else:
        starts = [(base, float(np.sqrt(np.mean(np.asarray(base.std) ** 2))))]
    best, constant_evidence = None, None
    for start, scale in starts:
        evidence, prior, steps, at_bound, start_evidence = _em(matrix, data, std, mesh, start, smoothing, bound,
                                                               shape, max_steps, patience)
        constant_evidence = start_evidence if constant_evidence is None else constant_evidence
        if best is None or evidence > best[0]:
            best = (evidence, prior, steps, scale, at_bound)
    evidence, prior, steps, start, at_bound = best
    field = np.asarray(prior.std)
    if mesh.has_topography:  # the range over the cells the data can see
        field = field[mesh.active]
    report = HierarchicalReport(start, steps, evidence, constant_evidence, float(field.min()), float(field.max()),
                                at_bound)
    return prior, report


__all__ = ["HierarchicalReport", "hierarchical_prior"]
