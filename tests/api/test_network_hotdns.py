"""Name resolution of a running container that joins user-defined networks only by
``docker network connect`` (bridge mode, tests/api/bridgeenv.py): as Docker
rewrites the container's resolv.conf then, vmcontainer's agent rewrites it in
place (NET_CONFIG ``resolv_conf``, guest/PROTOCOL.md), without a restart.

The host's name servers (what the daemon's dnsmasqs forward other names to) are
unreachable from the test's network namespace, so ``upstream`` answers on their
addresses inside it: ``outer.example`` resolving proves the forwarding."""

from __future__ import annotations

import ipaddress
import json
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest
from apihelpers import Daemon
from bridgeenv import DEBIAN, REDIS, bdaemon, docker, in_ns, netns, ns_libvirtd, until

from vmcontainer.network.dns import host_resolvers
from vmcontainer.network.hosttools import tool

__all__ = ["bdaemon", "netns", "ns_libvirtd"]  # fixtures: pytest finds them here

pytestmark = pytest.mark.vm

OUTER = ("outer.example", "10.99.0.2")


@pytest.fixture(scope="module")
def upstream(netns: str) -> Iterator[list[str]]:
    """The host's IPv4 name servers, each answering ``OUTER`` inside ``netns`` (a
    dnsmasq there, their addresses on the namespace's lo). Yields them (empty
    when the host has none)."""
    servers = [s for s in host_resolvers() if ipaddress.ip_address(s).version == 4]
    added = [s for s in servers if not ipaddress.ip_address(s).is_loopback]
    proc = None
    try:
        for s in added:
            subprocess.run(["ip", "-n", netns, "addr", "add", f"{s}/32", "dev", "lo"],
                           check=True)
        if servers:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", netns, tool("dnsmasq"), "--keep-in-foreground",
                 "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--bind-interfaces",
                 "--pid-file=", "--user=root", f"--address=/{OUTER[0]}/{OUTER[1]}",
                 *(f"--listen-address={s}" for s in servers)])
            until(lambda: all(f"{s}:53" in in_ns(netns, "ss", "-lunH").stdout
                              for s in servers), 30)
        yield servers
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait()
        for s in added:
            subprocess.run(["ip", "-n", netns, "addr", "del", f"{s}/32", "dev", "lo"],
                           check=True)


