"""Topography and active cells: a tiny hill mesh (6 x 6 x 8 cells of 50 x 50 x 25 m, a 60 m
Gaussian hill on a plain at z = 0, the mesh top at z = 50 m), stations 1 m above the ground.

Air cells (centre above the ground) must never reach the data, hold NaN in summary.nc and the
exports, and the exact Gaussian method must equal the Gaussian posterior of the active cells
alone under the prior's marginal on them, computed here from scratch.
"""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest
import xarray as xr
from helpers import invoke

from gravuq.config import load_config
from gravuq.forward import active_cell_operator, make_operator, sensitivity_matrix
from gravuq.inference.prior import depth_weighting
from gravuq.io import (
    export_ubc,
    export_vtk,
    interpolate_surface,
    mesh_from_config,
    model_dataset,
    read_topography,
    read_ubc_model,
    write_netcdf,
    write_stations_csv,
)
from gravuq.mesh import TensorMesh
from gravuq.outputs import write_outputs
from gravuq.pipeline import prepare, recover
from gravuq.products import drill_log, load_results

ORIGIN, CELL, SHAPE = (0.0, 0.0, -150.0), (50.0, 50.0, 25.0), (6, 6, 8)
SIGMA, LENGTH, BETA = 100.0, 60.0, 1.0


def hill(x, y):
    """The ground, m: a 60 m Gaussian hill of 90 m spread centred at (150, 150) m on z = 0."""
    return 60.0 * np.exp(-((x - 150.0) ** 2 + (y - 150.0) ** 2) / (2 * 90.0**2))


def config_text(data: str, method: str, directory: str, topography: str = "dem.csv") -> str:
    return f"""[data]
path = "{data}"
[mesh]
origin = {list(ORIGIN)}
cell_size = {list(CELL)}
shape = {list(SHAPE)}
topography = "{topography}"
[model]
encoding = "fourier"
frequencies = 4
width = 16
depth = 2
[inference]
method = "{method}"
members = 2
epochs = 8
seed = 0
prior_scale = "fixed"
noise = "stated"
prior_std = {SIGMA}
prior_correlation_length = {LENGTH}
depth_weighting = {BETA}
[output]
directory = "{directory}"
threshold = 150.0
[truth]
path = "truth.nc"
"""


@pytest.fixture(scope="module")
def hill_case(tmp_path_factory):
    folder = tmp_path_factory.mktemp("terrain")
    grid = np.arange(-10.0, 311.0, 20.0)
    x, y = np.meshgrid(grid, grid)
    np.savetxt(folder / "dem.csv", np.stack([x.ravel(), y.ravel(), hill(x, y).ravel()], 1), delimiter=",",
               header="x,y,z", comments="")
    dem = xr.Dataset({"elevation": (("y", "x"), hill(x, y))}, coords={"x": grid, "y": grid})
    dem.to_netcdf(folder / "dem.nc", engine="h5netcdf")
    flat = TensorMesh.uniform(ORIGIN, CELL, SHAPE)
    truth = np.zeros(flat.shape)
    truth[1:3, 2:4, 2:4] = 400.0  # a buried block, well below the ground
    write_netcdf(folder / "truth.nc", model_dataset(flat, {"density": truth}))
    sx, sy = np.meshgrid(flat.centers_x, flat.centers_y)
    stations = np.stack([sx.ravel(), sy.ravel(), hill(sx, sy).ravel() + 1.0], axis=1)
    mesh = flat.with_surface(interpolate_surface(read_topography(folder / "dem.csv"), *np.meshgrid(
        flat.centers_x, flat.centers_y)))
    matrix = np.asarray(sensitivity_matrix(flat, stations, dtype="float64")) * mesh.active.ravel()[None, :]
    gz = matrix @ truth.ravel() + np.random.default_rng(0).normal(0.0, 0.002, len(stations))
    std = np.full(len(stations), 0.002)
    write_stations_csv(folder / "stations.csv", *stations.T, gz, std)
    below = stations.copy()
    below[4, 2] = hill(*below[4, :2]) - 10.0  # the fifth station, 10 m underground
    write_stations_csv(folder / "below.csv", *below.T, gz, std)
    for method in ("gaussian", "ensemble", "svgd"):
        (folder / f"{method}.toml").write_text(config_text("stations.csv", method, f"out_{method}"))
    (folder / "below.toml").write_text(config_text("below.csv", "gaussian", "out_below"))
    (folder / "netcdf.toml").write_text(config_text("stations.csv", "gaussian", "out_nc", "dem.nc"))
    return folder


