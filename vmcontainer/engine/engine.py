"""Engine: the daemon's facade over containers — lifecycle verbs, waiters, live
output for attach, logs, events. The API layer makes one call per request.

One process owns each running VM: here the daemon, which records every exit
(``_watch``), publishes Docker's events and resolves waiters. VMs keep running
when the daemon stops; ``adopt`` takes them back when it starts again.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import os
import signal
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable
from typing import Any

from vmcontainer.engine.broadcast import Broadcast, Chunk
from vmcontainer.engine.container import Container
from vmcontainer.engine.context import EngineContext
from vmcontainer.engine.create import create_container
from vmcontainer.engine.events import EventBus, container_event
from vmcontainer.engine.execs import ExecManager
from vmcontainer.engine.health import HealthMonitor
from vmcontainer.engine.listing import matches, summary
from vmcontainer.engine.logs import LogFollower
from vmcontainer.engine.names import validate_name
from vmcontainer.engine.remove import remove_container
from vmcontainer.engine.signals import parse_signal
from vmcontainer.engine.spec import ContainerSpec
from vmcontainer.engine.start import Running, adopt_container, start_container
from vmcontainer.engine.state import Status
from vmcontainer.engine.top import check_ps_args, ps_ef
from vmcontainer.errors import (
    Conflict,
    ContainerNotFound,
    InvalidParameter,
    NotModified,
    StartError,
    VmcError,
)
from vmcontainer.guestlink.protocol import MsgType

log = logging.getLogger(__name__)

WAIT_CONDITIONS = ("not-running", "next-exit", "removed")
DEFAULT_STOP_TIMEOUT_S = 10
KILL_GRACE_S = 2.0


def _wait_result(code: int) -> dict[str, Any]:
    return {"StatusCode": code, "Error": None}


class Engine:
    """See the module docstring. Methods raise the error kinds of
    ``vmcontainer.errors`` with Docker's messages."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.events = EventBus()
        self._running: dict[str, Running] = {}
        self._outputs: dict[str, Broadcast] = {}
        self._waiters: dict[str, list[tuple[str, asyncio.Future[dict[str, Any]]]]] = (
            defaultdict(list))
        self._tasks: set[asyncio.Task[None]] = set()
        self.execs = ExecManager(self._running.get)
        self.health = HealthMonitor(ctx, self.execs, self._publish)

    # -- reading --------------------------------------------------------------

    def get(self, ref: str) -> Container:
        return self.ctx.store.find(ref)

    def inspect(self, ref: str) -> dict[str, Any]:
        c = self.get(ref)
        return c.inspect(self.ctx.store.dir(c.id))

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
        running = sum(c.state.status == Status.RUNNING for c in cs)
        paused = sum(c.state.status == Status.PAUSED for c in cs)
        return {
            "Containers": len(cs), "ContainersRunning": running, "ContainersPaused": paused,
            "ContainersStopped": len(cs) - running - paused,
            "Images": len(self.ctx.images.list()),
            "Backend": self.ctx.backend.name, "Accelerator": self.ctx.backend.accelerator,
        }

    # -- lifecycle ------------------------------------------------------------

    async def create(self, spec: ContainerSpec) -> Container:
        """Create (building the image's base disk on first use, off the loop)."""
        c = await asyncio.to_thread(create_container, self.ctx.store, self.ctx.images, spec)
        self._publish("create", c)
        return c

    async def start(self, ref: str) -> None:
        c = self.get(ref)
        if c.state.running:
            raise NotModified(f"container {c.id} is already running")
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
        self._resolve(cid, ("not-running", "next-exit"), code)
        if c.host_config.get("AutoRemove"):
            await self._remove_now(cid)

    async def stop(self, ref: str, timeout: float | None = None) -> None:
        """STOPSIGNAL (default SIGTERM), wait ``timeout`` s (default: the container's
        StopTimeout or 10), then end the VM. Raises NotModified when not running."""
        c = self.get(ref)
        running = self._running.get(c.id)
        if running is None:
            if c.state.running:  # running, but not ours: another process owns it
                raise Conflict(f"container {c.id} is run by another vmcontainer process")
            raise NotModified(f"container {c.id} is not running")
        sig = parse_signal(c.config.get("StopSignal") or "SIGTERM")
        t = timeout if timeout is not None and timeout >= 0 else (
            c.config.get("StopTimeout") or DEFAULT_STOP_TIMEOUT_S)
        await asyncio.shield(self._stop(c, running, sig, float(t)))

    async def _stop(self, c: Container, running: Running, sig: int, t: float) -> None:
        self._publish("kill", c, {"signal": str(sig)})
        await running.signal(sig)
        try:
            await asyncio.wait_for(running.wait(), t)
        except TimeoutError:
            self._publish("kill", c, {"signal": str(int(signal.SIGKILL))})
            await running.machine.kill()
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
        running = self._running.get(c.id)
        if running is None:
            raise Conflict(f"Container {c.id} is not running")
        self._publish("kill", c, {"signal": str(n)})
        await running.signal(n)
        if n == signal.SIGKILL:
            try:
                await asyncio.wait_for(running.wait(), KILL_GRACE_S)
            except TimeoutError:
                await running.machine.kill()
                await running.wait()
            await self._settled(c.id)

    async def _settled(self, cid: str) -> None:
        """Wait until ``_watch`` has recorded the exit of ``cid``."""
        while cid in self._running:
            await asyncio.sleep(0.005)

    def waiter(self, ref: str, condition: str = "not-running") -> Awaitable[dict[str, Any]]:
        """Registers now; resolves to ``{"StatusCode": n, "Error": None}``."""
        if condition not in WAIT_CONDITIONS:
            raise InvalidParameter(f"invalid condition: {condition!r}")
        c = self.get(ref)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if condition == "not-running" and c.id not in self._running and not c.state.running:
            fut.set_result(_wait_result(c.state.exit_code))
        else:
            self._waiters[c.id].append((condition, fut))
        return fut

    def _resolve(self, cid: str, conditions: tuple[str, ...], code: int) -> None:
        keep = []
        for cond, fut in self._waiters.pop(cid, []):
            if cond in conditions:
                if not fut.done():
                    fut.set_result(_wait_result(code))
            else:
                keep.append((cond, fut))
        if keep:
            self._waiters[cid] = keep

    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        c = self.get(ref)
        if (c.id in self._running or c.state.running) and not force:
            raise Conflict(
                f'cannot remove container "/{c.name}": container is running: stop the '
                "container before removing or force remove")
        running = self._running.get(c.id)
        if running is not None:
            await running.machine.kill()
            await running.wait()
            await self._settled(c.id)
        await self._remove_now(c.id)

    async def _remove_now(self, cid: str) -> None:
        try:
            c = self.ctx.store.load(cid)
        except ContainerNotFound:  # already gone (auto-remove raced a client)
            return
        remove_container(self.ctx, cid, force=True)
        self._publish("destroy", c)
        code = c.state.exit_code
        self._resolve(cid, WAIT_CONDITIONS, code)

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

    # -- processes ------------------------------------------------------------

    async def stdin_target(self, ref: str, poll_s: float = 0.01) -> Running | None:
        """The Running of ``ref`` once its process runs (for stdin attached before
        ``start``, as ``docker run -i`` does); None when it ended or is gone first."""
        cid = self.get(ref).id
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
        c = self.get(ref)
        running = self._running.get(c.id)
        if running is None:
            raise Conflict(f"Container {c.id} is not running")
        await running.resize(rows, cols)

    async def top(self, ref: str, ps_args: str = "") -> dict[str, Any]:
        """Engine API ContainerTop: the guest's processes as ``ps -ef``."""
        check_ps_args(ps_args)
        c = self.get(ref)
        running = self._running.get(c.id)
        if running is None:
            raise Conflict(f"Container {c.id} is not running")
        if c.state.status == Status.PAUSED:
            raise Conflict(f"Container {c.id} is paused, unpause the container before top")
        answer = await running.sessions.request(MsgType.TOP, MsgType.PROCESSES)
        return ps_ef(answer)

    # -- output ---------------------------------------------------------------

    async def logs(self, ref: str, *, follow: bool = False, since: float = 0,
                   until: float = 0, tail: int = -1, timestamps: bool = False,
                   stdout: bool = True, stderr: bool = True) -> AsyncIterator[Chunk]:
        """json-file entries as (stream, bytes); ``follow`` ends when the container
        stops. ``since``/``until`` are Unix seconds (0: unbounded), ``tail`` -1: all."""
        from vmcontainer.engine.humanize import parse_time
        c = self.get(ref)
        path = self.ctx.store.dir(c.id) / f"{c.id}-json.log"
        wanted = {s for s, on in (("stdout", stdout), ("stderr", stderr)) if on}

        def pick(entries: list[Any]) -> list[Chunk]:
            out = []
            for e in entries:
                t = parse_time(e.time).timestamp()
                if e.stream not in wanted or (since and t < since) or (until and t > until):
                    continue
                out.append((e.stream, (e.time.encode() + b" " if timestamps else b"") + e.data))
            return out

        reader = LogFollower(path)
        try:
            chosen = pick(reader.read_new())
            for chunk in chosen[-tail:] if tail > 0 else chosen if tail < 0 else []:
                yield chunk
            while follow:
                done = not self._still_running(c.id)
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
        the next one, for a container not started yet) until its process ends."""
        c = self.get(ref)
        live: AsyncIterator[Chunk] | None = None
        if stream and (c.id in self._outputs or c.state.status == Status.CREATED
                       or c.id in self._running):
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

    async def adopt(self) -> builtins.list[str]:
        """Watch again every container whose VM still runs (started by an earlier
        daemon or CLI). Returns their IDs; a VM whose agent does not answer is
        killed and recorded as exited."""
        adopted = []
        for c in self.ctx.store.all():  # all() reconciles records of dead VMs
            if not c.state.running or c.id in self._running:
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

    async def close(self) -> None:
        """Stop watching (VMs keep running, for ``adopt`` by the next daemon)."""
        await self.health.close()
        for task in list(self._tasks):
            task.cancel()
        for running in list(self._running.values()):
            if running.task is not None:
                running.task.cancel()
        await asyncio.gather(*self._tasks, *(r.task for r in self._running.values() if r.task),
                             return_exceptions=True)
        for running in list(self._running.values()):
            await running.machine.release()
        self._running.clear()
