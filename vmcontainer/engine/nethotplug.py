"""``docker network connect``/``disconnect`` on a running container: the NIC is
hot-plugged into (or out of) its VM through the backend (a PCIe root port of the
q35 machine bridge mode boots), and the agent configures it (``NET_CONFIG``,
guest/PROTOCOL.md) or, before it leaves, powers its slot off (``NET_RELEASE``:
QEMU's own unplug request waits 5 s in Linux's pciehp). Rolled back step by step
when one fails.

Name resolution follows, as Docker rewrites a container's resolv.conf when it
joins a user-defined network (its embedded DNS then answers): a container whose
resolv.conf names no network's gateway (it booted on the default ``bridge``
only) gets the joined network's gateway as its name server, written over its
resolv.conf in the same ``NET_CONFIG`` (``resolv_conf``), as if it had booted on
that network; its other user-defined networks are served by its own resolver
(``vmcontainer.network.resolver``), which ``BridgeNetworks`` keeps in step.
When the network its resolv.conf names leaves, the name server moves first to
its next user-defined network, or back to the host's resolvers when none is
left (what a default-bridge container boots with), so that no step leaves
resolv.conf naming a gateway it cannot reach. ``--dns`` containers keep theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from vmcontainer.engine.container import Container, mode_network
from vmcontainer.engine.context import EngineContext
from vmcontainer.engine.names_files import resolv_conf_text
from vmcontainer.engine.netstart import endpoint_settings
from vmcontainer.engine.start import Running
from vmcontainer.errors import Conflict, System
from vmcontainer.guestlink.protocol import MsgType
from vmcontainer.network.bridge import BridgeNetworks
from vmcontainer.network.store import NetworkRecord
from vmcontainer.vm.nic import NicSpec

NET_CONFIG_TIMEOUT_S = 30.0


async def _ask_guest(running: Running, kind: MsgType, doc: dict[str, Any], what: str) -> None:
    """``kind`` (NET_CONFIG or NET_RELEASE) on a new session, waiting for its
    NET_RESULT; raises System with the agent's error. ``what``: "configure the
    new NIC", for messages."""
    session = running.sessions.open()
    try:
        await running.sessions.send_json(kind, doc, session)
        frame = await asyncio.wait_for(running.sessions.next(session), NET_CONFIG_TIMEOUT_S)
    except TimeoutError as err:
        raise System(f"the guest agent did not {what} in time") from err
    finally:
        running.sessions.forget(session)
    if frame is None:
        raise System(f"the container ended before its agent could {what}")
    error = str(frame.json().get("error") or "")
    if error:
        raise System(f"the guest could not {what}: {error}")


def _resolv_conf(c: Container, net: NetworkRecord | None) -> str:
    """``c``'s resolv.conf naming ``net``'s gateway (None: the host's resolvers),
    as its start writes it (``guest_config``)."""
    hc = c.host_config
    return resolv_conf_text((net.gateway,) if net else (), hc.get("DnsSearch") or (),
                            hc.get("DnsOptions") or ())


async def connect_running(ctx: EngineContext, nets: BridgeNetworks, c: Container,
                          running: Running, name: str, config: dict[str, Any]) -> None:
    """Attach running container ``c`` to network ``name`` now; its resolv.conf
    names that network's gateway when it named none. Raises Conflict (no free
    slot), System (QEMU or the agent failing), IPAM errors."""
    names_server = not c.host_config.get("Dns") and nets.resolver_network(c.id) is None
    net, ep = nets.attach(name, c.id, c.name, tuple(config.get("Aliases") or ()),
                          config.get("IPv4Address") or "", names_server)
    try:
        await running.machine.add_nic(NicSpec(id=ep.tap, mac=ep.mac, netdev="tap",
                                              tap=ep.tap))
        try:
            doc: dict[str, Any] = {"network": {"interfaces": [
                {"mac": ep.mac, "name": "", "mtu": 1500,
                 "address": f"{ep.ip}/{net.prefix_len}"}]}}
            if ep.resolver:  # only user-defined networks have a name server
                doc["resolv_conf"] = _resolv_conf(c, net)
            await _ask_guest(running, MsgType.NET_CONFIG, doc, "configure the new NIC")
        except BaseException:
            with contextlib.suppress(Exception):
                await running.machine.remove_nic(ep.mac)
            raise
    except BaseException:
        nets.detach(net.id, c.id)
        raise
    latest = ctx.store.load(c.id)
    settings = dict(latest.network_settings)
    settings["Networks"] = {**settings.get("Networks", {}), net.name: endpoint_settings(net, ep)}
    ctx.update(c.id, endpoints_config={**latest.endpoints_config, net.name: config},
               network_settings=settings,
               left_mode_network=latest.left_mode_network and net.name != mode_network(c))


async def _point_resolver(nets: BridgeNetworks, c: Container, running: Running,
                          net: NetworkRecord | None) -> None:
    """``c``'s resolv.conf names ``net``'s gateway (None: the host's resolvers)
    from now on: the host's side first (the resolver marks, the container's own
    resolver), then the guest's file; the host's side goes back when the guest
    fails. Raises System."""
    before = nets.resolver_network(c.id)
    nets.set_resolver(c.id, net.id if net else None)
    try:
        await _ask_guest(running, MsgType.NET_CONFIG, {"resolv_conf": _resolv_conf(c, net)},
                         "rewrite its resolv.conf")
    except BaseException:
        nets.set_resolver(c.id, before.id if before else None)
        raise


def _next_resolver(nets: BridgeNetworks, c: Container,
                   leaving: NetworkRecord) -> NetworkRecord | None:
    """The user-defined network other than ``leaving`` that ``c`` joined first
    (its NetworkSettings' order), None when it has none."""
    order = list((c.network_settings or {}).get("Networks") or {})
    rest = [n for n in nets.networks_of(c.id) if not n.builtin and n.id != leaving.id]
    rest.sort(key=lambda n: order.index(n.name) if n.name in order else len(order))
    return rest[0] if rest else None


async def disconnect_running(ctx: EngineContext, nets: BridgeNetworks, c: Container,
                             running: Running, name: str) -> None:
    """Unplug running container ``c``'s NIC on network ``name`` and give back its
    address. Raises Conflict (not connected), System."""
    net = nets.store.find(name)
    ep = net.endpoints.get(c.id)
    if ep is None:
        raise Conflict(f"container {c.id} is not connected to network {net.name}")
    async def release() -> None:  # the guest powers the NIC's slot off: no 5 s wait
        await _ask_guest(running, MsgType.NET_RELEASE, {"mac": ep.mac}, "release the NIC")

    moving = ep.resolver
    if moving:  # resolv.conf names this network's gateway: name the next one first
        await _point_resolver(nets, c, running, _next_resolver(nets, c, net))
    try:
        await running.machine.remove_nic(ep.mac, release=release)
    except BaseException:
        if moving:
            with contextlib.suppress(Exception):
                await _point_resolver(nets, c, running, nets.store.find(net.id))
        raise
    nets.detach(net.id, c.id)
    latest = ctx.store.load(c.id)
    settings = dict(latest.network_settings)
    settings["Networks"] = {k: v for k, v in settings.get("Networks", {}).items()
                            if k != net.name}
    ctx.update(c.id, network_settings=settings,
               endpoints_config={k: v for k, v in latest.endpoints_config.items()
                                 if k != net.name},
               left_mode_network=latest.left_mode_network or net.name == mode_network(c))
