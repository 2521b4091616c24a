"""MachineSpec → libvirt domain XML, built with ElementTree from small device classes
(after virt-manager's ``virtinst/devices/``): each device renders its own element, the
domain puts them in a fixed order, and no XML is made from string templates.

What is rendered: direct kernel boot (kernel, initrd, cmdline), memory, vCPUs, CPU
model, disks (virtio-blk, serial, qcow2/raw, read-only, an explicit backing store),
virtio-serial channels (unix sockets, path chosen by libvirt), the serial console (a
file or nothing), a virtio RNG, on_poweroff/reboot/crash ``destroy`` and the owner's
metadata, tap NICs, 9p shares, and user-networking NICs as QEMU arguments.

Machines: ``microvm`` (libvirt 9.0 renders it: each virtio device is given an
explicit ``<address type='virtio-mmio'/>``, which makes it a ``virtio-*-device``,
and the machine's own options come as one more ``-machine`` that QEMU merges) or
``q35`` (virtio-pci; PCIe root ports for NIC hot-plug).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath

from vmcontainer.vm.spec import MachineSpec

# The namespace of vmcontainer's <metadata> child: who owns the domain.
METADATA_NS = "https://github.com/vmcontainer/vmcontainer/libvirt/1"
METADATA_PREFIX = "vmcontainer"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def _mmio(el: ET.Element, mmio: bool) -> None:
    """On microvm: the device on virtio-mmio (libvirt would place it on PCI)."""
    if mmio:
        _sub(el, "address", type="virtio-mmio")


@dataclass(frozen=True)
class Disk:
    """A virtio-blk disk. ``path``: the file on the hypervisor's host; ``backing``: the
    overlay's backing file there (raw), given explicitly so that libvirt does not
    follow the path written in the qcow2 header (a path on another host)."""

    path: PurePosixPath
    serial: str
    target: str
    format: str = "qcow2"
    readonly: bool = False
    backing: PurePosixPath | None = None
    mmio: bool = False

    def render(self, devices: ET.Element) -> None:
        disk = _sub(devices, "disk", type="file", device="disk")
        _sub(disk, "driver", name="qemu", type=self.format, cache="writeback", io="threads")
        _sub(disk, "source", file=str(self.path))
        if self.backing is not None:
            store = _sub(disk, "backingStore", type="file")
            _sub(store, "format", type="raw")
            _sub(store, "source", file=str(self.backing))
            _sub(store, "backingStore")
        _sub(disk, "target", dev=self.target, bus="virtio")
        if self.readonly:
            _sub(disk, "readonly")
        _sub(disk, "serial", self.serial)
        _mmio(disk, self.mmio)


@dataclass(frozen=True)
class Filesystem:
    """A host directory over virtio-9p, mounted in the guest by ``tag``; access mode
    ``passthrough`` for the reason the qemu backend gives (vmcontainer.vm.qemu)."""

    path: PurePosixPath
    tag: str
    readonly: bool = False
    mmio: bool = False

    def render(self, devices: ET.Element) -> None:
        fs = _sub(devices, "filesystem", type="mount", accessmode="passthrough")
        _sub(fs, "driver", type="path")
        _sub(fs, "source", dir=str(self.path))
        _sub(fs, "target", dir=self.tag)
        if self.readonly:
            _sub(fs, "readonly")
        _mmio(fs, self.mmio)


QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
USER_NIC_SLOT = 0x1A
"""First pcie.0 slot for user-networking NICs (0x1a, 0x1b, ...; libvirt fills slots
from 1 up and puts the ICH9 functions at 0x1f)."""


def devices_user(devices: list[Device]) -> list[UserNic]:
    return [d for d in devices if isinstance(d, UserNic)]


@dataclass(frozen=True)
class TapInterface:
    """A virtio-net NIC on an existing tap device (bridge mode), libvirt's
    ``<interface type='ethernet'>`` with an unmanaged target."""

    mac: str
    tap: str
    mmio: bool = False

    def render(self, devices: ET.Element) -> None:
        iface = _sub(devices, "interface", type="ethernet")
        _sub(iface, "mac", address=self.mac)
        _sub(iface, "target", dev=self.tap, managed="no")
        _sub(iface, "model", type="virtio")
        _mmio(iface, self.mmio)

    def xml(self) -> str:
        holder = ET.Element("devices")
        self.render(holder)
        return ET.tostring(holder[0], encoding="unicode")


@dataclass(frozen=True)
class UserNic:
    """A virtio-net NIC on QEMU user networking with its host forwards. libvirt
    9.0's ``<interface type='user'>`` has no port forwards without passt, so the
    NIC is given as the very QEMU arguments the qemu backend uses
    (``<qemu:commandline>``; libvirt marks such a domain "tainted", nothing more)."""

    args: tuple[str, ...]

    def render(self, devices: ET.Element) -> None:
        pass  # rendered by Domain.element under <qemu:commandline>


@dataclass(frozen=True)
class RootPorts:
    """``count`` empty PCIe root ports, where NICs are hot-plugged."""

    count: int

    def render(self, devices: ET.Element) -> None:
        # the root complex named first: libvirt gives index 0 to the first PCI
        # controller it reads, and that must be the pcie-root on q35
        _sub(devices, "controller", type="pci", index="0", model="pcie-root")
        for _ in range(self.count):
            _sub(devices, "controller", type="pci", model="pcie-root-port")


@dataclass(frozen=True)
class VirtioSerial:
    """The virtio-serial controller the channels sit on, with ``ports`` ports (the
    guest sets up two virtqueues per port at probe time: only as many as used, as
    the qemu backend's ``max_ports``)."""

    ports: int
    mmio: bool = False

    def render(self, devices: ET.Element) -> None:
        ctl = _sub(devices, "controller", type="virtio-serial", index="0",
                   ports=str(self.ports))
        _mmio(ctl, self.mmio)


@dataclass(frozen=True)
class Channel:
    """A virtio-serial port ``name`` backed by a unix socket the hypervisor listens on.
    ``path`` None lets libvirt choose one under its channel directory (short, owned
    right, on the hypervisor's host); the live XML then says where it is."""

    name: str
    path: PurePosixPath | None = None

    def render(self, devices: ET.Element) -> None:
        ch = _sub(devices, "channel", type="unix")
        src = _sub(ch, "source", mode="bind")
        if self.path is not None:
            src.set("path", str(self.path))
        _sub(ch, "target", type="virtio", name=self.name)


@dataclass(frozen=True)
class Console:
    """The first serial port: appended to ``path`` or, with None, discarded."""

    path: PurePosixPath | None = None

    def render(self, devices: ET.Element) -> None:
        serial = _sub(devices, "serial", type="file" if self.path else "null")
        if self.path is not None:
            _sub(serial, "source", path=str(self.path), append="on")
        _sub(serial, "target", port="0")


@dataclass(frozen=True)
class Rng:
    """virtio-rng from the host's /dev/urandom (the guest's entropy at boot)."""

    mmio: bool = False

    def render(self, devices: ET.Element) -> None:
        rng = _sub(devices, "rng", model="virtio")
        _sub(rng, "backend", "/dev/urandom", model="random")
        _mmio(rng, self.mmio)


@dataclass(frozen=True)
class NoDefaults:
    """What libvirt adds unasked and a container VM does not need."""

    def render(self, devices: ET.Element) -> None:
        _sub(devices, "controller", type="usb", model="none")
        _sub(devices, "memballoon", model="none")


Device = (Disk | Filesystem | TapInterface | UserNic | RootPorts | VirtioSerial | Channel
          | Console | Rng | NoDefaults)


@dataclass(frozen=True)
class Domain:
    """One domain. ``domain_type``: ``qemu`` (TCG) or ``kvm``; ``machine``: a QEMU
    machine type; ``owner``: the ID written into <metadata> (the container ID);
    ``run_as_root``: a static DAC label 0:0 without relabelling, for system
    connections (the files stay the daemon's, as with the qemu backend);
    ``machine_options``: more ``-machine`` options (``pit=off,...``), which QEMU
    merges into libvirt's own ``-machine``."""

    name: str
    domain_type: str
    machine: str
    memory_mib: int
    vcpus: int
    kernel: PurePosixPath
    initrd: PurePosixPath
    cmdline: str
    owner: str
    devices: tuple[Device, ...] = field(default=())
    run_as_root: bool = False
    machine_options: str = ""

    def element(self) -> ET.Element:
        dom = ET.Element("domain", type=self.domain_type)
        _sub(dom, "name", self.name)
        meta = _sub(dom, "metadata")
        ET.SubElement(meta, f"{{{METADATA_NS}}}container", id=self.owner)
        _sub(dom, "memory", str(self.memory_mib), unit="MiB")
        _sub(dom, "vcpu", str(self.vcpus))
        os_ = _sub(dom, "os")
        _sub(os_, "type", "hvm", arch="x86_64", machine=self.machine)
        _sub(os_, "kernel", str(self.kernel))
        _sub(os_, "initrd", str(self.initrd))
        _sub(os_, "cmdline", self.cmdline)
        if self.domain_type == "kvm":
            _sub(dom, "cpu", mode="host-passthrough")
        else:
            _sub(dom, "cpu", mode="maximum")
        for event in ("on_poweroff", "on_reboot", "on_crash"):
            _sub(dom, event, "destroy")
        devices = _sub(dom, "devices")
        for device in self.devices:
            device.render(devices)
        if self.run_as_root:
            sec = _sub(dom, "seclabel", type="static", model="dac", relabel="no")
            _sub(sec, "label", "+0:+0")
        args = [a for d in self.devices if isinstance(d, UserNic) for a in d.args]
        if self.machine_options:
            args += ["-machine", self.machine_options]
        if self.machine == "q35":
            # Native PCIe hot-plug on the root ports libvirt puts devices behind, as
            # the qemu backend sets it (vm.qemu): QEMU's default signals hot-plug
            # through ACPI, which the guest kernel lacks, and its pciehp then finds
            # the slots powered off ("Unable to change power state from D3cold").
            args += ["-global", "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off"]
        if args:
            line = ET.SubElement(dom, f"{{{QEMU_NS}}}commandline")
            for arg in args:
                ET.SubElement(line, f"{{{QEMU_NS}}}arg", value=arg)
        return dom

    def xml(self) -> str:
        ET.register_namespace(METADATA_PREFIX, METADATA_NS)
        ET.register_namespace("qemu", QEMU_NS)
        el = self.element()
        ET.indent(el)
        return ET.tostring(el, encoding="unicode")


@dataclass(frozen=True)
class HostPaths:
    """Where a spec's files are on the hypervisor's host: the same paths for a local
    connection, storage-pool volumes for a remote one. ``disks`` and ``backing``
    follow ``spec.disks``; ``console`` None discards the console."""

    kernel: PurePosixPath
    initramfs: PurePosixPath
    disks: tuple[PurePosixPath, ...]
    backing: tuple[PurePosixPath | None, ...]
    console: PurePosixPath | None

    @classmethod
    def local(cls, spec: MachineSpec) -> HostPaths:
        """The spec's own paths (qcow2 backing files found by libvirt from the header)."""
        return cls(PurePosixPath(spec.kernel), PurePosixPath(spec.initramfs),
                   tuple(PurePosixPath(d.path) for d in spec.disks),
                   tuple(None for _ in spec.disks),
                   PurePosixPath(spec.run_dir / "console.log"))


def domain_for(spec: MachineSpec, paths: HostPaths, owner: str, domain_type: str,
               run_as_root: bool, cmdline: str | None = None,
               machine_options: str = "") -> Domain:
    """The Domain of ``spec`` on its machine type (``microvm``: virtio-mmio devices,
    ``machine_options`` as for Domain; ``q35``: virtio-pci). ``cmdline``: the full
    kernel command line (default: the spec's own parts)."""
    mmio = spec.machine_type == "microvm"
    devices: list[Device] = []
    for i, (disk, path, backing) in enumerate(zip(spec.disks, paths.disks, paths.backing,
                                                  strict=True)):
        devices.append(Disk(path, disk.serial, f"vd{chr(ord('a') + i)}", disk.format,
                            disk.readonly, backing, mmio))
    devices += [Filesystem(PurePosixPath(s.path), s.tag, s.readonly, mmio) for s in spec.shares]
    for nic in spec.nics:
        if nic.netdev == "tap":
            devices.append(TapInterface(nic.mac, nic.tap, mmio))
        elif mmio:
            devices.append(UserNic(tuple(replace(nic, bus="").qemu_args("virtio-net-device"))))
        else:  # without bus=: libvirt places its own devices, QEMU this one on pcie.0
            # An explicit slot on pcie.0 that libvirt's own placement (root ports
            # from slot 1 up, ICH9 functions at 0x1f) does not reach.
            args = replace(nic, bus="").qemu_args("virtio-net-pci")
            args[-1] += f",bus=pcie.0,addr={USER_NIC_SLOT + len(devices_user(devices)):#x}"
            devices.append(UserNic(tuple(args)))
    if spec.hotplug_slots:
        devices.append(RootPorts(spec.hotplug_slots))
    if spec.channels:
        devices.append(VirtioSerial(len(spec.channels) + 1, mmio))  # port 0: virtconsole's
    devices += [Channel(ch.name) for ch in spec.channels]
    devices += [Console(paths.console), Rng(mmio), NoDefaults()]
    if cmdline is None:
        cmdline = " ".join(c for c in (spec.cmdline, *spec.extra_cmdline) if c)
    return Domain(
        name=spec.name, domain_type=domain_type, machine=spec.machine_type,
        memory_mib=spec.memory_mib, vcpus=spec.vcpus, kernel=paths.kernel,
        initrd=paths.initramfs, cmdline=cmdline, owner=owner, devices=tuple(devices),
        run_as_root=run_as_root, machine_options=machine_options if mmio else "")


def owner_of(xml: str) -> str | None:
    """The owner ID in a domain's XML, or None for a domain vmcontainer did not make."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None
    el = root.find(f"metadata/{{{METADATA_NS}}}container")
    return el.get("id") if el is not None else None


def channel_paths(xml: str) -> dict[str, str]:
    """Live domain XML → {channel name: unix socket path on the hypervisor's host}."""
    out: dict[str, str] = {}
    for ch in ET.fromstring(xml).iterfind("devices/channel"):
        target, source = ch.find("target"), ch.find("source")
        if target is not None and source is not None and source.get("path"):
            out[target.get("name", "")] = source.get("path", "")
    return out
