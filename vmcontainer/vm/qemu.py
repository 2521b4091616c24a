"""The ``qemu`` backend: QEMU spawned directly, controlled over QMP (qemu.qmp).

The command line (machine, devices, boot) is vm/qemuargs.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shlex
import shutil
import signal
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from vmcontainer.errors import Conflict, InvalidParameter, NotFound, System, Unavailable
from vmcontainer.vm.guestkernel import LAPIC_TIMER_PARAM, kernel_accepts
from vmcontainer.vm.host import host_tsc_khz
from vmcontainer.vm.nic import NicSpec, release_by_guest
from vmcontainer.vm.process import WatchedProcess, hypervisor_alive
from vmcontainer.vm.qemuargs import QEMU_BINARY, qemu_argv
from vmcontainer.vm.spec import MachineSpec

log = logging.getLogger(__name__)

class QemuMachine:
    """A QEMU process and its QMP connection (connected in the background)."""

    def __init__(self, spec: MachineSpec, proc: WatchedProcess) -> None:
        self._spec = spec
        self._proc = proc
        self._qmp: Any = None  # qemu.qmp.QMPClient once _connect_qmp has imported it
        self._qmp_task = asyncio.create_task(self._connect_qmp())
        self._stopping = False
        # Unix socket paths are limited to 107 bytes; reach the sockets through a
        # directory file descriptor instead of the (deep) run_dir path.
        self._dirfd = os.open(spec.run_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def socket_path(self, name: str) -> str:
        """A connectable path (always short) for socket ``name`` in ``run_dir``."""
        return f"/proc/{os.getpid()}/fd/{self._dirfd}/{name}"

    @property
    def name(self) -> str:
        return self._spec.name

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    async def _connect_qmp(self) -> None:
        # Imported here, while the guest boots: qemu.qmp costs ~40 ms of start latency.
        from qemu.qmp import QMPClient

        self._qmp = QMPClient(self._spec.name)
        sock = self.socket_path("qmp.sock")
        for _ in range(2500):
            if self._proc.returncode is not None:
                return
            if os.path.exists(sock):
                try:
                    await self._qmp.connect(sock)
                    return
                except Exception:
                    pass
            await asyncio.sleep(0.002)

    async def wait(self) -> int:
        rc = await self._proc.wait()
        self._qmp_task.cancel()
        if self._dirfd >= 0:
            os.close(self._dirfd)
            self._dirfd = -1
        if self._qmp is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._qmp.disconnect()
        return rc

    async def release(self) -> None:
        """Let go of the VM without ending it (the daemon is shutting down): close
        QMP and stop watching the process."""
        self._qmp_task.cancel()
        if self._qmp is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._qmp.disconnect()
        self._proc.release()
        if self._dirfd >= 0:
            os.close(self._dirfd)
            self._dirfd = -1

    async def stop(self, timeout: float = 3.0) -> None:
        """QMP ``quit`` (QEMU flushes and closes every block device), SIGTERM when
        QMP is not up yet, SIGKILL after ``timeout`` seconds."""
        if self._proc.returncode is not None:
            return
        self._stopping = True
        sent = False
        if self._qmp_task.done() and self._qmp and self._qmp.runstate.name == "RUNNING":
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._qmp.execute("quit"), timeout)
                sent = True
        if not sent:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.wait(), timeout)
        except TimeoutError:
            await self.kill()

    async def kill(self) -> None:
        if self._proc.returncode is None:
            self._stopping = True
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
        await self.wait()

    async def save(self, path: Path, timeout: float = 60.0) -> None:
        """Save the VM's device state to ``path`` (QMP ``migrate``; guest RAM, in
        a shared ``memory_file``, is left out) and leave the VM paused. Raises
        System when the migration fails or takes over ``timeout`` seconds."""
        try:
            await asyncio.wait_for(asyncio.shield(self._qmp_task), timeout)
            if self._qmp is None or self._proc.returncode is not None:
                raise System("QMP migrate: the VM has ended")
            await self._ignore_shared()
            await self._qmp.execute("migrate", {"uri": f"exec:cat > {shlex.quote(str(path))}"})
            async with asyncio.timeout(timeout):
                while True:
                    info = await self._qmp.execute("query-migrate")
                    status = info.get("status") if isinstance(info, dict) else None
                    if status == "completed":
                        return
                    if status in ("failed", "cancelled"):
                        raise System(f"QMP migrate: {info.get('error-desc', status)}")
                    await asyncio.sleep(0.01)
        except System:
            raise
        except Exception as err:
            raise System(f"QMP migrate failed: {err or type(err).__name__}") from err

    async def incoming(self, path: Path, timeout: float = 30.0) -> None:
        """Resume the state saved at ``path`` (a VM started with ``spec.incoming``):
        QMP ``migrate-incoming``; the VM runs once it is loaded. Raises System."""
        try:
            await asyncio.wait_for(asyncio.shield(self._qmp_task), timeout)
            if self._qmp is None or self._proc.returncode is not None:
                raise System("QMP migrate-incoming: the VM has ended")
            await self._ignore_shared()
            await self._qmp.execute("migrate-incoming",
                                    {"uri": f"exec:cat {shlex.quote(str(path))}"})
        except System:
            raise
        except Exception as err:
            raise System(f"QMP migrate-incoming failed: {err or type(err).__name__}") from err

    async def _ignore_shared(self) -> None:
        await self._qmp.execute("migrate-set-capabilities", {"capabilities": [
            {"capability": "x-ignore-shared", "state": True}]})

    async def pause(self) -> None:
        """QMP ``stop``: vCPUs halt; QEMU's main loop (QMP, chardevs) keeps running."""
        await self._command("stop")

    async def resume(self) -> None:
        """QMP ``cont``."""
        await self._command("cont")

    async def _command(self, command: str, timeout: float = 10.0,
                       arguments: dict[str, object] | None = None) -> object:
        """Execute one QMP command, waiting for the QMP connection first; its
        return value. Raises System when QEMU has ended or does not answer."""
        try:
            await asyncio.wait_for(asyncio.shield(self._qmp_task), timeout)
            if self._qmp is None or self._proc.returncode is not None:
                raise System(f"QMP {command}: the VM has ended")
            result: object = await asyncio.wait_for(
                self._qmp.execute(command, arguments), timeout)
            return result
        except System:
            raise
        except Exception as err:
            raise System(f"QMP {command} failed: {err or type(err).__name__}") from err

    async def add_nic(self, nic: NicSpec) -> None:
        """Hot-plug tap NIC ``nic`` into the first free hot-plug slot. Raises
        Conflict when every slot is taken, System when QEMU refuses."""
        used = {d["bus"] for d in await self._nics()}
        free = [f"hp{i}" for i in range(self._spec.hotplug_slots) if f"hp{i}" not in used]
        if not free:
            raise Conflict("no free hot-plug slot left in this container's VM (restart it "
                           "to connect more networks)")
        await self._command("netdev_add", arguments=nic.qmp_netdev())
        try:
            await self._command("device_add", arguments={
                "driver": "virtio-net-pci", "id": f"dev{nic.id}", "netdev": nic.id,
                "mac": nic.mac, "bus": free[0]})
        except System:
            await self._command("netdev_del", arguments={"id": nic.id})
            raise

    async def remove_nic(self, mac: str, timeout: float = 20.0,
                         release: Callable[[], Awaitable[None]] | None = None) -> None:
        """Hot-unplug the NIC with ``mac`` and its netdev; returns once the guest
        has released it: at once when ``release`` powered its slot off (QEMU
        detaches a device whose slot the guest powers off), else after QEMU's
        request, which Linux's pciehp waits 5 s on for a cancel. Raises NotFound
        when no NIC has ``mac``, System when the guest does not let go."""
        nic = next((d for d in await self._nics() if d["mac"] == mac), None)
        if nic is None:
            raise NotFound(f"no NIC with MAC {mac}")
        await release_by_guest(release, self.name, mac, "QEMU")
        if nic["id"] in await self._peripherals():
            await self._command("device_del", arguments={"id": nic["id"]})
        deadline = asyncio.get_running_loop().time() + timeout
        while nic["id"] in await self._peripherals():
            if asyncio.get_running_loop().time() > deadline:
                raise System(f"the guest did not release NIC {mac} within {timeout:.0f}s")
            await asyncio.sleep(0.1)
        await self._command("netdev_del", arguments={"id": nic["netdev"]})

    async def _peripherals(self) -> dict[str, str]:
        """Devices with an id: id → QOM type (``child<virtio-net-pci>``)."""
        listed = await self._command("qom-list", arguments={"path": "/machine/peripheral"})
        return {str(i["name"]): str(i.get("type", "")) for i in listed
                if isinstance(i, dict)} if isinstance(listed, list) else {}

    async def _nics(self) -> list[dict[str, str]]:
        """Every virtio-net device: id, mac, netdev, bus (its slot's id, or "");
        one being unplugged meanwhile is left out."""
        out = []
        for name, kind in (await self._peripherals()).items():
            if not kind.startswith("child<virtio-net"):
                continue
            path = f"/machine/peripheral/{name}"
            try:
                props = {prop: str(await self._command(
                    "qom-get", arguments={"path": path, "property": prop}))
                    for prop in ("mac", "netdev", "parent_bus")}
            except System:
                continue
            parent = props.pop("parent_bus")
            bus = parent.rsplit("/", 2)[-2] if parent.count("/") >= 2 else ""
            out.append({"id": name, "bus": bus, **props})
        return out

    def failure(self) -> str | None:
        """QEMU's own error line (from qemu.log) when it exited non-zero unasked."""
        rc = self._proc.returncode
        if rc is None or rc == 0 or self._stopping:
            return None
        try:
            lines = (self._spec.run_dir / "qemu.log").read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        errors = [ln for ln in lines if ln.strip()]
        return errors[-1] if errors else f"{QEMU_BINARY} exited with status {rc}"


