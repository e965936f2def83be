"""The real-data example (examples/real_gambit): 1630 Bouguer stations read through its config
from ``<repository>/../shared/data/gambit-point-small`` (skipped when that folder is absent).

The files are header-less: x, y, z (m) in one, the anomaly and the one-sigma accuracy in
um/s^2 (1 um/s^2 = 0.1 mGal) one value a line in two others. The checks: the station count,
the unit conversion to mGal against the figures in the data's README, the stated accuracies
kept as each station's std (the modelling error is learned, not set by hand), and a fast
inversion on a much coarser mesh.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from gravuq.config import load_config
from gravuq.io import read_station_table, read_survey

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "gambit-point-small"
CONFIG = ROOT / "examples" / "real_gambit" / "config.toml"

pytestmark = pytest.mark.skipif(not (DATA / "Grav_small_MeasEs.csv").is_file(),
                                reason=f"real data not present at {DATA}")


@pytest.fixture(scope="module")
def config():
    return load_config(CONFIG)


def test_config_reads_the_shared_files_where_they_lie(config):
    assert config.data.path == (DATA / "Grav_small_MeasEs.csv").resolve()
    assert config.data.gz_path == (DATA / "Grav_small_gz.csv").resolve()
    assert config.data.std_path == (DATA / "Grav_small_acc.csv").resolve()
    assert config.data.format == "xyz" and config.data.units == "um/s2" and config.data.detrend == "plane"


def test_survey_has_1630_stations_in_mgal(config):
    survey = read_survey(config.data)
    assert survey.n_stations == 1630
    assert np.all(survey.z == 0.0)  # flat, Bouguer-corrected ground
    assert -78_000 < survey.x.min() < -77_000 and 77_000 < survey.x.max() < 79_000
    assert -28_000 < survey.y.min() < -27_000 and 27_000 < survey.y.max() < 29_000
    # As read (trend added back), in mGal: the data README gives about -32.6 to +36.4 mGal; the
    # files' own extremes are -325.5 and +338.7 um/s^2.
    observed = survey.gz_observed
    assert observed.min() == pytest.approx(-32.551, abs=1e-3)
    assert observed.max() == pytest.approx(33.874, abs=1e-3)
    assert -32.6 <= observed.min() and observed.max() <= 36.4
    # detrend = "plane" removed a plane: what is left has no mean and no linear trend.
    design = np.stack([np.ones(1630), survey.x - survey.x.mean(), survey.y - survey.y.mean()], axis=1)
    np.testing.assert_allclose(design.T @ survey.gz, 0.0, atol=1e-6 * np.abs(design).sum(axis=0).max())


def test_accuracy_becomes_std_in_mgal(config):
    accuracy = np.loadtxt(DATA / "Grav_small_acc.csv")  # um/s^2
    table = read_station_table(config.data)
    np.testing.assert_array_equal(table.std, accuracy)  # read as written, in file units
    # No floor is set: each station keeps its own accuracy, converted: 0.01 to 0.5 mGal (the
    # learned noise model adds the modelling error of cells wider than the station spacing).
    assert config.data.std_min == 0.0
    survey = read_survey(config.data)
    np.testing.assert_allclose(survey.std, 0.1 * accuracy, rtol=1e-12)
    assert survey.std.min() == pytest.approx(0.01) and survey.std.max() == pytest.approx(0.5)


def test_gaussian_posterior_on_a_coarse_mesh(config):
    from gravuq.pipeline import prepare, recover

    # 10 km x 10 km x 5 km cells over the same volume: 19 x 9 x 6 cells, a few seconds.
    mesh = dataclasses.replace(config.mesh, origin=(-95_000.0, -45_000.0, -30_000.0),
                               cell_size=(10_000.0, 10_000.0, 5_000.0), shape=(19, 9, 6),
                               widths_x=None, widths_y=None, widths_z=None)
    # A fixed prior and the stated noise: learning on 1630 stations (a Cholesky of their system
    # per evaluation) is for `gravuq validate` and the benchmarks, not the suite.
    inference = dataclasses.replace(config.inference, method="gaussian", members=8, prior_scale="fixed",
                                    noise="stated", prior_std=100.0, prior_correlation_length=20_000.0)
    coarse = dataclasses.replace(config, mesh=mesh, inference=inference)
    setup = prepare(coarse)
    assert setup.survey.n_stations == 1630 and setup.mesh.n_cells == 19 * 9 * 6
    recovery = recover(setup)
    metrics = recovery.metrics
    assert np.isfinite(metrics["chi2_per_datum"]) and metrics["members"] == 8
    # The detrended anomaly has an RMS near 10 mGal; the posterior mean explains most of it.
    assert metrics["rms_mgal"] < 0.5 * np.sqrt(np.mean(setup.survey.gz**2))
    assert "chi2_per_datum_learned" not in metrics  # the stated noise: nothing learned
    summary = recovery.summary
    assert np.all(np.isfinite(summary.mean)) and np.all(summary.std > 0)
    assert np.all((summary.exceedance >= 0) & (summary.exceedance <= 1))
