"""User-mode endpoints: a container on Docker's default ``bridge`` network, served
by QEMU user networking (slirp) in its own VM process.

Each VM has a private slirp network (10.0.2.0/24, gateway 10.0.2.2, DNS forwarder
10.0.2.3, the guest 10.0.2.15): containers reach the host's networks outbound
through the hypervisor's sockets, published ports are QEMU ``hostfwd`` rules bound
by the hypervisor itself — so they stay up across a daemon restart with the VM,
and disappear with it. Containers do not reach each other (no shared segment).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from vmcontainer.network.ports import PortBinding, ports_settings
from vmcontainer.vm.nic import HostForward, NicSpec

NETWORK_NAME = "bridge"
SUBNET = "10.0.2.0/24"
PREFIX_LEN = 24
GATEWAY = "10.0.2.2"
DNS = "10.0.2.3"
GUEST_IP = "10.0.2.15"
MTU = 1500


def network_id(name: str) -> str:
    """A stable 64-hex ID for a built-in network (the same on every daemon start)."""
    return hashlib.sha256(f"vmcontainer-network:{name}".encode()).hexdigest()


def container_mac(container_id: str, index: int = 0) -> str:
    """A locally administered MAC (02:42:…, Docker's prefix) from the container ID:
    stable across restarts, distinct per NIC ``index``."""
    digest = hashlib.sha256(f"{container_id}:{index}".encode()).digest()
    return "02:42:" + ":".join(f"{b:02x}" for b in digest[:4])


@dataclass(frozen=True)
class Endpoint:
    """What starting a container on the user-mode network needs: its NIC, the
    guest's interface config (guest/PROTOCOL.md ``network.interfaces`` item) and
    the endpoint's NetworkSettings.Networks entry."""

    nic: NicSpec
    guest: dict[str, Any]
    settings: dict[str, Any]


def endpoint(container_id: str, bound: list[PortBinding]) -> Endpoint:
    """The user-mode endpoint of ``container_id`` with ports ``bound`` forwarded."""
    mac = container_mac(container_id)
    nic = NicSpec(id="net0", mac=mac, netdev="user", user_net=SUBNET, user_host=GATEWAY,
                  user_dns=DNS, guest_ip=GUEST_IP,
                  forwards=tuple(HostForward(b.protocol, b.host_ip, b.host_port, b.port)
                                 for b in bound))
    guest = {"mac": mac, "name": "eth0", "mtu": MTU, "address": f"{GUEST_IP}/{PREFIX_LEN}",
             "gateway": GATEWAY}
    settings = {
        **_blank(), "MacAddress": mac, "NetworkID": network_id(NETWORK_NAME),
        "EndpointID": hashlib.sha256(f"endpoint:{container_id}:0".encode()).hexdigest(),
        "Gateway": GATEWAY, "IPAddress": GUEST_IP, "IPPrefixLen": PREFIX_LEN,
    }
    return Endpoint(nic, guest, settings)


def network_settings(networks: dict[str, dict[str, Any]], bound: list[PortBinding],
                     exposed: dict[str, Any]) -> dict[str, Any]:
    """Docker's NetworkSettings (Engine API v1.45) of a running container: its
    ``networks`` (name → EndpointSettings), the ``bound`` ports and the ``exposed``
    ones; the deprecated top-level address fields mirror the ``bridge`` endpoint."""
    main = networks.get(NETWORK_NAME, {})
    return {
        "Bridge": "", "SandboxID": "", "SandboxKey": "", "HairpinMode": False,
        "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
        "Ports": ports_settings(bound, exposed),
        "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
        "EndpointID": main.get("EndpointID", ""), "Gateway": main.get("Gateway", ""),
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "IPAddress": main.get("IPAddress", ""), "IPPrefixLen": main.get("IPPrefixLen", 0),
        "IPv6Gateway": "", "MacAddress": main.get("MacAddress", ""),
        "Networks": networks,
    }


def stopped_settings(names: list[str] | str,
                     aliases: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """NetworkSettings of a container not running: its networks ``names`` (or its
    NetworkMode) listed with no address (as Docker shows them) and the
    ``aliases`` asked for each, no ports."""
    if isinstance(names, str):
        names = [NETWORK_NAME if names == "default" else names]
    networks = {name: {**_blank(), "NetworkID": network_id(name) if i == 0 else "",
                       "Aliases": (aliases or {}).get(name) or None}
                for i, name in enumerate(names)}
    return network_settings(networks, [], {})


def _blank() -> dict[str, Any]:
    return {"IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "",
            "DriverOpts": None, "NetworkID": "", "EndpointID": "", "Gateway": "",
            "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "DNSNames": None}
