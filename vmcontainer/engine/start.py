"""Start a container: boot its VM, stream its output, record its exit.

The one exit path: whatever ends the VM (the agent's EXIT, a START_ERROR, QEMU
dying), ``_monitor`` records the result in the container record, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmcontainer.engine import warm
from vmcontainer.engine.container import Container
from vmcontainer.engine.context import EngineContext
from vmcontainer.engine.create import vm_size
from vmcontainer.engine.logs import JsonFileWriter
from vmcontainer.engine.mounts import machine_mounts
from vmcontainer.engine.names_files import hosts_text, resolv_conf_text
from vmcontainer.engine.netstart import (
    NetworkPlan,
    hotplug_machine,
    plan_network,
    release_network,
    restore_ports,
)
from vmcontainer.engine.process import process_env
from vmcontainer.engine.sessions import Sessions
from vmcontainer.engine.state import Status, now_rfc3339
from vmcontainer.errors import NotModified, StartError, System
from vmcontainer.guestlink.configdisk import write_config_disk
from vmcontainer.guestlink.link import AgentLink
from vmcontainer.guestlink.protocol import (
    MAX_HOST_PAYLOAD,
    PORT_NAME,
    PROTOCOL_VERSION,
    Frame,
    MsgType,
)
from vmcontainer.vm.backend import Machine
from vmcontainer.vm.guestkernel import DEFAULT_CMDLINE
from vmcontainer.vm.spec import ChannelSpec, DiskSpec, MachineSpec

log = logging.getLogger(__name__)

# Sink for output as it arrives: (stream "stdout"|"stderr", bytes).
OutputSink = Callable[[str, bytes], None]

KERNEL_CMDLINE = DEFAULT_CMDLINE
BOOT_TIMEOUT_S = 60.0
AGENT_SOCKET = "agent.sock"


@dataclass
class Running:
    """A started container. ``exit_code`` resolves when the container has ended and
    its record says so. ``sessions`` reaches its main process (session 0) and
    its exec sessions."""

    container: Container
    machine: Machine
    link: AgentLink
    exit_code: asyncio.Future[int]
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    sessions: Sessions = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.sessions = Sessions(self.link)

    async def wait(self) -> int:
        return await asyncio.shield(self.exit_code)

    async def signal(self, signum: int, session: int = 0) -> None:
        """Send signal ``signum`` to the session's process (PROTOCOL.md SIGNAL);
        a no-op once the container has ended."""
        if not self.exit_code.done():
            await self.sessions.send_json(MsgType.SIGNAL, {"signal": signum}, session)

    async def write_stdin(self, data: bytes, session: int = 0) -> None:
        """Bytes for the process's stdin; ``b""`` closes it (PROTOCOL.md STDIN)."""
        if self.exit_code.done():
            return
        if not data:
            await self.sessions.send(MsgType.STDIN, b"", session)
        for i in range(0, len(data), MAX_HOST_PAYLOAD):  # the agent's frame limit
            await self.sessions.send(MsgType.STDIN, data[i:i + MAX_HOST_PAYLOAD], session)

    async def kill(self, sync_timeout: float = 5.0) -> None:
        """End the VM now, after the guest flushed its file systems (PROTOCOL.md
        SYNC, at most ``sync_timeout`` s): what the container wrote to its volumes,
        binds and rootfs survives a kill, as it does under Docker."""
        if not self.exit_code.done():
            with contextlib.suppress(Exception):
                await self.sessions.request(MsgType.SYNC, MsgType.SYNCED, timeout=sync_timeout)
        await self.machine.kill()

    async def resize(self, rows: int, cols: int, session: int = 0) -> None:
        """Set the window size of the process's PTY (PROTOCOL.md RESIZE)."""
        if not self.exit_code.done():
            await self.sessions.send_json(MsgType.RESIZE, {"rows": rows, "cols": cols},
                                          session)


