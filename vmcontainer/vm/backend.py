"""The one Backend protocol every hypervisor driver implements (after Kata's
hypervisor interface, kept small). The engine never asks which backend it has."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from vmcontainer.vm.nic import NicSpec
from vmcontainer.vm.spec import MachineSpec


class Machine(Protocol):
    """A running (or ended) VM. ``stop`` and ``kill`` are idempotent."""

    @property
    def name(self) -> str: ...

    @property
    def pid(self) -> int | None:
        """The hypervisor's host process ID, when there is one."""

    def socket_path(self, name: str) -> str:
        """A path this process can connect to for the machine's socket ``name``
        (a ChannelSpec.socket or ``qmp.sock``)."""

    async def wait(self) -> int:
        """Wait until the VM has ended; return the hypervisor's exit status."""

    async def stop(self, timeout: float = 3.0) -> None:
        """End the VM cleanly (disks flushed and closed), killing it after ``timeout``
        seconds if it does not go."""

    async def release(self) -> None:
        """Stop controlling the VM and leave it running (daemon shutdown)."""

    async def kill(self) -> None:
        """End the VM at once."""

    async def pause(self) -> None:
        """Freeze every vCPU (``docker pause``); the hypervisor process, its sockets
        and the guest's memory stay as they are. Raises System when the hypervisor
        does not answer."""

    async def resume(self) -> None:
        """Let a paused VM run on (``docker unpause``). Raises System as ``pause``."""

    async def add_nic(self, nic: NicSpec) -> None:
        """Hot-plug tap NIC ``nic`` (a machine with hot-plug slots only). Raises
        Conflict (no free slot), System."""

    async def remove_nic(self, mac: str, timeout: float = 20.0,
                         release: Callable[[], Awaitable[None]] | None = None) -> None:
        """Hot-unplug the NIC with ``mac``, once the guest released it. ``release``
        (when given) asks the guest to let the NIC go first, e.g. by powering its
        slot off, after which the hypervisor has detached it; when it raises, or the
        NIC is still there after it, the hypervisor asks the guest (Linux's pciehp
        acts on that after 5 s). Raises NotFound, System."""

    def failure(self) -> str | None:
        """Why the hypervisor ended on its own with an error, as one line, or None."""


class Backend(Protocol):
    """Boots MachineSpecs. ``name`` is shown by ``docker info``; ``accelerator`` is
    ``kvm`` or ``tcg``."""

    @property
    def name(self) -> str: ...

    @property
    def accelerator(self) -> str: ...

    async def adopt(self, spec: MachineSpec, pid: int) -> Machine:
        """Watch a VM of ``spec`` that an earlier process started (hypervisor
        process ``pid``), e.g. after a daemon restart."""

    async def start(self, spec: MachineSpec) -> Machine:
        """Start the VM and return as soon as the hypervisor runs (not when the guest
        is ready). Raises Unavailable when the hypervisor is missing and
        InvalidParameter for a spec it cannot run."""

    def alive(self, name: str, owner: str, pid: int) -> bool:
        """Whether the VM ``name`` of ``owner`` (hypervisor process ``pid``, 0 when
        none is known) still runs. Blocking and quick: the container store asks it
        to reconcile records of VMs that ended while nobody watched."""

    async def discard(self, owner: str) -> None:
        """Delete whatever the backend keeps for ``owner``'s VMs besides the files of
        its MachineSpecs (the container is being removed)."""

    def status(self) -> list[tuple[str, str]]:
        """Facts ``docker info`` shows about the backend: [(label, value)]."""
