"""From a config to results: prepare the data and physics once, dispatch to a method, score it.

config -> mesh and survey -> forward operator -> method -> summaries and metrics. Writing the
files is :mod:`gravuq.outputs`; a whole command with its guards and records is
:mod:`gravuq.runs`. The command line (``cli/``) only parses arguments and formats errors, so the
same run is one function call from Python::

    setup = prepare(load_config("config.toml"))
    recovery = recover(setup)

Config sections become method settings here and nowhere else (:func:`method_settings`).
Conventions (SPEC section 1): metres with z up; density contrast kg/m^3; gz mGal positive down.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from . import sizes
from .config import Config, unused_key_warning
from .constants import COMPONENT_UNITS
from .errors import InputError
from .forward import (
    MemoryBudget,
    MemoryEstimate,
    active_cell_operator,
    dense_float64_bytes,
    estimate_memory,
    make_operator,
    split_operator,
    split_plan,
    split_record,
)
from .inference import METHODS, Hooks, InverseProblem, MethodResult, PriorSettings
from .inference.deterministic import DeterministicSettings
from .inference.ensemble import EnsembleSettings
from .inference.gaussian import GaussianSettings
from .inference.last_layer import LastLayerSettings
from .inference.mcmc_method import McmcSettings, check_budget
from .inference.prior_settings import ProbabilisticModel, build_model, describe_noise
from .inference.svgd import SvgdSettings
from .inference.tikhonov import TikhonovSettings
from .inference.training import TrainingSettings
from .inputs import Log, check_terrain, quiet, read_truth, warn_outside
from .io import mesh_from_config, read_survey
from .mesh import TensorMesh
from .model import Normaliser
from .posterior import Summary, data_metrics, mask_summary, summarise_draws, summarise_gaussian, truth_metrics
from .survey import Survey

#: The methods that sample a posterior: they share the learned prior and noise model.
PROBABILISTIC = ("gaussian", "ensemble", "svgd", "last_layer", "mcmc")


@dataclass(frozen=True, eq=False)
class Setup:
    """Everything a method needs, built once from a config.

    ``coordinates`` are the cell centres in the network's normalised frame (float32);
    ``truth`` the known model (kg/m^3, ``(nz, ny, nx)``) when the config has ``[truth]``;
    ``budget`` the memory every large allocation is checked against. ``cache`` holds what is
    built lazily (the dense float64 sensitivity, learned priors); ``dataclasses.replace`` copies
    share it, so ``gravuq compare`` builds each at most once for all its methods.
    """

    config: Config
    mesh: TensorMesh
    survey: Survey
    operator: object
    estimate: MemoryEstimate
    budget: MemoryBudget
    normaliser: Normaliser
    coordinates: jnp.ndarray
    truth: np.ndarray | None
    cache: dict = field(default_factory=dict, repr=False)
    log: Callable[[str], None] = field(default=quiet, repr=False)

    @property
    def output_directory(self) -> Path:
        return Path(self.config.output.directory)

    def dense_bytes(self) -> float:
        """Bytes of the float64 sensitivity with the exact methods' station-system work (one row
        per datum: stations times components)."""
        return dense_float64_bytes(self.survey.n_data, self.mesh.n_cells) + 8.0 * self.survey.n_data \
            * self.mesh.n_cells

    @property
    def split(self) -> dict | None:
        """What this process holds of an operator split by stations over several processes
        (``[forward] split``, :func:`gravuq.forward.split_record`), or None when it holds it whole."""
        return split_record(self.operator)

    def dense_fits(self) -> bool:
        return self.split is None and ("dense" in self.cache or self.budget.fits(self.dense_bytes()))

    def dense(self, purpose: str = "this run") -> np.ndarray:
        """The float64 sensitivity ``(stations, cells)`` (mGal per kg/m^3), built once, after the
        memory budget allows it (an :class:`InputError` naming ``purpose`` otherwise)."""
        if "dense" not in self.cache:
            if self.split is not None:
                raise InputError(f"{self.config.path}: {purpose} needs the whole dense float64 sensitivity, but "
                                 f"[forward] split spreads its stations over {self.split['devices']} devices (each "
                                 "process holds only its rows); use a prior that works matrix-free, or set "
                                 "[forward] split = 'none' where the whole operator fits one process")
            self.budget.require(self.dense_bytes(), f"{self.config.path}: {purpose}",
                                "use a method or prior that works matrix-free, or a coarser [mesh]",
                                item="the dense float64 sensitivity: ")
            self.log(f"building the dense float64 sensitivity ({self.survey.n_data} x {self.mesh.n_cells}, "
                     f"{8.0 * self.survey.n_data * self.mesh.n_cells / 1024**3:.3g} GiB) for {purpose}")
            self.cache["dense"] = np.asarray(self.operator.dense("float64"), np.float64)
        return self.cache["dense"]

    def float64_operator(self):
        """The forward operator in float64 (the configured one when it is float64), matrix-free
        or FFT: for learning the prior where the dense matrix does not fit."""
        if self.config.forward.dtype == "float64":
            return self.operator
        if "operator64" not in self.cache:
            forward = self.config.forward
            mode = "fft" if self.operator.kind == "fft" else "matrix_free"
            operator64, _ = make_operator(self.mesh, self.survey.coordinates, mode, "float64",
                                          forward.chunk_size, self.budget.limit_bytes, self.survey.components)
            self.cache["operator64"] = active_cell_operator(operator64, self.mesh)
        return self.cache["operator64"]

    def model(self) -> ProbabilisticModel:
        """The prior and noise model of ``[inference]``, built or learned once per settings."""
        settings = prior_settings(self.config)
        key = ("model", settings)
        if key not in self.cache:
            purpose = (f"[inference] prior_scale = '{settings.scale}'" if settings.scale != "fixed"
                       else "[inference] noise = 'learned'")
            if settings.learns and not self.dense_fits():
                if settings.scale == "hierarchical":
                    self.dense(purpose)  # per-cell scales need the matrix: raises with the sizes
                self.cache[key] = build_model(settings, self.mesh, self.survey.gz, self.survey.std, None, self.log,
                                              operator=self.float64_operator)
            else:
                self.cache[key] = build_model(settings, self.mesh, self.survey.gz, self.survey.std,
                                              lambda: self.dense(purpose), self.log)
            if settings.noise == "learned":
                self.log(f"learned noise model: {describe_noise(self.cache[key], settings.components)}")
        return self.cache[key]

    def prior(self):
        """``(GaussianPrior, description for metrics.json)`` of ``[inference]``."""
        model = self.model()
        return model.prior, model.info

    def problem(self, method: str) -> InverseProblem:
        """The :class:`InverseProblem` a method is given: the probabilistic methods fit the data
        with the learned noise model (when ``[inference] noise = "learned"``), the others with
        the stated std."""
        std = self.model().noise_std if method in PROBABILISTIC else self.survey.std
        return InverseProblem(self.operator, self.mesh, self.coordinates, np.asarray(self.survey.gz),
                              np.asarray(std), lambda: self.dense(f"[inference] method = '{method}'"),
                              self.dense_fits, self.prior)


def prepare(config: Config, log: Log = quiet, processes=None) -> Setup:
    """Read mesh, stations and truth, and build the forward operator (printing its memory);
    ``processes`` (:class:`gravuq.distributed.Processes`): see :func:`prepare_survey`."""
    mesh = mesh_from_config(config.mesh)
    survey = read_survey(config.data)
    warn_outside(mesh, survey.coordinates, survey.source, log)
    check_terrain(config, mesh, survey.coordinates, survey.source, log)
    truth = read_truth(config, mesh)
    # After the inputs are read: a bad file's error stays the one line a failed run prints.
    unused = unused_key_warning(config)
    if unused:
        log(f"warning: {unused}")
    return prepare_survey(config, mesh, survey, truth, log, processes)


def prepare_survey(config: Config, mesh: TensorMesh, survey: Survey, truth: np.ndarray | None,
                   log: Log = quiet, processes=None) -> Setup:
    """The :class:`Setup` of ``survey`` on ``mesh`` (its forward operator built), for surveys
    read otherwise than by ``[data]`` (a held-out split). With ``processes`` (one of several
    processes of a ``--distributed`` run) the operator's stations are split over the devices of
    all of them as ``[forward] split`` says (:func:`gravuq.forward.split_plan`): each process
    then builds and holds only its block of rows, and the memory limit is checked against that share."""
    stations = survey.coordinates
    forward = config.forward
    budget = MemoryBudget.from_gb(forward.memory_limit_gb)
    model = sizes.with_table_size(config.model, mesh.n_cells)
    if model != config.model:  # the default table size, now that the mesh is known
        config = dataclasses.replace(config, model=model)
        if config.inference.method in sizes.NETWORK_METHODS:
            low, high = sizes.TABLE_SIZE_RANGE
            log(f"hash tables: {model.hash_table_size} entries a level (the smallest power of two at least the "
                f"{mesh.n_cells} cells, within {low}..{high}; [model] hash_table_size sets it)")
    log(f"building the forward operator: {survey.n_stations} stations, {mesh.n_cells} cells")
    if forward.split == "stations" and processes is None:
        raise InputError("[forward] split = 'stations' splits the operator's stations over the processes of "
                         "gravuq ensemble --distributed; run with --distributed, or set split = 'auto' or 'none'")
    plan = None if processes is None else split_plan(mesh, stations, forward.mode, forward.dtype, forward.chunk_size,
                                                     budget.limit_bytes, survey.components, forward.split,
                                                     processes.devices, processes.local_devices)
    if plan is None:
        operator, estimate = make_operator(mesh, stations, forward.mode, forward.dtype, forward.chunk_size,
                                           budget.limit_bytes, survey.components)  # several: rows component-major
        log(f"forward operator: {type(operator).__name__}; {estimate.describe()}")
    else:
        operator = split_operator(mesh, stations, plan, forward.dtype, forward.chunk_size, budget.limit_bytes,
                                  survey.components)
        estimate = estimate_memory(mesh, survey.n_stations, forward.dtype, forward.chunk_size, budget.limit_bytes,
                                   stations, len(survey.components))
        log(f"forward operator: {operator.describe()}; whole: {estimate.describe()}")
    operator = active_cell_operator(operator, mesh)  # air cells (above [mesh] topography) never reach the data
    normaliser = Normaliser.for_mesh(mesh)
    return Setup(config, mesh, survey, operator, estimate, budget, normaliser, normaliser(mesh.cell_centers), truth,
                 log=log)


def timed(function, *args, **kwargs):
    """``(result, seconds)`` of one call, wall clock."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


