from __future__ import annotations

import pytest

from vmcontainer.guestlink.protocol import (
    MAX_PAYLOAD,
    FrameDecoder,
    MsgType,
    ProtocolError,
    encode,
)


def test_header_layout_is_big_endian_length() -> None:
    assert encode(MsgType.STDOUT, b"hi") == b"\x02\x00\x00\x00\x00\x00\x00\x02hi"


def test_decoder_reassembles_frames_split_anywhere() -> None:
    stream = encode(MsgType.HELLO, b'{"version": 1}') + encode(MsgType.STDOUT, b"x" * 70000)
    stream += encode(MsgType.EXIT, b'{"exit_code": 3, "signal": null}')
    for step in (1, 7, 8, 9, 4096):
        dec = FrameDecoder()
        frames = []
        for i in range(0, len(stream), step):
            frames += dec.feed(stream[i:i + step])
        assert [f.type for f in frames] == [MsgType.HELLO, MsgType.STDOUT, MsgType.EXIT]
        assert frames[1].payload == b"x" * 70000
        assert frames[2].json() == {"exit_code": 3, "signal": None}
        assert dec.pending == 0


def test_oversized_frame_is_a_protocol_error() -> None:
    bad = bytes([2, 0, 0, 0]) + (MAX_PAYLOAD + 1).to_bytes(4, "big")
    with pytest.raises(ProtocolError):
        FrameDecoder().feed(bad)
    with pytest.raises(ValueError):
        encode(MsgType.STDOUT, b"x" * (MAX_PAYLOAD + 1))


def test_unknown_types_decode_and_non_object_json_is_rejected() -> None:
    (frame,) = FrameDecoder().feed(encode(0x7F, b"[1]"))
    assert frame.type == 0x7F
    with pytest.raises(ProtocolError):
        frame.json()


async def test_frames_left_by_an_early_consumer_stay_for_the_next() -> None:
    """start.py stops reading at STARTED; output that arrived in the same read must
    reach the next reader (it was lost: the first line of a short run's output)."""
    import asyncio
    import socket

    from vmcontainer.guestlink.link import AgentLink
    from vmcontainer.guestlink.protocol import MsgType, encode

    a, b = socket.socketpair()
    b.sendall(encode(MsgType.STARTED, b'{"pid": 1}') + encode(MsgType.STDOUT, b"first\n")
              + encode(MsgType.STDOUT, b"second\n"))
    b.close()
    reader, writer = await asyncio.open_unix_connection(sock=a)
    link = AgentLink(reader, writer)
    async for frame in link.frames():
        assert frame.type == MsgType.STARTED
        break
    assert [f.payload async for f in link.frames()] == [b"first\n", b"second\n"]
    await link.close()
