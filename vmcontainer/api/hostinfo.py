"""Facts about the host for ``/version`` and ``/info``: kernel, distribution, CPUs,
memory, the QEMU version. Read once per daemon (QEMU's version needs a process)."""

from __future__ import annotations

import functools
import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HostInfo:
    kernel: str
    operating_system: str
    os_version: str
    architecture: str
    ncpu: int
    mem_total: int
    hostname: str
    qemu_version: str


def _os_release() -> dict[str, str]:
    for path in (Path("/etc/os-release"), Path("/usr/lib/os-release")):
        try:
            text = path.read_text()
        except OSError:
            continue
        out = {}
        for line in text.splitlines():
            key, eq, value = line.partition("=")
            if eq:
                out[key.strip()] = value.strip().strip('"')
        return out
    return {}


def _mem_total() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _qemu_version() -> str:
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        return ""
    try:
        out = subprocess.run([qemu, "--version"], capture_output=True, text=True,
                             timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    m = re.search(r"version (\S+)", out)
    return m.group(1) if m else ""


@functools.cache
def host_info() -> HostInfo:
    """Blocking the first time (runs ``qemu-system-x86_64 --version``)."""
    release = _os_release()
    return HostInfo(
        kernel=platform.release(),
        operating_system=release.get("PRETTY_NAME", "Linux"),
        os_version=release.get("VERSION_ID", ""),
        architecture=platform.machine(),
        ncpu=os.cpu_count() or 1,
        mem_total=_mem_total(),
        hostname=platform.node(),
        qemu_version=_qemu_version(),
    )


def go_arch(machine: str) -> str:
    """Docker names architectures as Go does (``amd64``, ``arm64``)."""
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
