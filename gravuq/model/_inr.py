"""The implicit neural representation: normalised coordinates -> encoding -> MLP -> density.

Conventions (SPEC section 1): points in metres (x east, y north, z elevation positive up) are
mapped to the normalised frame by :class:`Normaliser` before they reach the network; the
output is a density contrast in kg/m^3.
"""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ..mesh import TensorMesh
from ..sizes import TABLE_SIZE_RANGE
from ._encoding import GridPlan, HashEncoding, HashPlan, make_encoding

_ACTIVATIONS = {
    "relu": jax.nn.relu,
    "leaky_relu": lambda x: jax.nn.leaky_relu(x, 0.01),
    "tanh": jnp.tanh,
    "gelu": jax.nn.gelu,
}

#: SIREN's frequency factor (Sitzmann et al. 2020).
SIREN_OMEGA = 30.0


@dataclass(frozen=True)
class Normaliser:
    """Maps metres to the network's frame: centred on the mesh, largest half-extent = 1.

    The same factor on every axis keeps the body's shape (a dip stays a dip).
    """

    centre: tuple[float, float, float]
    half_extent: float

    @classmethod
    def for_mesh(cls, mesh: TensorMesh) -> Normaliser:
        west, east, south, north, bottom, top = mesh.bounds
        centre = (0.5 * (west + east), 0.5 * (south + north), 0.5 * (bottom + top))
        return cls(centre, 0.5 * max(east - west, north - south, top - bottom))

    def __call__(self, points) -> jnp.ndarray:
        """``(n, 3)`` points in metres (float64 on the way in) -> float32 normalised points."""
        points = np.asarray(points, dtype=np.float64)
        return jnp.asarray((points - np.asarray(self.centre)) / self.half_extent, dtype=jnp.float32)


class DensityField(eqx.Module):
    """An INR of density contrast: encoding, an MLP, and a head.

    The head is ``bounded`` (``mid + half * tanh(h)``, so the density stays inside ``bounds``
    kg/m^3, as the seed paper's tanh head) or ``linear`` (``mid + half * (features . w + b)``:
    density is linear in the last layer, which the Bayesian last layer needs).
    """

    encoding: eqx.Module
    hidden: tuple[eqx.nn.Linear, ...]
    output: eqx.nn.Linear
    activation: str = eqx.field(static=True)
    head: str = eqx.field(static=True)
    bounds: tuple[float, float] = eqx.field(static=True)

    def __init__(self, *, encoding: str = "hash", frequencies: int = 8, sigma: float = 2.0,
                 width: int = 32, depth: int = 1, activation: str = "gelu",
                 bounds=(-600.0, 600.0), head: str = "bounded", hash_levels: int = 4,
                 hash_features: int = 2, hash_table_size: int = 2**12, hash_base_resolution: int = 4,
                 hash_max_resolution: int = 64, key: PRNGKeyArray, dtype=jnp.float32):
        encoding_key, *layer_keys = jax.random.split(key, depth + 2)
        self.encoding = make_encoding(
            encoding, key=encoding_key, frequencies=frequencies, sigma=sigma, hash_levels=hash_levels,
            hash_features=hash_features, hash_table_size=hash_table_size,
            hash_base_resolution=hash_base_resolution, hash_max_resolution=hash_max_resolution, dtype=dtype)
        sizes = [self.encoding.size] + [width] * depth
        hidden = [eqx.nn.Linear(a, b, key=k, dtype=dtype) for a, b, k in zip(sizes[:-1], sizes[1:], layer_keys)]
        if activation == "sine":
            hidden = [_siren_init(layer, first=i == 0, key=k) for i, (layer, k) in enumerate(zip(hidden, layer_keys))]
        self.hidden = tuple(hidden)
        self.output = eqx.nn.Linear(width, 1, key=layer_keys[-1], dtype=dtype)
        if activation not in _ACTIVATIONS and activation != "sine":
            raise ValueError(f"unknown activation '{activation}'")
        self.activation = activation
        self.head = head
        self.bounds = (float(bounds[0]), float(bounds[1]))

    def features(self, point: Float[Array, "3"]) -> Float[Array, " width"]:
        """The penultimate features (after the last hidden layer) at one normalised point."""
        return self._hidden_features(self.encoding(point))

    def _hidden_features(self, values):
        """The hidden layers on encoded ``values``: ``(features,)`` at one point or ``(n,
        features)`` at many (one matrix product a layer, not a product per point)."""
        for layer in self.hidden:
            values = values @ layer.weight.T + layer.bias
            values = jnp.sin(SIREN_OMEGA * values) if self.activation == "sine" else _ACTIVATIONS[self.activation](values)
        return values

    def __call__(self, point: Float[Array, "3"]) -> Float[Array, ""]:
        """Density contrast (kg/m^3) at one normalised point."""
        return self.head_from_features(self.features(point), self.output.weight[0], self.output.bias[0])

    def head_from_features(self, features, weight, bias):
        """Apply the head to penultimate features with last-layer ``weight`` (width,) and ``bias``."""
        lower, upper = self.bounds
        mid, half = 0.5 * (lower + upper), 0.5 * (upper - lower)
        value = features @ weight + bias
        return mid + half * (jnp.tanh(value) if self.head == "bounded" else value)

    def density(self, points, *, forward_mode: bool = False) -> Float[Array, " n"]:
        """Density contrast (kg/m^3) at many normalised points: ``(n, 3)`` coordinates, or
        :class:`Points` prepared once (:meth:`points`) so a hash encoding interpolates by a
        precomputed plan. ``forward_mode`` picks the plan's forward-differentiable path (for
        Jacobian-vector products); the default is the one with a fast gradient."""
        if isinstance(points, Points) and points.plan is not None:
            encoded = self.encoding.at_plan(points.plan, reverse=not forward_mode)
            values = self._hidden_features(encoded)
            return self.head_from_features(values, self.output.weight[0], self.output.bias[0])
        coordinates = points.coordinates if isinstance(points, Points) else points
        return jax.vmap(self)(coordinates)

    def points(self, coordinates) -> Points:
        """``coordinates`` (``(n, 3)`` normalised) prepared for repeated evaluation."""
        plan = self.encoding.plan(np.asarray(coordinates)) if isinstance(self.encoding, HashEncoding) else None
        return Points(jnp.asarray(coordinates), plan)


