"""Pause/unpause and restart policies through the real ``docker`` CLI (v28) against
``vmcontainer daemon``: every container a real VM. Expected texts and event
sequences are those of Docker Engine 20.10 (checked on the reference engine)."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from apihelpers import Daemon, docker, remove_all_containers

pytestmark = pytest.mark.vm

LOOP = "while true; do date +%s.%N; sleep 0.1; done"


def state(d: Daemon, ref: str) -> dict[str, object]:
    r = docker(d, "inspect", ref)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)[0]
    return {**doc["State"], "RestartCount": doc["RestartCount"]}


def log_lines(d: Daemon, ref: str) -> int:
    return len(docker(d, "logs", ref).stdout.splitlines())


def ps_status(d: Daemon, name: str) -> str:
    return docker(d, "ps", "-a", "--filter", f"name={name}",
                  "--format", "{{.Status}}|{{.State}}").stdout.strip()


def actions(d: Daemon, cid: str, since: float) -> list[str]:
    r = docker(d, "events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}",
               "--filter", f"container={cid}", "--format", "{{.Action}}")
    return r.stdout.split()


def until(check: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_pause_freezes_and_unpause_resumes(daemon: Daemon, name: str) -> None:
    t0 = time.time()
    r = docker(daemon, "run", "-d", "--name", name, "busybox", "sh", "-c", LOOP)
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    until(lambda: log_lines(daemon, name) >= 3, what="output")
    assert docker(daemon, "pause", name).returncode == 0
    st = state(daemon, name)
    assert (st["Status"], st["Paused"], st["Running"]) == ("paused", True, True)
    assert ps_status(daemon, name).endswith("(Paused)|paused"), ps_status(daemon, name)
    frozen = log_lines(daemon, name)
    time.sleep(1.5)
    assert log_lines(daemon, name) == frozen  # no progress while paused
    r = docker(daemon, "pause", name)
    assert r.returncode == 1
    assert f"Container {cid} is already paused" in r.stderr
    assert docker(daemon, "unpause", name).returncode == 0
    until(lambda: log_lines(daemon, name) >= frozen + 3, 30, "output after unpause")
    assert state(daemon, name)["Status"] == "running"
    r = docker(daemon, "unpause", name)
    assert r.returncode == 1 and f"Container {cid} is not paused" in r.stderr
    assert actions(daemon, cid, t0) == ["create", "start", "pause", "unpause"]
    assert docker(daemon, "rm", "-f", name).returncode == 0


def test_stop_kill_and_rm_of_a_paused_container(daemon: Daemon, name: str) -> None:
    t0 = time.time()
    cid = docker(daemon, "run", "-d", "--name", name, "busybox", "sh", "-c", LOOP).stdout.strip()
    assert docker(daemon, "pause", name).returncode == 0
    r = docker(daemon, "start", name)
    assert r.returncode == 1 and "cannot start a paused container, try unpause instead" \
        in r.stderr
    r = docker(daemon, "rm", name)
    assert r.returncode == 1 and "container is paused and must be unpaused first" in r.stderr
    r = docker(daemon, "stop", "-t", "1", name)  # sh as PID 1 ignores SIGTERM: SIGKILL
    assert r.returncode == 0, r.stderr
    st = state(daemon, name)
    assert (st["Status"], st["Paused"], st["ExitCode"]) == ("exited", False, 137)
    assert actions(daemon, cid, t0) == ["create", "start", "pause", "kill", "unpause", "kill",
                                        "die", "stop"]
    assert docker(daemon, "start", name).returncode == 0
    assert docker(daemon, "pause", name).returncode == 0
    assert docker(daemon, "kill", name).returncode == 0
    assert state(daemon, name)["Status"] == "exited"
    assert docker(daemon, "start", name).returncode == 0
    assert docker(daemon, "pause", name).returncode == 0
    assert docker(daemon, "rm", "-f", name).returncode == 0
    assert docker(daemon, "ps", "-aq", "--filter", f"id={cid}").stdout == ""


def test_on_failure_restarts_exactly_n_times(daemon: Daemon, name: str) -> None:
    t0 = time.time()
    r = docker(daemon, "run", "-d", "--restart", "on-failure:3", "--name", name, "busybox",
               "sh", "-c", "echo ran; exit 1")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    seen = set()

    def ended() -> bool:
        st = state(daemon, name)
        seen.add(st["Status"])
        return st["Status"] == "exited" and st["RestartCount"] == 3

    until(ended, what="three restarts")
    assert "restarting" in seen or "running" in seen
    time.sleep(1.5)  # no fourth restart
    st = state(daemon, name)
    assert (st["Status"], st["ExitCode"], st["RestartCount"]) == ("exited", 1, 3)
    assert ps_status(daemon, name).startswith("Exited (1) ")
    assert actions(daemon, cid, t0) == ["create"] + ["start", "die"] * 4
    assert docker(daemon, "logs", name).stdout == "ran\n" * 4
    assert docker(daemon, "rm", name).returncode == 0


def test_always_restarts_until_docker_stop(daemon: Daemon, name: str) -> None:
    r = docker(daemon, "run", "-d", "--restart", "always", "--name", name, "busybox",
               "sh", "-c", "sleep 0.5; exit 3")
    assert r.returncode == 0, r.stderr
    until(lambda: state(daemon, name)["RestartCount"] >= 2, what="restarts")
    r = docker(daemon, "stop", "-t", "1", name)  # running or restarting: both stop it
    assert r.returncode == 0, r.stderr
    stopped = state(daemon, name)
    assert stopped["Status"] == "exited" and stopped["ExitCode"] in (3, 137)
    time.sleep(2)
    assert state(daemon, name) == stopped  # not restarted after docker stop
    assert docker(daemon, "rm", name).returncode == 0


def test_restarting_container_status_and_errors(daemon: Daemon, name: str) -> None:
    """A long back-off (the container fails at once, again and again) leaves it
    ``restarting``: ps and inspect say so; pause and rm refuse; stop ends it."""
    cid = docker(daemon, "run", "-d", "--restart", "always", "--name", name, "busybox",
                 "sh", "-c", "exit 2").stdout.strip()
    until(lambda: state(daemon, name)["RestartCount"] >= 4, what="restarts")
    until(lambda: state(daemon, name)["Status"] == "restarting", what="restarting")
    st = state(daemon, name)
    assert (st["Restarting"], st["Running"], st["Pid"], st["ExitCode"]) == (True, True, 0, 2)
    assert ps_status(daemon, name).startswith("Restarting (2) "), ps_status(daemon, name)
    r = docker(daemon, "pause", name)
    if state(daemon, name)["Status"] == "restarting":
        assert f"Container {cid} is restarting, wait until the container is running" \
            in r.stderr
    r = docker(daemon, "rm", name)
    assert r.returncode == 1 and "stop the container before removing or force remove" \
        in r.stderr
    assert docker(daemon, "stop", name).returncode == 0
    st = state(daemon, name)
    assert (st["Status"], st["Restarting"]) == ("exited", False)
    assert docker(daemon, "rm", name).returncode == 0


def test_daemon_restart_restores_by_policy(tmp_path: Path, busybox_archive: Path) -> None:
    """After a daemon restart: an ``always`` container stopped by the user comes
    back, an ``unless-stopped`` one so stopped does not, nor one without a policy;
    a paused container is still paused (adopted as it was)."""
    d = Daemon(tmp_path / "root", tmp_path / "d.sock")
    d.start()
    try:
        assert d.request("POST", "/images/load", busybox_archive.read_bytes()).status == 200
        for n, policy in (("always", "always"), ("unless", "unless-stopped"), ("none", "no")):
            r = docker(d, "run", "-d", "--restart", policy, "--name", n, "busybox",
                       "sleep", "1000")
            assert r.returncode == 0, r.stderr
        assert docker(d, "stop", "-t", "0", "always", "unless", "none").returncode == 0
        assert docker(d, "run", "-d", "--name", "frozen", "busybox", "sh", "-c",
                      LOOP).returncode == 0
        until(lambda: log_lines(d, "frozen") >= 2, what="output")
        assert docker(d, "pause", "frozen").returncode == 0
        frozen = log_lines(d, "frozen")
        d.stop(signal.SIGKILL)
        d.start()
        assert {n: state(d, n)["Status"] for n in ("always", "unless", "none", "frozen")} == {
            "always": "running", "unless": "exited", "none": "exited", "frozen": "paused"}
        time.sleep(1)
        assert log_lines(d, "frozen") == frozen
        assert docker(d, "unpause", "frozen").returncode == 0
        until(lambda: log_lines(d, "frozen") > frozen, 30, "output after unpause")
    finally:
        remove_all_containers(d)
        d.stop()
