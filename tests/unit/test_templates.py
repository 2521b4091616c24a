"""Which container machines may clone a template, and the CONFIG payload."""

from __future__ import annotations

import json
import struct
import time
from dataclasses import replace
from pathlib import Path

from vmcontainer.engine.templatelayout import (
    MAX_MEMORY_MIB,
    MAX_NICS,
    MAX_SHARES,
    MAX_VOLUMES,
    ROOTFS_CAPACITY,
    VOLUME_CAPACITY,
    placeholders,
    qcow2_virtual_size,
    template_mac,
)
from vmcontainer.engine.templates import Template, TemplatePool
from vmcontainer.engine.warm import clone_config, config_payload
from vmcontainer.guestlink.configdisk import CONFIG_VERSION
from vmcontainer.vm.guestkernel import DEFAULT_CMDLINE
from vmcontainer.vm.nic import HostForward, NicSpec
from vmcontainer.vm.spec import ChannelSpec, DiskSpec, MachineSpec, ShareSpec

USER_NIC = NicSpec(id="net0", mac="02:42:0a:0b:0c:0d",
                   forwards=(HostForward("tcp", "127.0.0.1", 8080, 80),))


class FakeBackend:
    name = "qemu"
    accelerator = "tcg"


def qcow2(path: Path, size: int) -> Path:
    path.write_bytes(b"QFI\xfb" + b"\0" * 20 + struct.pack(">Q", size) + b"\0" * 64)
    return path


def container_spec(tmp: Path, **kw: object) -> MachineSpec:
    base: dict[str, object] = dict(
        name="vmc-x", kernel=Path("/k"), initramfs=Path("/i"), cmdline=DEFAULT_CMDLINE,
        memory_mib=128, vcpus=1, run_dir=tmp,
        disks=(DiskSpec(qcow2(tmp / "rootfs.qcow2", 8 << 30), "rootfs"),
               DiskSpec(tmp / "config.iso", "config", format="raw", readonly=True)),
        channels=(ChannelSpec("org.vmcontainer.agent.0", "agent.sock"),))
    base.update(kw)
    return MachineSpec(**base)  # type: ignore[arg-type]


def test_only_the_template_layout_is_eligible(tmp_path: Path) -> None:
    pool = TemplatePool(FakeBackend(), tmp_path / "t", tmp_path / "shm")  # type: ignore[arg-type]
    spec = container_spec(tmp_path)
    assert pool.eligible(spec)
    assert pool.eligible(replace(spec, memory_mib=MAX_MEMORY_MIB))
    assert not pool.eligible(replace(spec, memory_mib=MAX_MEMORY_MIB + 1))
    assert not pool.eligible(replace(spec, extra_cmdline=("x=1",)))
    assert not pool.eligible(replace(spec, disks=spec.disks[::-1]))
    big = qcow2(tmp_path / "big.qcow2", ROOTFS_CAPACITY + 1)
    assert not pool.eligible(replace(spec, disks=(DiskSpec(big, "rootfs"), spec.disks[1])))
    libvirt = FakeBackend()
    libvirt.name = "libvirt"
    assert not TemplatePool(libvirt, tmp_path, tmp_path).eligible(spec)  # type: ignore[arg-type]


def volume(path: Path, size: int, serial: str = "vol0") -> DiskSpec:
    with open(path, "wb") as fh:
        fh.truncate(size)
    return DiskSpec(path, serial, format="raw")


