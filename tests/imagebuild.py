"""Build small test images without a registry: layer tars and docker-archive files.

Formats: a layer is a POSIX tar of a filesystem changeset (OCI image-spec
``layer.md``, whiteouts as ``.wh.NAME`` / ``.wh..wh..opq``); the archive is the
``docker save`` format (Docker image spec v1.2): ``manifest.json`` (a list of
``{"Config", "RepoTags", "Layers"}``), one config JSON per image named
``<config sha256 hex>.json`` and each layer at ``<layer sha256 hex>/layer.tar``.

Used by the image tests and reusable by any test that needs an image to load:
``write_docker_archive(path, [busybox_rootfs_tar()], ["busybox:latest"], config)``.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
"""Debian's busybox-static: one static binary, no libraries needed in the image."""

FIXED_MTIME = 1_700_000_000
"""Every entry gets this mtime (seconds since the epoch) so layer digests are stable."""


@dataclass(frozen=True)
class Entry:
    """One tar entry. ``kind`` is one of ``file dir symlink hardlink char block fifo``.

    ``data`` is the file content; ``target`` the symlink or hard-link target;
    ``xattrs`` are written as PAX ``SCHILY.xattr.<name>`` records (as Docker does).
    """

    name: str
    kind: str = "file"
    data: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    target: str = ""
    major: int = 0
    minor: int = 0
    xattrs: dict[str, bytes] = field(default_factory=dict)


_KINDS = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "char": tarfile.CHRTYPE,
    "block": tarfile.BLKTYPE,
    "fifo": tarfile.FIFOTYPE,
}


def layer_tar(entries: Iterable[Entry]) -> bytes:
    """Return an uncompressed PAX tar holding ``entries`` in the given order.

    Names are written verbatim, so hostile names (``../evil``) can be produced.
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type = _KINDS[e.kind]
            info.mode = e.mode
            info.uid, info.gid = e.uid, e.gid
            info.mtime = FIXED_MTIME
            info.linkname = e.target
            info.devmajor, info.devminor = e.major, e.minor
            if e.xattrs:
                info.pax_headers = {
                    "SCHILY.xattr." + k: v.decode("utf-8", "surrogateescape")
                    for k, v in e.xattrs.items()
                }
            if e.kind == "file":
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
            else:
                tar.addfile(info)
    return buf.getvalue()


BUSYBOX_APPLETS = ("sh", "ls", "cat", "echo", "id", "stat", "true", "false", "sleep", "env")
"""The applets linked into ``/bin`` by :func:`busybox_rootfs_tar` (a small, fixed set)."""


def busybox_rootfs_entries(applets: Sequence[str] = BUSYBOX_APPLETS) -> list[Entry]:
    """The entries of a minimal busybox root filesystem.

    ``/bin/busybox`` (the host's busybox-static), ``/bin/<applet> -> busybox``
    symlinks, ``/etc/passwd``, ``/etc/group``, and empty ``/tmp`` (1777), ``/root``,
    ``/proc``, ``/sys``, ``/dev``.
    """
    entries = [
        Entry("bin", "dir", mode=0o755),
        Entry("bin/busybox", data=BUSYBOX.read_bytes(), mode=0o755),
    ]
    entries += [Entry(f"bin/{a}", "symlink", target="busybox", mode=0o777) for a in applets]
    entries += [
        Entry("etc", "dir", mode=0o755),
        Entry("etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\n"
              b"nobody:x:65534:65534:nobody:/home:/bin/false\n"),
        Entry("etc/group", data=b"root:x:0:\nnogroup:x:65534:\n"),
        Entry("tmp", "dir", mode=0o1777),
        Entry("root", "dir", mode=0o700),
        Entry("proc", "dir", mode=0o555),
        Entry("sys", "dir", mode=0o555),
        Entry("dev", "dir", mode=0o755),
    ]
    return entries


def busybox_rootfs_tar(applets: Sequence[str] = BUSYBOX_APPLETS) -> bytes:
    """An uncompressed tar of :func:`busybox_rootfs_entries` (about 2 MB)."""
    return layer_tar(busybox_rootfs_entries(applets))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def image_config(layers: Sequence[bytes], config: dict[str, object] | None = None,
                 created: str = "2024-01-01T00:00:00Z",
                 history: Sequence[dict[str, object]] | None = None) -> dict[str, object]:
    """An image config (OCI image-spec ``config.md``) for ``layers``.

    ``config`` is the execution ``config`` sub-object (``Cmd``, ``Env``, ...).
    ``rootfs.diff_ids`` are the sha256 of each uncompressed layer tar; ``history``
    defaults to one entry per layer.
    """
    return {
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": dict(config or {}),
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha256_hex(t) for t in layers]},
        "history": list(history) if history is not None else
        [{"created": created, "created_by": f"layer {i}"} for i in range(len(layers))],
    }


@dataclass(frozen=True)
class ArchiveImage:
    """One image inside a docker-archive: its uncompressed layer tars, tags, config."""

    layers: Sequence[bytes]
    repo_tags: Sequence[str] = ()
    config: dict[str, object] | None = None
    created: str = "2024-01-01T00:00:00Z"
    history: Sequence[dict[str, object]] | None = None

    def config_json(self) -> bytes:
        return json.dumps(image_config(self.layers, self.config, self.created, self.history),
                          sort_keys=True).encode()

    @property
    def image_id(self) -> str:
        """``sha256:<hex>`` of the config JSON: Docker's image ID."""
        return "sha256:" + sha256_hex(self.config_json())


def write_docker_archive_multi(path: Path, images: Sequence[ArchiveImage]) -> list[str]:
    """Write a ``docker save`` archive holding ``images``; return their image IDs."""
    manifest: list[dict[str, object]] = []
    files: dict[str, bytes] = {}
    for img in images:
        cfg = img.config_json()
        cfg_name = sha256_hex(cfg) + ".json"
        files[cfg_name] = cfg
        layer_names = []
        for tar_bytes in img.layers:
            name = f"{sha256_hex(tar_bytes)}/layer.tar"
            files[name] = tar_bytes
            layer_names.append(name)
        manifest.append({"Config": cfg_name, "RepoTags": list(img.repo_tags) or None,
                         "Layers": layer_names})
    files["manifest.json"] = json.dumps(manifest).encode()
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), FIXED_MTIME, 0o644
            tar.addfile(info, io.BytesIO(data))
    return [img.image_id for img in images]


