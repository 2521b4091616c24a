"""The streaming routes on the wire: hijacked attach (101 UPGRADED, raw framing, no
chunked encoding, a client that half-closes), logs framing and Content-Type per
API version, wait's early headers; and the image routes' bodies."""

from __future__ import annotations

import io
import json
import socket
import tarfile
from pathlib import Path
from urllib.parse import quote

import pytest
from apihelpers import Daemon, dechunk, deframe, split_response
from imagebuild import busybox_rootfs_tar

pytestmark = pytest.mark.vm

ECHO_BOTH = ["sh", "-c", "echo out; echo err >&2"]


def created(daemon: Daemon, name: str, cmd: list[str], **body: object) -> str:
    r = daemon.post_json(f"/containers/create?name={name}",
                         {"Image": "busybox", "Cmd": cmd, **body})
    assert r.status == 201, r.body
    return str(r.json()["Id"])


def attach_request(cid: str, upgrade: bool, query: str = "stream=1&stdout=1&stderr=1") -> bytes:
    head = f"POST /v1.47/containers/{cid}/attach?{query} HTTP/1.1\r\nHost: docker\r\n"
    if upgrade:
        head += "Connection: Upgrade\r\nUpgrade: tcp\r\n"
    return (head + "Content-Length: 0\r\n\r\n").encode()


@pytest.mark.parametrize("upgrade", [True, False])
def test_attach_hijack_before_start(daemon: Daemon, name: str, upgrade: bool) -> None:
    cid = created(daemon, name, ECHO_BOTH)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(60)
    sock.connect(str(daemon.sock))
    sock.sendall(attach_request(cid, upgrade))
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(1)
        assert data, f"connection closed after {head!r}"
        head += data
    assert head.endswith(b"\r\n\r\n")  # the headers come alone, before any output
    sock.shutdown(socket.SHUT_WR)  # as the docker CLI does when it has no stdin
    assert daemon.request("POST", f"/containers/{cid}/start").status == 204
    raw = head
    while data := sock.recv(65536):
        raw += data
    sock.close()
    status, headers, body = split_response(raw)
    if upgrade:
        assert status == "HTTP/1.1 101 UPGRADED"
        assert (headers["connection"], headers["upgrade"]) == ("Upgrade", "tcp")
    else:
        assert status == "HTTP/1.1 200 OK"
    assert headers["content-type"] == "application/vnd.docker.raw-stream"
    assert "transfer-encoding" not in headers and "content-length" not in headers
    frames = deframe(body)
    assert sorted(frames) == [(1, b"out\n"), (2, b"err\n")]
    daemon.request("DELETE", f"/containers/{cid}?force=1")


def test_attach_logs_after_exit(daemon: Daemon, name: str) -> None:
    cid = created(daemon, name, ECHO_BOTH)
    daemon.request("POST", f"/containers/{cid}/start")
    assert daemon.request("POST", f"/containers/{cid}/wait").json()["StatusCode"] == 0
    raw = daemon.raw(attach_request(cid, True, "logs=1&stdout=1&stderr=1"))
    assert sorted(deframe(split_response(raw)[2])) == [(1, b"out\n"), (2, b"err\n")]
    raw = daemon.raw(attach_request(cid, True, "logs=1&stdout=1"))
    assert deframe(split_response(raw)[2]) == [(1, b"out\n")]
    daemon.request("DELETE", f"/containers/{cid}")


