"""Query parameters and JSON bodies as Docker reads them (moby
``daemon/server/httputils``): booleans, integers, filters, timestamps. Each helper
raises InvalidParameter (400) with a message naming the parameter."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from aiohttp import web

from vmcontainer.errors import InvalidParameter

MAX_QUERY_VALUE = 64 * 1024
"""No parameter of the API needs more; a longer one is refused before any engine
call sees it."""

MAX_JSON_BODY = 4 * 1024 * 1024

_FALSE = ("", "0", "no", "false", "none")


def text(request: web.Request, key: str, default: str = "") -> str:
    """The raw value of ``key`` (``default`` when absent)."""
    value = request.query.get(key, default)
    if len(value) > MAX_QUERY_VALUE:
        raise InvalidParameter(f'invalid value for "{key}": longer than '
                               f"{MAX_QUERY_VALUE} bytes ({len(value)})")
    return value


def flag(request: web.Request, key: str, default: bool = False) -> bool:
    """Docker's BoolValue: absent → ``default``; "", 0, no, false, none → False;
    anything else → True."""
    if key not in request.query:
        return default
    return text(request, key).strip().lower() not in _FALSE


def integer(request: web.Request, key: str, default: int) -> int:
    value = text(request, key).strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidParameter(f'invalid value for "{key}": "{value[:64]}" is not an '
                               "integer") from None


def optional_number(request: web.Request, key: str) -> float | None:
    """A number of seconds (``t`` of stop/restart), None when absent."""
    value = text(request, key).strip()
    if not value:
        return None
    try:
        return float(int(value))
    except ValueError:
        raise InvalidParameter(f'invalid value for "{key}": "{value[:64]}" is not an '
                               "integer") from None


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)$")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def timestamp(request: web.Request, key: str, now: float) -> float | None:
    """``since``/``until``: Unix seconds with an optional fraction (what the docker
    CLI sends: ``1700000000.000000000``), an RFC 3339 time, or a Go duration back
    from ``now`` (``10m``). None when absent."""
    value = text(request, key).strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    if m := _DURATION.match(value):
        return now - float(m.group(1)) * _UNIT_S[m.group(2)]
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise InvalidParameter(f'invalid value for "{key}": "{value[:64]}" is not a '
                               "Unix timestamp, an RFC 3339 time or a duration") from None


def filters(request: web.Request) -> dict[str, list[str]]:
    """``filters``: JSON ``{"key": ["value", ...]}``, or the older
    ``{"key": {"value": true}}`` form. Empty when absent."""
    raw = text(request, "filters").strip()
    if not raw:
        return {}
    try:
        doc = json.loads(raw)
    except ValueError as err:
        raise InvalidParameter(f"invalid filters: {err}") from None
    if not isinstance(doc, dict):
        raise InvalidParameter("invalid filters: expected a JSON object of lists")
    out: dict[str, list[str]] = {}
    for key, values in doc.items():
        if isinstance(values, dict) and all(isinstance(v, str) for v in values):
            out[key] = [v for v, on in values.items() if on]
        elif isinstance(values, list) and all(isinstance(v, str) for v in values):
            out[key] = list(values)
        else:
            raise InvalidParameter(f"invalid filters: the values of {key!r} must be a "
                                   "list of strings")
    return out


async def _read_all(request: web.Request, limit: int) -> bytes:
    """The whole body (every piece until EOF, as slow clients send it), at most
    ``limit`` bytes. ``StreamReader.read(n)`` alone returns what has arrived so far."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await request.content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


class GoObject(dict[str, Any]):
    """A JSON object read as Go's encoding/json reads into a struct, which the
    Engine API is: an exact key first, else a case-insensitive match, so
    ``{"detachKeys": ...}`` (as docker-py sends it) means ``DetachKeys``."""

    def _fold(self, key: object) -> Any:
        if isinstance(key, str):
            low = key.lower()
            for k in dict.keys(self):
                if k.lower() == low:
                    return k
        return _MISSING

    def __missing__(self, key: str) -> Any:
        k = self._fold(key)
        if k is _MISSING:
            raise KeyError(key)
        return dict.__getitem__(self, k)

    def get(self, key: str, default: Any = None) -> Any:
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        k = self._fold(key)
        return default if k is _MISSING else dict.__getitem__(self, k)

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or self._fold(key) is not _MISSING


_MISSING = object()


async def json_body(request: web.Request, *, required: bool = True) -> Any:
    """The request's JSON document. Docker's rules: a body must be declared
    ``application/json`` (no Content-Type is accepted too); an empty body is an
    error unless not ``required`` (then None). Objects are GoObjects (keys matched
    case-insensitively when there is no exact match)."""
    ctype = request.headers.get("Content-Type", "")
    if request.can_read_body and ctype and \
            ctype.split(";")[0].strip().lower() != "application/json":
        raise InvalidParameter(f"Content-Type specified ({ctype[:128]}) must be "
                               "'application/json'")
    if request.content_length is not None and request.content_length > MAX_JSON_BODY:
        raise InvalidParameter(f"request body too large ({request.content_length} bytes; "
                               f"at most {MAX_JSON_BODY})")
    data = await _read_all(request, MAX_JSON_BODY + 1)
    if len(data) > MAX_JSON_BODY:
        raise InvalidParameter(f"request body too large (at most {MAX_JSON_BODY} bytes)")
    if not data.strip():
        if required:
            raise InvalidParameter("invalid JSON: got EOF while reading request body")
        return None
    try:
        return json.loads(data, object_pairs_hook=GoObject)
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidParameter(f"invalid JSON: {err}") from None
