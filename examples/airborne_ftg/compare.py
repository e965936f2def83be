"""Print the joint (config.toml) and gz-only (gz_only.toml) results side by side: CRPS against
the truth (kg/m^3), model RMSE, 90 % coverage and the exact posterior std (kg/m^3) averaged over
the cells of each layer and over the body's cells. Run after both inversions, from this folder."""

import json

import xarray as xr

truth = xr.open_dataset("truth.nc")["density"]
body = truth > 0
for name, folder in (("gz + 6 gradients", "results"), ("gz alone", "results_gz_only")):
    metrics = json.loads(open(f"{folder}/metrics.json").read())
    std = xr.open_dataset(f"{folder}/summary.nc")["std"]
    depth_layers = (std.z < -100) & (std.z > -300)
    print(f"{name}: CRPS {metrics['crps']:.2f} kg/m^3, RMSE {metrics['model_rmse']:.1f} kg/m^3, coverage_90 "
          f"{metrics['coverage_90']:.3f}, posterior std over the body's cells {float(std.where(body).mean()):.1f}, "
          f"over every cell at the body's depth (z -100..-300 m) {float(std.where(depth_layers).mean()):.1f} kg/m^3")
    print("   std per layer (z, kg/m^3):", ", ".join(f"{float(z):.0f}: {float(std.sel(z=z).mean()):.1f}"
                                                   for z in std.z.values[::-1]))
    if "by_component" in metrics:
        print("   chi2/N by component:", {c: round(v["chi2_per_datum"], 3) for c, v in metrics["by_component"].items()})
