"""The layer-applying worker, run as its own process (moby's ``docker-untar`` re-exec).

``python -I -S _untar.py ROOTFS`` reads one uncompressed layer tar (POSIX/GNU/PAX)
on stdin, ``chroot()``s into ROOTFS and applies it there, so every path, absolute
symlink and hard link resolves inside ROOTFS and nothing can be written outside.
It writes one JSON object on stdout: ``{"entries": N, "warnings": [...]}`` and exits
0, or ``{"error": MSG, "entry": NAME, "kind": "unsafe"|"invalid"|"system"}`` and
exits 2. Whiteouts follow the OCI image-spec (``layer.md``): ``.wh.NAME`` deletes
NAME from lower layers, ``.wh..wh..opq`` hides all lower content of its directory.

This file uses only the standard library and imports all it needs before the
chroot, because nothing can be imported afterwards. The parent side is
:mod:`vmcontainer.image.layers`; the pure name checks here are shared with it.
"""

from __future__ import annotations

import codecs
import errno
import json
import os
import posixpath
import shutil
import stat
import sys
import tarfile
from typing import IO

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
_SYSTEM_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.ENOMEM}
_CHUNK = 1 << 20


class Refused(Exception):
    """An entry this worker will not apply. ``kind``: unsafe, invalid or system."""

    def __init__(self, kind: str, message: str, entry: str) -> None:
        super().__init__(message)
        self.kind, self.message, self.entry = kind, message, entry


def clean_name(name: str) -> str:
    """The entry's path relative to the root, normalised ("" is the root itself).

    Raises Refused("unsafe") for a name that climbs out with ``..``, in moby's words:
    ``"../evil" is outside of "/"``.
    """
    relative = name.lstrip("/")
    cleaned = posixpath.normpath(relative) if relative else "."
    if cleaned == ".." or cleaned.startswith("../"):
        raise Refused("unsafe", f'"{name}" is outside of "/"', name)
    return "" if cleaned == "." else cleaned


def clean_link_target(name: str, linkname: str) -> str:
    """A hard link's target relative to the root (absolute targets are the image's own
    paths, never the host's). Raises Refused("unsafe") if it climbs out with ``..``."""
    relative = linkname.lstrip("/")
    cleaned = posixpath.normpath(relative) if relative else "."
    if cleaned == "." or cleaned == ".." or cleaned.startswith("../"):
        raise Refused("unsafe", f'invalid hardlink "{name}" -> "{linkname}"', name)
    return cleaned


def _remove_all(path: str) -> None:
    """Remove ``path`` whatever it is; a symlink is removed, never followed."""
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


