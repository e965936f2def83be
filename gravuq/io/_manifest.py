"""A run's files as one set: the manifest of their SHA-256 digests that ``run.json`` records.

A run writes its files into a staging folder, then renames them into place and rewrites
``run.json`` with the digest of each (:mod:`gravuq.runs`). Readers call :func:`verify_manifest`
before trusting a folder: a file that differs from its recorded digest means the set was
interrupted while being replaced (or edited by hand), and is refused rather than read as a
mixture of two runs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..errors import InputError

RUN_RECORD = "run.json"


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_manifest(folder: str | Path) -> dict[str, str]:
    """``{relative path: SHA-256}`` of every regular file under ``folder`` (POSIX separators)."""
    folder = Path(folder)
    return {path.relative_to(folder).as_posix(): file_digest(path)
            for path in sorted(folder.rglob("*")) if path.is_file()}


def read_run_record(directory: str | Path) -> dict | None:
    """The folder's ``run.json`` as a dict; None when there is none or it cannot be read."""
    try:
        record = json.loads((Path(directory) / RUN_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def manifest_mismatches(directory: str | Path, manifest: dict[str, str]) -> list[str]:
    """The files of ``manifest`` that are missing from ``directory`` or differ from their digest."""
    directory = Path(directory)
    wrong = []
    for name, digest in manifest.items():
        path = directory / name
        if not path.is_file() or file_digest(path) != digest:
            wrong.append(name)
    return wrong


def verify_manifest(directory: str | Path) -> None:
    """Refuse a results folder whose files are not the set its ``run.json`` records.

    A folder without a manifest (written before gravuq recorded one, or by hand) is accepted
    as it is. Raises :class:`InputError` naming the files that differ and how to recover.
    """
    record = read_run_record(directory)
    manifest = (record or {}).get("files")
    if not isinstance(manifest, dict):
        return
    wrong = manifest_mismatches(directory, manifest)
    if wrong:
        shown = ", ".join(wrong[:5]) + (f" and {len(wrong) - 5} more" if len(wrong) > 5 else "")
        raise InputError(f"{directory}: {shown} differ from the set recorded in run.json (a run was stopped while "
                         f"replacing its results, or the files were edited): rerun the config "
                         f"({record.get('config_path', 'see run.json')}) with --force to write a whole set")


__all__ = ["RUN_RECORD", "file_digest", "folder_manifest", "manifest_mismatches", "read_run_record", "verify_manifest"]
