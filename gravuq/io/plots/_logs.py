"""Logs along drill holes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._common import plt, save


def drill_log(path: Path, log) -> None:
    """A strip log of a planned hole (a :class:`gravuq.products.DrillLog`): depth along the hole
    increasing downward; the mean with its 90 % band and the threshold (kg/m^3) on the left, the
    exceedance probability on the right; each sample drawn as a step over its interval."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(7.5, 7.0), sharey=True, constrained_layout=True,
                                         gridspec_kw={"width_ratios": [2, 1]})
    # Each sample stands for its whole interval: draw the log as steps from depth_from to depth_to.
    depth = np.stack([log.depth_from, log.depth_to], axis=1).ravel()

    def steps(values):
        return np.repeat(np.asarray(values, np.float64), 2)

    single = np.all(np.isnan(log.exceedance))
    if not np.all(np.isnan(log.q05)):
        left.fill_betweenx(depth, steps(log.q05), steps(log.q95), color="tab:blue", alpha=0.3, linewidth=0,
                           label="90 % interval")
    left.plot(steps(log.mean), depth, color="tab:blue", label="model (no posterior draws)" if single else "posterior mean")
    left.axvline(log.threshold, color="tab:red", linestyle="--", linewidth=0.9, label=f"threshold {log.threshold:g}")
    left.set_xlabel("density contrast (kg/m$^3$)")
    left.set_ylabel("depth along hole (m)")
    left.legend(loc="best", fontsize=8)
    left.grid(alpha=0.3)
    if single:
        right.text(0.5, 0.5, "no posterior draws:\nexceedance not defined", ha="center", va="center",
                   transform=right.transAxes, fontsize=9)
    else:
        right.fill_betweenx(depth, 0.0, np.nan_to_num(steps(log.exceedance)), color="tab:purple", alpha=0.35,
                            linewidth=0)
        right.plot(steps(log.exceedance), depth, color="tab:purple")
    right.set_xlim(0.0, 1.0)
    right.set_xlabel(f"P(density > {log.threshold:g} kg/m$^3$)")
    right.grid(alpha=0.3)
    left.set_ylim(float(log.depth_to[-1]), 0.0)  # depth increases downward; shared with the right panel
    x, y, z = log.collar
    figure.suptitle(f"collar ({x:.6g}, {y:.6g}, {z:.6g}) m, azimuth {log.azimuth:g}°, dip {log.dip:g}°", fontsize=10)
    save(figure, path)
