"""Spatial encodings of normalised coordinates for the implicit neural representation.

Every encoding maps one point ``(3,)`` in the normalised frame (the mesh centred at 0 and scaled
so that its largest half-extent is 1, same factor on every axis so shapes are not distorted) to a
feature vector. Frequencies are in cycles per normalised length, and the 2 pi is applied.

References: Mildenhall et al. (2020), NeRF, arXiv:2003.08934 (positional); Tancik et al. (2020),
arXiv:2006.10739 (Gaussian Fourier features); Mueller et al. (2022), arXiv:2201.05989
(multiresolution hash grid).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray


class IdentityEncoding(eqx.Module):
    """No encoding: the normalised coordinates themselves."""

    @property
    def size(self) -> int:
        return 3

    def __call__(self, point: Float[Array, "3"]) -> Float[Array, "3"]:
        return point


class PositionalEncoding(eqx.Module):
    """NeRF octaves: ``[p, sin(2 pi 2^l p), cos(2 pi 2^l p)]`` for ``l = 0 .. frequencies - 1``."""

    frequencies: int = eqx.field(static=True)

    @property
    def size(self) -> int:
        return 3 + 6 * self.frequencies

    def __call__(self, point: Float[Array, "3"]) -> Float[Array, " features"]:
        scales = 2.0 * jnp.pi * 2.0 ** jnp.arange(self.frequencies, dtype=point.dtype)
        angles = (scales[:, None] * point[None, :]).ravel()
        return jnp.concatenate([point, jnp.sin(angles), jnp.cos(angles)])


class FourierEncoding(eqx.Module):
    """Gaussian random Fourier features ``[cos(2 pi B p), sin(2 pi B p)]``, ``B ~ N(0, sigma^2)``.

    ``B`` has ``frequencies`` rows, so there are ``2 * frequencies`` features; it is fixed (not
    trained), as Tancik et al. prescribe.
    """

    matrix: Float[Array, "frequencies 3"]

    def __init__(self, frequencies: int, sigma: float, *, key: PRNGKeyArray, dtype=jnp.float32):
        self.matrix = sigma * jax.random.normal(key, (frequencies, 3), dtype)

    @property
    def size(self) -> int:
        return 2 * self.matrix.shape[0]

    def __call__(self, point: Float[Array, "3"]) -> Float[Array, " features"]:
        angles = 2.0 * jnp.pi * (jax.lax.stop_gradient(self.matrix) @ point)
        return jnp.concatenate([jnp.cos(angles), jnp.sin(angles)])


_PRIMES = (1, 2654435761, 805459861)


class HashEncoding(eqx.Module):
    """Multiresolution hash grid: per level, trainable features at grid vertices, interpolated.

    Level ``l`` has resolution ``floor(base * growth^l)`` cells across the normalised cube
    ``[-1, 1]^3``, growth chosen so the finest level reaches ``max_resolution``. Its vertex
    features sit in a table of ``table_size`` rows: indexed directly where the grid fits, else
    by the spatial hash ``xor(i * p_i) mod table_size`` (Mueller et al. 2022). Features are
    trilinearly interpolated, so the encoding is continuous in the coordinates.

    The entries start uniform in ``[-init_scale, init_scale]``. Instant-NGP's 1e-4 suits Adam;
    with features that small the first layer's weights barely affect the output at first, and
    the coupling of the two (a product) makes Gauss-Newton steps overshoot, so gravuq starts at
    0.1, where the first layer sees features of the order of its own weights.
    """

    tables: Float[Array, "levels table features"]
    resolutions: tuple[int, ...] = eqx.field(static=True)

    def __init__(self, levels: int, features: int, table_size: int, base_resolution: int,
                 max_resolution: int, *, key: PRNGKeyArray, dtype=jnp.float32, init_scale: float = 0.1):
        growth = math.exp((math.log(max_resolution) - math.log(base_resolution)) / max(levels - 1, 1))
        # The small epsilon keeps exact products (the finest level = max_resolution) from
        # flooring one cell short through rounding.
        self.resolutions = tuple(int(math.floor(base_resolution * growth**level + 1e-9)) for level in range(levels))
        self.tables = jax.random.uniform(key, (levels, table_size, features), dtype, -init_scale, init_scale)

    @property
    def size(self) -> int:
        return self.tables.shape[0] * self.tables.shape[2]

    def _index(self, vertex: Array, resolution: int) -> Array:
        """Table rows of integer vertex indices ``vertex`` ``(3, ...)`` (x, y, z first), NumPy or JAX."""
        table_size = self.tables.shape[1]
        if (resolution + 1) ** 3 <= table_size:
            return (vertex[0] * (resolution + 1) + vertex[1]) * (resolution + 1) + vertex[2]
        vertex = vertex.astype(jnp.uint32)
        hashed = (vertex[0] * np.uint32(_PRIMES[0])) ^ (vertex[1] * np.uint32(_PRIMES[1])) ^ (vertex[2] * np.uint32(_PRIMES[2]))
        return (hashed % np.uint32(table_size)).astype(jnp.int32)

    def lookup(self, point: Float[Array, "3"]) -> tuple[Array, Array]:
        """Where ``point`` reads the tables: ``(rows, weights)``, each ``(levels, 8)``: the row of
        each corner vertex of its cell at every level and its trilinear weight."""
        corners = jnp.array([[(c >> 2) & 1, (c >> 1) & 1, c & 1] for c in range(8)], dtype=jnp.int32)
        rows, weights = [], []
        for resolution in self.resolutions:
            lower, fraction = _cell_and_fraction(point, resolution)
            vertices = lower[None, :] + corners  # (8, 3)
            weights.append(jnp.prod(jnp.where(corners == 1, fraction[None, :], 1.0 - fraction[None, :]), axis=1))
            rows.append(jax.vmap(lambda v: self._index(v, resolution))(vertices))
        return jnp.stack(rows), jnp.stack(weights).astype(self.tables.dtype)

    def __call__(self, point: Float[Array, "3"]) -> Float[Array, " features"]:
        rows, weights = self.lookup(point)
        levels = jnp.arange(len(self.resolutions))[:, None]
        return jnp.einsum("lk,lkf->lf", weights, self.tables[levels, rows]).reshape(-1)

    def plan(self, points: np.ndarray) -> HashPlan | GridPlan:
        """The interpolation at fixed ``points`` (``(n, 3)``, normalised), computed once: training
        evaluates the network at the same cell centres every step. Points that are the centres
        of a tensor mesh in its flat C order (z slowest, x fastest, as
        :attr:`gravuq.mesh.TensorMesh.cell_centers`) get a separable :class:`GridPlan`; any
        other points a :class:`HashPlan`."""
        points = np.asarray(points)
        axes = _tensor_axes(points)
        if axes is not None:
            return GridPlan.build(self, axes)
        rows, weights = jax.jit(jax.vmap(self.lookup))(jnp.asarray(points, self.tables.dtype))
        return HashPlan.build(np.asarray(rows), np.asarray(weights), self.tables.shape[1])

    def at_plan(self, plan: HashPlan | GridPlan, reverse: bool = True) -> Float[Array, "n features"]:
        """The features at a plan's points. Each table row is read by a gather; with
        ``reverse``, through a function whose gradient is a gather too (fast reverse mode, no
        forward mode), else through the plain gather (forward mode, whose transpose JAX would
        make a scatter)."""
        if isinstance(plan, GridPlan):
            return plan.interpolate(self.tables, reverse)
        interpolate = _interpolate_reverse if reverse else _interpolate
        return interpolate(self.tables, plan)


def _cell_and_fraction(values, resolution: int, xp=jnp):
    """The grid cell (lower vertex index) of normalised coordinates ``values`` (any shape) at
    ``resolution`` cells across ``[-1, 1]``, and their fraction across it (in ``[0, 1]``);
    ``xp`` NumPy or JAX's NumPy (the same float operations, so the same values)."""
    scaled = xp.clip(0.5 * (values + 1.0), 0.0, 1.0) * resolution
    lower = xp.minimum(xp.floor(scaled).astype(np.int32), resolution - 1)
    return lower, (scaled - lower).astype(scaled.dtype)


