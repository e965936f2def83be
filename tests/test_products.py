"""Products of a finished run (SPEC section 2: predict, drill, export) on a tiny results directory
written by the tests: a 6 x 6 x 4 mesh of 50 m cells around a +300 kg/m^3 sphere, 12 posterior
draws (truth plus noise, stored as 2 chains) with a plane regional trend recorded, and a
deterministic run (summary.nc only).
"""

from __future__ import annotations

import base64
import dataclasses
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from gravuq import synthetic
from gravuq.errors import InputError
from gravuq.forward import make_operator
from gravuq.io import model_dataset, write_netcdf
from gravuq.io import export_ubc, export_vtk, read_ubc_model
from gravuq.io import read_ubc_mesh
from gravuq.posterior import inference_data, summarise_draws
from gravuq.products import (Hole, drill_log, load_results, predict, rank_collars, read_collars_csv,
                             write_drill_log, write_predictions)
from gravuq.io import read_stations_csv, write_stations_csv
from gravuq.survey import Survey
from gravuq_cli.products import register

THRESHOLD = 150.0
TREND = (1.5, 2e-3, -1e-3)  # mGal, mGal/m, mGal/m
DRAWS, CHAINS = 12, 2
FIELDS = ("mean", "std", "q05", "q95", "exceedance", "resolution")


class Case:
    def __init__(self, folder: Path):
        sphere = synthetic.sphere(shape=(6, 6, 4), cell_size=50.0, radius=60.0)
        self.folder = folder
        self.mesh = mesh = sphere.mesh
        self.truth = sphere.density
        self.stations = sphere.stations
        rng = np.random.default_rng(0)
        self.draws = self.truth.ravel()[None, :] + rng.normal(0.0, 60.0, (DRAWS, mesh.n_cells))
        operator, _ = make_operator(mesh, self.stations, "dense", "float64")
        self.operator = operator
        predicted = np.asarray(operator.forward(jnp.asarray(self.draws)))
        survey = Survey.from_arrays(*self.stations.T, sphere.gz, sphere.std)
        x0, y0 = survey.trend_origin
        regional = TREND[0] + TREND[1] * (survey.x - x0) + TREND[2] * (survey.y - y0)
        survey = dataclasses.replace(survey, detrend="plane", trend_coefficients=TREND, regional=regional)
        self.trend_origin = (x0, y0)
        summary = summarise_draws(self.draws, THRESHOLD, np.full(mesh.n_cells, 200.0**2))
        self.summary = summary
        units = {"exceedance": "1", "resolution": "1"}
        self.results = folder / "results"
        variables = {name: getattr(summary, name) for name in FIELDS}
        write_netcdf(self.results / "summary.nc",
                     model_dataset(mesh, variables, {"threshold": THRESHOLD, "method": "ensemble"}, units))
        idata = inference_data(mesh, survey, self.draws, predicted, "ensemble", "test", "", CHAINS)
        idata.to_netcdf(str(self.results / "posterior.nc"), engine="h5netcdf")
        # A deterministic run: summary.nc only, spread NaN.
        self.invert = folder / "invert"
        nan = np.full(mesh.n_cells, np.nan)
        write_netcdf(self.invert / "summary.nc",
                     model_dataset(mesh, {"mean": self.truth, **{name: nan for name in FIELDS[1:]}},
                                   {"threshold": THRESHOLD, "method": "tikhonov"}, units))

    def regional(self, x, y):
        x0, y0 = self.trend_origin
        return TREND[0] + TREND[1] * (np.asarray(x) - x0) + TREND[2] * (np.asarray(y) - y0)


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> Case:
    return Case(tmp_path_factory.mktemp("products"))


@pytest.fixture(scope="module")
def results(case):
    return load_results(case.results)


# -- loading -------------------------------------------------------------------------------------
def test_load_results_reads_mesh_draws_threshold_and_trend(case, results):
    assert results.mesh.same_as(case.mesh)
    np.testing.assert_array_equal(results.draws, case.draws)  # chains stacked in order
    assert results.threshold == THRESHOLD and results.has_posterior
    assert results.detrend == "plane"
    np.testing.assert_allclose(results.trend_coefficients, TREND)
    np.testing.assert_allclose(results.trend_origin, case.trend_origin)


def test_load_results_without_posterior_uses_the_mean_as_one_draw(case):
    single = load_results(case.invert)
    assert single.n_draws == 1 and not single.has_posterior and single.detrend == "none"
    np.testing.assert_array_equal(single.draws[0], case.truth.ravel())


def test_load_results_names_missing_folder_and_file(tmp_path):
    with pytest.raises(InputError, match="results directory not found"):
        load_results(tmp_path / "nowhere")
    with pytest.raises(InputError, match="summary.nc: file not found"):
        load_results(tmp_path)


