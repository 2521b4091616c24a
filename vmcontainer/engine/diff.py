"""``docker diff``: a container's changes against its image, from two tree
listings (:mod:`vmcontainer.image.listing`), in Docker's shape and order.

Docker (overlay2) reports what its upper directory holds: every added path (a new
directory and each thing in it), every deleted path (only the topmost: a removed
directory's contents are not listed), every changed file, and each directory on
the way to a change as changed (it was copied up). Paths the runtime makes for
every container (the mount points /proc, /sys, /dev and what is under them,
/etc/hostname, /etc/hosts, /etc/resolv.conf, /.dockerenv) are Docker's "init
layer" and never listed; the agent makes the same ones (guest/container.c).
"""

from __future__ import annotations

import stat
from dataclasses import dataclass

from vmcontainer.image.listing import Entry, Listing

MODIFIED, ADDED, DELETED = 0, 1, 2
KIND_LETTERS = "CAD"

_INIT_FILES = {b"/etc/hostname", b"/etc/hosts", b"/etc/resolv.conf", b"/.dockerenv"}
_INIT_TREES = (b"/proc", b"/sys", b"/dev")


@dataclass(frozen=True)
class Change:
    path: bytes
    kind: int

    def to_json(self) -> dict[str, object]:
        """Engine API ContainerChangeResponseItem (``{"Path", "Kind"}``)."""
        return {"Path": self.path.decode(errors="surrogateescape"), "Kind": self.kind}


def _ignored(path: bytes) -> bool:
    return path in _INIT_FILES or any(path == t or path.startswith(t + b"/") for t in _INIT_TREES)


def _parent(path: bytes) -> bytes:
    return path.rsplit(b"/", 1)[0] or b"/"


def _differs(a: Entry, b: Entry) -> bool:
    if stat.S_IFMT(a.mode) != stat.S_IFMT(b.mode):
        return True
    if (a.mode, a.uid, a.gid) != (b.mode, b.uid, b.gid):
        return True
    if stat.S_ISDIR(a.mode):
        return False  # a directory counts as changed through what changed in it
    return (a.size, a.mtime, a.link) != (b.size, b.mtime, b.link)


def changes(image: Listing, container: Listing) -> list[Change]:
    """The changes of ``container`` against ``image``, sorted by path."""
    kinds: dict[bytes, int] = {}
    for path, entry in container.items():
        if _ignored(path):
            continue
        old = image.get(path)
        if old is None:
            kinds[path] = ADDED
        elif _differs(old, entry):
            kinds[path] = MODIFIED
    for path in image:
        if path not in container and not _ignored(path) and (
                _parent(path) == b"/" or _parent(path) in container):
            kinds[path] = DELETED  # topmost only: its parent is still there
    for path in list(kinds):
        parent = _parent(path)
        while parent != b"/" and parent not in kinds:
            kinds[parent] = MODIFIED
            parent = _parent(parent)
    return [Change(p, kinds[p]) for p in sorted(kinds)]
