"""``docker rmi`` semantics on a :class:`Catalog`, after moby's
``daemon/images/image_delete.go`` (``ImageDelete``, ``imageDeleteHelper``,
``checkImageDeleteConflict``). Pure: it changes the catalog and returns the records.

By name: the tag is removed (``Untagged``); the image is deleted only if that was
its last tag. By ID: an image with one tag is untagged and deleted; with several
tags it needs ``force``. A running container using the image blocks deletion even
with ``force`` (then a by-name removal only untags); a stopped one needs ``force``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vmcontainer.image.catalog import Catalog, Entry
from vmcontainer.image.errors import ImageConflict
from vmcontainer.image.reference import Reference, normalize, truncate_id


@dataclass(frozen=True)
class DeleteResult:
    """``records``: Docker's ``[{"Untagged": ...}, {"Deleted": ...}]`` in order;
    ``deleted``: whether the image itself left the catalog."""

    records: list[dict[str, str]]
    deleted: bool


class _Conflict(ImageConflict):
    def __init__(self, image_id: str, message: str, hard: bool, used: bool) -> None:
        forced = "cannot be forced" if hard else "must be forced"
        short = truncate_id(image_id)
        super().__init__(f"conflict: unable to delete {short} ({forced}) - {message}")
        self.used = used


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """Layer chain IDs (OCI image-spec ``config.md``): ChainID(L0) = DiffID(L0),
    ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    chains: list[str] = []
    for diff_id in diff_ids:
        if chains:
            diff_id = "sha256:" + hashlib.sha256(f"{chains[-1]} {diff_id}".encode()).hexdigest()
        chains.append(diff_id)
    return chains


def _conflict(entry: Entry, using: Mapping[str, bool], soft: bool,
              active_reference: bool) -> _Conflict | None:
    running = [c for c, is_running in using.items() if is_running]
    if running:
        return _Conflict(entry.image_id, "image is being used by running container "
                         + truncate_id(running[0]), hard=True, used=True)
    if soft and active_reference and entry.tags:
        return _Conflict(entry.image_id, "image is referenced in multiple repositories",
                         hard=False, used=False)
    stopped = [c for c, is_running in using.items() if not is_running]
    if soft and stopped:
        return _Conflict(entry.image_id, "image is being used by stopped container "
                         + truncate_id(stopped[0]), hard=False, used=True)
    return None


def _familiar(full_ref: str) -> str:
    return normalize(full_ref).familiar


def delete(catalog: Catalog, entry: Entry, ref: Reference | None, given: str, force: bool,
           using: Mapping[str, bool], diff_ids: Mapping[str, Sequence[str]]) -> DeleteResult:
    """Remove ``entry`` as ``docker rmi given`` would. ``ref`` is the tag ``given``
    matched, None when it matched by ID. ``using`` maps IDs of containers created
    from this image to whether they run. ``diff_ids`` maps every image ID in the
    catalog to its diff IDs (for the ``Deleted`` layer records).

    Raises ImageConflict (a Conflict) with moby's message.
    """
    records: list[dict[str, str]] = []
    image_id = entry.image_id
    quiet = False
    if ref is not None:
        if not force and len(entry.tags) == 1 and using:
            container = truncate_id(next(iter(using)))
            raise ImageConflict(
                f'conflict: unable to remove repository reference "{given}" (must force) - '
                f"container {container} is using its referenced image {truncate_id(image_id)}")
        catalog.untag(str(ref))
        records.append({"Untagged": ref.familiar})
        if entry.tags:
            return DeleteResult(records, deleted=False)
        quiet = True
    elif len(entry.tags) == 1:
        conflict = _conflict(entry, using, soft=not force, active_reference=False)
        if conflict is not None:
            raise conflict
        records.append({"Untagged": _familiar(entry.tags[0])})
        catalog.untag(entry.tags[0])
    conflict = _conflict(entry, using, soft=not force, active_reference=True)
    if conflict is not None:
        if quiet and conflict.used:
            return DeleteResult(records, deleted=False)
        raise conflict
    for tag in sorted(entry.tags) + sorted(entry.digests):
        records.append({"Untagged": _familiar(tag)})
    catalog.remove(image_id)
    records.append({"Deleted": image_id})
    kept = {c for other in catalog for c in chain_ids(diff_ids.get(other.image_id, ()))}
    for chain in reversed(chain_ids(diff_ids.get(image_id, ()))):
        if chain not in kept:
            records.append({"Deleted": chain})
    return DeleteResult(records, deleted=True)
