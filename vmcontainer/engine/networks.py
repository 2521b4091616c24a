"""Docker's network verbs (``docker network create/ls/inspect/rm/prune/connect/
disconnect``) over ``vmcontainer.network``: bridge networks in bridge mode; in
user mode only the built-in ``bridge`` (slirp) and ``none`` networks exist."""

from __future__ import annotations

import builtins
import contextlib
from typing import Any

from vmcontainer.engine.container import Container, mode_network, network_names
from vmcontainer.engine.context import EngineContext
from vmcontainer.engine.nethotplug import connect_running, disconnect_running
from vmcontainer.engine.netstart import rename_endpoints
from vmcontainer.engine.start import Running
from vmcontainer.engine.state import Status
from vmcontainer.errors import Conflict, Forbidden, InvalidParameter, NotFound
from vmcontainer.network import usermode
from vmcontainer.network.bridge import DEFAULT_NETWORK, BridgeNetworks
from vmcontainer.network.store import NetworkNotFound

NONE_NETWORK = "none"
LIST_FILTERS = {"name", "id", "driver", "label", "type", "dangling", "scope"}
USER_MODE = ("user-defined networks need bridge networking, and this daemon runs in "
             "user mode (QEMU user networking): start it as root with --network-mode "
             "bridge (the default as root)")


def _fixed(name: str, driver: str) -> dict[str, Any]:
    """A network that exists without a record: ``none``, and ``bridge`` in user mode."""
    cfg = [{"Subnet": usermode.SUBNET, "Gateway": usermode.GATEWAY}] if driver == "bridge" else []
    return {"Name": name, "Id": usermode.network_id(name), "Created": "0001-01-01T00:00:00Z",
            "Scope": "local", "Driver": driver, "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": None, "Config": cfg},
            "Internal": False, "Attachable": False, "Ingress": False,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": {},
            "Options": {}, "Labels": {}}


def _one(doc: dict[str, Any], key: str, v: str) -> bool:
    builtin = doc["Name"] in (DEFAULT_NETWORK, NONE_NETWORK)
    if key == "name":
        return v in str(doc["Name"])
    if key == "id":
        return bool(doc["Id"].startswith(v))
    if key == "driver":
        return v == str(doc["Driver"])
    if key == "label":
        k, eq, value = v.partition("=")
        return k in doc["Labels"] and (not eq or str(doc["Labels"][k]) == value)
    if key == "type":
        return v == ("builtin" if builtin else "custom")
    if key == "dangling":
        return (v in ("true", "1")) == (not builtin and not doc["Containers"])
    return v == "local"  # scope


