"""A template's device layout: which container machines can clone one, the
layout part of its key, and the template's own devices in those slots.

A clone's devices sit in its template's slots, in the same order (the
migration stream names each device by its slot): rootfs, config, the
container's volume disks, its 9p shares (bind mounts), its NICs. The key holds
how many of each there are (up to ``MAX_VOLUMES``, ``MAX_SHARES``,
``MAX_NICS``), so a container with two volumes and a bind mount clones a
template with two volume placeholders and a share placeholder. What the
template's guest read of each device when its kernel probed it, it keeps
(measured on Linux 6.1 and QEMU 7.2):

- virtio-blk capacity: read at probe only. Every placeholder disk is a sparse
  file of a capacity every clone's disk in that slot fits in
  (``ROOTFS_CAPACITY``, ``VOLUME_CAPACITY``); a volume larger than that boots
  cold. A file system on a smaller disk never reaches past its own size (ext4's
  block count), and QEMU refuses requests past the clone's real end.
- virtio-blk serial: read from the device on each read of
  ``/sys/block/vdX/serial`` (``VIRTIO_BLK_T_GET_ID``), so the agent finds the
  clone's disks by their own serials.
- cached blocks (the partition scan): the agent drops them (``BLKFLSBUF``) in
  each clone before it mounts anything (guest/PROTOCOL.md "Warm start").
- 9p mount tag: read at probe only (``trans_virtio``'s ``chan->tag``), and
  ``mount -t 9p TAG`` looks it up there. The host tags a container's shares
  ``bind0``, ``bind1``, … in mount order (``engine.mounts.machine_mounts``), and
  the template's placeholders carry the same tags; a share with any other tag
  boots cold. The placeholder shares an empty directory: a template's guest
  never mounts it (QEMU blocks migration once a 9p export is attached, never
  before), and what is shared (path, read-only) is the clone's QEMU's alone.

NICs: ``templates`` module docstring.
"""

from __future__ import annotations

import struct
from pathlib import Path

from vmcontainer.guestlink.protocol import PORT_NAME
from vmcontainer.vm.guestkernel import DEFAULT_CMDLINE
from vmcontainer.vm.nic import NicSpec
from vmcontainer.vm.spec import ChannelSpec, DiskSpec, MachineSpec, ShareSpec

# Bump when the agent's template protocol or the device layout (qemu_argv's
# device order: rng, agent port, rootfs, config, volumes, shares, root ports,
# NICs) changes.
LAYOUT_VERSION = "v3"
# Slots a template may have of each kind (each costs the template's boot a
# probe, and each count a template of its own). microvm has 24 virtio-mmio
# transports: rng, serial, rootfs, config and these all fit.
MAX_NICS = 8
MAX_VOLUMES = 4
MAX_SHARES = 4
AGENT_SOCKET = "agent.sock"
# The guest keeps the capacity it probed at the template's boot: every rootfs
# (volume) whose virtual size is at most this fits (the disk is sparse).
ROOTFS_CAPACITY = 1 << 40
VOLUME_CAPACITY = 1 << 40
CONFIG_CAPACITY = 1 << 20
# A template's RAM file stays on tmpfs while the daemon runs, holding what its
# guest touched at boot — which grows with its memory (the kernel's page structs:
# 16 GiB for a 1 TiB guest): larger machines boot cold.
MAX_MEMORY_MIB = 2048


def template_mac(index: int) -> str:
    """The MAC of a template's NIC ``index`` (locally administered, ``02:76:6d:63``
    is "vmc"): the guest's until its clone's agent sets the container's."""
    return f"02:76:6d:63:00:{index:02x}"


def template_nic(key: str, index: int, nic: NicSpec) -> NicSpec:
    """The template's NIC in the slot of container NIC ``nic`` (``templates``
    module docstring)."""
    if nic.netdev == "tap":
        return NicSpec(id=nic.id, mac=template_mac(index), netdev="tap",
                       tap=f"vmctpl{key[:8]}{index}", bus=nic.bus)
    return NicSpec(id=nic.id, mac=template_mac(index), netdev="hubport", bus=nic.bus)


def share_tag(index: int) -> str:
    """The 9p mount tag of share slot ``index`` (the one machine_mounts gives)."""
    return f"bind{index}"


