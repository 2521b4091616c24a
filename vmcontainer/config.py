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
    ``insecure-registries``, ``registry-mirrors``, ``registry-certs-dir``;
    ``warm_start``: containers clone VM templates where they can
    (``vmcontainer.engine.warm``; ``VMCONTAINER_WARM_START=0`` turns it off)."""

    root: Path
    boot_dir: Path
    memory_mib: int = DEFAULT_MEMORY_MIB
    vcpus: int = DEFAULT_VCPUS
    insecure_registries: tuple[str, ...] = ()
    registry_mirrors: tuple[str, ...] = ()
    registry_certs_dir: str = ""
    warm_start: bool = True

    @classmethod
    def from_env(cls) -> Settings:
        root = default_root()
        boot = os.environ.get("VMCONTAINER_BOOT_DIR")
        return cls(root=root, boot_dir=Path(boot) if boot else root / "boot",
                   warm_start=os.environ.get("VMCONTAINER_WARM_START", "1") != "0")

    @property
    def containers_dir(self) -> Path:
        return self.root / "containers"

    @property
    def volumes_dir(self) -> Path:
        return self.root / "volumes"

    @property
    def image_dir(self) -> Path:
        return self.root / "image"
