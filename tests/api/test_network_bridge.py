"""Bridge networking (``--network-mode bridge``, as root) through the real
``docker`` CLI, with the daemon inside a network namespace this module creates and
deletes (tests/api/bridgeenv.py): containers are real VMs on a Debian image with
redis and nginx."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from apihelpers import Daemon, run_warm, vm_record
from backends import WARM
from bridgeenv import DEBIAN, REDIS, bdaemon, docker, in_ns, netns, ns_libvirtd, until

__all__ = ["bdaemon", "netns", "ns_libvirtd"]  # fixtures: pytest finds them here

pytestmark = pytest.mark.vm


def test_names_between_containers_on_a_user_defined_network(bdaemon: Daemon) -> None:
    d = bdaemon
    r = docker(d, "network", "create", "appnet")
    assert r.returncode == 0, r.stderr
    net = json.loads(docker(d, "network", "inspect", "appnet").stdout)[0]
    assert net["Driver"] == "bridge" and net["IPAM"]["Config"][0]["Subnet"] == "172.18.0.0/16"
    assert "appnet" in docker(d, "network", "ls", "--format", "{{.Name}}").stdout.split()
    r = docker(d, "run", "-d", "--name", "cache", "--network", "appnet",
               "--network-alias", "kv", DEBIAN, *REDIS)
    assert r.returncode == 0, r.stderr
    cache_id = r.stdout.strip()
    for host in ("cache", "kv", cache_id[:12]):
        def pong(host: str = host) -> bool:
            out = docker(d, "run", "--rm", "--network", "appnet", DEBIAN,
                         "redis-cli", "-h", host, "ping")
            return out.stdout.strip() == "PONG"
        until(pong, 90)
    info = json.loads(docker(d, "inspect", "cache").stdout)[0]["NetworkSettings"]
    ep = info["Networks"]["appnet"]
    assert ep["IPAddress"] == "172.18.0.2" and ep["Gateway"] == "172.18.0.1"
    assert ep["Aliases"] == ["kv"] and ep["MacAddress"] == "02:42:ac:12:00:02"
    members = json.loads(docker(d, "network", "inspect", "appnet").stdout)[0]["Containers"]
    assert members[cache_id]["IPv4Address"] == "172.18.0.2/16"
    # the default bridge has no names
    r = docker(d, "run", "--rm", DEBIAN, "getent", "hosts", "cache")
    assert r.returncode == 2, r.stdout + r.stderr
    # a network in use cannot go
    r = docker(d, "network", "rm", "appnet")
    assert r.returncode == 1 and "has active endpoints" in r.stderr
    # connect a stopped container: it joins at start, resolvable by name
    assert docker(d, "create", "--name", "late", DEBIAN, "sleep", "600").returncode == 0
    assert docker(d, "network", "connect", "appnet", "late").returncode == 0
    assert docker(d, "start", "late").returncode == 0
    until(lambda: docker(d, "exec", "cache", "getent", "hosts", "late").returncode == 0, 60)
    nets = json.loads(docker(d, "inspect", "late").stdout)[0]["NetworkSettings"]["Networks"]
    assert set(nets) == {"bridge", "appnet"}
    r = docker(d, "exec", "late", "redis-cli", "-h", "cache", "ping")
    assert r.stdout.strip() == "PONG", r.stderr
    # disconnect: gone from the network (and its names) after the next start
    assert docker(d, "stop", "-t", "1", "late").returncode == 0
    assert docker(d, "network", "disconnect", "appnet", "late").returncode == 0
    assert docker(d, "start", "late").returncode == 0
    r = docker(d, "exec", "cache", "getent", "hosts", "late")
    assert r.returncode == 2, r.stdout
    for name in ("cache", "late"):
        assert docker(d, "rm", "-f", name).returncode == 0


def test_connect_and_disconnect_a_running_container(bdaemon: Daemon) -> None:
    """NIC hot-plug: the container joins (resolvable, reachable) and leaves the
    network without a restart."""
    d = bdaemon
    if "hotnet" not in docker(d, "network", "ls", "--format", "{{.Name}}").stdout.split():
        assert docker(d, "network", "create", "hotnet").returncode == 0
    assert docker(d, "run", "-d", "--name", "srv", "--network", "hotnet", DEBIAN,
                  *REDIS).returncode == 0
    assert docker(d, "run", "-d", "--name", "live", DEBIAN, "sleep", "600").returncode == 0
    try:
        t0 = time.monotonic()
        r = docker(d, "network", "connect", "--alias", "hot", "hotnet", "live")
        assert r.returncode == 0, r.stderr
        print(f"network connect (hot-plug + guest config): {time.monotonic() - t0:.2f} s")
        nets = json.loads(docker(d, "inspect", "live").stdout)[0]["NetworkSettings"]["Networks"]
        assert set(nets) == {"bridge", "hotnet"}
        ip = nets["hotnet"]["IPAddress"]
        r = docker(d, "exec", "live", "ip", "-4", "-o", "addr")
        assert f"eth1    inet {ip}/16" in r.stdout, r.stdout
        for host in ("live", "hot"):
            r = docker(d, "exec", "srv", "getent", "hosts", host)
            assert r.stdout.split()[:1] == [ip], r.stdout + r.stderr
        srv_ip = json.loads(docker(d, "inspect", "srv").stdout)[0]["NetworkSettings"][
            "Networks"]["hotnet"]["IPAddress"]
        until(lambda: docker(d, "exec", "live", "redis-cli", "-h", srv_ip, "ping")
              .stdout.strip() == "PONG", 60)
        t0 = time.monotonic()
        r = docker(d, "network", "disconnect", "hotnet", "live")
        assert r.returncode == 0, r.stderr
        seconds = time.monotonic() - t0
        print(f"network disconnect (hot-unplug): {seconds:.2f} s")
        # the agent powers the slot off (NET_RELEASE): no 5 s attention-button wait
        assert seconds < 4.5, "the unplug went through pciehp's 5 s button delay"
        assert docker(d, "exec", "srv", "getent", "hosts", "live").returncode == 2
        r = docker(d, "exec", "live", "ls", "/sys/class/net")
        assert r.stdout.split() == ["eth0", "lo"], r.stdout
        nets = json.loads(docker(d, "inspect", "live").stdout)[0]["NetworkSettings"]["Networks"]
        assert set(nets) == {"bridge"}
        members = json.loads(docker(d, "network", "inspect", "hotnet").stdout)[0]["Containers"]
        assert len(members) == 1
    finally:
        for name in ("srv", "live"):
            docker(d, "rm", "-f", name)
        docker(d, "network", "rm", "hotnet")


def test_rename_moves_the_dns_name(bdaemon: Daemon) -> None:
    """``docker rename`` of a running container on a user-defined network: the
    other containers resolve the new name at once, and no longer the old one."""
    d = bdaemon
    assert docker(d, "network", "create", "rnnet").returncode == 0
    try:
        for name in ("before", "peer"):
            r = docker(d, "run", "-d", "--name", name, "--network", "rnnet", DEBIAN,
                       "sleep", "600")
            assert r.returncode == 0, r.stderr
        ip = json.loads(docker(d, "inspect", "before").stdout)[0]["NetworkSettings"][
            "Networks"]["rnnet"]["IPAddress"]
        until(lambda: docker(d, "exec", "peer", "getent", "hosts", "before").returncode == 0)
        r = docker(d, "rename", "before", "after")
        assert r.returncode == 0, r.stderr
        r = docker(d, "exec", "peer", "getent", "hosts", "after")
        assert r.stdout.split()[:2] == [ip, "after"], r.stdout + r.stderr
        r = docker(d, "exec", "peer", "getent", "hosts", "before")
        assert r.returncode == 2, r.stdout
        ep = json.loads(docker(d, "inspect", "after").stdout)[0]["NetworkSettings"][
            "Networks"]["rnnet"]
        assert ep["DNSNames"][0] == "after" and "before" not in ep["DNSNames"]
        members = json.loads(docker(d, "network", "inspect", "rnnet").stdout)[0]["Containers"]
        assert sorted(m["Name"] for m in members.values()) == ["after", "peer"]
    finally:
        for name in ("before", "after", "peer"):
            docker(d, "rm", "-f", name)
        docker(d, "network", "rm", "rnnet")


def test_a_container_on_two_networks_resolves_names_on_both(bdaemon: Daemon,
                                                            netns: str) -> None:
    """As Docker's embedded DNS: ``multi`` (on neta and netb) resolves ``a1`` (neta)
    and ``b1`` (netb); ``a1`` and ``b1`` still see only their own network's names;
    unknown names fail at once (NXDOMAIN, no resolver timeout); after a hot
    disconnect from netb, ``multi`` no longer resolves ``b1``; nothing is left."""
    d = bdaemon
    for net in ("neta", "netb"):
        assert docker(d, "network", "create", net).returncode == 0
    br = json.loads(docker(d, "network", "inspect", "netb").stdout)[0]["Options"][
        "com.docker.network.bridge.name"]
    mac = in_ns(netns, "cat", f"/sys/class/net/{br}/address").stdout
    try:
        for name, net in (("a1", "neta"), ("b1", "netb"), ("multi", "neta")):
            r = docker(d, "run", "-d", "--name", name, "--network", net, DEBIAN,
                       "sleep", "600")
            assert r.returncode == 0, r.stderr
        # a running container joins netb (hot-plug): its resolver starts then
        assert docker(d, "network", "connect", "netb", "multi").returncode == 0

        def resolves(who: str, name: str) -> bool:
            return docker(d, "exec", who, "getent", "hosts", name).returncode == 0

        until(lambda: resolves("multi", "a1") and resolves("multi", "b1"), 60)
        for who, name in (("a1", "multi"), ("b1", "multi")):
            assert resolves(who, name)
        for who, name in (("a1", "b1"), ("b1", "a1")):
            assert not resolves(who, name)
        t0 = time.monotonic()
        r = docker(d, "exec", "multi", "getent", "hosts", "nosuchname")
        assert r.returncode == 2 and time.monotonic() - t0 < 4, r.stdout
        # a name that appears later on either network is answered at once
        assert docker(d, "run", "-d", "--name", "b2", "--network", "netb", DEBIAN,
                      "sleep", "600").returncode == 0
        assert resolves("multi", "b2")
        # one that boots on both networks has its resolver from the start
        assert docker(d, "create", "--name", "cold", "--network", "netb", DEBIAN, "sleep",
                      "600").returncode == 0
        assert docker(d, "network", "connect", "neta", "cold").returncode == 0
        assert docker(d, "start", "cold").returncode == 0
        assert resolves("cold", "a1") and resolves("cold", "b2") and resolves("b1", "cold")
        # the bridge keeps its MAC as taps join (a Linux bridge would take its
        # lowest port's, and guests' ARP caches would point at a tap)
        assert in_ns(netns, "cat", f"/sys/class/net/{br}/address").stdout == mac
        tables = in_ns(netns, "nft", "list", "tables").stdout
        assert sum("vmcr-" in t for t in tables.splitlines()) == 2, tables
        assert docker(d, "rm", "-f", "cold").returncode == 0
        assert docker(d, "network", "disconnect", "netb", "multi").returncode == 0
        assert resolves("multi", "a1") and not resolves("multi", "b1")
        assert "vmcr-" not in in_ns(netns, "nft", "list", "tables").stdout
    finally:
        for name in ("a1", "b1", "b2", "multi", "cold"):
            docker(d, "rm", "-f", name)
        for net in ("neta", "netb"):
            docker(d, "network", "rm", net)
    assert "vmcr-" not in in_ns(netns, "nft", "list", "tables").stdout
    # no resolver left: a dnsmasq still listening is a network's own, on port 53
    assert all(ln.split()[3].endswith(":53") for ln in
               in_ns(netns, "ss", "-lunpH").stdout.splitlines() if "dnsmasq" in ln)


COMPOSE = f"""version: "3.8"
services:
  cache:
    image: {DEBIAN}
    command: {json.dumps(REDIS)}
  app:
    image: {DEBIAN}
    command: [sleep, "600"]
    depends_on: [cache]
