"""Which VM backend the tests run on: ``VMCONTAINER_BACKEND`` (``qemu``, the default,
or ``libvirt``), read by the daemon the tests start as by the engines they build, so
that one suite runs against both (``make test`` runs it once per backend). For
libvirt, ``ensure_libvirtd`` starts virtlogd and libvirtd themselves when none
answers (CI machines have no systemd running them; the Makefile installs
libvirt-daemon-system with its services kept from starting)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from vmcontainer.vm.backend import Backend
from vmcontainer.vm.factory import BackendKind, open_backend

BACKEND = os.environ.get("VMCONTAINER_BACKEND", "qemu")
# Whether the suite's daemons start containers as template clones (warm start:
# the qemu backend, unless the suite runs cold with VMCONTAINER_WARM_START=0).
WARM = BACKEND == "qemu" and os.environ.get("VMCONTAINER_WARM_START") != "0"
LIBVIRT_URI = os.environ.get("VMCONTAINER_LIBVIRT_URI", "")
_SYSTEM_URI = "qemu:///system"


def libvirtd_answers(uri: str = _SYSTEM_URI) -> bool:
    return subprocess.run(["virsh", "-c", uri, "version"], capture_output=True,
                          timeout=30, check=False).returncode == 0


def ensure_libvirtd(timeout: float = 30) -> None:
    """Start ``virtlogd -d`` and ``libvirtd -d`` unless libvirtd answers already
    (idempotent; they keep running after the tests, as a service would)."""
    if libvirtd_answers():
        return
    for tool in ("virtlogd", "libvirtd"):
        path = shutil.which(tool) or f"/usr/sbin/{tool}"
        subprocess.run([path, "-d"], check=False, timeout=30)
    deadline = time.monotonic() + timeout
    while not libvirtd_answers():
        if time.monotonic() > deadline:
            raise RuntimeError("libvirtd did not answer on qemu:///system")
        time.sleep(0.2)


async def backend(accel: str) -> Backend:
    """The backend under test, for tests that boot machines without a daemon."""
    return await open_backend(BackendKind(BACKEND), accel, LIBVIRT_URI)
