"""Header-less station files (``[data] format = "xyz"``), one-value-per-line ``gz_path`` and
``std_path`` files, and the ``std_min`` floor: what is read, and the messages for bad files.

Units: x, y, z in m (z up); gz and std in the config's ``units``, read as mGal here unless said.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from gravuq.config import parse_config
from gravuq.errors import InputError
from gravuq.io import read_station_table, read_survey, read_values, read_xyz

XYZ = "0,0,0\n100,0,0\n0,100,0\n100,100,0\n"
GZ = "1.0\n2.0\n3.0\n4.0\n"
STD = "0.1\n0.2\n0.3\n0.4\n"


def data_config(folder: Path, data: str):
    text = f"[data]\n{data}\n[mesh]\norigin = [0.0, 0.0, -100.0]\ncell_size = [50.0, 50.0, 50.0]\nshape = [2, 2, 2]\n"
    return parse_config(text, folder / "config.toml").data


def write(folder: Path, **files: str) -> None:
    for name, content in files.items():
        (folder / f"{name}.txt").write_text(content)


def test_xyz_with_value_files_reads_every_station(tmp_path):
    write(tmp_path, xyz=XYZ, gz=GZ, std=STD)
    data = data_config(tmp_path, 'path = "xyz.txt"\nformat = "xyz"\ngz_path = "gz.txt"\nstd_path = "std.txt"\n'
                                 'units = "um/s2"')
    table = read_station_table(data)
    np.testing.assert_array_equal(table.x, [0, 100, 0, 100])
    np.testing.assert_array_equal(table.gz, [1, 2, 3, 4])
    np.testing.assert_array_equal(table.std, [0.1, 0.2, 0.3, 0.4])
    survey = read_survey(data)
    np.testing.assert_allclose(survey.gz, [0.1, 0.2, 0.3, 0.4])  # 1 um/s^2 = 0.1 mGal
    np.testing.assert_allclose(survey.std, [0.01, 0.02, 0.03, 0.04])


def test_xyz_file_with_gz_and_std_fields_separated_by_spaces(tmp_path):
    write(tmp_path, xyz="# x y z gz std\n0 0 0 1.5 0.1\n\n10 0 0 -2.5 0.2\n")
    table = read_xyz(tmp_path / "xyz.txt")
    np.testing.assert_array_equal(table.gz, [1.5, -2.5])
    np.testing.assert_array_equal(table.std, [0.1, 0.2])
    np.testing.assert_array_equal(table.line, [2, 4])


def test_std_min_raises_small_stds_only(tmp_path):
    write(tmp_path, xyz=XYZ, gz=GZ, std=STD)
    data = data_config(tmp_path, 'path = "xyz.txt"\nformat = "xyz"\ngz_path = "gz.txt"\nstd_path = "std.txt"\n'
                                 "std_min = 0.25")
    np.testing.assert_allclose(read_survey(data).std, [0.25, 0.25, 0.3, 0.4])
    # std_min alone is an uncertainty too.
    alone = data_config(tmp_path, 'path = "xyz.txt"\nformat = "xyz"\ngz_path = "gz.txt"\nstd_min = 0.5')
    np.testing.assert_allclose(read_survey(alone).std, 0.5)


@pytest.mark.parametrize("files, data, message", [
    ({"gz": "1\n2\n3\n"}, 'gz_path = "gz.txt"',
     r"gz\.txt: 3 gz values, but .*xyz\.txt has 4 stations"),
    ({"gz": GZ, "std": "0.1\n0.2\n"}, 'gz_path = "gz.txt"\nstd_path = "std.txt"',
     r"std\.txt: 2 std values, but .*xyz\.txt has 4 stations"),
    ({"gz": "1\n2\nabc\n4\n"}, 'gz_path = "gz.txt"', r"gz\.txt: line 3 \(gz\): expected a number, found 'abc'"),
    ({"gz": "1\n2 5\n3\n4\n"}, 'gz_path = "gz.txt"', r"gz\.txt: line 2: found 2 fields, expected one gz value"),
    ({"gz": GZ, "std": "0.1\n0\n0.3\n0.4\n"}, 'gz_path = "gz.txt"\nstd_path = "std.txt"',
     r"std\.txt: line 2: std must be > 0, found 0"),
    ({"gz": ""}, 'gz_path = "gz.txt"', r"gz\.txt: empty file"),
    ({}, "std = 0.1", r"xyz\.txt: no gz: .*gz_path is not set"),
    ({"std": STD}, 'std_path = "std.txt"', r"xyz\.txt: no gz"),
])
def test_bad_value_files_name_the_file_and_what_is_wrong(tmp_path, files, data, message):
    write(tmp_path, xyz=XYZ, **files)
    config = data_config(tmp_path, f'path = "xyz.txt"\nformat = "xyz"\n{data}')
    with pytest.raises(InputError, match=message):
        read_survey(config)


def test_gz_given_twice_is_refused(tmp_path):
    write(tmp_path, xyz="0,0,0,1\n1,0,0,2\n", gz="1\n2\n")
    config = data_config(tmp_path, 'path = "xyz.txt"\nformat = "xyz"\ngz_path = "gz.txt"\nstd = 0.1')
    with pytest.raises(InputError, match=r"xyz\.txt: has a gz field and \[data\] gz_path = .*gz\.txt gives gz too"):
        read_survey(config)
    (tmp_path / "stations.csv").write_text("x,y,z,gz\n0,0,0,1\n1,0,0,2\n")
    config = data_config(tmp_path, 'path = "stations.csv"\ngz_path = "gz.txt"\nstd = 0.1')
    with pytest.raises(InputError, match=r"has a gz column 'gz' and \[data\] gz_path"):
        read_survey(config)


def test_csv_with_header_and_a_gz_file(tmp_path):
    (tmp_path / "stations.csv").write_text("x,y,z\n0,0,0\n1,0,0\n")
    write(tmp_path, gz="1\n2\n")
    survey = read_survey(data_config(tmp_path, 'path = "stations.csv"\ngz_path = "gz.txt"\nstd = 0.1'))
    np.testing.assert_array_equal(survey.gz, [1, 2])


@pytest.mark.parametrize("content, message", [
    ("0,0\n", r"line 1: found 2 fields, expected 3 to 5"),
    ("0,0,0\n1,1,1,1\n", r"line 2: found 4 fields, expected 3 as on line 1 \(x, y, z\)"),
    ("0,0,nan\n", r"line 1, field 3 \(z\): expected a finite number"),
    ("0,0,0\n0,0,0\n", r"lines 1 and 2: the same station"),
    ("\n# only a comment\n", r"empty file"),
])
def test_bad_xyz_files(tmp_path, content, message):
    write(tmp_path, xyz=content)
    with pytest.raises(InputError, match=message):
        read_xyz(tmp_path / "xyz.txt")


def test_read_values_skips_blank_and_comment_lines(tmp_path):
    write(tmp_path, gz="# gz\n1.5\n\n-2e1\n")
    values, lines = read_values(tmp_path / "gz.txt", "gz")
    np.testing.assert_array_equal(values, [1.5, -20.0])
    np.testing.assert_array_equal(lines, [2, 4])


@pytest.mark.parametrize("data, message", [
    ('path = "s.obs"\ngz_path = "gz.txt"', r"\[data\] gz_path: not used with a UBC-GIF station file"),
    ('path = "xyz.txt"\nformat = "xyz"\ncolumns = { gz = "g" }', r'\[data\] columns: names header columns, but format = "xyz"'),
    ('path = "xyz.txt"\nformat = "xyz"\nstd_path = "absent.txt"', r"\[data\] std_path: file not found"),
    ('path = "xyz.txt"\nstd_min = -1.0', r"\[data\] std_min: expected a number >= 0"),
])
def test_config_errors_name_the_key(tmp_path, data, message):
    write(tmp_path, xyz=XYZ, gz=GZ)
    (tmp_path / "s.obs").write_text("1\n0 0 0 1 0.1\n")
    with pytest.raises(InputError, match=message):
        data_config(tmp_path, data)


def test_a_header_less_csv_points_to_format_xyz(tmp_path):
    (tmp_path / "stations.csv").write_text(XYZ)
    with pytest.raises(InputError, match=re.escape('set [data] format = "xyz"')):
        read_survey(data_config(tmp_path, 'path = "stations.csv"\nstd = 0.1'))


def test_forward_reads_only_xyz_from_a_header_less_file(tmp_path):
    from gravuq.config import load_config
    from gravuq.io import model_dataset, write_netcdf
    from gravuq.mesh import TensorMesh
    from gravuq.io import read_stations_csv
    from gravuq.runs import forward_stations

    mesh = TensorMesh.uniform((0.0, 0.0, -100.0), (50.0, 50.0, 50.0), (2, 2, 2))
    write_netcdf(tmp_path / "truth.nc", model_dataset(mesh, {"density": np.full(mesh.shape, 300.0)}))
    write(tmp_path, xyz="25 25 1\n75 75 1\n", std="0.5\n0.5\n")
    (tmp_path / "config.toml").write_text(
        '[data]\npath = "xyz.txt"\nformat = "xyz"\nstd_path = "std.txt"\nunits = "um/s2"\n'
        "[mesh]\norigin = [0.0, 0.0, -100.0]\ncell_size = [50.0, 50.0, 50.0]\nshape = [2, 2, 2]\n"
        '[truth]\npath = "truth.nc"\n')
    output = forward_stations(load_config(tmp_path / "config.toml"), tmp_path / "out.csv")
    table = read_stations_csv(output, need_std=True)
    np.testing.assert_array_equal(table.x, [25, 75])
    assert np.all(table.gz > 0)  # excess mass below: positive gz (downward)
    np.testing.assert_allclose(table.std, 0.5)  # the std file, in the config's units (um/s^2)
