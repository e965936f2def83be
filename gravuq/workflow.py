"""From a config to results: the stages every command shares.

config -> mesh and survey -> forward operator -> method -> posterior summaries -> files. The
command line (``cli/``) only parses arguments and formats errors; everything it runs is here, so
the same run is one function call from Python.

Conventions (SPEC section 1): metres with z up; density contrast kg/m^3; gz mGal positive down.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .config import Config
from .constants import GRAVITY_UNITS_TO_MGAL
from .errors import InputError
from .forward import MemoryEstimate, estimate_memory, make_operator
from .io import read_model
from .mesh import TensorMesh, mesh_from_config
from .model import Normaliser
from .survey import Survey, read_station_table, read_survey, station_std, write_stations_csv

Log = Callable[[str], None]


def _quiet(message: str) -> None:
    return None


@dataclass(frozen=True, eq=False)
class Setup:
    """Everything a method needs, built once from a config.

    ``coordinates`` are the cell centres in the network's normalised frame (float32);
    ``truth`` the known model (kg/m^3, ``(nz, ny, nx)``) when the config has ``[truth]``.
    """

    config: Config
    mesh: TensorMesh
    survey: Survey
    operator: object
    estimate: MemoryEstimate
    normaliser: Normaliser
    coordinates: jnp.ndarray
    truth: np.ndarray | None

    @property
    def output_directory(self) -> Path:
        return Path(self.config.output.directory)


def _stations(survey: Survey) -> np.ndarray:
    return np.stack([survey.x, survey.y, survey.z], axis=1)


def _warn_outside(mesh: TensorMesh, stations: np.ndarray, source: str, log: Log) -> None:
    west, east, south, north, _, _ = mesh.bounds
    outside = (stations[:, 0] < west) | (stations[:, 0] > east) | (stations[:, 1] < south) | (stations[:, 1] > north)
    if outside.any():
        log(f"warning: {source}: {int(outside.sum())} of {len(stations)} stations lie outside the mesh's "
            f"horizontal extent (x {west:.6g}..{east:.6g} m, y {south:.6g}..{north:.6g} m); "
            "their anomaly sources may be missing from the model")


def read_truth(config: Config, mesh: TensorMesh) -> np.ndarray | None:
    """The ``[truth]`` model on ``mesh`` (kg/m^3, ``(nz, ny, nx)``), or None."""
    if config.truth is None:
        return None
    return read_model(config.truth.path, mesh, config.truth.variable, config.truth.units)


def prepare(config: Config, log: Log = _quiet) -> Setup:
    """Read mesh, stations and truth, and build the forward operator (printing its memory)."""
    mesh = mesh_from_config(config.mesh)
    survey = read_survey(config.data)
    stations = _stations(survey)
    _warn_outside(mesh, stations, survey.source, log)
    truth = read_truth(config, mesh)
    forward = config.forward
    limit = None if forward.memory_limit_gb is None else int(forward.memory_limit_gb * 1024**3)
    operator, estimate = make_operator(mesh, stations, forward.mode, forward.dtype, forward.chunk_size, limit)
    log(f"{survey.n_stations} stations, {mesh.n_cells} cells; {type(operator).__name__}: {estimate.describe()}")
    normaliser = Normaliser.for_mesh(mesh)
    return Setup(config, mesh, survey, operator, estimate, normaliser, normaliser(mesh.cell_centers), truth)


def forward_stations(config: Config, output: Path | None = None, noise: bool = False, log: Log = _quiet) -> Path:
    """``gravuq forward``: gz of ``[truth]`` at the stations of ``[data] path``; writes a CSV.

    Only x, y, z are read from the station file. The CSV has columns x, y, z (m), gz and std in
    the config's ``[data] units`` (so the same config reads it back), gz positive downward.
    With ``noise``, iid Gaussian noise of that std is added, drawn from ``[inference] seed``.
    The std is the file's std column if it has one, else ``[data] std``, plus
    ``std_relative * |gz|`` of the noise-free gz.
    """
    if config.truth is None:
        raise InputError(f"{config.path}: [truth]: gravuq forward needs a [truth] section with the model's path")
    data = config.data
    table = read_station_table(data, need_gz=False)
    stations = np.stack([table.x, table.y, table.z], axis=1)
    mesh = mesh_from_config(config.mesh)
    _warn_outside(mesh, stations, table.source, log)
    truth = read_truth(config, mesh)
    # Synthetic data are made with the exact float64 rows (dense, or matrix-free when asked or
    # when dense does not fit), never the FFT path: the file must not change with the choice.
    estimate = estimate_memory(mesh, len(stations), "float64", config.forward.chunk_size)
    dense_fits = estimate.dense_bytes <= estimate.limit_bytes
    mode = "dense" if config.forward.mode != "matrix_free" and dense_fits else "matrix_free"
    operator, _ = make_operator(mesh, stations, mode, "float64", config.forward.chunk_size)
    gz = np.asarray(operator.forward(jnp.asarray(truth.ravel(), jnp.float64)))
    to_mgal = GRAVITY_UNITS_TO_MGAL[data.units]
    std = station_std(data, table.std, gz)
    if noise:
        if not np.all(std > 0):
            raise InputError(f"{config.path}: [data]: --noise needs a std > 0 at every station; set [data] std")
        from .synthetic import gaussian_noise
        gz = gz + gaussian_noise(jax.random.key(config.inference.seed), std)
    output = Path(output) if output is not None else Path(config.output.directory) / "forward.csv"
    write_stations_csv(output, table.x, table.y, table.z, gz / to_mgal, std / to_mgal)
    log(f"wrote {output}")
    return output


def timed(function, *args, **kwargs):
    """``(result, seconds)`` of one call, wall clock."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