"""


def test_docker_compose_project(bdaemon: Daemon, tmp_path: Path) -> None:
    """What bridge mode is the default as root for: docker-compose makes the
    project's network, its services resolve each other by service name, and
    ``down`` removes containers and network."""
    d = bdaemon
    (tmp_path / "docker-compose.yml").write_text(COMPOSE)

    def compose(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker-compose", "-p", "proj", *args], cwd=tmp_path,
                              env=d.docker_env, capture_output=True, text=True, timeout=300)

    r = compose("up", "-d")
    try:
        assert r.returncode == 0, r.stderr
        assert "proj_default" in docker(d, "network", "ls", "--format", "{{.Name}}").stdout
        until(lambda: compose("exec", "-T", "app", "redis-cli", "-h", "cache", "ping")
              .stdout.strip() == "PONG", 90)
    finally:
        r = compose("down")
    assert r.returncode == 0, r.stderr
    assert "proj_default" not in docker(d, "network", "ls", "--format", "{{.Name}}").stdout
    assert docker(d, "ps", "-aq").stdout == ""


def test_a_stopped_container_leaves_and_rejoins_its_network(bdaemon: Daemon) -> None:
    """As in Docker (and as docker-compose relies on): disconnecting a created
    container from its NetworkMode's network keeps NetworkMode; it then starts
    without that network, and joins it again once connected."""
    d = bdaemon
    assert docker(d, "network", "create", "netc").returncode == 0
    try:
        r = docker(d, "create", "--name", "lone", "--network", "netc", "--network-alias",
                   "web", "busybox", "ls", "/sys/class/net")
        assert r.returncode == 0, r.stderr
        nets = json.loads(docker(d, "inspect", "lone").stdout)[0]["NetworkSettings"]["Networks"]
        assert list(nets) == ["netc"] and nets["netc"]["Aliases"] == ["web"]
        assert docker(d, "network", "disconnect", "netc", "lone").returncode == 0
        info = json.loads(docker(d, "inspect", "lone").stdout)[0]
        assert info["HostConfig"]["NetworkMode"] == "netc"
        assert info["NetworkSettings"]["Networks"] == {}
        assert docker(d, "start", "-a", "lone").stdout == "lo\n"
        assert docker(d, "network", "connect", "netc", "lone").returncode == 0
        assert docker(d, "start", "lone").returncode == 0
        assert docker(d, "wait", "lone").stdout == "0\n"
        assert docker(d, "logs", "lone").stdout == "lo\neth0\nlo\n"
        r = docker(d, "create", "--name", "nonet", "--network", "none", "busybox", "true")
        assert r.returncode == 0, r.stderr
        r = docker(d, "network", "connect", "netc", "nonet")
        assert r.returncode == 1 and "container cannot be connected to multiple networks " \
            "with one of the networks in private (none) mode" in r.stderr, r.stderr
    finally:
        for name in ("lone", "nonet"):
            docker(d, "rm", "-f", name)
        docker(d, "network", "rm", "netc")


def test_network_create_options(bdaemon: Daemon, netns: str) -> None:
    """Docker's options vmcontainer does not serve are a 400 with a reason (or
    Docker's own words), never stored and ignored; the rest are kept and shown."""
    d = bdaemon
    refused = {
        ("-o", "com.docker.network.bridge.name=br0"):
            "network option com.docker.network.bridge.name=br0 is not supported by "
            "vmcontainer: vmcontainer names its bridges vmcbr-<network ID>",
        ("-o", "com.docker.network.bridge.enable_icc=false"):
            "network option com.docker.network.bridge.enable_icc=false is not supported",
        ("-o", "com.docker.network.bridge.enable_icc=maybe"):
            "failed to parse com.docker.network.bridge.enable_icc value: maybe "
            '(strconv.ParseBool: parsing "maybe": invalid syntax)',
        ("-o", "com.docker.network.driver.mtu=1400"):
            "network option com.docker.network.driver.mtu=1400 is not supported",
        ("-o", "com.docker.network.bridge.inhibit_ipv4=true"):
            "network option com.docker.network.bridge.inhibit_ipv4=true is not supported",
        ("-o", "com.docker.network.bridge.host_binding_ipv4=nowhere"):
            "failed to parse com.docker.network.bridge.host_binding_ipv4 value: nowhere",
        ("--scope", "swarm"): "cannot create a swarm scoped network when swarm is not active",
        ("--ingress",): "Ingress network can only be global scope network",
        ("--config-only",): "configuration-only networks (--config-only, --config-from) are "
                            "not supported",
        ("--ipv6",): "IPv6 networks are not supported",
    }
    links_before = in_ns(netns, "ip", "-o", "link").stdout
    for args, message in refused.items():
        r = docker(d, "network", "create", *args, "optnet")
        assert r.returncode == 1 and message in r.stderr, (args, r.stderr)
    assert "optnet" not in docker(d, "network", "ls", "--format", "{{.Name}}").stdout
    assert in_ns(netns, "ip", "-o", "link").stdout == links_before
    r = docker(d, "network", "create", "--attachable", "--ipam-opt", "foo=bar", "--label",
               "team=a", "-o", "custom.key=kept", "-o", "com.docker.network.driver.mtu=1500",
               "-o", "com.docker.network.bridge.enable_icc=true", "optnet")
    assert r.returncode == 0, r.stderr
    try:
        net = json.loads(docker(d, "network", "inspect", "optnet").stdout)[0]
        assert net["Attachable"] is True and net["IPAM"]["Options"] == {"foo": "bar"}
        assert net["Options"]["custom.key"] == "kept" and net["Labels"] == {"team": "a"}
        r = docker(d, "network", "ls", "--filter", "label=team=a", "--format", "{{.Name}}")
        assert r.stdout.split() == ["optnet"]
    finally:
        assert docker(d, "network", "rm", "optnet").returncode == 0


