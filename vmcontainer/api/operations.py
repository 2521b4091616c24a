"""Engine operations that must finish even when their client goes away.

Handlers are cancelled when the client disconnects (so that a stream nobody reads
ends at once). A create, start, stop or remove must not stop half-way for that:
it runs as a task the application owns — awaited at shutdown — and the handler
only waits for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from aiohttp import web

log = logging.getLogger(__name__)

T = TypeVar("T")

OPERATIONS: web.AppKey[set[asyncio.Task[Any]]] = web.AppKey("operations")


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("operation ended with an error after its client left: %s",
                  task.exception())


async def run_to_end(request: web.Request, coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` as a task of the application, shielded from the handler's
    cancellation."""
    task = asyncio.ensure_future(coro)
    ops = request.app[OPERATIONS]
    ops.add(task)
    task.add_done_callback(ops.discard)
    task.add_done_callback(_retrieve)
    return await asyncio.shield(task)


async def finish_all(app: web.Application) -> None:
    """At shutdown: let the operations still running end."""
    ops: set[asyncio.Task[Any]] = app[OPERATIONS]
    if ops:
        await asyncio.gather(*list(ops), return_exceptions=True)
