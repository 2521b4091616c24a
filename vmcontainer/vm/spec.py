"""MachineSpec and its parts: what a VM is, independent of how it is run.

Frozen dataclasses, validated at construction; the backends render them (QEMU argv,
libvirt XML). Units are in the field names (``memory_mib``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vmcontainer.errors import InvalidParameter
from vmcontainer.vm.nic import NicSpec

MIN_MEMORY_MIB = 64


@dataclass(frozen=True)
class DiskSpec:
    """A virtio-blk disk. ``serial`` is how the agent finds it (/sys/block/vdX/serial).
    ``format`` is a QEMU block driver: ``qcow2`` or ``raw``."""

    path: Path
    serial: str
    format: str = "qcow2"
    readonly: bool = False

    def __post_init__(self) -> None:
        if self.format not in ("qcow2", "raw"):
            raise InvalidParameter(f"unsupported disk format {self.format!r}")
        if not self.serial or len(self.serial) > 20 or not self.serial.isalnum():
            raise InvalidParameter(f"disk serial must be 1-20 alphanumerics: {self.serial!r}")


@dataclass(frozen=True)
class ShareSpec:
    """A host directory shared with the guest over virtio-9p (QEMU's ``local``
    fsdev), mounted by the agent by its ``tag``. ``readonly``: QEMU refuses
    writes too, besides the guest's read-only mount."""

    path: Path
    tag: str
    readonly: bool = False

    def __post_init__(self) -> None:
        if not self.tag or len(self.tag) > 31 or not self.tag.isalnum():
            raise InvalidParameter(f"share tag must be 1-31 alphanumerics: {self.tag!r}")
        if not self.path.is_absolute():
            raise InvalidParameter(f"share path must be absolute: {self.path}")


@dataclass(frozen=True)
class ChannelSpec:
    """A virtio-serial port named ``name`` in the guest, a unix socket on the host
    (served by the hypervisor; the host connects to it) named ``socket`` inside the
    machine's ``run_dir``. Socket paths are relative to ``run_dir`` because unix
    socket paths are limited to 107 bytes and container directories are deep."""

    name: str
    socket: str

    def __post_init__(self) -> None:
        if "/" in self.socket or "," in self.socket or not self.socket:
            raise InvalidParameter(f"channel socket must be a plain file name: {self.socket!r}")


@dataclass(frozen=True)
class MachineSpec:
    """Everything needed to boot one VM.

    ``kernel``: an uncompressed vmlinux (PVH) or bzImage; ``initramfs``: uncompressed
    cpio; ``cmdline``: kernel command line without the per-machine parts the backend
    adds (TSC frequency); ``memory_mib`` ≥ 64; ``vcpus`` ≥ 1. ``run_dir`` is the
    hypervisor's working directory and holds its sockets (``qmp.sock`` and the
    channels), its log ``qemu.log`` and the serial console ``console.log``.
    ``owner``: who the VM belongs to (the container ID), recorded where the VM lives
    outside this process (libvirt domain metadata) so that only its own VMs are
    adopted.
    ``hotplug_slots`` (q35 only): PCIe root ports ``hp0``… that NICs can be
    plugged into and out of while the VM runs.

    Templating (qemu backend only; ``vmcontainer.engine.templates``):
    ``memory_file``: guest RAM is this file (a ``memory-backend-file``), mapped
    shared (``memory_shared``: the template writes it) or private (a clone: its
    pages copy-on-write); ``incoming``: the saved device state to resume from
    instead of booting ``kernel``.
    """

    name: str
    kernel: Path
    initramfs: Path
    cmdline: str
    memory_mib: int
    vcpus: int
    run_dir: Path
    disks: tuple[DiskSpec, ...] = ()
    channels: tuple[ChannelSpec, ...] = ()
    shares: tuple[ShareSpec, ...] = ()
    nics: tuple[NicSpec, ...] = ()
    machine_type: str = "microvm"
    hotplug_slots: int = 0
    extra_cmdline: tuple[str, ...] = field(default=())
    owner: str = ""
    memory_file: Path | None = None
    memory_shared: bool = False
    incoming: Path | None = None

    def __post_init__(self) -> None:
        if self.memory_mib < MIN_MEMORY_MIB:
            raise InvalidParameter(
                f"Minimum memory limit allowed for a VM container is {MIN_MEMORY_MIB}MB"
            )
        if not 1 <= self.vcpus <= 64:
            raise InvalidParameter(f"vCPU count must be between 1 and 64, not {self.vcpus}")
        if self.machine_type not in ("microvm", "q35"):
            raise InvalidParameter(f"unsupported machine type {self.machine_type!r}")
        if len({d.serial for d in self.disks}) != len(self.disks):
            raise InvalidParameter("disk serials must be unique")
        if len({s.tag for s in self.shares}) != len(self.shares):
            raise InvalidParameter("share tags must be unique")
        if len({n.id for n in self.nics}) != len(self.nics):
            raise InvalidParameter("NIC ids must be unique")
        if self.hotplug_slots and self.machine_type != "q35":
            raise InvalidParameter("hot-plug slots need the q35 machine (microvm has no "
                                   "hot-plug)")
        if not 0 <= self.hotplug_slots <= 32:
            raise InvalidParameter("at most 32 hot-plug slots")
