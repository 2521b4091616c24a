"""The volume store: ``volumes/<name>/disk.ext4`` and ``volume.json`` under the
data root (DESIGN.md "On disk"), with Docker's ``local`` driver semantics for
names, options and the Volume object (Engine API v1.45 ``Volume``).

The store knows nothing of containers: whether a volume is in use is the
engine's question (``vmcontainer.engine.volumes``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmcontainer.errors import Conflict, InvalidParameter, NotFound
from vmcontainer.volume.disk import DEFAULT_SIZE_BYTES, is_empty, make_disk, parse_size

DRIVER = "local"
ANONYMOUS_LABEL = "com.docker.volume.anonymous"
"""Docker (23+) labels the volumes it creates for ``-v /path`` and VOLUME so."""
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_OPTIONS = ("size",)
DISK = "disk.ext4"
RECORD = "volume.json"


class VolumeNotFound(NotFound):
    """Docker's ``get NAME: no such volume``."""

    def __init__(self, name: str) -> None:
        super().__init__(f"get {name}: no such volume")
        self.name = name


@dataclass(frozen=True)
class Volume:
    """One volume. ``size_bytes``: the disk image's size (the ``size`` option, or
    the default); ``filled``: the volume got the image's content once (or data),
    so it is never filled again."""

    name: str
    created_at: str
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    size_bytes: int = DEFAULT_SIZE_BYTES
    filled: bool = False

    @property
    def anonymous(self) -> bool:
        return ANONYMOUS_LABEL in self.labels

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "created_at": self.created_at, "labels": self.labels,
                "options": self.options, "size_bytes": self.size_bytes,
                "filled": self.filled}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Volume:
        return cls(name=d["name"], created_at=d["created_at"], labels=dict(d["labels"]),
                   options=dict(d["options"]), size_bytes=int(d["size_bytes"]),
                   filled=bool(d.get("filled", False)))


def check_name(name: str) -> None:
    """Docker's local driver rule; raises InvalidParameter with its text."""
    if not _NAME.match(name):
        raise InvalidParameter(
            f'create {name}: "{name}" includes invalid characters for a local volume name, '
            'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
            "directory, use absolute path")


def check_driver(driver: str) -> None:
    if driver not in ("", DRIVER):
        raise NotFound(f'error looking up volume plugin {driver}: plugin "{driver}" not found')


class VolumeStore:
    """Volumes under ``root`` (``<data root>/volumes``). Thread-safe: one lock
    around creation and removal."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.RLock()

    def dir(self, name: str) -> Path:
        return self.root / name

    def disk(self, name: str) -> Path:
        """The ext4 image of volume ``name`` (also its ``Mountpoint``)."""
        return self.root / name / DISK

    def create(self, name: str = "", driver: str = "", labels: Mapping[str, str] | None = None,
               options: Mapping[str, str] | None = None,
               created_at: str = "") -> tuple[Volume, bool]:
        """Create volume ``name`` (a random 64-hex name when empty) or return the
        existing one (Docker: create is idempotent for the same driver). Returns
        (volume, created). Raises InvalidParameter (name, options), NotFound (driver),
        System (mke2fs)."""
        check_driver(driver)
        if not name:  # moby labels a volume created without a name as anonymous
            name, labels = secrets.token_hex(32), {**(labels or {}), ANONYMOUS_LABEL: ""}
        check_name(name)
        opts = dict(options or {})
        for key in opts:
            if key not in _OPTIONS:
                raise InvalidParameter(f"create {name}: invalid option: \"{key}\" (the "
                                       "local driver of vmcontainer takes size)")
        size = parse_size(opts["size"]) if "size" in opts else DEFAULT_SIZE_BYTES
        with self._lock:
            with contextlib.suppress(VolumeNotFound):
                return self.get(name), False
            vol = Volume(name=name, created_at=created_at, labels=dict(labels or {}),
                         options=opts, size_bytes=size)
            directory = self.dir(name)
            directory.mkdir(parents=True, exist_ok=True)
            try:
                make_disk(directory / DISK, size)
                self._save(vol)
            except BaseException:
                shutil.rmtree(directory, ignore_errors=True)
                raise
        return vol, True

    def _save(self, vol: Volume) -> None:
        path = self.dir(vol.name) / RECORD
        tmp = path.with_name(RECORD + ".tmp")
        tmp.write_text(json.dumps(vol.to_json()))
        os.replace(tmp, path)

    def get(self, name: str) -> Volume:
        """Raises VolumeNotFound."""
        if not _NAME.match(name):
            raise VolumeNotFound(name)
        try:
            return Volume.from_json(json.loads((self.dir(name) / RECORD).read_text()))
        except (OSError, ValueError, KeyError) as err:
            raise VolumeNotFound(name) from err

    def all(self) -> Iterator[Volume]:
        if not self.root.is_dir():
            return
        for d in sorted(self.root.iterdir()):
            with contextlib.suppress(VolumeNotFound):
                yield self.get(d.name)

    def mark_filled(self, name: str) -> None:
        with self._lock:
            vol = self.get(name)
            if not vol.filled:
                self._save(Volume(**{**vol.__dict__, "filled": True}))

    def empty(self, name: str) -> bool:
        """True when volume ``name`` was never filled and holds no file."""
        return not self.get(name).filled and is_empty(self.disk(name))

    def remove(self, name: str) -> None:
        """Delete volume ``name`` and its data. Raises VolumeNotFound. The caller
        checks that no container uses it."""
        with self._lock:
            self.get(name)
            directory = self.dir(name)
            trash = directory.with_name(f".rm-{name}")
            try:
                os.replace(directory, trash)
            except OSError as err:
                raise Conflict(f"remove {name}: {err.strerror}") from err
            shutil.rmtree(trash, ignore_errors=True)

    def usage_bytes(self, name: str) -> int:
        """Bytes the sparse disk image really occupies on the host."""
        try:
            return self.disk(name).stat().st_blocks * 512
        except OSError:
            return 0

    def inspect(self, vol: Volume) -> dict[str, Any]:
        """Docker's Volume object."""
        return {
            "CreatedAt": vol.created_at,
            "Driver": DRIVER,
            "Labels": vol.labels or None,
            "Mountpoint": str(self.disk(vol.name)),
            "Name": vol.name,
            "Options": vol.options or None,
            "Scope": "local",
        }
