"""Fixtures for the API tests: one real ``vmcontainer daemon`` per session on a unix
socket in a temporary directory, with a fresh data root (boot assets from
``VMCONTAINER_BOOT_DIR``, as tests/conftest.py sets it) and Debian's busybox-static
loaded as ``busybox:latest`` through ``POST /images/load``."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from apihelpers import Daemon, remove_all_containers
from imagebuild import busybox_rootfs_tar, write_docker_archive

BUSYBOX = Path("/bin/busybox")
BUSYBOX_CONFIG: dict[str, object] = {
    "Cmd": ["sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}


def all_applets() -> list[str]:
    out = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True)
    return [a for a in out.stdout.split() if a != "busybox"]


@pytest.fixture(scope="session")
def busybox_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A docker-archive of ``busybox:latest`` with every applet."""
    archive = tmp_path_factory.mktemp("api-img") / "busybox.tar"
    write_docker_archive(archive, [busybox_rootfs_tar(all_applets())], ["busybox:latest"],
                         BUSYBOX_CONFIG)
    return archive


@pytest.fixture(scope="session")
def daemon(tmp_path_factory: pytest.TempPathFactory, busybox_archive: Path,
           boot_assets: object) -> Iterator[Daemon]:
    base = tmp_path_factory.mktemp("api")
    d = Daemon(base / "root", base / "d.sock")
    d.start()
    r = d.request("POST", "/images/load?quiet=1", busybox_archive.read_bytes(),
                  {"Content-Type": "application/x-tar"}, chunked=True)
    assert r.status == 200, r.body
    assert b'{"stream":"Loaded image: busybox:latest\\n"}' in r.body
    yield d
    try:
        remove_all_containers(d)
    finally:
        code = d.stop()
        print(d.log_text())
        assert code == 0, d.log_text()


@pytest.fixture
def name() -> str:
    """A container name no other test uses."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture(autouse=True, scope="session")
def _boot_assets_before_any_daemon(boot_assets: object) -> None:
    """Every daemon these tests start boots VMs: build the guest kernel first (the
    first build on a machine takes minutes), outside any daemon's start timeout."""
