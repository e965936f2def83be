"""Which config keys each method reads, so that a key a run ignores is named in a warning.

A tikhonov run does not train networks or sample a posterior: ``members`` or ``prior_scale``
in its config change nothing, and a user who set them should be told rather than left to
believe they took effect. The table below mirrors :func:`gravuq.pipeline.method_settings`
(where config sections become method settings); keep the two together.
"""

from __future__ import annotations

import tomllib

from ._checks import _settings

#: ``[inference]`` keys of the shared prior and noise model (the probabilistic methods).
PRIOR_KEYS = frozenset({"prior_std", "prior_correlation_length", "prior_vertical_correlation_length",
                        "depth_weighting", "prior_scale", "prior_scale_smoothing", "noise"})
#: ``[inference]`` keys of network training, by trainer.
TRAINING_KEYS = {"levenberg_marquardt": frozenset({"trainer", "epochs", "patience", "tolerance", "cg_steps"}),
                 "adam": frozenset({"trainer", "epochs", "patience", "tolerance", "learning_rate", "schedule",
                                    "gradient_clip"})}
#: SVGD moves its particles with Adam on the Stein direction, whatever ``trainer`` says, and
#: never stops a particle early.
SVGD_TRAINING = frozenset({"epochs", "learning_rate", "schedule", "gradient_clip"})
#: ``[inference]`` keys of the mcmc method's own prior and budget.
MCMC_KEYS = frozenset({"mcmc_prior", "mcmc_max_seconds", "mcmc_background_std", "mcmc_body_mean", "mcmc_body_std",
                       "mcmc_body_fraction"})
#: Read by every method.
COMMON = frozenset({"method", "seed"})

#: ``[model]`` keys a method reads: all of them for the network methods, the bounds for tikhonov.
MODEL_ALL = "all"


def _inference_keys(method: str, trainer: str, ensemble_mode: str) -> frozenset[str]:
    training = TRAINING_KEYS[trainer]
    if method == "deterministic":
        return COMMON | training | {"target_misfit"}
    if method == "tikhonov":
        return COMMON | {"target_misfit", "tikhonov_depth_weighting", "tikhonov_smallness"}
    if method == "gaussian":
        return COMMON | PRIOR_KEYS | {"members"}
    if method == "ensemble":
        extra = {"warm_start"} if ensemble_mode == "rml" else set()
        return COMMON | PRIOR_KEYS | training | {"ensemble_mode", "members", "target_misfit"} | extra
    if method == "svgd":
        return COMMON | PRIOR_KEYS | SVGD_TRAINING | {"members", "svgd_kernel", "warm_start"}
    if method == "last_layer":
        return COMMON | PRIOR_KEYS | training | {"target_misfit", "last_layer_solver", "nuts_chains", "nuts_warmup",
                                                 "nuts_samples", "members"}
    if method == "mcmc":  # the shared noise model (learned with the prior), the prior too for "normal"
        return COMMON | PRIOR_KEYS | {"nuts_chains", "nuts_warmup", "nuts_samples"} | MCMC_KEYS
    return COMMON


#: ``[model]`` keys of the output head. The networks of rml and prior_function members and of
#: SVGD particles are added to an unbounded prior draw and output a departure in prior sds
#: (a linear head), so these two have no effect there.
HEAD_KEYS = frozenset({"bounds", "head"})


def _model_keys(method: str, ensemble_mode: str) -> str | frozenset[str]:
    if method in ("deterministic", "last_layer") or (method == "ensemble" and ensemble_mode == "init"):
        return MODEL_ALL
    if method in ("ensemble", "svgd"):
        from ._sections import ModelConfig

        return frozenset(key for key in _settings(ModelConfig) if key not in HEAD_KEYS)
    if method in ("tikhonov", "mcmc"):
        return frozenset({"bounds"})
    return frozenset()


def unused_keys(config) -> list[str]:
    """The keys written in ``config``'s file (``[inference]``, ``[model]`` and ``[forward] split``)
    that its method does not read, as ``"[section] key"``, in the order written."""
    try:
        document = tomllib.loads(config.text)
    except tomllib.TOMLDecodeError:  # a Config built in code from text that is not TOML
        return []
    inference = config.inference
    used = _inference_keys(inference.method, inference.trainer, inference.ensemble_mode)
    model_used = _model_keys(inference.method, inference.ensemble_mode)
    unused = [f"[inference] {key}" for key in document.get("inference", {}) if key not in used]
    if model_used != MODEL_ALL:
        unused += [f"[model] {key}" for key in document.get("model", {}) if key not in model_used]
    # Only an ensemble runs with --distributed, the one place the operator's stations are split.
    if inference.method != "ensemble" and "split" in document.get("forward", {}):
        unused.append("[forward] split")
    return unused


def unused_key_warning(config) -> str | None:
    """One warning naming the keys of ``config`` its method ignores, or None when it reads all."""
    unused = unused_keys(config)
    if not unused:
        return None
    inference = config.inference
    method = inference.method
    detail = {"ensemble": f' with ensemble_mode = "{inference.ensemble_mode}" and trainer = "{inference.trainer}"',
              "deterministic": f' with trainer = "{inference.trainer}"',
              "last_layer": f' with trainer = "{inference.trainer}"'}.get(method, "")
    return (f"{config.path}: method = \"{method}\"{detail} does not use {', '.join(unused)}: "
            "they have no effect on this run (see docs/config.md for which methods read each key)")
