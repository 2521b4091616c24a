"""Mount points: what a create request asks to mount (HostConfig ``Binds``,
``Mounts``, ``Tmpfs`` and ``Config.Volumes``), parsed once into MountPoints with
Docker's rules and error texts (moby ``volume/mounts/linux_parser.go``,
``pkg/mount`` tmpfs options), and rendered back as inspect's ``Mounts``.

Pure logic: nothing here touches the host except ``check_bind_source``.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vmcontainer.errors import InvalidParameter
from vmcontainer.volume.store import check_driver, check_name

BIND, VOLUME, TMPFS = "bind", "volume", "tmpfs"
_PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
_MODE_WORDS = ("ro", "rw", "z", "Z", "nocopy", "consistent", "cached", "delegated",
               *_PROPAGATIONS)
TMPFS_DEFAULT_FLAGS = ("noexec", "nosuid", "nodev")
"""What Docker's tmpfs mounts get unless the options say otherwise."""
_TMPFS_FLAGS = {"ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "sync",
                "async", "dirsync", "atime", "noatime", "diratime", "nodiratime",
                "relatime", "norelatime", "strictatime", "nostrictatime"}
_TMPFS_DATA = ("size", "mode", "uid", "gid", "nr_inodes", "nr_blocks")
_TMPFS_SIZE = re.compile(r"^([0-9]{1,15})([kmgt]?)$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_OPPOSITE = {"exec": "noexec", "suid": "nosuid", "dev": "nodev", "rw": "ro",
             "atime": "noatime", "diratime": "nodiratime", "async": "sync"}


@dataclass(frozen=True)
class MountPoint:
    """One mount of a container. ``source``: the host directory (bind), the volume
    name (volume; "" until an anonymous one is named), "" (tmpfs). ``mode`` and
    ``propagation`` are Docker's inspect values; ``tmpfs_options``: the guest's
    mount options (flags and ``size=``/``mode=``… data, comma-separated);
    ``nocopy``: a new volume is not filled from the image; ``listed``: shown in
    inspect's Mounts (Docker leaves ``--tmpfs`` ones out); ``create_source``: a
    missing bind source is created (``-v``) rather than refused (``--mount``);
    ``labels``/``options``: for a volume this mount creates (VolumeOptions);
    ``subpath``: a directory of the volume mounted instead of all of it."""

    type: str
    destination: str
    source: str = ""
    rw: bool = True
    mode: str = ""
    propagation: str = ""
    tmpfs_options: str = ""
    nocopy: bool = False
    listed: bool = True
    anonymous: bool = False
    create_source: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    subpath: str = ""

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> MountPoint:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def inspect(self, volume_path: str = "") -> dict[str, Any]:
        """Docker's MountPoint object; ``volume_path``: a volume's Mountpoint."""
        doc: dict[str, Any] = {"Type": self.type}
        if self.type == VOLUME:
            doc["Name"] = self.source
        doc["Source"] = volume_path if self.type == VOLUME else self.source
        doc["Destination"] = self.destination
        if self.type == VOLUME:
            doc["Driver"] = "local"
        doc.update({"Mode": self.mode, "RW": self.rw, "Propagation": self.propagation})
        return doc


def _clean_destination(dst: str, spec: str) -> str:
    if not dst.startswith("/"):
        raise InvalidParameter(f"invalid volume specification: '{spec}': invalid mount config "
                               f"for type \"volume\": invalid mount path: '{dst}' mount path "
                               "must be absolute")
    clean = posixpath.normpath(dst)
    if clean.startswith("//"):
        clean = "/" + clean.lstrip("/")
    if clean == "/":
        raise InvalidParameter(f"invalid specification: destination can't be '/' in '{spec}'")
    if "\x00" in clean or "," in clean:
        raise InvalidParameter(f"invalid volume specification: '{spec}'")
    return clean


def _mode(mode: str, spec: str) -> tuple[bool, str, bool]:
    """(rw, propagation, nocopy) of a ``-v`` mode such as ``ro,z``."""
    words = mode.split(",") if mode else []
    if any(w not in _MODE_WORDS for w in words) or sum(w in ("ro", "rw") for w in words) > 1 \
            or sum(w in _PROPAGATIONS for w in words) > 1:
        raise InvalidParameter(f"invalid mode: {mode}")
    propagation = next((w for w in words if w in _PROPAGATIONS), "")
    return "ro" not in words, propagation, "nocopy" in words


