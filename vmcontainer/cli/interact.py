"""A hijacked attach or exec connection driven from this process's stdio: stdin
copied in (half-closing at EOF, so the process reads EOF), Docker's framed
output (Engine API v1.45, ContainerAttach "Stream format") demultiplexed to
stdout and stderr, or with a TTY the terminal's raw bytes to stdout."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
from typing import Any

from vmcontainer.cli.client import copy_out, demux
from vmcontainer.engine.detachkeys import DetachScanner

CHUNK = 65536


def raw_socket(conn: Any) -> socket.socket:
    """The socket under docker-py's ``attach_socket``/``exec_start(socket=True)``."""
    return getattr(conn, "_sock", conn)  # type: ignore[no-any-return]


def copy_stdin(sock: socket.socket, detach_keys: bytes = b"",
               detached: threading.Event | None = None) -> None:
    """This process's stdin into ``sock``, then half-close it (the far end reads EOF).
    Bytes go through unchanged: the daemon's escape proxy acts on ``detach_keys``
    (and ends the stream); seeing them here sets ``detached`` and closes ``sock``."""
    fd = sys.stdin.fileno()
    scanner = DetachScanner(detach_keys)
    try:
        while data := os.read(fd, CHUNK):
            if scanner.feed(data)[1] and detached is not None:
                detached.set()  # before the daemon, seeing the keys, ends the stream
                sock.sendall(data)
                sock.shutdown(socket.SHUT_RDWR)
                return
            sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def interact(conn: Any, with_stdin: bool, tty: bool = False,
             detach_keys: bytes = b"") -> bool:
    """Copy stdin in (when ``with_stdin``) and the output out until the daemon
    closes the stream. True when it ended because the user typed ``detach_keys``
    (the container keeps running)."""
    sock = raw_socket(conn)
    detached = threading.Event()
    if with_stdin:
        threading.Thread(target=copy_stdin, args=(sock, detach_keys, detached),
                         daemon=True).start()
    reader = sock.makefile("rb", buffering=0)
    with contextlib.suppress(ConnectionError):
        copy_out(demux(reader, tty=tty))
    return detached.is_set()
