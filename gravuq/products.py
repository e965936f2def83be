"""What a finished run is for: predictions at new stations, drill-hole logs, and ranked collars.

Everything here starts from a results directory written by ``gravuq ensemble`` (``summary.nc``
and ``posterior.nc``, SPEC section 4) or ``gravuq invert`` (``summary.nc`` only: its mean is
treated as a single draw, so every spread is NaN, as in its summary).

Conventions (SPEC section 1): x easting, y northing, z elevation positive up, metres; density
contrast in kg/m^3 on ``(nz, ny, nx)`` meshes flattened in C order; gz in mGal (1 mGal =
1e-5 m/s^2), positive downward. Drill holes: azimuth in degrees clockwise from north (90 =
east), dip in degrees below the horizontal (positive down, 90 = vertical down); a hole's unit
direction is ``(sin(az) cos(dip), cos(az) cos(dip), -sin(dip))``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from .errors import InputError
from .io import atomic_path, mesh_from_dataset, write_text_atomic
from .mesh import TensorMesh
from .posterior import Q_HIGH, Q_LOW

SUMMARY_FILE = "summary.nc"
POSTERIOR_FILE = "posterior.nc"
#: Draws pushed through the forward operator at once (bounds the memory of a prediction).
_DRAW_BATCH = 128


# -- results -----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Results:
    """A run's results, read back from its directory.

    Attributes
    ----------
    directory
        The results directory.
    mesh
        The tensor mesh of the models.
    summary
        ``summary.nc`` as an xarray Dataset (dims ``(z, y, x)``; mean, std, q05, q95 in kg/m^3,
        exceedance, resolution), loaded into memory.
    draws
        Posterior draws of the density contrast, ``(draws, cells)`` float64, kg/m^3, cells flat
        in C order of ``(nz, ny, nx)``; chains are stacked. Without ``posterior.nc``, one row:
        the summary mean.
    threshold
        The run's exceedance threshold, kg/m^3 (``summary.nc`` attribute ``threshold``).
    method
        The method that produced the results (``summary.nc`` attribute, or ``"unknown"``).
    detrend
        ``"none"``, ``"mean"`` or ``"plane"``: the regional removed before inversion.
    trend_coefficients
        ``(c0, cx, cy)`` in mGal, mGal/m, mGal/m: regional = ``c0 + cx (x - x0) + cy (y - y0)``.
    trend_origin
        ``(x0, y0)`` in m.
    has_posterior
        Whether the draws came from ``posterior.nc``.
    """

    directory: Path
    mesh: TensorMesh
    summary: xr.Dataset
    draws: np.ndarray
    threshold: float
    method: str
    detrend: str = "none"
    trend_coefficients: tuple[float, float, float] = (0.0, 0.0, 0.0)
    trend_origin: tuple[float, float] = (0.0, 0.0)
    has_posterior: bool = False

    @property
    def n_draws(self) -> int:
        return int(self.draws.shape[0])

    def regional_at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The regional trend removed before inversion, at easting ``x`` and northing ``y`` (m),
        in mGal (positive down); zeros for ``detrend = "none"``."""
        from .survey import _evaluate_trend  # the one place the trend formula lives

        return _evaluate_trend(self.trend_coefficients, self.trend_origin, x, y)


def _open_group(path: Path, group: str | None) -> xr.Dataset:
    try:
        with xr.open_dataset(path, group=group, engine="h5netcdf") as dataset:
            return dataset.load()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except Exception as err:  # the engines raise many types for a file that is not NetCDF
        where = f" (group '{group}')" if group else ""
        raise InputError(f"{path}: cannot read as NetCDF{where} ({type(err).__name__}: {err})") from None


def _trend_from_attrs(attrs: dict) -> tuple[str, tuple[float, float, float], tuple[float, float]] | None:
    if "trend_coefficients" not in attrs:
        return None
    coefficients = tuple(float(c) for c in np.ravel(attrs["trend_coefficients"]))
    origin = tuple(float(c) for c in np.ravel(attrs.get("trend_origin", (0.0, 0.0))))
    if len(coefficients) != 3 or len(origin) != 2:
        return None
    return str(attrs.get("detrend", "plane")), coefficients, origin


