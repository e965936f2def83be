"""Joint inversion of several measured components: ``[data] components``, the CSV and UBC-GIF
GG3D readers, ``gravuq forward`` with one column per component, and the exact (gaussian)
posterior of gz + gzz against gz alone on the same stations, prior and noise.

Conventions (SPEC section 1): metres, z up; density contrast kg/m^3; gz mGal positive down;
gradients Eotvos (Harmonica's signs, ``gxz``/``gyz`` z down, ``gzz > 0`` above excess mass).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gravuq.config import load_config, parse_config
from gravuq.errors import InputError
from gravuq.forward import StackedOperator, sensitivity_matrix
from gravuq.io import model_dataset, read_survey, read_ubc_gg, write_netcdf
from gravuq.mesh import TensorMesh
from gravuq.pipeline import prepare, recover
from gravuq.runs import forward_stations

CONFIG = """
[data]
path = "{path}"
components = {components}
std = 0.05
gradient_std = 2.0

[mesh]
origin = [0.0, 0.0, -300.0]
cell_size = [50.0, 50.0, 50.0]
shape = [10, 10, 6]

[inference]
method = "gaussian"
members = 20
seed = 1
prior_scale = "fixed"
prior_std = 150.0
prior_correlation_length = 100.0
noise = "stated"

[output]
directory = "results"
threshold = 250.0

