"""Attached stdin: a hijacked client's bytes to a process in the guest, with
Docker's detach keys, and the output pump that stops when the client detaches."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from vmcontainer.api.backend import Chunk
from vmcontainer.api.streams import StdinQueue, aclose, pump
from vmcontainer.engine.detachkeys import DEFAULT_DETACH_KEYS, DetachScanner, parse_detach_keys

Writer = Callable[[bytes], Awaitable[None]]


def detach_keys(requested: str, configured: str = "") -> bytes:
    """The detach sequence: the request's ``detachKeys``, else the container's or
    exec's, else ctrl-p,ctrl-q. Raises InvalidParameter for a malformed one."""
    return parse_detach_keys(requested or configured or DEFAULT_DETACH_KEYS)


async def feed(stdin: StdinQueue, write: Writer, keys: bytes, close_at_eof: bool) -> bool:
    """Copy the client's bytes to ``write`` until its EOF (then ``write(b"")``
    closes the process's stdin when ``close_at_eof``) or the detach keys (True)."""
    scanner = DetachScanner(keys)
    while (data := await stdin.get()) is not None:
        passed, detached = scanner.feed(data)
        if passed:
            await write(passed)
        if detached:
            return True
    if close_at_eof:
        await write(b"")
    return False


async def stream_with_stdin(resp: web.StreamResponse, chunks: AsyncIterator[Chunk], tty: bool,
                            stdin: StdinQueue | None, write: Writer | None, keys: bytes,
                            close_at_eof: bool) -> bool:
    """Pump ``chunks`` to the client while feeding its stdin to ``write``; returns
    True when the client detached (the output pump is then stopped and ``chunks``
    closed; the process keeps running)."""
    if stdin is None or write is None:
        await pump(resp, chunks, tty)
        return False
    out = asyncio.ensure_future(pump(resp, chunks, tty))
    inp = asyncio.ensure_future(feed(stdin, write, keys, close_at_eof))
    try:
        await asyncio.wait({out, inp}, return_when=asyncio.FIRST_COMPLETED)
        if inp.done() and not inp.cancelled() and inp.exception() is None and inp.result():
            out.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await out
            await aclose(chunks)
            return True
        await out
        return False
    finally:
        for task in (out, inp):
            task.cancel()
        await asyncio.gather(out, inp, return_exceptions=True)
