"""``docker top``: the guest's processes (PROTOCOL.md ``PROCESSES``) as ``ps -ef``
prints them, which is Docker's default (Engine API v1.45, ContainerTop:
``{"Titles": [...], "Processes": [[...], ...]}``).

PIDs are the guest's (there is no host process per container process). UIDs are
shown as numbers except root, since the names belong to the image.
"""

from __future__ import annotations

import time
from typing import Any

from vmcontainer.errors import InvalidParameter

PS_EF_TITLES = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
PS_EF_ARGS = ("", "-ef", "-fe", "-e -f", "-f -e", "ef", "fe", "-A -f", "-Af", "-fA")
PTS_MAJOR = 136  # Linux Documentation/admin-guide/devices.txt: Unix98 PTY slaves


def check_ps_args(ps_args: str) -> None:
    if ps_args.strip() not in PS_EF_ARGS:
        raise InvalidParameter(
            f"ps_args {ps_args[:64]!r} are not supported: a vmcontainer container is a "
            "VM without a host-side ps; its processes are listed as `ps -ef` does")


def _tty(rdev: int) -> str:
    major, minor = (rdev >> 8) & 0xFFF, (rdev & 0xFF) | ((rdev >> 12) & 0xFFF00)
    if rdev == 0:
        return "?"
    return f"pts/{minor}" if major == PTS_MAJOR else f"{major}:{minor}"


def _cpu_time(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hms = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}-{hms}" if days else hms


def ps_ef(answer: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """Format an agent ``PROCESSES`` answer as ``ps -ef``: STIME as HH:MM of the
    host's local time (the guest booted ``uptime_ms`` before the answer), C as
    the integer percentage of CPU time over the process's life."""
    now = time.time() if now is None else now
    hz = int(answer.get("clk_tck") or 100)
    uptime_s = int(answer.get("uptime_ms") or 0) / 1000
    boot = now - uptime_s
    rows = []
    for p in answer.get("processes") or []:
        started_s = int(p.get("start_ticks") or 0) / hz
        cpu_s = int(p.get("cpu_ticks") or 0) / hz
        alive_s = max(uptime_s - started_s, 1e-9)
        uid = int(p.get("uid") or 0)
        cmdline = [str(a) for a in p.get("cmdline") or []]
        rows.append([
            "root" if uid == 0 else str(uid), str(p.get("pid")), str(p.get("ppid")),
            str(min(99, int(cpu_s * 100 / alive_s))),
            time.strftime("%H:%M", time.localtime(boot + started_s)),
            _tty(int(p.get("tty") or 0)), _cpu_time(int(cpu_s)),
            " ".join(cmdline) if cmdline else f"[{p.get('comm', '')}]",
        ])
    return {"Titles": PS_EF_TITLES, "Processes": rows}
