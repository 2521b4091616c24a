"""Which container machines may clone a template, and the CONFIG payload."""

from __future__ import annotations

import json
import struct
import time
from dataclasses import replace
from pathlib import Path

from vmcontainer.engine.templates import (
    MAX_MEMORY_MIB,
    ROOTFS_CAPACITY,
    TemplatePool,
    qcow2_virtual_size,
)
from vmcontainer.engine.warm import config_payload
from vmcontainer.guestlink.configdisk import CONFIG_VERSION
from vmcontainer.vm.guestkernel import DEFAULT_CMDLINE
from vmcontainer.vm.spec import ChannelSpec, DiskSpec, MachineSpec, ShareSpec


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
    volume = DiskSpec(tmp_path / "v.qcow2", "vol0")
    assert not pool.eligible(replace(spec, disks=(*spec.disks, volume)))
    assert not pool.eligible(replace(spec, shares=(ShareSpec(tmp_path, "bind0"),)))
    assert not pool.eligible(replace(spec, machine_type="q35"))
    assert pool.eligible(replace(spec, memory_mib=MAX_MEMORY_MIB))
    assert not pool.eligible(replace(spec, memory_mib=MAX_MEMORY_MIB + 1))
    assert not pool.eligible(replace(spec, extra_cmdline=("x=1",)))
    assert not pool.eligible(replace(spec, disks=spec.disks[::-1]))
    big = qcow2(tmp_path / "big.qcow2", ROOTFS_CAPACITY + 1)
    assert not pool.eligible(replace(spec, disks=(DiskSpec(big, "rootfs"), spec.disks[1])))
    libvirt = FakeBackend()
    libvirt.name = "libvirt"
    assert not TemplatePool(libvirt, tmp_path, tmp_path).eligible(spec)  # type: ignore[arg-type]


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
