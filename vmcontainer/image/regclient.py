"""A small HTTP client for the registry API (OCI distribution spec), for the few
requests skopeo does not answer: ``GET /v2/`` (login), ``HEAD`` of a blob (push).

TLS as moby ``registry/service.go`` sets it up: ``https://`` verified against the
system CAs plus ``<certs dir>/<host:port>/*.crt`` (and a ``*.cert``/``*.key`` client
pair), or, for an insecure registry, ``https://`` unverified then ``http://``.
Authentication as ``docker/distribution`` clients answer a 401: its
``WWW-Authenticate`` challenge, ``Basic`` (the credentials) or ``Bearer`` (a token
fetched from the challenge's realm with its service and scope, moby
``registry/auth.go``).

Blocking (urllib): run it in a worker thread. Credentials go only into headers.
"""

from __future__ import annotations

import base64
import json
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from http.client import HTTPResponse

from vmcontainer.errors import Unauthorized, Unavailable
from vmcontainer.image.registry import Credentials, RegistryPolicy

TIMEOUT_S = 30
MAX_TOKEN_BODY = 1 << 20
_PARAM = re.compile(r'(\w+)="([^"]*)"')


def ssl_context(domain: str, policy: RegistryPolicy, verify: bool) -> ssl.SSLContext:
    """System CAs plus ``<certs dir>/<domain>/*.crt`` (and a ``*.cert``/``*.key``
    client pair); no checks at all when ``verify`` is False."""
    ctx = ssl.create_default_context()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    certs = policy.cert_dir(domain)
    if certs is not None:
        for ca in sorted(certs.glob("*.crt")):
            ctx.load_verify_locations(cafile=str(ca))
        for cert in sorted(certs.glob("*.cert")):
            key = cert.with_suffix(".key")
            if key.exists():
                ctx.load_cert_chain(str(cert), str(key))
    return ctx


def endpoints(domain: str, policy: RegistryPolicy) -> list[tuple[str, ssl.SSLContext | None]]:
    """Base URLs to try, in order, each with its TLS context (None: plain HTTP)."""
    if policy.tls_verify(domain):
        return [(f"https://{domain}", ssl_context(domain, policy, True))]
    return [(f"https://{domain}", ssl_context(domain, policy, False)), (f"http://{domain}", None)]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def request(url: str, ctx: ssl.SSLContext | None, headers: dict[str, str],
            method: str = "GET") -> HTTPResponse:
    """One request, redirects not followed; an HTTP error status is returned as a
    response, not raised. Raises OSError (ssl.SSLError included) when unreachable."""
    handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
    if ctx is not None:
        handlers.append(urllib.request.HTTPSHandler(context=ctx))
    opener = urllib.request.build_opener(*handlers)
    req = urllib.request.Request(url, method=method,
                                 headers={"User-Agent": "vmcontainer", **headers})
    try:
        response: HTTPResponse = opener.open(req, timeout=TIMEOUT_S)
        return response
    except urllib.error.HTTPError as err:
        return err  # type: ignore[return-value]  # an HTTPError is a response too


def unreachable(url: str, err: BaseException) -> Unavailable:
    """Docker's words for a registry that does not answer: ``Get "URL": reason``."""
    reason = getattr(err, "reason", err)
    return Unavailable(f'Get "{url}": {reason}')


def challenge(header: str) -> tuple[str, dict[str, str]]:
    """``WWW-Authenticate`` → (lower-case scheme, its parameters)."""
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(_PARAM.findall(rest))


def basic(creds: Credentials) -> str:
    return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()


def bearer_token(params: dict[str, str], creds: Credentials, ctx: ssl.SSLContext | None,
                 failed: Unauthorized) -> str:
    """A token from the challenge's realm (Docker token auth spec); raises ``failed``
    when the realm refuses, Unavailable when it does not answer."""
    realm = params.get("realm", "")
    if not realm.startswith(("https://", "http://")):
        raise failed
    query = {"client_id": "docker", "offline_token": "true"}
    if creds.username:
        query["account"] = creds.username
    for key in ("service", "scope"):
        if params.get(key):
            query[key] = params[key]
    url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)
    headers = {"Authorization": basic(creds)} if creds.username else {}
    try:
        with request(url, ctx if realm.startswith("https://") else None, headers) as resp:
            if resp.status != 200:
                raise failed
            doc = json.loads(resp.read(MAX_TOKEN_BODY))
    except (OSError, ValueError) as err:
        if isinstance(err, urllib.error.HTTPError):
            raise failed from None
        raise unreachable(url, err) from err
    token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
    if not isinstance(token, str) or not token:
        raise failed
    return token


def authorized(url: str, ctx: ssl.SSLContext | None, creds: Credentials, method: str,
               failed: Callable[[HTTPResponse], Unauthorized]) -> HTTPResponse:
    """``method url``; on a 401 with a Basic or Bearer challenge, once more with
    the answer. Returns the last response (any status, caller closes it); raises
    ``failed(response)`` when the challenge cannot be answered, OSError when
    unreachable."""
    first = request(url, ctx, {}, method)
    if first.status != 401:
        return first
    with first:
        header = first.headers.get("WWW-Authenticate", "")
        refusal = failed(first)
    scheme, params = challenge(header)
    if scheme == "basic":
        auth = basic(creds)
    elif scheme == "bearer":
        auth = "Bearer " + bearer_token(params, creds, ctx, refusal)
    else:
        raise refusal
    return request(url, ctx, {"Authorization": auth}, method)
