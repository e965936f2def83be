"""B4 (the seed paper's larger case): a 20-member rml ensemble on 40 x 40 x 20 cells of 500 m with
1600 gridded stations (shared/BENCHMARKS.md), timed end to end.

The truth is our own Gaussian random field (``gravuq.synthetic.gaussian_random_field_case``,
fixed seed), noise 1 % of std(gz). Reports wall time (JIT included), time per epoch, peak RSS,
and the usual scores against the truth. With ``--epochs`` below 500 the 500-epoch wall time is
extrapolated from the steady per-epoch time, and the scores are those of the shorter run.

Run: ``python benchmarks/ensemble_b4.py [--epochs 500] [--members 20] [--prior-scale fixed|hierarchical]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import machine, table
from gravuq.config import load_config
from gravuq.io import model_dataset, write_netcdf, write_text_atomic
from gravuq.io import write_stations_csv
from gravuq.synthetic import gaussian_random_field_case
from gravuq.pipeline import prepare, recover

CONFIG = """\
[data]
path = "stations.csv"
[mesh]
origin = [0.0, 0.0, -10000.0]
cell_size = [500.0, 500.0, 500.0]
shape = [40, 40, 20]
[model]
bounds = [-1000.0, 1000.0]
[inference]
method = "ensemble"
members = {members}
epochs = {epochs}
prior_std = 300.0
prior_scale = "{prior_scale}"
patience = 0
[output]
directory = "results"
threshold = 500.0
[truth]
path = "truth.nc"
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--prior-scale", default="fixed", choices=("fixed", "hierarchical"),
                        help="[inference] prior_scale")
    args = parser.parse_args()
    case = gaussian_random_field_case()
    folder = Path(tempfile.mkdtemp(prefix="gravuq-b4-"))
    write_netcdf(folder / "truth.nc", model_dataset(case.mesh, {"density": case.density}))
    write_stations_csv(folder / "stations.csv", *case.stations.T, case.gz, case.std)
    write_text_atomic(folder / "config.toml", CONFIG.format(members=args.members, epochs=args.epochs,
                                                                      prior_scale=args.prior_scale))
    setup = prepare(load_config(folder / "config.toml"), print)
    epoch_times = []

    def progress(total, description):
        class Bar:
            def __init__(self):
                self.last = time.perf_counter()

            def update(self, count):
                now = time.perf_counter()
                epoch_times.append((now - self.last) / count)
                self.last = now

            def set_postfix_str(self, text):
                pass

            def close(self):
                pass
        return Bar()

    start = time.perf_counter()
    recovery = recover(setup, progress=progress)
    wall = time.perf_counter() - start
    steady = float(np.median(epoch_times[1:])) if len(epoch_times) > 1 else float("nan")
    prior = recovery.metrics.get("prior", {})
    print("prior:", ", ".join(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
                              for key, value in prior.items()))
    row = {"case": f"B4 rml, {args.members} members, {args.epochs} epochs, {prior.get('prior_scale', '')} prior", "wall": wall, "epoch_ms": 1e3 * steady,
           "wall_500": wall + (500 - args.epochs) * steady, **recovery.metrics}
    print(f"\nB4 ensemble on {machine()}\n")
    print(table([row], [("run", "case", ""), ("wall s", "wall", ".1f"), ("ms / epoch (steady)", "epoch_ms", ".0f"),
                        ("500-epoch wall s (extrapolated if shorter)", "wall_500", ".0f"),
                        ("mean RMSE", "model_rmse", ".1f"), ("coverage_90", "coverage_90", ".3f"),
                        ("CRPS", "crps", ".1f"), ("chi^2/N mean model", "chi2_per_datum", ".2f")]))


if __name__ == "__main__":
    main()
