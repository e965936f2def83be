"""Gravity stations with their data and uncertainties: the data model, the regional trend and
the rule for each station's standard deviation. Reading and writing station files lives in
:mod:`gravuq.io`.

Conventions (SPEC section 1)
----------------------------
- ``x`` easting, ``y`` northing, ``z`` elevation, in metres, **z positive up**.
- ``gz`` in mGal (1 mGal = 1e-5 m/s^2), **positive downward**: a positive density contrast below
  a station gives a positive anomaly (Harmonica's ``g_z``; SimPEG's ``gz`` has the opposite
  sign). UBC-GIF GRAV3D files use the same sign, so no reader or writer here flips it.
- Data files may be in mGal, um/s^2 or m/s^2 (``[data] units``); the readers convert to mGal in
  one place, with :data:`gravuq.constants.GRAVITY_UNITS_TO_MGAL`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .constants import GRAVITY_UNITS_TO_MGAL
from .errors import InputError

__all__ = ["DETREND_MODES", "Survey", "evaluate_trend", "fit_trend", "station_std"]

DETREND_MODES = ("none", "mean", "plane")

def _read_only(values: object) -> np.ndarray:
    array = np.array(values, dtype=np.float64)  # a copy: the caller's array stays writable
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class Survey:
    """Gravity stations with their data and uncertainties, ready for inversion.

    Attributes
    ----------
    x, y, z
        Station coordinates, shape ``(station,)``, m; ``z`` is elevation, positive up.
    gz
        Gravity anomaly, shape ``(station,)``, mGal (1e-5 m/s^2), positive downward (positive
        over excess mass), with the regional trend ``regional`` already removed.
    std
        Standard deviation of each datum, shape ``(station,)``, mGal, all > 0.
    regional
        The trend removed at each station, shape ``(station,)``, mGal; zeros for
        ``detrend = "none"``. ``gz + regional`` is the anomaly as read.
    detrend
        ``"none"``, ``"mean"`` or ``"plane"``: how ``regional`` was fitted.
    trend_coefficients
        ``(c0, cx, cy)`` in mGal, mGal/m, mGal/m: the trend is
        ``c0 + cx * (x - x0) + cy * (y - y0)`` about ``trend_origin``.
    trend_origin
        ``(x0, y0)`` in m: the station centre (mean of x and y), where the trend is ``c0``.
    source
        Where the stations came from (a file name), for messages.
    components
        The measured components, ``("gz",)`` by default. With several (e.g. ``("gz", "gzz")``),
        ``gz``, ``std`` and ``regional`` are the **data vector** of all of them, component-major:
        ``components[0]`` at every station, then ``components[1]`` at every station, ..., each in
        its unit (gz mGal positive down; gradients Eotvos, Harmonica's signs: ``gxz``, ``gyz`` z
        down, ``gzz > 0`` above excess mass), the shape ``(components * station,)``; the trend is
        fitted to and removed from gz alone (``regional`` is 0 on the gradient blocks).
    """

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    gz: np.ndarray
    std: np.ndarray
    regional: np.ndarray
    detrend: str
    trend_coefficients: tuple[float, float, float]
    trend_origin: tuple[float, float]
    source: str = "stations"
    components: tuple[str, ...] = ("gz",)

    def __post_init__(self) -> None:
        # Arrays are copied and made read-only so that a frozen Survey really cannot change.
        for name in ("x", "y", "z", "gz", "std", "regional"):
            object.__setattr__(self, name, _read_only(getattr(self, name)))
        object.__setattr__(self, "components", tuple(self.components))
        shapes = {name: getattr(self, name).shape for name in ("x", "y", "z")}
        data = {name: getattr(self, name).shape for name in ("gz", "std", "regional")}
        if (len(set(shapes.values())) != 1 or self.x.ndim != 1
                or set(data.values()) != {(len(self.components) * self.x.size,)}):
            raise ValueError(f"Survey arrays must be 1-D and of one length (the data {len(self.components)} times "
                             f"the coordinates), found shapes {shapes | data}")
        if not np.all(self.std > 0):
            raise ValueError("Survey std must be > 0 mGal at every station")
        if self.detrend not in DETREND_MODES:
            raise ValueError(f"Survey detrend must be one of {DETREND_MODES}, found {self.detrend!r}")
        object.__setattr__(self, "trend_coefficients", tuple(float(c) for c in self.trend_coefficients))
        object.__setattr__(self, "trend_origin", tuple(float(c) for c in self.trend_origin))

    @classmethod
    def from_arrays(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        z: np.ndarray,
        gz: np.ndarray,
        std: np.ndarray | float,
        *,
        source: str = "stations",
    ) -> Survey:
        """A survey with no trend removed.

        Parameters
        ----------
        x, y, z
            Station coordinates, shape ``(station,)``, m, z positive up.
        gz
            Gravity anomaly, shape ``(station,)``, mGal, positive downward.
        std
            Standard deviation, mGal: one per station or one for all.
        source
            A name for messages.
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        origin = (float(np.mean(x)), float(np.mean(y))) if x.size else (0.0, 0.0)
        return cls(
            x=x, y=y, z=z, gz=gz,
            std=np.broadcast_to(np.asarray(std, dtype=np.float64), x.shape),
            regional=np.zeros_like(x), detrend="none",
            trend_coefficients=(0.0, 0.0, 0.0), trend_origin=origin, source=source,
        )

    @property
    def n_stations(self) -> int:
        """Number of stations."""
        return int(self.x.size)

    @property
    def n_data(self) -> int:
        """Length of the data vector: stations times components."""
        return int(self.gz.size)

    def block(self, component: str, values: np.ndarray | None = None) -> np.ndarray:
        """The ``(station,)`` block of ``component`` in ``values`` (a data-vector-shaped array,
        default the data ``gz``); its unit is the component's."""
        values = self.gz if values is None else np.asarray(values)
        index = self.components.index(component)
        return values[..., index * self.n_stations:(index + 1) * self.n_stations]

    @property
    def coordinates(self) -> np.ndarray:
        """Station coordinates stacked as shape ``(station, 3)`` (x, y, z), m, z positive up."""
        return np.stack([self.x, self.y, self.z], axis=-1)

    @property
    def gz_observed(self) -> np.ndarray:
        """The anomaly as read (trend added back), shape ``(station,)``, mGal, positive down."""
        return self.gz + self.regional

    def regional_at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The removed regional trend evaluated at other stations.

        Parameters
        ----------
        x, y
            Easting and northing, m, any matching shapes.

        Returns
        -------
        numpy.ndarray
            ``c0 + cx (x - x0) + cy (y - y0)`` in mGal, positive downward; zeros when
            ``detrend = "none"``. Add it to a prediction to compare with observed data.
        """
        return evaluate_trend(self.trend_coefficients, self.trend_origin, x, y)

    def subset(self, rows: np.ndarray, source: str | None = None) -> Survey:
        """The stations ``rows`` (indices) with the regional trend refitted to them alone (by
        the same ``detrend``), so that nothing of the other stations enters, as for a held-out
        check."""
        rows = np.asarray(rows)
        x, y = self.x[rows], self.y[rows]
        source = source or f"{self.source} ({rows.size} of {self.n_stations} stations)"
        data = (np.arange(len(self.components))[:, None] * self.n_stations + rows[None, :]).ravel()
        observed = self.gz_observed[data]
        values = observed
        coefficients, origin = (0.0, 0.0, 0.0), (float(np.mean(x)), float(np.mean(y)))
        regional = np.zeros_like(observed)
        if "gz" in self.components:
            gz_rows = slice(self.components.index("gz") * rows.size, (self.components.index("gz") + 1) * rows.size)
            coefficients, origin = fit_trend(x, y, observed[gz_rows], self.detrend, source=source)
            regional[gz_rows] = evaluate_trend(coefficients, origin, x, y)
            values = observed - regional
        return dataclasses.replace(self, x=x, y=y, z=self.z[rows], gz=values, std=self.std[data],
                                   regional=regional, trend_coefficients=coefficients, trend_origin=origin,
                                   source=source)

    def with_gz(self, gz: np.ndarray) -> Survey:
        """The same stations, std and trend with new (detrended) data ``gz`` in mGal."""
        return dataclasses.replace(self, gz=gz)

    def with_std(self, std: np.ndarray | float) -> Survey:
        """The same stations and data with new standard deviations in mGal (> 0)."""
        return dataclasses.replace(self, std=np.broadcast_to(np.asarray(std, np.float64), self.gz.shape))


def evaluate_trend(
    coefficients: tuple[float, float, float], origin: tuple[float, float], x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """``c0 + cx (x - x0) + cy (y - y0)`` in mGal at easting ``x`` and northing ``y`` (m)."""
    c0, cx, cy = coefficients
    x0, y0 = origin
    x, y = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    return c0 + cx * (x - x0) + cy * (y - y0)


def fit_trend(
    x: np.ndarray, y: np.ndarray, gz: np.ndarray, mode: str, *, source: str = "stations"
) -> tuple[tuple[float, float, float], tuple[float, float]]:
    """Fit the regional trend removed by ``detrend``.

    Parameters
    ----------
    x, y
        Station easting and northing, shape ``(station,)``, m.
    gz
        Gravity anomaly, shape ``(station,)``, mGal.
    mode
        ``"none"`` (zero trend), ``"mean"`` (c0 = mean of gz) or ``"plane"`` (least squares
        ``c0 + cx (x - x0) + cy (y - y0)``).
    source
        Names the stations in messages.

    Returns
    -------
    coefficients, origin
        ``(c0, cx, cy)`` in mGal, mGal/m, mGal/m and ``(x0, y0)`` in m, the station centre
        (mean of x and y). Fitting about the centre keeps the least-squares problem well
        conditioned with UTM coordinates (x ~ 5e5 m).

    Raises
    ------
    InputError
        For a plane, if the stations lie on one line (the plane is then not determined).
    """
    x, y, gz = (np.asarray(array, dtype=np.float64) for array in (x, y, gz))
    origin = (float(np.mean(x)), float(np.mean(y)))
    if mode == "none":
        return (0.0, 0.0, 0.0), origin
    if mode == "mean":
        return (float(np.mean(gz)), 0.0, 0.0), origin
    if mode != "plane":
        raise ValueError(f"detrend mode must be one of {DETREND_MODES}, found {mode!r}")
    design = np.stack([np.ones_like(x), x - origin[0], y - origin[1]], axis=-1)
    coefficients, _, rank, _ = np.linalg.lstsq(design, gz, rcond=None)
    if rank < 3:
        raise InputError(
            f'{source}: [data] detrend = "plane" needs stations that do not all lie on one line '
            f'(found {x.size} stations); use detrend = "mean" or "none"'
        )
    c0, cx, cy = (float(value) for value in coefficients)
    return (c0, cx, cy), origin


def station_std(data, file_std: np.ndarray | None, gz: np.ndarray) -> np.ndarray:
    """Each station's standard deviation in mGal, by the rule of :func:`read_survey`.

    ``file_std`` is the file's std column in ``data.units`` (or None); ``gz`` is in mGal.
    """
    to_mgal = GRAVITY_UNITS_TO_MGAL[data.units]
    if file_std is not None:
        floor = np.asarray(file_std, np.float64) * to_mgal
    elif data.std is not None:
        floor = np.full_like(gz, data.std * to_mgal)
    else:
        floor = np.zeros_like(gz)
    std = floor + data.std_relative * np.abs(gz)
    return np.maximum(std, data.std_min * to_mgal) if data.std_min > 0 else std