def test_volumes_and_shares_have_slots(tmp_path: Path) -> None:
    """Up to MAX_VOLUMES volume disks that fit VOLUME_CAPACITY and MAX_SHARES 9p
    shares tagged bind0, bind1, ... (the guest keeps the template's tags); their
    counts are part of the key, their files, serials and read-only-ness are not."""
    pool = TemplatePool(FakeBackend(), tmp_path / "t", tmp_path / "shm")  # type: ignore[arg-type]
    (tmp_path / "k").write_bytes(b"kernel")
    (tmp_path / "i").write_bytes(b"initramfs")
    spec = container_spec(tmp_path, kernel=tmp_path / "k", initramfs=tmp_path / "i")
    vols = tuple(volume(tmp_path / f"v{i}", 8 << 30, f"vol{i}") for i in range(MAX_VOLUMES + 1))
    shares = tuple(ShareSpec(tmp_path / f"s{i}", f"bind{i}", readonly=i == 1)
                   for i in range(MAX_SHARES + 1))
    one = replace(spec, disks=(*spec.disks, vols[0]))
    assert pool.eligible(one) and pool.key(one) != pool.key(spec)
    other = replace(spec, disks=(*spec.disks, volume(tmp_path / "o", 64 << 20, "x1")))
    assert pool.eligible(other) and pool.key(other) == pool.key(one)
    full = replace(spec, disks=(*spec.disks, *vols[:MAX_VOLUMES]), shares=shares[:MAX_SHARES])
    assert pool.eligible(full)
    assert not pool.eligible(replace(spec, disks=(*spec.disks, *vols)))
    assert not pool.eligible(replace(spec, shares=shares))
    big = volume(tmp_path / "big", VOLUME_CAPACITY + 1)
    assert not pool.eligible(replace(spec, disks=(*spec.disks, big)))
    assert pool.eligible(replace(spec, disks=(*spec.disks, volume(big.path, VOLUME_CAPACITY))))
    assert not pool.eligible(replace(spec, disks=(*spec.disks, replace(vols[0], readonly=True))))
    assert not pool.eligible(replace(spec, disks=(*spec.disks, DiskSpec(tmp_path / "gone",
                                                                          "vol0", format="raw"))))
    bind = replace(spec, shares=shares[:1])
    assert pool.eligible(bind)
    assert not pool.eligible(replace(spec, shares=shares[1:2] + shares[:1]))
    assert pool.key(bind) == pool.key(replace(bind, shares=(replace(shares[1], tag="bind0"),)))
    assert len({pool.key(x) for x in (spec, one, bind, full)}) == 4
    assert not pool.eligible(replace(spec, shares=(ShareSpec(tmp_path, "data"),)))


def test_placeholders_fill_every_slot(tmp_path: Path) -> None:
    vols = tuple(volume(tmp_path / f"v{i}", 1 << 30, f"vol{i}") for i in range(2))
    spec = replace(container_spec(tmp_path), disks=(*container_spec(tmp_path).disks, *vols),
                   shares=(ShareSpec(Path("/x"), "bind0", readonly=True),))
    out = tmp_path / "tpl"
    out.mkdir()
    disks, shares = placeholders(spec, out)
    assert [(d.serial, d.format, d.readonly, d.path.stat().st_size) for d in disks] == [
        ("rootfs", "raw", False, ROOTFS_CAPACITY), ("config", "raw", True, 1 << 20),
        ("vol0", "raw", False, VOLUME_CAPACITY), ("vol1", "raw", False, VOLUME_CAPACITY)]
    assert all(d.path.stat().st_blocks == 0 for d in disks)  # sparse
    assert [(s.tag, s.readonly, list(s.path.iterdir())) for s in shares] == [("bind0", False, [])]


