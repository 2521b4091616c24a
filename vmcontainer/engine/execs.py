"""``docker exec``: processes started in a running container's VM by its agent
(PROTOCOL.md ``EXEC``), one agent session each.

Exec instances live in the daemon's memory, as Docker's do: they are gone after a
daemon restart, and an instance whose container ended reports the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from vmcontainer.engine.broadcast import Chunk
from vmcontainer.engine.container import Container
from vmcontainer.engine.process import process_env
from vmcontainer.engine.start import Running, console_size
from vmcontainer.engine.state import Status
from vmcontainer.errors import Conflict, NotFound, StartError
from vmcontainer.guestlink.protocol import MsgType

#: How long a finished exec instance is kept for ``GET /exec/{id}/json`` when
#: nobody asks (moby keeps them until the container goes; we bound the memory).
KEEP_FINISHED_S = 600.0


class ExecNotFound(NotFound):
    pass


@dataclass
class ExecInstance:
    """One ``POST /containers/{id}/exec``. ``config`` is the create body as given
    (Engine API v1.45, ContainerExec: Cmd, Env, User, WorkingDir, Tty, AttachStdin,
    AttachStdout, AttachStderr, DetachKeys, Privileged, ConsoleSize)."""

    id: str
    container_id: str
    config: dict[str, Any]
    running: bool = False
    started: bool = False
    exit_code: int | None = None
    pid: int = 0
    session: int = 0
    finished_at: float = 0.0
    done: asyncio.Event = field(default_factory=asyncio.Event)
    handle: ExecStarted | None = field(default=None, repr=False)

    def inspect(self) -> dict[str, Any]:
        """Engine API v1.45, ExecInspect."""
        cmd = list(self.config.get("Cmd") or [])
        return {
            "ID": self.id, "Running": self.running, "ExitCode": self.exit_code,
            "ProcessConfig": {"tty": bool(self.config.get("Tty")),
                              "entrypoint": cmd[0] if cmd else "",
                              "arguments": cmd[1:],
                              "privileged": bool(self.config.get("Privileged")),
                              "user": self.config.get("User") or ""},
            "OpenStdin": bool(self.config.get("AttachStdin")),
            "OpenStderr": bool(self.config.get("AttachStderr")),
            "OpenStdout": bool(self.config.get("AttachStdout")),
            "CanRemove": False, "ContainerID": self.container_id,
            "DetachKeys": self.config.get("DetachKeys") or "",
            "Pid": self.pid,
        }


class ExecStarted:
    """A started exec: its output until it ends (``output``), its stdin, resize.

    Its session's frames are consumed from the start by a task of its own, so the
    process never stalls the VM's other sessions and its end is recorded even when
    no client reads (``docker exec -d``, or a client that detached)."""

    def __init__(self, inst: ExecInstance, running: Running) -> None:
        self.inst = inst
        self._running = running
        self._queue: asyncio.Queue[Chunk | None] = asyncio.Queue()
        self._detached = False
        self._task = asyncio.ensure_future(self._consume())

    async def _consume(self) -> None:
        try:
            async for frame in self._running.sessions.frames(self.inst.session):
                if frame.type in (MsgType.STDOUT, MsgType.STDERR) and not self._detached:
                    stream = "stdout" if frame.type == MsgType.STDOUT else "stderr"
                    self._queue.put_nowait((stream, frame.payload))
                elif frame.type == MsgType.EXIT:
                    self.inst.exit_code = int(frame.json().get("exit_code", 255))
        finally:
            if self.inst.exit_code is None:
                self.inst.exit_code = 137  # the VM went away first
            self.inst.running = False
            self.inst.finished_at = time.monotonic()
            self.inst.done.set()
            self._queue.put_nowait(None)

    def detach(self) -> None:
        """Nobody reads the output any more: drop it from now on."""
        self._detached = True
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is None:
                self._queue.put_nowait(None)
                break

    async def write_stdin(self, data: bytes) -> None:
        if self.inst.running:
            await self._running.write_stdin(data, self.inst.session)

    async def kill(self) -> None:
        """SIGKILL to the exec'd process (a timed-out health probe)."""
        if self.inst.running:
            await self._running.signal(9, self.inst.session)

    async def resize(self, rows: int, cols: int) -> None:
        if self.inst.running:
            await self._running.resize(rows, cols, self.inst.session)

    async def output(self) -> AsyncIterator[Chunk]:
        """(stream, bytes) as the process writes them, until it ends; the instance
        then holds the exit code (137 when the VM went away first)."""
        while (item := await self._queue.get()) is not None:
            yield item
        self._queue.put_nowait(None)


