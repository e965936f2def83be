"""Posterior-predictive gz at new stations.

Conventions (SPEC section 1): x, y, z in metres, z elevation positive up; gz in mGal (1 mGal =
1e-5 m/s^2), positive downward, with the regional trend removed before inversion added back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from ..errors import InputError
from ..forward import exact_operator
from ..io import csv_text, write_text_atomic
from ..posterior import Q_HIGH, Q_LOW
from ._results import Results

#: Draws pushed through the forward operator at once (bounds the memory of a prediction).
_DRAW_BATCH = 128


@dataclass(frozen=True)
class Prediction:
    """Posterior-predictive gz of the noise-free field at stations.

    ``x, y, z`` station coordinates (m, z up); ``gz_mean``, ``gz_std``, ``gz_q05``, ``gz_q95``
    in mGal, positive downward, regional trend included; ``regional`` the trend added (mGal).
    Each ``(station,)``. The spread is NaN for a single model (no posterior).
    """

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    gz_mean: np.ndarray
    gz_std: np.ndarray
    gz_q05: np.ndarray
    gz_q95: np.ndarray
    regional: np.ndarray


def predict(results: Results, stations: np.ndarray) -> Prediction:
    """Posterior-predictive gz of the noise-free field at new stations.

    Each draw is pushed through the forward operator (:func:`gravuq.forward.make_operator`,
    float64) and the regional trend removed before inversion is added back, so that the numbers
    compare directly with observed data.

    Parameters
    ----------
    results
        From :func:`load_results`.
    stations
        ``(n, 3)`` station coordinates x, y, z in m, z elevation positive up.

    Returns
    -------
    Prediction
        Mean, std (ddof = 1, as ``summary.nc``) and the 5 % and 95 % quantiles over draws of gz,
        mGal positive downward. With a single draw (no ``posterior.nc``) std and quantiles are
        NaN.
    """
    stations = np.asarray(stations, np.float64).reshape(-1, 3)
    if stations.shape[0] == 0:
        raise InputError("predict: no stations given")
    operator = exact_operator(results.mesh, stations)
    draws = results.draws
    gz = np.concatenate([np.asarray(operator.forward(jnp.asarray(draws[start:start + _DRAW_BATCH], jnp.float64)),
                                    np.float64)
                         for start in range(0, draws.shape[0], _DRAW_BATCH)], axis=0)
    regional = results.regional_at(stations[:, 0], stations[:, 1])
    gz = gz + regional[None, :]
    mean = gz.mean(axis=0)
    if gz.shape[0] > 1:
        std = gz.std(axis=0, ddof=1)
        q05, q95 = np.quantile(gz, [Q_LOW, Q_HIGH], axis=0)
    else:
        std = q05 = q95 = np.full_like(mean, np.nan)
    return Prediction(stations[:, 0].copy(), stations[:, 1].copy(), stations[:, 2].copy(), mean, std, q05, q95,
                      regional)


def write_predictions(path: str | Path, prediction: Prediction) -> Path:
    """Write a :class:`Prediction` as CSV (atomically): columns x, y, z (m), gz_mean, gz_std,
    gz_q05, gz_q95 (mGal, positive downward, regional included), at full float64 precision."""
    names = ("x", "y", "z", "gz_mean", "gz_std", "gz_q05", "gz_q95")
    columns = [np.asarray(getattr(prediction, name), np.float64).tolist() for name in names]
    write_text_atomic(path, csv_text(names, columns))
    return Path(path)


__all__ = ["Prediction", "predict", "write_predictions"]
