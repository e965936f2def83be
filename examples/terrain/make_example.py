"""Write this example's ground (dem.csv), truth model (truth.nc) and station locations (locations.csv).

A Gaussian hill 90 m high (spread 250 m) centred at (500, 500) m on a plain at z = 0, the ground
given as a 25 m grid of x, y, z points; a mesh of 20 x 20 x 20 cells (50 x 50 x 25 m; x, y
0..1000 m, z -400..+100 m, z up) whose cells above the ground are air; a block of +400 kg/m^3
(200 m x 200 m x 100 m, top at z = -100 m) under the hill; and 441 stations on the ground at
the DEM's 50 m nodes (z = the ground there). The data are then made by
``gravuq forward config.toml --noise -o stations.csv --force`` (see README.md).

Run from this folder: ``python make_example.py``.
"""

import numpy as np

from gravuq.io import model_dataset, write_netcdf
from gravuq.mesh import TensorMesh


def hill(x, y):
    """The ground elevation (m, up) at easting ``x`` and northing ``y`` (m)."""
    return 90.0 * np.exp(-((x - 500.0) ** 2 + (y - 500.0) ** 2) / (2 * 250.0**2))


grid = np.arange(0.0, 1000.1, 25.0)
gx, gy = np.meshgrid(grid, grid)
rows = ["x,y,z"] + [f"{a:.1f},{b:.1f},{c:.6f}" for a, b, c in zip(gx.ravel(), gy.ravel(), hill(gx, gy).ravel())]
with open("dem.csv", "w") as handle:
    handle.write("\n".join(rows) + "\n")

mesh = TensorMesh.uniform((0.0, 0.0, -400.0), (50.0, 50.0, 25.0), (20, 20, 20))
z, y, x = np.meshgrid(mesh.centers_z, mesh.centers_y, mesh.centers_x, indexing="ij")
body = (np.abs(x - 500.0) < 100.0) & (np.abs(y - 500.0) < 100.0) & (z < -100.0) & (z > -200.0)
density = np.where(body, 400.0, 0.0)
write_netcdf("truth.nc", model_dataset(mesh, {"density": density},
                                       {"case": "terrain example: a block of +400 kg/m^3 under a 90 m hill"}))

stations = np.arange(0.0, 1000.1, 50.0)
sx, sy = np.meshgrid(stations, stations)
rows = ["x,y,z"] + [f"{a:.1f},{b:.1f},{c:.6f}" for a, b, c in zip(sx.ravel(), sy.ravel(), hill(sx, sy).ravel())]
with open("locations.csv", "w") as handle:
    handle.write("\n".join(rows) + "\n")
