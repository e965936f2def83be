"""The implicit neural representation: encodings, the density field, its gradients, and one real
fit through the particle engine on a tiny sphere.

Conventions (SPEC section 1): network inputs are normalised coordinates (the mesh centred at 0,
largest half-extent 1); the field's output is a density contrast in kg/m^3; gz in mGal, positive
downward.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gravuq.config import load_config
from gravuq.forward import make_operator
from gravuq.inference.training import Engine, FirstOrder, MemberTargets, Network, Objective, Stopping, adam, stack_members
from gravuq.mesh import TensorMesh
from gravuq.model import (
    DensityField,
    FourierEncoding,
    GridPlan,
    HashEncoding,
    HashPlan,
    IdentityEncoding,
    Normaliser,
    PositionalEncoding,
    make_encoding,
    parameter_count,
    trainable,
)
from gravuq.pipeline import prepare
from gravuq.sizes import network_parameters, table_size_for
from gravuq.synthetic import sphere

ENCODINGS = ("none", "positional", "fourier", "hash")
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sine", "gelu")
#: A small hash grid: resolutions 4, 8, 16, 32 (powers of two, so grid vertices are exact in
#: float32); levels 0 and 1 fit the table and are indexed directly, levels 2 and 3 are hashed.
HASH = dict(hash_levels=4, hash_features=2, hash_table_size=2**12, hash_base_resolution=4, hash_max_resolution=32)
PRIMES = (1, 2654435761, 805459861)


def small_field(encoding: str, *, key=0, activation: str = "leaky_relu", **overrides) -> DensityField:
    settings = dict(encoding=encoding, frequencies=4, sigma=2.0, width=8, depth=2, activation=activation,
                    bounds=(-100.0, 300.0), **HASH)
    settings.update(overrides)
    return DensityField(key=jax.random.key(key), **settings)


def random_points(count: int, seed: int = 0, scale: float = 0.9) -> jnp.ndarray:
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.uniform(-scale, scale, (count, 3)), jnp.float32)


def hash_with_random_tables(amplitude: float = 1.0) -> HashEncoding:
    """The HashEncoding of HASH with tables uniform in [-amplitude, amplitude] (the initial
    tables are ~1e-4, too small to see interpolation errors)."""
    encoding = HashEncoding(HASH["hash_levels"], HASH["hash_features"], HASH["hash_table_size"],
                            HASH["hash_base_resolution"], HASH["hash_max_resolution"], key=jax.random.key(3))
    tables = jax.random.uniform(jax.random.key(4), encoding.tables.shape, jnp.float32, -amplitude, amplitude)
    return eqx.tree_at(lambda e: e.tables, encoding, tables)


#: Jitted evaluations, so the hash grid's per-level Python loop is traced once per structure
#: instead of dispatching its operations one by one.
encode = eqx.filter_jit(lambda encoding, points: jax.vmap(encoding)(points))
densities_at = eqx.filter_jit(lambda field, points: field.density(points))


def vertex_index(vertex, resolution: int, table_size: int) -> int:
    """Table row of a grid vertex, written independently of the code: direct where the level's
    (resolution + 1)^3 vertices fit, else Mueller et al.'s xor-of-primes hash (uint32 wrap)."""
    if (resolution + 1) ** 3 <= table_size:
        return (vertex[0] * (resolution + 1) + vertex[1]) * (resolution + 1) + vertex[2]
    hashed = 0
    for coordinate, prime in zip(vertex, PRIMES):
        hashed ^= (coordinate * prime) % 2**32
    return hashed % table_size


# -- encodings -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name, expected_size", [
    ("none", 3), ("positional", 3 + 6 * 4), ("fourier", 2 * 4), ("hash", 4 * 2),
])
def test_encoding_feature_size_and_dtype(name, expected_size):
    encoding = make_encoding(name, key=jax.random.key(0), frequencies=4, sigma=2.0, hash_levels=4, hash_features=2,
                             hash_table_size=2**12, hash_base_resolution=4, hash_max_resolution=32)
    assert encoding.size == expected_size
    features = encode(encoding, random_points(5))
    assert features.shape == (5, expected_size)
    assert features.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(features)))


