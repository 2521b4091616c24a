"""Detach keys: the byte sequence in an attached client's stdin that detaches it
and leaves the container running (moby ``pkg/term`` ``ToBytes`` and its escape
proxy; Docker's default ``ctrl-p,ctrl-q``)."""

from __future__ import annotations

from vmcontainer.errors import InvalidParameter

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
_CTRL_SPECIAL = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def parse_detach_keys(text: str) -> bytes:
    """``"ctrl-p,ctrl-q"`` → ``b"\\x10\\x11"``. Each comma-separated key is one
    character or ``ctrl-`` plus a letter or one of ``@[\\]^_``. Raises
    InvalidParameter with moby's wording for anything else."""
    out = bytearray()
    for key in text.split(","):
        if len(key) > 1 and key.lower().startswith("ctrl-") and len(key) == 6:
            c = key[5].lower()
            if "a" <= c <= "z":
                out.append(ord(c) - ord("a") + 1)
                continue
            if c in _CTRL_SPECIAL:
                out.append(_CTRL_SPECIAL[c])
                continue
        elif len(key) == 1 and key.isascii():
            out.append(ord(key))
            continue
        raise InvalidParameter(f"Invalid escape keys ({text}) provided")
    return bytes(out)


class DetachScanner:
    """Finds the detach sequence in a stream of stdin chunks. ``feed`` returns the
    bytes to pass on and whether the sequence was completed; bytes of a partial
    match are held back until they turn out not to be one (then passed on), and
    bytes after a completed sequence are dropped, as moby's escape proxy does."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self._held = 0  # length of the matched prefix held back

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        if not self.keys:
            return data, False
        out = bytearray()
        for b in data:
            if b == self.keys[self._held]:
                self._held += 1
                if self._held == len(self.keys):
                    self._held = 0
                    return bytes(out), True
                continue
            if self._held:
                out += self.keys[:self._held]
                self._held = 0
                if b == self.keys[0]:
                    self._held = 1
                    continue
            out.append(b)
        return bytes(out), False