def guest_config(c: Container, mounts: list[dict[str, Any]] | None = None,
                 net: NetworkPlan | None = None) -> dict[str, Any]:
    """The config disk's JSON (guest/PROTOCOL.md) for container ``c``; ``mounts``:
    its ``mounts`` list (``vmcontainer.engine.mounts.machine_mounts``); ``net``: the
    NICs and resolvers of its network plan."""
    cfg = c.config
    hostname = cfg["Hostname"]
    hc = c.host_config
    rows, cols = console_size(c.host_config.get("ConsoleSize"))
    return {
        "id": c.id,
        "hostname": hostname,
        "hosts": hosts_text(hostname, hc.get("ExtraHosts") or ()),
        "resolv_conf": resolv_conf_text(hc.get("Dns") or (net.dns if net else None) or (),
                                        hc.get("DnsSearch") or (),
                                        hc.get("DnsOptions") or ()),
        "rootfs": {"serial": "rootfs", "fstype": "ext4",
                   "readonly": bool(hc.get("ReadonlyRootfs"))},
        "mounts": mounts or [],
        "process": {
            "args": [c.path, *c.args],
            "env": process_env(cfg.get("Env") or [], hostname, bool(cfg.get("Tty"))),
            "cwd": cfg.get("WorkingDir") or "/",
            "user": cfg.get("User") or "",
            "tty": bool(cfg.get("Tty")),
            "stdin": bool(cfg.get("OpenStdin")),
            "rows": rows,
            "cols": cols,
            "init": bool(c.host_config.get("Init")),
            "groups": list(hc.get("GroupAdd") or []),
        },
        **({"network": net.guest} if net is not None else {}),
    }


def console_size(value: Any) -> tuple[int, int]:
    """(rows, cols) from Docker's ``ConsoleSize`` ``[height, width]``; (0, 0) when
    absent or malformed (the API validates it at create)."""
    if isinstance(value, list) and len(value) == 2 and all(
            isinstance(v, int) and 0 <= v <= 0xFFFF for v in value):
        return value[0], value[1]
    return 0, 0


async def start_container(ctx: EngineContext, ref: str, sink: OutputSink | None = None) -> Running:
    """Boot the VM of container ``ref`` and return once its process runs.

    Raises ContainerNotFound; NotModified when it is already running; StartError
    (with Docker's exit code 125/126/127) when the process cannot start; System or
    Unavailable when the VM cannot boot (the record then holds the error).
    """
    c = ctx.store.find(ref)
    if c.state.running and c.state.status != Status.RESTARTING:  # restart policy's start
        raise NotModified(f"container {c.name} is already running")
    assets = ctx.boot_assets()
    try:
        net = await plan_network(ctx, c)
    except Exception as err:
        _record_start_failure(ctx, c, err)
        raise
    try:
        return await _boot(ctx, c, net, assets.kernel, assets.initramfs, sink)
    except BaseException:
        await release_network(ctx, c.id)
        raise


async def _boot(ctx: EngineContext, c: Container, net: NetworkPlan, kernel: Path,
                initramfs: Path, sink: OutputSink | None) -> Running:
    directory = ctx.store.dir(c.id)
    _, _, mounts = machine_mounts(ctx.volumes, ctx.store, c)
    config = guest_config(c, mounts, net)
    for stale in ("agent.sock", "qmp.sock", "console.log", "qemu.log"):
        (directory / stale).unlink(missing_ok=True)
    spec = machine_spec(ctx, c, kernel, initramfs, net)
    chosen = warm.choose(ctx, spec, config)
    boot: dict[str, Any] = {
        "Backend": ctx.backend.name, "Accelerator": ctx.backend.accelerator,
        "Kernel": str(kernel), "Initramfs": str(initramfs),
        "MachineType": spec.machine_type, "MemoryMiB": spec.memory_mib, "VCPUs": spec.vcpus,
        "HotplugSlots": spec.hotplug_slots, "Path": "cold",
        # The agent in this initramfs speaks this version (adopt: RESUME needs 3).
        "AgentProtocol": PROTOCOL_VERSION,
    }
    t0 = time.monotonic()
    clone = None
    if chosen is not None:
        template, sent = chosen
        try:
            clone = await _clone(ctx, warm.clone_spec(spec, template), sent)
            boot.update(Path="warm", Template=template.key,
                        ReadyMs=round((time.monotonic() - t0) * 1000, 1))
        except (System, OSError) as err:  # the template is broken: drop it, boot cold
            log.warning("container %s: warm start failed, booting cold: %s", c.short_id, err)
            warm.drop(ctx, template)
            for stale in ("agent.sock", "qmp.sock"):
                (directory / stale).unlink(missing_ok=True)
            t0 = time.monotonic()
    if clone is None:
        write_config_disk(directory / "config.iso", config)
        machine = await ctx.backend.start(spec)
    else:
        machine, link = clone
    try:
        if clone is None:
            link = await _connect(machine)
        started = await _await_start(link, machine, boot, t0)
    except BaseException as err:
        await machine.kill()
        _record_start_failure(ctx, c, err)
        raise
    state = c.state.move(Status.RUNNING, pid=machine.pid or 0, exit_code=0, error="",
                         oom_killed=False, started_at=now_rfc3339(),
                         finished_at=c.state.finished_at)
    c = ctx.update(c.id, state=state, boot=boot, network_settings=net.settings)
    running = Running(c, machine, link, asyncio.get_running_loop().create_future())
    running.task = asyncio.create_task(_monitor(ctx, running, link, started, sink))
    return running


