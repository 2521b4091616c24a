"""docker cp (both ways, running and stopped containers, paths that try to leave
the container), docker diff, export and commit, with the real ``docker`` CLI and
docker-py against ``vmcontainer daemon``; every container a real VM (TCG)."""

from __future__ import annotations

import io
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker as dockerpy
import pytest
from apihelpers import Daemon

pytestmark = pytest.mark.vm


def docker(d: Daemon, *args: str, timeout: float = 120,
           cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], env=d.docker_env, capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


@pytest.fixture
def running(daemon: Daemon, name: str) -> Iterator[str]:
    r = docker(daemon, "run", "-d", "--name", name, "busybox", "sh", "-c",
               "mkdir -p /tmp; ln -s / /tmp/rootlink; ln -s ../../../../.. /tmp/up; "
               "echo inside > /marker; sleep 600")
    assert r.returncode == 0, r.stderr
    yield name
    docker(daemon, "rm", "-f", name)


def _wait_file(d: Daemon, name: str, path: str) -> None:
    for _ in range(100):
        if docker(d, "exec", name, "test", "-e", path).returncode == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"{path} never appeared in {name}")


def test_cp_running_both_ways(daemon: Daemon, running: str, tmp_path: Path) -> None:
    (tmp_path / "host.txt").write_text("from the host\n")
    t0 = time.monotonic()
    r = docker(daemon, "cp", str(tmp_path / "host.txt"), f"{running}:/tmp/")
    into = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    r = docker(daemon, "exec", running, "cat", "/tmp/host.txt")
    assert (r.returncode, r.stdout) == (0, "from the host\n"), r.stderr
    t0 = time.monotonic()
    r = docker(daemon, "cp", f"{running}:/etc/hostname", ".", cwd=tmp_path)
    out = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    cid = docker(daemon, "inspect", "-f", "{{.Id}}", running).stdout.strip()
    assert (tmp_path / "hostname").read_text() == cid[:12] + "\n"
    # directories: renamed to a new destination, contents only with "/."
    assert docker(daemon, "cp", f"{running}:/etc", str(tmp_path / "etcout")).returncode == 0
    assert (tmp_path / "etcout" / "passwd").is_file()
    (tmp_path / "dot").mkdir()
    assert docker(daemon, "cp", f"{running}:/etc/.", str(tmp_path / "dot")).returncode == 0
    assert (tmp_path / "dot" / "passwd").is_file() and not (tmp_path / "dot" / "etc").exists()
    print(f"docker cp running: into {into * 1000:.0f} ms, out {out * 1000:.0f} ms")


def test_cp_missing_and_not_a_directory(daemon: Daemon, running: str, tmp_path: Path) -> None:
    _wait_file(daemon, running, "/marker")
    r = docker(daemon, "cp", f"{running}:/nonexistent", str(tmp_path))
    assert r.returncode == 1
    assert "Could not find the file /nonexistent in container" in r.stderr
    (tmp_path / "f").write_text("x")
    client = dockerpy.APIClient(base_url=f"unix://{daemon.sock}", timeout=120)
    with pytest.raises(dockerpy.errors.APIError) as err:
        client.put_archive(running, "/marker", _tar({"a": b"x"}))
    assert err.value.status_code == 500  # as Docker's
    assert "extraction point is not a directory" in str(err.value)


def test_cp_paths_stay_inside(daemon: Daemon, running: str, tmp_path: Path) -> None:
    _wait_file(daemon, running, "/marker")
    r = docker(daemon, "cp", f"{running}:/../../../../marker", str(tmp_path / "a"))
    assert (r.returncode, (tmp_path / "a").read_text()) == (0, "inside\n"), r.stderr
    r = docker(daemon, "cp", f"{running}:/tmp/up/marker", str(tmp_path / "b"))
    assert (r.returncode, (tmp_path / "b").read_text()) == (0, "inside\n"), r.stderr
    r = docker(daemon, "cp", f"{running}:/tmp/rootlink/marker", str(tmp_path / "c"))
    assert (r.returncode, (tmp_path / "c").read_text()) == (0, "inside\n"), r.stderr
    # into a symlink to "/": the container's /, never the host's
    (tmp_path / "vmc-cp-probe").write_text("probe")
    r = docker(daemon, "cp", str(tmp_path / "vmc-cp-probe"), f"{running}:/tmp/rootlink/")
    assert r.returncode == 0, r.stderr
    assert not Path("/vmc-cp-probe").exists()
    assert docker(daemon, "exec", running, "cat", "/vmc-cp-probe").stdout == "probe"


