"""Maintenance boots: a stopped (created or exited) container's VM booted with
``vmcontainer.maintenance=1``, so its agent serves ARCHIVE requests (docker cp,
export, diff, commit) on the container's own disk, with no container process
(guest/PROTOCOL.md, "Maintenance boot").

Why boot rather than read the qcow2 overlay on the host: the guest already has the
one implementation of Docker's path semantics (openat2 RESOLVE_IN_ROOT, the tar
writer and extractor), so running and stopped containers behave the same; the
host needs no FUSE/NBD export of the overlay, no ext4 writer (debugfs cannot
create files with owners, modes and hard links safely in one pass) and no
root-only loop mounts; and a guest kernel is the only thing that parses the
container's (untrusted) filesystem. The cost is one boot: measured here under TCG
~1-2 s per request burst; KVM makes it ~0.3 s. A VM stays up ``LINGER_S`` after
its last request, since ``docker cp`` asks twice (HEAD for the stat, then GET or
PUT), and is stopped before the container starts or is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from vmcontainer.engine.container import Container
from vmcontainer.engine.context import EngineContext
from vmcontainer.engine.sessions import Sessions
from vmcontainer.engine.start import AGENT_SOCKET, KERNEL_CMDLINE, guest_config
from vmcontainer.errors import System
from vmcontainer.guestlink.configdisk import write_config_disk
from vmcontainer.guestlink.link import AgentLink
from vmcontainer.guestlink.protocol import PORT_NAME, MsgType
from vmcontainer.vm.backend import Machine
from vmcontainer.vm.spec import ChannelSpec, DiskSpec, MachineSpec

log = logging.getLogger(__name__)

LINGER_S = 5.0
MEMORY_MIB = 256
RUN_DIR = "maintenance"


# What a maintenance boot needs of the config disk: the root filesystem and the
# /etc files; no network, mounts or volumes (none are attached to it).
_CONFIG_KEYS = ("id", "hostname", "hosts", "resolv_conf", "rootfs", "process")


def maintenance_config(config: dict[str, Any]) -> dict[str, Any]:
    """The container's guest config trimmed to ``_CONFIG_KEYS``."""
    return {key: config[key] for key in _CONFIG_KEYS if key in config}


@dataclass
class _Booted:
    machine: Machine
    link: AgentLink
    sessions: Sessions
    reader: asyncio.Task[None] | None = None
    users: int = 0
    idle: asyncio.TimerHandle | None = None
    t0: float = 0.0
    closing: asyncio.Event = field(default_factory=asyncio.Event)


