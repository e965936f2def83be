"""``gravuq validate``: check a run's model on stations it did not see.

A random fraction ``holdout`` of the stations (seeded by ``[inference] seed``) is set aside; the
config's method runs on the others exactly as ``gravuq ensemble`` would (its prior and noise
model learned from the kept stations only, the regional trend refitted to them), and the
posterior predicts the held-out observations. A prediction of a new observation has the
spread of the field (the posterior pushed through the physics) plus the noise a new datum has
under the learned noise model at the station's stated accuracy; the scores are the root-mean-
square error (mGal), the coefficient of determination R^2, the fraction of held-out values
inside the 90 % predictive interval (0.90 when calibrated) and the CRPS (mGal, lower is better).

The peer in the same run is Harmonica's ``EquivalentSources`` (point sources below the
stations, the standard interpolator of gravity data), given the same detrended data and
weights ``1 / std^2``, with its source depth and damping chosen by five-fold cross-validation
on the kept stations only. It predicts values, not distributions, so only its RMSE and R^2 are
reported. A 3D model that explains the data should predict unseen stations about as well as
an interpolator built for that alone; one that predicts them worse is missing structure (or
has its noise wrong), and a coverage far from 0.90 says the uncertainty is wrong.

Outputs, in ``<output directory>/validate/``: ``validation.json`` (the scores, the split, the
peer's chosen settings, the times) and ``held_out.csv`` (per held-out station: x, y, z in m;
observed gz, the predictive mean and sd, the peer's prediction, in mGal positive downward with
the regional trend included).

Conventions (SPEC section 1): metres with z up; gz in mGal (1e-5 m/s^2), positive downward.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from scipy import stats

from .config import Config
from .errors import InputError
from .forward import exact_operator
from .inference.empirical_bayes import score_predictive
from .inference.linear_gaussian import gaussian_predictive
from .io import csv_text, mesh_from_config, read_survey, write_text_atomic
from .pipeline import PROBABILISTIC, Log, prepare_survey, quiet, read_truth, recover, warn_outside

__all__ = ["Validation", "equivalent_sources", "split_stations", "validate"]

#: Candidate source depths (multiples of the median distance between nearest kept stations) and
#: dampings of the equivalent-source peer, each pair scored by five-fold cross-validation.
PEER_DEPTH_FACTORS = (1.0, 2.0, 4.0, 8.0, 16.0)
PEER_DAMPINGS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)
PEER_FOLDS = 5


@dataclass(frozen=True)
class Validation:
    """What ``gravuq validate`` found: ``scores`` of gravuq's predictive (``rmse_mgal``, ``r2``,
    ``coverage_90``, ``crps_mgal``, ``log_predictive_density``) and of the peer (``rmse_mgal``,
    ``r2``, or None when Harmonica is not installed), everything else in ``report`` (the dict
    written to validation.json); ``directory`` where the files are."""

    directory: Path
    scores: dict
    peer: dict | None
    report: dict


def split_stations(count: int, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(kept, held)`` station indices (sorted): a random ``holdout`` fraction held out."""
    if not 0.0 < holdout < 1.0:
        raise InputError(f"validate: --holdout must lie strictly between 0 and 1, found {holdout}")
    held_count = int(round(holdout * count))
    if held_count < 1 or count - held_count < 2:
        raise InputError(f"validate: --holdout {holdout} of {count} stations leaves "
                         f"{held_count} to hold out and {count - held_count} to fit; both need stations")
    order = np.random.default_rng(seed).permutation(count)
    return np.sort(order[held_count:]), np.sort(order[:held_count])


def _r2(observed: np.ndarray, predicted: np.ndarray) -> float:
    return float(1.0 - np.sum((observed - predicted) ** 2) / np.sum((observed - observed.mean()) ** 2))


def equivalent_sources(kept: np.ndarray, data: np.ndarray, std: np.ndarray, held: np.ndarray, log: Log = quiet):
    """Harmonica's ``EquivalentSources`` fitted to ``data`` (mGal) at stations ``kept`` ``(n, 3)``
    (weights ``1/std^2``), depth and damping by five-fold cross-validation; returns
    ``(prediction at held (m, 3), {"depth_m", "damping", "cv_r2", "seconds"})``, or None when
    Harmonica is not installed."""
    try:
        import harmonica
        import verde
        from sklearn.model_selection import KFold
    except ImportError:
        log("harmonica is not installed (pip install harmonica): the equivalent-source peer is skipped")
        return None
    started = time.perf_counter()
    from scipy.spatial import cKDTree

    spacing = float(np.median(cKDTree(kept[:, :2]).query(kept[:, :2], k=2)[0][:, 1]))
    coordinates = tuple(np.ascontiguousarray(kept[:, axis]) for axis in range(3))
    weights = 1.0 / std**2
    folds = KFold(n_splits=PEER_FOLDS, shuffle=True, random_state=0)
    best = None
    with warnings.catch_warnings():  # small dampings are ill-conditioned by design: CV judges them
        warnings.simplefilter("ignore")
        for factor in PEER_DEPTH_FACTORS:
            for damping in PEER_DAMPINGS:
                model = harmonica.EquivalentSources(depth=factor * spacing, damping=damping)
                score = float(np.mean(verde.cross_val_score(model, coordinates, data, weights=weights, cv=folds)))
                if best is None or score > best[0]:
                    best = (score, factor * spacing, damping)
    score, depth, damping = best
    model = harmonica.EquivalentSources(depth=depth, damping=damping).fit(coordinates, data, weights=weights)
    prediction = model.predict(tuple(np.ascontiguousarray(held[:, axis]) for axis in range(3)))
    seconds = time.perf_counter() - started
    log(f"equivalent sources (harmonica {harmonica.__version__}): depth {depth:.4g} m, damping {damping:g} "
        f"(cross-validated R^2 {score:.4f}) in {seconds:.1f} s")
    return np.asarray(prediction, np.float64), {"depth_m": depth, "damping": damping, "cv_r2": score,
                                                "seconds": seconds, "version": harmonica.__version__}


