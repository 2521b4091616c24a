"""The libvirt backend on a "remote" host: this machine's libvirtd reached as
``qemu+ssh://root@127.0.0.1:PORT/system`` through a real OpenSSH server on loopback
(libvirt runs the ``ssh`` client; ``virt-ssh-helper`` answers on the far side), with
the files in a storage pool outside the daemon's data root. Nothing is shared but
what libvirt carries: kernel, initramfs and disks are uploaded as volumes, the agent
channel is a libvirt stream, and the container's writes live in its pool volume —
so ``docker cp`` on a stopped container must read that volume, not the local
overlay."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from apihelpers import Daemon, fetch, free_port, remove_all_containers
from backends import ensure_libvirtd
from sshserver import running_sshd

pytestmark = pytest.mark.vm


def virsh(*args: str, check: bool = True) -> str:
    out = subprocess.run(["virsh", "-c", "qemu:///system", *args], capture_output=True,
                         text=True, timeout=60, check=False)
    if check and out.returncode != 0:
        raise AssertionError(f"virsh {' '.join(args)}: {out.stderr}")
    return out.stdout


def pool_volumes(pool: str) -> set[str]:
    """Volume names in ``pool`` (virsh 9.0's vol-list has no --name)."""
    lines = virsh("vol-list", pool).splitlines()[2:]  # after the header and its rule
    return {line.split()[0] for line in lines if line.strip()}


def docker(d: Daemon, *args: str, cwd: Path | None = None
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], env=d.docker_env, capture_output=True,
                          text=True, timeout=180, check=False, cwd=cwd)


def ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, r.stderr
    return r.stdout


@dataclass
class Remote:
    daemon: Daemon
    uri: str
    pool: str


def _ssh_uri(port: int, home: Path, key: Path, known_hosts: Path) -> str:
    """The qemu+ssh URI through a wrapper that pins ``known_hosts``: OpenSSH reads
    the passwd entry's ~/.ssh, not $HOME's, and libvirt's ``no_verify=1`` would trust
    any host key; the URI's ``command=`` names the client libvirt runs."""
    wrapper = home / "ssh-pinned"
    wrapper.write_text(f"#!/bin/sh\nexec ssh -F none -o UserKnownHostsFile={known_hosts} "
                       "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes \"$@\"\n")
    wrapper.chmod(0o755)
    return f"qemu+ssh://root@127.0.0.1:{port}/system?keyfile={key}&command={wrapper}"


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory, busybox_archive: Path
           ) -> Iterator[Remote]:
    ensure_libvirtd()
    base = tmp_path_factory.mktemp("lvremote")
    pool = f"vmc-test-{uuid.uuid4().hex[:8]}"
    pool_dir = Path("/var/tmp") / pool  # not under the daemon's data root
    pool_dir.mkdir()
    try:
        virsh("pool-create-as", pool, "dir", "--target", str(pool_dir))
        (base / "sshd").mkdir()
        with running_sshd(base / "sshd", {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}) as ssh:
            uri = _ssh_uri(ssh.port, ssh.home, ssh.key, ssh.known_hosts)
            d = Daemon(base / "root", base / "d.sock", env={"VMCONTAINER_ACCEL": "tcg"},
                       extra=("--backend", "libvirt", "--libvirt-uri", uri,
                              "--libvirt-pool", pool))
            d.start()
            try:
                r = d.request("POST", "/images/load?quiet=1", busybox_archive.read_bytes(),
                              {"Content-Type": "application/x-tar"}, chunked=True)
                assert r.status == 200, r.body
                yield Remote(d, uri, pool)
                remove_all_containers(d)
            finally:
                if d.proc is not None and d.proc.poll() is None:
                    d.stop()
    finally:
        for line in virsh("list", "--name").split():  # what a failed test left
            if pool in virsh("dumpxml", line, check=False):
                virsh("destroy", line, check=False)
        virsh("pool-destroy", pool, check=False)
        shutil.rmtree(pool_dir, ignore_errors=True)


