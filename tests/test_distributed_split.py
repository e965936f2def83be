"""The forward operator split by stations over two processes (``[forward] split``): a problem
whose dense operator does not fit the memory limit of one process runs on two, each holding the
rows of half the stations, and writes the posterior of a one-process run with enough memory.

The processes are two on this machine (coordinator on 127.0.0.1, one CPU device each, collectives
through gloo), as in tests/test_distributed.py. Units: densities in kg/m^3, gz in mGal (positive
down), memory in bytes.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from test_distributed import INFERENCE, densities, environment, finish, free_port, start

from gravuq.forward import estimate_memory, sensitivity_matrix
from gravuq.io import write_stations_csv

#: 32 x 32 stations (12.5 m apart, 1 m above the 8 x 8 x 4 cells of the tiny case): the dense
#: float32 rows (1024 x 256, 1 MiB) outweigh a small network's activations at 256 cells.
SIDE = 32
#: A small network, so that its training fits in the limit below.
MODEL = 'encoding = "fourier"\nfrequencies = 4\nwidth = 8\ndepth = 1'
CHUNK = 16
#: The limit (bytes): above half of the operator (0.73 MB with one chunk of kernel work) and the
#: training's own needs, below the whole operator (1.25 MB).
LIMIT_BYTES = 1.0e6


def forward_section(limit_bytes: float) -> str:
    return f'\n[forward]\nmode = "dense"\nchunk_size = {CHUNK}\nmemory_limit_gb = {limit_bytes / 1024**3!r}\n'


def write_case(folder):
    """The tiny case with 32 x 32 stations in ``folder``: ``(case, config split, config whole)``, the
    first with the small limit, the second with 1 GiB."""
    from helpers import Case

    folder.mkdir()
    case = Case(folder)
    grid = (np.arange(SIDE) + 0.5) * (400.0 / SIDE)
    x, y = np.meshgrid(grid, grid)
    stations = np.stack([x.ravel(), y.ravel(), np.full(x.size, 1.0)], axis=1)
    gz = np.asarray(sensitivity_matrix(case.mesh, stations, dtype="float64")) @ case.truth.ravel()
    gz = gz + np.random.default_rng(1).normal(0.0, case.std, gz.shape)
    write_stations_csv(folder / "stations.csv", *stations.T, gz, np.full(gz.shape, case.std))
    estimate = estimate_memory(case.mesh, len(stations), "float32", CHUNK)
    half = (estimate.dense_bytes - estimate.matrix_free_bytes) / 2 + estimate.matrix_free_bytes
    assert half < LIMIT_BYTES < estimate.dense_bytes  # the whole is refused, half of it fits
    split = case.config("split", inference=INFERENCE, formats=("netcdf",), model=MODEL,
                        extra=forward_section(LIMIT_BYTES))
    whole = case.config("whole", inference=INFERENCE, formats=("netcdf",), model=MODEL,
                        extra=forward_section(2**30))
    return case, split, whole


@pytest.mark.slow  # three runs of the CLI at once, each mostly compiling: about 60 s on two shared cores
def test_distributed_split_operator_holds_half_the_rows_and_matches_one_process(tmp_path):
    folders = {name: tmp_path / name for name in ("leader", "follower", "single")}
    _, split, whole = write_case(folders["leader"])
    for name in ("follower", "single"):
        shutil.copytree(folders["leader"], folders[name])

    for attempt in range(2):  # a second port if another program took the first one meanwhile
        address = f"127.0.0.1:{free_port()}"
        runs = [start(["ensemble", folders[name] / split.name, "--distributed"],
                      environment(GRAVUQ_COORDINATOR=address, GRAVUQ_NUM_PROCESSES="2", GRAVUQ_PROCESS_ID=str(index)))
                for index, name in enumerate(("leader", "follower"))]
        runs.append(start(["ensemble", folders["single"] / whole.name], environment()))
        results = finish(runs)
        if attempt == 0 and results[0][0] != 0 and "address already in use" in results[0][1].lower():
            continue
        break
    (leader_code, leader), (follower_code, follower), (whole_code, single) = results
    assert leader_code == 0, leader[-4000:]
    assert follower_code == 0, follower[-4000:]
    assert whole_code == 0, single[-4000:]

    # Each process built and held only the rows of its half of the stations, and trained every member.
    assert "holds the rows of stations 1..512 of 1024 (512 rows of 256 cells" in leader
    assert "holds the rows of stations 513..1024 of 1024 (512 rows of 256 cells" in follower
    assert "trains all 4 members on its own stations" in leader and "trains all 4 members" in follower
    metrics = json.loads((folders["leader"] / "results_split" / "metrics.json").read_text())
    held = metrics["operator_split"]
    assert held["devices"] == 2 and held["stations_per_device"] == 512 and held["process_rows"] == 512
    assert held["process_bytes"] == 512 * 256 * 4  # float32 rows, no more
    assert "operator_split" not in json.loads((folders["single"] / "results_whole" / "metrics.json").read_text())

    parts, reference = densities(folders["leader"] / "results_split"), densities(folders["single"] / "results_whole")
    assert parts.shape == reference.shape == (4, 4, 8, 8)
    assert np.abs(reference[0] - reference[1]).max() > 1.0  # the members differ: a member-by-member match
    difference = np.abs(parts - reference).max()
    print(f"split vs whole: max |density difference| {difference:.3g} kg/m^3 of max {np.abs(reference).max():.3g}")
    # The blocks' products are summed in another order than one matrix's: float32 rounding only.
    np.testing.assert_allclose(parts, reference, rtol=0.0, atol=1e-4 * np.abs(reference).max())


def test_distributed_split_one_process_with_the_small_limit_is_refused(tmp_path):
    from helpers import invoke

    _, split, _ = write_case(tmp_path / "case")
    result = invoke("ensemble", split)
    assert result.exit_code == 2, result.output
    assert "[forward] mode = 'dense' does not fit in memory" in result.output
    assert "split its stations over several processes (gravuq ensemble --distributed" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "case" / "results_split" / "posterior.nc").exists()
    # Asking for the split without --distributed is refused too, naming the key.
    text = split.read_text().replace("[forward]\n", '[forward]\nsplit = "stations"\n')
    split.write_text(text)
    result = invoke("ensemble", split)
    assert result.exit_code == 2 and "[forward] split = 'stations' splits the operator's stations" in result.output


#: Run in a process of its own with three CPU devices: the split products against the whole matrix.
PRODUCTS = """
import jax, numpy as np
jax.config.update("jax_enable_x64", True)
from gravuq.forward import make_operator, split_operator
from gravuq.mesh import TensorMesh
assert len(jax.devices()) == 3
mesh = TensorMesh.uniform((0.0, 0.0, -150.0), (50.0, 50.0, 50.0), (5, 4, 3))
rng = np.random.default_rng(0)
stations = np.column_stack([rng.uniform(0, 250, 13), rng.uniform(0, 200, 13), np.full(13, 5.0)])
density, worst = rng.normal(size=(2, mesh.n_cells)), 0.0
for mode, components in (("dense", ("gz",)), ("matrix_free", ("gz",)), ("dense", ("gz", "gzz")),
                         ("matrix_free", ("gz", "gxz"))):
    whole = np.asarray(make_operator(mesh, stations, "dense", "float64", 4, None, components)[0].matrix
                       if len(components) == 1 else
                       make_operator(mesh, stations, "dense", "float64", 4, None, components)[0].dense())
    split = split_operator(mesh, stations, mode, "float64", 4, None, components)
    assert split.block == 5 and split.n_stations == 13 * len(components)
    residual = rng.normal(size=(2, split.n_stations))
    forward = np.asarray(split.forward(density))
    adjoint = np.asarray(jax.jit(lambda r, op: op.adjoint(r))(residual, split))
    gradient = np.asarray(jax.jit(jax.grad(lambda m, op: 0.5 * (op.forward(m) ** 2).sum()))(density, split))
    scale = np.abs(whole).max()
    worst = max(worst, np.abs(forward - density @ whole.T).max() / scale / np.abs(density).sum(1).max(),
                np.abs(adjoint - residual @ whole).max() / scale / np.abs(residual).sum(1).max(),
                np.abs(gradient - (density @ whole.T) @ whole).max() / np.abs((density @ whole.T) @ whole).max())
print("worst relative difference", worst)
assert worst < 1e-12, worst
"""


def test_distributed_split_products_are_the_whole_operators(tmp_path):
    import subprocess
    import sys

    env = environment(XLA_FLAGS="--xla_force_host_platform_device_count=3")
    done = subprocess.run([sys.executable, "-c", PRODUCTS], check=False, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