# -- recoveries --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Recovery:
    """What a method found, before it is written.

    ``draws`` ``(draws, cells)`` kg/m^3 (one row for a deterministic model); ``predicted``
    ``(draws, stations)`` mGal; ``summary`` per-cell summaries; ``metrics`` the numbers of
    metrics.json; ``history`` chi^2/N per epoch per member (or None); ``chains`` how many
    chains the draws hold (NUTS keeps its chains; ensembles are one chain).
    """

    method: str
    draws: np.ndarray
    predicted: np.ndarray
    summary: object
    metrics: dict
    history: np.ndarray | None = None
    chains: int = 1
    gaussian: bool = False


def _epoch_progress(reporter_progress, total: int, description: str):
    """A ``progress(epochs_done, state)`` callback that moves a bar, or None."""
    if reporter_progress is None:
        return None, None
    from .inference._engine import misfit_summary

    bar = reporter_progress(total, description)
    last = [0]

    def update(done: int, state) -> None:
        bar.update(done - last[0])
        last[0] = done
        bar.set_postfix_str(misfit_summary(state))

    return update, bar


def _finish(setup: Setup, method: str, draws: np.ndarray, summary, runtime: float, extra: dict,
            history=None, chains: int = 1, gaussian: bool = False) -> Recovery:
    from .posterior import data_metrics, truth_metrics

    survey = setup.survey
    predicted = np.asarray(setup.operator.forward(jnp.asarray(draws, jnp.float64)), np.float64)
    mean_prediction = np.asarray(setup.operator.forward(jnp.asarray(summary.mean, jnp.float64)), np.float64)
    metrics = {"method": method, **data_metrics(mean_prediction, survey.gz, survey.std),
               "runtime_s": float(runtime), "members": int(draws.shape[0]), **extra}
    if draws.shape[0] > 1:
        member_chi2 = np.mean(((predicted - survey.gz) / survey.std) ** 2, axis=1)
        metrics.update(members_chi2_min=float(member_chi2.min()), members_chi2_max=float(member_chi2.max()),
                       members_chi2_mean=float(member_chi2.mean()))
    if setup.truth is not None:
        metrics.update(truth_metrics(summary, setup.truth.ravel(), setup.config.output.threshold, draws, gaussian))
    return Recovery(method, draws, predicted, summary, metrics, history, chains, gaussian)


