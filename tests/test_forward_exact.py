"""The fast exact forward paths: ``exact_operator`` takes the float64 FFT operator on a station
lattice, and agrees with the float64 rows (direct way) to float64 rounding; elsewhere it keeps
the rows. Units: metres (z up), kg/m^3, gz in mGal positive down.
"""

from __future__ import annotations

import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from gravuq.forward import MemoryBudget, exact_operator, sensitivity_matrix
from gravuq.mesh import TensorMesh

MESH = TensorMesh.uniform((-25.0, -25.0, -325.0), (50.0, 50.0, 50.0), (9, 8, 7))


def lattice_stations(height: float, step: int = 1) -> np.ndarray:
    x, y = np.meshgrid(MESH.centers_x[::step] - 12.5, MESH.centers_y[::step] + 50.0)
    return np.stack([x.ravel(), y.ravel(), np.full(x.size, height)], axis=1)


@pytest.mark.parametrize("height", [25.0, 1.0, 140.0], ids=["on the top plane", "inside the top layer", "above"])
def test_lattice_stations_take_the_float64_fft_equal_to_the_rows(height):
    stations = lattice_stations(height)
    operator = exact_operator(MESH, stations)
    assert operator.kind == "fft" and operator.dtype == np.float64
    rows = np.asarray(sensitivity_matrix(MESH, stations, dtype="float64", way="direct"))
    rng = np.random.default_rng(3)
    density = rng.uniform(-500.0, 900.0, (2, MESH.n_cells))
    gz = np.asarray(operator.forward(jnp.asarray(density)))
    expected = density @ rows.T
    # float64 rounding of the FFTs only: far below the 1e-10 the kernels are held to.
    np.testing.assert_allclose(gz, expected, rtol=0.0, atol=1e-12 * np.abs(expected).max())
    residual = rng.normal(size=(2, len(stations)))
    np.testing.assert_allclose(np.asarray(operator.adjoint(jnp.asarray(residual))), residual @ rows,
                               rtol=0.0, atol=1e-12 * np.abs(residual @ rows).max())


def test_scattered_stations_keep_the_rows_and_a_small_budget_goes_matrix_free():
    rng = np.random.default_rng(5)
    stations = np.stack([rng.uniform(0, 400, 30), rng.uniform(0, 400, 30), np.full(30, 30.0)], 1)
    assert exact_operator(MESH, stations).kind == "dense"
    small = MemoryBudget(int(0.5 * 30 * MESH.n_cells * 8))
    assert exact_operator(MESH, stations, small).kind == "matrix_free"
    # A lattice with holes and a station repeated is still a lattice.
    holes = np.concatenate([lattice_stations(30.0, 2)[1:], lattice_stations(30.0, 2)[:1]])
    assert exact_operator(MESH, holes).kind == "fft"


def test_the_forward_command_imports_no_inference_code():
    """``gravuq forward`` (cli -> gravuq.runs) starts without the inference stack: its import
    would cost about 1.4 s of a 4 s start-up on 2 cores."""
    code = ("import sys, gravuq_cli.main, gravuq.runs\n"
            "heavy = [m for m in ('gravuq.inference', 'gravuq.pipeline', 'optax', 'numpyro', 'arviz', "
            "'matplotlib', 'harmonica', 'scipy.stats') if m in sys.modules]\n"
            "print(','.join(heavy))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"imported at start-up: {result.stdout.strip()}"
