"""What bridge networking needs from the host, checked before the daemon changes
anything: the CAP_NET_ADMIN capability (root), ``/dev/net/tun`` (taps), and the
tools ``nft`` (Debian's nftables) and ``dnsmasq`` (dnsmasq-base). Tools are looked
for on ``PATH`` and then in ``/usr/local/sbin``, ``/usr/sbin`` and ``/sbin``, which a
root shell from ``su`` (without ``-``) or a user's ``PATH`` may lack.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from vmcontainer.errors import Unavailable

SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")
#: Tool → the Debian package that has it.
TOOLS = {"nft": "nftables", "dnsmasq": "dnsmasq-base"}
CAP_NET_ADMIN = 12
TUN = Path("/dev/net/tun")


def find_tool(name: str) -> str | None:
    """The path of executable ``name``, None when it is nowhere."""
    path = os.pathsep.join([os.environ.get("PATH", os.defpath), *SBIN])
    return shutil.which(name, path=path)


def tool(name: str) -> str:
    """The path of ``name`` (a key of TOOLS). Raises Unavailable naming its package."""
    found = find_tool(name)
    if found is None:
        raise Unavailable(f"{name} not found: install Debian's {TOOLS[name]}")
    return found


def _has_net_admin(status: Path = Path("/proc/self/status")) -> bool:
    try:
        for line in status.read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> CAP_NET_ADMIN & 1)
    except (OSError, ValueError, IndexError):
        pass
    return os.geteuid() == 0


def _is_char_device(path: Path) -> bool:
    try:
        return stat.S_ISCHR(path.stat().st_mode)
    except OSError:
        return False


def missing_for_bridge() -> list[str]:
    """What bridge networking lacks here, each as a short phrase; [] when nothing."""
    missing = []
    if not _has_net_admin():
        missing.append("root (the CAP_NET_ADMIN capability)")
    if not _is_char_device(TUN):
        missing.append(f"{TUN} (the tun driver)")
    missing += [f"{name} (install Debian's {package})" for name, package in TOOLS.items()
                if find_tool(name) is None]
    return missing


def check_bridge_host() -> None:
    """Raises Unavailable (Docker's "Error initializing network controller"
    wording) listing what bridge networking lacks; nothing when it has it all."""
    missing = missing_for_bridge()
    if missing:
        raise Unavailable("Error initializing network controller: bridge networking needs "
                          + ", ".join(missing)
                          + "; or start the daemon with --network-mode user")