def test_hot_connect_from_the_default_bridge_resolves_names(
        bdaemon: Daemon, netns: str, upstream: list[str]) -> None:
    """``front`` (busybox, booted on the default bridge, so its resolv.conf names
    the host's resolvers) resolves ``cache`` by name, alias and short ID and
    reaches it right after ``docker network connect``, its resolv.conf rewritten
    in place (same inode), other names still answered through the host's
    resolvers. On a second network it resolves names of both (its own resolver),
    also after a daemon restart; when the network its resolv.conf names leaves,
    the next one takes over; when the last leaves, resolv.conf is the boot one
    again. ``rm -f`` leaves no resolver, table or file behind."""
    d = bdaemon
    for net in ("dnsnet", "dns2net"):
        assert docker(d, "network", "create", net).returncode == 0
    gw = {net: json.loads(docker(d, "network", "inspect", net).stdout)[0]["IPAM"]["Config"][0]
          ["Gateway"] for net in ("dnsnet", "dns2net")}

    def sh(who: str, script: str) -> subprocess.CompletedProcess[str]:
        return docker(d, "exec", who, "sh", "-c", script)

    def address(who: str, name: str) -> str:
        """What ``who`` resolves ``name`` to (busybox nslookup), "" when it does not."""
        r = sh(who, f"nslookup -type=a {name}")
        found = [ln.split()[-1] for ln in r.stdout.split("Name:", 1)[-1].splitlines()
                 if ln.startswith("Address")]
        return found[0] if r.returncode == 0 and "Name:" in r.stdout and found else ""

    def resolv(who: str) -> tuple[str, str]:
        """The inode and text of ``who``'s /etc/resolv.conf."""
        r = sh(who, "stat -c %i /etc/resolv.conf; cat /etc/resolv.conf")
        assert r.returncode == 0, r.stderr
        inode, text = r.stdout.split("\n", 1)
        return inode, text

    def tables() -> list[str]:
        return [t for t in in_ns(netns, "nft", "list", "tables").stdout.splitlines()
                if "vmcr-" in t]

    def outer_resolves() -> bool:
        return not upstream or address("front", OUTER[0]) == OUTER[1]

    try:
        r = docker(d, "run", "-d", "--name", "cache", "--network", "dnsnet",
                   "--network-alias", "kv", DEBIAN, *REDIS)
        assert r.returncode == 0, r.stderr
        cache_id = r.stdout.strip()
        r = docker(d, "run", "-d", "--name", "front", "busybox", "sleep", "600")
        assert r.returncode == 0, r.stderr
        inode, boot_text = resolv("front")
        assert f"nameserver {gw['dnsnet']}" not in boot_text
        assert address("front", "cache") == ""
        # the boot resolv.conf names the host's resolvers, minus loopback ones
        boot_upstream = any(f"nameserver {s}\n" in boot_text for s in upstream)
        assert not boot_upstream or outer_resolves()

        t0 = time.monotonic()
        r = docker(d, "network", "connect", "dnsnet", "front")
        assert r.returncode == 0, r.stderr
        print(f"network connect (default bridge -> user-defined network, resolv.conf "
              f"rewritten): {time.monotonic() - t0:.2f} s")
        ip = json.loads(docker(d, "inspect", "cache").stdout)[0]["NetworkSettings"][
            "Networks"]["dnsnet"]["IPAddress"]
        now_inode, text = resolv("front")
        assert now_inode == inode and text.startswith(f"nameserver {gw['dnsnet']}\n"), text
        for name in ("cache", "kv", cache_id[:12]):
            assert address("front", name) == ip, name
        r = sh("front", "ping -c 1 -W 10 cache")
        assert r.returncode == 0, r.stdout + r.stderr
        assert outer_resolves()  # forwarded by the network's dnsmasq

        # a second network: names of both (cache joins it as kv2)
        r = docker(d, "network", "connect", "--alias", "kv2", "dns2net", "cache")
        assert r.returncode == 0, r.stderr
        assert docker(d, "network", "connect", "dns2net", "front").returncode == 0
        assert resolv("front")[1] == text
        ip2 = json.loads(docker(d, "inspect", "cache").stdout)[0]["NetworkSettings"][
            "Networks"]["dns2net"]["IPAddress"]
        assert address("front", "kv2") == ip2 and address("front", "kv") == ip
        assert len(tables()) == 2  # front's resolver and cache's
        d.stop(signal.SIGKILL)
        d.start()
        assert address("front", "kv2") == ip2 and address("front", "kv") == ip
        assert outer_resolves()  # forwarded by its own resolver

        # the network resolv.conf names leaves: the next one takes over
        assert docker(d, "network", "disconnect", "dnsnet", "front").returncode == 0
        now_inode, text = resolv("front")
        assert now_inode == inode and text.startswith(f"nameserver {gw['dns2net']}\n"), text
        assert address("front", "kv2") == ip2 and address("front", "cache") == ip2
        assert address("front", "kv") == ""
        assert len(tables()) == 1  # cache's

        # the last one leaves: resolv.conf is the boot one, the names are gone
        assert docker(d, "network", "disconnect", "dns2net", "front").returncode == 0
        assert resolv("front") == (inode, boot_text)
        assert address("front", "cache") == ""
        assert not boot_upstream or outer_resolves()

        # rm -f while it has a resolver of its own: nothing of it is left
        for net in ("dns2net", "dnsnet"):
            assert docker(d, "network", "connect", net, "front").returncode == 0
        assert resolv("front")[1].startswith(f"nameserver {gw['dns2net']}\n")
        assert address("front", "kv") == ip and len(tables()) == 2
        assert docker(d, "rm", "-f", "front").returncode == 0
        assert len(tables()) == 1
    finally:
        for name in ("front", "cache"):
            docker(d, "rm", "-f", name)
        for net in ("dnsnet", "dns2net"):
            docker(d, "network", "rm", net)
    assert tables() == []
    assert list((d.root / "network" / "resolvers").glob("*")) == []
    # no resolver left: a dnsmasq still listening is a network's own, on port 53
    assert all(ln.split()[3].endswith(":53") for ln in
               in_ns(netns, "ss", "-lunpH").stdout.splitlines() if "dnsmasq" in ln)
