"""``docker import`` into the store: formats, config, changes, bad input."""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
from pathlib import Path

import pytest
from imagebuild import Entry, busybox_rootfs_tar, layer_tar

from vmcontainer.errors import InvalidParameter
from vmcontainer.image import ImageStore
from vmcontainer.image.errors import InvalidArchive, InvalidReference, UnsafeLayerEntry


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "image")


def snapshot(store: ImageStore) -> tuple[bytes, list[str], list[str]]:
    """index.json, the blob names and the staging area: what a failed call must not change."""
    return (store.layout.index_path.read_bytes(),
            sorted(p.name for p in store.layout.blobs.iterdir()),
            sorted(p.name for p in store.tmp_dir.iterdir()))


@pytest.mark.parametrize("compress", [None, ["gzip", "-c"], ["xz", "-c"], ["bzip2", "-c"],
                                      ["zstd", "-q", "-c"]])
def test_import_formats(store: ImageStore, tmp_path: Path, compress: list[str] | None) -> None:
    plain = busybox_rootfs_tar()
    data = plain if compress is None else subprocess.run(
        compress, input=plain, capture_output=True, check=True).stdout
    path = tmp_path / "rootfs.tar"
    path.write_bytes(data)
    image_id = store.import_rootfs(path, "imported:v1")
    image = store.resolve("imported:v1")
    diff_id = "sha256:" + hashlib.sha256(plain).hexdigest()
    assert image.id == image_id
    assert image.diff_ids == (diff_id,)
    assert image.layers == (diff_id,)  # stored uncompressed: blob digest is the diff ID
    assert image.size == len(plain)
    assert store.layout.blob_path(diff_id).read_bytes() == plain
    assert image_id == "sha256:" + hashlib.sha256(
        store.layout.blob_path(image_id).read_bytes()).hexdigest()


def test_import_config_is_dockers(store: ImageStore, tmp_path: Path) -> None:
    path = tmp_path / "rootfs.tar"
    path.write_bytes(busybox_rootfs_tar())
    image = store.resolve(store.import_rootfs(path, "busybox"))
    config = image.config
    assert config["architecture"] == "amd64" and config["os"] == "linux"
    assert config["comment"] == "Imported from -"
    assert config["history"] == [{"created": image.created, "comment": "Imported from -"}]
    assert image.created.endswith("Z") and image.created.startswith("20")
    run = config["config"]
    assert isinstance(run, dict)
    assert run["Cmd"] is None and run["Entrypoint"] is None and run["Env"] is None
    assert image.run_config.cmd is None and image.run_config.entrypoint is None
    assert config["rootfs"] == {"type": "layers", "diff_ids": list(image.diff_ids)}
    assert image.repo_tags == ("busybox:latest",)
    manifest = json.loads(store.layout.read_blob(image.manifest_digest))
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar"


def test_import_with_changes_and_message(store: ImageStore, tmp_path: Path) -> None:
    path = tmp_path / "rootfs.tar"
    path.write_bytes(busybox_rootfs_tar())
    changes: dict[str, object] = {
        "Cmd": ["/bin/sh"], "Env": ["A=b"], "WorkingDir": "/w", "User": "1:2",
        "ExposedPorts": {"80/tcp": {}}, "Labels": {"k": "v"}, "Volumes": {"/data": {}}}
    image = store.resolve(store.import_rootfs(path, "app", changes, message="hello"))
    rc = image.run_config
    assert rc.cmd == ("/bin/sh",) and rc.env == ("A=b",) and rc.working_dir == "/w"
    assert rc.user == "1:2" and rc.exposed_ports == ("80/tcp",) and rc.labels == {"k": "v"}
    assert rc.volumes == ("/data",)
    assert image.config["comment"] == "hello"
    with pytest.raises(InvalidParameter, match="Hostname is not a valid change"):
        store.import_rootfs(path, "app", {"Hostname": "x"})


def test_import_from_stream_untagged(store: ImageStore) -> None:
    image_id = store.import_rootfs(io.BytesIO(layer_tar([Entry("f", data=b"x")])))
    image = store.resolve(image_id)
    assert image.repo_tags == ()
    assert [i.id for i in store.list()] == [image_id]


def test_import_bad_input_changes_nothing(store: ImageStore, tmp_path: Path) -> None:
    store.import_rootfs(io.BytesIO(busybox_rootfs_tar()), "keep")
    before = snapshot(store)
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"definitely not a tar" * 100)
    with pytest.raises(InvalidArchive, match=r"garbage\.tar: not a tar archive"):
        store.import_rootfs(garbage, "x")
    bad_gzip = tmp_path / "bad.tar.gz"
    bad_gzip.write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 50)
    with pytest.raises(InvalidArchive, match="corrupt gzip"):
        store.import_rootfs(bad_gzip, "x")
    with pytest.raises(InvalidArchive, match="no such file or directory"):
        store.import_rootfs(tmp_path / "missing.tar", "x")
    with pytest.raises(InvalidReference, match="must be lowercase"):
        store.import_rootfs(io.BytesIO(busybox_rootfs_tar()), "Bad")
    with pytest.raises(InvalidReference, match="digest reference"):
        store.import_rootfs(io.BytesIO(busybox_rootfs_tar()), "x@sha256:" + "a" * 64)
    assert snapshot(store) == before


def test_import_refuses_hostile_names(store: ImageStore) -> None:
    before = snapshot(store)
    with pytest.raises(UnsafeLayerEntry, match=re.escape('"../evil" is outside of "/"')) as info:
        store.import_rootfs(io.BytesIO(layer_tar([Entry("../evil", data=b"x")])), "evil")
    assert info.value.entry == "../evil"
    with pytest.raises(UnsafeLayerEntry, match="invalid hardlink"):
        store.import_rootfs(io.BytesIO(layer_tar([Entry("h", "hardlink", target="../x")])))
    assert snapshot(store) == before


def test_same_content_imports_dedupe_layers(store: ImageStore) -> None:
    a = store.import_rootfs(io.BytesIO(busybox_rootfs_tar()), "a")
    b = store.import_rootfs(io.BytesIO(busybox_rootfs_tar()), "b")
    assert a != b  # different "created" times, so different configs
    assert store.resolve("a").layers == store.resolve("b").layers
    layer_blobs = [p for p in store.layout.blobs.iterdir() if p.stat().st_size > 100_000]
    assert len(layer_blobs) == 1
