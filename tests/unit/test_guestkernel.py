from __future__ import annotations

import os
from pathlib import Path

from vmcontainer.vm.guestkernel import DEFAULT_CMDLINE, boot_cmdline, kernel_accepts
from vmcontainer.vm.spec import MachineSpec


def test_kernel_accepts_finds_the_nul_terminated_parameter_name(tmp_path: Path) -> None:
    k = tmp_path / "vmlinux"
    k.write_bytes(b"\x7fELF" + b"\0" * 100 + b"lapic_timer_khz\0nolapic\0" + b"\0" * 50)
    assert kernel_accepts(k, "lapic_timer_khz")
    assert kernel_accepts(k, "nolapic")
    assert not kernel_accepts(k, "lapic_timer")  # a prefix is not the name
    assert not kernel_accepts(tmp_path / "missing", "nolapic")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert not kernel_accepts(empty, "nolapic")


def test_kernel_accepts_sees_a_replaced_kernel(tmp_path: Path) -> None:
    k = tmp_path / "vmlinux"
    k.write_bytes(b"old\0")
    assert not kernel_accepts(k, "lapic_timer_khz")
    k.write_bytes(b"lapic_timer_khz\0 and more")
    os.utime(k, ns=(1, 1))  # a different identity, whatever the clock's resolution
    assert kernel_accepts(k, "lapic_timer_khz")


def test_boot_cmdline_adds_timer_hints_under_tcg_only() -> None:
    spec = MachineSpec(name="x", kernel=Path("/k"), initramfs=Path("/i"),
                       cmdline=DEFAULT_CMDLINE, memory_mib=128, vcpus=1, run_dir=Path("/r"),
                       extra_cmdline=("a=1",))
    assert boot_cmdline(spec, "tcg", 2000000, True) == \
        f"{DEFAULT_CMDLINE} a=1 tsc_early_khz=2000000 lapic_timer_khz=1000000"
    assert boot_cmdline(spec, "tcg", None, False) == f"{DEFAULT_CMDLINE} a=1"
    assert boot_cmdline(spec, "kvm", 2000000, True) == f"{DEFAULT_CMDLINE} a=1"
    assert "noreplace-smp" in DEFAULT_CMDLINE.split()
