"""Signal names and numbers as Docker accepts them (``KILL``, ``SIGKILL``, ``9``)."""

from __future__ import annotations

import signal

from vmcontainer.errors import InvalidParameter


def parse_signal(value: str | int) -> int:
    """The signal number; raises InvalidParameter with Docker's wording."""
    text = str(value).strip()
    if text.isdigit():
        n = int(text)
        if 0 < n < signal.NSIG:
            return n
        raise InvalidParameter(f"Invalid signal: {value}")
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise InvalidParameter(f"Invalid signal: {value}") from None
