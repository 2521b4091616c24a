"""Applying layer tars: whiteouts, metadata, compression, and hostile input.

Runs the real worker (chroot), so it needs root.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest
from imagebuild import Entry, busybox_rootfs_tar, layer_tar

from vmcontainer.errors import InvalidParameter
from vmcontainer.image.errors import InvalidLayer, UnsafeLayerEntry
from vmcontainer.image.layers import Compression, apply_layers, detect_compression

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the layer worker chroots: needs root")


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "parent" / "rootfs"
    root.mkdir(parents=True)
    return root


def write_layers(tmp_path: Path, *layers: bytes) -> list[Path]:
    paths = []
    for i, data in enumerate(layers):
        path = tmp_path / f"layer{i}.tar"
        path.write_bytes(data)
        paths.append(path)
    return paths


def apply(tmp_path: Path, rootfs: Path, *entries_per_layer: list[Entry]) -> None:
    apply_layers(rootfs, write_layers(tmp_path, *(layer_tar(e) for e in entries_per_layer)))


def test_busybox_layer(tmp_path: Path, rootfs: Path) -> None:
    apply_layers(rootfs, write_layers(tmp_path, busybox_rootfs_tar()))
    assert (rootfs / "bin" / "busybox").read_bytes() == Path("/bin/busybox").read_bytes()
    assert os.readlink(rootfs / "bin" / "sh") == "busybox"
    assert stat.S_IMODE((rootfs / "tmp").stat().st_mode) == 0o1777
    assert (rootfs / "etc" / "passwd").read_text().startswith("root:x:0:0")


def test_whiteouts_and_opaque_directories(tmp_path: Path, rootfs: Path) -> None:
    lower = [Entry("a", "dir", mode=0o755), Entry("a/x", data=b"x"), Entry("a/y", data=b"y"),
             Entry("b", data=b"b"), Entry("c", "dir", mode=0o755), Entry("c/z", data=b"z"),
             Entry("c/sub", "dir", mode=0o755), Entry("c/sub/deep", data=b"d"),
             Entry("d", "dir", mode=0o755), Entry("d/keep", data=b"k"),
             Entry("e", "dir", mode=0o755), Entry("e/gone", data=b"g")]
    upper = [Entry("a/.wh.x"), Entry(".wh.b"),
             Entry("c", "dir", mode=0o755), Entry("c/.wh..wh..opq"), Entry("c/new", data=b"n"),
             Entry("d", "dir", mode=0o755), Entry("d/early", data=b"e"),
             Entry("d/.wh..wh..opq"),
             Entry(".wh.e"), Entry("e", "dir", mode=0o700), Entry("e/fresh", data=b"f"),
             Entry(".wh..wh.plnk", "dir")]
    apply(tmp_path, rootfs, lower, upper)
    assert sorted(os.listdir(rootfs / "a")) == ["y"]
    assert not (rootfs / "b").exists()
    assert sorted(os.listdir(rootfs / "c")) == ["new"]
    assert sorted(os.listdir(rootfs / "d")) == ["early"]  # created by this layer: kept
    assert sorted(os.listdir(rootfs / "e")) == ["fresh"]
    assert stat.S_IMODE((rootfs / "e").stat().st_mode) == 0o700
    assert not any(name.startswith(".wh.") for _, dirs, files in os.walk(rootfs)
                   for name in dirs + files)


def test_upper_layer_replaces_file_with_directory_and_back(tmp_path: Path, rootfs: Path) -> None:
    apply(tmp_path, rootfs,
          [Entry("p", data=b"file"), Entry("q", "dir"), Entry("q/inner", data=b"i")],
          [Entry("p", "dir", mode=0o750), Entry("p/child", data=b"c"), Entry("q", data=b"now")])
    assert (rootfs / "p" / "child").read_bytes() == b"c"
    assert (rootfs / "q").read_bytes() == b"now"


def test_metadata_is_preserved(tmp_path: Path, rootfs: Path) -> None:
    value = b"\x00\xffbinary\x01"
    apply(tmp_path, rootfs, [
        Entry("bin", "dir", mode=0o755),
        Entry("bin/su", data=b"#!", mode=0o4755),
        Entry("bin/sg", data=b"#!", mode=0o2711, gid=42),
        Entry("home", "dir", mode=0o755),
        Entry("home/u", "dir", mode=0o700, uid=1000, gid=1000),
        Entry("home/u/f", data=b"data", mode=0o640, uid=1000, gid=1001,
              xattrs={"user.test": value}),
        Entry("home/u/link", "symlink", target="/etc/localtime", uid=1000, gid=1000),
        Entry("home/u/hard", "hardlink", target="home/u/f"),
        Entry("dev", "dir", mode=0o755),
        Entry("dev/null", "char", mode=0o666, major=1, minor=3),
        Entry("dev/loop9", "block", mode=0o660, major=7, minor=9, gid=6),
        Entry("dev/fifo", "fifo", mode=0o600),
    ])
    su = (rootfs / "bin" / "su").stat()
    assert stat.S_IMODE(su.st_mode) == 0o4755
    assert stat.S_IMODE((rootfs / "bin" / "sg").stat().st_mode) == 0o2711
    assert (rootfs / "bin" / "sg").stat().st_gid == 42
    f = (rootfs / "home" / "u" / "f").stat()
    assert (f.st_uid, f.st_gid, stat.S_IMODE(f.st_mode), f.st_nlink) == (1000, 1001, 0o640, 2)
    assert f.st_mtime == 1_700_000_000
    assert os.getxattr(rootfs / "home" / "u" / "f", "user.test") == value
    assert (rootfs / "home" / "u" / "hard").stat().st_ino == f.st_ino
    link = rootfs / "home" / "u" / "link"
    assert os.readlink(link) == "/etc/localtime"
    assert link.lstat().st_uid == 1000
    null = (rootfs / "dev" / "null").stat()
    assert stat.S_ISCHR(null.st_mode)
    assert (os.major(null.st_rdev), os.minor(null.st_rdev)) == (1, 3)
    loop = (rootfs / "dev" / "loop9").stat()
    assert stat.S_ISBLK(loop.st_mode) and loop.st_gid == 6
    assert stat.S_ISFIFO((rootfs / "dev" / "fifo").stat().st_mode)
    assert (rootfs / "home" / "u").stat().st_uid == 1000


@pytest.mark.parametrize("tool", [["gzip", "-c"], ["zstd", "-q", "-c"], ["xz", "-c"],
                                  ["bzip2", "-c"]])
def test_compressed_layers(tmp_path: Path, rootfs: Path, tool: list[str]) -> None:
    plain = layer_tar([Entry("hello", data=b"world")])
    packed = subprocess.run(tool, input=plain, capture_output=True, check=True).stdout
    path = tmp_path / "layer"
    path.write_bytes(packed)
    apply_layers(rootfs, [path])
    assert (rootfs / "hello").read_bytes() == b"world"


def test_detect_compression() -> None:
    assert detect_compression(gzip.compress(b"x")) is Compression.GZIP
    assert detect_compression(b"\x28\xb5\x2f\xfd....") is Compression.ZSTD
    assert detect_compression(b"hello") is Compression.NONE


def test_corrupt_layers_are_refused(tmp_path: Path, rootfs: Path) -> None:
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"this is not a tar archive" * 40)
    with pytest.raises(InvalidLayer, match="invalid tar"):
        apply_layers(rootfs, [garbage])
    broken = tmp_path / "broken.gz"
    broken.write_bytes(gzip.compress(layer_tar([Entry("f", data=b"x" * 5000)]))[:-20])
    with pytest.raises(InvalidLayer, match=r"layer broken\.gz"):
        apply_layers(rootfs, [broken])


# -- hostile input: nothing may appear outside the rootfs -------------------------


def outside_paths(rootfs: Path, name: str) -> list[Path]:
    return [Path("/") / name, Path("/tmp") / name, rootfs.parent / name,
            rootfs.parent.parent / name]


def test_dotdot_entry_is_refused_and_named(tmp_path: Path, rootfs: Path) -> None:
    name = f"evil-{uuid.uuid4().hex}"
    for bad in (f"../{name}", f"a/../../{name}", f"/../{name}", f"../../../../../tmp/{name}"):
        with pytest.raises(UnsafeLayerEntry) as info:
            apply(tmp_path, rootfs, [Entry("ok", data=b"fine"), Entry(bad, data=b"pwned")])
        assert f'"{bad}" is outside of "/"' in str(info.value)
        assert info.value.entry == bad
        assert isinstance(info.value, InvalidParameter)
        assert not any(p.exists() for p in outside_paths(rootfs, name))


@pytest.mark.parametrize("target", ["/", "/tmp", "../../..", "../../../tmp"])
def test_write_through_symlink_stays_inside(tmp_path: Path, rootfs: Path, target: str) -> None:
    name = f"pwned-{uuid.uuid4().hex}"
    apply(tmp_path, rootfs, [Entry("tmp", "dir", mode=0o1777),
                             Entry("link", "symlink", target=target),
                             Entry(f"link/{name}", data=b"pwned")])
    assert not any(p.exists() for p in outside_paths(rootfs, name))
    inside = rootfs / ("tmp" if target.endswith("tmp") else "") / name
    assert inside.read_bytes() == b"pwned"


def test_symlink_then_directory_entry_stays_inside(tmp_path: Path, rootfs: Path) -> None:
    name = f"dir-{uuid.uuid4().hex}"
    apply(tmp_path, rootfs, [Entry("tmp", "dir"), Entry("escape", "symlink", target="/tmp"),
                             Entry(f"escape/{name}", "dir"), Entry(f"escape/{name}/f", data=b"x")])
    assert not Path("/tmp", name).exists()
    assert (rootfs / "tmp" / name / "f").exists()


def test_absolute_hardlink_resolves_inside_the_rootfs(tmp_path: Path, rootfs: Path) -> None:
    host_links = os.stat("/etc/shadow").st_nlink if os.path.exists("/etc/shadow") else None
    apply(tmp_path, rootfs, [Entry("etc", "dir"), Entry("etc/shadow", data=b"image shadow"),
                             Entry("stolen", "hardlink", target="/etc/shadow")])
    assert (rootfs / "stolen").read_bytes() == b"image shadow"
    assert (rootfs / "stolen").stat().st_ino == (rootfs / "etc" / "shadow").stat().st_ino
    if host_links is not None:
        assert os.stat("/etc/shadow").st_nlink == host_links


def test_hardlink_to_missing_target_is_refused(tmp_path: Path, rootfs: Path) -> None:
    host_links = os.stat("/etc/shadow").st_nlink if os.path.exists("/etc/shadow") else None
    with pytest.raises(InvalidLayer) as info:
        apply(tmp_path, rootfs, [Entry("stolen", "hardlink", target="/etc/shadow")])
    assert '"stolen"' in str(info.value) and info.value.entry == "stolen"
    assert not (rootfs / "stolen").exists()
    if host_links is not None:
        assert os.stat("/etc/shadow").st_nlink == host_links


def test_hardlink_climbing_out_is_refused(tmp_path: Path, rootfs: Path) -> None:
    with pytest.raises(UnsafeLayerEntry) as info:
        apply(tmp_path, rootfs, [Entry("x", "hardlink", target="../../../etc/passwd")])
    assert str(info.value).endswith('invalid hardlink "x" -> "../../../etc/passwd"')


def test_hardlink_through_symlink_stays_inside(tmp_path: Path, rootfs: Path) -> None:
    apply(tmp_path, rootfs, [Entry("etc", "dir"), Entry("etc/passwd", data=b"mine"),
                             Entry("root-link", "symlink", target="/"),
                             Entry("x", "hardlink", target="root-link/etc/passwd")])
    assert (rootfs / "x").read_bytes() == b"mine"


def test_existing_device_node_is_replaced_not_written(tmp_path: Path, rootfs: Path) -> None:
    # A layer that makes a block device and a later layer writing "into" it must not
    # write to the device: the node is unlinked and a plain file created.
    apply(tmp_path, rootfs, [Entry("disk", "block", major=7, minor=0)],
          [Entry("disk", data=b"overwrite")])
    assert stat.S_ISREG((rootfs / "disk").lstat().st_mode)
    assert (rootfs / "disk").read_bytes() == b"overwrite"


def test_whiteout_of_dotdot_is_refused(tmp_path: Path, rootfs: Path) -> None:
    (rootfs.parent / "sibling").write_text("keep")
    with pytest.raises(UnsafeLayerEntry):
        apply(tmp_path, rootfs, [Entry("../.wh.sibling")])
    with pytest.raises(InvalidLayer):
        apply(tmp_path, rootfs, [Entry("a/.wh..")])
    assert (rootfs.parent / "sibling").read_text() == "keep"


def test_names_in_any_encoding(tmp_path: Path, rootfs: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT, encoding="utf-8",
                      errors="surrogateescape") as tar:
        for name in ("café", "latin1-caf\udce9", "日本"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"ok"))
    path = tmp_path / "names.tar"
    path.write_bytes(buf.getvalue())
    apply_layers(rootfs, [path])
    assert sorted(os.listdir(os.fsencode(rootfs))) == sorted(
        ["café".encode(), b"latin1-caf\xe9", "日本".encode()])