def load_results(directory: str | Path) -> Results:
    """Read a results directory written by ``gravuq ensemble`` or ``gravuq invert``.

    Parameters
    ----------
    directory
        The folder holding ``summary.nc`` and, for probabilistic runs, ``posterior.nc``.

    Returns
    -------
    Results
        Mesh, summary, draws ``(draws, cells)`` in kg/m^3 (the summary mean as one draw when
        there is no ``posterior.nc``), threshold (kg/m^3) and the regional trend removed before
        inversion (read from ``posterior.nc``'s ``constant_data`` attributes, else from
        ``summary.nc``'s attributes, else none).

    Raises
    ------
    InputError
        The folder or ``summary.nc`` is missing or unreadable, ``summary.nc`` lacks ``mean``,
        the cell boundaries or ``threshold``, or ``posterior.nc`` does not match its mesh.
    """
    directory = Path(directory)
    if not directory.exists():
        raise InputError(f"{directory}: results directory not found (expected the [output] directory of a "
                         "gravuq ensemble or invert run, holding summary.nc)")
    if not directory.is_dir():
        raise InputError(f"{directory}: expected a results directory (holding summary.nc), found a file")
    summary_path = directory / SUMMARY_FILE
    if not summary_path.is_file():
        raise InputError(f"{summary_path}: file not found; is {directory} the output directory of a gravuq "
                         "ensemble or invert run?")
    summary = _open_group(summary_path, None)
    for name in ("mean", "x_node", "y_node", "z_node"):
        if name not in summary.variables:
            raise InputError(f"{summary_path}: no '{name}' (expected a summary.nc written by gravuq, with the mean "
                             "and the cell boundaries x_node, y_node, z_node)")
    if "threshold" not in summary.attrs:
        raise InputError(f"{summary_path}: no 'threshold' attribute (the [output] threshold, kg/m^3)")
    mesh = mesh_from_dataset(summary)
    mean = summary["mean"]
    if set(mean.dims) != {"z", "y", "x"} or mean.transpose("z", "y", "x").shape != mesh.shape:
        raise InputError(f"{summary_path}: 'mean' has dims {mean.dims} and shape {mean.shape}, expected "
                         f"(z, y, x) = {mesh.shape} from the cell boundaries")
    trend = _trend_from_attrs(summary.attrs)

    posterior_path = directory / POSTERIOR_FILE
    if posterior_path.is_file():
        posterior = _open_group(posterior_path, "posterior")
        if "density" not in posterior:
            raise InputError(f"{posterior_path}: group 'posterior' has no variable 'density'")
        density = posterior["density"]
        if set(density.dims) != {"chain", "draw", "z", "y", "x"}:
            raise InputError(f"{posterior_path}: posterior 'density' has dims {density.dims}, expected "
                             "(chain, draw, z, y, x)")
        density = density.transpose("chain", "draw", "z", "y", "x")
        if density.shape[2:] != mesh.shape:
            raise InputError(f"{posterior_path}: posterior 'density' has (z, y, x) shape {density.shape[2:]}, "
                             f"but {summary_path} has {mesh.shape}")
        draws = np.asarray(density.values, np.float64).reshape(-1, mesh.n_cells)
        try:
            constant_attrs = _open_group(posterior_path, "constant_data").attrs
        except InputError:  # a posterior written without station data: no trend recorded there
            constant_attrs = {}
        trend = _trend_from_attrs(constant_attrs) or trend
        has_posterior = True
    else:
        draws = np.asarray(mean.transpose("z", "y", "x").values, np.float64).reshape(1, -1)
        has_posterior = False
    detrend, coefficients, origin = trend or ("none", (0.0, 0.0, 0.0), (0.0, 0.0))
    return Results(directory, mesh, summary, draws, float(summary.attrs["threshold"]),
                   str(summary.attrs.get("method", "unknown")), detrend, coefficients, origin, has_posterior)


# -- predictions at new stations ---------------------------------------------------------------
@dataclass(frozen=True)
class Prediction:
    """Posterior-predictive gz of the noise-free field at stations.

    ``x, y, z`` station coordinates (m, z up); ``gz_mean``, ``gz_std``, ``gz_q05``, ``gz_q95``
    in mGal, positive downward, regional trend included; ``regional`` the trend added (mGal).
    Each ``(station,)``. The spread is NaN for a single model (no posterior).
    """

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    gz_mean: np.ndarray
    gz_std: np.ndarray
    gz_q05: np.ndarray
    gz_q95: np.ndarray
    regional: np.ndarray


