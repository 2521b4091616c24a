"""One exception tree for the whole project (after moby's errdefs).

Every error a module raises subclasses exactly one *kind* below. The API layer maps
kinds to HTTP status codes (Engine API: 400, 401, 403, 404, 409, 304, 503, 500); the CLI maps
them to Docker's exit codes (125 for daemon-side failures). Keep the cause with
``raise Kind(...) from err``.
"""

from __future__ import annotations


class VmcError(Exception):
    """Base of every vmcontainer error. ``str(err)`` is the user-facing message."""

    http_status = 500


class InvalidParameter(VmcError):
    """The request is malformed or asks for something impossible (HTTP 400)."""

    http_status = 400


class NotFound(VmcError):
    """A named object does not exist (HTTP 404). Messages keep Docker's wording,
    e.g. ``No such image: busybox:latest``, since clients classify 404s by text."""

    http_status = 404


class Conflict(VmcError):
    """The object's state forbids the operation (HTTP 409)."""

    http_status = 409


class NotModified(VmcError):
    """The operation is already done, e.g. starting a running container (HTTP 304)."""

    http_status = 304


class Unauthorized(VmcError):
    """Credentials are missing or wrong, e.g. refused by a registry (HTTP 401)."""

    http_status = 401


class Forbidden(VmcError):
    """The caller is known but may not do this, e.g. a registry denied access (HTTP 403)."""

    http_status = 403


class Unavailable(VmcError):
    """A required service or tool is missing or not answering (HTTP 503)."""

    http_status = 503


class System(VmcError):
    """An unexpected failure of the host: I/O, a tool exiting non-zero (HTTP 500)."""

    http_status = 500


class ImageNotFound(NotFound):
    """``No such image: <reference>``."""

    def __init__(self, reference: str) -> None:
        super().__init__(f"No such image: {reference}")
        self.reference = reference


class ContainerNotFound(NotFound):
    """``No such container: <name or id>``."""

    def __init__(self, name: str) -> None:
        super().__init__(f"No such container: {name}")
        self.name = name


class StartError(VmcError):
    """The container's process could not be started (Docker: exit 126/127/125).

    ``exit_code`` is the code the container records and ``docker run`` exits with.
    """

    http_status = 400

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
