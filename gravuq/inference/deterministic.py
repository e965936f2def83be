"""The deterministic INR: one network trained through the forward operator to chi^2/N = target,
the seed paper's method (Mishra et al., arXiv:2510.17876).

Units: density contrast in kg/m^3; gz and std in mGal.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from ..model import model_from_config
from .problem import Hooks, InverseProblem, MethodResult, TrainingRecord
from .training import MemberTargets, Network, Objective, TrainingSettings, make_engine, stack_members, train_members


@dataclass(frozen=True)
class DeterministicSettings:
    """``model``: the ``[model]`` settings of the network; ``training``: how it is trained;
    ``target_misfit``: the chi^2/N it is stopped at."""

    model: object
    training: TrainingSettings
    target_misfit: float = 1.0


def train_networks(problem: InverseProblem, settings, key, members: int, hooks: Hooks, description: str):
    """``members`` networks from their random initialisations (keys split from ``key``) fitted to
    the observed data until chi^2/N reaches ``settings.target_misfit``: the fit of the
    deterministic INR, of ``init`` ensembles and of the last layer's network."""
    params, static = stack_members(lambda k: model_from_config(settings.model, key=k), jax.random.split(key, members))
    targets = MemberTargets(data=jnp.asarray(jnp.broadcast_to(problem.data, (members, problem.n_stations)), jnp.float32))
    objective = Objective(operator=problem.operator, coordinates=Network(static).points(params, problem.coordinates),
                          inverse_std=jnp.asarray(1.0 / problem.std, jnp.float32), targets=targets)
    engine = make_engine(static, settings.training, target_misfit=settings.target_misfit)
    update, close = hooks.epoch_bar(settings.training.epochs, description)
    try:
        return train_members(engine, params, objective, jax.random.key(0), settings.training.epochs,
                             observed=problem.data, std=problem.std, progress=update, checkpoint=hooks.checkpoint,
                             log=hooks.log)
    finally:
        close()


def run(problem: InverseProblem, settings: DeterministicSettings, key, hooks: Hooks = Hooks()) -> MethodResult:
    """One INR from its random initialisation (``key``) trained to ``settings.target_misfit``."""
    fit = train_networks(problem, settings, key, 1, hooks, "deterministic INR")
    info = {"epochs": fit.epochs, "parameter_count": fit.parameter_count, "encoding": settings.model.encoding,
            "warm_start": False, "trainer": settings.training.trainer, "kept_state": fit.kept}
    return MethodResult(fit.density, training=TrainingRecord.of(fit, settings.target_misfit), info=info)


__all__ = ["DeterministicSettings", "run", "train_networks"]