WHO_ASKS = ("import http.server as h\n"
            "class H(h.BaseHTTPRequestHandler):\n"
            "    def do_GET(self):\n"
            "        self.send_response(200); self.end_headers()\n"
            "        self.wfile.write(self.client_address[0].encode())\n"
            "h.HTTPServer(('10.99.0.2', 8099), H).serve_forever()\n")
ASK = ("import urllib.request as u\n"
       "try:\n    print(u.urlopen('http://10.99.0.2:8099/', timeout=10).read().decode())\n"
       "except OSError as e:\n    print('unreachable', e)\n")


@pytest.fixture
def outside(netns: str) -> Iterator[str]:
    """A second namespace behind a veth, the test netns's default route: what lies
    beyond the host. A server there answers with the address it sees."""
    out = "vmco" + uuid.uuid4().hex[:8]
    subprocess.run(["ip", "netns", "add", out], check=True)
    try:
        for cmd in (["ip", "-n", netns, "link", "add", "upl0", "type", "veth", "peer", "name",
                     "upl1", "netns", out],
                    ["ip", "-n", netns, "addr", "add", "10.99.0.1/24", "dev", "upl0"],
                    ["ip", "-n", netns, "link", "set", "upl0", "up"],
                    ["ip", "-n", netns, "route", "add", "default", "via", "10.99.0.2"],
                    ["ip", "-n", out, "addr", "add", "10.99.0.2/24", "dev", "upl1"],
                    ["ip", "-n", out, "link", "set", "upl1", "up"],
                    ["ip", "-n", out, "link", "set", "lo", "up"],
                    ["ip", "-n", out, "route", "add", "172.16.0.0/12", "via", "10.99.0.1"]):
            subprocess.run(cmd, check=True)
        server = subprocess.Popen(["ip", "netns", "exec", out, "python3", "-c", WHO_ASKS])
        try:
            until(lambda: "8099" in in_ns(out, "ss", "-ltnH").stdout, 30)
            yield out
        finally:
            server.kill()
            server.wait()
    finally:
        subprocess.run(["ip", "netns", "del", out], check=True)  # takes the veth pair


