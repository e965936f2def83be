"""The FFT forward operator: exact against the dense sensitivity, its adjoint and gradient, the
geometries it accepts or refuses (and why), the operator choice in ``make_operator``, and the
float32 accuracy of every operator on a B4-like case.

Conventions (SPEC section 1): metres, z elevation positive up; density contrast in kg/m^3; gz in
mGal, positive downward; operators in mGal per kg/m^3.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gravuq.errors import InputError
from gravuq.forward import (
    DenseOperator,
    FFTOperator,
    MatrixFreeOperator,
    estimate_memory,
    fft_operator,
    make_operator,
    sensitivity_matrix,
    station_lattice,
)
from gravuq.mesh import TensorMesh


@pytest.fixture(scope="module")
def lattice_case():
    """A mesh uniform in x (20 m) and y (30 m) with layers of 40, 25, 15, 10 m, at UTM-like
    coordinates; stations on a lattice offset 0.3 dx and 0.7 dy from the cell edges, reaching past
    the mesh on three sides, with holes, shuffled, all 3 m above the top."""
    mesh = TensorMesh(np.full(9, 20.0), np.full(7, 30.0), np.array([40.0, 25.0, 15.0, 10.0]),
                      (512000.0, 7001000.0, -90.0))
    x, y = np.meshgrid(mesh.nodes_x[0] + 6.0 + 20.0 * np.arange(-3, 8), mesh.nodes_y[0] + 21.0 + 30.0 * np.arange(1, 9))
    stations = np.stack([x.ravel(), y.ravel(), np.full(x.size, mesh.nodes_z[-1] + 3.0)], axis=1)
    rng = np.random.default_rng(5)
    stations = stations[rng.permutation(stations.shape[0])[:70]]
    matrix = np.asarray(sensitivity_matrix(mesh, stations, dtype="float64"))
    density = 300.0 * rng.standard_normal((2, 3, mesh.n_cells))
    residual = rng.standard_normal((2, 3, stations.shape[0]))
    return mesh, stations, matrix, density, residual


def relative_error(ours, reference) -> float:
    return float(np.abs(np.asarray(ours, np.float64) - reference).max() / np.abs(reference).max())


def test_fft_matches_the_dense_operator_in_float64(lattice_case):
    mesh, stations, matrix, density, residual = lattice_case
    operator = fft_operator(mesh, stations, dtype="float64")
    assert isinstance(operator, FFTOperator) and operator.n_stations == 70 and operator.n_cells == mesh.n_cells
    predicted = operator.forward(jnp.asarray(density))
    back = operator.adjoint(jnp.asarray(residual))
    assert predicted.shape == residual.shape and back.shape == density.shape
    assert relative_error(predicted, density @ matrix.T) <= 1e-10
    assert relative_error(back, residual @ matrix) <= 1e-10


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fft_adjoint_identity_with_batched_members(lattice_case, dtype):
    """<G m, d> = <m, G^T d> for every member; a batch gives what each member gives alone."""
    mesh, stations, _, density, residual = lattice_case
    operator = fft_operator(mesh, stations, dtype=dtype)
    predicted = np.asarray(operator.forward(jnp.asarray(density)), np.float64)
    back = np.asarray(operator.adjoint(jnp.asarray(residual)), np.float64)
    left = np.sum(predicted * residual, axis=-1)
    right = np.sum(density * back, axis=-1)
    np.testing.assert_allclose(left, right, rtol=1e-12 if dtype == "float64" else 1e-5)
    np.testing.assert_allclose(np.asarray(operator.forward(jnp.asarray(density[1, 2])), np.float64),
                               predicted[1, 2], rtol=0.0, atol=1e-6 * np.abs(predicted).max())


def test_fft_float32_within_1e5_of_max(lattice_case):
    mesh, stations, matrix, density, residual = lattice_case
    operator = fft_operator(mesh, stations)
    assert operator.dtype == np.float32 and operator.spectrum.dtype == jnp.complex64
    predicted = operator.forward(jnp.asarray(density, jnp.float32))
    assert predicted.dtype == jnp.float32
    assert relative_error(predicted, density @ matrix.T) <= 1e-5
    assert relative_error(operator.adjoint(jnp.asarray(residual, jnp.float32)), residual @ matrix) <= 1e-5


def test_gradient_through_fft_forward_is_the_adjoint(lattice_case):
    mesh, stations, matrix, density, _ = lattice_case
    operator = fft_operator(mesh, stations, dtype="float64")
    observed = density[0, 0] @ matrix.T + 1.0
    weights = np.linspace(0.5, 2.0, observed.size)

    def loss(model):
        return 0.5 * jnp.sum(weights * (operator.forward(model) - observed) ** 2)

    gradient = np.asarray(jax.jit(jax.grad(loss))(jnp.asarray(density[0])))
    expected = (weights * (density[0] @ matrix.T - observed)) @ matrix
    assert relative_error(gradient, expected) <= 1e-10


def test_geometries_the_fft_refuses_say_why():
    mesh = TensorMesh.uniform((0.0, 0.0, -100.0), (10.0, 10.0, 10.0), (6, 5, 4))
    x, y = np.meshgrid(mesh.centers_x, mesh.centers_y)
    grid = np.stack([x.ravel(), y.ravel(), np.full(x.size, 1.0)], axis=1)
    assert not isinstance(station_lattice(mesh, grid), str)

    two_heights = grid.copy()
    two_heights[::2, 2] = 5.0
    assert "one height" in station_lattice(mesh, two_heights)
    off_lattice = grid.copy()
    off_lattice[7, 0] += 2.5
    assert "station 7" in station_lattice(mesh, off_lattice)
    uneven = TensorMesh(np.array([10.0, 10.0, 12.0, 10.0, 10.0, 10.0]), mesh.widths_y, mesh.widths_z, mesh.origin)
    assert "along x vary" in station_lattice(uneven, grid)

    with pytest.raises(InputError, match="one height.*use mode = 'dense', 'matrix_free' or 'auto'"):
        make_operator(mesh, two_heights, mode="fft")
    with pytest.raises(InputError, match="fft' does not fit"):
        make_operator(mesh, grid, mode="fft", memory_limit_bytes=1000)


def test_auto_prefers_fft_where_the_geometry_allows(lattice_case):
    mesh, stations, *_ = lattice_case
    operator, estimate = make_operator(mesh, stations, mode="auto", memory_limit_bytes=10**12)
    assert isinstance(operator, FFTOperator)
    assert estimate.fft_bytes is not None and "FFT" in estimate.describe()
    scattered = stations + np.array([3.0, 0.0, 0.0]) * (np.arange(stations.shape[0]) % 2)[:, None]
    operator, estimate = make_operator(mesh, scattered, mode="auto", memory_limit_bytes=10**12)
    assert isinstance(operator, DenseOperator)
    assert estimate.fft_bytes is None and "off the lattice" in estimate.fft_reason
    operator, _ = make_operator(mesh, stations, mode="auto", memory_limit_bytes=20_000)
    assert isinstance(operator, MatrixFreeOperator)
    # Without stations, the estimate has no FFT entry.
    assert estimate_memory(mesh, stations.shape[0]).fft_bytes is None


def test_float32_operators_within_1e4_of_max_on_a_b4_like_case():
    """B4's geometry at 20 x 20 x 10 cells of 500 m, stations on the cell centres at the mesh top
    (on the top faces), a smooth model of B4's amplitude: every float32 operator (the default)
    stays within 1e-4 of max |gz| of the float64 dense operator."""
    mesh = TensorMesh.uniform((0.0, 0.0, -5000.0), (500.0, 500.0, 500.0), (20, 20, 10))
    x, y = np.meshgrid(mesh.centers_x, mesh.centers_y)
    stations = np.stack([x.ravel(), y.ravel(), np.full(x.size, mesh.nodes_z[-1])], axis=1)
    centres = mesh.cell_centers
    density = (950.0 * np.sin(centres[:, 0] / 1500.0) * np.cos(centres[:, 1] / 2000.0)
               * np.exp(centres[:, 2] / 3000.0))
    reference = np.asarray(sensitivity_matrix(mesh, stations, dtype="float64")) @ density
    for mode, kind in (("dense", DenseOperator), ("matrix_free", MatrixFreeOperator), ("fft", FFTOperator)):
        operator, _ = make_operator(mesh, stations, mode=mode)
        assert isinstance(operator, kind) and operator.dtype == np.float32
        gz = operator.forward(jnp.asarray(density, jnp.float32))
        assert gz.dtype == jnp.float32
        assert relative_error(gz, reference) <= 1e-4, mode
