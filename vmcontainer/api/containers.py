"""Container routes: create, inspect, list, start, stop, restart, kill, pause,
unpause, delete, rename, update, prune (moby ``container_routes.go``). Each handler parses
the request, makes one engine call and sets the status; errors go to the error
middleware."""

from __future__ import annotations

from aiohttp import web

from vmcontainer.api import params
from vmcontainer.api.backend import engine
from vmcontainer.api.compat import Route, start_error
from vmcontainer.api.create import Fields, create_response, parse_create, resource_fields
from vmcontainer.api.operations import run_to_end
from vmcontainer.api.responses import json_response
from vmcontainer.engine.resources import UPDATABLE
from vmcontainer.errors import InvalidParameter, StartError, VmcError

PS_FILTERS = ("ancestor", "before", "expose", "exited", "health", "id", "isolation",
              "is-task", "label", "name", "network", "publish", "since", "status", "volume")
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def _ref(request: web.Request) -> str:
    return request.match_info["id"]


def prefixed(err: VmcError, prefix: str) -> VmcError:
    """``err``'s kind and status with Docker's ``Cannot kill container: x: `` prefix."""
    wrapped = VmcError(f"{prefix}{err}")
    wrapped.http_status = err.http_status
    return wrapped


async def create(request: web.Request) -> web.Response:
    name = params.text(request, "name")
    platform = params.text(request, "platform")
    if platform and platform not in ("linux", "linux/amd64"):
        raise InvalidParameter(f"image platform {platform} is not supported: vmcontainer "
                               "runs linux/amd64 guests")
    spec, warnings = parse_create(await params.json_body(request), name)
    c = await run_to_end(request, engine(request).create(spec))
    return json_response(create_response(c.id, warnings), status=201)


async def inspect(request: web.Request) -> web.Response:
    return json_response(engine(request).inspect(_ref(request)))


async def list_(request: web.Request) -> web.Response:
    filters = params.filters(request)
    for key, values in filters.items():
        if key not in PS_FILTERS:
            raise InvalidParameter(f"Invalid filter '{key}'")
        for value in values:  # checked up front, as Docker does, not per container
            if (key == "status" and value not in STATUSES) or \
                    (key == "exited" and not value.lstrip("-").isdigit()):
                raise InvalidParameter(f"invalid filter '{key}={value}'")
    items = engine(request).list(all=params.flag(request, "all"),
                                 limit=params.integer(request, "limit", -1),
                                 filters=filters or None)
    if params.flag(request, "size"):
        for item in items:
            item.setdefault("SizeRw", 0)
            item.setdefault("SizeRootFs", 0)
    return json_response(items)


async def start(request: web.Request) -> web.Response:
    try:
        await run_to_end(request, engine(request).start(_ref(request)))
    except StartError as err:
        raise start_error(err) from err
    return web.Response(status=204)


async def stop(request: web.Request) -> web.Response:
    timeout = params.optional_number(request, "t")
    if params.text(request, "signal"):
        raise InvalidParameter("docker stop --signal is not supported by vmcontainer yet; "
                               "the container's STOPSIGNAL is used")
    await run_to_end(request, engine(request).stop(_ref(request), timeout))
    return web.Response(status=204)


async def restart(request: web.Request) -> web.Response:
    timeout = params.optional_number(request, "t")
    try:
        await run_to_end(request, engine(request).restart(_ref(request), timeout))
    except StartError as err:
        raise start_error(err) from err
    return web.Response(status=204)


async def kill(request: web.Request) -> web.Response:
    ref = _ref(request)
    signal = params.text(request, "signal") or "KILL"
    try:
        await run_to_end(request, engine(request).kill(ref, signal))
    except InvalidParameter:
        raise
    except VmcError as err:
        raise prefixed(err, f"Cannot kill container: {ref}: ") from err
    return web.Response(status=204)


async def pause(request: web.Request) -> web.Response:
    """Engine API v1.45 ContainerPause: 204; 409 when not running or already paused."""
    await run_to_end(request, engine(request).pause(_ref(request)))
    return web.Response(status=204)


async def unpause(request: web.Request) -> web.Response:
    """Engine API v1.45 ContainerUnpause: 204; 500 when not paused (as Docker)."""
    await run_to_end(request, engine(request).unpause(_ref(request)))
    return web.Response(status=204)


async def remove(request: web.Request) -> web.Response:
    await run_to_end(request, engine(request).remove(
        _ref(request), force=params.flag(request, "force"), volumes=params.flag(request, "v")))
    return web.Response(status=204)


async def rename(request: web.Request) -> web.Response:
    new_name = params.text(request, "name")
    if not new_name:
        raise InvalidParameter("Neither old nor new names may be empty")
    engine(request).rename(_ref(request), new_name)
    return web.Response(status=204)


async def update(request: web.Request) -> web.Response:
    """``POST /containers/{id}/update`` (Engine API v1.45 ContainerUpdate, ``docker
    update``): RestartPolicy and resources; ``{"Warnings": [...]}``."""
    ref = _ref(request)
    engine(request).get(ref)  # 404 before the body is read, as Docker
    body = Fields(await params.json_body(request), "")
    changes = {k: v for k, v in resource_fields(body).items()
               if k in UPDATABLE and (v is not None if k == "PidsLimit" else bool(v))}
    for key in ("Memory", "NanoCpus"):
        if body.integer(key):
            changes[key] = body.integer(key)
    policy = body.sub("RestartPolicy")
    name, retries = policy.text("Name"), policy.integer("MaximumRetryCount")
    if name:
        changes["RestartPolicy"] = {"Name": name, "MaximumRetryCount": retries}
    warnings = engine(request).update(ref, changes)
    return json_response({"Warnings": warnings or None})


async def prune(request: web.Request) -> web.Response:
    if params.filters(request):
        raise InvalidParameter("container prune filters are not supported by vmcontainer yet")
    return json_response(engine(request).prune())


def routes() -> list[Route]:
    """(method, path, handler); the server adds the versioned forms."""
    return [
        ("POST", "/containers/create", create),
        ("GET", "/containers/json", list_),
        ("POST", "/containers/prune", prune),
        ("GET", "/containers/{id}/json", inspect),
        ("POST", "/containers/{id}/start", start),
        ("POST", "/containers/{id}/stop", stop),
        ("POST", "/containers/{id}/restart", restart),
        ("POST", "/containers/{id}/kill", kill),
        ("POST", "/containers/{id}/pause", pause),
        ("POST", "/containers/{id}/unpause", unpause),
        ("POST", "/containers/{id}/rename", rename),
        ("POST", "/containers/{id}/update", update),
        ("DELETE", "/containers/{id}", remove),
    ]
