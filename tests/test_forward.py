"""The forward kernel and operators: physics with exact answers, a peer (Harmonica), and the
linear algebra the inversions rely on (adjoint, dense vs matrix-free, the three ways of building
rows, gradients), plus the mesh geometry and the B1 synthetic that feed them.

Conventions (SPEC section 1): metres, z elevation positive up; density contrast in kg/m^3;
``prism_gz`` in m/s^2 and the operators in mGal, both positive downward.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gravuq.constants import GRAVITATIONAL_CONSTANT, SI_TO_MGAL
from gravuq.errors import InputError
from gravuq.forward import (
    DenseOperator,
    FFTOperator,
    MatrixFreeOperator,
    make_operator,
    prism_gz,
    sensitivity_matrix,
)
from gravuq.io import read_ubc_mesh, write_ubc_mesh
from gravuq.mesh import TensorMesh

#: gz (m/s^2, density 1) of every prism at every station: (n_stations, n_prisms). One jit, reused.
_pairwise_gz = jax.jit(jax.vmap(jax.vmap(prism_gz, in_axes=(None, 0)), in_axes=(0, None)))
_gz_gradient = jax.jit(jax.vmap(jax.grad(prism_gz), in_axes=(0, None)))

#: A reference prism (west, east, south, north, bottom, top) in m and its singular points.
PRISM = np.array([0.0, 10.0, 0.0, 20.0, -10.0, 0.0])
SINGULAR_STATIONS = {
    "inside": [5.0, 7.0, -4.0],
    "centre": [5.0, 10.0, -5.0],
    "east face": [10.0, 7.0, -3.0],
    "top face": [4.0, 12.0, 0.0],
    "bottom face": [4.0, 12.0, -10.0],
    "vertical edge": [10.0, 20.0, -6.0],
    "top edge": [3.0, 0.0, 0.0],
    "top vertex": [10.0, 20.0, 0.0],
    "bottom vertex": [0.0, 0.0, -10.0],
}


def gz_mgal(stations, prisms, density) -> np.ndarray:
    """gz in mGal (positive down) of each prism at each station, shape (n_stations, n_prisms)."""
    stations = jnp.asarray(np.atleast_2d(stations), dtype=jnp.float64)
    prisms = jnp.asarray(np.atleast_2d(prisms), dtype=jnp.float64)
    return np.asarray(_pairwise_gz(stations, prisms)) * np.asarray(density) * SI_TO_MGAL


# -- the peer: Harmonica ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def peer_geometry():
    """Random prisms and stations, with stations inside, on a face, an edge and a vertex of one."""
    rng = np.random.default_rng(20260401)
    n_prisms = 12
    west = rng.uniform(-200.0, 200.0, n_prisms)
    south = rng.uniform(-200.0, 200.0, n_prisms)
    top = rng.uniform(-150.0, 0.0, n_prisms)
    widths = rng.uniform(5.0, 80.0, (n_prisms, 3))
    prisms = np.stack([west, west + widths[:, 0], south, south + widths[:, 1],
                       top - widths[:, 2], top], axis=1)
    density = rng.uniform(-800.0, 800.0, n_prisms)
    outside = np.concatenate([
        np.stack([rng.uniform(-300, 300, 20), rng.uniform(-300, 300, 20), rng.uniform(1, 300, 20)], 1),
        np.stack([rng.uniform(-300, 300, 8), rng.uniform(-300, 300, 8), rng.uniform(-600, -400, 8)], 1),
    ])
    w, e, s, n, b, t = prisms[0]
    special = np.array([
        [0.5 * (w + e), 0.5 * (s + n), 0.5 * (b + t)],      # inside, at the centre
        [w + 0.3 * (e - w), s + 0.6 * (n - s), b + 0.2 * (t - b)],  # inside, off-centre
        [e, 0.5 * (s + n), b + 0.7 * (t - b)],               # on the east face
        [w + 0.4 * (e - w), s + 0.3 * (n - s), t],           # on the top face
        [w + 0.4 * (e - w), s + 0.3 * (n - s), b],           # on the bottom face
        [e, n, b + 0.4 * (t - b)],                           # on a vertical edge
        [w + 0.6 * (e - w), s, t],                           # on a horizontal edge
        [e, n, t],                                           # on the top vertex
        [w, s, b],                                           # on the bottom vertex
        [e + 30.0, n, t],                                    # in the plane of two faces, outside
    ])
    return prisms, density, np.concatenate([outside, special])


def _harmonica_pairs(harmonica, stations, prisms, density) -> np.ndarray:
    """Harmonica's g_z (mGal, positive down) of each prism alone: (n_stations, n_prisms)."""
    coordinates = tuple(stations[:, axis] for axis in range(3))
    return np.stack([harmonica.prism_gravity(coordinates, prisms[j:j + 1], density[j:j + 1], field="g_z")
                     for j in range(prisms.shape[0])], axis=1)


