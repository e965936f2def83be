
# The prism gravity-gradient kernels: the peer (Harmonica) at random and singular points,
# Laplace/Poisson, derivatives of the gz kernel, symmetry, finiteness and the node-shared helper.
#
# Conventions (SPEC section 1): metres, x easting, y northing, z elevation positive up; density
# contrast in kg/m^3; components in Eotvos with Harmonica's signs (``gxz``, ``gyz`` z down,
# ``gzz = -d(gz)/dz``), ``prism_gz`` in m/s^2 positive downward.

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gravuq.constants import GRAVITATIONAL_CONSTANT
from gravuq.forward._prism import node_potential_gz, prism_gz
from gravuq.forward._prism_tensor import (
    COMPONENTS,
    HARMONICA_FIELDS,
    SI_TO_EOTVOS,
    cell_tensor,
    node_potential_gxx,
    node_potential_gxy,
    node_potential_gxz,
    node_potential_gyy,
    node_potential_gyz,
    node_potential_gzz,
    node_potential_tensor,
    prism_tensor,
)

GXX, GXY, GXZ, GYY, GYZ, GZZ = range(6)
NODE_FUNCTIONS = (node_potential_gxx, node_potential_gxy, node_potential_gxz, node_potential_gyy,
                  node_potential_gyz, node_potential_gzz)

#: The tensor (Eotvos, density 1) of every prism at every station: (n_stations, n_prisms, 6).
_pairwise = jax.jit(jax.vmap(jax.vmap(prism_tensor, in_axes=(None, 0)), in_axes=(0, None)))
#: One prism at many stations: (n_stations, 6).
_one_prism = jax.jit(jax.vmap(prism_tensor, in_axes=(0, None)))


def tensor(stations, prisms) -> np.ndarray:
    """Eotvos per kg/m^3 of each prism at each station, shape (n_stations, n_prisms, 6)."""
    return np.asarray(_pairwise(jnp.asarray(np.atleast_2d(stations), dtype=jnp.float64),
                                jnp.asarray(np.atleast_2d(prisms), dtype=jnp.float64)))


def random_prisms(rng, n):
    west, south = rng.uniform(-100.0, 100.0, n), rng.uniform(-100.0, 100.0, n)
    top = rng.uniform(-80.0, 0.0, n)
    widths = rng.uniform(5.0, 60.0, (n, 3))
    return np.stack([west, west + widths[:, 0], south, south + widths[:, 1],
                     top - widths[:, 2], top], axis=1)


def special_points(prism, rng) -> dict[str, np.ndarray]:
    """Stations exactly on the faces, edges and vertices of ``prism`` and on their planes/lines."""
    bounds = prism.reshape(3, 2)

    def inner(axis, t):  # the fraction t of the way from the lower to the upper bound
        return bounds[axis, 0] + t * (bounds[axis, 1] - bounds[axis, 0])

    points = {"face": [], "face plane": [], "edge": [], "edge line": [], "vertex": []}
    for axis in range(3):
        others = [a for a in range(3) if a != axis]
        for bound in bounds[axis]:
            for t, u in ((0.5, 0.5), tuple(rng.uniform(0.05, 0.95, 2))):
                p = np.empty(3)
                p[axis], p[others[0]], p[others[1]] = bound, inner(others[0], t), inner(others[1], u)
                points["face"].append(p)
            p = np.empty(3)
            p[axis], p[others[0]], p[others[1]] = bound, inner(others[0], 1.4), inner(others[1], 0.3)
            points["face plane"].append(p)
        # edges parallel to ``axis``: the other two at their bounds
        for b0 in bounds[others[0]]:
            for b1 in bounds[others[1]]:
                for t, kind in ((0.5, "edge"), (rng.uniform(0.05, 0.95), "edge"), (-0.3, "edge line"),
                                (1.7, "edge line")):
                    p = np.empty(3)
                    p[axis], p[others[0]], p[others[1]] = inner(axis, t), b0, b1
                    points[kind].append(p)
    for x in bounds[0]:
        for y in bounds[1]:
            for z in bounds[2]:
                points["vertex"].append(np.array([x, y, z]))
    return {kind: np.array(p) for kind, p in points.items()}


