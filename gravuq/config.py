"""TOML config -> frozen, validated settings (SPEC section 3).

Each config section is a frozen dataclass whose fields are the section's keys. A key is declared
with :func:`setting`: its default, the check that validates a user's value and a one-line help
text, so adding a key later is one line. Checks are strict: a string where a number is expected
is an error, integers are accepted where a float is expected, booleans never count as numbers.
Every problem is raised as :class:`~gravuq.errors.InputError` with one message naming the file,
the key, what was found and what was expected, for example::

    config.toml: [model] widht: unknown key (did you mean 'width'?)
    config.toml: [inference] epochs: expected a positive integer, found -3

Relative paths in a config are resolved against the folder of the config file and stored as
absolute :class:`~pathlib.Path` objects.

Units follow SPEC section 1: lengths in metres, densities (``bounds``, ``prior_std``,
``threshold``) as density contrast in kg/m^3, ``[data] std`` in the data's ``units``.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Self

from .constants import DENSITY_UNITS_TO_KG_M3, GRAVITY_UNITS_TO_MGAL
from .errors import InputError

__all__ = [
    "Config",
    "DataColumns",
    "DataConfig",
    "ForwardConfig",
    "InferenceConfig",
    "MeshConfig",
    "ModelConfig",
    "OutputConfig",
    "TruthConfig",
    "load_config",
    "parse_config",
    "setting",
]


# ---------------------------------------------------------------------------------------------
# Where a value sits, for messages
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Where:
    """The file, section and key of a value; builds the messages of errors about it."""

    file: str
    base: Path  # folder that relative paths are resolved against
    section: str
    key: str = ""

    def at(self, key: str) -> _Where:
        key = f"{self.key}.{key}" if self.key else key
        return dataclasses.replace(self, key=key)

    @property
    def label(self) -> str:
        return f"[{self.section}] {self.key}" if self.key else f"[{self.section}]"

    def error(self, message: str) -> InputError:
        return InputError(f"{self.file}: {self.label}: {message}")


def _toml(value: Any) -> str:
    """A value written the way it would appear in TOML, shortened for messages."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = f'"{value}"'
    elif isinstance(value, Mapping):
        text = "{" + ", ".join(f"{key} = {_toml(item)}" for key, item in value.items()) + "}"
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(_toml(item) for item in value) + "]"
    else:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _found(value: Any) -> str:
    """``value`` for a 'found ...' clause; names the kind where the text alone would mislead."""
    if isinstance(value, bool):
        return f"{_toml(value)} (a boolean)"
    if isinstance(value, str):
        return f"{_toml(value)} (a string)"
    if isinstance(value, Mapping):
        return f"a table {_toml(value)}"
    return _toml(value)




# ---------------------------------------------------------------------------------------------
# Checks: each takes the value a user wrote and where it sits, and returns the stored value
# ---------------------------------------------------------------------------------------------

Check = Callable[[Any, _Where], Any]


def _is_number(value: Any) -> bool:
    # bool is a subclass of int in Python; `members = true` must not read as 1.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number_phrase(minimum: float | None, exclusive: bool, noun: str) -> str:
    if minimum is None:
        return f"a {noun}"
    if minimum == 0 and exclusive:
        return f"a positive {noun}"
    return f"a {noun} {'>' if exclusive else '>='} {minimum:g}"


def number(minimum: float | None = None, *, exclusive: bool = False) -> Check:
    """A finite number (an integer is accepted and stored as float), optionally bounded below."""
    expected = _number_phrase(minimum, exclusive, "number")

    def check(value: Any, where: _Where) -> float:
        valid = _is_number(value) and math.isfinite(value)
        if valid and minimum is not None:
            valid = value > minimum if exclusive else value >= minimum
        if not valid:
            raise where.error(f"expected {expected}, found {_found(value)}")
        return float(value)

    return check