def _predictive(setup, recovery, held_stations: np.ndarray):
    """Mean and variance (mGal, mGal^2) of the noise-free field at ``held_stations``, detrended
    as the kept data: exact for ``gaussian``, over the draws otherwise."""
    operator = exact_operator(setup.mesh, held_stations)
    if recovery.method == "gaussian":
        prior, _ = setup.prior()
        held_matrix = np.asarray(operator.dense("float64"), np.float64)
        return gaussian_predictive(setup.dense(), setup.survey.gz, setup.model().noise_std, prior, held_matrix)
    gz = np.asarray(operator.forward(jnp.asarray(recovery.draws, jnp.float64)), np.float64)
    variance = gz.var(axis=0, ddof=1) if gz.shape[0] > 1 else np.zeros(gz.shape[1])
    return gz.mean(axis=0), variance


def validate(config: Config, holdout: float = 0.25, progress=None, log: Log = quiet,
             peer: bool = True) -> Validation:
    """``gravuq validate``: fit without a random ``holdout`` fraction of the stations and score
    the predictions of them (see the module notes). Returns the :class:`Validation` written."""
    if tuple(config.data.components) != ("gz",):
        raise InputError(f"{config.path}: [data] components = {list(config.data.components)}: gravuq validate scores "
                         "held-out gz against Harmonica's equivalent sources, for gz data alone; validate a "
                         'config with components = ["gz"]')
    mesh = mesh_from_config(config.mesh)
    survey = read_survey(config.data)
    warn_outside(mesh, survey.coordinates, survey.source, log)
    kept_rows, held_rows = split_stations(survey.n_stations, holdout, config.inference.seed)
    log(f"validate: holding out {held_rows.size} of {survey.n_stations} stations (seed {config.inference.seed}); "
        f"fitting [inference] method = '{config.inference.method}' on the other {kept_rows.size}")
    kept = survey.subset(kept_rows)
    setup = prepare_survey(config, mesh, kept, read_truth(config, mesh), log)
    started = time.perf_counter()
    recovery = recover(setup, progress=progress, log=log)
    fit_seconds = time.perf_counter() - started
    held_xyz = survey.coordinates[held_rows]
    regional = kept.regional_at(held_xyz[:, 0], held_xyz[:, 1])
    observed = survey.gz_observed[held_rows]
    field_mean, field_variance = _predictive(setup, recovery, held_xyz)
    if recovery.method in PROBABILISTIC:
        noise = setup.model().noise_for(survey.std[held_rows])
    else:
        noise = survey.std[held_rows]
    predictive_std = np.sqrt(field_variance + noise**2)
    mean = field_mean + regional
    scored = score_predictive(mean, predictive_std, observed)
    scores = {**scored.scores(), "r2": _r2(observed, mean)}
    log("gravuq ({}): held-out RMSE {:.4g} mGal, R^2 {:.4f}, 90 % coverage {:.3f}, CRPS {:.4g} mGal".format(
        recovery.method, scores["rmse_mgal"], scores["r2"], scores["coverage_90"], scores["crps_mgal"]))
    peer_prediction, peer_scores, peer_info = None, None, None
    if peer:
        found = equivalent_sources(kept.coordinates, kept.gz, kept.std, held_xyz, log)
        if found is not None:
            peer_prediction, peer_info = found
            peer_prediction = peer_prediction + regional
            peer_scores = {"rmse_mgal": float(np.sqrt(np.mean((observed - peer_prediction) ** 2))),
                           "r2": _r2(observed, peer_prediction)}
            log(f"equivalent sources: held-out RMSE {peer_scores['rmse_mgal']:.4g} mGal, R^2 {peer_scores['r2']:.4f}")
    directory = Path(config.output.directory) / "validate"
    report = {
        "config": str(config.path), "method": recovery.method, "holdout": holdout, "seed": config.inference.seed,
        "stations": int(survey.n_stations), "held_out": int(held_rows.size), "held_out_rows": held_rows.tolist(),
        "gravuq": scores, "gravuq_fit_seconds": fit_seconds,
        "chi2_per_datum_kept": recovery.metrics.get("chi2_per_datum"),
        "noise_model": recovery.metrics.get("noise_model"), "prior": recovery.metrics.get("prior"),
        "equivalent_sources": None if peer_scores is None else {**peer_scores, **peer_info},
        "notes": "gravuq: predictive of a new observation (field spread plus learned noise); coverage of the "
                 f"central 90 % interval (z = {stats.norm.ppf(0.95):.4f}); CRPS of the Gaussian predictive. "
                 "equivalent_sources: harmonica.EquivalentSources, depth and damping by 5-fold CV on the kept "
                 "stations, on the same detrended data.",
    }
    directory.mkdir(parents=True, exist_ok=True)
    write_text_atomic(directory / "validation.json", json.dumps(report, indent=2, allow_nan=False) + "\n")
    names = ["row", "x", "y", "z", "gz_observed", "gz_mean", "gz_obs_std", "gz_equivalent_sources"]
    columns = [held_rows.tolist(), *(held_xyz[:, axis].tolist() for axis in range(3)), observed.tolist(),
               mean.tolist(), predictive_std.tolist(),
               ([float("nan")] * held_rows.size if peer_prediction is None else peer_prediction.tolist())]
    write_text_atomic(directory / "held_out.csv", csv_text(names, columns))
    return Validation(directory, scores, peer_scores, report)
