"""Shared test helpers: the tiny synthetic case the CLI, run and end-to-end tests write.

The case: 8 x 8 x 4 cells of 50 m, a +400 kg/m^3 block, 64 stations 1 m above the cell-centre
grid, gz in mGal (positive downward) with 1 % noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from typer.testing import CliRunner

from gravuq.forward import sensitivity_matrix
from gravuq.io import model_dataset, write_netcdf, write_stations_csv
from gravuq.mesh import TensorMesh
from gravuq_cli.main import app

MESH_TOML = """\
[mesh]
origin = [0.0, 0.0, -200.0]
cell_size = [50.0, 50.0, 50.0]
shape = [8, 8, 4]
"""
#: A tiny network for the tests of plumbing (the fit is not their point).
TINY_MODEL = 'encoding = "fourier"\nfrequencies = 4\nwidth = 16\ndepth = 2'
SUMMARY_VARIABLES = ("mean", "std", "q05", "q95", "exceedance", "resolution")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Case:
    """The tiny case's folder, mesh, truth, stations and noise-free data."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.mesh = TensorMesh.uniform((0.0, 0.0, -200.0), (50.0, 50.0, 50.0), (8, 8, 4))
        self.truth = np.zeros(self.mesh.shape)
        self.truth[1:3, 3:6, 2:5] = 400.0  # (z, y, x): two layers of a 3 x 3 block
        x, y = np.meshgrid(self.mesh.centers_x, self.mesh.centers_y)
        self.stations = np.stack([x.ravel(), y.ravel(), np.full(x.size, 1.0)], axis=1)
        self.matrix = np.asarray(sensitivity_matrix(self.mesh, self.stations, dtype="float64"))
        self.gz_true = self.matrix @ self.truth.ravel()
        self.std = float(0.01 * self.gz_true.std())
        noise = np.random.default_rng(0).normal(0.0, self.std, self.gz_true.shape)
        self.gz = self.gz_true + noise
        write_netcdf(folder / "truth.nc", model_dataset(self.mesh, {"density": self.truth}))
        write_stations_csv(folder / "stations.csv", *self.stations.T, self.gz, np.full(self.gz.shape, self.std))

    def config(self, name: str, method: str = "ensemble", inference: str = "", formats=("netcdf", "png"),
               data: str = 'path = "stations.csv"', extra: str = "", model: str = TINY_MODEL) -> Path:
        """Write ``<name>.toml`` whose results go to ``results_<name>``; returns its path."""
        formats_toml = ", ".join(f'"{item}"' for item in formats)
        # The case's defaults, unless ``inference`` sets the key itself.
        defaults = "".join(f"{key} = {value}\n" for key, value in (("members", 4), ("epochs", 50), ("seed", 0))
                           if f"{key} =" not in inference)
        text = (f"[data]\n{data}\n\n{MESH_TOML}\n"
                f"[model]\n{model}\n\n"
                f"[inference]\nmethod = \"{method}\"\n{defaults}{inference}\n"
                f"[output]\ndirectory = \"results_{name}\"\nthreshold = 200.0\nformats = [{formats_toml}]\n\n"
                f"[truth]\npath = \"truth.nc\"\n{extra}")
        path = self.folder / f"{name}.toml"
        path.write_text(text)
        return path

    def results(self, name: str) -> Path:
        return self.folder / f"results_{name}"


def invoke(*arguments) -> typer.testing.Result:
    return CliRunner().invoke(app, [str(argument) for argument in arguments])


def check_success(result) -> None:
    assert result.exit_code == 0, result.output + repr(result.exception)
