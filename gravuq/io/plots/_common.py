"""What every figure shares: styles, atomic saving, distance axes, panel sizes.

Conventions: map views are north up with x (easting) to the right, in metres (km past 20 km);
contrast maps use a diverging scale centred on 0 kg/m^3, std and probability sequential scales;
every colorbar names its unit.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from .. import atomic_path  # noqa: E402

STYLES = {
    "contrast": dict(cmap="RdBu_r", label="density contrast (kg/m$^3$)"),
    "std": dict(cmap="viridis", label="posterior std (kg/m$^3$)"),
    "probability": dict(cmap="magma", label="probability", vmin=0.0, vmax=1.0),
    "resolution": dict(cmap="cividis", label="resolution (1 - var/prior var)", vmin=0.0, vmax=1.0),
}


def save(figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(figure)


def colour_norm(kind: str, values: np.ndarray):
    style = STYLES[kind]
    if kind == "contrast":
        limit = float(np.nanmax(np.abs(values))) or 1.0
        return TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit)
    low = style.get("vmin", float(np.nanmin(values)))
    high = style.get("vmax", float(np.nanmax(values)))
    return matplotlib.colors.Normalize(low, high if high > low else low + 1.0)


#: Above this span (m) distance axes are labelled in km: six-digit metre ticks run into each other.
KM_SPAN = 20_000.0


def distance_axis(axis, which: str, name: str, span: float) -> None:
    """Label the ``which`` ("x" or "y") axis of ``axis`` as ``name`` in m, or in km when the
    plotted ``span`` (m) exceeds 20 km (the data stay in m; only the ticks are divided)."""
    target = axis.xaxis if which == "x" else axis.yaxis
    unit = "m"
    if span > KM_SPAN:
        target.set_major_formatter(FuncFormatter(lambda value, _: f"{value / 1000:g}"))
        unit = "km"
    target.set_label_text(f"{name} ({unit})")


def map_axes(axis, x_span: float, y_span: float) -> None:
    """A map view: north up, x east, equal scales, distance labels."""
    axis.set_aspect("equal")
    distance_axis(axis, "x", "x, easting", x_span)
    distance_axis(axis, "y", "y, northing", y_span)


def panel_height(width: float, x_span: float, y_span: float) -> float:
    """Inches of height for a map panel ``width`` inches wide with equal scales, plus labels."""
    return width * float(np.clip(y_span / max(x_span, 1e-12), 0.25, 1.5)) + 0.9


def vertical_exaggeration(mesh, widest: float = 2.5) -> float:
    """A whole-number vertical exaggeration that keeps an x-z section at most ``widest`` times
    wider than tall (1 when it already is): regional sections are many times wider than deep."""
    west, east, _, _, bottom, top = mesh.bounds
    ratio = (east - west) / max(top - bottom, 1e-12)
    return float(max(1, round(ratio / widest)))
