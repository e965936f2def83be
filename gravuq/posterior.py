"""Posterior summaries, scores against a known truth, and the ArviZ InferenceData of a run.

Conventions (SPEC section 1): density contrast in kg/m^3 on ``(nz, ny, nx)`` meshes (flat
vectors in C order), gz in mGal positive downward; probabilities in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

#: The 90 % central interval.
Q_LOW, Q_HIGH = 0.05, 0.95


def chain_diagnostics(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cell of MCMC draws ``(chains, samples, cells)``: rank-normalised split R-hat (NaN with
    one chain), bulk and tail effective sample sizes (ArviZ; Vehtari et al. 2021)."""
    import arviz as az

    posterior = az.convert_to_dataset({"density": draws})
    rhat = az.rhat(posterior, method="rank")["density"].values
    ess_bulk, ess_tail = (az.ess(posterior, method=way)["density"].values for way in ("bulk", "tail"))
    return rhat, ess_bulk, ess_tail


@dataclass(frozen=True)
class Summary:
    """Per-cell posterior summaries, each ``(cells,)``: ``mean``, ``std``, ``q05``, ``q95`` in
    kg/m^3; ``exceedance`` = P(density > threshold); ``resolution`` = 1 - posterior variance /
    prior variance clipped to [0, 1]. ``std``, quantiles, exceedance and resolution are NaN for
    a single deterministic model."""

    mean: np.ndarray
    std: np.ndarray
    q05: np.ndarray
    q95: np.ndarray
    exceedance: np.ndarray
    resolution: np.ndarray


def mask_summary(summary: Summary, active: np.ndarray, drop: bool = False) -> Summary:
    """``summary`` with NaN at the air cells (``active`` False, ``(cells,)``: cells above the
    ground, fixed at zero contrast, hold no posterior); with ``drop`` only the active cells."""
    active = np.asarray(active, bool)
    if drop:
        return Summary(*(np.asarray(getattr(summary, name))[active] for name in _FIELDS))
    return Summary(*(np.where(active, getattr(summary, name), np.nan) for name in _FIELDS))


def summarise_draws(draws: np.ndarray, threshold: float, prior_variance: np.ndarray | None) -> Summary:
    """Summaries from ``(draws, cells)`` posterior draws (kg/m^3).

    ``exceedance`` is the fraction of draws above ``threshold``; ``resolution`` uses the sample
    variance (ddof = 1) against ``prior_variance`` (``(cells,)``, (kg/m^3)^2, measured the same
    way from the method's own prior draws).
    """
    draws = np.asarray(draws, np.float64)
    mean = draws.mean(axis=0)
    if draws.shape[0] < 2:
        nan = np.full_like(mean, np.nan)
        return Summary(mean, nan, nan, nan, nan, nan)
    variance = draws.var(axis=0, ddof=1)
    q05, q95 = np.quantile(draws, [Q_LOW, Q_HIGH], axis=0)
    exceedance = (draws > threshold).mean(axis=0)
    return Summary(mean, np.sqrt(variance), q05, q95, exceedance, _resolution(variance, prior_variance))


_FIELDS = ("mean", "std", "q05", "q95", "exceedance", "resolution")


def summarise_gaussian(mean: np.ndarray, variance: np.ndarray, prior_variance: np.ndarray, threshold: float) -> Summary:
    """Exact summaries of independent Gaussian marginals (kg/m^3, (kg/m^3)^2)."""
    std = np.sqrt(np.maximum(variance, 0.0))
    z = stats.norm.ppf(Q_HIGH)
    safe = np.where(std > 0, std, 1.0)
    exceedance = np.where(std > 0, stats.norm.sf((threshold - mean) / safe), (mean > threshold).astype(float))
    return Summary(mean, std, mean - z * std, mean + z * std, exceedance, _resolution(variance, prior_variance))


def _resolution(variance, prior_variance):
    if prior_variance is None:
        return np.full_like(variance, np.nan)
    prior_variance = np.asarray(prior_variance, np.float64)
    ratio = np.divide(variance, prior_variance, out=np.ones_like(variance), where=prior_variance > 0)
    return np.clip(1.0 - ratio, 0.0, 1.0)


