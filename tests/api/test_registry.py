"""Pull from Debian's ``docker-registry`` on 127.0.0.1 (tests/localregistry.py), through
the Engine API and the real ``docker`` CLI, against the session's daemon."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from apihelpers import Daemon, docker
from imagebuild import Entry, busybox_rootfs_tar, layer_tar, write_docker_archive
from localregistry import LocalRegistry, ThrottledProxy

CONFIG: dict[str, object] = {"Cmd": ["sh"], "Env": ["PATH=/bin"]}


def lines(body: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in body.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """name -> (docker-archive, image ID): ``two`` has two layers, ``big`` an 8 MB
    incompressible one."""
    base = tmp_path_factory.mktemp("reg-img")
    out = {}
    extra = layer_tar([Entry("hello", data=b"hi\n")])
    big = layer_tar([Entry("big", data=os.urandom(8 << 20))])
    for name, layers in (("busybox", [busybox_rootfs_tar()]),
                         ("two", [busybox_rootfs_tar(), extra]),
                         ("big", [busybox_rootfs_tar(), big])):
        path = base / f"{name}.tar"
        out[name] = (path, write_docker_archive(path, layers, [f"{name}:latest"], CONFIG))
    return out


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory,
             archives: dict[str, tuple[Path, str]]) -> Iterator[LocalRegistry]:
    reg = LocalRegistry(tmp_path_factory.mktemp("registry")).start()
    for name in ("busybox", "two"):
        reg.seed(archives[name][0], f"{name}:latest")
    yield reg
    reg.stop()


def test_pull_streams_progress_then_up_to_date(daemon: Daemon, registry: LocalRegistry,
                                               archives: dict[str, tuple[Path, str]]) -> None:
    ref = f"{registry.host}/two"
    r = daemon.request("POST", f"/images/create?fromImage={ref}&tag=latest")
    assert r.status == 200, r.body
    docs = lines(r.body)
    assert docs[0] == {"status": "Pulling from two", "id": "latest"}
    statuses = [(d["status"], d.get("id")) for d in docs[1:-2]]
    layer_ids = [i for s, i in statuses if s == "Pulling fs layer"]
    assert len(layer_ids) == 2, docs
    for layer in layer_ids:
        assert ("Download complete", layer) in statuses and ("Pull complete", layer) in statuses
        assert all(d["progressDetail"] == {} or d["status"] == "Downloading"
                   for d in docs[1:-2])
    digest = str(docs[-2]["status"]).removeprefix("Digest: ")
    assert digest.startswith("sha256:") and len(digest) == 71
    assert docs[-1] == {"status": f"Status: Downloaded newer image for {ref}:latest"}
    doc = daemon.request("GET", f"/images/{ref}/json").json()
    assert doc["Id"] == archives["two"][1]  # the registry's config, byte for byte
    assert doc["RepoTags"] == [f"{ref}:latest"]
    assert doc["RepoDigests"] == [f"{ref}@{digest}"]
    r = daemon.request("POST", f"/images/create?fromImage={ref}&tag=latest")
    assert lines(r.body) == [{"status": "Pulling from two", "id": "latest"},
                             {"status": f"Digest: {digest}"},
                             {"status": f"Status: Image is up to date for {ref}:latest"}]
    by_digest = daemon.request("GET", f"/images/{ref}@{digest}/json").json()
    assert by_digest["Id"] == doc["Id"]
    records = daemon.request("DELETE", f"/images/{ref}").json()
    assert records[:3] == [{"Untagged": f"{ref}:latest"}, {"Untagged": f"{ref}@{digest}"},
                           {"Deleted": doc["Id"]}]


def test_pull_errors_in_dockers_words(daemon: Daemon, registry: LocalRegistry) -> None:
    r = daemon.request("POST", f"/images/create?fromImage={registry.host}/two&tag=nosuch")
    assert (r.status, r.message) == (404, f"manifest for {registry.host}/two:nosuch not "
                                          "found: manifest unknown: manifest unknown")
    r = daemon.request("POST", f"/images/create?fromImage={registry.host}/nosuchrepo")
    assert r.status == 404 and "manifest unknown" in r.message
    r = daemon.request("POST", "/images/create?fromImage=127.0.0.1:1/x&tag=latest")
    assert r.status == 503 and "connection refused" in r.message, r.body
    for bad in ("..%2F..%2Fetc", "Busybox", "a%00b", "x" * 300, "a@sha256:12"):
        r = daemon.request("POST", f"/images/create?fromImage={bad}")
        assert r.status == 400, (bad, r.body)
    r = daemon.request("POST", f"/images/create?fromImage={registry.host}/two",
                       headers={"X-Registry-Auth": "e" * 70000})
    assert r.status in (400, 431), r.body
    before = daemon.request("GET", "/images/json").json()
    assert not any(f"{registry.host}/two:nosuch" in i["RepoTags"] for i in before)


def test_docker_pull_images_run_and_digest(daemon: Daemon, registry: LocalRegistry,
                                           archives: dict[str, tuple[Path, str]]) -> None:
    ref = f"{registry.host}/busybox:latest"
    r = docker(daemon, "pull", ref)
    assert r.returncode == 0, r.stderr
    assert "latest: Pulling from busybox" in r.stdout
    assert "Pull complete" in r.stdout and f"Downloaded newer image for {ref}" in r.stdout
    digest = next(w for w in r.stdout.split() if w.startswith("sha256:"))
    r = docker(daemon, "images", "--digests", f"{registry.host}/busybox")
    assert digest in r.stdout and archives["busybox"][1][7:19] in r.stdout, r.stdout
    r = docker(daemon, "pull", ref)
    assert f"Image is up to date for {ref}" in r.stdout
    r = docker(daemon, "rmi", ref)
    assert r.returncode == 0, r.stderr
    r = docker(daemon, "pull", f"{registry.host}/busybox@{digest}")
    assert r.returncode == 0 and f"Digest: {digest}" in r.stdout, r.stderr
    r = docker(daemon, "inspect", "-f", "{{.Id}} {{json .RepoDigests}} {{json .RepoTags}}",
               f"{registry.host}/busybox@{digest}")
    assert r.stdout.split() == [archives["busybox"][1],
                                json.dumps([f"{registry.host}/busybox@{digest}"]), "[]"]
    r = docker(daemon, "pull", f"{registry.host}/busybox:nosuch")
    assert r.returncode == 1
    assert r.stderr.strip() == (f"Error response from daemon: manifest for {registry.host}/"
                                "busybox:nosuch not found: manifest unknown: manifest unknown")


@pytest.mark.vm
def test_docker_run_of_a_pulled_image(daemon: Daemon, registry: LocalRegistry) -> None:
    r = docker(daemon, "run", "--rm", f"{registry.host}/two", "cat", "/hello")
    assert (r.returncode, r.stdout) == (0, "hi\n"), r.stderr


def test_index_picks_linux_amd64(daemon: Daemon, registry: LocalRegistry, tmp_path: Path,
                                 archives: dict[str, tuple[Path, str]]) -> None:
    image_id = registry.seed_index(archives["busybox"][0], "multi:latest",
                        [("linux", "arm64"), ("linux", "amd64")], tmp_path / "a")
    registry.seed_index(archives["busybox"][0], "armonly:latest", [("linux", "arm64")],
                        tmp_path / "b")
    r = daemon.request("POST", f"/images/create?fromImage={registry.host}/multi&tag=latest")
    assert r.status == 200 and b"Downloaded newer image" in r.body, r.body
    doc = daemon.request("GET", f"/images/{registry.host}/multi/json").json()
    assert doc["Id"] == image_id
    r = daemon.request("POST", f"/images/create?fromImage={registry.host}/armonly&tag=latest")
    assert (r.status, r.message) == (
        404, "no matching manifest for linux/amd64 in the manifest list entries")
    # what the registry holds, without pulling (docker-py inspect_distribution)
    doc = daemon.request("GET", f"/distribution/{registry.host}/multi:latest/json").json()
    assert doc["Descriptor"]["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert doc["Platforms"] == [{"architecture": "arm64", "os": "linux"},
                                {"architecture": "amd64", "os": "linux"}]
    doc = daemon.request("GET", f"/distribution/{registry.host}/busybox/json").json()
    assert doc["Platforms"] == [{"architecture": "amd64", "os": "linux"}], doc
    r = docker(daemon, "pull", f"{registry.host}/busybox")
    assert f"Digest: {doc['Descriptor']['digest']}" in r.stdout, (doc, r.stdout)
    r = daemon.request("GET", f"/distribution/{registry.host}/nosuch/json")
    assert r.status == 404, r.body


def test_registry_killed_mid_pull(daemon: Daemon, tmp_path: Path,
                                  archives: dict[str, tuple[Path, str]]) -> None:
    reg = LocalRegistry(tmp_path / "reg").start()
    proxy = ThrottledProxy(reg.port, rate=2 << 20)
    try:
        reg.seed(archives["big"][0], "big:latest")
        before = docker(daemon, "images", "-q", "--no-trunc").stdout
        ref = f"{proxy.host}/big:latest"
        proc = subprocess.Popen(["docker", "pull", ref], env=daemon.docker_env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            if "Pulling fs layer" in line:
                break
        reg.stop()
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 1, err
        assert err.startswith("error pulling image") or "connection" in err or "EOF" in err, err
        assert docker(daemon, "images", "-q", "--no-trunc").stdout == before
        leftovers = [p for p in (daemon.root / "image" / "tmp").iterdir()]
        assert leftovers == [], leftovers
        reg.start()
        r = docker(daemon, "pull", ref, timeout=180)
        assert r.returncode == 0 and "Downloaded newer image" in r.stdout, r.stderr
        r = docker(daemon, "inspect", "-f", "{{.Id}}", ref)
        assert r.stdout.strip() == archives["big"][1]
    finally:
        proxy.close()
        reg.stop()


def test_vmcontainer_pull_prints_docker_lines(daemon: Daemon, registry: LocalRegistry) -> None:
    import sys
    ref = f"{registry.host}/two:latest"
    docker(daemon, "rmi", ref)
    r = subprocess.run([sys.executable, "-m", "vmcontainer", "-H", f"unix://{daemon.sock}",
                        "pull", ref], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0] == "latest: Pulling from two" and out[-1].startswith("Status: Downloaded")
    assert any(line.endswith(": Pull complete") for line in out)
    r = subprocess.run([sys.executable, "-m", "vmcontainer", "-H", f"unix://{daemon.sock}",
                        "pull", f"{registry.host}/two:nosuch"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 1 and "manifest unknown" in r.stderr


USER, PASSWORD = "alice", "s3cret-pw"


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory,
                  archives: dict[str, tuple[Path, str]]) -> Iterator[LocalRegistry]:
    reg = LocalRegistry(tmp_path_factory.mktemp("registry-auth"),
                        htpasswd=(USER, PASSWORD)).start()
    reg.seed(archives["busybox"][0], "busybox:latest")
    yield reg
    reg.stop()


def docker_as(d: Daemon, config: Path, *args: str,
              stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], env={**d.docker_env, "DOCKER_CONFIG": str(config)},
                          capture_output=True, text=True, timeout=120, input=stdin)


def test_login_then_pull_from_auth_registry(daemon: Daemon, auth_registry: LocalRegistry,
                                            tmp_path: Path,
                                            archives: dict[str, tuple[Path, str]]) -> None:
    host, config = auth_registry.host, tmp_path / "docker-config"
    ref = f"{host}/busybox:latest"
    r = docker_as(daemon, config, "pull", ref)
    assert r.returncode == 1
    assert r.stderr.strip() == (f'Error response from daemon: Head "http://{host}/v2/busybox/'
                                'manifests/latest": no basic auth credentials')
    r = docker_as(daemon, config, "login", "-u", USER, "--password-stdin", host,
                  stdin="wrong\n")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        f"Error response from daemon: login attempt to http://{host}/v2/ failed with "
        "status: 401 Unauthorized")
    r = docker_as(daemon, config, "login", "-u", USER, "--password-stdin", host,
                  stdin=PASSWORD + "\n")
    assert r.returncode == 0 and "Login Succeeded" in r.stdout, r.stderr
    r = docker_as(daemon, config, "pull", ref)
    assert r.returncode == 0 and "Downloaded newer image" in r.stdout, r.stderr
    r = docker(daemon, "inspect", "-f", "{{.Id}}", ref)
    assert r.stdout.strip() == archives["busybox"][1]
    log = daemon.log_text()
    assert PASSWORD not in log and "wrong" not in log.split("login")[-1]


def test_auth_endpoint_answers_and_refuses_bad_input(daemon: Daemon,
                                                     auth_registry: LocalRegistry) -> None:
    host = auth_registry.host
    good = json.dumps({"username": USER, "password": PASSWORD, "serveraddress": host})
    r = daemon.request("POST", "/auth", good.encode(), {"Content-Type": "application/json"})
    assert (r.status, r.json()) == (200, {"IdentityToken": "", "Status": "Login Succeeded"})
    bad = json.dumps({"username": USER, "password": "nope", "serveraddress": host})
    r = daemon.request("POST", "/auth", bad.encode(), {"Content-Type": "application/json"})
    assert (r.status, r.message) == (401, f"login attempt to http://{host}/v2/ failed "
                                          "with status: 401 Unauthorized")
    for body in (b"garbage", b"[]", b'{"username": 5}', b'{"serveraddress": "a b/c"}',
                 b'{"password": {"x": 1}}', b"{" + b" " * (1 << 20) + b"}"):
        r = daemon.request("POST", "/auth", body, {"Content-Type": "application/json"})
        assert r.status == 400, (body[:40], r.body)
    r = daemon.request("POST", "/auth", json.dumps({"serveraddress": "127.0.0.1:1"}).encode(),
                       {"Content-Type": "application/json"})
    assert r.status == 503 and "connection refused" in r.message.lower(), r.body
    r = daemon.request("POST", f"/images/create?fromImage={host}/busybox&tag=latest",
                       headers={"X-Registry-Auth": "!!not base64!!"})
    assert r.status == 500 and "no basic auth credentials" in r.message, r.body


def test_tls_registry_pull(daemon: Daemon, tmp_path: Path,
                           archives: dict[str, tuple[Path, str]]) -> None:
    """A loopback TLS registry is reached without certificate checks, as Docker does."""
    reg = LocalRegistry(tmp_path / "reg", tls=True)
    reg.start()
    try:
        subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet",
                        "--dest-tls-verify=false", f"docker-archive:{archives['two'][0]}",
                        f"docker://{reg.host}/tls:latest"], check=True, capture_output=True)
        r = docker(daemon, "pull", f"{reg.host}/tls:latest")
        assert r.returncode == 0 and "Downloaded newer image" in r.stdout, r.stderr
        r = docker(daemon, "inspect", "-f", "{{.Id}}", f"{reg.host}/tls:latest")
        assert r.stdout.strip() == archives["two"][1]
    finally:
        reg.stop()


def test_push_streams_docker_json_then_pull_gives_same_id(
        daemon: Daemon, registry: LocalRegistry, tmp_path: Path,
        archives: dict[str, tuple[Path, str]]) -> None:
    load = docker(daemon, "load", "-i", str(archives["two"][0]))
    assert load.returncode == 0, load.stderr
    target = f"{registry.host}/pushed"
    assert docker(daemon, "tag", "two:latest", f"{target}:v1").returncode == 0
    auth = {"X-Registry-Auth": "e30="}
    r = daemon.request("POST", f"/images/{target}/push?tag=v1", headers=auth)
    assert r.status == 200, r.body
    docs = lines(r.body)
    assert docs[0] == {"status": f"The push refers to repository [{target}]"}
    diff_ids = daemon.request("GET", f"/images/{target}:v1/json").json()["RootFS"]["Layers"]
    ids = [d[7:19] for d in diff_ids]
    assert [(d["status"], d["id"]) for d in docs[1:3]] == [("Preparing", i) for i in ids]
    for layer in ids:
        assert {"status": "Pushed", "progressDetail": {}, "id": layer} in docs, docs
    digest = str(docs[-1]["aux"]["Digest"])  # type: ignore[index]
    size = docs[-1]["aux"]["Size"]  # type: ignore[index]
    assert docs[-2] == {"status": f"v1: digest: {digest} size: {size}"}
    assert docs[-1] == {"progressDetail": {}, "aux": {"Tag": "v1", "Digest": digest,
                                                      "Size": size}}
    again = lines(daemon.request("POST", f"/images/{target}/push?tag=v1", headers=auth).body)
    assert again[-1] == docs[-1]
    statuses = [(d.get("status"), d.get("id")) for d in again]
    for layer in ids:  # the registry has them now: nothing is uploaded twice
        assert ("Layer already exists", layer) in statuses, again
        assert ("Pushing", layer) not in statuses and ("Pushed", layer) not in statuses
    r = daemon.request("POST", f"/images/{target}/push?tag=v1")
    assert (r.status, r.message) == (400, "Bad parameters and missing X-Registry-Auth: EOF")
    missing = lines(daemon.request("POST", f"/images/{registry.host}/nosuch/push?tag=v1",
                                   headers=auth).body)
    message = f"An image does not exist locally with the tag: {registry.host}/nosuch"
    assert missing[-1] == {"errorDetail": {"message": message}, "error": message}
    # the CLI, and a clean store pulling the new name
    assert docker(daemon, "tag", "two:latest", f"{target}:v2").returncode == 0
    r = docker(daemon, "push", f"{target}:v2")
    assert r.returncode == 0, r.stderr
    assert f"v2: digest: {digest}" in r.stdout
    clean = Daemon(tmp_path / "root", tmp_path / "d.sock")
    clean.start()
    try:
        r = docker(clean, "pull", f"{target}:v2")
        assert r.returncode == 0, r.stderr
        r = docker(clean, "inspect", "-f", "{{.Id}}", f"{target}:v2")
        assert r.stdout.strip() == archives["two"][1]
    finally:
        assert clean.stop() == 0


def test_push_with_login_and_vmcontainer_push(daemon: Daemon, auth_registry: LocalRegistry,
                                              tmp_path: Path) -> None:
    import sys
    host, config = auth_registry.host, tmp_path / "docker-config"
    ref = f"{host}/mine:1"
    assert docker(daemon, "tag", "busybox:latest", ref).returncode == 0
    r = docker_as(daemon, config, "push", ref)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == "no basic auth credentials"
    r = docker_as(daemon, config, "login", "-u", USER, "--password-stdin", host,
                  stdin=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "vmcontainer", "-H", f"unix://{daemon.sock}",
                        "push", ref], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "DOCKER_CONFIG": str(config)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == f"The push refers to repository [{host}/mine]"
    assert r.stdout.splitlines()[-1].startswith("1: digest: sha256:")
    assert PASSWORD not in daemon.log_text()


def zstd_layout(archive: Path, layout: Path) -> str:
    """``archive`` as an OCI layout (tag ``img``) whose layers are zstd-compressed
    (recompressed here with the zstd tool); returns the image ID."""
    subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet",
                    f"docker-archive:{archive}", f"oci:{layout}:img"],
                   check=True, capture_output=True)
    blobs = layout / "blobs" / "sha256"
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((blobs / index["manifests"][0]["digest"][7:]).read_bytes())
    for layer in manifest["layers"]:
        raw = subprocess.run(["gzip", "-dc", str(blobs / layer["digest"][7:])],
                             check=True, capture_output=True).stdout
        packed = subprocess.run(["zstd", "-q", "-c"], input=raw, check=True,
                                capture_output=True).stdout
        digest = hashlib.sha256(packed).hexdigest()
        (blobs / digest).write_bytes(packed)
        layer.update(mediaType="application/vnd.oci.image.layer.v1.tar+zstd",
                     digest="sha256:" + digest, size=len(packed))
    body = json.dumps(manifest).encode()
    digest = hashlib.sha256(body).hexdigest()
    (blobs / digest).write_bytes(body)
    index["manifests"][0].update(digest="sha256:" + digest, size=len(body))
    (layout / "index.json").write_text(json.dumps(index))
    return str(manifest["config"]["digest"])


@pytest.mark.vm
def test_zstd_layers_pull_and_run(daemon: Daemon, registry: LocalRegistry,
                                  archives: dict[str, tuple[Path, str]], tmp_path: Path) -> None:
    """An OCI manifest with zstd-compressed layers: pulled (digests verified), decompressed
    into the base disk, runs."""
    image_id = zstd_layout(archives["two"][0], tmp_path / "layout")
    subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet", "--preserve-digests",
                    "--dest-tls-verify=false", f"oci:{tmp_path / 'layout'}:img",
                    f"docker://{registry.host}/zstd:latest"], check=True, capture_output=True)
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                          f"docker://{registry.host}/zstd:latest"], check=True,
                         capture_output=True).stdout
    media = {layer["mediaType"] for layer in json.loads(raw)["layers"]}
    assert media == {"application/vnd.oci.image.layer.v1.tar+zstd"}, media
    r = docker(daemon, "pull", f"{registry.host}/zstd")
    assert r.returncode == 0, r.stderr
    r = docker(daemon, "inspect", "-f", "{{.Id}}", f"{registry.host}/zstd")
    assert r.stdout.strip() == image_id
    r = docker(daemon, "run", "--rm", f"{registry.host}/zstd", "cat", "/hello")
    assert (r.returncode, r.stdout) == (0, "hi\n"), r.stderr
