"""The one error middleware: every failure becomes ``{"message": ...}`` with the
status of its kind (moby: ``daemon/server/httpstatus/status.go``).

VmcError kinds carry their status (``http_status``); NotModified is a bare 304.
aiohttp's own HTTP errors keep their status with a JSON message (an unknown route
is Docker's 404 "page not found"). Anything else is a 500 with its message, logged
with its traceback at debug level; no traceback is ever written to the client. A
client that went away gets nothing, and the request is logged as 499.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from vmcontainer.api.compat import Handler
from vmcontainer.api.responses import json_error
from vmcontainer.errors import NotModified, VmcError

log = logging.getLogger(__name__)

SWARM_MESSAGE = ('This node is not a swarm manager. Use "docker swarm init" or '
                 '"docker swarm join" to connect this node to swarm and try again.')

STREAM_KEY = "vmc_stream"
"""request[STREAM_KEY]: the response a handler has started streaming; after that,
an error can only end the stream."""


def _started(request: web.Request) -> web.StreamResponse | None:
    resp = request.get(STREAM_KEY)
    return resp if isinstance(resp, web.StreamResponse) and resp.prepared else None


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except NotModified:
        return web.Response(status=304)
    except VmcError as err:
        status = err.http_status
        if status >= 500:
            log.error("%s %s: %s", request.method, request.path, err,
                      extra={"op": request.method, "status": status})
            log.debug("traceback", exc_info=True)
        if (started := _started(request)) is not None:
            return started
        return json_error(status, str(err))
    except web.HTTPException as err:
        if err.status < 400:
            raise
        if err.status in (404, 405) and request.match_info.route.resource is None:
            return json_error(404, "page not found")  # moby answers both so
        message = err.text or err.reason
        if message.startswith(f"{err.status}: "):
            message = err.reason
        return json_error(err.status, message)
    except (ConnectionResetError, asyncio.CancelledError) as err:
        log.debug("%s %s: client went away", request.method, request.path,
                  extra={"op": request.method, "status": 499})
        if isinstance(err, asyncio.CancelledError):
            raise
        return _started(request) or web.Response(status=499)
    except Exception as err:
        log.error("%s %s: %s: %s", request.method, request.path, type(err).__name__, err,
                  extra={"op": request.method, "status": 500})
        log.debug("traceback", exc_info=True)
        if (started := _started(request)) is not None:
            return started
        return json_error(500, str(err) or type(err).__name__)
