"""Scale benchmark: 100 x 100 x 100 cells with 100 x 100 gridded stations.

1. The FFT forward operator (``make_operator(..., mode="fft")``, float32): its build, the memory
   estimate of every operator, and one forward + adjoint (1 and 8 members), each timed as the best
   of 3 after one warm-up call (the first call, with compilation, is also reported). The dense
   matrix would need 10^4 x 10^6 numbers (37 GiB in float32).
2. The peer: Harmonica's ``prism_gravity(..., field="g_z", parallel=True)`` on the first
   ``--harmonica-stations`` stations (all 10^6 prisms), timed once after a small numba warm-up and
   extrapolated linearly to all stations (its cost is exactly stations x prisms). ``harmonica /
   gravuq`` compares that with gravuq's forward alone; ``max rel diff`` is the largest
   ``|gz_gravuq - gz_harmonica|`` over ``max |gz_harmonica|`` at those stations, in mGal.
3. With ``--ensemble``: an 8-member deep ensemble (randomised MAP, no anchor) trained on that
   operator for ``--epochs`` epochs (default 200) with a lean network (Fourier features, 32 x 2),
   all epochs run (no early stop). Reports the wall time, the time per epoch after compilation,
   and the peak resident memory (``resource.getrusage``). With fewer than 200 epochs the 200-epoch
   wall time is extrapolated from the steady per-epoch time, and says so.

Mesh: cells of 50 m from (0, 0, -5000) m; stations on the cell-centre grid 1 m above the top.
The density model is smooth and non-zero in every cell (Harmonica skips prisms of zero density).

Run: ``python benchmarks/scale.py [--ensemble] [--epochs N] [--harmonica-stations N]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np
from _common import best_time  # noqa: E402  (benchmarks/ is the script folder)

import gravuq
from gravuq.forward import make_operator
from gravuq.mesh import TensorMesh
from gravuq.model import Normaliser

REPEATS = 3
SHAPE = (100, 100, 100)
CELL = 50.0


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far, GB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def geometry(shape=SHAPE):
    mesh = TensorMesh.uniform((0.0, 0.0, -shape[2] * CELL), (CELL,) * 3, shape)
    x, y = np.meshgrid(mesh.centers_x, mesh.centers_y)
    stations = np.stack([x.ravel(), y.ravel(), np.full(x.size, mesh.nodes_z[-1] + 1.0)], axis=1)
    centres = mesh.cell_centers
    density = (300.0 * np.sin(centres[:, 0] / 700.0) * np.cos(centres[:, 1] / 900.0)
               * np.exp(centres[:, 2] / 2500.0) + 20.0)
    return mesh, stations, density


def cell_prisms(mesh: TensorMesh) -> np.ndarray:
    """Every cell as (west, east, south, north, bottom, top), in the mesh's flat C order."""
    nz, ny, nx = mesh.shape
    k, j, i = (a.ravel() for a in np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij"))
    x, y, z = mesh.nodes_x, mesh.nodes_y, mesh.nodes_z
    return np.stack([x[i], x[i + 1], y[j], y[j + 1], z[k], z[k + 1]], axis=1)


def forward_section(mesh, stations, density, harmonica_stations: int):
    n_stations = stations.shape[0]
    print(f"\n## FFT operator: {mesh.shape[0]} x {mesh.shape[1]} x {mesh.shape[2]} cells, {n_stations} stations\n")
    start = time.perf_counter()
    operator, estimate = make_operator(mesh, stations, mode="fft", dtype="float32")
    jax.block_until_ready(operator.spectrum)
    build = time.perf_counter() - start
    print(f"memory estimate: {estimate.describe()}")
    print(f"build (lattice, float64 kernel, its FFT): {build:.2f} s; FFT grid {operator.padded_shape}; "
          f"peak RSS so far {peak_rss_gb():.2f} GB\n")
    forward = jax.jit(lambda d: operator.forward(d))
    both = jax.jit(lambda d, r: (operator.forward(d), operator.adjoint(r)))
    rows = []
    forward_best = None
    for members in (1, 8):
        model = jnp.asarray(np.tile(density, (members, 1)), jnp.float32)
        residual = jnp.ones((members, n_stations), jnp.float32)
        first, best, _ = best_time(lambda: both(model, residual))
        rows.append(f"| forward + adjoint | {members} | {first:.3f} | {best:.3f} |")
        first, best, gz = best_time(lambda: forward(model))
        rows.append(f"| forward | {members} | {first:.3f} | {best:.3f} |")
        if members == 1:
            forward_best, gz_one = best, np.asarray(gz[0], np.float64)
    print("| operation | members | first call, s | best of 3, s |\n|---|---:|---:|---:|")
    print("\n".join(rows))

    try:
        import harmonica
    except ImportError:
        harmonica = None
    if harmonica is None or harmonica_stations <= 0:
        print("\nno peer timing (harmonica not installed, or --harmonica-stations 0)")
        return operator
    subset = stations[:harmonica_stations]
    prisms = cell_prisms(mesh)
    coordinates = tuple(np.ascontiguousarray(subset[:, axis]) for axis in range(3))
    warm = tuple(c[:1] for c in coordinates)
    harmonica.prism_gravity(warm, prisms[:10], density[:10], field="g_z", parallel=True)  # numba compile
    start = time.perf_counter()
    reference = harmonica.prism_gravity(coordinates, prisms, density, field="g_z", parallel=True)
    measured = time.perf_counter() - start
    extrapolated = measured * n_stations / subset.shape[0]
    difference = np.abs(gz_one[:subset.shape[0]] - reference).max() / np.abs(reference).max()
    pairs = subset.shape[0] * mesh.n_cells
    print(f"\nharmonica {harmonica.__version__} (parallel, float64): {subset.shape[0]} stations x "
          f"{mesh.n_cells} prisms in {measured:.2f} s ({pairs / measured / 1e6:.1f} M pairs/s); "
          f"all {n_stations} stations extrapolated: {extrapolated:.0f} s")
    print(f"harmonica / gravuq (forward, 1 member): {extrapolated / forward_best:.0f}; "
          f"max rel diff (gravuq float32 FFT vs harmonica): {difference:.1e}")
    return operator


def ensemble_section(mesh, stations, density, operator, members: int, epochs: int):
    """Randomised MAP with the default network and trainer (Levenberg-Marquardt), matrix-free:
    no dense matrix exists, so convergence is judged by the members' chi^2/N (about 1 at the
    RML minimum with N >> cells resolved) and by the trainer's own stop (the loss stopped falling
    by ``tolerance`` for ``patience`` steps) before the ``epochs`` cap."""
    from gravuq.config import ModelConfig
    from gravuq.inference import Hooks, InverseProblem, ensemble
    from gravuq.inference.prior import GaussianPrior
    from gravuq.inference.training import TrainingSettings

    print(f"\n## Ensemble: randomised MAP, {members} members, Levenberg-Marquardt, at most {epochs} steps\n")
    data = np.asarray(operator.forward(jnp.asarray(density, jnp.float32)), np.float64)
    std = np.full(data.size, 0.01 * np.abs(data).max())
    data = data + std * np.random.default_rng(0).standard_normal(data.size)
    prior = GaussianPrior.build(mesh, 100.0, 0.0)

    def no_dense():
        raise RuntimeError("the scale case has no dense matrix")

    problem = InverseProblem(operator, mesh, Normaliser.for_mesh(mesh)(mesh.cell_centers), data, std, no_dense,
                             lambda: False, lambda: (prior, {"prior_scale": "fixed", "prior_std": 100.0}))
    from gravuq.sizes import with_table_size

    settings = ensemble.EnsembleSettings("rml", members, with_table_size(ModelConfig(), mesh.n_cells),
                                         TrainingSettings(epochs=epochs, patience=3, tolerance=2e-3))

    def log(message):
        print(f"[{time.perf_counter() - start:6.1f} s] {message}", flush=True)

    start = time.perf_counter()
    result = ensemble.run(problem, settings, jax.random.key(0), Hooks(log=log))
    wall = time.perf_counter() - start
    record = result.training
    rows = np.clip(record.kept_epochs, 0, record.history.shape[0] - 1)  # the last step's start
    chi2 = record.history[rows, np.arange(record.history.shape[1])]
    stopped = "the trainer's own stop (no further progress)" if record.epochs < epochs else "the step cap"
    print(f"wall {wall:.1f} s incl. set-up and compilation; peak RSS {peak_rss_gb():.2f} GB; {record.epochs} steps, "
          f"ended by {stopped}")
    print(f"members' chi2/N against their own perturbed data (before the last step): "
          f"{np.array2string(chi2, precision=3)}")
    observed = np.mean(((np.asarray(operator.forward(jnp.asarray(result.draws, jnp.float32))) - data) / std) ** 2,
                       axis=1)
    print(f"members' chi2/N against the observed data: {np.array2string(observed, precision=3)}")
    mean = result.draws.mean(axis=0)
    residual = (operator.forward(jnp.asarray(mean, jnp.float32)) - data) / std
    print(f"chi2/N of the ensemble mean: {float(np.mean(np.asarray(residual) ** 2)):.3g}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ensemble", action="store_true", help="also train an 8-member ensemble")
    parser.add_argument("--epochs", type=int, default=40, help="at most this many trainer steps (default 40)")
    parser.add_argument("--side", type=int, default=SHAPE[0],
                        help="cells per side (default 100: 10^6 cells; smaller for a quick check)")
    parser.add_argument("--members", type=int, default=8, help="ensemble members (default 8)")
    parser.add_argument("--harmonica-stations", type=int, default=100,
                        help="stations Harmonica is timed on (extrapolated to all); 0 to skip")
    arguments = parser.parse_args()
    print(f"gravuq {gravuq.__version__}, jax {jax.__version__} ({jax.default_backend()}, "
          f"{len(jax.devices())} device(s)), {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}; "
          f"load average before: {os.getloadavg()[0]:.2f}")
    mesh, stations, density = geometry((arguments.side,) * 3)
    operator = forward_section(mesh, stations, density, min(arguments.harmonica_stations, stations.shape[0]))
    if arguments.ensemble:
        ensemble_section(mesh, stations, density, operator, arguments.members, arguments.epochs)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
