"""UBC-GIF GRAV3D gravity observation files.

Conventions (SPEC section 1): ``x`` easting, ``y`` northing, ``z`` elevation in metres, **z
positive up**; ``gz`` in mGal (1 mGal = 1e-5 m/s^2), **positive downward** (Harmonica's ``g_z``;
SimPEG's ``gz`` has the opposite sign). Files may be in mGal, um/s^2 or m/s^2 (``[data] units``):
:func:`read_survey` converts to mGal in one place, with
:data:`gravuq.constants.GRAVITY_UNITS_TO_MGAL`.
UBC-GIF stores the anomaly positive for excess mass (positive downward), the same sign as
gravuq, so no sign is flipped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ._atomic import write_text_atomic
from ._table import StationTable, check_table, columns_of
from ._text import format_float, parse_number, read_text
from .formats import is_count

__all__ = ["read_ubc_obs", "write_ubc_obs"]


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
    content = read_text(path, "a UBC-GIF gravity observation file")
    lines = [
        (number, line.split())
        for number, line in enumerate(content.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("!")
    ]
    if not lines:
        raise InputError(f"{source}: empty file: expected the number of stations, then one line per station")
    count_line, count_fields = lines[0]
    if len(count_fields) != 1 or not is_count(count_fields[0]):
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
        [parse_number(cell, f"{source}: line {number}, field {k + 1} ({names[k]})", fortran=True)
         for k, cell in enumerate(fields)]
        for number, fields in rows
    ])
    table = StationTable(
        x=values[:, 0], y=values[:, 1], z=values[:, 2], gz=values[:, 3],
        std=values[:, 4] if width == 5 else None,
        line=np.array([number for number, _ in rows]), source=source,
    )
    return check_table(table)


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
    columns = columns_of(x, y, z, gz, std)
    lines = [
        "! gravuq stations: x y z (m, z up) gz std (mGal, gz positive downward)",
        str(columns[0].size),
    ]
    lines += [" ".join(format_float(value) for value in row) for row in zip(*columns)]
    write_text_atomic(path, "\n".join(lines) + "\n")