def harmonica_pairs(harmonica, stations, prisms, density) -> np.ndarray:
    """Harmonica's six components (Eotvos) of each prism alone: (n_stations, n_prisms, 6)."""
    coordinates = tuple(stations.T)
    with warnings.catch_warnings():  # "observation point on singular point": NaN is expected there
        warnings.simplefilter("ignore", UserWarning)
        return np.stack([np.stack([
            harmonica.prism_gravity(coordinates, prisms[j:j + 1], density[j:j + 1],
                                    field=HARMONICA_FIELDS[c], parallel=False)
            for c in COMPONENTS], axis=-1) for j in range(prisms.shape[0])], axis=1)


@pytest.fixture(scope="module")
def geometry():
    """Random prisms; stations above, below, beside and inside them, and exactly on the faces,
    edges and vertices (and the face planes, edge lines) of the first two.

    Returns ``(prisms, density, stations, kind, owner)``: ``kind[s]`` is "random", "inside" or a
    key of :func:`special_points`; ``owner[s]`` the prism a special station belongs to (else -1).
    """
    rng = np.random.default_rng(20260402)
    prisms = random_prisms(rng, 6)
    density = rng.uniform(-800.0, 800.0, prisms.shape[0])
    groups = [("random", -1, np.stack([rng.uniform(-150.0, 200.0, 60), rng.uniform(-150.0, 200.0, 60),
                                       rng.uniform(-160.0, 60.0, 60)], axis=1))]
    for j, b in enumerate(prisms):
        groups.append(("inside", j, b[[0, 2, 4]] + rng.uniform(0.1, 0.9, (3, 3)) * (b[[1, 3, 5]] - b[[0, 2, 4]])))
    for j in range(2):
        groups += [(kind, j, points) for kind, points in special_points(prisms[j], rng).items()]
    stations = np.concatenate([points for _, _, points in groups])
    kind = np.concatenate([[k] * len(points) for k, _, points in groups])
    owner = np.concatenate([[j] * len(points) for _, j, points in groups])
    return prisms, density, stations, kind, owner


@pytest.fixture(scope="module")
def peer(geometry):
    """Ours and Harmonica's components (Eotvos), each (n_stations, n_prisms, 6)."""
    harmonica = pytest.importorskip("harmonica")
    prisms, density, stations, _, _ = geometry
    ours = tensor(stations, prisms) * density[None, :, None]
    return ours, harmonica_pairs(harmonica, stations, prisms, density)


# -- the peer ---------------------------------------------------------------------------------
@pytest.mark.parametrize("component", COMPONENTS)
def test_matches_harmonica_to_1e10(geometry, peer, component):
    """Every finite Harmonica value, random geometry and exactly on faces, edges and vertices."""
    _, _, _, kind, owner = geometry
    ours, theirs = (a[..., COMPONENTS.index(component)] for a in peer)
    finite = np.isfinite(theirs)
    assert np.all(np.isfinite(ours)), "a non-finite value of ours"
    # The comparison includes stations exactly on their own prism's faces and edges (vertices:
    # Harmonica is NaN there for every component, so they count only against other prisms).
    own = owner[:, None] == np.arange(theirs.shape[1])  # (station, prism)
    for where in ("face", "face plane", "edge", "edge line"):
        assert np.any(own & (kind == where)[:, None] & finite), where
    error = np.abs(ours - theirs)[finite] / np.abs(theirs[finite]).max()
    assert error.max() <= 1e-10, f"{component}: relative error {error.max():.3g}"


def test_harmonica_is_singular_only_on_vertices_and_edges(geometry, peer):
    """Where Harmonica is NaN (so our finite conventions apply): only on a prism's own vertices
    and edges; faces, face planes and edge prolongations are finite for every component."""
    _, _, _, kind, owner = geometry
    _, theirs = peer
    singular = ~np.isfinite(theirs).all(axis=-1)  # (station, prism)
    stations, prisms = np.nonzero(singular)
    assert np.all(owner[stations] == prisms)
    assert set(kind[stations]) == {"edge", "vertex"}
    assert np.all(~np.isfinite(theirs[kind == "vertex", owner[kind == "vertex"]]))