def test_nics_are_part_of_the_layout(tmp_path: Path) -> None:
    """User and tap NICs have template slots; the key tells NIC layouts and
    netdev kinds apart (a template for tap clones has a tap: the guest acked its
    offloads) but not what is behind a NIC (host forwards, MAC, which tap)."""
    pool = TemplatePool(FakeBackend(), tmp_path / "t", tmp_path / "shm")  # type: ignore[arg-type]
    (tmp_path / "k").write_bytes(b"kernel")
    (tmp_path / "i").write_bytes(b"initramfs")
    bare = container_spec(tmp_path, kernel=tmp_path / "k", initramfs=tmp_path / "i")
    spec = replace(bare, nics=(USER_NIC,))
    assert pool.eligible(spec)
    other = replace(spec, nics=(replace(USER_NIC, mac="02:42:00:00:00:01", forwards=()),))
    tap = replace(spec, nics=(NicSpec(id="net0", mac="02:42:00:00:00:02", netdev="tap",
                                      tap="vmct1"),))
    other_tap = replace(tap, nics=(replace(tap.nics[0], mac="02:42:00:00:00:05", tap="x"),))
    assert pool.key(spec) == pool.key(other) and pool.key(tap) == pool.key(other_tap)
    assert len({pool.key(spec), pool.key(bare), pool.key(tap)}) == 3
    two = replace(spec, nics=(USER_NIC, replace(USER_NIC, id="net1", mac="02:42:00:00:00:03",
                                                forwards=())))
    assert pool.eligible(two) and pool.key(two) != pool.key(spec)
    many = tuple(replace(USER_NIC, id=f"net{i}", mac=f"02:42:00:00:00:{i:02x}", forwards=())
                 for i in range(MAX_NICS + 1))
    assert not pool.eligible(replace(spec, nics=many))
    hub = replace(spec, nics=(NicSpec(id="net0", mac="02:42:00:00:00:04", netdev="hubport"),))
    assert not pool.eligible(hub)
    # bridge mode: q35, the boot NIC in the first root port, spare ports for hot-plug
    q35 = replace(tap, machine_type="q35", hotplug_slots=5,
                  nics=(replace(tap.nics[0], bus="hp0"),))
    assert pool.eligible(q35)
    keys = {pool.key(x) for x in (q35, replace(q35, hotplug_slots=6), tap,
                                  replace(q35, nics=(replace(tap.nics[0], bus="hp1"),)))}
    assert len(keys) == 4


def test_clone_config_names_each_nics_template_mac(tmp_path: Path) -> None:
    second = NicSpec(id="net1", mac="02:42:00:00:00:01")
    spec = replace(container_spec(tmp_path), nics=(USER_NIC, second))
    t = Template("k", tmp_path / "s", tmp_path / "m", tmp_path / "c", 128, 1, 0.1,
                 nic_ids=("net0", "net1"))
    config = {"id": "x", "network": {"interfaces": [
        {"mac": second.mac, "name": "eth1"}, {"mac": USER_NIC.mac, "name": "eth0"}]}}
    sent = clone_config(config, spec, t)
    assert sent["network"]["interfaces"] == [
        {"mac": second.mac, "name": "eth1", "template_mac": template_mac(1)},
        {"mac": USER_NIC.mac, "name": "eth0", "template_mac": template_mac(0)}]
    assert "template_mac" not in config["network"]["interfaces"][0]  # not changed
    assert template_mac(0) != template_mac(1)
    assert clone_config({"id": "x"}, spec, t) == {"id": "x"}


def test_qcow2_virtual_size(tmp_path: Path) -> None:
    assert qcow2_virtual_size(qcow2(tmp_path / "a", 12345)) == 12345
    (tmp_path / "raw").write_bytes(b"\0" * 64)
    assert qcow2_virtual_size(tmp_path / "raw") is None
    assert qcow2_virtual_size(tmp_path / "missing") is None


def test_config_payload_is_fresh_each_time() -> None:
    a, b = (json.loads(config_payload({"id": "x", "hostname": "h"})) for _ in range(2))
    assert a["version"] == CONFIG_VERSION and a["hostname"] == "h"
    assert len(a["seed"]) == 128 and a["seed"] != b["seed"]
    assert abs(a["clock_ns"] / 1e9 - time.time()) < 5


def test_eviction_picks_the_least_recently_used_idle_template() -> None:
    from vmcontainer.engine.templates import eviction
    assert eviction({"a": 10.0, "b": 5.0, "c": 50.0}, now=100.0, idle_s=60.0) == "b"
    assert eviction({"a": 10.0, "c": 50.0}, now=100.0, idle_s=60.0) == "a"
    assert eviction({"c": 50.0}, now=100.0, idle_s=60.0) is None  # in use lately: keep
    assert eviction({}, now=100.0) is None