def run_deterministic(setup: Setup, progress=None, checkpoint=None) -> Recovery:
    """One INR trained through the forward operator to chi^2/N = target (the seed method)."""
    from .inference._members import train_members
    from .posterior import summarise_draws

    config = setup.config
    start = time.perf_counter()
    update, bar = _epoch_progress(progress, config.inference.epochs, "deterministic INR")
    fit = train_members(setup.operator, setup.coordinates, setup.survey.gz, setup.survey.std, config.model,
                        config.inference, jax.random.key(config.inference.seed), 1,
                        target_misfit=config.inference.target_misfit, progress=update, checkpoint=checkpoint)
    if bar is not None:
        bar.close()
    if fit.density.shape[0] == 0:
        raise RuntimeError("the network diverged (non-finite loss); lower [inference] learning_rate")
    summary = summarise_draws(fit.density, config.output.threshold, None)
    extra = {"epochs": fit.epochs, "parameter_count": fit.parameter_count, "encoding": config.model.encoding}
    return _finish(setup, "deterministic", fit.density, summary, time.perf_counter() - start, extra, fit.history)


def run_tikhonov(setup: Setup, progress=None, checkpoint=None) -> Recovery:
    """Smooth depth-weighted least squares at chi^2/N = target (Li & Oldenburg 1998)."""
    from .inference.tikhonov import tikhonov
    from .posterior import summarise_draws

    config = setup.config
    start = time.perf_counter()
    inference = config.inference
    result = tikhonov(setup.operator, setup.mesh, setup.survey.gz, setup.survey.std, inference.target_misfit,
                      inference.tikhonov_depth_weighting, inference.tikhonov_smallness, bounds=config.model.bounds)
    summary = summarise_draws(result.density[None, :], config.output.threshold, None)
    extra = {"beta": result.beta, "solves": result.solves}
    return _finish(setup, "tikhonov", result.density[None, :], summary, time.perf_counter() - start, extra)


def _dense_float64_fits(setup: Setup) -> tuple[bool, float, float]:
    """Whether the dense float64 sensitivity and its station system fit in 40 % of the available
    memory: (fits, bytes needed, bytes allowed)."""
    from .forward._operator import available_memory_bytes

    n_stations, n_cells = setup.survey.gz.size, setup.mesh.n_cells
    needed = 8.0 * (3 * n_stations * n_cells + 2 * n_stations**2)
    limit = 0.4 * available_memory_bytes()
    return needed <= limit, needed, limit


def _exact_rml(setup: Setup, prior, anchors: np.ndarray, targets: np.ndarray) -> np.ndarray | None:
    """The exact linear-Gaussian randomised-MAP solutions (kg/m^3) for ``anchors`` and ``targets``
    (mGal) when the dense float64 sensitivity fits in memory, else None: the members' warm start."""
    if not _dense_float64_fits(setup)[0]:
        return None
    from .forward import sensitivity_matrix
    from .inference.gaussian import rml_solutions

    matrix = sensitivity_matrix(setup.mesh, _stations(setup.survey), dtype="float64")
    return rml_solutions(matrix, setup.survey.std, prior, anchors, targets)


#: The last learned prior, with the mesh and survey objects and settings it was learned for:
#: ``gravuq compare`` runs several methods on one prepared setup, and learning costs minutes
#: on a CPU for a few thousand stations.
_LEARNED_PRIOR: dict = {}


