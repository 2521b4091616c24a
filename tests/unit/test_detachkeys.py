"""Detach keys: moby's key syntax and its escape proxy's behaviour."""

from __future__ import annotations

import pytest

from vmcontainer.engine.detachkeys import DetachScanner, parse_detach_keys
from vmcontainer.errors import InvalidParameter


def test_parse() -> None:
    assert parse_detach_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert parse_detach_keys("ctrl-@,ctrl-[,ctrl-_") == b"\x00\x1b\x1f"
    assert parse_detach_keys("a,b") == b"ab"
    assert parse_detach_keys("CTRL-A") == b"\x01"


@pytest.mark.parametrize("bad", ["ctrl-", "ctrl-1", "ab", "", "ctrl-p,,ctrl-q", "é"])
def test_parse_rejects(bad: str) -> None:
    with pytest.raises(InvalidParameter, match=r"Invalid escape keys"):
        parse_detach_keys(bad)


def test_scanner_detaches_and_drops_the_rest() -> None:
    s = DetachScanner(b"\x10\x11")
    assert s.feed(b"abc") == (b"abc", False)
    assert s.feed(b"x\x10") == (b"x", False)       # held back: maybe a sequence
    assert s.feed(b"\x11after") == (b"", True)


def test_scanner_passes_a_partial_match_on() -> None:
    s = DetachScanner(b"\x10\x11")
    assert s.feed(b"\x10z") == (b"\x10z", False)
    assert s.feed(b"\x10\x10\x11") == (b"\x10", True)  # the second ctrl-p starts it


def test_no_keys_never_detaches() -> None:
    assert DetachScanner(b"").feed(b"\x10\x11") == (b"\x10\x11", False)