def layout(spec: MachineSpec) -> str:
    """The device layout of container machine ``spec`` as part of its template key:
    machine type, volume and share slots, hot-plug root ports and each NIC's id
    and slot."""
    nics = ",".join(f"{n.id}@{n.bus or 'mmio'}:{n.netdev}" for n in spec.nics)
    return (f"{spec.machine_type};rootfs,config;volumes={len(spec.disks) - 2};"
            f"shares={len(spec.shares)};agent;ports={spec.hotplug_slots};"
            f"nics={nics};{LAYOUT_VERSION}")


def qcow2_virtual_size(path: Path) -> int | None:
    """The virtual size in bytes from a qcow2 header, None when not qcow2."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(32)
    except OSError:
        return None
    if len(head) < 32 or head[:4] != b"QFI\xfb":
        return None
    return int(struct.unpack(">Q", head[24:32])[0])


def disk_size(disk: DiskSpec) -> int | None:
    """What the guest sees of ``disk``: its virtual size in bytes (a qcow2's, a
    raw file's length); None when it cannot be read or is not in its format."""
    if disk.format == "qcow2":
        return qcow2_virtual_size(disk.path)
    try:
        return disk.path.stat().st_size
    except OSError:
        return None


def _fits(disk: DiskSpec, capacity: int) -> bool:
    size = disk_size(disk)
    return not disk.readonly and size is not None and size <= capacity


def fits(spec: MachineSpec) -> bool:
    """Whether container machine ``spec`` has a template's device layout: at most
    ``MAX_MEMORY_MIB``, the agent channel, a rootfs that fits, the config slot,
    up to ``MAX_VOLUMES`` writable volume disks that fit, up to ``MAX_SHARES``
    9p shares tagged as ``share_tag`` tags them, up to ``MAX_NICS`` user or tap
    NICs (on q35 in root ports, with the machine's spare ports for hot-plug: a
    clone's are as free as its template's), and nothing else (anything a later
    field adds)."""
    if (len(spec.disks) < 2 or len(spec.disks) > 2 + MAX_VOLUMES
            or len(spec.shares) > MAX_SHARES
            or spec.memory_mib > MAX_MEMORY_MIB or len(spec.nics) > MAX_NICS):
        return False
    rootfs, config, *volumes = spec.disks
    if (rootfs.serial, config.serial) != ("rootfs", "config") or rootfs.format != "qcow2":
        return False
    if not _fits(rootfs, ROOTFS_CAPACITY) or not all(_fits(v, VOLUME_CAPACITY) for v in volumes):
        return False
    if [s.tag for s in spec.shares] != [share_tag(i) for i in range(len(spec.shares))]:
        return False
    if any(n.netdev not in ("user", "tap") for n in spec.nics):
        return False
    bare = MachineSpec(name=spec.name, kernel=spec.kernel, initramfs=spec.initramfs,
                       cmdline=DEFAULT_CMDLINE, memory_mib=spec.memory_mib,
                       vcpus=spec.vcpus, run_dir=spec.run_dir, disks=spec.disks,
                       channels=(ChannelSpec(PORT_NAME, AGENT_SOCKET),), owner=spec.owner,
                       shares=spec.shares, nics=spec.nics, machine_type=spec.machine_type,
                       hotplug_slots=spec.hotplug_slots)
    return spec == bare


def placeholders(spec: MachineSpec, directory: Path) -> tuple[tuple[DiskSpec, ...],
                                                             tuple[ShareSpec, ...]]:
    """The template's disks and shares for container machine ``spec``, made in
    ``directory``: sparse raw files of each slot's capacity (``config.raw`` is
    the one every clone attaches in the config slot) and one empty directory
    behind every share slot."""
    sizes = [("rootfs", ROOTFS_CAPACITY), ("config", CONFIG_CAPACITY)]
    sizes += [(f"vol{i}", VOLUME_CAPACITY) for i in range(len(spec.disks) - 2)]
    disks = []
    for name, size in sizes:
        with open(directory / f"{name}.raw", "wb") as fh:
            fh.truncate(size)
        disks.append(DiskSpec(directory / f"{name}.raw", name, format="raw",
                              readonly=name == "config"))
    empty = directory / "share"
    empty.mkdir(exist_ok=True)
    shares = tuple(ShareSpec(empty, share_tag(i)) for i in range(len(spec.shares)))
    return tuple(disks), shares
