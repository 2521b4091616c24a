"""Issue "Fast start", cold path: the project's guest kernel is told its LAPIC
timer clock (images/kernel/patches/lapic-timer-khz.patch), so the microvm runs
without PIT and PIC — and the guest's timers still fire on time."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import Vmc

from vmcontainer.vm.bootassets import BootAssets
from vmcontainer.vm.guestkernel import LAPIC_TIMER_PARAM, kernel_accepts

pytestmark = pytest.mark.vm


def test_project_kernel_accepts_lapic_timer_khz(boot_assets: BootAssets) -> None:
    assert kernel_accepts(boot_assets.kernel, LAPIC_TIMER_PARAM)


def test_guest_without_pit_keeps_time(vmc: Vmc, busybox: str) -> None:
    """On both backends (libvirt: its own ``-machine microvm,...`` and ours, which
    QEMU merges)."""
    vmc("run", "-d", "--name", "clock", busybox, "sleep", "60", check=True)
    pid = json.loads(vmc("inspect", "clock").out)[0]["State"]["Pid"]
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    machine = ",".join(argv[i + 1] for i, a in enumerate(argv) if a == "-machine")
    append = argv[argv.index("-append") + 1]
    assert machine.startswith("microvm,") and ",pit=off,pic=off," in machine, machine
    if "tcg" in argv:
        assert "lapic_timer_khz=1000000" in append.split()
    # usleep-based sleeps and the clock agree with the host's: 1 s is 1 s.
    t = time.monotonic()
    r = vmc("exec", "clock", "sh", "-c", "a=$(date +%s); sleep 2; b=$(date +%s); echo $((b-a))")
    took = time.monotonic() - t
    assert r.returncode == 0, r.err
    assert r.out.strip() in ("2", "3") and 2.0 <= took < 20, (r.out, took)
    vmc("rm", "-f", "clock", check=True)
