"""The image store with its real tools: skopeo (load), mke2fs and debugfs (base disks).

Test images are busybox root filesystems written as ``docker save`` archives by
tests/imagebuild.py; OCI archives are made from them with ``skopeo copy``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import threading
from pathlib import Path

import pytest
from imagebuild import (
    ArchiveImage,
    Entry,
    busybox_rootfs_tar,
    layer_tar,
    write_docker_archive,
    write_docker_archive_multi,
)

from vmcontainer.errors import InvalidParameter
from vmcontainer.image import ImageStore
from vmcontainer.image.errors import InvalidArchive, UnsafeLayerEntry

# skopeo is installed by `make deps`: a missing one must fail, not skip.
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="base disks need root (chroot, mknod)")


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "image")


@pytest.fixture
def busybox_archive(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "busybox.tar"
    image_id = write_docker_archive(path, [busybox_rootfs_tar()], ["busybox:latest"],
                                    {"Cmd": ["sh"], "Env": ["PATH=/bin"]})
    return path, image_id


def snapshot(store: ImageStore) -> tuple[bytes, list[str], list[str]]:
    return (store.layout.index_path.read_bytes(),
            sorted(p.name for p in store.layout.blobs.iterdir()),
            sorted(p.name for p in store.tmp_dir.iterdir()))


def debugfs(disk: Path, command: str) -> str:
    return subprocess.run(["debugfs", "-R", command, str(disk)], capture_output=True,
                          text=True, check=True).stdout


def names(disk: Path, directory: str) -> set[str]:
    """The entry names debugfs lists in ``directory`` (without . and ..)."""
    found = set(re.findall(r"\(\d+\) (\S+)", debugfs(disk, f"ls {directory}")))
    return found - {".", ".."}


# -- load ---------------------------------------------------------------------------


def test_load_tagged_docker_archive(store: ImageStore, busybox_archive: tuple[Path, str]) -> None:
    path, image_id = busybox_archive
    assert store.load(path) == ["Loaded image: busybox:latest"]
    image = store.resolve("busybox")
    assert image.id == image_id  # the config bytes are kept: Docker's image ID
    assert image.repo_tags == ("busybox:latest",)
    assert image.run_config.cmd == ("sh",) and image.run_config.env == ("PATH=/bin",)
    assert image.created == "2024-01-01T00:00:00Z"
    assert image.size == len(busybox_rootfs_tar())
    assert image.layers == image.diff_ids  # docker-archive layers stay uncompressed
    assert store.load(path) == ["Loaded image: busybox:latest"]  # idempotent
    assert len(store.list()) == 1
    assert os.listdir(store.tmp_dir) == []


def test_load_untagged_and_multi_image_archives(store: ImageStore, tmp_path: Path) -> None:
    untagged = tmp_path / "untagged.tar"
    one = write_docker_archive(untagged, [busybox_rootfs_tar(("sh",))])
    assert store.load(untagged) == [f"Loaded image ID: {one}"]
    assert store.resolve(one).repo_tags == ()

    multi = tmp_path / "multi.tar"
    ids = write_docker_archive_multi(multi, [
        ArchiveImage([busybox_rootfs_tar()], ["busybox:latest", "mirror.local:5000/bb:1"]),
        ArchiveImage([busybox_rootfs_tar(("ls",))], []),
    ])
    # Docker prints the ID lines only when the last image of the archive is untagged.
    assert store.load(multi) == ["Loaded image: busybox:latest",
                                 "Loaded image: mirror.local:5000/bb:1",
                                 f"Loaded image ID: {ids[0]}", f"Loaded image ID: {ids[1]}"]
    assert store.resolve("mirror.local:5000/bb:1").id == ids[0]
    assert store.resolve("busybox").repo_tags == ("busybox:latest", "mirror.local:5000/bb:1")

    last_tagged = tmp_path / "last-tagged.tar"
    ids2 = write_docker_archive_multi(last_tagged, [
        ArchiveImage([busybox_rootfs_tar(("cat",))], []),
        ArchiveImage([busybox_rootfs_tar(("id",))], ["other:2"])])
    assert store.load(last_tagged) == ["Loaded image: other:2"]
    assert {i.id for i in store.list()} == {one, *ids, *ids2}


def test_load_moves_an_existing_tag(store: ImageStore, tmp_path: Path,
                                    busybox_archive: tuple[Path, str]) -> None:
    old_path, old_id = busybox_archive
    store.load(old_path)
    new_path = tmp_path / "new.tar"
    new_id = write_docker_archive(new_path, [busybox_rootfs_tar(("sh",))], ["busybox:latest"])
    assert store.load(new_path) == [
        f"The image busybox:latest already exists, renaming the old one with ID {old_id} "
        "to empty string", "Loaded image: busybox:latest"]
    assert store.resolve("busybox").id == new_id
    assert store.resolve(old_id).repo_tags == ()


def test_load_multi_layer_and_compressed_archive(store: ImageStore, tmp_path: Path) -> None:
    layers = [busybox_rootfs_tar(), layer_tar([Entry("etc", "dir", mode=0o755),
                                               Entry("etc/motd", data=b"hi\n")])]
    plain = tmp_path / "two.tar"
    image_id = write_docker_archive(plain, layers, ["two:layers"])
    packed = tmp_path / "two.tar.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert store.load(packed) == ["Loaded image: two:layers"]
    image = store.resolve("two:layers")
    assert image.id == image_id and len(image.layers) == 2


def test_load_from_stream(store: ImageStore, busybox_archive: tuple[Path, str]) -> None:
    path, image_id = busybox_archive
    with path.open("rb") as stream:
        assert store.load(stream) == ["Loaded image: busybox:latest"]
    assert store.resolve(image_id).repo_tags == ("busybox:latest",)


def test_load_oci_archive(store: ImageStore, tmp_path: Path,
                          busybox_archive: tuple[Path, str]) -> None:
    path, docker_id = busybox_archive
    oci_tagged = tmp_path / "oci.tar"
    subprocess.run(["skopeo", "--insecure-policy", "copy", "-q", f"docker-archive:{path}",
                    f"oci-archive:{oci_tagged}:ocibox:v1"], check=True)
    lines = store.load(oci_tagged)
    assert lines == ["Loaded image: ocibox:v1"]
    image = store.resolve("ocibox:v1")
    # skopeo's conversion to OCI rewrote the config, so the ID differs from Docker's.
    assert image.id != docker_id
    assert image.run_config.cmd == ("sh",)
    layout_index = json.loads(subprocess.run(["tar", "-xOf", str(oci_tagged), "index.json"],
                                             capture_output=True, check=True).stdout)
    assert layout_index["manifests"][0]["digest"] == image.manifest_digest

    oci_bare = tmp_path / "bare.tar"
    subprocess.run(["skopeo", "--insecure-policy", "copy", "-q", f"docker-archive:{path}",
                    f"oci-archive:{oci_bare}"], check=True)
    assert store.load(oci_bare) == [f"Loaded image ID: {image.id}"]


@pytest.mark.parametrize("content", [
    b"", b"not an archive at all" * 100, b"\x1f\x8b\x08\x00garbage",
])
def test_load_rejects_non_archives(store: ImageStore, tmp_path: Path, content: bytes) -> None:
    before = snapshot(store)
    bad = tmp_path / "bad.tar"
    bad.write_bytes(content)
    with pytest.raises(InvalidArchive, match=r"^bad\.tar: "):
        store.load(bad)
    assert snapshot(store) == before


def test_load_rejects_corrupt_archives(store: ImageStore, tmp_path: Path,
                                       busybox_archive: tuple[Path, str]) -> None:
    path, _ = busybox_archive
    store.load(path)
    before = snapshot(store)
    data = path.read_bytes()
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidArchive, match=r"^truncated\.tar: "):
        store.load(truncated)
    plain_tar = tmp_path / "plain.tar"
    plain_tar.write_bytes(layer_tar([Entry("hello", data=b"x")]))
    with pytest.raises(InvalidArchive, match=r"neither manifest\.json nor oci-layout"):
        store.load(plain_tar)
    # A layer whose bytes no longer match the digest the config promises.
    tampered = tmp_path / "tampered.tar"
    marker = b"root:x:0:0:root:/root:/bin/sh"
    assert data.count(marker) == 1
    tampered.write_bytes(data.replace(marker, marker.replace(b"root:/", b"ROOT:/")))
    with pytest.raises(InvalidArchive, match=r"^tampered\.tar: image 0: "):
        store.load(tampered)
    bad_tag = tmp_path / "badtag.tar"
    write_docker_archive(bad_tag, [busybox_rootfs_tar()], ["Bad:tag"])
    with pytest.raises(InvalidArchive, match='invalid tag "Bad:tag"'):
        store.load(bad_tag)
    with pytest.raises(InvalidArchive, match="no such file or directory"):
        store.load(tmp_path / "missing.tar")
    assert snapshot(store) == before


def test_concurrent_loads(store: ImageStore, tmp_path: Path) -> None:
    paths, ids = [], []
    for i, applet in enumerate(("ls", "cat", "id", "env")):
        path = tmp_path / f"img{i}.tar"
        ids.append(write_docker_archive(path, [busybox_rootfs_tar((applet,))], [f"img{i}:t"]))
        paths.append(path)
    errors: list[BaseException] = []

    def load(p: Path) -> None:
        try:
            ImageStore(store.root).load(p)  # a second store object: as another process
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=load, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert {i.id for i in store.list()} == set(ids)
    assert [store.resolve(f"img{i}:t").id for i in range(4)] == ids


# -- base disks ---------------------------------------------------------------------


def test_rootfs_disk_content(store: ImageStore, busybox_archive: tuple[Path, str]) -> None:
    path, _ = busybox_archive
    store.load(path)
    image = store.resolve("busybox")
    old_umask = os.umask(0o077)  # a daemon's umask must not leak into the image
    try:
        disk = store.rootfs_disk(image)
    finally:
        os.umask(old_umask)
    assert disk == store.root / "rootfs" / (image.id.split(":")[1] + ".ext4")
    assert "Mode:  0755" in debugfs(disk, "stat /")
    assert oct(disk.stat().st_mode & 0o777) == "0o444"
    assert disk.stat().st_size >= 8 << 30
    assert disk.stat().st_blocks * 512 < 64 << 20  # sparse: content + metadata only
    listing = debugfs(disk, "ls -l /bin")
    assert re.search(r"100755 \(1\)\s+0\s+0\s+1982256 .* busybox", listing)
    assert re.search(r"120777 \(7\)\s+0\s+0\s+7 .* sh", listing)
    assert debugfs(disk, "cat /etc/passwd").startswith("root:x:0:0:root:/root:/bin/sh")
    assert names(disk, "/") == {"bin", "etc", "tmp", "root", "proc", "sys", "dev"}
    assert {"busybox", "sh", "ls", "cat"} <= names(disk, "/bin")
    assert "41777" in debugfs(disk, "ls -l /").split("tmp")[0].splitlines()[-1]
    fsck = subprocess.run(["e2fsck", "-fn", str(disk)], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout
    label = subprocess.run(["dumpe2fs", "-h", str(disk)], capture_output=True, text=True).stdout
    assert re.search(r"Filesystem volume name:\s+rootfs", label)


def test_rootfs_disk_metadata_and_whiteouts(store: ImageStore, tmp_path: Path) -> None:
    lower = layer_tar([
        Entry("bin", "dir", mode=0o755), Entry("bin/su", data=b"#!", mode=0o4755),
        Entry("home", "dir", mode=0o755), Entry("home/u", "dir", mode=0o700, uid=1000, gid=1000),
        Entry("home/u/f", data=b"data", mode=0o640, uid=1000, gid=1001,
              xattrs={"user.note": b"hello"}),
        Entry("home/u/hard", "hardlink", target="home/u/f"),
        Entry("etc", "dir", mode=0o755), Entry("etc/localtime", "symlink", target="/usr/zone"),
        Entry("dev", "dir", mode=0o755), Entry("dev/null", "char", mode=0o666, major=1, minor=3),
        Entry("old", data=b"gone"), Entry("cache", "dir"), Entry("cache/a", data=b"a"),
    ])
    upper = layer_tar([Entry(".wh.old"), Entry("cache", "dir"), Entry("cache/.wh..wh..opq"),
                       Entry("cache/b", data=b"b")])
    archive = tmp_path / "meta.tar"
    write_docker_archive(archive, [lower, upper], ["meta:1"])
    store.load(archive)
    disk = store.rootfs_disk(store.resolve("meta:1"))
    assert "Mode:  04755" in debugfs(disk, "stat /bin/su")
    f_stat = debugfs(disk, "stat /home/u/f")
    assert re.search(r"User:\s+1000\s+Group:\s+1001", f_stat)
    assert "Links: 2" in f_stat and "Mode:  0640" in f_stat
    assert 'user.note (5) = "hello"' in debugfs(disk, "ea_list /home/u/f")
    assert debugfs(disk, "stat /home/u/hard").split("Generation")[0] == f_stat.split(
        "Generation")[0]
    assert "Fast link dest: \"/usr/zone\"" in debugfs(disk, "stat /etc/localtime")
    null = debugfs(disk, "stat /dev/null")
    assert "Type: character special" in null and "Device major/minor number: 01:03" in null
    assert names(disk, "/") == {"bin", "home", "etc", "dev", "cache"}  # "old" whited out
    assert names(disk, "/cache") == {"b"}  # opaque: the lower "a" is hidden


def test_rootfs_disk_is_built_once(store: ImageStore,
                                   busybox_archive: tuple[Path, str]) -> None:
    path, _ = busybox_archive
    store.load(path)
    image = store.resolve("busybox")
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(
        ImageStore(store.root).rootfs_disk(image))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and len(results) == 3
    inode = results[0].stat().st_ino
    assert store.rootfs_disk(image).stat().st_ino == inode
    assert sorted(p.name for p in (store.root / "rootfs").iterdir()) == [
        results[0].name, results[0].with_suffix(".list").name,  # the tree, for docker diff
        results[0].with_suffix(".lock").name]
    assert os.listdir(store.tmp_dir) == []
    store.remove("busybox")
    assert sorted(os.listdir(store.root / "rootfs")) == []


def test_hostile_image_fails_cleanly(store: ImageStore, tmp_path: Path) -> None:
    name = f"pwned-{os.getpid()}"
    hostile = layer_tar([Entry("tmp", "dir"), Entry("link", "symlink", target="/tmp"),
                         Entry(f"link/{name}", data=b"x"), Entry(f"../{name}", data=b"y")])
    archive = tmp_path / "hostile.tar"
    write_docker_archive(archive, [hostile], ["hostile:1"])
    store.load(archive)  # skopeo copies bytes; the layer is only applied for the disk
    image = store.resolve("hostile:1")
    with pytest.raises(UnsafeLayerEntry) as info:
        store.rootfs_disk(image)
    assert f'"../{name}" is outside of "/"' in str(info.value)
    assert info.value.entry == f"../{name}"
    assert not Path("/tmp", name).exists() and not Path("/", name).exists()
    assert not (store.root / name).exists() and not (store.tmp_dir / name).exists()
    assert os.listdir(store.tmp_dir) == []
    assert not list((store.root / "rootfs").glob("*.ext4"))


def test_image_id_is_config_digest(store: ImageStore, busybox_archive: tuple[Path, str]) -> None:
    path, image_id = busybox_archive
    store.load(path)
    config = store.layout.read_blob(image_id)
    assert "sha256:" + hashlib.sha256(config).hexdigest() == image_id
    manifest = json.loads(store.layout.read_blob(store.resolve(image_id).manifest_digest))
    assert manifest["config"]["digest"] == image_id
    assert manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar"
    assert store.import_rootfs(io.BytesIO(busybox_rootfs_tar()), "x").startswith("sha256:")


def test_manifest_that_is_a_link_is_refused(store: ImageStore, tmp_path: Path) -> None:
    import tarfile
    archive = tmp_path / "msym.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(InvalidParameter, match=r"manifest\.json is not a regular file"):
        store.load(archive)
