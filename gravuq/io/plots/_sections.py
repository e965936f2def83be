"""Vertical views: sections with the 90 % band, the comparison of methods, resolution versus
depth, training curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.colors import TwoSlopeNorm

from ._common import (STYLES, colour_norm, distance_axis, outline_cells, plt, save, strongest_cell,
                      unresolved_ratio, vertical_exaggeration)

def section_with_band(path: Path, mesh, mean: np.ndarray, q05: np.ndarray | None, q95: np.ndarray | None,
                      truth: np.ndarray | None, title: str, threshold: float | None = None,
                      location: tuple[int, int] | None = None) -> None:
    """A vertical x-z section through the strongest anomaly and, beside it, the density down the
    vertical through it with the 90 % band (and the truth when known).

    The section is at ``location = (j, i)`` (row y = centers_y[j], column x = centers_x[i]) when
    given; else through the strongest true anomaly when ``truth`` is known, else the strongest
    anomaly of ``mean`` (:func:`strongest_cell`), the same cut as ``comparison_sections.png``.
    Mean and truth share one colour scale; the truth is outlined at ``threshold`` (kg/m^3;
    default half its largest value).
    """
    mean = np.asarray(mean).reshape(mesh.shape)
    if location is None:
        _, j, i = strongest_cell(mesh, mean if truth is None else truth)
    else:
        j, i = location
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [2, 1]}, constrained_layout=True)
    norm = colour_norm("contrast", mean if truth is None else np.concatenate([mean.ravel(), np.ravel(truth)]))
    image = left.pcolormesh(mesh.nodes_x, mesh.nodes_z, mean[:, j, :], cmap="RdBu_r", norm=norm)
    if truth is not None:
        level = 0.5 * float(np.nanmax(truth)) if threshold is None else threshold
        cut = np.asarray(truth).reshape(mesh.shape)[:, j, :]
        outline_cells(left, mesh.nodes_x, mesh.nodes_z, cut > level)
    left.axvline(mesh.centers_x[i], color="0.3", linestyle="--", linewidth=0.8)
    outlined = f"; black: truth > {level:g} kg/m$^3$" if truth is not None else ""
    left.set_title(f"section y = {mesh.centers_y[j]:.0f} m (mean{outlined})", fontsize=10)
    west, east, _, _, bottom, top = mesh.bounds
    distance_axis(left, "x", "x, easting", east - west)
    distance_axis(left, "y", "z, elevation", top - bottom)
    exaggeration = vertical_exaggeration(mesh)
    left.set_aspect(exaggeration)
    if exaggeration > 1:
        left.text(0.01, 0.02, f"vertical exaggeration x{exaggeration:g}", transform=left.transAxes, fontsize=8)
    figure.colorbar(image, ax=left, label=STYLES["contrast"]["label"])
    z = mesh.centers_z
    if q05 is not None and q95 is not None and not np.all(np.isnan(q05)):
        right.fill_betweenx(z, np.asarray(q05).reshape(mesh.shape)[:, j, i], np.asarray(q95).reshape(mesh.shape)[:, j, i],
                            color="tab:blue", alpha=0.3, label="90 % interval")
    right.plot(mean[:, j, i], z, color="tab:blue", label="mean")
    if truth is not None:
        # A cell holds one value from its bottom to its top face: steps at the faces, not between centres.
        right.stairs(np.asarray(truth).reshape(mesh.shape)[:, j, i], mesh.nodes_z, orientation="horizontal",
                     baseline=None, color="k", label="truth")
    right.set_xlabel(STYLES["contrast"]["label"])
    distance_axis(right, "y", "z, elevation", top - bottom)
    right.set_title(f"vertical at x = {mesh.centers_x[i]:.0f} m")
    if threshold is not None:
        right.axvline(threshold, color="tab:red", linestyle=":", linewidth=0.9, label=f"threshold {threshold:g}")
    right.legend(loc="best", fontsize=8)
    figure.suptitle(title)
    save(figure, path)


def resolution_depth(path: Path, mesh, resolution: np.ndarray, std: np.ndarray | None = None,
                     prior_std: np.ndarray | None = None, draws: int | None = None) -> None:
    """What the data resolve, by depth: per layer, the median and the 10-90 % range over cells of
    the resolution 1 - posterior variance / prior variance, and the fraction of the layer's cells
    that are not resolved (:func:`unresolved_ratio`).

    With ``std`` and ``prior_std`` (kg/m^3, per cell) the resolution is recomputed unclipped, so a
    layer the data do not see averages to about 0 rather than to the mean of clipped sampling
    noise. With ``draws`` (Monte-Carlo draws; None: exact moments) the band where a sample
    resolution cannot be told from 0, ``sqrt(2 / (n - 1))``, is shaded.
    """
    shape = mesh.shape
    if std is not None and prior_std is not None:
        ratio = np.divide(np.asarray(std, np.float64) ** 2, np.asarray(prior_std, np.float64) ** 2,
                          out=np.full(np.shape(std), np.nan), where=np.asarray(prior_std) > 0)
        values = 1.0 - ratio.reshape(shape)
        unresolved = (np.sqrt(ratio) >= unresolved_ratio(draws)).reshape(shape)
    else:
        values = np.asarray(resolution, np.float64).reshape(shape)
        unresolved = None
    layers = values.reshape(shape[0], -1)
    figure, axis = plt.subplots(figsize=(6.0, 4.8), constrained_layout=True)
    z = mesh.centers_z
    if draws is not None:
        floor = float(np.sqrt(2.0 / max(draws - 1, 1)))
        axis.axvspan(-1.0, min(floor, 1.0), color="0.85", zorder=0,
                     label=f"sampling noise of {draws} draws (|R| < {floor:.2f})")
    low, high = np.nanpercentile(layers, [10, 90], axis=1)
    axis.fill_betweenx(z, low, high, alpha=0.3, color="tab:blue", label="10-90 % of the layer's cells")
    axis.plot(np.nanmedian(layers, axis=1), z, marker="o", color="tab:blue", label="layer median")
    if unresolved is not None:
        fraction = unresolved.reshape(shape[0], -1).mean(axis=1)
        axis.plot(fraction, z, marker="s", color="0.35", linestyle="--", linewidth=0.9,
                  label=f"fraction not resolved (sd > {unresolved_ratio(draws):.2f} x prior sd)")
    axis.axvline(0.0, color="0.5", linewidth=0.6)
    axis.set_xlim(min(-0.2, float(np.nanmin(low)) - 0.05) if draws is not None else 0.0, 1.0)
    axis.set_xlabel("resolution, 1 - posterior var / prior var")
    distance_axis(axis, "y", "z, elevation", float(mesh.nodes_z[-1] - mesh.nodes_z[0]))
    source = "exact Gaussian moments" if draws is None else f"{draws} draws (Monte-Carlo)"
    axis.set_title(f"What the data resolve, by depth ({source})", fontsize=10)
    axis.legend(loc="best", fontsize=7)
    save(figure, path)


def training_curve(path: Path, history: np.ndarray, target: float | None, kept_epochs=None, kept: str = "last",
                   trainer: str = "") -> None:
    """chi^2/N of every iterate each member was trained through (log scale; each against the
    member's own data, perturbed for randomised MAP), the state each member kept (dots) and the
    target misfit (dashed) when there is one."""
    figure, axis = plt.subplots(figsize=(6.5, 4.2), constrained_layout=True)
    history = np.asarray(history)
    if history.ndim == 1:
        history = history[:, None]
    steps = np.arange(history.shape[0])
    lines = axis.semilogy(steps, history, linewidth=0.8, alpha=0.8)
    if kept_epochs is not None:
        rows = np.clip(np.asarray(kept_epochs, int), 0, history.shape[0] - 1)
        for line, member, row in zip(lines, range(history.shape[1]), rows):
            axis.plot(row, history[row, member], "o", color=line.get_color(), markersize=4)
        axis.plot([], [], "o", color="0.3", markersize=4, label=f"kept state ({kept})")
    if target is not None:
        axis.axhline(target, color="k", linestyle="--", linewidth=0.8, label=f"target chi$^2$/N = {target:g}")
    if kept_epochs is not None or target is not None:
        axis.legend(fontsize=8)
    unit = "Gauss-Newton step" if trainer == "levenberg_marquardt" else "epoch"
    axis.set_xlabel(unit)
    axis.set_ylabel("chi$^2$/N against the member's own data")
    members = history.shape[1]
    axis.set_title(f"Training misfit, {members} member{'s' if members > 1 else ''}"
                   + (f" ({trainer})" if trainer else ""), fontsize=10)
    save(figure, path)


def comparison_sections(path: Path, mesh, panels, truth: np.ndarray | None, location: tuple[int, int],
                        threshold: float | None = None) -> None:
    """One x-z section per method's mean side by side on one colour scale, and below each the
    vertical profile through the anomaly with its 90 % band (``gravuq compare``).

    Parameters
    ----------
    panels
        ``(label, mean, q05, q95)`` per method, fields ``(cells,)`` or ``(nz, ny, nx)`` in kg/m^3;
        ``q05``, ``q95`` None for a deterministic model.
    truth
        The true model (kg/m^3) or None: drawn as its own section, outlined on every section
        and as a step line on every profile.
    location
        ``(j, i)``: the section is the row ``y = centers_y[j]``, the profile the column
        ``x = centers_x[i]`` of it.
    threshold
        kg/m^3, drawn as a dotted line on the profiles.
    """
    j, i = location
    sections = [(label, np.asarray(mean, np.float64).reshape(mesh.shape)) for label, mean, _, _ in panels]
    if truth is not None:
        truth = np.asarray(truth, np.float64).reshape(mesh.shape)
        sections.append(("truth", truth))
    # The truth outline: at the threshold (the same contour as on the maps), else half its peak.
    level = None if truth is None else (threshold if threshold is not None else 0.5 * float(np.nanmax(truth)))
    shown = np.concatenate([field[:, j, :].ravel() for _, field in sections])
    limit = float(np.nanmax(np.abs(shown))) or 1.0
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit)
    exaggeration = vertical_exaggeration(mesh)
    columns = len(sections)
    west, east, _, _, bottom, top = mesh.bounds
    figure, axes = plt.subplots(2, columns, figsize=(4.0 * columns + 1.2, 7.2), squeeze=False, constrained_layout=True)
    image = None
    for axis, (label, field) in zip(axes[0], sections):
        image = axis.pcolormesh(mesh.nodes_x, mesh.nodes_z, field[:, j, :], cmap="RdBu_r", norm=norm)
        if truth is not None and label != "truth":
            outline_cells(axis, mesh.nodes_x, mesh.nodes_z, truth[:, j, :] > level, width=1.0)
        axis.axvline(mesh.centers_x[i], color="0.3", linestyle="--", linewidth=0.8)
        axis.set_aspect(exaggeration)
        axis.set_title(label if label == "truth" else f"{label}: mean")
        distance_axis(axis, "x", "x, easting", east - west)
        distance_axis(axis, "y", "z, elevation", top - bottom)
    figure.colorbar(image, ax=axes[0, :], label=STYLES["contrast"]["label"], shrink=0.9)
    z = mesh.centers_z
    profiles = []
    for axis, (label, mean, q05, q95) in zip(axes[1], panels):
        mean = np.asarray(mean, np.float64).reshape(mesh.shape)[:, j, i]
        profiles.append(mean)
        if q05 is not None and q95 is not None:
            low = np.asarray(q05, np.float64).reshape(mesh.shape)[:, j, i]
            high = np.asarray(q95, np.float64).reshape(mesh.shape)[:, j, i]
            profiles += [low, high]
            axis.fill_betweenx(z, low, high, color="tab:blue", alpha=0.3, label="90 % interval")
        axis.plot(mean, z, color="tab:blue", marker=".", label="mean")
        if truth is not None:
            axis.stairs(truth[:, j, i], mesh.nodes_z, orientation="horizontal", baseline=None, color="k",
                        label="truth")
        if threshold is not None:
            axis.axvline(threshold, color="tab:red", linestyle=":", linewidth=1.0, label=f"threshold {threshold:g}")
        axis.axvline(0.0, color="0.6", linewidth=0.6)
        axis.set_title(f"{label}: vertical at x = {mesh.centers_x[i]:.0f} m", fontsize=9)
        axis.set_xlabel(STYLES["contrast"]["label"])
        distance_axis(axis, "y", "z, elevation", top - bottom)
        axis.legend(loc="lower right", fontsize=7)
    if truth is not None:
        profiles.append(truth[:, j, i])
    values = np.concatenate(profiles + ([np.array([threshold])] if threshold is not None else []))
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    pad = 0.05 * (high - low or 1.0)
    for axis in axes[1, :len(panels)]:
        axis.set_xlim(low - pad, high + pad)
        axis.set_ylim(mesh.nodes_z[0], mesh.nodes_z[-1])
    if truth is not None:  # the slot under the truth: every mean against the truth on one axis
        axis = axes[1, len(panels)]
        for (label, mean, _, _), colour in zip(panels, plt.rcParams["axes.prop_cycle"].by_key()["color"]):
            axis.plot(np.asarray(mean, np.float64).reshape(mesh.shape)[:, j, i], z, color=colour, label=label)
        axis.stairs(truth[:, j, i], mesh.nodes_z, orientation="horizontal", baseline=None, color="k", label="truth")
        axis.axvline(0.0, color="0.6", linewidth=0.6)
        axis.set_xlim(low - pad, high + pad)
        axis.set_ylim(mesh.nodes_z[0], mesh.nodes_z[-1])
        axis.set_title(f"every mean: vertical at x = {mesh.centers_x[i]:.0f} m", fontsize=9)
        axis.set_xlabel(STYLES["contrast"]["label"])
        distance_axis(axis, "y", "z, elevation", top - bottom)
        axis.legend(loc="lower right", fontsize=7)
    suffix = f"; vertical exaggeration x{exaggeration:g}" if exaggeration > 1 else ""
    figure.suptitle(f"Section y = {mesh.centers_y[j]:.0f} m through the strongest anomaly "
                    f"({'of the truth' if truth is not None else 'of the first probabilistic mean'}; "
                    f"dashed: the profile below{f'; black: truth > {level:g} kg/m$^3$' if truth is not None else ''}{suffix})")
    save(figure, path)
