"""Engine: the daemon's facade over containers — lifecycle verbs, waiters, live
output for attach, logs, events. The API layer makes one call per request.

One process owns each running VM: here the daemon, which records every exit
(``_watch``), publishes Docker's events, resolves waiters and applies the restart
policy (``engine/restart.py``). VMs keep running when the daemon stops; ``adopt``
takes them back when it starts again, paused ones staying paused, and ``restore``
starts those the restart policy says to (moby ``daemon.restore``).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import signal
from collections.abc import Awaitable
from typing import Any

from vmcontainer.engine.broadcast import Broadcast
from vmcontainer.engine.container import Container
from vmcontainer.engine.context import EngineContext
from vmcontainer.engine.create import create_container
from vmcontainer.engine.events import EventBus, container_event
from vmcontainer.engine.execs import ExecManager
from vmcontainer.engine.files import FilesMixin
from vmcontainer.engine.health import HealthMonitor
from vmcontainer.engine.listing import matches, summary
from vmcontainer.engine.maintenance import MaintenanceVMs
from vmcontainer.engine.mounts import inspect_mounts, remove_anonymous
from vmcontainer.engine.names import validate_name
from vmcontainer.engine.networks import NetworksMixin
from vmcontainer.engine.output import OutputMixin
from vmcontainer.engine.pause import pause, unpause
from vmcontainer.engine.processes import ProcessesMixin
from vmcontainer.engine.recovery import RecoveryMixin
from vmcontainer.engine.remove import remove_container
from vmcontainer.engine.resources import updated_host_config
from vmcontainer.engine.restart import Restarts
from vmcontainer.engine.signals import parse_signal
from vmcontainer.engine.spec import ContainerSpec
from vmcontainer.engine.start import Running, start_container
from vmcontainer.engine.state import Status
from vmcontainer.engine.volumes import VolumesMixin, volume_event
from vmcontainer.engine.waiters import WAIT_CONDITIONS, Waiters
from vmcontainer.errors import (
    Conflict,
    ContainerNotFound,
    InvalidParameter,
    NotModified,
    StartError,
    VmcError,
)

log = logging.getLogger(__name__)

DEFAULT_STOP_TIMEOUT_S = 10
KILL_GRACE_S = 2.0


class Engine(OutputMixin, ProcessesMixin, RecoveryMixin, VolumesMixin, FilesMixin,
             NetworksMixin):
    """See the module docstring. Methods raise the error kinds of
    ``vmcontainer.errors`` with Docker's messages."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.events = EventBus()
        self._running: dict[str, Running] = {}
        self._outputs: dict[str, Broadcast] = {}
        self._waiters = Waiters()
        self._tasks: set[asyncio.Task[None]] = set()
        self.restarts = Restarts(ctx, self._boot)
        self.execs = ExecManager(self._running.get)
        self.health = HealthMonitor(ctx, self.execs, self._publish)
        self.maintenance = MaintenanceVMs(ctx)

    # -- reading --------------------------------------------------------------

    def get(self, ref: str) -> Container:
        return self.ctx.store.find(ref)

    def inspect(self, ref: str) -> dict[str, Any]:
        c = self.get(ref)
        doc = c.inspect(self.ctx.store.dir(c.id))
        doc["ExecIDs"] = self.execs.running_of_container(c.id) or None
        doc["Mounts"] = inspect_mounts(self.ctx.volumes, c)
        return doc

    def list(self, all: bool = False, limit: int = -1,
             filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
        """Docker's ContainerSummary list, newest first."""
        images = self.ctx.images.list()
        names = {i.id: (i.repo_tags[0] if i.repo_tags else i.id) for i in images}
        refs = {t: i.id for i in images for t in i.repo_tags}
        refs.update({t.split(":")[0]: i.id for i in images for t in i.repo_tags
                     if t.endswith(":latest")})
        out = []
        for c in self.ctx.store.all():
            if not (all or c.state.running or (filters and "status" in filters)):
                continue
            if filters and not matches(c, filters, refs):
                continue
            out.append(summary(c, names))
        return out[:limit] if limit > 0 else out

    def info(self) -> dict[str, Any]:
        cs = self.ctx.store.all()
        running = sum(c.state.status in (Status.RUNNING, Status.RESTARTING) for c in cs)
        paused = sum(c.state.status == Status.PAUSED for c in cs)
        return {
            "Containers": len(cs), "ContainersRunning": running, "ContainersPaused": paused,
            "ContainersStopped": len(cs) - running - paused,
            "Images": len(self.ctx.images.list()),
            "Backend": self.ctx.backend.name, "Accelerator": self.ctx.backend.accelerator,
            "BackendStatus": [list(kv) for kv in (
                *self.ctx.backend.status(),
                *(self.ctx.templates.status() if self.ctx.templates else
                  [("Warm start", "on" if self.ctx.settings.warm_start else "off")]))],
        }

    # -- lifecycle ------------------------------------------------------------

    async def create(self, spec: ContainerSpec) -> Container:
        """Create (building the image's base disk on first use, off the loop)."""
        c = await asyncio.to_thread(create_container, self.ctx.store, self.ctx.images, spec,
                                    self.ctx.volumes)
        self._publish("create", c)
        return c

    async def start(self, ref: str) -> None:
        """Docker's start: resets the restart policy's count and back-off and the
        user's stop (moby ``containerStart`` with resetRestartManager)."""
        c = self.get(ref)
        if c.state.status == Status.PAUSED:
            raise Conflict("cannot start a paused container, try unpause instead")
        if c.state.running:
            raise NotModified(f"container {c.id} is already running")
        self.restarts.reset(c)
        if c.restart_count or c.manually_stopped:
            c = self.ctx.update(c.id, restart_count=0, manually_stopped=False)
        await self._boot(c)

    async def _boot(self, c: Container) -> None:
        """Boot ``c`` (created, exited or restarting) and watch it."""
        await self.maintenance.release(c.id)  # its disk is the container's now
        output = self._outputs.setdefault(c.id, Broadcast())
        try:
            running = await start_container(self.ctx, c.id, output.publish)
        except StartError as err:
            self._outputs.pop(c.id, None)
            output.close()
            self._resolve(c.id, ("next-exit",), err.exit_code)
            if c.host_config.get("AutoRemove"):
                await self._remove_now(c.id)
            raise
        except VmcError:
            self._outputs.pop(c.id, None)
            output.close()
            self._resolve(c.id, ("next-exit",), 125)
            if c.host_config.get("AutoRemove"):  # as Docker: --rm also when boot fails
                await self._remove_now(c.id)
            raise
        except BaseException:
            self._outputs.pop(c.id, None)
            output.close()
            raise
        self._running[c.id] = running
        self._publish("start", c)
        self._spawn(self._watch(c.id, running, output))
        self.health.watch(self.get(c.id))

    async def _watch(self, cid: str, running: Running, output: Broadcast) -> None:
        """The one exit path of a daemon-owned VM."""
        code = await running.wait()
        self.health.stop(cid)
        self._running.pop(cid, None)
        self._outputs.pop(cid, None)
        output.close()
        c = self.ctx.store.load(cid)
        self._publish("die", c, {"exitCode": str(code)})
        restarting = self.restarts.after_exit(c)  # waiters fire on each exit, as moby's
        self._resolve(cid, ("not-running", "next-exit"), code)
        if not restarting and c.host_config.get("AutoRemove"):
            await self._remove_now(cid)

    async def stop(self, ref: str, timeout: float | None = None) -> None:
        """STOPSIGNAL (default SIGTERM), wait ``timeout`` s (default: the container's
        StopTimeout or 10), then end the VM. Raises NotModified when not running."""
        c = self.get(ref)
        if c.state.status == Status.RESTARTING:
            stopped = await self.restarts.cancel(c.id)
            if stopped is not None:  # Docker: no kill, no die; "stop", waiters get the code
                self._mark_stopped(stopped)
                self._publish("stop", stopped)
                self._resolve(c.id, ("not-running", "next-exit"), stopped.state.exit_code)
                return
            c = self.get(c.id)  # the restart was booting: it runs now (or failed)
        running = self._running.get(c.id)
        if running is None:
            if c.state.running:  # running, but not ours: another process owns it
                raise Conflict(f"container {c.id} is run by another vmcontainer process")
            raise NotModified(f"container {c.id} is not running")
        self.restarts.cancel_policy(c.id)
        self._mark_stopped(c)
        sig = parse_signal(c.config.get("StopSignal") or "SIGTERM")
        t = timeout if timeout is not None and timeout >= 0 else (
            c.config.get("StopTimeout") or DEFAULT_STOP_TIMEOUT_S)
        await asyncio.shield(self._stop(c, running, sig, float(t)))

    async def _stop(self, c: Container, running: Running, sig: int, t: float) -> None:
        self._publish("kill", c, {"signal": str(sig)})
        await running.signal(sig)
        await self._unpause_for_signal(c.id, running)
        try:
            await asyncio.wait_for(running.wait(), t)
        except TimeoutError:
            self._publish("kill", c, {"signal": str(int(signal.SIGKILL))})
            await running.kill()
            await running.wait()
        await self._settled(c.id)
        self._publish("stop", c)

    async def restart(self, ref: str, timeout: float | None = None) -> None:
        with contextlib.suppress(NotModified):
            await self.stop(ref, timeout)
        await self.start(ref)
        self._publish("restart", self.get(ref))

    async def kill(self, ref: str, sig: str | int = "KILL") -> None:
        """Send a signal to the container's process. SIGKILL ends the VM if the
        guest has not reported the exit within KILL_GRACE_S."""
        n = parse_signal(sig)
        c = self.get(ref)
        if c.state.status == Status.RESTARTING:
            stopped = await self.restarts.cancel(c.id)
            if stopped is not None:
                self._mark_stopped(stopped)
                self._resolve(c.id, ("not-running", "next-exit"), stopped.state.exit_code)
                return  # Docker: 204, no event
            c = self.get(c.id)
        running = self._running.get(c.id)
        if running is None:
            raise Conflict(f"Container {c.id} is not running")
        stop_signal = c.config.get("StopSignal")
        ends_run = not stop_signal or n == signal.SIGKILL or n == parse_signal(stop_signal)
        if ends_run:  # moby killWithSignal: ExitOnNext, and a paused container resumes
            self.restarts.cancel_policy(c.id)
        self._mark_stopped(c)
        self._publish("kill", c, {"signal": str(n)})
        await running.signal(n)
        if ends_run:
            await self._unpause_for_signal(c.id, running)
        if n == signal.SIGKILL:
            try:
                await asyncio.wait_for(running.wait(), KILL_GRACE_S)
            except TimeoutError:
                await running.kill()
                await running.wait()
            await self._settled(c.id)

    def _mark_stopped(self, c: Container) -> None:
        """moby HasBeenManuallyStopped: ``unless-stopped`` stays down at daemon start."""
        if not c.manually_stopped:
            with contextlib.suppress(ContainerNotFound):
                self.ctx.update(c.id, manually_stopped=True)

    async def _unpause_for_signal(self, cid: str, running: Running) -> None:
        """Resume a paused container after signalling it, so that the signal (waiting
        in the agent channel) takes effect, as Docker does for stop and kill."""
        c = self.ctx.store.load(cid)
        if c.state.status == Status.PAUSED:
            with contextlib.suppress(VmcError):
                await unpause(self.ctx, c, running.machine)
                self._publish("unpause", c)

    async def pause(self, ref: str) -> None:
        """``docker pause`` (Engine API v1.45, ContainerPause); errors: see engine/pause."""
        c = self.get(ref)
        running = self._running.get(c.id)
        c = await pause(self.ctx, c, running.machine if running else None)
        self._publish("pause", c)

    async def unpause(self, ref: str) -> None:
        """``docker unpause`` (Engine API v1.45, ContainerUnpause)."""
        c = self.get(ref)
        running = self._running.get(c.id)
        c = await unpause(self.ctx, c, running.machine if running else None)
        self._publish("unpause", c)

    async def _settled(self, cid: str) -> None:
        """Wait until ``_watch`` has recorded the exit of ``cid``."""
        while cid in self._running:
            await asyncio.sleep(0.005)

    def waiter(self, ref: str, condition: str = "not-running") -> Awaitable[dict[str, Any]]:
        """Registers now; resolves to ``{"StatusCode": n, "Error": None}``
        (``waiters.Waiters.add``)."""
        c = self.get(ref)
        running = c.id in self._running or c.state.running
        return self._waiters.add(c.id, condition, running, c.state.exit_code)

    def _resolve(self, cid: str, conditions: tuple[str, ...], code: int) -> None:
        self._waiters.resolve(cid, conditions, code)

    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        c = self.get(ref)
        if (c.id in self._running or c.state.running) and not force:
            if c.state.status == Status.PAUSED:
                raise Conflict(f'cannot remove container "/{c.name}": container is paused '
                               "and must be unpaused first")
            status = c.state.status if c.state.running else Status.RUNNING
            raise Conflict(
                f'cannot remove container "/{c.name}": container is {status}: stop the '
                "container before removing or force remove")
        await self.restarts.cancel(c.id)
        running = self._running.get(c.id)
        if running is not None:
            await running.kill()
            await running.wait()
            await self._settled(c.id)
        await self._remove_now(c.id, volumes)

    async def _remove_now(self, cid: str, volumes: bool = True) -> None:
        """Remove the container; with ``volumes`` (``rm -v``, ``--rm``) its
        anonymous volumes too."""
        await self.maintenance.release(cid)
        try:
            c = self.ctx.store.load(cid)
        except ContainerNotFound:  # already gone (auto-remove raced a client)
            return
        remove_container(self.ctx, cid, force=True)
        output = self._outputs.pop(cid, None)
        if output is not None:  # clients attached for a next run that will not come
            output.close()
        try:
            await self.ctx.backend.discard(cid)
        except VmcError as err:
            log.warning("container %s: %s", cid[:12], err)
        if volumes:
            for name in remove_anonymous(self.ctx.volumes, self.ctx.store, c.mounts, cid):
                self.events.publish(volume_event("destroy", name))
        self.restarts.forget(cid)
        self._publish("destroy", c)
        code = c.state.exit_code
        self._resolve(cid, WAIT_CONDITIONS, code)

    def update(self, ref: str, changes: dict[str, Any]) -> builtins.list[str]:
        """``docker update`` (Engine API v1.45 ContainerUpdate): ``changes`` holds
        the fields the request set (see ``resources.updated_host_config``). The new
        RestartPolicy applies from now on; Memory and NanoCpus at the next boot (a
        running VM's are refused). Returns the Warnings; event ``update``."""
        c = self.get(ref)
        running = c.state.status in (Status.RUNNING, Status.PAUSED)
        host_config, warnings = updated_host_config(c.id, c.host_config, changes, running)
        c = self.ctx.update(c.id, host_config=host_config)
        if changes.get("RestartPolicy") is not None:
            self.restarts.set_policy(c)
        self._publish("update", c)
        return warnings

    def rename(self, ref: str, new_name: str) -> None:
        name = validate_name(new_name)
        with self.ctx.store.locked():
            c = self.get(ref)
            if c.name == name:
                raise InvalidParameter(f"Renaming a container with the same name as its "
                                       f"current name: {name}")
            self.ctx.store.check_name_free(name)
            old = c.name
            c = self.ctx.update(c.id, name=name)
            self.network_renamed(c.id)
        self._publish("rename", c, {"oldName": "/" + old})

    def prune(self) -> dict[str, Any]:
        deleted = []
        for c in self.ctx.store.all():
            if c.state.status in (Status.EXITED, Status.CREATED, Status.DEAD) \
                    and c.id not in self._running:
                remove_container(self.ctx, c.id, force=False)
                self._publish("destroy", c)
                deleted.append(c.id)
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": 0}

    # -- plumbing -------------------------------------------------------------

    def _publish(self, action: str, c: Container, extra: dict[str, str] | None = None) -> None:
        self.events.publish(container_event(action, c.id, str(c.config.get("Image", "")),
                                            c.name, extra))

    def publish(self, action: str, c: Container, extra: dict[str, str] | None = None) -> None:
        """A container event (e.g. ``exec_start: sh``) on the event bus."""
        self._publish(action, c, extra)

    def spawn(self, coro: Any) -> None:
        """Run ``coro`` as a task the engine cancels at ``close``."""
        self._spawn(coro)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
