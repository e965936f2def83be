"""Station files, unit conversion, uncertainties and detrending."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gravuq.config import DataColumns, DataConfig
from gravuq.errors import InputError
from gravuq.io import read_stations_csv, read_survey, read_ubc_obs, sniff_format, write_stations_csv, write_ubc_obs
from gravuq.survey import Survey, fit_trend

CSV = """x,y,z,gz,std
0,0,10,1.5,0.1
100,0,12,-2.0,0.2
0,100,11,0.5,0.3
"""


def write(folder: Path, text: str, name: str = "stations.csv") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def survey_error(path: Path, **settings) -> str:
    with pytest.raises(InputError) as caught:
        read_survey(DataConfig(path=path, **settings))
    message = str(caught.value)
    assert path.name in message
    return message


def test_csv_read_in_mgal(tmp_path: Path) -> None:
    survey = read_survey(DataConfig(path=write(tmp_path, CSV)))
    np.testing.assert_array_equal(survey.x, [0, 100, 0])
    np.testing.assert_array_equal(survey.z, [10, 12, 11])
    np.testing.assert_array_equal(survey.gz, [1.5, -2.0, 0.5])
    np.testing.assert_array_equal(survey.std, [0.1, 0.2, 0.3])
    np.testing.assert_array_equal(survey.regional, 0.0)
    assert survey.n_stations == 3 and survey.detrend == "none"
    assert survey.coordinates.shape == (3, 3)
    assert survey.x.dtype == np.float64 and not survey.gz.flags.writeable


@pytest.mark.parametrize(("units", "factor"), [("um/s2", 0.1), ("m/s2", 1e5), ("mGal", 1.0)])
def test_units_convert_gz_and_std_to_mgal(tmp_path: Path, units: str, factor: float) -> None:
    survey = read_survey(DataConfig(path=write(tmp_path, CSV), units=units))
    np.testing.assert_allclose(survey.gz, np.array([1.5, -2.0, 0.5]) * factor, rtol=1e-15)
    np.testing.assert_allclose(survey.std, np.array([0.1, 0.2, 0.3]) * factor, rtol=1e-15)


def test_um_per_s2_is_a_tenth_of_a_mgal(tmp_path: Path) -> None:
    path = write(tmp_path, "x,y,z,gz\n0,0,0,10\n1,0,0,-20\n")
    survey = read_survey(DataConfig(path=path, units="um/s2", std=5.0))
    np.testing.assert_allclose(survey.gz, [1.0, -2.0])
    np.testing.assert_allclose(survey.std, [0.5, 0.5])


def test_std_sources_and_relative_part(tmp_path: Path) -> None:
    no_column = write(tmp_path, "x,y,z,gz\n0,0,0,2\n1,0,0,-4\n", "plain.csv")
    # A config std alone.
    np.testing.assert_allclose(read_survey(DataConfig(path=no_column, std=0.05)).std, [0.05, 0.05])
    # std_relative alone: a fraction of |gz|.
    np.testing.assert_allclose(read_survey(DataConfig(path=no_column, std_relative=0.1)).std, [0.2, 0.4])
    # Both: they add.
    survey = read_survey(DataConfig(path=no_column, std=0.05, std_relative=0.1))
    np.testing.assert_allclose(survey.std, [0.25, 0.45])
    # A std column takes precedence over the config std, and the relative part still adds.
    survey = read_survey(DataConfig(path=write(tmp_path, CSV), std=9.0, std_relative=0.1))
    np.testing.assert_allclose(survey.std, [0.1 + 0.15, 0.2 + 0.2, 0.3 + 0.05])


def test_missing_uncertainty_is_an_input_error(tmp_path: Path) -> None:
    path = write(tmp_path, "x,y,z,gz\n0,0,0,2\n")
    message = survey_error(path)
    assert "no 'std' column" in message and "[data] std" in message and "std_relative" in message


def test_zero_total_std_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "x,y,z,gz\n0,0,0,2\n1,0,0,0\n")
    assert "line 3: the std is 0 mGal" in survey_error(path, std_relative=0.1)


def test_mean_detrend(tmp_path: Path) -> None:
    survey = read_survey(DataConfig(path=write(tmp_path, CSV), detrend="mean"))
    raw = np.array([1.5, -2.0, 0.5])
    assert survey.trend_coefficients == pytest.approx((raw.mean(), 0.0, 0.0))
    assert survey.gz.mean() == pytest.approx(0.0, abs=1e-15)
    np.testing.assert_allclose(survey.gz + survey.regional, raw, rtol=0, atol=1e-15)
    np.testing.assert_allclose(survey.gz_observed, raw, rtol=0, atol=1e-15)


def test_plane_detrend_removes_an_exact_plane_in_utm(tmp_path: Path) -> None:
    # A plane sampled at UTM coordinates: detrending must leave zeros (well conditioned).
    rng = np.random.default_rng(0)
    x = 5.0e5 + rng.uniform(0, 2000, 30)
    y = 7.0e6 + rng.uniform(0, 3000, 30)
    plane = 3.0 + 2e-3 * (x - 5.0e5) - 1e-3 * (y - 7.0e6)
    write_stations_csv(tmp_path / "plane.csv", x, y, np.zeros_like(x), plane, np.full_like(x, 0.01))
    survey = read_survey(DataConfig(path=tmp_path / "plane.csv", detrend="plane"))
    np.testing.assert_allclose(survey.gz, 0.0, atol=1e-9)
    np.testing.assert_allclose(survey.gz + survey.regional, plane, rtol=1e-13)
    _, cx, cy = survey.trend_coefficients
    assert cx == pytest.approx(2e-3, rel=1e-9) and cy == pytest.approx(-1e-3, rel=1e-9)
    assert survey.trend_origin == pytest.approx((x.mean(), y.mean()))
    # The trend extends to new stations, e.g. to add it back to predictions.
    new_x, new_y = np.array([5.01e5, 5.02e5]), np.array([7.001e6, 7.0e6])
    expected = 3.0 + 2e-3 * (new_x - 5.0e5) - 1e-3 * (new_y - 7.0e6)
    np.testing.assert_allclose(survey.regional_at(new_x, new_y), expected, rtol=1e-12)


def test_plane_detrend_keeps_the_anomaly_orthogonal_part(tmp_path: Path) -> None:
    # Residual of a least-squares plane is orthogonal to 1, x and y.
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 1000, (2, 40))
    gz = np.exp(-((x - 500) ** 2 + (y - 500) ** 2) / 1e5) + 0.01 * x
    coefficients, origin = fit_trend(x, y, gz, "plane")
    residual = gz - (coefficients[0] + coefficients[1] * (x - origin[0]) + coefficients[2] * (y - origin[1]))
    for basis in (np.ones_like(x), x, y):
        assert abs(residual @ basis) < 1e-8 * np.abs(gz @ basis)


def test_plane_detrend_on_a_line_of_stations(tmp_path: Path) -> None:
    path = write(tmp_path, "x,y,z,gz,std\n0,0,0,1,1\n1,1,0,2,1\n2,2,0,3,1\n")
    assert 'detrend = "plane" needs stations that do not all lie on one line' in survey_error(
        path, detrend="plane")


def test_custom_columns_comments_and_extra_columns(tmp_path: Path) -> None:
    text = "# exported by a field logger\n\nE,N,elev,station,bouguer,err\n1,2,3,A1,4,0.5\n\n5,6,7,B2,8,0.5\n"
    columns = DataColumns(x="E", y="N", z="elev", gz="bouguer", std="err")
    survey = read_survey(DataConfig(path=write(tmp_path, text), columns=columns))
    np.testing.assert_array_equal(survey.x, [1, 5])
    np.testing.assert_array_equal(survey.gz, [4, 8])


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("", r"empty file: expected a header row"),
        ("\n\n", r"empty file"),
        ("x,y,z,gz,std\n", r"no data rows after the header on line 1"),
        ("1,2,3,4,5\n6,7,8,9,1\n", r"line 1: expected a header row naming the columns"),
        ("x,y,z,GZ,std\n0,0,0,1,1\n", r"no column 'gz' for gz \(header: x, y, z, GZ, std\); did you mean 'GZ'\?"),
        ("x,y,z,grav,std\n0,0,0,1,1\n", r"no column 'gz' for gz \(header: x, y, z, grav, std\); set \[data\] columns\.gz"),
        ("x,y,z,gz,std\n0,0,0,1,1\n1,0,0,abc,1\n", r"line 3, column 'gz': expected a number, found 'abc'"),
        ("x,y,z,gz,std\n0,0,0,1,1\n\n1,0,0,nan,1\n", r"line 4, column 'gz': expected a finite number, found 'nan'"),
        ("x,y,z,gz,std\n0,0,-inf,1,1\n", r"line 2, column 'z': expected a finite number"),
        ("x,y,z,gz,std\n0,0,,1,1\n", r"line 2, column 'z': empty cell, expected a number"),
        ("x,y,z,gz,std\n0,0,0,1\n", r"line 2: found 4 fields, expected 5 as in the header"),
        ("x,y,z,gz,std\n0,0,0,1,1,7\n", r"line 2: found 6 fields, expected 5"),
        ("x,y,z,gz,std\n0,0,0,1,1\n1,0,0,1,0\n", r"line 3: std must be > 0, found 0"),
        ("x,y,z,gz,std\n0,0,0,1,1\n1,0,0,1,-2\n", r"line 3: std must be > 0, found -2"),
        ("x,y,z,gz,std\n0,0,0,1,1\n5,5,0,1,1\n0,0,0.0,2,1\n", r"lines 2 and 4: the same station \(x=0, y=0, z=0\) appears twice"),
        ("x,y,z,gz,gz\n0,0,0,1,1\n", r"the column 'gz' appears twice in the header"),
    ],
)
def test_csv_errors_name_file_and_row(tmp_path: Path, text: str, pattern: str) -> None:
    message = survey_error(write(tmp_path, text), std=1.0)
    assert re.search(pattern, message), message


def test_missing_data_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"gone\.csv: file not found"):
        read_survey(DataConfig(path=tmp_path / "gone.csv", format="csv", std=1.0))
    with pytest.raises(InputError, match=r"gone\.obs: file not found"):
        read_ubc_obs(tmp_path / "gone.obs")
    (tmp_path / "binary.csv").write_bytes(b"x,y\n\xff\xfe\n")
    with pytest.raises(InputError, match=r"binary\.csv: not UTF-8"):
        read_stations_csv(tmp_path / "binary.csv")


def test_station_csv_without_gz(tmp_path: Path) -> None:
    # `gravuq forward` reads only x, y, z.
    table = read_stations_csv(write(tmp_path, "x,y,z\n1,2,3\n"), need_gz=False)
    assert table.gz is None and table.std is None
    np.testing.assert_array_equal(table.z, [3])
    with pytest.raises(InputError, match="no column 'gz'"):
        read_stations_csv(tmp_path / "stations.csv")


def random_stations(count: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = 5e5 + rng.normal(0, 1e3, count)
    y = 7e6 + rng.normal(0, 1e3, count)
    z = rng.normal(0, 50, count)
    gz = rng.normal(0, 1, count) * 10.0 ** rng.integers(-8, 4, count)
    std = rng.uniform(1e-6, 1, count)
    return x, y, z, gz, std


def test_stations_csv_round_trip_is_exact(tmp_path: Path) -> None:
    columns = random_stations(50, 2)
    write_stations_csv(tmp_path / "out" / "round.csv", *columns)
    assert (tmp_path / "out" / "round.csv").read_text().startswith("x,y,z,gz,std\n")
    table = read_stations_csv(tmp_path / "out" / "round.csv", need_std=True)
    for read, written in zip(table[:5], columns):
        np.testing.assert_array_equal(read, written)
    assert list(tmp_path.joinpath("out").iterdir()) == [tmp_path / "out" / "round.csv"]  # no temp files


def test_ubc_obs_round_trip_is_exact(tmp_path: Path) -> None:
    columns = random_stations(40, 3)
    path = tmp_path / "data.obs"
    write_ubc_obs(path, *columns)
    assert sniff_format(path) == "ubc"
    table = read_ubc_obs(path)
    for read, written in zip(table[:5], columns):
        np.testing.assert_array_equal(read, written)
    # Through read_survey: same numbers (mGal, no sign flip), format chosen by suffix.
    survey = read_survey(DataConfig(path=path))
    np.testing.assert_array_equal(survey.gz, columns[3])
    np.testing.assert_array_equal(survey.std, columns[4])


def test_ubc_obs_layout_variants(tmp_path: Path) -> None:
    text = "! GRAV3D observations\n! second comment\n\n2\n0 0 1 1.0D-01 5.0E-02\n10 0 1 -0.2 0.05\n"
    table = read_ubc_obs(write(tmp_path, text, "data.txt"))
    np.testing.assert_allclose(table.gz, [0.1, -0.2])
    np.testing.assert_array_equal(table.line, [5, 6])
    assert sniff_format(tmp_path / "data.txt") == "ubc"
    four = read_ubc_obs(write(tmp_path, "1\n0 0 1 0.5\n", "four.obs"))
    assert four.std is None
    survey = read_survey(DataConfig(path=tmp_path / "four.obs", std=0.2))
    np.testing.assert_array_equal(survey.std, [0.2])


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("! only a comment\n", r"empty file"),
        ("3\n0 0 1 1 1\n1 0 1 1 1\n", r"line 1 gives 3 stations but 2 data lines follow"),
        ("1\n0 0 1 1 1\n1 0 1 1 1\n", r"line 1 gives 1 stations but 2 data lines follow"),
        ("2 5\n0 0 1 1 1\n1 0 1 1 1\n", r"line 1: expected the number of stations \(one integer\)"),
        ("2\n0 0 1 1 1\n1 0 1 1\n", r"line 3: found 4 fields, expected 5 as on line 2"),
        ("1\n0 0 1 1 1 1\n", r"line 2: found 6 fields, expected 5 \(x y z gz std\)"),
        ("1\n0 0 1 x 1\n", r"line 2, field 4 \(gz\): expected a number, found 'x'"),
        ("2\n0 0 1 1 1\n0 0 1 2 1\n", r"lines 2 and 3: the same station"),
        ("1\n0 0 1 1 0\n", r"line 2: std must be > 0"),
    ],
)
def test_ubc_obs_errors(tmp_path: Path, text: str, pattern: str) -> None:
    with pytest.raises(InputError) as caught:
        read_ubc_obs(write(tmp_path, text, "bad.obs"))
    message = str(caught.value)
    assert "bad.obs" in message and re.search(pattern, message), message


def test_survey_is_immutable_and_replaceable() -> None:
    survey = Survey.from_arrays([0.0, 1.0], [0.0, 0.0], [1.0, 1.0], [0.5, 0.6], 0.1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        survey.gz = np.zeros(2)  # type: ignore[misc]
    with pytest.raises(ValueError):
        survey.gz[0] = 1.0
    updated = survey.with_gz(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(updated.gz, [1.0, 2.0])
    np.testing.assert_array_equal(survey.gz, [0.5, 0.6])
    np.testing.assert_array_equal(updated.std, [0.1, 0.1])
    with pytest.raises(ValueError, match="std must be > 0"):
        survey.with_std(0.0)
    with pytest.raises(ValueError, match="one length"):
        survey.with_gz(np.zeros(3))


cells = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cell=cells, row=st.integers(0, 2), column=st.integers(0, 4))
def test_garbage_cells_give_input_errors_only(tmp_path: Path, cell: str, row: int, column: int) -> None:
    lines = [line.split(",") for line in CSV.strip().split("\n")]
    lines[1 + row][column] = cell
    path = tmp_path / "garbage.csv"
    path.write_text("\n".join(",".join(line) for line in lines) + "\n", encoding="utf-8")
    try:
        survey = read_survey(DataConfig(path=path))
    except InputError as error:
        assert "garbage.csv" in str(error)
        return
    # Accepted only if the cell really was a finite number (or CSV quoting made it one).
    assert np.all(np.isfinite(survey.gz)) and np.all(survey.std > 0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cell=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_- ", min_size=1, max_size=10))
def test_non_numeric_cells_are_always_refused(tmp_path: Path, cell: str) -> None:
    path = tmp_path / "words.csv"
    path.write_text(CSV.replace("-2.0", cell))
    with pytest.raises(InputError, match=r"words\.csv: line 3, column 'gz'"):
        read_survey(DataConfig(path=path))
