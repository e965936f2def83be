"""Operators of the gravity-gradient components: node-shared rows against Harmonica cell by cell
(stations on the mesh top's nodes, edges and faces included), the three ways to build rows,
the Laplace identity on whole rows, the matrix-free and FFT operators against the dense one, and
the stacked multi-component operator (adjoint identity, gradient, blocks).

Conventions (SPEC section 1): metres, z elevation positive up; density contrast in kg/m^3; gz in
mGal positive down; gradients in Eotvos with Harmonica's signs (``gxz``, ``gyz`` z down,
``gzz = -d(gz)/dz``); sensitivities per kg/m^3, rows component-major when stacked.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gravuq.forward import (
    HARMONICA_FIELDS,
    StackedOperator,
    make_operator,
    sensitivity_matrix,
)
from gravuq.mesh import TensorMesh

GRADIENTS = ("gxx", "gxy", "gxz", "gyy", "gyz", "gzz")


@pytest.fixture(scope="module")
def grid_case():
    """4 x 3 x 2 cells of 20 m at UTM-like coordinates; stations on the top's nodes and cell
    centres (on the mesh top: on faces and edges of the top cells) and on the same grid 15 m up."""
    mesh = TensorMesh.uniform((500000.0, 7000000.0, -40.0), (20.0, 20.0, 20.0), (4, 3, 2))
    x, y = np.meshgrid(mesh.nodes_x[0] + 10.0 * np.arange(-1, 10), mesh.nodes_y[0] + 10.0 * np.arange(-1, 8))
    top = mesh.nodes_z[-1]
    flat = [np.stack([x.ravel(), y.ravel(), np.full(x.size, z)], axis=1) for z in (top, top + 15.0)]
    # And scattered on the ground, some within 1e-5 to 1e-7 m of a cell edge (where a finite lift
    # of the station above the ground, or moving it onto the edge, would show as an error).
    rng = np.random.default_rng(8)
    scattered = np.stack([rng.uniform(mesh.nodes_x[0], mesh.nodes_x[-1], 30),
                          rng.uniform(mesh.nodes_y[0], mesh.nodes_y[-1], 30), np.full(30, top)], axis=1)
    scattered[:10, 0] = mesh.nodes_x[2] + 10.0 ** -rng.uniform(5, 7, 10)
    return mesh, np.concatenate(flat + [scattered])


def _harmonica_matrix(harmonica, mesh, stations, component):
    """Harmonica's sensitivity (Eotvos per kg/m^3), one cell at a time (NaN where it is singular)."""
    nz, ny, nx = mesh.shape
    columns = []
    for k in range(nz):
        for j in range(ny):
            for i in range(nx):
                prism = np.array([[mesh.nodes_x[i], mesh.nodes_x[i + 1], mesh.nodes_y[j], mesh.nodes_y[j + 1],
                                   mesh.nodes_z[k], mesh.nodes_z[k + 1]]])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    columns.append(harmonica.prism_gravity(tuple(stations.T), prism, np.ones(1),
                                                           field=HARMONICA_FIELDS[component], parallel=False))
    return np.stack(columns, axis=1)


@pytest.fixture(scope="module")
def dense_rows(grid_case):
    mesh, stations = grid_case
    return {c: np.asarray(sensitivity_matrix(mesh, stations, "float64", component=c)) for c in GRADIENTS}


@pytest.mark.parametrize("component", GRADIENTS)
def test_rows_match_harmonica_cell_by_cell(grid_case, dense_rows, component):
    """Every entry Harmonica gives finitely, to 1e-10 of the largest: ground stations sit on the
    faces, edges and vertices of the top cells (diagonal components: the limit from outside)."""
    harmonica = pytest.importorskip("harmonica")
    mesh, stations = grid_case
    theirs = _harmonica_matrix(harmonica, mesh, stations, component)
    ours = dense_rows[component]
    finite = np.isfinite(theirs)
    assert np.all(np.isfinite(ours)) and finite.mean() > 0.9
    on_top = stations[:, 2] == mesh.nodes_z[-1]
    assert finite[on_top].sum() > 1000  # entries on faces and edges of the top cells are compared
    error = np.abs(ours - theirs)[finite].max() / np.abs(theirs[finite]).max()
    assert error <= 1e-10, f"{component}: {error:.3g}"


