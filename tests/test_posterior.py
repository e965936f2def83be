"""Posterior summaries and scores against exact answers: the CRPS against its defining integral
and double sum, the ROC AUC against hand counts, Gaussian summaries against scipy, and the
run's InferenceData layout.

Conventions (SPEC section 1): densities in kg/m^3 as flat ``(cells,)`` vectors (C order of
``(nz, ny, nx)``); gz in mGal; probabilities in [0, 1].
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from gravuq.mesh import TensorMesh
from gravuq.posterior import (
    Q_HIGH,
    Q_LOW,
    Summary,
    crps_ensemble,
    crps_gaussian,
    data_metrics,
    inference_data,
    roc_auc,
    summarise_draws,
    summarise_gaussian,
    truth_metrics,
)
from gravuq.survey import Survey


# -- CRPS ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("members", [1, 2, 7, 40])
def test_crps_ensemble_equals_the_double_sum(members):
    rng = np.random.default_rng(members)
    draws = rng.normal(50.0, 80.0, (members, 13))
    truth = rng.normal(0.0, 100.0, 13)
    # Ties are where the sorted formula could slip: repeat a draw and put the truth on one.
    if members > 2:
        draws[1] = draws[0]
        truth[0] = draws[2, 0]
    first = np.abs(draws - truth).mean(axis=0)
    spread = np.abs(draws[:, None, :] - draws[None, :, :]).mean(axis=(0, 1))
    np.testing.assert_allclose(crps_ensemble(draws, truth), first - 0.5 * spread, rtol=1e-12, atol=1e-9)


def test_crps_ensemble_of_one_draw_is_the_absolute_error():
    draws = np.array([[3.0, -2.0, 10.0]])
    np.testing.assert_allclose(crps_ensemble(draws, np.array([1.0, -2.0, 0.0])), [2.0, 0.0, 10.0])


def _crps_by_integration(mean: float, std: float, truth: float) -> float:
    """int (F(x) - 1{x >= y})^2 dx, split at the jump y."""
    below, _ = integrate.quad(lambda x: stats.norm.cdf(x, mean, std) ** 2, -np.inf, truth, epsabs=1e-11)
    above, _ = integrate.quad(lambda x: stats.norm.sf(x, mean, std) ** 2, truth, np.inf, epsabs=1e-11)
    return below + above


@pytest.mark.parametrize("mean, std, truth", [
    (0.0, 1.0, 0.0), (0.0, 1.0, 2.5), (120.0, 35.0, 80.0), (-300.0, 200.0, 400.0), (5.0, 0.1, 5.03),
])
def test_crps_gaussian_matches_numerical_integration(mean, std, truth):
    closed = float(crps_gaussian(np.array([mean]), np.array([std]), np.array([truth]))[0])
    assert closed == pytest.approx(_crps_by_integration(mean, std, truth), rel=1e-6, abs=1e-9)


def test_crps_gaussian_of_a_point_mass_is_the_absolute_error():
    np.testing.assert_allclose(crps_gaussian(np.array([2.0, -1.0]), np.array([0.0, 0.0]), np.array([5.0, -1.0])),
                               [3.0, 0.0], atol=1e-9)


def test_crps_of_a_large_ensemble_approaches_the_gaussian_closed_form():
    rng = np.random.default_rng(11)
    mean = np.array([0.0, 100.0, -250.0, 40.0])
    std = np.array([1.0, 50.0, 120.0, 10.0])
    truth = np.array([0.3, 180.0, -250.0, -5.0])
    draws = rng.normal(mean, std, (20000, 4))
    np.testing.assert_allclose(crps_ensemble(draws, truth), crps_gaussian(mean, std, truth), rtol=0.02)


# -- ROC AUC -------------------------------------------------------------------------------------
def test_roc_auc_of_separated_reversed_and_constant_scores():
    positive = np.array([False, False, True, False, True, True])
    score = np.where(positive, 0.9, 0.1) + np.arange(6) * 1e-3
    assert roc_auc(score, positive) == 1.0
    assert roc_auc(-score, positive) == 0.0
    assert roc_auc(np.full(6, 0.4), positive) == 0.5


def test_roc_auc_counts_ties_as_one_half():
    score = np.array([0.1, 0.4, 0.4, 0.8, 0.4, 0.0])
    positive = np.array([False, True, False, True, False, True])
    # Positives {0.4, 0.8, 0.0} against negatives {0.1, 0.4, 0.4}:
    # 0.4 beats 0.1 and ties twice (1 + 0.5 + 0.5); 0.8 beats all three (3); 0.0 beats none (0).
    assert roc_auc(score, positive) == pytest.approx(5.0 / 9.0, abs=1e-12)


def test_roc_auc_is_nan_when_a_class_is_empty():
    assert np.isnan(roc_auc(np.array([0.2, 0.7]), np.array([True, True])))
    assert np.isnan(roc_auc(np.array([0.2, 0.7]), np.array([False, False])))


# -- summaries -----------------------------------------------------------------------------------
def test_summarise_draws_is_consistent():
    rng = np.random.default_rng(3)
    cells = 60
    draws = rng.normal(rng.uniform(-300, 300, cells), rng.uniform(5, 150, cells), (80, cells))
    prior_variance = np.full(cells, 100.0**2)
    prior_variance[:5] = 1.0  # posterior wider than the prior: resolution clipped to 0
    summary = summarise_draws(draws, 150.0, prior_variance)
    for name in ("mean", "std", "q05", "q95", "exceedance", "resolution"):
        assert getattr(summary, name).shape == (cells,)
    np.testing.assert_allclose(summary.mean, draws.mean(axis=0))
    np.testing.assert_allclose(summary.std, draws.std(axis=0, ddof=1))
    np.testing.assert_allclose(summary.exceedance, (draws > 150.0).mean(axis=0))
    np.testing.assert_allclose(summary.q05, np.quantile(draws, Q_LOW, axis=0))
    np.testing.assert_allclose(summary.q95, np.quantile(draws, Q_HIGH, axis=0))
    assert np.all((summary.exceedance >= 0) & (summary.exceedance <= 1))
    assert np.all((summary.resolution >= 0) & (summary.resolution <= 1))
    assert np.all(summary.q05 <= np.median(draws, axis=0)) and np.all(np.median(draws, axis=0) <= summary.q95)
    assert np.all(summary.q05 <= summary.mean) and np.all(summary.mean <= summary.q95)
    np.testing.assert_array_equal(summary.resolution[:5], 0.0)
    expected = np.clip(1.0 - draws.var(axis=0, ddof=1)[5:] / 100.0**2, 0.0, 1.0)
    np.testing.assert_allclose(summary.resolution[5:], expected)
    assert np.any((summary.resolution > 0) & (summary.resolution < 1))  # not only the clipped ends


def test_summarise_draws_without_prior_variance_has_nan_resolution():
    summary = summarise_draws(np.random.default_rng(0).normal(size=(5, 4)), 0.0, None)
    assert np.all(np.isnan(summary.resolution))
    assert np.all(np.isfinite(summary.std))


def test_summarise_a_single_draw_gives_nan_spread():
    draw = np.array([[10.0, 250.0, -40.0]])
    summary = summarise_draws(draw, 200.0, np.full(3, 1e4))
    np.testing.assert_array_equal(summary.mean, draw[0])
    for name in ("std", "q05", "q95", "exceedance", "resolution"):
        assert np.all(np.isnan(getattr(summary, name))), name


def test_summarise_gaussian_matches_scipy():
    mean = np.array([0.0, 150.0, 320.0, -80.0, 250.0])
    variance = np.array([100.0**2, 50.0**2, 10.0**2, 30.0**2, 0.0])
    prior_variance = np.full(5, 200.0**2)
    summary = summarise_gaussian(mean, variance, prior_variance, 200.0)
    std = np.sqrt(variance)
    np.testing.assert_allclose(summary.std, std)
    np.testing.assert_allclose(summary.exceedance[:4], stats.norm.sf(200.0, mean[:4], std[:4]), rtol=1e-12)
    assert summary.exceedance[4] == 1.0  # zero variance: the indicator of mean > threshold
    np.testing.assert_allclose(summary.q05[:4], stats.norm.ppf(Q_LOW, mean[:4], std[:4]), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(summary.q95[:4], stats.norm.ppf(Q_HIGH, mean[:4], std[:4]), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(summary.resolution, 1.0 - variance / prior_variance)
    assert np.all((summary.exceedance >= 0) & (summary.exceedance <= 1))


# -- scores against a truth ----------------------------------------------------------------------
def _handmade_summary() -> Summary:
    mean = np.array([0.5, 0.9, 1.2, 0.0, 0.2, 300.0])
    q05 = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 250.0])
    q95 = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 350.0])
    std = np.full(6, 0.3)
    exceedance = np.array([0.0, 0.1, 0.2, 0.0, 0.0, 0.9])
    return Summary(mean, std, q05, q95, exceedance, np.full(6, 0.5))


def test_truth_metrics_coverage_is_the_fraction_inside_the_band():
    summary = _handmade_summary()
    # inside, on the upper edge, above, below, on the lower edge, inside (and above threshold).
    truth = np.array([0.5, 1.0, 1.5, -0.1, 0.0, 260.0])
    metrics = truth_metrics(summary, truth, threshold=200.0, gaussian=True)
    assert metrics["coverage_90"] == pytest.approx(4.0 / 6.0)
    assert metrics["coverage_90_above_threshold"] == 1.0
    assert metrics["model_rmse"] == pytest.approx(np.sqrt(np.mean((summary.mean - truth) ** 2)))
    assert metrics["crps"] == pytest.approx(crps_gaussian(summary.mean, summary.std, truth).mean())
    assert metrics["exceedance_auc"] == 1.0  # the only cell above threshold has the top exceedance


def test_truth_metrics_uses_the_ensemble_crps_with_draws():
    rng = np.random.default_rng(5)
    draws = rng.normal(0.0, 1.0, (30, 6))
    truth = rng.normal(0.0, 1.0, 6)
    summary = summarise_draws(draws, 0.5, None)
    metrics = truth_metrics(summary, truth, 0.5, draws)
    assert metrics["crps"] == pytest.approx(crps_ensemble(draws, truth).mean())
    assert 0.0 <= metrics["coverage_90"] <= 1.0


def test_truth_metrics_of_a_single_model_is_only_the_rmse():
    summary = summarise_draws(np.array([[1.0, 2.0, 4.0]]), 0.0, None)
    metrics = truth_metrics(summary, np.array([1.0, 2.0, 1.0]), 0.0)
    assert metrics == {"model_rmse": pytest.approx(np.sqrt(3.0))}


def test_data_metrics():
    metrics = data_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 1.0]), np.array([1.0, 0.5, 2.0]))
    assert metrics["chi2_per_datum"] == pytest.approx((0.0 + 4.0 + 1.0) / 3.0)
    assert metrics["rms_mgal"] == pytest.approx(np.sqrt(5.0 / 3.0))


# -- ArviZ ---------------------------------------------------------------------------------------
def test_inference_data_layout_and_log_likelihood():
    mesh = TensorMesh.uniform((0.0, 0.0, -60.0), (20.0, 10.0, 30.0), (3, 2, 2))
    rng = np.random.default_rng(0)
    survey = Survey.from_arrays(np.array([0.0, 10.0, 20.0]), np.array([5.0, 5.0, 5.0]), np.zeros(3),
                                np.array([0.1, 0.2, 0.15]), np.array([0.01, 0.02, 0.03]))
    draws = rng.normal(size=(6, mesh.n_cells))
    predicted = rng.normal(0.15, 0.02, (6, 3))
    idata = inference_data(mesh, survey, draws, predicted, "nuts", "9.9", "[data]\n", chains=2)
    density = idata.posterior["density"]
    assert density.dims == ("chain", "draw", "z", "y", "x")
    assert density.shape == (2, 3, 2, 2, 3)
    # Draw k of the flat input is chain k // 3, draw k % 3, reshaped in C order to (z, y, x).
    np.testing.assert_array_equal(density.values[1, 2], draws[5].reshape(2, 2, 3))
    np.testing.assert_allclose(density["x"].values, mesh.centers_x)
    assert idata.posterior_predictive["gz"].dims == ("chain", "draw", "station")
    np.testing.assert_array_equal(idata.observed_data["gz"].values, survey.gz)
    for name in ("x", "y", "z", "std"):
        assert idata.constant_data[name].dims == ("station",)
    expected = stats.norm.logpdf(survey.gz, predicted.reshape(2, 3, 3), survey.std)
    np.testing.assert_allclose(idata.log_likelihood["gz"].values, expected, rtol=1e-12)
    assert idata.attrs["method"] == "nuts" and idata.attrs["gravuq_version"] == "9.9"
    assert idata.attrs["config"] == "[data]\n"
