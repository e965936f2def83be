"""Config loading: defaults, path resolution and one clear InputError per kind of mistake."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

import pytest

from gravuq.config import (
    Config,
    DataConfig,
    ForwardConfig,
    InferenceConfig,
    ModelConfig,
    OutputConfig,
    load_config,
    parse_config,
)
from gravuq.errors import InputError

MESH = """
[mesh]
origin = [-25.0, -25.0, -525.0]
cell_size = [50.0, 50.0, 50.0]
shape = [21, 21, 11]
"""


def write_config(folder: Path, body: str, *, data: str | None = 'path = "stations.csv"') -> Path:
    """A config in ``folder`` with an existing stations file; ``body`` is appended."""
    (folder / "stations.csv").write_text("x,y,z,gz,std\n0,0,1,0.5,0.01\n")
    text = (f"[data]\n{data}\n" if data is not None else "") + body
    path = folder / "config.toml"
    path.write_text(text)
    return path


def load_error(folder: Path, body: str, **kwargs) -> str:
    with pytest.raises(InputError) as caught:
        load_config(write_config(folder, body, **kwargs))
    message = str(caught.value)
    assert "config.toml" in message
    return message


def test_minimal_config_has_every_default(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, MESH))
    assert isinstance(config, Config)
    assert config.path == (tmp_path / "config.toml").resolve()
    assert config.data.path == (tmp_path / "stations.csv").resolve()
    assert config.data.format == "csv"  # chosen by suffix
    assert config.data.units == "mGal" and config.data.std is None and config.data.detrend == "none"
    assert config.mesh.origin == (-25.0, -25.0, -525.0)
    assert config.mesh.shape == (21, 21, 11) and all(type(n) is int for n in config.mesh.shape)
    assert config.mesh.widths_x is None and config.mesh.path is None
    assert config.model == ModelConfig()
    assert config.inference == InferenceConfig()
    assert config.forward == ForwardConfig()
    assert config.truth is None
    # The default output folder is resolved against the config's folder, not the cwd.
    assert config.output.directory == (tmp_path / "results").resolve()
    assert config.output.formats == OutputConfig().formats == ("netcdf", "png")
    assert config.hash == hashlib.sha256(config.text.encode()).hexdigest()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.model = ModelConfig()  # type: ignore[misc]


def test_spec_example_values_round_trip(tmp_path: Path) -> None:
    (tmp_path / "truth.nc").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    body = MESH + """