def _die_with_parent() -> None:
    """In the forked child before exec: SIGKILL when the parent dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


_PR_SET_PDEATHSIG = 1


class QemuBackend:
    """Spawns QEMU for each MachineSpec. ``accel`` is ``kvm`` or ``tcg`` (see
    ``vmcontainer.vm.accel`` for how it is chosen)."""

    name = "qemu"

    def __init__(self, accel: str, binary: str | None = None,
                 tie_to_parent: bool = False) -> None:
        """``tie_to_parent``: QEMU gets SIGKILL when this process dies (Linux
        PR_SET_PDEATHSIG) — for a process that owns its VMs and records their
        exits, so that no VM runs on unwatched when that process is killed."""
        self._accel = accel
        self._tie = tie_to_parent
        self._binary = binary or shutil.which(QEMU_BINARY)
        self._tsc_khz = host_tsc_khz()

    @property
    def accelerator(self) -> str:
        return self._accel

    @property
    def binary_id(self) -> str:
        """The QEMU binary's path, size and mtime: saved VM state is only loaded
        by the QEMU that wrote it (``vmcontainer.engine.templates`` keys by it)."""
        try:
            st = os.stat(self._binary or "")
        except OSError:
            return ""
        return f"{self._binary}:{st.st_size}:{st.st_mtime_ns}"

    async def start(self, spec: MachineSpec) -> QemuMachine:
        if not self._binary:
            raise Unavailable(f"{QEMU_BINARY} not found: install Debian's qemu-system-x86")
        for what, path in (("guest kernel", spec.kernel), ("initramfs", spec.initramfs)):
            if not Path(path).is_file():
                raise InvalidParameter(f"{what} not found: {path}")
        argv = qemu_argv(spec, self._binary, self._accel, self._tsc_khz,
                         kernel_accepts(Path(spec.kernel), LAPIC_TIMER_PARAM))
        log.debug("starting %s", " ".join(argv))
        with open(spec.run_dir / "qemu.log", "wb") as errlog:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=errlog,
                stderr=errlog,
                cwd=spec.run_dir,
                start_new_session=True,
                preexec_fn=_die_with_parent if self._tie else None,
            )
        machine = QemuMachine(spec, WatchedProcess(popen.pid, popen))
        if spec.incoming:
            try:
                await machine.incoming(spec.incoming)
            except BaseException:
                await machine.kill()
                raise
        return machine

    async def adopt(self, spec: MachineSpec, pid: int) -> QemuMachine:
        """Take back a VM started by an earlier daemon (same spec, process ``pid``)."""
        return QemuMachine(spec, WatchedProcess(pid))

    def alive(self, name: str, owner: str, pid: int) -> bool:
        return hypervisor_alive(name, pid)

    async def discard(self, owner: str) -> None:
        """Nothing: every file of a QEMU VM is in its MachineSpec."""

    def status(self) -> list[tuple[str, str]]:
        return [("Backend", self.name)]
