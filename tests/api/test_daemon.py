"""``vmcontainer daemon`` itself: daemon.json and flags, the unix socket's mode,
TCP only with TLS client certificates, and a restart that adopts running VMs."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from apihelpers import Daemon, deframe, remove_all_containers


def vmcontainer(*args: str, root: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vmcontainer", *args], capture_output=True,
                          text=True, timeout=timeout,
                          env={**os.environ, "VMCONTAINER_ROOT": str(root)})


def test_tcp_without_tls_is_refused(tmp_path: Path) -> None:
    r = vmcontainer("daemon", "-H", "tcp://127.0.0.1:2375", root=tmp_path / "root")
    assert r.returncode == 1
    assert "refusing to listen on tcp://127.0.0.1:2375 without TLS" in r.stderr


def test_flag_and_file_conflict(tmp_path: Path) -> None:
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"hosts": [f"unix://{tmp_path}/a.sock"]}))
    r = vmcontainer("daemon", "--config-file", str(config), "-H", f"unix://{tmp_path}/b.sock",
                    root=tmp_path / "root")
    assert r.returncode == 1
    assert "specified both as a flag and in the configuration file: hosts" in r.stderr
    config.write_text('{"debug": "yes"}')
    r = vmcontainer("daemon", "--config-file", str(config), root=tmp_path / "root")
    assert r.returncode == 1 and "'debug' must be a bool" in r.stderr
    r = vmcontainer("daemon", "--config-file", str(tmp_path / "none.json"),
                    root=tmp_path / "root")
    assert r.returncode == 1 and "no such file" in r.stderr


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(d: Path) -> None:
    """ca.pem; server-cert.pem/server-key.pem for 127.0.0.1; cert.pem/key.pem (client)."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=ca",
             "-keyout", "ca-key.pem", "-out", "ca.pem", cwd=d)
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    (d / "client.cnf").write_text("extendedKeyUsage=clientAuth\n")
    for who, ext in (("server", "san.cnf"), ("client", "client.cnf")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={who}",
                 "-keyout", f"{who}-key.pem", "-out", f"{who}.csr", cwd=d)
        _openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
                 "-CAcreateserial", "-days", "1", "-extfile", ext, "-out", f"{who}-cert.pem",
                 cwd=d)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unix_socket_mode_and_tls_tcp(tmp_path: Path) -> None:
    make_certs(tmp_path)
    port = free_port()
    d = Daemon(tmp_path / "root", tmp_path / "d.sock", (
        "-H", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert", str(tmp_path / "ca.pem"),
        "--tlscert", str(tmp_path / "server-cert.pem"),
        "--tlskey", str(tmp_path / "server-key.pem")))
    d.start()
    try:
        assert stat.S_IMODE(os.stat(d.sock).st_mode) == 0o660
        r = subprocess.run(
            ["docker", "--tlsverify", "--tlscacert", str(tmp_path / "ca.pem"),
             "--tlscert", str(tmp_path / "client-cert.pem"),
             "--tlskey", str(tmp_path / "client-key.pem"), "-H", f"tcp://127.0.0.1:{port}",
             "version", "--format", "{{.Server.APIVersion}}"],
            capture_output=True, text=True, timeout=60,
            env={k: v for k, v in os.environ.items() if k != "DOCKER_HOST"})
        assert (r.returncode, r.stdout.strip()) == (0, "1.47"), r.stderr
        no_cert = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        with pytest.raises((ssl.SSLError, ConnectionError)), \
                socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                no_cert.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
            assert tls.recv(100) == b""  # TLS 1.3 reports the refusal on first read
            raise ConnectionError("closed without an answer")
    finally:
        assert d.stop() == 0
    assert not d.sock.exists()


@pytest.mark.vm
def test_restart_adopts_running_containers(tmp_path: Path, busybox_archive: Path) -> None:
    """SIGKILL the daemon while 3 containers run; a new daemon shows them running,
    with all their output, and stops them. The daemon is stopped (SIGSTOP) for a
    while before it is killed, so that output waits unread in its socket, and one
    container has half a line in the daemon's memory: both reach the log once
    (the agent sends again what the dead daemon had not stored)."""
    d = Daemon(tmp_path / "root", tmp_path / "d.sock")
    d.start()
    try:
        r = d.request("POST", "/images/load", busybox_archive.read_bytes())
        assert r.status == 200
        ids = []
        for i in range(3):
            r = d.post_json(f"/containers/create?name=counter{i}", {
                "Image": "busybox",
                "Cmd": ["sh", "-c", "i=0; while true; do echo $i; i=$((i+1)); sleep 0.5; done"]})
            ids.append(r.json()["Id"])
            assert d.request("POST", f"/containers/{ids[-1]}/start").status == 204
        r = d.post_json("/containers/create?name=halfline", {
            "Image": "busybox", "Cmd": ["sh", "-c", "printf begin-; sleep 6; echo end; sleep 600"]})
        half = r.json()["Id"]
        assert d.request("POST", f"/containers/{half}/start").status == 204
        time.sleep(2)
        assert d.proc is not None
        d.proc.send_signal(signal.SIGSTOP)
        time.sleep(1.5)  # output the daemon does not read
        d.stop(signal.SIGKILL)
        time.sleep(3)  # output produced while no daemon runs
        d.start()
        listed = {c["Id"]: c["State"] for c in d.request("GET", "/containers/json").json()}
        assert listed == {cid: "running" for cid in [*ids, half]}, d.log_text()
        time.sleep(1)
        for cid in ids:
            r = d.request("GET", f"/containers/{cid}/logs?stdout=1")
            numbers = [int(line) for _, data in deframe(r.body) for line in data.split()]
            assert numbers == list(range(len(numbers))) and len(numbers) >= 10, r.body
            assert d.request("POST", f"/containers/{cid}/stop?t=1", timeout=30).status == 204
            state = d.request("GET", f"/containers/{cid}/json").json()["State"]
            assert (state["Status"], state["ExitCode"]) == ("exited", 137)  # killed after t
        deadline = time.monotonic() + 30
        while b"end" not in (body := d.request("GET", f"/containers/{half}/logs?stdout=1").body):
            assert time.monotonic() < deadline, body
            time.sleep(0.2)
        assert [data for _, data in deframe(body)] == [b"begin-end\n"]
    finally:
        remove_all_containers(d)
        d.stop()