def _tar(files: dict[str, bytes], links: dict[str, str] | None = None,
         hardlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for target, link in (links or {}).items():
            info = tarfile.TarInfo(target)
            info.type, info.linkname = tarfile.SYMTYPE, link
            t.addfile(info)
        for target, link in (hardlinks or {}).items():
            info = tarfile.TarInfo(target)
            info.type, info.linkname = tarfile.LNKTYPE, link
            t.addfile(info)
        for n, data in files.items():
            info = tarfile.TarInfo(n)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_put_hostile_archives(daemon: Daemon, running: str) -> None:
    _wait_file(daemon, running, "/tmp/rootlink")
    client = dockerpy.APIClient(base_url=f"unix://{daemon.sock}", timeout=120)
    for bad in (_tar({"../../../../vmc-evil": b"x"}), _tar({"a/../../vmc-evil": b"x"}),
                _tar({}, links={"esc": "../../../../../tmp"}),
                _tar({}, hardlinks={"h": "../../../../etc/passwd"})):
        with pytest.raises(dockerpy.errors.APIError) as err:
            client.put_archive(running, "/tmp", bad)
        assert err.value.status_code == 400, err.value
    # an absolute name lands below the destination; a symlink to "/" is followed
    # inside the container's root
    assert client.put_archive(running, "/tmp", _tar(
        {"/abs.txt": b"abs", "s/vmc-through-link": b"t"}, links={"s": "/"}))
    assert not Path("/vmc-evil").exists() and not Path("/vmc-through-link").exists()
    r = docker(daemon, "exec", running, "cat", "/tmp/abs.txt", "/vmc-through-link")
    assert r.stdout == "abst", r.stderr


def test_cp_stopped_container(daemon: Daemon, name: str, tmp_path: Path) -> None:
    r = docker(daemon, "create", "--name", name, "busybox", "cat", "/tmp/host.txt")
    assert r.returncode == 0, r.stderr
    try:
        (tmp_path / "host.txt").write_text("into a stopped one\n")
        t0 = time.monotonic()
        r = docker(daemon, "cp", str(tmp_path / "host.txt"), f"{name}:/tmp/")
        into = time.monotonic() - t0
        assert r.returncode == 0, r.stderr
        r = docker(daemon, "start", "-a", name)
        assert (r.returncode, r.stdout) == (0, "into a stopped one\n"), r.stderr
        t0 = time.monotonic()
        r = docker(daemon, "cp", f"{name}:/etc/hostname", ".", cwd=tmp_path)
        out = time.monotonic() - t0
        assert r.returncode == 0, r.stderr
        cid = docker(daemon, "inspect", "-f", "{{.Id}}", name).stdout.strip()
        assert (tmp_path / "hostname").read_text() == cid[:12] + "\n"
        r = docker(daemon, "cp", f"{name}:/tmp/host.txt", str(tmp_path / "back.txt"))
        assert (tmp_path / "back.txt").read_text() == "into a stopped one\n", r.stderr
        # a symlink to "/" made by the archive itself stays inside here too
        client = dockerpy.APIClient(base_url=f"unix://{daemon.sock}", timeout=120)
        assert client.put_archive(name, "/tmp", _tar({"s/vmc-stopped-probe": b"p"},
                                                     links={"s": "/"}))
        assert not Path("/vmc-stopped-probe").exists()
        r = docker(daemon, "cp", f"{name}:/vmc-stopped-probe", str(tmp_path / "probe"))
        assert (tmp_path / "probe").read_text() == "p", r.stderr
        print(f"docker cp stopped: into {into * 1000:.0f} ms, out {out * 1000:.0f} ms")
    finally:
        docker(daemon, "rm", "-f", name)


def test_cp_created_container_hostname(daemon: Daemon, name: str, tmp_path: Path) -> None:
    """Never started: as Docker's init layer, /etc/hostname exists (the VM's view
    shows the container's hostname; Docker's shows an empty file)."""
    assert docker(daemon, "create", "--name", name, "busybox").returncode == 0
    try:
        r = docker(daemon, "cp", f"{name}:/etc/hostname", str(tmp_path / "h"))
        assert r.returncode == 0, r.stderr
        r = docker(daemon, "cp", f"{name}:/nonexistent", str(tmp_path / "n"))
        assert "Could not find the file /nonexistent in container" in r.stderr
    finally:
        docker(daemon, "rm", "-f", name)


def test_diff_export_commit(daemon: Daemon, name: str) -> None:
    r = docker(daemon, "run", "--name", name, "busybox", "sh", "-c",
               "echo hi > /hello; mkdir /newdir; echo x > /newdir/f; rm /bin/ls")
    assert r.returncode == 0, r.stderr
    image = "committed" + name
    try:
        lines = docker(daemon, "diff", name).stdout.splitlines()
        assert lines == ["C /bin", "D /bin/ls", "A /hello", "A /newdir", "A /newdir/f"]
        export = subprocess.run(f"docker export {name} | tar t", shell=True,
                                env=daemon.docker_env, capture_output=True, text=True,
                                timeout=120)
        names = export.stdout.splitlines()
        assert "hello" in names and "bin/busybox" in names and "bin/ls" not in names, \
            export.stderr
        r = docker(daemon, "commit", "-c", "ENV COMMITTED=yes", "-c", 'CMD ["cat", "/hello"]',
                   name, image)
        assert r.returncode == 0 and r.stdout.startswith("sha256:"), r.stderr
        r = docker(daemon, "run", "--name", name + "3", image)
        assert (r.returncode, r.stdout) == (0, "hi\n")
        r = docker(daemon, "run", "--name", name + "2", image, "sh", "-c",
                   'echo $COMMITTED; cat /newdir/f; test -e /bin/ls || echo gone')
        assert r.stdout == "yes\nx\ngone\n", r.stderr
    finally:
        docker(daemon, "rm", "-f", name, name + "2", name + "3")
        docker(daemon, "rmi", image)


def test_cp_large_file_streams_both_ways(daemon: Daemon, running: str, tmp_path: Path) -> None:
    """32 MiB through the agent channel each way, intact (flow control: the guest
    never holds more than its 1 MiB stdin bound, the host a few frames)."""
    import hashlib
    import os

    data = os.urandom(32 << 20)
    (tmp_path / "big").write_bytes(data)
    t0 = time.monotonic()
    r = docker(daemon, "cp", str(tmp_path / "big"), f"{running}:/tmp/big")
    into = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    r = docker(daemon, "exec", running, "sha256sum", "/tmp/big")
    assert r.stdout.split()[0] == hashlib.sha256(data).hexdigest()
    t0 = time.monotonic()
    r = docker(daemon, "cp", f"{running}:/tmp/big", str(tmp_path / "back"))
    out = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "back").read_bytes() == data
    print(f"docker cp 32 MiB running: into {32 / into:.1f} MiB/s, out {32 / out:.1f} MiB/s")