def test_run_keeps_writes_in_the_pool_volume(remote: Remote, name: str) -> None:
    d = remote.daemon
    info = json.loads(ok(docker(d, "info", "--format", "{{json .}}")))
    assert ["Libvirt URI", remote.uri] in info["DriverStatus"]
    assert ok(docker(d, "run", "--name", name, "busybox", "sh", "-c",
                     "echo hi; cat /kept 2>/dev/null; echo kept > /kept")) == "hi\n"
    cid = json.loads(ok(docker(d, "inspect", name)))[0]["Id"]
    vols = pool_volumes(remote.pool)
    assert {f"vmc-{cid}-rootfs", f"vmc-{cid}-config"} <= vols, vols
    assert any(v.startswith("vmc-boot-") and v.endswith("-vmlinux") for v in vols)
    assert any(v.startswith("vmc-base-") for v in vols)
    # The second run boots from the pool volume, which kept the first run's write.
    assert ok(docker(d, "start", "-a", name)) == "hi\nkept\n"
    ok(docker(d, "rm", name))
    assert not any(cid in v for v in pool_volumes(remote.pool))


def test_detached_logs_exec_stop_and_adoption(remote: Remote, name: str) -> None:
    d = remote.daemon
    cid = ok(docker(d, "run", "-d", "--name", name, "busybox", "sh", "-c",
                    "echo before; sleep 300")).strip()
    assert f"vmc-{cid[:12]}" in virsh("list", "--name").split()
    assert ok(docker(d, "exec", name, "sh", "-c", "echo out; echo err >&2")) == "out\n"
    logs = docker(d, "logs", name)
    assert (logs.stdout, logs.stderr) == ("before\n", "")
    # A killed daemon leaves the domain; the next one takes its channel back
    # (VIR_DOMAIN_CHANNEL_FORCE) over a new connection.
    d.stop(signal.SIGKILL)
    d.start()
    assert ok(docker(d, "exec", name, "echo", "adopted")) == "adopted\n"
    ok(docker(d, "stop", "-t", "1", name))
    state = json.loads(ok(docker(d, "inspect", name)))[0]["State"]
    assert state["Status"] == "exited"
    assert f"vmc-{cid[:12]}" not in virsh("list", "--name").split()
    ok(docker(d, "rm", name))


def test_cp_on_a_stopped_container_reads_the_remote_disk(
        remote: Remote, name: str, tmp_path: Path) -> None:
    d = remote.daemon
    ok(docker(d, "run", "--name", name, "busybox", "sh", "-c",
              "echo 'written on the remote host' > /data; cat /from-host 2>/dev/null; true"))
    # The local overlay never saw /data: only the pool volume has it.
    ok(docker(d, "cp", f"{name}:/data", str(tmp_path / "data")))
    assert (tmp_path / "data").read_text() == "written on the remote host\n"
    (tmp_path / "from-host").write_text("copied in while stopped\n")
    ok(docker(d, "cp", str(tmp_path / "from-host"), f"{name}:/"))
    assert ok(docker(d, "start", "-a", name)) == "copied in while stopped\n"
    ok(docker(d, "rm", name))


def test_bind_mounts_are_refused_on_a_remote_host(remote: Remote, name: str,
                                                  tmp_path: Path) -> None:
    r = docker(remote.daemon, "run", "--rm", "-v", f"{tmp_path}:/host", "busybox", "true")
    assert r.returncode != 0
    assert "bind mounts need the daemon's own filesystem" in r.stderr, r.stderr


def test_published_port_opens_on_the_libvirt_host(remote: Remote, name: str) -> None:
    """User networking on the remote host: QEMU there forwards the port, so it opens
    on the libvirt host (here the same machine, reached over ssh) — and `docker
    port` says so."""
    d = remote.daemon
    port = free_port()
    ok(docker(d, "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:80", "busybox", "sh",
              "-c", "mkdir /www; echo served-remotely > /www/index.html; httpd -f -p 80 -h /www"))
    assert ok(docker(d, "port", name)) == f"80/tcp -> 127.0.0.1:{port}\n"
    assert fetch(f"http://127.0.0.1:{port}/") == b"served-remotely\n"
    ok(docker(d, "rm", "-f", name))
