"""Writing a recovery: the files of SPEC section 4 (``summary.nc``, ``posterior.nc``,
``metrics.json``) and the figures.

Conventions (SPEC section 1): density contrast in kg/m^3 on ``(z, y, x)``, gz in mGal positive
down, probabilities in [0, 1]. Nothing here looks at which method ran: it writes what the
:class:`~gravuq.pipeline.Recovery` holds (draws, summaries, training record, metrics).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import __version__
from .io import atomic_path, metrics_json, model_dataset, write_netcdf, write_text_atomic
from .pipeline import Log, Recovery, Setup, quiet
from .posterior import inference_data


def summary_variables(recovery: Recovery) -> dict[str, np.ndarray]:
    """The ``summary.nc`` variables: mean, std, q05, q95 (kg/m^3), exceedance, resolution, and
    ``prior_std`` (kg/m^3, the prior sd per cell that resolution compares against) where the
    method has a prior."""
    summary = recovery.summary
    variables = {"mean": summary.mean, "std": summary.std, "q05": summary.q05, "q95": summary.q95,
                 "exceedance": summary.exceedance, "resolution": summary.resolution}
    prior_std = prior_sd(recovery)
    if prior_std is not None:
        variables["prior_std"] = prior_std
    return variables


def prior_sd(recovery: Recovery) -> np.ndarray | None:
    """The prior sd per cell (kg/m^3, ``(cells,)``), or None for a method without a prior."""
    variance = recovery.result.prior_variance
    return None if variance is None else np.sqrt(np.maximum(np.asarray(variance, np.float64), 0.0))


def write_figures(setup: Setup, recovery: Recovery, directory: Path) -> None:
    """The PNG figures of a recovery (see :mod:`gravuq.io.plots`)."""
    from .io import plots

    config, mesh, summary = setup.config, setup.mesh, recovery.summary
    name, truth = recovery.method, setup.truth
    if truth is not None and mesh.has_topography:  # air cells are masked (NaN) in every figure
        truth = np.where(mesh.active, np.asarray(truth, np.float64).reshape(mesh.shape), np.nan)
    threshold = config.output.threshold
    # One cut for section.png and comparison_sections.png: the strongest true anomaly, else mean.
    _, j, i = plots.strongest_cell(mesh, summary.mean if truth is None else truth)
    plots.depth_slices(directory / "mean_slices.png", mesh, summary.mean, "contrast", f"{name}: mean density contrast",
                       scale_with=truth, outline=truth, outline_level=threshold)
    mean_prediction = recovery.mean_prediction
    plots.data_maps(directory / "data_residuals.png", setup.survey, mean_prediction, setup.survey.components[0])
    for component in setup.survey.components[1:]:  # several measured components: one figure each
        plots.data_maps(directory / f"data_residuals_{component}.png", setup.survey, mean_prediction, component)
    probabilistic = not np.all(np.isnan(summary.std))
    plots.section_with_band(directory / "section.png", mesh, summary.mean, summary.q05 if probabilistic else None,
                            summary.q95 if probabilistic else None, truth,
                            f"{name}: section through the strongest anomaly", threshold, (j, i))
    if probabilistic:
        # Exact moments need no caveat; otherwise each map says what its number of draws allows.
        draws = None if recovery.exact else int(recovery.draws.shape[0])
        prior_std = prior_sd(recovery)
        unresolved = None if prior_std is None else summary.std >= plots.unresolved_ratio(draws) * prior_std
        plots.depth_slices(directory / "std_slices.png", mesh, summary.std, "std", f"{name}: posterior std",
                           unresolved=unresolved, draws=draws, note=plots.monte_carlo_note("std", draws))
        plots.depth_slices(directory / "exceedance_slices.png", mesh, summary.exceedance, "probability",
                           f"{name}: P(density > {threshold:g} kg/m$^3$)", draws=draws,
                           outline=truth, outline_level=threshold,
                           note=plots.monte_carlo_note("probability", draws))
        plots.drilling_map(directory / "drilling_map.png", mesh, summary.exceedance, threshold, draws,
                           plots.monte_carlo_note("probability", draws))
        if not np.all(np.isnan(summary.resolution)):
            plots.resolution_depth(directory / "resolution_depth.png", mesh, summary.resolution, summary.std,
                                   prior_std, draws)
    training = recovery.result.training
    if training is not None and training.history.size:
        plots.training_curve(directory / "training_curve.png", training.history, training.target,
                             training.kept_epochs, training.kept, str(recovery.metrics.get("trainer", "")))
    if truth is not None:
        plots.depth_slices(directory / "truth_slices.png", mesh, truth, "contrast", "true density contrast",
                           scale_with=summary.mean, outline=truth, outline_level=threshold)


def write_outputs(setup: Setup, recovery: Recovery, directory: Path | None = None, posterior: bool = True,
                  log: Log = quiet) -> Path:
    """Write SPEC section 4's files for ``recovery`` into ``directory`` (default ``[output]``)."""
    config = setup.config
    directory = Path(directory or config.output.directory)
    directory.mkdir(parents=True, exist_ok=True)
    formats = set(config.output.formats)
    survey = setup.survey
    attrs = {"threshold": float(config.output.threshold), "method": recovery.method, "detrend": survey.detrend,
             "trend_coefficients": list(survey.trend_coefficients), "trend_origin": list(survey.trend_origin)}
    if "netcdf" in formats:
        write_netcdf(directory / "summary.nc", model_dataset(setup.mesh, summary_variables(recovery), attrs,
                                                             {"exceedance": "1", "resolution": "1"}))
        if posterior and recovery.draws.shape[0] > 1:
            idata = inference_data(setup.mesh, survey, recovery.draws, recovery.predicted, recovery.method,
                                   __version__, config.text, recovery.result.chains)
            with atomic_path(directory / "posterior.nc") as tmp:
                idata.to_netcdf(str(tmp), engine="h5netcdf")
    if "png" in formats:
        write_figures(setup, recovery, directory)
    write_text_atomic(directory / "metrics.json", metrics_json(recovery.metrics))
    log(f"wrote {directory}")
    return directory


__all__ = ["summary_variables", "write_figures", "write_outputs"]
