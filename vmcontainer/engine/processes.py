"""The engine's verbs for processes of a running container: stdin for an attach,
the main process's TTY size, ``docker top`` (Engine API v1.45, ContainerResize,
ContainerTop). A mixin of ``Engine``, which owns the state it reads; exec lives
in ``vmcontainer.engine.execs``."""

from __future__ import annotations

import asyncio
from typing import Any

from vmcontainer.engine.context import EngineContext
from vmcontainer.engine.start import Running
from vmcontainer.engine.state import Status
from vmcontainer.engine.top import check_ps_args, ps_ef
from vmcontainer.errors import Conflict, ContainerNotFound
from vmcontainer.guestlink.protocol import MsgType


class ProcessesMixin:
    """``ctx`` and ``_running`` (containers watched) are the engine's."""

    ctx: EngineContext
    _running: dict[str, Running]

    async def stdin_target(self, ref: str, poll_s: float = 0.01) -> Running | None:
        """The Running of ``ref`` once its process runs (for stdin attached before
        ``start``, as ``docker run -i`` does); None when it ended or is gone first."""
        cid = self.ctx.store.find(ref).id
        while True:
            running = self._running.get(cid)
            if running is not None:
                return running
            try:
                c = self.ctx.store.load(cid)
            except ContainerNotFound:
                return None
            if c.state.status not in (Status.CREATED, Status.RUNNING) or \
                    (c.state.status == Status.CREATED and c.state.error):
                return None
            await asyncio.sleep(poll_s)

    async def resize(self, ref: str, rows: int, cols: int) -> None:
        """Set the PTY window size of the main process. Raises Conflict when the
        container is not running (Docker's text)."""
        c = self.ctx.store.find(ref)
        running = self._running.get(c.id)
        if running is None:
            raise Conflict(f"Container {c.id} is not running")
        await running.resize(rows, cols)

    async def top(self, ref: str, ps_args: str = "") -> dict[str, Any]:
        """Engine API ContainerTop: the guest's processes as ``ps -ef``."""
        check_ps_args(ps_args)
        c = self.ctx.store.find(ref)
        running = self._running.get(c.id)
        if running is None:
            raise Conflict(f"Container {c.id} is not running")
        if c.state.status == Status.PAUSED:
            raise Conflict(f"Container {c.id} is paused, unpause the container before top")
        answer = await running.sessions.request(MsgType.TOP, MsgType.PROCESSES)
        return ps_ef(answer)