def parse_bind(spec: str) -> MountPoint:
    """One ``HostConfig.Binds`` item: ``/host:/dst[:mode]`` (bind),
    ``name:/dst[:mode]`` (named volume) or ``/dst[:mode]`` (anonymous volume)."""
    parts = spec.split(":")
    if len(parts) == 1 or (len(parts) == 2 and all(w in _MODE_WORDS for w in parts[1].split(","))
                           and parts[1]):
        src, dst, mode = "", parts[0], parts[1] if len(parts) == 2 else ""
    elif len(parts) in (2, 3):
        src, dst, mode = parts[0], parts[1], parts[2] if len(parts) == 3 else ""
    else:
        raise InvalidParameter(f"invalid volume specification: '{spec}'")
    if not dst:
        raise InvalidParameter(f"invalid volume specification: '{spec}'")
    dst = _clean_destination(dst, spec)
    rw, propagation, nocopy = _mode(mode, spec)
    if src.startswith("/"):
        if nocopy:
            raise InvalidParameter(f"invalid mode: {mode}")
        return MountPoint(BIND, dst, posixpath.normpath(src), rw=rw, mode=mode,
                          propagation=propagation or "rprivate", create_source=True)
    if propagation:
        raise InvalidParameter(f"invalid mode: {mode}")
    if src:
        check_name(src)
    return MountPoint(VOLUME, dst, src, rw=rw, mode=mode or ("z" if src else ""),
                      nocopy=nocopy, anonymous=not src)


def _mount_error(kind: str, text: str) -> InvalidParameter:
    return InvalidParameter(f'invalid mount config for type "{kind}": {text}')


