"""The local OCI image layout: blobs, ``index.json``, and the lock that guards them.

Format: OCI image-spec ``image-layout.md`` (v1.1): ``oci-layout``
(``{"imageLayoutVersion": "1.0.0"}``), ``index.json`` (an image index whose
``manifests`` are descriptors) and ``blobs/sha256/<hex>``. Each tag of an image is
one index descriptor carrying the ``org.opencontainers.image.ref.name`` annotation
with the full normalised reference (``docker.io/library/busybox:latest``, valid in
the spec's ref grammar); an untagged image has one descriptor without it.

Blobs are content-addressed and immutable: they enter through a temporary file in
the same filesystem and a rename after their digest is checked. ``index.json`` is
replaced atomically (write, fsync, rename) under an exclusive ``flock`` on the
store's lock file, so concurrent writers (threads or processes) are safe.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vmcontainer.image.errors import StoreCorrupt

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar"
MEDIA_LAYER_GZIP = MEDIA_LAYER + "+gzip"
MEDIA_LAYER_ZSTD = MEDIA_LAYER + "+zstd"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"
LAYOUT_VERSION = "1.0.0"
_HEX = "0123456789abcdef"


def sha256_bytes(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """``sha256:<hex>`` of the file at ``path``, read in chunks."""
    with path.open("rb") as f:
        return "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()


def canonical_json(doc: object) -> bytes:
    """Compact JSON with sorted keys: the bytes this store hashes and writes."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor (``descriptor.md``): media type, digest, size in bytes."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def ref_name(self) -> str | None:
        """The ``org.opencontainers.image.ref.name`` annotation, if any."""
        return self.annotations.get(ANNOTATION_REF_NAME)

    def to_json(self) -> dict[str, object]:
        """The descriptor as JSON: ``mediaType``, ``digest``, ``size``, ``annotations``."""
        doc: dict[str, object] = {"mediaType": self.media_type, "digest": self.digest,
                                  "size": self.size}
        if self.annotations:
            doc["annotations"] = dict(self.annotations)
        return doc

    @classmethod
    def from_json(cls, doc: object) -> Descriptor:
        """Parse a descriptor; raises ValueError when a field is missing or mistyped."""
        if not isinstance(doc, dict):
            raise ValueError("descriptor is not an object")
        media_type, digest, size = doc.get("mediaType"), doc.get("digest"), doc.get("size")
        annotations = doc.get("annotations") or {}
        if not (isinstance(media_type, str) and isinstance(digest, str)
                and isinstance(size, int) and isinstance(annotations, dict)):
            raise ValueError(f"malformed descriptor {doc!r}")
        return cls(media_type, digest, size,
                   {str(k): str(v) for k, v in annotations.items()})


@contextlib.contextmanager
def file_lock(path: Path, shared: bool = False) -> Iterator[None]:
    """Hold ``flock`` on ``path`` (created if missing) for the ``with`` block.

    flock locks belong to the open file, so threads of one process exclude each
    other as well as separate processes.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data``: temp file in the same directory, fsync, rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class Layout:
    """An OCI image layout directory with a lock file beside it.

    ``root`` is the layout (``<data-root>/image/oci``); ``lock_path`` the flock file
    that serialises index changes. Reads of ``index.json`` need no lock (it is
    replaced atomically); read-modify-write cycles take :meth:`locked`.
    """

    def __init__(self, root: Path, lock_path: Path) -> None:
        self.root = root
        self.lock_path = lock_path
        self.blobs = root / "blobs" / "sha256"
        self.index_path = root / "index.json"

    def ensure(self) -> None:
        """Create the layout if it does not exist yet (idempotent)."""
        self.blobs.mkdir(parents=True, exist_ok=True)
        marker = self.root / "oci-layout"
        if not marker.exists():
            write_atomic(marker, canonical_json({"imageLayoutVersion": LAYOUT_VERSION}))
        if not self.index_path.exists():
            with self.locked():
                if not self.index_path.exists():
                    self.write_index([])

    def locked(self, shared: bool = False) -> contextlib.AbstractContextManager[None]:
        """The store lock: exclusive for changes, shared to keep blobs from vanishing."""
        return file_lock(self.lock_path, shared=shared)

    def blob_path(self, digest: str) -> Path:
        """Path of the blob ``sha256:<hex>``; ValueError for another algorithm."""
        algorithm, _, hex_part = digest.partition(":")
        if algorithm != "sha256" or len(hex_part) != 64 or hex_part.strip(_HEX):
            raise ValueError(f"unsupported digest {digest!r}")
        return self.blobs / hex_part

    def has_blob(self, digest: str) -> bool:
        """Whether the blob ``sha256:<hex>`` is stored."""
        return self.blob_path(digest).exists()

    def read_blob(self, digest: str) -> bytes:
        """The blob's bytes; raises StoreCorrupt if it is missing."""
        try:
            return self.blob_path(digest).read_bytes()
        except FileNotFoundError as err:
            raise StoreCorrupt(f"image store: blob {digest} is missing") from err

    def read_json(self, digest: str) -> dict[str, object]:
        """A JSON-object blob (manifest, config); raises StoreCorrupt if unreadable."""
        try:
            doc = json.loads(self.read_blob(digest))
        except ValueError as err:
            raise StoreCorrupt(f"image store: blob {digest} is not JSON") from err
        if not isinstance(doc, dict):
            raise StoreCorrupt(f"image store: blob {digest} is not a JSON object")
        return doc

    def put_bytes(self, data: bytes) -> Descriptor:
        """Store ``data`` as a blob (no-op if present); return its descriptor (no media type)."""
        digest = sha256_bytes(data)
        path = self.blob_path(digest)
        if not path.exists():
            write_atomic(path, data, 0o444)
        return Descriptor("", digest, len(data))

    def put_file(self, source: Path, digest: str | None = None) -> Descriptor:
        """Move the file ``source`` (same filesystem) into the blobs, checking its digest
        if given; return its descriptor (no media type). StoreCorrupt on mismatch."""
        actual = sha256_file(source)
        if digest is not None and actual != digest:
            raise StoreCorrupt(f"blob {source.name}: digest {actual} does not match {digest}")
        size = source.stat().st_size
        path = self.blob_path(actual)
        if path.exists():
            source.unlink()
        else:
            os.chmod(source, 0o444)
            os.replace(source, path)
        return Descriptor("", actual, size)

    def read_index(self) -> list[Descriptor]:
        """The descriptors of ``index.json`` in order; StoreCorrupt if unreadable."""
        try:
            doc = json.loads(self.index_path.read_bytes())
            manifests = doc.get("manifests") or []
            return [Descriptor.from_json(d) for d in manifests]
        except FileNotFoundError:
            return []
        except (ValueError, AttributeError) as err:
            raise StoreCorrupt(f"image store: {self.index_path} is unreadable: {err}") from err

    def write_index(self, descriptors: Sequence[Descriptor]) -> None:
        """Replace ``index.json`` atomically. Call with :meth:`locked` held."""
        doc = {"schemaVersion": 2, "mediaType": MEDIA_INDEX,
               "manifests": [d.to_json() for d in descriptors]}
        write_atomic(self.index_path, json.dumps(doc, indent=1).encode())

    def remove_blob(self, digest: str) -> None:
        """Delete a blob if present. Call with :meth:`locked` held."""
        with contextlib.suppress(FileNotFoundError):
            self.blob_path(digest).unlink()