def assert_close_per_station(ours, theirs, relative):
    """Every pair within ``relative`` of the largest |value| at its station (a pair can be 0)."""
    scale = np.abs(theirs).max(axis=1, keepdims=True)
    error = np.abs(ours - theirs) / scale
    worst = np.unravel_index(np.argmax(error), error.shape)
    assert error.max() <= relative, f"relative error {error.max():.3g} at (station, prism) {worst}"


def test_prism_kernel_matches_harmonica_to_1e10(peer_geometry):
    harmonica = pytest.importorskip("harmonica")
    prisms, density, stations = peer_geometry
    ours = gz_mgal(stations, prisms, density)
    theirs = _harmonica_pairs(harmonica, stations, prisms, density)
    assert np.all(np.isfinite(ours))
    # Each pair on its own, relative to the largest value at that station (a pair can be 0).
    assert_close_per_station(ours, theirs, 1e-10)
    # And the summed field, station by station.
    np.testing.assert_allclose(ours.sum(axis=1), theirs.sum(axis=1), rtol=1e-10, atol=0.0)


def test_sensitivity_matrix_matches_harmonica_with_stations_on_nodes():
    """The node-shared operator (direct way, scattered stations) against Harmonica per cell,
    with stations on mesh nodes, edges, faces and inside cells."""
    harmonica = pytest.importorskip("harmonica")
    mesh = TensorMesh(np.array([20.0, 30.0, 25.0, 20.0]), np.array([15.0, 40.0, 25.0]),
                      np.array([30.0, 20.0, 10.0]), (100.0, -50.0, -60.0))
    rng = np.random.default_rng(3)
    x, y, z = mesh.nodes_x, mesh.nodes_y, mesh.nodes_z
    stations = np.array([
        [x[1], y[1], z[-1]], [x[2], y[2], z[-2]],               # vertices
        [x[1], 0.5 * (y[1] + y[2]), z[-1]],                     # edge
        [0.5 * (x[1] + x[2]), 0.5 * (y[0] + y[1]), z[-1]],      # top face
        [x[3], 0.5 * (y[1] + y[2]), 0.5 * (z[0] + z[1])],       # vertical face
        [0.4 * x[2] + 0.6 * x[3], 0.3 * y[1] + 0.7 * y[2], 0.5 * (z[1] + z[2])],  # inside a cell
        *np.stack([rng.uniform(x[0] - 50, x[-1] + 50, 6), rng.uniform(y[0] - 50, y[-1] + 50, 6),
                   rng.uniform(z[-1] + 1, z[-1] + 80, 6)], 1),
    ])
    density = rng.uniform(-500.0, 500.0, mesh.n_cells)
    matrix = np.asarray(sensitivity_matrix(mesh, stations, dtype="float64", way="direct"))
    zz, yy, xx = np.meshgrid(np.arange(3), np.arange(3), np.arange(4), indexing="ij")
    zz, yy, xx = zz.ravel(), yy.ravel(), xx.ravel()
    prisms = np.stack([x[xx], x[xx + 1], y[yy], y[yy + 1], z[zz], z[zz + 1]], axis=1)
    theirs = _harmonica_pairs(harmonica, stations, prisms, density)
    ours = matrix * density
    assert np.all(np.isfinite(matrix))
    assert_close_per_station(ours, theirs, 1e-10)


