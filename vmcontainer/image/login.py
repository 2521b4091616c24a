"""``docker login`` (Engine API ``POST /auth``): check credentials against a registry.

As moby ``registry/auth.go`` (``loginV2``) does: ``GET /v2/`` on the registry, answer
its ``WWW-Authenticate`` challenge (``Basic``, or ``Bearer``: a token fetched from
the realm with the credentials), and succeed when ``/v2/`` then answers 200.
Endpoints in Docker's order: ``https://`` (verified as :mod:`vmcontainer.image.registry`
says), then, for an insecure registry, ``https://`` unverified and ``http://``.
Refused credentials raise Unauthorized with Docker's words, ``login attempt to
http://127.0.0.1:5000/v2/ failed with status: 401 Unauthorized``; an unreachable
registry raises Unavailable (``Get "https://host/v2/": dial tcp: ...``).

Blocking (urllib): run it in a worker thread. Credentials go only into headers.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from http.client import HTTPResponse

from vmcontainer.errors import Unauthorized, Unavailable
from vmcontainer.image.regclient import authorized, endpoints, request, unreachable
from vmcontainer.image.registry import Credentials, RegistryPolicy


def _refused(url: str) -> Callable[[HTTPResponse], Unauthorized]:
    def failed(response: HTTPResponse) -> Unauthorized:
        return Unauthorized(f"login attempt to {url} failed with status: "
                            f"{response.status} {response.reason}")
    return failed


def _try(base: str, ctx: ssl.SSLContext | None, creds: Credentials) -> None:
    url = f"{base}/v2/"
    with authorized(url, ctx, creds, "GET", _refused(url)) as response:
        if response.status != 200:
            raise _refused(url)(response)


def login(domain: str, creds: Credentials, policy: RegistryPolicy) -> None:
    """Check ``creds`` against the registry at ``domain`` (``host[:port]``). Raises
    Unauthorized (refused) or Unavailable (unreachable on every endpoint)."""
    last: Unavailable | None = None
    for base, ctx in endpoints(domain, policy):
        try:
            _try(base, ctx, creds)
            return
        except (OSError, ssl.SSLError) as err:
            last = unreachable(f"{base}/v2/", err)
    assert last is not None
    raise last


def scheme(domain: str, policy: RegistryPolicy) -> str:
    """``https`` or ``http``: what the registry at ``domain`` speaks (for messages)."""
    for base, ctx in endpoints(domain, policy):
        try:
            with request(f"{base}/v2/", ctx, {}):
                return base.partition("://")[0]
        except (OSError, ssl.SSLError):
            continue
    return "https"
