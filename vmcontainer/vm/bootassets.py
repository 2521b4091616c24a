"""Guest boot assets: the kernel (vmlinux) and the initramfs holding the agent.

Both are built from this source tree on first use and cached under
``<boot_dir>/<hash>/`` (DESIGN.md "Guest kernel"), the hash covering every input:
for the kernel, ``images/kernel/`` (config fragment, patches, build script) and the
identity (size, mtime) of Debian's linux-source-6.1 tarball; for the initramfs, ``guest/`` and
``images/initramfs/``. A user may point at other files instead (``BootAssets``
built by hand, or ``VMCONTAINER_KERNEL`` / ``VMCONTAINER_INITRAMFS``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from vmcontainer.errors import System, Unavailable

SOURCE_ROOT = Path(__file__).resolve().parents[2]
KERNEL_RECIPE = SOURCE_ROOT / "images" / "kernel"
INITRAMFS_RECIPE = SOURCE_ROOT / "images" / "initramfs"
AGENT_SOURCE = SOURCE_ROOT / "guest"
LINUX_SOURCE_PACKAGE = "linux-source-6.1"
LINUX_SOURCE_TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")
# Lines `make` prints for a full build of guest.config (measured: ~1445); only
# used to size the progress bar.
KERNEL_BUILD_LINES = 1450

# Progress callback: (what, done, total, last line). total is 0 when unknown.
Progress = Callable[[str, int, int, str], None]


@dataclass(frozen=True)
class BootAssets:
    """Paths of an uncompressed kernel and an uncompressed cpio initramfs."""

    kernel: Path
    initramfs: Path


def _hash_tree(h: hashlib._Hash, root: Path) -> None:
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "build" not in p.parts):
        h.update(str(path.relative_to(root)).encode() + b"\0")
        h.update(path.read_bytes())


def _source_version() -> str:
    """Identity of the installed source tarball: size and mtime (a stat, no
    subprocess: this runs on every container start)."""
    try:
        st = LINUX_SOURCE_TARBALL.stat()
    except OSError as err:
        raise Unavailable(
            f"{LINUX_SOURCE_PACKAGE} is not installed: apt-get install {LINUX_SOURCE_PACKAGE}"
        ) from err
    return f"{st.st_size}-{st.st_mtime_ns}"


def kernel_key() -> str:
    """Cache key of the kernel: sha256 of the recipe and the source version, 16 hex."""
    h = hashlib.sha256(b"kernel\0" + _source_version().encode())
    _hash_tree(h, KERNEL_RECIPE)
    return h.hexdigest()[:16]


def initramfs_key() -> str:
    """Cache key of the initramfs: sha256 of agent source and recipe, 16 hex."""
    h = hashlib.sha256(b"initramfs\0")
    _hash_tree(h, AGENT_SOURCE)
    _hash_tree(h, INITRAMFS_RECIPE)
    return h.hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _run_with_progress(argv: list[str], what: str, total: int, progress: Progress | None,
                       cwd: Path | None = None) -> None:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=cwd, errors="replace")
    tail: list[str] = []
    assert proc.stdout is not None
    for n, line in enumerate(proc.stdout, 1):
        tail = [*tail[-30:], line.rstrip()]
        if progress:
            progress(what, n, total, line.strip())
    if proc.wait() != 0:
        raise System(f"building the {what} failed ({' '.join(argv)}):\n" + "\n".join(tail))


def ensure_kernel(boot_dir: Path, progress: Progress | None = None) -> Path:
    """Path of the cached guest vmlinux, building it first if needed (minutes).

    Raises Unavailable when linux-source-6.1 is missing, System when the build fails.
    """
    env = os.environ.get("VMCONTAINER_KERNEL")
    if env:
        return Path(env)
    out = boot_dir / kernel_key()
    target = out / "vmlinux"
    if target.is_file():
        return target
    with _locked(boot_dir / ".kernel.lock"):
        if target.is_file():
            return target
        work = boot_dir / f"build-{out.name}"
        _run_with_progress(
            ["bash", str(KERNEL_RECIPE / "build.sh"), str(LINUX_SOURCE_TARBALL), str(out),
             str(work)],
            "guest kernel", KERNEL_BUILD_LINES, progress,
        )
        shutil.rmtree(work, ignore_errors=True)
    return target


def ensure_initramfs(boot_dir: Path, progress: Progress | None = None) -> Path:
    """Path of the cached initramfs (the agent as /init), building it if needed.

    Raises System when the agent does not compile.
    """
    env = os.environ.get("VMCONTAINER_INITRAMFS")
    if env:
        return Path(env)
    out = boot_dir / initramfs_key()
    target = out / "initramfs.img"
    if target.is_file():
        return target
    with _locked(boot_dir / ".initramfs.lock"):
        if target.is_file():
            return target
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=boot_dir) as build:
            _run_with_progress(
                ["make", "-C", str(AGENT_SOURCE), f"BUILD={build}"], "guest agent", 0, progress,
            )
            _run_with_progress(
                ["bash", str(INITRAMFS_RECIPE / "build.sh"), f"{build}/vmcontainer-agent",
                 str(target)],
                "initramfs", 0, progress,
            )
    return target


def ensure_boot_assets(boot_dir: Path, progress: Progress | None = None) -> BootAssets:
    """Both assets, built as needed. See ``ensure_kernel`` for errors."""
    return BootAssets(ensure_kernel(boot_dir, progress), ensure_initramfs(boot_dir, progress))
