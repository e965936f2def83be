"""Text files: reading with messages a user can act on, numbers from cells, CSV at full precision.

Every problem is an :class:`~gravuq.errors.InputError` naming the file (and line and column).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError


def read_text(path: Path, what: str) -> str:
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


def parse_number(cell: str, where: str, *, fortran: bool = False) -> float:
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


def format_float(value: float) -> str:
    """The shortest text that reads back to the same float64."""
    return repr(float(value))


def csv_text(header: Sequence[str], columns: Sequence[Sequence]) -> str:
    """CSV text of ``columns`` under ``header``; floats at full float64 precision, None empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in zip(*columns):
        writer.writerow(["" if value is None else format_float(value) if isinstance(value, (float, np.floating))
                         else value for value in row])
    return buffer.getvalue()
