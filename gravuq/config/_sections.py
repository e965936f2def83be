"""The config sections other than ``[inference]``: ``[data]``, ``[mesh]``, ``[model]``,
``[output]``, ``[truth]``, ``[forward]``. Each is a frozen dataclass whose fields are its keys,
declared with :func:`~gravuq.config._checks.setting` (default, check, one line of help).

Units follow SPEC section 1: lengths in metres, densities (``bounds``, ``threshold``) as density
contrast in kg/m^3, ``[data] std`` in the data's ``units``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from ..io.formats import sniff_format
from ..constants import COMPONENTS, DENSITY_UNITS_TO_KG_M3, GRAVITY_UNITS_TO_MGAL
from ._checks import (_Section, _Where, choice, existing_file, folder, integer, interval, number, numbers,
                      power_of_two, setting, subset, table, text)

# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataColumns(_Section):
    """Header names of the CSV columns (``[data] columns``)."""

    x: str = setting("x", text(), "easting column, m")
    y: str = setting("y", text(), "northing column, m")
    z: str = setting("z", text(), "elevation column, m, positive up")
    gz: str = setting("gz", text(), "gravity anomaly column, in [data] units, positive downward")
    std: str = setting("std", text(), "uncertainty column (optional in the file), in [data] units")
    gxx: str = setting("gxx", text(), "gxx column, Eotvos (with [data] components)")
    gxy: str = setting("gxy", text(), "gxy column, Eotvos")
    gxz: str = setting("gxz", text(), "gxz column, Eotvos, z down (d(gz)/dx)")
    gyy: str = setting("gyy", text(), "gyy column, Eotvos")
    gyz: str = setting("gyz", text(), "gyz column, Eotvos, z down (d(gz)/dy)")
    gzz: str = setting("gzz", text(), "gzz column, Eotvos, positive above excess mass")
    std_gxx: str = setting("std_gxx", text(), "gxx uncertainty column (optional in the file), Eotvos")
    std_gxy: str = setting("std_gxy", text(), "gxy uncertainty column (optional), Eotvos")
    std_gxz: str = setting("std_gxz", text(), "gxz uncertainty column (optional), Eotvos")
    std_gyy: str = setting("std_gyy", text(), "gyy uncertainty column (optional), Eotvos")
    std_gyz: str = setting("std_gyz", text(), "gyz uncertainty column (optional), Eotvos")
    std_gzz: str = setting("std_gzz", text(), "gzz uncertainty column (optional), Eotvos")


@dataclass(frozen=True)
class DataConfig(_Section):
    """``[data]``: the gravity stations and their uncertainties.

    After :func:`load_config`, ``format`` is always ``"csv"``, ``"ubc"`` or ``"xyz"`` (csv or
    ubc chosen by suffix when the config leaves it out) and every path is absolute. ``std`` is in
    ``units``; the total standard deviation of a station is its std (column or ``std_path``,
    else ``std``) plus ``std_relative * |gz|`` (see :func:`gravuq.survey.read_survey`).

    Data split over several header-less files (one value per line, as published for many
    surveys) are read with ``format = "xyz"`` for the coordinates and ``gz_path`` and
    ``std_path`` for the anomaly and its uncertainty, matched to the stations by line order.
    """

    path: Path = setting(check=existing_file(),
                         help="station file: CSV with a header, UBC-GIF .obs, or header-less xyz columns")
    format: str | None = setting(None, choice("csv", "ubc", "xyz"),
                                 "csv (header row) | ubc | xyz (no header: fields x, y, z[, gz[, std]] in "
                                 "that order, comma or space separated); default by suffix (.obs, .grv, "
                                 "UBC-layout .txt: ubc; else csv)")
    gz_path: Path | None = setting(None, existing_file(),
                                   "file of gz (in units), one value a line in the stations' order, "
                                   "instead of a gz column")
    std_path: Path | None = setting(None, existing_file(),
                                    "file of std (in units), one value a line in the stations' order, "
                                    "instead of a std column")
    columns: DataColumns = setting(DataColumns(), table(DataColumns), "CSV header names")
    units: str = setting("mGal", choice(*GRAVITY_UNITS_TO_MGAL), "units of gz and std in the file")
    std: float | None = setting(None, number(0, exclusive=True),
                                "uncertainty (in units) used when the file has no std column")
    std_relative: float = setting(0.0, number(0), "plus this fraction of |gz| (both may be given)")
    std_min: float = setting(0.0, number(0),
                             "smallest std a station may have (in units); smaller ones are raised to it: "
                             "the modelling error of cells wider than the station spacing, which "
                             "instrument accuracies leave out; 0 = off")
    detrend: str = setting("none", choice("none", "mean", "plane"),
                           "regional removed before inversion: none | mean | plane (from gz only)")
    components: tuple[str, ...] = setting(("gz",), subset(*COMPONENTS),
                                          "measured components, inverted jointly: gz (mGal, in units) and any of "
                                          "gxx, gxy, gxz, gyy, gyz, gzz (Eotvos)")
    gradient_std: float | None = setting(None, number(0, exclusive=True),
                                         "uncertainty (Eotvos) of a gradient component without its std column")

    def _validated(self, where: _Where) -> Self:
        # Two roles reading one column would silently invert the wrong numbers.
        names: dict[str, str] = {}
        gradients = [c for c in self.components if c != "gz"]
        roles = ["x", "y", "z"] + (["gz", "std"] if "gz" in self.components else [])
        for role in roles + gradients + [f"std_{c}" for c in gradients]:
            name = getattr(self.columns, role)
            if name in names:
                raise where.at("columns").error(
                    f"columns.{names[name]} and columns.{role} both name the column '{name}': "
                    "expected a different column for each"
                )
            names[name] = role
        file_format = self.format
        if file_format is None:
            file_format = sniff_format(self.path)
        if file_format == "ubc":
            for key in ("gz_path", "std_path"):
                if getattr(self, key) is not None:
                    raise where.at(key).error(
                        "not used with a UBC-GIF station file (it holds gz and std itself): "
                        'expected format = "csv" or "xyz" for the file in path'
                    )
        if gradients and file_format == "xyz":
            raise where.at("components").error(
                'gradient components are read from a CSV with a header (one column per component) or a '
                'UBC-GIF GG3D file (format = "ubc"), not from format = "xyz"')
        if gradients and file_format == "ubc" and "gz" in self.components:
            raise where.at("components").error(
                "a UBC-GIF file holds gz (GRAV3D) or gradients (GG3D), not both: expected gz alone or "
                "gradient components alone with format = \"ubc\" (or a CSV with a column per component)")
        if file_format == "xyz" and self.columns != DataColumns():
            raise where.at("columns").error(
                'names header columns, but format = "xyz" files have no header: their fields are '
                "x, y, z[, gz[, std]] in that order (or give gz_path, std_path)"
            )
        return self if file_format == self.format else dataclasses.replace(self, format=file_format)


#: Mesh coordinates beyond this magnitude (m) are not on Earth in any projection.
MAX_COORDINATE = 1e8
#: Cells narrower than this (m) cannot be resolved by gravity and break the operators' sizes.
MIN_CELL_WIDTH = 1e-3

_MESH_WAYS = (
    "give origin + cell_size + shape, origin + widths_x + widths_y + widths_z, "
    "or path (a UBC-GIF mesh file)"
)


@dataclass(frozen=True)
class MeshConfig(_Section):
    """``[mesh]``: the tensor mesh, in one of three ways.

    Either ``origin`` + ``cell_size`` + ``shape`` (a regular mesh), or ``origin`` + ``widths_x``
    + ``widths_y`` + ``widths_z`` (cell widths per axis; ``widths_z`` from bottom to top), or
    ``path`` (a UBC-GIF tensor mesh file). Keys of the other ways stay ``None``. ``origin`` is
    the west-south-bottom corner (x, y, z) in metres, z positive up; ``shape`` is (nx, ny, nz).
    """

    origin: tuple[float, float, float] | None = setting(
        None, numbers(3), "west, south, bottom corner (x, y, z), m")
    cell_size: tuple[float, float, float] | None = setting(
        None, numbers(3, positive=True), "cell widths along x, y, z, m")
    shape: tuple[int, int, int] | None = setting(
        None, numbers(3, positive=True, integers=True), "cells along x, y, z (nx, ny, nz)")
    widths_x: tuple[float, ...] | None = setting(
        None, numbers(positive=True), "cell widths from west to east, m")
    widths_y: tuple[float, ...] | None = setting(
        None, numbers(positive=True), "cell widths from south to north, m")
    widths_z: tuple[float, ...] | None = setting(
        None, numbers(positive=True), "cell widths from bottom to top, m")
    path: Path | None = setting(None, existing_file(), "a UBC-GIF tensor mesh file")
    topography: Path | None = setting(
        None, existing_file(), "ground surface: CSV of x, y, z points (m) or a NetCDF (y, x) elevation grid; "
        "cells whose centre lies above it are air (inactive, zero contrast)")

    def _validated(self, where: _Where) -> Self:
        keys = ("origin", "cell_size", "shape", "widths_x", "widths_y", "widths_z", "path")
        given = [key for key in keys if getattr(self, key) is not None]
        regular = [key for key in given if key in ("cell_size", "shape")]
        widths = [key for key in given if key.startswith("widths_")]
        if not given:
            raise where.error(f"no mesh given: {_MESH_WAYS}")
        if "path" in given:
            if len(given) > 1:
                others = ", ".join(key for key in given if key != "path")
                raise where.error(
                    f"path cannot be combined with {others}: the UBC-GIF mesh file sets its "
                    f"own origin and cell widths ({_MESH_WAYS})"
                )
            return self
        if regular and widths:
            raise where.error(
                f"mixes two ways of giving the mesh ({', '.join(regular)} and "
                f"{', '.join(widths)}): {_MESH_WAYS}"
            )
        if regular:
            needed = ["origin", "cell_size", "shape"]
        elif widths:
            needed = ["origin", "widths_x", "widths_y", "widths_z"]
        else:
            raise where.error(f"origin alone does not define a mesh: {_MESH_WAYS}")
        missing = [key for key in needed if key not in given]
        if missing:
            present = " and ".join(key for key in needed if key in given)
            raise where.at(missing[0]).error(
                f"missing required key (needed with {present}: {_MESH_WAYS})"
            )
        if max(abs(value) for value in self.origin) > MAX_COORDINATE:
            raise where.at("origin").error(
                f"expected coordinates within +-{MAX_COORDINATE:g} m (UTM eastings and northings are below "
                f"1e7 m), found {list(self.origin)}")
        for key in ("cell_size", "widths_x", "widths_y", "widths_z"):
            values = getattr(self, key)
            if values is not None and min(values) < MIN_CELL_WIDTH:
                raise where.at(key).error(
                    f"expected cell widths of at least {MIN_CELL_WIDTH:g} m, found {min(values):g}")
        return self


@dataclass(frozen=True)
class ModelConfig(_Section):
    """``[model]``: the implicit neural representation (coordinates -> density contrast).

    ``bounds`` are the limits of the bounded output head, density contrast in kg/m^3.
    """

    encoding: str = setting("hash", choice("none", "positional", "fourier", "hash"),
                            "coordinate encoding: none | positional | fourier | hash")
    frequencies: int = setting(8, integer(0),
                               "positional: octaves; fourier: features = 2 * frequencies")
    sigma: float = setting(2.0, number(0, exclusive=True),
                           "fourier: scale of the Gaussian frequency matrix")
    width: int = setting(32, integer(1), "neurons per hidden layer")
    depth: int = setting(1, integer(1), "hidden layers")
    activation: str = setting("gelu", choice("relu", "leaky_relu", "tanh", "sine", "gelu"),
                              "hidden activation")
    bounds: tuple[float, float] = setting((-600.0, 600.0), interval(),
                                          "density contrast limits [lower, upper], kg/m^3")
    head: str = setting("bounded", choice("bounded", "linear"),
                        "output head: bounded (scaled tanh into bounds) | linear")
    hash_levels: int = setting(4, integer(1), "hash: resolution levels")
    hash_features: int = setting(2, integer(1), "hash: features per level")
    hash_table_size: int | None = setting(
        None, power_of_two(), "hash: table entries per level (default: the smallest power of two at least the "
        "mesh's cells, from 2^12 to 2^19)")
    hash_base_resolution: int = setting(4, integer(1), "hash: grid cells per axis, coarsest")
    hash_max_resolution: int = setting(64, integer(1), "hash: grid cells per axis, finest")

    def _validated(self, where: _Where) -> Self:
        if self.encoding == "fourier" and self.frequencies < 1:
            raise where.at("frequencies").error(
                f'expected a positive integer with encoding = "fourier", found {self.frequencies}'
            )
        if self.hash_max_resolution < self.hash_base_resolution:
            raise where.at("hash_max_resolution").error(
                f"expected an integer >= hash_base_resolution ({self.hash_base_resolution}), "
                f"found {self.hash_max_resolution}"
            )
        return self


@dataclass(frozen=True)
class OutputConfig(_Section):
    """``[output]``: where results go and what is written. ``threshold`` is in kg/m^3."""

    directory: Path = setting(Path("results"), folder(), "results folder", check_default=True)
    threshold: float = setting(200.0, number(),
                               "density contrast, kg/m^3, for exceedance maps and drill logs")
    formats: tuple[str, ...] = setting(("netcdf", "png"), subset("netcdf", "png", "ubc", "vtk"),
                                       "outputs: netcdf, png, ubc, vtk")


@dataclass(frozen=True)
class TruthConfig(_Section):
    """``[truth]``: a known model on the same mesh, for synthetic tests."""

    path: Path = setting(check=existing_file(), help="NetCDF file with dims (z, y, x)")
    variable: str = setting("density", text(), "variable holding the density contrast")
    units: str = setting("kg/m3", choice(*DENSITY_UNITS_TO_KG_M3), "density units in the file")


@dataclass(frozen=True)
class ForwardConfig(_Section):
    """``[forward]``: how the sensitivity (stations x cells) is stored and applied."""

    mode: str = setting("auto", choice("auto", "dense", "matrix_free", "fft"),
                        "dense matrix, matrix-free, FFT (stations on a grid at one height), or auto: "
                        "FFT where the geometry allows, else by memory")
    dtype: str = setting("float32", choice("float32", "float64"), "storage of the sensitivity")
    memory_limit_gb: float | None = setting(None, number(0, exclusive=True),
                                            "memory for a dense matrix, GB; default: available")
    chunk_size: int = setting(256, integer(1), "stations per chunk")
    split: str = setting("auto", choice("auto", "stations", "none"),
                         "with --distributed, split the stations (rows) over the processes: auto when only a "
                         "share of the dense operator fits, stations always, none never")


