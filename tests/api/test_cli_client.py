"""The vmcontainer CLI as a client of the daemon (``-H unix://...``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from apihelpers import Daemon


def vmc(d: Daemon, *args: str, **kw: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "vmcontainer", "-H", f"unix://{d.sock}",
                           *args], capture_output=True, timeout=120, check=False,
                          **kw)  # type: ignore[call-overload]


def test_run_through_the_daemon(daemon: Daemon, name: str) -> None:
    r = vmc(daemon, "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (r.returncode, r.stdout, r.stderr) == (3, b"out\n", b"err\n")
    r = vmc(daemon, "run", "--rm", "busybox", "nosuchcmd")
    assert r.returncode == 127 and b"executable file not found" in r.stderr
    r = vmc(daemon, "run", "--rm", "nosuchimage")
    assert r.returncode == 125 and b"Unable to find image" in r.stderr


def test_detached_ps_logs_inspect_rm(daemon: Daemon, name: str) -> None:
    r = vmc(daemon, "run", "-d", "--name", name, "busybox", "sh", "-c", "echo hi; sleep 300")
    assert r.returncode == 0 and len(r.stdout.strip()) == 64, r.stderr
    assert name.encode() in vmc(daemon, "ps").stdout
    info = json.loads(vmc(daemon, "inspect", name).stdout)[0]
    assert info["State"]["Running"] is True
    assert vmc(daemon, "logs", name).stdout == b"hi\n"
    assert vmc(daemon, "rm", "-f", name).returncode == 0
    assert name.encode() not in vmc(daemon, "ps", "-a").stdout


def test_signals_reach_the_container(daemon: Daemon) -> None:
    p = subprocess.Popen([sys.executable, "-m", "vmcontainer", "-H", f"unix://{daemon.sock}",
                          "run", "--rm", "busybox", "sh", "-c",
                          'trap "echo got TERM; exit 4" TERM; echo ready; '
                          "while true; do sleep 0.1; done"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ)
    assert p.stdout is not None and p.stdout.readline() == b"ready\n"
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    assert (p.returncode, out) == (4, b"got TERM\n"), err


def test_images_and_rmi_through_the_daemon(daemon: Daemon) -> None:
    listing = vmc(daemon, "images").stdout.decode().splitlines()
    assert listing[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert any(line.split()[:2] == ["busybox", "latest"] for line in listing[1:])
    r = vmc(daemon, "rmi", "nosuchimage:v9")
    assert r.returncode == 1 and b"No such image: nosuchimage:v9" in r.stderr
