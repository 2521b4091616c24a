"""docker-py 7 (the conformance client) against ``vmcontainer daemon``: real VMs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from apihelpers import Daemon
from docker.models.containers import Container

pytestmark = pytest.mark.vm


@pytest.fixture(scope="module")
def client(daemon: Daemon) -> Iterator[docker.DockerClient]:
    c = docker.DockerClient(base_url=f"unix://{daemon.sock}", timeout=120)
    yield c
    c.close()


def test_run_returns_output(client: docker.DockerClient) -> None:
    assert client.containers.run("busybox", "echo hi", name="pyrun") == b"hi\n"
    client.containers.get("pyrun").remove()


def test_run_remove_returns_output(client: docker.DockerClient) -> None:
    for _ in range(3):
        assert client.containers.run("busybox", "echo hi", remove=True) == b"hi\n"


def test_run_detached_logs_wait_remove(client: docker.DockerClient) -> None:
    c = client.containers.run(
        "busybox", ["sh", "-c", "for i in 1 2 3; do echo line $i; sleep 0.3; done; echo e >&2"],
        detach=True)
    assert isinstance(c, Container)
    streamed = b"".join(c.logs(stream=True, follow=True))
    assert streamed == b"line 1\nline 2\nline 3\ne\n"
    assert c.wait(timeout=60) == {"StatusCode": 0, "Error": None}
    assert c.logs(stderr=False) == b"line 1\nline 2\nline 3\n"
    c.reload()
    assert c.status == "exited"
    c.remove()
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(c.id)


def test_attach_with_logs_after_exit(client: docker.DockerClient) -> None:
    c = client.containers.run("busybox", ["sh", "-c", "echo out; echo err >&2"], detach=True)
    try:
        c.wait(timeout=60)
        assert client.api.attach(c.id, logs=True) == b"out\nerr\n"
        assert client.api.attach(c.id, logs=True, stderr=False) == b"out\n"
    finally:
        c.remove(force=True)


def test_attach_live_before_start(client: docker.DockerClient) -> None:
    c = client.containers.create("busybox", ["sh", "-c", "echo one; sleep 0.5; echo two"])
    try:
        frames = client.api.attach(c.id, stream=True, logs=False, demux=True)
        c.start()
        got = list(frames)
        assert b"".join(out or b"" for out, _ in got) == b"one\ntwo\n"
    finally:
        c.remove(force=True)


def test_errors_are_docker_py_exceptions(client: docker.DockerClient) -> None:
    # not local (ImageNotFound from create), then pulled: no registry answers there
    with pytest.raises(docker.errors.APIError, match="connection refused"):
        client.containers.run("127.0.0.1:1/nosuchimage", "true")
    with pytest.raises(docker.errors.ContainerError) as err:
        client.containers.run("busybox", "sh -c 'exit 3'", remove=True)
    assert err.value.exit_status == 3
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("nosuchcontainer")
    with pytest.raises(docker.errors.APIError) as api_err:
        client.containers.run("busybox", "true", name="bad/name")
    assert api_err.value.status_code == 400


def test_stop_kill_list_filters(client: docker.DockerClient, name: str) -> None:
    c = client.containers.run("busybox", "sleep 100", detach=True, name=name,
                              labels={"suite": "api"})
    try:
        running = client.containers.list(filters={"name": name})
        assert [x.id for x in running] == [c.id]
        assert [x.id for x in client.containers.list(filters={"label": "suite=api"})] == [c.id]
        t0 = time.monotonic()
        c.stop(timeout=1)
        assert time.monotonic() - t0 < 1 + 5
        assert c.wait()["StatusCode"] == 137
        exited = client.containers.list(all=True, filters={"status": "exited", "name": name})
        assert [x.id for x in exited] == [c.id]
        c.start()
        c.kill(signal="KILL")
        assert c.wait()["StatusCode"] == 137
    finally:
        c.remove(force=True)


def test_images_and_events(client: docker.DockerClient, busybox_archive: Path) -> None:
    assert "busybox:latest" in [t for i in client.images.list() for t in i.tags]
    loaded = client.images.load(busybox_archive.read_bytes())
    assert [i.tags for i in loaded] == [["busybox:latest"]]
    image = client.images.get("busybox")
    assert image.tag("example.org/py/busybox", "v1")
    client.images.remove("example.org/py/busybox:v1")
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("example.org/py/busybox:v1")
    since = int(time.time()) - 1
    client.containers.run("busybox", "true", remove=True)
    events = list(client.events(since=since, until=int(time.time()) + 1, decode=True,
                                filters={"type": "container"}))
    actions = [e["Action"] for e in events]
    assert {"create", "start", "die", "destroy"} <= set(actions)
    with pytest.raises(docker.errors.APIError, match="connection refused"):
        client.images.pull("127.0.0.1:1/nosuchimage", tag="latest")


def test_prune(client: docker.DockerClient) -> None:
    c = client.containers.create("busybox", "true")
    result = client.containers.prune()
    assert c.id in (result["ContainersDeleted"] or [])
