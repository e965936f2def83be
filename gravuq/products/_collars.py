"""Ranking candidate drill holes by the expected length of hole above the threshold.

Conventions as :mod:`gravuq.products._drill`: collars in metres (z up), azimuth degrees
clockwise from north, dip degrees below horizontal, lengths in metres, density in kg/m^3.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import csv_text, write_text_atomic
from ..posterior import Q_HIGH, Q_LOW
from ._drill import _check_hole, cells_at, default_step, hole_samples
from ._results import Results


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
    write_text_atomic(path, csv_text(header, list(zip(*rows))))
    return Path(path)


__all__ = ["Hole", "HoleRank", "rank_collars", "read_collars_csv", "write_ranking"]
