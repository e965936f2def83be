"""Synthetic reference cases of the benchmarks: B1 dipping block, B4 Gaussian random field,
and a sphere, each as a mesh, a true density model and stations.

Conventions (SPEC section 1): metres, z elevation positive up; density contrast in kg/m^3 on
arrays shaped ``(nz, ny, nx)`` (bottom layer first); gz in mGal, positive downward.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .forward import sensitivity_matrix
from .mesh import TensorMesh


@dataclass(frozen=True)
class SyntheticCase:
    """A synthetic survey.

    Attributes
    ----------
    name
        Short name (``"b1"``, ``"b4"``, ``"sphere"``).
    mesh
        The tensor mesh.
    density
        True density contrast, kg/m^3, shape ``(nz, ny, nx)``.
    stations
        ``(n, 3)`` station coordinates x, y, z in metres (z up).
    gz_true
        Noise-free gz at the stations, mGal, positive downward.
    std
        Standard deviation of the added noise at each station, mGal.
    gz
        ``gz_true`` plus iid Gaussian noise of ``std``, mGal.
    """

    name: str
    mesh: TensorMesh
    density: np.ndarray
    stations: np.ndarray
    gz_true: np.ndarray
    std: np.ndarray
    gz: np.ndarray


def gaussian_noise(key: jax.Array, std: np.ndarray) -> np.ndarray:
    """iid Gaussian noise with per-station ``std`` (mGal), float64, drawn from ``key``."""
    std = np.asarray(std, dtype=np.float64)
    return np.asarray(jax.random.normal(key, std.shape, dtype=jnp.float64)) * std


def _grid_stations(mesh: TensorMesh, elevation: float) -> np.ndarray:
    x, y = np.meshgrid(mesh.centers_x, mesh.centers_y)
    return np.stack([x.ravel(), y.ravel(), np.full(x.size, float(elevation))], axis=1)


def _finish(name, mesh, density, stations, key, noise_fraction) -> SyntheticCase:
    matrix = np.asarray(sensitivity_matrix(mesh, stations, dtype="float64"))
    gz_true = matrix @ density.ravel()
    std = np.full(gz_true.shape, noise_fraction * gz_true.std())
    return SyntheticCase(name, mesh, density, stations, gz_true, std, gz_true + gaussian_noise(key, std))


def dipping_block_density(mesh: TensorMesh | None = None, contrast: float = 400.0) -> np.ndarray:
    """The B1 dipping block on the B1 mesh: 7 slabs of +400 kg/m^3 dipping 45 degrees toward -y.

    Slab ``i = 0..6`` covers x-cell indices 7..12, y-cell indices ``11 - i .. 15 - i`` and the
    layer whose centre is at elevation ``-50 (i + 1)`` m: 210 cells in all (the seed paper's case).
    """
    mesh = mesh or b1_mesh()
    density = np.zeros(mesh.shape)
    for slab in range(7):
        layer = int(np.argmin(np.abs(mesh.centers_z - (-50.0 * (slab + 1)))))
        density[layer, 11 - slab : 16 - slab, 7:13] = contrast
    return density


def b1_mesh() -> TensorMesh:
    """21 x 21 x 11 cells of 50 m; cell centres x, y = 0..1000 m and z = -500..0 m."""
    return TensorMesh.uniform((-25.0, -25.0, -525.0), (50.0, 50.0, 50.0), (21, 21, 11))


def dipping_block(key: jax.Array | None = None, noise_fraction: float = 0.01) -> SyntheticCase:
    """The B1 case: 441 stations at every cell-centre (x, y) at z = +1 m (inside the top layer,
    as in the seed paper), noise ``noise_fraction * std(gz_true)``; ``key`` defaults to key(0)."""
    mesh = b1_mesh()
    key = jax.random.key(0) if key is None else key
    return _finish("b1", mesh, dipping_block_density(mesh), _grid_stations(mesh, 1.0), key, noise_fraction)


def gaussian_random_field(key: jax.Array, shape: tuple[int, int, int], spacing: tuple[float, float, float],
                          correlation_length: float = 5000.0, smoothness: float = 1.5) -> np.ndarray:
    """A stationary Gaussian random field with a Matern-type power spectrum, by FFT synthesis.

    The spectrum is ``(k^2 + 1 / lambda^2)^(-nu - 1.5)`` with ``k`` the angular wavenumber
    (rad/m), ``lambda = correlation_length`` (m) and ``nu = smoothness`` (the B4 case).
    ``shape`` is ``(nz, ny, nx)``, ``spacing`` ``(dz, dy, dx)`` in m. The field is synthesised on a
    grid padded to twice the size (periodic wrap would otherwise link opposite faces) and
    returned with zero mean and unit standard deviation.
    """
    padded = tuple(2 * n for n in shape)
    axes = [2 * np.pi * np.fft.fftfreq(n, d) for n, d in zip(padded, spacing)]
    kz, ky, kx = np.meshgrid(*axes, indexing="ij")
    amplitude = (kx**2 + ky**2 + kz**2 + 1.0 / correlation_length**2) ** (-(smoothness + 1.5) / 2)
    white = np.asarray(jax.random.normal(key, padded, dtype=jnp.float64))
    field = np.real(np.fft.ifftn(np.fft.fftn(white) * amplitude))
    field = field[: shape[0], : shape[1], : shape[2]]
    return (field - field.mean()) / field.std()


def gaussian_random_field_case(key: jax.Array | None = None, noise_fraction: float = 0.01) -> SyntheticCase:
    """The B4 case: 40 x 40 x 20 cells of 500 m, a GRF min-max scaled to a contrast of -950..+950
    kg/m^3 (absolute 1600..3500 around 2550), 1600 stations on the cell-centre grid at the top."""
    key = jax.random.key(4) if key is None else key
    field_key, noise_key = jax.random.split(key)
    mesh = TensorMesh.uniform((0.0, 0.0, -10000.0), (500.0, 500.0, 500.0), (40, 40, 20))
    field = gaussian_random_field(field_key, mesh.shape, (500.0, 500.0, 500.0))
    density = -950.0 + 1900.0 * (field - field.min()) / (field.max() - field.min())
    return _finish("b4", mesh, density, _grid_stations(mesh, mesh.nodes_z[-1]), noise_key, noise_fraction)


def sphere(key: jax.Array | None = None, shape=(16, 16, 8), cell_size: float = 50.0,
           centre=None, radius: float = 120.0, contrast: float = 300.0,
           noise_fraction: float = 0.01) -> SyntheticCase:
    """A sphere of ``contrast`` kg/m^3 (cells whose centres lie within ``radius`` m of ``centre``)
    in a uniform mesh of ``shape = (nx, ny, nz)`` cells, stations 10 m above the mesh top."""
    key = jax.random.key(1) if key is None else key
    nx, ny, nz = shape
    mesh = TensorMesh.uniform((0.0, 0.0, -nz * cell_size), (cell_size,) * 3, shape)
    if centre is None:
        centre = (nx * cell_size / 2, ny * cell_size / 2, -nz * cell_size / 2)
    centres = mesh.cell_centers
    inside = np.linalg.norm(centres - np.asarray(centre, dtype=np.float64), axis=1) <= radius
    density = np.where(inside, contrast, 0.0).reshape(mesh.shape)
    return _finish("sphere", mesh, density, _grid_stations(mesh, mesh.nodes_z[-1] + 10.0), key, noise_fraction)
