"""Whole-process benchmark of ``gravuq forward``: the command as a user runs it (Python start-up,
imports, config, reading the truth model and stations, the operator, writing the CSV) against
Harmonica's ``prism_gravity(..., field="g_z", parallel=True)`` on the same stations and prisms.

Cases:

- ``B4 grid``: 40 x 40 x 20 cells of 500 m, 1600 stations on the cell-centre grid at the mesh top
  (the case of shared/BENCHMARKS.md);
- ``B4 scattered``: the same mesh, 1600 stations at random (x, y) at the mesh top;
- ``large`` (only with ``--large``): 100 x 100 x 100 cells of 50 m, 100 x 100 stations 1 m above
  the top (10^6 cells x 10^4 stations). Harmonica is run on ``--harmonica-stations`` of them and
  extrapolated linearly (its cost is exactly stations x prisms).

``gravuq forward`` is timed as a subprocess (wall clock, best of ``--repeats``); Harmonica
in-process after a numba warm-up (best of 3), so its import and compilation are *not* counted:
the ratio is conservative for gravuq. ``max rel diff`` is ``max |gz_gravuq - gz_harmonica|`` over
``max |gz_harmonica|`` (mGal). ``path`` is what the command's log says it computed with (the
float64 FFT or rows in NumPy, or a JAX operator); ``imports`` is the command's own import time
from one more run under ``python -X importtime`` (the sum over top-level modules, seconds) and
whether JAX was among them. Units: metres, z up; density kg/m^3; gz mGal, positive downward.

Run: ``python benchmarks/forward_process.py [--large] [--repeats N]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from gravuq.io import model_dataset, read_stations_csv, write_netcdf, write_stations_csv
from gravuq.mesh import TensorMesh


def grid_stations(mesh: TensorMesh, elevation: float) -> np.ndarray:
    x, y = np.meshgrid(mesh.centers_x, mesh.centers_y)
    return np.stack([x.ravel(), y.ravel(), np.full(x.size, elevation)], axis=1)


def cell_prisms(mesh: TensorMesh) -> np.ndarray:
    """Every cell as (west, east, south, north, bottom, top), in the mesh's flat C order."""
    nz, ny, nx = mesh.shape
    k, j, i = (a.ravel() for a in np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij"))
    x, y, z = mesh.nodes_x, mesh.nodes_y, mesh.nodes_z
    return np.stack([x[i], x[i + 1], y[j], y[j + 1], z[k], z[k + 1]], axis=1)


def smooth_density(mesh: TensorMesh, scale: float) -> np.ndarray:
    """A smooth model, non-zero in every cell (Harmonica skips prisms of zero density)."""
    c = mesh.cell_centers
    return (950.0 * np.sin(c[:, 0] / (6 * scale)) * np.cos(c[:, 1] / (8 * scale))
            * np.exp(c[:, 2] / (12 * scale)) + 20.0)


def cases(large: bool):
    mesh = TensorMesh.uniform((0.0, 0.0, -10000.0), (500.0, 500.0, 500.0), (40, 40, 20))
    density = smooth_density(mesh, 500.0)
    yield "B4 grid", mesh, grid_stations(mesh, mesh.nodes_z[-1]), density
    rng = np.random.default_rng(4)
    west, east, south, north, _, top = mesh.bounds
    scattered = np.stack([rng.uniform(west, east, 1600), rng.uniform(south, north, 1600), np.full(1600, top)], 1)
    yield "B4 scattered", mesh, scattered, density
    if large:
        mesh = TensorMesh.uniform((0.0, 0.0, -5000.0), (50.0, 50.0, 50.0), (100, 100, 100))
        yield "large", mesh, grid_stations(mesh, mesh.nodes_z[-1] + 1.0), smooth_density(mesh, 50.0)


def write_case(folder: Path, mesh: TensorMesh, stations: np.ndarray, density: np.ndarray) -> Path:
    write_netcdf(folder / "truth.nc", model_dataset(mesh, {"density": density.reshape(mesh.shape)}))
    write_stations_csv(folder / "stations.csv", *stations.T, np.zeros(len(stations)), np.ones(len(stations)))
    origin = [float(mesh.nodes_x[0]), float(mesh.nodes_y[0]), float(mesh.nodes_z[0])]
    size = [float(mesh.nodes_x[1] - mesh.nodes_x[0]), float(mesh.nodes_y[1] - mesh.nodes_y[0]),
            float(mesh.nodes_z[1] - mesh.nodes_z[0])]
    nz, ny, nx = mesh.shape
    config = folder / "config.toml"
    config.write_text(f'[data]\npath = "stations.csv"\nunits = "mGal"\n\n[mesh]\norigin = {origin}\n'
                      f'cell_size = {size}\nshape = [{nx}, {ny}, {nz}]\n\n[output]\ndirectory = "results"\n\n'
                      '[truth]\npath = "truth.nc"\n')
    return config


def time_command(config: Path, output: Path, repeats: int) -> tuple[float, float, str]:
    """(first, best) wall seconds of ``gravuq forward CONFIG -o OUTPUT --force``, and the path its
    log names."""
    command = [sys.executable, "-m", "gravuq_cli.main", "forward", str(config), "-o", str(output), "--force"]
    times, path = [], "?"
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(command, check=True, cwd=config.parent, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        path = next((line.split(": ")[-1] for line in done.stderr.splitlines() if " stations: " in line), "?")
    return times[0], min(times), path


def import_summary(config: Path, output: Path) -> str:
    """The command's import time under ``-X importtime`` (seconds, top-level modules summed) and
    whether it imported JAX."""
    command = [sys.executable, "-X", "importtime", "-m", "gravuq_cli.main", "forward", str(config), "-o",
               str(output), "--force", "-q"]
    lines = subprocess.run(command, check=True, cwd=config.parent, capture_output=True, text=True).stderr
    total, jax = 0, False
    for line in lines.splitlines():
        if not line.startswith("import time:") or "|" not in line or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        jax = jax or name.strip() in ("jax", "jaxlib")
        if not name.startswith("  "):  # a top-level import (nested ones are inside its cumulative time)
            total += int(cumulative)
    return f"{total / 1e6:.2f} s, {'with' if jax else 'no'} jax"


def harmonica_time(mesh, stations, density, n_stations: int | None = None):
    import harmonica

    if n_stations is not None:
        stations = stations[:n_stations]
    prisms = cell_prisms(mesh)
    coordinates = tuple(np.ascontiguousarray(stations[:, axis]) for axis in range(3))
    harmonica.prism_gravity(tuple(c[:2] for c in coordinates), prisms[:8], density[:8], field="g_z", parallel=True)
    best, result = np.inf, None
    for _ in range(3 if n_stations is None else 1):
        start = time.perf_counter()
        result = harmonica.prism_gravity(coordinates, prisms, density, field="g_z", parallel=True)
        best = min(best, time.perf_counter() - start)
    return best, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--large", action="store_true", help="also the 10^6-cell x 10^4-station case")
    parser.add_argument("--repeats", type=int, default=3, help="runs of the command (best is reported)")
    parser.add_argument("--harmonica-stations", type=int, default=200,
                        help="stations Harmonica computes on the large case (then extrapolated)")
    arguments = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; load average before: {os.getloadavg()[0]:.2f}")
    print("| case | stations x cells | gravuq forward (process) first, s | best, s | harmonica (in-process), s | "
          "harmonica / gravuq | max rel diff | path | imports |")
    print("|---|---|---:|---:|---:|---:|---:|---|---|")
    for name, mesh, stations, density in cases(arguments.large):
        with tempfile.TemporaryDirectory(prefix="gravuq-fwd-") as directory:
            folder = Path(directory)
            config = write_case(folder, mesh, stations, density)
            output = folder / "forward.csv"
            first, best, path = time_command(config, output, arguments.repeats)
            gz = read_stations_csv(output).gz
            imports = import_summary(config, output)
        subset = arguments.harmonica_stations if name == "large" else None
        reference_time, reference = harmonica_time(mesh, stations, density, subset)
        if subset is not None:
            reference_time *= len(stations) / subset
            gz = gz[:subset]
        difference = np.abs(gz - reference).max() / np.abs(reference).max()
        note = " (extrapolated)" if subset is not None else ""
        print(f"| {name} | {len(stations)} x {mesh.n_cells} | {first:.2f} | {best:.2f} | {reference_time:.2f}{note} | "
              f"{reference_time / best:.2f} | {difference:.1e} | {path} | {imports} |", flush=True)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
