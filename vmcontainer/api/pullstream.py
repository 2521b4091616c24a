"""Docker's progress JSON for pull and push: one object per line.

Shapes (moby ``pkg/jsonmessage``, as the reference Docker 20.10 writes them)::

    {"status":"Pulling from library/busybox","id":"latest"}
    {"status":"Pulling fs layer","progressDetail":{},"id":"02e3dcbe34d4"}
    {"status":"Downloading","progressDetail":{"current":36445,"total":1084088},
     "progress":"[=>      ...]  36.45kB/1.084MB","id":"02e3dcbe34d4"}
    {"status":"Digest: sha256:..."}
    {"errorDetail":{"message":"..."},"error":"..."}

The image room's operation runs in a worker thread and reports
:class:`~vmcontainer.image.pull.Event` s; :func:`run_with_progress` relays them.
An error before the first event is an ordinary HTTP error (Docker answers a missing
tag with 404 and no stream); after it, the stream ends with an ``errorDetail`` line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

from vmcontainer.api.responses import dumps
from vmcontainer.api.streams import start_stream
from vmcontainer.image.pull import Event, Progress

T = TypeVar("T")
BAR_WIDTH = 50
_UNITS = ("B", "kB", "MB", "GB", "TB", "PB")


def human_size(n: float) -> str:
    """go-units ``HumanSizeWithPrecision(n, 4)``: ``36.45kB``, ``1.084MB``, ``115B``."""
    unit = 0
    while n >= 1000 and unit < len(_UNITS) - 1:
        n /= 1000
        unit += 1
    return f"{n:.4g}{_UNITS[unit]}"


def progress_bar(current: int, total: int) -> str:
    """moby ``JSONProgress.String``: ``[====>     ]  36.45kB/1.084MB``."""
    filled = min(BAR_WIDTH, int(current * BAR_WIDTH / total)) if total > 0 else 0
    box = f"[{'=' * filled}>{' ' * (BAR_WIDTH - filled)}] "
    return box + f"{human_size(current):>8}/{human_size(total)}"


def event_doc(event: Event) -> dict[str, object]:
    """One progress line as Docker writes it."""
    if event.status.startswith(("Pulling from", "The push refers to")):
        return {"status": event.status, "id": event.layer} if event.layer else \
            {"status": event.status}
    detail: dict[str, object] = {}
    doc: dict[str, object] = {"status": event.status, "progressDetail": detail}
    if event.current is not None and event.total:
        detail.update(current=event.current, total=event.total)
        doc["progress"] = progress_bar(event.current, event.total)
    doc["id"] = event.layer
    return doc


def error_doc(message: str) -> dict[str, object]:
    """The line that ends a failed stream."""
    return {"errorDetail": {"message": message}, "error": message}


async def run_with_progress(request: web.Request, work: Callable[[Progress], T],
                            resp: web.StreamResponse | None = None,
                            ) -> tuple[web.StreamResponse, T]:
    """Run ``work(progress)`` in a thread, streaming its events; return the started
    response (not ended: the caller writes its last lines) and ``work``'s result.
    Raises ``work``'s error when no event came before it; after that the error is
    written as an ``errorDetail`` line and re-raised (the middleware then ends the
    stream). ``resp``: a stream already started by an earlier operation."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Event | None] = asyncio.Queue()

    def report(event: Event) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, event)

    def run() -> T:
        try:
            return work(report)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    task = asyncio.ensure_future(asyncio.to_thread(run))
    try:
        while (event := await queue.get()) is not None:
            if resp is None:
                resp = await start_stream(request, "application/json")
            await resp.write(dumps(event_doc(event)))
        result = await task
    except Exception as err:
        if resp is not None and not isinstance(err, ConnectionResetError):
            await resp.write(dumps(error_doc(str(err))))
        raise
    finally:
        if not task.done():  # the client went away: let the worker finish on its own
            task.add_done_callback(lambda t: t.exception())
    if resp is None:
        resp = await start_stream(request, "application/json")
    return resp, result
