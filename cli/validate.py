"""``gravuq validate CONFIG --holdout 0.25``: the held-out check of a run on real data.

Calls :func:`gravuq.validate.validate`; errors as everywhere in the CLI (exit 2 with one line
for bad input). Registered on the main app with :func:`register`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ._common import ConfigArgument, QuietOption, Reporter, guarded, load


def register(app: typer.Typer) -> None:
    """Add the ``validate`` command to ``app``."""

    @app.command()
    def validate(
        config: ConfigArgument,
        holdout: Annotated[float, typer.Option(
            "--holdout", help="Fraction of the stations held out at random (seeded by [inference] seed).")] = 0.25,
        peer: Annotated[bool, typer.Option(
            "--peer/--no-peer", help="Also fit Harmonica's EquivalentSources (depth and damping by 5-fold "
                                     "cross-validation on the kept stations) and score it on the same stations.")] = True,
        quiet: QuietOption = False,
    ) -> None:
        """Refit the config's method without a random fraction of the stations and predict them:
        held-out RMSE (mGal), R^2, 90 % predictive coverage (0.90 when the uncertainty is right) and
        CRPS (mGal) of gravuq's predictive of a new observation (field spread plus the learned
        noise), against Harmonica's equivalent sources on the same stations. Writes
        <output directory>/validate/validation.json and held_out.csv. How to read it: docs/methods.md."""
        reporter = Reporter(quiet)

        def action():
            from gravuq.validate import validate as run_validate

            result = run_validate(load(config), holdout, None if quiet else reporter.progress, reporter.log, peer)
            scores = result.scores
            line = (f"validate: held-out RMSE {scores['rmse_mgal']:.4g} mGal, R^2 {scores['r2']:.4f}, "
                    f"90 % coverage {scores['coverage_90']:.3f}, CRPS {scores['crps_mgal']:.4g} mGal")
            if result.peer is not None:
                line += (f"; equivalent sources RMSE {result.peer['rmse_mgal']:.4g} mGal, "
                         f"R^2 {result.peer['r2']:.4f}")
            typer.echo(line)
            reporter.log(f"wrote {result.directory}")

        guarded(action)
