"""UBC-GIF 3D tensor mesh files, and the mesh a ``[mesh]`` config section describes.

Conventions (SPEC section 1): x = easting, y = northing, z = elevation, positive up, all in
metres; gravuq's origin is the west-south-bottom corner, while a UBC mesh file gives the
top-south-west corner and z widths from the top down.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..mesh import TensorMesh
from ._atomic import write_text_atomic

_REPEAT = re.compile(r"^(\d+)\*([-+0-9.eE]+)$")


def _parse_widths(tokens: list[str], count: int, path: Path, line: int, axis: str) -> np.ndarray:
    widths: list[float] = []
    for token in tokens:
        match = _REPEAT.match(token)
        try:
            if match:
                widths.extend([float(match.group(2))] * int(match.group(1)))
            else:
                widths.append(float(token))
        except ValueError:
            raise InputError(f"{path}, line {line}: {axis} cell widths: cannot read '{token}' as a number") from None
    if len(widths) != count:
        raise InputError(f"{path}, line {line}: expected {count} {axis} cell widths (from the first line), found {len(widths)}")
    return np.asarray(widths)


def read_ubc_mesh(path: str | Path) -> TensorMesh:
    """Read a UBC-GIF 3D tensor mesh file.

    The format: ``nx ny nz``; the top-south-west corner ``x0 y0 z0`` (z0 is the TOP elevation,
    positive up, m); then the x widths (west to east), y widths (south to north) and z widths
    (top to bottom), each possibly written ``n*w`` for n cells of width w. The returned mesh has
    its origin at the bottom and ``widths_z`` from bottom to top, as gravuq stores it.
    """
    path = Path(path)
    try:
        lines = [ln.split("!")[0].strip() for ln in path.read_text().splitlines()]
    except OSError as err:
        raise InputError(f"{path}: cannot read the mesh file ({err.strerror})") from None
    numbered = [(i + 1, ln) for i, ln in enumerate(lines) if ln]
    if len(numbered) < 5:
        raise InputError(f"{path}: a UBC mesh file needs 5 non-empty lines (counts, corner, x, y and z widths), found {len(numbered)}")
    try:
        nx, ny, nz = (int(v) for v in numbered[0][1].split())
    except ValueError:
        raise InputError(f"{path}, line {numbered[0][0]}: expected three integers 'nx ny nz', found '{numbered[0][1]}'") from None
    try:
        x0, y0, z_top = (float(v) for v in numbered[1][1].split())
    except ValueError:
        raise InputError(f"{path}, line {numbered[1][0]}: expected three numbers 'x0 y0 z0' (top south-west corner, m), found '{numbered[1][1]}'") from None
    if max(abs(x0), abs(y0), abs(z_top)) > 1e8:
        raise InputError(f"{path}, line {numbered[1][0]}: the corner ({x0:g}, {y0:g}, {z_top:g}) lies beyond 1e8 m: "
                         "expected coordinates in metres on Earth")
    if len(numbered) == 5:  # one line per axis (the usual layout): each list is read from its own line
        widths = {axis: _parse_widths(text.split(), count, path, line, axis)
                  for axis, count, (line, text) in zip("xyz", (nx, ny, nz), numbered[2:])}
        return _checked_mesh(path, widths, (x0, y0, z_top), [line for line, _ in numbered[2:]])
    # Width lists may wrap over several lines; collect tokens and split by counts.
    tokens = [(line, token) for line, text in numbered[2:] for token in text.split()]
    counts = {"x": nx, "y": ny, "z": nz}
    widths = {}
    position = 0
    for axis in ("x", "y", "z"):
        collected: list[str] = []
        total = 0
        line = tokens[position][0] if position < len(tokens) else numbered[-1][0]
        while total < counts[axis] and position < len(tokens):
            line, token = tokens[position]
            match = _REPEAT.match(token)
            total += int(match.group(1)) if match else 1
            collected.append(token)
            position += 1
        widths[axis] = _parse_widths(collected, counts[axis], path, line, axis)
    if position != len(tokens):
        raise InputError(f"{path}, line {tokens[position][0]}: unexpected values after the z cell widths")
    return _checked_mesh(path, widths, (x0, y0, z_top), None)


def _checked_mesh(path: Path, widths: dict, corner: tuple[float, float, float], lines: list[int] | None) -> TensorMesh:
    """The mesh of ``widths`` (UBC order, z top to bottom), after refusing widths that are not
    positive finite numbers, naming the line (or the axis when the lists wrap)."""
    for index, axis in enumerate("xyz"):
        values = widths[axis]
        bad = np.flatnonzero(~(np.isfinite(values) & (values > 0)))
        if bad.size:
            where = f", line {lines[index]}" if lines else ""
            raise InputError(f"{path}{where}: {axis} cell width {bad[0] + 1} is {values[bad[0]]:g}: expected "
                             "positive widths in metres")
    x0, y0, z_top = corner
    widths_z = widths["z"][::-1]
    return TensorMesh(widths["x"], widths["y"], widths_z, (x0, y0, z_top - widths_z.sum()))


def _format_widths(widths: np.ndarray) -> str:
    parts = []
    start = 0
    while start < widths.size:
        end = start
        while end + 1 < widths.size and widths[end + 1] == widths[start]:
            end += 1
        count = end - start + 1
        parts.append(f"{count}*{float(widths[start])!r}" if count > 1 else repr(float(widths[start])))
        start = end + 1
    return " ".join(parts)


def write_ubc_mesh(path: str | Path, mesh: TensorMesh) -> None:
    """Write ``mesh`` as a UBC-GIF 3D tensor mesh file (atomically); see :func:`read_ubc_mesh`."""
    nz, ny, nx = mesh.shape
    x0, y0, _ = mesh.origin
    text = "\n".join([
        f"{nx} {ny} {nz}",
        f"{float(x0)!r} {float(y0)!r} {float(mesh.nodes_z[-1])!r}",
        _format_widths(mesh.widths_x),
        _format_widths(mesh.widths_y),
        _format_widths(mesh.widths_z[::-1].copy()),
    ]) + "\n"
    write_text_atomic(path, text)


def mesh_from_config(settings) -> TensorMesh:
    """Build the mesh that a ``[mesh]`` config section describes (see ``gravuq.config``), with
    the ground of ``topography`` when it is given (cells above it are air)."""
    if settings.path is not None:
        mesh = read_ubc_mesh(settings.path)
    elif settings.shape is not None:
        mesh = TensorMesh.uniform(settings.origin, settings.cell_size, settings.shape)
    else:
        mesh = TensorMesh(np.asarray(settings.widths_x), np.asarray(settings.widths_y),
                          np.asarray(settings.widths_z), tuple(settings.origin))
    topography = getattr(settings, "topography", None)
    if topography is None:
        return mesh
    from ._topography import mesh_with_topography

    return mesh_with_topography(mesh, topography)


__all__ = ["mesh_from_config", "read_ubc_mesh", "write_ubc_mesh"]