def _tensor_axes(points: np.ndarray):
    """``(x, y, z)`` 1-D coordinate arrays when ``points`` ``(n, 3)`` are exactly their tensor
    product in flat C order over ``(z, y, x)``, else None."""
    if points.ndim != 2 or points.shape[1] != 3 or points.shape[0] == 0:
        return None

    def first_change(column_mask):
        changed = np.flatnonzero(column_mask)
        return int(changed[0]) if changed.size else points.shape[0]

    n = points.shape[0]
    nxy = first_change(points[:, 2] != points[0, 2])
    nx = first_change((points[:, 1] != points[0, 1]) | (points[:, 2] != points[0, 2]))
    if nxy % nx or n % nxy:
        return None
    x = points[:nx, 0]
    y, z = points[:nxy:nx, 1], points[::nxy, 2]
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    grid = np.stack([xx.ravel(), yy.ravel(), zz.ravel()], axis=1)
    return (x, y, z) if grid.shape == points.shape and np.array_equal(grid, points) else None


class GridPlan(eqx.Module):
    """The trilinear interpolation of a hash grid at the centres of a tensor mesh, separably.

    At a tensor grid of points the trilinear weights factor over the axes, so per level the
    features are ``V`` (the table rows of the vertices on the planes, per axis, that some
    point's grid cell touches, ``(mz, my, mx, features)``, one gather) contracted with three
    small interpolation matrices ``weights[level]`` = ``(Wz (nz, mz), Wy (ny, my), Wx (nx,
    mx))``, two non-zeros a row. That
    reads each vertex once instead of eight times per point, and the contractions are dense
    products; the result equals :class:`HashPlan`'s to rounding. ``rows[level]`` ``(mz, my,
    mx)`` the vertices' table rows; ``entries``/``sources`` the transpose of the vertex gather
    as in :class:`HashPlan` (a gather replaces the scatter-add).
    """

    weights: tuple
    rows: tuple
    entries: tuple
    sources: tuple

    @classmethod
    def build(cls, encoding: HashEncoding, axes) -> GridPlan:
        dtype = encoding.tables.dtype
        weights, rows, entries, sources = [], [], [], []
        for resolution in encoding.resolutions:
            matrices, used = [], []
            for values in axes:
                lower, fraction = _cell_and_fraction(np.asarray(values, dtype), resolution, np)
                # The vertex planes some cell reads (both sides of its grid cell): all of them
                # where the level is coarser than the mesh, one in three or fewer where it is
                # finer (B1's 21 cells across a level of 64: 42 of the box's 65 planes).
                planes = np.unique(np.concatenate([lower, lower + 1]))
                column = np.searchsorted(planes, lower)
                matrix = np.zeros((values.size, planes.size), np.float64)
                matrix[np.arange(values.size), column] = 1.0 - fraction
                matrix[np.arange(values.size), column + 1] = fraction
                matrices.append(matrix)
                used.append(planes)
            shape = tuple(m.shape[1] for m in matrices)  # (mx, my, mz)
            vz, vy, vx = np.meshgrid(*used[::-1], indexing="ij")
            # The index of every vertex at once, in NumPy (uint32 products wrap as in JAX).
            level_rows = np.asarray(encoding._index(np.stack([vx.ravel(), vy.ravel(), vz.ravel()]).astype(np.int64),
                                                    resolution))
            used, padded = _transpose_gather(level_rows)
            weights.append(tuple(jnp.asarray(m, dtype) for m in matrices[::-1]))
            rows.append(jnp.asarray(level_rows.reshape(shape[::-1]), jnp.int32))
            entries.append(jnp.asarray(used, jnp.int32))
            sources.append(jnp.asarray(padded, jnp.int32))
        return cls(tuple(weights), tuple(rows), tuple(entries), tuple(sources))

    def interpolate(self, tables, reverse: bool):
        gather = _vertex_gather_reverse if reverse else _vertex_gather
        features = []
        for (wz, wy, wx), vertices in zip(self.weights, gather(tables, self)):
            values = jnp.einsum("xa,cbaf->cbxf", wx, vertices)
            values = jnp.einsum("yb,cbxf->cyxf", wy, values)
            values = jnp.einsum("zc,cyxf->zyxf", wz, values)
            features.append(values.reshape(-1, values.shape[-1]))
        return jnp.stack(features, axis=1).reshape(features[0].shape[0], -1)


