"""nftables rules of a bridge network: one table per network (``ip vmc-<id>``), so
that removing the network removes exactly its rules. Outbound NAT (masquerade of
the subnet leaving through any other interface) unless the network is internal or
its ``enable_ip_masquerade`` option is false;
forwarding accepted for the bridge's own traffic, dropped between vmcontainer
bridges (Docker isolates networks from each other). Applied with ``nft -f -``."""

from __future__ import annotations

import ipaddress
import re
import subprocess

from vmcontainer.errors import System
from vmcontainer.network.hosttools import tool

_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
BRIDGE_GLOB = "vmcbr-*"


def table_name(network_id: str) -> str:
    return "vmc-" + network_id[:12]


def run_nft(script: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Raises Unavailable (no nft), System (``check`` and nft failed)."""
    r = subprocess.run([tool("nft"), "-f", "-"], input=script, capture_output=True,
                       text=True, timeout=30)
    if check and r.returncode != 0:
        raise System(f"nft failed: {r.stderr.strip()}")
    return r


def rules(network_id: str, bridge: str, subnet: str, internal: bool,
          masquerade: bool = True) -> str:
    """The nft script that (re)creates the network's table; ``masquerade`` false:
    no NAT, the containers' addresses leave as they are."""
    if not _IFNAME.match(bridge):
        raise System(f"bad bridge name {bridge!r}")
    net = ipaddress.IPv4Network(subnet)
    t = table_name(network_id)
    out = [f"table ip {t}", f"delete table ip {t}", f"table ip {t} {{",
           "  chain forward {", "    type filter hook forward priority filter; policy accept;",
           f'    iifname "{bridge}" oifname "{BRIDGE_GLOB}" oifname != "{bridge}" drop',
           f'    oifname "{bridge}" iifname "{BRIDGE_GLOB}" iifname != "{bridge}" drop']
    if internal:
        out += [f'    iifname "{bridge}" oifname != "{bridge}" drop',
                f'    oifname "{bridge}" iifname != "{bridge}" drop']
    out += ["  }"]
    if not internal and masquerade:
        out += ["  chain postrouting {", "    type nat hook postrouting priority srcnat;",
                f'    ip saddr {net} oifname != "{bridge}" masquerade', "  }"]
    out += ["}"]
    return "\n".join(out) + "\n"


def apply(network_id: str, bridge: str, subnet: str, internal: bool,
          masquerade: bool = True) -> None:
    """Create or replace the network's table. Raises System."""
    run_nft(rules(network_id, bridge, subnet, internal, masquerade))


def remove(network_id: str) -> None:
    """Delete the network's table (nothing when it is gone)."""
    t = table_name(network_id)
    run_nft(f"table ip {t}\ndelete table ip {t}\n", check=False)


def tables() -> list[str]:
    """Names of the vmcontainer tables present (for cleanup checks)."""
    r = subprocess.run([tool("nft"), "list", "tables"], capture_output=True, text=True,
                       timeout=30)
    return [ln.split()[-1] for ln in r.stdout.splitlines() if ln.split()[-1:] and
            ln.split()[-1].startswith("vmc-")]
