"""The network part of a container's start and end: its NICs, the guest's
interface config and the NetworkSettings recorded for inspect, from the
container's HostConfig (NetworkMode, PortBindings, PublishAllPorts),
Config.ExposedPorts and its endpoint configs; and, in bridge mode, giving back
its taps, addresses and published-port proxies when it ends."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from vmcontainer.engine.container import Container, network_names
from vmcontainer.engine.context import EngineContext
from vmcontainer.errors import NotFound
from vmcontainer.network import options, usermode
from vmcontainer.network.bridge import BridgeNetworks
from vmcontainer.network.ports import PortBinding, bind_ports, parse_port_key
from vmcontainer.network.proxy import ProxySet
from vmcontainer.network.store import EndpointRecord, NetworkRecord
from vmcontainer.vm.nic import NicSpec

log = logging.getLogger(__name__)

#: Hot-plug slots of a bridge-mode VM beyond its boot NICs (network connect).
SPARE_SLOTS = 4


@dataclass(frozen=True)
class NetworkPlan:
    """``nics`` for the MachineSpec; ``guest`` the config disk's ``network`` member
    (guest/PROTOCOL.md); ``settings`` Docker's NetworkSettings while it runs;
    ``dns`` the resolvers the guest's resolv.conf names when the container asked
    for none (None: the host's)."""

    nics: tuple[NicSpec, ...]
    guest: dict[str, Any]
    settings: dict[str, Any]
    dns: tuple[str, ...] | None = None
    hotplug: bool = False  # a machine NICs can be plugged into while it runs


def hotplug_machine(boot_nics: int) -> dict[str, Any]:
    """MachineSpec fields of a VM whose NICs can come and go while it runs: q35
    (microvm's virtio-mmio has no hot-plug) with a PCIe root port per boot NIC
    and ``SPARE_SLOTS`` more. The cost is boot time: see issue 6's note."""
    return {"machine_type": "q35", "hotplug_slots": boot_nics + SPARE_SLOTS}


async def plan_network(ctx: EngineContext, c: Container) -> NetworkPlan:
    """Choose the host ports and build the endpoints of ``c``. Raises System when
    an asked host port is taken, InvalidParameter when its address is not the
    host's, NotFound for a network that does not exist. Nothing is left held
    when it raises."""
    hc = c.host_config
    mode = hc.get("NetworkMode") or "none"
    exposed: dict[str, Any] = c.config.get("ExposedPorts") or {}
    if mode == "none" or not network_names(c):  # none, or left every network
        return NetworkPlan((), {"interfaces": []},
                           usermode.network_settings({}, [], {}) if mode != "none"
                           else usermode.stopped_settings("none"))
    who = f"{c.name} ({c.short_id})"
    if ctx.networks is None:
        for name in network_names(c):
            if name != usermode.NETWORK_NAME:
                raise NotFound(f"network {name} not found")
        bound = bind_ports(hc.get("PortBindings") or {}, bool(hc.get("PublishAllPorts")),
                           exposed, ctx.settings.bind_ip, who)
        ep = usermode.endpoint(c.id, bound)
        settings = usermode.network_settings({usermode.NETWORK_NAME: ep.settings}, bound,
                                             exposed)
        return NetworkPlan((ep.nic,), {"interfaces": [ep.guest]}, settings)
    try:
        return await _plan_bridge(ctx, ctx.networks, c, exposed, who)
    except BaseException:
        await release_network(ctx, c.id)
        raise


async def _plan_bridge(ctx: EngineContext, networks: BridgeNetworks, c: Container,
                       exposed: dict[str, Any], who: str) -> NetworkPlan:
    nics, ifaces, entries = [], [], {}
    dns: tuple[str, ...] | None = None
    asked_dns = bool(c.host_config.get("Dns"))  # --dns: resolv.conf names those
    for i, name in enumerate(network_names(c)):
        want = c.endpoints_config.get(name) or {}
        resolver = dns is None and not asked_dns and not networks.store.find(name).builtin
        net, ep = networks.attach(name, c.id, c.name, tuple(want.get("Aliases") or ()),
                                  want.get("IPv4Address") or "", resolver)
        nics.append(NicSpec(id=f"net{i}", mac=ep.mac, netdev="tap", tap=ep.tap, bus=f"hp{i}"))
        ifaces.append({"mac": ep.mac, "name": f"eth{i}", "mtu": 1500,
                       "address": f"{ep.ip}/{net.prefix_len}",
                       **({"gateway": net.gateway} if i == 0 and not net.internal else {})})
        entries[net.name] = endpoint_settings(net, ep)
        if dns is None and not net.builtin:  # the first user-defined network's DNS:
            dns = (net.gateway,)  # its resolver when it has more (network/resolver.py)
    hc = c.host_config
    first = networks.store.find(next(iter(entries)))  # its ports go to this address
    bind_ip = options.host_binding(first.options) or ctx.settings.bind_ip
    bound = bind_ports(hc.get("PortBindings") or {}, bool(hc.get("PublishAllPorts")),
                       exposed, bind_ip, who)
    bound = await _listen(ctx, c.id, entries[next(iter(entries))]["IPAddress"], bound, who)
    settings = usermode.network_settings(entries, bound, exposed)
    return NetworkPlan(tuple(nics), {"interfaces": ifaces}, settings, dns, hotplug=True)


async def _listen(ctx: EngineContext, cid: str, target: str, bound: list[PortBinding],
                  who: str) -> list[PortBinding]:
    proxies = ctx.proxies.setdefault(cid, ProxySet(target))
    return [await proxies.listen(b, who) for b in bound]


def endpoint_settings(net: NetworkRecord, ep: EndpointRecord) -> dict[str, Any]:
    """Docker's EndpointSettings of ``ep`` on ``net``."""
    return {
        "IPAMConfig": None, "Links": None, "Aliases": list(ep.aliases) or None,
        "MacAddress": ep.mac, "DriverOpts": None, "NetworkID": net.id,
        "EndpointID": ep.endpoint_id, "Gateway": net.gateway, "IPAddress": ep.ip,
        "IPPrefixLen": net.prefix_len, "IPv6Gateway": "", "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": None if net.builtin else [ep.container_name, *ep.aliases,
                                              ep.container_id[:12]],
    }


def rename_endpoints(ctx: EngineContext, cid: str) -> None:
    """After ``docker rename``: the container's endpoints (bridge mode, while it
    runs) resolve by its new name, no longer by the old one, and its
    NetworkSettings show the new DNSNames."""
    if ctx.networks is None:
        return
    c = ctx.store.load(cid)
    renamed = ctx.networks.rename(cid, c.name)
    if not renamed or not c.network_settings:
        return
    settings = dict(c.network_settings)
    networks = dict(settings.get("Networks") or {})
    for net, ep in renamed:
        if net.name in networks:
            networks[net.name] = {**networks[net.name],
                                  "DNSNames": endpoint_settings(net, ep)["DNSNames"]}
    ctx.update(cid, network_settings={**settings, "Networks": networks})


async def release_network(ctx: EngineContext, cid: str) -> None:
    """Close the container's proxies, remove its taps, give back its addresses
    (bridge mode; nothing in user mode, where the hypervisor held everything)."""
    proxies = ctx.proxies.pop(cid, None)
    if proxies is not None:
        await proxies.close()
    if ctx.networks is None:
        return
    for net in ctx.networks.networks_of(cid):
        with contextlib.suppress(NotFound):
            ctx.networks.detach(net.id, cid)


async def restore_ports(ctx: EngineContext, c: Container) -> None:
    """Serve again the published ports of an adopted bridge-mode container (the
    proxies died with the earlier daemon), on the ports its record names."""
    if ctx.networks is None or not c.network_settings:
        return
    target = c.network_settings.get("IPAddress") or ""
    bound = []
    for key, entries in (c.network_settings.get("Ports") or {}).items():
        port, proto = parse_port_key(key)
        for e in entries or ():
            bound.append(PortBinding(port, proto, e["HostIp"], int(e["HostPort"])))
    try:
        await _listen(ctx, c.id, target, bound, f"{c.name} ({c.short_id})")
    except Exception as err:
        log.warning("container %s: cannot publish its ports again: %s", c.short_id, err)


def restore_networks(ctx: EngineContext, running: set[str]) -> None:
    """At daemon start: every network's bridge, rules and DNS up; endpoints of
    containers no longer running given back (their VM ended meanwhile)."""
    if ctx.networks is None:
        return
    ctx.networks.restore()
    for net in ctx.networks.store.all():
        for cid in list(net.endpoints):
            if cid not in running:
                ctx.networks.detach(net.id, cid)
