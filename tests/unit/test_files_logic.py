"""Pure logic of docker diff/commit: tree listings, the change list (Docker's
kinds and order), --change instructions, commit layers with whiteouts."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from vmcontainer.engine.diff import ADDED, DELETED, MODIFIED, changes
from vmcontainer.errors import InvalidParameter
from vmcontainer.image.commit import apply_changes, build_layer
from vmcontainer.image.listing import Entry, parse, write_listing

DIR, FILE, LINK = stat.S_IFDIR | 0o755, stat.S_IFREG | 0o644, stat.S_IFLNK | 0o777


def e(mode: int, size: int = 0, mtime: int = 1, link: bytes = b"", uid: int = 0) -> Entry:
    return Entry(mode, uid, 0, size, mtime, link)


IMAGE = {b"/bin": e(DIR, 4096), b"/bin/ls": e(FILE, 10), b"/bin/sh": e(LINK, 7, link=b"busybox"),
         b"/etc": e(DIR), b"/etc/passwd": e(FILE, 5), b"/usr": e(DIR), b"/usr/lib": e(DIR),
         b"/usr/lib/x": e(FILE, 1)}


def kinds(container: dict[bytes, Entry]) -> list[tuple[str, int]]:
    return [(c.path.decode(), c.kind) for c in changes(IMAGE, container)]


def test_no_change_and_directory_sizes_ignored() -> None:
    assert kinds({**IMAGE, b"/bin": e(DIR, 8192, mtime=99)}) == []


def test_added_modified_deleted_in_docker_order() -> None:
    c = dict(IMAGE)
    c[b"/hello"] = e(FILE, 3)
    c[b"/etc/passwd"] = e(FILE, 6)
    del c[b"/bin/ls"]
    c[b"/new"] = e(DIR)
    c[b"/new/f"] = e(FILE, 1)
    assert kinds(c) == [("/bin", MODIFIED), ("/bin/ls", DELETED), ("/etc", MODIFIED),
                        ("/etc/passwd", MODIFIED), ("/hello", ADDED), ("/new", ADDED),
                        ("/new/f", ADDED)]


def test_deleted_directory_listed_once_and_top_level_deletion() -> None:
    c = {k: v for k, v in IMAGE.items() if not k.startswith(b"/usr")}
    assert kinds(c) == [("/usr", DELETED)]
    c = {k: v for k, v in IMAGE.items() if not k.startswith(b"/usr/lib")}
    assert kinds(c) == [("/usr", MODIFIED), ("/usr/lib", DELETED)]


def test_metadata_and_symlink_target_changes() -> None:
    assert kinds({**IMAGE, b"/bin/sh": e(LINK, 7, link=b"dash")}) == [
        ("/bin", MODIFIED), ("/bin/sh", MODIFIED)]
    assert kinds({**IMAGE, b"/etc": e(DIR, uid=1)}) == [("/etc", MODIFIED)]
    assert kinds({**IMAGE, b"/etc/passwd": e(FILE, 5, mtime=2)}) == [
        ("/etc", MODIFIED), ("/etc/passwd", MODIFIED)]


def test_runtime_files_are_not_changes() -> None:
    c = {**IMAGE, b"/proc": e(DIR), b"/sys": e(DIR), b"/dev": e(DIR), b"/dev/null": e(FILE),
         b"/etc/hostname": e(FILE), b"/etc/hosts": e(FILE), b"/etc/resolv.conf": e(FILE)}
    assert kinds(c) == []


def test_listing_round_trip(tmp_path: Path) -> None:
    tree = tmp_path / "t"
    (tree / "d").mkdir(parents=True)
    (tree / "d" / "f").write_bytes(b"abc")
    os.symlink("../d/f", tree / "l")
    (tree / "sp ace\n").write_bytes(b"")
    os.utime(tree / "d" / "f", (5, 5))
    write_listing(tree, tmp_path / "list")
    got = parse((tmp_path / "list").read_bytes())
    assert sorted(got) == [b"/d", b"/d/f", b"/l", b"/sp ace\n"]
    assert got[b"/d/f"].size == 3 and got[b"/d/f"].mtime == 5
    assert got[b"/l"].link == b"../d/f" and stat.S_ISLNK(got[b"/l"].mode)
    with pytest.raises(ValueError):
        parse(b"755 0 0 0 0 relative\0\0")


def test_change_instructions() -> None:
    out = apply_changes({"Cmd": ["sh"], "Env": ["A=1", "B=2"]}, [
        'CMD ["cat", "/x"]', "ENTRYPOINT echo hi", "ENV B=3 C=4", "ENV D five six",
        "EXPOSE 80 53/udp", "LABEL a=b", 'VOLUME ["/data"]', "WORKDIR /w", "USER nobody",
        "ONBUILD RUN true"])
    assert out["Cmd"] == ["cat", "/x"]
    assert out["Entrypoint"] == ["/bin/sh", "-c", "echo hi"]
    assert out["Env"] == ["A=1", "B=3", "C=4", "D=five six"]
    assert out["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert (out["Labels"], out["Volumes"]) == ({"a": "b"}, {"/data": {}})
    assert (out["WorkingDir"], out["User"], out["OnBuild"]) == ("/w", "nobody", ["RUN true"])
    with pytest.raises(InvalidParameter, match="RUN is not a valid change command"):
        apply_changes({}, ["RUN true"])


def test_commit_layer_has_entries_and_whiteouts(tmp_path: Path) -> None:
    exported = tmp_path / "e.tar"
    with tarfile.open(exported, "w") as t:
        info = tarfile.TarInfo("hello")
        info.size = 3
        t.addfile(info, io.BytesIO(b"hi\n"))
    build_layer(exported, [b"/bin/ls", b"/top"], tmp_path / "layer.tar")
    with tarfile.open(tmp_path / "layer.tar") as t:
        assert t.getnames() == ["hello", "bin/.wh.ls", ".wh.top"]
        member = t.extractfile("hello")
        assert member is not None and member.read() == b"hi\n"