def test_no_active_cell_lies_above_the_surface(hill_case):
    mesh = mesh_from_config(load_config(hill_case / "gaussian.toml").mesh)
    assert mesh.has_topography and 0 < mesh.n_active < mesh.n_cells
    centres = mesh.cell_centers
    points = read_topography(hill_case / "dem.csv")
    ground = interpolate_surface(points, centres[:, 0], centres[:, 1])
    active = mesh.active.ravel()
    assert np.all(centres[active, 2] <= ground[active]) and np.all(centres[~active, 2] > ground[~active])
    # The interpolated ground is the hill's to within the linear interpolation error of a 20 m grid.
    x, y = np.meshgrid(mesh.centers_x, mesh.centers_y)
    np.testing.assert_allclose(mesh.surface, hill(x, y), atol=1.5)
    # Against the analytic hill itself (not the interpolant), no cell centre above ground is active.
    exact = hill(centres[:, 0], centres[:, 1])
    assert not np.any(active & (centres[:, 2] > exact + 1.5))
    # A NetCDF grid of the same hill gives the same active cells.
    from_grid = mesh_from_config(load_config(hill_case / "netcdf.toml").mesh)
    np.testing.assert_array_equal(from_grid.active, mesh.active)
    # The depth below the ground is per column, and air cells lie above it.
    assert np.all(mesh.depth_below_surface[mesh.active] >= 0) and np.all(mesh.depth_below_surface[~mesh.active] < 0)


def test_a_station_below_the_surface_exits_2_naming_its_row(hill_case, monkeypatch):
    monkeypatch.chdir(hill_case)
    result = invoke("ensemble", hill_case / "below.toml")
    assert result.exit_code == 2, result.output
    assert "station 5 (of 36" in result.output and "below the ground" in result.output
    assert "Traceback" not in result.output


def test_the_operator_sees_only_active_columns_for_every_kind(hill_case):
    mesh = mesh_from_config(load_config(hill_case / "gaussian.toml").mesh)
    x, y = np.meshgrid(mesh.centers_x, mesh.centers_y)
    stations = np.stack([x.ravel(), y.ravel(), np.full(x.size, 80.0)], axis=1)  # one height: FFT applies
    full = np.asarray(sensitivity_matrix(TensorMesh.uniform(ORIGIN, CELL, SHAPE), stations, dtype="float64"))
    active = mesh.active.ravel()
    density = np.random.default_rng(1).normal(size=(2, mesh.n_cells))
    residual = np.random.default_rng(2).normal(size=(2, len(stations)))
    for mode in ("dense", "matrix_free", "fft"):
        inner, _ = make_operator(mesh, stations, mode, "float64")
        operator = active_cell_operator(inner, mesh)
        assert operator.kind == mode and operator.n_cells == mesh.n_cells
        np.testing.assert_allclose(np.asarray(operator.forward(density)), (density * active) @ full.T, rtol=1e-9,
                                   atol=1e-14)
        adjoint = np.asarray(operator.adjoint(residual))
        np.testing.assert_allclose(adjoint, (residual @ full) * active, rtol=1e-9, atol=1e-14)
        assert np.all(adjoint[:, ~active] == 0.0)
        np.testing.assert_allclose(np.asarray(operator.dense()), full * active, rtol=1e-9, atol=1e-14)
    # Without topography the operator is the inner one, untouched.
    flat = TensorMesh.uniform(ORIGIN, CELL, SHAPE)
    inner, _ = make_operator(flat, stations, "dense", "float64")
    assert active_cell_operator(inner, flat) is inner and flat.active.all()