def _match(doc: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    for key, values in filters.items():
        if key not in LIST_FILTERS:
            raise InvalidParameter(f"invalid filter '{key}'")
        if not any(_one(doc, key, v) for v in values):
            return False
    return True


class NetworksMixin:
    """``ctx`` and ``_running`` are the engine's."""

    ctx: EngineContext
    _running: dict[str, Running]

    def _bridges(self) -> BridgeNetworks:
        if self.ctx.networks is None:
            raise Forbidden(USER_MODE)
        return self.ctx.networks

    def network_list(self, filters: dict[str, list[str]] | None = None
                     ) -> builtins.list[dict[str, Any]]:
        """NetworkList: every network (Docker's Network objects)."""
        docs = [self._inspect_any(n) for n in self._names()]
        return [d for d in docs if _match(d, filters or {})]

    def _names(self) -> builtins.list[str]:
        if self.ctx.networks is None:
            return [DEFAULT_NETWORK, NONE_NETWORK]
        return [*(n.id for n in self.ctx.networks.store.all()), NONE_NETWORK]

    def _inspect_any(self, ref: str) -> dict[str, Any]:
        if self.ctx.networks is None:
            if ref in (DEFAULT_NETWORK, NONE_NETWORK) or ref in (
                    usermode.network_id(DEFAULT_NETWORK), usermode.network_id(NONE_NETWORK)):
                name = ref if ref in (DEFAULT_NETWORK, NONE_NETWORK) else next(
                    n for n in (DEFAULT_NETWORK, NONE_NETWORK) if usermode.network_id(n) == ref)
                return _fixed(name, "bridge" if name == DEFAULT_NETWORK else "null")
            raise NetworkNotFound(ref)
        if ref in (NONE_NETWORK, usermode.network_id(NONE_NETWORK)):
            return _fixed(NONE_NETWORK, "null")
        nets = self.ctx.networks
        return nets.inspect(nets.store.find(ref))

    def network_inspect(self, ref: str) -> dict[str, Any]:
        """NetworkInspect. Raises NetworkNotFound ("network X not found")."""
        return self._inspect_any(ref)

    def network_create(self, name: str, driver: str, internal: bool,
                       ipam_config: builtins.list[dict[str, str]], labels: dict[str, str],
                       options: dict[str, str], attachable: bool = False,
                       ipam_options: dict[str, str] | None = None) -> str:
        """NetworkCreate; returns the new ID. Raises Forbidden (user mode),
        NotFound (a driver other than bridge), InvalidParameter (an option
        vmcontainer does not serve, among others), Conflict."""
        nets = self._bridges()
        if driver not in ("", "bridge"):
            raise NotFound(f'plugin "{driver}" not found')
        if len(ipam_config) > 1:
            raise InvalidParameter("vmcontainer bridge networks take one IPAM config (IPv4)")
        cfg = ipam_config[0] if ipam_config else {}
        net = nets.create(name, cfg.get("Subnet", ""), cfg.get("Gateway", ""),
                          cfg.get("IPRange", ""), internal, labels, options, attachable,
                          ipam_options)
        return net.id

    def network_remove(self, ref: str) -> None:
        """NetworkDelete. Raises NetworkNotFound, Forbidden, Conflict."""
        if ref == NONE_NETWORK or (self.ctx.networks is None and ref == DEFAULT_NETWORK):
            raise Forbidden(f"{ref} is a pre-defined network and cannot be removed")
        self._bridges().remove(ref)

    def network_prune(self, filters: dict[str, list[str]] | None = None
                      ) -> builtins.list[str]:
        """NetworkPrune: user-defined networks no container is configured for
        (``label`` filters apply). Returns their names."""
        if self.ctx.networks is None:
            return []
        nets = self.ctx.networks
        wanted = {k: v for k, v in (filters or {}).items() if k in ("label", "label!")}
        keep = set()
        for c in self.ctx.store.all():
            for name in network_names(c):
                with contextlib.suppress(NotFound, InvalidParameter):
                    keep.add(nets.store.find(name).id)
        for net in nets.store.all():
            doc = nets.inspect(net)
            if wanted.get("label") and not _match(doc, {"label": wanted["label"]}):
                keep.add(net.id)
            if wanted.get("label!") and _match(doc, {"label": wanted["label!"]}):
                keep.add(net.id)
        return nets.prune(keep)

    async def network_connect(self, ref: str, container: str,
                              config: dict[str, Any]) -> None:
        """Connect ``container`` to network ``ref`` (``{"Aliases", "IPv4Address"}``):
        a running one at once (NIC hot-plug), another at its next start. Raises
        NotFound, Forbidden, Conflict (already connected, paused, no free slot)."""
        nets = self._bridges()
        net = nets.store.find(ref)
        c = self.ctx.store.find(container)
        if net.name in network_names(c):
            raise Conflict(f"endpoint with name {c.name} already exists in network {net.name}")
        if c.host_config.get("NetworkMode") == NONE_NETWORK:
            raise Conflict("container cannot be connected to multiple networks with one of "
                           "the networks in private (none) mode")
        if c.state.running:
            await connect_running(self.ctx, nets, c, self._live(c), net.name, config)
            return
        self.ctx.update(c.id, endpoints_config={**c.endpoints_config, net.name: config},
                        left_mode_network=c.left_mode_network and net.name != mode_network(c))

    def _live(self, c: Container) -> Running:
        running = self._running.get(c.id)
        if running is None or c.state.status != Status.RUNNING:
            raise Conflict(f"container {c.name} is {c.state.status}: unpause it or let it "
                           "start first")
        return running

    async def network_disconnect(self, ref: str, container: str, force: bool = False) -> None:
        """Disconnect ``container`` from network ``ref``: a running one at once
        (NIC hot-unplug; the guest powers the NIC's slot off, ~1 s).
        Raises NotFound, Conflict (not connected, paused)."""
        nets = self._bridges()
        net = nets.store.find(ref)
        c = self.ctx.store.find(container)
        names = network_names(c)
        if net.name not in names:
            raise Conflict(f"container {c.id} is not connected to network {net.name}")
        if c.state.running:
            await disconnect_running(self.ctx, nets, c, self._live(c), net.name)
            return
        # NetworkMode stays as it is (as in Docker: docker-compose disconnects a
        # created container from its network to connect it again with aliases)
        self.ctx.update(c.id, endpoints_config={k: v for k, v in c.endpoints_config.items()
                                                if k != net.name},
                        left_mode_network=c.left_mode_network or net.name == mode_network(c))

    def network_renamed(self, cid: str) -> None:
        """``docker rename`` of ``cid`` done: its DNS names follow (bridge mode)."""
        rename_endpoints(self.ctx, cid)