def test_internal_unnatted_and_host_binding_networks(bdaemon: Daemon, outside: str) -> None:
    """Outbound traffic leaves NATed (the server sees the host's address), with
    its own address under ``enable_ip_masquerade=false``, not at all from an
    ``--internal`` network; ``host_binding_ipv4`` is where published ports bind."""
    d = bdaemon
    nets = {"natnet": (), "rawnet": ("-o", "com.docker.network.bridge.enable_ip_masquerade="
                                     "false"),
            "intnet": ("--internal",),
            "bindnet": ("-o", "com.docker.network.bridge.host_binding_ipv4=10.99.0.1")}
    for name, args in nets.items():
        r = docker(d, "network", "create", *args, name)
        assert r.returncode == 0, r.stderr
    try:
        seen = {}
        for name in ("natnet", "rawnet", "intnet"):
            r = docker(d, "run", "--rm", "--network", name, DEBIAN, "sh", "-c",
                       f"hostname -I; python3 -c \"{ASK}\"")
            assert r.returncode == 0, r.stderr
            seen[name] = r.stdout.split("\n", 1)
        assert seen["natnet"][1].strip() == "10.99.0.1", seen
        assert seen["rawnet"][1].strip() == seen["rawnet"][0].strip(), seen  # its own
        assert seen["intnet"][1].startswith("unreachable"), seen
        r = docker(d, "run", "-d", "--name", "bound", "--network", "bindnet", "-p", "8088:80",
                   DEBIAN, "sleep", "600")
        assert r.returncode == 0, r.stderr
        assert docker(d, "port", "bound").stdout == "80/tcp -> 10.99.0.1:8088\n"
    finally:
        docker(d, "rm", "-f", "bound")
        for name in nets:
            docker(d, "network", "rm", name)


