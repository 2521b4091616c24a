"""The local terminal of a ``run -t``/``exec -t``: raw mode while attached, its size
for the container's PTY, and resizes as they happen — what the docker CLI does
(cli/command/container/tty.go: ``MonitorTtySize``, moby/term ``SetRawTerminal``)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import termios
import tty
from collections.abc import Callable, Iterator
from typing import Any

#: The docker CLI's text when ``-it`` is asked with a stdin that is not a terminal
#: (cli/streams/in.go ``CheckTty``); the command exits 1.
NOT_A_TTY = "the input device is not a TTY"

#: Docker's default detach keys, ctrl-p ctrl-q (moby ``DefaultEscapeKeys``).
DETACH_KEYS = b"\x10\x11"


def size() -> tuple[int, int] | None:
    """(rows, cols) of the terminal on stdout (else stdin), None without one."""
    for stream in (sys.stdout, sys.stdin):
        with contextlib.suppress(OSError, ValueError):
            if stream.isatty():
                cols, rows = os.get_terminal_size(stream.fileno())
                return rows, cols
    return None


@contextlib.contextmanager
def raw(enabled: bool) -> Iterator[None]:
    """Stdin in raw mode (no echo, no line editing, no signal keys: ^C reaches the
    container's TTY as a byte) while the block runs, restored after it — also when
    it raises. Does nothing when not ``enabled`` or stdin is not a terminal."""
    fd = sys.stdin.fileno()
    if not enabled or not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    tty.setraw(fd, termios.TCSANOW)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def follow_size(resize: Callable[[int, int], Any]) -> None:
    """Call ``resize(rows, cols)`` now and on every SIGWINCH, as the docker CLI's
    MonitorTtySize (errors from a container that is gone are ignored)."""

    def push(*_: object) -> None:
        if (rc := size()) is not None:
            with contextlib.suppress(Exception):
                resize(*rc)

    push()
    signal.signal(signal.SIGWINCH, push)
