"""The libvirt backend's domain XML: each device's fields, validated against
libvirt's own schema (virt-xml-validate) and defined on libvirt's test:// driver."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path, PurePosixPath

import libvirt
import pytest

from vmcontainer.vm.libvirtxml import (
    METADATA_NS,
    HostPaths,
    channel_paths,
    domain_for,
    owner_of,
)
from vmcontainer.vm.nic import HostForward, NicSpec
from vmcontainer.vm.spec import ChannelSpec, DiskSpec, MachineSpec, ShareSpec

OWNER = "f" * 64


def spec(**kw: object) -> MachineSpec:
    base: dict[str, object] = dict(
        name="vmc-x", kernel=Path("/k/vmlinux"), initramfs=Path("/k/initramfs.img"),
        cmdline="console=ttyS0 quiet", memory_mib=256, vcpus=2, run_dir=Path("/run/x"),
        disks=(DiskSpec(Path("/d/rootfs.qcow2"), "rootfs"),
               DiskSpec(Path("/d/config.iso"), "config", format="raw", readonly=True)),
        channels=(ChannelSpec("org.vmcontainer.agent.0", "agent.sock"),),
        shares=(ShareSpec(Path("/srv/src"), "bind0", readonly=True),),
        nics=(NicSpec("net0", "02:42:0a:00:02:0f",
                      forwards=(HostForward("tcp", "127.0.0.1", 18080, 80),)),),
        extra_cmdline=("vmcontainer.debug=1",), owner=OWNER)
    base.update(kw)
    return MachineSpec(**base)  # type: ignore[arg-type]


def render(s: MachineSpec, domain_type: str = "qemu", root: bool = True,
           paths: HostPaths | None = None) -> str:
    return domain_for(s, paths or HostPaths.local(s), s.owner, domain_type, root).xml()


def test_local_domain() -> None:
    dom = ET.fromstring(render(spec(machine_type="q35")))
    assert dom.get("type") == "qemu" and dom.findtext("name") == "vmc-x"
    assert dom.find("memory").text == "256" and dom.find("memory").get("unit") == "MiB"
    assert dom.findtext("vcpu") == "2"
    assert dom.find("os/type").get("machine") == "q35"
    assert dom.findtext("os/kernel") == "/k/vmlinux"
    assert dom.findtext("os/initrd") == "/k/initramfs.img"
    assert dom.findtext("os/cmdline") == "console=ttyS0 quiet vmcontainer.debug=1"
    assert dom.find("cpu").get("mode") == "maximum"
    for event in ("on_poweroff", "on_reboot", "on_crash"):
        assert dom.findtext(event) == "destroy"
    rootfs, config = dom.findall("devices/disk")
    assert rootfs.find("source").get("file") == "/d/rootfs.qcow2"
    assert rootfs.find("driver").get("type") == "qcow2"
    assert rootfs.find("target").attrib == {"dev": "vda", "bus": "virtio"}
    assert rootfs.findtext("serial") == "rootfs" and rootfs.find("readonly") is None
    assert rootfs.find("backingStore") is None  # local: libvirt reads the header
    assert config.find("driver").get("type") == "raw" and config.find("readonly") is not None
    qemu = "{http://libvirt.org/schemas/domain/qemu/1.0}"
    args = [a.get("value") for a in dom.iterfind(f"{qemu}commandline/{qemu}arg")]
    assert args[0] == "-netdev" and "hostfwd=tcp:127.0.0.1:18080-10.0.2.15:80" in args[1]
    assert args[2:] == ["-device", "virtio-net-pci,netdev=net0,mac=02:42:0a:00:02:0f,id=devnet0,"
                        "bus=pcie.0,addr=0x1a",
                        "-global", "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off"]
    (share,) = dom.findall("devices/filesystem")
    assert share.attrib == {"type": "mount", "accessmode": "passthrough"}
    assert share.find("source").get("dir") == "/srv/src"
    assert share.find("target").get("dir") == "bind0" and share.find("readonly") is not None
    assert config.find("target").get("dev") == "vdb" and config.findtext("serial") == "config"
    (serial_ctl,) = dom.findall("devices/controller[@type='virtio-serial']")
    assert serial_ctl.get("ports") == "2" and serial_ctl.find("address") is None  # PCI
    (channel,) = dom.findall("devices/channel")
    assert channel.get("type") == "unix"
    assert channel.find("source").attrib == {"mode": "bind"}  # path: libvirt's choice
    assert channel.find("target").attrib == {"type": "virtio",
                                             "name": "org.vmcontainer.agent.0"}
    assert dom.find("devices/serial/source").get("path") == "/run/x/console.log"
    assert dom.findtext("devices/rng/backend") == "/dev/urandom"
    assert dom.find("devices/memballoon").get("model") == "none"
    assert dom.find("devices/controller[@type='usb']").get("model") == "none"
    assert dom.find("seclabel").attrib == {"type": "static", "model": "dac", "relabel": "no"}
    assert dom.find(f"metadata/{{{METADATA_NS}}}container").get("id") == OWNER


def test_microvm_domain_puts_every_virtio_device_on_mmio() -> None:
    """libvirt 9.0 renders microvm when each virtio device has an explicit
    virtio-mmio address (a ``virtio-*-device``); the machine's options come as a
    second ``-machine`` that QEMU merges; a user NIC is a ``virtio-net-device``."""
    s = spec(nics=(NicSpec("net0", "02:42:0a:00:02:0f"),
                   NicSpec("net1", "02:42:ac:11:00:02", netdev="tap", tap="vmct1")))
    dom = ET.fromstring(domain_for(s, HostPaths.local(s), OWNER, "qemu", True,
                                   cmdline="console=ttyS0 tsc_early_khz=1",
                                   machine_options="pit=off,isa-serial=off").xml())
    assert dom.find("os/type").get("machine") == "microvm"
    assert dom.findtext("os/cmdline") == "console=ttyS0 tsc_early_khz=1"
    virtio = [*dom.findall("devices/disk"), *dom.findall("devices/filesystem"),
              *dom.findall("devices/interface"), *dom.findall("devices/rng"),
              *dom.findall("devices/controller[@type='virtio-serial']")]
    assert len(virtio) == 6
    for el in virtio:
        assert el.find("address").attrib == {"type": "virtio-mmio"}, el.tag
    assert not dom.findall("devices/controller[@type='pci']")
    qemu = "{http://libvirt.org/schemas/domain/qemu/1.0}"
    args = [a.get("value") for a in dom.iterfind(f"{qemu}commandline/{qemu}arg")]
    assert args[2:] == ["-device", "virtio-net-device,netdev=net0,mac=02:42:0a:00:02:0f,"
                        "id=devnet0", "-machine", "pit=off,isa-serial=off"]
    assert "ICH9-LPC" not in " ".join(args)


def test_kvm_session_and_remote_paths() -> None:
    s = spec()
    remote = HostPaths(PurePosixPath("/pool/k"), PurePosixPath("/pool/i"),
                       (PurePosixPath("/pool/c-rootfs"), PurePosixPath("/pool/c-config")),
                       (PurePosixPath("/pool/base.ext4"), None), None)
    dom = ET.fromstring(render(s, "kvm", root=False, paths=remote))
    assert dom.get("type") == "kvm" and dom.find("cpu").get("mode") == "host-passthrough"
    assert dom.find("seclabel") is None
    assert dom.findtext("os/kernel") == "/pool/k" and dom.findtext("os/initrd") == "/pool/i"
    rootfs, config = dom.findall("devices/disk")
    assert rootfs.find("source").get("file") == "/pool/c-rootfs"
    assert rootfs.find("backingStore/source").get("file") == "/pool/base.ext4"
    assert rootfs.find("backingStore/format").get("type") == "raw"
    assert config.find("backingStore") is None
    assert dom.find("devices/serial").get("type") == "null"


def test_owner_and_channel_paths_from_live_xml() -> None:
    xml = render(spec())
    assert owner_of(xml) == OWNER
    assert owner_of("<domain><name>other</name></domain>") is None
    assert owner_of("not xml") is None
    live = xml.replace('<source mode="bind" />', '<source mode="bind" path="/v/agent" />')
    assert channel_paths(live) == {"org.vmcontainer.agent.0": "/v/agent"}


def test_hostile_strings_stay_text() -> None:
    xml = render(spec(cmdline='quiet </cmdline><devices/> & "x"'))
    assert ET.fromstring(xml).findtext("os/cmdline").startswith('quiet </cmdline><devices/> &')


@pytest.mark.parametrize("domain_type", ["qemu", "kvm"])
def test_valid_against_libvirt_schema(tmp_path: Path, domain_type: str) -> None:
    path = tmp_path / "domain.xml"
    path.write_text(render(spec(), domain_type))
    out = subprocess.run(["virt-xml-validate", str(path), "domain"], capture_output=True,
                         text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_defined_on_the_test_driver() -> None:
    """libvirt itself parses the XML (test:// driver, a fresh connection) and keeps
    every device and the metadata."""
    conn = libvirt.open("test:///default")
    try:
        dom = conn.defineXML(render(spec(), root=False))
        back = dom.XMLDesc(0)
        assert owner_of(back) == OWNER
        assert len(ET.fromstring(back).findall("devices/disk")) == 2
        assert len(ET.fromstring(back).findall("devices/filesystem")) == 1
        assert "org.vmcontainer.agent.0" in back
        dom.undefine()
    finally:
        conn.close()


def test_tap_nics_and_hotplug_ports(tmp_path: Path) -> None:
    s = spec(machine_type="q35", hotplug_slots=2,
             nics=(NicSpec("net0", "02:42:ac:11:00:02", netdev="tap", tap="vmct1", bus="hp0"),))
    xml = render(s)
    dom = ET.fromstring(xml)
    (iface,) = dom.findall("devices/interface")
    assert iface.get("type") == "ethernet" and iface.find("mac").get("address") == \
        "02:42:ac:11:00:02"
    assert iface.find("target").attrib == {"dev": "vmct1", "managed": "no"}
    ports = [c for c in dom.iterfind("devices/controller") if c.get("model") == "pcie-root-port"]
    assert len(ports) == 2
    conn = libvirt.open("test:///default")
    try:
        conn.defineXML(xml).undefine()  # libvirt accepts the controllers
    finally:
        conn.close()
    path = tmp_path / "domain.xml"
    path.write_text(xml)
    out = subprocess.run(["virt-xml-validate", str(path), "domain"], capture_output=True,
                         text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