[model]
encoding = "hash"
frequencies = 0
width = 256
depth = 4
bounds = [-600, 600.5]
hash_table_size = 1024
[inference]
method = "svgd"
members = 7
learning_rate = 1
seed = 42
[output]
directory = "sub/out"
threshold = -100
formats = ["vtk", "ubc", "png"]
[truth]
path = "truth.nc"
units = "g/cc"
[forward]
mode = "matrix_free"
memory_limit_gb = 2
"""
    config = load_config(write_config(tmp_path, body, data='path = "stations.csv"\nunits = "um/s2"\nstd = 1\n'
                                      'columns = { gz = "gz", std = "std" }\ndetrend = "plane"'))
    assert config.data.units == "um/s2" and config.data.std == 1.0 and config.data.detrend == "plane"
    assert config.model.encoding == "hash" and config.model.width == 256
    assert config.model.bounds == (-600.0, 600.5)
    assert type(config.inference.learning_rate) is float and config.inference.learning_rate == 1.0
    assert config.inference.method == "svgd" and config.inference.members == 7
    assert config.output.directory == (tmp_path / "sub" / "out").resolve()
    assert config.output.threshold == -100.0
    assert config.output.formats == ("vtk", "ubc", "png")
    assert config.truth is not None and config.truth.units == "g/cc"
    assert config.truth.path == (tmp_path / "truth.nc").resolve() and config.truth.variable == "density"
    assert config.forward.mode == "matrix_free" and config.forward.memory_limit_gb == 2.0


def test_mesh_from_width_lists_and_from_file(tmp_path: Path) -> None:
    widths = '[mesh]\norigin = [0, 0, -30]\nwidths_x = [1, 2]\nwidths_y = [3.5]\nwidths_z = [10, 10, 10]\n'
    config = load_config(write_config(tmp_path, widths))
    assert config.mesh.widths_x == (1.0, 2.0) and config.mesh.widths_z == (10.0, 10.0, 10.0)
    assert config.mesh.cell_size is None and config.mesh.shape is None

    (tmp_path / "mesh.msh").write_text("1 1 1\n0 0 0\n1\n1\n1\n")
    config = load_config(write_config(tmp_path, '[mesh]\npath = "mesh.msh"\n'))
    assert config.mesh.path == (tmp_path / "mesh.msh").resolve() and config.mesh.origin is None


@pytest.mark.parametrize(
    ("suffix", "content", "expected"),
    [
        (".obs", "1\n0 0 1 0.5 0.01\n", "ubc"),
        (".grv", "1\n0 0 1 0.5 0.01\n", "ubc"),
        (".txt", "! comment\n1\n0 0 1 0.5 0.01\n", "ubc"),
        (".txt", "x,y,z,gz\n0,0,1,0.5\n", "csv"),
        (".dat", "x,y,z,gz\n0,0,1,0.5\n", "csv"),
    ],
)
def test_data_format_by_suffix(tmp_path: Path, suffix: str, content: str, expected: str) -> None:
    (tmp_path / f"stations{suffix}").write_text(content)
    config = load_config(write_config(tmp_path, MESH, data=f'path = "stations{suffix}"'))
    assert config.data.format == expected


def test_parse_config_without_a_file(tmp_path: Path) -> None:
    (tmp_path / "stations.csv").write_text("x,y,z,gz\n")
    config = parse_config('[data]\npath = "stations.csv"\n' + MESH, tmp_path / "virtual.toml")
    assert config.data.path == (tmp_path / "stations.csv").resolve()


@pytest.mark.parametrize(
    ("body", "pattern"),
    [
        # unknown keys and sections, with the nearest valid name suggested
        ("[model]\nwidht = 3\n", r"config\.toml: \[model\] widht: unknown key \(did you mean 'width'\?\)"),
        ("[inferance]\nepochs = 3\n", r"\[inferance\]: unknown section \(did you mean \[inference\]\?\)"),
        ("[model]\nepochs = 3\n", r"\[model\] epochs: unknown key \(it belongs in \[inference\]\)"),
        ("[model]\nzzzz = 3\n", r"\[model\] zzzz: unknown key \(valid keys: encoding, "),
        # wrong types: strings, booleans, floats for integers
        ("[inference]\nepochs = -3\n", r"\[inference\] epochs: expected a positive integer, found -3$"),
        ("[inference]\nepochs = 3.0\n", r"\[inference\] epochs: expected a positive integer, found 3\.0"),
        ('[inference]\nlearning_rate = "0.1"\n', r"learning_rate: expected a positive number, found \"0\.1\" \(a string\)"),
        ("[inference]\nmembers = true\n", r"members: expected a positive integer, found true \(a boolean\)"),
        ("[inference]\nlearning_rate = nan\n", r"learning_rate: expected a positive number, found nan"),
        ("[model]\nbounds = [600, -600]\n", r"\[model\] bounds: expected \[lower, upper\] with lower < upper"),
        ("[model]\nbounds = [1, 2, 3]\n", r"\[model\] bounds: expected a list of 2 numbers"),
        ('[model]\nactivation = "tahn"\n', r"activation: expected one of .*found \"tahn\".*did you mean \"tanh\""),
        ("[model]\nhash_table_size = 1000\n", r"hash_table_size: expected a power of two"),
        ('[model]\nencoding = "fourier"\nfrequencies = 0\n', r"\[model\] frequencies: expected a positive integer"),
        ("[model]\nhash_base_resolution = 8\nhash_max_resolution = 4\n", r"hash_max_resolution: expected an integer >= "),
        ("[model]\nsigma = 0\n", r"\[model\] sigma: expected a positive number, found 0"),
        ("[inference]\nseed = -1\n", r"\[inference\] seed: expected an integer from 0 to 4294967295"),
        ("[inference]\nprior_correlation_length = -1.5\n", r"prior_correlation_length: expected a number >= 0"),
        ('[output]\nformats = ["png", "pdf"]\n', r"\[output\] formats: expected a non-empty list .*found \[\"png\", \"pdf\"\]"),
        ("[output]\nformats = []\n", r"\[output\] formats: expected a non-empty list"),
        ('[output]\ndirectory = "config.toml"\n', r"\[output\] directory: expected a folder, found a file"),
        ("[forward]\nchunk_size = 0\n", r"\[forward\] chunk_size: expected a positive integer, found 0"),
        ('[truth]\nunits = "g/cc"\n', r"\[truth\] path: missing required key"),
        ('[truth]\npath = "nope.nc"\n', r"\[truth\] path: file not found: .*nope\.nc"),
    ],
)
def test_bad_values_name_file_and_key(tmp_path: Path, body: str, pattern: str) -> None:
    message = load_error(tmp_path, MESH + body)
    assert re.search(pattern, message), message


def test_key_outside_any_section(tmp_path: Path) -> None:
    (tmp_path / "stations.csv").write_text("x,y,z,gz\n")
    path = tmp_path / "config.toml"
    path.write_text('seed = 3\n[data]\npath = "stations.csv"\n' + MESH)
    with pytest.raises(InputError, match=r"config\.toml: seed: key outside any section \(it belongs in \[inference\]\)"):
        load_config(path)
    path.write_text('model = 3\n[data]\npath = "stations.csv"\n' + MESH)
    with pytest.raises(InputError, match=r"config\.toml: \[model\]: expected a table of keys, found 3"):
        load_config(path)


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (None, r"config\.toml: \[data\]: missing required section"),
        ('format = "csv"', r"config\.toml: \[data\] path: missing required key"),
        ('path = "missing.csv"', r"config\.toml: \[data\] path: file not found: .*missing\.csv"),
        ('path = "."', r"\[data\] path: expected a file, found a folder"),
        ('path = 3', r"\[data\] path: expected a file path \(a string\), found 3"),
        ('path = "stations.csv"\ncolumns = { gz = "g", grav = "g" }', r"\[data\] columns\.grav: unknown key"),
        ('path = "stations.csv"\ncolumns = { x = "e", y = "e" }', r"\[data\] columns: columns\.x and columns\.y both name"),
        ('path = "stations.csv"\nunits = "mgal"', r"\[data\] units: expected one of .*did you mean \"mGal\""),
        ('path = "stations.csv"\nstd = 0', r"\[data\] std: expected a positive number, found 0"),
        ('path = "stations.csv"\nstd_relative = -0.1', r"\[data\] std_relative: expected a number >= 0"),
        ('path = "stations.csv"\ndetrend = "linear"', r"\[data\] detrend: expected one of \"none\", \"mean\", \"plane\""),
    ],
)
def test_bad_data_section(tmp_path: Path, data: str | None, pattern: str) -> None:
    message = load_error(tmp_path, MESH, data=data)
    assert re.search(pattern, message), message


@pytest.mark.parametrize(
    ("mesh", "pattern"),
    [
        ("", r"config\.toml: \[mesh\]: missing required section"),
        ("[mesh]\n", r"\[mesh\]: no mesh given"),
        ("[mesh]\norigin = [0, 0, 0]\n", r"\[mesh\]: origin alone does not define a mesh"),
        ("[mesh]\norigin = [0, 0, 0]\ncell_size = [1, 1, 1]\nshape = [2, 2, 2]\nwidths_x = [1, 1]\n",
         r"\[mesh\]: mixes two ways of giving the mesh \(cell_size, shape and widths_x\)"),
        ('[mesh]\npath = "stations.csv"\norigin = [0, 0, 0]\n', r"\[mesh\]: path cannot be combined with origin"),
        ("[mesh]\norigin = [0, 0, 0]\ncell_size = [1, 1, 1]\n", r"\[mesh\] shape: missing required key"),
        ("[mesh]\ncell_size = [1, 1, 1]\nshape = [2, 2, 2]\n", r"\[mesh\] origin: missing required key"),
        ("[mesh]\norigin = [0, 0, 0]\ncell_size = [1, 0, 1]\nshape = [2, 2, 2]\n",
         r"\[mesh\] cell_size: expected a list of 3 positive numbers, found \[1, 0, 1\]"),
        ("[mesh]\norigin = [0, 0, 0]\ncell_size = [1, 1, 1]\nshape = [2, 2.5, 2]\n",
         r"\[mesh\] shape: expected a list of 3 positive integers"),
        ("[mesh]\norigin = [0, 0]\ncell_size = [1, 1, 1]\nshape = [2, 2, 2]\n", r"\[mesh\] origin: expected a list of 3 numbers"),
        ("[mesh]\norigin = [0, 0, 0]\nwidths_x = [1]\nwidths_y = []\nwidths_z = [1]\n",
         r"\[mesh\] widths_y: expected a non-empty list of positive numbers, found \[\]"),
    ],
)
def test_bad_mesh_section(tmp_path: Path, mesh: str, pattern: str) -> None:
    message = load_error(tmp_path, mesh)
    assert re.search(pattern, message), message


def test_toml_syntax_error_names_line(tmp_path: Path) -> None:
    message = load_error(tmp_path, MESH + "[model]\nwidth = = 3\n")
    # [data] takes 2 lines, MESH 5 (leading blank line included), [model] 1: the bad line is 9.
    assert "not valid TOML" in message and "line 9" in message, message


def test_missing_or_unreadable_config(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nowhere\.toml: config file not found"):
        load_config(tmp_path / "nowhere.toml")
    with pytest.raises(InputError, match="found a folder"):
        load_config(tmp_path)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputError, match=r"binary\.toml: not UTF-8"):
        load_config(binary)


def test_section_classes_build_programmatically(tmp_path: Path) -> None:
    # Other code (demo, tests) builds settings without a file: defaults must be usable as is.
    data = DataConfig(path=tmp_path / "stations.csv", std=0.01)
    assert data.columns.gz == "gz" and data.std_relative == 0.0
    assert dataclasses.replace(InferenceConfig(), members=3).members == 3
