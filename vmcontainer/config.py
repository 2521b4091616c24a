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


NETWORK_MODES = ("user", "bridge")


def network_mode(asked: str | None = None) -> str:
    """The daemon's network mode: ``asked`` (``--network-mode``, daemon.json
    ``network-mode``), else ``VMCONTAINER_NETWORK``, else ``bridge`` as root and
    ``user`` otherwise (see ``Settings``). Raises InvalidParameter for a value
    other than ``user`` or ``bridge``."""
    env = os.environ.get("VMCONTAINER_NETWORK")
    mode = asked or env or ("bridge" if os.geteuid() == 0 else "user")
    if mode not in NETWORK_MODES:
        where = "" if asked else " (VMCONTAINER_NETWORK)"
        raise InvalidParameter(f"invalid network mode {mode!r}{where}: use user or bridge")
    return mode


@dataclass(frozen=True)
class Settings:
    """``root``: the data root; ``boot_dir``: cached kernels and initramfs images;
    ``memory_mib``/``vcpus``: VM size when the container asks for none;
    ``insecure_registries``, ``registry_mirrors``, ``registry_certs_dir``: daemon.json
    ``insecure-registries``, ``registry-mirrors``, ``registry-certs-dir``; ``bind_ip``: where
    a published port without a host IP listens (Docker's ``--ip``; Docker's default
    is 0.0.0.0, vmcontainer's loopback: DESIGN.md "Networking"); ``network_driver``:
    ``user`` (QEMU user networking, no privilege, nothing changed on the host) or
    ``bridge`` (root: Linux bridges, taps, nftables, dnsmasq), as ``network_mode``
    chooses it. ``bridge`` is the default as root because that is what a root
    dockerd is: it creates docker0, and Docker users expect user-defined networks,
    names between containers, ``docker network connect`` and ``docker compose``
    (which creates a project network) to work; user mode has none of these.
    Bridge mode now has every user-mode feature (TCP and UDP ports, outbound
    NAT); it costs ~0.15 s more per ``docker run`` (q35 with hot-plug slots
    instead of microvm: ``bench/net_boot.py``), and, as installing Docker does,
    it changes the host: a bridge for the default network, nftables tables, IPv4
    forwarding on. A user without root gets ``user``, as rootless Docker gets
    slirp: it cannot make bridges. Tests force ``user`` (``VMCONTAINER_NETWORK``)
    except inside network namespaces they create.
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
    def from_env(cls, network: str | None = None) -> Settings:
        """From the environment; ``network``: the network mode asked for (see
        ``network_mode``). Raises InvalidParameter (a bad network mode)."""
        root = default_root()
        boot = os.environ.get("VMCONTAINER_BOOT_DIR")
        return cls(root=root, boot_dir=Path(boot) if boot else root / "boot",
                   network_driver=network_mode(network),
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