# -- config -> settings, in one place ----------------------------------------------------------
def prior_settings(config: Config) -> PriorSettings:
    """The shared prior of ``[inference]``."""
    inference = config.inference
    return PriorSettings(std=inference.prior_std, correlation_length=inference.prior_correlation_length,
                         depth_exponent=inference.depth_weighting, scale=inference.prior_scale,
                         smoothing=inference.prior_scale_smoothing, noise=inference.noise,
                         vertical_correlation_length=inference.prior_vertical_correlation_length,
                         components=tuple(config.data.components))


def training_settings(config: Config, member_batch: int | None = None) -> TrainingSettings:
    """How networks are trained, from ``[inference]`` (``member_batch``: see
    :func:`gravuq.sizes.member_batch`)."""
    inference = config.inference
    return TrainingSettings(trainer=inference.trainer, epochs=inference.trainer_setting("epochs"),
                            learning_rate=inference.learning_rate, schedule=inference.schedule,
                            gradient_clip=inference.gradient_clip, patience=inference.trainer_setting("patience"),
                            tolerance=inference.trainer_setting("tolerance"), cg_steps=inference.cg_steps,
                            member_batch=member_batch)


def method_settings(config: Config, method: str, member_batch: int | None = None):
    """The settings object of ``method`` from the config's ``[model]`` and ``[inference]``."""
    inference, model = config.inference, config.model
    training = training_settings(config, member_batch)
    if method == "deterministic":
        return DeterministicSettings(model, training, inference.target_misfit)
    if method == "tikhonov":
        return TikhonovSettings(inference.target_misfit, inference.tikhonov_depth_weighting,
                                inference.tikhonov_smallness, model.bounds)
    if method == "gaussian":
        return GaussianSettings(inference.members)
    if method == "ensemble":
        return EnsembleSettings(inference.ensemble_mode, inference.members, model, training, inference.target_misfit,
                                inference.warm_start)
    if method == "svgd":
        return SvgdSettings(inference.members, inference.svgd_kernel, model, training, inference.warm_start)
    if method == "last_layer":
        return LastLayerSettings(model, training, inference.target_misfit, inference.prior_std,
                                 inference.last_layer_solver, inference.nuts_chains, inference.nuts_warmup,
                                 inference.nuts_samples, inference.members)
    if method == "mcmc":
        return mcmc_settings(config)
    raise InputError(f"{config.path}: [inference] method = '{method}' is not available in this version "
                     f"(available: {', '.join(METHODS)})")


