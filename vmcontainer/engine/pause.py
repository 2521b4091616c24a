"""Pause and unpause: the VM's vCPUs frozen and thawed (``Machine.pause``/``resume``;
QMP ``stop``/``cont`` on qemu), the container record in ``paused`` meanwhile — so a
paused container stays paused across a daemon restart (the next daemon adopts it as
it is). The agent link survives: the host's read simply waits.

Errors are Docker's (moby ``daemon/pause.go``, ``daemon/unpause.go``; checked on
Docker Engine 20.10): 409 ``Container <id> is not running``, ``... is already
paused``, ``... is restarting, wait until the container is running``; unpausing a
container that is not paused is a plain error there, hence 500
``Container <id> is not paused``.
"""

from __future__ import annotations

from vmcontainer.engine.container import Container
from vmcontainer.engine.context import EngineContext
from vmcontainer.engine.state import Status
from vmcontainer.errors import Conflict, System
from vmcontainer.vm.backend import Machine


def check_pausable(c: Container, machine: Machine | None) -> Machine:
    """The machine to pause; raises Conflict as Docker does."""
    if not c.state.running:
        raise Conflict(f"Container {c.id} is not running")
    if c.state.status == Status.PAUSED:
        raise Conflict(f"Container {c.id} is already paused")
    if c.state.status == Status.RESTARTING:
        raise Conflict(f"Container {c.id} is restarting, wait until the container is running")
    if machine is None:
        raise Conflict(f"container {c.id} is run by another vmcontainer process")
    return machine


async def pause(ctx: EngineContext, c: Container, machine: Machine | None) -> Container:
    """Freeze ``c``'s VM and record ``paused``; returns the new record."""
    vm = check_pausable(c, machine)
    await vm.pause()
    return _record(ctx, c.id, Status.RUNNING, Status.PAUSED)


async def unpause(ctx: EngineContext, c: Container, machine: Machine | None) -> Container:
    """Let ``c``'s VM run on and record ``running``; returns the new record. Raises
    System (500, as Docker) when ``c`` is not paused."""
    if c.state.status != Status.PAUSED:
        raise System(f"Container {c.id} is not paused")
    if machine is None:
        raise Conflict(f"container {c.id} is run by another vmcontainer process")
    await machine.resume()
    return _record(ctx, c.id, Status.PAUSED, Status.RUNNING)


def _record(ctx: EngineContext, cid: str, was: Status, now: Status) -> Container:
    """Move the record from ``was`` to ``now`` unless it changed meanwhile (the VM
    ended while the command ran: the exit is recorded instead)."""
    latest = ctx.store.load(cid)
    if latest.state.status != was:
        return latest
    return ctx.update(cid, state=latest.state.move(now))
