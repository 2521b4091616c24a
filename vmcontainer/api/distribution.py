"""``GET /distribution/{name}/json`` (Engine API v1.45 ``DistributionInspect``): what
the registry holds for a reference, without pulling it. Credentials as for a pull
(``X-Registry-Auth``, optional)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from vmcontainer.api.backend import engine
from vmcontainer.api.compat import Route
from vmcontainer.api.registryauth import credentials
from vmcontainer.api.responses import json_response


async def inspect(request: web.Request) -> web.Response:
    from vmcontainer.image.distribution import inspect_distribution

    store = engine(request).ctx.images
    doc = await asyncio.to_thread(inspect_distribution, request.match_info["name"],
                                  store.registries, credentials(request), store.tmp_dir)
    return json_response(doc)


def routes() -> list[Route]:
    return [("GET", "/distribution/{name:.+}/json", inspect)]
