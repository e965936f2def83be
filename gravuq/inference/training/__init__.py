"""The training engine every network method shares, built from parts: an objective
(``_objective``), a step rule (``_rules``: first-order and SVGD; ``_levenberg``: Gauss-Newton),
a stopping rule and the engine that runs them (``_engine``), and the batch of members with its
sharding and checkpoints (``_members``, ``_sharding``)."""

from ._engine import DIVERGENCE_CAUSES, Engine, MemberState, Stopping, TrainState, divergence_report, misfit_summary
from ._levenberg import LevenbergMarquardt
from ._members import MemberFit, TrainingSettings, fit_to_fields, make_engine, stack_members, train_members
from ._objective import MemberTargets, Objective
from ._rules import FirstOrder, Network, Outcome, Stein, StepRule, adam
from ._sharding import gather_members, member_sharding, members_divide, replicate, shard_members
from ._stein import SteinKernel

__all__ = [
    "DIVERGENCE_CAUSES", "Engine", "FirstOrder", "LevenbergMarquardt", "MemberFit", "MemberState", "MemberTargets",
    "Network", "Objective", "Outcome", "Stein", "SteinKernel", "StepRule", "Stopping", "TrainState",
    "TrainingSettings", "adam", "divergence_report", "fit_to_fields", "gather_members", "make_engine",
    "member_sharding", "members_divide", "misfit_summary", "replicate", "shard_members", "stack_members",
    "train_members",
]
