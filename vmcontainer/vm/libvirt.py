"""The ``libvirt`` backend: each MachineSpec a transient libvirt domain (libvirt-python),
on the local libvirtd or a remote one by URI.

Domains are created from XML (``libvirtxml``), carry their owner (the container ID)
in <metadata> — only such domains are ever adopted, stopped or killed —, and end
through libvirt's lifecycle events (``libvirtconn``), not polling. On a remote URI
the files are placed through the storage API (``libvirtstore``) and the agent
channel is reached through ``virDomainOpenChannel`` over the libvirt connection
(``libvirtrelay``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from vmcontainer.errors import Conflict, InvalidParameter, NotFound, System, Unavailable
from vmcontainer.vm.guestkernel import LAPIC_TIMER_PARAM, boot_cmdline, kernel_accepts
from vmcontainer.vm.host import host_tsc_khz
from vmcontainer.vm.libvirtconn import Connection, _libvirt, is_remote
from vmcontainer.vm.libvirtrelay import ChannelRelay
from vmcontainer.vm.libvirtstore import VolumePlacer
from vmcontainer.vm.libvirtxml import (
    HostPaths,
    TapInterface,
    channel_paths,
    domain_for,
    owner_of,
)
from vmcontainer.vm.nic import NicSpec, release_by_guest
from vmcontainer.vm.qemuargs import microvm_options
from vmcontainer.vm.spec import MachineSpec

log = logging.getLogger(__name__)

# Exit statuses as the qemu backend's: 0 for a guest power-off or a stop we asked
# for, -9 (SIGKILL: the engine records 137) for a destroy, 1 for a crash.
_KILLED = -9


def default_uri() -> str:
    """``qemu:///system`` as root, ``qemu:///session`` otherwise."""
    return "qemu:///system" if os.geteuid() == 0 else "qemu:///session"


