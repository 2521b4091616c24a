"""Talking to a real ``vmcontainer daemon`` in tests: starting one, plain HTTP over
its unix socket (http.client), raw socket requests for hijacked streams, and
``docker run`` until a container took the warm path."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 120) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.path)
        self.sock = sock


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def message(self) -> str:
        return str(self.json()["message"])


class Daemon:
    """A ``python -m vmcontainer daemon`` subprocess on ``sock`` with data root
    ``root``; its stderr goes to ``log``."""

    def __init__(self, root: Path, sock: Path, extra: tuple[str, ...] = (),
                 prefix: tuple[str, ...] = (), env: dict[str, str] | None = None) -> None:
        """``prefix``: a command the daemon runs under (``ip netns exec NS``);
        ``env``: more environment variables."""
        self.root, self.sock = root, sock
        self.prefix = prefix
        self.log = root.parent / (root.name + "-daemon.log")
        self.env = {**os.environ, "VMCONTAINER_ROOT": str(root), **(env or {})}
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def docker_env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": f"unix://{self.sock}"}

    def start(self, timeout: float = 120) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [*self.prefix, sys.executable, "-m", "vmcontainer", "daemon", "-H", f"unix://{self.sock}",
                 *self.extra], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited {self.proc.returncode}:\n{self.log_text()}")
            try:
                if self.request("GET", "/_ping", timeout=5).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"daemon did not answer within {timeout}s:\n{self.log_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float = 120,
                chunked: bool = False) -> Reply:
        conn = UnixHTTPConnection(str(self.sock), timeout)
        try:
            conn.request(method, path, body=iter([body]) if chunked and body else body,
                         headers=headers or {}, encode_chunked=chunked)
            resp = conn.getresponse()
            return Reply(resp.status, resp.headers, resp.read())
        finally:
            conn.close()

    def post_json(self, path: str, doc: object, **kw: Any) -> Reply:
        return self.request("POST", path, json.dumps(doc).encode(),
                            {"Content-Type": "application/json"}, **kw)

    def raw(self, request: bytes, timeout: float = 60, half_close: bool = False) -> bytes:
        """Send ``request`` as is; everything the daemon sends until it closes."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(str(self.sock))
        try:
            sock.sendall(request)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
            out = b""
            while data := sock.recv(65536):
                out += data
            return out
        finally:
            sock.close()


def docker(d: Daemon, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real docker CLI against ``d``: text output, no check."""
    return subprocess.run(["docker", *args], env=d.docker_env, capture_output=True, text=True,
                          timeout=timeout)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def fetch(url: str, timeout: float = 60) -> bytes:
    """GET ``url``, retrying while the guest's server is not up yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body: bytes = r.read()
                return body
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def remove_all_containers(d: Daemon) -> None:
    for c in d.request("GET", "/containers/json?all=1").json():
        d.request("DELETE", f"/containers/{c['Id']}?force=1")


def vm_record(d: Daemon, name: str) -> dict[str, Any]:
    """Inspect's ``VM`` member of container ``name`` (Path, Template, ReadyMs, ...)."""
    r = subprocess.run(["docker", "inspect", name], env=d.docker_env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    vm: dict[str, Any] = json.loads(r.stdout)[0]["VM"]
    return vm


def run_warm(d: Daemon, *args: str, deadline_s: float = 90) -> tuple[str, str]:
    """``docker run --name N args`` until it took the warm path (the first start of
    a machine layout builds its template in the background); (name, stdout). Only
    where the daemon clones (``backends.WARM``)."""
    end = time.monotonic() + deadline_s
    while True:
        name = "w" + uuid.uuid4().hex[:10]
        r = subprocess.run(["docker", "run", "--name", name, *args], env=d.docker_env,
                           capture_output=True, text=True, timeout=180)
        assert r.returncode == 0, r.stderr
        if vm_record(d, name)["Path"] == "warm":
            return name, r.stdout
        subprocess.run(["docker", "rm", "-f", name], env=d.docker_env, capture_output=True,
                       timeout=60)
        assert time.monotonic() < end, "no template was built"
        time.sleep(0.5)


def deframe(data: bytes) -> list[tuple[int, bytes]]:
    """Docker's multiplexed frames: [(stream, payload), ...]; asserts the framing."""
    frames = []
    while data:
        assert len(data) >= 8, f"truncated frame header: {data!r}"
        stream, size = struct.unpack(">BxxxL", data[:8])
        assert data[1:4] == b"\0\0\0"
        assert stream in (1, 2), f"bad stream byte {stream}"
        frames.append((stream, data[8:8 + size]))
        data = data[8 + size:]
    return frames


def dechunk(body: bytes) -> bytes:
    """The payload of a chunked HTTP body."""
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2:]
    return out


def split_response(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    """(status line, headers with lower-case names, body) of a raw answer."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return lines[0], headers, body
