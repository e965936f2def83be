"""``gravuq predict``, ``gravuq drill`` and ``gravuq export``: products of a finished run.

They read a results directory (``summary.nc`` and, for probabilistic runs, ``posterior.nc``),
call :mod:`gravuq.products` or :mod:`gravuq.io._export` and format errors as ``gravuq_cli.main``
does: exit 2 with one line for bad input, 1 for an internal error. Registered on the main app
with :func:`register`.
"""

from __future__ import annotations

import math
import re
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import QuietOption, ResultsArgument, check_output_file, check_output_folder, guarded



class ExportFormat(str, Enum):
    ubc = "ubc"
    vtk = "vtk"


def _log(quiet: bool):
    def log(message: str) -> None:
        if not quiet:
            typer.echo(message, err=True)

    return log


def parse_collar(text: str) -> tuple[float, float, float]:
    """``"X,Y,Z"`` (m) to three finite floats; an :class:`InputError` naming --collar otherwise."""
    from gravuq.errors import InputError

    parts = [part.strip() for part in text.split(",")]
    try:
        values = tuple(float(part) for part in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise InputError(f"--collar '{text}': expected X,Y,Z, three numbers in m separated by commas "
                         "(easting, northing, elevation positive up), e.g. --collar 500,500,0")
    return values


def _run_components(results_dir: Path) -> list[str]:
    """The measured components a run inverted: ``posterior.nc``'s ``constant_data`` attribute
    ``components`` when it has several, else ``["gz"]``."""
    path = Path(results_dir) / "posterior.nc"
    try:
        import xarray as xr

        with xr.open_dataset(path, group="constant_data") as data:
            found = data.attrs.get("components")
    except (OSError, ValueError, KeyError):
        return ["gz"]
    found = [found] if isinstance(found, str) else list(found) if found is not None else []
    return [str(name) for name in found] or ["gz"]


def _stated(table, component: str, source):
    """The stated std of new ``component`` observations in the stations file: its ``std``
    column for gz (mGal), its ``std_<component>`` column for a gradient (Eotvos, the name of
    [data] files), else None."""
    if component == "gz":
        return table.std
    cells = (table.extra or {}).get(f"std_{component}")
    if cells is None:
        return None
    import numpy as np

    from gravuq.errors import InputError

    values = []
    for row, cell in enumerate(cells, start=1):
        try:
            value = float(cell)
        except ValueError:
            value = float("nan")
        if not np.isfinite(value) or value < 0:
            raise InputError(f"{source}: column 'std_{component}', data row {row}: expected a std >= 0 in Eotvos, "
                             f"got '{cell}'")
        values.append(value)
    return np.asarray(values, np.float64)


def register(app: typer.Typer) -> None:
    """Add the ``predict``, ``drill`` and ``export`` commands to ``app``."""

    @app.command()
    def predict(
        results_dir: ResultsArgument,
        stations: Annotated[Path, typer.Argument(metavar="STATIONS.csv",
            help="CSV of new stations with a header and columns x, y, z (m, z elevation positive up), "
                 "optionally std (mGal, the accuracy new gz observations would have) and std_<component> "
                 "(e.g. std_gzz, Eotvos, as in [data] files) for gradients; other columns are copied to the "
                 "output.",
            show_default=False)],
        output: Annotated[Optional[Path], typer.Option(
            "--output", "-o",
            help="CSV to write: the input's other columns, x, y, z (m), gz_mean, gz_std, gz_q05, gz_q95 (the "
                 "noise-free field) and gz_obs_std (a new observation: the field's spread plus the run's noise "
                 "model of that component at the file's std column, or its learned floor without one), mGal "
                 "positive downward, "
                 "regional trend added back. Default: RESULTS_DIR/predict.csv.")] = None,
        components: Annotated[Optional[str], typer.Option(
            "--components",
            help="Components to predict, comma separated, out of gz, gxx, gxy, gxz, gyy, gyz, gzz (gradients in "
                 "Eotvos, Harmonica's signs): five columns each, named <component>_mean ... Default: the run's "
                 "[data] components (recorded in posterior.nc), else gz.",
            show_default=False)] = None,
        quiet: QuietOption = False,
    ) -> None:
        """Posterior-predictive gz (mGal, positive down) of the noise-free field at new stations: mean,
        std and 90 % interval over the posterior draws, with any regional trend removed by [data]
        detrend added back so it compares with observations directly."""
        log = _log(quiet)

        def action():
            import numpy as np

            from gravuq.errors import InputError
            from gravuq.io import read_stations_csv
            from gravuq.products import load_results, predict as predict_gz, with_columns, write_predictions
            from gravuq.forward import check_station_distance

            target = check_output_file(output if output is not None else results_dir / "predict.csv", "--output",
                                       suffix=".csv")
            results = load_results(results_dir)
            try:
                table = read_stations_csv(stations, need_gz=False)
            except InputError as error:  # predict has no config: its columns are named x, y, z
                message = re.sub(r"set \[data\] columns\.(\w+) to the header name",
                                 r"predict reads the columns named x, y and z: rename the \1 column in the header",
                                 str(error))
                raise InputError(message) from None
            coordinates = np.stack([table.x, table.y, table.z], axis=1)
            check_station_distance(results.mesh, coordinates, str(stations))
            from gravuq.constants import COMPONENTS

            # The run's own components (posterior.nc records several) unless --components names some.
            asked = components if components is not None else ",".join(_run_components(results_dir))
            names = [name.strip() for name in asked.split(",") if name.strip()]
            if not names or any(name not in COMPONENTS for name in names) or len(set(names)) != len(names):
                raise InputError(f"--components '{asked}': expected distinct names out of "
                                 f"{', '.join(COMPONENTS)} separated by commas, e.g. --components gz,gzz")
            # The file's std column is gz's accuracy (mGal); a gradient's is its std_<component> (Eotvos).
            predictions = [with_columns(predict_gz(results, coordinates, _stated(table, name, stations), name),
                                        table.extra) for name in names]
            prediction = predictions[0]
            path = write_predictions(target, predictions if len(predictions) > 1 else prediction)
            log(f"wrote {path} ({prediction.x.size} stations, {results.n_draws} draws)")

        guarded(action)

    @app.command()
    def drill(
        results_dir: ResultsArgument,
        collar: Annotated[Optional[str], typer.Option(
            "--collar", help="Collar X,Y,Z in m (easting, northing, elevation positive up), e.g. --collar 500,500,0.",
            show_default=False)] = None,
        azimuth: Annotated[Optional[float], typer.Option(
            "--azimuth", help="Azimuth of the hole, degrees clockwise from north (0 = north, 90 = east).",
            show_default=False)] = None,
        dip: Annotated[Optional[float], typer.Option(
            "--dip", help="Dip of the hole, degrees below horizontal, positive down (90 = vertical down), "
                          "from -90 to 90.", show_default=False)] = None,
        length: Annotated[Optional[float], typer.Option(
            "--length", help="Hole length along the hole, m.", show_default=False)] = None,
        step: Annotated[Optional[float], typer.Option(
            "--step", help="Sample interval along the hole, m; each interval is sampled at its midpoint. "
                           "Default: half the smallest cell width.", show_default=False)] = None,
        threshold: Annotated[Optional[float], typer.Option(
            "--threshold", help="Density contrast threshold for P(density > threshold), kg/m^3. Default: the "
                                "run's [output] threshold.", show_default=False)] = None,
        output: Annotated[Optional[Path], typer.Option(
            "--output", "-o",
            help="CSV to write. One hole: depth_along_hole, depth_from, depth_to (m along the hole), x, y, z "
                 "(m), mean, q05, q95 (kg/m^3), exceedance (probability), with a PNG strip log beside it "
                 "(same name, .png); default RESULTS_DIR/drill.csv. With --collars: the ranking, default "
                 "RESULTS_DIR/drill_ranking.csv.")] = None,
        collars: Annotated[Optional[Path], typer.Option(
            "--collars",
            help="Rank candidate holes instead: a CSV with columns x, y, z (collar, m), azimuth, dip (degrees), "
                 "length (m) and optionally name, ranked by the expected length of hole (m) above the "
                 "threshold with its 90 % interval.", show_default=False)] = None,
        quiet: QuietOption = False,
    ) -> None:
        """Density log along a planned straight hole: posterior mean, 90 % band and P(density >
        threshold) every sample step, as CSV and PNG; or, with --collars, candidate holes ranked by
        the expected length above the threshold."""
        log = _log(quiet)

        def action():
            import numpy as np

            from gravuq.errors import InputError
            from gravuq.products import (drill_log, load_results, rank_collars, read_collars_csv, write_drill_log,
                                         write_ranking)

            single = {"--collar": collar, "--azimuth": azimuth, "--dip": dip, "--length": length}
            if collars is not None:
                given = [name for name, value in single.items() if value is not None]
                if given:
                    raise InputError(f"drill: --collars ranks the holes of a file; drop {', '.join(given)} "
                                     "(or drop --collars to log one hole)")
                target = check_output_file(output if output is not None else results_dir / "drill_ranking.csv",
                                           "--output", suffix=".csv")
                holes = read_collars_csv(collars)
                results = load_results(results_dir)
                ranking = rank_collars(results, holes, step, threshold)
                path = write_ranking(target, ranking)
                best = ranking[0]
                log(f"wrote {path}: best hole '{best.hole.name}', expected {best.expected_length:.4g} m above "
                    f"the threshold (P(any) {best.probability_hit:.2f})")
                return
            missing = [name for name, value in single.items() if value is None]
            if missing:
                raise InputError(f"drill: missing {', '.join(missing)}; a hole needs --collar X,Y,Z (m), --azimuth "
                                 "and --dip (degrees) and --length (m), or use --collars FILE.csv")
            position = parse_collar(collar)
            csv_path = check_output_file(Path(output) if output is not None else results_dir / "drill.csv",
                                         "--output", suffix=".csv")
            results = load_results(results_dir)
            hole_log = drill_log(results, position, azimuth, dip, length, step, threshold)
            png_path = csv_path.with_suffix(".png")
            write_drill_log(csv_path, png_path, hole_log)
            inside = int(np.isfinite(hole_log.mean).sum())
            log(f"wrote {csv_path} and {png_path} ({hole_log.depth_along_hole.size} samples, {inside} inside the mesh)")
            if inside == 0:
                west, east, south, north, bottom, top = results.mesh.bounds
                log(f"warning: the hole never enters the mesh (x {west:.6g}..{east:.6g} m, y {south:.6g}..{north:.6g} m, "
                    f"z {bottom:.6g}..{top:.6g} m); every value is NaN")

        guarded(action)

    @app.command()
    def export(
        results_dir: ResultsArgument,
        format_: Annotated[ExportFormat, typer.Option(
            "--format", "-f", help="ubc: a UBC-GIF mesh (mesh.msh) and one model file per summary field "
                                   "(mean.mod, std.mod, ... in kg/m^3; exceedance.mod, probability); vtk: a VTK "
                                   "rectilinear grid (.vtr) with every summary field as cell data, for ParaView. "
                                   "Coordinates in m, z elevation positive up.",
            case_sensitive=False, show_default=False)],
        output: Annotated[Optional[Path], typer.Option(
            "--output", "-o", help="Where to write: a folder for ubc (default RESULTS_DIR/export_ubc), a .vtr file "
                                   "for vtk (default RESULTS_DIR/summary.vtr).")] = None,
        quiet: QuietOption = False,
    ) -> None:
        """Write the summaries (mean, std, q05, q95 in kg/m^3; exceedance; resolution) as UBC-GIF
        mesh + model files or as a VTK rectilinear grid."""
        log = _log(quiet)

        def action():
            from gravuq.io import export_ubc, export_vtk
            from gravuq.products import load_results

            if format_ == ExportFormat.ubc:
                target = check_output_folder(output if output is not None else results_dir / "export_ubc", "--output")
            else:
                target = check_output_file(output if output is not None else results_dir / "summary.vtr", "--output",
                                           suffix=".vtr")
            results = load_results(results_dir)
            if format_ == ExportFormat.ubc:
                written = export_ubc(results, target)
                log(f"wrote {written['mesh'].parent}: {', '.join(path.name for path in written.values())}")
            else:
                path = export_vtk(results, target)
                log(f"wrote {path}")

        guarded(action)

