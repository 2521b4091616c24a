"""Apply image layers to a root directory, safely, as moby's chrootarchive does.

A layer is a tar changeset (OCI image-spec ``layer.md``), plain or compressed with
gzip, zstd, xz or bzip2 (detected from its magic bytes, not its media type). Each
layer is decompressed here by the system tool (``gzip -dc``, ``zstd -dc``, ...) and
piped into a fresh worker process (:mod:`vmcontainer.image._untar`) that
``chroot()``s into the root directory before extracting: absolute symlinks such as
``/etc/localtime`` resolve inside the image, and nothing is written outside it.
The worker refuses entries whose names or hard-link targets climb out with ``..``.

A re-exec'd interpreter rather than ``os.fork()``: forking a threaded asyncio
daemon and running Python in the child can deadlock on locks held by other threads.
The worker needs root (``chroot``, ``chown``, ``mknod``).
"""

from __future__ import annotations

import enum
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from vmcontainer.image.errors import (
    InvalidLayer,
    PrivilegeRequired,
    ToolFailed,
    ToolMissing,
    UnsafeLayerEntry,
)

log = logging.getLogger(__name__)

WORKER = Path(__file__).with_name("_untar.py")


class Compression(enum.Enum):
    """Compression of a tar stream, with the magic bytes that identify it."""

    NONE = b""
    GZIP = b"\x1f\x8b"
    ZSTD = b"\x28\xb5\x2f\xfd"
    XZ = b"\xfd7zXZ\x00"
    BZIP2 = b"BZh"

    @property
    def command(self) -> list[str]:
        """argv of the tool that decompresses stdin (or a file argument) to stdout."""
        return {
            Compression.GZIP: ["gzip", "-dc"],
            Compression.ZSTD: ["zstd", "-dcq"],
            Compression.XZ: ["xz", "-dc"],
            Compression.BZIP2: ["bzip2", "-dc"],
        }.get(self, ["cat"])


def detect_compression(head: bytes) -> Compression:
    """The compression of a stream whose first bytes (6 or more) are ``head``."""
    for kind in (Compression.GZIP, Compression.ZSTD, Compression.XZ, Compression.BZIP2):
        if head.startswith(kind.value):
            return kind
    return Compression.NONE


def sniff(path: Path) -> Compression:
    """The compression of the file at ``path``."""
    with path.open("rb") as f:
        return detect_compression(f.read(8))


def _tool(argv: list[str]) -> list[str]:
    found = shutil.which(argv[0])
    if found is None:
        raise ToolMissing(f"{argv[0]} is not installed; it is needed to read this layer")
    return [found, *argv[1:]]


def decompress_file(source: Path, dest: Path, compression: Compression | None = None) -> None:
    """Write the uncompressed content of ``source`` to ``dest`` (copy if plain).

    Raises InvalidLayer when the decompressor rejects the data.
    """
    kind = compression if compression is not None else sniff(source)
    if kind is Compression.NONE:
        shutil.copyfile(source, dest)
        return
    with source.open("rb") as src, dest.open("wb") as out:
        proc = subprocess.run(_tool(kind.command), stdin=src, stdout=out,
                              stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip()
        raise InvalidLayer(f"{source.name}: corrupt {kind.name.lower()} data: {detail}")


def _run_worker(rootfs: Path, stream: IO[bytes]) -> subprocess.CompletedProcess[bytes]:
    # -I -S: no site or user paths (a clean, fast interpreter); -X utf8: names with
    # any bytes round-trip through surrogateescape whatever the daemon's locale.
    argv = [sys.executable, "-I", "-S", "-X", "utf8", str(WORKER), str(rootfs)]
    return subprocess.run(argv, stdin=stream, capture_output=True, check=False)


def _result(label: str, proc: subprocess.CompletedProcess[bytes]) -> dict[str, object]:
    try:
        result = json.loads(proc.stdout or b"null")
    except json.JSONDecodeError:
        result = None
    if not isinstance(result, dict) or proc.returncode not in (0, 2):
        stderr = proc.stderr.decode(errors="replace").strip()
        raise ToolFailed(f"layer {label}: extraction worker failed "
                         f"(exit {proc.returncode}): {stderr[-500:]}", stderr)
    return result


def apply_layer(rootfs: Path, layer: Path, label: str | None = None) -> int:
    """Apply the layer tar at ``layer`` to the directory ``rootfs``; return the
    number of entries applied (whiteouts not counted).

    ``label`` names the layer in errors (default: the file name). Raises
    UnsafeLayerEntry or InvalidLayer (both InvalidParameter) naming the entry,
    ToolMissing, or ToolFailed / System for host failures (e.g. ENOSPC).
    On failure ``rootfs`` is left partly written: the caller discards it.
    """
    name = label or layer.name
    kind = sniff(layer)
    with layer.open("rb") as src, tempfile.TemporaryFile() as errors:
        if kind is Compression.NONE:
            proc = _run_worker(rootfs, src)
            unpack_rc = 0
        else:
            with subprocess.Popen(_tool(kind.command), stdin=src, stdout=subprocess.PIPE,
                                  stderr=errors) as unpack:
                assert unpack.stdout is not None
                proc = _run_worker(rootfs, unpack.stdout)
                unpack.stdout.close()
                unpack_rc = unpack.wait()
        errors.seek(0)
        unpack_err = errors.read()
    result = _result(name, proc)
    if "error" in result:
        message = f"layer {name}: {result['error']}"
        entry = str(result.get("entry", ""))
        if result.get("kind") == "unsafe":
            raise UnsafeLayerEntry(message, entry)
        if result.get("kind") == "system":
            raise ToolFailed(message)
        raise InvalidLayer(message, entry)
    if unpack_rc != 0:
        detail = unpack_err.decode(errors="replace").strip()
        raise InvalidLayer(f"layer {name}: corrupt {kind.name.lower()} data: {detail}")
    warnings = result.get("warnings")
    for warning in warnings if isinstance(warnings, list) else []:
        log.warning("layer %s: %s", name, warning, extra={"op": "apply_layer"})
    entries = result.get("entries", 0)
    return entries if isinstance(entries, int) else 0


def apply_layers(rootfs: Path, layers: Sequence[Path],
                 labels: Sequence[str] | None = None) -> None:
    """Apply ``layers`` (bottom first) to the existing directory ``rootfs``.

    Raises as :func:`apply_layer`. Requires root (the worker chroots); raises
    PrivilegeRequired (Unavailable) otherwise.
    """
    if os.geteuid() != 0:
        raise PrivilegeRequired("applying image layers needs root (chroot, chown, mknod)")
    for i, layer in enumerate(layers):
        label = labels[i] if labels is not None else layer.name
        count = apply_layer(rootfs, layer, label)
        log.debug("applied layer %s (%d entries)", label, count,
                  extra={"op": "apply_layer", "status": "ok"})
