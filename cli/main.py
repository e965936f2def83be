"""``gravuq``: the command line. It parses arguments, calls :mod:`gravuq.runs` and turns
errors into exit codes: 0 success, 2 bad config, data or arguments (one plain message naming
the file, key or row, no traceback), 1 internal error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import ConfigArgument, QuietOption, Reporter, check_output_file, guarded, load
from .products import register as _register_products
from .report import register as _register_report
from .validate import register as _register_validate

app = typer.Typer(
    add_completion=False,
    rich_markup_mode=None,  # config sections like [data] are text, not markup
    no_args_is_help=True,
    help="Probabilistic 3D gravity inversion with implicit neural representations. "
         "Conventions: x east, y north, z elevation positive up (m); density contrast kg/m^3; "
         "gz mGal (1e-5 m/s^2), positive downward.",
)



def _version(value: bool) -> None:
    if value:
        from gravuq import __version__

        typer.echo(f"gravuq {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Probabilistic 3D gravity inversion with implicit neural representations."""


@app.command()
def forward(
    config: ConfigArgument,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="CSV to write (columns x, y, z in m; gz, std in [data] units). Default: <output directory>/forward.csv. An existing file is kept unless --force.")] = None,
    noise: Annotated[bool, typer.Option("--noise", help="Add iid Gaussian noise with the [data] std settings, seeded by [inference] seed.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the output CSV if it exists (it may be a survey's observed data).")] = False,
    quiet: QuietOption = False,
) -> None:
    """Compute gz (mGal, positive down) of the [truth] model at the stations of [data] path."""
    reporter = Reporter(quiet)

    def action():
        from gravuq.runs import forward_stations

        settings = load(config)
        target = output if output is not None else Path(settings.output.directory) / "forward.csv"
        # An existing file named with -o may be a survey's observed data; the default forward.csv
        # in the output folder is gravuq's own and is replaced.
        check_output_file(target, "--output", overwrite=force or output is None)
        forward_stations(settings, target, noise, reporter.log)

    guarded(action)


ResumeOption = Annotated[bool, typer.Option("--resume", help="Continue from the last checkpoint in <output directory>/checkpoint (same config required).")]
ForceOption = Annotated[bool, typer.Option("--force", help="Overwrite an output directory that holds the results of a different config, or rerun a config whose complete results are already there (without it such a rerun does nothing).")]


def summary_line(metrics: dict) -> str:
    """One line of a run's numbers, saying what the mean model's chi^2/N means beside the members'."""
    if "chi2_per_datum_learned" in metrics:
        # The data were fitted with the learned noise: that is the chi^2 that should be near 1.
        parts = [f"chi2/N of the mean model against the learned noise {metrics['chi2_per_datum_learned']:.3g} "
                 f"(against the stated std {metrics['chi2_per_datum']:.3g})"]
        if "members_chi2_learned_mean" in metrics:
            parts[0] += (f"; members {metrics['members_chi2_learned_min']:.3g}..{metrics['members_chi2_learned_max']:.3g}"
                         " against it (each member fits the data to about the noise, chi2/N near 1; their mean "
                         "averages the members' independent noise fits away, so it fits better than any one of them)")
    else:
        parts = [f"chi2/N of the mean model {metrics['chi2_per_datum']:.3g}"]
    if "members_chi2_mean" in metrics and "chi2_per_datum_learned" not in metrics:
        parts[0] += (f" (members {metrics['members_chi2_min']:.3g}..{metrics['members_chi2_max']:.3g}: each member fits "
                     "the data to about its noise, chi2/N near 1; their mean averages the members' independent noise "
                     "fits away, so it fits better than any one of them)")
    if "relative_optimality_gap_median" in metrics:
        parts.append(f"optimality gap median {metrics['relative_optimality_gap_median']:.2g} "
                     f"(max {metrics['relative_optimality_gap_max']:.2g})")
    parts += [f"{name} {metrics[key]:.4g}{unit}" for key, name, unit in (
        ("rms_mgal", "RMS residual", " mGal"), ("model_rmse", "model RMSE", " kg/m^3"), ("coverage_90", "coverage_90", ""),
        ("crps", "CRPS", " kg/m^3"), ("exceedance_auc", "exceedance AUC", ""), ("runtime_s", "runtime", " s"))
        if key in metrics]
    return ", ".join(parts)


