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
    ``exposed_ports``. Raises InvalidParameter (bad shapes, refused modes)."""
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
            "publish_all": publish_all,
            "exposed_ports": tuple(check_exposed_ports(exposed))}
