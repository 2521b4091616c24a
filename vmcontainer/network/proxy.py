"""Published ports of bridge-network containers: a userland TCP proxy in the
daemon (asyncio), one listening socket per binding, each accepted connection
spliced to the container's address and port.

Why a proxy and not nftables DNAT: the default bind address is 127.0.0.1, and
DNAT of loopback traffic needs ``route_localnet`` on the host (which turns off a
martian-address protection for the whole host) plus an OUTPUT-chain rule; a proxy
binds exactly the asked address, shows as the daemon's socket in ``ss``, and goes
away with its container exactly. Its cost: traffic passes through the daemon, and
ports are served again only once a restarted daemon has adopted the container
(``ProxySet`` is rebuilt from the record). UDP: one upstream socket per client
address, so replies find their way back, dropped after two idle minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from typing import cast

from vmcontainer.errors import System
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


UDP_IDLE_S = 120.0


class _Upstream(asyncio.DatagramProtocol):
    """One client's flow to the container: replies go back to the client."""

    def __init__(self, front: asyncio.DatagramTransport, client: tuple[str, int]) -> None:
        self.front, self.client = front, client
        self.transport: asyncio.DatagramTransport | None = None
        self.last = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.last = time.monotonic()
        self.front.sendto(data, self.client)


class _UdpFront(asyncio.DatagramProtocol):
    """The published UDP port: each client address gets its own upstream socket
    (so that replies find their way back), dropped after UDP_IDLE_S of silence."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.transport: asyncio.DatagramTransport | None = None
        self.flows: dict[tuple[str, int], _Upstream] = {}
        self.opening: dict[tuple[str, int], list[bytes]] = {}
        self.pending: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        now = time.monotonic()
        for client, idle in list(self.flows.items()):
            if now - idle.last > UDP_IDLE_S and idle.transport is not None:
                idle.transport.close()
                del self.flows[client]
        if addr in self.opening:  # its upstream socket is being made
            self.opening[addr].append(data)
            return
        flow = self.flows.get(addr)
        if flow is not None and flow.transport is not None:
            flow.last = now
            flow.transport.sendto(data)
            return
        self.opening[addr] = [data]
        task = asyncio.create_task(self._open(addr))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def _open(self, client: tuple[str, int]) -> None:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        front = self.transport
        try:
            _, flow = await loop.create_datagram_endpoint(
                lambda: _Upstream(front, client), remote_addr=self.target)
        except OSError:
            self.opening.pop(client, None)
            return
        self.flows[client] = flow
        for data in self.opening.pop(client, []):
            if flow.transport is not None:
                flow.transport.sendto(data)

    def close(self) -> None:
        for task in self.pending:
            task.cancel()
        for flow in self.flows.values():
            if flow.transport is not None:
                flow.transport.close()
        self.flows.clear()
        if self.transport is not None:
            self.transport.close()


class ProxySet:
    """The listening proxies of one container, to ``target_ip``."""

    def __init__(self, target_ip: str) -> None:
        self.target_ip = target_ip
        self._servers: list[asyncio.Server] = []
        self._udp: list[_UdpFront] = []
        self._conns: set[asyncio.Task[None]] = set()

    async def listen(self, b: PortBinding, who: str) -> PortBinding:
        """Bind ``b`` (host_port 0: any free); returns it with the bound port.
        Raises System ("port is already allocated")."""
        family = socket.AF_INET6 if ":" in b.host_ip else socket.AF_INET
        if b.protocol == "udp":
            return await self._listen_udp(b, who, family)
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

    async def _listen_udp(self, b: PortBinding, who: str, family: int) -> PortBinding:
        loop = asyncio.get_running_loop()
        try:
            transport, front = await loop.create_datagram_endpoint(
                lambda: _UdpFront((self.target_ip, b.port)),
                local_addr=(b.host_ip, b.host_port), family=family)
        except OSError as err:
            raise System(f"driver failed programming external connectivity on endpoint "
                         f"{who}: Bind for {b.host_ip}:{b.host_port}/udp failed: port is "
                         "already allocated") from err
        self._udp.append(front)
        port = transport.get_extra_info("sockname")[1]
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
        for front in self._udp:
            front.close()
        self._udp.clear()
        for task in list(self._conns):
            task.cancel()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers.clear()
