"""A guest channel of a domain on a remote host, served here as a unix socket: each
connection to the local socket opens the channel through ``virDomainOpenChannel``
(a virStream over the libvirt connection itself, so nothing but libvirt's own
transport — SSH or TLS — reaches the remote host) and copies bytes both ways.

The stream is non-blocking and read from libvirt's event thread (a stream event
callback), as ``virsh console`` does. A blocking ``virStreamRecv`` holds the
connection's I/O loop (libvirt's "buck") for as long as the guest is silent: every
other call on the connection, from any thread, then waits for the next packet or
keepalive — measured: each ``docker logs``/``inspect`` of a running container took
5 s, and the daemon's event loop stalled with it.

Transports: ``qemu+ssh`` (the OpenSSH client) and ``qemu+tcp``/``qemu+tls`` work.
``qemu+libssh`` does not with libvirt 9.0: its libssh transport hangs (the call
that holds the buck never completes; keepalive then closes the connection) or
crashes inside ``virDomainOpenChannel``'s I/O loop, with this relay as with a
blocking one, while the same calls over ``qemu+ssh`` pass.

One connection at a time, as the agent channel has one host side; a new one takes
the channel over (VIR_DOMAIN_CHANNEL_FORCE), as a daemon restart needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from vmcontainer.vm.libvirtconn import Connection, _libvirt

log = logging.getLogger(__name__)

_CHUNK = 65536


class ChannelRelay:
    """Serves channel ``name`` of ``dom`` on the unix socket ``path``."""

    def __init__(self, conn: Connection, dom: Any, name: str, path: str) -> None:
        self._conn = conn
        self._dom = dom
        self._name = name
        self._path = path
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._serve, self._path)

    async def _serve(self, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        lv = _libvirt()
        stream = None
        try:
            stream = self._conn.conn.newStream(lv.VIR_STREAM_NONBLOCK)
            await asyncio.to_thread(self._dom.openChannel, self._name, stream,
                                    lv.VIR_DOMAIN_CHANNEL_FORCE)
            ended = _GuestToHost(stream, writer).start()
            to_guest = asyncio.ensure_future(_host_to_guest(reader, stream))
            try:
                await asyncio.wait({to_guest, ended}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                to_guest.cancel()
        except lv.libvirtError as err:
            log.warning("domain channel %s: %s", self._name, err.get_error_message())
        except OSError as err:
            log.debug("domain channel %s: %s", self._name, err)
        finally:
            if stream is not None:
                with contextlib.suppress(lv.libvirtError):
                    stream.eventRemoveCallback()
                with contextlib.suppress(lv.libvirtError):
                    await asyncio.shield(asyncio.to_thread(stream.abort))
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    def close(self) -> None:
        """Stop serving; open channel streams are aborted by their (cancelled) tasks."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._tasks):
            task.cancel()


class _GuestToHost:
    """Copies what the guest writes to ``writer``: called back in libvirt's event
    thread when the stream is readable, it hands each chunk to the loop."""

    def __init__(self, stream: Any, writer: asyncio.StreamWriter) -> None:
        self._stream = stream
        self._writer = writer
        self._loop = asyncio.get_running_loop()
        self._ended: asyncio.Future[None] = self._loop.create_future()

    def start(self) -> asyncio.Future[None]:
        """Register the callback; the future is done at the stream's EOF or error."""
        lv = _libvirt()
        self._stream.eventAddCallback(
            lv.VIR_STREAM_EVENT_READABLE | lv.VIR_STREAM_EVENT_ERROR
            | lv.VIR_STREAM_EVENT_HANGUP, self._on_event, None)
        return self._ended

    def _on_event(self, stream: Any, events: int, _opaque: Any) -> None:
        lv = _libvirt()
        try:
            while isinstance(data := stream.recv(_CHUNK), bytes) and data:
                self._loop.call_soon_threadsafe(self._writer.write, data)
            ended = data == b"" or bool(
                events & (lv.VIR_STREAM_EVENT_ERROR | lv.VIR_STREAM_EVENT_HANGUP))
        except lv.libvirtError:
            ended = True
        if ended:
            with contextlib.suppress(lv.libvirtError):
                stream.eventRemoveCallback()
            with contextlib.suppress(RuntimeError):  # the loop has closed
                self._loop.call_soon_threadsafe(self._end)

    def _end(self) -> None:
        if not self._ended.done():
            self._ended.set_result(None)


async def _host_to_guest(reader: asyncio.StreamReader, stream: Any) -> None:
    """Copies what the host side writes into the stream until it closes. Sends are
    queued by libvirt, not answered (a thread only waits for the connection)."""
    while data := await reader.read(_CHUNK):
        await asyncio.to_thread(_send_all, stream, data)


def _send_all(stream: Any, data: bytes) -> None:
    while data:
        n = stream.send(data)
        if n == -2:  # non-blocking and nothing taken now (remote streams queue all)
            time.sleep(0.01)
            continue
        if n < 0:
            raise OSError("libvirt stream send failed")
        data = data[n:]
