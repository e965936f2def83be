"""The hierarchical (empirical-Bayes) prior and exact randomised MAP on the dense sensitivity.

Checked against brute-force algebra on a problem small enough to write the Gaussian densities
out, and on a compact body: the learned prior must raise the evidence, put its variance where
the mass is, and (through the ensemble's warm start) give INR members whose mean and spread
follow the exact posterior under that prior.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from gravuq.forward import sensitivity_matrix
from gravuq.inference import GaussianPrior, gaussian_posterior
from gravuq.inference._hierarchical import hierarchical_prior
from gravuq.inference.linear_gaussian import gaussian_moments, rml_solutions
from gravuq.mesh import TensorMesh


@pytest.fixture(scope="module")
def small():
    """6 x 5 x 4 cells of 100 m under 20 stations, a 2 x 2 x 1 block of +300 kg/m^3 at 150 m depth."""
    mesh = TensorMesh.uniform((0.0, 0.0, -400.0), (100.0, 100.0, 100.0), (6, 5, 4))
    x, y = np.meshgrid(np.linspace(50.0, 550.0, 5), np.linspace(50.0, 450.0, 4))
    stations = np.stack([x.ravel(), y.ravel(), np.full(x.size, 10.0)], axis=1)
    matrix = np.asarray(sensitivity_matrix(mesh, stations, dtype="float64"))
    truth = np.zeros(mesh.shape)
    truth[2, 1:3, 2:4] = 300.0  # (z, y, x): the second layer from the top
    truth = truth.ravel()
    std = np.full(matrix.shape[0], 0.002)
    data = matrix @ truth + std * np.random.default_rng(0).normal(size=std.size)
    return mesh, stations, matrix, truth, data, std


def test_log_evidence_is_the_gaussian_marginal_likelihood(small):
    mesh, _, matrix, _, data, std = small
    prior = GaussianPrior.build(mesh, 40.0, 150.0, 1.0)
    covariance = np.asarray(prior.covariance_apply(jnp.eye(mesh.n_cells)))
    marginal = matrix @ covariance @ matrix.T + np.diag(std**2)
    expected = stats.multivariate_normal(np.zeros(std.size), marginal).logpdf(data)
    _, _, evidence = gaussian_moments(jnp.asarray(matrix), jnp.asarray(data), jnp.asarray(std), prior)
    assert float(evidence) == pytest.approx(expected, rel=1e-9)


def test_rml_solutions_minimise_the_randomised_map_objective(small):
    mesh, _, matrix, _, data, std = small
    prior = GaussianPrior.build(mesh, 50.0, 120.0)
    precision = np.linalg.inv(np.asarray(prior.covariance_apply(jnp.eye(mesh.n_cells))))
    anchors = np.asarray(prior.sample(jax.random.key(1), 3))
    targets = data + 0.002 * np.random.default_rng(2).normal(size=(3, std.size))
    solutions = rml_solutions(matrix, std, prior, anchors, targets)
    # Normal equations of |(G m - d_k)/sigma|^2 + (m - a_k)^T C^-1 (m - a_k).
    hessian = matrix.T @ np.diag(std**-2) @ matrix + precision
    for a, d, m in zip(anchors, targets, solutions):
        expected = np.linalg.solve(hessian, matrix.T @ (d / std**2) + precision @ a)
        np.testing.assert_allclose(m, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())


def test_hierarchical_prior_raises_the_evidence_and_puts_its_variance_on_the_body(small):
    mesh, _, matrix, truth, data, std = small
    prior, report = hierarchical_prior(matrix, data, std, mesh, 50.0, smoothing=1.0)
    assert report.log_evidence > report.log_evidence_constant + 10.0
    assert report.steps >= 1
    scales = np.asarray(prior.std).ravel()
    body = truth > 0
    assert np.median(scales[body]) > 2.0 * np.median(scales[~body])
    # Reported figures are those of the returned prior.
    _, _, evidence = gaussian_moments(jnp.asarray(matrix), jnp.asarray(data), jnp.asarray(std), prior)
    assert float(evidence) == pytest.approx(report.log_evidence, rel=1e-9)
    assert scales.min() == pytest.approx(report.std_min) and scales.max() == pytest.approx(report.std_max)


@pytest.fixture(scope="module")
def dipping_block(tmp_path_factory):
    """The B1 dipping block (21 x 21 x 11 cells, 441 stations): dense, float64."""
    from gravuq.config import load_config
    from gravuq.examples import write_dipping_block
    from gravuq.pipeline import prepare

    setup = prepare(load_config(write_dipping_block(tmp_path_factory.mktemp("b1"), geometry="b1")))
    stations = np.stack([setup.survey.x, setup.survey.y, setup.survey.z], axis=1)
    matrix = np.asarray(sensitivity_matrix(setup.mesh, stations, dtype="float64"))
    return setup.mesh, matrix, setup.survey.gz, setup.survey.std, np.asarray(setup.truth).ravel()


def test_hierarchical_posterior_brackets_the_dipping_block(dipping_block):
    """On B1 the constant 50 kg/m^3 prior's 90 % interval holds under 10 % of the block's true
    densities; the learned prior's holds most of them, with nominal coverage or more overall."""
    mesh, matrix, data, std, truth = dipping_block
    block = truth > 200

    def coverage(prior):
        posterior = gaussian_posterior(matrix, data, std, prior, jax.random.key(0), draws=2)
        inside = np.abs(truth - posterior.mean) <= 1.6448536 * np.sqrt(posterior.variance)
        return inside.mean(), inside[block].mean()

    constant_all, constant_block = coverage(GaussianPrior.build(mesh, 50.0))
    learned, report = hierarchical_prior(matrix, data, std, mesh, 50.0)
    learned_all, learned_block = coverage(learned)
    assert constant_block < 0.1
    assert learned_block > 0.5, report
    assert learned_all > 0.9


