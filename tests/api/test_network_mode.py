"""The daemon's network mode on real daemons, each inside a network namespace this
module creates and deletes: bridge mode by default as root (as dockerd makes
docker0), ``--network-mode`` over ``VMCONTAINER_NETWORK``, a clear refusal to start
bridge mode without its tools that leaves nothing behind, and ``make demo``'s path:
the CLI starting the daemon itself as root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from apihelpers import Daemon, remove_all_containers
from backends import BACKEND
from privlibvirtd import PrivateLibvirtd, libvirtd_for, temp_netns


def docker(d: Daemon, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], env=d.docker_env, capture_output=True, text=True,
                          timeout=timeout)


def links(ns: str) -> list[str]:
    out = subprocess.run(["ip", "-n", ns, "-o", "link"], capture_output=True, text=True,
                         check=True).stdout
    return [ln.split(":")[1].strip().split("@")[0] for ln in out.splitlines()]


def nft_tables(ns: str) -> str:
    return subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "tables"],
                          capture_output=True, text=True, check=True).stdout


@pytest.fixture
def netns() -> Iterator[str]:
    with temp_netns("vmcm") as ns:
        yield ns


@pytest.fixture
def ns_libvirtd(tmp_path_factory: pytest.TempPathFactory,
                netns: str) -> Iterator[PrivateLibvirtd | None]:
    with libvirtd_for(BACKEND, netns, tmp_path_factory.mktemp("libvirtd")) as libvirtd:
        yield libvirtd


def no_mode_env(d: Daemon) -> Daemon:
    """The daemon as a root user starts it: without the tests' VMCONTAINER_NETWORK."""
    d.env.pop("VMCONTAINER_NETWORK", None)
    return d


def network_mode_line(d: Daemon) -> str:
    info = d.request("GET", "/info").json()
    return next(v for k, v in info["DriverStatus"] if k == "Network mode")


def test_bridge_is_the_default_as_root(tmp_path: Path, netns: str) -> None:
    d = no_mode_env(Daemon(tmp_path / "root", tmp_path / "d.sock",
                           prefix=("ip", "netns", "exec", netns)))
    d.start()
    try:
        assert network_mode_line(d).startswith("bridge (")
        info = d.request("GET", "/info").json()
        assert info["Plugins"]["Network"] == ["bridge", "null"] and info["IPv4Forwarding"]
        r = docker(d, "network", "create", "projnet")  # what docker compose does first
        assert r.returncode == 0, r.stderr
        default = json.loads(docker(d, "network", "inspect", "bridge").stdout)[0]
        assert default["IPAM"]["Config"] == [{"Subnet": "172.17.0.0/16",
                                              "Gateway": "172.17.0.1"}]
        bridge = default["Options"]["com.docker.network.bridge.name"]
        assert bridge in links(netns)
        assert docker(d, "network", "rm", "projnet").returncode == 0
    finally:
        d.stop()


def test_the_default_network_avoids_a_subnet_the_host_routes(tmp_path: Path,
                                                             netns: str) -> None:
    """As on a host where docker0 holds 172.17.0.0/16: the default network takes
    the first free pool instead of a second route to the same subnet."""
    subprocess.run(["ip", "-n", netns, "link", "add", "fake0", "type", "veth", "peer", "name",
                    "fake1"], check=True)
    subprocess.run(["ip", "-n", netns, "addr", "add", "172.17.0.1/16", "dev", "fake0"],
                   check=True)
    subprocess.run(["ip", "-n", netns, "link", "set", "fake0", "up"], check=True)
    d = Daemon(tmp_path / "root", tmp_path / "d.sock", prefix=("ip", "netns", "exec", netns),
               extra=("--network-mode", "bridge"))
    d.start()
    try:
        default = json.loads(docker(d, "network", "inspect", "bridge").stdout)[0]
        assert default["IPAM"]["Config"][0]["Subnet"] == "172.18.0.0/16"
        r = docker(d, "network", "create", "second")
        assert r.returncode == 0, r.stderr
        net = json.loads(docker(d, "network", "inspect", "second").stdout)[0]
        assert net["IPAM"]["Config"][0]["Subnet"] == "172.19.0.0/16"
        assert docker(d, "network", "rm", "second").returncode == 0
    finally:
        d.stop()


