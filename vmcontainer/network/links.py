"""Links of bridge networks, through rtnetlink (pyroute2): the Linux bridge with
the gateway address, one persistent tap per endpoint enslaved to it, and IPv4
forwarding. Every call is idempotent, so that a daemon start can restore what a
reboot of the namespace lost, and removal of what is gone is no error."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from vmcontainer.errors import System

FORWARDING = Path("/proc/sys/net/ipv4/ip_forward")
T = TypeVar("T")


def _off_loop(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a worker thread and wait for it: pyroute2's synchronous
    IPRoute runs an event loop of its own, which cannot nest in the daemon's.
    Each call is a few netlink round trips (sub-millisecond)."""
    with ThreadPoolExecutor(1, thread_name_prefix="netlink") as pool:
        return pool.submit(fn).result()


def _index(ipr: IPRoute, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return int(found[0]) if found else None


def ensure_bridge(name: str, gateway: str, prefix_len: int) -> None:
    _off_loop(lambda: _ensure_bridge(name, gateway, prefix_len))


def random_mac() -> str:
    """A random unicast, locally administered MAC address."""
    b = bytearray(secrets.token_bytes(6))
    b[0] = (b[0] & 0xFE) | 0x02
    return ":".join(f"{x:02x}" for x in b)


def _pinned(name: str) -> bool:
    """Whether the link's MAC address was set (NET_ADDR_SET), not taken from a port."""
    try:
        return Path(f"/sys/class/net/{name}/addr_assign_type").read_text().strip() == "3"
    except OSError:
        return False


def _ensure_bridge(name: str, gateway: str, prefix_len: int) -> None:
    """Bridge ``name`` exists, is up and has ``gateway``/``prefix_len``; forwarding
    on. Its MAC address is set once (as Docker sets docker0's): a Linux bridge
    otherwise takes its lowest port's, which changes as taps come and go, and the
    guests' ARP caches would keep sending to the old one. Raises System."""
    try:
        with IPRoute() as ipr:
            idx = _index(ipr, name)
            if idx is None:
                ipr.link("add", ifname=name, kind="bridge", address=random_mac())
                idx = _index(ipr, name)
            elif not _pinned(name):  # made before it was pinned: keep what it has now
                current = ipr.get_links(idx)[0].get_attr("IFLA_ADDRESS")
                ipr.link("set", index=idx, address=current)
            assert idx is not None
            have = {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=idx, family=2)}
            if gateway not in have:
                ipr.addr("add", index=idx, address=gateway, prefixlen=prefix_len)
            ipr.link("set", index=idx, state="up")
        if FORWARDING.read_text().strip() != "1":
            FORWARDING.write_text("1\n")
    except (NetlinkError, OSError) as err:
        raise System(f"cannot set up bridge {name}: {err}") from err


def add_tap(name: str, bridge: str) -> None:
    _off_loop(lambda: _add_tap(name, bridge))


def _add_tap(name: str, bridge: str) -> None:
    """A persistent tap ``name`` on ``bridge``, up (QEMU opens it by name)."""
    try:
        with IPRoute() as ipr:
            if _index(ipr, name) is None:
                ipr.link("add", ifname=name, kind="tuntap", mode="tap")
            idx, master = _index(ipr, name), _index(ipr, bridge)
            if idx is None or master is None:
                raise System(f"tap {name} or bridge {bridge} missing")
            ipr.link("set", index=idx, master=master, state="up")
    except NetlinkError as err:
        raise System(f"cannot create tap {name} on {bridge}: {err}") from err


def add_lone_tap(name: str) -> None:
    _off_loop(lambda: _add_lone_tap(name))


def _add_lone_tap(name: str) -> None:
    """A persistent tap ``name`` on no bridge and down: what a VM writes to it goes
    nowhere (a VM template's NIC: vmcontainer.engine.templates). Raises System."""
    try:
        with IPRoute() as ipr:
            if _index(ipr, name) is None:
                ipr.link("add", ifname=name, kind="tuntap", mode="tap")
    except NetlinkError as err:
        raise System(f"cannot create tap {name}: {err}") from err


def delete_link(name: str) -> None:
    _off_loop(lambda: _delete_link(name))


def _delete_link(name: str) -> None:
    """Remove link ``name`` (tap or bridge); nothing when it is gone."""
    with IPRoute() as ipr:
        idx = _index(ipr, name)
        if idx is not None:
            with contextlib.suppress(NetlinkError):
                ipr.link("del", index=idx)


def link_names(prefix: str) -> list[str]:
    """Names of the links whose name starts with ``prefix`` (for cleanup checks)."""
    def names() -> list[str]:
        with IPRoute() as ipr:
            return [str(link.get_attr("IFLA_IFNAME")) for link in ipr.get_links()]
    return [n for n in _off_loop(names) if n.startswith(prefix)]


def routed_subnets(skip_prefix: str) -> list[str]:
    """The IPv4 destinations (CIDR) of the main routing table's routes other than
    the default one, leaving out those through links named ``skip_prefix``…
    (a network's own bridge): what an automatically chosen subnet must not
    overlap, as Docker checks for docker0 and new networks."""
    def routes() -> list[str]:
        with IPRoute() as ipr:
            names = {link["index"]: str(link.get_attr("IFLA_IFNAME"))
                     for link in ipr.get_links()}
            out = []
            for r in ipr.get_routes(family=2, table=254):
                dst, oif = r.get_attr("RTA_DST"), r.get_attr("RTA_OIF")
                if dst and r["dst_len"] and not names.get(oif, "").startswith(skip_prefix):
                    out.append(f"{dst}/{r['dst_len']}")
            return out
    return _off_loop(routes)