def integer(minimum: int | None = None, maximum: int | None = None) -> Check:
    """An integer (a float such as ``3.0`` is refused), optionally within bounds."""
    if maximum is not None:
        expected = f"an integer from {minimum} to {maximum}"
    elif minimum == 1:
        expected = "a positive integer"
    elif minimum is not None:
        expected = f"an integer >= {minimum}"
    else:
        expected = "an integer"

    def check(value: Any, where: _Where) -> int:
        valid = _is_integer(value)
        if valid and minimum is not None:
            valid = value >= minimum
        if valid and maximum is not None:
            valid = value <= maximum
        if not valid:
            raise where.error(f"expected {expected}, found {_found(value)}")
        return int(value)

    return check


def power_of_two() -> Check:
    """A positive integer power of two (hash tables index with a bit mask)."""

    def check(value: Any, where: _Where) -> int:
        if not (_is_integer(value) and value >= 1 and value & (value - 1) == 0):
            raise where.error(f"expected a power of two such as 16384, found {_found(value)}")
        return int(value)

    return check


def choice(*options: str) -> Check:
    """One string out of ``options``."""
    expected = "one of " + ", ".join(f'"{option}"' for option in options)

    def check(value: Any, where: _Where) -> str:
        if isinstance(value, str) and value in options:
            return value
        message = f"expected {expected}, found {_found(value)}"
        if isinstance(value, str):
            close = difflib.get_close_matches(value, options, n=1, cutoff=0.6)
            if close:
                message += f' (did you mean "{close[0]}"?)'
        raise where.error(message)

    return check


def text() -> Check:
    """A non-empty string."""

    def check(value: Any, where: _Where) -> str:
        if not isinstance(value, str) or not value.strip():
            raise where.error(f"expected a non-empty string, found {_found(value)}")
        return value

    return check


def _resolve(value: Any, where: _Where, what: str) -> Path:
    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise where.error(f"expected {what} (a string), found {_found(value)}")
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = where.base / path
    return path.resolve()


def existing_file() -> Check:
    """A path to an existing file, resolved against the config's folder."""

    def check(value: Any, where: _Where) -> Path:
        path = _resolve(value, where, "a file path")
        if path.is_dir():
            raise where.error(f"expected a file, found a folder: {path}")
        if not path.is_file():
            raise where.error(f"file not found: {path}")
        return path

    return check


def folder() -> Check:
    """A folder path (it need not exist yet), resolved against the config's folder."""

    def check(value: Any, where: _Where) -> Path:
        path = _resolve(value, where, "a folder path")
        if path.exists() and not path.is_dir():
            raise where.error(f"expected a folder, found a file: {path}")
        return path

    return check


def numbers(
    length: int | None = None, *, positive: bool = False, integers: bool = False
) -> Check:
    """A non-empty list of numbers (of a fixed ``length`` if given), stored as a tuple."""
    items = ("positive " if positive else "") + ("integers" if integers else "numbers")
    expected = f"a list of {length} {items}" if length is not None else f"a non-empty list of {items}"
    is_item = _is_integer if integers else _is_number

    def check(value: Any, where: _Where) -> tuple:
        valid = isinstance(value, (list, tuple)) and len(value) > 0
        valid = valid and (length is None or len(value) == length)
        valid = valid and all(is_item(item) and math.isfinite(item) for item in value)
        valid = valid and (not positive or all(item > 0 for item in value))
        if not valid:
            raise where.error(f"expected {expected}, found {_found(value)}")
        return tuple(int(item) if integers else float(item) for item in value)

    return check


def interval() -> Check:
    """Two numbers ``[lower, upper]`` with ``lower < upper``."""
    pair = numbers(2)

    def check(value: Any, where: _Where) -> tuple[float, float]:
        lower, upper = pair(value, where)
        if not lower < upper:
            raise where.error(f"expected [lower, upper] with lower < upper, found {_found(value)}")
        return lower, upper

    return check