def _attached(daemon: Daemon, cid: str) -> tuple[socket.socket, bytes]:
    """A hijacked stream attach to ``cid``, once its headers came: (socket, headers)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(60)
    sock.connect(str(daemon.sock))
    sock.sendall(attach_request(cid, True))
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(1)
        assert data, f"connection closed after {head!r}"
        head += data
    sock.shutdown(socket.SHUT_WR)
    return sock, head


def _rest(sock: socket.socket, head: bytes) -> list[tuple[int, bytes]]:
    raw = head
    while data := sock.recv(65536):
        raw += data
    sock.close()
    return deframe(split_response(raw)[2])


def test_attach_to_an_exited_container_streams_its_next_run(daemon: Daemon,
                                                            name: str) -> None:
    """``docker start -a`` of an exited container: moby's attach waits for the next
    run and streams it; removing the container instead ends the attach, empty."""
    cid = created(daemon, name, ECHO_BOTH)
    assert daemon.request("POST", f"/containers/{cid}/start").status == 204
    assert daemon.request("POST", f"/containers/{cid}/wait").json()["StatusCode"] == 0
    sock, head = _attached(daemon, cid)
    assert daemon.request("POST", f"/containers/{cid}/start").status == 204
    assert sorted(_rest(sock, head)) == [(1, b"out\n"), (2, b"err\n")]  # this run only
    assert daemon.request("POST", f"/containers/{cid}/wait").json()["StatusCode"] == 0
    sock, head = _attached(daemon, cid)
    assert daemon.request("DELETE", f"/containers/{cid}").status == 204
    assert _rest(sock, head) == []


def test_logs_framing_and_versions(daemon: Daemon, name: str) -> None:
    cid = created(daemon, name, ["sh", "-c", "echo 1; echo 2 >&2; echo 3"])
    daemon.request("POST", f"/containers/{cid}/start")
    daemon.request("POST", f"/containers/{cid}/wait")
    r = daemon.request("GET", f"/v1.47/containers/{cid}/logs?stdout=1&stderr=1")
    assert r.headers["Content-Type"] == "application/vnd.docker.multiplexed-stream"
    assert sorted(deframe(r.body)) == [(1, b"1\n"), (1, b"3\n"), (2, b"2\n")]
    r = daemon.request("GET", f"/v1.41/containers/{cid}/logs?stderr=1&timestamps=1")
    assert r.headers.get("Content-Type") != "application/vnd.docker.multiplexed-stream"
    [(stream, data)] = deframe(r.body)
    assert stream == 2 and data.endswith(b"Z 2\n") and data[:2] == b"20"
    r = daemon.request("GET", f"/containers/{cid}/logs?stdout=1&tail=1")
    assert deframe(r.body) == [(1, b"3\n")]
    r = daemon.request("GET", f"/containers/{cid}/logs?stdout=1&until=1")
    assert r.status == 200 and r.body == b""
    daemon.request("DELETE", f"/containers/{cid}")


def test_wait_headers_come_first(daemon: Daemon, name: str) -> None:
    cid = created(daemon, name, ["sh", "-c", "sleep 2; exit 5"])
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(60)
    sock.connect(str(daemon.sock))
    sock.sendall(f"POST /containers/{cid}/wait?condition=next-exit HTTP/1.1\r\n"
                 "Host: docker\r\nContent-Length: 0\r\n\r\n".encode())
    sock.settimeout(5)
    head = sock.recv(4096)  # before the container even started
    assert head.startswith(b"HTTP/1.1 200 OK") and b"application/json" in head
    sock.settimeout(60)
    daemon.request("POST", f"/containers/{cid}/start")
    raw = head
    while b"0\r\n\r\n" not in raw:
        raw += sock.recv(4096)
    sock.close()
    body = dechunk(split_response(raw)[2])
    assert json.loads(body) == {"StatusCode": 5, "Error": None}
    r = daemon.request("POST", f"/containers/{cid}/start")
    assert r.status == 204
    r = daemon.request("POST", f"/containers/{cid}/start")
    assert r.status in (204, 304)
    daemon.request("POST", f"/containers/{cid}/wait")
    daemon.request("DELETE", f"/containers/{cid}?force=1")


def test_image_routes(daemon: Daemon, busybox_archive: Path, tmp_path: Path) -> None:
    images = daemon.request("GET", "/images/json").json()
    [bb] = [i for i in images if "busybox:latest" in i["RepoTags"]]
    assert bb["Id"].startswith("sha256:") and bb["Size"] > 0 and "VirtualSize" not in bb
    assert "VirtualSize" in daemon.request("GET", "/v1.43/images/json").json()[0]
    assert daemon.request("GET", "/images/busybox/json").json()["Id"] == bb["Id"]
    r = daemon.request("POST", "/images/busybox/tag?repo=localhost:5000/x/y&tag=2")
    assert r.status == 201
    assert daemon.request("GET", "/images/localhost:5000/x/y:2/json").status == 200
    r = daemon.request("GET", "/images/localhost:5000/x/y:2/get")
    with tarfile.open(fileobj=io.BytesIO(r.body)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] == ["localhost:5000/x/y:2"]
    assert manifest[0]["Config"].removeprefix("blobs/sha256/").removesuffix(".json") == \
        bb["Id"].removeprefix("sha256:")
    r = daemon.request("DELETE", "/images/localhost:5000/x/y:2")
    assert r.json() == [{"Untagged": "localhost:5000/x/y:2"}]
    assert daemon.request("DELETE", "/images/localhost:5000/x/y:2").status == 404
    r = daemon.request("POST", "/images/busybox/tag?tag=x")
    assert r.status == 400
    r = daemon.request("GET", "/images/json?filters=" + quote(json.dumps({"dangling": ["x"]})))
    assert r.status == 400
    for body in (b"this is not a tar" * 100, b""):  # 200 and an error line, as Docker
        r = daemon.request("POST", "/images/load", body, chunked=bool(body))
        assert r.status == 200, r.body
        doc = json.loads(r.body)
        assert doc["error"] and doc["errorDetail"] == {"message": doc["error"]}, doc
    r = daemon.request("POST", "/images/create?fromImage=127.0.0.1:1/nosuchimage&tag=latest")
    assert r.status == 503 and "connection refused" in r.message  # no registry there
    rootfs = busybox_rootfs_tar(["sh", "echo"])
    r = daemon.request("POST", "/images/create?fromSrc=-&repo=imported&tag=v1", rootfs,
                       chunked=True)
    assert r.status == 200
    image_id = json.loads(r.body.splitlines()[-1])["status"]
    assert daemon.request("GET", "/images/imported:v1/json").json()["Id"] == image_id
    assert daemon.request("DELETE", "/images/imported:v1").status == 200
