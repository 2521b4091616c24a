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

import base64
import json
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPResponse

from vmcontainer.errors import Unauthorized, Unavailable
from vmcontainer.image.registry import Credentials, RegistryPolicy

TIMEOUT_S = 30
MAX_TOKEN_BODY = 1 << 20
_PARAM = re.compile(r'(\w+)="([^"]*)"')


def ssl_context(domain: str, policy: RegistryPolicy, verify: bool) -> ssl.SSLContext:
    """System CAs plus ``<certs dir>/<domain>/*.crt`` (and a ``*.cert``/``*.key``
    client pair); no checks at all when ``verify`` is False."""
    if not verify:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    ctx = ssl.create_default_context()
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


def _get(url: str, ctx: ssl.SSLContext | None, headers: dict[str, str]) -> HTTPResponse:
    handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
    if ctx is not None:
        handlers.append(urllib.request.HTTPSHandler(context=ctx))
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, headers={"User-Agent": "vmcontainer", **headers})
    try:
        response: HTTPResponse = opener.open(request, timeout=TIMEOUT_S)
        return response
    except urllib.error.HTTPError as err:
        return err  # type: ignore[return-value]  # an HTTPError is a response too


def _unreachable(url: str, err: BaseException) -> Unavailable:
    reason = getattr(err, "reason", err)
    return Unavailable(f'Get "{url}": {reason}')


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(_PARAM.findall(rest))


def _basic(creds: Credentials) -> str:
    return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()


def _token(params: dict[str, str], creds: Credentials, ctx: ssl.SSLContext | None,
           failed: Unauthorized) -> str:
    realm = params.get("realm", "")
    if not realm.startswith(("https://", "http://")):
        raise failed
    query = {"client_id": "docker", "offline_token": "true", "account": creds.username}
    if params.get("service"):
        query["service"] = params["service"]
    url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)
    headers = {"Authorization": _basic(creds)} if creds.username else {}
    try:
        with _get(url, ctx if realm.startswith("https://") else None, headers) as resp:
            if resp.status != 200:
                raise failed
            doc = json.loads(resp.read(MAX_TOKEN_BODY))
    except (OSError, ValueError) as err:
        if isinstance(err, urllib.error.HTTPError):
            raise failed from None
        raise _unreachable(url, err) from err
    token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
    if not isinstance(token, str) or not token:
        raise failed
    return token


def _try(base: str, ctx: ssl.SSLContext | None, creds: Credentials) -> None:
    url = f"{base}/v2/"
    with _get(url, ctx, {}) as first:
        if first.status == 200:
            return
        header = first.headers.get("WWW-Authenticate", "")
        status = f"{first.status} {first.reason}"
    failed = Unauthorized(f"login attempt to {url} failed with status: {status}")
    if first.status != 401 or not header:
        raise failed
    scheme, params = _challenge(header)
    if scheme == "basic":
        auth = _basic(creds)
    elif scheme == "bearer":
        auth = "Bearer " + _token(params, creds, ctx, failed)
    else:
        raise failed
    with _get(url, ctx, {"Authorization": auth}) as second:
        if second.status != 200:
            raise Unauthorized(f"login attempt to {url} failed with status: "
                               f"{second.status} {second.reason}")


def login(domain: str, creds: Credentials, policy: RegistryPolicy) -> None:
    """Check ``creds`` against the registry at ``domain`` (``host[:port]``). Raises
    Unauthorized (refused) or Unavailable (unreachable on every endpoint)."""
    last: Unavailable | None = None
    for base, ctx in endpoints(domain, policy):
        try:
            _try(base, ctx, creds)
            return
        except (OSError, ssl.SSLError) as err:
            last = _unreachable(f"{base}/v2/", err)
    assert last is not None
    raise last


def scheme(domain: str, policy: RegistryPolicy) -> str:
    """``https`` or ``http``: what the registry at ``domain`` speaks (for messages)."""
    for base, ctx in endpoints(domain, policy):
        try:
            with _get(f"{base}/v2/", ctx, {}):
                return base.partition("://")[0]
        except (OSError, ssl.SSLError):
            continue
    return "https"
