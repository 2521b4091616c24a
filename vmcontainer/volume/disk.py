"""A volume's disk: a sparse raw ext4 image made with e2fsprogs' ``mke2fs``.

Why a disk image and not a shared directory: the guest mounts a block device with
its own page cache and journal, so databases get the fsync semantics and speed of
a local ext4 (virtio-9p would turn every metadata operation into a host round
trip). The image is sparse: an 8 GiB volume costs a few MiB until written.

Filling a new volume with the image's content at the mount point (as Docker does)
happens here, host-side, with the same tools: ``debugfs rdump`` copies that
directory out of the image's read-only base disk into a scratch directory and
``mke2fs -d`` builds the volume from it. Doing it host-side keeps a recursive
copy (owners, modes, symlinks, hard links, xattrs) out of the guest agent, needs
no boot, and only ever reads the untrusted base disk through debugfs (names are
ext4 names: no ``/``; rdump never follows symlinks).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from vmcontainer.errors import InvalidParameter, System

DEFAULT_SIZE_BYTES = 8 << 30
"""8 GiB: sparse, so the size only caps what the volume may hold."""
MIN_SIZE_BYTES = 16 << 20
MAX_SIZE_BYTES = 16 << 40
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"^([0-9]+)\s*([kmgt]?)(?:i?b)?$", re.IGNORECASE)
_MKE2FS_EXTENDED = "lazy_itable_init=1,lazy_journal_init=1,nodiscard"


def parse_size(text: str) -> int:
    """Bytes from ``"512m"``, ``"10G"``, ``"1073741824"`` (binary units, as
    Docker's RAMInBytes). Raises InvalidParameter outside 16 MiB … 16 TiB."""
    m = _SIZE.match(text.strip())
    if not m:
        raise InvalidParameter(f"invalid size: '{text}'")
    size = int(m.group(1)) * _UNITS[m.group(2).lower()]
    if not MIN_SIZE_BYTES <= size <= MAX_SIZE_BYTES:
        raise InvalidParameter(f"invalid size: '{text}': a volume's size must be between "
                               "16MiB and 16TiB")
    return size


def _run(argv: list[str], what: str) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False,
                             stdin=subprocess.DEVNULL)
    except OSError as err:
        raise System(f"{what}: {argv[0]}: {err.strerror}") from err
    if out.returncode != 0:
        raise System(f"{what}: {argv[0]} exited with {out.returncode}: "
                     f"{(out.stderr or out.stdout).strip()[-400:]}")
    return out.stdout


def make_disk(path: Path, size_bytes: int, content: Path | None = None,
              root_owner: tuple[int, int] = (0, 0), root_mode: int = 0o755) -> None:
    """Write a fresh ext4 image of ``size_bytes`` (sparse) at ``path``, with the
    files of directory ``content`` when given, its root directory owned by
    ``root_owner`` (uid, gid) with mode ``root_mode``, and no ``lost+found`` (a new
    Docker volume is an empty directory). Atomic: built under a temporary name,
    then renamed. Raises System when e2fsprogs fail (e.g. content too large)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    try:
        with open(tmp, "wb") as f:
            f.truncate(size_bytes)
        argv = ["mke2fs", "-q", "-F", "-t", "ext4", "-m", "0", "-L", "vmc-volume",
                "-E", f"{_MKE2FS_EXTENDED},root_owner={root_owner[0]}:{root_owner[1]}"]
        if content is not None:
            argv += ["-d", str(content)]
        _run([*argv, str(tmp)], "create the volume's file system")
        _run(["debugfs", "-w", "-R", "rmdir lost+found", str(tmp)], "remove lost+found")
        _run(["debugfs", "-w", "-R", f"sif / mode 0{0o40000 | (root_mode & 0o7777):o}",
              str(tmp)], "set the volume's root mode")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def is_empty(path: Path) -> bool:
    """True when the ext4 image ``path`` holds nothing but its root directory
    (``lost+found`` excepted)."""
    out = _run(["debugfs", "-R", "ls -p /", str(path)], "list the volume")
    names = [ln.split("/")[5] for ln in out.splitlines() if ln.count("/") >= 6]
    return all(n in (".", "..", "lost+found") for n in names)


def _stat(base: Path, directory: str) -> tuple[int, int, int] | None:
    """(mode, uid, gid) of ``directory`` in the ext4 image ``base`` when it is a
    directory there (symlinks are not followed at the last component), else None."""
    out = _run(["debugfs", "-R", f'stat "{directory}"', str(base)], "read the image")
    m = re.search(r"Type: (\w+)\s+Mode:\s+([0-7]+)", out)
    u = re.search(r"User:\s+(\d+)\s+Group:\s+(\d+)", out)
    if not m or not u or m.group(1) != "directory":
        return None
    return int(m.group(2), 8), int(u.group(1)), int(u.group(2))


def fill_from_image(path: Path, size_bytes: int, base: Path, directory: str) -> bool:
    """Rebuild the (empty) volume ``path`` with the content of ``directory`` of the
    image's base disk ``base``, as Docker copies an image's directory into a new
    volume mounted over it. Returns False (volume untouched) when ``directory`` is
    not a non-empty directory of the image. Raises System on tool failure."""
    if '"' in directory or "\n" in directory:
        return False
    st = _stat(base, directory)
    if st is None:
        return False
    mode, uid, gid = st
    scratch = Path(tempfile.mkdtemp(prefix=".fill-", dir=path.parent))
    try:
        _run(["debugfs", "-R", f'rdump "{directory}" "{scratch}"', str(base)],
             "copy the image's content")
        dumped = [p for p in scratch.iterdir()]
        if len(dumped) != 1 or not dumped[0].is_dir() or not any(dumped[0].iterdir()):
            return False
        make_disk(path, size_bytes, dumped[0], (uid, gid), mode)
        return True
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