# -- Laplace and Poisson ----------------------------------------------------------------------
def _inside(stations, prisms):
    """(n_stations, n_prisms): strictly inside, and outside (closed complement) each prism."""
    s = stations[:, None, :]
    lower, upper = prisms[None, :, [0, 2, 4]], prisms[None, :, [1, 3, 5]]
    strictly = np.all((s > lower) & (s < upper), axis=-1)
    outside = np.any((s < lower) | (s > upper), axis=-1)
    return strictly, outside


def test_laplace_outside_and_poisson_inside(geometry, peer):
    """gxx + gyy + gzz is 0 outside and on faces (outside limits), -4 pi G rho inside."""
    prisms, density, stations, kind, owner = geometry
    ours, theirs = peer
    trace = ours[..., GXX] + ours[..., GYY] + ours[..., GZZ]
    scale = np.abs(ours[..., [GXX, GYY, GZZ]]).max()
    strictly, outside = _inside(stations, prisms)
    assert outside.sum() > 200 and strictly.sum() >= 18
    assert np.abs(trace[outside]).max() <= 1e-10 * scale
    poisson = -4.0 * math.pi * GRAVITATIONAL_CONSTANT * SI_TO_EOTVOS * density  # Eotvos
    expected = np.broadcast_to(poisson, trace.shape)[strictly]
    assert np.abs(trace[strictly] - expected).max() <= 1e-10 * scale
    # The sign is Harmonica's: its trace inside is the same -4 pi G rho.
    their_trace = theirs[..., GXX] + theirs[..., GYY] + theirs[..., GZZ]
    assert np.abs(their_trace[strictly] - expected).max() <= 1e-10 * scale
    # On the open faces (limits from outside, as Harmonica) the trace is 0 too.
    on_face = kind == "face"
    assert np.abs(trace[on_face, owner[on_face]]).max() <= 1e-10 * scale


# -- derivatives of the gz kernel -------------------------------------------------------------
#: Relabelling the axes as (y, z, x), (z, x, y) or leaving them turns the gz kernel into
#: -dV/dx, -dV/dy and -dV/dz: station index orders and the matching prism bound orders.
_RELABEL_STATION = jnp.array([[1, 2, 0], [2, 0, 1], [0, 1, 2]])
_RELABEL_PRISM = jnp.array([[2, 3, 4, 5, 0, 1], [4, 5, 0, 1, 2, 3], [0, 1, 2, 3, 4, 5]])


def _gz_corners(station, prism):
    """``prism_gz`` (m/s^2, positive down) as one broadcast call of its corner function over the
    8 corners: the same formula, cheaper to differentiate (one trace instead of eight)."""
    x, y, z = (prism[2 * a:2 * a + 2] - station[a] for a in range(3))
    signs = jnp.array([-1.0, 1.0])
    terms = node_potential_gz(x[:, None, None], y[None, :, None], z[None, None, :])
    return GRAVITATIONAL_CONSTANT * jnp.sum(terms * signs[:, None, None] * signs[None, :, None] * signs)


def _attraction(station, prism, gz=prism_gz):
    """``(gx, gy, gz)`` in m/s^2 (density 1) from the gz kernel alone: ``gx = dV/dx``,
    ``gy = dV/dy`` (towards east, north) and ``gz = -dV/dz`` (positive down, as ``prism_gz``)."""
    relabelled = jax.vmap(gz)(station[_RELABEL_STATION], prism[_RELABEL_PRISM])
    return jnp.array([-1.0, -1.0, 1.0]) * relabelled


def _central_difference(f, step=1e-3):
    """The Jacobian of ``f(station, prism)`` in the station by central differences (step in m)."""
    def jacobian(station, prism):
        shifted = station + step * jnp.concatenate([jnp.eye(3), -jnp.eye(3)])
        values = jax.vmap(f, in_axes=(0, None))(shifted, prism)  # (6, 3)
        return ((values[:3] - values[3:]) / (2 * step)).T  # [i, j] = d f_i / d station_j
    return jacobian


def _from_gz(jacobian_of, gz):
    """The six components (Eotvos) from the station Jacobian of ``(gx, gy, gz)``.

    ``gxx = d(gx)/dx, gxy = d(gx)/dy, gyy = d(gy)/dy``; z down: ``gxz = d(gz)/dx``,
    ``gyz = d(gz)/dy`` and ``gzz = -d(gz)/dz`` (gz = -dV/dz).
    """
    def six(station, prism):
        j = jacobian_of(lambda s, p: _attraction(s, p, gz))(station, prism)
        return SI_TO_EOTVOS * jnp.stack([j[0, 0], j[0, 1], j[2, 0], j[1, 1], j[2, 1], -j[2, 2]])
    return jax.jit(jax.vmap(six, in_axes=(0, None)))


