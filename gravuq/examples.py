"""The built-in B1 dipping-block example, written as files a user can open and change.

``write_dipping_block(directory)`` writes ``truth.nc`` (density contrast, kg/m^3, dims z, y, x),
``config.toml`` and ``stations.csv`` (x, y, z in m; gz and std in mGal, gz positive downward).
The stations file is made by the same code as ``gravuq forward config.toml --noise -o
stations.csv``, so that command reproduces it exactly on the same machine and library versions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .config import load_config
from .forward import sensitivity_matrix
from .io import model_dataset, write_netcdf, write_text_atomic
from .io import write_stations_csv
from .synthetic import b1_mesh, dipping_block_density

#: Noise level of B1 (BENCHMARKS.md): a fraction of the standard deviation of the noise-free gz.
B1_NOISE_FRACTION = 0.01

_CONFIG = """\
# gravuq example: the B1 dipping block (shared/BENCHMARKS.md), 21 x 21 x 11 cells of 50 m.
# Made by gravuq.examples.write_dipping_block; `gravuq forward config.toml --noise -o stations.csv`
# reproduces stations.csv.

[data]
path = "stations.csv"
units = "mGal"
std = {std!r}            # mGal: 1 % of the standard deviation of the noise-free gz

[mesh]
origin = [-25.0, -25.0, -525.0]
cell_size = [50.0, 50.0, 50.0]
shape = [21, 21, 11]

[inference]
method = "{method}"
members = {members}
seed = 0
# A compact body is expected (an ore body, say): learn each cell's prior scale from the data
# (empirical Bayes) rather than spreading one prior_std over every cell of a depth. For smooth,
# space-filling density (a regional crust), keep the default "fixed" with a correlation length.
prior_scale = "hierarchical"

[output]
directory = "results"
threshold = 200.0

[truth]
path = "truth.nc"
"""


def write_dipping_block(directory: str | Path, method: str = "ensemble", members: int = 20) -> Path:
    """Write the B1 example into ``directory``; returns the path of its config."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    mesh = b1_mesh()
    density = dipping_block_density(mesh)
    write_netcdf(directory / "truth.nc", model_dataset(mesh, {"density": density}, {"case": "B1 dipping block"}))
    x, y = np.meshgrid(mesh.centers_x, mesh.centers_y)
    stations = np.stack([x.ravel(), y.ravel(), np.full(x.size, 1.0)], axis=1)
    gz_true = np.asarray(sensitivity_matrix(mesh, stations, dtype="float64")) @ density.ravel()
    std = float(B1_NOISE_FRACTION * gz_true.std())
    # Coordinates first (forward reads only x, y, z), then the noisy data from `forward`.
    write_stations_csv(directory / "stations.csv", *stations.T, gz_true, np.full(gz_true.shape, std))
    config_path = directory / "config.toml"
    write_text_atomic(config_path, _CONFIG.format(std=std, method=method, members=members))
    from .runs import forward_stations

    forward_stations(load_config(config_path), directory / "stations.csv", noise=True)
    return config_path
