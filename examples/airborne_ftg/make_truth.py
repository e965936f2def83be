"""Write this example's truth model (truth.nc) and flight-line locations (locations.csv).

A buried block of +500 kg/m^3 (400 m x 400 m x 200 m, top 100 m below the ground) in a mesh of
20 x 20 x 10 cells of 50 m (x, y 0..1000 m, z -500..0 m, z up; the mesh top is the ground), and
400 stations on the cell-centre grid at 80 m flight height (z = +80 m). The data are then made by
``gravuq forward config.toml --noise -o stations.csv --force`` (see README.md).

Run from this folder: ``python make_truth.py``.
"""

import numpy as np

from gravuq.io import model_dataset, write_netcdf
from gravuq.mesh import TensorMesh

mesh = TensorMesh.uniform((0.0, 0.0, -500.0), (50.0, 50.0, 50.0), (20, 20, 10))
z, y, x = np.meshgrid(mesh.centers_z, mesh.centers_y, mesh.centers_x, indexing="ij")
body = (np.abs(x - 500.0) < 200.0) & (np.abs(y - 500.0) < 200.0) & (z < -100.0) & (z > -300.0)
density = np.where(body, 500.0, 0.0)
write_netcdf("truth.nc", model_dataset(mesh, {"density": density},
                                       {"case": "airborne FTG example: a block of +500 kg/m^3, top at 100 m depth"}))
gx, gy = np.meshgrid(mesh.centers_x, mesh.centers_y)
lines = ["x,y,z"] + [f"{a:.1f},{b:.1f},80.0" for a, b in zip(gx.ravel(), gy.ravel())]
with open("locations.csv", "w") as handle:
    handle.write("\n".join(lines) + "\n")
