"""IPAM for bridge networks (Docker's default IPAM driver, IPv4): a network's
subnet, gateway and allocation range, checked, chosen when not given, and
addresses handed out from the range.

Pure functions over ``ipaddress`` values; the caller persists what they return.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from vmcontainer.errors import Conflict, InvalidParameter, Unavailable

IPv4Network = ipaddress.IPv4Network
IPv4Address = ipaddress.IPv4Address

#: The default ``bridge`` network's subnet, as Docker's.
DEFAULT_BRIDGE_SUBNET = "172.17.0.0/16"
#: Pools for networks created without --subnet (moby's default address pools).
POOLS: tuple[tuple[str, int], ...] = (("172.18.0.0/16", 16), ("172.19.0.0/16", 16),
                                      ("172.20.0.0/14", 16), ("172.24.0.0/14", 16),
                                      ("172.28.0.0/14", 16), ("192.168.0.0/16", 20))


@dataclass(frozen=True)
class Pool:
    """One IPAM config entry: ``subnet``, ``gateway`` (in it), ``ip_range`` (the
    part of the subnet containers get addresses from; the subnet when not given)."""

    subnet: IPv4Network
    gateway: IPv4Address
    ip_range: IPv4Network

    def to_docker(self, explicit_range: bool) -> dict[str, str]:
        """Docker's IPAMConfig item."""
        out = {"Subnet": str(self.subnet), "Gateway": str(self.gateway)}
        if explicit_range:
            out["IPRange"] = str(self.ip_range)
        return out


def _net(text: str, what: str) -> IPv4Network:
    try:
        return IPv4Network(text, strict=False)
    except ValueError as err:
        raise InvalidParameter(f"invalid {what} {text!r}: an IPv4 CIDR is needed "
                               "(vmcontainer bridge networks are IPv4)") from err


def make_pool(subnet: str, gateway: str = "", ip_range: str = "") -> Pool:
    """Check one ``--subnet``/``--gateway``/``--ip-range`` triple; the gateway
    defaults to the subnet's first address. Raises InvalidParameter (Docker's
    wording where it has one)."""
    net = _net(subnet, "subnet")
    if net.prefixlen > 30:
        raise InvalidParameter(f"subnet {net} is too small: at most /30")
    rng = _net(ip_range, "ip-range") if ip_range else net
    if not rng.subnet_of(net):
        raise InvalidParameter(f"invalid pool request: ip-range {rng} is not in subnet {net}")
    if gateway:
        try:
            gw = IPv4Address(gateway)
        except ValueError as err:
            raise InvalidParameter(f"invalid gateway {gateway!r}") from err
        if gw not in net or gw in (net.network_address, net.broadcast_address):
            raise InvalidParameter(f"gateway {gw} is not a host address of subnet {net}")
    else:
        gw = net.network_address + 1
    return Pool(net, gw, rng)


def choose_subnet(taken: Iterable[IPv4Network]) -> IPv4Network:
    """The first pool subnet that overlaps none of ``taken``. Raises Unavailable."""
    used = list(taken)
    for base, prefix in POOLS:
        for candidate in IPv4Network(base).subnets(new_prefix=prefix):
            if not any(candidate.overlaps(u) for u in used):
                return candidate
    raise Unavailable("could not find an available, non-overlapping IPv4 address pool "
                      "among the defaults to assign to the network")


def check_overlap(new: IPv4Network, taken: Iterable[IPv4Network]) -> None:
    for other in taken:
        if new.overlaps(other):
            raise Conflict("Pool overlaps with other one on this address space")


def allocate(pool: Pool, used: Iterable[IPv4Address], wanted: str = "") -> IPv4Address:
    """An address for an endpoint: ``wanted`` (``--ip``, which must be in the
    subnet, not the gateway, not in use) or the lowest free one of the range.
    Raises InvalidParameter, Conflict ("Address already in use") or Unavailable."""
    busy = {*used, pool.gateway}
    if wanted:
        try:
            ip = IPv4Address(wanted)
        except ValueError as err:
            raise InvalidParameter(f"invalid IPv4 address {wanted!r}") from err
        if ip not in pool.subnet or ip in (pool.subnet.network_address,
                                           pool.subnet.broadcast_address):
            raise InvalidParameter(f"no configured subnet contains IP address {ip}")
        if ip in busy:
            raise Conflict("Address already in use")
        return ip
    for ip in pool.ip_range.hosts():
        if ip not in busy and ip != pool.subnet.broadcast_address:
            return ip
    raise Unavailable(f"no available IPv4 addresses on this network's address pools: "
                      f"{pool.subnet}")
