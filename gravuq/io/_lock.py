"""One writer per output folder: an advisory lock held while a run writes there.

The lock is ``fcntl.flock`` on ``.gravuq.lock`` in the folder, which records the holder's pid,
command and start time for the message a second run gets. The kernel drops the lock when its
process ends however it ends (killed, crashed), so a lock file left behind by a dead run never
blocks: only a live holder does.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

from ..errors import InputError

LOCK_FILE = ".gravuq.lock"


class FolderLock:
    """``with FolderLock(folder, "gravuq ensemble config.toml"):`` holds the folder's lock.

    Entering raises :class:`InputError` naming the pid and command of the live process that
    holds it. The folder is created if needed.
    """

    def __init__(self, folder: str | Path, description: str):
        self.folder = Path(folder)
        self.description = description
        self._handle = None

    @property
    def path(self) -> Path:
        return self.folder / LOCK_FILE

    def _holder(self) -> str:
        try:
            holder = json.loads(self.path.read_text(encoding="utf-8"))
            return f"pid {holder['pid']} ({holder['command']}, started {holder['started_at']})"
        except (OSError, ValueError, KeyError, TypeError):
            return "another process"

    def __enter__(self) -> FolderLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        while True:
            handle = open(self.path, "a+", encoding="utf-8")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                raise InputError(f"{self.folder}: another gravuq run is writing here: {self._holder()}; wait for "
                                 "it to finish or stop it, or set [output] directory to another folder") from None
            # The holder before us may have removed the file between our open and our lock:
            # then we hold a lock on a file nobody else can see, so take the one on the path.
            try:
                same = os.path.samestat(os.fstat(handle.fileno()), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            handle.close()
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "command": self.description,
                                 "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}))
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            self._handle.close()  # releases the lock
            self._handle = None


__all__ = ["FolderLock", "LOCK_FILE"]
