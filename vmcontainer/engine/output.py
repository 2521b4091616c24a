"""Container output for the engine: ``docker logs`` from the json-file log and
``docker attach`` to the live output (Engine API v1.45, ContainerLogs and
ContainerAttach). A mixin of ``Engine``, which owns the state it reads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from vmcontainer.engine.broadcast import Broadcast, Chunk
from vmcontainer.engine.context import EngineContext
from vmcontainer.engine.logs import LogFollower
from vmcontainer.engine.start import Running
from vmcontainer.engine.state import Status
from vmcontainer.errors import ContainerNotFound


class OutputMixin:
    """``ctx``, ``_running`` (containers watched) and ``_outputs`` (live output of
    each run) are the engine's."""

    ctx: EngineContext
    _running: dict[str, Running]
    _outputs: dict[str, Broadcast]

    def logs(self, ref: str, *, follow: bool = False, since: float = 0,
             until: float = 0, tail: int = -1, timestamps: bool = False,
             stdout: bool = True, stderr: bool = True) -> AsyncIterator[Chunk]:
        """json-file entries as (stream, bytes); ``follow`` ends when the container
        stops. ``since``/``until`` are Unix seconds (0: unbounded), ``tail`` -1: all.

        The log file is opened here, before the caller answers its client: a client
        may remove the container before it reads the stream (docker-py's ``run``
        does: logs, wait, remove, then read), and the open file outlives that."""
        c = self.ctx.store.find(ref)
        reader = LogFollower(self.ctx.store.dir(c.id) / f"{c.id}-json.log")
        wanted = {s for s, on in (("stdout", stdout), ("stderr", stderr)) if on}
        return self._read_log(c.id, reader, follow, since, until, tail, timestamps, wanted)

    async def _read_log(self, cid: str, reader: LogFollower, follow: bool, since: float,
                        until: float, tail: int, timestamps: bool,
                        wanted: set[str]) -> AsyncIterator[Chunk]:
        from vmcontainer.engine.humanize import parse_time

        def pick(entries: list[Any]) -> list[Chunk]:
            out = []
            for e in entries:
                t = parse_time(e.time).timestamp()
                if e.stream not in wanted or (since and t < since) or (until and t > until):
                    continue
                out.append((e.stream, (e.time.encode() + b" " if timestamps else b"") + e.data))
            return out

        try:
            chosen = pick(reader.read_new())
            for chunk in chosen[-tail:] if tail > 0 else chosen if tail < 0 else []:
                yield chunk
            while follow:
                done = not self._still_running(cid)
                for chunk in pick(reader.read_new()):  # the open file outlives a removal
                    yield chunk
                if done:
                    return
                await asyncio.sleep(0.05)
        finally:
            reader.close()

    def _still_running(self, cid: str) -> bool:
        if cid in self._running:
            return True
        try:
            return self.ctx.store.load(cid).state.running
        except ContainerNotFound:
            return False

    def attach(self, ref: str, *, logs: bool = False, stream: bool = True,
               stdout: bool = True, stderr: bool = True) -> AsyncIterator[Chunk]:
        """Subscribes now: with ``stream``, the live output of the current run (or of
        the next one, for a container created or exited: ``docker start -a`` attaches
        before it starts, as moby's attach waits on a stopped container) until its
        process ends or the container is removed."""
        c = self.ctx.store.find(ref)
        live: AsyncIterator[Chunk] | None = None
        if stream and (c.id in self._outputs or c.id in self._running
                       or c.state.status in (Status.CREATED, Status.EXITED)):
            live = self._outputs.setdefault(c.id, Broadcast()).subscribe()
        wanted = {s for s, on in (("stdout", stdout), ("stderr", stderr)) if on}
        return self._attached(c.id, logs, live, wanted)

    async def _attached(self, cid: str, logs: bool, live: AsyncIterator[Chunk] | None,
                        wanted: set[str]) -> AsyncIterator[Chunk]:
        if logs:
            async for chunk in self.logs(cid, stdout="stdout" in wanted,
                                         stderr="stderr" in wanted):
                yield chunk
        if live is not None:
            async for stream, data in live:
                if stream in wanted:
                    yield stream, data
