"""Agent sessions of one running container (guest/PROTOCOL.md, "Sessions").

Session 0 is the main process; ``exec`` processes and requests such as ``TOP``
get numbers 1-65535, never reused while the VM lives. The container's monitor
(``vmcontainer.engine.start._monitor``) reads every frame from the agent and hands
those of other sessions to ``deliver``; each open session reads its own frames
from a queue, which ends (``None``) when the session's EXIT arrived or the VM went
away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from vmcontainer.errors import Conflict, System
from vmcontainer.guestlink.link import AgentLink
from vmcontainer.guestlink.protocol import MAIN_SESSION, MAX_SESSION, Frame, MsgType


class Sessions:
    """The sessions of one VM, over its one AgentLink."""

    def __init__(self, link: AgentLink) -> None:
        self._link = link
        self._next = 1
        self._queues: dict[int, asyncio.Queue[Frame | None]] = {}
        self.closed = False

    def open(self) -> int:
        """A new session number, registered so that no frame of it is missed.
        Raises Conflict after 65535 sessions in one VM's life, or once the VM ended."""
        if self.closed:
            raise Conflict("the container's process has ended")
        if self._next > MAX_SESSION:
            raise Conflict("this container has used all its 65535 exec sessions: "
                           "restart it")
        n, self._next = self._next, self._next + 1
        self._queues[n] = asyncio.Queue()
        return n

    def deliver(self, frame: Frame) -> None:
        """Route a guest frame of session ≥ 1 (frames of unknown sessions are
        dropped: a session the host gave up on)."""
        q = self._queues.get(frame.session)
        if q is not None:
            q.put_nowait(frame)
            if frame.type in (MsgType.EXIT, MsgType.START_ERROR, MsgType.PROCESSES,
                              MsgType.SYNCED, MsgType.NET_RESULT):
                q.put_nowait(None)

    async def drained(self, session: int, limit: int = 64, poll_s: float = 0.002) -> None:
        """Wait while more than ``limit`` frames of ``session`` wait for their
        reader (a slow ``docker cp`` client): the caller, the one frame reader,
        then stops reading the port, and virtio-serial holds the guest's writes."""
        q = self._queues.get(session)
        while q is not None and q.qsize() > limit and not self.closed \
                and self._queues.get(session) is q:
            await asyncio.sleep(poll_s)

    async def next(self, session: int) -> Frame | None:
        """The next frame of ``session``; None once it has ended (again on every
        later call)."""
        q = self._queues.get(session)
        if q is None:
            return None
        frame = await q.get()
        if frame is None:
            q.put_nowait(None)
        return frame

    def poll(self, session: int) -> Frame | None:
        """The next frame of ``session`` if one is waiting (None otherwise, and once
        the session ended); never blocks."""
        q = self._queues.get(session)
        if q is None or q.empty():
            return None
        frame = q.get_nowait()
        if frame is None:
            q.put_nowait(None)
        return frame

    async def frames(self, session: int) -> AsyncIterator[Frame]:
        """The frames of ``session`` until it ends; forgets the session afterwards."""
        try:
            while (frame := await self.next(session)) is not None:
                yield frame
        finally:
            self.forget(session)

    def forget(self, session: int) -> None:
        """Stop routing frames of ``session`` (the host gave up on it)."""
        self._queues.pop(session, None)

    def close_all(self) -> None:
        """The VM is gone: every open session ends."""
        self.closed = True
        for q in self._queues.values():
            q.put_nowait(None)

    async def send(self, msg_type: MsgType, payload: bytes = b"",
                   session: int = MAIN_SESSION) -> None:
        """Send a host frame; a no-op once the VM is gone."""
        if self.closed:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self._link.send(msg_type, payload, session)

    async def send_json(self, msg_type: MsgType, obj: dict[str, Any],
                        session: int = MAIN_SESSION) -> None:
        await self.send(msg_type, json.dumps(obj).encode(), session)

    async def request(self, msg_type: MsgType, answer: MsgType,
                      payload: bytes = b"", timeout: float = 10.0) -> dict[str, Any]:
        """One request/answer exchange on a new session (e.g. TOP → PROCESSES).
        Raises System when the agent does not answer within ``timeout`` s."""
        n = self.open()
        await self.send(msg_type, payload, n)
        try:
            async with asyncio.timeout(timeout):
                while (frame := await self.next(n)) is not None:
                    if frame.type == answer:
                        return frame.json()
        except TimeoutError:
            raise System(f"the guest agent did not answer within {timeout:.0f}s") from None
        finally:
            self.forget(n)
        raise System("the container's process ended before the guest agent answered")
