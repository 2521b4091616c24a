"""The image room: references, the local OCI image store, and rootfs base disks.

The engine uses :class:`ImageStore` (or anything matching :class:`ImageService`)::

    store = ImageStore(data_root / "image")
    store.load(Path("busybox.tar"))          # ["Loaded image: busybox:latest"]
    image = store.resolve("busybox")         # Image(id="sha256:...", ...)
    disk = store.rootfs_disk(image)          # image/rootfs/<hex>.ext4, read-only

All methods block; call them through ``asyncio.to_thread``.
"""

from vmcontainer.image.model import Image, RunConfig
from vmcontainer.image.protocol import ImageService
from vmcontainer.image.reference import Reference, normalize, parse_normalized
from vmcontainer.image.store import ContainerUsers, ImageStore

__all__ = [
    "ContainerUsers",
    "Image",
    "ImageService",
    "ImageStore",
    "Reference",
    "RunConfig",
    "normalize",
    "parse_normalized",
]
