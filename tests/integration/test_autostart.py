"""The CLI starts a daemon on first use, exactly one per data root, and a second
daemon on a root that has one is refused."""

from __future__ import annotations

import fcntl
import os
import stat
import subprocess
import sys
from pathlib import Path

from conftest import Vmc


def test_first_use_starts_exactly_one_daemon(tmp_path: Path, boot_assets: object) -> None:
    v = Vmc(tmp_path / "root")
    try:
        procs = [subprocess.Popen([sys.executable, "-m", "vmcontainer", "ps", "-a"],
                                  env=v.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(3)]
        for p in procs:
            out, err = p.communicate(timeout=180)
            assert p.returncode == 0, err
            assert out.split(b"\n")[0].split()[:2] == [b"CONTAINER", b"ID"]
        pid = v.daemon_pid()
        assert pid is not None
        daemons = subprocess.run(["pgrep", "-f", f"vmcontainer daemon -H unix://{v.sock}"],
                                 capture_output=True, text=True).stdout.split()
        assert daemons == [str(pid)]
        assert stat.S_IMODE(v.sock.stat().st_mode) == 0o660
        assert "API listening on" in (v.root / "daemon.log").read_text()

        second = subprocess.run(
            [sys.executable, "-m", "vmcontainer", "daemon", "-H",
             f"unix://{tmp_path / 'other.sock'}"], env=v.env, capture_output=True,
            text=True, timeout=60)
        assert second.returncode == 1
        assert f"pid file found, ensure vmcontainer is not running or delete " \
               f"{v.root / 'vmcontainer.pid'}" in second.stderr
        assert v.daemon_pid() == pid and not (tmp_path / "other.sock").exists()
    finally:
        v.stop_daemon()
    assert not v.sock.exists() and not (v.root / "vmcontainer.pid").exists()


def test_a_daemon_that_cannot_start_says_why(tmp_path: Path, boot_assets: object) -> None:
    """The started daemon exits at once (here: its pid file is held by another
    process): the command fails with the daemon's own message instead of waiting,
    and no daemon is left behind."""
    v = Vmc(tmp_path / "root")
    v.root.mkdir()
    fd = os.open(v.root / "vmcontainer.pid", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, b"4242\n")
    try:
        r = subprocess.run([sys.executable, "-m", "vmcontainer", "ps"], env=v.env,
                           capture_output=True, text=True, timeout=120)
    finally:
        os.close(fd)
    assert r.returncode == 1
    assert ("vmcontainer: the vmcontainer daemon did not start: pid file found, ensure "
            "vmcontainer is not running") in r.stderr, r.stderr
    assert "(held by process 4242)" in r.stderr
    assert "Traceback" not in r.stderr
    assert not v.sock.exists()


def test_unusable_data_root_is_one_line(tmp_path: Path, boot_assets: object) -> None:
    (tmp_path / "file").write_text("x")
    v = Vmc(tmp_path / "file" / "root")
    r = subprocess.run([sys.executable, "-m", "vmcontainer", "ps"], env=v.env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert "cannot start the vmcontainer daemon:" in r.stderr and "Not a directory" in r.stderr
    assert "Traceback" not in r.stderr


def test_daemon_killed_under_a_foreground_run(tmp_path: Path, boot_assets: object) -> None:
    """The docker CLI's one line and 125; the container survives in its VM and the
    next command's daemon adopts it."""
    from imagebuild import busybox_rootfs_tar

    v = Vmc(tmp_path / "root")
    tarball = tmp_path / "rootfs.tar"
    tarball.write_bytes(busybox_rootfs_tar())
    try:
        v("import", str(tarball), "busybox", check=True)
        p = subprocess.Popen([sys.executable, "-m", "vmcontainer", "run", "--name", "fg",
                              "busybox", "sh", "-c", "echo up; sleep 60"], env=v.env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert p.stdout is not None and p.stdout.readline() == b"up\n"
        pid = v.daemon_pid()
        assert pid is not None
        os.kill(pid, 9)
        _out, err = p.communicate(timeout=60)
        assert p.returncode == 125, err
        assert b"error waiting for container: unexpected EOF" in err
        assert b"Traceback" not in err
        assert " Up " in next(ln for ln in v("ps").out.splitlines() if "fg" in ln)
        v("rm", "-f", "fg", check=True)
    finally:
        v.stop_daemon()