def machine_spec(ctx: EngineContext, c: Container, kernel: Path, initramfs: Path,
                 net: NetworkPlan | None = None) -> MachineSpec:
    """The MachineSpec of container ``c``'s VM (``net``: its NICs; none when
    adopting a VM that runs already)."""
    directory = ctx.store.dir(c.id)
    memory_mib, vcpus = vm_size(c.host_config, ctx.settings.memory_mib, ctx.settings.vcpus)
    volumes, shares, _ = machine_mounts(ctx.volumes, ctx.store, c, check=False)
    return MachineSpec(
        name=f"vmc-{c.short_id}", kernel=kernel, initramfs=initramfs,
        cmdline=KERNEL_CMDLINE, memory_mib=memory_mib, vcpus=vcpus, run_dir=directory,
        disks=(DiskSpec(directory / "rootfs.qcow2", "rootfs"),
               DiskSpec(directory / "config.iso", "config", format="raw", readonly=True),
               *volumes),
        channels=(ChannelSpec(PORT_NAME, AGENT_SOCKET),), shares=shares, owner=c.id,
        nics=net.nics if net else (),
        **(hotplug_machine(len(net.nics)) if net and net.hotplug else {}),
        **({"machine_type": c.boot.get("MachineType", "microvm"),
            "hotplug_slots": c.boot.get("HotplugSlots", 0)} if net is None else {}),
    )


async def adopt_container(ctx: EngineContext, c: Container,
                          sink: OutputSink | None = None) -> Running:
    """Take back a running container whose VM an earlier process started (daemon
    restart): reconnect its agent port — output written meanwhile waited in the
    guest, since virtio-serial holds writes while nobody reads, and output the
    previous daemon read but did not store is sent again (RESUME) — and watch it
    to its exit like one started here. Raises System when the agent does not answer."""
    spec = machine_spec(ctx, c, Path(c.boot.get("Kernel", "")), Path(c.boot.get("Initramfs", "")))
    machine = await ctx.backend.adopt(spec, c.state.pid)
    link = await _connect(machine)
    await restore_ports(ctx, c)
    running = Running(c, machine, link, asyncio.get_running_loop().create_future())
    running.task = asyncio.create_task(_monitor(
        ctx, running, link, [], sink, resume=c.boot.get("AgentProtocol", 2) >= 3))
    return running


async def _clone(ctx: EngineContext, spec: MachineSpec,
                 config: dict[str, Any]) -> tuple[Machine, AgentLink]:
    """Resume a template clone (``spec``) and send it the container's CONFIG."""
    machine = await ctx.backend.start(spec)
    try:
        link = await _connect(machine)
        await link.send(MsgType.CONFIG, warm.config_payload(config))
    except BaseException:
        await machine.kill()
        raise
    return machine, link


async def _connect(machine: Machine) -> AgentLink:
    connect = asyncio.ensure_future(AgentLink.connect(machine.socket_path(AGENT_SOCKET)))
    ended = asyncio.ensure_future(machine.wait())
    done, _ = await asyncio.wait({connect, ended}, return_when=asyncio.FIRST_COMPLETED)
    if connect in done:
        ended.cancel()
        return connect.result()
    connect.cancel()
    raise System(machine.failure() or "the VM ended before its agent answered")


