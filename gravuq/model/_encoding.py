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
    """

    tables: Float[Array, "levels table features"]
    resolutions: tuple[int, ...] = eqx.field(static=True)

    def __init__(self, levels: int, features: int, table_size: int, base_resolution: int,
                 max_resolution: int, *, key: PRNGKeyArray, dtype=jnp.float32):
        growth = math.exp((math.log(max_resolution) - math.log(base_resolution)) / max(levels - 1, 1))
        # The small epsilon keeps exact products (the finest level = max_resolution) from
        # flooring one cell short through rounding.
        self.resolutions = tuple(int(math.floor(base_resolution * growth**level + 1e-9)) for level in range(levels))
        self.tables = jax.random.uniform(key, (levels, table_size, features), dtype, -1e-4, 1e-4)

    @property
    def size(self) -> int:
        return self.tables.shape[0] * self.tables.shape[2]

    def _index(self, vertex: Array, resolution: int) -> Array:
        table_size = self.tables.shape[1]
        if (resolution + 1) ** 3 <= table_size:
            return (vertex[0] * (resolution + 1) + vertex[1]) * (resolution + 1) + vertex[2]
        vertex = vertex.astype(jnp.uint32)
        hashed = (vertex[0] * np.uint32(_PRIMES[0])) ^ (vertex[1] * np.uint32(_PRIMES[1])) ^ (vertex[2] * np.uint32(_PRIMES[2]))
        return (hashed % np.uint32(table_size)).astype(jnp.int32)

    def __call__(self, point: Float[Array, "3"]) -> Float[Array, " features"]:
        unit = jnp.clip(0.5 * (point + 1.0), 0.0, 1.0)
        corners = jnp.array([[(c >> 2) & 1, (c >> 1) & 1, c & 1] for c in range(8)], dtype=jnp.int32)
        features = []
        for level, resolution in enumerate(self.resolutions):
            scaled = unit * resolution
            lower = jnp.minimum(jnp.floor(scaled).astype(jnp.int32), resolution - 1)
            fraction = scaled - lower
            vertices = lower[None, :] + corners  # (8, 3)
            weights = jnp.prod(jnp.where(corners == 1, fraction[None, :], 1.0 - fraction[None, :]), axis=1)
            indices = jax.vmap(lambda v: self._index(v, resolution))(vertices)
            features.append(weights @ self.tables[level][indices])
        return jnp.concatenate(features)


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