def test_user_mode_asked_as_root_changes_nothing(tmp_path: Path, netns: str) -> None:
    d = no_mode_env(Daemon(tmp_path / "root", tmp_path / "d.sock",
                           prefix=("ip", "netns", "exec", netns),
                           extra=("--network-mode", "user")))
    d.start()
    try:
        assert network_mode_line(d).startswith("user (")
        r = docker(d, "network", "create", "projnet")
        assert r.returncode == 1
        assert "start it as root with --network-mode bridge" in r.stderr, r.stderr
    finally:
        d.stop()
    assert links(netns) == ["lo"] and "vmc-" not in nft_tables(netns)


def test_bridge_mode_without_its_tools_refuses_to_start(tmp_path: Path, netns: str) -> None:
    """nft and dnsmasq hidden (a private mount namespace puts /dev/null over them):
    one line naming both and their packages, exit 1, and nothing made in the netns."""
    hide = " && ".join(f"mount --bind /dev/null {p}" for p in ("/usr/sbin/nft",
                                                               "/usr/sbin/dnsmasq"))
    script = (f'{hide} && exec "$0" -m vmcontainer daemon -H unix://{tmp_path}/d.sock '
              "--network-mode bridge")
    env = {**os.environ, "VMCONTAINER_ROOT": str(tmp_path / "root")}
    r = subprocess.run(["ip", "netns", "exec", netns, "unshare", "-m", "sh", "-c", script,
                        sys.executable], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    assert ("failed to start daemon: Error initializing network controller: bridge "
            "networking needs nft (install Debian's nftables), dnsmasq (install Debian's "
            "dnsmasq-base); or start the daemon with --network-mode user") in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert links(netns) == ["lo"] and "vmc-" not in nft_tables(netns)
    assert not (tmp_path / "d.sock").exists()
    assert not (tmp_path / "root" / "vmcontainer.pid").exists()


@pytest.mark.vm
def test_cli_first_run_as_root_starts_a_bridge_mode_daemon(
        tmp_path: Path, netns: str, busybox_archive: Path,
        ns_libvirtd: PrivateLibvirtd | None) -> None:
    """``make demo``'s path: the vmcontainer CLI, as root without any setting, starts
    the daemon itself; the daemon inherits the CLI's network namespace and
    environment, so it runs in bridge mode there and the container gets an address
    on the default bridge. It runs in ``/``, a relative data root made absolute."""
    root, sock = tmp_path / "root", tmp_path / "vmc.sock"
    env = {k: v for k, v in os.environ.items() if k != "VMCONTAINER_NETWORK"}
    env.update(VMCONTAINER_ROOT="root", VMCONTAINER_HOST=f"unix://{sock}")
    prefix: tuple[str, ...] = ("ip", "netns", "exec", netns)
    if ns_libvirtd is not None:
        # nsenter --mount starts in the target's "/": keep the relative data root here
        prefix = (*ns_libvirtd.prefix, f"--wd={tmp_path}")
        env["VMCONTAINER_LIBVIRT_URI"] = ns_libvirtd.uri

    def vmc(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*prefix, sys.executable, "-m", "vmcontainer", *args], env=env,
                              capture_output=True, text=True, timeout=300, cwd=tmp_path)

    try:
        r = vmc("load", "-i", str(busybox_archive))
        assert r.returncode == 0, r.stderr
        r = vmc("run", "--rm", "busybox", "sh", "-c", "ip -4 -o addr show eth0")
        assert r.returncode == 0, r.stderr
        assert "inet 172.17.0.2/16" in r.stdout, r.stdout
        assert "network mode bridge" in (root / "daemon.log").read_text()
        pid = (root / "vmcontainer.pid").read_text().strip()
        assert os.readlink(f"/proc/{pid}/cwd") == "/"
        assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(
            f"/run/netns/{netns}").st_ino
    finally:
        d = Daemon(root, sock)
        if sock.exists():
            remove_all_containers(d)
        pid = (root / "vmcontainer.pid").read_text().strip() if (
            root / "vmcontainer.pid").exists() else ""
        if pid:
            os.kill(int(pid), 15)
            for _ in range(300):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.1)
    assert not [n for n in links(netns) if n.startswith("vmt")]  # --rm took its tap
