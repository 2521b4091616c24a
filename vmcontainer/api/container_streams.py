"""Container routes that stream: attach (hijacked), logs (chunked), wait (headers
at once, the body at exit). The engine validates the request (unknown container,
bad condition) before any header is sent, so those errors are plain JSON."""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from vmcontainer.api import params
from vmcontainer.api.backend import engine
from vmcontainer.api.compat import Route, logs_content_type, request_version, wait_condition
from vmcontainer.api.responses import dumps
from vmcontainer.api.stdin import detach_keys, stream_with_stdin
from vmcontainer.api.streams import StdinQueue, hijack, pump, start_stream
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
        ("GET", "/containers/{id}/logs", logs),
        ("POST", "/containers/{id}/wait", wait),
    ]
