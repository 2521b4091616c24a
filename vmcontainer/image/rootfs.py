"""Build an image's read-only ext4 base disk: layers -> directory -> ``mke2fs -d``.

Supported filesystem: ext4 only (the guest kernel has it built in). Each
container's root disk is a qcow2 overlay backed by this file, so the guest mounts
it read-write through the overlay and the free space chosen here is all the space
a container can write.

Size choice: the content (apparent sizes rounded to 4 KiB, plus 10 %) + inode
tables + 128 MiB for journal and bitmaps + ``free_bytes`` (default 8 GiB), rounded
up to 4 MiB; inodes: those used + one per 16 KiB of free space (mke2fs's default
ratio). The file is sparse, and mke2fs's time does not depend on the virtual size,
only on the content (measured here, e2fsprogs 1.47.0, 2 cores: 13-41 ms for the
2 MB busybox test image, 0.5-0.9 s for a 179 MiB Debian minbase, the same at 8, 16
and 64 GiB). So the figure is a policy, not a cost: 8 GiB is room for package
installs and builds in a container, and also the most one container can make its
qcow2 overlay grow on the host (a quota). ``rootfs_free_bytes`` on the store changes it.

``lazy_itable_init=0,lazy_journal_init=0`` make mke2fs zero the inode tables and
journal now, so no guest runs ext4lazyinit into its overlay; mke2fs does that with
``FALLOC_FL_ZERO_RANGE`` (192 MiB of unwritten extents at 8 GiB), which
:func:`punch_unwritten` turns back into holes (the same zeros) in a few ms, so a base
disk occupies its content plus about 5 MiB. ``/lost+found`` is removed, as images
have none.
"""

from __future__ import annotations

import ctypes
import fcntl
import logging
import os
import stat
import struct
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from vmcontainer.image.layers import apply_layers
from vmcontainer.image.listing import write_listing
from vmcontainer.image.staging import staging_dir
from vmcontainer.image.tools import run

log = logging.getLogger(__name__)

GiB = 1 << 30
MiB = 1 << 20
DEFAULT_FREE_BYTES = 8 * GiB
BLOCK = 4096
INODE_SIZE = 256
BYTES_PER_FREE_INODE = 16384
METADATA_SLACK = 128 * MiB
LABEL = "rootfs"

_FS_IOC_FIEMAP = 0xC020660B
_FIEMAP_FLAG_SYNC = 0x1
_FIEMAP_EXTENT_LAST = 0x1
_FIEMAP_EXTENT_UNWRITTEN = 0x800
_FALLOC_FL_KEEP_SIZE = 0x1
_FALLOC_FL_PUNCH_HOLE = 0x2
_FIEMAP_HEADER = struct.Struct("=QQIIII")
_FIEMAP_EXTENT = struct.Struct("=QQQQQIIII")