async def _await_start(link: AgentLink, machine: Machine, boot: dict[str, Any],
                       t0: float) -> list[Frame]:
    """Read frames until STARTED; returns frames that came with it (output)."""
    early: list[Frame] = []
    frames = link.frames()
    try:
        async with asyncio.timeout(BOOT_TIMEOUT_S):
            async for frame in frames:
                if frame.type == MsgType.HELLO:
                    boot["ReadyMs"] = round((time.monotonic() - t0) * 1000, 1)
                elif frame.type == MsgType.STARTED:
                    boot["StartedMs"] = round((time.monotonic() - t0) * 1000, 1)
                    boot["GuestPid"] = frame.json().get("pid")
                    return early
                elif frame.type == MsgType.START_ERROR:
                    info = frame.json()
                    raise StartError(str(info.get("message", "start failed")),
                                     int(info.get("exit_code", 125)))
                elif frame.type == MsgType.LOG:
                    log.debug("agent: %s", frame.payload.decode(errors="replace"))
                else:
                    early.append(frame)
    except TimeoutError as err:
        raise System(f"the guest did not start within {BOOT_TIMEOUT_S:.0f}s "
                     "(see console.log in the container directory)") from err
    await machine.wait()
    raise System(machine.failure() or "the VM ended before the container process started")


def _record_start_failure(ctx: EngineContext, c: Container, err: BaseException) -> None:
    code = err.exit_code if isinstance(err, StartError) else 125
    with contextlib.suppress(Exception):
        ctx.update(c.id, state=c.state.move(c.state.status, exit_code=code, error=str(err)))


async def _monitor(ctx: EngineContext, running: Running, link: AgentLink, early: list[Frame],
                   sink: OutputSink | None, *, resume: bool = False) -> None:
    """Log the main process's output, acknowledging each write to the agent
    (``resume``: adopted; ask for what the previous daemon did not store), hand
    session frames on, and record the exit."""
    c = running.container
    log_path = ctx.store.dir(c.id) / f"{c.id}-json.log"
    writer = JsonFileWriter(log_path, log_path.with_name(log_path.name + ".stored"),
                            resume=resume)
    exit_code: int | None = None
    oom_killed = False
    error = ""

    def output(frame: Frame) -> None:
        stream = "stdout" if frame.type == MsgType.STDOUT else "stderr"
        writer.write(stream, frame.payload)
        link.ack(*writer.stored)
        if sink:
            sink(stream, frame.payload)

    try:
        if resume:
            await link.resume(*writer.stored)
        for frame in early:
            if frame.type in (MsgType.STDOUT, MsgType.STDERR):
                output(frame)
        async for frame in link.frames():
            if frame.session:
                running.sessions.deliver(frame)
                await running.sessions.drained(frame.session)  # flow control (docker cp)
            elif frame.type in (MsgType.STDOUT, MsgType.STDERR):
                output(frame)
            elif frame.type == MsgType.EXIT:
                info = frame.json()
                exit_code = int(info.get("exit_code", 255))
                oom_killed = bool(info.get("oom_killed", False))
                break
            elif frame.type == MsgType.LOG:
                log.debug("agent %s: %s", c.short_id, frame.payload.decode(errors="replace"))
    except Exception as err:
        error = str(err)
        log.debug("container %s: agent link failed", c.short_id, exc_info=True)
    finally:
        running.sessions.close_all()
        writer.close()
        await link.close()
    if exit_code is not None:
        await running.machine.stop()
    else:
        rc = await running.machine.wait()
        error = error or (running.machine.failure() or "")
        exit_code = 137 if rc in (-9, 137) else 255
    await release_network(ctx, c.id)
    latest = ctx.store.load(c.id)
    ctx.update(c.id, state=latest.state.move(
        Status.EXITED, pid=0, exit_code=exit_code, error=error, oom_killed=oom_killed,
        finished_at=now_rfc3339()))
    running.exit_code.set_result(exit_code)