class Points(eqx.Module):
    """Fixed evaluation points (normalised ``coordinates``, ``(n, 3)``) and, for a hash
    encoding, the interpolation plan that every evaluation at them reuses (separable where the
    points are a tensor mesh's cell centres)."""

    coordinates: Float[Array, "n 3"]
    plan: HashPlan | GridPlan | None = None

    def restrict(self, params):
        """``params`` (a model's arrays, as :func:`trainable` splits them) with each hash-table
        level cut to the rows the plan reads (a :class:`TableRows`); unchanged without a plan.

        The outputs at these points do not depend on the other rows (their derivatives are
        exactly zero), so a Gauss-Newton solve over the restricted weights is the same solve
        on a vector a fraction of the size: the table of 40,128 cells has 262,144 rows, the
        cells read 18,117 of them.
        """
        if self.plan is None:
            return params
        tables = params.encoding.tables
        rows = TableRows(tuple(tables[level, entries] for level, entries in enumerate(self.plan.entries)))
        return eqx.tree_at(lambda tree: tree.encoding.tables, params, rows)

    def expand(self, restricted, like):
        """The inverse of :meth:`restrict` on vectors that are zero off the rows read: the
        restricted rows put back into tables shaped as ``like``'s, zero elsewhere."""
        if self.plan is None:
            return restricted
        full = jnp.zeros_like(like.encoding.tables)
        for level, (entries, rows) in enumerate(zip(self.plan.entries, restricted.encoding.tables.levels)):
            full = full.at[level, entries].set(rows.astype(full.dtype), unique_indices=True)
        return eqx.tree_at(lambda tree: tree.encoding.tables, restricted, full)


class TableRows(eqx.Module):
    """A hash table restricted to the rows some point reads: per level ``(used, features)``
    (see :meth:`Points.restrict`)."""

    levels: tuple


class VoxelField(eqx.Module):
    """One free density value per cell (kg/m^3): the classical voxel model as an engine member.

    It has the INR's ``density`` interface, so the particle engine trains it the same way; with
    it, randomised MAP on a linear problem is exactly the Gaussian posterior, which the tests
    use to check the engine's statistics.
    """

    values: Float[Array, " cell"]

    def density(self, points, *, forward_mode: bool = False) -> Float[Array, " n"]:
        return self.values

    def points(self, coordinates) -> Points:
        return Points(jnp.asarray(coordinates))


def _siren_init(layer: eqx.nn.Linear, *, first: bool, key: PRNGKeyArray) -> eqx.nn.Linear:
    fan_in = layer.weight.shape[1]
    limit = 1.0 / fan_in if first else np.sqrt(6.0 / fan_in) / SIREN_OMEGA
    weight = jax.random.uniform(key, layer.weight.shape, layer.weight.dtype, -limit, limit)
    return eqx.tree_at(lambda lin: lin.weight, layer, weight)


def trainable(model) -> tuple:
    """Split a model into (arrays, the rest) with ``eqx.partition``.

    The arrays carry the member axis of a stacked ensemble. The Fourier matrix is among them
    (each member draws its own) but it is never trained: the encoding stops its gradient, so
    Adam's update for it is exactly zero.
    """
    return eqx.partition(model, eqx.is_inexact_array)


def parameter_count(model) -> int:
    """Number of trained weights of one model (the fixed Fourier matrix excluded)."""
    from ._encoding import FourierEncoding

    params, _ = trainable(model)
    total = sum(np.prod(leaf.shape) for leaf in jax.tree.leaves(params))
    if isinstance(getattr(model, "encoding", None), FourierEncoding):
        total -= np.prod(model.encoding.matrix.shape)
    return int(total)


def model_from_config(settings, *, key: PRNGKeyArray) -> DensityField:
    """A :class:`DensityField` from a ``[model]`` config section (an unset ``hash_table_size``,
    outside a prepared run, is the smallest default, 2^12: see :func:`gravuq.sizes.with_table_size`)."""
    return DensityField(
        encoding=settings.encoding, frequencies=settings.frequencies, sigma=settings.sigma,
        width=settings.width, depth=settings.depth, activation=settings.activation,
        bounds=settings.bounds, head=settings.head, hash_levels=settings.hash_levels,
        hash_features=settings.hash_features, hash_table_size=settings.hash_table_size or TABLE_SIZE_RANGE[0],
        hash_base_resolution=settings.hash_base_resolution,
        hash_max_resolution=settings.hash_max_resolution, key=key)
