"""Container routes that stream: attach (hijacked, or a websocket), logs (chunked), wait (headers
at once, the body at exit). The engine validates the request (unknown container,
bad condition) before any header is sent, so those errors are plain JSON."""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import WSMsgType, web

from vmcontainer.api import params
from vmcontainer.api.backend import engine
from vmcontainer.api.compat import Route, logs_content_type, request_version, wait_condition
from vmcontainer.api.errors import STREAM_KEY
from vmcontainer.api.responses import dumps
from vmcontainer.api.stdin import detach_keys, stream_with_stdin
from vmcontainer.api.streams import StdinQueue, aclose, hijack, pump, start_stream
from vmcontainer.engine.detachkeys import DetachScanner
from vmcontainer.errors import InvalidParameter, VmcError

log = logging.getLogger(__name__)


def _ref(request: web.Request) -> str:
    return request.match_info["id"]


async def attach(request: web.Request) -> web.StreamResponse:
    """``POST /containers/{id}/attach``: the output of the container's process, live
    (``stream``) and/or what it wrote so far (``logs``), until it ends or the client
    detaches (``detachKeys``, default ctrl-p,ctrl-q). With ``stdin`` and a container
    created with ``OpenStdin``, what the client sends goes to the process's stdin
    (from its start, for a client attached before ``start``); the client's EOF
    closes that stdin when the container has ``StdinOnce`` (``docker run -i``) and
    no TTY — with a TTY it stays open, as moby's ``CloseStdin && !TTY``: the docker
    CLI half-closes when it sees the detach keys itself."""
    ref = _ref(request)
    eng = engine(request)
    c = eng.get(ref)
    tty = bool(c.config.get("Tty"))
    keys = detach_keys(params.text(request, "detachKeys"))
    chunks = eng.attach(ref, logs=params.flag(request, "logs"),
                        stream=params.flag(request, "stream"),
                        stdout=params.flag(request, "stdout"),
                        stderr=params.flag(request, "stderr"))
    with_stdin = params.flag(request, "stdin") and bool(c.config.get("OpenStdin"))
    stdin = StdinQueue() if with_stdin else None

    async def write(data: bytes) -> None:
        running = await eng.stdin_target(c.id)
        if running is not None:
            await running.write_stdin(data)

    resp = await hijack(request, stdin)
    try:
        await stream_with_stdin(resp, chunks, tty, stdin, write if with_stdin else None,
                                keys, close_at_eof=bool(c.config.get("StdinOnce")) and not tty)
    except (ConnectionError, VmcError) as err:
        log.debug("attach %s ended: %s", ref, err)
    return resp


async def attach_ws(request: web.Request) -> web.StreamResponse:
    """``GET /containers/{id}/attach/ws``: attach over a websocket (moby
    ``wsContainersAttach``). The output goes as binary messages, raw (no 8-byte
    framing, as Docker sends it whatever the TTY); with ``stdin`` and a container
    created with ``OpenStdin``, the client's messages (binary or text) go to the
    process's stdin, through the detach keys. Ends (a close frame) when the
    process ends, the client closes (its stdin EOF: closes the process's stdin
    when StdinOnce and no TTY, as the hijacked attach) or detaches."""
    ref = _ref(request)
    eng = engine(request)
    c = eng.get(ref)
    keys = detach_keys(params.text(request, "detachKeys"))
    ws = web.WebSocketResponse()
    if not ws.can_prepare(request).ok:
        raise InvalidParameter("not websocket protocol")
    tty = bool(c.config.get("Tty"))
    with_stdin = params.flag(request, "stdin") and bool(c.config.get("OpenStdin"))
    close_at_eof = bool(c.config.get("StdinOnce")) and not tty
    chunks = eng.attach(ref, logs=params.flag(request, "logs"),
                        stream=params.flag(request, "stream"),
                        stdout=params.flag(request, "stdout"),
                        stderr=params.flag(request, "stderr"))
    request[STREAM_KEY] = ws
    await ws.prepare(request)

    async def write(data: bytes) -> None:
        running = await eng.stdin_target(c.id)
        if running is not None:
            await running.write_stdin(data)

    async def output() -> None:
        try:
            async for _stream, data in chunks:
                if data:
                    await ws.send_bytes(data)
        finally:
            await aclose(chunks)

    async def client() -> None:
        """The client's messages until it closes (stdin EOF) or detaches."""
        scanner = DetachScanner(keys)
        async for msg in ws:
            if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT) or not with_stdin:
                continue
            data = msg.data if isinstance(msg.data, bytes) else str(msg.data).encode()
            passed, detached = scanner.feed(data)
            if passed:
                await write(passed)
            if detached:
                return
        if with_stdin and close_at_eof:
            await write(b"")

    out, inp = asyncio.ensure_future(output()), asyncio.ensure_future(client())
    try:
        await asyncio.wait({out, inp}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (out, inp):
            task.cancel()
        for result in await asyncio.gather(out, inp, return_exceptions=True):
            if isinstance(result, (ConnectionError, VmcError)):
                log.debug("attach/ws %s ended: %s", ref, result)
        await ws.close()
    return ws


async def logs(request: web.Request) -> web.StreamResponse:
    """``GET /containers/{id}/logs``: the json-file log, framed as attach frames it;
    with ``follow`` until the container stops."""
    ref = _ref(request)
    eng = engine(request)
    stdout, stderr = params.flag(request, "stdout"), params.flag(request, "stderr")
    if not (stdout or stderr):
        raise InvalidParameter("Bad parameters: you must choose at least one stream")
    now = time.time()
    since = params.timestamp(request, "since", now) or 0.0
    until = params.timestamp(request, "until", now) or 0.0
    tail_text = params.text(request, "tail", "all").strip()
    if tail_text in ("", "all"):
        tail = -1
    else:
        try:
            tail = int(tail_text)
        except ValueError:
            raise InvalidParameter(f'invalid value for "tail": "{tail_text[:64]}" is not '
                                   'an integer or "all"') from None
    tty = bool(eng.get(ref).config.get("Tty"))
    chunks = eng.logs(ref, follow=params.flag(request, "follow"), since=since, until=until,
                      tail=tail if tail >= 0 else -1,
                      timestamps=params.flag(request, "timestamps"),
                      stdout=stdout, stderr=stderr)
    resp = await start_stream(request, logs_content_type(request_version(request), tty))
    try:
        await pump(resp, chunks, tty)
    except (ConnectionError, VmcError) as err:
        log.debug("logs %s ended: %s", ref, err)
    await resp.write_eof()
    return resp


async def wait(request: web.Request) -> web.StreamResponse:
    """``POST /containers/{id}/wait``: headers now (clients know the wait is
    registered), ``{"StatusCode": n, "Error": null}`` when the condition is met."""
    condition = wait_condition(request_version(request), params.text(request, "condition"))
    waiter = engine(request).waiter(_ref(request), condition)
    resp = await start_stream(request, "application/json")
    result = await asyncio.shield(waiter)
    await resp.write(dumps(result))
    await resp.write_eof()
    return resp


def routes() -> list[Route]:
    return [
        ("POST", "/containers/{id}/attach", attach),
        ("GET", "/containers/{id}/attach/ws", attach_ws),
        ("GET", "/containers/{id}/logs", logs),
        ("POST", "/containers/{id}/wait", wait),
    ]
