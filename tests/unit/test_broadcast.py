"""Live output fan-out: a client that does not read is cut off, not buffered."""

from __future__ import annotations

import asyncio

from vmcontainer.engine.broadcast import MAX_BACKLOG, Broadcast


def test_slow_subscriber_is_cut_off_and_others_keep_going() -> None:
    async def main() -> None:
        b = Broadcast()
        slow, fast = b.subscribe(), b.subscribe()
        got = 0
        chunk = b"x" * (1 << 20)
        for _ in range(MAX_BACKLOG // len(chunk) + 2):
            b.publish("stdout", chunk)
            got += len((await anext(fast))[1])  # fast reads as it comes
        b.close()
        assert got == (MAX_BACKLOG // len(chunk) + 2) * len(chunk)
        seen = [c async for c in slow]
        assert sum(len(d) for _, d in seen) <= MAX_BACKLOG
    asyncio.run(main())
