"""Output streams: Docker's stream framing, hijacked connections (attach), chunked
streams (logs, events, wait).

Framing (moby ``pkg/stdcopy``): without a TTY each chunk is preceded by 8 bytes —
the stream (1 stdout, 2 stderr), three zero bytes, the length as a big-endian u32;
with a TTY the bytes go as they are. docker-py picks the framing from
``Config.Tty``, so it must match the container's.

Hijacking (moby ``postContainersAttach``): the answer is ``101 UPGRADED`` with
``Upgrade: tcp`` when the client asked to upgrade, else ``200 OK``; then the raw
stream, no chunked encoding, until the process ends, then the connection closes.
Output never rides in the headers' write, and on a unix socket it waits until the
client has read the headers: docker-py reads the headers through a buffered file
and then the socket itself, so bytes that arrived with the headers would be lost.
The docker CLI half-closes its side at once when it has no stdin to send; the
connection must stay open for the output (aiohttp would close it on EOF).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import socket
import struct
import termios
import time
from collections.abc import AsyncIterator

from aiohttp import web

from vmcontainer.api.backend import Chunk
from vmcontainer.api.errors import STREAM_KEY

STREAM_IDS = {"stdin": 0, "stdout": 1, "stderr": 2}
RAW_STREAM = "application/vnd.docker.raw-stream"
HEADERS_READ_TIMEOUT_S = 0.5


def frame(stream: str, data: bytes) -> bytes:
    """One multiplexed frame: header plus ``data``."""
    return struct.pack(">BxxxL", STREAM_IDS[stream], len(data)) + data


def encode(chunk: Chunk, tty: bool) -> bytes:
    stream, data = chunk
    return data if tty else frame(stream, data)


class _RawResponse(web.StreamResponse):
    """A response whose body goes to the transport as it is: no chunked encoding,
    no Content-Length (as aiohttp's WebSocketResponse does for its upgrade)."""

    _length_check = False


class StdinQueue:
    """What a hijacked client sends, in order; ``None`` once it half-closed or
    went away. Reading from the client pauses while more than HIGH_WATER bytes
    wait here (a client cannot make the daemon buffer without bound)."""

    HIGH_WATER = 1 << 20

    def __init__(self) -> None:
        self._q: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._bytes = 0
        self._transport: asyncio.Transport | None = None
        self._paused = False
        self._ended = False

    def put(self, data: bytes | None) -> None:
        if self._ended:
            return
        if data is None:
            self._ended = True
        else:
            self._bytes += len(data)
            if self._bytes > self.HIGH_WATER and self._transport and not self._paused:
                self._transport.pause_reading()
                self._paused = True
        self._q.put_nowait(data)

    async def get(self) -> bytes | None:
        data = await self._q.get()
        if data is None:
            self._q.put_nowait(None)
            return None
        self._bytes -= len(data)
        if self._paused and self._bytes <= self.HIGH_WATER // 2 and self._transport:
            self._paused = False
            with contextlib.suppress(RuntimeError):
                self._transport.resume_reading()
        return data


class _HalfCloseTolerant(asyncio.Protocol):
    """Stands in for aiohttp's protocol on a hijacked connection: keeps the
    connection open when the client half-closes, puts what the client sends on
    ``stdin`` (``None`` at its EOF or when the connection is lost; dropped when
    nobody attached stdin), and passes flow control and the final loss on."""

    def __init__(self, inner: asyncio.BaseProtocol, stdin: StdinQueue | None) -> None:
        self.inner = inner
        self.stdin = stdin

    def data_received(self, data: bytes) -> None:
        if self.stdin is not None:
            self.stdin.put(data)

    def eof_received(self) -> bool:
        if self.stdin is not None:
            self.stdin.put(None)
        return True

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.stdin is not None:
            self.stdin.put(None)
        self.inner.connection_lost(exc)


def _unread_bytes(sock: socket.socket) -> int:
    """Bytes sent on a unix socket that the peer has not read yet (SIOCOUTQ)."""
    buf = array.array("i", [0])
    fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, buf)
    return buf[0]


async def _headers_read(transport: asyncio.BaseTransport) -> None:
    """Return once the client has read what was sent, as far as the socket tells
    (unix sockets do; elsewhere a short pause), at most HEADERS_READ_TIMEOUT_S."""
    sock = transport.get_extra_info("socket")
    deadline = time.monotonic() + HEADERS_READ_TIMEOUT_S
    if sock is None or sock.family != socket.AF_UNIX:
        await asyncio.sleep(0.02)
        return
    while time.monotonic() < deadline:
        try:
            if _unread_bytes(sock) == 0:
                return
        except OSError:
            return
        await asyncio.sleep(0.002)


async def hijack(request: web.Request,
                 stdin: StdinQueue | None = None) -> web.StreamResponse:
    """Answer ``request`` with Docker's raw-stream headers and take the connection
    over; the caller then writes with ``resp.write`` and returns ``resp``. What the
    client sends afterwards goes to ``stdin`` (see _HalfCloseTolerant)."""
    upgrade = "upgrade" in request.headers.get("Connection", "").lower() and \
        bool(request.headers.get("Upgrade"))
    if upgrade:
        resp = _RawResponse(status=101, reason="UPGRADED", headers={
            "Content-Type": RAW_STREAM, "Connection": "Upgrade", "Upgrade": "tcp"})
    else:
        resp = _RawResponse(status=200, headers={"Content-Type": RAW_STREAM})
    resp.force_close()
    request[STREAM_KEY] = resp
    request["hijacked"] = True
    transport = request.transport
    if transport is not None and not transport.is_closing():
        transport.set_protocol(_HalfCloseTolerant(transport.get_protocol(), stdin))
        if stdin is not None and isinstance(transport, asyncio.Transport):
            stdin._transport = transport
    await resp.prepare(request)
    if transport is not None:
        await _headers_read(transport)
    return resp


async def start_stream(request: web.Request, content_type: str | None,
                       status: int = 200) -> web.StreamResponse:
    """A chunked streaming answer, headers sent now."""
    resp = web.StreamResponse(status=status)
    if content_type is not None:
        resp.content_type = content_type
    request[STREAM_KEY] = resp
    await resp.prepare(request)
    return resp


async def pump(resp: web.StreamResponse, chunks: AsyncIterator[Chunk], tty: bool) -> None:
    """Write every chunk (framed unless ``tty``) as it comes; closes ``chunks``."""
    try:
        async for chunk in chunks:
            if chunk[1]:
                await resp.write(encode(chunk, tty))
    finally:
        await aclose(chunks)


async def aclose(iterator: AsyncIterator[object]) -> None:
    """Close an async generator (its ``finally`` unsubscribes it)."""
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()