def test_published_port_serves_nginx_and_moves_data(bdaemon: Daemon, netns: str) -> None:
    d = bdaemon
    r = docker(d, "run", "-d", "--name", "web", "-p", "8080:80", DEBIAN, "sh", "-c",
               "echo written-by-test > /var/www/html/f.txt && "
               "head -c 104857600 /dev/urandom > /var/www/html/big && "
               "sha256sum /var/www/html/big > /var/www/html/big.sha && "
               "exec nginx -g 'daemon off;'")
    assert r.returncode == 0, r.stderr
    try:
        until(lambda: in_ns(netns, "curl", "-sf", "http://127.0.0.1:8080/f.txt").stdout
              == "written-by-test\n", 120)
        assert docker(d, "port", "web").stdout == "80/tcp -> 127.0.0.1:8080\n"
        # 50 parallel short connections
        script = ("import concurrent.futures as f, urllib.request as u\n"
                  "def get(i):\n"
                  "    return u.urlopen('http://127.0.0.1:8080/f.txt', timeout=60).read()\n"
                  "with f.ThreadPoolExecutor(50) as ex:\n"
                  "    got = list(ex.map(get, range(50)))\n"
                  "print(sum(g == b'written-by-test\\n' for g in got))\n")
        r = in_ns(netns, "python3", "-c", script)
        assert r.stdout.strip() == "50", r.stderr
        # 100 MiB, byte-exact, timed
        want = in_ns(netns, "curl", "-sf", "http://127.0.0.1:8080/big.sha").stdout.split()[0]
        t0 = time.monotonic()
        r = subprocess.run(["ip", "netns", "exec", netns, "curl", "-sf",
                            "http://127.0.0.1:8080/big"], capture_output=True, timeout=600)
        seconds = time.monotonic() - t0
        assert r.returncode == 0 and len(r.stdout) == 100 << 20
        assert hashlib.sha256(r.stdout).hexdigest() == want
        print(f"100 MiB through the published port in {seconds:.1f} s: "
              f"{100 / seconds:.1f} MiB/s")
    finally:
        assert docker(d, "rm", "-f", "web").returncode == 0
    r = in_ns(netns, "ss", "-ltnH")
    assert ":8080" not in r.stdout