# -- exact answers ----------------------------------------------------------------------------
def test_wide_prism_tends_to_the_bouguer_slab():
    """A prism of thickness t, half-width a, station centred 5 m above: gz -> 2 pi G rho t."""
    density, thickness = 2670.0, 100.0
    expected = 2 * np.pi * GRAVITATIONAL_CONSTANT * density * thickness * SI_TO_MGAL
    half_widths = np.array([1e2, 1e3, 1e4, 1e5, 1e6])
    prisms = np.stack([-half_widths, half_widths, -half_widths, half_widths,
                       np.full(5, -thickness), np.zeros(5)], axis=1)
    gz = gz_mgal([0.0, 0.0, 5.0], prisms, density)[0]
    error = np.abs(gz - expected) / expected
    assert np.all(gz < expected)  # a finite plate always pulls less than the infinite one
    assert np.all(np.diff(error) < 0), error
    assert error[-2] < 1e-3 and error[-1] < 1e-4, error


def test_far_field_of_a_cube_is_a_point_mass():
    """A cube of side w against the point mass G M dz / r^3 (dz = station above mass, so positive
    down); a cube has no quadrupole moment, so the error falls like (w / r)^4."""
    side, density = 10.0, 1000.0
    cube = np.array([-5.0, 5.0, -5.0, 5.0, -5.0, 5.0])
    direction = np.array([0.3, -0.5, 0.81])
    direction /= np.linalg.norm(direction)
    distances = side * np.array([2.0, 5.0, 10.0, 20.0])
    stations = distances[:, None] * direction[None, :]
    gz = gz_mgal(stations, cube, density)[:, 0]
    mass = density * side**3
    point = GRAVITATIONAL_CONSTANT * mass * stations[:, 2] / distances**3 * SI_TO_MGAL
    error = np.abs(gz - point) / np.abs(point)
    assert np.all(np.diff(error) < 0), error
    assert error[-1] < 1e-4, error
    # Below the cube the attraction points up: negative, with the same magnitude.
    below = gz_mgal(stations * np.array([1.0, 1.0, -1.0]), cube, density)[:, 0]
    np.testing.assert_allclose(below, -gz, rtol=1e-12)


def test_signs_and_symmetry():
    prism = np.array([-10.0, 10.0, -15.0, 15.0, -30.0, -5.0])
    # Positive contrast below: positive gz, everywhere above the top, near or far.
    above = np.array([[0.0, 0.0, 0.0], [7.0, -3.0, 10.0], [200.0, 50.0, 1.0], [-5.0, 12.0, -5.0]])
    assert np.all(gz_mgal(above, prism, 300.0) > 0)
    # Mirror stations across the prism's vertical planes of symmetry give equal values.
    station = np.array([23.0, 11.0, 4.0])
    mirrors = station * np.array([[1, 1, 1], [-1, 1, 1], [1, -1, 1], [-1, -1, 1]])
    values = gz_mgal(mirrors, prism, 300.0)[:, 0]
    np.testing.assert_allclose(values, values[0], rtol=1e-13)
    # Mirror through the prism's mid-depth: above and below give opposite signs, equal size.
    middle = 0.5 * (prism[4] + prism[5])
    pair = np.array([station, [station[0], station[1], 2 * middle - station[2]]])
    upper, lower = gz_mgal(pair, prism, 300.0)[:, 0]
    assert upper > 0 > lower
    np.testing.assert_allclose(lower, -upper, rtol=1e-12)
    # Negative contrast: exactly the negation.
    np.testing.assert_array_equal(gz_mgal(above, prism, -300.0), -gz_mgal(above, prism, 300.0))


def test_adjacent_prisms_add_up_to_their_union():
    rng = np.random.default_rng(5)
    west, east = np.array([0.0, 13.0, 0.0, 25.0, -18.0, -2.0]), np.array([13.0, 40.0, 0.0, 25.0, -18.0, -2.0])
    union = np.array([0.0, 40.0, 0.0, 25.0, -18.0, -2.0])
    stations = np.concatenate([
        np.stack([rng.uniform(-50, 90, 20), rng.uniform(-50, 75, 20), rng.uniform(-60, 40, 20)], 1),
        [[13.0, 10.0, 0.0], [13.0, 10.0, -10.0], [13.0, 25.0, -2.0]],  # on or in the shared face
    ])
    parts = gz_mgal(stations, np.stack([west, east]), 500.0).sum(axis=1)
    whole = gz_mgal(stations, union, 500.0)[:, 0]
    np.testing.assert_allclose(parts, whole, rtol=1e-12, atol=1e-12 * np.abs(whole).max())