def test_encoding_classes_and_unknown_name():
    assert isinstance(make_encoding("none", key=jax.random.key(0)), IdentityEncoding)
    assert isinstance(make_encoding("positional", key=jax.random.key(0)), PositionalEncoding)
    assert isinstance(make_encoding("fourier", key=jax.random.key(0)), FourierEncoding)
    assert isinstance(make_encoding("hash", key=jax.random.key(0), hash_table_size=2**10), HashEncoding)
    with pytest.raises(ValueError, match="unknown encoding"):
        make_encoding("wavelet", key=jax.random.key(0))


def test_positional_and_fourier_features_match_their_formulas():
    point = np.array([0.3, -0.7, 0.45], np.float32)
    positional = np.asarray(PositionalEncoding(3)(jnp.asarray(point)), np.float64)
    angles = (2.0 * np.pi * 2.0 ** np.arange(3)[:, None] * point[None, :]).ravel()
    np.testing.assert_allclose(positional, np.concatenate([point, np.sin(angles), np.cos(angles)]), atol=1e-5)

    fourier = FourierEncoding(5, 2.0, key=jax.random.key(1))
    matrix = np.asarray(fourier.matrix, np.float64)
    assert matrix.shape == (5, 3)
    angles = 2.0 * np.pi * matrix @ point
    np.testing.assert_allclose(np.asarray(fourier(jnp.asarray(point))), np.concatenate([np.cos(angles), np.sin(angles)]),
                               atol=1e-4)


def test_hash_encoding_is_lipschitz_continuous():
    """|f(p + e) - f(p)| <= max_resolution * A * |e|_1 per feature (trilinear interpolation of
    table values in [-A, A]; d(grid)/d(p) = resolution / 2); a jump at cell faces breaks it."""
    amplitude = 1.0
    encoding = hash_with_random_tables(amplitude)
    finest = max(encoding.resolutions)
    rng = np.random.default_rng(7)
    points = rng.uniform(-0.95, 0.95, (400, 3))
    # Half the points sit exactly on a finest-level grid plane, so p and p + e straddle cell faces.
    on_plane = rng.integers(1, finest, (200, 3)) * (2.0 / finest) - 1.0
    points[:200, 0] = on_plane[:, 0]
    points[100:200, 1] = on_plane[100:200, 1]
    offsets = rng.normal(0.0, 1e-3, points.shape)
    offsets[:200, 0] = -np.abs(offsets[:200, 0])  # step across the plane from the upper side
    points = points.astype(np.float32)
    moved = (points + offsets).astype(np.float32)
    step = np.abs(moved.astype(np.float64) - points.astype(np.float64)).sum(axis=1)
    before = np.asarray(encode(encoding, jnp.asarray(points)), np.float64)
    after = np.asarray(encode(encoding, jnp.asarray(moved)), np.float64)
    change = np.abs(after - before).max(axis=1)
    bound = finest * amplitude * step + 1e-4  # float32 rounding of the grid coordinate
    assert np.all(change <= bound), f"worst ratio {np.max(change / bound):.3g}"
    # ...and the features do move (the test is not vacuous).
    assert np.median(change) > 1e-3 * np.median(finest * amplitude * step)


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_hash_features_at_a_grid_vertex_are_the_table_entries(level):
    """At a vertex of level ``level`` the trilinear weights are (1, 0, ..., 0), so that level's
    features are exactly the vertex's table row (direct index for coarse levels, hash for fine)."""
    encoding = hash_with_random_tables()
    resolution = encoding.resolutions[level]
    table_size = encoding.tables.shape[1]
    assert resolution == 4 * 2**level
    rng = np.random.default_rng(level)
    vertices = [tuple(int(v) for v in rng.integers(0, resolution + 1, 3)) for _ in range(6)]
    vertices += [(0, 0, 0), (resolution, resolution, resolution), (resolution, 0, 1)]  # the cube's faces
    points = jnp.asarray(2.0 * np.asarray(vertices) / resolution - 1.0, jnp.float32)
    features = np.asarray(encode(encoding, points)).reshape(len(vertices), len(encoding.resolutions), -1)
    tables = np.asarray(encoding.tables)
    for vertex, found in zip(vertices, features):
        expected = tables[level, vertex_index(vertex, resolution, table_size)]
        np.testing.assert_array_equal(found[level], expected, err_msg=f"vertex {vertex}")


