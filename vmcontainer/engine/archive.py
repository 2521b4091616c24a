"""One ARCHIVE request to a guest agent (guest/PROTOCOL.md, "Archive sessions"):
its info lines (stat, error), its data (a tar stream or a listing) and, for
``put`` and ``export`` of given paths, what the host sends on its stdin.

Errors come back as Docker's kinds: status 404 → NotFound with Docker's text
("Could not find the file /x in container c"), 400 → InvalidParameter, 409 →
Conflict, anything else → System.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from vmcontainer.engine.sessions import Sessions
from vmcontainer.errors import Conflict, InvalidParameter, NotFound, System
from vmcontainer.guestlink.protocol import MAX_HOST_PAYLOAD, Frame, MsgType

MAX_INFO_TEXT = 1 << 20  # an info line longer than this is a corrupt reply


class ContainerFileNotFound(NotFound):
    """moby's containerFileNotFound."""


class ArchiveRequest:
    """A started ARCHIVE session. Use ``start``, then ``info``/``data``/``send``,
    and ``finish`` (which raises the request's error, if any)."""

    def __init__(self, sessions: Sessions, req: dict[str, Any], container: str) -> None:
        self._sessions = sessions
        self._req = req
        self._container = container
        self._session = 0
        self._lines: deque[dict[str, Any]] = deque()
        self._text = b""
        self._data: deque[bytes] = deque()
        self._exit: int | None = None
        self._ended = False
        self.error: dict[str, Any] | None = None

    async def start(self) -> None:
        """Send the request; raises Conflict when the agent refuses it (the
        container stopped meanwhile)."""
        self._session = self._sessions.open()
        await self._sessions.send_json(MsgType.ARCHIVE, self._req, self._session)
        frame = await self._sessions.next(self._session)
        if frame is None:
            raise Conflict(f"Container {self._container} is not running")
        if frame.type == MsgType.START_ERROR:
            self._sessions.forget(self._session)
            raise Conflict(str(frame.json().get("message") or "archive request refused"))
        if frame.type != MsgType.STARTED:
            self._take(frame)

    def _take(self, frame: Frame) -> None:
        if frame.type == MsgType.STDOUT:
            self._data.append(frame.payload)
        elif frame.type == MsgType.ARCHIVE_INFO:
            self._text += frame.payload
            if len(self._text) > MAX_INFO_TEXT and b"\n" not in self._text:
                raise System("the guest agent sent a malformed archive reply")
            while b"\n" in self._text:
                line, self._text = self._text.split(b"\n", 1)
                try:
                    obj = json.loads(line)
                except ValueError as err:
                    raise System("the guest agent sent a malformed archive reply") from err
                if isinstance(obj, dict) and "error" in obj:
                    self.error = obj
                elif isinstance(obj, dict):
                    self._lines.append(obj)
        elif frame.type == MsgType.EXIT:
            self._exit = int(frame.json().get("exit_code", 1))

    async def _pump(self) -> bool:
        """Read one more frame; False once the session ended."""
        if self._ended:
            return False
        frame = await self._sessions.next(self._session)
        if frame is None:
            self._ended = True
            self._sessions.forget(self._session)
            return False
        self._take(frame)
        return True

    async def info(self) -> dict[str, Any]:
        """The next info object (e.g. ``{"stat": {...}}``); raises the request's
        error when it failed first."""
        while not self._lines:
            if self.error is not None or not await self._pump():
                self._raise()
        return self._lines.popleft()

    async def data(self) -> AsyncIterator[bytes]:
        """The data the worker writes, as it comes, until the session ends."""
        while True:
            while self._data:
                yield self._data.popleft()
            if not await self._pump():
                while self._data:
                    yield self._data.popleft()
                return

    async def send(self, chunk: bytes) -> None:
        """Bytes for the worker's stdin (``b""``: end of input). Stops early, without
        error, once the worker has failed (``finish`` reports it)."""
        if not chunk:
            await self._sessions.send(MsgType.STDIN, b"", self._session)
            return
        for i in range(0, len(chunk), MAX_HOST_PAYLOAD):
            while (frame := self._sessions.poll(self._session)) is not None:
                self._take(frame)  # the worker may have failed already
            if self.error is not None or self._exit is not None:
                return
            await self._sessions.send(MsgType.STDIN, chunk[i:i + MAX_HOST_PAYLOAD],
                                      self._session)

    async def finish(self) -> None:
        """Wait for the end; raises the request's error."""
        while await self._pump():
            self._data.clear()
        if self.error is not None or self._exit != 0:
            self._raise()

    async def close(self) -> None:
        """Done with the session; when it has not ended (the client went away
        mid-stream), its worker is killed rather than left streaming to nobody."""
        if not self._ended and self._exit is None and self._session:
            await self._sessions.send_json(MsgType.SIGNAL, {"signal": 9}, self._session)
        self._sessions.forget(self._session)

    def _raise(self) -> None:
        err = self.error or {}
        message = str(err.get("message") or err.get("error") or "")
        status = int(err.get("status") or 500)
        if not err:
            message = ("the container stopped during the copy" if self._exit is None
                       else f"the archive worker failed (exit code {self._exit})")
        if status == 404:
            raise ContainerFileNotFound(
                f"Could not find the file {self._req.get('path', '')} in container "
                f"{self._container}")
        if status == 400:
            raise InvalidParameter(message)
        if status == 409:
            raise Conflict(message)
        raise System(message)
