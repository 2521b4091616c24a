"""Parsing of Binds, Mounts, Tmpfs and Config.Volumes (vmcontainer.volume.mounts),
with Docker's texts, and the volume disk tools (real mke2fs/debugfs)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from vmcontainer.errors import InvalidParameter
from vmcontainer.volume import disk
from vmcontainer.volume.mounts import MountPoint, parse_all, parse_bind, parse_mount, tmpfs_options
from vmcontainer.volume.store import VolumeStore


def test_binds() -> None:
    assert parse_bind("/h:/c:ro") == MountPoint("bind", "/c", "/h", rw=False, mode="ro",
                                                propagation="rprivate", create_source=True)
    assert parse_bind("vol:/data/") == MountPoint("volume", "/data", "vol", mode="z")
    assert parse_bind("/anon") == MountPoint("volume", "/anon", anonymous=True)
    assert parse_bind("/anon:ro").rw is False
    assert parse_bind("v1:/d:nocopy").nocopy


@pytest.mark.parametrize("spec,message", [
    ("a:b:c:d", "invalid volume specification: 'a:b:c:d'"),
    ("/h:rel", "mount path must be absolute"),
    ("/h:/", "destination can't be '/'"),
    ("/h:/c:bogus", "invalid mode: bogus"),
    ("/h:/c:ro,rw", "invalid mode: ro,rw"),
    ("x/y:/c", "includes invalid characters for a local volume name"),
])
def test_bad_binds(spec: str, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        parse_bind(spec)


def test_mounts() -> None:
    m = parse_mount({"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20,
                                                                         "Mode": 0o1777}})
    assert m.tmpfs_options == "noexec,nosuid,nodev,size=1048576,mode=1777"
    m = parse_mount({"Type": "volume", "Source": "v1", "Target": "/d", "ReadOnly": True,
                     "VolumeOptions": {"NoCopy": True,
                                       "DriverConfig": {"Options": {"size": "1g"}}}})
    assert (m.rw, m.nocopy, m.options) == (False, True, {"size": "1g"})
    for bad, text in (({"Type": "bind", "Target": "/x"}, "field Source must not be empty"),
                      ({"Type": "nfs", "Target": "/x"}, 'mount type unknown: "nfs"'),
                      ({"Type": "tmpfs", "Source": "a", "Target": "/x"},
                       "field Source must not be specified"),
                      ({"Type": "volume", "Target": "/x", "BindOptions": {"Propagation": "x"}},
                       "field BindOptions must not be specified")):
        with pytest.raises(InvalidParameter, match=text):
            parse_mount(bad)


def test_tmpfs_options_and_duplicates() -> None:
    assert tmpfs_options("size=16m,exec") == ("nosuid,nodev,exec,size=16777216", True)
    assert tmpfs_options("ro")[1] is False
    for bad in ("bogus", "size=1;x", "mode=999"):
        with pytest.raises(InvalidParameter):
            tmpfs_options(bad)
    with pytest.raises(InvalidParameter, match="Duplicate mount point: /x"):
        parse_all(["/a:/x"], [], {"/x": ""}, [])
    mps = parse_all(["v1:/a"], [], {}, ["/a", "/b"])  # Config.Volumes under a bind: no new
    assert [(m.destination, m.anonymous) for m in mps] == [("/a", False), ("/b", True)]


def test_volume_disk_is_sparse_and_filled_from_an_image_dir(tmp_path: Path) -> None:
    src = tmp_path / "img"
    (src / "var" / "lib" / "db").mkdir(parents=True)
    (src / "var" / "lib" / "db" / "PG_VERSION").write_text("15\n")
    (src / "var" / "lib" / "db" / "link").symlink_to("/etc/passwd")
    subprocess.run(["chown", "-R", "105:107", str(src / "var" / "lib" / "db")], check=True)
    (src / "var" / "lib" / "db").chmod(0o700)
    base = tmp_path / "base.ext4"
    disk.make_disk(base, 64 << 20, src)
    store = VolumeStore(tmp_path / "volumes")
    vol, created = store.create("data1", options={"size": "32m"})
    assert created and store.empty("data1") and vol.size_bytes == 32 << 20
    assert store.create("data1")[1] is False  # idempotent, as Docker
    path = store.disk("data1")
    assert disk.fill_from_image(path, vol.size_bytes, base, "/var/lib/db")
    assert not disk.fill_from_image(path, vol.size_bytes, base, "/nonexistent")
    assert not store.empty("data1")
    out = subprocess.run(["debugfs", "-R", "ls -p /", str(path)], capture_output=True,
                         text=True, check=True).stdout
    assert "/105/107/PG_VERSION/3/" in out and "/link/" in out and "lost+found" not in out
    st = subprocess.run(["debugfs", "-R", "stat /", str(path)], capture_output=True,
                        text=True, check=True).stdout
    assert "Mode:  0700" in st and "User:   105   Group:   107" in st
    with pytest.raises(InvalidParameter, match="invalid option"):
        store.create("data2", options={"type": "nfs"})
    with pytest.raises(InvalidParameter, match="16MiB"):
        store.create("data2", options={"size": "1k"})
    store.remove("data1")
    assert list(store.all()) == []
