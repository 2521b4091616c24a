"""Registry settings of the daemon, against real registries: ``registry-mirrors``
(Docker Hub names served by a local mirror), certificate checks for a registry
outside loopback (a test CA in the certs dir), and host names resolved to decide
what is insecure, as Docker does. The non-loopback cases run the registry and the
daemon inside a network namespace made here, on a TEST-NET-1 address (RFC 5737)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from apihelpers import Daemon
from imagebuild import Entry, busybox_rootfs_tar, layer_tar, write_docker_archive
from localregistry import LocalRegistry

CONFIG: dict[str, object] = {"Cmd": ["sh"], "Env": ["PATH=/bin"]}
TEST_NET = "192.0.2.10"


def docker(d: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], env=d.docker_env, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A two-layer docker-archive and its image ID."""
    path = tmp_path_factory.mktemp("regcfg") / "two.tar"
    layers = [busybox_rootfs_tar(), layer_tar([Entry("hello", data=b"hi\n")])]
    return path, write_docker_archive(path, layers, ["two:latest"], CONFIG)


@pytest.fixture
def netns() -> Iterator[str]:
    """A network namespace with loopback up and TEST_NET on it; its /etc/hosts
    (``ip netns exec`` binds /etc/netns/NAME/hosts) names ``registry.test`` and
    ``localreg.test``."""
    name = "vmc-reg-" + uuid.uuid4().hex[:6]
    etc = Path("/etc/netns") / name
    etc.mkdir(parents=True)
    (etc / "hosts").write_text(f"127.0.0.1 localhost localreg.test\n{TEST_NET} registry.test\n")
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for cmd in (["ip", "link", "set", "lo", "up"],
                    ["ip", "addr", "add", f"{TEST_NET}/32", "dev", "lo"]):
            subprocess.run(["ip", "netns", "exec", name, *cmd], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)
        shutil.rmtree(etc, ignore_errors=True)


def test_mirror_serves_docker_hub_names(tmp_path: Path, image: tuple[Path, str]) -> None:
    mirror = LocalRegistry(tmp_path / "mirror").start()
    try:
        mirror.seed(image[0], "library/two:latest")
        url = f"http://{mirror.host}"
        d = Daemon(tmp_path / "root", tmp_path / "d.sock", extra=("--registry-mirror", url))
        d.start()
        try:
            r = docker(d, "pull", "two")
            assert r.returncode == 0, r.stderr
            assert "Status: Downloaded newer image for two:latest" in r.stdout
            assert "docker.io/library/two:latest" in r.stdout
            r = docker(d, "inspect", "-f", "{{.Id}} {{.RepoTags}}", "two")
            assert r.stdout.split() == [image[1], "[two:latest]"], r.stdout
            info = d.request("GET", "/info").json()["RegistryConfig"]
            assert info["Mirrors"] == [url + "/"]
            assert info["IndexConfigs"]["docker.io"]["Mirrors"] == [url + "/"]
            assert info["InsecureRegistryCIDRs"] == ["127.0.0.0/8"]
            r = docker(d, "info")
            assert "Registry Mirrors:" in r.stdout and url + "/" in r.stdout, r.stdout
        finally:
            assert d.stop() == 0, d.log_text()
    finally:
        mirror.stop()


def test_bad_mirror_stops_the_daemon(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "vmcontainer", "daemon", "-H",
                        f"unix://{tmp_path}/d.sock", "--registry-mirror", "ftp://x"],
                       capture_output=True, text=True, timeout=60,
                       env={"VMCONTAINER_ROOT": str(tmp_path / "root"), "PATH": "/usr/bin:/bin"})
    assert r.returncode != 0
    assert 'invalid mirror: unsupported scheme "ftp" in "ftp://x"' in r.stderr, r.stderr
    assert not (tmp_path / "d.sock").exists()


def test_tls_checked_outside_loopback_with_the_certs_dir_ca(
        tmp_path: Path, image: tuple[Path, str], netns: str) -> None:
    """A registry on a non-loopback address is verified: unknown CA → Docker's x509
    error; its CA in ``<certs dir>/<host:port>/ca.crt`` → the pull works, by address
    and by a name in the certificate."""
    reg = LocalRegistry(tmp_path / "reg", tls=True, netns=netns, address=TEST_NET,
                        cert_names=(f"IP:{TEST_NET}", "DNS:registry.test")).start()
    certs = tmp_path / "certs"
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"registry-certs-dir": str(certs)}))
    d = Daemon(tmp_path / "root", tmp_path / "d.sock", extra=("--config-file", str(config)),
               prefix=("ip", "netns", "exec", netns))
    try:
        reg.seed(image[0], "two:latest")
        d.start()
        r = docker(d, "pull", f"{reg.host}/two")
        assert r.returncode == 1
        assert "x509: certificate signed by unknown authority" in r.stderr, r.stderr
        assert docker(d, "images", "-q").stdout == ""
        for host in (reg.host, f"registry.test:{reg.port}"):
            (certs / host).mkdir(parents=True)
            shutil.copy(reg.base / "ca.crt", certs / host / "ca.crt")
            r = docker(d, "pull", f"{host}/two")
            assert r.returncode == 0, r.stderr
            r = docker(d, "inspect", "-f", "{{.Id}}", f"{host}/two")
            assert r.stdout.strip() == image[1]
    finally:
        if d.proc is not None:
            d.stop()
        reg.stop()


def test_a_name_that_resolves_to_loopback_is_insecure(
        tmp_path: Path, image: tuple[Path, str], netns: str) -> None:
    """As Docker's ``isSecureIndex``: ``localreg.test`` resolves to 127.0.0.1, so its
    plain-HTTP registry is reached without TLS; ``registry.test`` (TEST-NET) is not."""
    plain = LocalRegistry(tmp_path / "plain", netns=netns).start()
    far = LocalRegistry(tmp_path / "far", netns=netns, address=TEST_NET).start()
    d = Daemon(tmp_path / "root", tmp_path / "d.sock", prefix=("ip", "netns", "exec", netns))
    try:
        plain.seed(image[0], "two:latest")
        far.seed(image[0], "two:latest")
        d.start()
        r = docker(d, "pull", f"localreg.test:{plain.port}/two")
        assert r.returncode == 0, r.stderr
        r = docker(d, "pull", f"registry.test:{far.port}/two")
        assert r.returncode == 1
        assert "server gave HTTP response to HTTPS client" in r.stderr, r.stderr
    finally:
        if d.proc is not None:
            d.stop()
        plain.stop()
        far.stop()
