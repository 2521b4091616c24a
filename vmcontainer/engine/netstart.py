"""The network part of a container's start: its NICs, the guest's interface config
and the NetworkSettings recorded for inspect, from the container's HostConfig
(NetworkMode, PortBindings, PublishAllPorts) and Config.ExposedPorts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vmcontainer.engine.container import Container
from vmcontainer.errors import NotFound
from vmcontainer.network import usermode
from vmcontainer.network.ports import bind_ports
from vmcontainer.vm.nic import NicSpec


@dataclass(frozen=True)
class NetworkPlan:
    """``nics`` for the MachineSpec; ``guest`` the config disk's ``network`` member
    (guest/PROTOCOL.md); ``settings`` Docker's NetworkSettings while it runs."""

    nics: tuple[NicSpec, ...]
    guest: dict[str, Any]
    settings: dict[str, Any]


def plan_network(c: Container, default_ip: str) -> NetworkPlan:
    """Choose the host ports (free now) and build the endpoint of ``c``;
    ``default_ip`` is where a binding without HostIp listens. Raises System when
    an asked host port is taken, InvalidParameter when its address is not the
    host's, NotFound for a network that does not exist."""
    hc = c.host_config
    mode = hc.get("NetworkMode") or "none"
    exposed: dict[str, Any] = c.config.get("ExposedPorts") or {}
    if mode == "none":
        return NetworkPlan((), {"interfaces": []}, usermode.stopped_settings("none"))
    if mode not in ("default", usermode.NETWORK_NAME):
        raise NotFound(f"network {mode} not found")
    bound = bind_ports(hc.get("PortBindings") or {}, bool(hc.get("PublishAllPorts")),
                       exposed, default_ip, f"{c.name} ({c.short_id})")
    ep = usermode.endpoint(c.id, bound)
    settings = usermode.network_settings({usermode.NETWORK_NAME: ep.settings}, bound, exposed)
    return NetworkPlan((ep.nic,), {"interfaces": [ep.guest]}, settings)
