"""The libvirt backend through a real daemon (``--backend libvirt``) and the real
libvirtd, whatever VMCONTAINER_BACKEND says: domains listed by virsh while they run,
an exit from a libvirt event when someone else destroys the domain, adoption after
the daemon is killed, foreign domains left alone. A remote host: test_libvirt_remote.py."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from apihelpers import Daemon, remove_all_containers
from backends import ensure_libvirtd

pytestmark = pytest.mark.vm
URI = "qemu:///system"


def virsh(*args: str, check: bool = True) -> str:
    out = subprocess.run(["virsh", "-c", URI, *args], capture_output=True, text=True,
                         timeout=60, check=False)
    if check and out.returncode != 0:
        raise AssertionError(f"virsh {' '.join(args)}: {out.stderr}")
    return out.stdout


def running_domains() -> set[str]:
    return set(virsh("list", "--name").split())


def docker(d: Daemon, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], env=d.docker_env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def start_daemon(base: Path, archive: Path, extra: tuple[str, ...] = (),
                 env: dict[str, str] | None = None) -> Daemon:
    d = Daemon(base / "root", base / "d.sock", extra=("--backend", "libvirt", *extra))
    d.env.update(env or {})
    d.start()
    r = d.request("POST", "/images/load?quiet=1", archive.read_bytes(),
                  {"Content-Type": "application/x-tar"}, chunked=True)
    assert r.status == 200, r.body
    return d


@pytest.fixture(scope="module")
def lvd(tmp_path_factory: pytest.TempPathFactory, busybox_archive: Path) -> Iterator[Daemon]:
    ensure_libvirtd()
    d = start_daemon(tmp_path_factory.mktemp("lv"), busybox_archive)
    yield d
    try:
        remove_all_containers(d)
    finally:
        d.stop()


def test_domain_listed_while_running_and_info(lvd: Daemon, name: str) -> None:
    info = json.loads(docker(lvd, "info", "--format", "{{json .}}").stdout)
    assert ["Backend", "libvirt"] in info["DriverStatus"]  # what `docker info` prints
    assert ["Libvirt URI", URI] in info["DriverStatus"]
    assert lvd.request("GET", "/info").json()["Backend"] == "libvirt"
    r = docker(lvd, "run", "-d", "--name", name, "busybox", "sleep", "300")
    assert r.returncode == 0, r.stderr
    domain = f"vmc-{r.stdout.strip()[:12]}"
    assert domain in running_domains()
    assert r.stdout.strip() in virsh("dumpxml", domain)  # the owner in <metadata>
    assert docker(lvd, "rm", "-f", name).returncode == 0
    assert domain not in running_domains()


def test_destroyed_behind_our_back_exits_137_from_an_event(lvd: Daemon, name: str) -> None:
    r = docker(lvd, "run", "-d", "--name", name, "busybox", "sleep", "300")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    waiter = subprocess.Popen(["docker", "wait", name], env=lvd.docker_env,
                              stdout=subprocess.PIPE, text=True)
    time.sleep(1)  # the waiter is attached
    virsh("destroy", f"vmc-{cid[:12]}")  # returns once QEMU is gone
    t0 = time.monotonic()
    out, _ = waiter.communicate(timeout=30)
    elapsed = time.monotonic() - t0
    assert out.strip() == "137"
    assert elapsed < 1.0, f"the exit was seen {elapsed:.2f}s after the domain ended"
    state = json.loads(docker(lvd, "inspect", name).stdout)[0]["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 137)


def test_killed_daemon_leaves_domains_and_the_next_adopts(
        tmp_path_factory: pytest.TempPathFactory, busybox_archive: Path, name: str) -> None:
    ensure_libvirtd()
    base = tmp_path_factory.mktemp("lvk")
    d = start_daemon(base, busybox_archive)
    foreign = f"foreign-{uuid.uuid4().hex[:8]}"
    try:
        r = docker(d, "run", "-d", "--name", name, "busybox", "sh", "-c",
                   "echo before; sleep 2; echo after; sleep 300")
        assert r.returncode == 0, r.stderr
        domain = f"vmc-{r.stdout.strip()[:12]}"
        d.stop(signal.SIGKILL)
        assert domain in running_domains()
        # A domain of the same kind that this daemon did not make.
        _start_foreign(base, foreign)
        d.start()
        assert docker(d, "exec", name, "echo", "adopted").stdout == "adopted\n"
        deadline = time.monotonic() + 60  # "after" comes 2 s after "before" (TCG, load)
        while (logs := docker(d, "logs", name).stdout) != "before\nafter\n":
            assert time.monotonic() < deadline and logs == "before\n", logs
            time.sleep(0.5)
        assert docker(d, "pause", name).returncode == 0
        assert docker(d, "unpause", name).returncode == 0
        assert docker(d, "stop", "-t", "1", name).returncode == 0
        assert domain not in running_domains()
        remove_all_containers(d)
        assert foreign in running_domains()  # never touched
    finally:
        virsh("destroy", foreign, check=False)
        d.stop()


def _start_foreign(base: Path, name: str) -> None:
    (base / "foreign.xml").write_text(
        f"<domain type='qemu'><name>{name}</name><memory unit='MiB'>32</memory>"
        "<os><type arch='x86_64' machine='q35'>hvm</type></os>"
        "<devices><controller type='usb' model='none'/><memballoon model='none'/>"
        "</devices></domain>")
    virsh("create", str(base / "foreign.xml"))


def test_foreign_domain_with_our_name_is_refused(lvd: Daemon, name: str,
                                                 tmp_path: Path) -> None:
    r = docker(lvd, "create", "--name", name, "busybox", "true")
    assert r.returncode == 0, r.stderr
    domain = f"vmc-{r.stdout.strip()[:12]}"
    _start_foreign(tmp_path, domain)
    try:
        r = docker(lvd, "start", name)
        assert r.returncode != 0
        assert "is not this container's" in r.stderr
        assert domain in running_domains()
        assert docker(lvd, "rm", "-f", name).returncode == 0
        assert domain in running_domains()
    finally:
        virsh("destroy", domain, check=False)
