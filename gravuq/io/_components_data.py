"""Surveys of several measured components (gz and gravity gradients), and UBC-GIF GG3D
gravity-gradiometry observation files.

Conventions (SPEC section 1): ``x`` easting, ``y`` northing, ``z`` elevation in metres, **z
positive up**; gz in mGal, **positive downward** (read in ``[data] units``); the gradients
``gxx, gxy, gxz, gyy, gyz, gzz`` in Eotvos (1 E = 1e-9 s^-2) with Harmonica's signs: ``gxz`` and
``gyz`` with z **down** (``gxz = d(gz)/dx``), ``gzz > 0`` above excess mass. Gradient files are
always in Eotvos; ``[data] units`` applies to gz only.

UBC-GIF GG3D observation files (GG3D v6 manual, "Observations file"; our reading of it is in
``docs/gradiometry.md``): optional ``!`` comment lines, a line ``datacomp=`` followed by the
components (comma or space separated, out of ``xx xy xz yy yz zz``), the number of locations,
then one line per location ``E N ELEV  GG_1 ... GG_k  [Err_1 ... Err_k]``: the values of the k
components in the order of the flag, then (observation files) their standard deviations in the
same order. GG3D's axes are x **north**, y **east**, z **down**, so its components map onto
gravuq's (x east, y north) as

    xx -> gyy    xy -> gxy    xz -> gyz    yy -> gxx    yz -> gxz    zz -> gzz

with no sign change: both take the tensor of the same potential with z down in the mixed
components, and ``zz`` (two derivatives along z) is the same with z up or down.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..constants import GRAVITY_UNITS_TO_MGAL
from ..errors import InputError
from ..survey import Survey, evaluate_trend, fit_trend, station_std
from ._table import StationTable, check_table
from ._text import parse_number, read_text

__all__ = ["UBC_GG_COMPONENTS", "gradient_std", "is_ubc_gg", "read_component_survey", "read_ubc_gg",
           "write_component_csv"]

#: GG3D's component flags and the gravuq component each one is (see the module notes).
UBC_GG_COMPONENTS = {"xx": "gyy", "xy": "gxy", "xz": "gyz", "yy": "gxx", "yz": "gxz", "zz": "gzz"}


def _lines(path: Path) -> list[tuple[int, str]]:
    content = read_text(path, "a UBC-GIF observation file")
    return [(number, line.strip()) for number, line in enumerate(content.splitlines(), start=1)
            if line.strip() and not line.lstrip().startswith("!")]


def is_ubc_gg(path: str | Path) -> bool:
    """Whether a UBC-GIF observation file is a GG3D gradiometry one (its first data line is
    ``datacomp=...``)."""
    lines = _lines(Path(path))
    return bool(lines) and lines[0][1].lower().startswith("datacomp")


def read_ubc_gg(path: str | Path) -> tuple[StationTable, tuple[str, ...], np.ndarray | None, np.ndarray | None]:
    """Read a UBC-GIF GG3D gravity-gradiometry observation (or locations, or predicted) file.

    Returns
    -------
    table, components, values, std
        The stations (``table.gz`` and ``table.std`` are None), the gravuq names of the file's
        components in its order, ``values`` ``(station, component)`` in Eotvos (None for a
        locations file) and ``std`` likewise (None without an error column per component).

    Raises
    ------
    InputError
        No ``datacomp=`` line, an unknown or repeated component flag (the Falcon ``ne``, ``uv``
        and VK1 ``ka``, ``kc`` components are not modelled), a missing or wrong count, a line with
        another number of fields than ``3``, ``3 + k`` or ``3 + 2k`` (or than the first line), a
        non-numeric field, std <= 0 or a repeated station; each naming the file and line.
    """
    path = Path(path)
    source = str(path)
    lines = _lines(path)
    if not lines or not lines[0][1].lower().startswith("datacomp"):
        raise InputError(f"{source}: expected a UBC-GIF GG3D file starting with a line 'datacomp=zz' (or xx, xy, "
                         "xz, yy, yz, zz separated by commas), found "
                         f"{lines[0][1][:40]!r}" if lines else f"{source}: empty file")
    flag_line, flag = lines[0]
    if "=" not in flag:
        raise InputError(f"{source}: line {flag_line}: expected 'datacomp=' and the components, found {flag!r}")
    flags = [item.lower() for item in flag.split("=", 1)[1].split("!")[0].replace(",", " ").split()]
    unknown = [item for item in flags if item not in UBC_GG_COMPONENTS]
    if not flags or unknown or len(set(flags)) != len(flags):
        raise InputError(f"{source}: line {flag_line}: expected distinct components out of "
                         f"{', '.join(UBC_GG_COMPONENTS)} after 'datacomp=', found {flag.split('=', 1)[1].strip()!r}"
                         + (" (the Falcon and VK1 components ne, uv, ka, kc are not modelled by gravuq)"
                            if unknown else ""))
    components = tuple(UBC_GG_COMPONENTS[item] for item in flags)
    k = len(components)
    if len(lines) < 2 or len(lines[1][1].split()) != 1 or not lines[1][1].isdigit():
        where = f"line {lines[1][0]}" if len(lines) > 1 else "end of file"
        raise InputError(f"{source}: {where}: expected the number of locations (one integer) after the datacomp line")
    count_line, count = lines[1][0], int(lines[1][1])
    rows = [(number, line.split()) for number, line in lines[2:]]
    if len(rows) != count or count == 0:
        raise InputError(f"{source}: line {count_line} gives {count} locations but {len(rows)} data lines follow")
    width = len(rows[0][1])
    if width not in (3, 3 + k, 3 + 2 * k):
        raise InputError(f"{source}: line {rows[0][0]}: found {width} fields, expected 3 (E N ELEV), {3 + k} (and "
                         f"the {k} components) or {3 + 2 * k} (and their {k} standard deviations)")
    names = ["x (easting)", "y (northing)", "z (elevation)"] + [f"{c} (E)" for c in components] \
        + [f"std of {c} (E)" for c in components]
    values = np.empty((count, width))
    for i, (number, fields) in enumerate(rows):
        if len(fields) != width:
            raise InputError(f"{source}: line {number}: found {len(fields)} fields, expected {width} as on line "
                             f"{rows[0][0]}")
        for j, cell in enumerate(fields):
            values[i, j] = parse_number(cell, f"{source}: line {number}, field {j + 1} ({names[j]})", fortran=True)
    line = np.array([number for number, _ in rows])
    data = values[:, 3:3 + k] if width > 3 else None
    std = values[:, 3 + k:] if width == 3 + 2 * k else None
    if std is not None:
        bad = np.argwhere(~(std > 0))
        if bad.size:
            row, column = bad[0]
            raise InputError(f"{source}: line {line[row]}: the std of {components[column]} must be > 0, found "
                             f"{std[row, column]:g}")
    table = check_table(StationTable(x=values[:, 0], y=values[:, 1], z=values[:, 2], gz=None, std=None, line=line,
                                     source=source))
    return table, components, data, std


def _column(table: StationTable, name: str, key: str, required: bool) -> np.ndarray | None:
    """The CSV column ``name`` (an ``extra`` column of ``table``) as numbers, or None if absent."""
    extra = table.extra or {}
    if name not in extra:
        if required:
            raise InputError(f"{table.source}: no column '{name}' for {key} (other columns: "
                             f"{', '.join(extra) or 'none'}); set [data] columns.{key} to the header name")
        return None
    return np.array([parse_number(cell, f"{table.source}: line {line}, column '{name}'")
                     for cell, line in zip(extra[name], table.line)])


def _gradient_std(data, component: str, file_std: np.ndarray | None, values: np.ndarray, source: str) -> np.ndarray:
    """The std (E) of one gradient component: its file column, else ``[data] gradient_std``, plus
    ``std_relative * |value|``."""
    if file_std is not None:
        floor = np.asarray(file_std, np.float64)
    elif data.gradient_std is not None:
        floor = np.full(values.shape, float(data.gradient_std))
    else:
        floor = np.zeros(values.shape)
    std = floor + data.std_relative * np.abs(values)
    bad = np.flatnonzero(~(std > 0))
    if bad.size:
        raise InputError(f"{source}: no uncertainty for {component} at {bad.size} station(s): the file has no std "
                         f"column for it (columns.std_{component}) and [data] gradient_std (Eotvos) is not set; "
                         "give one of them")
    return std


def read_component_survey(data, table: StationTable | None, file_format: str) -> Survey:
    """The survey of ``[data]`` with ``data.components`` (several, or gradients): the data
    vector component-major (see :class:`~gravuq.survey.Survey`), gz in mGal (converted from
    ``units``, std by the rule of :func:`gravuq.io.read_survey`, trend removed from it alone),
    each gradient in Eotvos with its std column, else ``gradient_std``, plus ``std_relative``
    times its magnitude. ``table`` is the CSV already read (x, y, z, gz, std and the other
    columns as ``extra``); a UBC-GIF GG3D file (``file_format = "ubc"``) is read here."""
    components = tuple(data.components)
    gradients = [c for c in components if c != "gz"]
    blocks, stds = {}, {}
    if file_format == "ubc":
        table, present, values, file_std = read_ubc_gg(data.path)
        if values is None:
            raise InputError(f"{table.source}: a locations file (no component values): expected E N ELEV followed by "
                             f"the values of {', '.join(present)}")
        missing = [c for c in gradients if c not in present]
        if missing:
            raise InputError(f"{table.source}: [data] components asks for {', '.join(missing)}, but the file's "
                             f"datacomp line gives {', '.join(present)} (GG3D names: x north, y east, z down; see "
                             "docs/gradiometry.md)")
        for c in gradients:
            blocks[c] = values[:, present.index(c)]
            stds[c] = _gradient_std(data, c, None if file_std is None else file_std[:, present.index(c)], blocks[c],
                                    table.source)
    else:
        for c in gradients:
            blocks[c] = _column(table, getattr(data.columns, c), f"{c}", required=True)
            file_std = _column(table, getattr(data.columns, f"std_{c}"), f"std_{c}", required=False)
            stds[c] = _gradient_std(data, c, file_std, blocks[c], table.source)
    source = table.source
    coefficients, origin = (0.0, 0.0, 0.0), (float(np.mean(table.x)), float(np.mean(table.y)))
    regional = {c: np.zeros(table.x.size) for c in components}
    if "gz" in components:
        if table.gz is None:
            raise InputError(f"{source}: no gz column '{data.columns.gz}' (or gz_path) for [data] components = "
                             f"{list(components)}")
        if table.std is None and data.std is None and data.std_relative == 0 and data.std_min == 0:
            raise InputError(f"{source}: no uncertainties for gz: no '{data.columns.std}' column and the config sets "
                             "neither [data] std nor [data] std_relative")
        gz = table.gz * GRAVITY_UNITS_TO_MGAL[data.units]
        stds["gz"] = station_std(data, table.std, gz)
        if not np.all(stds["gz"] > 0):
            raise InputError(f"{source}: the std of gz is 0 mGal at some station: set [data] std as a floor")
        coefficients, origin = fit_trend(table.x, table.y, gz, data.detrend, source=source)
        regional["gz"] = evaluate_trend(coefficients, origin, table.x, table.y)
        blocks["gz"] = gz
    observed = np.concatenate([blocks[c] for c in components])
    trend = np.concatenate([regional[c] for c in components])
    std = np.concatenate([stds[c] for c in components])
    return Survey(x=table.x, y=table.y, z=table.z, gz=observed - trend, std=std, regional=trend,
                  detrend=data.detrend, trend_coefficients=coefficients, trend_origin=origin, source=source,
                  components=components)


def gradient_std(data, component: str, values: np.ndarray, file_std: np.ndarray | None = None,
                 source: str = "stations") -> np.ndarray:
    """The std (Eotvos) of gradient ``component`` at each station by the rule of
    :func:`read_component_survey`: the file's std column (``file_std``), else ``[data]
    gradient_std``, plus ``std_relative * |values|`` (``values`` in Eotvos)."""
    return _gradient_std(data, component, file_std, np.asarray(values, np.float64), source)


def write_component_csv(path: str | Path, x, y, z, values: dict, std: dict, columns, units: str = "mGal") -> None:
    """Write stations with one column per component and its std, atomically, at full precision.

    ``values`` and ``std`` map each component to ``(station,)`` arrays: gz in mGal (written in
    ``units``, the ``[data] units`` that reads the file back), gradients in Eotvos. The header
    names are those of ``columns`` (``[data] columns``): x, y, z, then per component its value
    and std columns (gz: ``columns.gz``, ``columns.std``; gxx: ``columns.gxx``,
    ``columns.std_gxx``; ...), so the same config reads the file back.
    """
    from ._atomic import write_text_atomic
    from ._text import format_float

    names = [columns.x, columns.y, columns.z]
    arrays = [np.asarray(a, np.float64) for a in (x, y, z)]
    to_units = 1.0 / GRAVITY_UNITS_TO_MGAL[units]
    for component in values:
        factor = to_units if component == "gz" else 1.0
        std_name = columns.std if component == "gz" else getattr(columns, f"std_{component}")
        names += [getattr(columns, component), std_name]
        arrays += [np.asarray(values[component], np.float64) * factor, np.asarray(std[component], np.float64) * factor]
    lines = [",".join(names)] + [",".join(format_float(v) for v in row) for row in zip(*arrays)]
    write_text_atomic(path, "\n".join(lines) + "\n")
