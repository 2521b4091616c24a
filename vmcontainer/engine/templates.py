"""VM templates: the warm start path (issue "Fast start", DESIGN.md "Hypervisor").

A template is one VM booted (qemu backend; microvm, or q35 in bridge mode) to
where its agent waits for its container's config (``vmcontainer.template=1``,
guest/PROTOCOL.md "Warm start"), then saved: its guest RAM is a file on tmpfs
(``memory-backend-file``, shared) and its device state a migration stream beside
it (``x-ignore-shared``: RAM not in the stream). A container whose machine
matches a template starts QEMU with ``-incoming`` from that state and the same
RAM file mapped private — its pages copy-on-write, shared with every other clone
until written.

One template per key: the SHA-256 of the kernel and initramfs contents (the
initramfs holds the agent), memory, vCPUs, accelerator, the QEMU binary and the
device layout (``templatelayout.layout``: machine type, volume and 9p share
slots, hot-plug root ports, NIC slots; what a clone's guest keeps of the
template's disks and shares: ``templatelayout``). Templates are built in the
background on first need; a container that finds none ready starts cold. Files:
``<root>/<key>/`` (state, disk and share placeholders) and ``<shm>/<key>.ram``;
this daemon's RAM files go at close.

NICs. A template has a NIC in each slot its containers have one, with the MAC
``template_mac(i)``, and a clone puts its own netdev — ``user`` with its host
forwards, or ``tap`` — behind the same device id and slot. The template's netdev
is connected to nothing, and chosen by what the clone's will be (so it is part of
the key). Measured with QEMU 7.2:

- not ``user``: slirp writes a savevm section of its own ("slirp"), and a clone
  whose NIC is a tap then fails to load ("Unknown savevm section or instance
  'slirp' 0"). For ``user`` clones the template has a ``hubport`` (a hub with
  nothing else on it; no vmstate; a clone's slirp simply finds no section).
- virtio features: the guest acks at probe what the template's netdev offers, and
  a clone's must offer at least that (virtio's load refuses the rest). A hub
  port, like slirp, has no vnet header: no offloads, the same features. A tap
  has one and offers checksum and segmentation offloads; a template with a hub
  port loads into tap clones, but their guests then run without offloads (100 MiB
  through a published port: 64 MiB/s against 300 cold). So for ``tap`` clones
  the template's NIC is a tap too, on no bridge and down, removed once the
  template is saved.

The guest keeps the template's MAC (the driver read it at probe); the clone's
CONFIG names it per interface (``template_mac``) and the agent gives the NIC the
container's own (guest/PROTOCOL.md "Warm start").
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from vmcontainer.engine.templatelayout import (
    AGENT_SOCKET,
    fits,
    layout,
    placeholders,
    template_nic,
)
from vmcontainer.guestlink.link import AgentLink
from vmcontainer.guestlink.protocol import PORT_NAME, MsgType
from vmcontainer.network import links
from vmcontainer.vm.backend import Backend
from vmcontainer.vm.qemu import QemuMachine
from vmcontainer.vm.spec import ChannelSpec, MachineSpec

log = logging.getLogger(__name__)

BUILD_TIMEOUT_S = 120.0
# At most this many templates (ready or building) per daemon: each holds its guest
# RAM on tmpfs (~50 MiB for a 128 MiB guest), and every mix of memory, NICs,
# volumes and bind mounts has its own. A new layout evicts the least recently
# cloned template unused for EVICT_IDLE_S (a clone being started from it keeps
# its files); when none is that idle, the new layout's containers start cold.
MAX_TEMPLATES = 8
EVICT_IDLE_S = 60.0


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class Template:
    """A saved template: ``state`` (device state), ``memory`` (guest RAM file),
    ``config_disk`` (the placeholder a clone attaches in the config slot);
    ``volumes``, ``shares``: its volume disk and 9p share slots."""

    key: str
    state: Path
    memory: Path
    config_disk: Path
    memory_mib: int
    vcpus: int
    built_s: float
    machine_type: str = "microvm"
    nic_ids: tuple[str, ...] = ()  # NIC i has MAC template_mac(i)
    volumes: int = 0
    shares: int = 0

    def describe(self) -> str:
        """``docker info``'s words for it, e.g. ``128 MiB, 1 vCPU, microvm, 1 NIC``
        (then ``, 2 volumes, 1 bind mount`` where it has those slots)."""
        words = [f"{self.memory_mib} MiB", f"{self.vcpus} vCPU", self.machine_type,
                 _count(len(self.nic_ids), "NIC")]
        if self.volumes:
            words.append(_count(self.volumes, "volume"))
        if self.shares:
            words.append(_count(self.shares, "bind mount"))
        return ", ".join(words)


@functools.lru_cache(maxsize=16)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    del size, mtime_ns  # cache key only
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def eviction(last_used: dict[str, float], now: float, idle_s: float = EVICT_IDLE_S) -> str | None:
    """The key to evict of templates last cloned at ``last_used`` (monotonic s):
    the least recently used one idle for ``idle_s``, or None."""
    idle = [(used, key) for key, used in last_used.items() if now - used >= idle_s]
    return min(idle)[1] if idle else None


def file_digest(path: Path) -> str:
    """SHA-256 of ``path``'s content, cached per (path, size, mtime)."""
    st = path.stat()
    return _file_digest(str(path), st.st_size, st.st_mtime_ns)


