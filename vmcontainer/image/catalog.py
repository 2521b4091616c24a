"""The in-memory view of ``index.json``: which image each tag names.

The index holds one descriptor per tag (annotated with the full reference), one per
repository digest of a pulled image (annotated ``docker.io/library/busybox@sha256:…``,
Docker's ``RepoDigests``) and one unannotated descriptor per image with neither
(OCI image-spec ``image-layout.md``).
:class:`Catalog` groups them by image ID (the config digest named by each
manifest), finds images as Docker does, changes tags, and writes the descriptors
back in a stable order.
Pure data: reading blobs is the caller's ``manifest_of`` function.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from vmcontainer.errors import ImageNotFound
from vmcontainer.image import oci
from vmcontainer.image.errors import StoreCorrupt
from vmcontainer.image.oci import Descriptor
from vmcontainer.image.reference import (
    Reference,
    id_prefix,
    is_full_id,
    normalize,
    parse_normalized,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ManifestInfo:
    """What this store needs from an OCI manifest: its config and layer descriptors."""

    config: Descriptor
    layers: tuple[Descriptor, ...]

    @classmethod
    def from_json(cls, doc: dict[str, object]) -> ManifestInfo:
        """Parse a manifest document; raises ValueError if malformed."""
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise ValueError("manifest without layers")
        return cls(Descriptor.from_json(doc.get("config")),
                   tuple(Descriptor.from_json(d) for d in layers))


@dataclass
class Entry:
    """One image: its manifest descriptor (no annotations), full-reference tags and
    repository digests (``docker.io/library/busybox@sha256:<registry manifest digest>``)."""

    image_id: str
    manifest: Descriptor
    info: ManifestInfo
    tags: list[str] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)


class Catalog:
    """Images by ID, in index order. Built by :meth:`from_index`."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}

    @classmethod
    def from_index(cls, descriptors: Sequence[Descriptor],
                   manifest_of: Callable[[str], ManifestInfo]) -> Catalog:
        """Group ``descriptors``; ``manifest_of(digest)`` reads a manifest. Of two
        manifests naming one config, the first kept wins and takes the other's tags.
        An entry whose manifest cannot be read (StoreCorrupt) is left out and logged,
        so one damaged image does not take the whole store down."""
        catalog = cls()
        for desc in descriptors:
            try:
                info = manifest_of(desc.digest)
            except StoreCorrupt as err:
                log.error("skipping image %s: %s", desc.ref_name or desc.digest, err,
                          extra={"op": "catalog", "status": "corrupt"})
                continue
            image_id = info.config.digest
            bare = Descriptor(desc.media_type, desc.digest, desc.size)
            entry = catalog.entries.setdefault(image_id, Entry(image_id, bare, info))
            ref = desc.ref_name
            if ref and "@" in ref:
                if ref not in entry.digests:
                    entry.digests.append(ref)
            elif ref and ref not in entry.tags and catalog.tag_owner(ref) is None:
                entry.tags.append(ref)
        return catalog

    def __iter__(self) -> Iterator[Entry]:
        return iter(list(self.entries.values()))

    def get(self, image_id: str) -> Entry | None:
        """The entry of the full image ID ``sha256:<hex>``, or None."""
        return self.entries.get(image_id)

    def tag_owner(self, ref: str) -> str | None:
        """The image ID the full reference ``ref`` names, if any."""
        for entry in self.entries.values():
            if ref in entry.tags:
                return entry.image_id
        return None

    def add(self, image_id: str, manifest: Descriptor, info: ManifestInfo) -> Entry:
        """The entry for ``image_id``, created (untagged) if new."""
        return self.entries.setdefault(image_id, Entry(image_id, manifest, info))

    def set_tag(self, ref: str, image_id: str) -> str | None:
        """Point ``ref`` at ``image_id``; return the image it named before if another.
        The previous image stays, untagged if that was its last tag (Docker's
        ``<none>``)."""
        previous = self.tag_owner(ref)
        if previous == image_id:
            return None
        if previous is not None:
            self.entries[previous].tags.remove(ref)
        self.entries[image_id].tags.append(ref)
        return previous

    def add_digest(self, ref: str, image_id: str) -> None:
        """Record the repository digest ``ref`` (``name@sha256:...``) of ``image_id``."""
        entry = self.entries[image_id]
        if ref not in entry.digests:
            entry.digests.append(ref)

    def untag(self, ref: str) -> str | None:
        """Remove ``ref``; return the image ID it named, or None."""
        owner = self.tag_owner(ref)
        if owner is not None:
            self.entries[owner].tags.remove(ref)
        return owner

    def remove(self, image_id: str) -> Entry | None:
        """Drop the image and all its tags; return its entry, or None."""
        return self.entries.pop(image_id, None)

    def lookup(self, text: str) -> tuple[Entry, Reference | None]:
        """Docker's ``GetImage``: a full ID (``sha256:`` optional), then a reference,
        then a unique ID prefix. Returns the entry and the tag matched (None when
        matched by ID). Raises ImageNotFound (``No such image: busybox:latest``, the
        normalised familiar form) or InvalidReference.
        """
        hex_part = id_prefix(text)
        if hex_part is not None and is_full_id(text):
            entry = self.get("sha256:" + hex_part)
            if entry is None:
                raise ImageNotFound("sha256:" + hex_part)
            return entry, None
        ref = normalize(text)
        if ref.digest is None:
            owner = self.tag_owner(str(ref))
            if owner is not None:
                return self.entries[owner], ref
        else:  # name@sha256:<manifest digest>, if the image has a tag in that repository
            for entry in self:
                same_repo = any(parse_normalized(t).name == ref.name for t in entry.tags)
                if str(ref) in entry.digests or (entry.manifest.digest == ref.digest
                                                 and same_repo):
                    return entry, None
        if hex_part is not None:
            matches = [e for e in self if e.image_id[len("sha256:"):].startswith(hex_part)]
            if len(matches) == 1:
                return matches[0], None
        raise ImageNotFound(ref.familiar)

    def referenced_blobs(self) -> set[str]:
        """Digests of every manifest, config and layer still named by an image."""
        blobs: set[str] = set()
        for entry in self.entries.values():
            blobs.add(entry.manifest.digest)
            blobs.add(entry.info.config.digest)
            blobs.update(layer.digest for layer in entry.info.layers)
        return blobs

    def to_index(self) -> list[Descriptor]:
        """Descriptors for ``index.json``: one per tag and repository digest (sorted), or
        one bare per image with neither."""
        out: list[Descriptor] = []
        for entry in self.entries.values():
            m = entry.manifest
            if not entry.tags and not entry.digests:
                out.append(m)
            for ref in sorted(entry.tags) + sorted(entry.digests):
                out.append(Descriptor(m.media_type, m.digest, m.size,
                                      {oci.ANNOTATION_REF_NAME: ref}))
        return out
