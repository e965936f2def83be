"""The demo's geometry: the mesh top is the ground and the stations stand above it, so no cell
of the model is air above a station; the benchmark geometry (B1) is kept as the seed paper's."""

from __future__ import annotations

import numpy as np
import pytest

from gravuq.config import load_config
from gravuq.examples import STATION_ELEVATION, dipping_block_mesh, write_dipping_block
from gravuq.io import mesh_from_config, read_stations_csv
from gravuq.pipeline import read_truth
from gravuq.synthetic import b1_mesh, dipping_block_density


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    config = load_config(write_dipping_block(tmp_path_factory.mktemp("demo"), members=4))
    mesh = mesh_from_config(config.mesh)
    stations = read_stations_csv(config.data.path, need_std=True)
    return config, mesh, stations


def test_no_active_cell_lies_above_a_station(demo):
    _, mesh, stations = demo
    cell_tops = mesh.nodes_z[1:]  # the top face of every layer
    assert cell_tops.max() <= stations.z.min()
    assert mesh.nodes_z[-1] == pytest.approx(0.0)  # the ground surface
    assert np.all(stations.z == STATION_ELEVATION)


def test_the_demo_body_is_the_b1_body_one_layer_below_the_ground(demo):
    config, mesh, _ = demo
    truth = read_truth(config, mesh)
    np.testing.assert_array_equal(truth, dipping_block_density(b1_mesh()))
    layers = np.nonzero(truth.reshape(mesh.shape[0], -1).max(axis=1) > 0)[0]
    assert mesh.nodes_z[-1] - mesh.nodes_z[layers.max() + 1] == pytest.approx(50.0)  # body top 50 m deep
    assert 0.0 < config.data.std < 0.01  # mGal: 1 % of the std of the noise-free gz


def test_the_benchmark_geometry_is_the_seed_papers(tmp_path):
    config = load_config(write_dipping_block(tmp_path, geometry="b1"))
    mesh = mesh_from_config(config.mesh)
    assert mesh.same_as(b1_mesh())
    assert mesh.nodes_z[-1] == pytest.approx(25.0)
    assert dipping_block_mesh("b1").same_as(b1_mesh())
    with pytest.raises(ValueError, match="geometry"):
        dipping_block_mesh("air")
