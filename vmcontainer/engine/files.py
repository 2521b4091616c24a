"""The engine's verbs on a container's files: ``docker cp`` both ways (Engine
API ContainerArchive, ContainerArchiveInfo, PutContainerArchive), ``docker
export``, ``docker diff`` and ``docker commit``. A mixin of ``Engine``.

A running container's agent serves them in the container's own view (volumes
and mounts included, for cp) or its rootfs (export, diff, commit: no mounts, as
Docker's); a stopped one gets a maintenance boot (``engine/maintenance.py``).
A paused one is refused (409), where Docker serves it: its agent is frozen with
it, and resuming the VM would resume the container's processes too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
from collections.abc import AsyncIterator, Sequence
from typing import Any

from vmcontainer.engine.archive import ArchiveRequest
from vmcontainer.engine.container import Container
from vmcontainer.engine.context import EngineContext
from vmcontainer.engine.diff import DELETED, Change, changes
from vmcontainer.engine.events import EventBus, container_event
from vmcontainer.engine.maintenance import MaintenanceVMs
from vmcontainer.engine.sessions import Sessions
from vmcontainer.engine.start import Running
from vmcontainer.engine.state import Status
from vmcontainer.errors import Conflict, System
from vmcontainer.image.listing import parse
from vmcontainer.image.staging import staging_dir

log = logging.getLogger(__name__)

MAX_LISTING = 512 << 20
"""The most a container's tree listing may hold (~5 million files); the guest is
not trusted to bound it."""


class FilesMixin:
    """``ctx``, ``events``, ``_running`` and ``maintenance`` are the engine's."""

    ctx: EngineContext
    events: EventBus
    _running: dict[str, Running]
    maintenance: MaintenanceVMs

    @contextlib.asynccontextmanager
    async def _agent(self, c: Container) -> AsyncIterator[Sessions]:
        running = self._running.get(c.id)
        if c.state.status == Status.PAUSED:
            raise Conflict(f"Container {c.id} is paused, unpause the container first")
        if running is not None:
            yield running.sessions
        elif c.state.running:
            raise Conflict(f"Container {c.id} is running in another vmcontainer process")
        else:
            async with self.maintenance.sessions(c) as sessions:
                yield sessions

    @contextlib.asynccontextmanager
    async def _request(self, ref: str, req: dict[str, Any]) -> AsyncIterator[ArchiveRequest]:
        c = self.ctx.store.find(ref)
        for retry in (False, True):
            was_running = c.id in self._running
            async with self._agent(c) as sessions:
                r = ArchiveRequest(sessions, req, ref)
                try:
                    await r.start()
                    started = True
                except Conflict:
                    if retry or not was_running:
                        raise
                    started = False  # its process ended just now: ask its disk instead
                if started:
                    try:
                        yield r
                    finally:
                        await asyncio.shield(r.close())
                    return
            await self._ended(c.id)
            c = self.ctx.store.find(ref)

    async def _ended(self, cid: str) -> None:
        """Wait until the daemon has recorded the end of ``cid``'s VM."""
        running = self._running.get(cid)
        if running is not None:
            await running.wait()
        while cid in self._running:
            await asyncio.sleep(0.01)

    async def archive_stat(self, ref: str, path: str) -> dict[str, Any]:
        """ContainerPathStat of ``path`` (``{"name", "size", "mode", "mtime",
        "linkTarget"}``). Raises ContainerNotFound, ContainerFileNotFound (404),
        Conflict (paused)."""
        async with self._request(ref, {"op": "stat", "path": path, "view": "container"}) as r:
            stat = (await r.info())["stat"]
            await r.finish()
        return dict(stat)

    @contextlib.asynccontextmanager
    async def archive_get(self, ref: str, path: str
                          ) -> AsyncIterator[tuple[dict[str, Any], AsyncIterator[bytes]]]:
        """(stat, the tar stream's chunks) of ``path``; raises as ``archive_stat``
        before the first chunk."""
        async with self._request(ref, {"op": "get", "path": path, "view": "container"}) as r:
            stat = (await r.info())["stat"]
            yield dict(stat), r.data()

    async def archive_put(self, ref: str, path: str, body: AsyncIterator[bytes],
                          no_overwrite_dir_non_dir: bool = False,
                          copy_uid_gid: bool = False) -> None:
        """Extract the tar ``body`` into the directory ``path``. Raises
        ContainerFileNotFound, InvalidParameter (an archive that leaves ``path``),
        System ("extraction point is not a directory", a read-only rootfs: Docker's
        500s)."""
        c = self.ctx.store.find(ref)
        if c.host_config.get("ReadonlyRootfs"):  # Docker 20.10: 500, this text
            raise System("container rootfs is marked read-only")
        req = {"op": "put", "path": path, "view": "container",
               "no_overwrite_dir_non_dir": no_overwrite_dir_non_dir,
               "copy_uid_gid": copy_uid_gid, "user": c.config.get("User") or ""}
        async with self._request(ref, req) as r:
            async for chunk in body:
                await r.send(chunk)
            await r.send(b"")
            await r.finish()

    @contextlib.asynccontextmanager
    async def export(self, ref: str) -> AsyncIterator[AsyncIterator[bytes]]:
        """``docker export``: the container's root filesystem as a tar stream."""
        async with self._request(ref, {"op": "export", "view": "rootfs"}) as r:
            yield r.data()

    async def _changes(self, c: Container, ref: str) -> list[Change]:
        image = self.ctx.images.resolve(c.image_id)
        image_listing = await asyncio.to_thread(self.ctx.images.rootfs_listing, image)
        parts, size = [], 0
        async with self._request(ref, {"op": "list", "view": "rootfs"}) as r:
            async for chunk in r.data():
                size += len(chunk)
                if size > MAX_LISTING:
                    raise System(f"container {c.id}: the tree listing exceeds "
                                 f"{MAX_LISTING >> 20} MiB")
                parts.append(chunk)
            await r.finish()
        data = b"".join(parts)
        try:
            return changes(parse(image_listing), parse(data))
        except ValueError as err:
            raise System(f"container {c.id}: {err}") from err

    async def changes(self, ref: str) -> list[dict[str, Any]]:
        """``docker diff``: ``[{"Path", "Kind"}]`` (0 modified, 1 added, 2 deleted)."""
        c = self.ctx.store.find(ref)
        return [ch.to_json() for ch in await self._changes(c, ref)]

    async def commit(self, ref: str, reference: str | None = None, comment: str = "",
                     author: str = "", changes: Sequence[str] = (),
                     config: dict[str, Any] | None = None) -> str:
        """``docker commit``: a new image of the container's image plus its changes
        as one layer, with the container's config (``config`` keys and ``changes``
        instructions applied). Returns the image ID. Raises InvalidParameter (a bad
        change or reference), Conflict (paused)."""
        from vmcontainer.image.commit import apply_changes, build_layer

        c = self.ctx.store.find(ref)
        run_config = apply_changes({**c.config, **(config or {})}, list(changes))
        found = await self._changes(c, ref)
        keep = [ch.path for ch in found if ch.kind != DELETED]
        deleted = [ch.path for ch in found if ch.kind == DELETED]
        with staging_dir(self.ctx.images.tmp_dir, "commit-layer-") as tmp:
            exported = tmp / "exported.tar"
            async with self._request(ref, {"op": "export", "view": "rootfs", "paths": True}) as r:
                if keep:
                    await r.send(b"\0".join(keep) + b"\0")
                await r.send(b"")
                with exported.open("wb") as out:
                    async for chunk in r.data():
                        out.write(chunk)
                await r.finish()
            layer = tmp / "layer.tar"
            await asyncio.to_thread(build_layer, exported, deleted, layer)
            image = self.ctx.images.resolve(c.image_id)
            created_by = shlex.join([c.path, *c.args])
            image_id = await asyncio.to_thread(self.ctx.images.commit, image, layer, run_config,
                                               reference, comment, author, created_by)
        log.info("container %s committed as %s (%d added/changed, %d deleted)", c.short_id,
                 image_id, sum(ch.kind != DELETED for ch in found), len(deleted),
                 extra={"container": c.id, "op": "commit", "status": "ok"})
        self.events.publish(container_event("commit", c.id, str(c.config.get("Image", "")),
                                            c.name, {"comment": comment} if comment else None))
        return image_id