def test_published_ports_work_again_after_a_daemon_restart(bdaemon: Daemon,
                                                            netns: str) -> None:
    """The proxy dies with the daemon (SIGKILL); the next daemon adopts the VM and
    serves its ports again, on the same host port."""
    d = bdaemon
    r = docker(d, "run", "-d", "--name", "persist", "-p", "8181:80", DEBIAN, "sh", "-c",
               "echo still-here > /var/www/html/s.txt && exec nginx -g 'daemon off;'")
    assert r.returncode == 0, r.stderr
    url = "http://127.0.0.1:8181/s.txt"
    try:
        until(lambda: in_ns(netns, "curl", "-sf", url).stdout == "still-here\n", 120)
        d.stop(signal.SIGKILL)
        d.start()
        assert in_ns(netns, "curl", "-sf", url).stdout == "still-here\n"
        assert docker(d, "port", "persist").stdout == "80/tcp -> 127.0.0.1:8181\n"
    finally:
        assert docker(d, "rm", "-f", "persist").returncode == 0
    assert ":8181" not in in_ns(netns, "ss", "-ltnH").stdout


UDP_ECHO = ("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "s.bind(('', 5353))\nwhile True:\n    d, a = s.recvfrom(999)\n"
            "    s.sendto(d.upper(), a)\n")
