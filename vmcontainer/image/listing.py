"""Tree listings: one record per file of a root filesystem, for ``docker diff``
and ``docker commit`` (the rootfs is a qcow2 block overlay over an ext4 base disk,
so there is no upper directory to read changes from: the container's tree, listed
by its agent, is compared with the image's, listed here).

Format (the agent's ``list`` output, guest/PROTOCOL.md "Archive sessions"): per
entry ``<st_mode octal> <uid> <gid> <size> <mtime seconds> <path>`` NUL
``<symlink target or empty>`` NUL, the root itself left out.

The image's listing is written when its base disk is built (``rootfs.build_disk``:
mke2fs -d copies mode, owner and mtime from that very tree) and, for disks built
before, made once from the layers and kept beside the disk (``<id>.list``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    """One file of a listing: ``mode`` is st_mode (type and permission bits)."""

    mode: int
    uid: int
    gid: int
    size: int
    mtime: int
    link: bytes


Listing = dict[bytes, Entry]
"""Path (bytes, absolute) → Entry."""


def parse(data: bytes) -> Listing:
    """Parse a listing; raises ValueError when malformed."""
    out: Listing = {}
    fields = data.split(b"\0")
    if fields and fields[-1] == b"":
        fields.pop()
    if len(fields) % 2:
        raise ValueError("listing: odd number of fields")
    for i in range(0, len(fields), 2):
        head, link = fields[i], fields[i + 1]
        parts = head.split(b" ", 5)
        if len(parts) != 6 or not parts[5].startswith(b"/"):
            raise ValueError(f"listing: malformed record {head[:80]!r}")
        out[parts[5]] = Entry(int(parts[0], 8), int(parts[1]), int(parts[2]), int(parts[3]),
                              int(parts[4]), link)
    return out


def _records(tree: Path) -> Iterator[bytes]:
    root = os.fsencode(tree)

    def walk(rel: bytes) -> Iterator[bytes]:
        with os.scandir(root + rel if rel else root) as it:
            names = sorted(e.name for e in it)
        for name in names:
            path = rel + b"/" + os.fsencode(name)
            st = os.lstat(root + path)
            link = os.readlink(root + path) if os.path.islink(root + path) else b""
            yield (f"{st.st_mode:o} {st.st_uid} {st.st_gid} {st.st_size} {int(st.st_mtime)} "
                   .encode() + path + b"\0" + os.fsencode(link) + b"\0")
            if os.path.isdir(root + path) and not os.path.islink(root + path):
                yield from walk(path)

    yield from walk(b"")


def write_listing(tree: Path, dest: Path) -> None:
    """Write the listing of the directory ``tree`` to ``dest`` (atomically)."""
    tmp = dest.with_suffix(".tmp")
    with tmp.open("wb") as out:
        for rec in _records(tree):
            out.write(rec)
    os.replace(tmp, dest)
