"""B1 deterministic recoveries: each INR encoding and the Tikhonov baseline.

Prints model RMSE (kg/m^3, all 4851 cells), chi^2/N reached, epochs, wall time (JIT compile
included; the operator is built once beforehand) and trained weights, and the ratio of wall time
and RMSE to the seed paper's code as measured on a machine like this one (shared/BENCHMARKS.md:
positional encoding 45 s, RMSE 63.6; hash 25 s, RMSE 59.1; the authors' smoothness inversion
69.3). The seed code is PyTorch and is not installed here, so its figures are quoted, not re-run.

Run: ``python benchmarks/invert_b1.py``.
"""

from __future__ import annotations

from _common import b1_setup, machine, run, table

SEED_POSITIONAL_WALL_S = 45.0
SEED_POSITIONAL_RMSE = 63.6
SEED_HASH_RMSE = 59.1
SEED_TIKHONOV_RMSE = 69.3


def main() -> None:
    setup = b1_setup()
    rows = []
    cases = [
        ("deterministic (defaults)", "deterministic", {}),
        ("deterministic, positional 2 octaves", "deterministic", {"encoding": "positional", "frequencies": 2}),
        ("deterministic, fourier sigma 0.5", "deterministic", {"encoding": "fourier", "sigma": 0.5}),
        ("deterministic, hash", "deterministic", {"encoding": "hash"}),
        ("deterministic, none", "deterministic", {"encoding": "none"}),
        ("tikhonov", "tikhonov", {}),
    ]
    for name, method, model in cases:
        metrics, wall = run(setup, method, model)
        reference = SEED_TIKHONOV_RMSE if method == "tikhonov" else SEED_POSITIONAL_RMSE
        rows.append({"case": name, "rmse": metrics["model_rmse"], "chi2": metrics["chi2_per_datum"],
                     "epochs": metrics.get("epochs"), "wall": wall, "params": metrics.get("parameter_count"),
                     "speed": SEED_POSITIONAL_WALL_S / wall, "rmse_ratio": metrics["model_rmse"] / reference})
        print(f"done: {name}", flush=True)
    print(f"\nB1 deterministic recoveries on {machine()}\n")
    print(table(rows, [("case", "case", ""), ("model RMSE kg/m^3", "rmse", ".1f"), ("chi^2/N", "chi2", ".2f"),
                       ("epochs", "epochs", ""), ("wall s", "wall", ".1f"), ("weights", "params", ""),
                       ("seed-code wall (45 s) / ours", "speed", ".1f"),
                       ("RMSE / seed-code RMSE", "rmse_ratio", ".2f")]))
    print("\nseed code (BENCHMARKS.md, not re-run): positional RMSE 63.6 chi2 1.75 45 s; hash RMSE 59.1 chi2 1.00 25 s; "
          "smoothness + depth weighting 69.3; zero model 83.2")


if __name__ == "__main__":
    main()