def check_run_sizes(setup: Setup) -> None:
    """Refuse, before any work, a run whose sizes cannot fit in memory
    (:func:`gravuq.sizes.check_sizes`) or, for ``method = "mcmc"``, in its time budget (estimated
    before the prior is learned or the matrix built), and, with an operator split by stations
    over processes (its share already checked when it was built), one that needs the whole dense
    sensitivity; :class:`InputError` naming the key."""
    config, cells, data = setup.config, setup.mesh.n_cells, setup.survey.n_data
    sizes.check_sizes(config, cells, data, setup.budget)
    inference = config.inference
    if setup.split is not None:  # what needs the whole dense sensitivity, which no process then holds
        needs = [key for key, asked in (("prior_scale = 'hierarchical'", inference.prior_scale == "hierarchical"),
                                        ("warm_start = true", inference.warm_start and inference.ensemble_mode == "rml"))
                 if asked]
        if needs:
            raise InputError(f"{config.path}: [inference] {needs[0]} needs the whole dense float64 sensitivity, but "
                             f"[forward] split spreads the operator's stations over {setup.split['devices']} devices "
                             "(each process holds only its rows); use prior_scale = 'learned' (matrix-free "
                             "evidence) or 'fixed' and warm_start = false, or set [forward] split = 'none' where the "
                             "whole operator fits one process")
    if config.inference.method == "mcmc":
        check_budget(mcmc_settings(config), cells, data)


