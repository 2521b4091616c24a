"""Published ports of bridge-network containers: a userland TCP proxy in the
daemon (asyncio), one listening socket per binding, each accepted connection
spliced to the container's address and port.

Why a proxy and not nftables DNAT: the default bind address is 127.0.0.1, and
DNAT of loopback traffic needs ``route_localnet`` on the host (which turns off a
martian-address protection for the whole host) plus an OUTPUT-chain rule; a proxy
binds exactly the asked address, shows as the daemon's socket in ``ss``, and goes
away with its container exactly. Its cost: traffic passes through the daemon, and
ports are served again only once a restarted daemon has adopted the container
(``ProxySet`` is rebuilt from the record). TCP only; UDP ports are refused in
bridge mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

from vmcontainer.errors import InvalidParameter, System
from vmcontainer.network.ports import PortBinding

log = logging.getLogger(__name__)
CHUNK = 256 * 1024


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


class ProxySet:
    """The listening proxies of one container, to ``target_ip``."""

    def __init__(self, target_ip: str) -> None:
        self.target_ip = target_ip
        self._servers: list[asyncio.Server] = []
        self._conns: set[asyncio.Task[None]] = set()

    async def listen(self, b: PortBinding, who: str) -> PortBinding:
        """Bind ``b`` (host_port 0: any free); returns it with the bound port.
        Raises System ("port is already allocated"), InvalidParameter (UDP)."""
        if b.protocol != "tcp":
            raise InvalidParameter("publishing UDP ports is supported with user-mode "
                                   "networking only")
        family = socket.AF_INET6 if ":" in b.host_ip else socket.AF_INET
        try:
            server = await asyncio.start_server(
                lambda r, w: self._accept(r, w, b.port), b.host_ip, b.host_port,
                family=family, reuse_address=True)
        except OSError as err:
            raise System(f"driver failed programming external connectivity on endpoint "
                         f"{who}: Bind for {b.host_ip}:{b.host_port} failed: port is "
                         "already allocated") from err
        self._servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return PortBinding(b.port, b.protocol, b.host_ip, port)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                port: int) -> None:
        task = asyncio.create_task(self._serve(reader, writer, port))
        self._conns.add(task)
        task.add_done_callback(self._conns.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     port: int) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(self.target_ip, port)
        except OSError:
            writer.close()
            return
        try:
            await asyncio.gather(_pipe(reader, up_w), _pipe(up_r, writer))
        finally:
            for w in (writer, up_w):
                w.close()
                with contextlib.suppress(Exception):
                    await w.wait_closed()

    async def close(self) -> None:
        """Stop listening and end every proxied connection."""
        for server in self._servers:
            server.close()
        for task in list(self._conns):
            task.cancel()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers.clear()
