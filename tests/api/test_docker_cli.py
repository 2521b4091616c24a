"""The real ``docker`` CLI (v28) against ``vmcontainer daemon``: each container is
a real VM (QEMU, TCG here)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from apihelpers import Daemon, docker

pytestmark = pytest.mark.vm


def test_run_echo(daemon: Daemon) -> None:
    r = docker(daemon, "run", "--rm", "busybox", "echo", "hi")
    assert (r.returncode, r.stdout) == (0, "hi\n"), r.stderr
    assert docker(daemon, "ps", "-aq").stdout == ""  # --rm removed it


def test_run_exit_code_and_streams(daemon: Daemon) -> None:
    r = docker(daemon, "run", "--rm", "busybox", "sh", "-c", "exit 7")
    assert r.returncode == 7, r.stderr
    r = docker(daemon, "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2")
    assert (r.returncode, r.stdout, r.stderr) == (0, "out\n", "err\n")


def test_run_command_not_found_is_127(daemon: Daemon) -> None:
    r = docker(daemon, "run", "--rm", "busybox", "nosuchcmd")
    assert r.returncode == 127, r.stderr
    assert 'exec: "nosuchcmd": executable file not found in $PATH' in r.stderr


def test_run_missing_image(daemon: Daemon) -> None:
    r = docker(daemon, "run", "--rm", "127.0.0.1:1/nosuchimage")  # not local; no registry
    assert r.returncode == 125
    assert "Unable to find image '127.0.0.1:1/nosuchimage:latest' locally" in r.stderr
    assert "connection refused" in r.stderr


def test_detached_web_container(daemon: Daemon) -> None:
    r = docker(daemon, "run", "-d", "--name", "web", "busybox", "sh", "-c",
               "while true; do date; sleep 1; done")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    assert len(cid) == 64
    try:
        ps = docker(daemon, "ps")
        assert cid[:12] in ps.stdout and " web" in ps.stdout and "Up " in ps.stdout
        time.sleep(4)
        lines = docker(daemon, "logs", "web").stdout.splitlines()
        assert len(lines) >= 3, lines
        tail = docker(daemon, "logs", "--tail", "2", "web").stdout.splitlines()
        assert len(tail) == 2
        stamped = docker(daemon, "logs", "--timestamps", "--tail", "1", "web").stdout
        assert stamped[:4].isdigit() and stamped[10] == "T" and "Z " in stamped
        since = docker(daemon, "logs", "--since", "2s", "web").stdout.splitlines()
        assert 0 < len(since) < len(lines) + 2
        follow = subprocess.Popen(["docker", "logs", "-f", "web"], env=daemon.docker_env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2)
        t0 = time.monotonic()
        stop = docker(daemon, "stop", "-t", "2", "web")
        elapsed = time.monotonic() - t0
        assert stop.returncode == 0 and stop.stdout.strip() == "web", stop.stderr
        assert elapsed < 2 + 5, elapsed  # sh as PID 1 ignores SIGTERM: killed after t
        out, _ = follow.communicate(timeout=15)  # logs -f ends when the container stops
        assert follow.returncode == 0 and len(out.splitlines()) >= len(lines)
        state = json.loads(docker(daemon, "inspect", "web").stdout)[0]["State"]
        assert (state["Status"], state["Running"], state["ExitCode"]) == ("exited", False, 137)
    finally:
        r = docker(daemon, "rm", "-f", "web")
    assert r.returncode == 0 and r.stdout.strip() == "web"
    r = docker(daemon, "inspect", "web")
    assert r.returncode == 1 and "No such object: web" in r.stderr


def test_wait_kill_rename(daemon: Daemon, name: str) -> None:
    r = docker(daemon, "run", "-d", "--name", name, "busybox", "sh", "-c", "sleep 1; exit 3")
    assert r.returncode == 0, r.stderr
    assert docker(daemon, "wait", name).stdout.strip() == "3"
    docker(daemon, "rm", name)
    assert docker(daemon, "run", "-d", "--name", name, "busybox", "sleep", "100").returncode == 0
    assert docker(daemon, "kill", "-s", "KILL", name).stdout.strip() == name
    assert docker(daemon, "wait", name).stdout.strip() == "137"
    again = docker(daemon, "kill", name)
    assert again.returncode == 1 and "is not running" in again.stderr
    assert docker(daemon, "rename", name, name + "-new").returncode == 0
    assert json.loads(docker(daemon, "inspect", name + "-new").stdout)[0]["Name"] == \
        f"/{name}-new"
    assert docker(daemon, "inspect", name).returncode == 1
    assert docker(daemon, "rm", name + "-new").returncode == 0


def test_events(daemon: Daemon, name: str) -> None:
    since = str(int(time.time()) - 1)
    assert docker(daemon, "run", "--rm", "--name", name, "busybox", "true").returncode == 0
    until = str(int(time.time()) + 1)
    r = docker(daemon, "events", "--since", since, "--until", until, "--filter",
               f"container={name}", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
               timeout=30)
    assert r.returncode == 0, r.stderr
    actions = [line.split()[1] for line in r.stdout.splitlines()]
    for a in ("create", "start", "die", "destroy"):
        assert a in actions, r.stdout
    assert actions.index("create") < actions.index("start") < actions.index("die") \
        < actions.index("destroy")
    assert all(line.endswith(f" {name}") for line in r.stdout.splitlines())


def test_images_tag_save_load(daemon: Daemon, tmp_path: Path) -> None:
    assert "busybox" in docker(daemon, "images").stdout
    assert docker(daemon, "tag", "busybox", "example.com/a/b:1").returncode == 0
    listed = docker(daemon, "images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert "example.com/a/b:1" in listed
    archive = tmp_path / "saved.tar"
    r = docker(daemon, "save", "-o", str(archive), "example.com/a/b:1")
    assert r.returncode == 0, r.stderr
    r = docker(daemon, "rmi", "example.com/a/b:1")
    assert "Untagged: example.com/a/b:1" in r.stdout, r.stderr
    r = docker(daemon, "load", "-i", str(archive))
    assert "Loaded image: example.com/a/b:1" in r.stdout, r.stderr
    image = json.loads(docker(daemon, "image", "inspect", "example.com/a/b:1").stdout)[0]
    busybox = json.loads(docker(daemon, "image", "inspect", "busybox").stdout)[0]
    assert image["Id"] == busybox["Id"]  # skopeo kept the config: same image ID
    assert docker(daemon, "rmi", "example.com/a/b:1").returncode == 0


def test_version_and_info(daemon: Daemon) -> None:
    v = docker(daemon, "version", "--format", "{{.Server.APIVersion}} {{.Server.Os}}")
    assert v.stdout.strip() == "1.47 linux", v.stderr
    i = docker(daemon, "info", "--format", "{{.DefaultRuntime}} {{.Driver}} {{.OSType}}")
    assert i.stdout.strip() == "vmcontainer qcow2 linux", i.stderr


def test_stop_signal_and_timeout(daemon: Daemon, name: str) -> None:
    """--stop-signal reaches the process's handler; --stop-timeout bounds the wait."""
    r = docker(daemon, "run", "-d", "--name", name, "--stop-signal", "USR1",
               "--stop-timeout", "1", "busybox", "sh", "-c",
               "trap 'exit 5' USR1; echo ready; while true; do sleep 0.1; done")
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 60
    while docker(daemon, "logs", name).stdout != "ready\n":  # the trap is set
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert docker(daemon, "stop", name).returncode == 0
    state = json.loads(docker(daemon, "inspect", name).stdout)[0]["State"]
    assert state["ExitCode"] == 5, state
    docker(daemon, "rm", name)


def test_import_with_changes(daemon: Daemon, tmp_path: Path) -> None:
    """``docker import --change``: Dockerfile instructions set the image's config."""
    from imagebuild import busybox_rootfs_tar

    tarball = tmp_path / "rootfs.tar"
    tarball.write_bytes(busybox_rootfs_tar(["sh", "echo"]))
    r = docker(daemon, "import", "--change", 'CMD ["echo", "hi"]', "--change", "ENV A=1 B=2",
               "--change", "WORKDIR /tmp", "--change", "EXPOSE 80", str(tarball), "changed:1")
    assert r.returncode == 0, r.stderr
    config = json.loads(docker(daemon, "image", "inspect", "changed:1").stdout)[0]["Config"]
    assert config["Cmd"] == ["echo", "hi"] and config["WorkingDir"] == "/tmp"
    assert {"A=1", "B=2"} <= set(config["Env"]) and config["ExposedPorts"] == {"80/tcp": {}}
    r = docker(daemon, "import", "--change", "FROM x", str(tarball), "changed:2")
    assert r.returncode == 1 and "FROM is not a valid change command" in r.stderr, r.stderr
    assert docker(daemon, "image", "inspect", "changed:2").returncode == 1
