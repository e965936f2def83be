"""The NumPy exact products (``gravuq.forward._exact``): the same kernel as the JAX float64 rows,
evaluated with NumPy, equal to them to float64 rounding on a lattice (FFT) and off it (rows,
direct and from a table), for gz and gradient components, on faces and on the ground; air cells
zeroed; the JAX operator where NumPy is not taken; and ``gravuq forward`` without JAX.

Units: metres (z up), kg/m^3, gz in mGal positive down, gradients in Eotvos.
"""

from __future__ import annotations

import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from gravuq.forward import (
    _exact,
    active_cell_operator,
    exact_forward,
    exact_operator,
    sensitivity_matrix,
    station_lattice,
)
from gravuq.forward._offsets import node_offsets
from gravuq.mesh import TensorMesh

MESH = TensorMesh.uniform((-25.0, -25.0, -325.0), (50.0, 50.0, 50.0), (9, 8, 7))
DENSITY = np.random.default_rng(3).uniform(-500.0, 900.0, MESH.n_cells)


def lattice_stations(height: float) -> np.ndarray:
    x, y = np.meshgrid(MESH.centers_x - 12.5, MESH.centers_y + 50.0)
    return np.stack([x.ravel(), y.ravel(), np.full(x.size, height)], axis=1)


def jax_rows(stations, component="gz"):
    return np.asarray(sensitivity_matrix(MESH, stations, dtype="float64", way="direct", component=component))


def assert_float64_equal(values, expected):
    np.testing.assert_allclose(values, expected, rtol=0.0, atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("component, height", [("gz", 25.0), ("gz", 1.0), ("gz", 140.0), ("gxx", 25.0),
                                               ("gyz", 25.0), ("gzz", 25.0)],
                         ids=["gz on the top plane", "gz inside the top layer", "gz above", "gxx on the ground",
                              "gyz on the ground", "gzz on the ground"])
def test_the_numpy_fft_equals_the_jax_float64_rows(component, height):
    stations = lattice_stations(height)
    values, how = exact_forward(MESH, stations, DENSITY, components=(component,))
    assert how == "float64 FFT in NumPy"
    assert_float64_equal(values, jax_rows(stations, component) @ DENSITY)


def test_the_numpy_fft_builds_its_kernel_in_slabs_of_layers(monkeypatch):
    stations = lattice_stations(25.0)
    lattice = station_lattice(MESH, stations)
    whole = _exact.lattice_product(MESH, lattice, DENSITY, "gzz")
    monkeypatch.setattr(_exact, "_CHUNK_VALUES", 1)  # 4 layers a slab: 7 layers in two slabs
    np.testing.assert_allclose(_exact.lattice_product(MESH, lattice, DENSITY, "gzz"), whole, rtol=1e-13, atol=0.0)


def scattered_stations() -> np.ndarray:
    rng = np.random.default_rng(5)
    above = np.stack([rng.uniform(-20, 420, 12), rng.uniform(-20, 380, 12), rng.uniform(26.0, 90.0, 12)], 1)
    # On a vertical face inside the mesh (x on a node plane), on an edge, on the ground.
    special = np.array([[125.0, 110.0, -140.0], [125.0, 125.0, -140.0], [210.0, 160.0, 25.0]])
    return np.concatenate([above, special])


@pytest.mark.parametrize("component", ["gz", "gxx", "gxy"])
def test_the_numpy_rows_equal_the_jax_float64_rows_off_a_lattice(component):
    stations = scattered_stations()
    assert isinstance(station_lattice(MESH, stations), str)
    values, how = exact_forward(MESH, stations, DENSITY, components=(component,))
    assert how == "float64 rows in NumPy"
    assert_float64_equal(values, jax_rows(stations, component) @ DENSITY)


def test_the_numpy_rows_from_a_table_equal_the_jax_rows():
    # A grid of half the cell width at two heights: few distinct offsets, no lattice of the cells.
    x, y = np.meshgrid(np.arange(6) * 25.0 + 60.0, np.arange(6) * 25.0 + 40.0)
    stations = np.concatenate([np.stack([x.ravel(), y.ravel(), np.full(36, h)], 1) for h in (30.0, 55.0)])
    assert node_offsets(MESH, stations).way == "table" and isinstance(station_lattice(MESH, stations), str)
    assert_float64_equal(_exact.rows_product(MESH, stations, DENSITY), jax_rows(stations) @ DENSITY)


def test_several_components_air_cells_and_the_jax_path(monkeypatch):
    x, y = np.meshgrid(MESH.centers_x, MESH.centers_y)
    surface = -30.0 - 60.0 * np.exp(-((x - 200.0) ** 2 + (y - 175.0) ** 2) / (2 * 90.0**2))
    mesh = MESH.with_surface(surface)
    assert mesh.has_topography and 0 < mesh.n_active < mesh.n_cells
    components = ("gz", "gzz")
    for stations in (lattice_stations(40.0), scattered_stations()[:12]):
        expected = np.asarray(active_cell_operator(exact_operator(mesh, stations, components=components),
                                                   mesh).forward(jnp.asarray(DENSITY)))
        values, how = exact_forward(mesh, stations, DENSITY, components=components)
        assert "NumPy" in how and values.shape == (2 * len(stations),)
        for block in range(2):  # component-major: gz, then gzz
            part = slice(block * len(stations), (block + 1) * len(stations))
            assert_float64_equal(values[part], expected[part])
    # Above the size where NumPy is taken off a lattice, the JAX operator computes the same values.
    monkeypatch.setattr(_exact, "NUMPY_ROWS_MAX_EVALUATIONS", 0)
    values, how = exact_forward(mesh, stations, DENSITY, components=components)
    assert how == "float64 dense operator in JAX"
    assert_float64_equal(values, expected)


def test_the_forward_command_imports_no_jax(case):
    """``gravuq forward`` on gridded stations (the tiny case) and on a gz + gzz config computes in
    NumPy: no jax, jaxlib or equinox in the process, and the values of the float64 rows."""
    config = case.config("forward_numpy")
    gradients = case.folder / "gradients.toml"
    gradients.write_text(config.read_text().replace('path = "stations.csv"',
                                                    'path = "stations.csv"\ncomponents = ["gz", "gzz"]\ngradient_std = 1.0'))
    code = ("import sys\nfrom gravuq_cli.main import app\n"
            "for config, output in ((sys.argv[1], 'numpy.csv'), (sys.argv[2], 'numpy_gradients.csv')):\n"
            "    try:\n        app(['forward', config, '-o', output, '--force', '-q'])\n"
            "    except SystemExit as exit:\n        assert not exit.code, exit.code\n"
            "print(','.join(m for m in sys.modules if m.split('.')[0] in ('jax', 'jaxlib', 'equinox')))")
    result = subprocess.run([sys.executable, "-c", code, str(config), str(gradients)], capture_output=True,
                            text=True, cwd=case.folder)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"imported: {result.stdout.strip()}"
    from gravuq.io import read_stations_csv

    gz = read_stations_csv(case.folder / "numpy.csv").gz
    assert_float64_equal(gz, case.matrix @ case.truth.ravel())
    header = (case.folder / "numpy_gradients.csv").read_text().splitlines()[0]
    assert "gz" in header and "gzz" in header
