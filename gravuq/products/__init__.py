"""What a finished run is for: predictions at new stations, drill-hole logs, and ranked collars.

Everything here starts from a results directory written by ``gravuq ensemble`` (``summary.nc``
and ``posterior.nc``, SPEC section 4) or ``gravuq invert`` (``summary.nc`` only: its mean is
treated as a single draw, so every spread is NaN, as in its summary).

Conventions (SPEC section 1): x easting, y northing, z elevation positive up, metres; density
contrast in kg/m^3 on ``(nz, ny, nx)`` meshes flattened in C order; gz in mGal (1 mGal =
1e-5 m/s^2), positive downward. Drill holes: azimuth in degrees clockwise from north (90 =
east), dip in degrees below the horizontal (positive down, 90 = vertical down); a hole's unit
direction is ``(sin(az) cos(dip), cos(az) cos(dip), -sin(dip))``.
"""

from ._collars import Hole, HoleRank, rank_collars, read_collars_csv, write_ranking
from ._drill import DrillLog, cells_at, default_step, drill_log, hole_direction, hole_samples, write_drill_log
from ._predict import Prediction, component_noise, noise_model, predict, with_columns, write_predictions
from ._results import POSTERIOR_FILE, SUMMARY_FILE, Results, load_results

__all__ = ["POSTERIOR_FILE", "SUMMARY_FILE", "DrillLog", "Hole", "HoleRank", "Prediction", "Results", "cells_at",
           "component_noise",
           "default_step", "drill_log", "hole_direction", "hole_samples", "load_results", "noise_model", "predict",
           "rank_collars", "read_collars_csv", "with_columns", "write_drill_log", "write_predictions", "write_ranking"]
