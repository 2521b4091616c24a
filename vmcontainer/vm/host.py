"""Facts about the host the VMs run on: TSC frequency, KVM usability.

``/dev/kvm`` can exist and open yet not run guests (nested virtualisation that hangs
in long mode, as on the project's development machines), so KVM is *proven* by
booting a probe guest once per host boot, not assumed from the device node.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

_CPUINFO = Path("/proc/cpuinfo")
_TSC_SYSFS = Path("/sys/devices/system/cpu/cpu0/tsc_freq_khz")
_DMESG_TSC = re.compile(r"tsc: (?:Refined TSC clocksource calibration|Detected): ([0-9.]+) MHz")


def host_tsc_khz() -> int | None:
    """The host TSC frequency in kHz, or None when it cannot be known.

    Under TCG the guest's TSC runs at the host's rate, and a microvm guest (no PIT)
    cannot calibrate it, so the kernel gets ``tsc_early_khz=`` (DESIGN.md: ~40% of
    boots hang without it). Sources, most exact first: sysfs ``tsc_freq_khz``;
    ``cpu MHz`` of /proc/cpuinfo when the CPU flags say the TSC frequency is known
    (``tsc_known_freq``); the kernel's own calibration line in ``dmesg``.
    """
    try:
        return int(_TSC_SYSFS.read_text().strip())
    except (OSError, ValueError):
        pass
    try:
        info = _CPUINFO.read_text()
    except OSError:
        info = ""
    flags = re.search(r"^flags\s*:(.*)$", info, re.M)
    mhz = re.search(r"^cpu MHz\s*:\s*([0-9.]+)", info, re.M)
    if flags and mhz and "tsc_known_freq" in flags.group(1).split():
        return round(float(mhz.group(1)) * 1000)
    try:
        out = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    found = _DMESG_TSC.findall(out)
    if found:
        return round(float(found[-1]) * 1000)
    if mhz:
        return round(float(mhz.group(1)) * 1000)
    return None


def kvm_device_usable() -> bool:
    """True when /dev/kvm exists and this process may open it read-write. Necessary,
    not sufficient: see ``vmcontainer.vm.accel`` for the boot probe."""
    return os.access("/dev/kvm", os.R_OK | os.W_OK)


def host_boot_id() -> str:
    """The kernel's boot ID: a cache key for facts that hold until the host reboots."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"
