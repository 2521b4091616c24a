"""The local image store: an OCI image layout plus one ext4 base disk per image.

Layout under ``<data-root>/image`` (DESIGN.md, "On disk")::

    oci/oci-layout, oci/index.json, oci/blobs/sha256/<hex>   OCI image layout
    rootfs/<image-id-hex>.ext4                               read-only base disks
    rootfs/<image-id-hex>.lock                               build lock per disk
    tmp/                                                     staging (same filesystem;
                                                             leftovers of dead processes
                                                             are swept on open)
    lock                                                     flock guarding index.json

Every method blocks (skopeo, mke2fs, disk I/O): call them from a worker thread
(``asyncio.to_thread``) in the daemon. They are safe to call concurrently from
threads and processes: changes are staged under ``tmp/`` and committed under the
lock with an atomic ``index.json`` replacement, so a failed ``load`` or ``import``
leaves the store as it was.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from vmcontainer.errors import ImageNotFound
from vmcontainer.image.catalog import Catalog, Entry, ManifestInfo
from vmcontainer.image.delete import delete
from vmcontainer.image.errors import InvalidReference, StoreCorrupt
from vmcontainer.image.inspect import inspect_image
from vmcontainer.image.model import Image
from vmcontainer.image.oci import MEDIA_MANIFEST, Descriptor, Layout, file_lock
from vmcontainer.image.reference import DEFAULT_TAG, normalize, parse_normalized
from vmcontainer.image.registry import RegistryPolicy
from vmcontainer.image.staging import staging_dir, sweep
from vmcontainer.image.transfer import PullResult, PushResult, RegistryTransferMixin

if TYPE_CHECKING:
    from vmcontainer.image.archive import StagedImage

# archive, importer and rootfs (tarfile, layer application, mke2fs) are imported
# where used: `vmcontainer run` only resolves images, and every millisecond of
# import is start latency.

__all__ = ["ContainerUsers", "Image", "ImageStore", "PullResult", "PushResult"]

log = logging.getLogger(__name__)

ContainerUsers = Callable[[str], Mapping[str, bool]]
"""Given an image ID, the containers created from it: ``{container_id: running}``."""


class ImageStore(RegistryTransferMixin):
    """Images in ``root`` (``<data-root>/image``); created on first use.

    ``registries`` says which registries may be reached without TLS checks.
    ``rootfs_free_bytes`` (None: the default) is the free space each base disk gets
    beyond its content
    (see :mod:`vmcontainer.image.rootfs` for the choice of 8 GiB).
    """

    def __init__(self, root: Path, rootfs_free_bytes: int | None = None,
                 registries: RegistryPolicy | None = None) -> None:
        self.root = root
        self.registries = registries or RegistryPolicy()
        self.layout = Layout(root / "oci", root / "lock")
        self.rootfs_dir = root / "rootfs"
        self.tmp_dir = root / "tmp"
        self.rootfs_free_bytes = rootfs_free_bytes
        for d in (root, self.rootfs_dir, self.tmp_dir):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.tmp_dir, 0o700)  # trees being built hold the images' device nodes
        self.layout.ensure()
        sweep(self.tmp_dir)
        self._manifests: dict[str, ManifestInfo] = {}
        self._configs: dict[str, bytes] = {}

    # -- reading ---------------------------------------------------------------

    def _manifest(self, digest: str) -> ManifestInfo:
        info = self._manifests.get(digest)
        if info is None:
            try:
                info = ManifestInfo.from_json(self.layout.read_json(digest))
            except ValueError as err:
                raise StoreCorrupt(f"image store: manifest {digest}: {err}") from err
            self._manifests[digest] = info
        return info

    def _config(self, digest: str) -> dict[str, Any]:
        raw = self._configs.get(digest)
        if raw is None:
            raw = self._configs[digest] = self.layout.read_blob(digest)
        try:
            doc = json.loads(raw)
        except ValueError as err:
            raise StoreCorrupt(f"image store: config {digest} is not JSON") from err
        if not isinstance(doc, dict):
            raise StoreCorrupt(f"image store: config {digest} is not a JSON object")
        return doc

    def _catalog(self) -> Catalog:
        return Catalog.from_index(self.layout.read_index(), self._manifest)

    def _image(self, entry: Entry) -> Image:
        config = self._config(entry.image_id)
        rootfs_doc = config.get("rootfs")
        diff_ids = rootfs_doc.get("diff_ids") if isinstance(rootfs_doc, dict) else None
        created = config.get("created")
        return Image(
            id=entry.image_id,
            repo_tags=tuple(sorted(normalize(t).familiar for t in entry.tags)),
            repo_digests=tuple(sorted(normalize(d).familiar for d in entry.digests)),
            config=config,
            created=created if isinstance(created, str) else "",
            size=sum(layer.size for layer in entry.info.layers),
            layers=tuple(layer.digest for layer in entry.info.layers),
            diff_ids=tuple(str(d) for d in diff_ids) if isinstance(diff_ids, list) else (),
            manifest_digest=entry.manifest.digest,
        )

    def resolve(self, ref_or_id: str) -> Image:
        """The image named by a reference (``busybox``), a full ID (with or without
        ``sha256:``) or a unique ID prefix, looked up in that order as Docker does.

        Raises ImageNotFound (``No such image: busybox:latest``) or InvalidReference.
        """
        entry, _ = self._catalog().lookup(ref_or_id)
        return self._image(entry)

    def list(self) -> builtins.list[Image]:
        """All images, tagged and dangling, in index order (damaged ones logged and
        left out)."""
        images = []
        for entry in self._catalog():
            try:
                images.append(self._image(entry))
            except StoreCorrupt as err:
                log.error("skipping image %s: %s", entry.image_id, err,
                          extra={"op": "list", "status": "corrupt"})
        return images

    def history(self, ref_or_id: str) -> builtins.list[dict[str, Any]]:
        """``docker history`` rows (see :mod:`vmcontainer.image.history`). Raises
        ImageNotFound."""
        from vmcontainer.image.history import history

        image = self.resolve(ref_or_id)
        sizes = []
        for digest in image.layers:
            try:
                sizes.append(self.layout.blob_path(digest).stat().st_size)
            except OSError:
                sizes.append(0)
        return history(image, sizes)

    def inspect(self, ref_or_id: str) -> dict[str, Any]:
        """``docker image inspect``'s object for the image :meth:`resolve` finds
        (see :mod:`vmcontainer.image.inspect`). Raises as :meth:`resolve`."""
        image = self.resolve(ref_or_id)
        disk = self._disk_path(image.id)
        return inspect_image(image, disk if disk.exists() else None)

    # -- changing --------------------------------------------------------------

    def _ingest(self, staged: StagedImage) -> Descriptor:
        for desc in staged.blobs:
            if not self.layout.has_blob(desc.digest):
                self.layout.put_file(staged.blob_file(desc), desc.digest)
        stored = self.layout.put_bytes(staged.manifest)
        return Descriptor(MEDIA_MANIFEST, stored.digest, stored.size)

    def _commit(self, staged: builtins.list[StagedImage]) -> builtins.list[str]:
        """Move staged images in and tag them, under the lock; return ``docker load``'s
        lines (Docker prints the ID lines only when the last image is untagged)."""
        lines, id_lines = [], []
        with self.layout.locked():
            catalog = self._catalog()
            for image in staged:
                if catalog.get(image.config_digest) is None:
                    manifest = self._ingest(image)
                    catalog.add(image.config_digest, manifest, self._manifest(manifest.digest))
                for ref in image.refs:
                    previous = catalog.set_tag(str(ref), image.config_digest)
                    if previous is not None:
                        lines.append(f"The image {ref.familiar} already exists, renaming the old "
                                     f"one with ID {previous} to empty string")
                    lines.append(f"Loaded image: {ref.familiar}")
                id_lines.append(f"Loaded image ID: {image.config_digest}")
            self.layout.write_index(catalog.to_index())
        return lines + id_lines if staged and not staged[-1].refs else lines

    def load(self, archive: Path | BinaryIO) -> builtins.list[str]:
        """``docker load``: add every image of a docker-archive or OCI archive (plain
        or compressed), given as a path or a readable binary stream.

        Returns Docker's output lines (``Loaded image: busybox:latest``, ``Loaded
        image ID: sha256:...``). Raises InvalidArchive (an InvalidParameter) for a
        corrupt or non-archive input, with nothing added to the store.
        """
        label = archive.name if isinstance(archive, Path) else "stdin"
        with staging_dir(self.tmp_dir, "load-") as staging:
            from vmcontainer.image.archive import read_archive

            lines = self._commit(read_archive(archive, staging, label))
        log.info("loaded %s", label, extra={"op": "load", "status": "ok"})
        return lines

    def import_rootfs(self, tarball: Path | BinaryIO, reference: str | None = None,
                      changes: Mapping[str, object] | None = None, message: str = "") -> str:
        """``docker import``: a root filesystem tar (plain, gzip, bzip2, xz or zstd) as
        a one-layer image tagged ``reference`` (normalised; None: untagged).

        ``changes``: container-config keys to set (``{"Cmd": ["sh"], "Env": [...]}``,
        see importer.CHANGE_KEYS); ``message``: the history comment. Returns the
        image ID ``sha256:<config digest>``. Raises InvalidReference, InvalidArchive,
        UnsafeLayerEntry or InvalidParameter.
        """
        ref = normalize(reference) if reference else None
        if ref is not None and ref.digest is not None:
            raise InvalidReference("refusing to create a tag with a digest reference")
        label = tarball.name if isinstance(tarball, Path) else "stdin"
        with staging_dir(self.tmp_dir, "import-") as staging:
            from vmcontainer.image.importer import stage_import

            staged = stage_import(tarball, staging, label, ref, changes, message)
            self._commit([staged])
        log.info("imported %s as %s", label, staged.config_digest,
                 extra={"op": "import", "status": "ok"})
        return staged.config_digest

    def tag(self, source: str, target: str) -> None:
        """``docker tag SOURCE TARGET``: point TARGET (normalised, ``latest`` if no tag)
        at the image SOURCE names, moving it from any other image.

        Raises ImageNotFound (SOURCE) or InvalidReference (TARGET has a digest, or
        is named ``sha256``).
        """
        ref = parse_normalized(target)
        if ref.digest is not None:
            raise InvalidReference("refusing to create a tag with a digest reference")
        if ref.familiar_name == "sha256":
            raise InvalidReference("refusing to create an ambiguous tag using digest "
                                   "algorithm as name")
        ref = ref.with_tag(ref.tag or DEFAULT_TAG)
        with self.layout.locked():
            catalog = self._catalog()
            entry, _ = catalog.lookup(source)
            catalog.set_tag(str(ref), entry.image_id)
            self.layout.write_index(catalog.to_index())

    def remove(self, ref_or_id: str, force: bool = False,
               users: ContainerUsers | None = None) -> builtins.list[dict[str, str]]:
        """``docker rmi``: untag, and delete the image once no tag is left.

        ``users`` tells which containers use an image (the image room knows none):
        a running one blocks deletion, a stopped one needs ``force``; without it no
        container is assumed. It is called with the store lock held, so it must not
        call back into the store. Returns ``[{"Untagged": "busybox:latest"},
        {"Deleted": "sha256:..."}, ...]`` (then the layer chain IDs released, as
        Docker). Blobs no image names any more are deleted, and the base disk
        unless a container still uses it (see :meth:`prune_rootfs`).

        Raises ImageNotFound, InvalidReference or ImageConflict (a Conflict).
        """
        with self.layout.locked():
            catalog = self._catalog()
            entry, ref = catalog.lookup(ref_or_id)
            using = dict(users(entry.image_id)) if users is not None else {}
            diff_ids = {e.image_id: self._image(e).diff_ids for e in catalog}
            result = delete(catalog, entry, ref, ref_or_id, force, using, diff_ids)
            self.layout.write_index(catalog.to_index())
            if result.deleted:
                self._collect_garbage(catalog)
        if result.deleted and not using:
            self._remove_disk(entry.image_id)
        log.info("removed %s", ref_or_id, extra={"op": "remove", "status": "ok"})
        return result.records

    def _collect_garbage(self, catalog: Catalog) -> None:
        """Delete every blob no image names. Call with the store lock held."""
        keep = catalog.referenced_blobs()
        for path in self.layout.blobs.iterdir():
            if not path.name.startswith(".") and "sha256:" + path.name not in keep:
                path.unlink(missing_ok=True)

    def _disk_path(self, image_id: str) -> Path:
        return self.rootfs_dir / (image_id.split(":", 1)[-1] + ".ext4")

    def _remove_disk(self, image_id: str) -> None:
        disk = self._disk_path(image_id)
        lock = disk.with_suffix(".lock")
        with file_lock(lock):
            disk.unlink(missing_ok=True)
            disk.with_suffix(".list").unlink(missing_ok=True)
        lock.unlink(missing_ok=True)

    def prune_rootfs(self, in_use: Collection[str]) -> builtins.list[Path]:
        """Delete base disks of images no longer in the store, except those of the
        image IDs in ``in_use`` (disks still backing containers). Returns the paths
        removed."""
        present = {e.image_id for e in self._catalog()} | set(in_use)
        removed = []
        for disk in self.rootfs_dir.glob("*.ext4"):
            image_id = "sha256:" + disk.stem
            if image_id not in present:
                self._remove_disk(image_id)
                removed.append(disk)
        return removed

    # -- base disks ------------------------------------------------------------

    def rootfs_disk(self, image: Image) -> Path:
        """The read-only ext4 base disk of ``image``, built on first use.

        Concurrent callers build it once (a lock per image; the build goes to a
        temporary name renamed into place). Raises ImageNotFound if the image was
        removed, InvalidLayer / UnsafeLayerEntry (InvalidParameter) for a bad layer,
        PrivilegeRequired when not root, ToolMissing / ToolFailed from mke2fs.
        """
        disk = self._disk_path(image.id)
        if disk.exists():
            return disk
        with file_lock(disk.with_suffix(".lock")):
            if disk.exists():
                return disk
            with self.layout.locked(shared=True):
                layers, labels = self._layer_files(image.id)
                from vmcontainer.image import rootfs

                return rootfs.build_disk(layers, labels, disk, self.tmp_dir,
                                         self.rootfs_free_bytes or rootfs.DEFAULT_FREE_BYTES)

    def _layer_files(self, image_id: str) -> tuple[builtins.list[Path], builtins.list[str]]:
        """The layer blobs of ``image_id`` and their digests, in order (call with the
        layout locked). Raises ImageNotFound."""
        entry = self._catalog().get(image_id)
        if entry is None:
            raise ImageNotFound(image_id)
        return ([self.layout.blob_path(d.digest) for d in entry.info.layers],
                [d.digest for d in entry.info.layers])

    def rootfs_listing(self, image: Image) -> bytes:
        """The listing of ``image``'s root filesystem (:mod:`vmcontainer.image.listing`),
        as recorded when its base disk was built, or made now from its layers (and
        kept). Raises as :meth:`rootfs_disk`."""
        disk = self.rootfs_disk(image)
        listing = disk.with_suffix(".list")
        with file_lock(disk.with_suffix(".lock")):
            if not listing.exists():
                with self.layout.locked(shared=True):
                    layers, labels = self._layer_files(image.id)
                from vmcontainer.image.layers import apply_layers
                from vmcontainer.image.listing import write_listing

                with staging_dir(self.tmp_dir, "listing-") as tmp:
                    tree = tmp / "tree"
                    tree.mkdir()
                    apply_layers(tree, layers, labels)
                    write_listing(tree, listing)
        return listing.read_bytes()

    def commit(self, parent: Image, layer: Path, run_config: Mapping[str, Any],
               reference: str | None = None, comment: str = "", author: str = "",
               created_by: str = "") -> str:
        """``docker commit``: add ``parent`` + the layer tar ``layer`` (moved into the
        store) with ``run_config`` (a container config) as a new image, tagged
        ``reference``. Returns its ID. Raises InvalidReference, ImageNotFound."""
        ref = normalize(reference) if reference else None
        if ref is not None and ref.digest is not None:
            raise InvalidReference("refusing to create a tag with a digest reference")
        with staging_dir(self.tmp_dir, "commit-") as staging:
            from vmcontainer.image.commit import stage_commit

            staged = stage_commit(staging, layer, parent.id, self._config(parent.id),
                                  self._manifest(parent.manifest_digest), run_config, ref,
                                  comment, author, created_by)
            self._commit([staged])
        log.info("committed %s", staged.config_digest, extra={"op": "commit", "status": "ok"})
        return staged.config_digest
