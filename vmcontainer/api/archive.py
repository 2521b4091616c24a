"""Routes for a container's files (moby ``copy.go``, ``container_routes.go``
``getContainersExport``/``getContainersChanges``, ``image_routes.go`` commit;
Engine API v1.45 ContainerArchive, ContainerArchiveInfo, PutContainerArchive,
ContainerExport, ContainerChanges, ImageCommit)."""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from vmcontainer.api import params
from vmcontainer.api.backend import engine
from vmcontainer.api.compat import Route
from vmcontainer.api.responses import json_response
from vmcontainer.errors import InvalidParameter

STAT_HEADER = "X-Docker-Container-Path-Stat"
_CHUNK = 1 << 16


def _path(request: web.Request) -> str:
    path = params.text(request, "path")
    if not path:
        raise InvalidParameter("bad parameter: pathcannot be empty")  # Docker 20.10's text
    return path


def _stat_header(stat: dict[str, Any]) -> str:
    raw = json.dumps(stat, separators=(",", ":")).encode()
    return base64.b64encode(raw).decode()


async def archive_head(request: web.Request) -> web.Response:
    stat = await engine(request).archive_stat(request.match_info["id"], _path(request))
    return web.Response(status=200, headers={STAT_HEADER: _stat_header(stat),
                                             "Content-Type": "application/json"})


async def _stream(request: web.Request, chunks: AsyncIterator[bytes],
                  headers: dict[str, str]) -> web.StreamResponse:
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/x-tar",
                                                   **headers})
    await resp.prepare(request)
    async for chunk in chunks:
        await resp.write(chunk)
    await resp.write_eof()
    return resp


async def archive_get(request: web.Request) -> web.StreamResponse:
    async with engine(request).archive_get(request.match_info["id"], _path(request)) \
            as (stat, chunks):
        return await _stream(request, chunks, {STAT_HEADER: _stat_header(stat)})


async def _body(request: web.Request) -> AsyncIterator[bytes]:
    """The request body, gunzipped when it is gzip (Docker's Untar decompresses)."""
    first = True
    gunzip: Any = None
    while chunk := await request.content.read(_CHUNK):
        if first:
            first = False
            if chunk[:2] == b"\x1f\x8b":
                gunzip = zlib.decompressobj(wbits=31)
        yield gunzip.decompress(chunk) if gunzip is not None else chunk
    if gunzip is not None:
        yield gunzip.flush()


async def archive_put(request: web.Request) -> web.Response:
    await engine(request).archive_put(
        request.match_info["id"], _path(request), _body(request),
        no_overwrite_dir_non_dir=params.flag(request, "noOverwriteDirNonDir"),
        copy_uid_gid=params.flag(request, "copyUIDGID"))
    return web.Response(status=200)


async def export(request: web.Request) -> web.StreamResponse:
    async with engine(request).export(request.match_info["id"]) as chunks:
        return await _stream(request, chunks, {})


async def changes(request: web.Request) -> web.Response:
    return json_response(await engine(request).changes(request.match_info["id"]))


async def commit(request: web.Request) -> web.Response:
    ref = params.text(request, "container")
    repo, tag = params.text(request, "repo"), params.text(request, "tag")
    if tag and not repo:
        raise InvalidParameter("repository name must be given with a tag")
    config = await params.json_body(request, required=False)
    if config is not None and not isinstance(config, dict):
        raise InvalidParameter("invalid JSON: the body must be a JSON object")
    image_id = await engine(request).commit(
        ref, f"{repo}:{tag}" if repo and tag else repo or None,
        comment=params.text(request, "comment"), author=params.text(request, "author"),
        changes=request.query.getall("changes", []), config=dict(config or {}))
    return json_response({"Id": image_id}, status=201)


def routes() -> list[Route]:
    return [
        ("HEAD", "/containers/{id}/archive", archive_head),
        ("GET", "/containers/{id}/archive", archive_get),
        ("PUT", "/containers/{id}/archive", archive_put),
        ("GET", "/containers/{id}/export", export),
        ("GET", "/containers/{id}/changes", changes),
        ("POST", "/commit", commit),
    ]