def measure(tree: Path) -> tuple[int, int]:
    """(content bytes rounded to blocks, inode count) of the directory ``tree``;
    symlinks are not followed and hard links count once."""
    total, seen = 0, set()
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in (*dirnames, *filenames):
            st = os.lstat(os.path.join(dirpath, name))
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                total += -(-st.st_size // BLOCK) * BLOCK
            elif stat.S_ISDIR(st.st_mode):
                total += BLOCK
    return total, len(seen) + 1


def disk_geometry(content: int, inodes: int, free_bytes: int) -> tuple[int, int]:
    """(size in bytes, inode count) for a disk holding ``content`` bytes in
    ``inodes`` inodes with ``free_bytes`` to spare."""
    inode_count = inodes + free_bytes // BYTES_PER_FREE_INODE
    size = content * 11 // 10 + inode_count * INODE_SIZE + METADATA_SLACK + free_bytes
    align = 4 * MiB
    return -(-size // align) * align, inode_count


def mke2fs(tree: Path, disk: Path, size: int, inodes: int) -> None:
    """Format the sparse file ``disk`` (``size`` bytes) as ext4 holding ``tree``.
    Raises ToolMissing / ToolFailed."""
    run(["mke2fs", "-q", "-F", "-t", "ext4", "-b", str(BLOCK), "-N", str(inodes),
         "-m", "0", "-L", LABEL, "-d", str(tree),
         "-E", "lazy_itable_init=0,lazy_journal_init=0", str(disk), f"{size // 1024}k"])


def remove_lost_found(disk: Path) -> None:
    """Delete the empty ``/lost+found`` mke2fs creates: images do not have one, and
    ``ls /`` in a container should show what it shows under Docker (e2fsck makes a
    new one should it ever need it)."""
    run(["debugfs", "-w", "-R", "rmdir /lost+found", str(disk)])


def _extents(fd: int) -> Iterator[tuple[int, int, int]]:
    """(offset, length, flags) of each extent of the open file ``fd`` (FS_IOC_FIEMAP)."""
    start, count = 0, 128
    while True:
        buf = bytearray(_FIEMAP_HEADER.size + _FIEMAP_EXTENT.size * count)
        _FIEMAP_HEADER.pack_into(buf, 0, start, (1 << 64) - 1, _FIEMAP_FLAG_SYNC, 0, count, 0)
        fcntl.ioctl(fd, _FS_IOC_FIEMAP, buf)
        mapped = _FIEMAP_HEADER.unpack_from(buf, 0)[3]
        if mapped == 0:
            return
        for i in range(mapped):
            fields = _FIEMAP_EXTENT.unpack_from(buf, _FIEMAP_HEADER.size + i * _FIEMAP_EXTENT.size)
            logical, length, flags = fields[0], fields[2], fields[5]
            yield logical, length, flags
            if flags & _FIEMAP_EXTENT_LAST:
                return
        start = logical + length


def punch_unwritten(disk: Path) -> int:
    """Turn the unwritten (zero) extents of ``disk`` into holes; return bytes freed.

    An optimisation only: where FIEMAP or hole punching fails or is unsupported,
    the file stays as it is (logged at debug).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    fallocate = libc.fallocate
    fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    freed = 0
    fd = os.open(disk, os.O_RDWR | os.O_CLOEXEC)
    try:
        unwritten = [(o, n) for o, n, f in _extents(fd) if f & _FIEMAP_EXTENT_UNWRITTEN]
        for offset, length in unwritten:
            mode = _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE
            if fallocate(fd, mode, offset, length) != 0:
                raise OSError(ctypes.get_errno(), "fallocate")
            freed += length
    except OSError as err:
        log.debug("cannot punch holes in %s: %s", disk, err)
    finally:
        os.close(fd)
    return freed


def build_disk(layers: Sequence[Path], labels: Sequence[str], dest: Path, workdir: Path,
               free_bytes: int = DEFAULT_FREE_BYTES) -> Path:
    """Apply ``layers`` (bottom first) into a directory under ``workdir``, format it
    into a sparse ext4 file and rename that to ``dest`` (``workdir`` and ``dest`` on
    one filesystem). The file is made read-only (0444). The temporary directory is
    removed whatever happens; ``dest`` appears complete or not at all.

    Raises what :func:`layers.apply_layers` raises (InvalidLayer, UnsafeLayerEntry,
    PrivilegeRequired, ...) and ToolMissing / ToolFailed from mke2fs.
    """
    started = time.monotonic()
    with staging_dir(workdir, "rootfs-") as tmp:
        tree = tmp / "tree"
        tree.mkdir()
        os.chmod(tree, 0o755)  # "/" of the image unless a layer says otherwise; not umask's
        apply_layers(tree, layers, labels)
        write_listing(tree, dest.with_suffix(".list"))  # docker diff/commit compare with it
        applied = time.monotonic()
        content, inodes = measure(tree)
        size, inode_count = disk_geometry(content, inodes, free_bytes)
        disk = tmp / "disk.ext4"
        mke2fs(tree, disk, size, inode_count)
        if not (tree / "lost+found").exists():
            remove_lost_found(disk)
        formatted = time.monotonic()
        punch_unwritten(disk)
        os.chmod(disk, 0o444)
        os.replace(disk, dest)
    log.info("built %s: %d MiB content, %d GiB virtual; layers %.2fs, mke2fs %.2fs",
             dest.name, content // MiB, size // GiB, applied - started, formatted - applied,
             extra={"op": "rootfs", "status": "built"})
    return dest