def test_hash_direct_levels_have_no_collisions():
    encoding = hash_with_random_tables()
    for resolution in encoding.resolutions[:2]:
        grid = np.stack(np.meshgrid(*[np.arange(resolution + 1)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
        indices = np.asarray(jax.vmap(lambda v: encoding._index(v, resolution))(jnp.asarray(grid, jnp.int32)))
        assert len(np.unique(indices)) == len(grid)
        assert indices.min() >= 0 and indices.max() < encoding.tables.shape[1]


# -- the density field -------------------------------------------------------------------------
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_density_field_output_is_a_float32_scalar_per_point(encoding):
    field = small_field(encoding)
    value = eqx.filter_eval_shape(field, jnp.zeros(3, jnp.float32))  # traced, not run
    assert value.shape == () and value.dtype == jnp.float32
    densities = densities_at(field, random_points(7))
    assert densities.shape == (7,) and densities.dtype == jnp.float32
    assert bool(jnp.all((densities >= -100.0) & (densities <= 300.0)))


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_bounded_head_stays_inside_bounds_for_huge_inputs_and_weights(encoding, activation):
    field = small_field(encoding, activation=activation)
    params, static = trainable(field)
    field = eqx.combine(jax.tree.map(lambda leaf: leaf * 1e4, params), static)
    points = jnp.asarray(np.random.default_rng(1).normal(0.0, 1e4, (64, 3)), jnp.float32)
    densities = np.asarray(field.density(points))
    assert np.all(np.isfinite(densities))
    assert np.all((densities >= -100.0) & (densities <= 300.0))
    # Saturated, not collapsed onto the midpoint: the inputs are large enough to hit the bounds.
    assert densities.max() - densities.min() > 100.0


def test_linear_head_is_affine_in_the_last_layer():
    field = small_field("fourier", head="linear")
    point = jnp.asarray([0.1, 0.2, -0.3], jnp.float32)
    features = field.features(point)
    weight, bias = field.output.weight[0], field.output.bias[0]
    mid, half = 100.0, 200.0
    np.testing.assert_allclose(float(field(point)), mid + half * float(features @ weight + bias), rtol=1e-5)
    # Unbounded: a scaled-up last layer leaves the bounds.
    big = eqx.tree_at(lambda f: f.output.bias, field, jnp.asarray([10.0], jnp.float32))
    assert float(big(point)) > 300.0


@eqx.filter_jit
def _gradient_and_adam_step(params, static, points, weights):
    """Gradient of a weighted sum of densities, and one Adam update from it."""
    def loss(p):
        return jnp.sum(weights * eqx.combine(p, static).density(points))

    grads = jax.grad(loss)(params)
    optimizer = adam(0.1, clip_norm=1.0)
    updates, _ = optimizer.update(grads, optimizer.init(params), params)
    return grads, updates


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_gradients_reach_every_trainable_leaf(encoding):
    field = small_field(encoding)
    params, static = trainable(field)
    points = random_points(32, seed=2)
    weights = jnp.asarray(np.random.default_rng(3).normal(size=32), jnp.float32)
    grads, updates = _gradient_and_adam_step(params, static, points, weights)
    leaves = jax.tree_util.tree_leaves_with_path(grads)
    assert len(leaves) == len(jax.tree.leaves(params))
    for path, grad in leaves:
        name = jax.tree_util.keystr(path)
        assert bool(jnp.all(jnp.isfinite(grad))), name
        if encoding == "fourier" and name == ".encoding.matrix":
            assert bool(jnp.all(grad == 0.0)), "the Fourier matrix must not be trained (stop_gradient)"
        else:
            assert bool(jnp.any(grad != 0.0)), f"no gradient reaches {name}"
    if encoding == "fourier":
        assert any(jax.tree_util.keystr(path) == ".encoding.matrix" for path, _ in leaves)
        # ...so Adam leaves it exactly where it was, while the layers move.
        assert bool(jnp.all(updates.encoding.matrix == 0.0))
        assert bool(jnp.any(updates.output.weight != 0.0))


def test_parameter_count_matches_a_hand_count():
    assert parameter_count(small_field("none")) == (3 * 8 + 8) + (8 * 8 + 8) + (8 + 1)
    # Fourier: 2 * 4 features in; the fixed 4 x 3 matrix is not counted.
    assert parameter_count(small_field("fourier")) == (8 * 8 + 8) + (8 * 8 + 8) + (8 + 1)
    # Positional: 3 + 6 * 4 = 27 features in, nothing trainable in the encoding.
    assert parameter_count(small_field("positional")) == (27 * 8 + 8) + (8 * 8 + 8) + (8 + 1)
    # Hash: the tables are trained (4 levels x 4096 rows x 2 features), 8 features in.
    assert parameter_count(small_field("hash")) == 4 * 2**12 * 2 + (8 * 8 + 8) + (8 * 8 + 8) + (8 + 1)


def test_sine_activation_uses_siren_initialisation():
    field = small_field("none", activation="sine", width=32, depth=3)
    first, *rest = field.hidden
    fan_in = first.weight.shape[1]
    limit = 1.0 / fan_in
    weights = np.abs(np.asarray(first.weight))
    assert weights.max() <= limit
    assert weights.max() > 0.5 * limit  # uniform on the whole interval, not shrunk
    for layer in rest:
        limit = np.sqrt(6.0 / layer.weight.shape[1]) / 30.0
        weights = np.abs(np.asarray(layer.weight))
        assert weights.max() <= limit
        assert weights.max() > 0.5 * limit
    # Without sine, equinox's default init (1/sqrt(fan_in)) is far wider than SIREN's first layer.
    assert np.abs(np.asarray(small_field("none", width=32, depth=3).hidden[0].weight)).max() > 1.0 / 3.0


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="activation"):
        small_field("none", activation="swish")


def test_normaliser_centres_the_mesh_and_keeps_its_aspect():
    mesh = TensorMesh.uniform((500000.0, 7000000.0, -400.0), (50.0, 25.0, 10.0), (8, 4, 10))
    normaliser = Normaliser.for_mesh(mesh)
    west, east, south, north, bottom, top = mesh.bounds
    corners = np.array([[west, south, bottom], [east, north, top], [0.5 * (west + east), 0.5 * (south + north), 0.5 * (bottom + top)]])
    mapped = np.asarray(normaliser(corners))
    assert normaliser(corners).dtype == jnp.float32
    # Largest half-extent (x: 200 m) maps to 1; y (50 m) and z (50 m) scale by the same factor.
    np.testing.assert_allclose(mapped[0], [-1.0, -0.25, -0.25], atol=1e-6)
    np.testing.assert_allclose(mapped[1], [1.0, 0.25, 0.25], atol=1e-6)
    np.testing.assert_allclose(mapped[2], [0.0, 0.0, 0.0], atol=1e-6)  # UTM offsets removed in float64


# -- a real fit through the engine -------------------------------------------------------------
@pytest.fixture(scope="module")
def sphere_problem():
    case = sphere(shape=(8, 8, 4), cell_size=50.0, radius=80.0)
    operator, _ = make_operator(case.mesh, case.stations, mode="dense")
    coordinates = Normaliser.for_mesh(case.mesh)(case.mesh.cell_centers)
    return case, operator, coordinates


def test_engine_fits_the_sphere_to_the_target_misfit(sphere_problem):
    case, operator, coordinates = sphere_problem
    chi2_zero = float(np.mean((case.gz / case.std) ** 2))
    assert chi2_zero > 1e3  # the data carry signal far above the noise: a real fit is needed

    def make(key):
        return DensityField(encoding="hash", width=16, depth=1, bounds=(-600.0, 600.0), key=key, **HASH)

    members = 2
    params, static = stack_members(make, jax.random.split(jax.random.key(0), members))
    for leaf in jax.tree.leaves(params):  # one batched pytree with a leading member axis
        assert leaf.shape[0] == members
    problem = Objective(operator=operator, coordinates=coordinates, inverse_std=jnp.asarray(1.0 / case.std, jnp.float32),
                        targets=MemberTargets(data=jnp.asarray(np.tile(case.gz, (members, 1)), jnp.float32)))
    epochs = 800
    engine = Engine(Network(static), FirstOrder(adam(2e-2)), Stopping(target_misfit=1.0), chunk_epochs=100)
    state = engine.init(params, jax.random.key(0), problem)
    assert np.all(np.asarray(state.members.chi2) > 1e3)  # the untrained networks do not explain the data
    initial = np.asarray(engine.densities(params, problem))
    assert not np.allclose(initial[0], initial[1])  # members start from distinct initialisations
    state, history = engine.run(state, problem, epochs)
    assert history.shape[1] == members
    assert np.all(np.asarray(state.members.reached_target)) and not np.any(np.asarray(state.members.diverged))
    assert int(state.epoch) < epochs  # stopped by the discrepancy principle, not by running out
    density = np.asarray(engine.densities(engine.kept_params(state), problem), np.float64)
    predicted = np.asarray(operator.forward(jnp.asarray(density, jnp.float64)), np.float64)
    chi2 = np.mean(((predicted - case.gz) / case.std) ** 2, axis=1)
    assert np.all(chi2 <= 1.2), chi2
    assert np.all(np.abs(density) <= 600.0)


def test_the_default_hash_table_has_an_entry_for_every_cell(case):
    """An unset [model] hash_table_size becomes, when a run is prepared, the smallest power of two
    at least the mesh's cells (within 2^12..2^19); a value given is kept; sizes counts the same."""
    assert [table_size_for(n) for n in (1, 4096, 4097, 40_128, 10**7)] == [2**12, 2**12, 2**13, 2**16, 2**19]
    config = load_config(case.config("table_default", model='encoding = "hash"\nwidth = 8'))
    assert config.model.hash_table_size is None
    setup = prepare(config)
    assert setup.config.model.hash_table_size == table_size_for(setup.mesh.n_cells)
    assert network_parameters(config, setup.mesh.n_cells) == network_parameters(setup.config)
    given = load_config(case.config("table_given", model='encoding = "hash"\nwidth = 8\nhash_table_size = 1024'))
    assert prepare(given).config.model.hash_table_size == 1024


def test_separable_grid_plan_equals_the_per_point_interpolation_and_its_transposes():
    """At a tensor mesh's cell centres the hash features come from a separable plan; they, their
    JVP and their VJP equal the per-point interpolation (hashed levels with collisions, a
    direct level, non-uniform widths), and points in another order get the per-point plan."""
    mesh = TensorMesh([30.0] * 7 + [60.0, 90.0], [40.0] * 6, [100.0, 50.0, 25.0, 25.0, 10.0], (0.0, 0.0, -210.0))
    encoding = HashEncoding(4, 2, 2**7, 2, 16, key=jax.random.key(3))
    points = np.asarray(Normaliser.for_mesh(mesh)(mesh.cell_centers))
    grid_plan = encoding.plan(points)
    assert isinstance(grid_plan, GridPlan)
    order = np.random.default_rng(0).permutation(points.shape[0])
    assert isinstance(encoding.plan(points[order]), HashPlan)
    rows, weights = jax.vmap(encoding.lookup)(jnp.asarray(points))
    point_plan = HashPlan.build(np.asarray(rows), np.asarray(weights), encoding.tables.shape[1])

    def features(tables, plan, reverse):
        return eqx.tree_at(lambda e: e.tables, encoding, tables).at_plan(plan, reverse)

    expected = features(encoding.tables, point_plan, True)
    np.testing.assert_allclose(features(encoding.tables, grid_plan, True), expected, atol=1e-7)
    np.testing.assert_allclose(jax.vmap(encoding)(jnp.asarray(points)), expected, atol=1e-7)
    tangent = jax.random.normal(jax.random.key(4), encoding.tables.shape, encoding.tables.dtype)
    jvp_grid = jax.jvp(lambda t: features(t, grid_plan, False), (encoding.tables,), (tangent,))[1]
    jvp_point = jax.jvp(lambda t: features(t, point_plan, False), (encoding.tables,), (tangent,))[1]
    np.testing.assert_allclose(jvp_grid, jvp_point, rtol=1e-5, atol=1e-6)
    cotangent = jax.random.normal(jax.random.key(5), expected.shape, expected.dtype)
    vjp_grid = jax.vjp(lambda t: features(t, grid_plan, True), encoding.tables)[1](cotangent)[0]
    vjp_point = jax.vjp(lambda t: features(t, point_plan, True), encoding.tables)[1](cotangent)[0]
    np.testing.assert_allclose(vjp_grid, vjp_point, rtol=1e-5, atol=1e-5)
    assert float(jnp.max(jnp.abs(vjp_point))) > 1.0  # the transposes are not trivially zero


def test_the_rows_a_restriction_drops_do_not_move_the_outputs():
    """Points.restrict keeps exactly the hash-table rows the outputs depend on: a tangent on the
    dropped rows changes no output (JVP), the gradient is zero on them (VJP), and expand puts
    the kept rows back; for the separable plan and the per-point one."""
    mesh = TensorMesh([30.0] * 7 + [60.0, 90.0], [40.0] * 6, [100.0, 50.0, 25.0, 25.0, 10.0], (0.0, 0.0, -210.0))
    field = DensityField(encoding="hash", width=8, hash_levels=3, hash_table_size=2**10, hash_base_resolution=2,
                         hash_max_resolution=16, head="linear", key=jax.random.key(6))
    centres = np.asarray(Normaliser.for_mesh(mesh)(mesh.cell_centers))
    params, static = trainable(field)
    tangent = jax.tree.map(lambda x: jax.random.normal(jax.random.key(7), x.shape, x.dtype), params)
    weights = jax.random.normal(jax.random.key(8), (mesh.n_cells,))
    for coordinates, kind in ((centres, GridPlan), (centres[np.random.default_rng(1).permutation(mesh.n_cells)], HashPlan)):
        points = field.points(coordinates)
        assert isinstance(points.plan, kind)

        def output(p, forward_mode=False, points=points):
            return eqx.combine(p, static).density(points, forward_mode=forward_mode)

        kept = points.expand(points.restrict(tangent), params)
        kept_rows = sum(rows.shape[0] for rows in points.restrict(params).encoding.tables.levels)
        assert 0 < kept_rows < 0.5 * field.encoding.tables.shape[0] * field.encoding.tables.shape[1]
        full = jax.jvp(lambda p: output(p, True), (params,), (tangent,))[1]
        np.testing.assert_allclose(jax.jvp(lambda p: output(p, True), (params,), (kept,))[1], full, rtol=1e-5, atol=1e-6)
        gradient = jax.grad(lambda p: jnp.vdot(weights, output(p)))(params)
        back = points.expand(points.restrict(gradient), params)
        for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(gradient)):
            np.testing.assert_array_equal(a, b)
        assert float(jnp.max(jnp.abs(gradient.encoding.tables))) > 0.0
