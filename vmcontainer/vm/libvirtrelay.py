"""A guest channel of a domain on a remote host, served here as a unix socket: each
connection to the local socket opens the channel through ``virDomainOpenChannel``
(a virStream over the libvirt connection itself, so nothing but libvirt's own
transport — SSH or TLS — reaches the remote host) and copies bytes both ways.

One connection at a time, as the agent channel has one host side; a new one takes
the channel over (VIR_DOMAIN_CHANNEL_FORCE), as a daemon restart needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

from vmcontainer.vm.libvirtconn import Connection, _libvirt

log = logging.getLogger(__name__)


class ChannelRelay:
    """Serves channel ``name`` of ``dom`` on the unix socket ``path``."""

    def __init__(self, conn: Connection, dom: Any, name: str, path: str) -> None:
        self._conn = conn
        self._dom = dom
        self._name = name
        self._path = path
        self._server: asyncio.AbstractServer | None = None
        self._streams: list[Any] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._serve, self._path)

    async def _serve(self, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        lv = _libvirt()
        try:
            stream = self._conn.conn.newStream(0)
            await asyncio.to_thread(self._dom.openChannel, self._name, stream,
                                    lv.VIR_DOMAIN_CHANNEL_FORCE)
        except lv.libvirtError as err:
            log.warning("domain channel %s: %s", self._name, err.get_error_message())
            writer.close()
            return
        self._streams.append(stream)
        loop = asyncio.get_running_loop()

        def guest_to_host() -> None:
            # A thread of its own (not the loop's executor): recv blocks until the
            # guest writes, and an executor thread would hold up the loop's close.
            try:
                while True:
                    data = stream.recv(65536)
                    if not isinstance(data, bytes) or not data:
                        break
                    loop.call_soon_threadsafe(writer.write, data)
            except Exception:
                pass
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(writer.close)

        threading.Thread(target=guest_to_host, name=f"relay-{self._name}",
                         daemon=True).start()
        try:
            while data := await reader.read(65536):
                await asyncio.to_thread(_send_all, stream, data)
        except Exception:
            pass
        finally:
            with contextlib.suppress(Exception):
                stream.abort()
            writer.close()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for stream in self._streams:
            with contextlib.suppress(Exception):
                stream.abort()
        self._streams.clear()


def _send_all(stream: Any, data: bytes) -> None:
    while data:
        n = stream.send(data)
        if n < 0:
            raise OSError("libvirt stream send failed")
        data = data[n:]
