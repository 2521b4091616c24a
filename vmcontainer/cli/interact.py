"""A hijacked attach or exec connection driven from this process's stdio: stdin
copied in (half-closing at EOF, so the process reads EOF), Docker's framed
output (Engine API v1.45, ContainerAttach "Stream format") demultiplexed to
stdout and stderr."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
from typing import Any

from vmcontainer.cli.client import copy_out, demux

CHUNK = 65536


def raw_socket(conn: Any) -> socket.socket:
    """The socket under docker-py's ``attach_socket``/``exec_start(socket=True)``."""
    return getattr(conn, "_sock", conn)  # type: ignore[no-any-return]


def copy_stdin(sock: socket.socket) -> None:
    """This process's stdin into ``sock``, then half-close it (the far end reads EOF)."""
    fd = sys.stdin.fileno()
    try:
        while data := os.read(fd, CHUNK):
            sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def interact(conn: Any, with_stdin: bool) -> None:
    """Copy stdin in (when ``with_stdin``) and the output out until the daemon
    closes the stream."""
    sock = raw_socket(conn)
    if with_stdin:
        threading.Thread(target=copy_stdin, args=(sock,), daemon=True).start()
    reader = sock.makefile("rb", buffering=0)
    with contextlib.suppress(ConnectionError):
        copy_out(demux(reader, tty=False))
