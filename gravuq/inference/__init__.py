"""Inference methods, one module each, sharing one forward operator and one training engine.

Every method is ``run(problem, settings, key, hooks) -> MethodResult`` (``problem.py``):

- ``deterministic``: one INR trained to the target misfit (the seed paper's method);
- ``tikhonov``: smooth depth-weighted least squares (Li & Oldenburg 1998);
- ``gaussian``: the exact linear-Gaussian posterior (``linear_gaussian`` holds its algebra);
- ``ensemble``: deep ensembles (randomised MAP, randomised prior functions, random inits);
- ``svgd``: Stein variational gradient descent over INR particles;
- ``last_layer``: a Bayesian last layer over one INR's features (NumPyro NUTS or closed form);
- ``mcmc_method`` (``method = "mcmc"``): NUTS on the voxel grid under box, mixture or normal
  priors (``mcmc`` holds the sampler), the non-Gaussian reference for small problems.

The prior they share is built in ``prior_settings`` (``prior``: the Gaussian prior;
``_hierarchical``: learned per-cell scales); ``training`` is the engine.
"""

from . import deterministic, ensemble, gaussian, last_layer, mcmc_method, svgd, tikhonov
from .linear_gaussian import GaussianPosterior, gaussian_moments, gaussian_posterior, rml_solutions
from .prior import GaussianPrior, depth_weighting
from .prior_settings import PriorSettings, ProbabilisticModel, build_model
from .problem import Hooks, InverseProblem, MethodResult, TrainingRecord

#: Method name -> its module (each has ``run`` and a settings class).
METHODS = {"deterministic": deterministic, "tikhonov": tikhonov, "gaussian": gaussian, "ensemble": ensemble,
           "svgd": svgd, "last_layer": last_layer, "mcmc": mcmc_method}

__all__ = [
    "METHODS", "GaussianPosterior", "GaussianPrior", "Hooks", "InverseProblem", "MethodResult", "PriorSettings", "ProbabilisticModel",
    "TrainingRecord", "build_model", "depth_weighting", "deterministic", "ensemble", "gaussian", "gaussian_moments",
    "gaussian_posterior", "last_layer", "mcmc_method", "rml_solutions", "svgd", "tikhonov",
]
