"""``POST /auth`` (Engine API v1.45 SystemAuth): ``docker login``.

The body is an ``AuthConfig``: ``username``, ``password``, ``serveraddress`` (a
registry ``host[:port]``, possibly as a URL such as ``https://index.docker.io/v1/``),
optionally ``identitytoken``, ``email``, ``auth``. The credentials are checked
against the registry (:mod:`vmcontainer.image.login`) and nothing is stored: the
client keeps them (``~/.docker/config.json``) and sends them with each pull and push
in ``X-Registry-Auth``. Success is ``{"Status":"Login Succeeded","IdentityToken":""}``;
refused credentials are a 401 with Docker's text (``login attempt to
http://127.0.0.1:5000/v2/ failed with status: 401 Unauthorized``; the reference
Docker 20.10 sends that text with a 500, newer ones with a 401). Bodies over
64 KiB, non-string fields and malformed addresses are 400s.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from aiohttp import web

from vmcontainer.api import params
from vmcontainer.api.backend import engine
from vmcontainer.api.compat import Route
from vmcontainer.api.responses import json_response
from vmcontainer.errors import InvalidParameter
from vmcontainer.image.registry import Credentials

MAX_AUTH_BODY = 65536
DEFAULT_SERVER = "docker.io"


def server_domain(address: str) -> str:
    """``host[:port]`` of ``serveraddress`` (Docker Hub's ``index.docker.io/v1/``
    URL is ``registry-1.docker.io``)."""
    text = address.strip()
    if not text:
        return "registry-1.docker.io"
    parts = urlsplit(text if "://" in text else f"//{text}")
    domain = parts.netloc
    if not domain or any(c.isspace() or c in "/@?#" for c in domain) or len(domain) > 255:
        raise InvalidParameter(f"invalid serveraddress {address[:300]!r}")
    if domain in ("docker.io", "index.docker.io"):
        return "registry-1.docker.io"
    return domain


async def auth(request: web.Request) -> web.Response:
    if request.content_length is not None and request.content_length > MAX_AUTH_BODY:
        raise InvalidParameter(f"request body too large (at most {MAX_AUTH_BODY} bytes)")
    doc = await params.json_body(request)
    if not isinstance(doc, dict):
        raise InvalidParameter("invalid JSON: the body must be an AuthConfig object")
    fields = {str(k).lower(): v for k, v in doc.items()}
    for key in ("username", "password", "serveraddress", "identitytoken", "email", "auth"):
        if fields.get(key) is not None and not isinstance(fields[key], str):
            raise InvalidParameter(f"json: cannot unmarshal {type(fields[key]).__name__} into "
                                   f"Go struct field AuthConfig.{key} of type string")
    creds = Credentials(fields.get("username") or "", fields.get("password") or "",
                        fields.get("identitytoken") or "")
    domain = server_domain(fields.get("serveraddress") or "")
    policy = engine(request).ctx.images.registries
    from vmcontainer.image.login import login

    await asyncio.to_thread(login, domain, creds, policy)
    return json_response({"IdentityToken": "", "Status": "Login Succeeded"})


def routes() -> list[Route]:
    return [("POST", "/auth", auth)]