def subset(*options: str) -> Check:
    """A non-empty list of distinct strings out of ``options``, stored as a tuple."""
    expected = "a non-empty list of distinct values out of " + ", ".join(f'"{o}"' for o in options)

    def check(value: Any, where: _Where) -> tuple[str, ...]:
        valid = isinstance(value, (list, tuple)) and len(value) > 0
        valid = valid and all(isinstance(item, str) and item in options for item in value)
        valid = valid and len(set(value)) == len(value)
        if not valid:
            raise where.error(f"expected {expected}, found {_found(value)}")
        return tuple(value)

    return check


def table(section: type) -> Check:
    """A nested table parsed with the same rules as a section (e.g. ``[data] columns``)."""

    def check(value: Any, where: _Where) -> Any:
        return _parse_section(section, value, where)

    return check


def setting(default: Any = MISSING, check: Check | None = None, help: str = "", *,
            check_default: bool = False) -> Any:
    """Declare one config key: a dataclass field that carries its check and help text.

    Parameters
    ----------
    default
        The value used when the key is absent; leave it out for a required key.
    check
        Validates and converts the value a user wrote (see :func:`number`, :func:`choice`...).
    help
        One line for ``--help`` and the README, with units.
    check_default
        Run the check on the default too when the key is absent: paths, so that a default
        folder is resolved against the config file's folder like a written one.
    """
    metadata = {"check": check, "help": help, "check_default": check_default}
    return field(default=default, metadata=metadata)


class _Section:
    """Base of the section dataclasses: a hook for checks that involve several keys."""

    def _validated(self, where: _Where) -> Self:
        return self


def _settings(section: type) -> dict[str, dataclasses.Field]:
    return {item.name: item for item in fields(section) if item.metadata.get("check")}


def _unknown_key_hint(key: str, section: type) -> str:
    """A typo's nearest valid key, else the section where the key belongs, else the list."""
    valid = list(_settings(section))
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    owners = [name for name, (kind, _) in _SECTIONS.items() if key in _settings(kind)]
    if owners:
        return f"it belongs in [{owners[0]}]"
    return "valid keys: " + ", ".join(valid)


