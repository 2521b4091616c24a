"""Errors of the image room; each subclasses exactly one kind of :mod:`vmcontainer.errors`."""

from __future__ import annotations

from vmcontainer.errors import Conflict, InvalidParameter, System, Unavailable


class InvalidReference(InvalidParameter):
    """A reference that Docker's grammar refuses; the message is Docker's
    (``invalid reference format``, ``repository name must be lowercase``, ...)."""


class InvalidArchive(InvalidParameter):
    """``load``/``import`` input that is not a readable docker-archive, OCI archive
    or tar; the message says what was wrong with which file."""


class InvalidLayer(InvalidParameter):
    """A layer tar that cannot be applied: corrupt, or an entry conflicting with the
    tree (a file where a directory is needed, a hard link to nothing).

    ``entry`` is the tar member name at fault ("" when the tar itself is unreadable).
    """

    def __init__(self, message: str, entry: str = "") -> None:
        super().__init__(message)
        self.entry = entry


class UnsafeLayerEntry(InvalidLayer):
    """A hostile entry refused: a name or hard link that leaves the root, as moby's
    ``"../evil" is outside of "/"``."""


class ImageConflict(Conflict):
    """``conflict: unable to delete 0123456789ab (must be forced) - ...`` (moby's text)."""


class ToolMissing(Unavailable):
    """A host tool this room needs (skopeo, mke2fs, zstd, ...) is not installed."""


class PrivilegeRequired(Unavailable):
    """The operation needs root (building a rootfs: chroot, chown, mknod)."""


class ToolFailed(System):
    """A host tool exited non-zero; ``stderr`` holds the tail of its error output."""

    def __init__(self, message: str, stderr: str = "") -> None:
        super().__init__(message)
        self.stderr = stderr


class StoreCorrupt(System):
    """The on-disk store is inconsistent: a blob missing or a JSON document unreadable."""
