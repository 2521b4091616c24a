"""The application and its listeners.

``make_app(engine)`` wires the routes (each under ``/vX.Y/...`` and unversioned),
the middlewares (errors outermost, then versions) and Docker's response headers.
``serve`` listens on unix sockets (mode 0660, group ``group`` if it exists) and,
only with TLS client certificates, on TCP; it runs until ``stop`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from vmcontainer.api import (
    archive,
    auth,
    container_streams,
    containers,
    distribution,
    events,
    images,
    networks,
    processes,
    system,
    volumes,
)
from vmcontainer.api.backend import ENGINE, EngineBackend
from vmcontainer.api.compat import VERSION_PREFIX, server_headers, version_middleware
from vmcontainer.api.daemonconfig import TlsFiles
from vmcontainer.api.errors import error_middleware
from vmcontainer.api.operations import OPERATIONS, finish_all
from vmcontainer.errors import Conflict, InvalidParameter

log = logging.getLogger(__name__)

MAX_REQUEST_LINE = 2 * 1024 * 1024 + 64 * 1024
"""Long enough for a megabyte of name in a query, which then gets a JSON answer
from the handlers rather than aiohttp's plain-text 400."""
MAX_HEADER_FIELD = 64 * 1024  # X-Registry-Auth carries base64 JSON
DEFAULT_TLS_PORT = 2376
SHUTDOWN_TIMEOUT_S = 3.0
"""At shutdown, streams still open (events, logs -f, attach) get this long."""


async def _docker_headers(request: web.Request, response: web.StreamResponse) -> None:
    if not request.get("hijacked"):
        response.headers.update(server_headers())


def make_app(engine: EngineBackend, debug: bool = False) -> web.Application:
    app = web.Application(middlewares=[error_middleware, version_middleware])
    app[ENGINE] = engine
    app[system.DEBUG] = debug
    app[OPERATIONS] = set()
    for module in (system, auth, distribution, events, containers, container_streams,
                   processes, images, volumes, archive, networks):
        for method, path, handler in module.routes():
            app.router.add_route(method, path, handler)
            app.router.add_route(method, VERSION_PREFIX + path, handler)
    app.on_response_prepare.append(_docker_headers)
    app.on_cleanup.append(finish_all)
    return app


def unix_socket(path: Path, group: str = "") -> socket.socket:
    """A listening unix socket at ``path``, mode 0660 (group ``group`` if it
    exists). A stale socket file is replaced; a live one is a Conflict."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_socket():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()
        else:
            raise Conflict(f"another daemon is already listening on {path}")
        finally:
            probe.close()
    elif path.exists():
        raise Conflict(f"{path} exists and is not a socket")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o117)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o660)
    if group:
        with contextlib.suppress(KeyError, PermissionError):
            os.chown(path, -1, grp.getgrnam(group).gr_gid)
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _site(runner: web.AppRunner, host: str, tls: TlsFiles | None,
          group: str) -> tuple[web.BaseSite, Path | None]:
    url = urlsplit(host)
    if url.scheme == "unix":
        path = Path(url.path or url.netloc)
        return web.SockSite(runner, unix_socket(path, group)), path
    if url.scheme == "tcp":
        if tls is None:
            raise InvalidParameter(
                f"refusing to listen on {host} without TLS: TCP needs client certificates "
                "(--tlsverify --tlscacert CA --tlscert CERT --tlskey KEY)")
        return web.TCPSite(runner, url.hostname or "127.0.0.1", url.port or DEFAULT_TLS_PORT,
                           ssl_context=tls.server_context()), None
    raise InvalidParameter(f"invalid daemon host {host!r}: use unix:///path or "
                           "tcp://host:port")


async def serve(engine: EngineBackend, hosts: Sequence[str], stop: asyncio.Event, *,
                tls: TlsFiles | None = None, debug: bool = False, group: str = "") -> None:
    """Serve the API on every host URL until ``stop`` is set."""
    app = make_app(engine, debug)
    runner = web.AppRunner(
        app, handler_cancellation=True, access_log=log if debug else None,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        max_line_size=MAX_REQUEST_LINE, max_field_size=MAX_HEADER_FIELD)
    await runner.setup()
    sockets: list[Path] = []
    try:
        for host in hosts:
            site, path = _site(runner, host, tls, group)
            await site.start()
            if path is not None:
                sockets.append(path)
            log.info("API listening on %s", host)
        await stop.wait()
    finally:
        log.info("shutting down the API")
        await runner.cleanup()
        for path in sockets:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