def mcmc_settings(config: Config) -> McmcSettings:
    """The mcmc method's settings: its prior within ``[model] bounds`` (kg/m^3), NUTS sizes, budget."""
    inference = config.inference
    return McmcSettings(inference.mcmc_prior, config.model.bounds, inference.nuts_chains, inference.nuts_warmup,
                        inference.nuts_samples, inference.mcmc_max_seconds, inference.mcmc_background_std,
                        inference.mcmc_body_mean, inference.mcmc_body_std, inference.mcmc_body_fraction,
                        str(config.path))


# -- recoveries --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Recovery:
    """What a method found, scored, before it is written.

    ``result`` the method's :class:`~gravuq.inference.MethodResult` (draws ``(draws, cells)``
    kg/m^3, training record, chains, exact moments); ``predicted`` ``(draws, stations)`` mGal;
    ``summary`` per-cell summaries; ``metrics`` the numbers of metrics.json; ``mean_prediction``
    ``(stations,)`` mGal, the data of the mean model (computed with the others: an operator split
    over processes cannot be applied by process 0 alone while it writes).
    """

    method: str
    result: MethodResult
    predicted: np.ndarray
    summary: Summary
    metrics: dict
    mean_prediction: np.ndarray

    @property
    def draws(self) -> np.ndarray:
        return self.result.draws

    @property
    def exact(self) -> bool:
        """Whether the summaries come from exact posterior moments rather than the draws."""
        return self.result.moments is not None


def summarise(result: MethodResult, threshold: float) -> Summary:
    """Per-cell summaries: from exact moments when the method has them, else from its draws."""
    if result.moments is not None:
        mean, variance = result.moments
        return summarise_gaussian(mean, variance, result.prior_variance, threshold)
    return summarise_draws(result.draws, threshold, result.prior_variance)


def score(setup: Setup, method: str, result: MethodResult, runtime: float, noise_std=None) -> Recovery:
    """The recovery's summaries and metrics: the data fit of the mean model and of each member
    (against the stated std; the mean's also against ``noise_std``, the noise model the method
    fitted with, as ``chi2_per_datum_learned``), and with ``[truth]`` the scores against it."""
    survey, threshold = setup.survey, setup.config.output.threshold
    active = setup.mesh.active.ravel() if setup.mesh.has_topography else None
    if active is not None:
        result = fix_air(result, active)
    summary = summarise(result, threshold)
    if active is not None:
        summary = mask_summary(summary, active)
    draws = result.draws
    predicted = np.asarray(setup.operator.forward(jnp.asarray(draws, jnp.float64)), np.float64)
    mean_prediction = np.asarray(setup.operator.forward(jnp.asarray(np.nan_to_num(summary.mean), jnp.float64)),
                                 np.float64)
    metrics = {"method": method, **data_metrics(mean_prediction, survey.gz, survey.std, survey.components),
               "runtime_s": float(runtime),
               "members": int(draws.shape[0]), **result.info}
    if noise_std is not None and not np.array_equal(np.asarray(noise_std), survey.std):
        metrics["chi2_per_datum_learned"] = float(np.mean(((mean_prediction - survey.gz) / noise_std) ** 2))
    if draws.shape[0] > 1:
        member_chi2 = np.mean(((predicted - survey.gz) / survey.std) ** 2, axis=1)
        metrics.update(members_chi2_min=float(member_chi2.min()), members_chi2_max=float(member_chi2.max()),
                       members_chi2_mean=float(member_chi2.mean()))
        if "chi2_per_datum_learned" in metrics:
            learned = np.mean(((predicted - survey.gz) / noise_std) ** 2, axis=1)
            metrics.update(members_chi2_learned_min=float(learned.min()),
                           members_chi2_learned_max=float(learned.max()),
                           members_chi2_learned_mean=float(learned.mean()))
    if setup.truth is not None and active is not None:  # scored on the active cells only
        metrics.update(truth_metrics(mask_summary(summary, active, drop=True), setup.truth.ravel()[active], threshold,
                                     draws[:, active], result.moments is not None))
        metrics["active_cells"] = int(active.sum())
    elif setup.truth is not None:
        metrics.update(truth_metrics(summary, setup.truth.ravel(), threshold, draws, result.moments is not None))
    return Recovery(method, result, predicted, summary, metrics, mean_prediction)