# -- scores against a known truth ------------------------------------------------------------
def crps_ensemble(draws: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """CRPS per cell of an ensemble (kg/m^3): ``E|X - y| - E|X - X'| / 2`` (Gneiting & Raftery
    2007), computed exactly from the sorted draws in O(n log n)."""
    draws = np.sort(np.asarray(draws, np.float64), axis=0)
    n = draws.shape[0]
    first = np.abs(draws - truth[None, :]).mean(axis=0)
    weights = (2 * np.arange(1, n + 1) - n - 1)[:, None]
    spread = 2.0 * (weights * draws).sum(axis=0) / n**2
    return first - 0.5 * spread


def crps_gaussian(mean: np.ndarray, std: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """CRPS per cell of a Gaussian (kg/m^3), closed form (Gneiting & Raftery 2007, eq. 21)."""
    std = np.maximum(std, 1e-12)
    z = (truth - mean) / std
    return std * (z * special.erf(z / np.sqrt(2)) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))


def roc_auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` for the boolean labels ``positive`` (ties count
    one half; the Mann-Whitney statistic). NaN when one class is empty."""
    positive = np.asarray(positive, bool)
    n_pos, n_neg = positive.sum(), (~positive).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = stats.rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def truth_metrics(summary: Summary, truth: np.ndarray, threshold: float, draws: np.ndarray | None = None,
                  gaussian: bool = False) -> dict[str, float]:
    """Scores of a posterior against the true model (all ``(cells,)``, kg/m^3).

    ``model_rmse`` of the mean; ``coverage_90`` the fraction of cells with truth in
    [q05, q95]; ``coverage_90_above_threshold`` the same over the cells whose truth exceeds
    ``threshold`` (the body a drill would target); ``crps`` the mean CRPS over cells
    (Gaussian closed form when ``gaussian``, else from ``draws``); ``exceedance_auc`` the ROC AUC
    of the exceedance probability against truth > threshold.
    """
    truth = np.asarray(truth, np.float64).ravel()
    metrics = {"model_rmse": float(np.sqrt(np.mean((summary.mean - truth) ** 2)))}
    if np.all(np.isnan(summary.std)):
        return metrics
    inside = (truth >= summary.q05) & (truth <= summary.q95)
    body = truth > threshold
    metrics["coverage_90"] = float(inside.mean())
    metrics["coverage_90_above_threshold"] = float(inside[body].mean()) if body.any() else float("nan")
    if gaussian:
        metrics["crps"] = float(crps_gaussian(summary.mean, summary.std, truth).mean())
    elif draws is not None:
        metrics["crps"] = float(crps_ensemble(draws, truth).mean())
    metrics["exceedance_auc"] = roc_auc(summary.exceedance, body)
    return metrics


def data_metrics(predicted: np.ndarray, data: np.ndarray, std: np.ndarray,
                 components: tuple[str, ...] = ("gz",)) -> dict:
    """``chi2_per_datum`` and ``rms_mgal`` of the mean prediction ``(stations,)`` mGal.

    With several measured ``components`` (the data component-major, gz in mGal, gradients in
    Eotvos) ``chi2_per_datum`` is over every datum, ``rms_mgal`` that of the gz block (NaN without
    gz) and ``by_component`` gives each component's ``chi2_per_datum`` and ``rms`` (its unit)."""
    residual = np.asarray(predicted) - np.asarray(data)
    if tuple(components) == ("gz",):
        return {"chi2_per_datum": float(np.mean((residual / std) ** 2)),
                "rms_mgal": float(np.sqrt(np.mean(residual**2)))}
    blocks = np.asarray(residual).reshape(len(components), -1)
    scaled = (np.asarray(residual) / np.asarray(std)).reshape(len(components), -1)
    by_component = {c: {"chi2_per_datum": float(np.mean(scaled[k] ** 2)),
                        "rms": float(np.sqrt(np.mean(blocks[k] ** 2))), "unit": "mGal" if c == "gz" else "E"}
                    for k, c in enumerate(components)}
    return {"chi2_per_datum": float(np.mean(scaled**2)),
            "rms_mgal": by_component["gz"]["rms"] if "gz" in by_component else float("nan"),
            "by_component": by_component}


# -- ArviZ -------------------------------------------------------------------------------------
def inference_data(mesh, survey, draws: np.ndarray, predicted: np.ndarray, method: str, version: str,
                   config_text: str, chains: int = 1):
    """The run's ``arviz.InferenceData``.

    ``draws`` ``(chains * draws, cells)`` kg/m^3 and ``predicted`` ``(chains * draws, stations)``
    mGal (noise-free gz of each draw, regional removed) become ``posterior["density"]`` with
    dims ``(chain, draw, z, y, x)`` and ``posterior_predictive["gz"]`` ``(chain, draw,
    station)``; ``observed_data["gz"]`` the data inverted (regional removed);
    ``constant_data`` station x, y, z (m), std and regional (mGal); ``log_likelihood["gz"]`` the
    Gaussian log density (nats) of each datum under each draw's noise-free prediction and the
    stated std. Attrs: method, gravuq_version, config, and ``draws_note``.

    Ensemble members and SVGD particles are independent draws, not a Markov chain: they are one
    chain of ``members`` draws (NUTS keeps its chains). With one chain ArviZ's ``az.summary``
    logs "Shape validation failed ... (chains=2, draws=4)" and gives r_hat NaN: R-hat compares
    chains and is undefined for one; ``az.summary(idata, kind="stats")`` skips the diagnostics.
    ArviZ's HDI (the narrowest interval) differs from ``summary.nc``'s q05/q95 (the central
    interval of empirical quantiles); with tens of draws both are rough. ``log_likelihood`` is for
    model comparison with MCMC draws (``az.loo``, ``az.waic``); PSIS-LOO assumes posterior draws
    in their thousands, so on an ensemble of tens of members its Pareto k flags every station.
    """
    import arviz as az

    nz, ny, nx = mesh.shape
    total = draws.shape[0]
    per_chain = total // chains
    density = np.asarray(draws, np.float64).reshape(chains, per_chain, nz, ny, nx)
    gz = np.asarray(predicted, np.float64).reshape(chains, per_chain, -1)
    std = np.asarray(survey.std)
    log_likelihood = -0.5 * ((gz - survey.gz) / std) ** 2 - np.log(std * np.sqrt(2 * np.pi))
    # With several components (survey.components) every "station" entry is one datum of the
    # component-major data vector: x, y, z repeat per component, component_index names it.
    components = tuple(getattr(survey, "components", ("gz",)))
    station = np.arange(np.asarray(survey.gz).size)
    repeat = len(components)
    coords = {"z": mesh.centers_z, "y": mesh.centers_y, "x": mesh.centers_x, "station": station}
    dims = {"density": ["z", "y", "x"], "gz": ["station"], "x": ["station"], "y": ["station"],
            "z": ["station"], "std": ["station"], "regional": ["station"], "component_index": ["station"]}
    idata = az.from_dict(
        posterior={"density": density},
        posterior_predictive={"gz": gz},
        log_likelihood={"gz": log_likelihood},
        observed_data={"gz": np.asarray(survey.gz)},
        constant_data={"x": np.tile(np.asarray(survey.x), repeat), "y": np.tile(np.asarray(survey.y), repeat),
                       "z": np.tile(np.asarray(survey.z), repeat), "std": std, "regional": np.asarray(survey.regional),
                       **({"component_index": np.repeat(np.arange(repeat), survey.n_stations)} if repeat > 1 else {})},
        coords=coords, dims=dims,
        attrs={"method": method, "gravuq_version": version, "config": config_text},
    )
    # What `gravuq predict` needs to add the regional trend back at new stations.
    if repeat > 1:
        idata.constant_data.attrs.update(
            components=list(components),
            components_note="each station entry is one datum: component components[component_index] (gz mGal, "
                            "gradients Eotvos, Harmonica's signs) at x, y, z; data component-major")
    idata.constant_data.attrs.update(
        detrend=survey.detrend, trend_coefficients=list(survey.trend_coefficients),
        trend_origin=list(survey.trend_origin),
        trend_note="regional (mGal) = c0 + cx (x - x0) + cy (y - y0); coefficients (c0, cx, cy) in mGal, mGal/m")
    idata.posterior["density"].attrs["units"] = "kg/m^3"
    idata.posterior["density"].attrs["long_name"] = "density contrast"
    idata.posterior_predictive["gz"].attrs["units"] = "mGal, positive downward"
    idata.posterior_predictive["gz"].attrs["long_name"] = "noise-free gz of each draw (regional removed)"
    idata.observed_data["gz"].attrs.update(units="mGal, positive downward", long_name="gz inverted (regional removed)")
    idata.log_likelihood["gz"].attrs.update(
        units="nats (natural log of a density in 1/mGal)",
        long_name="Gaussian log density of each datum under each draw, against the stated std",
        note="for model comparison with MCMC draws (az.loo, az.waic); an ensemble's tens of members are too few "
             "for PSIS-LOO, whose Pareto k then flags every station")
    for name, unit in (("x", "m"), ("y", "m"), ("z", "m, elevation positive up"), ("std", "mGal"),
                       ("regional", "mGal")):
        idata.constant_data[name].attrs["units"] = unit
    chains_note = (f"{chains} MCMC chains" if chains > 1 else
                   f"{total} independent draws as one chain: r_hat is undefined for one chain (ArviZ logs "
                   "'Shape validation failed' and gives NaN); use az.summary(idata, kind='stats')")
    idata.posterior.attrs["draws_note"] = (
        chains_note + "; summary.nc q05/q95 are empirical quantiles (a central 90 % interval), ArviZ's HDI "
        "is the narrowest 90 % interval, so the two differ")
    return idata
