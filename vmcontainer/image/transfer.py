"""``docker pull`` and ``docker push`` of the image store (the registry side is in
:mod:`vmcontainer.image.pull` and :mod:`vmcontainer.image.push`). A mixin of
:class:`~vmcontainer.image.store.ImageStore`, which owns the layout and catalog."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vmcontainer.errors import NotFound
from vmcontainer.image.catalog import Catalog, Entry, ManifestInfo
from vmcontainer.image.model import Image
from vmcontainer.image.oci import Descriptor, Layout
from vmcontainer.image.reference import DEFAULT_TAG, normalize
from vmcontainer.image.registry import ANONYMOUS, Credentials, RegistryPolicy
from vmcontainer.image.staging import staging_dir

if TYPE_CHECKING:
    from vmcontainer.image.archive import StagedImage
    from vmcontainer.image.pull import Progress, Resolved

log = logging.getLogger("vmcontainer.image.store")


@dataclass(frozen=True)
class PullResult:
    """``repo_digest``: the registry's digest of what was pulled (``Digest:`` line);
    ``image_id``; ``updated``: False when the reference already named that image
    (Docker's ``Image is up to date``)."""

    repo_digest: str
    image_id: str
    updated: bool


@dataclass(frozen=True)
class PushResult:
    """What Docker's last push lines report: ``tag``, manifest ``digest`` and ``size``."""

    tag: str
    digest: str
    size: int


class RegistryTransferMixin:
    """``tmp_dir``, ``registries``, ``layout`` and the catalog helpers are the
    store's."""

    tmp_dir: Path
    registries: RegistryPolicy
    layout: Layout
    _catalog: Callable[[], Catalog]
    _image: Callable[[Entry], Image]
    _manifest: Callable[[str], ManifestInfo]
    _ingest: Callable[[StagedImage], Descriptor]

    def pull(self, reference: str, creds: Credentials = ANONYMOUS,
             progress: Progress | None = None) -> PullResult:
        """``docker pull``: fetch ``reference`` (normalised; ``latest`` if no tag) from
        its registry (see :mod:`vmcontainer.image.pull`), then tag it and record its
        repository digest. All or nothing: an interrupted pull leaves the store as it
        was. An image already stored is not fetched again.

        ``progress`` gets Docker's pull steps as :class:`~vmcontainer.image.pull.Event`
        (first ``Pulling from <path>`` with the tag or digest as its id). Raises
        InvalidReference, NotFound, Unauthorized, Forbidden, Unavailable, System.
        """
        from vmcontainer.image import pull as pulling

        ref = normalize(reference)
        report = progress or (lambda event: None)
        with staging_dir(self.tmp_dir, "pull-") as work:
            resolved = pulling.resolve(ref, self.registries, creds, work)
            report(pulling.Event(f"Pulling from {ref.path}", ref.tag or ref.digest or ""))
            with self.layout.locked(shared=True):
                stored = self._catalog().get(resolved.config.digest) is not None
                have = {d.digest for d in resolved.layers if self.layout.has_blob(d.digest)}
            fresh = [] if stored else [d for d in resolved.layers if d.digest not in have]
            if not stored:
                for layer in resolved.layers:
                    status = "Pulling fs layer" if layer in fresh else "Already exists"
                    report(pulling.Event(status, pulling.short_id(layer.digest)))
                staging = work / "blobs"
                staging.mkdir()
                pulling.fetch(resolved, self.registries, creds, staging, work, report)
                for layer in fresh:
                    report(pulling.Event("Pull complete", pulling.short_id(layer.digest)))
            else:
                staging = work
            updated = self._commit_pull(resolved, pulling.oci_manifest(resolved), staging)
        log.info("pulled %s", ref, extra={"op": "pull", "status": "ok"})
        return PullResult(resolved.repo_digest, resolved.config.digest, updated)

    def _commit_pull(self, resolved: Resolved, manifest: bytes, staging: Path) -> bool:
        """Ingest (if new), tag and record the digest; return whether anything changed."""
        from vmcontainer.errors import Unavailable
        from vmcontainer.image.archive import StagedImage

        ref, image_id = resolved.ref, resolved.config.digest
        digest_ref = f"{ref.name}@{resolved.repo_digest}"
        with self.layout.locked():
            catalog = self._catalog()
            changed = catalog.get(image_id) is None
            if changed:
                staged = StagedImage(staging, manifest, image_id,
                                     (resolved.config, *resolved.layers), ())
                if not all(staged.blob_file(d).exists() or self.layout.has_blob(d.digest)
                           for d in staged.blobs):
                    raise Unavailable(f"{ref.familiar} was removed while being pulled; "
                                      "pull it again")
                desc = self._ingest(staged)
                catalog.add(image_id, desc, self._manifest(desc.digest))
            if ref.digest is None:
                changed = catalog.tag_owner(str(ref)) != image_id or changed
                catalog.set_tag(str(ref), image_id)
            changed = changed or digest_ref not in catalog.entries[image_id].digests
            catalog.add_digest(digest_ref, image_id)
            self.layout.write_index(catalog.to_index())
        return changed

    def push(self, reference: str, creds: Credentials = ANONYMOUS,
             progress: Progress | None = None) -> PushResult:
        """``docker push``: upload the image ``reference`` (normalised; ``latest`` if
        no tag) names to its registry (see :mod:`vmcontainer.image.push`), first
        reporting ``The push refers to repository [NAME]``; record the pushed digest
        as a repository digest. Raises NotFound (Docker's ``An image does not
        exist locally with the tag: NAME``), Unavailable, Forbidden, System."""
        from vmcontainer.image import push as pushing
        from vmcontainer.image.pull import Event

        ref = normalize(reference)
        ref = ref.with_tag(ref.tag or DEFAULT_TAG) if ref.digest is None else ref
        report = progress or (lambda event: None)
        report(Event(f"The push refers to repository [{ref.name}]", ""))
        with staging_dir(self.tmp_dir, "push-") as work:
            staging = work / "dir"
            staging.mkdir()
            with self.layout.locked(shared=True):
                catalog = self._catalog()
                owner = catalog.tag_owner(str(ref))
                if owner is None or ref.digest is not None:
                    raise NotFound("An image does not exist locally with the tag: "
                                        f"{ref.familiar_name}")
                image = self._image(catalog.entries[owner])
                manifest = self.layout.read_blob(image.manifest_digest)
                digests = (image.id, *image.layers)
                item = pushing.Pushable(
                    manifest, image.manifest_digest,
                    {d: self.layout.blob_path(d) for d in digests}, image.layers,
                    image.diff_ids if len(image.diff_ids) == len(image.layers)
                    else image.layers)
                pushing.stage(item, staging)
            pushing.upload(item, ref, self.registries, creds, staging, work, report)
        with self.layout.locked():
            catalog = self._catalog()
            if owner in catalog.entries:
                catalog.add_digest(f"{ref.name}@{item.digest}", owner)
                self.layout.write_index(catalog.to_index())
        log.info("pushed %s", ref, extra={"op": "push", "status": "ok"})
        return PushResult(ref.tag or DEFAULT_TAG, item.digest, len(manifest))
