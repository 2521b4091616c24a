"""Volume routes (Engine API v1.45: VolumeList, VolumeCreate, VolumeInspect,
VolumeDelete, VolumePrune; moby ``daemon/server/router/volume``)."""

from __future__ import annotations

from aiohttp import web

from vmcontainer.api import params
from vmcontainer.api.backend import engine
from vmcontainer.api.compat import Route, prune_volumes_anonymous_only, request_version
from vmcontainer.api.create import Fields
from vmcontainer.api.responses import json_response


async def list_(request: web.Request) -> web.Response:
    return json_response(engine(request).volume_list(params.filters(request)))


async def create(request: web.Request) -> web.Response:
    body = Fields(await params.json_body(request), "")
    vol = await engine(request).volume_create(
        body.text("Name"), body.text("Driver"), body.labels("Labels"),
        body.labels("DriverOpts"))
    return json_response(vol, status=201)


async def inspect(request: web.Request) -> web.Response:
    return json_response(engine(request).volume_inspect(request.match_info["name"]))


async def remove(request: web.Request) -> web.Response:
    engine(request).volume_remove(request.match_info["name"],
                                  force=params.flag(request, "force"))
    return web.Response(status=204)


async def prune(request: web.Request) -> web.Response:
    anonymous_only = prune_volumes_anonymous_only(request_version(request))
    return json_response(engine(request).volume_prune(params.filters(request), anonymous_only))


def routes() -> list[Route]:
    return [
        ("GET", "/volumes", list_),
        ("POST", "/volumes/create", create),
        ("POST", "/volumes/prune", prune),
        ("GET", "/volumes/{name}", inspect),
        ("DELETE", "/volumes/{name}", remove),
    ]
