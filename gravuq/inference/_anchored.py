"""Networks added to fixed fields: the members of ``rml`` and ``prior_function`` ensembles and the
SVGD particles, trained on the engine in a whitened parametrisation.

Units: density contrast in kg/m^3, gz and std in mGal.

A member's density is ``m_k = offset_k + s * u_k`` with ``s`` the prior's standard deviation per
cell and ``u_k`` its network's output: the network represents the departure from the fixed field
in units of the prior's spread, so cells whose prior scales differ a hundredfold train alike (the
offsets are unbounded Gaussian draws, so the networks get a linear head, not a bounded one).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ..model import model_from_config
from .linear_gaussian import rml_solutions
from .problem import Hooks, InverseProblem
from .training import MemberTargets, Network, Objective, fit_to_fields, make_engine, stack_members, train_members


def whitened_model(model):
    """``[model]`` settings for a network that outputs a departure in prior standard deviations."""
    return dataclasses.replace(model, head="linear", bounds=(-1.0, 1.0))


def exact_rml(problem: InverseProblem, prior, anchors: np.ndarray, targets: np.ndarray) -> np.ndarray | None:
    """The exact linear-Gaussian randomised-MAP solutions (kg/m^3) for ``anchors`` and ``targets``
    (mGal), or None when the dense float64 sensitivity does not fit in the memory budget."""
    if not problem.dense_fits():
        return None
    return rml_solutions(problem.dense(), problem.std, prior, anchors, targets)


def rml_objective(problem: InverseProblem, prior, density: np.ndarray, anchors: np.ndarray,
                  data: np.ndarray) -> np.ndarray:
    """Each member's randomised-MAP objective ``|(G m - d) / sigma|^2 + |C^(-1/2) (m - a)|^2``
    (dimensionless, float64, through the forward operator) for densities ``(members, cells)``."""
    as64 = lambda a: jnp.asarray(a, jnp.float64)  # noqa: E731
    residual = (np.asarray(problem.operator.forward(as64(density)), np.float64) - data) / problem.std
    white = np.asarray(prior.whiten(as64(density - anchors)), np.float64)
    return np.sum(residual**2, axis=1) + np.sum(white**2, axis=1)


def optimality_report(problem: InverseProblem, prior, fit, anchors: np.ndarray, data: np.ndarray) -> list[dict]:
    """Per kept member: its final randomised-MAP objective and, where the dense float64
    sensitivity fits, the exact minimum (the linear-Gaussian solution) and the relative
    optimality gap ``(final - minimum) / minimum``."""
    dropped = {record["member"] for record in fit.diverged}
    kept = np.array([k for k in range(anchors.shape[0]) if k not in dropped], int)
    final = rml_objective(problem, prior, fit.density, anchors[kept], data[kept])
    exact = exact_rml(problem, prior, anchors[kept], data[kept])
    report = []
    for row, member in enumerate(kept):
        entry = {"member": int(member), "final_objective": float(final[row])}
        if exact is not None:
            minimum = float(rml_objective(problem, prior, exact[row:row + 1], anchors[member:member + 1],
                                          data[member:member + 1])[0])
            entry.update(exact_minimum=minimum, relative_optimality_gap=(float(final[row]) - minimum) / minimum)
        report.append(entry)
    return report


def train_anchored(problem: InverseProblem, settings, key, *, prior, data: np.ndarray, offsets: np.ndarray | None,
                   anchors: np.ndarray | None, target_misfit: float | None, hooks: Hooks, description: str,
                   stein=None, warm_fields: np.ndarray | None = None):
    """Train ``len(data)`` networks (initialised from ``key``) added to ``offsets`` (kg/m^3, or
    none) in units of the prior std, each fitting its row of ``data`` (mGal), with the
    randomised-MAP penalty ``|C^(-1/2) (m - anchor)|^2`` when ``anchors`` are given.
    ``warm_fields`` (kg/m^3), when given, are fitted first, cell by cell
    (``settings.warm_start_epochs`` of Adam), before training on the real objective. Returns the
    :class:`~gravuq.inference.training.MemberFit`."""
    members = data.shape[0]
    scale = np.asarray(prior.std).ravel()
    params, static = stack_members(lambda k: model_from_config(whitened_model(settings.model), key=k),
                                   jax.random.split(key, members))
    if warm_fields is not None:
        params = fit_to_fields(static, params, problem.coordinates, warm_fields, offsets, scale,
                               settings.training.learning_rate, settings.warm_start_epochs)
    as32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    targets = MemberTargets(data=as32(data), anchor=None if anchors is None else as32(anchors),
                            offset=None if offsets is None else as32(offsets))
    objective = Objective(operator=problem.operator, coordinates=Network(static).points(params, problem.coordinates),
                          inverse_std=as32(1.0 / problem.std), targets=targets,
                          prior=None if anchors is None else prior, scale=as32(scale))
    engine = make_engine(static, settings.training, target_misfit=target_misfit, stein=stein)
    update, close = hooks.epoch_bar(settings.training.epochs, description)
    try:
        return train_members(engine, params, objective, jax.random.key(0), settings.training.epochs,
                             observed=problem.data, std=problem.std, progress=update, checkpoint=hooks.checkpoint,
                             log=hooks.log)
    finally:
        close()


__all__ = ["exact_rml", "train_anchored", "whitened_model"]