def _prior(setup: Setup):
    """The Gaussian prior of ``[inference]`` and a description of it for metrics.json.

    ``prior_scale = "hierarchical"`` learns per-cell scales from the data
    (``inference._hierarchical``); it needs the dense float64 sensitivity and its station system
    in 40 % of the available memory, and says so (exit code 2) when they do not fit.
    """
    from .forward import sensitivity_matrix
    from .inference._hierarchical import hierarchical_prior
    from .inference._prior import prior_from_config

    config = setup.config
    inference = config.inference
    if inference.prior_scale == "fixed":
        return prior_from_config(setup.mesh, inference), {"prior_scale": "fixed"}
    settings = (inference.prior_std, inference.prior_correlation_length, inference.depth_weighting,
                inference.prior_scale_smoothing)
    cached = _LEARNED_PRIOR.get("entry")
    if cached is not None and cached[0] is setup.mesh and cached[1] is setup.survey and cached[2] == settings:
        return cached[3], cached[4]
    fits, needed, limit = _dense_float64_fits(setup)
    if not fits:
        gib = 1024.0**3
        raise InputError(f"{config.path}: [inference] prior_scale = 'hierarchical' needs the dense float64 "
                         f"sensitivity ({needed / gib:.3g} GiB, more than the {limit / gib:.3g} GiB available); "
                         "use prior_scale = 'fixed'")
    matrix = sensitivity_matrix(setup.mesh, _stations(setup.survey), dtype="float64")
    prior, report = hierarchical_prior(matrix, setup.survey.gz, setup.survey.std, setup.mesh, inference.prior_std,
                                       inference.prior_correlation_length, inference.depth_weighting,
                                       inference.prior_scale_smoothing)
    _LEARNED_PRIOR["entry"] = (setup.mesh, setup.survey, settings, prior, report.as_dict())
    return prior, report.as_dict()


def run_gaussian(setup: Setup, progress=None, checkpoint=None) -> Recovery:
    """The exact linear-Gaussian posterior (prior from ``[inference]``), ``members`` draws."""
    from .forward import sensitivity_matrix
    from .inference.gaussian import gaussian_posterior
    from .posterior import summarise_gaussian

    config = setup.config
    start = time.perf_counter()
    matrix = sensitivity_matrix(setup.mesh, _stations(setup.survey), dtype="float64")
    prior, prior_info = _prior(setup)
    posterior = gaussian_posterior(matrix, setup.survey.gz, setup.survey.std, prior,
                                   jax.random.key(config.inference.seed), config.inference.members)
    summary = summarise_gaussian(posterior.mean, posterior.variance, posterior.prior_variance, config.output.threshold)
    return _finish(setup, "gaussian", posterior.draws, summary, time.perf_counter() - start, {"prior": prior_info},
                   gaussian=True)