class TemplatePool:
    """Templates of one daemon. ``root``: where their files live; ``shm``: a
    tmpfs directory for their RAM files."""

    def __init__(self, backend: Backend, root: Path, shm: Path) -> None:
        self._backend = backend
        self._root = root
        self._shm = shm
        self._ready: dict[str, Template] = {}
        self._builds: dict[str, asyncio.Task[None]] = {}
        self._failed: dict[str, str] = {}
        self._used: dict[str, float] = {}  # key -> when last cloned or built (monotonic)

    def key(self, spec: MachineSpec) -> str:
        """The template key of container machine ``spec``."""
        parts = [layout(spec), file_digest(Path(spec.kernel)), file_digest(Path(spec.initramfs)),
                 spec.cmdline, str(spec.memory_mib), str(spec.vcpus), self._backend.accelerator,
                 str(getattr(self._backend, "binary_id", ""))]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]

    def eligible(self, spec: MachineSpec) -> bool:
        """Whether ``spec`` (a container's machine) can clone a template: the qemu
        backend and a template's device layout (``templatelayout.fits``)."""
        return self._backend.name == "qemu" and fits(spec)

    def get(self, spec: MachineSpec) -> Template | None:
        """The ready template for ``spec``; when there is none yet, its build
        starts in the background (once per key) and None is returned."""
        key = self.key(spec)
        t = self._ready.get(key)
        if t is not None and t.memory.exists() and t.state.exists():
            self._used[key] = time.monotonic()
            return t
        self._ready.pop(key, None)
        if key in self._builds or key in self._failed:
            return None
        if len(self._ready) + len(self._builds) >= MAX_TEMPLATES:
            victim = eviction({k: self._used.get(k, 0.0) for k in self._ready}, time.monotonic())
            if victim is None:
                return None
            self._evict(victim)
        self._builds[key] = asyncio.create_task(self._build(key, spec))
        return None

    def _evict(self, key: str) -> None:
        t = self._ready.pop(key)
        self._used.pop(key, None)
        t.memory.unlink(missing_ok=True)
        shutil.rmtree(self._root / key, ignore_errors=True)
        log.info("template %s evicted (at most %d templates)", key[:12], MAX_TEMPLATES)

    def drop(self, t: Template) -> None:
        """Forget ``t`` and build no template for its key again (a clone failed)."""
        if self._ready.pop(t.key, None) is not None:
            self._failed[t.key] = "a clone failed to start"

    async def wait_built(self) -> None:
        """Until every build started so far has ended (tests, benchmarks)."""
        await asyncio.gather(*self._builds.values(), return_exceptions=True)

    def status(self) -> list[tuple[str, str]]:
        """``docker info`` lines (DriverStatus pairs)."""
        lines = [("Warm start templates", str(len(self._ready)))]
        for t in self._ready.values():
            lines.append((f"Template {t.key[:12]}", f"{t.describe()}, built in {t.built_s:.2f}s"))
        for key in self._builds:
            lines.append((f"Template {key[:12]}", "building"))
        for key, err in self._failed.items():
            lines.append((f"Template {key[:12]}", f"failed: {err}"))
        return lines

    async def close(self) -> None:
        """Cancel builds and remove this pool's RAM files (running clones keep
        their mappings)."""
        for task in self._builds.values():
            task.cancel()
        await asyncio.gather(*self._builds.values(), return_exceptions=True)
        shutil.rmtree(self._shm, ignore_errors=True)

    async def _build(self, key: str, spec: MachineSpec) -> None:
        t0 = time.monotonic()
        tmp = self._root / f".{key}.tmp"
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            self._shm.mkdir(parents=True, exist_ok=True)
            (self._shm / "root").write_text(str(self._root.parent))  # warm.sweep_shm
            ram = self._shm / f"{key}.ram"
            ram_tmp = self._shm / f".{key}.ram.tmp"
            ram_tmp.unlink(missing_ok=True)
            disks, shares = placeholders(spec, tmp)
            nics = tuple(template_nic(key, i, n) for i, n in enumerate(spec.nics))
            taps = [n.tap for n in nics if n.netdev == "tap"]
            tspec = MachineSpec(
                name=f"vmc-template-{key[:12]}", kernel=spec.kernel, initramfs=spec.initramfs,
                cmdline=spec.cmdline, memory_mib=spec.memory_mib, vcpus=spec.vcpus,
                run_dir=tmp,
                disks=disks, shares=shares,
                channels=(ChannelSpec(PORT_NAME, AGENT_SOCKET),),
                nics=nics,
                machine_type=spec.machine_type, hotplug_slots=spec.hotplug_slots,
                extra_cmdline=("vmcontainer.template=1",),
                memory_file=ram_tmp, memory_shared=True)
            try:
                for tap in taps:
                    links.add_lone_tap(tap)
                async with asyncio.timeout(BUILD_TIMEOUT_S):
                    await self._boot_and_save(tspec, tmp / "state")
            finally:
                for tap in taps:
                    links.delete_link(tap)
            os.replace(ram_tmp, ram)
            final = self._root / key
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            self._ready[key] = Template(key, final / "state", ram, final / "config.raw",
                                        spec.memory_mib, spec.vcpus,
                                        round(time.monotonic() - t0, 2), spec.machine_type,
                                        tuple(n.id for n in spec.nics),
                                        len(spec.disks) - 2, len(spec.shares))
            self._used[key] = time.monotonic()
            log.info("template %s built in %.2fs", key[:12], time.monotonic() - t0)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            log.warning("template %s: build failed: %s", key[:12], err)
            self._failed[key] = str(err) or type(err).__name__
        finally:
            self._builds.pop(key, None)
            shutil.rmtree(tmp, ignore_errors=True)

    async def _boot_and_save(self, spec: MachineSpec, state: Path) -> None:
        machine = await self._backend.start(spec)
        try:
            if not isinstance(machine, QemuMachine):
                raise TypeError("templates need the qemu backend")
            link = await AgentLink.connect(machine.socket_path(AGENT_SOCKET), timeout=60.0)
            try:
                async for frame in link.frames():
                    if frame.type == MsgType.HELLO:
                        break
                await asyncio.sleep(0.05)  # the agent reaches its wait for CONFIG
                await machine.save(state)
            finally:
                await link.close()
        finally:
            with contextlib.suppress(Exception):
                await machine.kill()
