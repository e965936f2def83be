"""Problem size against time and peak memory of the commands a user runs (issue 18, item 4).

For each size of a ladder, a config, a station file and a truth model are written into a
temporary folder with gravuq's own writers, and these commands are run, each as a whole process
(``python -m gravuq_cli.main``, what the ``gravuq`` entry point runs):

- ``forward``: ``gravuq forward config.toml -o forward.csv`` (gz of the truth at the stations);
- ``tikhonov``: ``gravuq invert`` with ``[inference] method = "tikhonov"``;
- ``deterministic``: ``gravuq invert`` with ``method = "deterministic"`` (one INR, the defaults);
- ``ensemble``: ``gravuq ensemble`` with ``method = "ensemble"`` and ``--members`` members (20 by
  default) and every other default: randomised MAP, the learned prior and noise,
  Levenberg-Marquardt.

Sizes (``--sizes``): ``b1`` 21 x 21 x 11 cells of 50 m (4851 cells, 441 stations); ``b4``
40 x 40 x 20 cells of 500 m (32,000 cells, 1600 stations); ``100k`` 64 x 64 x 25 cells of 50 m
(102,400 cells, 4096 stations); ``1m`` 100 x 100 x 100 cells of 50 m (10^6 cells, 10^4
stations). Stations stand 1 m above the mesh top, one over each top cell's centre (every k-th
cell in x and y where there would be more than ``--max-stations``, default 10^4). The truth is
the B1 dipping block scaled to the mesh by cell index (+400 kg/m^3 slabs stepping one B1 layer
per B1 cell toward -y through the upper 7/11 of the mesh, the middle 6/21 in x; on the b1 size
it is exactly the B1 body's 210 cells). The data are its float64 gz (``gravuq forward``'s code)
plus iid noise drawn from seed 0 with a stated std of 1 % of the standard deviation of the
noise-free gz, the same at every station (the table's notes give it, mGal).

Columns: ``wall s`` is the child's wall-clock time, so Python start-up, imports, reading,
building the operator, JIT compilation, learning the prior (ensemble) and writing every output
(NetCDF and PNG figures, the defaults) are all included. ``peak RSS GB`` is the child's peak
resident memory (ru_maxrss, GB = 10^9 bytes), from the ``rusage`` the kernel returns for that
child alone when it is reaped (``os.wait4``: the per-child form of
``getrusage(RUSAGE_CHILDREN)``). ``operator`` is what the run's log says: for ``forward`` the
float64 path (NumPy FFT, rows, or a JAX operator), for the others the ``forward operator:`` line
(FFTOperator, DenseOperator or MatrixFreeOperator). The notes of ``tikhonov``, ``deterministic``
and ``ensemble`` give the run's own in-process timings (run.json ``timings_s``: prepare, recover,
write, s; metrics.json's ``runtime_s`` is the method's share of recover, without learning the
prior) and its fit: chi^2/N of the model, or for ``ensemble`` the members' chi^2/N range against
the observed data with the learned noise (``members_chi2_learned_min`` .. ``_max``) and with the
stated std (``members_chi2_min`` .. ``_max``), and the median of the members' relative optimality
gap (``relative_optimality_gap_median``, where the run could compute it). A command that runs past
``--max-seconds`` is killed (its peak RSS up to then is shown as ``>=``) and the table says
"timed out after S s"; one that refuses its sizes (exit 2, e.g. a memory estimate over the
budget; the refusal comes before the work) shows the refusal in the notes: a refusal is a result.

Run: ``python benchmarks/sizes.py [--sizes b1,b4,100k,1m] [--skip deterministic,ensemble]
[--members N] [--max-seconds S] [--max-stations N] [--out table.md] [--keep DIR]``.
The machine line (cores, JAX, load average before and after) goes with the table: these are
whole-process times on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import machine, table  # benchmarks/ is the script folder

from gravuq.config import load_config
from gravuq.io import model_dataset, read_stations_csv, write_netcdf, write_stations_csv
from gravuq.mesh import TensorMesh
from gravuq.runs import forward_stations

#: name: (cells along x, y, z; cell width in m).
SIZES = {
    "b1": ((21, 21, 11), 50.0),
    "b4": ((40, 40, 20), 500.0),
    "100k": ((64, 64, 25), 50.0),
    "1m": ((100, 100, 100), 50.0),
}
COMMANDS = ("forward", "tikhonov", "deterministic", "ensemble")
NOISE_FRACTION = 0.01  # of the std of the noise-free gz, as B1
CONTRAST = 400.0  # kg/m^3


def build_mesh(shape: tuple[int, int, int], cell: float) -> TensorMesh:
    """``shape`` = (nx, ny, nz) cells of ``cell`` m; the top at z = 0 m, the south-west corner at (0, 0)."""
    nx, ny, nz = shape
    return TensorMesh.uniform((0.0, 0.0, -nz * cell), (cell,) * 3, (nx, ny, nz))


def dipping_block(mesh: TensorMesh) -> np.ndarray:
    """The B1 dipping block scaled to ``mesh`` by cell index, (nz, ny, nx) kg/m^3, z from the bottom.

    In B1 (21 x 21 x 11) slab ``s = 0..6`` fills layer ``s + 1`` from the top, y cells
    ``11 - s .. 15 - s`` and x cells 7..12. Here layer ``L`` from the top sits at B1 depth
    ``u = 11 L / nz`` layers; it holds the body where ``1 <= u < 8``, at y cells
    ``round((12 - u) ny / 21) .. round((17 - u) ny / 21)`` (end excluded) and x cells
    ``round(7 nx / 21) .. round(13 nx / 21)``; on the B1 shape that is the B1 body.
    """
    nz, ny, nx = mesh.shape
    density = np.zeros(mesh.shape)
    x = slice(round(7 * nx / 21), round(13 * nx / 21))
    for layer in range(nz):  # from the top
        u = 11 * layer / nz
        if 1 <= u < 8:
            density[nz - 1 - layer, round((12 - u) * ny / 21):round((17 - u) * ny / 21), x] = CONTRAST
    return density


def grid_stations(mesh: TensorMesh, max_stations: int) -> np.ndarray:
    """Over every ``k``-th top cell centre in x and y (``k`` the least that keeps at most
    ``max_stations``), 1 m above the mesh top; ``(n, 3)`` m."""
    n_top = mesh.shape[1] * mesh.shape[2]
    step = max(1, math.ceil(math.sqrt(n_top / max_stations)))
    while len(mesh.centers_x[::step]) * len(mesh.centers_y[::step]) > max_stations:
        step += 1
    x, y = np.meshgrid(mesh.centers_x[::step], mesh.centers_y[::step])
    return np.stack([x.ravel(), y.ravel(), np.full(x.size, mesh.nodes_z[-1] + 1.0)], axis=1)


def write_config(folder: Path, name: str, mesh: TensorMesh, std: float, method: str, members: int) -> Path:
    nz, ny, nx = mesh.shape
    origin = [float(mesh.nodes_x[0]), float(mesh.nodes_y[0]), float(mesh.nodes_z[0])]
    cell = float(mesh.nodes_x[1] - mesh.nodes_x[0])
    path = folder / f"{name}.toml"
    path.write_text(f'[data]\npath = "stations.csv"\nunits = "mGal"\nstd = {std!r}\n\n'
                    f"[mesh]\norigin = {origin}\ncell_size = [{cell}, {cell}, {cell}]\nshape = [{nx}, {ny}, {nz}]\n\n"
                    f'[inference]\nmethod = "{method}"\n' + (f"members = {members}\n" if method == "ensemble" else "")
                    + 'seed = 0\n\n'
                    f'[output]\ndirectory = "results-{name}"\n\n[truth]\npath = "truth.nc"\n')
    return path


def write_case(folder: Path, shape, cell: float, max_stations: int, members: int) -> tuple[TensorMesh, int, float]:
    """Truth, stations (noisy gz, stated std) and one config per command in ``folder``;
    returns (mesh, stations, std in mGal)."""
    mesh = build_mesh(shape, cell)
    write_netcdf(folder / "truth.nc", model_dataset(mesh, {"density": dipping_block(mesh)},
                                                    {"case": "B1 dipping block scaled by cell index"}))
    stations = grid_stations(mesh, max_stations)
    n = len(stations)
    write_stations_csv(folder / "stations.csv", *stations.T, np.zeros(n), np.ones(n))
    # The noise-free gz first (to state the std), then the noisy data, both by gravuq forward's code.
    setup = write_config(folder, "setup", mesh, 1.0, "tikhonov", members)
    forward_stations(load_config(setup), folder / "stations.csv")
    std = float(NOISE_FRACTION * read_stations_csv(folder / "stations.csv").gz.std())
    write_stations_csv(folder / "stations.csv", *stations.T, np.zeros(n), np.full(n, std))
    forward_stations(load_config(write_config(folder, "setup", mesh, std, "tikhonov", members)),
                     folder / "stations.csv", noise=True)
    for method in ("tikhonov", "deterministic", "ensemble"):
        write_config(folder, method, mesh, std, method, members)
    write_config(folder, "forward", mesh, std, "tikhonov", members)
    return mesh, n, std


def command_line(folder: Path, command: str) -> list[str]:
    cli = [sys.executable, "-m", "gravuq_cli.main"]
    if command == "forward":
        return cli + ["forward", str(folder / "forward.toml"), "-o", str(folder / "forward.csv"), "--force"]
    verb = "ensemble" if command == "ensemble" else "invert"
    return cli + [verb, str(folder / f"{command}.toml"), "--force"]


def run_child(arguments: list[str], cwd: Path, log: Path, max_seconds: float) -> tuple[int | None, float, float]:
    """Run ``arguments`` in its own process group, stdout and stderr to ``log``; kill the group
    past ``max_seconds``. Returns (exit status or None when killed, wall s, peak RSS GB)."""
    with open(log, "wb") as sink:
        start = time.perf_counter()
        child = subprocess.Popen(arguments, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        killed = False
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if not killed and time.perf_counter() - start > max_seconds:
                os.killpg(child.pid, signal.SIGKILL)
                killed = True
            time.sleep(0.05)
        wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait again
    return None if killed else child.returncode, wall, usage.ru_maxrss * 1024 / 1e9  # Linux: KiB


def operator_named(command: str, text: str) -> str:
    for line in text.splitlines():
        if command == "forward" and " stations: " in line:
            return line.split(" stations: ", 1)[1].strip()
        if line.startswith("forward operator: "):
            return line.removeprefix("forward operator: ").split(";")[0].strip()
    return "-"  # the log named none (a refusal before the operator was built)


def run_notes(command: str, results: Path) -> str:
    """From the run's own records: its in-process timings (run.json: prepare, recover, write, s;
    metrics.json's runtime_s is the method's part of recover, without learning the prior) and
    its fit (metrics.json)."""
    metrics = json.loads((results / "metrics.json").read_text())
    timings = json.loads((results / "run.json").read_text()).get("timings_s", {})
    notes = []
    if timings:
        notes.append("in-process s: " + ", ".join(f"{name} {value:.1f}" for name, value in timings.items())
                     + (f" (runtime_s {metrics['runtime_s']:.1f})" if "runtime_s" in metrics else ""))
    if command != "ensemble":
        if "chi2_per_datum" in metrics:
            notes.append(f"chi2/N {metrics['chi2_per_datum']:.3g}")
        return "; ".join(notes)
    if "members_chi2_learned_min" in metrics:
        notes.append(f"members' chi2/N {metrics['members_chi2_learned_min']:.3g}..{metrics['members_chi2_learned_max']:.3g}"
                     " against the learned noise")
    if "members_chi2_min" in metrics:
        notes.append(f"{metrics['members_chi2_min']:.3g}..{metrics['members_chi2_max']:.3g} against the stated std")
    if "relative_optimality_gap_median" in metrics:
        notes.append(f"optimality gap median {100 * metrics['relative_optimality_gap_median']:.2g} %")
    else:
        notes.append("no optimality gap in metrics.json")
    return "; ".join(notes)


def measure(folder: Path, size: str, command: str, max_seconds: float) -> dict:
    log = folder / f"{command}.log"
    status, wall, rss = run_child(command_line(folder, command), folder, log, max_seconds)
    text = log.read_text(errors="replace")
    row = {"command": command, "operator": operator_named(command, text), "wall": f"{wall:.1f}",
           "rss": f"{rss:.2f}"}
    if status is None:
        row.update(wall=f"> {max_seconds:g}", rss=f">= {rss:.2f}", notes=f"timed out after {max_seconds:g} s")
    elif status == 2:
        refusal = [line for line in text.splitlines() if line.startswith("gravuq: error:")]
        row["notes"] = "refused: " + (refusal[-1].removeprefix("gravuq: error: ") if refusal else text.strip()[-300:])
        row["notes"] = row["notes"].replace(str(folder) + os.sep, "").replace("|", "/")
    elif status != 0:
        row["notes"] = f"failed (exit {status}); see {log.name}: " + text.strip().splitlines()[-1][:200]
    elif command != "forward":
        row["notes"] = run_notes(command, folder / f"results-{command}")
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="b1,b4,100k,1m", help=f"comma-separated, of {', '.join(SIZES)}")
    parser.add_argument("--skip", default="", help=f"commands to leave out, comma-separated, of {', '.join(COMMANDS)}")
    parser.add_argument("--members", type=int, default=20, help="ensemble members (default 20)")
    parser.add_argument("--max-seconds", type=float, default=3600.0,
                        help="kill a command past this wall time, s (default 3600)")
    parser.add_argument("--max-stations", type=int, default=10_000,
                        help="at most this many stations (a coarser station grid beyond; default 10^4)")
    parser.add_argument("--out", type=Path, help="also write the table (Markdown) to this file")
    parser.add_argument("--keep", type=Path, help="write the cases into this folder and keep them (logs, outputs)")
    arguments = parser.parse_args()
    sizes = [name.strip() for name in arguments.sizes.split(",") if name.strip()]
    skip = {name.strip() for name in arguments.skip.split(",") if name.strip()}
    for name in sizes:
        if name not in SIZES:
            parser.error(f"--sizes: unknown size {name!r}; expected some of {', '.join(SIZES)}")
    for name in skip:
        if name not in COMMANDS:
            parser.error(f"--skip: unknown command {name!r}; expected some of {', '.join(COMMANDS)}")
    commands = [command for command in COMMANDS if command not in skip]
    header = (f"{machine()}; load average before: {os.getloadavg()[0]:.2f}; --members {arguments.members}, "
              f"--max-seconds {arguments.max_seconds:g}")
    print(header, flush=True)
    rows = []
    columns = [("size", "size", ""), ("cells", "cells", ""), ("stations", "stations", ""), ("command", "command", ""),
               ("operator", "operator", ""), ("wall s", "wall", ""), ("peak RSS GB", "rss", ""),
               ("notes", "notes", "")]
    for size in sizes:
        shape, cell = SIZES[size]
        if arguments.keep is not None:
            root = arguments.keep / size
            root.mkdir(parents=True, exist_ok=True)
            context = None
        else:
            context = tempfile.TemporaryDirectory(prefix=f"gravuq-sizes-{size}-")
            root = Path(context.name)
        try:
            mesh, n_stations, std = write_case(root, shape, cell, arguments.max_stations, arguments.members)
            label = f"{size} ({shape[0]} x {shape[1]} x {shape[2]} x {cell:g} m)"
            print(f"{label}: {mesh.n_cells} cells, {n_stations} stations, stated std {std:.3g} mGal", flush=True)
            for command in commands:
                row = measure(root, size, command, arguments.max_seconds)
                row.update(size=label, cells=f"{mesh.n_cells:,}", stations=f"{n_stations:,}")
                if command == "forward":
                    row["notes"] = (row.get("notes", "") + f" stated noise std {std:.3g} mGal").strip()
                rows.append(row)
                print(f"  {command}: {row['wall']} s, {row['rss']} GB, {row['operator']}; {row.get('notes', '')}",
                      flush=True)
        finally:
            if context is not None:
                context.cleanup()
    text = (f"{header}; load average after: {os.getloadavg()[0]:.2f}\n\n" + table(rows, columns) + "\n")
    print("\n" + text)
    if arguments.out is not None:
        arguments.out.write_text(text)


if __name__ == "__main__":
    main()