def write_docker_archive(path: Path, layers: Sequence[bytes], repo_tags: Sequence[str] = (),
                         config: dict[str, object] | None = None,
                         created: str = "2024-01-01T00:00:00Z",
                         history: Sequence[dict[str, object]] | None = None) -> str:
    """Write a one-image ``docker save`` archive at ``path``; return its image ID.

    ``layers`` are uncompressed layer tars (bottom first), ``repo_tags`` familiar
    names such as ``busybox:latest`` (empty: an untagged image), ``config`` the
    execution config (``{"Cmd": ["sh"]}``), ``created`` the image's creation time.
    """
    return write_docker_archive_multi(
        path, [ArchiveImage(layers, repo_tags, config, created, history)])[0]


CACHE = Path("/var/tmp/vmcontainer-test-images")


def _apt_sources() -> Path:
    for p in (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")):
        if p.is_file() and p.read_text().strip():
            return p
    raise RuntimeError("no apt sources on this machine for mmdebstrap")


def debian_rootfs(packages: tuple[str, ...] = ()) -> Path:
    """A Debian bookworm minbase rootfs tarball from mmdebstrap with the machine's own
    apt sources, cached in /var/tmp for the day (CI machines start empty)."""
    import datetime

    CACHE.mkdir(parents=True, exist_ok=True)
    name = "-".join(("bookworm", *packages, datetime.date.today().isoformat())) + ".tar"
    out = CACHE / name
    if not out.is_file():
        cmd = ["mmdebstrap", "--quiet", "--variant=minbase", "--mode=root", "--format=tar"]
        if packages:
            cmd.append("--include=" + ",".join(packages))
        tmp = out.with_suffix(".partial")
        subprocess.run([*cmd, "bookworm", str(tmp), str(_apt_sources())], check=True,
                       timeout=1200)
        tmp.rename(out)
    return out
