"""The seam the engine depends on: :class:`ImageService` (after moby's
``daemon/image_service.go``). :class:`~vmcontainer.image.store.ImageStore` implements
it; engine unit tests may put a fake here. A lookup that finds nothing raises
ImageNotFound with Docker's wording (``No such image: busybox:latest``).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO, Protocol

from vmcontainer.image.model import Image


class ImageService(Protocol):
    """Local images: lookups, ``load``/``import``/``tag``/``rmi``, base disks."""

    def resolve(self, ref_or_id: str) -> Image:
        """By reference, full ID or unique ID prefix; ImageNotFound otherwise."""
        ...

    def list(self) -> list[Image]:
        """Every image, tagged or dangling."""
        ...

    def load(self, archive: Path | BinaryIO) -> builtins.list[str]:
        """``docker load``; returns Docker's ``Loaded image: ...`` lines."""
        ...

    def import_rootfs(self, tarball: Path | BinaryIO, reference: str | None = None,
                      changes: Mapping[str, object] | None = None, message: str = "") -> str:
        """``docker import``; returns the new image ID."""
        ...

    def tag(self, source: str, target: str) -> None:
        """``docker tag``."""
        ...

    def remove(self, ref_or_id: str, force: bool = False,
               users: Callable[[str], Mapping[str, bool]] | None = None,
               ) -> builtins.list[dict[str, str]]:
        """``docker rmi``; returns Docker's Untagged/Deleted records."""
        ...

    def rootfs_disk(self, image: Image) -> Path:
        """The image's read-only ext4 base disk, built once."""
        ...
