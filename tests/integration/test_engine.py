"""The daemon-side Engine with real VMs: lifecycle verbs, attach before start,
waiters, stop escalation, events, and adoption of running VMs by a new Engine (a
daemon restart)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from backends import backend
from conftest import Vmc

from vmcontainer.config import Settings
from vmcontainer.engine.context import EngineContext
from vmcontainer.engine.engine import Engine
from vmcontainer.engine.spec import ContainerSpec
from vmcontainer.errors import Conflict, NotModified
from vmcontainer.vm.accel import choose_accelerator

pytestmark = pytest.mark.vm


async def make_engine(root: Path) -> Engine:
    settings = Settings(root=root, boot_dir=Path(os.environ["VMCONTAINER_BOOT_DIR"]))
    ctx = EngineContext(settings)
    choice = await choose_accelerator(ctx.boot_assets(), settings.boot_dir)
    ctx.backend = await backend(choice.accel)
    return Engine(ctx)


async def test_attach_wait_events(vmc: Vmc, busybox: str) -> None:
    engine = await make_engine(vmc.root)
    c = await engine.create(ContainerSpec(image=busybox,
                                          cmd=("sh", "-c", "echo out; echo err >&2; exit 4")))
    stream = engine.attach(c.id, stream=True)
    waiter = engine.waiter(c.id, "next-exit")
    await engine.start(c.id)
    got = [chunk async for chunk in stream]
    assert b"".join(d for s, d in got if s == "stdout") == b"out\n"
    assert b"".join(d for s, d in got if s == "stderr") == b"err\n"
    assert (await waiter) == {"StatusCode": 4, "Error": None}
    logs = [d async for _, d in engine.logs(c.id, timestamps=False)]
    assert b"".join(logs) in (b"out\nerr\n", b"err\nout\n")
    actions = [e["Action"] for e in engine.events.history() if e["id"] == c.id]
    assert actions == ["create", "start", "die"]
    with pytest.raises(NotModified):
        await engine.stop(c.id)
    removed = engine.waiter(c.id, "removed")
    await engine.remove(c.id)
    assert (await removed)["StatusCode"] == 4
    await engine.close()


async def test_stop_escalates_and_kill(vmc: Vmc, busybox: str) -> None:
    engine = await make_engine(vmc.root)
    # PID 1 without a TERM handler ignores SIGTERM: stop must end the VM after t.
    c = await engine.create(ContainerSpec(image=busybox, cmd=("sleep", "300")))
    await engine.start(c.id)
    with pytest.raises(Conflict):
        await engine.remove(c.id)
    t = asyncio.get_running_loop().time()
    await engine.stop(c.id, timeout=1)
    assert 1 <= asyncio.get_running_loop().time() - t < 10
    assert engine.get(c.id).state.exit_code == 137
    c2 = await engine.create(ContainerSpec(image=busybox, cmd=(
        "sh", "-c", "trap 'exit 9' USR1; echo ready; while true; do sleep 0.1; done")))
    out = engine.attach(c2.id, stream=True)
    await engine.start(c2.id)
    assert await anext(out) == ("stdout", b"ready\n")  # the trap is set
    await engine.kill(c2.id, "USR1")
    assert (await engine.waiter(c2.id))["StatusCode"] == 9
    for cid in (c.id, c2.id):
        await engine.remove(cid)
    await engine.close()


async def test_a_new_engine_adopts_running_vms(vmc: Vmc, busybox: str) -> None:
    first = await make_engine(vmc.root)
    c = await first.create(ContainerSpec(image=busybox, cmd=(
        "sh", "-c", "i=0; while [ $i -lt 40 ]; do echo tick $i; i=$((i+1)); sleep 0.1; done")))
    await first.start(c.id)
    await asyncio.sleep(0.5)
    await first.close()  # the daemon goes away; the VM does not
    await asyncio.sleep(1.0)  # output written now waits in the guest
    second = await make_engine(vmc.root)
    assert await second.adopt() == [c.id]
    assert (await second.waiter(c.id))["StatusCode"] == 0
    logs = b"".join([d async for _, d in second.logs(c.id)])
    assert logs == b"".join(b"tick %d\n" % i for i in range(40))
    await second.remove(c.id)
    await second.close()