def _vertex_gather(tables, plan: GridPlan):
    return tuple(tables[level][rows] for level, rows in enumerate(plan.rows))


@eqx.filter_custom_vjp
def _vertex_gather_reverse(tables, plan: GridPlan):
    return _vertex_gather(tables, plan)


@_vertex_gather_reverse.def_fwd
def _vertex_gather_reverse_fwd(perturbed, tables, plan: GridPlan):
    return _vertex_gather(tables, plan), None


@_vertex_gather_reverse.def_bwd
def _vertex_gather_reverse_bwd(residuals, cotangents, perturbed, tables, plan: GridPlan):
    return _sum_onto_rows(tables, [c.reshape(-1, tables.shape[-1]) for c in cotangents], plan.entries, plan.sources)


def _sum_onto_rows(tables, contributions, entries, sources):
    """The transpose of a gather of table rows, as a gather: per level, ``contributions[level]``
    ``(k, features)`` (one a gathered row) summed onto the rows ``entries[level]`` through
    ``sources[level]`` (see :func:`_transpose_gather`); zero on rows nothing read."""
    gradient = jnp.zeros_like(tables)
    for level, flat in enumerate(contributions):
        flat = jnp.concatenate([flat.astype(tables.dtype), jnp.zeros((1, flat.shape[1]), tables.dtype)])
        summed = flat[sources[level]].sum(axis=1)  # (used, features)
        gradient = gradient.at[level, entries[level]].set(summed, unique_indices=True)
    return gradient