def run_ensemble(setup: Setup, progress=None, checkpoint=None) -> Recovery:
    """A deep ensemble of INRs, by ``[inference] ensemble_mode``:

    - ``"rml"``, randomised MAP (Pearce et al. 2020; Bardsley et al. 2014): member ``k``
      minimises ``|(G m_k - d - e_k) / sigma|^2 + |C^(-1/2) (m_k - a_k)|^2`` with its own noise
      draw ``e_k`` and its own prior draw ``a_k`` (the Gaussian prior of ``[inference]``), which
      for a linear problem makes ``m_k`` an exact posterior draw. The network represents the
      departure from the anchor, ``m_k = a_k + f_k``: the departure lies in the smooth range of
      ``C G^T`` (Matheron's rule), which a network can represent, whereas the rough anchor itself
      cannot be (a network asked to represent all of ``m_k`` loses most of the anchor's spread
      and under-covers).
    - ``"prior_function"``: the same ``m_k = a_k + f_k`` without the anchor penalty, the network
      stopped at the target misfit (randomised prior functions, Osband et al. 2018).
    - ``"init"``: random initialisations only, fitting the same data to the target misfit (the
      seed paper's ensemble, kept for comparison; it is known to under-cover).
    """
    from .inference._members import train_members
    from .posterior import summarise_draws
    from .synthetic import gaussian_noise

    config = setup.config
    inference = config.inference
    members = inference.members
    start = time.perf_counter()
    key = jax.random.key(inference.seed)
    init_key, anchor_key, noise_key = jax.random.split(key, 3)
    survey = setup.survey
    update, bar = _epoch_progress(progress, inference.epochs, f"ensemble ({inference.ensemble_mode}, {members} members)")
    prior_info, scale, model = None, None, config.model
    if inference.ensemble_mode in ("rml", "prior_function"):
        prior, prior_info = _prior(setup)
        # Whitened parametrisation: the network outputs the departure from the anchor in units
        # of the prior's standard deviation, so cells whose prior scales differ a hundredfold
        # train alike. The anchors are unbounded Gaussian draws, so no bounded head either.
        scale = np.asarray(prior.std).ravel()
        model = dataclasses.replace(config.model, head="linear", bounds=(-1.0, 1.0))
    if inference.ensemble_mode == "rml":
        anchors = np.asarray(prior.sample(anchor_key, members))
        perturbed = survey.gz[None, :] + np.stack([gaussian_noise(k, survey.std) for k in jax.random.split(noise_key, members)])
        fit = train_members(setup.operator, setup.coordinates, survey.gz, survey.std, model, inference,
                            init_key, members, data_per_member=perturbed, anchor=anchors, prior=prior,
                            offset=anchors, scale=scale, target_misfit=None, progress=update, checkpoint=checkpoint,
                            warm_start=_exact_rml(setup, prior, anchors, perturbed))
        prior_variance = np.asarray(prior.variance())
    elif inference.ensemble_mode == "prior_function":
        anchors = np.asarray(prior.sample(anchor_key, members))
        perturbed = survey.gz[None, :] + np.stack([gaussian_noise(k, survey.std) for k in jax.random.split(noise_key, members)])
        fit = train_members(setup.operator, setup.coordinates, survey.gz, survey.std, model, inference,
                            init_key, members, data_per_member=perturbed, offset=anchors, scale=scale,
                            target_misfit=inference.target_misfit, progress=update, checkpoint=checkpoint)
        prior_variance = np.asarray(prior.variance())
    else:
        fit = train_members(setup.operator, setup.coordinates, survey.gz, survey.std, config.model, inference,
                            init_key, members, target_misfit=inference.target_misfit, progress=update,
                            checkpoint=checkpoint)
        prior_variance = fit.initial_density.var(axis=0, ddof=1) if fit.initial_density.shape[0] > 1 else None
    if bar is not None:
        bar.close()
    if fit.density.shape[0] == 0:
        raise RuntimeError("every ensemble member diverged (non-finite loss); lower [inference] learning_rate")
    summary = summarise_draws(fit.density, config.output.threshold, prior_variance)
    extra = {"ensemble_mode": inference.ensemble_mode, "epochs": fit.epochs, "parameter_count": fit.parameter_count,
             "diverged_members": fit.diverged, "encoding": config.model.encoding}
    if prior_info is not None:
        extra["prior"] = prior_info
    return _finish(setup, "ensemble", fit.density, summary, time.perf_counter() - start, extra, fit.history)