def predict(results: Results, stations: np.ndarray) -> Prediction:
    """Posterior-predictive gz of the noise-free field at new stations.

    Each draw is pushed through the forward operator (:func:`gravuq.forward.make_operator`,
    float64) and the regional trend removed before inversion is added back, so that the numbers
    compare directly with observed data.

    Parameters
    ----------
    results
        From :func:`load_results`.
    stations
        ``(n, 3)`` station coordinates x, y, z in m, z elevation positive up.

    Returns
    -------
    Prediction
        Mean, std (ddof = 1, as ``summary.nc``) and the 5 % and 95 % quantiles over draws of gz,
        mGal positive downward. With a single draw (no ``posterior.nc``) std and quantiles are
        NaN.
    """
    import jax.numpy as jnp

    from .forward import make_operator

    stations = np.asarray(stations, np.float64).reshape(-1, 3)
    if stations.shape[0] == 0:
        raise InputError("predict: no stations given")
    operator, _ = make_operator(results.mesh, stations, mode="auto", dtype="float64")
    draws = results.draws
    gz = np.concatenate([np.asarray(operator.forward(jnp.asarray(draws[start:start + _DRAW_BATCH], jnp.float64)),
                                    np.float64)
                         for start in range(0, draws.shape[0], _DRAW_BATCH)], axis=0)
    regional = results.regional_at(stations[:, 0], stations[:, 1])
    gz = gz + regional[None, :]
    mean = gz.mean(axis=0)
    if gz.shape[0] > 1:
        std = gz.std(axis=0, ddof=1)
        q05, q95 = np.quantile(gz, [Q_LOW, Q_HIGH], axis=0)
    else:
        std = q05 = q95 = np.full_like(mean, np.nan)
    return Prediction(stations[:, 0].copy(), stations[:, 1].copy(), stations[:, 2].copy(), mean, std, q05, q95,
                      regional)


