"""The guest kernel's command line as a backend renders it, and what a kernel accepts.

The command line is a pure function of the MachineSpec, the accelerator and host
facts, so that every backend (QEMU argv, libvirt ``<cmdline>``) boots the same guest.
Why each part (measured under TCG, issue "Fast start", DESIGN.md "Guest kernel"):

- ``tsc_early_khz=<host TSC kHz>`` (TCG): the guest's TSC runs at the host's rate
  and cannot be calibrated without a PIT; without it ~40% of microvm boots hang.
- ``lapic_timer_khz=1000000`` (TCG, kernels with images/kernel/patches/
  lapic-timer-khz.patch): QEMU's emulated APIC bus runs at 1 GHz, so the kernel
  skips its LAPIC timer calibration (100-300 ms) and needs no PIT — which is what
  lets microvm run with ``pit=off,pic=off``.
"""

from __future__ import annotations

import functools
import mmap
from pathlib import Path

from vmcontainer.vm.spec import MachineSpec

# The spec's command line for a vmcontainer guest (MachineSpec.cmdline): kernel
# messages on the 8250 (only warnings and worse: every byte is an exit under TCG),
# reboot at once on panic (QEMU ends, -no-reboot), reboot by triple fault (no
# firmware to ask). ``noreplace-smp``: a kernel booted on one CPU rewrites every
# SMP lock prefix of its text (~70-120 ms under TCG, whose self-modifying-code
# handling makes each write costly); the prefixes are harmless on one CPU.
DEFAULT_CMDLINE = "console=ttyS0 quiet panic=-1 reboot=t noreplace-smp"
# The bus clock of QEMU's emulated local APIC (hw/intc/apic_common.c: one tick per ns).
QEMU_APIC_BUS_KHZ = 1_000_000
LAPIC_TIMER_PARAM = "lapic_timer_khz"


@functools.lru_cache(maxsize=32)
def _kernel_strings(path: str, size: int, mtime_ns: int, needle: bytes) -> bool:
    del size, mtime_ns  # part of the cache key only
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
        return m.find(needle) >= 0


def kernel_accepts(kernel: Path, param: str) -> bool:
    """Whether the kernel image at ``kernel`` (vmlinux or bzImage, uncompressed
    strings) declares boot parameter ``param``: its name, NUL-terminated, is in the
    image (``early_param``/``__setup`` keep it as a string). Cached per file
    identity; False when the file cannot be read."""
    try:
        st = kernel.stat()
        return _kernel_strings(str(kernel), st.st_size, st.st_mtime_ns,
                               param.encode() + b"\0")
    except (OSError, ValueError):
        return False


def boot_cmdline(spec: MachineSpec, accel: str, tsc_khz: int | None,
                 lapic_timer: bool) -> str:
    """The full kernel command line for ``spec`` under ``accel`` (``kvm`` or ``tcg``):
    the spec's own parts, then the per-host ones. ``tsc_khz``: the host TSC
    frequency, None when unknown; ``lapic_timer``: the kernel accepts
    ``lapic_timer_khz`` (``kernel_accepts``)."""
    parts = [spec.cmdline, *spec.extra_cmdline]
    if accel == "tcg":
        if tsc_khz:
            parts.append(f"tsc_early_khz={tsc_khz}")
        if lapic_timer:
            parts.append(f"{LAPIC_TIMER_PARAM}={QEMU_APIC_BUS_KHZ}")
    return " ".join(p for p in parts if p)
