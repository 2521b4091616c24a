"""AgentLink.frames(): frames that arrived in one read with the frame a caller
stopped at are not lost (start.py stops at STARTED; a fast process's output may
come in the same read)."""

from __future__ import annotations

import asyncio
import socket

from vmcontainer.guestlink.link import AgentLink
from vmcontainer.guestlink.protocol import MsgType, encode


async def test_frames_after_the_one_a_caller_stopped_at_come_next() -> None:
    host, guest = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=host)
    link = AgentLink(reader, writer)
    guest.sendall(encode(MsgType.STARTED, b'{"pid": 7}') + encode(MsgType.STDOUT, b"out\n")
                  + encode(MsgType.STDERR, b"err\n"))
    async for frame in link.frames():
        assert frame.type == MsgType.STARTED
        break
    guest.sendall(encode(MsgType.EXIT, b'{"exit_code": 3}'))
    guest.close()
    rest = [(f.type, f.payload) async for f in link.frames()]
    assert rest == [(MsgType.STDOUT, b"out\n"), (MsgType.STDERR, b"err\n"),
                    (MsgType.EXIT, b'{"exit_code": 3}')]
    await link.close()