def run_svgd(setup: Setup, progress=None, checkpoint=None) -> Recovery:
    """Stein variational gradient descent over ``members`` INR particles (Liu & Wang 2016).

    The particles move along the Stein direction of the same posterior that ``rml`` samples
    (Gaussian likelihood of the observed data, the Gaussian prior of ``[inference]`` on the
    density at the cells), with an RBF kernel and the median bandwidth, on the density fields
    (``svgd_kernel = "function"``) or the weights (``"weight"``). As in ``rml`` the networks
    output density in units of the prior's standard deviation; where the dense float64
    sensitivity fits in memory the particles start from exact linear-Gaussian posterior draws
    (Matheron's rule; networks fitted to them cell by cell), so SVGD refines a good start
    rather than spending its epochs on the badly conditioned approach to the posterior.
    """
    from .inference._members import train_members
    from .inference._stein import SteinKernel
    from .posterior import summarise_draws
    from .synthetic import gaussian_noise

    config = setup.config
    inference = config.inference
    members = inference.members
    start = time.perf_counter()
    prior, prior_info = _prior(setup)
    survey = setup.survey
    init_key, start_key, noise_key = jax.random.split(jax.random.key(inference.seed), 3)
    starts = np.asarray(prior.sample(start_key, members))
    perturbed = survey.gz[None, :] + np.stack([gaussian_noise(k, survey.std) for k in jax.random.split(noise_key, members)])
    model = dataclasses.replace(config.model, head="linear", bounds=(-1.0, 1.0))
    update, bar = _epoch_progress(progress, inference.epochs, f"SVGD ({inference.svgd_kernel} kernel, {members} particles)")
    fit = train_members(setup.operator, setup.coordinates, survey.gz, survey.std, model, inference,
                        init_key, members, anchor=np.zeros((members, setup.mesh.n_cells)), prior=prior,
                        scale=np.asarray(prior.std).ravel(), target_misfit=None, progress=update,
                        checkpoint=checkpoint, stein=SteinKernel(inference.svgd_kernel),
                        warm_start=_exact_rml(setup, prior, starts, perturbed))
    if bar is not None:
        bar.close()
    if fit.density.shape[0] == 0:
        raise RuntimeError("every SVGD particle diverged (non-finite loss); lower [inference] learning_rate")
    summary = summarise_draws(fit.density, config.output.threshold, np.asarray(prior.variance()))
    extra = {"svgd_kernel": inference.svgd_kernel, "epochs": fit.epochs, "parameter_count": fit.parameter_count,
             "diverged_members": fit.diverged, "encoding": config.model.encoding, "prior": prior_info}
    return _finish(setup, "svgd", fit.density, summary, time.perf_counter() - start, extra, fit.history)


#: At most this many draws per chain are kept in the outputs (NUTS chains are thinned to it).
MAX_DRAWS_PER_CHAIN = 250