[truth]
path = "truth.nc"
"""


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """A +500 kg/m^3 block (top 100 m deep) under 100 stations at 80 m; gz and gzz from
    ``gravuq forward --noise`` (one column each), configs for gz + gzz and gz alone."""
    folder = tmp_path_factory.mktemp("joint")
    mesh = TensorMesh.uniform((0.0, 0.0, -300.0), (50.0, 50.0, 50.0), (10, 10, 6))
    z, y, x = np.meshgrid(mesh.centers_z, mesh.centers_y, mesh.centers_x, indexing="ij")
    truth = np.where((np.abs(x - 250) < 100) & (np.abs(y - 250) < 100) & (z < -100) & (z > -250), 500.0, 0.0)
    write_netcdf(folder / "truth.nc", model_dataset(mesh, {"density": truth}, {}))
    gx, gy = np.meshgrid(mesh.centers_x, mesh.centers_y)
    rows = "".join(f"{a},{b},80.0\n" for a, b in zip(gx.ravel(), gy.ravel()))
    (folder / "locations.csv").write_text("x,y,z\n" + rows)
    configs = {}
    for name, components, path in (("forward", '["gz", "gzz"]', "locations.csv"),
                                   ("joint", '["gz", "gzz"]', "data.csv"), ("gz", '["gz"]', "data.csv")):
        configs[name] = folder / f"{name}.toml"
        configs[name].write_text(CONFIG.format(path=path, components=components))
    forward_stations(load_config(configs["forward"]), folder / "data.csv", noise=True)
    return folder, mesh, truth, configs


def test_forward_writes_one_column_per_component(case):
    folder, mesh, truth, configs = case
    header = (folder / "data.csv").read_text().splitlines()[0]
    assert header == "x,y,z,gz,std,gzz,std_gzz"
    survey = read_survey(load_config(configs["joint"]).data)
    assert survey.components == ("gz", "gzz") and survey.n_data == 2 * survey.n_stations == 200
    # The data are the noise-free field plus noise of the stated std (gz 0.05 mGal, gzz 2 E).
    exact = {c: sensitivity_matrix(mesh, survey.coordinates, "float64", component=c) @ truth.ravel()
             for c in ("gz", "gzz")}
    for c, std in (("gz", 0.05), ("gzz", 2.0)):
        residual = survey.block(c) - np.asarray(exact[c])
        assert np.all(survey.block(c, survey.std) == std)
        assert 0.6 < np.std(residual) / std < 1.4
    assert np.asarray(exact["gzz"]).max() > 10.0  # gzz well above its noise (2 E) over the body


def test_gz_and_gzz_jointly_narrow_the_exact_posterior(case):
    """Same stations, prior and noise: adding gzz can only lower each cell's exact posterior
    variance (a theorem of the linear Gaussian model, so a wrong gzz row or a wrong stacking of
    data, std and rows shows as a violation or as no gain); at the body's depth the std falls,
    and the CRPS against the truth is lower."""
    folder, mesh, truth, configs = case
    runs = {}
    for name in ("joint", "gz"):
        config = load_config(configs[name])
        setup = prepare(dataclasses.replace(config, output=dataclasses.replace(config.output,
                                                                               directory=folder / name)))
        runs[name] = (setup, recover(setup))
    assert isinstance(runs["joint"][0].operator, StackedOperator)
    joint, alone = (runs[name][1] for name in ("joint", "gz"))
    std_joint, std_alone = (np.asarray(r.summary.std, np.float64).reshape(mesh.shape) for r in (joint, alone))
    assert np.all(std_joint <= std_alone * (1 + 1e-9))
    body_layers = (mesh.centers_z < -100) & (mesh.centers_z > -250)
    at_depth = std_joint[body_layers].mean() / std_alone[body_layers].mean()
    near_top = std_joint[-1].mean() / std_alone[-1].mean()
    assert at_depth < 0.99 and near_top < at_depth  # gzz resolves shallow structure best
    assert joint.metrics["crps"] < alone.metrics["crps"]
    assert set(joint.metrics["by_component"]) == {"gz", "gzz"}
    for c in ("gz", "gzz"):
        assert 0.5 < joint.metrics["by_component"][c]["chi2_per_datum"] < 1.5


GG_FILE = """! a GG3D observation file: x north, y east, z down in the components' names
datacomp=zz, xz,yy
3
100 200 80  10.0 -2.0 3.5  1.0 0.5 0.7
150 200 80  11.0 -2.5 3.0  1.0 0.5 0.7
100 250 80  12.0 -3.0 2.5  1.0 0.5 0.7
"""


def test_ubc_gg3d_components_map_to_east_north_names(tmp_path):
    (tmp_path / "ftg.obs").write_text(GG_FILE)
    table, components, values, std = read_ubc_gg(tmp_path / "ftg.obs")
    assert components == ("gzz", "gyz", "gxx")  # zz; xz = north-down = gyz; yy = east-east = gxx
    np.testing.assert_array_equal(table.x, [100, 150, 100])
    np.testing.assert_array_equal(values[:, 1], [-2.0, -2.5, -3.0])
    np.testing.assert_array_equal(std[:, 2], [0.7, 0.7, 0.7])
    text = ('[data]\npath = "ftg.obs"\ncomponents = ["gxx", "gzz"]\n'
            "[mesh]\norigin = [0.0, 0.0, -100.0]\ncell_size = [50.0, 50.0, 50.0]\nshape = [4, 4, 2]\n")
    survey = read_survey(parse_config(text, tmp_path / "c.toml").data)
    assert survey.components == ("gxx", "gzz")
    np.testing.assert_array_equal(survey.gz, [3.5, 3.0, 2.5, 10.0, 11.0, 12.0])
    np.testing.assert_array_equal(survey.std, [0.7] * 3 + [1.0] * 3)


@pytest.mark.parametrize("content, message", [
    (GG_FILE.replace("zz, xz,yy", "zz,uv,yy"), "not modelled"),
    (GG_FILE.replace("\n3\n", "\n4\n"), "gives 4 locations but 3"),
    (GG_FILE.replace("3.5  1.0", "3.5  0.0"), "must be > 0"),
])
def test_bad_gg3d_files_name_the_line(tmp_path, content, message):
    (tmp_path / "ftg.obs").write_text(content)
    with pytest.raises(InputError, match=message):
        read_ubc_gg(tmp_path / "ftg.obs")


def test_components_keys_are_checked(tmp_path):
    (tmp_path / "s.csv").write_text("x,y,z,gz,std\n0,0,1,1,0.1\n")
    mesh = "[mesh]\norigin = [0.0, 0.0, -100.0]\ncell_size = [50.0, 50.0, 50.0]\nshape = [2, 2, 2]\n"
    for components, message in (('["gz", "g_zz"]', "distinct values out of"), ('["gz", "gz"]', "distinct")):
        with pytest.raises(InputError, match=message):
            parse_config(f'[data]\npath = "s.csv"\ncomponents = {components}\n{mesh}', tmp_path / "c.toml")
    data = parse_config(f'[data]\npath = "s.csv"\nstd = 0.1\ncomponents = ["gz", "gzz"]\n{mesh}',
                        tmp_path / "c.toml").data
    with pytest.raises(InputError, match="no column 'gzz'"):
        read_survey(data)


def test_predict_gives_each_component_and_the_trend_to_gz_alone(case, tmp_path):
    """Posterior-predictive gz and gzz at new stations: the mean over draws of each component's
    rows, the regional trend (fitted to gz) added to gz only; one CSV with five columns each."""
    import xarray as xr

    from gravuq.products import Results, predict, write_predictions

    folder, mesh, truth, configs = case
    draws = np.stack([truth.ravel(), 0.5 * truth.ravel()])
    results = Results(tmp_path, mesh, xr.Dataset(), draws, 250.0, "gaussian", detrend="plane",
                      trend_coefficients=(2.0, 1e-3, 0.0), trend_origin=(0.0, 0.0), has_posterior=True)
    stations = np.array([[250.0, 250.0, 60.0], [100.0, 400.0, 120.0]])
    predictions = [predict(results, stations, None, c) for c in ("gz", "gzz")]
    for p in predictions:
        rows = np.asarray(sensitivity_matrix(mesh, stations, "float64", component=p.component))
        regional = 2.0 + 1e-3 * stations[:, 0] if p.component == "gz" else 0.0
        np.testing.assert_allclose(p.gz_mean, 0.75 * rows @ truth.ravel() + regional, rtol=1e-12)
        np.testing.assert_allclose(p.gz_std, np.std(draws @ rows.T, axis=0, ddof=1), rtol=1e-12)
    path = write_predictions(tmp_path / "predict.csv", predictions)
    assert path.read_text().splitlines()[0] == ("x,y,z,gz_mean,gz_std,gz_q05,gz_q95,gz_obs_std,"
                                                "gzz_mean,gzz_std,gzz_q05,gzz_q95,gzz_obs_std")
