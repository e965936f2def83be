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
from matplotlib.ticker import FuncFormatter  # noqa: E402

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


#: Above this span (m) distance axes are labelled in km: six-digit metre ticks run into each other.
_KM_SPAN = 20_000.0


def _distance_axis(axis, which: str, name: str, span: float) -> None:
    """Label the ``which`` ("x" or "y") axis of ``axis`` as ``name`` in m, or in km when the
    plotted ``span`` (m) exceeds 20 km (the data stay in m; only the ticks are divided)."""
    target = axis.xaxis if which == "x" else axis.yaxis
    unit = "m"
    if span > _KM_SPAN:
        target.set_major_formatter(FuncFormatter(lambda value, _: f"{value / 1000:g}"))
        unit = "km"
    target.set_label_text(f"{name} ({unit})")


def _map_axes(axis, x_span: float, y_span: float) -> None:
    """A map view: north up, x east, equal scales, distance labels."""
    axis.set_aspect("equal")
    _distance_axis(axis, "x", "x, easting", x_span)
    _distance_axis(axis, "y", "y, northing", y_span)


def _panel_height(width: float, x_span: float, y_span: float) -> float:
    """Inches of height for a map panel ``width`` inches wide with equal scales, plus labels."""
    return width * float(np.clip(y_span / max(x_span, 1e-12), 0.25, 1.5)) + 0.9


def depth_slices(path: Path, mesh, field: np.ndarray, kind: str, title: str, count: int = 6) -> None:
    """Map views of ``field`` (``(nz, ny, nx)``) at ``count`` depths, one shared colour scale."""
    field = np.asarray(field).reshape(mesh.shape)
    layers = np.unique(np.linspace(mesh.shape[0] - 1, 0, min(count, mesh.shape[0])).round().astype(int))[::-1]
    columns = min(3, layers.size)
    rows = -(-layers.size // columns)
    west, east, south, north, bottom, top = mesh.bounds
    height = _panel_height(3.3, east - west, north - south)  # a map is narrower than its 4.2 in cell
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, height * rows), squeeze=False, constrained_layout=True)
    norm = _norm(kind, field)
    for axis, layer in zip(axes.flat, layers):
        image = axis.pcolormesh(mesh.nodes_x, mesh.nodes_y, field[layer], cmap=_STYLES[kind]["cmap"], norm=norm)
        # The layer's extent, and its depth below the mesh top: what a driller reads.
        upper, lower = mesh.nodes_z[layer + 1], mesh.nodes_z[layer]
        axis.set_title(f"z = {lower:.0f}..{upper:.0f} m (depth {top - upper:.0f}..{top - lower:.0f} m)", fontsize=9)
        _map_axes(axis, east - west, north - south)
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
    west, east, _, _, bottom, top = mesh.bounds
    _distance_axis(left, "x", "x, easting", east - west)
    _distance_axis(left, "y", "z, elevation", top - bottom)
    exaggeration = _vertical_exaggeration(mesh)
    left.set_aspect(exaggeration)
    if exaggeration > 1:
        left.text(0.01, 0.02, f"vertical exaggeration x{exaggeration:g}", transform=left.transAxes, fontsize=8)
    figure.colorbar(image, ax=left, label=_STYLES["contrast"]["label"])
    z = mesh.centers_z
    if q05 is not None and q95 is not None and not np.all(np.isnan(q05)):
        right.fill_betweenx(z, np.asarray(q05).reshape(mesh.shape)[:, j, i], np.asarray(q95).reshape(mesh.shape)[:, j, i],
                            color="tab:blue", alpha=0.3, label="90 % interval")
    right.plot(mean[:, j, i], z, color="tab:blue", label="mean")
    if truth is not None:
        # A cell holds one value from its bottom to its top face: steps at the faces, not between centres.
        right.stairs(np.asarray(truth).reshape(mesh.shape)[:, j, i], mesh.nodes_z, orientation="horizontal",
                     baseline=None, color="k", label="truth")
    right.set_xlabel(_STYLES["contrast"]["label"])
    _distance_axis(right, "y", "z, elevation", top - bottom)
    right.set_title(f"vertical at x = {mesh.centers_x[i]:.0f} m")
    right.legend(loc="best", fontsize=8)
    figure.suptitle(title)
    _save(figure, path)


