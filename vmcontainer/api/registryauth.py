"""``X-Registry-Auth``: the credentials a client sends with pull and push.

Format (Engine API v1.45, "Authentication"): base64url of a JSON ``AuthConfig`` —
``{"username", "password", "serveraddress"}`` or ``{"identitytoken"}`` (padding
optional; docker-py sends standard base64, which decodes the same unless it holds
``+``/``/``, so both alphabets are accepted). As moby's ``postImagesCreate`` does, an
empty or undecodable header means anonymous access; a header over 64 KiB, or fields
that are not strings, are refused with 400.
"""

from __future__ import annotations

import base64
import binascii
import json

from aiohttp import web

from vmcontainer.errors import InvalidParameter
from vmcontainer.image.registry import ANONYMOUS, Credentials

HEADER = "X-Registry-Auth"
MAX_HEADER = 65536
"""Longest ``X-Registry-Auth`` accepted, in characters."""


def decode(value: str) -> Credentials:
    """The credentials in a header value; ANONYMOUS when empty or undecodable.
    Raises InvalidParameter for an oversized header or non-string fields."""
    if len(value) > MAX_HEADER:
        raise InvalidParameter(f"{HEADER} header is larger than 64 KiB")
    value = value.strip()
    if not value:
        return ANONYMOUS
    padded = value + "=" * (-len(value) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        doc = json.loads(raw)
    except (binascii.Error, ValueError):
        return ANONYMOUS
    if not isinstance(doc, dict):
        return ANONYMOUS
    fields = {key.lower(): v for key, v in doc.items() if isinstance(key, str)}
    username, password = fields.get("username", ""), fields.get("password", "")
    token = fields.get("identitytoken", "")
    if not all(isinstance(v, str) for v in (username, password, token)):
        raise InvalidParameter(f"{HEADER}: username, password and identitytoken must be "
                               "strings")
    return Credentials(username, password, token)


def credentials(request: web.Request) -> Credentials:
    """The request's ``X-Registry-Auth`` credentials (see :func:`decode`)."""
    return decode(request.headers.get(HEADER, ""))