class MaintenanceVMs:
    """At most one maintenance VM per container, shared by concurrent requests."""

    def __init__(self, ctx: EngineContext) -> None:
        self._ctx = ctx
        self._vms: dict[str, _Booted] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # idle releases, awaited at close

    @contextlib.asynccontextmanager
    async def sessions(self, c: Container) -> AsyncIterator[Sessions]:
        """The agent sessions of ``c``'s maintenance VM, booted on first use.
        Raises System when the VM does not boot or its agent cannot mount the disk."""
        lock = self._locks.setdefault(c.id, asyncio.Lock())
        async with lock:
            vm = self._vms.get(c.id)
            if vm is None or vm.sessions.closed:
                vm = self._vms[c.id] = await self._boot(c)
            vm.users += 1
            if vm.idle is not None:
                vm.idle.cancel()
                vm.idle = None
        try:
            yield vm.sessions
        finally:
            vm.users -= 1
            if vm.users == 0 and self._vms.get(c.id) is vm:
                vm.idle = asyncio.get_running_loop().call_later(LINGER_S, self._idle, c.id)

    def _idle(self, cid: str) -> None:
        task = asyncio.get_running_loop().create_task(self.release(cid, force=False))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def release(self, cid: str, force: bool = True) -> None:
        """Stop ``cid``'s maintenance VM (before a start or a remove: ``force``,
        ending requests still using it); a no-op when there is none, or (not
        ``force``: the idle timer) when it is in use again."""
        async with self._locks.setdefault(cid, asyncio.Lock()):
            vm = self._vms.get(cid)
            if vm is None or (vm.users and not force):
                return
            del self._vms[cid]
            if vm.idle is not None:
                vm.idle.cancel()
            await self._stop(vm)

    async def close(self) -> None:
        """Stop every maintenance VM (daemon shutdown)."""
        for cid in list(self._vms):
            await self.release(cid)
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _stop(self, vm: _Booted) -> None:
        vm.sessions.close_all()
        await vm.link.close()
        await vm.machine.stop()
        if vm.reader is not None:
            vm.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await vm.reader

    def _spec(self, c: Container) -> MachineSpec:
        directory = self._ctx.store.dir(c.id)
        run_dir = directory / RUN_DIR
        run_dir.mkdir(exist_ok=True)
        for stale in ("agent.sock", "qmp.sock", "console.log", "qemu.log"):
            (run_dir / stale).unlink(missing_ok=True)
        write_config_disk(run_dir / "config.iso", maintenance_config(guest_config(c)))
        assets = self._ctx.boot_assets()
        return MachineSpec(
            name=f"vmc-{c.short_id}-m", kernel=assets.kernel, initramfs=assets.initramfs,
            cmdline=KERNEL_CMDLINE + " vmcontainer.maintenance=1", memory_mib=MEMORY_MIB,
            vcpus=1, run_dir=run_dir,
            disks=(DiskSpec(directory / "rootfs.qcow2", "rootfs"),
                   DiskSpec(run_dir / "config.iso", "config", format="raw", readonly=True)),
            channels=(ChannelSpec(PORT_NAME, AGENT_SOCKET),),
            # The container's own: a remote libvirt host keeps the container's disk
            # in a volume named by its owner, which this boot must use, not the
            # local overlay (stale once the container has run there).
            owner=c.id)

    async def _boot(self, c: Container) -> _Booted:
        t0 = time.monotonic()
        spec = await asyncio.to_thread(self._spec, c)
        machine = await self._ctx.backend.start(spec)
        try:
            connect = asyncio.ensure_future(AgentLink.connect(machine.socket_path(AGENT_SOCKET)))
            ended = asyncio.ensure_future(machine.wait())
            done, _ = await asyncio.wait({connect, ended}, return_when=asyncio.FIRST_COMPLETED)
            ended.cancel()
            if connect not in done:
                connect.cancel()
                raise System(machine.failure()
                             or "the maintenance VM ended before its agent answered")
            link = connect.result()
        except BaseException:
            await machine.kill()
            raise
        vm = _Booted(machine, link, Sessions(link), t0=t0)
        vm.reader = asyncio.create_task(self._read(c, vm))
        return vm

    async def _read(self, c: Container, vm: _Booted) -> None:
        """Every frame of the maintenance VM's agent: sessions' frames to their
        queues (waiting while a reader lags: flow control back into the guest); a
        START_ERROR of session 0 (the disk did not mount) ends every session."""
        try:
            async for frame in vm.link.frames():
                if frame.session:
                    vm.sessions.deliver(frame)
                    await vm.sessions.drained(frame.session)
                elif frame.type == MsgType.HELLO:
                    log.info("container %s: maintenance VM's agent up in %.0f ms", c.short_id,
                             (time.monotonic() - vm.t0) * 1000,
                             extra={"container": c.id, "op": "maintenance", "status": "booted"})
                elif frame.type == MsgType.START_ERROR:
                    log.warning("container %s: maintenance boot failed: %s", c.short_id,
                                frame.payload.decode(errors="replace"))
                    break
                elif frame.type == MsgType.LOG:
                    log.debug("agent %s (maintenance): %s", c.short_id,
                              frame.payload.decode(errors="replace"))
        finally:
            vm.sessions.close_all()