# -- singular geometry: finite values and gradients --------------------------------------------
def test_values_and_gradients_are_finite_at_singular_points():
    stations = jnp.asarray(list(SINGULAR_STATIONS.values()))
    prism = jnp.asarray(PRISM)
    values = np.asarray(jax.vmap(prism_gz, in_axes=(0, None))(stations, prism))
    gradients = np.asarray(_gz_gradient(stations, prism))
    assert np.all(np.isfinite(values)), dict(zip(SINGULAR_STATIONS, values))
    assert np.all(np.isfinite(gradients)), dict(zip(SINGULAR_STATIONS, gradients.tolist()))
    # Inside, at the centre, the prism pulls equally up and down.
    assert abs(values[1]) < 1e-12 * np.abs(values).max()
    # On the top face the whole prism is below, on the bottom face above.
    assert values[3] > 0 > values[4]


def test_gradient_matches_finite_differences_off_singular_planes():
    prism = jnp.asarray(PRISM)
    stations = jnp.asarray([[3.0, 4.0, -2.0], [15.0, 27.0, 6.0], [-4.0, 9.0, -20.0]])
    gradients = np.asarray(_gz_gradient(stations, prism))
    step = 1e-4
    for station, gradient in zip(np.asarray(stations), gradients):
        differences = [(prism_gz(station + step * e, prism) - prism_gz(station - step * e, prism)) / (2 * step)
                       for e in np.eye(3)]
        np.testing.assert_allclose(gradient, differences, rtol=1e-6, atol=1e-8 * np.abs(gradient).max())


def test_gradient_matches_finite_differences_in_the_plane_of_a_side_face():
    """Outside the prism but in the plane x = east: gz is smooth there (no mass nearby), yet the
    per-corner terms sit at X = 0. Central differences straddle the plane."""
    prism = jnp.asarray(PRISM)
    stations = jnp.asarray([[10.0, 7.0, 5.0], [10.0, 7.0, -3.0], [4.0, 20.0, 3.0]])
    gradients = np.asarray(_gz_gradient(stations, prism))
    step = 1e-4
    for station, gradient in zip(np.asarray(stations), gradients):
        differences = [(prism_gz(station + step * e, prism) - prism_gz(station - step * e, prism)) / (2 * step)
                       for e in np.eye(3)]
        np.testing.assert_allclose(gradient, differences, rtol=1e-6, atol=1e-8 * np.abs(gradient).max())


# -- operators ---------------------------------------------------------------------------------
def _grid_stations(mesh: TensorMesh, elevation: float) -> np.ndarray:
    x, y = np.meshgrid(mesh.centers_x, mesh.centers_y)
    return np.stack([x.ravel(), y.ravel(), np.full(x.size, elevation)], axis=1)


@pytest.fixture(scope="module")
def small_uniform():
    """7 x 6 x 4 cells of 20 m and 42 stations on the cell-centre grid, 3 m above the top."""
    mesh = TensorMesh.uniform((-70.0, -60.0, -80.0), (20.0, 20.0, 20.0), (7, 6, 4))
    return mesh, _grid_stations(mesh, mesh.nodes_z[-1] + 3.0)


@pytest.fixture(scope="module")
def small_nonuniform():
    """Widths that vary per axis, 40 stations scattered at two heights (not a lattice)."""
    mesh = TensorMesh(np.array([10.0, 15.0, 20.0, 30.0, 20.0, 15.0]), np.array([12.0, 18.0, 25.0, 18.0, 12.0]),
                      np.array([40.0, 25.0, 15.0, 10.0]), (1000.0, 2000.0, -90.0))
    rng = np.random.default_rng(11)
    x = rng.uniform(mesh.nodes_x[0], mesh.nodes_x[-1], 20)
    y = rng.uniform(mesh.nodes_y[0], mesh.nodes_y[-1], 20)
    stations = np.concatenate([np.stack([x, y, np.full(20, 1.0)], 1), np.stack([x, y, np.full(20, 15.0)], 1)])
    return mesh, stations


@pytest.fixture(scope="module")
def dense_uniform(small_uniform):
    mesh, stations = small_uniform
    return np.asarray(sensitivity_matrix(mesh, stations, dtype="float64"))