def _csv_text(header: Sequence[str], columns: Sequence[Sequence]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in zip(*columns):
        writer.writerow([repr(float(value)) if isinstance(value, (float, np.floating)) else value for value in row])
    return buffer.getvalue()


def write_predictions(path: str | Path, prediction: Prediction) -> Path:
    """Write a :class:`Prediction` as CSV (atomically): columns x, y, z (m), gz_mean, gz_std,
    gz_q05, gz_q95 (mGal, positive downward, regional included), at full float64 precision."""
    names = ("x", "y", "z", "gz_mean", "gz_std", "gz_q05", "gz_q95")
    columns = [np.asarray(getattr(prediction, name), np.float64).tolist() for name in names]
    write_text_atomic(path, _csv_text(names, columns))
    return Path(path)


# -- drill holes -------------------------------------------------------------------------------
def _check_hole(collar, azimuth_deg: float, dip_deg: float, length_m: float, step_m: float, where: str) -> None:
    values = np.asarray(collar, np.float64).ravel()
    if values.size != 3 or not np.all(np.isfinite(values)):
        raise InputError(f"{where}collar: expected three finite numbers x, y, z (m), found {list(np.ravel(collar))}")
    if not math.isfinite(azimuth_deg):
        raise InputError(f"{where}azimuth: expected a finite angle in degrees clockwise from north, found {azimuth_deg}")
    if not (math.isfinite(dip_deg) and -90.0 <= dip_deg <= 90.0):
        raise InputError(f"{where}dip: expected degrees below horizontal in [-90, 90] (90 = vertical down), "
                         f"found {dip_deg}")
    if not (math.isfinite(length_m) and length_m > 0):
        raise InputError(f"{where}length: expected a hole length > 0 m, found {length_m}")
    if not (math.isfinite(step_m) and step_m > 0):
        raise InputError(f"{where}step: expected a sample spacing > 0 m, found {step_m}")
    if length_m / step_m > 1e7:
        raise InputError(f"{where}step: {step_m} m gives {length_m / step_m:.3g} samples over {length_m} m; "
                         "expected at most 1e7 (use a larger step)")


def hole_direction(azimuth_deg: float, dip_deg: float) -> np.ndarray:
    """Unit vector ``(east, north, up)`` along a hole: ``(sin(az) cos(dip), cos(az) cos(dip),
    -sin(dip))`` with azimuth clockwise from north and dip below horizontal (degrees)."""
    azimuth, dip = math.radians(azimuth_deg), math.radians(dip_deg)
    return np.array([math.sin(azimuth) * math.cos(dip), math.cos(azimuth) * math.cos(dip), -math.sin(dip)])


def hole_samples(collar, azimuth_deg: float, dip_deg: float, length_m: float, step_m: float):
    """Sample intervals along a straight hole.

    The hole ``[0, length_m]`` (m along the hole from the collar) is cut into intervals of
    ``step_m`` (the last one shorter when ``length_m`` is not a multiple); each is sampled at
    its midpoint, so that a sum of interval lengths measures length along the hole exactly.

    Returns ``(depth_from, depth_to, depth, points)``: interval ends and midpoints (m along the
    hole, each ``(samples,)``) and the midpoints' ``(samples, 3)`` x, y, z in m (z up).
    """
    _check_hole(collar, azimuth_deg, dip_deg, length_m, step_m, "")
    count = max(1, math.ceil(length_m / step_m - 1e-9))
    edges = np.minimum(np.arange(count + 1) * step_m, length_m)
    edges[-1] = length_m
    depth_from, depth_to = edges[:-1], edges[1:]
    depth = 0.5 * (depth_from + depth_to)
    points = np.asarray(collar, np.float64).reshape(1, 3) + depth[:, None] * hole_direction(azimuth_deg, dip_deg)[None, :]
    return depth_from, depth_to, depth, points


def cells_at(mesh: TensorMesh, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cell containing each point.

    ``points`` ``(n, 3)`` x, y, z in m. Returns ``(index, inside)``: the flat C-order index into
    ``(nz, ny, nx)`` (0 where outside) and whether the point lies in the mesh. A point on a face
    between two cells belongs to the cell above it (east, north, up); the mesh's outer faces
    count as inside.
    """
    points = np.asarray(points, np.float64).reshape(-1, 3)
    inside = np.ones(points.shape[0], bool)
    indices = []
    for axis, nodes in enumerate((mesh.nodes_x, mesh.nodes_y, mesh.nodes_z)):
        coordinate = points[:, axis]
        inside &= (coordinate >= nodes[0]) & (coordinate <= nodes[-1])
        indices.append(np.clip(np.searchsorted(nodes, coordinate, side="right") - 1, 0, nodes.size - 2))
    i, j, k = indices
    nz, ny, nx = mesh.shape
    index = np.where(inside, (k * ny + j) * nx + i, 0)
    return index, inside


@dataclass(frozen=True)
class DrillLog:
    """A density log along a planned hole, one row per sample interval.

    ``depth_along_hole`` the interval midpoints, ``depth_from``/``depth_to`` its ends (m along
    the hole from the collar); ``x, y, z`` the midpoints (m, z up); ``mean``, ``q05``, ``q95``
    the posterior mean and 90 % interval of the density contrast in the cell at each midpoint
    (kg/m^3); ``exceedance`` P(density > ``threshold``) there. NaN outside the mesh, and the
    spread and exceedance are NaN for a single model. ``collar`` (m), ``azimuth`` and ``dip``
    (degrees), ``threshold`` (kg/m^3) describe the hole.
    """

    depth_along_hole: np.ndarray
    depth_from: np.ndarray
    depth_to: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    mean: np.ndarray
    q05: np.ndarray
    q95: np.ndarray
    exceedance: np.ndarray
    collar: tuple[float, float, float]
    azimuth: float
    dip: float
    threshold: float


def default_step(mesh: TensorMesh) -> float:
    """Half the smallest cell width (m): every cell a hole crosses squarely gets two samples."""
    return 0.5 * float(min(mesh.widths_x.min(), mesh.widths_y.min(), mesh.widths_z.min()))


def drill_log(results: Results, collar, azimuth_deg: float, dip_deg: float, length_m: float,
              step_m: float | None = None, threshold: float | None = None) -> DrillLog:
    """The posterior density log along a straight planned hole.

    Parameters
    ----------
    results
        From :func:`load_results`.
    collar
        ``(x, y, z)`` of the collar, m, z elevation positive up.
    azimuth_deg
        Azimuth, degrees clockwise from north (90 = east).
    dip_deg
        Dip, degrees below the horizontal, positive down (90 = vertical down), in [-90, 90].
    length_m
        Hole length along the hole, m (> 0).
    step_m
        Sample interval along the hole, m; default :func:`default_step`.
    threshold
        kg/m^3 for the exceedance; default the run's threshold.

    Returns
    -------
    DrillLog
        For each interval midpoint, the mean, 5 % and 95 % quantiles of the draws in the cell
        containing it and the fraction of draws above ``threshold`` (the same per-cell numbers
        as ``summary.nc`` for ensembles); NaN outside the mesh.
    """
    step_m = default_step(results.mesh) if step_m is None else float(step_m)
    threshold = results.threshold if threshold is None else float(threshold)
    depth_from, depth_to, depth, points = hole_samples(collar, float(azimuth_deg), float(dip_deg), float(length_m), step_m)
    index, inside = cells_at(results.mesh, points)
    values = results.draws[:, index[inside]]
    nan = np.full(depth.shape, np.nan)
    mean, q05, q95, exceedance = nan.copy(), nan.copy(), nan.copy(), nan.copy()
    mean[inside] = values.mean(axis=0)
    if results.n_draws > 1 and values.shape[1]:
        q05[inside], q95[inside] = np.quantile(values, [Q_LOW, Q_HIGH], axis=0)
        exceedance[inside] = (values > threshold).mean(axis=0)
    collar = tuple(float(v) for v in np.ravel(collar))
    return DrillLog(depth, depth_from, depth_to, points[:, 0], points[:, 1], points[:, 2], mean, q05, q95, exceedance,
                    collar, float(azimuth_deg), float(dip_deg), threshold)


_DRILL_COLUMNS = ("depth_along_hole", "depth_from", "depth_to", "x", "y", "z", "mean", "q05", "q95", "exceedance")


def write_drill_log(csv_path: str | Path | None, png_path: str | Path | None, log: DrillLog) -> None:
    """Write a :class:`DrillLog` as CSV and/or a PNG strip log (each atomically; None skips it).

    CSV columns: depth_along_hole, depth_from, depth_to (m along the hole), x, y, z (m, z up),
    mean, q05, q95 (kg/m^3), exceedance (probability). The PNG has depth along the hole
    increasing downward: the mean with its 90 % band and the threshold on the left, the
    exceedance probability on the right.
    """
    if csv_path is not None:
        columns = [np.asarray(getattr(log, name), np.float64).tolist() for name in _DRILL_COLUMNS]
        write_text_atomic(csv_path, _csv_text(_DRILL_COLUMNS, columns))
    if png_path is not None:
        _plot_drill_log(Path(png_path), log)


def _plot_drill_log(path: Path, log: DrillLog) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(figure)


# -- ranking candidate holes -------------------------------------------------------------------
@dataclass(frozen=True)
class Hole:
    """A planned straight hole: ``name``; collar ``x, y, z`` (m, z up); ``azimuth`` (degrees
    clockwise from north), ``dip`` (degrees below horizontal, positive down); ``length`` (m)."""

    name: str
    x: float
    y: float
    z: float
    azimuth: float
    dip: float
    length: float


@dataclass(frozen=True)
class HoleRank:
    """How much of a hole is expected above the threshold.

    ``expected_length`` the posterior mean over draws of the length of hole in cells above the
    threshold (m); ``length_q05``, ``length_q95`` its 90 % interval over draws (m; NaN for a
    single model); ``probability_hit`` the fraction of draws with any sample above it; ``rank``
    1 for the best hole.
    """

    rank: int
    hole: Hole
    expected_length: float
    length_q05: float
    length_q95: float
    probability_hit: float


def rank_collars(results: Results, holes: Sequence[Hole], step_m: float | None = None,
                 threshold: float | None = None) -> list[HoleRank]:
    """Rank candidate holes by the expected length of hole above the threshold, best first.

    For each draw, the length above the threshold is the sum of the sample-interval lengths
    (see :func:`hole_samples`) whose cell's density exceeds ``threshold`` (samples outside the
    mesh count as below); the ranking uses its mean over draws, then the probability of any
    hit, then the input order. ``step_m`` (m) defaults to :func:`default_step`; ``threshold``
    (kg/m^3) to the run's.
    """
    if not holes:
        raise InputError("rank collars: no candidate holes given")
    step_m = default_step(results.mesh) if step_m is None else float(step_m)
    threshold = results.threshold if threshold is None else float(threshold)
    scored = []
    for order, hole in enumerate(holes):
        label = f"hole '{hole.name}': "
        _check_hole((hole.x, hole.y, hole.z), hole.azimuth, hole.dip, hole.length, step_m, label)
        depth_from, depth_to, _, points = hole_samples((hole.x, hole.y, hole.z), hole.azimuth, hole.dip,
                                                       hole.length, step_m)
        index, inside = cells_at(results.mesh, points)
        above = results.draws[:, index[inside]] > threshold
        lengths = above @ (depth_to - depth_from)[inside]
        if results.n_draws > 1:
            low, high = (float(v) for v in np.quantile(lengths, [Q_LOW, Q_HIGH]))
        else:
            low = high = math.nan
        scored.append((float(lengths.mean()), float(above.any(axis=1).mean()), order, hole, low, high))
    scored.sort(key=lambda item: (-item[0], -item[1], item[2]))
    return [HoleRank(rank, hole, expected, low, high, hit)
            for rank, (expected, hit, _, hole, low, high) in enumerate(scored, start=1)]


_COLLAR_COLUMNS = ("x", "y", "z", "azimuth", "dip", "length")


def read_collars_csv(path: str | Path) -> list[Hole]:
    """Read candidate holes from a CSV with a header: columns x, y, z (collar, m, z up), azimuth
    (degrees clockwise from north), dip (degrees below horizontal), length (m), and optionally
    name (or id); other columns are ignored. Errors name the file, line and column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path}: file not found (expected a CSV of candidate holes with columns "
                         f"{', '.join(_COLLAR_COLUMNS)})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read the collars file ({err})") from None
    reader = csv.reader(io.StringIO(text))
    header = None
    holes: list[Hole] = []
    for row in reader:
        if not row or all(not cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
            continue
        if header is None:
            header = [cell.strip().lower() for cell in row]
            missing = [name for name in _COLLAR_COLUMNS if name not in header]
            if missing:
                raise InputError(f"{path}: line {reader.line_num}: missing column(s) {', '.join(missing)} "
                                 f"(header: {', '.join(header)}); expected {', '.join(_COLLAR_COLUMNS)} "
                                 "and optionally name")
            name_column = header.index("name") if "name" in header else header.index("id") if "id" in header else None
            continue
        if len(row) != len(header):
            raise InputError(f"{path}: line {reader.line_num}: found {len(row)} fields, expected {len(header)} as in "
                             f"the header ({','.join(header)})")
        numbers = []
        for column in _COLLAR_COLUMNS:
            cell = row[header.index(column)].strip()
            try:
                value = float(cell)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise InputError(f"{path}: line {reader.line_num}, column '{column}': expected a finite number, "
                                 f"found '{cell}'")
            numbers.append(value)
        name = row[name_column].strip() if name_column is not None else f"line {reader.line_num}"
        hole = Hole(name, *numbers)
        if not -90.0 <= hole.dip <= 90.0:
            raise InputError(f"{path}: line {reader.line_num}, column 'dip': expected degrees below horizontal in "
                             f"[-90, 90], found {hole.dip}")
        if hole.length <= 0:
            raise InputError(f"{path}: line {reader.line_num}, column 'length': expected a length > 0 m, "
                             f"found {hole.length}")
        holes.append(hole)
    if header is None:
        raise InputError(f"{path}: empty file: expected a header ({','.join(_COLLAR_COLUMNS)},name) and holes")
    if not holes:
        raise InputError(f"{path}: no holes after the header")
    return holes


def write_ranking(path: str | Path, ranking: Sequence[HoleRank]) -> Path:
    """Write ranked holes as CSV (atomically): rank, name, x, y, z (m), azimuth, dip (degrees),
    length (m), expected_length, length_q05, length_q95 (m above the threshold),
    probability_hit."""
    header = ("rank", "name", "x", "y", "z", "azimuth", "dip", "length", "expected_length", "length_q05",
              "length_q95", "probability_hit")
    rows = [(r.rank, r.hole.name, r.hole.x, r.hole.y, r.hole.z, r.hole.azimuth, r.hole.dip, r.hole.length,
             r.expected_length, r.length_q05, r.length_q95, r.probability_hit) for r in ranking]
    write_text_atomic(path, _csv_text(header, list(zip(*rows))))
    return Path(path)
