"""``GET /events``: Docker's event stream — the history from ``since``, then live
events, each one JSON object per line; with ``until`` the stream ends at that time.
Filters as moby's ``daemon/events/filter.go``: type, container, event, image,
label (values of one key OR-ed, keys AND-ed)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from vmcontainer.api import params
from vmcontainer.api.backend import engine
from vmcontainer.api.compat import Route
from vmcontainer.api.responses import dumps
from vmcontainer.api.streams import aclose, start_stream
from vmcontainer.errors import InvalidParameter

Event = dict[str, Any]
FILTERS = ("type", "container", "event", "image", "label", "config", "daemon", "network",
           "node", "plugin", "scope", "secret", "service", "volume")


def _fuzzy(values: list[str], *candidates: str) -> bool:
    """Exact or prefix match of any value against any non-empty candidate."""
    return any(c and (c == v or c.startswith(v)) for v in values for c in candidates)


def _image_names(ref: str) -> set[str]:
    name = ref.split("@")[0]
    base, _, tag = name.rpartition(":")
    if base and "/" not in tag:
        return {name, base}
    return {name, f"{name}:latest"}


def matches(event: Event, filters: dict[str, list[str]]) -> bool:
    actor = event.get("Actor") or {}
    attrs: dict[str, str] = actor.get("Attributes") or {}
    kind = str(event.get("Type", ""))
    for key, values in filters.items():
        if not values:
            continue
        if key == "type":
            ok = kind in values
        elif key == "event":
            action = str(event.get("Action", ""))
            ok = action in values or action.split(":")[0] in values
        elif key == "container":
            ok = kind == "container" and _fuzzy(values, actor.get("ID", ""),
                                                attrs.get("name", ""))
        elif key == "image":
            names = _image_names(attrs.get("image", "")) if kind == "container" else \
                {str(actor.get("ID", "")), *_image_names(attrs.get("name", ""))}
            ok = any(v in names or _image_names(v) & names for v in values)
        elif key == "label":
            ok = all(_label(attrs, v) for v in values)
        elif key == "scope":
            ok = event.get("scope") in values
        else:  # networks, volumes, swarm objects: vmcontainer emits none of them
            ok = kind == key and _fuzzy(values, actor.get("ID", ""), attrs.get("name", ""))
        if not ok:
            return False
    return True


def _label(attrs: dict[str, str], want: str) -> bool:
    key, eq, value = want.partition("=")
    return key in attrs and (not eq or attrs[key] == value)


async def _live(subscription: AsyncIterator[Event], until: float | None,
                ) -> AsyncIterator[Event]:
    """Live events until ``until`` (Unix seconds; None: forever)."""
    while True:
        if until is None:
            yield await anext(subscription)
            continue
        left = until - time.time()
        if left <= 0:
            return
        try:
            yield await asyncio.wait_for(anext(subscription), left)
        except TimeoutError:
            return


async def events(request: web.Request) -> web.StreamResponse:
    now = time.time()
    since = params.timestamp(request, "since", now)
    until = params.timestamp(request, "until", now)
    filters = params.filters(request)
    for key in filters:
        if key not in FILTERS:
            raise InvalidParameter(f"invalid filter '{key}'")
    if since is not None and until is not None and until < since:
        raise InvalidParameter(f"`since` time ({since:.0f}) cannot be after `until` time "
                               f"({until:.0f})")
    bus = engine(request).events
    subscription = bus.subscribe()  # registered now: nothing after history() is missed
    # Docker replays its buffer when either bound is given (all of it up to
    # ``until`` when only that is); with neither, the stream is live events only.
    history = bus.history(int((since or 0) * 1e9),
                          int(until * 1e9) if until is not None else None) \
        if since is not None or until is not None else []
    seen = {id(e) for e in history}
    resp = await start_stream(request, "application/json")
    try:
        for event in history:
            if matches(event, filters):
                await resp.write(dumps(event))
        if until is None or until > time.time():
            async for event in _live(subscription, until):
                if id(event) not in seen and matches(event, filters):
                    await resp.write(dumps(event))
    finally:
        await aclose(subscription)
    await resp.write_eof()
    return resp


def routes() -> list[Route]:
    return [("GET", "/events", events)]
