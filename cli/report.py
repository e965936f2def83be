"""``gravuq report RESULTS_DIR``: one self-contained HTML page of a finished run.

Calls :func:`gravuq.report.write_report`; errors are formatted as everywhere in the CLI (exit 2
with one line for a folder that is not a results folder, 1 for an internal error). Registered on
the main app with :func:`register`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import QuietOption, guarded


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to ``app``."""

    @app.command()
    def report(
        results: Annotated[Path, typer.Argument(metavar="RESULTS_DIR", show_default=False,
            help="Results folder of a gravuq ensemble, invert or demo run (holds summary.nc and metrics.json).")],
        output: Annotated[Path | None, typer.Option("--output", "-o",
            help="HTML file to write. Default: RESULTS_DIR/report.html.")] = None,
        quiet: QuietOption = False,
    ) -> None:
        """Write one self-contained HTML page of a finished run: its metrics, the prior and noise
        model it learned, data fit and residual map, uncertainty and exceedance maps, drilling map
        and collar ranking when present, and for each map what it can and cannot be trusted for.
        Figures are embedded; the page needs no network. Units: density contrast kg/m^3, gz mGal
        positive down, m."""

        def action():
            from gravuq.report import write_report

            path = write_report(results, output)
            if not quiet:
                typer.echo(f"wrote {path}", err=True)

        guarded(action)
