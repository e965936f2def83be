"""Inference methods sharing one forward operator and one batched particle engine."""

from ._engine import Engine, EngineState, Problem, make_optimizer, stack_members
from ._members import MemberFit, train_members
from ._prior import GaussianPrior, depth_weighting, prior_from_config
from .gaussian import GaussianPosterior, gaussian_posterior
from .tikhonov import TikhonovResult, tikhonov

__all__ = [
    "Engine", "EngineState", "GaussianPosterior", "GaussianPrior", "MemberFit", "Problem", "TikhonovResult",
    "depth_weighting", "gaussian_posterior", "make_optimizer", "prior_from_config", "stack_members", "tikhonov",
    "train_members",
]