def test_three_ways_agree_on_a_grid(small_uniform, dense_uniform):
    mesh, stations = small_uniform
    ways = {way: np.asarray(sensitivity_matrix(mesh, stations, dtype="float64", way=way))
            for way in ("direct", "table", "toeplitz")}
    scale = np.abs(ways["direct"]).max()
    for way in ("table", "toeplitz"):
        np.testing.assert_allclose(ways[way], ways["direct"], rtol=0.0, atol=1e-12 * scale, err_msg=way)
    np.testing.assert_allclose(dense_uniform, ways["direct"], rtol=0.0, atol=1e-12 * scale)
    # Each row is a whole field: a uniform unit density gives positive gz at every station.
    assert np.all(ways["direct"].sum(axis=1) > 0)


def test_direct_and_table_agree_on_a_nonuniform_mesh(small_nonuniform):
    mesh, stations = small_nonuniform
    direct = np.asarray(sensitivity_matrix(mesh, stations, dtype="float64", way="direct"))
    table = np.asarray(sensitivity_matrix(mesh, stations, dtype="float64", way="table"))
    np.testing.assert_allclose(table, direct, rtol=0.0, atol=1e-12 * np.abs(direct).max())
    with pytest.raises(ValueError):
        sensitivity_matrix(mesh, stations, dtype="float64", way="toeplitz")


