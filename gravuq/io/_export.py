"""Summaries for other software: UBC-GIF mesh + model files, and VTK rectilinear grids.

Conventions (SPEC section 1): arrays on the mesh are ``(nz, ny, nx)`` with the bottom layer
first, x easting, y northing, z elevation positive up, metres; densities in kg/m^3.

UBC-GIF model files hold one value per line in the order of the UBC 3D tensor-mesh codes: the
cell index along z runs fastest, from the TOP layer down, then x (west to east), then y (south
to north). This is the ordering of ``discretize`` (``TensorMesh.write_model_UBC``: reshape to
``(nx, ny, nz)``, transpose to ``(nz, nx, ny)``, flip z, ravel in Fortran order) and of the
UBC-GIF GRAV3D manual. VTK files are written by hand (no vtk or pyvista dependency) as XML
``RectilinearGrid`` (``.vtr``), whose cell data run x fastest, then y, then z (bottom up):
exactly the C order of a ``(nz, ny, nx)`` array.

Topography: air cells (centre above the ground of ``[mesh] topography``) hold UBC's no-data
value :data:`UBC_NO_DATA` (-99999) in every UBC model file, and in the VTK grid NaN in every
field plus a ``vtkGhostType`` cell array (UInt8) flagging them ``HIDDENCELL`` (32), which
ParaView honours by not drawing them.
"""

from __future__ import annotations

import base64
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

from ..errors import InputError
from ._atomic import atomic_path, write_text_atomic
from ._ubc_mesh import write_ubc_mesh

#: Units of the summary fields in a VTK export (density fields not listed are kg/m^3).
VTK_UNITS = {"exceedance": "(probability, 0..1)", "resolution": "(1 - posterior/prior variance, 0..1)"}

#: The value UBC-GIF codes read as "no data / inactive cell" in a model file.
UBC_NO_DATA = -99999.0

#: vtkDataSetAttributes::HIDDENCELL: a ghost-type cell flag that ParaView does not draw.
VTK_HIDDEN_CELL = 32

#: The mesh file name inside a UBC export folder.
UBC_MESH_FILE = "mesh.msh"


def _summary_fields(summary, mesh) -> dict[str, np.ndarray]:
    """The summary's ``(z, y, x)`` variables as ``(nz, ny, nx)`` float64 arrays, skipping any
    that are NaN everywhere (a single deterministic model has no std, quantiles, ...)."""
    fields = {}
    for name, variable in summary.data_vars.items():
        if set(variable.dims) != {"z", "y", "x"}:
            continue
        values = np.asarray(variable.transpose("z", "y", "x").values, np.float64)
        if values.shape != mesh.shape or np.all(np.isnan(values)):
            continue
        fields[str(name)] = values
    return fields


# -- UBC-GIF -----------------------------------------------------------------------------------
def ubc_order(values: np.ndarray) -> np.ndarray:
    """``(nz, ny, nx)`` (bottom layer first) to the UBC model vector: z fastest from the top
    down, then x west to east, then y south to north."""
    values = np.asarray(values)
    return values[::-1, :, :].transpose(1, 2, 0).ravel()  # (y, x, z from top), C order: z fastest


