"""API versions: the range served, the version middleware, and every per-version
difference in one place (after moby's ``daemon/server/middleware/version.go`` and
docker-py's ``utils/decorators.py``; handlers ask here rather than compare
versions themselves).

Paths come versioned (``/v1.45/containers/json``) and unversioned (the newest
version). Routes are registered under both forms by ``server.py``; the version
part is the ``version`` match of the route.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from vmcontainer import __version__
from vmcontainer.errors import InvalidParameter, StartError

Version = tuple[int, int]

MIN_API_VERSION: Version = (1, 24)
MAX_API_VERSION: Version = (1, 47)
API_VERSION = f"{MAX_API_VERSION[0]}.{MAX_API_VERSION[1]}"
MIN_API = f"{MIN_API_VERSION[0]}.{MIN_API_VERSION[1]}"
SERVER = f"vmcontainer/{__version__}"

VERSION_PREFIX = r"/v{version:[0-9]+(?:\.[0-9]+)?}"
_VERSION_TEXT = re.compile(r"^[0-9]+(?:\.[0-9]+)?$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Route = tuple[str, str, Handler]
"""(method, path, handler): each module's ``routes()``; the server adds the
versioned form of each path."""


def parse_version(text: str) -> Version:
    """``"1.45"`` → (1, 45); raises InvalidParameter for anything else."""
    if not _VERSION_TEXT.match(text):
        raise InvalidParameter(f"invalid API version: {text[:32]}")
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


def check_version(text: str) -> Version:
    """The requested version, or InvalidParameter with Docker's wording when it is
    out of the range served."""
    v = parse_version(text)
    if v < MIN_API_VERSION:
        raise InvalidParameter(
            f"client version {text} is too old. Minimum supported API version is "
            f"{MIN_API}, please upgrade your client to a newer version")
    if v > MAX_API_VERSION:
        raise InvalidParameter(
            f"client version {text} is too new. Maximum supported API version is "
            f"{API_VERSION}")
    return v


def request_version(request: web.Request) -> Version:
    """The version this request speaks (set by the middleware; the newest for
    unversioned paths)."""
    v = request.get("api_version")
    return v if isinstance(v, tuple) else MAX_API_VERSION


@web.middleware
async def version_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Rejects versions out of range (400) on matched routes, records the version."""
    text = request.match_info.get("version")
    if text is not None:
        request["api_version"] = check_version(text)
    return await handler(request)


def server_headers() -> dict[str, str]:
    """Docker's headers on every API answer (moby: ``server.go`` makeHTTPHandler)."""
    return {"Api-Version": API_VERSION, "Ostype": "linux", "Server": SERVER,
            "Docker-Experimental": "false"}


# -- per-version differences ----------------------------------------------------

def logs_content_type(version: Version, tty: bool) -> str | None:
    """API 1.42 names the framing of ``/logs`` in Content-Type; older versions send
    none (moby: ``container_routes.go`` getContainersLogs)."""
    if version < (1, 42):
        return None
    return "application/vnd.docker.raw-stream" if tty else \
        "application/vnd.docker.multiplexed-stream"


def image_summary(summary: dict[str, object], version: Version) -> dict[str, object]:
    """``VirtualSize`` left the image list in API 1.44."""
    if version >= (1, 44):
        summary.pop("VirtualSize", None)
    return summary


def wait_condition(version: Version, condition: str) -> str:
    """``condition`` came with API 1.30; before it, wait meant not-running."""
    return condition if version >= (1, 30) and condition else "not-running"


def start_error(err: StartError) -> StartError:
    """Docker's daemon wording of a process that could not start. The docker CLI
    chooses ``docker run``'s exit code from this text (127 for "executable file not
    found" / "no such file or directory", 126 for "permission denied" / "is a
    directory", else 125), so the agent's message is kept whole inside it. A
    setup failure (exit code 125: user, working directory) keeps its bare text."""
    if err.exit_code == 125:
        return err
    return StartError("failed to create task for container: failed to create shim task: "
                      f"OCI runtime create failed: unable to start container process: "
                      f"{err}: unknown", err.exit_code)


def prune_volumes_anonymous_only(version: Version) -> bool:
    """From API 1.42 ``volume prune`` removes anonymous volumes only, unless the
    ``all`` filter says otherwise (moby ``volume_routes.go`` postVolumesPrune)."""
    return version >= (1, 42)