def data_maps(path: Path, survey, predicted: np.ndarray) -> None:
    """Observed, predicted and residual gz (mGal, positive down) at the stations, and residual/std."""
    residual = np.asarray(predicted) - np.asarray(survey.gz)
    x_span, y_span = float(np.ptp(survey.x)), float(np.ptp(survey.y))
    figure, axes = plt.subplots(1, 3, figsize=(14, _panel_height(4.0, x_span, y_span) + 0.4), constrained_layout=True)
    limit = float(np.max(np.abs(np.concatenate([survey.gz, predicted])))) or 1.0
    # Markers shrink as stations crowd, so that a dense survey does not become one blot.
    size = float(np.clip(6000.0 / max(survey.n_stations, 1), 3.0, 14.0))
    removed = {"mean": " (mean removed)", "plane": " (regional plane removed)"}.get(survey.detrend, "")
    for axis, values, title in ((axes[0], survey.gz, f"observed gz{removed}"), (axes[1], predicted, "predicted gz")):
        image = axis.scatter(survey.x, survey.y, c=values, s=size, marker="s", cmap="RdBu_r", vmin=-limit, vmax=limit)
        axis.set_title(title)
    # Maps much wider than tall get their colour bars below, where they match the maps' size.
    where = dict(location="bottom", shrink=0.6, aspect=30) if y_span < 0.6 * x_span else dict(shrink=0.85)
    figure.colorbar(image, ax=axes[:2], label="gz (mGal, positive down)", **where)
    normalised = residual / survey.std
    bound = float(np.max(np.abs(normalised))) or 1.0
    image = axes[2].scatter(survey.x, survey.y, c=normalised, s=size, marker="s", cmap="PuOr_r", vmin=-bound, vmax=bound)
    axes[2].set_title(f"residual / std (RMS {np.sqrt(np.mean(residual**2)):.3g} mGal)")
    figure.colorbar(image, ax=axes[2], label="(predicted - observed) / std", **{**where, "aspect": 15})
    for axis in axes:
        _map_axes(axis, x_span, y_span)
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
    _distance_axis(axis, "y", "z, elevation", float(mesh.nodes_z[-1] - mesh.nodes_z[0]))
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
    axis.set_title("Training misfit (one line per member)" if history.ndim > 1 and history.shape[1] > 1
                   else "Training misfit")
    _save(figure, path)


