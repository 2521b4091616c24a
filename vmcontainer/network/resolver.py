"""The name server of a container on several user-defined networks.

Docker's embedded DNS answers each container for every network it is on. A
network's own dnsmasq (``vmcontainer.network.dns``) knows that network's names
only, and listing several networks' servers in the guest's resolv.conf is not a
fix: a stub resolver stops at the first NXDOMAIN (glibc asks the servers in turn,
musl asks them all at once and takes the first answer), so a name on the second
network would be missed or raced; a server answering REFUSED instead of NXDOMAIN
makes musl wait its whole timeout for names nobody knows. A dnsmasq for several
networks cannot tell which client asks, so it would show every network's names
to members of one only.

So such a container gets a dnsmasq of its own, reading the hosts files of all
its user-defined networks, on the gateway address its resolv.conf names (its
first user-defined network's) at a port of its own; an nftables table
``ip vmcr-<id>`` sends the container's DNS queries to the gateway's port 53
there (DNAT), and drops queries to that port from anyone else. The container
keeps one name server in resolv.conf, the network's dnsmasq keeps serving the
others, and the resolver comes and goes with the container's second network
(``docker network connect``/``disconnect`` included). Which network's gateway
resolv.conf names is its endpoint's ``resolver`` mark: the first user-defined
network at boot, the first one a running container joins when it had none
(``vmcontainer.engine.nethotplug`` rewrites resolv.conf then), the next one when
that network leaves. Files under ``<network dir>/resolvers/``: ``<id>.pid``,
``<id>.json`` (its port).
"""

from __future__ import annotations

import contextlib
import json
import socket
from pathlib import Path

from vmcontainer.errors import System
from vmcontainer.network import dns
from vmcontainer.network.nat import run_nft

_TABLE = "vmcr-"


def table_name(container_id: str) -> str:
    return _TABLE + container_id[:12]


def free_port(address: str) -> int:
    """A port the kernel picks as free on ``address`` for UDP, also free for TCP."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((address, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((address, port))
                except OSError:
                    continue
        return port
    raise OSError(f"no port free for both UDP and TCP on {address}")


def rules(container_id: str, bridge: str, ip: str, gateway: str, port: int) -> str:
    """The nft script that (re)creates the container's table."""
    t = table_name(container_id)
    dnat = [f'    iifname "{bridge}" ip saddr {ip} ip daddr {gateway} {proto} dport 53 '
            f"dnat to {gateway}:{port}" for proto in ("udp", "tcp")]
    drop = [f"    ip daddr {gateway} {proto} dport {port} ip saddr != {ip} drop"
            for proto in ("udp", "tcp")]
    return "\n".join([
        f"table ip {t}", f"delete table ip {t}", f"table ip {t} {{",
        "  chain prerouting {", "    type nat hook prerouting priority dstnat;", *dnat, "  }",
        "  chain input {", "    type filter hook input priority filter; policy accept;",
        *drop, "  }", "}"]) + "\n"


class ContainerResolver:
    """The resolver of container ``container_id`` (files under ``directory``)."""

    def __init__(self, directory: Path, container_id: str) -> None:
        self.container_id = container_id
        self.pidfile = directory / f"{container_id}.pid"
        self.state = directory / f"{container_id}.json"

    def running(self) -> bool:
        return dns.running_pid(self.pidfile) is not None

    def _port(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            return int(json.loads(self.state.read_text())["port"])
        return None

    def ensure(self, bridge: str, ip: str, gateway: str, hosts: list[Path]) -> None:
        """The container at ``ip`` on ``bridge`` (whose gateway its resolv.conf
        names) resolves the names in ``hosts`` (its networks' hosts files), and
        only it reaches this resolver. Idempotent: a running resolver with other
        hosts files is restarted on the same port. Raises System, Unavailable."""
        port = self._port()
        if port is None or dns.running_argv(self.pidfile) != dns.dnsmasq_argv(
                gateway, hosts, self.pidfile, port):
            dns.stop(self.pidfile)
            try:
                if port is None:
                    raise System("no port chosen yet")
                dns.start(dns.dnsmasq_argv(gateway, hosts, self.pidfile, port))
            except System:  # none chosen yet, or someone else has taken it since
                port = self._new_port(gateway)
                dns.start(dns.dnsmasq_argv(gateway, hosts, self.pidfile, port))
        run_nft(rules(self.container_id, bridge, ip, gateway, port))

    def _new_port(self, gateway: str) -> int:
        try:
            port = free_port(gateway)
        except OSError as err:
            raise System(f"no port for the resolver of container {self.container_id[:12]} "
                         f"on {gateway}: {err}") from err
        self.state.parent.mkdir(parents=True, exist_ok=True)
        self.state.write_text(json.dumps({"port": port}))
        return port

    def reload(self) -> None:
        """A hosts file changed (SIGHUP)."""
        dns.reload(self.pidfile)

    def remove(self) -> None:
        """Nothing of the resolver is left (no error when there is none)."""
        if self.state.exists() or self.running():
            t = table_name(self.container_id)
            run_nft(f"table ip {t}\ndelete table ip {t}\n", check=False)
        dns.stop(self.pidfile)
        self.state.unlink(missing_ok=True)
