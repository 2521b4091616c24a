"""AgentLink over a real socket pair: frames that arrive in one read are never lost
when a consumer stops iterating after one of them (the start path stops at STARTED;
the monitor continues with a new iterator)."""

from __future__ import annotations

import asyncio
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