UDP_CLIENT = ("import socket, sys\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
              "s.settimeout(1)\nfor _ in range(60):\n    s.sendto(b'ping', ('127.0.0.1', 5300))\n"
              "    try:\n        print(s.recv(99).decode()); break\n"
              "    except OSError:\n        pass\n")


def test_published_udp_port(bdaemon: Daemon, netns: str) -> None:
    d = bdaemon
    r = docker(d, "run", "-d", "--name", "udp", "-p", "5300:5353/udp", DEBIAN, "python3",
               "-c", UDP_ECHO)
    assert r.returncode == 0, r.stderr
    try:
        assert docker(d, "port", "udp").stdout == "5353/udp -> 127.0.0.1:5300\n"
        assert in_ns(netns, "python3", "-c", UDP_CLIENT).stdout == "PING\n"
    finally:
        assert docker(d, "rm", "-f", "udp").returncode == 0
    assert ":5300" not in in_ns(netns, "ss", "-lunH").stdout


def test_cleanup_after_rm_and_prune(bdaemon: Daemon, netns: str) -> None:
    d = bdaemon
    assert docker(d, "network", "create", "--subnet", "10.77.0.0/24", "--gateway",
                  "10.77.0.254", "--ip-range", "10.77.0.128/25", "tmpnet").returncode == 0
    r = docker(d, "run", "-d", "--name", "c1", "--network", "tmpnet", "-p", "9090:80",
               DEBIAN, "sleep", "600")
    assert r.returncode == 0, r.stderr
    r = docker(d, "run", "-d", "--name", "c2", "--network", "tmpnet", "--ip", "10.77.0.7",
               DEBIAN, "sleep", "600")
    assert r.returncode == 0, r.stderr
    ips = [json.loads(docker(d, "inspect", n).stdout)[0]["NetworkSettings"]["Networks"]
           ["tmpnet"]["IPAddress"] for n in ("c1", "c2")]
    assert ips == ["10.77.0.129", "10.77.0.7"]
    links = in_ns(netns, "ip", "-o", "link").stdout
    assert links.count("vmt") == 2 and links.count("vmcbr-") >= 2
    for name in ("c1", "c2"):
        assert docker(d, "rm", "-f", name).returncode == 0
    r = docker(d, "network", "prune", "-f")
    assert "tmpnet" in r.stdout, r.stdout + r.stderr
    links = in_ns(netns, "ip", "-o", "link").stdout
    assert "vmt" not in links  # no taps
    default = json.loads(docker(d, "network", "inspect", "bridge").stdout)[0]
    bridges = [ln for ln in links.splitlines() if "vmcbr-" in ln]
    assert len(bridges) == 1 and default["Options"]["com.docker.network.bridge.name"] in \
        bridges[0]  # the default network's only, as docker0 stays
    tables = in_ns(netns, "nft", "list", "tables").stdout.split("\n")
    assert [t for t in tables if "vmc-" in t] == [f"table ip vmc-{default['Id'][:12]}"]
    assert in_ns(netns, "ss", "-ltnuH").stdout.strip() == ""  # no proxy, no dnsmasq
    assert docker(d, "network", "ls", "--format", "{{.Name}}").stdout.split() == [
        "bridge", "none"]


