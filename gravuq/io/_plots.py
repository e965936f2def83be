"""Figures a geophysicist reads: depth slices, sections with the 90 % band, data maps,
resolution versus depth, training curves. Matplotlib (Agg), written atomically as PNG.

Conventions: map views are north up with x (easting) to the right, in metres; contrast maps use
a diverging scale centred on 0 kg/m^3, std and probability sequential scales; every colorbar
names its unit.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402

from ._atomic import atomic_path  # noqa: E402

_STYLES = {
    "contrast": dict(cmap="RdBu_r", label="density contrast (kg/m$^3$)"),
    "std": dict(cmap="viridis", label="posterior std (kg/m$^3$)"),
    "probability": dict(cmap="magma", label="probability", vmin=0.0, vmax=1.0),
    "resolution": dict(cmap="cividis", label="resolution (1 - var/prior var)", vmin=0.0, vmax=1.0),
}


def _save(figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(figure)


def _norm(kind: str, values: np.ndarray):
    style = _STYLES[kind]
    if kind == "contrast":
        limit = float(np.nanmax(np.abs(values))) or 1.0
        return TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit)
    low = style.get("vmin", float(np.nanmin(values)))
    high = style.get("vmax", float(np.nanmax(values)))
    return matplotlib.colors.Normalize(low, high if high > low else low + 1.0)


def depth_slices(path: Path, mesh, field: np.ndarray, kind: str, title: str, count: int = 6) -> None:
    """Map views of ``field`` (``(nz, ny, nx)``) at ``count`` depths, one shared colour scale."""
    field = np.asarray(field).reshape(mesh.shape)
    layers = np.unique(np.linspace(mesh.shape[0] - 1, 0, min(count, mesh.shape[0])).round().astype(int))[::-1]
    columns = min(3, layers.size)
    rows = -(-layers.size // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.8 * rows), squeeze=False, constrained_layout=True)
    norm = _norm(kind, field)
    for axis, layer in zip(axes.flat, layers):
        image = axis.pcolormesh(mesh.nodes_x, mesh.nodes_y, field[layer], cmap=_STYLES[kind]["cmap"], norm=norm)
        axis.set_title(f"z = {mesh.centers_z[layer]:.0f} m")
        axis.set_aspect("equal")
        axis.set_xlabel("x, easting (m)")
        axis.set_ylabel("y, northing (m)")
    for axis in list(axes.flat)[layers.size:]:
        axis.set_visible(False)
    figure.colorbar(image, ax=axes, label=_STYLES[kind]["label"], shrink=0.8)
    figure.suptitle(title)
    _save(figure, path)


def section_with_band(path: Path, mesh, mean: np.ndarray, q05: np.ndarray | None, q95: np.ndarray | None,
                      truth: np.ndarray | None, title: str) -> None:
    """A vertical x-z section through the strongest anomaly of ``mean`` and, beside it, the
    density down the vertical through it with the 90 % band (and the truth when known)."""
    mean = np.asarray(mean).reshape(mesh.shape)
    k, j, i = np.unravel_index(np.nanargmax(np.abs(mean)), mesh.shape)
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [2, 1]}, constrained_layout=True)
    norm = _norm("contrast", mean if truth is None else np.concatenate([mean.ravel(), np.ravel(truth)]))
    image = left.pcolormesh(mesh.nodes_x, mesh.nodes_z, mean[:, j, :], cmap="RdBu_r", norm=norm)
    if truth is not None:
        left.contour(mesh.centers_x, mesh.centers_z, np.asarray(truth).reshape(mesh.shape)[:, j, :], levels=[0.5 * np.nanmax(truth)],
                     colors="k", linewidths=1.0)
    left.axvline(mesh.centers_x[i], color="0.3", linestyle="--", linewidth=0.8)
    left.set_title(f"section y = {mesh.centers_y[j]:.0f} m (mean{'; truth outlined' if truth is not None else ''})")
    left.set_xlabel("x, easting (m)")
    left.set_ylabel("z, elevation (m)")
    left.set_aspect("equal")
    figure.colorbar(image, ax=left, label=_STYLES["contrast"]["label"])
    z = mesh.centers_z
    if q05 is not None and q95 is not None and not np.all(np.isnan(q05)):
        right.fill_betweenx(z, np.asarray(q05).reshape(mesh.shape)[:, j, i], np.asarray(q95).reshape(mesh.shape)[:, j, i],
                            color="tab:blue", alpha=0.3, label="90 % interval")
    right.plot(mean[:, j, i], z, color="tab:blue", label="mean")
    if truth is not None:
        right.step(np.asarray(truth).reshape(mesh.shape)[:, j, i], z, where="mid", color="k", label="truth")
    right.set_xlabel(_STYLES["contrast"]["label"])
    right.set_ylabel("z, elevation (m)")
    right.set_title(f"vertical at x = {mesh.centers_x[i]:.0f} m")
    right.legend(loc="best", fontsize=8)
    figure.suptitle(title)
    _save(figure, path)


def data_maps(path: Path, survey, predicted: np.ndarray) -> None:
    """Observed, predicted and residual gz (mGal, positive down) at the stations, and residual/std."""
    residual = np.asarray(predicted) - np.asarray(survey.gz)
    figure, axes = plt.subplots(1, 3, figsize=(14, 4.2), constrained_layout=True)
    limit = float(np.max(np.abs(np.concatenate([survey.gz, predicted])))) or 1.0
    for axis, values, title in ((axes[0], survey.gz, "observed gz"), (axes[1], predicted, "predicted gz")):
        image = axis.scatter(survey.x, survey.y, c=values, s=14, marker="s", cmap="RdBu_r", vmin=-limit, vmax=limit)
        axis.set_title(title)
    figure.colorbar(image, ax=axes[:2], label="gz (mGal, positive down)", shrink=0.85)
    normalised = residual / survey.std
    bound = float(np.max(np.abs(normalised))) or 1.0
    image = axes[2].scatter(survey.x, survey.y, c=normalised, s=14, marker="s", cmap="PuOr_r", vmin=-bound, vmax=bound)
    axes[2].set_title(f"residual / std (RMS {np.sqrt(np.mean(residual**2)):.3g} mGal)")
    figure.colorbar(image, ax=axes[2], label="(predicted - observed) / std", shrink=0.85)
    for axis in axes:
        axis.set_aspect("equal")
        axis.set_xlabel("x, easting (m)")
        axis.set_ylabel("y, northing (m)")
    _save(figure, path)


def resolution_depth(path: Path, mesh, resolution: np.ndarray) -> None:
    """Resolution (1 - posterior/prior variance) averaged per layer, with its range, vs depth."""
    resolution = np.asarray(resolution).reshape(mesh.shape)
    layers = resolution.reshape(mesh.shape[0], -1)
    figure, axis = plt.subplots(figsize=(5, 4.5), constrained_layout=True)
    axis.fill_betweenx(mesh.centers_z, np.nanmin(layers, axis=1), np.nanmax(layers, axis=1), alpha=0.3, label="range over layer")
    axis.plot(np.nanmean(layers, axis=1), mesh.centers_z, marker="o", label="layer mean")
    axis.set_xlim(0, 1)
    axis.set_xlabel("resolution, 1 - posterior var / prior var")
    axis.set_ylabel("z, elevation (m)")
    axis.set_title("What the data resolve, by depth")
    axis.legend(loc="best", fontsize=8)
    _save(figure, path)


def training_curve(path: Path, history: np.ndarray, target: float | None) -> None:
    """chi^2/N per epoch for each member (log scale), with the target misfit."""
    figure, axis = plt.subplots(figsize=(6, 4), constrained_layout=True)
    history = np.asarray(history)
    axis.semilogy(np.arange(1, history.shape[0] + 1), history, linewidth=0.8, alpha=0.8)
    if target is not None:
        axis.axhline(target, color="k", linestyle="--", linewidth=0.8, label=f"target {target:g}")
        axis.legend()
    axis.set_xlabel("epoch")
    axis.set_ylabel("chi$^2$/N")
    axis.set_title("Training misfit")
    _save(figure, path)
