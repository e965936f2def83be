"""Map views: depth slices, observed/predicted data and residuals, the drilling map."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import matplotlib
import numpy as np

from ._common import (KM_SPAN, OUTLINE_COLOURS, STYLES, colour_norm, map_axes, mark_unresolved, outline_cells,
                      panel_height, plt, probability_bands, probability_norm, save, unresolved_label)

def depth_slices(path: Path, mesh, field: np.ndarray, kind: str, title: str, count: int = 6, *,
                 scale_with: np.ndarray | None = None, outline: np.ndarray | None = None,
                 outline_level: float | None = None, unresolved: np.ndarray | None = None,
                 draws: int | None = None, note: str | None = None) -> None:
    """Map views of ``field`` (``(nz, ny, nx)``) at ``count`` depths, one shared colour scale.

    Parameters
    ----------
    kind
        ``"contrast"`` (kg/m^3, diverging about 0), ``"std"`` (kg/m^3), ``"probability"`` or
        ``"resolution"`` (both 0..1).
    scale_with
        Another field (kg/m^3) the colour scale must also span: the truth beside a mean, so that
        ``mean_slices.png`` and ``truth_slices.png`` share one scale.
    outline, outline_level
        A field (the truth, kg/m^3) contoured in black at ``outline_level`` (the threshold) on
        every slice.
    unresolved
        Boolean ``(nz, ny, nx)``: cells hatched grey as "not resolved" (:func:`unresolved_ratio`).
    draws
        The number of Monte-Carlo draws behind the map (None: exact moments): sets how many bands
        a ``"probability"`` colour bar has (:func:`probability_bands`) and names the rule of the
        hatching.
    note
        A line under the title: what the map can be trusted for (the Monte-Carlo error).
    """
    field = np.asarray(field).reshape(mesh.shape)
    layers = np.unique(np.linspace(mesh.shape[0] - 1, 0, min(count, mesh.shape[0])).round().astype(int))[::-1]
    columns = min(3, layers.size)
    rows = -(-layers.size // columns)
    west, east, south, north, bottom, top = mesh.bounds
    height = panel_height(3.3, east - west, north - south)  # a map is narrower than its 4.2 in cell
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, height * rows + (0.3 if note else 0.0)),
                                squeeze=False, constrained_layout=True)
    cmap = STYLES[kind]["cmap"]
    boundaries = None
    if kind == "probability":
        norm, cmap, boundaries = probability_norm(probability_bands(draws))
    else:
        norm = colour_norm(kind, field if scale_with is None else np.concatenate([field.ravel(),
                                                                                   np.ravel(scale_with)]))
    extend = "neither"
    if kind == "std":
        # A few extreme cells (where a body's edge is uncertain) would wash out the rest.
        high = float(np.nanpercentile(field, 99.5))
        if high < float(np.nanmax(field)) and high > 0:
            norm, extend = matplotlib.colors.Normalize(0.0, high), "max"
    if outline is not None:
        outline = np.asarray(outline, np.float64).reshape(mesh.shape)
        if outline_level is None or not (np.nanmin(outline) < outline_level < np.nanmax(outline)):
            outline = None  # nothing to outline at that level
    if unresolved is not None:
        unresolved = np.asarray(unresolved, bool).reshape(mesh.shape)
    for axis, layer in zip(axes.flat, layers):
        image = axis.pcolormesh(mesh.nodes_x, mesh.nodes_y, field[layer], cmap=cmap, norm=norm)
        if unresolved is not None:
            mark_unresolved(axis, mesh.nodes_x, mesh.nodes_y, unresolved[layer])
        if outline is not None:
            outline_cells(axis, mesh.nodes_x, mesh.nodes_y, outline[layer] > outline_level, OUTLINE_COLOURS[kind])
        # The layer's extent, and its depth below the mesh top: what a driller reads.
        upper, lower = mesh.nodes_z[layer + 1], mesh.nodes_z[layer]
        if mesh.has_topography:  # depth varies with the ground: the elevation alone (air cells blank)
            axis.set_title(f"z = {lower:.0f}..{upper:.0f} m (blank: above the ground)", fontsize=9)
        else:
            axis.set_title(f"z = {lower:.0f}..{upper:.0f} m (depth {top - upper:.0f}..{top - lower:.0f} m)",
                           fontsize=9)
        map_axes(axis, east - west, north - south)
    for axis in list(axes.flat)[layers.size:]:
        axis.set_visible(False)
    bar = figure.colorbar(image, ax=axes, label=STYLES[kind]["label"], shrink=0.8, extend=extend,
                          **({"ticks": boundaries} if boundaries is not None else {}))
    if boundaries is not None:
        bar.ax.set_yticklabels([f"{value:.2g}" for value in boundaries])
    legend = []
    if outline is not None:
        colour = {"k": "black"}.get(OUTLINE_COLOURS[kind], OUTLINE_COLOURS[kind])
        legend.append(f"{colour} outline: truth > {outline_level:g} kg/m$^3$")
    if unresolved is not None and unresolved.any():
        legend.append(unresolved_label(draws))
    lines = [title] + ([note] if note else []) + (["; ".join(legend)] if legend else [])
    figure.suptitle("\n".join(lines), fontsize=11)
    save(figure, path)


def data_maps(path: Path, survey, predicted: np.ndarray, component: str = "gz") -> None:
    """Observed, predicted and residual gz (mGal, positive down) at the stations, and residual/std;
    with several measured components (``survey.components``) those of ``component`` (gradients
    in Eotvos, Harmonica's signs), ``predicted`` being the whole data vector."""
    components = tuple(getattr(survey, "components", ("gz",)))
    if components != ("gz",):
        index, n = components.index(component), survey.n_stations
        part = slice(index * n, (index + 1) * n)
        unit = "mGal, positive down" if component == "gz" else "Eotvos"
        survey = _Block(survey.x, survey.y, np.asarray(survey.gz)[part], np.asarray(survey.std)[part], n,
                        survey.detrend if component == "gz" else "none")
        predicted = np.asarray(predicted)[part]
        return _data_maps(path, survey, predicted, component, unit)
    return _data_maps(path, survey, predicted, "gz", "mGal, positive down")


class _Block(NamedTuple):
    """One component's data at the stations, shaped like a one-component survey for the maps."""

    x: np.ndarray
    y: np.ndarray
    gz: np.ndarray
    std: np.ndarray
    n_stations: int
    detrend: str


def _data_maps(path: Path, survey, predicted: np.ndarray, name: str, unit: str) -> None:
    residual = np.asarray(predicted) - np.asarray(survey.gz)
    x_span, y_span = float(np.ptp(survey.x)), float(np.ptp(survey.y))
    figure, axes = plt.subplots(1, 3, figsize=(14, panel_height(4.0, x_span, y_span) + 0.4), constrained_layout=True)
    limit = float(np.max(np.abs(np.concatenate([survey.gz, predicted])))) or 1.0
    # Markers shrink as stations crowd, so that a dense survey does not become one blot.
    size = float(np.clip(6000.0 / max(survey.n_stations, 1), 3.0, 14.0))
    removed = {"mean": " (mean removed)", "plane": " (regional plane removed)"}.get(survey.detrend, "")
    for axis, values, title in ((axes[0], survey.gz, f"observed {name}{removed}"),
                                (axes[1], predicted, f"predicted {name}")):
        image = axis.scatter(survey.x, survey.y, c=values, s=size, marker="s", cmap="RdBu_r", vmin=-limit, vmax=limit)
        axis.set_title(title)
    # Maps much wider than tall get their colour bars below, where they match the maps' size.
    where = dict(location="bottom", shrink=0.6, aspect=30) if y_span < 0.6 * x_span else dict(shrink=0.85)
    figure.colorbar(image, ax=axes[:2], label=f"{name} ({unit})", **where)
    normalised = residual / survey.std
    bound = float(np.max(np.abs(normalised))) or 1.0
    image = axes[2].scatter(survey.x, survey.y, c=normalised, s=size, marker="s", cmap="PuOr_r", vmin=-bound, vmax=bound)
    axes[2].set_title(f"residual / std (RMS {np.sqrt(np.mean(residual**2)):.3g} {unit.split(',')[0]})")
    figure.colorbar(image, ax=axes[2], label="(predicted - observed) / std", **{**where, "aspect": 15})
    for axis in axes:
        map_axes(axis, x_span, y_span)
    save(figure, path)


def drilling_map(path: Path, mesh, exceedance: np.ndarray, threshold: float, draws: int | None = None,
                 note: str | None = None) -> None:
    """Two maps (north up) for choosing where to drill, from ``exceedance`` = P(density >
    threshold) per cell (``(nz, ny, nx)`` or ``(cells,)``, probability); ``draws`` the number of
    Monte-Carlo draws behind it (None: exact), which sets the bands of the probability scale, and
    ``note`` a line on its sampling error:

    - per column, the largest exceedance probability over depth (0..1);
    - the depth in m below the mesh top (with topography: below the ground of the column, 0
      for a cell that reaches above it) to the top of the shallowest cell whose exceedance
      passes 0.5 (grey where no cell of the column does).

    Air cells (NaN, above the ground) are never likely.
    """
    exceedance = np.asarray(exceedance, np.float64).reshape(mesh.shape)
    top = mesh.nodes_z[-1]
    peak = np.nanmax(exceedance, axis=0)
    likely = exceedance > 0.5  # (nz, ny, nx), bottom layer first
    from_top = likely[::-1]
    any_likely = from_top.any(axis=0)
    first = np.argmax(from_top, axis=0)  # index from the top of the shallowest likely cell
    cell_tops = mesh.nodes_z[1:][::-1]  # the top face of each layer, top layer first
    ground = mesh.ground if mesh.has_topography else top
    depth = np.where(any_likely, np.maximum(ground - cell_tops[first], 0.0), np.nan)

    west, east, south, north, _, _ = mesh.bounds
    figure, axes = plt.subplots(1, 2, figsize=(12, panel_height(5.0, east - west, north - south) + 0.5),
                                constrained_layout=True)
    norm, bands_cmap, boundaries = probability_norm(probability_bands(draws))
    probability = axes[0].pcolormesh(mesh.nodes_x, mesh.nodes_y, peak, cmap=bands_cmap, norm=norm)
    bar = figure.colorbar(probability, ax=axes[0], label="largest P over depth", shrink=0.9, ticks=boundaries)
    bar.ax.set_yticklabels([f"{value:.2g}" for value in boundaries])
    axes[0].set_title(f"Largest P(density > {threshold:g} kg/m$^3$) in each column")
    cmap = matplotlib.colormaps["viridis_r"].with_extremes(bad="0.85")  # shallow targets bright
    top_depth = float(top - mesh.nodes_z[0])
    scale, unit = (1000.0, "km") if top_depth > KM_SPAN else (1.0, "m")
    depth_image = axes[1].pcolormesh(mesh.nodes_x, mesh.nodes_y, np.ma.masked_invalid(depth / scale), cmap=cmap,
                                     vmin=0.0, vmax=top_depth / scale)
    below = "the ground" if mesh.has_topography else f"the mesh top, z = {top:.0f} m"
    figure.colorbar(depth_image, ax=axes[1], label=f"depth below {below} ({unit})", shrink=0.9)
    axes[1].set_title("Depth to the first cell with P > 0.5 (grey: none)")
    for axis in axes:
        map_axes(axis, east - west, north - south)
    figure.suptitle(f"Drilling map: where and how deep density contrast > {threshold:g} kg/m$^3$ is likely"
                    + (f"\n{note}" if note else ""))
    save(figure, path)