class ExecManager:
    """The daemon's exec instances. ``running_of(cid)`` gives the Running of a
    container the daemon owns, or None."""

    def __init__(self, running_of: Callable[[str], Running | None]) -> None:
        self._running_of = running_of
        self._execs: dict[str, ExecInstance] = {}

    def create(self, c: Container, config: dict[str, Any]) -> ExecInstance:
        """Raises Conflict (Docker's texts) when ``c`` is not running or paused."""
        self._forget_old()
        if c.state.status == Status.PAUSED:
            raise Conflict(f"Container {c.id} is paused, unpause the container before exec")
        if self._running_of(c.id) is None:
            raise Conflict(f"Container {c.id} is not running")
        inst = ExecInstance(secrets.token_hex(32), c.id, config)
        self._execs[inst.id] = inst
        return inst

    def get(self, exec_id: str) -> ExecInstance:
        inst = self._execs.get(exec_id)
        if inst is None:
            raise ExecNotFound(f"No such exec instance: {exec_id}")
        return inst

    def running_of_container(self, cid: str) -> list[str]:
        """IDs of the container's execs still running (inspect's ExecIDs)."""
        return [i.id for i in self._execs.values() if i.container_id == cid and i.running]

    def check_startable(self, inst: ExecInstance, c: Container) -> Running:
        """The container's Running. Raises Conflict (Docker's texts) when the exec
        already ran or runs, or the container is not running or paused."""
        if inst.started:
            raise Conflict(f"Error: Exec command {inst.id} is already running"
                           if inst.running else
                           f"Error: Exec command {inst.id} has already run")
        running = self._running_of(inst.container_id)
        if running is None:
            raise Conflict(f"Container {inst.container_id} is not running")
        if c.state.status == Status.PAUSED:
            raise Conflict(f"Container {c.id} is paused, unpause the container before exec")
        return running

    async def resize(self, inst: ExecInstance, rows: int, cols: int) -> None:
        if inst.handle is not None:
            await inst.handle.resize(rows, cols)

    async def start(self, inst: ExecInstance, c: Container,
                    console: list[int] | None = None) -> ExecStarted:
        """Start the process. Raises Conflict when it already ran or the container
        stopped meanwhile; StartError (126/127/125 and Docker's wording) when it
        cannot be executed — the instance then holds that exit code."""
        running = self.check_startable(inst, c)
        inst.started = True
        args = list(inst.config.get("Cmd") or [])
        if not args or not args[0]:
            inst.exit_code = 127
            inst.done.set()
            raise StartError(f'exec: "{args[0] if args else ""}": executable file not found '
                             "in $PATH", 127)
        cfg = inst.config
        rows, cols = console_size(console or cfg.get("ConsoleSize"))
        env = process_env(list(c.config.get("Env") or []) + list(cfg.get("Env") or []),
                          c.config.get("Hostname", ""), bool(cfg.get("Tty")))
        inst.session = running.sessions.open()
        await running.sessions.send_json(MsgType.EXEC, {
            "args": list(cfg.get("Cmd") or []), "env": env,
            "cwd": cfg.get("WorkingDir") or c.config.get("WorkingDir") or "/",
            # an empty User is the container's (moby: execConfig.User or c.Config.User)
            "user": cfg.get("User") or c.config.get("User") or "",
            "tty": bool(cfg.get("Tty")), "stdin": bool(cfg.get("AttachStdin")),
            "groups": list(c.host_config.get("GroupAdd") or []),  # as runc's exec
            "rows": rows, "cols": cols,
        }, inst.session)
        while (frame := await running.sessions.next(inst.session)) is not None:
            if frame.type == MsgType.STARTED:
                inst.pid = int(frame.json().get("pid") or 0)
                inst.running = True
                inst.handle = ExecStarted(inst, running)
                return inst.handle  # the rest of the session: ExecStarted.output
            if frame.type == MsgType.START_ERROR:
                running.sessions.forget(inst.session)
                info = frame.json()
                # Docker's exec reports every start failure but "not found" as 126
                # (the agent's 125 is a setup failure: user, working directory).
                code = int(info.get("exit_code", 126))
                inst.exit_code = 126 if code == 125 else code
                inst.done.set()
                raise StartError(str(info.get("message", "exec failed")), inst.exit_code)
        running.sessions.forget(inst.session)
        inst.exit_code = 126
        inst.done.set()
        raise Conflict(f"Container {inst.container_id} is not running")

    def _forget_old(self) -> None:
        now = time.monotonic()
        for key, inst in list(self._execs.items()):
            if inst.finished_at and now - inst.finished_at > KEEP_FINISHED_S:
                del self._execs[key]
            elif inst.started and not inst.running and inst.exit_code is not None \
                    and not inst.finished_at:
                inst.finished_at = now


async def wait_done(inst: ExecInstance, timeout: float | None = None) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(inst.done.wait(), timeout)
