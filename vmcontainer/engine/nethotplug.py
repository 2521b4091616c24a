"""``docker network connect``/``disconnect`` on a running container: the NIC is
hot-plugged into (or out of) its VM through the backend (a PCIe root port of the
q35 machine bridge mode boots), and the agent configures it (``NET_CONFIG``,
guest/PROTOCOL.md) or, before it leaves, powers its slot off (``NET_RELEASE``:
QEMU's own unplug request waits 5 s in Linux's pciehp). Rolled back step by step
when one fails."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from vmcontainer.engine.container import Container, mode_network
from vmcontainer.engine.context import EngineContext
from vmcontainer.engine.netstart import endpoint_settings
from vmcontainer.engine.start import Running
from vmcontainer.errors import Conflict, System
from vmcontainer.guestlink.protocol import MsgType
from vmcontainer.network.bridge import BridgeNetworks
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


async def _guest_config(running: Running, ifaces: list[dict[str, Any]]) -> None:
    await _ask_guest(running, MsgType.NET_CONFIG, {"network": {"interfaces": ifaces}},
                     "configure the new NIC")


async def connect_running(ctx: EngineContext, nets: BridgeNetworks, c: Container,
                          running: Running, name: str, config: dict[str, Any]) -> None:
    """Attach running container ``c`` to network ``name`` now. Raises Conflict
    (no free slot), System (QEMU or the agent failing), IPAM errors."""
    net, ep = nets.attach(name, c.id, c.name, tuple(config.get("Aliases") or ()),
                          config.get("IPv4Address") or "")
    try:
        await running.machine.add_nic(NicSpec(id=ep.tap, mac=ep.mac, netdev="tap",
                                              tap=ep.tap))
        try:
            await _guest_config(running, [{"mac": ep.mac, "name": "", "mtu": 1500,
                                           "address": f"{ep.ip}/{net.prefix_len}"}])
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

    await running.machine.remove_nic(ep.mac, release=release)
    nets.detach(net.id, c.id)
    latest = ctx.store.load(c.id)
    settings = dict(latest.network_settings)
    settings["Networks"] = {k: v for k, v in settings.get("Networks", {}).items()
                            if k != net.name}
    ctx.update(c.id, network_settings=settings,
               endpoints_config={k: v for k, v in latest.endpoints_config.items()
                                 if k != net.name},
               left_mode_network=latest.left_mode_network or net.name == mode_network(c))
