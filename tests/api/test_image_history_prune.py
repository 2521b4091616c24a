"""``docker history``, ``docker image prune``, ``docker images`` before/since/until
filters, through the real docker CLI and the API."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from apihelpers import Daemon
from imagebuild import Entry, busybox_rootfs_tar, layer_tar, write_docker_archive


def docker(d: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], env=d.docker_env, capture_output=True,
                          text=True, timeout=120)


def _load(d: Daemon, tmp: Path, tag: str, extra: bytes,
          history: list[dict[str, object]] | None = None, labels: dict[str, str] | None = None,
          created: str = "2024-01-01T00:00:00Z") -> str:
    archive = tmp / f"{tag.replace(':', '_').replace('/', '_')}-{len(list(tmp.iterdir()))}.tar"
    write_docker_archive(archive, [busybox_rootfs_tar(),
                                   layer_tar([Entry("extra", data=extra)])], [tag],
                         {"Cmd": ["sh"], "Labels": labels or {}}, created, history)
    r = docker(d, "load", "-i", str(archive))
    assert r.returncode == 0, r.stderr
    return str(json.loads(docker(d, "inspect", tag).stdout)[0]["Id"])


def test_history(daemon: Daemon, tmp_path: Path) -> None:
    image_id = _load(daemon, tmp_path, "hist:v1", b"x" * 5000, [
        {"created": "2026-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file"},
        {"created": "2026-01-02T00:00:00Z", "created_by": "/bin/sh -c #(nop) ENV A=1",
         "empty_layer": True},
        {"created": "2026-01-03T00:00:00Z", "created_by": "/bin/sh -c echo x > /extra",
         "comment": "second"}])
    r = daemon.request("GET", "/images/hist:v1/history")
    assert r.status == 200
    rows = r.json()
    assert [row["CreatedBy"] for row in rows] == [
        "/bin/sh -c echo x > /extra", "/bin/sh -c #(nop) ENV A=1",
        "/bin/sh -c #(nop) ADD file"]
    assert rows[0]["Id"] == image_id and rows[0]["Tags"] == ["hist:v1"]
    assert rows[1]["Id"] == "<missing>" and rows[1]["Size"] == 0
    assert rows[0]["Size"] > 5000 and rows[2]["Size"] > 1000 and rows[0]["Comment"] == "second"
    assert rows[2]["Created"] == 1767225600
    out = docker(daemon, "history", "hist:v1")
    assert out.returncode == 0 and "ENV A=1" in out.stdout, out.stderr
    assert daemon.request("GET", "/images/nosuch:v9/history").status == 404
    docker(daemon, "rmi", "hist:v1")


def test_prune_dangling_then_all_unused(daemon: Daemon, tmp_path: Path, name: str) -> None:
    kept = _load(daemon, tmp_path, "prune-used:v1", b"used")
    unused = _load(daemon, tmp_path, "prune-unused:v1", b"unused", labels={"tier": "test"})
    dangling = _load(daemon, tmp_path, "prune-dangling:v1", b"dangling")
    _load(daemon, tmp_path, "prune-dangling:v1", b"newer")  # the tag moves: dangling
    assert docker(daemon, "create", "--name", name, "prune-used:v1", "true").returncode == 0
    r = daemon.request("POST", "/images/prune")
    assert r.status == 200
    doc = r.json()
    assert {"Deleted": dangling} in doc["ImagesDeleted"] and doc["SpaceReclaimed"] > 0
    ids = docker(daemon, "images", "-q", "--no-trunc").stdout
    assert unused in ids and kept in ids and dangling not in ids
    r = daemon.request("POST", '/images/prune?filters={"dangling":["false"],'
                               '"label":["tier=prod"]}')
    assert r.json()["ImagesDeleted"] is None
    r = docker(daemon, "image", "prune", "-a", "-f", "--filter", "label=tier=test")
    assert r.returncode == 0, r.stderr
    ids = docker(daemon, "images", "-q", "--no-trunc").stdout
    assert unused not in ids and kept in ids  # the container's image stays
    assert daemon.request("POST", '/images/prune?filters={"bogus":["1"]}').status == 400
    docker(daemon, "rm", name)
    docker(daemon, "rmi", "prune-used:v1", "prune-dangling:v1")


def test_images_before_since_until(daemon: Daemon, tmp_path: Path) -> None:
    first = _load(daemon, tmp_path, "order-a:v1", b"a", created="2025-01-01T00:00:00Z")
    second = _load(daemon, tmp_path, "order-b:v1", b"b", created="2025-06-01T00:00:00Z")
    before = docker(daemon, "images", "-q", "--no-trunc", "--filter", "before=order-b:v1")
    since = docker(daemon, "images", "-q", "--no-trunc", "--filter", "since=order-a:v1")
    assert first in before.stdout and second not in before.stdout, before.stderr
    assert second in since.stdout and first not in since.stdout, since.stderr
    r = docker(daemon, "images", "--filter", "before=nosuch:v9")
    assert r.returncode == 1 and "No such image" in r.stderr
    docker(daemon, "rmi", "order-a:v1", "order-b:v1")