def _vertical_exaggeration(mesh, widest: float = 2.5) -> float:
    """A whole-number vertical exaggeration that keeps an x-z section at most ``widest`` times
    wider than tall (1 when it already is): regional sections are many times wider than deep."""
    west, east, _, _, bottom, top = mesh.bounds
    ratio = (east - west) / max(top - bottom, 1e-12)
    return float(max(1, round(ratio / widest)))


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
    shown = np.concatenate([field[:, j, :].ravel() for _, field in sections])
    limit = float(np.nanmax(np.abs(shown))) or 1.0
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit)
    exaggeration = _vertical_exaggeration(mesh)
    columns = len(sections)
    west, east, _, _, bottom, top = mesh.bounds
    figure, axes = plt.subplots(2, columns, figsize=(4.0 * columns + 1.2, 7.2), squeeze=False, constrained_layout=True)
    image = None
    for axis, (label, field) in zip(axes[0], sections):
        image = axis.pcolormesh(mesh.nodes_x, mesh.nodes_z, field[:, j, :], cmap="RdBu_r", norm=norm)
        if truth is not None and label != "truth" and np.nanmax(truth) > 0:
            axis.contour(mesh.centers_x, mesh.centers_z, truth[:, j, :], levels=[0.5 * np.nanmax(truth)],
                         colors="k", linewidths=0.9)
        axis.axvline(mesh.centers_x[i], color="0.3", linestyle="--", linewidth=0.8)
        axis.set_aspect(exaggeration)
        axis.set_title(label if label == "truth" else f"{label}: mean")
        _distance_axis(axis, "x", "x, easting", east - west)
        _distance_axis(axis, "y", "z, elevation", top - bottom)
    figure.colorbar(image, ax=axes[0, :], label=_STYLES["contrast"]["label"], shrink=0.9)
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
        axis.set_xlabel(_STYLES["contrast"]["label"])
        _distance_axis(axis, "y", "z, elevation", top - bottom)
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
        axis.set_xlabel(_STYLES["contrast"]["label"])
        _distance_axis(axis, "y", "z, elevation", top - bottom)
        axis.legend(loc="lower right", fontsize=7)
    suffix = f"; vertical exaggeration x{exaggeration:g}" if exaggeration > 1 else ""
    figure.suptitle(f"Section y = {mesh.centers_y[j]:.0f} m through the strongest anomaly "
                    f"({'of the truth' if truth is not None else 'of the first probabilistic mean'}; "
                    f"dashed: the profile below{'; black: truth outline' if truth is not None else ''}{suffix})")
    _save(figure, path)


def drilling_map(path: Path, mesh, exceedance: np.ndarray, threshold: float) -> None:
    """Two maps (north up) for choosing where to drill, from ``exceedance`` = P(density >
    threshold) per cell (``(nz, ny, nx)`` or ``(cells,)``, probability):

    - per column, the largest exceedance probability over depth (0..1);
    - the depth in m below the mesh top to the top of the shallowest cell whose exceedance
      passes 0.5 (grey where no cell of the column does).
    """
    exceedance = np.asarray(exceedance, np.float64).reshape(mesh.shape)
    top = mesh.nodes_z[-1]
    peak = np.nanmax(exceedance, axis=0)
    likely = exceedance > 0.5  # (nz, ny, nx), bottom layer first
    from_top = likely[::-1]
    any_likely = from_top.any(axis=0)
    first = np.argmax(from_top, axis=0)  # index from the top of the shallowest likely cell
    cell_tops = mesh.nodes_z[1:][::-1]  # the top face of each layer, top layer first
    depth = np.where(any_likely, top - cell_tops[first], np.nan)

    west, east, south, north, _, _ = mesh.bounds
    figure, axes = plt.subplots(1, 2, figsize=(12, _panel_height(5.0, east - west, north - south) + 0.5),
                                constrained_layout=True)
    probability = axes[0].pcolormesh(mesh.nodes_x, mesh.nodes_y, peak, cmap=_STYLES["probability"]["cmap"],
                                     vmin=0.0, vmax=1.0)
    figure.colorbar(probability, ax=axes[0], label="largest P over depth", shrink=0.9)
    axes[0].set_title(f"Largest P(density > {threshold:g} kg/m$^3$) in each column")
    cmap = matplotlib.colormaps["viridis_r"].with_extremes(bad="0.85")  # shallow targets bright
    top_depth = float(top - mesh.nodes_z[0])
    scale, unit = (1000.0, "km") if top_depth > _KM_SPAN else (1.0, "m")
    depth_image = axes[1].pcolormesh(mesh.nodes_x, mesh.nodes_y, np.ma.masked_invalid(depth / scale), cmap=cmap,
                                     vmin=0.0, vmax=top_depth / scale)
    figure.colorbar(depth_image, ax=axes[1], label=f"depth below the mesh top, z = {top:.0f} m ({unit})", shrink=0.9)
    axes[1].set_title("Depth to the first cell with P > 0.5 (grey: none)")
    for axis in axes:
        _map_axes(axis, east - west, north - south)
    figure.suptitle(f"Drilling map: where and how deep density contrast > {threshold:g} kg/m$^3$ is likely")
    _save(figure, path)