# -- predict -------------------------------------------------------------------------------------
def test_predict_at_the_original_stations_is_the_forward_of_the_draws_plus_regional(case, results):
    prediction = predict(results, case.stations)
    gz = np.asarray(case.operator.forward(jnp.asarray(case.draws))) + case.regional(*case.stations[:, :2].T)
    np.testing.assert_allclose(prediction.gz_mean, gz.mean(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(prediction.gz_std, gz.std(axis=0, ddof=1), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(prediction.gz_q05, np.quantile(gz, 0.05, axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(prediction.gz_q95, np.quantile(gz, 0.95, axis=0), rtol=1e-10, atol=1e-12)
    assert np.ptp(prediction.regional) > 0.1  # the plane really varies over the stations
    assert np.all(prediction.gz_std > 0) and np.all(prediction.gz_q05 < prediction.gz_q95)


def test_predicted_spread_is_zero_when_all_draws_are_equal(case, results):
    equal = dataclasses.replace(results, draws=np.repeat(case.truth.reshape(1, -1), 5, axis=0))
    prediction = predict(equal, case.stations[:7])
    np.testing.assert_allclose(prediction.gz_std, 0.0, atol=1e-12)
    np.testing.assert_allclose(prediction.gz_q05, prediction.gz_mean, rtol=1e-12)
    np.testing.assert_allclose(prediction.gz_q95, prediction.gz_mean, rtol=1e-12)


def test_prediction_of_a_single_model_has_no_spread_and_the_csv_round_trips(case, tmp_path):
    single = load_results(case.invert)
    new = case.stations[:5] + np.array([10.0, -5.0, 30.0])
    prediction = predict(single, new)
    expected = np.asarray(make_operator(case.mesh, new, "dense", "float64")[0].forward(jnp.asarray(case.truth.ravel())))
    np.testing.assert_allclose(prediction.gz_mean, expected, rtol=1e-12)  # no trend recorded: none added
    assert np.all(np.isnan(prediction.gz_std))
    assert np.all(np.isnan(prediction.gz_obs_std))  # a deterministic run has no noise model either
    path = write_predictions(tmp_path / "p.csv", prediction)
    header = path.read_text().splitlines()[0]
    assert header == "x,y,z,gz_mean,gz_std,gz_q05,gz_q95,gz_obs_std"
    table = read_stations_csv(path, need_gz=False)
    np.testing.assert_array_equal(table.z, new[:, 2])


# -- drill ---------------------------------------------------------------------------------------
def _column(case, i, j):
    """Flat indices of column (x index i, y index j), top layer first."""
    nz, ny, nx = case.mesh.shape
    return np.array([(k * ny + j) * nx + i for k in range(nz - 1, -1, -1)])


def test_vertical_hole_returns_its_column_top_to_bottom(case, results):
    i, j = 2, 3
    collar = (case.mesh.centers_x[i], case.mesh.centers_y[j], case.mesh.nodes_z[-1])
    log = drill_log(results, collar, azimuth_deg=37.0, dip_deg=90.0, length_m=200.0, step_m=50.0)
    np.testing.assert_allclose(log.depth_along_hole, [25.0, 75.0, 125.0, 175.0])
    np.testing.assert_allclose(log.depth_from, [0.0, 50.0, 100.0, 150.0])
    np.testing.assert_allclose(log.z, [-25.0, -75.0, -125.0, -175.0], atol=1e-9)
    np.testing.assert_allclose(log.x, collar[0], atol=1e-9)
    values = case.draws[:, _column(case, i, j)]
    np.testing.assert_allclose(log.mean, values.mean(axis=0))
    np.testing.assert_allclose(log.mean, case.summary.mean[_column(case, i, j)])
    np.testing.assert_allclose(log.q05, np.quantile(values, 0.05, axis=0))
    np.testing.assert_allclose(log.q95, np.quantile(values, 0.95, axis=0))
    np.testing.assert_allclose(log.exceedance, (values > THRESHOLD).mean(axis=0))
    assert log.threshold == THRESHOLD


def test_dipping_hole_follows_azimuth_and_dip(case, results):
    collar = (30.0, 140.0, 0.0)
    log = drill_log(results, collar, azimuth_deg=90.0, dip_deg=30.0, length_m=100.0, step_m=10.0)
    d = log.depth_along_hole
    np.testing.assert_allclose(log.x, 30.0 + d * np.cos(np.radians(30.0)))  # azimuth 90: due east
    np.testing.assert_allclose(log.y, 140.0, atol=1e-9)
    np.testing.assert_allclose(log.z, -d * 0.5)
    north = drill_log(results, collar, azimuth_deg=0.0, dip_deg=45.0, length_m=50.0, step_m=10.0)
    np.testing.assert_allclose(north.x, 30.0, atol=1e-9)
    np.testing.assert_allclose(north.y - 140.0, -north.z)  # 45 degrees: as far north as down
    # A point's value is its cell's: the midpoint at 45 m along the east hole.
    k = np.searchsorted(case.mesh.nodes_z, log.z[4], side="right") - 1
    i = np.searchsorted(case.mesh.nodes_x, log.x[4], side="right") - 1
    j = np.searchsorted(case.mesh.nodes_y, 140.0, side="right") - 1
    assert log.mean[4] == pytest.approx(case.summary.mean.reshape(case.mesh.shape)[k, j, i])


def test_points_outside_the_mesh_are_nan(results):
    log = drill_log(results, (150.0, 150.0, 100.0), 0.0, 90.0, length_m=400.0, step_m=50.0)
    above, below = log.z > 0.0, log.z < -200.0
    assert above.sum() == 2 and below.sum() == 2
    for values in (log.mean, log.q05, log.q95, log.exceedance):
        assert np.all(np.isnan(values[above | below])) and np.all(np.isfinite(values[~(above | below)]))
    outside = drill_log(results, (-100.0, 150.0, 0.0), 0.0, 90.0, length_m=100.0, step_m=50.0)
    assert np.all(np.isnan(outside.mean))


def test_bad_hole_arguments_are_input_errors(results):
    with pytest.raises(InputError, match="length"):
        drill_log(results, (0.0, 0.0, 0.0), 0.0, 90.0, length_m=-1.0)
    with pytest.raises(InputError, match="dip"):
        drill_log(results, (0.0, 0.0, 0.0), 0.0, 120.0, length_m=10.0)


def test_drill_log_files(results, tmp_path):
    log = drill_log(results, (150.0, 150.0, 0.0), 0.0, 90.0, 200.0, 25.0)
    write_drill_log(tmp_path / "d.csv", tmp_path / "d.png", log)
    lines = (tmp_path / "d.csv").read_text().splitlines()
    assert lines[0] == "depth_along_hole,depth_from,depth_to,x,y,z,mean,q05,q95,exceedance"
    assert len(lines) == 1 + log.depth_along_hole.size
    assert (tmp_path / "d.png").read_bytes().startswith(b"\x89PNG")


def test_rank_collars_puts_the_hole_through_the_body_first(case, results, tmp_path):
    holes = [Hole("corner", 25.0, 25.0, 0.0, 0.0, 90.0, 200.0), Hole("centre", 125.0, 125.0, 0.0, 0.0, 90.0, 200.0)]
    ranking = rank_collars(results, holes, step_m=50.0)
    assert [r.hole.name for r in ranking] == ["centre", "corner"] and [r.rank for r in ranking] == [1, 2]
    best = ranking[0]
    # The expected length above the threshold is the sum of step * exceedance down the hole.
    log = drill_log(results, (125.0, 125.0, 0.0), 0.0, 90.0, 200.0, 50.0)
    assert best.expected_length == pytest.approx(50.0 * log.exceedance.sum())
    assert best.length_q05 <= best.expected_length <= best.length_q95
    assert 50.0 < best.expected_length <= 200.0  # through the two sphere layers (100 m of +300)
    assert ranking[1].expected_length < best.expected_length
    path = tmp_path / "collars.csv"
    path.write_text("name,x,y,z,azimuth,dip,length\nA,25,25,0,0,90,200\nB,125,125,0,0,90,200\n")
    assert [hole.name for hole in read_collars_csv(path)] == ["A", "B"]
    path.write_text("name,x,y,z,azimuth,dip,length\nA,25,25,zero,0,90,200\n")
    with pytest.raises(InputError, match=r"line 2, column 'z'"):
        read_collars_csv(path)


# -- export --------------------------------------------------------------------------------------
def test_ubc_export_round_trips_and_uses_ubc_order(case, results, tmp_path):
    written = export_ubc(results, tmp_path / "ubc")
    assert set(written) == {"mesh", *FIELDS}
    mesh = read_ubc_mesh(written["mesh"])
    assert mesh.same_as(case.mesh)
    for name in FIELDS:
        np.testing.assert_array_equal(read_ubc_model(written[name], mesh).ravel(), getattr(case.summary, name))
    # UBC order (discretize's write_model_UBC): z fastest from the top, then x, then y.
    mean = case.summary.mean.reshape(case.mesh.shape)
    nz, ny, nx = case.mesh.shape
    lines = np.array([float(v) for v in written["mean"].read_text().split()])
    assert lines[0] == mean[nz - 1, 0, 0] and lines[1] == mean[nz - 2, 0, 0]
    assert lines[nz] == mean[nz - 1, 0, 1] and lines[nz * nx] == mean[nz - 1, 1, 0]


def test_ubc_export_of_a_single_model_skips_empty_fields(case, tmp_path):
    written = export_ubc(load_results(case.invert), tmp_path / "ubc")
    assert set(written) == {"mesh", "mean"}


def _decode(array: ElementTree.Element) -> np.ndarray:
    if array.get("format") == "ascii":
        return np.array([float(v) for v in array.text.split()])
    raw = base64.b64decode(array.text.strip())
    count = int(np.frombuffer(raw[:8], "<u8")[0])
    assert count == len(raw) - 8
    return np.frombuffer(raw[8:], "<f8")


@pytest.mark.parametrize("encoding", ["binary", "ascii"])
def test_vtk_file_parses_with_the_grid_and_fields(case, results, tmp_path, encoding):
    path = export_vtk(results, tmp_path / "s.vtr", encoding=encoding)
    root = ElementTree.parse(path).getroot()
    assert root.get("type") == "RectilinearGrid"
    nz, ny, nx = case.mesh.shape
    assert root.find("RectilinearGrid").get("WholeExtent") == f"0 {nx} 0 {ny} 0 {nz}"
    coordinates = root.find("RectilinearGrid/Piece/Coordinates").findall("DataArray")
    for array, nodes in zip(coordinates, (case.mesh.nodes_x, case.mesh.nodes_y, case.mesh.nodes_z)):
        np.testing.assert_array_equal(_decode(array), nodes)
    cells = {array.get("Name"): _decode(array) for array in root.find("RectilinearGrid/Piece/CellData")}
    assert set(cells) == set(FIELDS)
    for name in FIELDS:  # VTK cell order: x fastest, then y, then z: C order of (nz, ny, nx)
        np.testing.assert_array_equal(cells[name], getattr(case.summary, name))


# -- command line --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def app():
    application = typer.Typer()
    register(application)
    return application


def invoke(app, *arguments):
    return CliRunner().invoke(app, [str(argument) for argument in arguments])


def test_cli_commands_write_their_files(case, app):
    stations = case.folder / "new_stations.csv"
    write_stations_csv(stations, *case.stations[:4].T, np.zeros(4), np.ones(4))
    for arguments, files in (
        (("predict", case.results, stations, "-q"), ["predict.csv"]),
        (("drill", case.results, "--collar", "150,150,0", "--azimuth", "0", "--dip", "60", "--length", "250"),
         ["drill.csv", "drill.png"]),
        (("export", case.results, "--format", "ubc"), ["export_ubc/mesh.msh", "export_ubc/mean.mod"]),
        (("export", case.results, "--format", "vtk"), ["summary.vtr"]),
    ):
        result = invoke(app, *arguments)
        assert result.exit_code == 0, result.output + repr(result.exception)
        for name in files:
            assert (case.results / name).is_file(), name
    collars = case.folder / "collars.csv"
    collars.write_text("x,y,z,azimuth,dip,length\n25,25,0,0,90,200\n125,125,0,0,90,200\n")
    result = invoke(app, "drill", case.results, "--collars", collars, "-o", case.folder / "rank.csv")
    assert result.exit_code == 0, result.output
    rows = (case.folder / "rank.csv").read_text().splitlines()
    assert rows[1].startswith("1,line 3,125.0,125.0")
    # A deterministic run works too (no posterior: a single model).
    assert invoke(app, "predict", case.invert, stations, "-q").exit_code == 0


@pytest.mark.parametrize("arguments, expected", [
    (("predict", "{missing}", "{stations}"), "results directory not found"),
    (("drill", "{missing}", "--collar", "1,2,3", "--azimuth", "0", "--dip", "90", "--length", "10"),
     "results directory not found"),
    (("export", "{missing}", "--format", "vtk"), "results directory not found"),
    (("drill", "{results}", "--collar", "1,2", "--azimuth", "0", "--dip", "90", "--length", "10"), "--collar '1,2'"),
    (("drill", "{results}", "--collar", "a,b,c", "--azimuth", "0", "--dip", "90", "--length", "10"), "X,Y,Z"),
    (("drill", "{results}", "--collar", "1,2,3"), "missing --azimuth, --dip, --length"),
])
def test_cli_bad_input_exits_2_with_one_line(case, app, arguments, expected):
    names = {"missing": case.folder / "no_such_results", "results": case.results, "stations": case.folder / "s.csv"}
    result = invoke(app, *(argument.format(**names) for argument in arguments))
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in result.output
