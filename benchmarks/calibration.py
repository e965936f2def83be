"""Calibration with default settings on truths of three kinds (no prior picked by hand).

- ``b1``: the dipping block of the demo (stations 1 m above the mesh top, 1 % noise);
- ``grf``: a smooth Gaussian random field (600 m correlation, +-250 kg/m^3) under 350 scattered
  stations, 2 % noise;
- ``bodies``: four bodies of both signs at different depths (+350, -250, +200, -300 kg/m^3) under
  400 scattered stations at UTM coordinates, accuracies from 0.02 to 0.1 mGal.

For each: the exact Gaussian posterior with the learned prior and noise (``prior_scale =
"learned"``, ``noise = "learned"``, the defaults), optionally the 20-member INR ensemble
(``--ensemble``), and the oracle no user has: the best exact iid-Gaussian posterior over prior sd in
{25, 50, 100, 200, 400} kg/m^3 chosen with the truth (by CRPS). Scores over all cells: coverage of
the 90 % interval, the same over the cells whose truth is not zero, CRPS (kg/m^3) and its ratio to
the oracle's (target <= 0.9).

Run: ``python benchmarks/calibration.py [--only b1,grf] [--ensemble]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from _common import machine, table
from gravuq.config import load_config
from gravuq.forward import sensitivity_matrix
from gravuq.inference import GaussianPrior, gaussian_posterior
from gravuq.io import model_dataset, write_netcdf, write_stations_csv
from gravuq.mesh import TensorMesh
from gravuq.pipeline import prepare, recover
from gravuq.posterior import crps_gaussian, summarise_gaussian
from gravuq.synthetic import gaussian_random_field

ORACLE_SD = (25.0, 50.0, 100.0, 200.0, 400.0)


def b1_case():
    mesh = TensorMesh.uniform((-25.0, -25.0, -550.0), (50.0, 50.0, 50.0), (21, 21, 11))
    truth = np.zeros(mesh.shape)
    for slab in range(7):  # 45 degree dip toward -y, the top slab one layer below the surface layer
        truth[mesh.shape[0] - 2 - slab, 11 - slab:16 - slab, 7:13] = 400.0
    x, y = np.meshgrid(mesh.centers_x, mesh.centers_y)
    stations = np.stack([x.ravel(), y.ravel(), np.full(x.size, 1.0)], axis=1)
    return mesh, truth, stations, 0.01, None


def grf_case():
    mesh = TensorMesh.uniform((0.0, 0.0, -1200.0), (100.0, 100.0, 100.0), (24, 24, 12))
    field = gaussian_random_field(jax.random.key(11), mesh.shape, (100.0, 100.0, 100.0), correlation_length=600.0)
    truth = 250.0 * field / np.abs(field).max()
    rng = np.random.default_rng(12)
    stations = np.stack([rng.uniform(100, 2300, 350), rng.uniform(100, 2300, 350), np.full(350, 5.0)], axis=1)
    return mesh, truth, stations, 0.02, None


def bodies_case():
    origin = (512000.0, 7012000.0, -1200.0)
    mesh = TensorMesh.uniform(origin, (100.0, 100.0, 100.0), (30, 24, 12))
    truth = np.zeros(mesh.shape)  # (z, y, x), z index 11 is the top layer
    truth[7:10, 5:9, 4:9] = 350.0      # 200-500 m deep
    truth[3:6, 12:17, 16:22] = -250.0  # 600-900 m deep
    truth[9, 15:21, 5:12] = 200.0      # a sill at 200-300 m
    truth[10:12, 4:6, 22:25] = -300.0  # shallow and small
    rng = np.random.default_rng(13)
    stations = np.stack([origin[0] + rng.uniform(100, 2900, 400), origin[1] + rng.uniform(100, 2300, 400),
                         np.full(400, 10.0)], axis=1)
    accuracy = rng.uniform(0.02, 0.1, 400)
    return mesh, truth, stations, None, accuracy


CASES = {"b1": b1_case, "grf": grf_case, "bodies": bodies_case}


def write_case(name: str, folder: Path, members: int) -> Path:
    mesh, truth, stations, noise_fraction, accuracy = CASES[name]()
    gz = np.asarray(sensitivity_matrix(mesh, stations, dtype="float64")) @ truth.ravel()
    std = np.full(gz.shape, noise_fraction * gz.std()) if accuracy is None else accuracy
    observed = gz + np.random.default_rng(99).normal(size=gz.shape) * std
    write_stations_csv(folder / "stations.csv", *stations.T, observed, std)
    write_netcdf(folder / "truth.nc", model_dataset(mesh, {"density": truth}))
    nz, ny, nx = mesh.shape
    text = (f'[data]\npath = "stations.csv"\n\n[mesh]\norigin = {list(mesh.origin)}\n'
            f"cell_size = [{mesh.widths_x[0]}, {mesh.widths_y[0]}, {mesh.widths_z[0]}]\nshape = [{nx}, {ny}, {nz}]\n\n"
            f'[inference]\nmembers = {members}\nseed = 0\n\n[output]\ndirectory = "results"\nthreshold = 150.0\n\n'
            '[truth]\npath = "truth.nc"\n')
    (folder / "config.toml").write_text(text)
    return folder / "config.toml"


def scores(mean, std, q05, q95, truth, crps):
    inside = (truth >= q05) & (truth <= q95)
    body = truth != 0
    return {"coverage_90": float(inside.mean()), "coverage_nonzero": float(inside[body].mean()), "crps": float(crps)}


def oracle(setup) -> dict:
    matrix, truth = setup.dense(), setup.truth.ravel()
    best = None
    for sd in ORACLE_SD:
        prior = GaussianPrior.build(setup.mesh, sd)
        post = gaussian_posterior(matrix, setup.survey.gz, setup.survey.std, prior, jax.random.key(0), 2)
        summary = summarise_gaussian(post.mean, post.variance, post.prior_variance, 150.0)
        crps = crps_gaussian(summary.mean, summary.std, truth).mean()
        row = {"oracle_sd": sd, **scores(summary.mean, summary.std, summary.q05, summary.q95, truth, crps)}
        if best is None or row["crps"] < best["crps"]:
            best = row
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="", help="comma-separated case names")
    parser.add_argument("--ensemble", action="store_true", help="also the 20-member INR ensemble (rml)")
    parser.add_argument("--members", type=int, default=20)
    args = parser.parse_args()
    names = [n for n in CASES if not args.only or n in args.only.split(",")]
    rows = []
    for name in names:
        folder = Path(tempfile.mkdtemp(prefix=f"gravuq-calibration-{name}-"))
        setup = prepare(load_config(write_case(name, folder, args.members)))
        best = oracle(setup)
        methods = ["gaussian"] + (["ensemble"] if args.ensemble else [])
        for method in methods:
            start = time.perf_counter()
            recovery = recover(setup, method)
            wall = time.perf_counter() - start
            m = recovery.metrics
            summary, truth = recovery.summary, setup.truth.ravel()
            row = {"case": name, "method": method, "wall": wall, "chosen": m["prior"].get("chosen", "fixed"),
                   **scores(summary.mean, summary.std, summary.q05, summary.q95, truth, m["crps"]),
                   "oracle_sd": best["oracle_sd"], "oracle_crps": best["crps"], "oracle_coverage": best["coverage_90"],
                   "rmse": m["model_rmse"]}
            row["crps_ratio"] = row["crps"] / best["crps"]
            rows.append(row)
            print(table(rows[-1:], COLUMNS).splitlines()[-1], flush=True)
    print(f"\nDefault settings (learned prior and noise), on {machine()}\n")
    print(table(rows, COLUMNS))


COLUMNS = [("case", "case", ""), ("method", "method", ""), ("prior", "chosen", ""), ("wall s", "wall", ".1f"),
           ("RMSE", "rmse", ".1f"), ("coverage_90", "coverage_90", ".3f"), ("non-zero", "coverage_nonzero", ".3f"),
           ("CRPS", "crps", ".1f"), ("oracle sd", "oracle_sd", ".0f"), ("oracle CRPS", "oracle_crps", ".1f"),
           ("CRPS / oracle", "crps_ratio", ".2f")]

if __name__ == "__main__":
    main()
