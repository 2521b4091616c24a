"""Choosing the accelerator: KVM when it demonstrably runs a guest, else TCG.

A probe boots the real guest kernel and agent under KVM with
``vmcontainer.probe=1`` (the agent says HELLO and reboots); KVM counts as working
only if HELLO arrives within ``PROBE_TIMEOUT_S``. The answer is cached per host
boot in ``<boot_dir>/accel-<boot id>.json``. ``VMCONTAINER_ACCEL=kvm|tcg`` skips
the probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from vmcontainer.errors import InvalidParameter, VmcError
from vmcontainer.guestlink.link import AgentLink
from vmcontainer.guestlink.protocol import PORT_NAME, MsgType
from vmcontainer.vm.bootassets import BootAssets
from vmcontainer.vm.guestkernel import DEFAULT_CMDLINE
from vmcontainer.vm.host import host_boot_id, kvm_device_usable
from vmcontainer.vm.qemu import QemuBackend
from vmcontainer.vm.spec import ChannelSpec, MachineSpec

PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class AccelChoice:
    """``accel``: ``kvm`` or ``tcg``; ``reason``: why KVM is not used ("" with KVM);
    ``fresh``: decided now rather than read from this host boot's cache (callers
    warn about TCG once, when fresh)."""

    accel: str
    reason: str
    fresh: bool = False


async def _probe_kvm(assets: BootAssets) -> str:
    """"" when a guest boots under KVM, else the reason it did not."""
    with tempfile.TemporaryDirectory(prefix="vmc-kvm-probe-") as tmp:
        spec = MachineSpec(
            name="vmc-kvm-probe", kernel=assets.kernel, initramfs=assets.initramfs,
            cmdline=f"{DEFAULT_CMDLINE} vmcontainer.probe=1",
            memory_mib=128, vcpus=1, run_dir=Path(tmp),
            channels=(ChannelSpec(PORT_NAME, "agent.sock"),),
        )
        machine = await QemuBackend("kvm").start(spec)
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                link = await AgentLink.connect(machine.socket_path("agent.sock"))
                async for frame in link.frames():
                    if frame.type == MsgType.HELLO:
                        await link.close()  # the agent powers off when we hang up
                        return ""
            return machine.failure() or "the KVM probe guest ended without answering"
        except TimeoutError:
            return f"a KVM guest did not boot within {PROBE_TIMEOUT_S:.0f}s"
        except VmcError as err:
            return str(err)
        finally:
            with contextlib.suppress(Exception):
                await machine.kill()


async def choose_accelerator(assets: BootAssets, cache_dir: Path) -> AccelChoice:
    """KVM if usable (probed once per host boot), else TCG with the reason."""
    forced = os.environ.get("VMCONTAINER_ACCEL", "")
    if forced:
        if forced not in ("kvm", "tcg"):
            raise InvalidParameter(f"VMCONTAINER_ACCEL must be kvm or tcg, not {forced!r}")
        return AccelChoice(forced, "" if forced == "kvm" else "VMCONTAINER_ACCEL=tcg")
    cache = cache_dir / f"accel-{host_boot_id()}.json"
    with contextlib.suppress(OSError, ValueError, KeyError):
        d = json.loads(cache.read_text())
        if d["kernel"] == str(assets.kernel):
            return AccelChoice(d["accel"], d["reason"])
    if kvm_device_usable():
        reason = await _probe_kvm(assets)
    else:
        reason = "/dev/kvm is missing or not accessible"
    choice = AccelChoice("tcg" if reason else "kvm", reason, fresh=True)
    with contextlib.suppress(OSError):
        cache_dir.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"accel": choice.accel, "reason": reason,
                                     "kernel": str(assets.kernel)}))
    return choice
