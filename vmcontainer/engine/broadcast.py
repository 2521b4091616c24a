"""Fan-out of one container's live output to its attached clients."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

log = logging.getLogger(__name__)

Chunk = tuple[str, bytes]  # ("stdout" | "stderr", data)

#: Output one subscriber may have waiting before it is cut off. The VM's output
#: is never held back for a client (the json-file log must keep up, and one slow
#: client must not stall the container for the others), so a client that does
#: not read is detached instead of buffered without bound.
MAX_BACKLOG = 8 << 20


class _Subscriber:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Chunk | None] = asyncio.Queue()
        self.backlog = 0
        self.cut = False


class Broadcast:
    """Output of one run of a container. Subscribers made before the run starts see
    all of it; ``close()`` ends every subscription (the process ended). A
    subscriber more than MAX_BACKLOG bytes behind is ended early."""

    def __init__(self) -> None:
        self._subs: set[_Subscriber] = set()
        self.closed = False

    def publish(self, stream: str, data: bytes) -> None:
        for sub in list(self._subs):
            if sub.backlog + len(data) > MAX_BACKLOG:
                log.warning("an attached client fell %d MiB behind the container's "
                            "output; detaching it", MAX_BACKLOG >> 20)
                self._subs.discard(sub)
                sub.cut = True
                sub.queue.put_nowait(None)
                continue
            sub.backlog += len(data)
            sub.queue.put_nowait((stream, data))

    def close(self) -> None:
        self.closed = True
        for sub in self._subs:
            sub.queue.put_nowait(None)

    def subscribe(self) -> AsyncIterator[Chunk]:
        """Registers now (before the caller first iterates), so nothing published
        after this call is missed."""
        sub = _Subscriber()
        if self.closed:
            sub.queue.put_nowait(None)
        else:
            self._subs.add(sub)
        return self._drain(sub)

    async def _drain(self, sub: _Subscriber) -> AsyncIterator[Chunk]:
        try:
            while (item := await sub.queue.get()) is not None:
                sub.backlog -= len(item[1])
                yield item
        finally:
            self._subs.discard(sub)