def test_cp_archive_owner_and_no_overwrite(daemon: Daemon, name: str, tmp_path: Path) -> None:
    """``docker cp -a`` owns the files by the container's user (Docker's
    copyUIDGID), root otherwise; the CLI's noOverwriteDirNonDir refuses to put a
    file over a directory."""
    r = docker(daemon, "run", "-d", "--user", "65534", "--name", name, "busybox", "sh", "-c",
               "mkdir -p /tmp/d; sleep 600")
    assert r.returncode == 0, r.stderr
    try:
        _wait_file(daemon, name, "/tmp/d")
        (tmp_path / "owned").write_text("x")
        (tmp_path / "rooted").write_text("y")
        assert docker(daemon, "cp", "-a", str(tmp_path / "owned"), f"{name}:/tmp/").returncode == 0
        assert docker(daemon, "cp", str(tmp_path / "rooted"), f"{name}:/tmp/").returncode == 0
        r = docker(daemon, "exec", name, "stat", "-c", "%u %n", "/tmp/owned", "/tmp/rooted")
        assert r.stdout == "65534 /tmp/owned\n0 /tmp/rooted\n", r.stderr
        (tmp_path / "d").write_text("a file where a directory is")
        r = docker(daemon, "cp", str(tmp_path / "d"), f"{name}:/tmp/")
        assert r.returncode == 1
        assert 'cannot overwrite directory "/tmp/d" with non-directory' in r.stderr
    finally:
        docker(daemon, "rm", "-f", name)


def test_abandoned_get_kills_its_worker(daemon: Daemon, running: str) -> None:
    """A client that goes away mid-archive: its guest worker is killed, not left
    streaming to nobody (``docker top`` lists every guest process but the agent)."""
    # sparse 64 GiB: its worker would stream for many minutes (and needs PAX's size)
    assert docker(daemon, "exec", running, "truncate", "-s", "64G", "/tmp/zero").returncode == 0
    client = dockerpy.APIClient(base_url=f"unix://{daemon.sock}", timeout=120)

    def workers() -> list[list[str]]:
        procs = client.top(running)["Processes"]
        return [p for p in procs if "sleep" not in p[-1] and "sh -c" not in p[-1]]

    before = workers()
    stream, stat = client.get_archive(running, "/tmp/zero", chunk_size=65536)
    assert stat["size"] == 64 << 30
    next(iter(stream))
    assert len(workers()) == len(before) + 1  # the worker, blocked on a full channel
    stream.close()  # type: ignore[attr-defined]
    client.close()
    client = dockerpy.APIClient(base_url=f"unix://{daemon.sock}", timeout=120)
    for _ in range(100):
        if len(workers()) == len(before):
            return
        time.sleep(0.1)
    raise AssertionError(f"archive worker still there: {workers()}")