class Applier:
    """Applies the members of one layer, in order, to the current root (``/``)."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.created: set[str] = set()
        self.dir_times: dict[str, tuple[float, float]] = {}
        self.warnings: list[str] = []
        self.count = 0

    def apply(self, member: tarfile.TarInfo) -> None:
        """Apply one member; raises Refused, OSError or tarfile errors."""
        name = clean_name(member.name)
        base = posixpath.basename(name)
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(member.name, name, base)
            return
        path = "/" + name
        parent = posixpath.dirname(path)
        if name and not os.path.isdir(parent):
            os.makedirs(parent, 0o755, exist_ok=True)
        if name:
            self._clear(path, member.isdir())
        self.count += 1
        self.created.add(name)
        if member.isreg():
            self._file(path, member)
        elif member.isdir():
            if not os.path.lexists(path):
                os.mkdir(path, 0o700)
            self._metadata(path, member)
            self.dir_times[path] = (self._atime(member), member.mtime)
        elif member.issym():
            os.symlink(member.linkname, path)
            self._metadata(path, member)
        elif member.islnk():
            self._hardlink(member, path)
        elif member.ischr() or member.isblk() or member.isfifo():
            kind = (stat.S_IFCHR if member.ischr()
                    else stat.S_IFBLK if member.isblk() else stat.S_IFIFO)
            device = os.makedev(member.devmajor, member.devminor) if kind != stat.S_IFIFO else 0
            os.mknod(path, kind | 0o600, device)
            self._metadata(path, member)
        else:
            raise Refused("invalid", f"unhandled tar header type {member.type!r} "
                          f'for "{member.name}"', member.name)

    def _whiteout(self, raw: str, name: str, base: str) -> None:
        directory = "/" + posixpath.dirname(name)
        if base == WHITEOUT_OPAQUE:
            if not os.path.isdir(directory):
                os.makedirs(directory, 0o755, exist_ok=True)
                return
            for child in os.listdir(directory):
                child_name = posixpath.join(directory, child).lstrip("/")
                if child_name not in self.created:
                    _remove_all("/" + child_name)
            return
        if base.startswith(WHITEOUT_META_PREFIX):
            return  # AUFS bookkeeping (.wh..wh.plnk, .wh..wh.aufs): not content
        victim = base[len(WHITEOUT_PREFIX):]
        if victim in ("", ".", ".."):
            raise Refused("invalid", f'invalid whiteout "{raw}"', raw)
        target = posixpath.join(directory, victim)
        if os.path.lexists(target):
            _remove_all(target)

    def _clear(self, path: str, want_dir: bool) -> None:
        """Remove what is at ``path`` unless both it and the new entry are directories,
        so an existing file, symlink or device node is never opened or written."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if not (want_dir and stat.S_ISDIR(st.st_mode)):
            _remove_all(path)

    def _file(self, path: str, member: tarfile.TarInfo) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(path, flags, 0o600)
        with os.fdopen(fd, "wb") as out:
            source = self.tar.extractfile(member)
            if source is not None:
                shutil.copyfileobj(source, out, _CHUNK)
            out.flush()
            os.fchown(fd, member.uid, member.gid)
            os.fchmod(fd, member.mode & 0o7777)
            self._xattrs(fd, member)
            os.utime(fd, (self._atime(member), member.mtime))

    def _hardlink(self, member: tarfile.TarInfo, path: str) -> None:
        target = "/" + clean_link_target(member.name, member.linkname)
        try:
            os.link(target, path, follow_symlinks=False)
        except FileNotFoundError:
            raise Refused("invalid", f'hard link "{member.name}" -> "{member.linkname}": '
                          "target not found in the image", member.name) from None

    def _metadata(self, path: str, member: tarfile.TarInfo) -> None:
        """Owner, then mode (chown clears setuid bits), xattrs, then times."""
        os.lchown(path, member.uid, member.gid)
        if not member.issym():
            os.chmod(path, member.mode & 0o7777)
        self._xattrs(path, member)
        os.utime(path, (self._atime(member), member.mtime), follow_symlinks=False)

    def _xattrs(self, target: int | str, member: tarfile.TarInfo) -> None:
        for key, value in member.pax_headers.items():
            if not key.startswith("SCHILY.xattr."):
                continue
            attr = key[len("SCHILY.xattr."):]
            raw = value.encode("utf-8", "surrogateescape")
            try:
                if isinstance(target, int):
                    os.setxattr(target, attr, raw)
                else:
                    os.setxattr(target, attr, raw, follow_symlinks=False)
            except OSError as err:
                if err.errno not in (errno.ENOTSUP, errno.EPERM):
                    raise
                self.warnings.append(f'xattr {attr} on "{member.name}": {err.strerror}')

    @staticmethod
    def _atime(member: tarfile.TarInfo) -> float:
        try:
            return float(member.pax_headers.get("atime", member.mtime))
        except ValueError:
            return float(member.mtime)

    def finish(self) -> None:
        """Set directory times last: adding children changed them."""
        for path, times in self.dir_times.items():
            if os.path.isdir(path) and not os.path.islink(path):
                os.utime(path, times, follow_symlinks=False)


def apply_stream(stream: IO[bytes]) -> dict[str, object]:
    """Apply the tar on ``stream`` to ``/``; return the result object (see module doc)."""
    entry = ""
    try:
        with tarfile.open(fileobj=stream, mode="r|", encoding="utf-8",
                          errors="surrogateescape") as tar:
            applier = Applier(tar)
            for member in tar:
                entry = member.name
                applier.apply(member)
            applier.finish()
    except Refused as err:
        return {"error": err.message, "entry": err.entry, "kind": err.kind}
    except tarfile.TarError as err:
        where = f' after "{entry}"' if entry else ""
        return {"error": f"invalid tar{where}: {err}", "entry": entry, "kind": "invalid"}
    except OSError as err:
        kind = "system" if err.errno in _SYSTEM_ERRNOS else "invalid"
        reason = err.strerror or str(err)
        return {"error": f'"{entry}": {reason}', "entry": entry, "kind": kind}
    return {"entries": applier.count, "warnings": applier.warnings}


def main(argv: list[str]) -> int:
    """``_untar.py ROOTFS``: chroot into ROOTFS and apply the tar on stdin; exit 0
    (applied), 2 (refused, reason on stdout) or 64 (usage)."""
    if len(argv) != 2:
        print("usage: _untar.py ROOTFS", file=sys.stderr)
        return 64
    for encoding in ("utf-8", "ascii", "latin-1"):  # lazily imported codecs, before chroot
        codecs.lookup(encoding)
    os.umask(0)
    os.chroot(argv[1])
    os.chdir("/")
    result = apply_stream(sys.stdin.buffer)
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()
    return 2 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
