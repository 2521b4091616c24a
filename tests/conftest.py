"""Shared fixtures. Tests that boot VMs use a fresh data root per session, and the
machine's shared boot-asset cache (the guest kernel is built once per machine)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("VMCONTAINER_BOOT_DIR", "/var/lib/vmcontainer/boot"
                      if os.geteuid() == 0 else str(Path.home() / ".cache/vmcontainer/boot"))
# User-mode networking everywhere unless a test asks for bridge mode: bridge mode
# creates bridges, taps and nftables tables, which tests may only do inside a
# network namespace they create (tests/api/test_network_bridge.py).
os.environ["VMCONTAINER_NETWORK"] = "user"

from backends import BACKEND, ensure_libvirtd

from vmcontainer.vm.bootassets import BootAssets, ensure_boot_assets


@pytest.fixture(scope="session", autouse=True)
def _backend_service() -> None:
    """libvirtd up before any test when the suite runs on the libvirt backend."""
    if BACKEND == "libvirt":
        ensure_libvirtd()


@pytest.fixture(scope="session")
def boot_assets() -> BootAssets:
    """The guest kernel and initramfs, built before any test boots a VM (the first
    kernel build on a machine takes minutes; no test's own timeout should pay it)."""
    return ensure_boot_assets(Path(os.environ["VMCONTAINER_BOOT_DIR"]))