def test_sensitivity_row_is_the_sum_of_prisms(small_nonuniform):
    """Each row of G is the per-cell prism kernel in mGal, cells in (nz, ny, nx) C order."""
    mesh, stations = small_nonuniform
    matrix = np.asarray(sensitivity_matrix(mesh, stations[:5], dtype="float64"))
    x, y, z = mesh.nodes_x, mesh.nodes_y, mesh.nodes_z
    nz, ny, nx = mesh.shape
    k, j, i = (a.ravel() for a in np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij"))
    prisms = np.stack([x[i], x[i + 1], y[j], y[j + 1], z[k], z[k + 1]], axis=1)
    expected = gz_mgal(stations[:5], prisms, 1.0)
    np.testing.assert_allclose(matrix, expected, rtol=0.0, atol=1e-12 * np.abs(expected).max())


@pytest.fixture(scope="module")
def operators(small_nonuniform):
    """Dense and matrix-free float64 operators on the same mesh; chunk 7 does not divide 40."""
    mesh, stations = small_nonuniform
    dense, _ = make_operator(mesh, stations, mode="dense", dtype="float64", chunk_size=7)
    free, _ = make_operator(mesh, stations, mode="matrix_free", dtype="float64", chunk_size=7)
    assert isinstance(dense, DenseOperator) and isinstance(free, MatrixFreeOperator)
    assert stations.shape[0] % 7 != 0
    return dense, free


@pytest.fixture(scope="module")
def members(small_nonuniform):
    mesh, stations = small_nonuniform
    key_model, key_data = jax.random.split(jax.random.key(7))
    density = 300.0 * jax.random.normal(key_model, (3, mesh.n_cells), dtype=jnp.float64)
    residual = jax.random.normal(key_data, (3, stations.shape[0]), dtype=jnp.float64)
    return density, residual


@pytest.mark.parametrize("kind", ["dense", "matrix_free"])
def test_adjoint_identity_with_batched_members(operators, members, kind):
    operator = operators[0] if kind == "dense" else operators[1]
    density, residual = members
    predicted = operator.forward(density)
    back = operator.adjoint(residual)
    assert predicted.shape == residual.shape and back.shape == density.shape
    left = np.sum(np.asarray(predicted) * np.asarray(residual), axis=1)
    right = np.sum(np.asarray(density) * np.asarray(back), axis=1)
    np.testing.assert_allclose(left, right, rtol=1e-12)
    # Batched members give what each member gives on its own.
    np.testing.assert_allclose(np.asarray(operator.forward(density[1])), np.asarray(predicted[1]), rtol=1e-12)


def test_dense_and_matrix_free_agree(operators, members):
    dense, free = operators
    density, residual = members
    forward = np.asarray(dense.forward(density))
    np.testing.assert_allclose(np.asarray(free.forward(density)), forward, rtol=0.0,
                               atol=1e-12 * np.abs(forward).max())
    adjoint = np.asarray(dense.adjoint(residual))
    np.testing.assert_allclose(np.asarray(free.adjoint(residual)), adjoint, rtol=0.0,
                               atol=1e-12 * np.abs(adjoint).max())


def test_gradient_through_matrix_free_forward_is_the_dense_adjoint(operators, members):
    dense, free = operators
    density, _ = members
    observed = dense.forward(density[0]) + 0.5
    weights = jnp.linspace(0.5, 2.0, observed.shape[0])

    def loss(model):
        return 0.5 * jnp.sum(weights * (free.forward(model) - observed) ** 2)

    gradient = np.asarray(jax.jit(jax.grad(loss))(density))
    matrix = np.asarray(dense.matrix)
    expected = (weights * (np.asarray(density) @ matrix.T - np.asarray(observed))) @ matrix
    np.testing.assert_allclose(gradient, expected, rtol=0.0, atol=1e-11 * np.abs(expected).max())


def test_utm_coordinates_keep_float32_accurate():
    """The same survey at UTM coordinates: the float32 matrix loses nothing to the offset."""
    shape, cell = (10, 9, 6), 50.0
    mesh = TensorMesh.uniform((0.0, 0.0, -300.0), (cell,) * 3, shape)
    shift = np.array([5e5, 7e6, 0.0])
    shifted_mesh = TensorMesh.uniform(tuple(np.array(mesh.origin) + shift), (cell,) * 3, shape)
    rng = np.random.default_rng(2)
    stations = np.stack([rng.uniform(0, 500, 50), rng.uniform(0, 450, 50), np.full(50, 2.0)], 1)
    density = rng.uniform(-500.0, 500.0, mesh.n_cells)
    reference = np.asarray(sensitivity_matrix(mesh, stations, dtype="float64")) @ density
    shifted = np.asarray(sensitivity_matrix(shifted_mesh, stations + shift, dtype="float32"))
    assert shifted.dtype == np.float32
    np.testing.assert_allclose(shifted.astype(np.float64) @ density, reference, rtol=0.0,
                               atol=1e-4 * np.abs(reference).max())


def test_memory_limit(small_uniform):
    mesh, stations = small_uniform
    with pytest.raises(InputError, match="matrix_free"):
        make_operator(mesh, stations, mode="dense", memory_limit_bytes=1000)
    # 20 kB: the dense matrix does not fit, a matrix-free chunk of two stations does.
    operator, estimate = make_operator(mesh, stations, mode="auto", memory_limit_bytes=20_000)
    assert isinstance(operator, MatrixFreeOperator)
    assert estimate.dense_bytes > estimate.limit_bytes == 20_000
    operator, _ = make_operator(mesh, stations, mode="auto", memory_limit_bytes=10**12)
    # A grid at one height: auto prefers the FFT operator (dense when not FFT-able: test_fft.py).
    assert isinstance(operator, FFTOperator)
    with pytest.raises(InputError):
        make_operator(mesh, stations, mode="sparse")


# -- mesh --------------------------------------------------------------------------------------
@pytest.mark.parametrize("mesh", [
    TensorMesh.uniform((-25.0, -25.0, -525.0), (50.0, 50.0, 50.0), (21, 21, 11)),
    TensorMesh(np.array([10.0, 10.0, 20.0, 35.5]), np.array([5.0, 5.0]), np.array([40.0, 20.0, 10.0, 10.0, 5.0]),
               (512345.25, 7012345.5, -85.0)),
], ids=["uniform", "nonuniform"])
def test_ubc_mesh_round_trip(tmp_path, mesh):
    path = tmp_path / "mesh.msh"
    write_ubc_mesh(path, mesh)
    back = read_ubc_mesh(path)
    assert back.shape == mesh.shape
    for axis in ("widths_x", "widths_y", "widths_z"):
        np.testing.assert_array_equal(getattr(back, axis), getattr(mesh, axis), err_msg=axis)
    np.testing.assert_array_equal(back.origin, mesh.origin)
    # The file lists z widths top first, and its corner is the TOP south-west one.
    lines = path.read_text().split("\n")
    assert float(lines[1].split()[2]) == mesh.nodes_z[-1]


def test_ubc_mesh_with_repeat_shorthand(tmp_path):
    path = tmp_path / "hand.msh"
    path.write_text("3 2 4\n100.0 200.0 50.0 ! top south-west corner\n3*10\n5 7\n2*5 10\n20\n")
    mesh = read_ubc_mesh(path)
    assert mesh.shape == (4, 2, 3)
    np.testing.assert_array_equal(mesh.widths_x, [10.0, 10.0, 10.0])
    np.testing.assert_array_equal(mesh.widths_y, [5.0, 7.0])
    np.testing.assert_array_equal(mesh.widths_z, [20.0, 10.0, 5.0, 5.0])  # bottom to top
    assert mesh.origin == (100.0, 200.0, 10.0)
    np.testing.assert_array_equal(mesh.nodes_z, [10.0, 30.0, 40.0, 45.0, 50.0])


def test_ubc_mesh_with_wrong_count_names_the_file(tmp_path):
    path = tmp_path / "bad.msh"
    path.write_text("3 2 4\n0 0 0\n3*10\n5 7\n2*5 10\n")
    with pytest.raises(InputError, match="bad.msh"):
        read_ubc_mesh(path)


def test_cell_centres_and_volumes():
    mesh = TensorMesh(np.array([1.0, 2.0]), np.array([3.0]), np.array([4.0, 5.0]), (10.0, 20.0, 30.0))
    assert mesh.shape == (2, 1, 2) and mesh.n_cells == 4
    np.testing.assert_array_equal(mesh.cell_centers, [
        [10.5, 21.5, 32.0], [12.0, 21.5, 32.0], [10.5, 21.5, 36.5], [12.0, 21.5, 36.5]])
    np.testing.assert_array_equal(mesh.cell_volumes, [[[12.0, 24.0]], [[15.0, 30.0]]])
    assert mesh.bounds == (10.0, 13.0, 20.0, 23.0, 30.0, 39.0)


# -- the B1 synthetic --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def b1():
    from gravuq.synthetic import dipping_block
    return dipping_block()


def test_b1_dipping_block(b1):
    assert b1.mesh.shape == (11, 21, 21)
    np.testing.assert_array_equal(b1.mesh.centers_x, np.arange(21) * 50.0)
    np.testing.assert_array_equal(b1.mesh.centers_z, -500.0 + np.arange(11) * 50.0)
    assert np.count_nonzero(b1.density == 400.0) == 210
    assert np.count_nonzero(b1.density) == 210
    # Slab i sits in the layer centred at -50 (i + 1) m, y cells 11 - i .. 15 - i, x cells 7 .. 12.
    expected = np.zeros((11, 21, 21))
    for slab in range(7):
        layer = int(np.flatnonzero(b1.mesh.centers_z == -50.0 * (slab + 1))[0])
        expected[layer, 11 - slab:16 - slab, 7:13] = 400.0
    np.testing.assert_array_equal(b1.density, expected)
    # The shallowest occupied layer is the one centred at -50 m, at the north (+y) end.
    occupied = np.flatnonzero(b1.density.sum(axis=(1, 2)))
    assert b1.mesh.centers_z[occupied.max()] == -50.0
    assert b1.mesh.centers_z[occupied.min()] == -350.0


def test_b1_stations_and_field(b1):
    assert b1.stations.shape == (441, 3)
    np.testing.assert_array_equal(b1.stations[:, 2], 1.0)
    np.testing.assert_array_equal(np.unique(b1.stations[:, 0]), np.arange(21) * 50.0)
    assert b1.gz_true.max() > 0 and np.all(b1.gz_true > 0)
    peak = b1.stations[np.argmax(b1.gz_true)]
    # Above the shallow slab's footprint: x 350..600 m, y 550..750 m.
    assert 350.0 <= peak[0] <= 600.0 and 550.0 <= peak[1] <= 750.0, peak
    # The field is G @ density for the stated model.
    matrix = np.asarray(sensitivity_matrix(b1.mesh, b1.stations, dtype="float64"))
    np.testing.assert_allclose(b1.gz_true, matrix @ b1.density.ravel(), rtol=1e-12)


def test_a_sensitivity_that_overflows_its_dtype_is_refused():
    """Cells 1e25 m wide give values far beyond float32's range: a clear InputError, not inf."""
    from gravuq.errors import InputError
    from gravuq.forward import sensitivity_matrix

    mesh = TensorMesh.uniform((0.0, 0.0, -3e25), (1e25, 1e25, 1e25), (2, 2, 3))
    with pytest.raises(InputError, match="not finite"):
        sensitivity_matrix(mesh, np.array([[1e25, 1e25, 10.0]]), dtype="float16")
