"""Events: what ``docker events`` shows (Engine API v1.45, SystemEvents).

An in-memory bus: a bounded history (for ``since``) and live subscribers. Each event
is Docker's JSON message: ``{"Type", "Action", "Actor": {"ID", "Attributes"},
"scope", "time", "timeNano"}`` plus the legacy ``status``/``id``/``from`` keys for
containers.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

HISTORY = 1024

Event = dict[str, Any]


def container_event(action: str, cid: str, image: str, name: str,
                    extra: dict[str, str] | None = None) -> Event:
    """A container event, e.g. ``container_event("start", id, "busybox", "web")``."""
    now = time.time_ns()
    attrs = {"image": image, "name": name, **(extra or {})}
    return {
        "status": action, "id": cid, "from": image,
        "Type": "container", "Action": action,
        "Actor": {"ID": cid, "Attributes": attrs},
        "scope": "local", "time": now // 10**9, "timeNano": now,
    }


class EventBus:
    """Publish events; subscribers get every event after they subscribed, and
    ``history(since)`` those before."""

    def __init__(self) -> None:
        self._history: deque[Event] = deque(maxlen=HISTORY)
        self._subscribers: set[asyncio.Queue[Event]] = set()

    def publish(self, event: Event) -> None:
        self._history.append(event)
        for q in self._subscribers:
            q.put_nowait(event)

    def history(self, since_ns: int = 0, until_ns: int | None = None) -> list[Event]:
        return [e for e in self._history
                if e["timeNano"] >= since_ns and (until_ns is None or e["timeNano"] <= until_ns)]

    def subscribe(self) -> AsyncIterator[Event]:
        """Live events until the consumer stops iterating. Registers now, before the
        first iteration, so nothing published after this call is missed."""
        q: asyncio.Queue[Event] = asyncio.Queue()
        self._subscribers.add(q)
        return self._drain(q)

    async def _drain(self, q: asyncio.Queue[Event]) -> AsyncIterator[Event]:
        try:
            while True:
                yield await q.get()
        finally:
            self._subscribers.discard(q)