def test_three_ways_agree(grid_case, dense_rows):
    mesh, stations = grid_case
    for component in ("gxx", "gxz", "gzz"):
        for way in ("direct", "table"):
            other = np.asarray(sensitivity_matrix(mesh, stations, "float64", way=way, component=component))
            np.testing.assert_allclose(other, dense_rows[component], rtol=0,
                                       atol=1e-12 * np.abs(dense_rows[component]).max(), err_msg=f"{component} {way}")


def test_laplace_on_whole_rows(grid_case, dense_rows):
    """gxx + gyy + gzz = 0 outside the mass, entry by entry (ground stations: outside limits)."""
    trace = dense_rows["gxx"] + dense_rows["gyy"] + dense_rows["gzz"]
    assert np.abs(trace).max() <= 1e-10 * np.abs(dense_rows["gzz"]).max()
    # A positive density below an elevated station gives gzz > 0 there.
    mesh, stations = grid_case
    west, east, south, north, _, _ = mesh.bounds
    above = ((stations[:, 2] > stations[:, 2].min()) & (stations[:, 0] > west) & (stations[:, 0] < east)
             & (stations[:, 1] > south) & (stations[:, 1] < north))
    assert above.sum() > 20 and np.all(dense_rows["gzz"][above].sum(axis=1) > 0)


@pytest.fixture(scope="module")
def stacked(grid_case):
    mesh, stations = grid_case
    components = ("gz", "gxz", "gzz")
    # One height, on the lattice of the cell centres: FFT-able.
    centre = ((np.mod(stations[:, 0] - mesh.nodes_x[0], 20.0) == 10.0)
              & (np.mod(stations[:, 1] - mesh.nodes_y[0], 20.0) == 10.0))
    lifted = stations[(stations[:, 2] > stations[:, 2].min()) & centre]
    operators = {mode: make_operator(mesh, lifted, mode, "float64", components=components)[0]
                 for mode in ("dense", "matrix_free", "fft")}
    return mesh, lifted, components, operators


def test_stacked_blocks_are_the_components(stacked):
    mesh, stations, components, operators = stacked
    reference = np.concatenate([np.asarray(sensitivity_matrix(mesh, stations, "float64", component=c))
                                for c in components])
    for mode, operator in operators.items():
        assert isinstance(operator, StackedOperator) and operator.kind == mode
        assert operator.n_stations == 3 * len(stations) and operator.n_cells == mesh.n_cells
        np.testing.assert_allclose(np.asarray(operator.dense()), reference, rtol=0,
                                   atol=1e-12 * np.abs(reference).max(), err_msg=mode)


@pytest.mark.parametrize("mode", ["dense", "matrix_free", "fft"])
def test_stacked_forward_adjoint_and_gradient(stacked, mode):
    mesh, stations, components, operators = stacked
    operator = operators[mode]
    matrix = np.asarray(operators["dense"].dense())
    rng = np.random.default_rng(3)
    density = rng.standard_normal((2, mesh.n_cells)) * 100.0
    residual = rng.standard_normal((2, operator.n_stations))
    forward = np.asarray(operator.forward(jnp.asarray(density)))
    back = np.asarray(operator.adjoint(jnp.asarray(residual)))
    np.testing.assert_allclose(forward, density @ matrix.T, rtol=0, atol=1e-10 * np.abs(forward).max())
    np.testing.assert_allclose(back, residual @ matrix, rtol=0, atol=1e-10 * np.abs(back).max())
    # <G m, r> = <m, G^T r>
    assert abs(np.sum(forward * residual) - np.sum(density * back)) <= 1e-10 * np.abs(forward * residual).sum()
    gradient = jax.grad(lambda m: jnp.sum(operator.forward(m) * residual[0]))(jnp.asarray(density[0]))
    np.testing.assert_allclose(np.asarray(gradient), back[0], rtol=0, atol=1e-10 * np.abs(back[0]).max())


def test_one_component_is_the_plain_operator(grid_case):
    mesh, stations = grid_case
    operator, _ = make_operator(mesh, stations, "dense", "float64", components=("gzz",))
    assert not isinstance(operator, StackedOperator)
    with pytest.raises(ValueError, match="unknown component"):
        make_operator(mesh, stations, "dense", "float64", components=("gz", "g_zz"))
