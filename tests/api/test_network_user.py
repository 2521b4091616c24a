"""User-mode networking through the real ``docker`` CLI: published ports (-p, -P)
reached from the host on 127.0.0.1, inspect's NetworkSettings, ``docker port``,
``docker ps`` PORTS, ``--network none``, refused modes, and exact cleanup.
Each container is a real VM; traffic stays on the host's loopback."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from apihelpers import Daemon, docker, fetch, free_port, remove_all_containers
from imagebuild import debian_rootfs, write_docker_archive

pytestmark = pytest.mark.vm

HTTPD = "mkdir -p /www && echo hello-$HOSTNAME > /www/index.html && exec httpd -f -p 80 -h /www"


def is_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:``port`` (connections in TIME_WAIT may remain)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_published_port_serves_http_and_shows_everywhere(daemon: Daemon, name: str) -> None:
    port = free_port()
    r = docker(daemon, "run", "-d", "--name", name, "-h", "web1",
               "-p", f"127.0.0.1:{port}:80", "busybox", "sh", "-c", HTTPD)
    assert r.returncode == 0, r.stderr
    try:
        assert fetch(f"http://127.0.0.1:{port}/") == b"hello-web1\n"
        assert docker(daemon, "port", name).stdout == f"80/tcp -> 127.0.0.1:{port}\n"
        assert docker(daemon, "port", name, "80").stdout == f"127.0.0.1:{port}\n"
        ps = docker(daemon, "ps", "--filter", f"name={name}", "--format", "{{.Ports}}")
        assert ps.stdout == f"127.0.0.1:{port}->80/tcp\n"
        info = json.loads(docker(daemon, "inspect", name).stdout)[0]
        ns = info["NetworkSettings"]
        assert ns["Ports"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
        bridge = ns["Networks"]["bridge"]
        assert (bridge["IPAddress"], bridge["IPPrefixLen"], bridge["Gateway"]) == (
            "10.0.2.15", 24, "10.0.2.2")
        assert ns["IPAddress"] == "10.0.2.15" and ns["MacAddress"] == bridge["MacAddress"]
        assert info["HostConfig"]["NetworkMode"] == "default"  # as moby records it
        assert info["HostConfig"]["PortBindings"] == {
            "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
        assert info["Config"]["ExposedPorts"] == {"80/tcp": {}}
        # the agent configured the guest: address, MAC, default route
        ip = docker(daemon, "exec", name, "sh", "-c", "ip -4 addr show eth0; ip route; "
                    "cat /sys/class/net/eth0/address /sys/class/net/eth0/mtu")
        assert "inet 10.0.2.15/24" in ip.stdout, ip.stdout + ip.stderr
        assert "default via 10.0.2.2 dev eth0" in ip.stdout
        assert f"{bridge['MacAddress']}\n1500\n" in ip.stdout
        # the port is taken while the container runs: Docker's error, exit 125
        clash = docker(daemon, "run", "--rm", "-p", f"127.0.0.1:{port}:80", "busybox", "true")
        assert clash.returncode == 125
        assert f"Bind for 127.0.0.1:{port} failed: port is already allocated" in clash.stderr
    finally:
        assert docker(daemon, "rm", "-f", name).returncode == 0
    assert is_free(port)  # nothing left listening


def test_publish_all_picks_ephemeral_ports(daemon: Daemon, name: str) -> None:
    r = docker(daemon, "run", "-d", "--name", name, "--expose", "80", "--expose", "9/udp",
               "-P", "busybox", "sh", "-c", HTTPD)
    assert r.returncode == 0, r.stderr
    try:
        lines = docker(daemon, "port", name).stdout.splitlines()
        assert len(lines) == 2, lines
        tcp = next(ln for ln in lines if ln.startswith("80/tcp -> 127.0.0.1:"))
        port = int(tcp.rsplit(":", 1)[1])
        assert 32768 <= port <= 60999
        assert any(ln.startswith("9/udp -> 127.0.0.1:") for ln in lines)
        assert fetch(f"http://127.0.0.1:{port}/").startswith(b"hello-")
    finally:
        docker(daemon, "rm", "-f", name)


def test_stopped_container_shows_no_ports(daemon: Daemon, name: str) -> None:
    r = docker(daemon, "run", "-d", "--name", name, "-p", "127.0.0.1::80", "busybox",
               "sleep", "2")
    assert r.returncode == 0, r.stderr
    try:
        assert docker(daemon, "wait", name).stdout == "0\n"
        ns = json.loads(docker(daemon, "inspect", name).stdout)[0]["NetworkSettings"]
        assert ns["Ports"] == {} and ns["Networks"]["bridge"]["IPAddress"] == ""
        assert docker(daemon, "port", name).stdout == ""
        assert docker(daemon, "start", name).returncode == 0  # ports chosen again
        assert docker(daemon, "port", name).stdout.startswith("80/tcp -> 127.0.0.1:")
    finally:
        docker(daemon, "rm", "-f", name)


def test_network_none_has_only_loopback(daemon: Daemon) -> None:
    r = docker(daemon, "run", "--rm", "--network", "none", "busybox", "ls", "/sys/class/net")
    assert (r.returncode, r.stdout) == (0, "lo\n"), r.stderr


@pytest.mark.parametrize("mode", ["host", "container:abc"])
def test_shared_network_namespaces_are_refused(daemon: Daemon, mode: str) -> None:
    r = docker(daemon, "run", "--rm", "--network", mode, "busybox", "true")
    assert r.returncode == 125
    assert f"network mode '{mode}' is not supported by vmcontainer" in r.stderr


def test_user_mode_lists_the_builtin_networks_only(daemon: Daemon) -> None:
    r = docker(daemon, "network", "ls", "--format", "{{.Name}} {{.Driver}}")
    assert r.stdout.splitlines() == ["bridge bridge", "none null"], r.stderr
    net = json.loads(docker(daemon, "network", "inspect", "bridge").stdout)[0]
    assert net["IPAM"]["Config"] == [{"Subnet": "10.0.2.0/24", "Gateway": "10.0.2.2"}]
    r = docker(daemon, "network", "create", "appnet")
    assert r.returncode == 1 and "--network-mode bridge" in r.stderr, r.stderr
    r = docker(daemon, "network", "rm", "bridge")
    assert r.returncode == 1 and "pre-defined network" in r.stderr, r.stderr


def test_unknown_network_is_not_found_at_start(daemon: Daemon, name: str) -> None:
    r = docker(daemon, "run", "--name", name, "--network", "nosuchnet", "busybox", "true")
    assert r.returncode == 125 and "network nosuchnet not found" in r.stderr, r.stderr
    docker(daemon, "rm", name)


def test_published_port_survives_a_daemon_restart(tmp_path: Path, busybox_archive: Path) -> None:
    """The hypervisor holds the forward: SIGKILL the daemon, the port still answers,
    and the new daemon shows it (inspect, docker port); rm frees it."""
    d = Daemon(tmp_path / "root", tmp_path / "d.sock")
    d.start()
    port = free_port()
    try:
        assert d.request("POST", "/images/load", busybox_archive.read_bytes()).status == 200
        r = docker(d, "run", "-d", "--name", "web", "-p", f"127.0.0.1:{port}:80", "busybox",
                   "sh", "-c", HTTPD)
        assert r.returncode == 0, r.stderr
        assert fetch(f"http://127.0.0.1:{port}/").startswith(b"hello-")
        d.stop(signal.SIGKILL)
        assert fetch(f"http://127.0.0.1:{port}/").startswith(b"hello-")
        d.start()
        assert fetch(f"http://127.0.0.1:{port}/").startswith(b"hello-")
        assert docker(d, "port", "web").stdout == f"80/tcp -> 127.0.0.1:{port}\n"
        assert docker(d, "rm", "-f", "web").returncode == 0
        assert is_free(port)
    finally:
        remove_all_containers(d)
        d.stop()


@pytest.fixture(scope="module")
def debian_python(daemon: Daemon, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Debian bookworm minbase image with python3 (mmdebstrap, cached), loaded."""
    archive = tmp_path_factory.mktemp("deb") / "debian.tar"
    packages = ("python3", "redis-server", "redis-tools", "nginx-light")  # one cached build
    write_docker_archive(archive, [debian_rootfs(packages).read_bytes()], ["netdebian:1"],
                         {"Cmd": ["bash"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:"
                                                   "/usr/sbin:/usr/bin:/sbin:/bin"]})
    r = daemon.request("POST", "/images/load?quiet=1", archive.read_bytes(), timeout=600)
    assert r.status == 200, r.body
    archive.unlink()
    return "netdebian:1"


def test_debian_python_http_server_answers_curl(daemon: Daemon, debian_python: str,
                                                name: str) -> None:
    port = free_port()
    r = docker(daemon, "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:80", "-w", "/srv",
               debian_python, "sh", "-c", "echo from-debian > index.html && "
               "exec python3 -m http.server 80")
    assert r.returncode == 0, r.stderr
    try:
        fetch(f"http://127.0.0.1:{port}/", timeout=120)
        out = subprocess.run(["curl", "-sf", f"http://127.0.0.1:{port}/index.html"],
                             capture_output=True, text=True, timeout=60)
        assert out.stdout == "from-debian\n", out.stderr
    finally:
        docker(daemon, "rm", "-f", name)
