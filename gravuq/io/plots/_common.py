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


# -- what a map of few draws can show ----------------------------------------------------------
#: A cell is "not resolved" when its posterior sd is at least this fraction of its prior sd.
UNRESOLVED_RATIO = 0.95


def strongest_cell(mesh, field: np.ndarray) -> tuple[int, int, int]:
    """``(k, j, i)`` of the largest |field| (kg/m^3, ``(nz, ny, nx)`` or ``(cells,)``); where several
    cells come within 5 % of the largest (a uniform body), the one nearest their centroid, so that
    a section cuts through the middle of a body rather than its first corner."""
    field = np.abs(np.asarray(field, np.float64).reshape(mesh.shape))
    strongest = np.argwhere(field >= 0.95 * np.nanmax(field))
    centroid = strongest.mean(axis=0)
    k, j, i = strongest[np.argmin(((strongest - centroid) ** 2).sum(axis=1))]
    return int(k), int(j), int(i)


def probability_bands(draws: int | None) -> int:
    """How many equal bands a probability map of ``draws`` Monte-Carlo draws can show.

    The fraction of ``n`` draws above a threshold has a standard error of at most
    ``0.5 / sqrt(n)`` (at p = 0.5), so bands ``1 / sqrt(n)`` wide (two standard errors) are the
    finest whose neighbours differ by more than the sampling noise: 3 bands for 10 draws, 4 for
    20, 10 for 100 or more. Exact probabilities (``draws`` None) get 10 bands of 0.1.
    """
    if draws is None:
        return 10
    return int(np.clip(np.floor(np.sqrt(draws)), 2, 10))


def probability_norm(bands: int):
    """A banded (discrete) colour norm on [0, 1] with ``bands`` equal bands."""
    boundaries = np.linspace(0.0, 1.0, bands + 1)
    cmap = matplotlib.colormaps[STYLES["probability"]["cmap"]].resampled(bands)
    return matplotlib.colors.BoundaryNorm(boundaries, bands), cmap, boundaries


def monte_carlo_note(kind: str, draws: int | None) -> str:
    """One line saying how far a map of ``kind`` ("probability", "std", "resolution") from
    ``draws`` Monte-Carlo draws can be trusted; for exact moments (``draws`` None) says so.

    Standard errors: a probability ``sqrt(p (1 - p) / n)`` (largest at p = 0.5); a sample sd
    about ``1 / sqrt(2 (n - 1))`` of itself; a variance ratio ``sqrt(2 / (n - 1))``, so resolution
    below that is indistinguishable from 0.
    """
    if draws is None:
        return "exact Gaussian moments: no sampling error"
    n = max(int(draws), 2)
    if kind == "probability":
        error = 0.5 / np.sqrt(n)
        return (f"{n} draws: each probability ±{error:.2g} (1 sd at p = 0.5); "
                f"±0.05 needs 100 draws")
    if kind == "std":
        return f"{n} draws: each std ±{100 / np.sqrt(2 * (n - 1)):.0f} % (1 sd of a sample sd)"
    if kind == "resolution":
        return (f"{n} draws: resolution below {np.sqrt(2 / (n - 1)):.2f} is not distinguishable from 0 "
                "(1 sd of the sample variance ratio)")
    raise ValueError(kind)


def unresolved_ratio(draws: int | None) -> float:
    """The sd ratio (posterior / prior) at or above which a cell counts as "not resolved".

    With exact moments (``draws`` None) it is :data:`UNRESOLVED_RATIO` (within 5 % of the prior
    sd). A sample sd of ``n`` draws is itself uncertain (its variance ratio by about
    ``sqrt(2 / (n - 1))``), so a 5 % rule would mark a random half of the unconstrained cells;
    with draws the rule is "not distinguishable from the prior sd": ratio at least
    ``sqrt(1 - sqrt(2 / (n - 1)))`` (0.73 for 10 draws, 0.93 for 100), never above 0.95.
    """
    if draws is None:
        return UNRESOLVED_RATIO
    floor = float(np.sqrt(2.0 / max(int(draws) - 1, 1)))
    return float(min(UNRESOLVED_RATIO, np.sqrt(max(0.0, 1.0 - floor))))


def unresolved_label(draws: int | None) -> str:
    """The legend line of the hatching, naming the rule :func:`unresolved_ratio` applied."""
    if draws is None:
        return "hatched grey: not resolved (posterior sd within 5 % of the prior sd)"
    return (f"hatched grey: not resolved (sd > {unresolved_ratio(draws):.2f} x prior sd: with {draws} draws, "
            "not distinguishable from the prior)")


def mark_unresolved(axis, x_nodes: np.ndarray, y_nodes: np.ndarray, mask: np.ndarray) -> None:
    """Grey hatching over the cells of ``mask`` (2-D, True = not resolved) on a map or section:
    the colour beneath stays readable, the hatching says the data did not change it."""
    if not np.any(mask):
        return
    from matplotlib.collections import PolyCollection

    # One box per run of consecutive masked cells along a row, not one per cell: the same
    # picture (the hatching is aligned to the page, and the boxes do not overlap), and a deep
    # map of the real survey's 88 x 38 cells, nearly all unresolved, then draws 38 hatched boxes
    # instead of 3344 (measured: its figures took 8.4 s of a run's 13 s of outputs).
    steps = np.diff(np.pad(np.asarray(mask, bool), ((0, 0), (1, 1))).astype(np.int8), axis=1)
    rows, starts = np.nonzero(steps == 1)
    _, ends = np.nonzero(steps == -1)  # row-major order: pairs with the starts
    boxes = [((x_nodes[i], y_nodes[j]), (x_nodes[k], y_nodes[j]), (x_nodes[k], y_nodes[j + 1]),
              (x_nodes[i], y_nodes[j + 1])) for j, i, k in zip(rows, starts, ends)]
    axis.add_collection(PolyCollection(boxes, facecolors=(0.5, 0.5, 0.5, 0.35), edgecolors=(1.0, 1.0, 1.0, 0.75),
                                       linewidths=0.0, hatch="////"))


def outline_cells(axis, x_nodes: np.ndarray, y_nodes: np.ndarray, mask: np.ndarray, colour: str = "k",
                  width: float = 1.3) -> None:
    """Draw the boundary of the cells of ``mask`` (2-D ``(rows, columns)`` over the nodes
    ``x_nodes`` (columns + 1) and ``y_nodes`` (rows + 1)) along the cell faces: the outline of
    a body exactly as the mesh holds it, not a contour smoothed between cell centres."""
    from matplotlib.collections import LineCollection

    mask = np.asarray(mask, bool)
    if not mask.any():
        return
    padded = np.pad(mask, 1)
    segments = []
    # Faces between horizontally adjacent cells that differ: vertical segments at x_nodes[i].
    rows, columns = np.nonzero(padded[1:-1, 1:] != padded[1:-1, :-1])
    segments += [((x_nodes[i], y_nodes[j]), (x_nodes[i], y_nodes[j + 1])) for j, i in zip(rows, columns)]
    rows, columns = np.nonzero(padded[1:, 1:-1] != padded[:-1, 1:-1])
    segments += [((x_nodes[i], y_nodes[j]), (x_nodes[i + 1], y_nodes[j])) for j, i in zip(rows, columns)]
    axis.add_collection(LineCollection(segments, colors=colour, linewidths=width))


#: The colour of the truth outline on each kind of map: black on the light diverging scale, cyan
#: where the scale is dark at its low end.
OUTLINE_COLOURS = {"contrast": "k", "std": "cyan", "probability": "cyan", "resolution": "cyan"}