def _recover_and_write(config_path: Path, quiet: bool, methods: tuple[str, ...], command: str,
                       resume: bool = False, force: bool = False, replace_other: bool = False,
                       distributed: bool = False) -> None:
    reporter = Reporter(quiet)

    def action():
        processes = None
        if distributed:  # before anything else touches JAX
            from gravuq.distributed import initialize
            from gravuq.errors import InputError

            if resume:  # refused before joining the others (run_command says the same to library callers)
                raise InputError("--resume: a --distributed run keeps no checkpoint (its members live on several "
                                 "machines); run it again without --resume")

            processes = initialize()
            reporter.prefix = f"gravuq[{processes.index}/{processes.count}]: "
            reporter.log(processes.describe() + (": writes the outputs" if processes.leader else
                                                 ": trains its members, writes nothing"))
        from gravuq.runs import run_command

        settings = load(config_path)
        # Progress bars from process 0 only; the others log their lines.
        bars = None if quiet or (processes is not None and not processes.leader) else reporter.progress
        recovery = run_command(settings, command, methods, bars, reporter.log, resume=resume, force=force,
                               replace_other=replace_other, processes=processes)
        if recovery is None or (processes is not None and not processes.leader):
            return  # nothing to do (run_command said so), or process 0 reports the results
        metrics = recovery.metrics
        reporter.log(f"{recovery.method}: {summary_line(metrics)}")
        for record in metrics.get("diverged_members", []):
            typer.echo(f"gravuq: warning: member {record['member']} diverged at epoch {record['epoch']} "
                       f"({record['cause']}) and was left out of the posterior", err=True)

    guarded(action)


@app.command()
def invert(config: ConfigArgument, resume: ResumeOption = False, force: ForceOption = False,
           quiet: QuietOption = False) -> None:
    """Deterministic recovery: one INR ([inference] method = "deterministic", the seed paper's
    method) or the smooth depth-weighted inversion ("tikhonov"). Writes summary.nc (mean, kg/m^3),
    metrics.json and figures into [output] directory."""
    _recover_and_write(config, quiet, ("deterministic", "tikhonov"), "invert", resume, force)


DistributedOption = Annotated[bool, typer.Option("--distributed", help=(
    "One of several processes (machines) running this same command: join the others (jax.distributed; found "
    "from SLURM under srun, or from GRAVUQ_COORDINATOR=host:port, GRAVUQ_NUM_PROCESSES, GRAVUQ_PROCESS_ID), "
    "train this process's share of the members (method = 'ensemble') and let process 0 alone write the outputs. "
    "No checkpoints. See docs/distributed.md."))]


@app.command()
def ensemble(config: ConfigArgument, resume: ResumeOption = False, force: ForceOption = False,
             quiet: QuietOption = False, distributed: DistributedOption = False) -> None:
    """The main job: probabilistic inversion with [inference] method: "ensemble" (ensemble_mode
    "rml", randomised MAP, the default; "prior_function"; or "init", random starts only),
    "gaussian" (the exact linear-Gaussian posterior), "svgd" (Stein variational gradient
    descent), "last_layer" (a Bayesian last layer, NUTS or closed form) or "mcmc" (NUTS on the
    voxel grid under a box or mixture prior: the non-Gaussian reference, small problems). The prior:
    prior_scale = "learned" (default: scale, depth weighting, correlation lengths and noise by
    empirical Bayes), "hierarchical" (per-cell scales) or "fixed" (prior_std kg/m^3,
    prior_correlation_length m, depth_weighting as given); noise = "learned" or "stated". Writes
    posterior.nc, summary.nc (mean, std, q05, q95, prior_std in kg/m^3; exceedance, resolution),
    metrics.json and figures into [output] directory; `gravuq report` makes one page of them.
    Every key: docs/config.md."""
    _recover_and_write(config, quiet, ("ensemble", "gaussian", "svgd", "last_layer", "mcmc"), "ensemble", resume,
                       force, distributed=distributed)


