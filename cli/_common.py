"""What every command shares: the reporter (messages and progress bars), the mapping of errors to
exit codes (0 success, 2 bad input with one plain line, 1 internal error with the traceback),
and the options that several commands take."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer

ConfigArgument = Annotated[Path, typer.Argument(help="The run's TOML config (see docs/config.md).", show_default=False)]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors; no progress bars.")]
ResultsArgument = Annotated[Path, typer.Argument(metavar="RESULTS_DIR",
    help="Results directory of a gravuq ensemble or invert run (holds summary.nc, and posterior.nc for "
         "probabilistic runs).", show_default=False)]


class Reporter:
    """Messages and progress bars for one command, silenced by --quiet."""

    def __init__(self, quiet: bool, prefix: str = ""):
        self.quiet = quiet
        self.prefix = prefix  # names the process in a multi-process run

    def log(self, message: str) -> None:
        if not self.quiet:
            typer.echo(self.prefix + message, err=True)

    def progress(self, total: int, description: str):
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=description, unit="epoch", disable=self.quiet, file=sys.stderr,
                    dynamic_ncols=True, mininterval=0.5)


def _terminate(signum, frame):
    raise KeyboardInterrupt  # SIGTERM is handled like Ctrl-C: checkpoint, record, exit


def guarded(action):
    """Run ``action()``; map InputError to exit 2 and anything else to exit 1."""
    import signal

    from gravuq.errors import InputError

    signal.signal(signal.SIGTERM, _terminate)
    try:
        action()
    except InputError as error:
        typer.echo(f"gravuq: error: {error}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        typer.echo("gravuq: interrupted", err=True)
        raise typer.Exit(130) from None
    except typer.Exit:
        raise
    except OSError as error:  # a folder or disk that cannot take the output: the user's to fix
        where = f"{error.filename}: " if error.filename else ""
        typer.echo(f"gravuq: error: {where}cannot write or read: {error.strerror or error}", err=True)
        raise typer.Exit(2) from None
    except Exception:  # an internal error: say so, with the traceback for a bug report
        typer.echo("gravuq: internal error (please report it with the traceback below)", err=True)
        traceback.print_exc()
        raise typer.Exit(1) from None


def check_output_file(path: Path, option: str, overwrite: bool = True, suffix: str | None = None) -> Path:
    """Refuse an output file path that cannot be one: an existing folder, a path under a
    regular file, an unwritable folder, or (without ``overwrite``) an existing file."""
    import os

    from gravuq.errors import InputError

    path = Path(path)
    if path.is_dir():
        raise InputError(f"{option} {path}: is a folder; expected the path of a file to write"
                         + (f" (e.g. {path / ('out' + suffix)})" if suffix else ""))
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"{option} {path}: {parent} is a regular file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise InputError(f"{option} {path}: the folder {parent} is not writable")
            break
    if path.exists() and not overwrite:
        raise InputError(f"{option} {path}: the file exists (it may be observed data); choose another name, "
                         "or add --force to overwrite it")
    return path


def check_output_folder(path: Path, option: str) -> Path:
    """Refuse an output folder path that is a regular file or lies under one, or is unwritable."""
    import os

    from gravuq.errors import InputError

    path = Path(path)
    for parent in (path, *path.parents):
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"{option} {path}: {parent} is a regular file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise InputError(f"{option} {path}: the folder {parent} is not writable")
            break
    return path


def load(config_path: Path):
    from gravuq.config import load_config

    return load_config(config_path)
