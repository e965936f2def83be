"""The built-in dipping-block example, written as files a user can open and change.

``write_dipping_block(directory)`` writes ``truth.nc`` (density contrast, kg/m^3, dims z, y, x),
``config.toml`` and ``stations.csv`` (x, y, z in m; gz and std in mGal, gz positive downward).
The stations file is made by the same code as ``gravuq forward config.toml --noise -o
stations.csv``, so that command reproduces it exactly on the same machine and library versions.

Two geometries share the same cells, body and noise level:

- ``"ground"`` (the default, what ``gravuq demo`` writes): the mesh top is the ground surface,
  z = 0 m, and the stations stand 1 m above it, so every cell is rock below every station;
- ``"b1"``: the seed paper's benchmark geometry (``gravuq.synthetic.b1_mesh``), mesh top at
  z = +25 m with the stations at z = +1 m inside the top layer. Benchmarks use it so that their
  figures compare with the seed code's; a user's survey should not look like it (half the top
  layer is air above the stations).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .config import load_config
from .forward import sensitivity_matrix
from .io import model_dataset, write_netcdf, write_stations_csv, write_text_atomic
from .mesh import TensorMesh
from .synthetic import b1_mesh, dipping_block_density

#: Noise level of B1: a fraction of the standard deviation of the noise-free gz.
B1_NOISE_FRACTION = 0.01

#: Station elevation, m: 1 m above the ground (the mesh top) in the demo geometry.
STATION_ELEVATION = 1.0

#: The geometries: (origin west, south, bottom in m; what the config says about them).
GEOMETRIES = {
    "ground": ((-25.0, -25.0, -550.0), "mesh top = ground surface at z = 0 m; stations 1 m above it"),
    "b1": ((-25.0, -25.0, -525.0), ("the seed paper's B1 geometry: mesh top z = +25 m, stations at z = +1 m "
                                     "inside the top layer (for benchmarks)")),
}

_CONFIG = """\
# gravuq example: a dipping block, 21 x 21 x 11 cells of 50 m ({geometry}).
# Made by gravuq.examples.write_dipping_block; `gravuq forward config.toml --noise -o stations.csv`
# reproduces stations.csv. Every key is described in the gravuq manual, docs/config.md.

[data]
path = "stations.csv"
units = "mGal"
std = {std!r}            # mGal: 1 % of the standard deviation of the noise-free gz

[mesh]
origin = [{origin}]
cell_size = [50.0, 50.0, 50.0]
shape = [21, 21, 11]

[inference]
method = "{method}"
members = {members}
seed = 0
# The prior and the noise are learned from the data (the default prior_scale = "learned"): a
# correlated prior and per-cell scales are both fitted, and the evidence picks (per-cell scales
# here, for a compact body). prior_scale = "fixed" with prior_std sets the prior by hand.

[output]
directory = "results"
threshold = 200.0

[truth]
path = "truth.nc"
"""


def dipping_block_mesh(geometry: str = "ground") -> TensorMesh:
    """The example's mesh: 21 x 21 x 11 cells of 50 m, cell centres x, y = 0..1000 m; the top at
    z = 0 m (``"ground"``) or +25 m (``"b1"``)."""
    if geometry == "b1":
        return b1_mesh()
    if geometry not in GEOMETRIES:
        raise ValueError(f"geometry: expected one of {', '.join(GEOMETRIES)}, found {geometry!r}")
    return TensorMesh.uniform(GEOMETRIES[geometry][0], (50.0, 50.0, 50.0), (21, 21, 11))


def write_dipping_block(directory: str | Path, method: str = "ensemble", members: int = 20,
                        geometry: str = "ground") -> Path:
    """Write the dipping-block example into ``directory``; returns the path of its config.

    The body is the B1 body on the same cells in both geometries: seven slabs of +400 kg/m^3,
    the shallowest in the second layer from the top (its top 50 m below the mesh top).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    mesh = dipping_block_mesh(geometry)
    density = dipping_block_density(b1_mesh())  # by cell index, so the same cells in both geometries
    case = "B1 dipping block" if geometry == "b1" else "dipping block, mesh top at the ground (z = 0 m)"
    write_netcdf(directory / "truth.nc", model_dataset(mesh, {"density": density}, {"case": case}))
    x, y = np.meshgrid(mesh.centers_x, mesh.centers_y)
    stations = np.stack([x.ravel(), y.ravel(), np.full(x.size, STATION_ELEVATION)], axis=1)
    gz_true = np.asarray(sensitivity_matrix(mesh, stations, dtype="float64")) @ density.ravel()
    std = float(B1_NOISE_FRACTION * gz_true.std())
    # Coordinates first (forward reads only x, y, z), then the noisy data from `forward`.
    write_stations_csv(directory / "stations.csv", *stations.T, gz_true, np.full(gz_true.shape, std))
    config_path = directory / "config.toml"
    origin, described = GEOMETRIES[geometry]
    write_text_atomic(config_path, _CONFIG.format(std=std, method=method, members=members, geometry=described,
                                                  origin=", ".join(f"{value:.1f}" for value in origin)))
    from .runs import forward_stations

    forward_stations(load_config(config_path), directory / "stations.csv", noise=True)
    return config_path