def _parse_section(section: type, values: Any, where: _Where) -> Any:
    if not isinstance(values, Mapping):
        raise where.error(f"expected a table of keys, found {_found(values)}")
    settings = _settings(section)
    for key in values:
        if key not in settings:
            raise where.at(key).error(f"unknown key ({_unknown_key_hint(key, section)})")
    parsed: dict[str, Any] = {}
    for name, declared in settings.items():
        check = declared.metadata["check"]
        if name in values:
            parsed[name] = check(values[name], where.at(name))
        elif declared.default is MISSING:
            help_text = declared.metadata["help"]
            raise where.at(name).error(
                "missing required key" + (f" ({help_text})" if help_text else "")
            )
        elif declared.metadata["check_default"] and declared.default is not None:
            parsed[name] = check(declared.default, where.at(name))
    return section(**parsed)._validated(where)


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
                           "regional removed before inversion: none | mean | plane")

    def _validated(self, where: _Where) -> Self:
        # Two roles reading one column would silently invert the wrong numbers.
        names: dict[str, str] = {}
        for role in ("x", "y", "z", "gz", "std"):
            name = getattr(self.columns, role)
            if name in names:
                raise where.at("columns").error(
                    f"columns.{names[name]} and columns.{role} both name the column '{name}': "
                    "expected a different column for each"
                )
            names[name] = role
        file_format = self.format
        if file_format is None:
            from .survey import sniff_format  # survey imports config for its types only

            file_format = sniff_format(self.path)
        if file_format == "ubc":
            for key in ("gz_path", "std_path"):
                if getattr(self, key) is not None:
                    raise where.at(key).error(
                        "not used with a UBC-GIF station file (it holds gz and std itself): "
                        'expected format = "csv" or "xyz" for the file in path'
                    )
        if file_format == "xyz" and self.columns != DataColumns():
            raise where.at("columns").error(
                'names header columns, but format = "xyz" files have no header: their fields are '
                "x, y, z[, gz[, std]] in that order (or give gz_path, std_path)"
            )
        return self if file_format == self.format else dataclasses.replace(self, format=file_format)


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
    width: int = setting(48, integer(1), "neurons per hidden layer")
    depth: int = setting(3, integer(1), "hidden layers")
    activation: str = setting("leaky_relu", choice("relu", "leaky_relu", "tanh", "sine", "gelu"),
                              "hidden activation")
    bounds: tuple[float, float] = setting((-600.0, 600.0), interval(),
                                          "density contrast limits [lower, upper], kg/m^3")
    head: str = setting("bounded", choice("bounded", "linear"),
                        "output head: bounded (scaled tanh into bounds) | linear")
    hash_levels: int = setting(4, integer(1), "hash: resolution levels")
    hash_features: int = setting(4, integer(1), "hash: features per level")
    hash_table_size: int = setting(2**12, power_of_two(), "hash: table entries per level")
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
class InferenceConfig(_Section):
    """``[inference]``: the recovery method and its training settings.

    ``prior_std`` is in kg/m^3, ``prior_correlation_length`` in metres.
    """

    method: str = setting("ensemble", choice("deterministic", "tikhonov", "ensemble", "last_layer",
                                             "svgd", "gaussian"), "recovery method")
    ensemble_mode: str = setting("rml", choice("rml", "init", "prior_function"),
                                 "ensemble: rml (randomised MAP: prior draw + network, anchored) | "
                                 "prior_function (prior draw + network, no anchor penalty) | init (seeds only)")
    members: int = setting(20, integer(1), "ensemble members / SVGD particles")
    epochs: int = setting(500, integer(1), "training epochs")
    learning_rate: float = setting(1e-2, number(0, exclusive=True), "Adam learning rate")
    gradient_clip: float = setting(0.0, number(0),
                                   "clip each member's gradient to this global norm before Adam; 0 = off")
    schedule: str = setting("constant", choice("constant", "cosine", "exponential"),
                            "learning-rate schedule")
    # jax.random.key takes a 32-bit seed; larger ones would fail deep inside JAX.
    seed: int = setting(0, integer(0, 2**32 - 1), "random seed: makes a run reproducible")
    target_misfit: float = setting(1.0, number(0, exclusive=True),
                                   "stop when chi^2/N reaches it (discrepancy principle)")
    patience: int = setting(50, integer(0), "epochs without improvement before stopping; 0 = off")
    prior_std: float = setting(50.0, number(0, exclusive=True), "prior scale, kg/m^3")
    prior_correlation_length: float = setting(0.0, number(0),
                                              "prior correlation length, m; 0 = independent cells")
    depth_weighting: float = setting(0.0, number(0),
                                     "prior: Li-Oldenburg depth-weighting exponent beta (prior std grows "
                                     "with depth); 0 = off")
    prior_scale: str = setting("fixed", choice("fixed", "hierarchical"),
                               "fixed: prior_std everywhere | hierarchical: per-cell prior scales learned "
                               "from the data by evidence maximisation (for compact bodies; needs the "
                               "dense float64 sensitivity in memory)")
    prior_scale_smoothing: float = setting(1.0, number(0, exclusive=True),
                                           "hierarchical prior: smoothing of the variance field, in cells")
    tikhonov_depth_weighting: float = setting(1.0, number(0),
                                              "tikhonov: Li-Oldenburg depth-weighting exponent; 0 = off")
    tikhonov_smallness: float = setting(10.0, number(0, exclusive=True),
                                        "tikhonov: weight of smallness relative to smoothness")
    nuts_chains: int = setting(2, integer(1), "NUTS chains")
    nuts_warmup: int = setting(500, integer(1), "NUTS warm-up steps per chain")
    nuts_samples: int = setting(500, integer(1), "NUTS samples per chain")
    last_layer_solver: str = setting("auto", choice("auto", "nuts", "closed_form"),
                                     "last_layer: NUTS over weights and hyperparameters, the closed-form "
                                     "Gaussian at evidence-maximising hyperparameters, or auto (NUTS up to "
                                     "128 features)")
    svgd_kernel: str = setting("function", choice("function", "weight"),
                               "SVGD kernel on predicted densities (function) or weights")


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