def _away_from_surface(rng, prism, n, margin=1.0):
    """Stations above, below, beside and inside ``prism``, at least ``margin`` m from its planes."""
    lower, upper = prism[[0, 2, 4]], prism[[1, 3, 5]]
    outside = rng.uniform(lower - 40.0, upper + 40.0, (4 * n, 3))
    far = np.all((np.abs(outside - lower) > margin) & (np.abs(outside - upper) > margin), axis=1)
    inside = rng.uniform(lower + margin, upper - margin, (n // 4, 3))
    points = np.concatenate([outside[far][:n - n // 4], inside])
    assert points.shape[0] == n
    return points


@pytest.mark.parametrize("how", ["finite difference", "autodiff"])
def test_components_are_derivatives_of_gz(how):
    """Each component is a station derivative of the gz kernel, signs as z down / z up: central
    differences of ``prism_gz`` (1e-6: the step's truncation error), and jax.jacfwd of the same
    corner function (1e-10)."""
    rng = np.random.default_rng(7)
    prism = np.array([-12.0, 18.0, -7.0, 25.0, -40.0, -6.0])
    stations = _away_from_surface(rng, prism, 40)
    if how == "finite difference":
        derivatives, tolerance = _from_gz(_central_difference, prism_gz), 1e-6
    else:
        derivatives, tolerance = _from_gz(jax.jacfwd, _gz_corners), 1e-10
    expected = np.asarray(derivatives(jnp.asarray(stations), jnp.asarray(prism)))
    ours = np.asarray(_one_prism(jnp.asarray(stations), jnp.asarray(prism)))
    for k, component in enumerate(COMPONENTS):
        error = np.abs(ours[:, k] - expected[:, k]).max() / np.abs(expected[:, k]).max()
        assert error <= tolerance, f"{component} vs derivative of gz ({how}): {error:.3g}"


def test_signs_above_and_beside_a_positive_mass():
    prism = np.array([-10.0, 10.0, -10.0, 10.0, -30.0, -10.0])
    above = tensor([0.0, 0.0, 20.0], prism)[0, 0]
    assert above[GZZ] > 0 and above[GXX] < 0 and above[GYY] < 0
    east = tensor([15.0, 0.0, 0.0], prism)[0, 0]
    # East of and above the mass gz (down) falls off eastward, and gx (east) points back west.
    assert east[GXZ] < 0 and east[GXX] > 0


# -- symmetry ---------------------------------------------------------------------------------
def _mirror(stations, prisms, axis):
    s, p = stations.copy(), prisms.copy()
    s[:, axis] *= -1
    p[:, [2 * axis, 2 * axis + 1]] = -prisms[:, [2 * axis + 1, 2 * axis]]
    return s, p


def test_mirror_and_swap_symmetry(geometry):
    """A mirror of axis k flips the components with one index k (gxy, gxz under x -> -x);
    swapping x and y swaps gxx/gyy and gxz/gyz. Random stations and open faces (outside limits)."""
    prisms, _, stations, kind, _ = geometry
    stations = stations[np.isin(kind, ["random", "inside", "face"])]
    ours = tensor(stations, prisms)
    scale = np.abs(ours).max()
    indices = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
    for axis in range(3):
        mirrored = tensor(*_mirror(stations, prisms, axis))
        signs = np.array([(-1.0) ** ((i == axis) + (j == axis)) for i, j in indices])
        assert np.abs(mirrored - signs * ours).max() <= 1e-12 * scale, f"mirror of axis {axis}"
    swapped = tensor(stations[:, [1, 0, 2]], prisms[:, [2, 3, 0, 1, 4, 5]])
    assert np.abs(swapped - ours[..., [GYY, GXY, GYZ, GXX, GXZ, GZZ]]).max() <= 1e-12 * scale
    assert np.max(np.abs(ours[..., GXY])) > 0.01 * scale  # the antisymmetric ones are not all ~0


# -- singular points --------------------------------------------------------------------------
def _in_one_call(groups: dict, prism) -> dict:
    """The tensor of ``prism`` at each group of stations, evaluated in one call (one trace)."""
    values = tensor(np.concatenate(list(groups.values())), prism)[:, 0]
    return dict(zip(groups, np.split(values, np.cumsum([len(g) for g in groups.values()])[:-1])))


def test_finite_everywhere_and_conventions_on_singular_points():
    """Finite on every face, edge and vertex. Documented conventions: a diagonal component on an
    edge perpendicular to its axis (Harmonica: NaN) is its limit along that axis from smaller
    coordinates; on a face normal to its axis it is the limit from outside (as Harmonica)."""
    rng = np.random.default_rng(3)
    prism = np.array([0.0, 10.0, 0.0, 20.0, -10.0, 0.0])
    points = special_points(prism, rng)
    faces, edges = points["face"], points["edge"]
    step = 1e-7
    groups = dict(points)
    for axis, name in enumerate("xyz"):
        shift = step * np.eye(3)[axis]
        lower, upper = faces[faces[:, axis] == prism[2 * axis]], faces[faces[:, axis] == prism[2 * axis + 1]]
        groups |= {f"edge, smaller {name}": edges - shift,
                   f"lower {name} face": lower, f"below lower {name} face": lower - shift,
                   f"upper {name} face": upper, f"above upper {name} face": upper + shift}
    values = _in_one_call(groups, prism)
    assert all(np.all(np.isfinite(v)) for v in values.values())
    for diagonal, name in ((GXX, "x"), (GYY, "y"), (GZZ, "z")):
        for at, limit in (("edge", f"edge, smaller {name}"), (f"lower {name} face", f"below lower {name} face"),
                          (f"upper {name} face", f"above upper {name} face")):
            exact, near = values[at][:, diagonal], values[limit][:, diagonal]
            assert np.abs(exact - near).max() <= 1e-5 * np.abs(exact).max(), f"{COMPONENTS[diagonal]}: {at}"


def test_gradients_finite_on_faces_edges_and_vertices():
    """The double where: reverse-mode gradients (jax.grad's; forward mode would hide a NaN in
    an unselected branch) of each corner function at degenerate offsets, and of prism_tensor
    with respect to the station on a face, an edge and a vertex, are finite."""
    degenerate = np.array([[0.0, 0.0, 0.0], [0.0, 3.0, 4.0], [3.0, 0.0, 4.0], [3.0, 4.0, 0.0],
                           [0.0, 0.0, 5.0], [0.0, 0.0, -5.0], [0.0, 5.0, 0.0], [0.0, -5.0, 0.0],
                           [5.0, 0.0, 0.0], [-5.0, 0.0, 0.0], [-3.0, -4.0, 0.0], [0.0, -3.0, -4.0]])
    jacobian = jax.jit(jax.vmap(jax.jacrev(node_potential_tensor, argnums=(0, 1, 2))))(*jnp.asarray(degenerate.T))
    for axis, gradient in enumerate(jacobian):  # (point, component) each
        bad = ~np.isfinite(np.asarray(gradient))
        assert not bad.any(), f"d/d{'xyz'[axis]} of {np.array(COMPONENTS)[bad.any(axis=0)]}"
    prism = np.array([0.0, 10.0, 0.0, 20.0, -10.0, 0.0])
    stations = np.array([[10.0, 7.0, -3.0], [4.0, 12.0, 0.0], [0.0, 5.0, -5.0], [10.0, 20.0, -6.0],
                         [3.0, 0.0, 0.0], [10.0, 20.0, 0.0], [0.0, 0.0, -10.0], [5.0, 10.0, -5.0]])
    jacobian = jax.jit(jax.vmap(jax.jacrev(prism_tensor), in_axes=(0, None)))
    assert bool(jnp.all(jnp.isfinite(jacobian(jnp.asarray(stations), jnp.asarray(prism)))))


def test_all_in_one_corner_function_matches_the_six():
    rng = np.random.default_rng(5)
    offsets = rng.normal(0.0, 30.0, (3, 50))
    offsets[:, :12] = np.array([[0, 0, 0], [0, 3, 4], [3, 0, 4], [3, 4, 0], [0, 0, -5], [0, -5, 0],
                                [-5, 0, 0], [-3, -4, 0], [0, -3, -4], [-3, 0, -4], [2, 0, 0],
                                [0, 0, 7]]).T
    both = jax.jit(lambda x, y, z: (node_potential_tensor(x, y, z),
                                    jnp.stack([f(x, y, z) for f in NODE_FUNCTIONS])))
    together, one_by_one = (np.asarray(a) for a in both(*jnp.asarray(offsets)))
    np.testing.assert_array_equal(together, one_by_one)


# -- node-shared cells ------------------------------------------------------------------------
def test_cell_tensor_matches_prism_tensor_cell_by_cell():
    """Nodes shared, on a small irregular mesh, stations off and exactly on nodes and faces."""
    rng = np.random.default_rng(11)
    nodes = [np.cumsum(np.r_[0.0, rng.uniform(4.0, 12.0, n)]) - o for n, o in ((4, 20.0), (3, 15.0),
                                                                                  (3, 30.0))]
    nodes_x, nodes_y, nodes_z = nodes
    stations = np.array([[1.3, -2.2, 12.0], [nodes_x[2], nodes_y[1], nodes_z[-1]],
                         [nodes_x[1], 0.5 * (nodes_y[1] + nodes_y[2]), 0.5 * (nodes_z[0] + nodes_z[1])],
                         [0.5 * (nodes_x[1] + nodes_x[2]), 0.5 * (nodes_y[1] + nodes_y[2]), nodes_z[2]],
                         [nodes_x[3], nodes_y[2], nodes_z[1]]])
    cells = cell_tensor_rows(stations, nodes_x, nodes_y, nodes_z)  # (station, 6, nz, ny, nx)
    zz, yy, xx = np.meshgrid(range(3), range(3), range(4), indexing="ij")
    prisms = np.stack([nodes_x[xx], nodes_x[xx + 1], nodes_y[yy], nodes_y[yy + 1], nodes_z[zz],
                       nodes_z[zz + 1]], axis=-1).reshape(-1, 6)
    expected = tensor(stations, prisms)  # (station, cell, 6)
    flat = np.moveaxis(cells.reshape(stations.shape[0], 6, -1), 1, 2)
    assert np.abs(flat - expected).max() <= 1e-12 * np.abs(expected).max()


def cell_tensor_rows(stations, nodes_x, nodes_y, nodes_z) -> np.ndarray:
    def one(station):
        return cell_tensor(jnp.asarray(nodes_x) - station[0], jnp.asarray(nodes_y) - station[1],
                           jnp.asarray(nodes_z) - station[2])
    return np.asarray(jax.jit(jax.vmap(one))(jnp.asarray(stations)))


@pytest.mark.parametrize("xp", [np, jnp], ids=["numpy", "jax"])
def test_arctan_ratio_is_the_principal_arctangent_to_float64_rounding(xp):
    """The gz kernel's one-division arctangent against numpy's over 16 decades and both signs,
    across its reduction boundaries, and its limits (denominator 0: +-pi/2; numerator 0: 0)."""
    from gravuq.forward._prism import _TAN_PI_8, arctan_ratio

    rng = np.random.default_rng(11)
    numerator = rng.standard_normal(200_000) * 10.0 ** rng.uniform(-8, 8, 200_000)
    denominator = rng.choice([-1.0, 1.0], 200_000) * 10.0 ** rng.uniform(-3, 3, 200_000)
    edges = np.array([_TAN_PI_8, 1 / _TAN_PI_8, 1.0, np.nextafter(_TAN_PI_8, 0), np.nextafter(1 / _TAN_PI_8, 9)])
    numerator = np.concatenate([numerator, edges, -edges, [0.0, 3.0, -3.0]])
    denominator = np.concatenate([denominator, np.ones(10), [-2.0, 0.0, 0.0]])
    with np.errstate(divide="ignore"):
        expected = np.arctan(numerator / denominator)
    found = np.asarray(arctan_ratio(xp.asarray(numerator), xp.asarray(denominator), xp=xp))
    relative = np.abs(found - expected) / np.maximum(np.abs(expected), np.finfo(float).tiny)
    assert relative.max() < 1e-15, (relative.max(), numerator[np.argmax(relative)], denominator[np.argmax(relative)])
    assert found[-3] == 0.0 and found[-2] == math.pi / 2 and found[-1] == -math.pi / 2