def run_last_layer(setup: Setup, progress=None, checkpoint=None) -> Recovery:
    """A Bayesian last layer over a trained INR's features (see ``inference.last_layer``)."""
    import dataclasses

    import equinox as eqx

    from .inference import last_layer
    from .inference._members import train_members
    from .posterior import summarise_draws

    config = setup.config
    inference = config.inference
    start = time.perf_counter()
    model_settings = dataclasses.replace(config.model, head="linear")
    update, bar = _epoch_progress(progress, inference.epochs, "last layer: training the INR")
    key = jax.random.key(inference.seed)
    train_key, sample_key, prior_key = jax.random.split(key, 3)
    survey = setup.survey
    fit = train_members(setup.operator, setup.coordinates, survey.gz, survey.std, model_settings, inference,
                        train_key, 1, target_misfit=inference.target_misfit, progress=update, checkpoint=checkpoint)
    if bar is not None:
        bar.close()
    if fit.density.shape[0] == 0:
        raise RuntimeError("the network diverged (non-finite loss); lower [inference] learning_rate")
    network = eqx.combine(jax.tree.map(lambda leaf: leaf[0], fit.params), fit.static)
    features = np.asarray(jax.vmap(network.features)(setup.coordinates), np.float64)
    problem = last_layer.last_layer_problem(setup.operator, features, survey.gz, survey.std, config.model.bounds,
                                            inference.prior_std)
    solver = inference.last_layer_solver
    if solver == "auto":
        solver = "nuts" if problem.design.shape[1] <= 128 else "closed_form"
    chains = 1
    if solver == "nuts":
        weights, info = last_layer.nuts(problem, sample_key, inference.nuts_chains, inference.nuts_warmup,
                                        inference.nuts_samples, progress=progress is not None)
        chains = weights.shape[0]
        step = max(1, -(-weights.shape[1] // MAX_DRAWS_PER_CHAIN))
        weights = weights[:, ::step].reshape(-1, weights.shape[-1])
    else:
        weights, info = last_layer.closed_form(problem, sample_key, inference.members)
    draws = problem.density(weights)
    prior_variance = last_layer.prior_density_variance(problem, prior_key)
    summary = summarise_draws(draws, config.output.threshold, prior_variance)
    extra = {**info, "features": int(problem.design.shape[1]), "epochs": fit.epochs,
             "parameter_count": fit.parameter_count, "encoding": config.model.encoding}
    return _finish(setup, "last_layer", draws, summary, time.perf_counter() - start, extra, fit.history, chains)


METHODS = {"deterministic": run_deterministic, "tikhonov": run_tikhonov, "gaussian": run_gaussian,
           "ensemble": run_ensemble, "svgd": run_svgd, "last_layer": run_last_layer}


def recover(setup: Setup, method: str | None = None, progress=None, checkpoint=None) -> Recovery:
    """Run ``method`` (default: ``[inference] method``) on a prepared setup; ``checkpoint`` (a
    :class:`gravuq.io.Checkpointer`) saves and resumes the training of network methods."""
    method = method or setup.config.inference.method
    if method not in METHODS:
        raise InputError(f"{setup.config.path}: [inference] method = '{method}' is not available in this version "
                         f"(available: {', '.join(METHODS)})")
    return METHODS[method](setup, progress, checkpoint)


# -- outputs -----------------------------------------------------------------------------------
def write_outputs(setup: Setup, recovery: Recovery, directory: Path | None = None, posterior: bool = True,
                  log: Log = _quiet) -> Path:
    """Write SPEC section 4's files for ``recovery`` into ``directory`` (default ``[output]``)."""
    import json

    from . import __version__
    from .io import model_dataset, plots, write_netcdf, write_text_atomic
    from .posterior import inference_data

    config = setup.config
    directory = Path(directory or config.output.directory)
    directory.mkdir(parents=True, exist_ok=True)
    mesh, summary = setup.mesh, recovery.summary
    formats = set(config.output.formats)
    survey = setup.survey
    attrs = {"threshold": float(config.output.threshold), "method": recovery.method, "detrend": survey.detrend,
             "trend_coefficients": list(survey.trend_coefficients), "trend_origin": list(survey.trend_origin)}
    variables = {"mean": summary.mean, "std": summary.std, "q05": summary.q05, "q95": summary.q95,
                 "exceedance": summary.exceedance, "resolution": summary.resolution}
    units = {"exceedance": "1", "resolution": "1"}
    if "netcdf" in formats:
        write_netcdf(directory / "summary.nc", model_dataset(mesh, variables, attrs, units))
        if posterior and recovery.draws.shape[0] > 1:
            idata = inference_data(mesh, setup.survey, recovery.draws, recovery.predicted, recovery.method,
                                   __version__, config.text, recovery.chains)
            from .io import atomic_path

            with atomic_path(directory / "posterior.nc") as tmp:
                idata.to_netcdf(str(tmp), engine="h5netcdf")
    if "png" in formats:
        truth = setup.truth
        plots.depth_slices(directory / "mean_slices.png", mesh, summary.mean, "contrast", f"{recovery.method}: mean density contrast")
        mean_prediction = np.asarray(setup.operator.forward(jnp.asarray(summary.mean, jnp.float64)))
        plots.data_maps(directory / "data_residuals.png", setup.survey, mean_prediction)
        probabilistic = not np.all(np.isnan(summary.std))
        plots.section_with_band(directory / "section.png", mesh, summary.mean, summary.q05 if probabilistic else None,
                                summary.q95 if probabilistic else None, truth, f"{recovery.method}: section through the strongest anomaly")
        if probabilistic:
            plots.depth_slices(directory / "std_slices.png", mesh, summary.std, "std", f"{recovery.method}: posterior std")
            plots.depth_slices(directory / "exceedance_slices.png", mesh, summary.exceedance, "probability",
                               f"{recovery.method}: P(density > {config.output.threshold:g} kg/m$^3$)")
            plots.drilling_map(directory / "drilling_map.png", mesh, summary.exceedance, config.output.threshold)
            if not np.all(np.isnan(summary.resolution)):
                plots.resolution_depth(directory / "resolution_depth.png", mesh, summary.resolution)
        if recovery.history is not None and recovery.history.size:
            target = config.inference.target_misfit if recovery.metrics.get("ensemble_mode") != "rml" else None
            plots.training_curve(directory / "training_curve.png", recovery.history, target)
        if truth is not None:
            plots.depth_slices(directory / "truth_slices.png", mesh, truth, "contrast", "true density contrast")
    write_text_atomic(directory / "metrics.json", json.dumps(recovery.metrics, indent=2, sort_keys=True) + "\n")
    log(f"wrote {directory}")
    return directory


# -- a whole command, with its guards and records ----------------------------------------------
def _versions() -> dict:
    import platform
    from importlib import metadata

    from . import __version__

    versions = {"gravuq": __version__, "python": platform.python_version()}
    for name in ("jax", "jaxlib", "equinox", "optax", "numpyro", "arviz", "numpy", "xarray"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def _write_run_record(directory: Path, record: dict) -> None:
    import json

    from .io import write_text_atomic

    write_text_atomic(directory / "run.json", json.dumps(record, indent=2, sort_keys=True) + "\n")


def guard_output_directory(config: Config, force: bool = False) -> Path:
    """Refuse to overwrite results of a different config unless ``force``.

    The folder's ``run.json`` records the config hash of the run that wrote it; the same config
    may overwrite its own results (a rerun), another may not.
    """
    import json

    directory = Path(config.output.directory)
    record = directory / "run.json"
    if record.exists() and not force:
        try:
            previous = json.loads(record.read_text()).get("config_hash")
        except (OSError, ValueError):
            previous = None
        if previous != config.hash:
            raise InputError(f"{directory}: holds the results of a different config (see its run.json); "
                             "use --force to overwrite them, or set [output] directory to another folder")
    return directory


def run_command(config: Config, command: str, allowed: tuple[str, ...], progress=None, log: Log = _quiet,
                resume: bool = False, force: bool = False, checkpoint_every: int = 50) -> Recovery:
    """``gravuq invert``/``ensemble``: guard the output folder, prepare, recover (with
    checkpoints under ``<output>/checkpoint``), write the outputs and ``run.json`` last.

    ``run.json`` records the status (running, interrupted, complete), versions, the config hash
    and path, the seed and timings: what is needed to reproduce the run.
    """
    from .io import Checkpointer

    method = config.inference.method
    if method not in allowed:
        raise InputError(f"{config.path}: [inference] method = '{method}': gravuq {command} runs "
                         f"{' or '.join(repr(m) for m in allowed)}")
    if command == "ensemble" and config.inference.members < 2:
        raise InputError(f"{config.path}: [inference] members: expected at least 2 for a posterior, "
                         f"found {config.inference.members}")
    directory = guard_output_directory(config, force or resume)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    setup, prepare_s = timed(prepare, config, log)
    record = {"command": command, "method": method, "config_hash": config.hash, "config_path": str(config.path),
              "seed": config.inference.seed, "versions": _versions(), "started_at": started, "status": "running"}
    directory.mkdir(parents=True, exist_ok=True)
    _write_run_record(directory, record)
    checkpoint = Checkpointer(directory / "checkpoint", config.hash, checkpoint_every, resume)
    try:
        recovery, recover_s = timed(recover, setup, method, progress, checkpoint)
    except KeyboardInterrupt:
        _write_run_record(directory, {**record, "status": "interrupted",
                                      "resume": f"gravuq {command} {config.path} --resume"})
        raise
    _, write_s = timed(write_outputs, setup, recovery, None, True, log)
    _write_run_record(directory, {**record, "status": "complete", "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                  "timings_s": {"prepare": prepare_s, "recover": recover_s, "write": write_s}})
    return recovery
