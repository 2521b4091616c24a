"""AgentLink over a real socket pair: frames that arrive in one read are never lost
when a consumer stops iterating after one of them (the start path stops at STARTED;
the monitor continues with a new iterator)."""

from __future__ import annotations

import asyncio
import contextlib
import socket

from vmcontainer.guestlink.link import AgentLink
from vmcontainer.guestlink.protocol import MsgType, encode


def test_frames_survive_an_abandoned_iterator() -> None:
    async def main() -> list[tuple[int, bytes]]:
        host, guest = socket.socketpair()
        reader, writer = await asyncio.open_unix_connection(sock=host)
        link = AgentLink(reader, writer)
        guest.sendall(encode(MsgType.STARTED, b'{"pid": 2}') + encode(MsgType.STDOUT, b"hi\n")
                      + encode(MsgType.STDERR, b"err\n"))
        first = []
        async for frame in link.frames():
            first.append((frame.type, frame.payload))
            if frame.type == MsgType.STARTED:
                break
        guest.sendall(encode(MsgType.EXIT, b'{"exit_code": 0}'))
        guest.close()
        rest = [(f.type, f.payload) async for f in link.frames()]
        await link.close()
        return first + rest

    assert asyncio.run(main()) == [
        (MsgType.STARTED, b'{"pid": 2}'), (MsgType.STDOUT, b"hi\n"), (MsgType.STDERR, b"err\n"),
        (MsgType.EXIT, b'{"exit_code": 0}')]


def test_resume_drops_everything_before_resumed_even_a_split_frame() -> None:
    """After resume(), bytes before the agent's RESUMED (the tail of a frame the
    previous host read in part, frames sent before the agent saw RESUME, a RESUMED
    with another token) are dropped, however the reads cut them."""
    async def main() -> tuple[bytes, list[tuple[int, bytes]]]:
        host, guest = socket.socketpair()
        reader, writer = await asyncio.open_unix_connection(sock=host)
        link = AgentLink(reader, writer)
        await link.resume(7, 3)
        request = guest.recv(1000)
        token = request[8 + 16:]
        stale = (encode(MsgType.STDOUT, b"half a frame")[5:] + encode(MsgType.STDOUT, b"old\n")
                 + encode(MsgType.RESUMED, b"x" * 16))
        fresh = (encode(MsgType.RESUMED, token) + encode(MsgType.STDOUT, b"again\n")
                 + encode(MsgType.EXIT, b'{"exit_code": 0}'))
        stream = stale + fresh
        for i in range(0, len(stream), 5):  # reads that cut the marker anywhere
            guest.sendall(stream[i:i + 5])
            await asyncio.sleep(0)
        guest.close()
        frames = [(f.type, f.payload) async for f in link.frames()]
        await link.close()
        return request, frames

    request, frames = asyncio.run(main())
    assert request[:8 + 16] == encode(MsgType.RESUME, bytes(32))[:8] + (
        (7).to_bytes(8, "big") + (3).to_bytes(8, "big"))
    assert frames == [(MsgType.STDOUT, b"again\n"), (MsgType.EXIT, b'{"exit_code": 0}')]


def test_acks_are_batched() -> None:
    """ACKs carry the latest counts: one 50 ms after the first new count (not one
    per write), none for unchanged counts, one at once after 256 KiB more."""
    async def main() -> bytes:
        host, guest = socket.socketpair()
        reader, writer = await asyncio.open_unix_connection(sock=host)
        link = AgentLink(reader, writer)
        link.ack(0, 0)  # nothing stored yet: nothing to say
        link.ack(5, 0)
        link.ack(5, 2)
        await asyncio.sleep(0.02)
        guest.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            assert guest.recv(1000) == b""  # not yet
        await asyncio.sleep(0.1)
        link.ack(5, 2)
        await asyncio.sleep(0.1)
        link.ack(5 + (1 << 18), 2)  # at once
        await writer.drain()
        await link.close()
        guest.setblocking(True)
        return guest.recv(1000)

    five, two = (5).to_bytes(8, "big"), (2).to_bytes(8, "big")
    big = (5 + (1 << 18)).to_bytes(8, "big")
    assert asyncio.run(main()) == (encode(MsgType.ACK, five + two) + encode(MsgType.ACK, big + two))