@pytest.mark.skipif(not WARM, reason="the suite's daemons start containers cold")
def test_warm_clones_get_their_own_mac_and_hot_plug_slots(bdaemon: Daemon,
                                                          netns: str) -> None:
    """q35 templates: each clone's boot NIC (a tap behind the template's device)
    has its endpoint's MAC and address and reaches the other clone over the
    bridge; a NIC hot-plugged into a clone's spare root port works too. The
    template's own tap is gone once it is saved."""
    d = bdaemon
    names = [run_warm(d, "-d", "busybox", "sleep", "600")[0] for _ in range(2)]
    try:
        assert vm_record(d, names[0])["Template"] == vm_record(d, names[1])["Template"]
        eps = [json.loads(docker(d, "inspect", n).stdout)[0]["NetworkSettings"]["Networks"]
               ["bridge"] for n in names]
        for name, ep in zip(names, eps, strict=True):
            r = docker(d, "exec", name, "sh", "-c", "cat /sys/class/net/eth0/address; "
                       "ip -4 -o addr show eth0")
            assert r.stdout.startswith(ep["MacAddress"] + "\n"), r.stdout + r.stderr
            assert f"inet {ep['IPAddress']}/16" in r.stdout
        assert eps[0]["MacAddress"] != eps[1]["MacAddress"]
        r = docker(d, "exec", names[0], "ping", "-c", "1", "-W", "10", eps[1]["IPAddress"])
        assert r.returncode == 0, r.stdout + r.stderr
        assert docker(d, "network", "create", "warmnet").returncode == 0
        r = docker(d, "network", "connect", "warmnet", names[1])
        assert r.returncode == 0, r.stderr
        ip = json.loads(docker(d, "inspect", names[1]).stdout)[0]["NetworkSettings"][
            "Networks"]["warmnet"]["IPAddress"]
        r = docker(d, "exec", names[1], "ip", "-4", "-o", "addr", "show", "eth1")
        assert f"inet {ip}/16" in r.stdout, r.stdout + r.stderr
        assert "vmctpl" not in in_ns(netns, "ip", "-o", "link").stdout
    finally:
        for name in names:
            docker(d, "rm", "-f", name)
        docker(d, "network", "rm", "warmnet")
