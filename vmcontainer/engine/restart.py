"""Restart policies (Docker's ``HostConfig.RestartPolicy``, Engine API v1.45), after
moby's ``restartmanager/restartmanager.go`` and ``daemon/monitor.go``.

Policies: ``no`` (or ""), ``always``, ``unless-stopped``, ``on-failure`` with
``MaximumRetryCount`` (0: unlimited). After an exit the container is started again
after a back-off: 100 ms, doubled after each restart up to 1 min, back to 100 ms
once a run lasted 10 s or more. ``docker stop``/``kill`` cancel the policy until
the next explicit start (moby: ``ExitOnNext``); ``docker start`` resets it.

``RestartManager`` decides (pure logic); ``Restarts`` holds one per container,
records ``restarting`` and runs the pending restarts (asyncio tasks), which
stop/kill/remove cancel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from vmcontainer.engine.container import Container
from vmcontainer.engine.context import EngineContext
from vmcontainer.engine.humanize import parse_time
from vmcontainer.engine.state import Status
from vmcontainer.errors import VmcError

log = logging.getLogger(__name__)

POLICIES = ("", "no", "always", "unless-stopped", "on-failure")
FIRST_DELAY_S = 0.1
MAX_DELAY_S = 60.0
RESET_AFTER_S = 10.0


@dataclass
class RestartManager:
    """One container's restart state: ``policy`` and ``max_retries`` as in its
    HostConfig, the current back-off ``delay`` (0: none yet), ``count`` restarts
    since the last explicit start, ``cancelled`` by stop/kill."""

    policy: str
    max_retries: int = 0
    delay: float = 0.0
    count: int = 0
    cancelled: bool = False

    @classmethod
    def of(cls, c: Container) -> RestartManager:
        rp = c.host_config.get("RestartPolicy") or {}
        return cls(str(rp.get("Name") or "no"), int(rp.get("MaximumRetryCount") or 0))

    def decide(self, exit_code: int, manually_stopped: bool, ran_s: float) -> float | None:
        """After an exit: seconds to wait before starting again, or None for no
        restart (moby ShouldRestart)."""
        if self.policy in ("", "no") or self.cancelled:
            return None
        if ran_s >= RESET_AFTER_S:
            self.delay = 0.0
        self.delay = FIRST_DELAY_S if self.delay == 0 else min(self.delay * 2, MAX_DELAY_S)
        if self.policy == "always":
            restart = True
        elif self.policy == "unless-stopped":
            restart = not manually_stopped
        else:  # on-failure
            restart = exit_code != 0 and (self.max_retries == 0 or self.count < self.max_retries)
        if not restart:
            return None
        self.count += 1
        return self.delay


def start_on_daemon_start(c: Container) -> bool:
    """Whether the daemon starts ``c`` (not running) when it starts: ``always``;
    ``unless-stopped`` and ``on-failure`` (after a non-zero exit) unless the user
    stopped it (moby ``restore``: ShouldRestart with a fresh manager). Containers
    never started are left alone."""
    if c.state.started_at.startswith("0001-"):
        return False
    policy = RestartManager.of(c).policy
    if policy == "always":
        return True
    if policy == "unless-stopped":
        return not c.manually_stopped
    if policy == "on-failure":
        return c.state.exit_code != 0 and not c.manually_stopped
    return False


def run_seconds(c: Container) -> float:
    """How long the last run of ``c`` lasted (StartedAt to FinishedAt)."""
    try:
        return (parse_time(c.state.finished_at) - parse_time(c.state.started_at)).total_seconds()
    except ValueError:
        return 0.0


def record_exited(ctx: EngineContext, cid: str) -> Container:
    """Record a ``restarting`` container as exited (its last exit code kept)."""
    c = ctx.store.load(cid)
    if c.state.status == Status.RESTARTING:
        c = ctx.update(cid, state=c.state.move(Status.EXITED))
    return c


class Restarts:
    """Restart managers and pending restarts of all containers of one engine;
    ``boot`` starts a container record (the engine's start without its resets)."""

    def __init__(self, ctx: EngineContext, boot: Callable[[Container], Awaitable[None]]) -> None:
        self._ctx = ctx
        self._boot = boot
        self._managers: dict[str, RestartManager] = {}
        self._pending: dict[str, asyncio.Task[None]] = {}
        self._booting: dict[str, asyncio.Task[None]] = {}

    def manager(self, c: Container) -> RestartManager:
        m = self._managers.get(c.id)
        if m is None:
            m = self._managers[c.id] = RestartManager.of(c)
        return m

    def reset(self, c: Container) -> None:
        """An explicit start: a fresh manager (policy re-read, back-off and count 0)."""
        self._managers[c.id] = RestartManager.of(c)

    def set_policy(self, c: Container) -> None:
        """``docker update --restart``: the policy of ``c``'s record from now on; the
        back-off and count go on (moby ``UpdateMonitor``, restartmanager SetPolicy)."""
        m = self.manager(c)
        fresh = RestartManager.of(c)
        m.policy, m.max_retries = fresh.policy, fresh.max_retries

    def cancel_policy(self, cid: str) -> None:
        """stop/kill: no restart after the next exits, until ``reset``."""
        m = self._managers.get(cid)
        if m is not None:
            m.cancelled = True

    def forget(self, cid: str) -> None:
        self._managers.pop(cid, None)

    def after_exit(self, c: Container) -> bool:
        """``c``'s record has just been marked exited: when its policy says so,
        record ``restarting`` (RestartCount + 1, as moby SetRestarting) and start it
        again after the back-off. Returns whether a restart is scheduled."""
        if c.state.status != Status.EXITED:
            return False
        delay = self.manager(c).decide(c.state.exit_code, c.manually_stopped, run_seconds(c))
        if delay is None:
            return False
        self._ctx.update(c.id, state=c.state.move(Status.RESTARTING),
                         restart_count=c.restart_count + 1)
        cid = c.id

        async def later() -> None:
            await asyncio.sleep(delay)
            self._pending.pop(cid, None)
            self._booting[cid] = task
            try:
                await self._restart(cid)
            finally:
                self._booting.pop(cid, None)

        task = asyncio.ensure_future(later())
        self._pending[cid] = task
        return True

    async def _restart(self, cid: str) -> None:
        """A failed start leaves the container exited (moby ``daemon/monitor.go``)."""
        try:
            await self._boot(self._ctx.store.load(cid))
        except VmcError as err:
            log.warning("container %s: restart failed: %s", cid[:12], err)
            with contextlib.suppress(VmcError):
                record_exited(self._ctx, cid)

    async def cancel(self, cid: str) -> Container | None:
        """stop/kill/remove: cancel the policy. A restart waiting out its back-off
        is dropped and the container recorded as exited: returns that record. A
        restart already booting is awaited to its end instead (the container then
        runs, or has failed to start): returns None, as when nothing was pending."""
        self.cancel_policy(cid)
        booting = self._booting.get(cid)
        if booting is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(booting)
            return None
        task = self._pending.pop(cid, None)
        if task is None:
            return None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return record_exited(self._ctx, cid)

    def to_restore(self, owned: set[str]) -> list[str]:
        """At daemon start, after adoption: the containers to start by their policy
        (``start_on_daemon_start``); ``owned``: IDs already watched. Records a
        previous daemon left ``restarting`` become exited first."""
        chosen = []
        for c in self._ctx.store.all():
            if c.id in owned or c.state.status in (Status.RUNNING, Status.PAUSED):
                continue
            if c.state.status == Status.RESTARTING:
                c = record_exited(self._ctx, c.id)
            if c.state.status == Status.EXITED and start_on_daemon_start(c):
                chosen.append(c.id)
        return chosen

    def tasks(self) -> list[asyncio.Task[None]]:
        return [*self._pending.values(), *self._booting.values()]
