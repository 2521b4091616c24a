"""Staging directories under ``<store>/tmp`` that a crashed process cannot leak.

Each staging directory holds an ``flock`` on its own ``.in-use`` file for as long as
it is in use; the kernel drops the lock when the owner dies, so :func:`sweep` can
tell leftovers (lock free) from work in progress (lock held) in any process.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_NAME = ".in-use"
NEW_PREFIX = ".new-"
"""A directory is born under this prefix and renamed once its lock is held, so a
concurrent sweep never sees it unlocked while its owner lives."""
UNLOCKED_GRACE_S = 3600.0
"""A directory without its lock file (its owner died between creating the directory
and locking it) is swept once older than this many seconds."""


@contextlib.contextmanager
def staging_dir(parent: Path, prefix: str) -> Iterator[Path]:
    """A new empty directory under ``parent`` (plus the lock file), removed with
    everything in it when the ``with`` block ends, however it ends."""
    born = Path(tempfile.mkdtemp(prefix=NEW_PREFIX + prefix, dir=parent))
    path = born
    fd = os.open(born / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        path = parent / born.name.removeprefix(NEW_PREFIX)
        os.rename(born, path)
        yield path
    finally:
        try:
            shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(fd)


def _is_leftover(entry: Path) -> bool:
    """Whether ``entry`` (a staging directory) belongs to no live process. Raises
    FileNotFoundError when it vanished meanwhile (its owner renamed or removed it)."""
    if entry.name.startswith(NEW_PREFIX):  # being born: only an old one is a leftover
        return time.time() - entry.stat().st_mtime > UNLOCKED_GRACE_S
    try:
        fd = os.open(entry / LOCK_NAME, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return time.time() - entry.stat().st_mtime > UNLOCKED_GRACE_S
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # in use
    finally:
        os.close(fd)
    return True


def sweep(parent: Path) -> list[Path]:
    """Remove the staging directories under ``parent`` that no live process holds;
    return them. Safe against other processes creating and removing theirs."""
    removed = []
    for entry in parent.iterdir():
        try:
            if entry.is_symlink() or not entry.is_dir() or not _is_leftover(entry):
                continue
        except FileNotFoundError:
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    if removed:
        log.info("removed %d leftover staging directories", len(removed),
                 extra={"op": "sweep", "status": "ok"})
    return removed
