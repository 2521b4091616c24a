"""The bridge-mode test environment, shared by the modules that test bridge
networking (``--network-mode bridge``, as root) through the real ``docker`` CLI:
per module, a network namespace the module creates and deletes (every bridge,
tap, nftables table, dnsmasq and proxy lives there, and no traffic leaves it), a
daemon inside it with busybox and a Debian image with redis and nginx loaded and,
on the libvirt backend, a private libvirtd in that namespace (privlibvirtd): its
QEMU opens the taps there, and NICs are hot-plugged through libvirt.

A module takes the fixtures by importing them (``from bridgeenv import bdaemon,
netns, ns_libvirtd``); being module-scoped, each module gets its own."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from apihelpers import Daemon, remove_all_containers
from backends import BACKEND
from imagebuild import debian_rootfs, write_docker_archive
from privlibvirtd import PrivateLibvirtd, libvirtd_for, temp_netns

PACKAGES = ("python3", "redis-server", "redis-tools", "nginx-light")
DEBIAN = "netdebian:1"
REDIS = ["redis-server", "--protected-mode", "no", "--save", ""]


def docker(d: Daemon, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], env=d.docker_env, capture_output=True, text=True,
                          timeout=timeout)


def in_ns(ns: str, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True,
                          timeout=timeout)


def until(check: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    with temp_netns("vmct") as ns:
        yield ns


@pytest.fixture(scope="module")
def ns_libvirtd(tmp_path_factory: pytest.TempPathFactory,
                netns: str) -> Iterator[PrivateLibvirtd | None]:
    with libvirtd_for(BACKEND, netns, tmp_path_factory.mktemp("libvirtd")) as libvirtd:
        yield libvirtd


@pytest.fixture(scope="module")
def bdaemon(tmp_path_factory: pytest.TempPathFactory, netns: str,
            ns_libvirtd: PrivateLibvirtd | None, busybox_archive: Path) -> Iterator[Daemon]:
    base = tmp_path_factory.mktemp("bridge")
    prefix: tuple[str, ...] = ("ip", "netns", "exec", netns)
    env = {}
    if ns_libvirtd is not None:
        prefix, env["VMCONTAINER_LIBVIRT_URI"] = ns_libvirtd.prefix, ns_libvirtd.uri
    # the flag beats the tests' VMCONTAINER_NETWORK=user (tests/conftest.py)
    d = Daemon(base / "root", base / "d.sock", prefix=prefix,
               extra=("--network-mode", "bridge"), env=env)
    d.start()
    archive = base / "debian.tar"
    write_docker_archive(archive, [debian_rootfs(PACKAGES).read_bytes()], [DEBIAN],
                         {"Cmd": ["bash"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:"
                                                   "/usr/sbin:/usr/bin:/sbin:/bin"]})
    for a in (busybox_archive, archive):
        r = d.request("POST", "/images/load?quiet=1", a.read_bytes(), timeout=600)
        assert r.status == 200, r.body
    archive.unlink()
    yield d
    try:
        remove_all_containers(d)
        docker(d, "network", "prune", "-f")
    finally:
        d.stop()
        print(d.log_text())
