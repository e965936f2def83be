"""Forward-kernel benchmark: gravuq's dense sensitivity build and matrix-free products against
Harmonica's ``prism_gravity`` (numba, choclo kernels) on the same geometry, measured in one run.

Cases (shared/BENCHMARKS.md):

- ``B1``: 21 x 21 x 11 cells of 50 m, 441 stations on the cell-centre grid at z = +1 m;
- ``B4 grid``: 40 x 40 x 20 cells of 500 m, 1600 stations on the cell-centre grid at the mesh top;
- ``B4 scattered``: the B4 mesh, 1600 stations at random (x, y) at the mesh top, so rows are
  built the ``direct`` way (no lookup table of offsets applies).

On the two grid cases the FFT operator (``mode="fft"``, float32) is timed too: its build, and its
forward alone and forward + adjoint (1 and 10 members); ``max rel diff`` is for its forward. The
100 x 100 x 100 case (too big for a dense matrix) is in ``benchmarks/scale.py``.

Each timing is the best of 3 repeats after one warm-up call of the same shapes (which is also
reported: the first call, including JIT or numba compilation). ``harmonica / gravuq`` is
Harmonica's best time over gravuq's; ``max rel diff`` is ``max |gz_gravuq - gz_harmonica|``
over ``max |gz_harmonica|`` for the case's density model, in mGal. Every density model is
non-zero in every cell, because Harmonica skips prisms of zero density (a sparse model would
time a smaller problem than gravuq's dense matrix).

Run: ``python benchmarks/forward.py [--quick]`` (``--quick``: only B1).

``--gradient``: instead, the gravity-gradient dense build (``gzz``, Eotvos, float64 kernels)
against Harmonica's ``prism_gravity(..., field="g_zz", parallel=True)`` on the B4 mesh (1600
stations x 32,000 cells), grid (table / toeplitz ways) and scattered (direct way), as the ratio of
the best times in the same run (target: >= 4x on 2 cores, issue 17).
"""

from __future__ import annotations

import argparse
import os
import platform

import jax
import jax.numpy as jnp
import numpy as np

import gravuq
from _common import best_time  # noqa: E402  (benchmarks/ is the script folder)
from gravuq.forward import make_operator, sensitivity_matrix
from gravuq.mesh import TensorMesh
from gravuq.synthetic import b1_mesh, dipping_block_density

REPEATS = 3


def grid_stations(mesh: TensorMesh, elevation: float) -> np.ndarray:
    x, y = np.meshgrid(mesh.centers_x, mesh.centers_y)
    return np.stack([x.ravel(), y.ravel(), np.full(x.size, elevation)], axis=1)


