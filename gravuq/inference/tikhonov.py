"""The classical baseline: smooth, depth-weighted least squares (Li & Oldenburg 1998).

Minimises, over density contrast ``m`` (kg/m^3, flat over the mesh cells),

    phi(m) = |W_d (G m - d)|^2 + beta * ( alpha_s |W m|^2 + sum_i |l D_i W m|^2 )

with ``W_d = diag(1/sigma)`` (sigma in mGal), ``W = diag(w(z))`` the depth weighting
``w = (depth + z0)^(-exponent/2)`` normalised to 1 in the top layer, ``D_i`` the differences
between neighbouring cells along x, y and z divided by their centre distance (1/m), and ``l``
a smoothing length (m; default twice the mean cell size) that makes the smallness and the
smoothness terms comparable. The normal equations

    (G^T W_d^2 G + beta R) m = G^T W_d^2 d

are solved by conjugate gradients with matrix-free products, and ``beta`` is found by bisection
on ``log(beta)`` so that chi^2/N = ``target`` (the discrepancy principle). Bounds are imposed by
clipping the solution (a projection; exact only when no cell is clipped). Returns gz in mGal,
positive downward, and density in kg/m^3.

References: Li & Oldenburg (1998), Geophysics 63(1), 109-119, doi:10.1190/1.1444302.
"""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..mesh import TensorMesh
from .prior import depth_weighting
from .problem import Hooks, InverseProblem, MethodResult


@dataclass(frozen=True)
class TikhonovResult:
    density: np.ndarray  # (cells,) kg/m^3
    predicted: np.ndarray  # (stations,) mGal
    chi2: float
    beta: float
    solves: int


def _differences(mesh: TensorMesh, length: float):
    nz, ny, nx = mesh.shape
    gaps = [np.diff(mesh.centers_z), np.diff(mesh.centers_y), np.diff(mesh.centers_x)]
    inverse_gaps = [jnp.asarray(length / g) for g in gaps]

    def apply(field):  # (cells,) -> list of difference fields
        field = field.reshape(nz, ny, nx)
        return [jnp.diff(field, axis=0) * inverse_gaps[0][:, None, None],
                jnp.diff(field, axis=1) * inverse_gaps[1][None, :, None],
                jnp.diff(field, axis=2) * inverse_gaps[2][None, None, :]]

    return apply


def tikhonov(operator, mesh: TensorMesh, data, std, target: float = 1.0, depth_exponent: float = 2.0,
             alpha_s: float = 1.0, length: float | None = None, bounds=None, max_iterations: int = 500,
             bisection_steps: int = 30, tolerance: float = 0.02) -> TikhonovResult:
    """Smooth depth-weighted inversion at chi^2/N = ``target`` (see module notes).

    Parameters
    ----------
    operator
        Forward operator (``forward``/``adjoint``), gz in mGal per kg/m^3.
    mesh
        The tensor mesh.
    data, std
        Observed gz and its standard deviation, ``(stations,)``, mGal.
    target
        chi^2/N to reach.
    depth_exponent
        Li-Oldenburg exponent (2 for gravity); 0 disables depth weighting.
    alpha_s
        Weight of smallness relative to smoothness.
    length
        Smoothing length, m; default twice the mean cell width.
    bounds
        ``(lower, upper)`` kg/m^3 to clip the solution to, or None.
    tolerance
        Relative tolerance on chi^2/N for the bisection.
    """
    data = jnp.asarray(data, jnp.float64)
    weights_data = jnp.asarray(1.0 / np.asarray(std), jnp.float64)
    n_data = data.size
    length = length or 2.0 * float(np.mean(np.concatenate([mesh.widths_x, mesh.widths_y, mesh.widths_z])))
    w = jnp.asarray(depth_weighting(mesh, depth_exponent).ravel() if depth_exponent > 0 else np.ones(mesh.n_cells))
    differences = _differences(mesh, length)

    def forward(m):
        return operator.forward(m).astype(jnp.float64)

    def adjoint(r):
        return operator.adjoint(r).astype(jnp.float64)

    def regulariser(m):
        wm = w * m
        _, transpose = jax.vjp(differences, wm)
        (smooth,) = transpose(differences(wm))
        return w * (alpha_s * wm + smooth)

    right = adjoint(weights_data**2 * data)

    @eqx.filter_jit
    def solve(log_beta, start):
        beta = jnp.exp(log_beta)

        def normal(m):
            return adjoint(weights_data**2 * forward(m)) + beta * regulariser(m)

        m, _ = jax.scipy.sparse.linalg.cg(normal, right, x0=start, tol=1e-6, maxiter=max_iterations)
        residual = (forward(m) - data) * weights_data
        return m, jnp.sum(residual**2) / n_data

    # Bracket: beta so large the model is ~0 (chi2 > target) and small enough to fit (chi2 < target).
    scale = float(jnp.linalg.norm(right)) / float(jnp.linalg.norm(regulariser(right)) + 1e-300)
    low, high = np.log(scale) - 25.0, np.log(scale) + 10.0
    start = jnp.zeros(mesh.n_cells)
    solves = 0
    m, chi2 = solve(high, start)
    best = (abs(float(chi2) - target), m, float(chi2), high)
    for _ in range(bisection_steps):
        middle = 0.5 * (low + high)
        m, chi2 = solve(middle, m)
        solves += 1
        chi2 = float(chi2)
        if abs(chi2 - target) < best[0]:
            best = (abs(chi2 - target), m, chi2, middle)
        if abs(chi2 - target) <= tolerance * target:
            break
        if chi2 > target:
            high = middle
        else:
            low = middle
    _, m, chi2, log_beta = best
    m = np.asarray(m)
    if bounds is not None:
        m = np.clip(m, bounds[0], bounds[1])
    predicted = np.asarray(forward(jnp.asarray(m)))
    chi2 = float(np.mean(((predicted - np.asarray(data)) * np.asarray(weights_data)) ** 2))
    return TikhonovResult(m, predicted, chi2, float(np.exp(log_beta)), solves)


@dataclass(frozen=True)
class TikhonovSettings:
    """``target_misfit`` chi^2/N to reach; ``depth_exponent`` the Li-Oldenburg exponent;
    ``smallness`` the weight of smallness relative to smoothness; ``bounds`` (kg/m^3) to clip to."""

    target_misfit: float = 1.0
    depth_exponent: float = 1.0
    smallness: float = 10.0
    bounds: tuple[float, float] | None = None


def run(problem: InverseProblem, settings: TikhonovSettings, key=None, hooks: Hooks = Hooks()) -> MethodResult:
    """The smooth inversion of the module notes as a method (deterministic: ``key`` is unused)."""
    result = tikhonov(problem.operator, problem.mesh, problem.data, problem.std, settings.target_misfit,
                      settings.depth_exponent, settings.smallness, bounds=settings.bounds)
    return MethodResult(result.density[None, :], info={"beta": result.beta, "solves": result.solves})
