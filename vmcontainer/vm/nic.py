"""NicSpec: one virtio-net NIC of a machine and the netdev behind it.

Three netdevs: ``user`` (QEMU user networking, slirp: outbound through the host's
sockets, published ports as ``hostfwd``; needs no privilege), ``tap`` (a tap
device the network plumbing created and attached to a bridge beforehand) and
``hubport`` (a port of QEMU's hub 0 with nothing else on it: the device's frames
go nowhere — the NIC of a VM template, whose clones put their own netdev behind
the same device; see ``vmcontainer.engine.templates``). Each NIC validates itself
and renders its own QEMU argv (STYLE.md, vm/ backends).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from vmcontainer.errors import InvalidParameter

log = logging.getLogger(__name__)

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
_ID = re.compile(r"^[a-z][a-z0-9]{0,15}$")


@dataclass(frozen=True)
class HostForward:
    """A published port of a ``user`` netdev: ``protocol`` ``tcp``/``udp``,
    connections to ``host_ip``:``host_port`` (an IPv4 address; ``0.0.0.0`` = all)
    go to the guest's ``guest_port``."""

    protocol: str
    host_ip: str
    host_port: int
    guest_port: int

    def __post_init__(self) -> None:
        if self.protocol not in ("tcp", "udp"):
            raise InvalidParameter(f"unsupported protocol {self.protocol!r} (tcp or udp)")
        try:
            ipaddress.IPv4Address(self.host_ip)
        except ValueError as err:
            raise InvalidParameter(f"invalid host IP {self.host_ip!r} for a published port "
                                   "(user networking forwards IPv4 only)") from err
        if not 1 <= self.host_port <= 65535 or not 1 <= self.guest_port <= 65535:
            raise InvalidParameter(f"invalid port in {self.host_port}:{self.guest_port}")

    def rule(self, guest_ip: str) -> str:
        """QEMU's ``hostfwd`` rule, e.g. ``tcp:127.0.0.1:8080-10.0.2.15:80``."""
        return f"{self.protocol}:{self.host_ip}:{self.host_port}-{guest_ip}:{self.guest_port}"


@dataclass(frozen=True)
class NicSpec:
    """One NIC. ``id``: the netdev/device id (``net0``); ``mac``: lower-case
    ``xx:xx:xx:xx:xx:xx``, how the agent finds the NIC; ``netdev``: ``user``,
    ``tap`` or ``hubport``. For ``user``: ``user_net`` (IPv4 CIDR), ``user_host`` (the gateway
    address slirp answers on), ``user_dns`` (its DNS forwarder), ``guest_ip`` and
    ``forwards``. For ``tap``: ``tap`` names an existing tap device. ``bus``: the
    hot-plug slot (``hp0``…) the NIC sits in on q35, so that it can be unplugged;
    empty: the machine's own bus."""

    id: str
    mac: str
    netdev: str = "user"
    tap: str = ""
    user_net: str = "10.0.2.0/24"
    user_host: str = "10.0.2.2"
    user_dns: str = "10.0.2.3"
    guest_ip: str = "10.0.2.15"
    forwards: tuple[HostForward, ...] = ()
    bus: str = ""

    def __post_init__(self) -> None:
        if self.bus and not re.match(r"^hp[0-9]{1,2}$", self.bus):
            raise InvalidParameter(f"invalid NIC bus {self.bus!r}")
        if not _ID.match(self.id):
            raise InvalidParameter(f"invalid NIC id {self.id!r}")
        if not _MAC.match(self.mac):
            raise InvalidParameter(f"invalid MAC address {self.mac!r}")
        if self.netdev == "tap":
            if not _IFNAME.match(self.tap):
                raise InvalidParameter(f"invalid tap device name {self.tap!r}")
            if self.forwards:
                raise InvalidParameter("host forwards need a user netdev")
        elif self.netdev == "user":
            try:
                net = ipaddress.IPv4Network(self.user_net)
                if not all(ipaddress.IPv4Address(a) in net
                           for a in (self.user_host, self.user_dns, self.guest_ip)):
                    raise ValueError("address outside the network")
            except ValueError as err:
                raise InvalidParameter(f"invalid user network: {err}") from err
        elif self.netdev == "hubport":
            if self.forwards:
                raise InvalidParameter("host forwards need a user netdev")
        else:
            raise InvalidParameter(f"unsupported netdev {self.netdev!r} (user, tap or "
                                   "hubport)")

    def qemu_args(self, device_model: str) -> list[str]:
        """``-netdev`` and ``-device`` arguments; ``device_model`` is
        ``virtio-net-device`` (microvm) or ``virtio-net-pci`` (q35)."""
        if self.netdev == "tap":
            netdev = f"tap,id={self.id},ifname={self.tap},script=no,downscript=no,vhost=off"
        elif self.netdev == "hubport":
            netdev = f"hubport,id={self.id},hubid=0"
        else:
            netdev = ",".join([
                f"user,id={self.id},net={self.user_net},host={self.user_host},"
                f"dns={self.user_dns},dhcpstart={self.guest_ip},ipv6=off",
                *(f"hostfwd={f.rule(self.guest_ip)}" for f in self.forwards),
            ])
        bus = f",bus={self.bus}" if self.bus else ""
        return ["-netdev", netdev,
                "-device", f"{device_model},netdev={self.id},mac={self.mac},id=dev{self.id}{bus}"]

    def qmp_netdev(self) -> dict[str, object]:
        """QMP ``netdev_add`` arguments of a tap NIC (hot-plug)."""
        return {"type": "tap", "id": self.id, "ifname": self.tap, "script": "no",
                "downscript": "no", "vhost": False}


async def release_by_guest(release: Callable[[], Awaitable[None]] | None, machine: str,
                           mac: str, fallback: str) -> None:
    """Run a backend's ``remove_nic`` ``release`` step (the agent powers the NIC's
    slot off, NET_RELEASE), if any; a failure is logged, not raised: the caller's
    ``fallback`` (QEMU's or libvirt's unplug request) still works, only slower."""
    if release is None:
        return
    try:
        await release()
    except Exception as err:  # the slow way still works
        log.warning("%s: the guest did not release NIC %s itself (%s); asking through %s",
                    machine, mac, err, fallback)