def cell_prisms(mesh: TensorMesh) -> np.ndarray:
    """Every cell as (west, east, south, north, bottom, top), in the mesh's flat C order."""
    nz, ny, nx = mesh.shape
    k, j, i = (a.ravel() for a in np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij"))
    x, y, z = mesh.nodes_x, mesh.nodes_y, mesh.nodes_z
    return np.stack([x[i], x[i + 1], y[j], y[j + 1], z[k], z[k + 1]], axis=1)


def cases(quick: bool):
    mesh = b1_mesh()
    # Harmonica drops prisms of zero density before it starts, and the B1 block fills only 210 of
    # 4851 cells: a 10 kg/m^3 background keeps every prism in its work, as in gravuq's matrix.
    density = dipping_block_density(mesh).ravel() + 10.0
    yield "B1", mesh, grid_stations(mesh, 1.0), density, ("direct", "table", "toeplitz")
    if quick:
        return
    mesh = TensorMesh.uniform((0.0, 0.0, -10000.0), (500.0, 500.0, 500.0), (40, 40, 20))
    # A smooth model of the B4 amplitude (contrast -950..+950 kg/m^3); its exact field is irrelevant.
    centres = mesh.cell_centers
    density = 950.0 * np.sin(centres[:, 0] / 3000.0) * np.cos(centres[:, 1] / 4000.0) * np.exp(centres[:, 2] / 6000.0)
    yield "B4 grid", mesh, grid_stations(mesh, mesh.nodes_z[-1]), density, ("direct", "table", "toeplitz")
    rng = np.random.default_rng(4)
    west, east, south, north, _, top = mesh.bounds
    scattered = np.stack([rng.uniform(west, east, 1600), rng.uniform(south, north, 1600), np.full(1600, top)], 1)
    yield "B4 scattered", mesh, scattered, density, ("direct",)


def harmonica_row(harmonica, mesh, stations, density):
    prisms = cell_prisms(mesh)
    coordinates = tuple(np.ascontiguousarray(stations[:, axis]) for axis in range(3))
    return best_time(lambda: harmonica.prism_gravity(coordinates, prisms, density, field="g_z", parallel=True))


def gradient_benchmark(harmonica, component: str = "gzz") -> None:
    """The dense build of one gradient component against Harmonica on the B4 mesh (see --gradient)."""
    from gravuq.forward import HARMONICA_FIELDS

    mesh = TensorMesh.uniform((0.0, 0.0, -10000.0), (500.0, 500.0, 500.0), (40, 40, 20))
    centres = mesh.cell_centers
    density = 950.0 * np.sin(centres[:, 0] / 3000.0) * np.cos(centres[:, 1] / 4000.0) * np.exp(centres[:, 2] / 6000.0)
    rng = np.random.default_rng(4)
    west, east, south, north, _, top = mesh.bounds
    scattered = np.stack([rng.uniform(west, east, 1600), rng.uniform(south, north, 1600), np.full(1600, top)], 1)
    print(f"| case | engine | way | first call, s | best of 3, s | harmonica / gravuq | max rel diff ({component}) |")
    print("|---|---|---|---:|---:|---:|---:|")
    for name, stations, ways in (("B4 grid", grid_stations(mesh, top), ("table", "toeplitz")),
                                 ("B4 scattered", scattered, ("direct",))):
        coordinates = tuple(np.ascontiguousarray(stations[:, axis]) for axis in range(3))
        prisms = cell_prisms(mesh)
        first, theirs, reference = best_time(lambda: harmonica.prism_gravity(
            coordinates, prisms, density, field=HARMONICA_FIELDS[component], parallel=True))
        print(f"| {name} | harmonica (parallel) | per prism | {first:.3f} | {theirs:.3f} | 1.00 | 0 |")
        for way in ways:
            first, best, matrix = best_time(lambda: sensitivity_matrix(mesh, stations, dtype="float64", way=way,
                                                                       component=component))
            ours = np.asarray(matrix) @ density
            difference = np.abs(ours - reference).max() / np.abs(reference).max()
            del matrix
            print(f"| {name} | gravuq dense build | {way} | {first:.3f} | {best:.3f} | {theirs / best:.2f} | "
                  f"{difference:.1e} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="run only B1")
    parser.add_argument("--gradient", action="store_true",
                        help="only the gzz dense build against Harmonica's g_zz on the B4 mesh")
    arguments = parser.parse_args()
    try:
        import harmonica
    except ImportError:
        harmonica = None

    print(f"gravuq {gravuq.__version__}, jax {jax.__version__} ({jax.default_backend()}), "
          f"harmonica {getattr(harmonica, '__version__', 'not installed')}, "
          f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}; "
          f"load average before: {os.getloadavg()[0]:.2f}")
    if arguments.gradient:
        if harmonica is None:
            raise SystemExit("--gradient needs harmonica installed (the peer of the ratio)")
        gradient_benchmark(harmonica)
        print(f"\nload average after: {os.getloadavg()[0]:.2f}")
        return
    header = ("| case | engine | way | dtype | first call, s | best of 3, s | M pairs/s | "
              "harmonica / gravuq | max rel diff |")
    lines = [header, "|---|---|---|---|---:|---:|---:|---:|---:|"]
    free_rows = []
    fft_rows = []
    for name, mesh, stations, density, ways in cases(arguments.quick):
        pairs = stations.shape[0] * mesh.n_cells
        reference, harmonica_best = None, None
        if harmonica is not None:
            first, harmonica_best, reference = harmonica_row(harmonica, mesh, stations, density)
            lines.append(f"| {name} | harmonica (parallel) | per prism | float64 | {first:.3f} | "
                         f"{harmonica_best:.3f} | {pairs / harmonica_best / 1e6:.1f} | 1.00 | 0 |")
        for way in ways:
            for dtype in ("float32", "float64"):
                first, best, matrix = best_time(lambda: sensitivity_matrix(mesh, stations, dtype=dtype, way=way))
                ratio, difference = "n/a", "n/a"
                if reference is not None:
                    gz = np.asarray(matrix, dtype=np.float64) @ density
                    ratio = f"{harmonica_best / best:.2f}"
                    difference = f"{np.abs(gz - reference).max() / np.abs(reference).max():.1e}"
                del matrix
                lines.append(f"| {name} | gravuq dense build | {way} | {dtype} | {first:.3f} | {best:.3f} | "
                             f"{pairs / best / 1e6:.1f} | {ratio} | {difference} |")
        if name.startswith("B4"):
            operator, _ = make_operator(mesh, stations, mode="matrix_free", dtype="float32")
            for members in (1, 10):
                batch = jnp.asarray(np.tile(density, (members, 1)), dtype=jnp.float32)
                residual = jnp.ones((members, stations.shape[0]), dtype=jnp.float32)
                step = jax.jit(lambda d, r: (operator.forward(d), operator.adjoint(r)))
                first, best, _ = best_time(lambda: step(batch, residual))
                ratio = f"{harmonica_best / best:.2f}" if harmonica_best else "n/a"
                free_rows.append(f"| {name} | {operator.rows.way} | float32 | {members} | {first:.3f} | "
                                 f"{best:.3f} | {ratio} |")
        if "toeplitz" in ways:
            build, _, (operator, _) = best_time(lambda: make_operator(mesh, stations, mode="fft", dtype="float32"),
                                                repeats=0)
            forward = jax.jit(lambda d: operator.forward(d))
            step = jax.jit(lambda d, r: (operator.forward(d), operator.adjoint(r)))
            for members in (1, 10):
                batch = jnp.asarray(np.tile(density, (members, 1)), dtype=jnp.float32)
                residual = jnp.ones((members, stations.shape[0]), dtype=jnp.float32)
                _, forward_best, gz = best_time(lambda: forward(batch))
                _, both_best, _ = best_time(lambda: step(batch, residual))
                ratio, difference = "n/a", "n/a"
                if reference is not None:
                    ratio = f"{harmonica_best / forward_best:.1f}"
                    gz = np.asarray(gz[0], dtype=np.float64)
                    difference = f"{np.abs(gz - reference).max() / np.abs(reference).max():.1e}"
                fft_rows.append(f"| {name} | {members} | {build:.3f} | {forward_best:.4f} | {both_best:.4f} | "
                                f"{ratio} | {difference} |")
    print()
    print("\n".join(lines))
    if free_rows:
        print()
        print("| case | way | dtype | members | first call, s | forward + adjoint best of 3, s | "
              "harmonica forward / gravuq (fwd+adj) |")
        print("|---|---|---|---:|---:|---:|---:|")
        print("\n".join(free_rows))
    if fft_rows:
        print()
        print("| case | members | FFT build (first call), s | forward best of 3, s | forward + adjoint best of 3, s | "
              "harmonica forward / gravuq forward | max rel diff |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        print("\n".join(fft_rows))
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