def test_depth_weighting_measures_depth_below_the_ground(hill_case):
    mesh = mesh_from_config(load_config(hill_case / "gaussian.toml").mesh)
    weights = depth_weighting(mesh, 2.0)
    z0 = 0.5 * CELL[2]
    depth = np.maximum(mesh.surface[None] - mesh.centers_z[:, None, None], 0.0)
    np.testing.assert_allclose(weights, ((depth + z0) / (0.5 * CELL[2] + z0)) ** -1.0, rtol=1e-12)
    # A flat ground at the mesh top gives the weights of the mesh without topography.
    flat = TensorMesh.uniform(ORIGIN, CELL, SHAPE)
    level = flat.with_surface(np.full((SHAPE[1], SHAPE[0]), flat.nodes_z[-1]))
    np.testing.assert_allclose(depth_weighting(level, 2.0), depth_weighting(flat, 2.0), rtol=1e-12)


def exact_active_posterior(mesh, stations, data, std):
    """The Gaussian posterior of the active cells alone, from scratch: the prior's marginal on
    them (covariance block ``C_AA`` of the depth-weighted, exponentially correlated prior) and
    the sensitivity's active columns."""
    active = mesh.active.ravel()
    z0 = 0.5 * CELL[2]
    depth = np.maximum(mesh.surface[None] - mesh.centers_z[:, None, None], 0.0)
    sd = (SIGMA * ((depth + z0) / (0.5 * CELL[2] + z0)) ** (BETA / 2)).ravel()
    corr = [np.exp(-np.abs(c[:, None] - c[None, :]) / LENGTH) for c in (mesh.centers_z, mesh.centers_y,
                                                                         mesh.centers_x)]
    covariance = sd[:, None] * np.kron(np.kron(corr[0], corr[1]), corr[2]) * sd[None, :]
    c_aa = covariance[np.ix_(active, active)]
    g_a = np.asarray(sensitivity_matrix(TensorMesh.uniform(ORIGIN, CELL, SHAPE), stations, dtype="float64"))[:, active]
    system = g_a @ c_aa @ g_a.T + np.diag(std**2)
    gain = c_aa @ g_a.T @ np.linalg.inv(system)
    return gain @ data, np.diag(c_aa - gain @ g_a @ c_aa)


def test_gaussian_on_a_masked_problem_is_the_exact_gaussian_of_the_active_cells(hill_case, monkeypatch):
    monkeypatch.chdir(hill_case)
    setup = prepare(load_config(hill_case / "gaussian.toml"))
    recovery = recover(setup, "gaussian")
    mesh, survey = setup.mesh, setup.survey
    active = mesh.active.ravel()
    mean, variance = exact_active_posterior(mesh, survey.coordinates, survey.gz, survey.std)
    np.testing.assert_allclose(recovery.summary.mean[active], mean, rtol=1e-7, atol=1e-7 * np.abs(mean).max())
    np.testing.assert_allclose(recovery.summary.std[active] ** 2, variance, rtol=1e-7)
    assert np.all(np.isnan(recovery.summary.mean[~active])) and np.all(np.isnan(recovery.summary.std[~active]))
    assert np.all(recovery.draws[:, ~active] == 0.0)  # fixed at zero contrast in every draw
    assert recovery.metrics["active_cells"] == int(active.sum()) and np.isfinite(recovery.metrics["crps"])

    # summary.nc, the UBC and VTK exports and the drill log all mask the air.
    folder = write_outputs(setup, recovery)
    with xr.open_dataset(folder / "summary.nc") as summary:
        for name in ("mean", "std", "q05", "q95", "exceedance", "resolution", "prior_std"):
            values = summary[name].transpose("z", "y", "x").values
            assert np.all(np.isnan(values[~mesh.active])) and np.all(np.isfinite(values[mesh.active])), name
        np.testing.assert_allclose(summary["surface"].transpose("y", "x").values, mesh.surface)
    results = load_results(folder)
    np.testing.assert_array_equal(results.mesh.active, mesh.active)
    written = export_ubc(results, folder / "ubc")
    model = read_ubc_model(written["mean"], results.mesh)
    assert np.all(model[~mesh.active] == -99999.0) and np.all(model[mesh.active] != -99999.0)
    text = export_vtk(results, folder / "summary.vtr").read_text()
    ghost = re.search(r'Name="vtkGhostType"[^>]*format="binary">\s*(\S+)', text).group(1)
    flags = np.frombuffer(base64.b64decode(ghost)[8:], np.uint8)
    np.testing.assert_array_equal(flags, np.where(active, 0, 32))
    # A vertical hole from above the hill top: air samples NaN, depth below the ground per sample.
    log = drill_log(results, (125.0, 125.0, 49.0), 0.0, 90.0, 150.0, 12.5)
    ground = mesh.surface[2, 2]
    np.testing.assert_allclose(log.depth_below_surface, ground - log.z)
    assert np.all(np.isnan(log.mean[log.z > ground])) and np.all(np.isfinite(log.mean[(log.z < ground)
                                                                                        & (log.z > -150.0)]))


