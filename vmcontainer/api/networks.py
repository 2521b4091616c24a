"""Network routes (Engine API v1.45): ``GET /networks``, ``GET /networks/{id}``,
``POST /networks/create``, ``DELETE /networks/{id}``, ``POST /networks/prune``,
``POST /networks/{id}/connect`` and ``/disconnect``. Thin: each parses the body
with ``Fields`` and calls one engine method."""

from __future__ import annotations

from aiohttp import web

from vmcontainer.api import params
from vmcontainer.api.backend import engine
from vmcontainer.api.compat import Route
from vmcontainer.api.create import Fields
from vmcontainer.api.createnet import endpoint_config
from vmcontainer.api.responses import json_response
from vmcontainer.errors import Forbidden, InvalidParameter


async def list_(request: web.Request) -> web.Response:
    return json_response(engine(request).network_list(params.filters(request)))


async def inspect(request: web.Request) -> web.Response:
    return json_response(engine(request).network_inspect(request.match_info["id"]))


async def create(request: web.Request) -> web.Response:
    body = Fields(await params.json_body(request), "")
    name = body.text("Name")
    if not name:
        raise InvalidParameter('invalid value for "Name": a network name is required')
    ipam = body.sub("IPAM")
    if ipam.text("Driver") not in ("", "default"):
        raise InvalidParameter(f"IPAM driver {ipam.text('Driver')!r} is not supported "
                               "(only default)")
    configs = ipam.doc.get("Config") or []
    if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
        raise InvalidParameter('invalid value for "IPAM.Config": expected a list of objects')
    ipam_config = []
    for i, cfg in enumerate(configs):
        f = Fields(cfg, f"IPAM.Config[{i}]")
        if f.mapping("AuxiliaryAddresses"):
            raise InvalidParameter("auxiliary addresses (--aux-address) are not supported "
                                   "by vmcontainer yet")
        ipam_config.append({k: f.text(k) for k in ("Subnet", "Gateway", "IPRange")})
    if body.flag("EnableIPv6"):
        raise InvalidParameter("IPv6 networks are not supported by vmcontainer yet")
    if body.doc.get("EnableIPv4") is False:
        raise InvalidParameter("networks without IPv4 are not supported by vmcontainer")
    _check_scope(body)
    net_id = engine(request).network_create(
        name, body.text("Driver"), body.flag("Internal"), ipam_config, body.labels("Labels"),
        body.labels("Options"), body.flag("Attachable"), ipam.labels("Options"))
    return json_response({"Id": net_id, "Warning": ""}, 201)


def _check_scope(body: Fields) -> None:
    """Swarm-only and config-only networks are refused, with Docker's words where
    Docker refuses them too. Raises Forbidden, InvalidParameter."""
    scope = body.text("Scope")
    if body.flag("Ingress"):
        raise Forbidden("Ingress network can only be global scope network")
    if scope in ("swarm", "global"):
        raise Forbidden("cannot create a swarm scoped network when swarm is not active")
    if scope not in ("", "local"):
        raise InvalidParameter(f"invalid scope {scope!r}: vmcontainer networks are local")
    if body.flag("ConfigOnly") or body.sub("ConfigFrom").text("Network"):
        raise InvalidParameter("configuration-only networks (--config-only, --config-from) "
                               "are not supported by vmcontainer")


async def remove(request: web.Request) -> web.Response:
    engine(request).network_remove(request.match_info["id"])
    return web.Response(status=204)


async def prune(request: web.Request) -> web.Response:
    filters = params.filters(request)
    for key in filters:
        if key not in ("label", "label!", "until"):
            raise InvalidParameter(f"invalid filter '{key}'")
    return json_response({"NetworksDeleted": engine(request).network_prune(filters)})


async def connect(request: web.Request) -> web.Response:
    body = Fields(await params.json_body(request), "")
    container = body.text("Container")
    if not container:
        raise InvalidParameter('invalid value for "Container": a container is required')
    net = request.match_info["id"]
    await engine(request).network_connect(net, container,
                                      endpoint_config(net, body.doc.get("EndpointConfig")))
    return web.Response(status=200)


async def disconnect(request: web.Request) -> web.Response:
    body = Fields(await params.json_body(request), "")
    container = body.text("Container")
    if not container:
        raise InvalidParameter('invalid value for "Container": a container is required')
    await engine(request).network_disconnect(request.match_info["id"], container,
                                         body.flag("Force"))
    return web.Response(status=200)


def routes() -> list[Route]:
    return [
        ("GET", "/networks", list_),
        ("POST", "/networks/create", create),
        ("POST", "/networks/prune", prune),
        ("GET", "/networks/{id}", inspect),
        ("DELETE", "/networks/{id}", remove),
        ("POST", "/networks/{id}/connect", connect),
        ("POST", "/networks/{id}/disconnect", disconnect),
    ]
