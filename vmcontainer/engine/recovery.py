"""The engine across daemon restarts: ``adopt`` the VMs an earlier daemon left
running, ``restore`` what restart policies say to start (moby ``daemon.restore``),
``close`` without stopping any VM. A mixin of ``Engine``, which owns the state."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from vmcontainer.engine.broadcast import Broadcast
from vmcontainer.engine.context import EngineContext
from vmcontainer.engine.health import HealthMonitor
from vmcontainer.engine.maintenance import MaintenanceVMs
from vmcontainer.engine.restart import Restarts
from vmcontainer.engine.start import Running, adopt_container
from vmcontainer.engine.state import Status
from vmcontainer.errors import VmcError

log = logging.getLogger("vmcontainer.engine.engine")


class RecoveryMixin:
    """``ctx``, ``_running``, ``_outputs``, ``_tasks``, ``health``, ``restarts``,
    ``start``, ``_watch`` and ``_spawn`` are the engine's."""

    ctx: EngineContext
    _running: dict[str, Running]
    _outputs: dict[str, Broadcast]
    _tasks: set[asyncio.Task[None]]
    health: HealthMonitor
    maintenance: MaintenanceVMs
    restarts: Restarts
    start: Callable[[str], Awaitable[None]]
    _watch: Callable[[str, Running, Broadcast], Awaitable[None]]
    _spawn: Callable[[Any], None]

    async def adopt(self) -> builtins.list[str]:
        """Watch again every container whose VM still runs (started by an earlier
        daemon or CLI). Returns their IDs; a VM whose agent does not answer is
        killed and recorded as exited."""
        adopted = []
        for c in self.ctx.store.all():  # all() reconciles records of dead VMs
            if c.state.status not in (Status.RUNNING, Status.PAUSED) or c.id in self._running:
                continue
            output = self._outputs.setdefault(c.id, Broadcast())
            try:
                running = await adopt_container(self.ctx, c, output.publish)
            except VmcError as err:
                log.warning("container %s: cannot adopt its VM: %s", c.short_id, err)
                self._outputs.pop(c.id, None)
                remove_vm = c.state.pid
                if remove_vm:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(remove_vm, signal.SIGKILL)
                continue
            self._running[c.id] = running
            self._spawn(self._watch(c.id, running, output))
            self.health.watch(c)
            adopted.append(c.id)
        return adopted

    async def restore(self) -> builtins.list[str]:
        """At daemon start, after ``adopt``: start, as ``docker start`` would and
        all at once, the containers their restart policy says to (moby
        ``daemon.restore``). Returns the IDs started."""
        chosen = self.restarts.to_restore(set(self._running))

        async def start(cid: str) -> str | None:
            try:
                await self.start(cid)
                return cid
            except VmcError as err:
                log.warning("container %s: restart policy: cannot start: %s", cid[:12], err)
                return None

        started = await asyncio.gather(*(start(cid) for cid in chosen))
        return [cid for cid in started if cid]

    async def close(self) -> None:
        """Stop watching (VMs keep running, for ``adopt`` by the next daemon;
        maintenance VMs are stopped)."""
        await self.health.close()
        await self.maintenance.close()
        if self.ctx.templates is not None:
            await self.ctx.templates.close()
        for task in [*self._tasks, *self.restarts.tasks()]:
            task.cancel()
        for running in list(self._running.values()):
            if running.task is not None:
                running.task.cancel()
        await asyncio.gather(*self._tasks, *self.restarts.tasks(),
                             *(r.task for r in self._running.values() if r.task),
                             return_exceptions=True)
        for running in list(self._running.values()):
            await running.machine.release()
        self._running.clear()
