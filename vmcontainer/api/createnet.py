"""The network fields of a create body (Engine API v1.45 ContainerCreate):
``HostConfig.NetworkMode``, ``PortBindings``, ``PublishAllPorts`` and
``Config.ExposedPorts``, checked into ContainerSpec keyword arguments.

Network modes: ``default`` (recorded for an empty one, as moby does) and ``bridge``
(both served by user-mode networking), ``none``, or a network name (looked up at
start, as Docker does: create succeeds, start fails with "network X not found").
``host`` and ``container:<id>`` are refused: a VM has no host network namespace,
nor another container's, to share.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vmcontainer.errors import InvalidParameter
from vmcontainer.network.ports import check_exposed_ports, check_port_bindings


def network_fields(config: Mapping[str, Any], host: Mapping[str, Any]) -> dict[str, Any]:
    """ContainerSpec's ``network_mode``, ``port_bindings``, ``publish_all``,
    ``exposed_ports``, ``endpoints`` (from ``NetworkingConfig.EndpointsConfig``:
    ``--network-alias``, ``--ip``). Raises InvalidParameter (bad shapes, refused
    modes)."""
    mode = host.get("NetworkMode") or ""
    if not isinstance(mode, str):
        raise InvalidParameter('invalid value for "HostConfig.NetworkMode": expected a string')
    mode = mode or "default"
    if mode == "host" or mode.startswith("container:"):
        raise InvalidParameter(
            f"network mode '{mode}' is not supported by vmcontainer: a VM container has "
            "its own kernel and no network namespace shared with the host or another "
            "container; publish ports (-p) instead")
    if "\x00" in mode or "/" in mode:
        raise InvalidParameter(f"invalid network name {mode!r}")
    bindings = host.get("PortBindings") or {}
    exposed = config.get("ExposedPorts") or {}
    if not isinstance(bindings, Mapping):
        raise InvalidParameter('invalid value for "HostConfig.PortBindings": expected an object')
    if not isinstance(exposed, Mapping):
        raise InvalidParameter('invalid value for "ExposedPorts": expected an object')
    publish_all = host.get("PublishAllPorts") or False
    if not isinstance(publish_all, bool):
        raise InvalidParameter('invalid value for "HostConfig.PublishAllPorts": expected a '
                               "boolean")
    return {"network_mode": mode, "port_bindings": check_port_bindings(bindings),
            "endpoints": endpoints_config(config.get("NetworkingConfig")),
            "publish_all": publish_all,
            "exposed_ports": tuple(check_exposed_ports(exposed))}


def endpoint_config(name: str, doc: object) -> dict[str, Any]:
    """One EndpointSettings request → ``{"Aliases": [...], "IPv4Address": ""}``."""
    if doc is None:
        doc = {}
    if not isinstance(doc, Mapping):
        raise InvalidParameter(f"invalid endpoint config for network {name}")
    aliases = doc.get("Aliases") or []
    if not isinstance(aliases, list) or not all(
            isinstance(a, str) and a and _name_ok(a) for a in aliases):
        raise InvalidParameter(f"invalid network aliases for network {name}")
    ipam = doc.get("IPAMConfig") or {}
    if not isinstance(ipam, Mapping):
        raise InvalidParameter(f"invalid IPAMConfig for network {name}")
    ip = ipam.get("IPv4Address") or ""
    if not isinstance(ip, str):
        raise InvalidParameter(f"invalid IPv4Address for network {name}")
    return {"Aliases": list(dict.fromkeys(aliases)), "IPv4Address": ip}


def _name_ok(name: str) -> bool:
    """A DNS name dnsmasq's hosts file can carry."""
    return len(name) <= 253 and all(c.isalnum() or c in "-_." for c in name)


def endpoints_config(networking: object) -> dict[str, dict[str, Any]]:
    """``NetworkingConfig.EndpointsConfig`` → network name → endpoint config."""
    if networking is None:
        return {}
    if not isinstance(networking, Mapping):
        raise InvalidParameter('invalid value for "NetworkingConfig": expected an object')
    eps = networking.get("EndpointsConfig") or {}
    if not isinstance(eps, Mapping):
        raise InvalidParameter('invalid value for "NetworkingConfig.EndpointsConfig"')
    # the docker CLI names the default network "default": it is "bridge"
    return {("bridge" if k == "default" else str(k)): endpoint_config(str(k), v)
            for k, v in eps.items()}