def _transpose_gather(flat: np.ndarray):
    """For a gather of table rows ``flat`` (``(k,)``): the rows it reads, ``used``, and per used
    row the positions in ``flat`` that read it, padded with ``k`` (an appended zero) to the
    largest count: the gather that sums a cotangent back onto the rows."""
    order = np.argsort(flat, kind="stable")
    used, first, counts = np.unique(flat[order], return_index=True, return_counts=True)
    padded = np.full((used.size, int(counts.max())), flat.size, np.int64)
    offsets = np.arange(flat.size) - np.repeat(first, counts)
    padded[np.repeat(np.arange(used.size), counts), offsets] = order
    return used, padded


class HashPlan(eqx.Module):
    """The trilinear interpolation of a hash grid at fixed points, and its transpose.

    ``rows`` ``(n, levels, 8)`` the table row of each corner, ``weights`` the same shape, the
    trilinear weights. For the transpose (the gradient with respect to the tables), per level:
    ``entries[level]`` ``(used,)`` the rows some point reads and ``sources[level]`` ``(used,
    most)`` the positions, in that level's flattened ``(n * 8)`` contributions, of the
    contributions to each row, padded with ``n * 8`` (an appended zero). A gather replaces the
    scatter-add JAX would otherwise use, which is several times slower on CPUs.
    """

    rows: Array
    weights: Array
    entries: tuple
    sources: tuple

    @classmethod
    def build(cls, rows: np.ndarray, weights: np.ndarray, table_size: int) -> HashPlan:
        entries, sources = [], []
        for level in range(rows.shape[1]):
            used, padded = _transpose_gather(rows[:, level, :].ravel())
            entries.append(jnp.asarray(used, jnp.int32))
            sources.append(jnp.asarray(padded, jnp.int32))
        return cls(jnp.asarray(rows, jnp.int32), jnp.asarray(weights), tuple(entries), tuple(sources))


def _gather(tables, plan: HashPlan):
    levels = jnp.arange(tables.shape[0])[None, :, None]
    values = tables[levels, plan.rows]  # (n, levels, 8, features)
    return jnp.einsum("nlk,nlkf->nlf", plan.weights.astype(tables.dtype), values).reshape(plan.rows.shape[0], -1)


def _interpolate(tables, plan: HashPlan):
    return _gather(tables, plan)


@eqx.filter_custom_vjp
def _interpolate_reverse(tables, plan: HashPlan):
    return _gather(tables, plan)


@_interpolate_reverse.def_fwd
def _interpolate_reverse_fwd(perturbed, tables, plan: HashPlan):
    return _gather(tables, plan), None


@_interpolate_reverse.def_bwd
def _interpolate_reverse_bwd(residuals, cotangent, perturbed, tables, plan: HashPlan):
    n, levels, corners = plan.rows.shape
    features = tables.shape[-1]
    cotangent = cotangent.reshape(n, levels, features)
    contributions = [(plan.weights[:, level, :, None].astype(tables.dtype) * cotangent[:, level, None, :])
                     .reshape(n * corners, features) for level in range(levels)]
    return _sum_onto_rows(tables, contributions, plan.entries, plan.sources)


def make_encoding(name: str, *, key: PRNGKeyArray, frequencies: int = 8, sigma: float = 2.0,
                  hash_levels: int = 8, hash_features: int = 2, hash_table_size: int = 2**12,
                  hash_base_resolution: int = 4, hash_max_resolution: int = 64, dtype=jnp.float32):
    """The encoding named in ``[model] encoding``: none, positional, fourier or hash."""
    if name == "none":
        return IdentityEncoding()
    if name == "positional":
        return PositionalEncoding(frequencies)
    if name == "fourier":
        return FourierEncoding(frequencies, sigma, key=key, dtype=dtype)
    if name == "hash":
        return HashEncoding(hash_levels, hash_features, hash_table_size, hash_base_resolution,
                            hash_max_resolution, key=key, dtype=dtype)
    raise ValueError(f"unknown encoding '{name}'")
