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
from .training import MemberTargets, Objective, fit_to_fields, make_engine, stack_members, train_members


def whitened_model(model):
    """``[model]`` settings for a network that outputs a departure in prior standard deviations."""
    return dataclasses.replace(model, head="linear", bounds=(-1.0, 1.0))


def exact_rml(problem: InverseProblem, prior, anchors: np.ndarray, targets: np.ndarray) -> np.ndarray | None:
    """The exact linear-Gaussian randomised-MAP solutions (kg/m^3) for ``anchors`` and ``targets``
    (mGal), or None when the dense float64 sensitivity does not fit in the memory budget."""
    if not problem.dense_fits():
        return None
    return rml_solutions(problem.dense(), problem.std, prior, anchors, targets)


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
    objective = Objective(operator=problem.operator, coordinates=problem.coordinates,
                          inverse_std=as32(1.0 / problem.std), targets=targets,
                          prior=None if anchors is None else prior, scale=as32(scale))
    engine = make_engine(static, settings.training, target_misfit=target_misfit, stein=stein)
    update, close = hooks.epoch_bar(settings.training.epochs, description)
    try:
        return train_members(engine, params, objective, jax.random.key(0), settings.training.epochs,
                             observed=problem.data, std=problem.std, progress=update, checkpoint=hooks.checkpoint)
    finally:
        close()


__all__ = ["exact_rml", "train_anchored", "whitened_model"]