def test_a_nonpositive_smoothing_is_refused(small):
    mesh, _, matrix, _, data, std = small
    with pytest.raises(ValueError, match="smoothing"):
        hierarchical_prior(matrix, data, std, mesh, 50.0, smoothing=0.0)


def _setup(small, folder):
    """The small case as a config run (hierarchical prior, 16 members, 150 epochs), prepared."""
    from gravuq.config import load_config
    from gravuq.io import write_stations_csv
    from gravuq.pipeline import prepare

    mesh, stations, _, _, data, std = small
    write_stations_csv(folder / "stations.csv", *stations.T, data, std)
    (folder / "run.toml").write_text("""
[data]
path = "stations.csv"
[mesh]
origin = [0.0, 0.0, -400.0]
cell_size = [100.0, 100.0, 100.0]
shape = [6, 5, 4]
[inference]
method = "ensemble"
prior_scale = "hierarchical"
members = 16
epochs = 150
[output]
directory = "out"
formats = ["netcdf"]
""")
    return prepare(load_config(folder / "run.toml"))


def test_rml_ensemble_of_inrs_follows_the_exact_hierarchical_posterior(small, tmp_path):
    """The default ensemble (rml, warm-started whitened INRs) with the learned prior against the
    exact Gaussian posterior under the same prior: the members' mean lies within a few
    Monte-Carlo standard errors of the exact mean, and their spread is of the exact size."""
    from gravuq.pipeline import recover

    setup = _setup(small, tmp_path)
    ensemble = recover(setup)
    assert ensemble.metrics["prior"]["prior_scale"] == "hierarchical"
    exact_setup = dataclasses.replace(setup, config=dataclasses.replace(
        setup.config, inference=dataclasses.replace(setup.config.inference, method="gaussian", members=2)))
    exact = recover(exact_setup)
    draws = ensemble.draws
    sd = exact.summary.std
    z = (draws.mean(axis=0) - exact.summary.mean) / (sd / np.sqrt(draws.shape[0]))
    # 16 members: a loose bound on the worst of 120 cells, a tight one on the typical cell.
    assert np.median(np.abs(z)) < 1.5, np.median(np.abs(z))
    ratio = np.median(draws.std(axis=0, ddof=1) / sd)
    assert 0.7 < ratio < 1.3, ratio


def test_a_hierarchical_prior_that_does_not_fit_in_memory_is_an_input_error(small, tmp_path, monkeypatch):
    import gravuq.forward._build as budget_module
    from gravuq.errors import InputError
    from gravuq.pipeline import recover

    setup = _setup(small, tmp_path)
    monkeypatch.setattr(budget_module, "available_memory_bytes", lambda: 1000)
    with pytest.raises(InputError, match=r"run\.toml: \[inference\] prior_scale = 'hierarchical' needs"):
        recover(setup)


def test_the_learned_prior_is_learned_once_per_prepared_setup(small, tmp_path, monkeypatch):
    """``gravuq compare`` runs several methods on one setup: the prior is learned for the first."""
    import gravuq.pipeline as hierarchical_module

    setup = _setup(small, tmp_path)
    calls = []
    learn = hierarchical_module.build_model

    def counting(*args, **kwargs):
        calls.append(1)
        return learn(*args, **kwargs)

    monkeypatch.setattr(hierarchical_module, "build_model", counting)
    first, _ = setup.prior()
    second, _ = setup.prior()
    assert len(calls) == 1 and second is first
    changed = dataclasses.replace(setup, config=dataclasses.replace(
        setup.config, inference=dataclasses.replace(setup.config.inference, prior_std=80.0)))
    changed.prior()
    assert len(calls) == 2