def _obj(m: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    v = m.get(key)
    if v is not None and not isinstance(v, dict):
        raise InvalidParameter(f'invalid value for "HostConfig.Mounts.{key}": expected a JSON '
                               "object")
    return v or {}


def parse_mount(m: Mapping[str, Any]) -> MountPoint:
    """One ``HostConfig.Mounts`` item (Engine API ``Mount``)."""
    if not isinstance(m, dict):
        raise InvalidParameter('invalid value for "HostConfig.Mounts": expected objects')
    kind, src, dst = m.get("Type") or "", m.get("Source") or "", m.get("Target") or ""
    if not all(isinstance(v, str) for v in (kind, src, dst)):
        raise InvalidParameter('invalid value for "HostConfig.Mounts": Type, Source and '
                               "Target must be strings")
    ro = m.get("ReadOnly") or False
    if not isinstance(ro, bool):
        raise InvalidParameter('invalid value for "HostConfig.Mounts.ReadOnly": expected a '
                               "boolean")
    if kind not in (BIND, VOLUME, TMPFS):
        raise InvalidParameter(f'invalid mount config: mount type unknown: "{kind}"')
    if not dst:
        raise _mount_error(kind, "field Target must not be empty")
    if not dst.startswith("/"):
        raise _mount_error(kind, f"invalid mount path: '{dst}' mount path must be absolute")
    dst = _clean_destination(dst, dst)
    for key, allowed in (("BindOptions", BIND), ("VolumeOptions", VOLUME),
                         ("TmpfsOptions", TMPFS)):
        if m.get(key) and kind != allowed:
            raise _mount_error(kind, f"field {key} must not be specified")
    if kind == BIND:
        if not src:
            raise _mount_error(kind, "field Source must not be empty")
        if not src.startswith("/"):
            raise _mount_error(kind, f"invalid mount path: '{src}' mount path must be absolute")
        prop = _obj(m, "BindOptions").get("Propagation") or "rprivate"
        if prop not in _PROPAGATIONS:
            raise _mount_error(kind, f"invalid propagation mode: {prop}")
        return MountPoint(BIND, dst, posixpath.normpath(src), rw=not ro, propagation=prop)
    if kind == VOLUME:
        opts = _obj(m, "VolumeOptions")
        subpath = opts.get("Subpath") or ""
        if not isinstance(subpath, str) or subpath.startswith("/") or "\x00" in subpath or \
                ".." in subpath.split("/"):
            raise _mount_error(kind, f"subpath must be a relative path within the volume: "
                               f"{subpath!r}")
        if src:
                check_name(src)
        driver = _obj(opts, "DriverConfig")
        labels = opts.get("Labels") or {}
        options = driver.get("Options") or {}
        if not isinstance(labels, dict) or not isinstance(options, dict):
            raise InvalidParameter('invalid value for "VolumeOptions": Labels and '
                                   "DriverConfig.Options must be objects")
        check_driver(str(driver.get("Name") or ""))
        return MountPoint(VOLUME, dst, src, rw=not ro, nocopy=bool(opts.get("NoCopy")),
                          anonymous=not src, labels={str(k): str(v) for k, v in labels.items()},
                          options={str(k): str(v) for k, v in options.items()},
                          subpath=posixpath.normpath(subpath) if subpath else "")
    if src:
        raise _mount_error(kind, "field Source must not be specified")
    topts = _obj(m, "TmpfsOptions")
    data = []
    size, mode = topts.get("SizeBytes"), topts.get("Mode")
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise _mount_error(kind, "invalid SizeBytes")
        if size:
            data.append(f"size={size}")
    if mode is not None:
        if not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 0o7777:
            raise _mount_error(kind, "invalid Mode")
        data.append(f"mode={mode:o}")
    flags = [*TMPFS_DEFAULT_FLAGS, *(["ro"] if ro else [])]
    return MountPoint(TMPFS, dst, rw=not ro, tmpfs_options=",".join([*flags, *data]))


def tmpfs_options(opts: str) -> tuple[str, bool]:
    """(guest mount options, rw) for a ``HostConfig.Tmpfs`` value such as
    ``size=16m,mode=1777,exec``: Docker's defaults (noexec,nosuid,nodev), overridden
    by the flags given; sizes with units become bytes. Raises InvalidParameter."""
    flags = dict.fromkeys(TMPFS_DEFAULT_FLAGS)
    data: dict[str, str] = {}
    for item in filter(None, opts.split(",")):
        key, eq, value = item.partition("=")
        if not eq and key in _TMPFS_FLAGS:
            for a, b in _OPPOSITE.items():
                flags.pop(a if key == b else b if key == a else "", None)
            flags[key] = None
        elif eq and key in _TMPFS_DATA and value and all(c.isalnum() for c in value):
            if key == "size":
                value = str(_tmpfs_size(value))
            elif key == "mode" and not (value.isdigit() and set(value) <= set("01234567")):
                raise InvalidParameter(f"invalid tmpfs option mode={value}")
            data[key] = value
        else:
            raise InvalidParameter(f'invalid tmpfs option ["{item}"]')
    out = [*flags, *(f"{k}={v}" for k, v in data.items())]
    return ",".join(out), "ro" not in flags


def _tmpfs_size(value: str) -> int:
    if value.endswith("%"):
        raise InvalidParameter(f"invalid tmpfs option size={value}: a percentage is not "
                               "supported")
    m = _TMPFS_SIZE.match(value)
    if not m:
        raise InvalidParameter(f"invalid tmpfs option size={value}")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


def parse_all(binds: Sequence[str], mounts: Sequence[Any], tmpfs: Mapping[str, Any],
              volumes: Sequence[str]) -> tuple[MountPoint, ...]:
    """Every mount of a create request, in Docker's order (Binds, Mounts, Tmpfs,
    then Config.Volumes not already mounted). Raises InvalidParameter, with
    ``Duplicate mount point: /dst`` when two name one destination."""
    out: list[MountPoint] = [parse_bind(b) for b in binds]
    out += [parse_mount(m) for m in mounts]
    for dst, opts in tmpfs.items():
        if not isinstance(opts, str):
            raise InvalidParameter('invalid value for "HostConfig.Tmpfs": expected strings')
        options, rw = tmpfs_options(opts)
        out.append(MountPoint(TMPFS, _clean_destination(dst, dst), rw=rw,
                              tmpfs_options=options, listed=False))
    seen: set[str] = set()
    for mp in out:
        if mp.destination in seen:
            raise InvalidParameter(f"Duplicate mount point: {mp.destination}")
        seen.add(mp.destination)
    for dst in volumes:
        clean = _clean_destination(dst, dst)
        if clean not in seen:
            seen.add(clean)
            out.append(MountPoint(VOLUME, clean, anonymous=True))
    return tuple(out)


def check_bind_source(mp: MountPoint) -> None:
    """A bind's host directory: created when missing for ``-v`` (as Docker),
    refused with Docker's text for ``--mount``. Raises InvalidParameter, also for
    a source that is not a directory (9p shares directories)."""
    if not os.path.lexists(mp.source):
        if not mp.create_source:
            raise _mount_error(BIND, f"bind source path does not exist: {mp.source}")
        try:
            os.makedirs(mp.source, 0o755, exist_ok=True)
        except OSError as err:
            raise InvalidParameter(f"error while creating mount source path "
                                   f"'{mp.source}': mkdir {mp.source}: {err.strerror}") from err
    if not os.path.isdir(mp.source):
        raise InvalidParameter(f"bind mount of {mp.source}: only directories can be "
                               "bind-mounted into a vmcontainer VM (virtio-9p shares "
                               "directories)")
