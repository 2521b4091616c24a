"""Routes for processes inside a running container: exec (create, start, resize,
inspect), the main process's TTY size, top (moby ``exec_routes.go`` and
``container_routes.go``; Engine API v1.45 ContainerExec, ExecStart, ExecResize,
ExecInspect, ContainerResize, ContainerTop)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from vmcontainer.api import params
from vmcontainer.api.backend import Chunk, engine
from vmcontainer.api.compat import Route
from vmcontainer.api.responses import json_response
from vmcontainer.api.stdin import detach_keys, stream_with_stdin
from vmcontainer.api.streams import StdinQueue, encode, hijack
from vmcontainer.engine.execs import ExecInstance
from vmcontainer.errors import Conflict, InvalidParameter, StartError, VmcError

log = logging.getLogger(__name__)

RESIZE_WAIT_S = 10.0  # moby waits this long for an exec to start before resizing


def _strings(body: dict[str, Any], key: str) -> list[str] | None:
    v = body.get(key)
    if v is None:
        return None
    if not isinstance(v, list) or not all(isinstance(i, str) for i in v):
        raise InvalidParameter(f'invalid value for "{key}": expected a list of strings')
    return v


def _exec_config(body: object) -> dict[str, Any]:
    """The exec create body, type-checked (moby's ExecConfig)."""
    if not isinstance(body, dict):
        raise InvalidParameter("invalid JSON: the body must be a JSON object")
    cmd = _strings(body, "Cmd")
    if not cmd:
        raise InvalidParameter("No exec command specified")
    out: dict[str, Any] = {"Cmd": cmd, "Env": _strings(body, "Env") or []}
    for key in ("User", "WorkingDir", "DetachKeys"):
        v = body.get(key)
        if v is not None and not isinstance(v, str):
            raise InvalidParameter(f'invalid value for "{key}": expected a string')
        out[key] = v or ""
    for key in ("AttachStdin", "AttachStdout", "AttachStderr", "Tty", "Privileged",
                "Detach"):
        v = body.get(key)
        if v is not None and not isinstance(v, bool):
            raise InvalidParameter(f'invalid value for "{key}": expected a boolean')
        out[key] = bool(v)
    if out["WorkingDir"] and not out["WorkingDir"].startswith("/"):
        raise InvalidParameter(f"the working directory '{out['WorkingDir']}' is invalid, "
                               "it needs to be an absolute path")
    if out["DetachKeys"]:
        detach_keys(out["DetachKeys"])
    size = body.get("ConsoleSize")
    if size is not None:
        if not (isinstance(size, list) and len(size) == 2 and all(
                isinstance(i, int) and not isinstance(i, bool) and 0 <= i <= 0xFFFF
                for i in size)):
            raise InvalidParameter('invalid value for "ConsoleSize": expected [height, width]')
        out["ConsoleSize"] = size
    return out


async def exec_create(request: web.Request) -> web.Response:
    eng = engine(request)
    c = eng.get(request.match_info["id"])
    config = _exec_config(await params.json_body(request))
    inst = eng.execs.create(c, config)
    eng.publish("exec_create: " + shlex.join(config["Cmd"]), c, {"execID": inst.id})
    return json_response({"Id": inst.id}, status=201)


async def exec_inspect(request: web.Request) -> web.Response:
    return json_response(engine(request).execs.get(request.match_info["id"]).inspect())


def _runtime_error(err: VmcError) -> bytes:
    """What moby writes into the stream when an attached exec cannot start."""
    if isinstance(err, StartError):
        return (f"OCI runtime exec failed: exec failed: unable to start container process: "
                f"{err}: unknown\r\n").encode()
    return f"{err}\r\n".encode()


async def exec_start(request: web.Request) -> web.StreamResponse:
    """Attached (hijacked, framed unless Tty) until the process ends; with
    ``Detach`` 200 at once and the output dropped, as Docker does."""
    eng = engine(request)
    inst = eng.execs.get(request.match_info["id"])
    body = await params.json_body(request, required=False) or {}
    if not isinstance(body, dict):
        raise InvalidParameter("invalid JSON: the body must be a JSON object")
    console = body.get("ConsoleSize") if isinstance(body.get("ConsoleSize"), list) else None
    c = eng.get(inst.container_id)
    eng.execs.check_startable(inst, c)
    if body.get("Detach"):
        started = await eng.execs.start(inst, c, console)
        started.detach()
        eng.publish(_exec_action("exec_start", inst), c, {"execID": inst.id})
        eng.spawn(_publish_end(eng, inst))
        return web.Response(status=200)
    # Framing follows the start request's Tty, not the exec's (moby
    # postContainerExecStart: stdcopy writers unless execStartCheck.Tty).
    raw = bool(body.get("Tty"))
    tty = bool(inst.config.get("Tty"))
    stdin = StdinQueue() if inst.config.get("AttachStdin") else None
    resp = await hijack(request, stdin)
    try:
        started = await eng.execs.start(inst, c, console)
    except VmcError as err:
        with contextlib.suppress(ConnectionError):
            await resp.write(encode(("stdout", _runtime_error(err)), raw))
        return resp
    eng.publish(_exec_action("exec_start", inst), c, {"execID": inst.id})
    wanted = {s for s, k in (("stdout", "AttachStdout"), ("stderr", "AttachStderr"))
              if inst.config.get(k)}
    try:
        detached = await stream_with_stdin(
            resp, _only(started.output(), wanted), raw, stdin, started.write_stdin,
            detach_keys(params.text(request, "detachKeys"), inst.config.get("DetachKeys", "")),
            close_at_eof=not tty)  # moby: CloseStdin && !TTY
    except (ConnectionError, VmcError) as err:
        log.debug("exec %s stream ended: %s", inst.id[:12], err)
        detached = True
    if detached:
        started.detach()
    eng.spawn(_publish_end(eng, inst))
    return resp


def _exec_action(action: str, inst: ExecInstance) -> str:
    return f"{action}: {shlex.join(inst.config.get('Cmd') or [])}"


async def _only(chunks: AsyncIterator[Chunk], wanted: set[str]) -> AsyncIterator[Chunk]:
    async for stream, data in chunks:
        if stream in wanted:
            yield stream, data


async def _publish_end(eng: Any, inst: ExecInstance) -> None:
    """``exec_die`` with the exit code once the process has ended."""
    await inst.done.wait()
    with contextlib.suppress(VmcError):
        eng.publish("exec_die", eng.get(inst.container_id),
                    {"execID": inst.id, "exitCode": str(inst.exit_code)})


def _size(request: web.Request) -> tuple[int, int]:
    """``h`` and ``w``, both required (moby: ``strconv.Atoi`` of each)."""
    for key in ("h", "w"):
        if not params.text(request, key).strip():
            raise InvalidParameter('strconv.Atoi: parsing "": invalid syntax')
    rows, cols = params.integer(request, "h", 0), params.integer(request, "w", 0)
    if not (0 <= rows <= 0xFFFF and 0 <= cols <= 0xFFFF):
        raise InvalidParameter("h and w must be between 0 and 65535")
    return rows, cols


async def exec_resize(request: web.Request) -> web.Response:
    eng = engine(request)
    inst = eng.execs.get(request.match_info["id"])
    rows, cols = _size(request)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RESIZE_WAIT_S
    while not inst.running:
        if inst.done.is_set() or loop.time() > deadline:
            raise Conflict(f"exec {inst.id} is not running")
        await asyncio.sleep(0.01)
    await eng.execs.resize(inst, rows, cols)
    return web.Response(status=200)


async def container_resize(request: web.Request) -> web.Response:
    rows, cols = _size(request)
    await engine(request).resize(request.match_info["id"], rows, cols)
    return web.Response(status=200)


async def top(request: web.Request) -> web.Response:
    return json_response(await engine(request).top(request.match_info["id"],
                                                    params.text(request, "ps_args")))


def routes() -> list[Route]:
    return [
        ("POST", "/containers/{id}/exec", exec_create),
        ("POST", "/exec/{id}/start", exec_start),
        ("POST", "/exec/{id}/resize", exec_resize),
        ("GET", "/exec/{id}/json", exec_inspect),
        ("POST", "/containers/{id}/resize", container_resize),
        ("GET", "/containers/{id}/top", top),
    ]