def from_ubc_order(vector: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """The inverse of :func:`ubc_order`: a UBC model vector to ``(nz, ny, nx)``, bottom first."""
    nz, ny, nx = shape
    return np.asarray(vector).reshape(ny, nx, nz).transpose(2, 0, 1)[::-1, :, :].copy()


def write_ubc_model(path: str | Path, mesh, values: np.ndarray) -> Path:
    """Write one UBC-GIF model file (atomically): ``values`` ``(nz, ny, nx)`` on ``mesh``, one
    value per line in UBC order (see the module notes), at full float64 precision."""
    values = np.asarray(values, np.float64).reshape(mesh.shape)
    write_text_atomic(path, "\n".join(map(repr, ubc_order(values).tolist())) + "\n")
    return Path(path)


def read_ubc_model(path: str | Path, mesh) -> np.ndarray:
    """Read a UBC-GIF model file for ``mesh``; returns ``(nz, ny, nx)`` float64, bottom layer first.

    Values may be spread over lines in any way (whitespace separated); text after ``!`` is a
    comment. Raises :class:`InputError` naming the file, the line of a value that is not a
    number, or the count found against the ``nx * ny * nz`` expected.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found (expected a UBC-GIF model file)") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read the model file ({err})") from None
    values: list[float] = []
    for number, line in enumerate(text.splitlines(), start=1):
        for token in line.split("!")[0].split():
            try:
                values.append(float(token))
            except ValueError:
                raise InputError(f"{path}, line {number}: cannot read '{token}' as a number") from None
    nz, ny, nx = mesh.shape
    if len(values) != mesh.n_cells:
        raise InputError(f"{path}: found {len(values)} values, expected {mesh.n_cells} "
                         f"(nx * ny * nz = {nx} * {ny} * {nz} from the mesh)")
    return from_ubc_order(np.asarray(values), mesh.shape)


def export_ubc(results, directory: str | Path) -> dict[str, Path]:
    """Write a run's summaries as a UBC-GIF tensor mesh and model files.

    Parameters
    ----------
    results
        A :class:`gravuq.products.Results` (anything with ``mesh`` and an xarray ``summary``).
    directory
        Folder to write into (created): ``mesh.msh`` and ``<field>.mod`` for every summary
        field with dims ``(z, y, x)`` that is not NaN everywhere: ``mean.mod``, ``std.mod``,
        ``q05.mod``, ``q95.mod`` (kg/m^3), ``exceedance.mod``, ``resolution.mod`` (unitless);
        air cells of a mesh with topography hold :data:`UBC_NO_DATA`.

    Returns
    -------
    dict
        ``{"mesh": path, "<field>": path, ...}`` of the files written.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise InputError(f"{directory}: expected a folder for the UBC files, found a file")
    directory.mkdir(parents=True, exist_ok=True)
    mesh = results.mesh
    written = {"mesh": directory / UBC_MESH_FILE}
    write_ubc_mesh(written["mesh"], mesh)
    air = ~mesh.active if getattr(mesh, "has_topography", False) else None
    for name, values in _summary_fields(results.summary, mesh).items():
        if air is not None:
            values = np.where(air, UBC_NO_DATA, values)
        written[name] = write_ubc_model(directory / f"{name}.mod", mesh, values)
    return written


# -- VTK ---------------------------------------------------------------------------------------
def _data_array(name: str, values: np.ndarray, encoding: str, indent: str) -> str:
    values = np.ascontiguousarray(values, dtype="<f8").ravel()
    if encoding == "ascii":
        body = " ".join(map(repr, values.tolist()))
        form = "ascii"
    else:
        # Inline binary: base64 of a UInt64 byte count followed by the little-endian data,
        # encoded as one stream (header_type="UInt64" on VTKFile).
        raw = np.array([values.nbytes], dtype="<u8").tobytes() + values.tobytes()
        body = base64.b64encode(raw).decode("ascii")
        form = "binary"
    return (f'{indent}<DataArray type="Float64" Name={quoteattr(name)} NumberOfComponents="1" format="{form}">\n'
            f"{indent}  {body}\n{indent}</DataArray>\n")


def _ghost_array(flags: np.ndarray, encoding: str, indent: str) -> str:
    """The ``vtkGhostType`` cell array (UInt8 flags, x fastest) that hides air cells in ParaView."""
    values = np.ascontiguousarray(flags, dtype=np.uint8).ravel()
    if encoding == "ascii":
        body, form = " ".join(map(str, values.tolist())), "ascii"
    else:
        raw = np.array([values.nbytes], dtype="<u8").tobytes() + values.tobytes()
        body, form = base64.b64encode(raw).decode("ascii"), "binary"
    return (f'{indent}<DataArray type="UInt8" Name="vtkGhostType" NumberOfComponents="1" format="{form}">\n'
            f"{indent}  {body}\n{indent}</DataArray>\n")


def export_vtk(results, path: str | Path, encoding: str = "binary") -> Path:
    """Write a run's summaries as a VTK XML rectilinear grid (``.vtr``) for ParaView.

    Parameters
    ----------
    results
        A :class:`gravuq.products.Results` (anything with ``mesh`` and an xarray ``summary``).
    path
        The ``.vtr`` file (written atomically).
    encoding
        ``"binary"`` (inline base64, float64, NaN kept exactly) or ``"ascii"``.

    The grid's x, y, z coordinates are the mesh's cell boundaries (m, z elevation positive up);
    every summary field with dims ``(z, y, x)`` that is not NaN everywhere is cell data (mean,
    std, q05, q95, prior_std in kg/m^3; exceedance and resolution unitless). The grid's field
    data hold ``threshold_kg_m3`` (the exceedance threshold), and an XML comment at the top names
    the method, the threshold and every array's unit (VTK ignores comments; a reader of the file
    sees them). Air cells of a mesh with topography are NaN in every field and flagged
    ``HIDDENCELL`` in a ``vtkGhostType`` cell array, so ParaView does not draw them.
    """
    if encoding not in ("binary", "ascii"):
        raise ValueError(f"encoding must be 'binary' or 'ascii', found {encoding!r}")
    mesh = results.mesh
    nz, ny, nx = mesh.shape
    extent = f"0 {nx} 0 {ny} 0 {nz}"
    fields = _summary_fields(results.summary, mesh)
    scalars = next(iter(fields), "")
    attrs = results.summary.attrs
    method = str(attrs.get("method", "unknown"))
    threshold = float(attrs["threshold"]) if "threshold" in attrs else float("nan")
    units = ", ".join(f"{name} {VTK_UNITS.get(name, 'kg/m^3')}" for name in fields)
    comment = (f"gravuq summary: method {method}; exceedance = P(density contrast > {threshold:g} kg/m^3); "
               f"units: {units}; coordinates x east, y north, z elevation up, m")
    parts = [
        '<?xml version="1.0"?>\n',
        f"<!-- {comment.replace('--', '- -')} -->\n",
        '<VTKFile type="RectilinearGrid" version="1.0" byte_order="LittleEndian" header_type="UInt64">\n',
        f'  <RectilinearGrid WholeExtent="{extent}">\n',
        '    <FieldData>\n',
        f'      <DataArray type="Float64" Name="threshold_kg_m3" NumberOfTuples="1" format="ascii">{threshold!r}'
        '</DataArray>\n',
        '    </FieldData>\n',
        f'    <Piece Extent="{extent}">\n',
        "      <PointData>\n      </PointData>\n",
        f"      <CellData Scalars={quoteattr(scalars)}>\n",
    ]
    for name, values in fields.items():
        parts.append(_data_array(name, values, encoding, "        "))  # C order of (nz, ny, nx): x fastest
    if getattr(mesh, "has_topography", False):
        parts.append(_ghost_array(np.where(mesh.active, 0, VTK_HIDDEN_CELL), encoding, "        "))
    parts.append("      </CellData>\n      <Coordinates>\n")
    for name, nodes in (("x", mesh.nodes_x), ("y", mesh.nodes_y), ("z", mesh.nodes_z)):
        parts.append(_data_array(name, nodes, encoding, "        "))
    parts.append("      </Coordinates>\n    </Piece>\n  </RectilinearGrid>\n</VTKFile>\n")
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text("".join(parts), encoding="ascii")
    return path
