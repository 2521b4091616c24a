"""JSON answers as Docker writes them: ``Content-Type: application/json`` exactly
(the docker CLI parses an error body only when the type is that string, without
a charset), compact JSON, one trailing newline."""

from __future__ import annotations

import json

from aiohttp import web

JSON = "application/json"

MAX_MESSAGE = 4096
"""Messages echo what the client sent (``No such container: <name>``); longer ones
are cut here so that a megabyte of name does not come back as a megabyte."""


def dumps(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode() + b"\n"


def json_response(doc: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=dumps(doc), content_type=JSON)


def json_error(status: int, message: str) -> web.Response:
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + "..."
    return json_response({"message": message}, status)
