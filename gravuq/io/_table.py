"""The columns read from a station file, before unit conversion, and the checks every reader shares.

Conventions (SPEC section 1): x, y, z in metres, z elevation positive up; gz and std in the file's
own units (converted to mGal by :func:`gravuq.io.read_survey`), gz positive downward.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import InputError

__all__ = ["StationTable", "check_table", "columns_of"]


class StationTable(NamedTuple):
    """Columns read from a station file, in the file's own units, before any conversion.

    ``gz`` and ``std`` are ``None`` when the file has no such column. ``line`` holds the 1-based
    line number of each station in ``source``, so that later checks can name the row. ``extra``
    maps the header name of every other column of a CSV to its cells as written (station names,
    notes), so that outputs per station can carry them along.
    """

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    gz: np.ndarray | None
    std: np.ndarray | None
    line: np.ndarray
    source: str
    extra: dict[str, list[str]] | None = None


def check_table(table: StationTable) -> StationTable:
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


def columns_of(*arrays: np.ndarray) -> list[np.ndarray]:
    """``arrays`` as flat float64 columns of one length (ValueError otherwise)."""
    arrays = [np.asarray(array, dtype=np.float64).ravel() for array in arrays]
    if len({array.size for array in arrays}) != 1:
        raise ValueError(f"columns must have one length, found {[array.size for array in arrays]}")
    return arrays
