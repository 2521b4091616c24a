"""``docker volume`` verbs (Engine API v1.45 Volume routes) over the volume store,
with what only the engine knows: which containers use a volume (moby
``daemon/volumes.go``, ``volume/service``)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from vmcontainer.engine.context import EngineContext
from vmcontainer.engine.events import Event, EventBus
from vmcontainer.engine.mounts import users
from vmcontainer.engine.state import now_rfc3339
from vmcontainer.errors import Conflict, InvalidParameter
from vmcontainer.volume.store import Volume

VOLUME_FILTERS = ("dangling", "driver", "label", "name")
PRUNE_FILTERS = ("label", "label!", "all")
_TRUE, _FALSE = ("true", "1"), ("false", "0")


def volume_event(action: str, name: str, extra: dict[str, str] | None = None) -> Event:
    """A volume event (``create``, ``destroy``), as ``docker events`` shows it."""
    now = time.time_ns()
    return {"Type": "volume", "Action": action,
            "Actor": {"ID": name, "Attributes": {"driver": "local", **(extra or {})}},
            "scope": "local", "time": now // 10**9, "timeNano": now}


def _labels_match(vol: Volume, wants: list[str]) -> bool:
    for want in wants:
        key, eq, value = want.partition("=")
        if key not in vol.labels or (eq and vol.labels[key] != value):
            return False
    return True


def _bool_filter(key: str, values: list[str]) -> bool:
    v = values[-1].lower()
    if v not in _TRUE + _FALSE:
        raise InvalidParameter(f"invalid filter '{key}={values[-1]}'")
    return v in _TRUE


class VolumesMixin:
    """``ctx`` and the event bus are the engine's."""

    ctx: EngineContext
    events: EventBus

    async def volume_create(self, name: str, driver: str, labels: dict[str, str],
                            options: dict[str, str]) -> dict[str, Any]:
        """Create (or, as Docker, return the existing) volume; Docker's Volume object.
        Raises InvalidParameter, NotFound (driver), System."""
        vol, created = await asyncio.to_thread(self.ctx.volumes.create, name, driver, labels,
                                               options, now_rfc3339())
        if created:
            self.events.publish(volume_event("create", vol.name))
        return self.ctx.volumes.inspect(vol)

    def volume_inspect(self, name: str) -> dict[str, Any]:
        """Raises VolumeNotFound (``get NAME: no such volume``)."""
        return self.ctx.volumes.inspect(self.ctx.volumes.get(name))

    def volume_list(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        """``{"Volumes": [...], "Warnings": null}`` filtered as Docker's
        (dangling, driver, label, name); InvalidParameter for other filters."""
        for key in filters:
            if key not in VOLUME_FILTERS:
                raise InvalidParameter(f"invalid filter '{key}'")
        dangling = _bool_filter("dangling", filters["dangling"]) if "dangling" in filters \
            else None
        out = []
        for vol in self.ctx.volumes.all():
            if "name" in filters and not any(n in vol.name for n in filters["name"]):
                continue
            if "driver" in filters and "local" not in filters["driver"]:
                continue
            if "label" in filters and not _labels_match(vol, filters["label"]):
                continue
            if dangling is not None and dangling == bool(users(self.ctx.store, vol.name)):
                continue
            out.append(self.ctx.volumes.inspect(vol))
        return {"Volumes": out, "Warnings": None}

    def volume_remove(self, name: str, force: bool = False) -> None:
        """Docker's rm: 409 ``remove NAME: volume is in use - [ids]`` while any
        container (running or not) uses it; ``force`` only forgives a missing one."""
        try:
            self.ctx.volumes.get(name)
        except Exception:
            if force:
                return
            raise
        using = users(self.ctx.store, name)
        if using:
            raise Conflict(f"remove {name}: volume is in use - [{', '.join(using)}]")
        self.ctx.volumes.remove(name)
        self.events.publish(volume_event("destroy", name))

    def volume_prune(self, filters: dict[str, list[str]], anonymous_only: bool) -> dict[str, Any]:
        """Remove unused volumes: only anonymous ones unless ``anonymous_only`` is
        False or the ``all`` filter is true (API >= 1.42, as Docker)."""
        for key in filters:
            if key not in PRUNE_FILTERS:
                raise InvalidParameter(f"invalid filter '{key}'")
        if "all" in filters and _bool_filter("all", filters["all"]):
            anonymous_only = False
        deleted, reclaimed = [], 0
        for vol in list(self.ctx.volumes.all()):
            if anonymous_only and not vol.anonymous:
                continue
            if "label" in filters and not _labels_match(vol, filters["label"]):
                continue
            if "label!" in filters and any(_labels_match(vol, [w]) for w in filters["label!"]):
                continue
            if users(self.ctx.store, vol.name):
                continue
            size = self.ctx.volumes.usage_bytes(vol.name)
            self.ctx.volumes.remove(vol.name)
            self.events.publish(volume_event("destroy", vol.name))
            deleted.append(vol.name)
            reclaimed += size
        return {"VolumesDeleted": deleted or None, "SpaceReclaimed": reclaimed}
