"""Gravity stations, their data and uncertainties; CSV and UBC-GIF readers and writers.

Conventions (SPEC section 1)
----------------------------
- ``x`` easting, ``y`` northing, ``z`` elevation, in metres, **z positive up**.
- ``gz`` in mGal (1 mGal = 1e-5 m/s^2), **positive downward**: a positive density contrast below
  a station gives a positive anomaly (Harmonica's ``g_z``; SimPEG's ``gz`` has the opposite
  sign). UBC-GIF GRAV3D files use the same sign, so no reader or writer here flips it.
- Data files may be in mGal, um/s^2 or m/s^2 (``[data] units``); :func:`read_survey` converts
  to mGal in one place, with :data:`gravuq.constants.GRAVITY_UNITS_TO_MGAL`.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .constants import GRAVITY_UNITS_TO_MGAL
from .errors import InputError
from .io._atomic import write_text_atomic

if TYPE_CHECKING:  # config imports this module at run time (sniff_format)
    from .config import DataColumns, DataConfig

__all__ = [
    "StationTable",
    "Survey",
    "fit_trend",
    "read_station_table",
    "read_stations_csv",
    "read_survey",
    "read_ubc_obs",
    "read_values",
    "read_xyz",
    "sniff_format",
    "write_stations_csv",
    "write_ubc_obs",
]

DETREND_MODES = ("none", "mean", "plane")

#: Suffixes of UBC-GIF gravity observation files; ``.txt`` is sniffed (see :func:`sniff_format`).
UBC_SUFFIXES = (".obs", ".grv")


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

    def __post_init__(self) -> None:
        # Arrays are copied and made read-only so that a frozen Survey really cannot change.
        for name in ("x", "y", "z", "gz", "std", "regional"):
            object.__setattr__(self, name, _read_only(getattr(self, name)))
        shapes = {name: getattr(self, name).shape for name in ("x", "y", "z", "gz", "std", "regional")}
        if len(set(shapes.values())) != 1 or self.x.ndim != 1:
            raise ValueError(f"Survey arrays must be 1-D and of one length, found shapes {shapes}")
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
        return _evaluate_trend(self.trend_coefficients, self.trend_origin, x, y)

    def with_gz(self, gz: np.ndarray) -> Survey:
        """The same stations, std and trend with new (detrended) data ``gz`` in mGal."""
        return dataclasses.replace(self, gz=gz)

    def with_std(self, std: np.ndarray | float) -> Survey:
        """The same stations and data with new standard deviations in mGal (> 0)."""
        return dataclasses.replace(self, std=np.broadcast_to(np.asarray(std, np.float64), self.x.shape))


class StationTable(NamedTuple):
    """Columns read from a station file, in the file's own units, before any conversion.

    ``gz`` and ``std`` are ``None`` when the file has no such column. ``line`` holds the 1-based
    line number of each station in ``source``, so that later checks can name the row.
    """

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    gz: np.ndarray | None
    std: np.ndarray | None
    line: np.ndarray
    source: str


# ---------------------------------------------------------------------------------------------
# Shared parsing helpers
# ---------------------------------------------------------------------------------------------


def _read_text(path: Path, what: str) -> str:
    source = str(path)
    try:
        # utf-8-sig: spreadsheet programs often start a CSV with a byte-order mark.
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{source}: file not found (expected {what})") from None
    except IsADirectoryError:
        raise InputError(f"{source}: expected {what}, found a folder") from None
    except UnicodeDecodeError as error:
        raise InputError(f"{source}: not UTF-8 text (byte {error.start}): expected {what}") from None
    except OSError as error:
        raise InputError(f"{source}: cannot read the file: {error.strerror}") from None


def _parse_number(cell: str, where: str, *, fortran: bool = False) -> float:
    """A finite float from one cell; ``where`` names file, line and column for messages."""
    cell = cell.strip()
    if not cell:
        raise InputError(f"{where}: empty cell, expected a number")
    try:
        value = float(cell)
    except ValueError:
        value = None
        if fortran:
            # Fortran programs (UBC-GIF) may write exponents as 1.0D-03.
            try:
                value = float(cell.replace("D", "E").replace("d", "e"))
            except ValueError:
                pass
        if value is None:
            shown = cell if len(cell) <= 40 else cell[:37] + "..."
            raise InputError(f"{where}: expected a number, found {shown!r}") from None
    if not math.isfinite(value):
        raise InputError(f"{where}: expected a finite number, found {cell!r}")
    return value


def _check_table(table: StationTable) -> StationTable:
    """Refuse std <= 0 and repeated stations, naming the rows."""
    if table.std is not None:
        bad = np.flatnonzero(table.std <= 0)
        if bad.size:
            row = bad[0]
            raise InputError(
                f"{table.source}: line {table.line[row]}: std must be > 0, found {table.std[row]:g}"
            )
    first_line: dict[tuple[float, float, float], int] = {}
    for x, y, z, line in zip(table.x.tolist(), table.y.tolist(), table.z.tolist(), table.line.tolist()):
        if (x, y, z) in first_line:
            raise InputError(
                f"{table.source}: lines {first_line[(x, y, z)]} and {line}: the same station "
                f"(x={x:g}, y={y:g}, z={z:g}) appears twice; expected each station once "
                "(average repeated readings first)"
            )
        first_line[(x, y, z)] = line
    return table


# ---------------------------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------------------------


def read_stations_csv(
    path: str | Path,
    columns: DataColumns | None = None,
    *,
    need_gz: bool = True,
    need_std: bool = False,
) -> StationTable:
    """Read stations from a CSV file with a header row.

    Parameters
    ----------
    path
        The CSV file. Blank lines and lines starting with ``#`` are skipped; other columns than
        the ones named in ``columns`` are ignored.
    columns
        Header names of x, y, z, gz and std (default: those names).
    need_gz
        Whether the gz column must be there (``gravuq forward`` only reads x, y, z).
    need_std
        Whether the std column must be there; otherwise it is read when present.

    Returns
    -------
    StationTable
        The numbers as written (no unit conversion), x, y, z in m.

    Raises
    ------
    InputError
        Missing or empty file, no header, a missing column (the header found is listed), a
        row with the wrong number of fields, a non-numeric, NaN or infinite cell (file, 1-based
        line number and column named), std <= 0, a repeated station, or no data rows.
    """
    if columns is None:
        from .config import DataColumns  # run time import: config imports this module

        columns = DataColumns()
    path = Path(path)
    source = str(path)
    content = _read_text(path, "a CSV file of stations")

    reader = csv.reader(io.StringIO(content))
    header: list[str] | None = None
    header_line = 0
    rows: list[tuple[int, list[str]]] = []
    try:
        for row in reader:
            if not row or all(not cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
                continue
            if header is None:
                header, header_line = [cell.strip() for cell in row], reader.line_num
            else:
                rows.append((reader.line_num, row))
    except csv.Error as error:
        raise InputError(f"{source}: line {reader.line_num}: not valid CSV: {error}") from None

    if header is None:
        raise InputError(f"{source}: empty file: expected a header row (x,y,z,gz,std) and data")
    if all(_is_float(cell) for cell in header):
        raise InputError(
            f"{source}: line {header_line}: expected a header row naming the columns "
            f"(such as x,y,z,gz,std), found numbers: {','.join(header)} "
            '(for a file without a header set [data] format = "xyz")'
        )

    roles = ["x", "y", "z"] + (["gz"] if need_gz else []) + (["std"] if need_std else [])
    optional = [role for role in ("gz", "std") if role not in roles]
    index: dict[str, int] = {}
    for role in roles + optional:
        name = getattr(columns, role)
        if header.count(name) > 1:
            raise InputError(f"{source}: line {header_line}: the column '{name}' appears twice in the header")
        if name in header:
            index[role] = header.index(name)
        elif role in roles:
            close = _nearest_column(name, header, claimed={getattr(columns, r) for r in index})
            hint = f"did you mean '{close}'? " if close else ""
            raise InputError(
                f"{source}: no column '{name}' for {role} (header: {', '.join(header)}); "
                f"{hint}set [data] columns.{role} to the header name"
            )

    if not rows:
        raise InputError(f"{source}: no data rows after the header on line {header_line}")
    values = np.empty((len(rows), len(index)))
    for i, (line, row) in enumerate(rows):
        if len(row) != len(header):
            raise InputError(
                f"{source}: line {line}: found {len(row)} fields, expected {len(header)} as in "
                f"the header ({','.join(header)})"
            )
        for j, (role, k) in enumerate(index.items()):
            values[i, j] = _parse_number(row[k], f"{source}: line {line}, column '{header[k]}'")

    column = {role: values[:, j] for j, role in enumerate(index)}
    table = StationTable(
        x=column["x"], y=column["y"], z=column["z"], gz=column.get("gz"), std=column.get("std"),
        line=np.array([line for line, _ in rows]), source=source,
    )
    return _check_table(table)


def _nearest_column(name: str, header: list[str], claimed: set[str]) -> str | None:
    """The header name a user most likely meant by ``name``, ignoring columns already used."""
    candidates = [cell for cell in header if cell not in claimed]
    for cell in candidates:
        if cell.lower() == name.lower():
            return cell
    lowered = {cell.lower(): cell for cell in candidates}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else None


def _is_float(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _format_float(value: float) -> str:
    # repr gives the shortest text that reads back to the same float64.
    return repr(float(value))


def _columns(*arrays: np.ndarray) -> list[np.ndarray]:
    arrays = [np.asarray(array, dtype=np.float64).ravel() for array in arrays]
    if len({array.size for array in arrays}) != 1:
        raise ValueError(f"columns must have one length, found {[array.size for array in arrays]}")
    return arrays


def write_stations_csv(
    path: str | Path,
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    gz: np.ndarray,
    std: np.ndarray,
) -> None:
    """Write stations as CSV with header ``x,y,z,gz,std``, atomically, at full precision.

    Parameters
    ----------
    path
        The CSV file to write (its folder is created).
    x, y, z
        Station coordinates, shape ``(station,)``, m, z positive up.
    gz
        Gravity anomaly, shape ``(station,)``, mGal, positive downward.
    std
        Standard deviation, shape ``(station,)``, mGal.
    """
    columns = _columns(x, y, z, gz, std)
    lines = ["x,y,z,gz,std"]
    lines += [",".join(_format_float(value) for value in row) for row in zip(*columns)]
    write_text_atomic(path, "\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------
# Header-less files: xyz columns and one value per line
# ---------------------------------------------------------------------------------------------

_XYZ_FIELDS = ("x", "y", "z", "gz", "std")


def _data_lines(path: Path, what: str) -> list[tuple[int, list[str]]]:
    """``(line number, fields)`` of the lines that are not blank or ``#`` comments; fields are
    split on commas when the line has one, else on whitespace."""
    content = _read_text(path, what)
    lines = []
    for number, line in enumerate(content.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = stripped.split(",") if "," in stripped else stripped.split()
        lines.append((number, fields))
    return lines


def read_xyz(path: str | Path) -> StationTable:
    """Read stations from a header-less column file (``[data] format = "xyz"``).

    Each line holds the fields ``x y z`` (m, z elevation positive up), optionally followed by
    ``gz`` and then ``std`` (in the file's units), separated by commas or whitespace; every line
    has the same number of fields (3, 4 or 5). Blank lines and lines starting with ``#`` are
    skipped.

    Returns
    -------
    StationTable
        The numbers as written; ``gz`` and ``std`` are None when the file has no such field.

    Raises
    ------
    InputError
        An empty file, a line with another number of fields (line and counts named), a
        non-numeric, NaN or infinite field (line and field named), std <= 0 or a repeated station.
    """
    path = Path(path)
    source = str(path)
    rows = _data_lines(path, "a header-less station file (x, y, z[, gz[, std]] per line)")
    if not rows:
        raise InputError(f"{source}: empty file: expected one station per line, fields x, y, z[, gz[, std]]")
    first_line, first_fields = rows[0]
    width = len(first_fields)
    if width not in (3, 4, 5):
        raise InputError(f"{source}: line {first_line}: found {width} fields, expected 3 to 5 "
                         "(x, y, z[, gz[, std]] in that order)")
    values = np.empty((len(rows), width))
    for i, (number, fields) in enumerate(rows):
        if len(fields) != width:
            raise InputError(f"{source}: line {number}: found {len(fields)} fields, expected {width} as on "
                             f"line {first_line} ({', '.join(_XYZ_FIELDS[:width])})")
        for k, cell in enumerate(fields):
            values[i, k] = _parse_number(cell, f"{source}: line {number}, field {k + 1} ({_XYZ_FIELDS[k]})")
    table = StationTable(
        x=values[:, 0], y=values[:, 1], z=values[:, 2], gz=values[:, 3] if width > 3 else None,
        std=values[:, 4] if width > 4 else None, line=np.array([number for number, _ in rows]), source=source,
    )
    return _check_table(table)


def read_values(path: str | Path, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Read a header-less file of one number per line (``[data] gz_path``, ``std_path``).

    Parameters
    ----------
    path
        The file. Blank lines and lines starting with ``#`` are skipped.
    what
        What the numbers are (``"gz"``, ``"std"``), for messages.

    Returns
    -------
    values, lines
        The numbers as written, shape ``(station,)``, and the 1-based line number of each.

    Raises
    ------
    InputError
        An empty file, a line with more than one field, or a non-numeric, NaN or infinite value
        (file and line named).
    """
    path = Path(path)
    source = str(path)
    rows = _data_lines(path, f"a file of {what} values, one per line")
    if not rows:
        raise InputError(f"{source}: empty file: expected one {what} value per line")
    values = np.empty(len(rows))
    for i, (number, fields) in enumerate(rows):
        if len(fields) != 1:
            raise InputError(f"{source}: line {number}: found {len(fields)} fields, expected one {what} value "
                             "per line")
        values[i] = _parse_number(fields[0], f"{source}: line {number} ({what})")
    return values, np.array([number for number, _ in rows])


def _values_for(table: StationTable, path: Path, what: str) -> np.ndarray:
    """The values of ``path``, checked to match ``table`` station for station."""
    values, lines = read_values(path, what)
    if values.size != table.x.size:
        raise InputError(
            f"{path}: {values.size} {what} values, but {table.source} has {table.x.size} stations: "
            f"expected one {what} value per station, in the same order"
        )
    if what == "std":
        bad = np.flatnonzero(~(values > 0))
        if bad.size:
            row = bad[0]
            raise InputError(f"{path}: line {lines[row]}: std must be > 0, found {values[row]:g}")
    return values


def read_station_table(data: DataConfig, *, need_gz: bool = True) -> StationTable:
    """The stations of ``[data]`` as written (file units), from ``path`` and, when given,
    ``gz_path`` and ``std_path``.

    ``path`` is read as ``data.format`` (``csv`` with a header, ``ubc``, or ``xyz`` header-less
    columns); ``gz_path`` and ``std_path`` hold one value per line, matched to the stations of
    ``path`` by order. A quantity given twice (a column and a file) is refused rather than one
    of them silently ignored.

    Parameters
    ----------
    data
        The validated ``[data]`` section.
    need_gz
        Whether gz must be there (``gravuq forward`` only needs x, y, z).

    Raises
    ------
    InputError
        For any problem with a file (see :func:`read_stations_csv`, :func:`read_ubc_obs`,
        :func:`read_xyz`, :func:`read_values`), a value file whose count differs from the
        number of stations (both files and counts named), gz or std given twice, or no gz.
    """
    path = Path(data.path)
    file_format = data.format or sniff_format(path)
    if file_format == "ubc":
        table = read_ubc_obs(path)
    elif file_format == "xyz":
        table = read_xyz(path)
    else:
        table = read_stations_csv(path, data.columns, need_gz=need_gz and data.gz_path is None, need_std=False)
    for what, extra in (("gz", data.gz_path), ("std", data.std_path)):
        if extra is None:
            continue
        if getattr(table, what) is not None:
            where = f"column '{getattr(data.columns, what)}'" if file_format == "csv" else "field"
            raise InputError(
                f"{table.source}: has a {what} {where} and [data] {what}_path = {extra} gives {what} too: "
                f"expected one of them (remove the {what}_path key or use a file without that column)"
            )
        table = table._replace(**{what: _values_for(table, Path(extra), what)})
    if need_gz and table.gz is None:
        raise InputError(
            f"{table.source}: no gz: the file has only x, y, z and [data] gz_path is not set; expected gz as a "
            "4th field or a gz_path file with one value per line"
        )
    return table


# ---------------------------------------------------------------------------------------------
# UBC-GIF GRAV3D observations
# ---------------------------------------------------------------------------------------------


def _is_count(text: str) -> bool:
    # str.isdigit alone accepts characters such as '²' that int() refuses.
    return text.isascii() and text.isdigit()


def read_ubc_obs(path: str | Path) -> StationTable:
    """Read a UBC-GIF GRAV3D gravity observation file.

    Layout: optional comment lines starting with ``!``, then a line with the number of
    stations N, then N lines ``x y z gz std`` (m, m, m, mGal, mGal; z elevation, positive up).
    Lines of four fields ``x y z gz`` (no std) are accepted too, if every line has four.

    UBC-GIF stores the anomaly positive for excess mass (positive downward), the same sign as
    gravuq, so no sign is flipped.

    Returns
    -------
    StationTable
        The numbers as written.

    Raises
    ------
    InputError
        A missing count line, N different from the number of data lines (both counts named),
        a line with the wrong number of fields, a non-numeric cell (line named), std <= 0 or a
        repeated station.
    """
    path = Path(path)
    source = str(path)
    content = _read_text(path, "a UBC-GIF gravity observation file")
    lines = [
        (number, line.split())
        for number, line in enumerate(content.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("!")
    ]
    if not lines:
        raise InputError(f"{source}: empty file: expected the number of stations, then one line per station")
    count_line, count_fields = lines[0]
    if len(count_fields) != 1 or not _is_count(count_fields[0]):
        raise InputError(
            f"{source}: line {count_line}: expected the number of stations (one integer), "
            f"found {' '.join(count_fields)!r}"
        )
    expected = int(count_fields[0])
    rows = lines[1:]
    if len(rows) != expected:
        raise InputError(
            f"{source}: line {count_line} gives {expected} stations but {len(rows)} data lines follow"
        )
    if not rows:
        raise InputError(f"{source}: no stations (the count on line {count_line} is 0)")
    first_line, first_fields = rows[0]
    width = len(first_fields)
    for number, fields in rows:
        if width not in (4, 5):
            wanted = "5 (x y z gz std)"
        elif len(fields) != width:
            wanted = f"{width} as on line {first_line}"
        else:
            continue
        raise InputError(f"{source}: line {number}: found {len(fields)} fields, expected {wanted}")
    names = ("x", "y", "z", "gz", "std")
    values = np.array([
        [_parse_number(cell, f"{source}: line {number}, field {k + 1} ({names[k]})", fortran=True)
         for k, cell in enumerate(fields)]
        for number, fields in rows
    ])
    table = StationTable(
        x=values[:, 0], y=values[:, 1], z=values[:, 2], gz=values[:, 3],
        std=values[:, 4] if width == 5 else None,
        line=np.array([number for number, _ in rows]), source=source,
    )
    return _check_table(table)


def write_ubc_obs(
    path: str | Path,
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    gz: np.ndarray,
    std: np.ndarray,
) -> None:
    """Write a UBC-GIF GRAV3D gravity observation file, atomically, at full precision.

    Parameters
    ----------
    path
        The file to write (its folder is created).
    x, y, z
        Station coordinates, shape ``(station,)``, m, z elevation positive up.
    gz
        Gravity anomaly, shape ``(station,)``, mGal, positive downward; UBC-GIF uses the same
        sign, so it is written as is.
    std
        Standard deviation, shape ``(station,)``, mGal.
    """
    columns = _columns(x, y, z, gz, std)
    lines = [
        "! gravuq stations: x y z (m, z up) gz std (mGal, gz positive downward)",
        str(columns[0].size),
    ]
    lines += [" ".join(_format_float(value) for value in row) for row in zip(*columns)]
    write_text_atomic(path, "\n".join(lines) + "\n")


def sniff_format(path: str | Path) -> str:
    """``"ubc"`` or ``"csv"``: the station file format guessed from ``path``.

    ``.obs`` and ``.grv`` files are UBC-GIF; a ``.txt`` file is UBC-GIF when its first line
    that is not blank or a ``!`` comment is a single integer (the station count); anything
    else is CSV.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in UBC_SUFFIXES:
        return "ubc"
    if suffix == ".txt":
        try:
            with path.open(encoding="utf-8-sig", errors="replace") as handle:
                for line in handle:
                    if line.strip() and not line.lstrip().startswith("!"):
                        return "ubc" if _is_count(line.strip()) else "csv"
        except OSError:
            pass  # the reader reports the problem with the file
    return "csv"


# ---------------------------------------------------------------------------------------------
# Survey
# ---------------------------------------------------------------------------------------------


def _evaluate_trend(
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


def station_std(data: DataConfig, file_std: np.ndarray | None, gz: np.ndarray) -> np.ndarray:
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


def read_survey(data: DataConfig) -> Survey:
    """Read the stations of ``[data]``, convert to mGal, set the std and remove the trend.

    Steps: read the file (CSV, UBC-GIF for ``format = "ubc"``, header-less columns for
    ``"xyz"``, with gz and std from ``gz_path``, ``std_path`` when given; see
    :func:`read_station_table`); convert gz and std from ``data.units`` to mGal; set each
    station's standard deviation to

        std = max((std column or std_path if given, else ``data.std``, else 0)
                  + ``data.std_relative`` * |gz|,  ``data.std_min``),

    in mGal, with gz the anomaly as read (before detrending). The two terms add, as a floor
    plus a proportional error, which is conservative and the usual way instrument error and
    reduction error are combined; a std column in the file takes precedence over ``data.std``.
    Finally the regional trend of ``data.detrend`` is fitted and removed
    (see :func:`fit_trend`).

    Parameters
    ----------
    data
        The validated ``[data]`` section.

    Returns
    -------
    Survey
        gz in mGal, positive downward, trend removed; std in mGal.

    Raises
    ------
    InputError
        For any problem with the file (see :func:`read_stations_csv`, :func:`read_ubc_obs`),
        no uncertainty at all, or a station whose total std is 0.
    """
    file_format = data.format or sniff_format(Path(data.path))
    table = read_station_table(data, need_gz=True)
    source = table.source

    if table.std is None and data.std is None and data.std_relative == 0 and data.std_min == 0:
        missing = {"ubc": "has no std field", "xyz": "has no std field (5th)"}.get(
            file_format, f"has no '{data.columns.std}' column")
        missing += " and [data] std_path is not set"
        raise InputError(
            f"{source}: no uncertainties: the file {missing} and the config sets neither "
            "[data] std nor [data] std_relative; give one of them"
        )

    # The one place where file units become mGal.
    gz = table.gz * GRAVITY_UNITS_TO_MGAL[data.units]
    std = station_std(data, table.std, gz)
    bad = np.flatnonzero(~(std > 0))
    if bad.size:
        row = bad[0]
        raise InputError(
            f"{source}: line {table.line[row]}: the std is 0 mGal (std_relative * |gz| with "
            "gz = 0): set [data] std as a floor"
        )

    coefficients, origin = fit_trend(table.x, table.y, gz, data.detrend, source=source)
    regional = _evaluate_trend(coefficients, origin, table.x, table.y)
    return Survey(
        x=table.x, y=table.y, z=table.z, gz=gz - regional, std=std, regional=regional,
        detrend=data.detrend, trend_coefficients=coefficients, trend_origin=origin, source=source,
    )
