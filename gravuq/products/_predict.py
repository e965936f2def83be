"""Posterior-predictive gz at new stations.

Conventions (SPEC section 1): x, y, z in metres, z elevation positive up; gz in mGal (1 mGal =
1e-5 m/s^2), positive downward, with the regional trend removed before inversion added back.
"""

from __future__ import annotations

import dataclasses
import json
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
    in mGal, positive downward, regional trend included; ``regional`` the trend added (mGal);
    ``gz_obs_std`` the predictive sd of a new *observation* there (mGal): ``gz_std`` combined with
    the noise of a new datum under the run's noise model. Each ``(station,)``. The spread is NaN
    for a single model (no posterior). ``extra`` the input file's other columns, carried along.
    """

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    gz_mean: np.ndarray
    gz_std: np.ndarray
    gz_q05: np.ndarray
    gz_q95: np.ndarray
    regional: np.ndarray
    gz_obs_std: np.ndarray | None = None
    extra: dict[str, list[str]] | None = None
    #: The component predicted: ``"gz"`` (as above), or a gradient one whose values (Eotvos,
    #: Harmonica's signs, no regional) the ``gz_*`` fields then hold; written as ``<component>_*``.
    component: str = "gz"


def noise_model(results: Results) -> dict | None:
    """The run's noise model from its ``metrics.json`` (``{"noise", "scale", "floor_mgal",
    "by_component"}``: a new gz datum with stated std ``s`` mGal has noise
    ``sqrt((scale s)^2 + floor_mgal^2)``, one of component ``c`` that of ``by_component[c]``'s
    ``scale`` and ``floor`` in the component's unit), or None (a deterministic run, or results
    written before it was recorded)."""
    path = Path(results.directory) / "metrics.json"
    try:
        found = json.loads(path.read_text(encoding="utf-8")).get("noise_model")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(found, dict) or not {"scale", "floor_mgal"} <= set(found):
        return None
    return found


def predict(results: Results, stations: np.ndarray, stated_std: np.ndarray | None = None,
            component: str = "gz") -> Prediction:
    """Posterior-predictive gz of the noise-free field at new stations (or of the gradient
    ``component``, ``"gxx"`` ... ``"gzz"``, in Eotvos with Harmonica's signs and no regional).

    Each draw is pushed through the forward operator (:func:`gravuq.forward.make_operator`,
    float64) and the regional trend removed before inversion is added back, so that the numbers
    compare directly with observed data.

    Parameters
    ----------
    results
        From :func:`load_results`.
    stations
        ``(n, 3)`` station coordinates x, y, z in m, z elevation positive up.
    stated_std
        ``(n,)`` the accuracy new observations of ``component`` there would be stated with (mGal
        for gz, Eotvos for gradients), or None: the observation noise is then the learned
        modelling-error floor alone. The noise is the component's own learned factor and floor
        (``gz_obs_std``); NaN for a component the run did not measure (no noise was learned
        for it).

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
    operator = exact_operator(results.mesh, stations, components=(component,))
    draws = results.draws
    gz = np.concatenate([np.asarray(operator.forward(jnp.asarray(draws[start:start + _DRAW_BATCH], jnp.float64)),
                                    np.float64)
                         for start in range(0, draws.shape[0], _DRAW_BATCH)], axis=0)
    regional = results.regional_at(stations[:, 0], stations[:, 1])
    if component != "gz":  # the trend was fitted to gz alone
        regional = np.zeros_like(regional)
    gz = gz + regional[None, :]
    mean = gz.mean(axis=0)
    if gz.shape[0] > 1:
        std = gz.std(axis=0, ddof=1)
        q05, q95 = np.quantile(gz, [Q_LOW, Q_HIGH], axis=0)
    else:
        std = q05 = q95 = np.full_like(mean, np.nan)
    model = noise_model(results)
    if model is None:
        observation_std = np.full_like(mean, np.nan)
    else:
        stated = np.zeros_like(mean) if stated_std is None else np.asarray(stated_std, np.float64).reshape(-1)
        scale, floor = component_noise(model, component)
        observation_std = np.sqrt(std**2 + (scale * stated) ** 2 + floor**2)
    return Prediction(stations[:, 0].copy(), stations[:, 1].copy(), stations[:, 2].copy(), mean, std, q05, q95,
                      regional, observation_std, component=component)


def component_noise(model: dict, component: str) -> tuple[float, float]:
    """``(scale, floor)`` of ``component`` under the run's noise ``model`` (:func:`noise_model`),
    the floor in the component's unit; NaN for a component the run did not measure. Results
    written before the per-component model: the shared scale, gz's floor (none for gradients)."""
    by_component = model.get("by_component")
    if isinstance(by_component, dict):
        entry = by_component.get(component)
        return (float(entry["scale"]), float(entry["floor"])) if entry else (np.nan, np.nan)
    return float(model["scale"]), float(model["floor_mgal"]) if component == "gz" else 0.0


def with_columns(prediction: Prediction, extra: dict[str, list[str]] | None) -> Prediction:
    """``prediction`` carrying the input file's other columns ``extra`` (name -> cells)."""
    return dataclasses.replace(prediction, extra=extra)


def write_predictions(path: str | Path, prediction: Prediction | list[Prediction]) -> Path:
    """Write a :class:`Prediction` as CSV (atomically): the input's other columns as they were
    written (station names...), then x, y, z (m), gz_mean, gz_std, gz_q05, gz_q95 and
    gz_obs_std (mGal, positive downward, regional included), at full float64 precision. A list
    of predictions of several components at the same stations gives those five columns per
    component, named ``<component>_mean`` ... (gradients in Eotvos)."""
    predictions = prediction if isinstance(prediction, list) else [prediction]
    first = predictions[0]
    fields = ("gz_mean", "gz_std", "gz_q05", "gz_q95", "gz_obs_std")
    names = ("x", "y", "z") + tuple(f"{p.component}{field[2:]}" for p in predictions for field in fields)
    extra = {name: cells for name, cells in (first.extra or {}).items() if name not in names}
    columns = [np.asarray(getattr(first, name), np.float64).tolist() for name in ("x", "y", "z")]
    for p in predictions:
        observation = p.gz_obs_std if p.gz_obs_std is not None else np.full_like(p.x, np.nan)
        columns += [np.asarray(getattr(p, field) if field != "gz_obs_std" else observation, np.float64).tolist()
                    for field in fields]
    write_text_atomic(path, csv_text(tuple(extra) + names, list(extra.values()) + columns))
    return Path(path)


__all__ = ["Prediction", "component_noise", "noise_model", "predict", "with_columns", "write_predictions"]