#: Sections: the class parsing each, and whether a config must have it.
_SECTIONS: dict[str, tuple[type, bool]] = {
    "data": (DataConfig, True),
    "mesh": (MeshConfig, True),
    "model": (ModelConfig, False),
    "inference": (InferenceConfig, False),
    "output": (OutputConfig, False),
    "truth": (TruthConfig, False),
    "forward": (ForwardConfig, False),
}


@dataclass(frozen=True)
class Config:
    """A whole validated run: one field per config section plus the file it came from.

    ``truth`` is ``None`` when the config has no ``[truth]`` section; every other optional
    section holds its defaults when absent. ``path`` is the absolute path of the config file
    and ``text`` its raw TOML, recorded in outputs for provenance.
    """

    data: DataConfig
    mesh: MeshConfig
    path: Path
    text: str
    model: ModelConfig = field(default_factory=ModelConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    truth: TruthConfig | None = None
    forward: ForwardConfig = field(default_factory=ForwardConfig)

    @property
    def hash(self) -> str:
        """SHA-256 of the raw TOML text, as hex: identifies the run's settings."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def parse_config(text: str, path: str | Path) -> Config:
    """Validate TOML ``text`` as if it were read from ``path``.

    Parameters
    ----------
    text
        The TOML document.
    path
        The config file it belongs to: names it in messages, and its folder resolves the
        relative paths inside (the file itself need not exist).

    Raises
    ------
    InputError
        For bad TOML (with line and column), unknown sections or keys, wrong types, values out
        of range, missing required keys or missing files.
    """
    display = str(path)
    path = Path(path).expanduser().resolve()
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        # tomllib's message ends with "(at line L, column C)".
        raise InputError(f"{display}: not valid TOML: {error}") from None
    base = path.parent
    top = _Where(display, base, "")
    for name, value in document.items():
        if name in _SECTIONS:
            continue
        if isinstance(value, Mapping):
            close = difflib.get_close_matches(name, list(_SECTIONS), n=1, cutoff=0.6)
            hint = f"did you mean [{close[0]}]?" if close else "valid sections: " + ", ".join(
                f"[{section}]" for section in _SECTIONS)
            raise InputError(f"{display}: [{name}]: unknown section ({hint})")
        owners = [section for section, (kind, _) in _SECTIONS.items() if name in _settings(kind)]
        hint = f"it belongs in [{owners[0]}]" if owners else "keys belong inside a [section]"
        raise InputError(f"{display}: {name}: key outside any section ({hint})")
    sections: dict[str, Any] = {}
    for name, (kind, required) in _SECTIONS.items():
        where = dataclasses.replace(top, section=name)
        if name in document:
            sections[name] = _parse_section(kind, document[name], where)
        elif required:
            raise InputError(f"{display}: [{name}]: missing required section")
        elif name != "truth":
            sections[name] = _parse_section(kind, {}, where)
    return Config(path=path, text=text, **sections)


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file (SPEC section 3).

    Parameters
    ----------
    path
        The config file. Relative paths inside it are resolved against its folder.

    Returns
    -------
    Config
        Frozen settings with every default filled in.

    Raises
    ------
    InputError
        If the file is missing or unreadable, or for any problem :func:`parse_config` reports.
    """
    display = str(path)
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{display}: config file not found") from None
    except IsADirectoryError:
        raise InputError(f"{display}: expected a TOML config file, found a folder") from None
    except UnicodeDecodeError as error:
        raise InputError(
            f"{display}: not UTF-8 text (byte {error.start}): expected a TOML config file"
        ) from None
    except OSError as error:
        raise InputError(f"{display}: cannot read the config file: {error.strerror}") from None
    return parse_config(text, file)
