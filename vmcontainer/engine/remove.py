"""Remove a container: its record, overlay, config disk, logs and sockets."""

from __future__ import annotations

import contextlib
import os
import signal
import time

from vmcontainer.engine.context import EngineContext
from vmcontainer.engine.state import Status
from vmcontainer.errors import Conflict


def _kill_vm(pid: int, timeout: float = 5.0) -> None:
    """SIGKILL the hypervisor process ``pid`` and wait until it is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.01)


def remove_container(ctx: EngineContext, ref: str, force: bool = False) -> str:
    """Remove container ``ref``; with ``force`` a running one is killed first.
    Returns the container's ID. Raises ContainerNotFound, and Conflict with
    Docker's wording for a running container without ``force``."""
    c = ctx.store.find(ref)
    if c.state.running:
        if not force:
            raise Conflict(
                f'cannot remove container "/{c.name}": container is running: stop the '
                "container before removing or force remove"
            )
        if c.state.pid:
            _kill_vm(c.state.pid)
    with ctx.store.locked():
        with contextlib.suppress(Exception):
            ctx.update(c.id, state=ctx.store.load(c.id).state.move(
                Status.REMOVING if not c.state.running else Status.DEAD))
        ctx.store.delete(c.id)
        # The base disk of an image removed while this container used it goes now.
        ctx.images.prune_rootfs({other.image_id for other in ctx.store.all()})
    return c.id
