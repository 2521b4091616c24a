"""Volumes, bind mounts, tmpfs and --read-only through the real ``docker`` CLI
against ``vmcontainer daemon``: every container a real VM (TCG here)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from apihelpers import Daemon, remove_all_containers
from test_docker_cli import docker

pytestmark = pytest.mark.vm


def _ok(r: object) -> str:
    assert r.returncode == 0, r.stderr  # type: ignore[attr-defined]
    return r.stdout  # type: ignore[attr-defined,no-any-return]


def test_volume_verbs(daemon: Daemon, name: str) -> None:
    vol = name + "v"
    assert _ok(docker(daemon, "volume", "create", "--label", "k=v", "-o", "size=64m", vol)) \
        == vol + "\n"
    info = json.loads(_ok(docker(daemon, "volume", "inspect", vol)))[0]
    assert (info["Name"], info["Driver"], info["Labels"], info["Options"], info["Scope"]) == (
        vol, "local", {"k": "v"}, {"size": "64m"}, "local")
    disk = Path(info["Mountpoint"])
    assert disk.name == "disk.ext4" and disk.stat().st_size == 64 << 20
    assert disk.stat().st_blocks * 512 < 8 << 20  # sparse
    assert vol in _ok(docker(daemon, "volume", "ls", "-q", "--filter", "label=k=v")).split()
    assert vol not in _ok(docker(daemon, "volume", "ls", "-q", "--filter", "label=k=w")).split()
    r = docker(daemon, "volume", "create", "a/b")
    assert r.returncode == 1 and 'includes invalid characters for a local volume name' in r.stderr
    r = docker(daemon, "volume", "inspect", name + "nosuch")
    assert r.returncode == 1 and f"get {name}nosuch: no such volume" in r.stderr
    r = docker(daemon, "volume", "create", "-d", "nfs", name + "x")
    assert r.returncode == 1 and 'plugin "nfs" not found' in r.stderr
    assert _ok(docker(daemon, "volume", "rm", vol)) == vol + "\n"
    assert not disk.exists()


def test_named_volume_outlives_its_containers(daemon: Daemon, name: str) -> None:
    vol = name + "v"
    r = docker(daemon, "run", "--name", name, "-v", f"{vol}:/data", "busybox",
               "sh", "-c", "echo kept > /data/f && mount | grep ' /data '")
    assert "ext4" in _ok(r), r.stdout
    mounts = json.loads(_ok(docker(daemon, "inspect", name)))[0]["Mounts"]
    assert [(m["Type"], m["Name"], m["Destination"], m["Driver"], m["RW"], m["Mode"])
            for m in mounts] == [("volume", vol, "/data", "local", True, "z")]
    r = docker(daemon, "volume", "rm", vol)  # in use by a container, even a stopped one
    assert r.returncode == 1 and f"remove {vol}: volume is in use - [" in r.stderr, r.stderr
    _ok(docker(daemon, "rm", "-v", name))  # -v: never a named volume
    assert _ok(docker(daemon, "run", "--rm", "--mount", f"type=volume,src={vol},dst=/d,ro",
                      "busybox", "sh", "-c", "cat /d/f; touch /d/g || echo EROFS")) \
        == "kept\nEROFS\n"
    _ok(docker(daemon, "volume", "rm", vol))


def test_anonymous_volumes_and_rm_v(daemon: Daemon, name: str) -> None:
    _ok(docker(daemon, "run", "--name", name, "-v", "/anon", "busybox", "touch", "/anon/x"))
    mounts = json.loads(_ok(docker(daemon, "inspect", name)))[0]["Mounts"]
    assert len(mounts) == 1 and mounts[0]["Type"] == "volume" and len(mounts[0]["Name"]) == 64
    anon = mounts[0]["Name"]
    assert anon in _ok(docker(daemon, "volume", "ls", "-q"))
    _ok(docker(daemon, "start", "-a", name))  # the same volume again after a stop
    _ok(docker(daemon, "rm", "-v", name))
    assert anon not in _ok(docker(daemon, "volume", "ls", "-q"))


def test_bind_mounts_read_only_and_read_write(daemon: Daemon, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "hello.txt").write_text("from the host\n")
    r = docker(daemon, "run", "--rm", "-v", f"{src}:/src:ro", "busybox", "sh", "-c",
               "cat /src/hello.txt; echo x > /src/new 2>&1 || true; "
               "touch /src/new 2>&1 | grep -o 'Read-only file system'")
    assert _ok(r) == "from the host\nRead-only file system\n", r.stdout
    assert not (src / "new").exists()
    src.chmod(0o777)  # as under Docker, a uid other than root needs the host's permission
    r = docker(daemon, "run", "--rm", "-v", f"{src}:/src", "-u", "1234:5678", "busybox",
               "sh", "-c", "echo written inside > /src/out.txt")
    _ok(r)
    out = src / "out.txt"
    assert out.read_text() == "written inside\n"
    assert (out.stat().st_uid, out.stat().st_gid) == (1234, 5678)  # passthrough
    created = tmp_path / "made" / "by-v"
    _ok(docker(daemon, "run", "--rm", "-v", f"{created}:/m", "busybox", "true"))
    assert created.is_dir()  # -v creates a missing source, as Docker does
    r = docker(daemon, "run", "--rm", "--mount", f"type=bind,src={tmp_path}/nope,dst=/x",
               "busybox", "true")
    assert r.returncode == 125 and ('invalid mount config for type "bind": bind source path '
                                    f"does not exist: {tmp_path}/nope") in r.stderr, r.stderr


def test_host_changes_are_seen_by_a_running_container(daemon: Daemon, name: str,
                                                      tmp_path: Path) -> None:
    _ok(docker(daemon, "run", "-d", "--name", name, "--mount",
               f"type=bind,source={tmp_path},target=/h", "busybox", "sleep", "300"))
    try:
        (tmp_path / "later.txt").write_text("changed on the host\n")
        assert _ok(docker(daemon, "exec", name, "cat", "/h/later.txt")) == \
            "changed on the host\n"
        mounts = json.loads(_ok(docker(daemon, "inspect", name)))[0]["Mounts"]
        assert mounts == [{"Type": "bind", "Source": str(tmp_path), "Destination": "/h",
                           "Mode": "", "RW": True, "Propagation": "rprivate"}]
    finally:
        docker(daemon, "rm", "-f", name)


def test_tmpfs_and_read_only_rootfs(daemon: Daemon, name: str) -> None:
    r = docker(daemon, "run", "--rm", "--tmpfs", "/run:size=16m", "--mount",
               "type=tmpfs,dst=/t2,tmpfs-size=1048576,tmpfs-mode=1770", "busybox", "sh", "-c",
               "df -k /run | tail -1 | awk '{print $2}'; grep ' /run ' /proc/mounts; "
               "stat -c %a /t2")
    lines = _ok(r).splitlines()
    assert lines[0] == str(16 * 1024), r.stdout
    assert lines[1].startswith("tmpfs /run tmpfs rw,nosuid,nodev,noexec"), r.stdout
    assert lines[2] == "1770"
    r = docker(daemon, "run", "--rm", "--read-only", "--tmpfs", "/tmp", "busybox", "sh", "-c",
               "touch /x 2>&1 | grep -o 'Read-only file system'; touch /tmp/ok && echo tmp; "
               "touch /dev/shm/ok && echo shm")
    assert _ok(r) == "Read-only file system\ntmp\nshm\n", r.stdout
    r = docker(daemon, "run", "--rm", "--read-only", "-v", f"{name}v:/new/dir", "busybox",
               "sh", "-c", "touch /new/dir/x && echo vol-writable; touch /new/y 2>&1 | "
               "grep -o 'Read-only file system'")  # the mount point made before ro
    assert _ok(r) == "vol-writable\nRead-only file system\n", r.stdout
    _ok(docker(daemon, "volume", "rm", name + "v"))
    r = docker(daemon, "run", "--rm", "--tmpfs", "/x:bogus", "busybox", "true")
    assert r.returncode == 125 and "invalid tmpfs option" in r.stderr


def test_volume_is_filled_from_the_image(daemon: Daemon, name: str) -> None:
    vol = name + "v"
    r = docker(daemon, "run", "--rm", "-v", f"{vol}:/etc", "busybox", "sh", "-c",
               "ls /etc; stat -c %a /etc")
    listing = _ok(r).split()
    assert "passwd" in listing and "group" in listing, r.stdout
    r = docker(daemon, "run", "--rm", "--mount", f"type=volume,src={name}n,dst=/etc,"
               "volume-nocopy", "busybox", "ls", "-A", "/etc")
    assert set(_ok(r).split()) <= {"hostname", "hosts", "resolv.conf"}, r.stdout
    for v in (vol, name + "n"):
        _ok(docker(daemon, "volume", "rm", v))


def test_volume_prune(daemon: Daemon, name: str) -> None:
    _ok(docker(daemon, "volume", "create", name + "keep"))
    _ok(docker(daemon, "create", "--name", name, "-v", "/anon", "busybox"))
    anon = json.loads(_ok(docker(daemon, "inspect", name)))[0]["Mounts"][0]["Name"]
    _ok(docker(daemon, "rm", name))  # without -v the anonymous volume stays
    out = _ok(docker(daemon, "volume", "prune", "-f"))
    assert anon in out and name + "keep" not in out  # API >= 1.42: anonymous only
    out = _ok(docker(daemon, "volume", "prune", "-af"))
    assert name + "keep" in out
    assert os.path.isdir(daemon.root / "volumes")


def test_mounts_survive_daemon_restart_and_stop_start(tmp_path: Path,
                                                      busybox_archive: Path) -> None:
    import signal
    d = Daemon(tmp_path / "root", tmp_path / "d.sock")
    d.start()
    try:
        _ok(docker(d, "load", "-i", str(busybox_archive)))
        _ok(docker(d, "run", "-d", "--name", "c1", "-v", "keep1:/data", "-v",
                   f"{tmp_path}:/h", "busybox", "sh", "-c",
                   "[ -e /data/f ] || echo before > /data/f; echo bind > /h/b; sleep 300"))
        d.stop(signal.SIGKILL)
        d.start()  # adopts c1, its disks and shares as they were
        assert _ok(docker(d, "exec", "c1", "cat", "/data/f", "/h/b")) == "before\nbind\n"
        _ok(docker(d, "exec", "c1", "sh", "-c", "echo after >> /data/f"))
        r = docker(d, "run", "--rm", "-v", "keep1:/d", "busybox", "true")
        assert r.returncode == 125 and "volume keep1 is in use by running container" \
            in r.stderr, r.stderr
        _ok(docker(d, "stop", "-t", "0", "c1"))
        _ok(docker(d, "start", "c1"))
        assert _ok(docker(d, "exec", "c1", "cat", "/data/f")) == "before\nafter\n"
        _ok(docker(d, "rm", "-f", "c1"))
        assert "keep1" in _ok(docker(d, "volume", "ls", "-q"))
    finally:
        remove_all_containers(d)
        d.stop()


def test_volumes_from(daemon: Daemon, name: str, tmp_path: Path) -> None:
    _ok(docker(daemon, "run", "--name", name, "-v", "/anon", "-v", f"{tmp_path}:/h",
               "busybox", "sh", "-c", "echo shared > /anon/f"))
    r = docker(daemon, "run", "--rm", "--volumes-from", f"{name}:ro", "busybox", "sh", "-c",
               "cat /anon/f; ls -d /h; touch /anon/g 2>&1 | grep -o 'Read-only file system'")
    assert _ok(r) == "shared\n/h\nRead-only file system\n"
    r = daemon.post_json("/containers/create", {"Image": "busybox", "HostConfig": {
        "VolumesFrom": [name + "nosuch"]}})
    assert (r.status, r.message) == (404, f"No such container: {name}nosuch")
    _ok(docker(daemon, "rm", "-v", name))


def test_volume_subpath_and_one_disk_per_volume(daemon: Daemon, name: str) -> None:
    vol = name + "v"
    _ok(docker(daemon, "run", "--rm", "-v", f"{vol}:/v", "busybox", "sh", "-c",
               "mkdir -p /v/sub && echo in-sub > /v/sub/f && ln -s / /v/up"))
    r = docker(daemon, "run", "--rm", "-v", f"{vol}:/all", "--mount",
               f"type=volume,src={vol},dst=/s,volume-subpath=sub,ro", "busybox", "sh", "-c",
               "cat /s/f /all/sub/f; touch /s/x 2>&1 | grep -o 'Read-only file system'")
    assert _ok(r) == "in-sub\nin-sub\nRead-only file system\n", r.stderr
    r = docker(daemon, "run", "--rm", "--mount",
               f"type=volume,src={vol},dst=/s,volume-subpath=up/etc", "busybox", "ls", "/s")
    assert r.returncode == 125 and "cannot access path" in r.stderr, (r.stdout, r.stderr)
    _ok(docker(daemon, "volume", "rm", vol))
