"""Bridge networks (root mode): Docker's network objects made of a Linux bridge,
an nftables table and, on user-defined networks, a dnsmasq; endpoints are taps.

``BridgeNetworks`` is the one place that changes them: it keeps the records
(``NetworkStore``) and the host's state in step, and restores the host's state
for every record on daemon start (idempotent).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import ipaddress
import logging
import secrets
from dataclasses import replace
from pathlib import Path
from typing import Any

from vmcontainer.errors import Conflict, Forbidden, InvalidParameter
from vmcontainer.network import ipam, links, nat, options
from vmcontainer.network.dns import Dnsmasq, hosts_text
from vmcontainer.network.resolver import ContainerResolver
from vmcontainer.network.store import EndpointRecord, NetworkRecord, NetworkStore

log = logging.getLogger(__name__)

DEFAULT_NETWORK = "bridge"
BRIDGE_PREFIX = "vmcbr-"  # NetworkRecord.bridge


def _now() -> str:
    """RFC 3339 with nanoseconds' width, as Docker writes Created."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def mac_for(ip: str) -> str:
    """Docker's MAC for an address: 02:42 and the four address bytes."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(ip).packed)


def tap_name(container_id: str, network_id: str) -> str:
    """≤ 15 bytes, distinct per (container, network)."""
    return "vmt" + hashlib.sha256(f"{container_id}:{network_id}".encode()).hexdigest()[:11]


class BridgeNetworks:
    """Networks under ``directory`` (records, dnsmasq files)."""

    def __init__(self, directory: Path) -> None:
        self.store = NetworkStore(directory)

    # -- networks ----------------------------------------------------------------

    def restore(self) -> None:
        """The default network exists; every network's bridge, rules and DNS are up.
        The default network is made on first use, on 172.17.0.0/16 as Docker's
        docker0 unless a route of the host's overlaps it (e.g. docker0 itself),
        then on the first free default pool; if making it fails, nothing of it
        is left. Raises System, Unavailable."""
        if not any(n.builtin for n in self.store.all()):
            taken = self._routed()
            subnet = ipaddress.IPv4Network(ipam.DEFAULT_BRIDGE_SUBNET)
            if any(subnet.overlaps(t) for t in taken):
                subnet = ipam.choose_subnet(taken)
            pool = ipam.make_pool(str(subnet))
            net = NetworkRecord(
                id=hashlib.sha256(b"vmcontainer-network:bridge").hexdigest(),
                name=DEFAULT_NETWORK, created=_now(), subnet=str(pool.subnet),
                gateway=str(pool.gateway), builtin=True,
                options={"com.docker.network.bridge.default_bridge": "true"})
            self._add(net)
        for net in self.store.all():
            self._plumb(net)
        for cid in {cid for net in self.store.all() for cid in net.endpoints}:
            self._resolver_changed(cid)

    @staticmethod
    def _routed() -> list[ipaddress.IPv4Network]:
        """Subnets the host routes elsewhere than through vmcontainer's bridges."""
        return [ipaddress.IPv4Network(r, strict=False)
                for r in links.routed_subnets(BRIDGE_PREFIX)]

    def _dns(self, net: NetworkRecord) -> Dnsmasq:
        return Dnsmasq(self.store.dir / net.id, net.gateway)

    def _add(self, net: NetworkRecord) -> None:
        """Record ``net`` and make its bridge, addresses and rules; on any failure
        undo both, so that no half-made network stays behind."""
        self.store.save(net)
        try:
            self._plumb(net)
        except BaseException:
            self._unplumb(net)
            self.store.delete(net.id)
            raise

    def _plumb(self, net: NetworkRecord) -> None:
        # nftables first: one atomic transaction, naming the bridge before it exists
        nat.apply(net.id, net.bridge, net.subnet, net.internal,
                  options.masquerade(net.options))
        links.ensure_bridge(net.bridge, net.gateway, net.prefix_len)
        if not net.builtin:
            self._dns(net).ensure(self._hosts(net))

    def create(self, name: str, subnet: str = "", gateway: str = "", ip_range: str = "",
               internal: bool = False, labels: dict[str, str] | None = None,
               driver_opts: dict[str, str] | None = None, attachable: bool = False,
               ipam_options: dict[str, str] | None = None) -> NetworkRecord:
        """A new user-defined bridge network; ``driver_opts`` as
        ``vmcontainer.network.options`` checks them. Raises InvalidParameter,
        Conflict (name taken, overlapping subnet), Unavailable (no free pool),
        System."""
        self.store.check_new_name(name)
        options.check(driver_opts or {})
        taken = [ipaddress.IPv4Network(n.subnet) for n in self.store.all()]
        if subnet:
            pool = ipam.make_pool(subnet, gateway, ip_range)
            ipam.check_overlap(pool.subnet, taken)
        else:
            chosen = str(ipam.choose_subnet([*taken, *self._routed()]))
            if gateway or ip_range:
                pool = ipam.make_pool(chosen, gateway, ip_range)
            else:
                pool = ipam.make_pool(chosen)
        net = NetworkRecord(id=secrets.token_hex(32), name=name, created=_now(),
                            subnet=str(pool.subnet), gateway=str(pool.gateway),
                            ip_range=str(pool.ip_range) if ip_range else "",
                            internal=internal, labels=dict(labels or {}),
                            options=dict(driver_opts or {}), attachable=attachable,
                            ipam_options=dict(ipam_options or {}))
        self._add(net)
        return net

    def _unplumb(self, net: NetworkRecord) -> None:
        self._dns(net).stop()
        nat.remove(net.id)
        links.delete_link(net.bridge)

    def remove(self, ref: str) -> NetworkRecord:
        """Remove a network without endpoints. Raises NetworkNotFound, Forbidden
        (the default network), Conflict (active endpoints)."""
        net = self.store.find(ref)
        if net.builtin:
            raise Forbidden(f"{net.name} is a pre-defined network and cannot be removed")
        if net.endpoints:
            raise Conflict(f"error while removing network: network {net.name} id {net.id} "
                           "has active endpoints")
        self._unplumb(net)
        self.store.delete(net.id)
        return net

    def prune(self, keep: set[str]) -> list[str]:
        """Remove every user-defined network without endpoints whose ID is not in
        ``keep`` (networks containers are configured for); their names."""
        removed = []
        for net in self.store.all():
            if not net.builtin and not net.endpoints and net.id not in keep:
                self._unplumb(net)
                self.store.delete(net.id)
                removed.append(net.name)
        return removed

    # -- endpoints ---------------------------------------------------------------

    def attach(self, ref: str, container_id: str, container_name: str,
               aliases: tuple[str, ...] = (), ip: str = "",
               resolver: bool = False) -> tuple[NetworkRecord, EndpointRecord]:
        """Give the container an address and a tap on network ``ref`` (again the
        same when it has one). ``resolver``: the container's resolv.conf names
        this network's gateway. Raises NetworkNotFound, InvalidParameter, Conflict
        (address in use), Unavailable (network full), System."""
        net = self.store.find(ref)
        if container_id in net.endpoints:
            return net, net.endpoints[container_id]
        if aliases and net.builtin:
            raise Forbidden("network-scoped alias is supported only for containers in "
                            "user defined networks")
        if ip and net.builtin:
            raise Forbidden("user specified IP address is supported on user defined "
                            "networks only")
        pool = ipam.make_pool(net.subnet, net.gateway, net.ip_range)
        used = [ipaddress.IPv4Address(e.ip) for e in net.endpoints.values()]
        addr = str(ipam.allocate(pool, used, ip))
        ep = EndpointRecord(container_id, container_name, addr, mac_for(addr),
                            tap_name(container_id, net.id), aliases,
                            resolver and not net.builtin)
        net = net.with_endpoint(ep)
        self.store.save(net)
        try:
            links.add_tap(ep.tap, net.bridge)
            self._names_changed(net)
            self._resolver_changed(container_id)
        except BaseException:
            self.detach(net.id, container_id)
            raise
        return net, ep

    def detach(self, ref: str, container_id: str) -> None:
        """Remove the container's tap and address from network ``ref`` (nothing
        when it has none)."""
        net = self.store.find(ref)
        ep = net.endpoints.get(container_id)
        if ep is None:
            return
        links.delete_link(ep.tap)
        net = net.without_endpoint(container_id)
        self.store.save(net)
        self._names_changed(net)
        self._resolver_changed(container_id)

    def rename(self, container_id: str, name: str) -> list[tuple[NetworkRecord,
                                                                EndpointRecord]]:
        """The container's endpoints answer to ``name`` from now on (``docker
        rename``): DNS of every network it is on follows at once. Returns them."""
        out = []
        for net in self.networks_of(container_id):
            ep = replace(net.endpoints[container_id], container_name=name)
            net = net.with_endpoint(ep)
            self.store.save(net)
            self._names_changed(net)
            out.append((net, ep))
        return out

    def networks_of(self, container_id: str) -> list[NetworkRecord]:
        return [n for n in self.store.all() if container_id in n.endpoints]

    def _hosts(self, net: NetworkRecord) -> str:
        return hosts_text((e.ip, (e.container_name, *e.aliases, e.container_id[:12]))
                          for e in net.endpoints.values())

    def _names_changed(self, net: NetworkRecord) -> None:
        if not net.builtin:
            self._dns(net).write_hosts(self._hosts(net))
            for cid in net.endpoints:  # resolvers that read this network's names
                resolver = self._resolver(cid)
                if resolver.running():
                    resolver.reload()

    def resolver_network(self, container_id: str) -> NetworkRecord | None:
        """The user-defined network whose gateway the container's resolv.conf
        names (its endpoint's ``resolver``), None when none does."""
        return next((n for n in self.networks_of(container_id)
                     if n.endpoints[container_id].resolver), None)

    def set_resolver(self, container_id: str, network_id: str | None) -> None:
        """From now on the container's resolv.conf names the gateway of network
        ``network_id`` (a user-defined one it is on), or no network's (None):
        the endpoints' ``resolver`` marks move there, and the container's own
        resolver follows (started on that gateway, or ended). Raises
        InvalidParameter (not such a network of the container), System."""
        nets = self.networks_of(container_id)
        if network_id is not None and not any(
                n.id == network_id and not n.builtin for n in nets):
            raise InvalidParameter(f"container {container_id[:12]} is not on a user-defined "
                                   f"network {network_id[:12]}")
        before = next((n.id for n in nets if n.endpoints[container_id].resolver), None)
        self._mark_resolver(container_id, network_id)
        try:
            self._resolver_changed(container_id)
        except BaseException:  # no half-moved marks: back as they were
            self._mark_resolver(container_id, before)
            with contextlib.suppress(Exception):
                self._resolver_changed(container_id)
            raise

    def _mark_resolver(self, container_id: str, network_id: str | None) -> None:
        for net in self.networks_of(container_id):
            ep = net.endpoints[container_id]
            if ep.resolver != (net.id == network_id):
                self.store.save(net.with_endpoint(replace(ep, resolver=net.id == network_id)))

    def _resolver(self, container_id: str) -> ContainerResolver:
        return ContainerResolver(self.store.dir / "resolvers", container_id)

    def _resolver_changed(self, container_id: str) -> None:
        """A container on two or more user-defined networks resolves the names of
        all of them (``vmcontainer.network.resolver``); one on fewer has no
        resolver of its own. Raises System, Unavailable."""
        user = [n for n in self.networks_of(container_id) if not n.builtin]
        first = next((n for n in user if n.endpoints[container_id].resolver), None)
        if first is None or len(user) < 2:
            self._resolver(container_id).remove()
            return
        others = [n for n in user if n.id != first.id]
        self._resolver(container_id).ensure(
            first.bridge, first.endpoints[container_id].ip, first.gateway,
            [self._dns(n).hosts for n in (first, *others)])

    # -- Docker shapes -----------------------------------------------------------

    def inspect(self, net: NetworkRecord, verbose: bool = True) -> dict[str, Any]:
        """Docker's Network object (Engine API v1.45 NetworkInspect)."""
        cfg = {"Subnet": net.subnet, "Gateway": net.gateway}
        if net.ip_range:
            cfg["IPRange"] = net.ip_range
        return {
            "Name": net.name, "Id": net.id, "Created": net.created, "Scope": "local",
            "Driver": "bridge", "EnableIPv6": False,
            "IPAM": {"Driver": "default",
                     "Options": None if net.builtin else dict(net.ipam_options),
                     "Config": [cfg]},
            "Internal": net.internal, "Attachable": net.attachable, "Ingress": False,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
            "Containers": {cid: {"Name": e.container_name, "EndpointID": e.endpoint_id,
                                 "MacAddress": e.mac,
                                 "IPv4Address": f"{e.ip}/{net.prefix_len}",
                                 "IPv6Address": ""}
                           for cid, e in net.endpoints.items()} if verbose else {},
            "Options": {**net.options, "com.docker.network.bridge.name": net.bridge},
            "Labels": net.labels,
        }
