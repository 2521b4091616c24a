"""``docker import``: a root filesystem tar becomes a one-layer image.

The input tar may be plain or compressed (gzip, bzip2, xz, zstd). It is stored
uncompressed as the single layer (``application/vnd.oci.image.layer.v1.tar``), so
the layer digest equals ``rootfs.diff_ids[0]``. The config matches what moby's
``daemon/images/image_import.go`` writes (Docker image spec v1.2): architecture
``amd64``, os ``linux``, ``created`` now, ``comment``/history ``Imported from -``
unless a message is given, and an empty container config (no Cmd: a Docker
import has none) overlaid with ``changes``.
"""

from __future__ import annotations

import datetime
import json
import shutil
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from vmcontainer.errors import InvalidParameter
from vmcontainer.image import oci
from vmcontainer.image._untar import Refused, clean_link_target, clean_name
from vmcontainer.image.archive import StagedImage, missing_file
from vmcontainer.image.errors import InvalidArchive, InvalidLayer, UnsafeLayerEntry
from vmcontainer.image.layers import decompress_file
from vmcontainer.image.oci import Descriptor
from vmcontainer.image.reference import Reference

CHANGE_KEYS = frozenset({"Cmd", "Entrypoint", "Env", "ExposedPorts", "Healthcheck", "Labels",
                         "OnBuild", "Shell", "StopSignal", "User", "Volumes", "WorkingDir"})
"""Container-config keys ``changes`` may set (the targets of ``docker import --change``)."""


def empty_container_config() -> dict[str, object]:
    """Docker's zero ``container.Config``, in Docker's field order."""
    return {"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False,
            "AttachStdout": False, "AttachStderr": False, "Tty": False, "OpenStdin": False,
            "StdinOnce": False, "Env": None, "Cmd": None, "Image": "", "Volumes": None,
            "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": None}


def rfc3339_now() -> str:
    """The current UTC time as RFC 3339 with microseconds and ``Z``."""
    now = datetime.datetime.now(datetime.UTC)
    return now.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _check_entries(layer: Path, label: str) -> None:
    """Read every header once: refuse a non-tar, and hostile names, early."""
    entry = ""
    try:
        with tarfile.open(layer, "r:", encoding="utf-8", errors="surrogateescape") as tar:
            for member in tar:
                entry = member.name
                clean_name(member.name)
                if member.islnk():
                    clean_link_target(member.name, member.linkname)
    except Refused as err:
        raise UnsafeLayerEntry(f"{label}: {err.message}", err.entry) from err
    except (tarfile.TarError, OSError) as err:
        where = f' after "{entry}"' if entry else ""
        raise InvalidArchive(f"{label}: not a tar archive{where}: {err}") from err


def _config(diff_id: str, changes: Mapping[str, object] | None, message: str) -> bytes:
    run = empty_container_config()
    for key, value in (changes or {}).items():
        if key not in CHANGE_KEYS:
            raise InvalidParameter(f"{key} is not a valid change")
        run[key] = value
    created = rfc3339_now()
    comment = message or "Imported from -"
    doc = {"architecture": "amd64", "comment": comment, "config": run, "created": created,
           "history": [{"created": created, "comment": comment}], "os": "linux",
           "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    return json.dumps(doc, separators=(",", ":")).encode()


def stage_import(source: Path | BinaryIO, staging: Path, label: str,
                 ref: Reference | None, changes: Mapping[str, object] | None = None,
                 message: str = "") -> StagedImage:
    """Build the image from ``source`` in the empty directory ``staging``.

    Raises InvalidArchive (not a tar, corrupt compression), UnsafeLayerEntry (a name
    that leaves the root), InvalidParameter (a key of ``changes`` not in CHANGE_KEYS).
    """
    if isinstance(source, Path):
        if not source.is_file():
            raise InvalidArchive(missing_file(source))
        spooled = source
    else:
        spooled = staging / "input"
        with spooled.open("wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
    layer = staging / "layer.tar"
    try:
        decompress_file(spooled, layer)
    except InvalidLayer as err:
        raise InvalidArchive(f"{label}: {err}") from err
    _check_entries(layer, label)
    diff_id = oci.sha256_file(layer)
    layer_desc = Descriptor(oci.MEDIA_LAYER, diff_id, layer.stat().st_size)
    layer.rename(staging / diff_id.split(":", 1)[1])
    config = _config(diff_id, changes, message)
    config_desc = Descriptor(oci.MEDIA_CONFIG, oci.sha256_bytes(config), len(config))
    (staging / config_desc.digest.split(":", 1)[1]).write_bytes(config)
    manifest = oci.canonical_json({"schemaVersion": 2, "mediaType": oci.MEDIA_MANIFEST,
                                   "config": config_desc.to_json(),
                                   "layers": [layer_desc.to_json()]})
    return StagedImage(staging, manifest, config_desc.digest, (config_desc, layer_desc),
                       (ref,) if ref is not None else ())
