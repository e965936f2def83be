"""``gravuq compare``: deterministic and probabilistic recoveries of the same data, side by side.

The data are prepared once (stations, mesh, forward operator); each method then runs on that
same setup with only ``[inference] method`` changed, and writes its normal outputs (SPEC
section 4) into ``<output directory>/compare/<method>/``. The report beside them holds one row
per method (``comparison.csv``, ``comparison.md``) and one figure (``comparison_sections.png``):
the same vertical section through each method's mean on one colour scale, and the vertical
profile through the anomaly with the 90 % band of the probabilistic methods.

Conventions (SPEC section 1): metres with z up; density contrast kg/m^3; gz mGal positive down.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import Config
from .errors import InputError
from .io import csv_text, write_text_atomic
from .io import FolderLock
from .outputs import write_outputs
from .pipeline import Log, Recovery, Setup, prepare, quiet, recover, timed
from .runs import STAGING, RunRecord, check_output_directory, guard_output_directory, publish

__all__ = ["COMPARED_METHODS", "Comparison", "compare", "comparison_rows", "section_location"]

#: The methods compared, in the order of the table and the figure.
COMPARED_METHODS = ("tikhonov", "deterministic", "ensemble", "gaussian")

#: Columns of the table: the data fit, always; the scores against a known truth, with [truth].
DATA_COLUMNS = ("chi2_per_datum", "rms_mgal", "runtime_s")
TRUTH_COLUMNS = ("model_rmse", "coverage_90", "coverage_90_above_threshold", "crps", "exceedance_auc")

#: What each column means, with its unit (the notes of comparison.md).
COLUMN_NOTES = {
    "method": "recovery method (the ensemble's mode in brackets)",
    "members": "models summarised: ensemble members or posterior draws (1 for a deterministic model)",
    "chi2_per_datum": "chi^2 / N of the mean model's predicted data against the observed (target: [inference] "
                      "target_misfit)",
    "rms_mgal": "root-mean-square data residual of the mean model, mGal",
    "runtime_s": "wall-clock time of the recovery, s (preparing the data and operator is shared and not counted)",
    "model_rmse": "root-mean-square difference of the mean model from the truth, kg/m^3",
    "coverage_90": "fraction of cells whose true value lies in the 90 % interval [q05, q95] (ideal 0.90)",
    "coverage_90_above_threshold": "the same over the cells whose truth exceeds the threshold (the body a drill "
                                   "would target)",
    "crps": "continuous ranked probability score, mean over cells, kg/m^3 (lower is better)",
    "exceedance_auc": "ROC area of P(density > threshold) against truth > threshold (1 = perfect ranking)",
}


@dataclass(frozen=True)
class Comparison:
    """What ``gravuq compare`` wrote.

    ``directory`` is ``<output directory>/compare``; ``recoveries`` maps each method to its
    :class:`~gravuq.workflow.Recovery`; ``rows`` holds the table, one dict per method with the
    keys ``columns`` (a value is None where it does not apply).
    """

    directory: Path
    recoveries: dict[str, Recovery]
    columns: tuple[str, ...]
    rows: list[dict]


def _method_config(config: Config, method: str) -> Config:
    return dataclasses.replace(config, inference=dataclasses.replace(config.inference, method=method))


def _label(recovery: Recovery) -> str:
    mode = recovery.metrics.get("ensemble_mode")
    return f"{recovery.method} ({mode})" if mode else recovery.method


def _is_probabilistic(recovery: Recovery) -> bool:
    return not np.all(np.isnan(recovery.summary.std))


def comparison_rows(recoveries: dict[str, Recovery], with_truth: bool) -> tuple[tuple[str, ...], list[dict]]:
    """The table of ``recoveries``: its column names and one row per method.

    A value is None where it does not apply (the truth scores of a deterministic model, or any
    NaN, such as the coverage above the threshold when no true cell exceeds it).
    """
    columns = ("method", "members") + DATA_COLUMNS + (TRUTH_COLUMNS if with_truth else ())
    rows = []
    for recovery in recoveries.values():
        row = {"method": _label(recovery), "members": int(recovery.metrics.get("members", recovery.draws.shape[0]))}
        for column in columns[2:]:
            value = recovery.metrics.get(column)
            row[column] = None if value is None or not math.isfinite(float(value)) else float(value)
        rows.append(row)
    return columns, rows


def _markdown_text(config: Config, setup: Setup, columns, rows, figure: bool) -> str:
    def cell(value) -> str:
        if value is None:
            return ""
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    mesh, survey = setup.mesh, setup.survey
    lines = [
        "# gravuq compare",
        "",
        f"Config: `{config.path}`. {survey.n_stations} stations (`{survey.source}`, detrend "
        f"`{survey.detrend}`), {mesh.n_cells} cells {tuple(mesh.shape[::-1])} (nx, ny, nz); "
        f"threshold {config.output.threshold:g} kg/m^3; seed {config.inference.seed}."
        + (" Scores against the `[truth]` model." if setup.truth is not None else ""),
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(columns) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(cell(row[column]) for column in columns) + " |" for row in rows]
    lines += ["", "Blank: not applicable (a deterministic model has no interval, CRPS or exceedance).", ""]
    lines += [f"- `{column}`: {COLUMN_NOTES[column]}" for column in columns]
    lines += ["", "Each method's own outputs (summary.nc, metrics.json, figures; posterior.nc for the "
              "probabilistic ones) are in the folder of its name beside this file."]
    if figure:
        lines += ["", "![Sections and profiles through the strongest anomaly](comparison_sections.png)"]
    return "\n".join(lines) + "\n"


def section_location(setup: Setup, recoveries: dict[str, Recovery]) -> tuple[int, int]:
    """``(j, i)``: the row (y) and column (x) indices of the section and profile.

    The cell of the largest |density contrast| (kg/m^3) of the truth when there is one, else of
    the first probabilistic method's mean, else of the first method's mean; where several cells
    come within 5 % of the largest, the one nearest their centroid (the middle of a body).
    """
    if setup.truth is not None:
        field = np.asarray(setup.truth)
    else:
        chosen = next((r for r in recoveries.values() if _is_probabilistic(r)), next(iter(recoveries.values())))
        field = chosen.summary.mean
    # The same rule as the single-run section.png, so the two figures cut at the same y.
    from .io.plots import strongest_cell

    _, j, i = strongest_cell(setup.mesh, field)
    return j, i


def _compare_into(staging: Path, config: Config, setup: Setup, methods, progress, log: Log):
    """Recover each method and write its folder, the table and the figure into ``staging``."""
    from .io import plots

    recoveries: dict[str, Recovery] = {}
    timings = {}
    for method in methods:
        method_setup = dataclasses.replace(setup, config=_method_config(config, method))
        log(f"compare: {method}")
        recovery, timings[method] = timed(recover, method_setup, method, progress, None, log)
        write_outputs(method_setup, recovery, staging / method, posterior=True)
        recoveries[method] = recovery
    columns, rows = comparison_rows(recoveries, setup.truth is not None)
    write_text_atomic(staging / "comparison.csv", csv_text(columns, [[row[c] for row in rows] for c in columns]))
    figure = "png" in config.output.formats
    if figure:
        j, i = section_location(setup, recoveries)
        panels = [(_label(r), r.summary.mean, r.summary.q05 if _is_probabilistic(r) else None,
                   r.summary.q95 if _is_probabilistic(r) else None) for r in recoveries.values()]
        plots.comparison_sections(staging / "comparison_sections.png", setup.mesh, panels, setup.truth, (j, i),
                                  config.output.threshold)
    write_text_atomic(staging / "comparison.md", _markdown_text(config, setup, columns, rows, figure))
    return recoveries, columns, rows, timings


def compare(config: Config, progress=None, log: Log = quiet, force: bool = False,
            methods: tuple[str, ...] | None = None) -> Comparison:
    """``gravuq compare``: run ``methods`` on the same prepared data and write the report.

    Parameters
    ----------
    config
        The run's config. ``[inference] method`` is replaced by each compared method in turn;
        every other setting (``members``, ``epochs``, ``ensemble_mode``, the prior...) is shared.
    progress
        ``progress(total, description)`` returning a tqdm-like bar (the CLI reporter's), or None.
    log
        Prints one-line messages.
    force
        Overwrite a ``compare`` folder that holds the results of a different config.
    methods
        The methods to run, in order (default: tikhonov, deterministic, ensemble, gaussian, and
        the config's own ``[inference] method`` last when it is none of these, e.g. mcmc or svgd).

    Returns
    -------
    Comparison
        Writes into ``<output directory>/compare/``: one folder per method with its normal
        outputs, ``comparison.csv`` and ``comparison.md`` (one row per method) and, with
        ``"png"`` in ``[output] formats``, ``comparison_sections.png``; all of it as one set (staged, then
        moved into place, with the digests in ``run.json`` last), under the folder's lock.

    Raises
    ------
    InputError
        Fewer than 2 ``members`` (a posterior needs at least 2), or the folder holds another
        config's results.
    """
    if methods is None:
        own = config.inference.method
        methods = COMPARED_METHODS + (() if own in COMPARED_METHODS else (own,))
    if config.inference.members < 2 and any(method in ("ensemble", "gaussian") for method in methods):
        raise InputError(f"{config.path}: [inference] members: expected at least 2 for the probabilistic methods "
                         f"that gravuq compare runs, found {config.inference.members}")
    directory = check_output_directory(Path(config.output.directory) / "compare", f"{config.path}: [output] directory")
    guard_output_directory(directory, config, force)
    with FolderLock(directory, f"gravuq compare {config.path}"):
        record = RunRecord(directory, "compare", config, methods=list(methods))
        setup, prepare_s = timed(prepare, config, log)
        record.start()
        # Written into a staging folder and moved into place as one set (see gravuq.runs.publish).
        staging = directory / STAGING
        shutil.rmtree(staging, ignore_errors=True)
        try:
            recoveries, columns, rows, timings = _compare_into(staging, config, setup, methods, progress, log)
            timings["prepare"] = prepare_s
            publish(directory, staging, record, timings, [], log)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            record.failed()
            raise
    log(f"wrote {directory / 'comparison.md'}")
    return Comparison(directory, recoveries, columns, rows)
