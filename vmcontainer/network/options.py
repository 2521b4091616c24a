"""Driver options of a bridge network (``docker network create -o KEY=VALUE``).

Docker's own keys (``com.docker.network.*``) mean something to Docker's bridge
driver; vmcontainer serves those it implements and refuses the others with a 400
rather than store and ignore them. Values are parsed as Docker parses them, with
its wording for a bad one. Other keys are stored and shown, as Docker does.

Served: ``com.docker.network.bridge.enable_ip_masquerade`` (false: no outbound NAT,
the containers' own addresses leave the host), ``...bridge.host_binding_ipv4``
(the default host address of ports published by the network's containers),
``...bridge.enable_icc`` true, ``...driver.mtu`` 1500 and
``...container_iface_prefix`` eth (the defaults, as they are).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from vmcontainer.errors import InvalidParameter

MASQUERADE = "com.docker.network.bridge.enable_ip_masquerade"
HOST_BINDING = "com.docker.network.bridge.host_binding_ipv4"
ICC = "com.docker.network.bridge.enable_icc"
MTU = "com.docker.network.driver.mtu"
IFACE_PREFIX = "com.docker.network.container_iface_prefix"
BRIDGE_NAME = "com.docker.network.bridge.name"
DOCKER_PREFIX = "com.docker.network."

#: Why an option Docker knows is refused, where a reason helps.
_REFUSED = {
    BRIDGE_NAME: "vmcontainer names its bridges vmcbr-<network ID> (its rules between "
                 "networks rely on that)",
    "com.docker.network.bridge.default_bridge": "the default network is vmcontainer's own",
}


def _bool(key: str, value: str) -> bool:
    """Go's strconv.ParseBool, with Docker's message."""
    if value in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if value in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise InvalidParameter(f"failed to parse {key} value: {value} (strconv.ParseBool: "
                           f'parsing "{value}": invalid syntax)')


def _int(key: str, value: str) -> int:
    try:
        return int(value, 10)
    except ValueError:
        raise InvalidParameter(f"failed to parse {key} value: {value} (strconv.Atoi: "
                               f'parsing "{value}": invalid syntax)') from None


def _unsupported(key: str, value: str, why: str = "") -> InvalidParameter:
    return InvalidParameter(f"network option {key}={value} is not supported by vmcontainer"
                            + (f": {why}" if why else ""))


def check(options: Mapping[str, str]) -> None:
    """Raises InvalidParameter for a Docker option vmcontainer does not serve or
    a value Docker would not parse."""
    for key, value in options.items():
        if not key.startswith(DOCKER_PREFIX):
            continue
        if key == MASQUERADE:
            _bool(key, value)
        elif key == HOST_BINDING:
            try:
                ipaddress.IPv4Address(value)
            except ValueError:
                raise InvalidParameter(f"failed to parse {key} value: {value}: not an "
                                       "IPv4 address") from None
        elif key == ICC:
            if not _bool(key, value):
                raise _unsupported(key, value, "containers on one network always reach "
                                               "each other")
        elif key == MTU:
            if _int(key, value) != 1500:
                raise _unsupported(key, value, "the NICs' MTU is 1500")
        elif key == IFACE_PREFIX:
            if value != "eth":
                raise _unsupported(key, value, "the guest's NICs are eth0, eth1, ...")
        else:
            raise _unsupported(key, value, _REFUSED.get(key, ""))


def masquerade(options: Mapping[str, str]) -> bool:
    """Whether outbound traffic is NATed (true unless the option says false)."""
    value = options.get(MASQUERADE)
    return True if value is None else _bool(MASQUERADE, value)


def host_binding(options: Mapping[str, str]) -> str:
    """The default host address of published ports on the network, "" when none."""
    return options.get(HOST_BINDING, "")