@app.command()
def demo(
    directory: Annotated[Path, typer.Argument(help="Folder to write the example into (created). Files of an earlier demo there (config.toml, stations.csv, truth.nc), edited or not, are kept; delete them for a fresh example.")] = Path("gravuq-demo"),
    members: Annotated[int, typer.Option(min=2, help="Ensemble members ([inference] members) of a new example's config.toml; 10 keeps the demo near a minute on 2 cores, B1 benchmarks use 20.")] = 10,
    force: Annotated[bool, typer.Option("--force", help="Run the example again even if DIRECTORY/results already holds its complete results.")] = False,
    quiet: QuietOption = False,
) -> None:
    """Write the built-in dipping-block example (the B1 body under a mesh whose top is the
    ground, z = 0 m, stations 1 m above it: stations.csv with gz in mGal, truth.nc in kg/m^3,
    config.toml) into DIRECTORY and run `gravuq ensemble` on it; results go to
    DIRECTORY/results. A second demo into the same folder keeps the files there and reruns only
    if they (or the results) changed."""
    reporter = Reporter(quiet)

    def action():
        config_path, kept = write_demo(directory, members)
        if kept:
            reporter.log(f"kept your {', '.join(kept)} in {directory} (delete them for a fresh example)")
        else:
            reporter.log(f"wrote the dipping-block example to {directory}")
        _recover_and_write(config_path, quiet, ("ensemble",), "demo", force=force, replace_other=True)

    guarded(action)


def write_demo(directory: Path, members: int) -> tuple[Path, list[str]]:
    """Write the example's files into ``directory``, keeping those already there; returns the
    config path and the names kept."""
    import shutil
    import tempfile

    from gravuq.errors import InputError
    from gravuq.examples import write_dipping_block

    for path in (directory, *directory.parents):
        if path.exists() and not path.is_dir():
            raise InputError(f"demo: {directory}: {path} is a regular file, not a folder; choose another DIRECTORY")
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".gravuq-example-", dir=directory) as fresh:
        config_path = write_dipping_block(Path(fresh), members=members)
        kept = []
        for made in sorted(Path(fresh).iterdir()):
            if not made.is_file():
                continue
            if (directory / made.name).exists():
                kept.append(made.name)
            else:
                shutil.move(made, directory / made.name)
    return directory / config_path.name, kept


@app.command()
def compare(config: ConfigArgument, force: ForceOption = False, quiet: QuietOption = False) -> None:
    """Run tikhonov, deterministic, ensemble (with [inference] ensemble_mode) and gaussian (and
    [inference] method when it is another, e.g. "mcmc" or "svgd") on the same data and write
    into <output directory>/compare/: one folder per method with its usual outputs, comparison.csv and comparison.md (chi2/N, RMS misfit in mGal, runtime in s and, with
    [truth], model RMSE and CRPS in kg/m^3, 90 % coverage, exceedance AUC) and
    comparison_sections.png (sections of each mean in kg/m^3 on one colour scale)."""
    reporter = Reporter(quiet)

    def action():
        from gravuq.compare import compare as run_compare

        comparison = run_compare(load(config), None if quiet else reporter.progress, reporter.log, force)
        for row in comparison.rows:
            reporter.log(f"{row['method']}: " + ", ".join(
                f"{key} {row[key]:.4g}" for key in comparison.columns[2:] if row[key] is not None))

    guarded(action)


_register_products(app)  # predict, drill, export
_register_report(app)  # report
_register_validate(app)


def main() -> None:  # pragma: no cover - console entry point
    """The console entry point: ``app()``, except that a run stopped by Ctrl-C or SIGTERM (exit
    130) ends the process at once, without the interpreter's teardown.

    Why: a KeyboardInterrupt that lands while XLA compiles (or runs) leaves its C++ runtime in a
    state whose destructors crash at interpreter exit, so about half of all interrupted runs
    ended in a segfault (exit 139) after everything had been saved. By the time the exit code is
    130 the checkpoint, ``run.json`` and the lock have been dealt with, so skipping the teardown
    loses nothing; the output streams are flushed first.
    """
    try:
        app()
    except SystemExit as exit:
        if exit.code == 130:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        raise


if __name__ == "__main__":  # pragma: no cover
    main()
