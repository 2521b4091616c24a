"""Fixtures for tests that drive the real ``vmcontainer`` command: real QEMU (TCG
here), real guest kernel and agent, images built locally and loaded with
``vmcontainer load``."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from imagebuild import busybox_rootfs_tar, debian_rootfs, write_docker_archive

BUSYBOX = Path("/bin/busybox")


@dataclass
class Result:
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def out(self) -> str:
        return self.stdout.decode()

    @property
    def err(self) -> str:
        return self.stderr.decode()


class Vmc:
    """Runs ``python -m vmcontainer ARGS`` with this session's data root and a daemon
    socket inside it; the first command starts the daemon (as on a user's machine),
    ``stop_daemon`` stops it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sock = root / "vmcontainer.sock"
        self.env = {**os.environ, "VMCONTAINER_ROOT": str(root),
                    "VMCONTAINER_HOST": f"unix://{self.sock}"}

    def daemon_pid(self) -> int | None:
        """The PID of the daemon holding this root's pid file, None if none runs."""
        try:
            fd = os.open(self.root / "vmcontainer.pid", os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return int(os.read(fd, 32).decode().strip() or 0) or None
        finally:
            os.close(fd)
        return None

    def stop_daemon(self, timeout: float = 60) -> None:
        pid = self.daemon_pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.daemon_pid() is not None:
            assert time.monotonic() < deadline, f"daemon {pid} ignored SIGTERM"
            time.sleep(0.05)

    def __call__(self, *args: str, input: bytes | None = None, timeout: float = 300,
                 check: bool = False) -> Result:
        p = subprocess.run([sys.executable, "-m", "vmcontainer", *args], input=input,
                           capture_output=True, env=self.env, timeout=timeout)
        r = Result(p.returncode, p.stdout, p.stderr)
        if check and p.returncode != 0:
            raise AssertionError(f"vmcontainer {' '.join(args)} → {p.returncode}\n{r.err}")
        return r


@pytest.fixture(scope="session")
def vmc(tmp_path_factory: pytest.TempPathFactory, boot_assets: object) -> Iterator[Vmc]:
    v = Vmc(tmp_path_factory.mktemp("vmc-root"))
    yield v
    for line in v("ps", "-aq").out.split():
        v("rm", "-f", line)
    v.stop_daemon()


def all_applets() -> list[str]:
    out = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True)
    return [a for a in out.stdout.split() if a != "busybox"]


@pytest.fixture(scope="session")
def busybox(vmc: Vmc, tmp_path_factory: pytest.TempPathFactory) -> str:
    """``busybox:latest``: Debian's busybox-static with every applet, loaded from a
    docker-archive with ``vmcontainer load``."""
    archive = tmp_path_factory.mktemp("img") / "busybox.tar"
    write_docker_archive(archive, [busybox_rootfs_tar(all_applets())], ["busybox:latest"],
                         {"Cmd": ["sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:"
                                                 "/usr/sbin:/usr/bin:/sbin:/bin"]})
    r = vmc("load", "-i", str(archive), check=True)
    assert "Loaded image: busybox:latest" in r.out
    return "busybox"


@pytest.fixture(scope="session")
def debian(vmc: Vmc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``debian:bookworm`` built by mmdebstrap (minbase), loaded as a docker-archive."""
    rootfs = debian_rootfs()
    archive = tmp_path_factory.mktemp("img") / "debian.tar"
    write_docker_archive(archive, [rootfs.read_bytes()], ["debian:bookworm"],
                         {"Cmd": ["bash"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:"
                                                   "/usr/sbin:/usr/bin:/sbin:/bin",
                                                   "DEBIAN_IMAGE=yes"]})
    vmc("load", "-i", str(archive), check=True)
    yield "debian:bookworm"