class LibvirtMachine:
    """A domain of ours, watched through lifecycle events."""

    def __init__(self, spec: MachineSpec, backend: LibvirtBackend, dom: Any) -> None:
        self._spec = spec
        self._backend = backend
        self._dom = dom
        self._uuid: str = dom.UUIDString()
        self._asked: str = ""  # "stop" or "kill" once we end it
        self._detail: int | None = None
        self._exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._sockets: dict[str, str] = {}
        self._relays: list[ChannelRelay] = []
        self._dirfd = os.open(spec.run_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self._pid = backend.qemu_pid(spec.name)
        backend.conn.listen(self._uuid, self._on_event)
        backend.watched[spec.name] = spec.owner

    async def _setup(self) -> None:
        """Learn the channels' socket paths (chosen by libvirt) from the live XML; on
        a remote host, serve each through a local relay in ``run_dir`` instead."""
        if self._exited.done():
            return
        try:
            xml = await asyncio.to_thread(self._dom.XMLDesc, 0)
        except _libvirt().libvirtError:
            return  # ended meanwhile: its event says how
        paths = channel_paths(xml)
        for ch in self._spec.channels:
            if not self._backend.remote:
                self._sockets[ch.socket] = paths.get(ch.name, "")
                continue
            relay = ChannelRelay(self._backend.conn, self._dom, ch.name,
                                 self._local(ch.socket))
            await relay.start()
            self._relays.append(relay)
            self._sockets[ch.socket] = self._local(ch.socket)

    def _local(self, name: str) -> str:
        return f"/proc/{os.getpid()}/fd/{self._dirfd}/{name}"

    def _on_event(self, event: int, detail: int) -> None:
        lv = _libvirt()
        if event != lv.VIR_DOMAIN_EVENT_STOPPED or self._exited.done():
            return
        self._detail = detail
        if detail == lv.VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN or self._asked == "stop":
            rc = 0
        elif detail == lv.VIR_DOMAIN_EVENT_STOPPED_DESTROYED:
            rc = _KILLED
        else:
            rc = 1
        self._finish(rc)

    def _let_go(self) -> None:
        """Stop listening for the domain's events; close relays and the run dir fd."""
        self._backend.conn.unlisten(self._uuid)
        self._backend.watched.pop(self.name, None)
        for relay in self._relays:
            relay.close()
        if self._dirfd >= 0:
            os.close(self._dirfd)
            self._dirfd = -1

    def _finish(self, rc: int) -> None:
        self._let_go()
        if not self._exited.done():
            self._exited.set_result(rc)

    @property
    def name(self) -> str:
        return self._spec.name

    @property
    def pid(self) -> int | None:
        return self._pid

    def socket_path(self, name: str) -> str:
        """The agent channel's socket: libvirt's path on this host, or the relay's."""
        path = self._sockets.get(name)
        if not path:
            raise System(f"the domain {self.name} has no socket {name!r}")
        return path

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    async def _call(self, what: str, fn: Any, *args: Any) -> None:
        try:
            await asyncio.to_thread(fn, *args)
        except _libvirt().libvirtError as err:
            raise System(f"libvirt {what} of {self.name}: {err.get_error_message()}") from err

    async def stop(self, timeout: float = 3.0) -> None:
        """A graceful destroy (SIGTERM to QEMU: it flushes and closes its disks), a
        hard one after ``timeout`` seconds."""
        if self._exited.done():
            return
        self._asked = "stop"
        lv = _libvirt()
        with contextlib.suppress(lv.libvirtError, TimeoutError):
            await asyncio.wait_for(asyncio.to_thread(
                self._dom.destroyFlags, lv.VIR_DOMAIN_DESTROY_GRACEFUL), timeout)
        try:
            await asyncio.wait_for(self.wait(), 1.0)
        except TimeoutError:
            await self.kill()

    async def kill(self) -> None:
        if not self._exited.done():
            self._asked = self._asked or "kill"
            with contextlib.suppress(_libvirt().libvirtError):
                await asyncio.to_thread(self._dom.destroy)
            if not await self._backend.active(self._dom):
                # The event may lag the call; the domain is gone either way.
                self._finish(0 if self._asked == "stop" else _KILLED)
        await self.wait()

    async def release(self) -> None:
        """Stop listening; the domain runs on for the next daemon to adopt."""
        self._let_go()

    async def add_nic(self, nic: NicSpec) -> None:
        """Hot-plug tap NIC ``nic`` (libvirt places it in a free PCIe root port).
        Raises InvalidParameter for a user-networking NIC, System when libvirt
        refuses (e.g. no free port)."""
        if nic.netdev != "tap":
            raise InvalidParameter("only tap NICs can be hot-plugged")
        await self._call("attach interface", self._dom.attachDeviceFlags,
                         TapInterface(nic.mac, nic.tap).xml(),
                         _libvirt().VIR_DOMAIN_AFFECT_LIVE)

    async def remove_nic(self, mac: str, timeout: float = 20.0,
                         release: Callable[[], Awaitable[None]] | None = None) -> None:
        """Hot-unplug the NIC with ``mac``; returns once the guest released it (at
        once when ``release`` powered its slot off: libvirt drops a device QEMU
        reports deleted). Raises NotFound when no NIC has ``mac``, System when it
        is not released."""
        iface = await self._interface(mac)
        if iface is None:
            raise NotFound(f"no NIC with MAC {mac}")
        loop = asyncio.get_running_loop()
        if release is not None:
            await release_by_guest(release, self.name, mac, "libvirt")
            # QEMU deletes the device at once; libvirt drops it from the live XML
            # when it has handled QEMU's DEVICE_DELETED event, a moment later
            settle = loop.time() + 2.0
            while iface is not None and loop.time() < settle:
                await asyncio.sleep(0.05)
                iface = await self._interface(mac)
        if iface is not None:
            lv = _libvirt()
            try:
                await asyncio.to_thread(self._dom.detachDeviceFlags,
                                        ET.tostring(iface, encoding="unicode"),
                                        lv.VIR_DOMAIN_AFFECT_LIVE)
            except lv.libvirtError as err:
                # DEVICE_MISSING: QEMU has deleted it already, libvirt's XML lags
                if err.get_error_code() != lv.VIR_ERR_DEVICE_MISSING:
                    raise System(f"libvirt detach interface of {self.name}: "
                                 f"{err.get_error_message()}") from err
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            xml = await asyncio.to_thread(self._dom.XMLDesc, 0)
            if f"'{mac}'" not in xml and f'"{mac}"' not in xml:
                return
            await asyncio.sleep(0.2)
        raise System(f"the guest did not release the NIC {mac} within {timeout:.0f}s")

    async def _interface(self, mac: str) -> ET.Element | None:
        """The live domain's ``<interface>`` with ``mac``, None when it has none."""
        xml = await asyncio.to_thread(self._dom.XMLDesc, 0)
        for el in ET.fromstring(xml).iterfind("devices/interface"):
            found = el.find("mac")
            if found is not None and found.get("address") == mac:
                return el
        return None

    async def pause(self) -> None:
        """virDomainSuspend: vCPUs halt, QEMU and its sockets stay."""
        await self._call("suspend", self._dom.suspend)

    async def resume(self) -> None:
        await self._call("resume", self._dom.resume)

    def failure(self) -> str | None:
        """QEMU's last log line (local hosts) when the domain crashed or failed."""
        if not self._exited.done() or self._exited.result() != 1:
            return None
        log_file = Path(f"/var/log/libvirt/qemu/{self.name}.log")
        with contextlib.suppress(OSError):
            lines = [ln for ln in log_file.read_text(errors="replace").splitlines()
                     if ln.strip()]
            if lines and not self._backend.remote:
                return lines[-1]
        return f"the libvirt domain {self.name} crashed (event detail {self._detail})"


class LibvirtBackend:
    """Domains on libvirt at ``uri``; ``accel``: ``kvm`` or ``tcg`` (domain type
    ``kvm`` or ``qemu``); ``pool``: the storage pool that holds the files on a
    remote host."""

    name = "libvirt"

    def __init__(self, conn: Connection, accel: str, pool: str = "default") -> None:
        self.conn = conn
        self._accel = accel
        self.remote = is_remote(conn.uri)
        self._placer = VolumePlacer(conn, pool) if self.remote else None
        # Domain name -> owner of the machines that listen for their events here:
        # running until their STOPPED event, so ``alive`` answers without libvirt.
        self.watched: dict[str, str] = {}

    @classmethod
    async def open(cls, uri: str, accel: str, pool: str = "default") -> LibvirtBackend:
        """Connect; raises Unavailable when libvirt is missing or does not answer."""
        return cls(await Connection.open(uri), accel, pool)

    @property
    def uri(self) -> str:
        return self.conn.uri

    @property
    def accelerator(self) -> str:
        return self._accel

    def _system(self) -> bool:
        return self.conn.uri.split("?")[0].rstrip("/").endswith("/system")

    def qemu_pid(self, name: str) -> int | None:
        """The local QEMU's PID from libvirtd's pid file (system or session)."""
        if self.remote:
            return None
        run = Path("/run/libvirt/qemu") if self._system() else Path(
            os.environ.get("XDG_RUNTIME_DIR", "/nonexistent")) / "libvirt/qemu/run"
        with contextlib.suppress(OSError, ValueError):
            return int((run / f"{name}.pid").read_text().strip())
        return None

    async def active(self, dom: Any) -> bool:
        try:
            return bool(await asyncio.to_thread(dom.isActive))
        except _libvirt().libvirtError:
            return False

    async def _lookup(self, name: str) -> Any | None:
        try:
            return await asyncio.to_thread(self.conn.conn.lookupByName, name)
        except _libvirt().libvirtError:
            return None

    async def start(self, spec: MachineSpec) -> LibvirtMachine:
        for what, path in (("guest kernel", spec.kernel), ("initramfs", spec.initramfs)):
            if not Path(path).is_file():
                raise InvalidParameter(f"{what} not found: {path}")
        old = await self._lookup(spec.name)
        if old is not None:
            if owner_of(await asyncio.to_thread(old.XMLDesc, 0)) != spec.owner:
                raise Conflict(f"a libvirt domain named {spec.name} exists and is not "
                               "this container's")
            raise Conflict(f"the libvirt domain {spec.name} is already running")
        if self.remote and spec.shares:
            raise InvalidParameter("bind mounts need the daemon's own filesystem: not "
                                   "available on a remote libvirt host")
        paths = (await self._placer.place(spec)) if self._placer else HostPaths.local(spec)
        spec, cmdline, options = self._boot(spec)
        xml = domain_for(spec, paths, spec.owner, "kvm" if self._accel == "kvm" else "qemu",
                         run_as_root=self._system(), cmdline=cmdline,
                         machine_options=options).xml()
        log.debug("creating domain %s:\n%s", spec.name, xml)
        lv = _libvirt()
        try:
            dom = await asyncio.to_thread(self.conn.conn.createXML, xml, 0)
        except lv.libvirtError as err:
            if err.get_error_code() in (lv.VIR_ERR_NO_CONNECT, lv.VIR_ERR_SYSTEM_ERROR,
                                        lv.VIR_ERR_RPC):
                raise Unavailable(f"libvirt: {err.get_error_message()}") from err
            raise System(f"libvirt could not start {spec.name}: "
                         f"{err.get_error_message()}") from err
        return await self._machine(spec, dom)

    def _boot(self, spec: MachineSpec) -> tuple[MachineSpec, str, str]:
        """The machine type, kernel command line and microvm options, as the qemu
        backend boots ``spec``. microvm under TCG needs the host's TSC frequency on
        the command line (~40% of boots hang without it: DESIGN.md), which only a
        local host tells: a remote TCG host gets q35 (PIT and HPET calibrate it)."""
        if spec.machine_type == "microvm" and self.remote and self._accel != "kvm":
            spec = replace(spec, machine_type="q35")
        lapic_timer = kernel_accepts(spec.kernel, LAPIC_TIMER_PARAM)
        tsc_khz = None if self.remote else host_tsc_khz()
        options = (microvm_options(self._accel, lapic_timer, isa_serial=False)
                   if spec.machine_type == "microvm" else "")
        return spec, boot_cmdline(spec, self._accel, tsc_khz, lapic_timer), options

    async def _machine(self, spec: MachineSpec, dom: Any) -> LibvirtMachine:
        machine = LibvirtMachine(spec, self, dom)
        if not await self.active(dom):
            machine._on_event(_libvirt().VIR_DOMAIN_EVENT_STOPPED,
                              _libvirt().VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN)
        await machine._setup()
        return machine

    async def adopt(self, spec: MachineSpec, pid: int) -> LibvirtMachine:
        """Take back our domain ``spec.name`` (its metadata must name ``spec.owner``).
        Raises System when there is no such domain of ours."""
        dom = await self._lookup(spec.name)
        if dom is None or owner_of(await asyncio.to_thread(dom.XMLDesc, 0)) != spec.owner:
            raise System(f"no libvirt domain {spec.name} of this container")
        return await self._machine(spec, dom)

    def alive(self, name: str, owner: str, pid: int) -> bool:
        """Whether our domain ``name`` (owner ``owner``) is running: at once for a
        domain watched here, else through libvirt (blocking calls)."""
        if self.watched.get(name) == owner:
            return True
        try:
            dom = self.conn.conn.lookupByName(name)
            return bool(dom.isActive()) and owner_of(dom.XMLDesc(0)) == owner
        except _libvirt().libvirtError:
            return False

    async def discard(self, owner: str) -> None:
        """Delete the volumes kept for ``owner`` on a remote host (container removal)."""
        if self._placer is not None:
            await self._placer.discard(owner)

    def status(self) -> list[tuple[str, str]]:
        return [("Backend", self.name), ("Libvirt URI", self.uri)]
