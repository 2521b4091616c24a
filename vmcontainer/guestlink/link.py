"""AgentLink: an asyncio connection to the agent's virtio-serial port.

QEMU serves the port as a unix socket (``-chardev socket,server=on,wait=off``); the
host connects, reads frames (guest/PROTOCOL.md) and may reconnect at any time —
the guest's writes block while nobody is connected. A host that adopts a running
guest asks with ``resume`` for the main process's output the previous host read but
did not store (PROTOCOL.md, "Acknowledged output"); ``ack`` says what is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path

from vmcontainer.errors import Unavailable
from vmcontainer.guestlink.protocol import Frame, FrameDecoder, MsgType, encode, encode_counts

log = logging.getLogger(__name__)

_READ_CHUNK = 1 << 16
# ACKs are cumulative, so they are batched: one at once when this many bytes more
# are stored, else one after _ACK_DELAY_S. Far below the agent's 1 MiB window, and
# far fewer than one per frame: each wakes the guest (under TCG, an ACK per 4 KiB
# of `seq` output slowed it by ~25%). Left out while the guest does not read.
_ACK_BYTES = 1 << 18
_ACK_DELAY_S = 0.05
_ACK_BUFFER_LIMIT = 1 << 16


class AgentLink:
    """One connection to one guest agent. Not reusable after ``close()``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._decoder = FrameDecoder()
        # Frames decoded but not yet handed out: one read may bring several, and a
        # consumer may stop after any of them (the start path stops at STARTED and
        # the monitor goes on with a new frames() iterator).
        self._pending: deque[Frame] = deque()
        self._acked = (0, 0)
        self._stored = (0, 0)
        self._ack_timer: asyncio.TimerHandle | None = None
        # After resume(): the RESUMED frame the stream is read up to and dropped
        # until it comes, and the bytes that may hold its beginning.
        self._marker = b""
        self._skipped = bytearray()

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
        Raises ProtocolError on a corrupt stream. Several iterators may follow one
        another: a frame is handed out once, and none is lost when an iterator is
        abandoned after any frame."""
        while True:
            while self._pending:
                yield self._pending.popleft()
            try:
                data = await self._reader.read(_READ_CHUNK)
            except ConnectionResetError:
                return  # QEMU went away: the same as EOF
            if not data:
                return
            self._pending.extend(self._decoder.feed(self._past_marker(data)))

    def _past_marker(self, data: bytes) -> bytes:
        """``data`` as is, or while resuming: nothing until the RESUMED frame, then
        what follows it."""
        if not self._marker:
            return data
        self._skipped += data
        at = self._skipped.find(self._marker)
        if at < 0:
            del self._skipped[:max(0, len(self._skipped) - len(self._marker) + 1)]
            return b""
        rest = bytes(self._skipped[at + len(self._marker):])
        self._marker, self._skipped = b"", bytearray()
        return rest

    async def resume(self, stdout: int, stderr: int) -> None:
        """Adopting a running guest: ask for session 0's output after ``stdout`` and
        ``stderr`` bytes (what this host's log holds), and read nothing before the
        agent's answer — the bytes before it are a frame the previous host read in
        part and frames the agent sent before it saw RESUME, which it sends again.
        Call before ``frames``; a paused guest answers once resumed."""
        token = os.urandom(16)
        self._marker = encode(MsgType.RESUMED, token)
        self._acked = self._stored = (stdout, stderr)
        await self.send(MsgType.RESUME, encode_counts(stdout, stderr) + token)

    def ack(self, stdout: int, stderr: int) -> None:
        """Tell the agent that ``stdout``/``stderr`` bytes of session 0's output are
        stored: now when 256 KiB more are, else within 50 ms (batched). Never waits;
        left out when the guest has not read the previous frames (a later ACK
        covers this one)."""
        self._stored = (stdout, stderr)
        if sum(self._stored) - sum(self._acked) >= _ACK_BYTES:
            self._send_ack()
        elif self._ack_timer is None and self._stored != self._acked:
            loop = asyncio.get_running_loop()
            self._ack_timer = loop.call_later(_ACK_DELAY_S, self._send_ack)

    def _send_ack(self) -> None:
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        if self._stored == self._acked or self._writer.is_closing():
            return
        if self._writer.transport.get_write_buffer_size() > _ACK_BUFFER_LIMIT:
            return
        self._acked = self._stored
        self._writer.write(encode(MsgType.ACK, encode_counts(*self._stored)))

    async def send(self, msg_type: int, payload: bytes = b"", session: int = 0) -> None:
        """Send one host-to-guest frame and wait until it is handed to the socket."""
        self._writer.write(encode(msg_type, payload, session))
        await self._writer.drain()

    async def close(self) -> None:
        """Close the connection; idempotent, never raises for an already-dead peer."""
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        self._writer.close()
        with contextlib.suppress(ConnectionError, BrokenPipeError):
            await self._writer.wait_closed()
