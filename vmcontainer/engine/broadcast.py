"""Fan-out of one container's live output to its attached clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

Chunk = tuple[str, bytes]  # ("stdout" | "stderr", data)


class Broadcast:
    """Output of one run of a container. Subscribers made before the run starts see
    all of it; ``close()`` ends every subscription (the process ended)."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[Chunk | None]] = set()
        self.closed = False

    def publish(self, stream: str, data: bytes) -> None:
        for q in self._queues:
            q.put_nowait((stream, data))

    def close(self) -> None:
        self.closed = True
        for q in self._queues:
            q.put_nowait(None)

    def subscribe(self) -> AsyncIterator[Chunk]:
        """Registers now (before the caller first iterates), so nothing published
        after this call is missed."""
        q: asyncio.Queue[Chunk | None] = asyncio.Queue()
        if self.closed:
            q.put_nowait(None)
        else:
            self._queues.add(q)
        return self._drain(q)

    async def _drain(self, q: asyncio.Queue[Chunk | None]) -> AsyncIterator[Chunk]:
        try:
            while (item := await q.get()) is not None:
                yield item
        finally:
            self._queues.discard(q)
