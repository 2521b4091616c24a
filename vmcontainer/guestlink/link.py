"""AgentLink: an asyncio connection to the agent's virtio-serial port.

QEMU serves the port as a unix socket (``-chardev socket,server=on,wait=off``); the
host connects, reads frames (guest/PROTOCOL.md) and may reconnect at any time —
the guest's writes block while nobody is connected, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from vmcontainer.errors import Unavailable
from vmcontainer.guestlink.protocol import Frame, FrameDecoder, encode

log = logging.getLogger(__name__)

_READ_CHUNK = 1 << 16


class AgentLink:
    """One connection to one guest agent. Not reusable after ``close()``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._decoder = FrameDecoder()
        # Decoded, not yet yielded: one read may bring several frames, and a caller
        # that stops iterating after one (start.py: at STARTED) must not lose the rest.
        self._pending: collections.deque[Frame] = collections.deque()

    @classmethod
    async def connect(cls, path: str | Path, timeout: float = 10.0) -> AgentLink:
        """Connect to the unix socket at ``path``, retrying every 2 ms while QEMU
        creates it. Raises Unavailable after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(str(path), limit=_READ_CHUNK)
                return cls(reader, writer)
            except (FileNotFoundError, ConnectionRefusedError) as err:
                if loop.time() > deadline:
                    raise Unavailable(f"agent socket {path} did not open: {err}") from err
                await asyncio.sleep(0.002)

    async def frames(self) -> AsyncIterator[Frame]:
        """Yield frames until the connection ends (EOF: the VM is gone or we closed).
        Frames read but not yet taken when a caller stops iterating come first from
        the next ``frames()``. Raises ProtocolError on a corrupt stream."""
        while True:
            while self._pending:
                yield self._pending.popleft()
            try:
                data = await self._reader.read(_READ_CHUNK)
            except ConnectionResetError:
                return  # QEMU went away: the same as EOF
            if not data:
                return
            self._pending.extend(self._decoder.feed(data))

    async def send(self, msg_type: int, payload: bytes = b"", session: int = 0) -> None:
        """Send one host-to-guest frame and wait until it is handed to the socket."""
        self._writer.write(encode(msg_type, payload, session))
        await self._writer.drain()

    async def close(self) -> None:
        """Close the connection; idempotent, never raises for an already-dead peer."""
        self._writer.close()
        with contextlib.suppress(ConnectionError, BrokenPipeError):
            await self._writer.wait_closed()
