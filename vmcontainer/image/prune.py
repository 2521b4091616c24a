"""``docker image prune``: remove unused images (Engine API v1.45, ImagePrune:
``{"ImagesDeleted": [{"Untagged": ...}, {"Deleted": ...}], "SpaceReclaimed": n}``).

Dangling (untagged) images only, unless ``all``: then every image no container
uses. Images any container (running or not) was created from are kept, as Docker
keeps them. ``until``: only images created before that Unix time; ``labels``:
``key`` or ``key=value`` the image must carry (``!`` prefix: must not)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from vmcontainer.errors import VmcError
from vmcontainer.image.model import Image
from vmcontainer.image.store import ContainerUsers, ImageStore


def _created(image: Image) -> float:
    try:
        return datetime.fromisoformat(image.created.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _labels_match(image: Image, wanted: Sequence[str]) -> bool:
    labels: Mapping[str, str] = image.run_config.labels
    for want in wanted:
        negate = want.startswith("!")
        key, eq, value = want.lstrip("!").partition("=")
        present = key in labels and (not eq or labels[key] == value)
        if present == negate:
            return False
    return True


def prune(store: ImageStore, users: Callable[[str], Mapping[str, bool]], *, all: bool,
          until: float = 0, labels: Sequence[str] = ()) -> dict[str, Any]:
    """Remove what the rules above select; an image that cannot be removed (e.g.
    a container appeared meanwhile) is left in place."""
    deleted: list[dict[str, str]] = []
    reclaimed = 0
    for image in store.list():
        if (image.repo_tags and not all) or users(image.id):
            continue
        if (until and _created(image) >= until) or not _labels_match(image, labels):
            continue
        use: ContainerUsers = users
        try:
            if image.repo_tags:
                for tag in image.repo_tags:
                    deleted += store.remove(tag, users=use)
            else:
                deleted += store.remove(image.id, users=use)
        except VmcError:
            continue
        if any(r.get("Deleted") == image.id for r in deleted):
            reclaimed += image.size
    return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}
