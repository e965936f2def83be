"""Station files: CSV with a header, header-less xyz columns and value files, and the survey
read from a ``[data]`` section (UBC-GIF observation files: ``_ubc_obs.py``).

Conventions (SPEC section 1): ``x`` easting, ``y`` northing, ``z`` elevation in metres, **z
positive up**; ``gz`` in mGal (1 mGal = 1e-5 m/s^2), **positive downward** (Harmonica's ``g_z``;
SimPEG's ``gz`` has the opposite sign). Files may be in mGal, um/s^2 or m/s^2 (``[data] units``):
:func:`read_survey` converts to mGal in one place, with
:data:`gravuq.constants.GRAVITY_UNITS_TO_MGAL`.
"""

from __future__ import annotations

import csv
import difflib
import io
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..constants import GRAVITY_UNITS_TO_MGAL
from ..errors import InputError
from ..survey import Survey, evaluate_trend, fit_trend, station_std
from ._atomic import write_text_atomic
from ._components_data import is_ubc_gg, read_component_survey, read_ubc_gg
from ._table import StationTable, check_table, columns_of
from ._text import format_float, parse_number, read_text
from ._ubc_obs import read_ubc_obs
from .formats import sniff_format

__all__ = ["ColumnNames", "StationTable", "read_station_table", "read_stations_csv", "read_survey", "read_values",
           "read_ubc_obs", "read_xyz", "write_stations_csv"]


class ColumnNames(NamedTuple):
    """Header names of the x, y, z, gz and std columns of a station CSV (``[data] columns``)."""

    x: str = "x"
    y: str = "y"
    z: str = "z"
    gz: str = "gz"
    std: str = "std"


def read_stations_csv(
    path: str | Path,
    columns: ColumnNames | None = None,
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
        columns = ColumnNames()
    path = Path(path)
    source = str(path)
    content = read_text(path, "a CSV file of stations")

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

    if len(header) == 1:
        separator = next((name for mark, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars"))
                          if mark in header[0]), None)
        if separator:
            raise InputError(f"{source}: line {header_line}: the header is one field ({header[0]!r}): the file "
                             f"seems separated by {separator}, but gravuq reads comma-separated CSV; replace the "
                             "separators with commas")
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
            values[i, j] = parse_number(row[k], f"{source}: line {line}, column '{header[k]}'")

    column = {role: values[:, j] for j, role in enumerate(index)}
    table = StationTable(
        x=column["x"], y=column["y"], z=column["z"], gz=column.get("gz"), std=column.get("std"),
        line=np.array([line for line, _ in rows]), source=source,
        extra={name: [row[k] for _, row in rows] for k, name in enumerate(header) if k not in index.values()},
    )
    return check_table(table)


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
    columns = columns_of(x, y, z, gz, std)
    lines = ["x,y,z,gz,std"]
    lines += [",".join(format_float(value) for value in row) for row in zip(*columns)]
    write_text_atomic(path, "\n".join(lines) + "\n")


_XYZ_FIELDS = ("x", "y", "z", "gz", "std")


def _data_lines(path: Path, what: str) -> list[tuple[int, list[str]]]:
    """``(line number, fields)`` of the lines that are not blank or ``#`` comments; fields are
    split on commas when the line has one, else on whitespace."""
    content = read_text(path, what)
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
            values[i, k] = parse_number(cell, f"{source}: line {number}, field {k + 1} ({_XYZ_FIELDS[k]})")
    table = StationTable(
        x=values[:, 0], y=values[:, 1], z=values[:, 2], gz=values[:, 3] if width > 3 else None,
        std=values[:, 4] if width > 4 else None, line=np.array([number for number, _ in rows]), source=source,
    )
    return check_table(table)


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
        values[i] = parse_number(fields[0], f"{source}: line {number} ({what})")
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


def read_station_table(data, *, need_gz: bool = True) -> StationTable:
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
        table = read_ubc_gg(path)[0] if is_ubc_gg(path) else read_ubc_obs(path)
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


#: Largest |gz| that can be a gravity anomaly: Earth's whole surface gravity is about 9.8e5 mGal.
MAX_GZ_MGAL = 1e6
#: Smallest std that can be an uncertainty: 1e-9 mGal is a million times below any gravimeter.
MIN_STD_MGAL = 1e-9


def check_magnitudes(table: StationTable, gz: np.ndarray, std: np.ndarray) -> None:
    """Refuse gz and std (mGal) that cannot be meaningful, naming the line: non-finite or
    |gz| > 1e6 mGal, std < 1e-9 mGal (their chi^2 would overflow or mean nothing)."""
    for values, bad, what in ((gz, ~(np.abs(gz) <= MAX_GZ_MGAL), f"expected |gz| <= {MAX_GZ_MGAL:g} mGal"),
                              (std, ~(std >= MIN_STD_MGAL), f"expected a std >= {MIN_STD_MGAL:g} mGal")):
        rows = np.flatnonzero(bad)
        if rows.size:
            row = rows[0]
            name = "gz" if values is gz else "std"
            raise InputError(f"{table.source}: line {table.line[row]}: {name} = {values[row]:.6g} mGal cannot be "
                             f"a gravity measurement ({what}; {rows.size} such station(s)): check the value and "
                             "[data] units")


def read_survey(data) -> Survey:
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
    if tuple(getattr(data, "components", ("gz",))) != ("gz",):  # several components: gz and gradients
        table = None if file_format == "ubc" else read_station_table(data, need_gz="gz" in data.components)
        return read_component_survey(data, table, file_format)
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

    check_magnitudes(table, gz, std)
    coefficients, origin = fit_trend(table.x, table.y, gz, data.detrend, source=source)
    regional = evaluate_trend(coefficients, origin, table.x, table.y)
    return Survey(
        x=table.x, y=table.y, z=table.z, gz=gz - regional, std=std, regional=regional,
        detrend=data.detrend, trend_coefficients=coefficients, trend_origin=origin, source=source,
    )
