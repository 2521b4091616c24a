"""Settings: where vmcontainer keeps its state, and machine defaults.

Roots follow DESIGN.md "On disk": ``/var/lib/vmcontainer`` as root,
``$XDG_DATA_HOME/vmcontainer`` (default ``~/.local/share/vmcontainer``) otherwise;
``VMCONTAINER_ROOT`` overrides both. Boot assets may live elsewhere
(``VMCONTAINER_BOOT_DIR``) so that several roots share one kernel build.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vmcontainer.errors import InvalidParameter

DEFAULT_MEMORY_MIB = 512
DEFAULT_VCPUS = 1


def default_root() -> Path:
    env = os.environ.get("VMCONTAINER_ROOT")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/vmcontainer")
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "vmcontainer"


@dataclass(frozen=True)
class Settings:
    """``root``: the data root; ``boot_dir``: cached kernels and initramfs images;
    ``memory_mib``/``vcpus``: VM size when the container asks for none;
    ``insecure_registries``, ``registry_mirrors``, ``registry_certs_dir``: daemon.json
    ``insecure-registries``, ``registry-mirrors``, ``registry-certs-dir``; ``bind_ip``: where
    a published port without a host IP listens (Docker's ``--ip``; Docker's default
    is 0.0.0.0, vmcontainer's loopback: DESIGN.md "Networking"); ``network_driver``:
    ``user`` (QEMU user networking, no privilege, nothing changed on the host) or
    ``bridge`` (root: Linux bridges, taps, nftables, dnsmasq), from
    ``VMCONTAINER_NETWORK``. Docker has no such switch (rootless Docker always
    uses slirp); ``user`` stays the default even as root until bridge mode has
    every user-mode feature (UDP ports), and so that a root test or CLI run never
    changes the host's interfaces unasked.
    ``warm_start``: containers clone VM templates where they can
    (``vmcontainer.engine.warm``; ``VMCONTAINER_WARM_START=0`` turns it off)."""

    root: Path
    boot_dir: Path
    memory_mib: int = DEFAULT_MEMORY_MIB
    vcpus: int = DEFAULT_VCPUS
    insecure_registries: tuple[str, ...] = ()
    registry_mirrors: tuple[str, ...] = ()
    registry_certs_dir: str = ""
    bind_ip: str = "127.0.0.1"
    network_driver: str = "user"
    warm_start: bool = True

    @classmethod
    def from_env(cls) -> Settings:
        root = default_root()
        boot = os.environ.get("VMCONTAINER_BOOT_DIR")
        driver = os.environ.get("VMCONTAINER_NETWORK") or "user"
        if driver not in ("user", "bridge"):
            raise InvalidParameter(f"VMCONTAINER_NETWORK must be user or bridge, not {driver!r}")
        return cls(root=root, boot_dir=Path(boot) if boot else root / "boot",
                   network_driver=driver,
                   warm_start=os.environ.get("VMCONTAINER_WARM_START", "1") != "0")

    @property
    def network_dir(self) -> Path:
        return self.root / "network"

    @property
    def containers_dir(self) -> Path:
        return self.root / "containers"

    @property
    def volumes_dir(self) -> Path:
        return self.root / "volumes"

    @property
    def image_dir(self) -> Path:
        return self.root / "image"
