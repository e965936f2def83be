"""``[inference]``: the recovery method, its training and its prior.

Units follow SPEC section 1: ``prior_std`` in kg/m^3 (density contrast), lengths in metres.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._checks import _Section, boolean, choice, integer, number, setting

#: Trainers of the network methods, and their defaults for ``epochs`` and ``patience``.
TRAINER_DEFAULTS = {"levenberg_marquardt": {"epochs": 32, "patience": 3, "tolerance": 2e-4},
                    "adam": {"epochs": 500, "patience": 50, "tolerance": 0.0}}

@dataclass(frozen=True)
class InferenceConfig(_Section):
    """``[inference]``: the recovery method and its training settings.

    ``prior_std`` is in kg/m^3, ``prior_correlation_length`` in metres. ``epochs``, ``patience``
    and ``tolerance`` left out take the defaults of the ``trainer`` (:data:`TRAINER_DEFAULTS`):
    read them through :meth:`trainer_setting`.
    """

    def trainer_setting(self, name: str):
        """``epochs``, ``patience`` or ``tolerance``: the value given, else the trainer's default."""
        value = getattr(self, name)
        return TRAINER_DEFAULTS[self.trainer][name] if value is None else value

    def _validated(self, where):
        if self.mcmc_body_fraction >= 1:
            raise where.at("mcmc_body_fraction").error(
                f"expected a number in (0, 1), found {self.mcmc_body_fraction:g}")
        return self

    method: str = setting("ensemble", choice("deterministic", "tikhonov", "ensemble", "last_layer",
                                             "svgd", "gaussian", "mcmc"), "recovery method")
    ensemble_mode: str = setting("rml", choice("rml", "init", "prior_function"),
                                 "ensemble: rml (randomised MAP: prior draw + network, anchored) | "
                                 "prior_function (prior draw + network, no anchor penalty) | init (seeds only)")
    members: int = setting(20, integer(1), "ensemble members / SVGD particles")
    trainer: str = setting("levenberg_marquardt", choice(*TRAINER_DEFAULTS),
                           "how networks are trained: levenberg_marquardt (matrix-free Gauss-Newton steps with "
                           "damping, conjugate-gradient inner solves) | adam (first order)")
    epochs: int | None = setting(None, integer(1),
                                 "training steps at most: Gauss-Newton steps (default 32) or Adam epochs (default 500)")
    cg_steps: int = setting(50, integer(1),
                            "levenberg_marquardt: conjugate-gradient iterations per step (each one forward- and "
                            "one reverse-mode product through the networks and the forward operator)")
    tolerance: float | None = setting(None, number(0),
                                      "a member's loss must fall by this fraction to count as improved (default "
                                      "2e-4 for levenberg_marquardt, 0 for adam); see patience")
    warm_start: bool = setting(False, boolean(),
                               "rml and svgd: first fit each network, cell by cell, to its exact linear-Gaussian "
                               "solution (needs the dense float64 sensitivity); off: members start from their "
                               "random initialisation and are trained on the real objective")
    learning_rate: float = setting(1e-2, number(0, exclusive=True), "Adam learning rate")
    gradient_clip: float = setting(0.0, number(0),
                                   "clip each member's gradient to this global norm before Adam; 0 = off")
    schedule: str = setting("constant", choice("constant", "cosine", "exponential"),
                            "learning-rate schedule")
    # jax.random.key takes a 32-bit seed; larger ones would fail deep inside JAX.
    seed: int = setting(0, integer(0, 2**32 - 1), "random seed: makes a run reproducible")
    target_misfit: float = setting(1.0, number(0, exclusive=True),
                                   "stop when chi^2/N reaches it (discrepancy principle)")
    patience: int | None = setting(None, integer(0),
                                   "steps without improvement (see tolerance) before a member stops; 0 = off "
                                   "(default 3 for levenberg_marquardt, 50 for adam)")
    prior_std: float = setting(50.0, number(0, exclusive=True),
                               "prior scale, kg/m^3 (in the top layer): the value used with prior_scale = \"fixed\", "
                               "the start of the learning otherwise")
    prior_correlation_length: float = setting(0.0, number(0),
                                              "prior correlation length along x and y, m; 0 = independent cells "
                                              "(fixed) or a start of two cells (learned)")
    prior_vertical_correlation_length: float | None = setting(
        None, number(0), "prior correlation length along z, m; default: the horizontal one")
    depth_weighting: float = setting(0.0, number(0),
                                     "prior: Li-Oldenburg depth-weighting exponent beta (prior std grows "
                                     "with depth); 0 = off (fixed) or a start of 1 (learned)")
    prior_scale: str = setting("learned", choice("learned", "hierarchical", "fixed"),
                               "learned: prior std, depth weighting and correlation lengths by evidence "
                               "maximisation, plus per-cell scales when leave-one-out prefers them | "
                               "hierarchical: always add the per-cell scales | fixed: the values given "
                               "(learning needs the dense float64 sensitivity in memory)")
    noise: str = setting("learned", choice("learned", "stated"),
                         "learned: a factor on the stated std and an additive floor (mGal), by evidence "
                         "maximisation with the prior | stated: the std of [data] as it is")
    prior_scale_smoothing: float = setting(1.0, number(0, exclusive=True),
                                           "per-cell prior scales: smoothing of the variance field, in cells")
    tikhonov_depth_weighting: float = setting(1.0, number(0),
                                              "tikhonov: Li-Oldenburg depth-weighting exponent; 0 = off")
    tikhonov_smallness: float = setting(10.0, number(0, exclusive=True),
                                        "tikhonov: weight of smallness relative to smoothness")
    nuts_chains: int = setting(2, integer(1), "NUTS chains (last_layer and mcmc)")
    nuts_warmup: int = setting(500, integer(1), "NUTS warm-up steps per chain (last_layer and mcmc)")
    nuts_samples: int = setting(500, integer(1), "NUTS samples per chain (last_layer and mcmc)")
    mcmc_prior: str = setting("box", choice("box", "mixture", "normal", "truncated"),
                              "mcmc: box (uniform within [model] bounds) | mixture (background + body, truncated "
                              "to [model] bounds) | normal (the shared prior's per-cell std, cells independent) | "
                              "truncated (the shared prior, correlations included, truncated to [model] bounds; "
                              "sampled by exact HMC, not NUTS)")
    mcmc_max_seconds: float = setting(600.0, number(0, exclusive=True),
                                      "mcmc: refuse a run whose estimated time exceeds this, s")
    mcmc_background_std: float = setting(20.0, number(0, exclusive=True),
                                         "mcmc mixture: std of the background component (mean 0), kg/m^3")
    mcmc_body_mean: float = setting(400.0, number(), "mcmc mixture: mean of the body component, kg/m^3")
    mcmc_body_std: float = setting(150.0, number(0, exclusive=True),
                                   "mcmc mixture: std of the body component, kg/m^3")
    mcmc_body_fraction: float = setting(0.1, number(0, exclusive=True),
                                        "mcmc mixture: prior probability that a cell is body, in (0, 1)")
    last_layer_solver: str = setting("auto", choice("auto", "nuts", "closed_form"),
                                     "last_layer: NUTS over weights and hyperparameters, the closed-form "
                                     "Gaussian at evidence-maximising hyperparameters, or auto (NUTS up to "
                                     "128 features)")
    svgd_kernel: str = setting("function", choice("function", "weight"),
                               "SVGD kernel on predicted densities (function) or weights")