@pytest.mark.parametrize("method", [pytest.param("ensemble", marks=pytest.mark.slow), "svgd"])
def test_the_network_methods_run_on_a_masked_problem(hill_case, monkeypatch, method):
    monkeypatch.chdir(hill_case)
    setup = prepare(load_config(hill_case / f"{method}.toml"))
    recovery = recover(setup, method)
    active = setup.mesh.active.ravel()
    assert np.all(np.isfinite(recovery.summary.mean[active])) and np.all(np.isnan(recovery.summary.mean[~active]))
    assert np.all(recovery.draws[:, ~active] == 0.0)
    assert np.isfinite(recovery.metrics["chi2_per_datum"]) and recovery.metrics["active_cells"] == int(active.sum())


def test_per_cell_scales_are_learned_from_the_active_cells_alone(hill_case):
    """The per-cell EM on a masked problem: air cells keep their start, and the active cells'
    learned scales do not depend on what the air cells' prior says (the data never see them)."""
    from gravuq.inference._hierarchical import hierarchical_prior
    from gravuq.inference.prior import GaussianPrior

    mesh = mesh_from_config(load_config(hill_case / "gaussian.toml").mesh)
    x, y = np.meshgrid(mesh.centers_x, mesh.centers_y)
    stations = np.stack([x.ravel(), y.ravel(), mesh.surface.ravel() + 1.0], axis=1)
    active = mesh.active
    matrix = np.asarray(sensitivity_matrix(TensorMesh.uniform(ORIGIN, CELL, SHAPE), stations, dtype="float64"))
    matrix = matrix * active.ravel()[None, :]
    truth = np.zeros(mesh.shape)
    truth[2:4, 2:4, 2:4] = 300.0
    data = matrix @ truth.ravel()
    std = np.full(len(stations), 0.01 * np.abs(data).max())
    base = GaussianPrior.build(mesh, 50.0, 50.0)
    other = GaussianPrior(np.where(active, base.std, 7.0 * base.std), base.root_z, base.root_y, base.root_x,
                          base.inverse_root_z, base.inverse_root_y, base.inverse_root_x)
    learned, report = hierarchical_prior(matrix, data, std, mesh, base=base, max_steps=4)
    again, report_again = hierarchical_prior(matrix, data, std, mesh, base=other, max_steps=4)
    assert report.steps > 0  # the EM moved the scales
    np.testing.assert_allclose(np.asarray(learned.std)[active], np.asarray(again.std)[active], rtol=1e-9)
    np.testing.assert_array_equal(np.asarray(learned.std)[~active], np.asarray(base.std)[~active])
    assert report.log_evidence == pytest.approx(report_again.log_evidence, rel=1e-10)
