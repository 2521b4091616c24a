"""Frames of the agent protocol, version 3 — the same contract as guest/PROTOCOL.md.

A frame is an 8-byte header (type u8, flags u8, session u16, payload length u32,
big-endian) and the payload. Session 0 is the container's main process; exec
sessions and requests use 1-65535. ``tests/unit/test_protocol_doc.py`` checks these
constants against the document and ``guest/protocol.h``.
"""

from __future__ import annotations

import enum
import json
import struct
from dataclasses import dataclass
from typing import Any

from vmcontainer.errors import System

PROTOCOL_VERSION = 3
MAIN_SESSION = 0
MAX_SESSION = 0xFFFF
PORT_NAME = "org.vmcontainer.agent.0"
HEADER = struct.Struct(">BBHI")
COUNTS = struct.Struct(">QQ")  # ACK/RESUME: stdout, stderr bytes stored
MAX_PAYLOAD = 1 << 20
MAX_HOST_PAYLOAD = 1 << 16


class MsgType(enum.IntEnum):
    """Message types (PROTOCOL.md, tables "Guest to host" and "Host to guest")."""

    HELLO = 0x01
    STDOUT = 0x02
    STDERR = 0x03
    STARTED = 0x04
    EXIT = 0x05
    START_ERROR = 0x06
    LOG = 0x07
    PROCESSES = 0x08
    ARCHIVE_INFO = 0x09
    NET_RESULT = 0x0C
    RESUMED = 0x0F
    SYNCED = 0x0E
    SIGNAL = 0x81
    STDIN = 0x82
    RESIZE = 0x83
    EXEC = 0x84
    TOP = 0x85
    ARCHIVE = 0x86
    NET_CONFIG = 0x88
    SYNC = 0x8A
    CONFIG = 0x8B
    NET_RELEASE = 0x8D
    ACK = 0x8E
    RESUME = 0x8F


class ProtocolError(System):
    """The byte stream from the guest does not follow PROTOCOL.md."""


@dataclass(frozen=True)
class Frame:
    """One decoded frame: ``type`` is a MsgType or an unknown int, ``payload`` bytes,
    ``session`` the process it is about (0: the main process)."""

    type: int
    payload: bytes
    session: int = MAIN_SESSION

    def json(self) -> dict[str, Any]:
        """The payload parsed as a JSON object; raises ProtocolError otherwise."""
        try:
            value = json.loads(self.payload)
        except ValueError as err:
            raise ProtocolError(f"agent sent invalid JSON in message {self.type:#x}") from err
        if not isinstance(value, dict):
            raise ProtocolError(f"agent sent a non-object in message {self.type:#x}")
        return value


def encode(msg_type: int, payload: bytes = b"", session: int = MAIN_SESSION) -> bytes:
    """Header + payload for one frame. Raises ValueError above MAX_PAYLOAD bytes or
    for a session outside 0-65535."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    if not 0 <= session <= MAX_SESSION:
        raise ValueError(f"session {session} is outside 0-{MAX_SESSION}")
    return HEADER.pack(msg_type, 0, session, len(payload)) + payload


def encode_counts(stdout: int, stderr: int) -> bytes:
    """The 16 bytes of ACK and RESUME (PROTOCOL.md, "Acknowledged output"): bytes of
    session 0's stdout and stderr the host has stored, u64 big-endian each."""
    return COUNTS.pack(stdout, stderr)


class FrameDecoder:
    """Incremental decoder: ``feed(bytes)`` returns the frames completed so far."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        while len(self._buf) >= HEADER.size:
            msg_type, _flags, session, length = HEADER.unpack_from(self._buf)
            if length > MAX_PAYLOAD:
                raise ProtocolError(f"agent frame of {length} bytes exceeds {MAX_PAYLOAD}")
            end = HEADER.size + length
            if len(self._buf) < end:
                break
            frames.append(Frame(msg_type, bytes(self._buf[HEADER.size:end]), session))
            del self._buf[:end]
        return frames

    @property
    def pending(self) -> int:
        """Bytes buffered that do not yet form a whole frame."""
        return len(self._buf)
