"""Which reader a station file needs: UBC-GIF observations by suffix or by their first line.

This module imports nothing of gravuq's, so the config can sniff a file's format while it
validates ``[data]``.
"""

from __future__ import annotations

from pathlib import Path

#: Suffixes of UBC-GIF gravity observation files; ``.txt`` is sniffed (see :func:`sniff_format`).
UBC_SUFFIXES = (".obs", ".grv")


def is_count(text: str) -> bool:
    """Whether ``text`` is a non-negative integer written in ASCII digits."""
    # str.isdigit alone accepts characters such as '²' that int() refuses.
    return text.isascii() and text.isdigit()


def sniff_format(path: str | Path) -> str:
    """``"ubc"`` or ``"csv"``: the station file format guessed from ``path``.

    ``.obs`` and ``.grv`` files are UBC-GIF; a ``.txt`` file is UBC-GIF when its first line
    that is not blank or a ``!`` comment is a single integer (the station count); anything
    else is CSV.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in UBC_SUFFIXES:
        return "ubc"
    if suffix == ".txt":
        try:
            with path.open(encoding="utf-8-sig", errors="replace") as handle:
                for line in handle:
                    if line.strip() and not line.lstrip().startswith("!"):
                        return "ubc" if is_count(line.strip()) else "csv"
        except OSError:
            pass  # the reader reports the problem with the file
    return "csv"