def fix_air(result: MethodResult, active: np.ndarray) -> MethodResult:
    """``result`` with the air cells (``active`` False, ``(cells,)``) at their fixed value: zero
    density contrast in every draw and in the exact mean, zero posterior variance, and no prior
    variance (NaN). The active cells are untouched (the data never saw the air cells)."""
    air = ~np.asarray(active, bool)
    draws = np.array(result.draws, np.float64, copy=True)
    draws[:, air] = 0.0
    moments = None
    if result.moments is not None:
        mean, variance = (np.array(a, np.float64, copy=True) for a in result.moments)
        mean[air], variance[air] = 0.0, 0.0
        moments = (mean, variance)
    prior_variance = None
    if result.prior_variance is not None:
        prior_variance = np.array(result.prior_variance, np.float64, copy=True)
        prior_variance[air] = np.nan
    return dataclasses.replace(result, draws=draws, moments=moments, prior_variance=prior_variance)


def recover(setup: Setup, method: str | None = None, progress=None, checkpoint=None, log: Log = quiet) -> Recovery:
    """Run ``method`` (default: ``[inference] method``) on a prepared setup; ``progress`` makes
    progress bars, ``checkpoint`` (a :class:`gravuq.io.Checkpointer`) saves and resumes the
    training of network methods."""
    method = method or setup.config.inference.method
    batch = sizes.member_batch(setup.config, setup.mesh.n_cells, setup.survey.n_data, setup.budget, method)
    if batch is not None:
        log(f"training {batch} of the {setup.config.inference.members} members at a time: the activations of all "
            f"of them would not fit in the memory allowed ({setup.budget.source})")
    settings = method_settings(setup.config, method, batch)
    hooks = Hooks(progress=progress, checkpoint=checkpoint, log=log)
    key = jax.random.key(setup.config.inference.seed)
    problem = setup.problem(method)
    result, runtime = timed(METHODS[method].run, problem, settings, key, hooks)
    recovery = score(setup, method, result, runtime, problem.std)
    if setup.split is not None:
        recovery.metrics["operator_split"] = setup.split
    if method in PROBABILISTIC:
        recovery.metrics["noise_model"] = noise_model(setup)
    return recovery


def noise_model(setup: Setup) -> dict:
    """The noise a new observation with stated std ``s`` has under the run's model, for
    metrics.json and ``gravuq predict``: std ``sqrt((scale * s)^2 + floor^2)``. ``by_component``
    gives each measured component's ``scale`` and ``floor`` (in its ``unit``: mGal for gz,
    Eotvos for gradients); ``scale`` and ``floor_mgal`` are gz's (the first component's scale
    and no floor when gz is not measured)."""
    model = setup.model()
    components = tuple(setup.survey.components)
    scales = model.component_scales or (model.noise_scale,)
    floors = model.component_floors or (model.noise_floor,)
    by_component = {name: {"scale": float(scale), "floor": float(floor), "unit": COMPONENT_UNITS[name]}
                    for name, scale, floor in zip(components, scales, floors)}
    main = by_component.get("gz", {"scale": float(scales[0]), "floor": 0.0})
    return {"noise": prior_settings(setup.config).noise, "scale": main["scale"], "floor_mgal": main["floor"],
            "by_component": by_component}


__all__ = ["Log", "Recovery", "Setup", "check_run_sizes", "check_terrain", "fix_air", "mcmc_settings", "method_settings", "noise_model",
           "prepare", "prepare_survey",
           "prior_settings", "quiet", "read_truth", "recover", "score", "summarise", "timed", "training_settings",
           "warn_outside"]
