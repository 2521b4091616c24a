"""qcow2 overlays over read-only base disks (qemu-img, from qemu-utils)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from vmcontainer.errors import System, Unavailable


def create_overlay(base: Path, overlay: Path, base_format: str = "raw") -> None:
    """Create ``overlay`` (qcow2) backed by ``base`` (absolute path recorded; the
    base is never written). Same virtual size as the base. Raises Unavailable when
    qemu-img is missing, System when it fails."""
    qemu_img = shutil.which("qemu-img")
    if not qemu_img:
        raise Unavailable("qemu-img not found: install Debian's qemu-utils")
    proc = subprocess.run(
        [qemu_img, "create", "-q", "-f", "qcow2", "-F", base_format, "-b",
         str(base.resolve()), str(overlay)],
        capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise System(f"qemu-img create {overlay} failed: {proc.stderr.strip()}")
